//! gen checks a data directory on the path it resolves to, every symlink followed: a path
//! that reads as the user's own but links into another cluster's tree or data is refused
//! before anything is written, naming the field and where it resolves.

use crate::common::*;
use std::os::unix::fs::symlink;
use std::path::Path;

/// Writes topology.yaml (one mongod with `data_dir`) and meta.yaml (cluster `name`) in `dir`.
fn inputs(dir: &Path, name: &str, data_dir: Option<&Path>) {
    let port = free_port();
    let dd = data_dir
        .map(|d| format!(", data_dir: {:?}", d.display().to_string()))
        .unwrap_or_default();
    std::fs::write(
        dir.join("topology.yaml"),
        format!("mongod_servers:\n  - {{host: localhost, port: {port}{dd}}}\n"),
    )
    .expect("topology");
    std::fs::write(
        dir.join("meta.yaml"),
        format!(
            "name: {name}\nversion: \"7.0.14\"\nbin_path: {}\nhome: {}\nmetrics: false\n",
            stand_in_bin().display(),
            dir.display()
        ),
    )
    .expect("meta");
}

fn gen(home: &Path, dir: &Path, out: &Path) -> std::process::Output {
    mup(home)
        .current_dir(dir)
        .args(["gen", "topology.yaml", "--meta", "meta.yaml", "--out"])
        .arg(out)
        .output()
        .expect("run mup gen")
}

#[test]
fn a_data_dir_linked_into_another_cluster_is_refused() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let home = scratch.path().join("mup-home");
    let clusters = home.join("storage").join("clusters");
    // Cluster a, with its data in the tree (the default).
    let a_in = scratch.path().join("a-in");
    std::fs::create_dir_all(&a_in).expect("mkdir");
    inputs(&a_in, "a", None);
    let a_tree = clusters.join("a");
    let out = gen(&home, &a_in, &a_tree);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let a_data = a_tree.join("data");
    assert!(a_data.is_dir(), "cluster a keeps its data in its tree");

    // Cluster b's data_dir reads as the user's own, under a directory that links into a.
    for (link_to, what) in [(&a_tree, "tree"), (&a_data, "data")] {
        let b_in = scratch.path().join(format!("b-in-{what}"));
        std::fs::create_dir_all(&b_in).expect("mkdir");
        let link = b_in.join("mine");
        symlink(link_to, &link).expect("symlink");
        let written = link.join("b-db");
        inputs(&b_in, "b", Some(&written));
        let b_tree = clusters.join("b");
        let out = gen(&home, &b_in, &b_tree);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "linked into a's {what}: {err}");
        for want in [
            "mongod_servers[0].data_dir",
            &format!(
                "{} resolves to {}",
                written.display(),
                link_to.join("b-db").display()
            ),
            "cluster \"a\"",
        ] {
            assert!(err.contains(want), "{want:?} in: {err}");
        }
        assert!(!b_tree.exists(), "nothing of b was written");
        assert!(
            !link_to.join("b-db").exists(),
            "nothing was created in a's {what}"
        );
    }
}

#[test]
fn a_data_dir_through_a_dangling_link_is_bad_input() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let home = scratch.path().join("mup-home");
    let b_in = scratch.path().join("b-in");
    std::fs::create_dir_all(&b_in).expect("mkdir");
    let dangling = b_in.join("gone");
    symlink(scratch.path().join("nowhere"), &dangling).expect("symlink");
    inputs(&b_in, "b", Some(&dangling.join("db")));
    let tree = home.join("storage").join("clusters").join("b");
    let out = gen(&home, &b_in, &tree);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("mongod_servers[0].data_dir") && err.contains("cannot be resolved"),
        "{err}"
    );
    assert!(!tree.exists(), "nothing written");
}

#[test]
fn a_data_dir_through_a_harmless_link_is_accepted() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let home = scratch.path().join("mup-home");
    let real = scratch.path().join("disk");
    std::fs::create_dir_all(&real).expect("mkdir");
    let b_in = scratch.path().join("b-in");
    std::fs::create_dir_all(&b_in).expect("mkdir");
    let link = b_in.join("fast");
    symlink(&real, &link).expect("symlink");
    inputs(&b_in, "b", Some(&link.join("db")));
    let tree = home.join("storage").join("clusters").join("b");
    let out = gen(&home, &b_in, &tree);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        real.join("db").is_dir(),
        "the data directory made where the link leads"
    );
}

#[test]
fn a_tree_or_log_dir_inside_another_cluster_is_refused() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let home = scratch.path().join("mup-home");
    let clusters = home.join("storage").join("clusters");
    let a_in = scratch.path().join("a-in");
    std::fs::create_dir_all(&a_in).expect("mkdir");
    inputs(&a_in, "a", None);
    let a_tree = clusters.join("a");
    let out = gen(&home, &a_in, &a_tree);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let b_in = scratch.path().join("b-in");
    std::fs::create_dir_all(&b_in).expect("mkdir");
    inputs(&b_in, "b", None);
    let link = scratch.path().join("looks-mine");
    symlink(&a_tree, &link).expect("symlink");
    for (out_dir, why) in [
        (
            a_tree.join("sub"),
            "overlaps the directory of cluster \"a\"",
        ),
        (link.join("sub"), "overlaps the directory of cluster \"a\""),
        (
            a_tree.join("data").join("x"),
            "overlaps the directory of cluster \"a\"",
        ),
        (home.clone(), "contains MUP_HOME"),
    ] {
        let out = gen(&home, &b_in, &out_dir);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "--out {}: {err}",
            out_dir.display()
        );
        assert!(
            err.contains("--out") && err.contains(why),
            "{why:?} in: {err}"
        );
    }
    assert!(!a_tree.join("sub").exists() && !a_tree.join("data/x").exists());
    assert!(
        !home.join("meta.yaml").exists(),
        "nothing written into MUP_HOME"
    );

    // A log directory in another cluster's tree: two daemons would rotate the same files.
    let port = free_port();
    std::fs::write(
        b_in.join("topology.yaml"),
        format!(
            "global:\n  log_dir: {:?}\nmongod_servers:\n  - {{host: localhost, port: {port}}}\n",
            link.join("logs").display().to_string()
        ),
    )
    .expect("topology");
    let b_tree = scratch.path().join("b-tree");
    let out = gen(&home, &b_in, &b_tree);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("mongod_servers[0].log_dir") && err.contains("cluster \"a\""),
        "{err}"
    );
    assert!(!b_tree.exists(), "nothing of b was written");
}
