//! Two nodes' data directories that read apart but resolve one into the other (a symlink on
//! the way) are refused by gen before anything is written: every node needs its own. gen
//! finds such a pair by sorting the resolved paths, not by comparing each with every other.

use crate::common::*;
use std::os::unix::fs::symlink;

#[test]
fn data_dirs_that_resolve_into_each_other_are_refused() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let home = scratch.path().join("mup-home");
    let dir = scratch.path().join("in");
    std::fs::create_dir_all(dir.join("real")).expect("mkdir");
    symlink(dir.join("real"), dir.join("link")).expect("symlink");
    // Node 1 (between the others) writes `link/a/b`: as written, inside no other's.
    let first = dir.join("real").join("a");
    let second = dir.join("link").join("a").join("b");
    let third = dir.join("real").join("c");
    let dd = |p: &std::path::Path| format!("{:?}", p.display().to_string());
    std::fs::write(
        dir.join("topology.yaml"),
        format!(
            "mongod_servers:\n  - {{host: localhost, port: {}, data_dir: {}}}\n  - {{host: localhost, port: {}, data_dir: {}}}\n  - {{host: localhost, port: {}, data_dir: {}}}\n",
            free_port(),
            dd(&first),
            free_port(),
            dd(&second),
            free_port(),
            dd(&third),
        ),
    )
    .expect("topology");
    std::fs::write(
        dir.join("meta.yaml"),
        format!(
            "name: overlap\nversion: \"7.0.14\"\nbin_path: {}\nhome: {}\nmetrics: false\n",
            stand_in_bin().display(),
            dir.display()
        ),
    )
    .expect("meta");
    let tree = scratch.path().join("tree");
    let out = mup(&home)
        .current_dir(&dir)
        .args(["gen", "topology.yaml", "--meta", "meta.yaml", "--out"])
        .arg(&tree)
        .output()
        .expect("run mup gen");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for want in [
        "mongod_servers[1].data_dir".to_string(),
        format!(
            "{} resolves to {}",
            second.display(),
            dir.join("real").join("a").join("b").display()
        ),
        "overlaps the data directory of mongod_servers[0]".to_string(),
    ] {
        assert!(err.contains(&want), "{want:?} in: {err}");
    }
    assert!(!tree.exists(), "nothing written: {tree:?}");
    assert!(!first.exists() && !third.exists(), "no data directory made");
}
