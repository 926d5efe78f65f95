//! The tree on disk: decisions made once, --check and --dry-run write nothing, vanished
//! nodes' files are removed and reported while their data stays.

use crate::common::{run_gen, Output};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Replica sets of three members (the server allows at most 7 voting members in one set).
fn topo(ports: &[u16]) -> String {
    let mut t = String::from("mongod_servers:\n");
    for (i, p) in ports.iter().enumerate() {
        t.push_str(&format!(
            "  - {{host: localhost, port: {p}, replica_set: rs{}}}\n",
            i / 3
        ));
    }
    t
}

fn gen(dir: &Path, extra: &[&str]) -> Output {
    run_gen(dir, "tree", extra)
}

#[test]
fn minimal_meta_is_completed_once_and_kept_private() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    std::fs::write(d.join("topology.yaml"), topo(&[0, 0])).expect("write");
    std::fs::write(
        d.join("meta.yaml"),
        "name: mini\nversion: \"7.0\"\nbin_path: bin\n",
    )
    .expect("write");
    gen(d, &[]).ok();
    let first = std::fs::read_to_string(d.join("tree/meta.yaml")).expect("meta");
    let m: serde_yaml::Value = serde_yaml::from_str(&first).expect("parse");
    let password = m["supervisor_password"].as_str().expect("password decided");
    assert_eq!(password.len(), 24);
    assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(m["user"].as_str(), Some("tester"));
    assert_eq!(
        m["bin_path"].as_str(),
        Some(d.join("bin").to_str().expect("utf8"))
    );
    assert!(m["supervisor_port"].as_u64().is_some());
    for f in ["meta.yaml", "supervisor.ini"] {
        let mode = std::fs::metadata(d.join("tree").join(f))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f} holds credentials");
    }
    // Same inputs again: nothing changes (ports, password, HOME/USER are reused).
    gen(d, &[]).stdout_has("0 files changed");
    assert_eq!(
        std::fs::read_to_string(d.join("tree/meta.yaml")).expect("meta"),
        first
    );
}

#[test]
fn check_and_dry_run_write_nothing_and_report_drift() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    std::fs::write(d.join("topology.yaml"), topo(&[30000, 30001])).expect("write");
    std::fs::write(d.join("meta.yaml"), "name: drift\nversion: \"7.0\"\nbin_path: /b\nsupervisor_port: 9009\nsupervisor_password: pw\nhome: /h\nuser: u\n").expect("write");

    gen(d, &["--check"]).code(1);
    assert!(!d.join("tree").exists(), "--check writes nothing");
    gen(d, &["--dry-run"])
        .ok()
        .stdout_has("create     conf/localhost-30000/mongod.conf");
    assert!(!d.join("tree").exists(), "--dry-run writes nothing");

    gen(d, &[]).ok();
    gen(d, &["--check"]).ok();

    // Hand edit → drift, with a diff for public files.
    let conf = d.join("tree/conf/localhost-30000/mongod.conf");
    std::fs::write(&conf, "net:\n  port: 1\n").expect("edit");
    gen(d, &["--check"])
        .code(1)
        .stdout_has("differs: conf/localhost-30000/mongod.conf")
        .stdout_has("+  port: 30000");
}

#[test]
fn removed_node_loses_its_files_not_its_data() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    std::fs::write(d.join("meta.yaml"), "name: shrink\nversion: \"7.0\"\nbin_path: /b\nsupervisor_port: 9010\nsupervisor_password: pw\nhome: /h\nuser: u\n").expect("write");
    std::fs::write(d.join("topology.yaml"), topo(&[30000, 30001, 30002])).expect("write");
    gen(d, &[]).ok();
    std::fs::write(
        d.join("tree/data/localhost-30002/collection.wt"),
        "precious",
    )
    .expect("data");

    std::fs::write(d.join("topology.yaml"), topo(&[30000, 30001])).expect("write");
    gen(d, &["--check"]).stdout_has("extra: conf/localhost-30002/supervisor-mongod.ini");
    gen(d, &[])
        .ok()
        .stdout_has("removed conf/localhost-30002/mongod.conf");
    assert!(!d.join("tree/conf/localhost-30002").exists());
    assert_eq!(
        std::fs::read_to_string(d.join("tree/data/localhost-30002/collection.wt")).expect("kept"),
        "precious"
    );
    // Each node is its own group: nothing in supervisor.ini names the removed node, and the
    // kept nodes' program files are still there for its include.
    let ini = std::fs::read_to_string(d.join("tree/supervisor.ini")).expect("ini");
    assert!(!ini.contains("30002"), "{ini}");
    for kept in [30000, 30001] {
        assert!(d
            .join(format!("tree/conf/localhost-{kept}/supervisor-mongod.ini"))
            .is_file());
    }
}

/// Directories gen creates outside `--out` (data and logs set in the topology) are named,
/// every missing parent too: `--dry-run` marks them, a write says it created them (stderr),
/// and the tree's own root is shown by its path, never as `/`.
#[test]
fn directories_outside_the_tree_are_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let (data, logs) = (d.join("elsewhere/data"), d.join("elsewhere/logs"));
    std::fs::write(
        d.join("topology.yaml"),
        format!(
            "global:\n  data_dir: {}\n  log_dir: {}\n{}",
            data.display(),
            logs.display(),
            topo(&[30000])
        ),
    )
    .expect("write");
    std::fs::write(
        d.join("meta.yaml"),
        "name: outside\nversion: \"7.0\"\nbin_path: bin\n",
    )
    .expect("write");
    let node_data = format!("{}/", data.join("localhost-30000").display());
    let logs = format!("{}/", logs.display());
    let outside = |p: &str| format!("{p} (outside the tree)");
    let parents = [
        format!("{}/", d.join("elsewhere").display()),
        format!("{}/", data.display()),
    ];

    let plan = gen(d, &["--dry-run"]).ok().stdout;
    let mkdirs: Vec<&str> = plan
        .lines()
        .filter_map(|l| l.trim().strip_prefix("mkdir"))
        .map(str::trim)
        .collect();
    for want in [
        outside(&parents[0]),
        outside(&parents[1]),
        outside(&node_data),
        outside(&logs),
        format!("{}/", d.join("tree").display()),
        "conf/".to_string(),
    ] {
        assert!(mkdirs.contains(&want.as_str()), "{want:?} in\n{plan}");
    }
    assert!(!mkdirs.contains(&"/"), "{plan}");

    let said = gen(d, &[]).ok().stderr;
    let created: Vec<&str> = said
        .lines()
        .filter_map(|l| l.strip_prefix("created "))
        .collect();
    assert_eq!(
        created,
        [
            outside(&parents[0]),
            outside(&parents[1]),
            outside(&node_data),
            outside(&logs)
        ],
        "{said}"
    );
    assert!(data.join("localhost-30000").is_dir() && d.join("elsewhere/logs").is_dir());
    // Nothing is created the second time: nothing said.
    gen(d, &[]).stderr_lacks("created ");
}

#[test]
fn two_thousand_nodes_are_written_with_256_descriptors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let ports: Vec<u16> = (0..2000).map(|i| 30000 + i).collect();
    std::fs::write(d.join("topology.yaml"), topo(&ports)).expect("write");
    std::fs::write(d.join("meta.yaml"), "name: big\nversion: \"7.0\"\nbin_path: /b\nsupervisor_port: 9011\nsupervisor_password: pw\nhome: /h\nuser: u\n").expect("write");
    // Every file is staged and closed before the renames: the 4,000 files of 2,000 nodes
    // never need more than a handful of descriptors at once.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -n 256 && exec "$0" gen topology.yaml --meta meta.yaml --out tree"#)
        .arg(assert_cmd::cargo::cargo_bin("mup"))
        .current_dir(d)
        .env("MUP_HOME", d.join("mup-home"))
        .env("USER", "tester")
        .output()
        .expect("run mup gen");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for p in [30000, 31999] {
        let conf = d.join(format!("tree/conf/localhost-{p}/mongod.conf"));
        let text = std::fs::read_to_string(&conf).expect("written");
        assert!(text.contains(&format!("port: {p}")), "{text}");
    }
    let staged: Vec<_> = std::fs::read_dir(d.join("tree/conf/localhost-30000"))
        .expect("conf dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".mup-"))
        .collect();
    assert!(staged.is_empty(), "no staged file is left: {staged:?}");
    gen(d, &["--check"]).ok();
}

#[test]
fn a_failed_gen_leaves_no_new_directory_behind() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    // The logs directory cannot be created (its parent is a file): gen fails while writing.
    std::fs::write(d.join("a-file"), "").expect("write");
    let topology = format!(
        "global:\n  log_dir: {}\n{}",
        d.join("a-file/logs").display(),
        topo(&[30000])
    );
    std::fs::write(d.join("topology.yaml"), topology).expect("write");
    std::fs::write(d.join("meta.yaml"), "name: failed\nversion: \"7.0\"\nbin_path: /b\nsupervisor_port: 9012\nsupervisor_password: pw\nhome: /h\nuser: u\n").expect("write");
    run_gen(d, "new/tree", &[])
        .code(1)
        .stderr_has("a-file/logs");
    assert!(
        !d.join("new").exists(),
        "gen left {}",
        d.join("new").display()
    );
}

/// A gen killed (SIGKILL, power loss) after staging leaves its `.mup-*` temp files beside
/// their targets. The next `--check` names them, the next gen removes them and says so; a
/// symlink of that name, and a file elsewhere, are left alone.
#[test]
fn staged_files_a_killed_gen_left_are_named_and_removed_by_the_next_gen() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    std::fs::write(d.join("meta.yaml"), "name: killed\nversion: \"7.0\"\nbin_path: /b\nsupervisor_port: 9011\nsupervisor_password: pw\nhome: /h\nuser: u\n").expect("write");
    std::fs::write(d.join("topology.yaml"), topo(&[30000, 30001])).expect("write");
    gen(d, &[]).ok();
    let tree = d.join("tree");
    // What a gen killed between staging and its renames leaves: the staged copies.
    let staged = [
        tree.join("conf/localhost-30000/.mup-Ab3xYz"),
        tree.join(".mup-Qr7tUv"),
    ];
    for s in &staged {
        std::fs::write(s, "net:\n  port: 30000\n").expect("stage");
    }
    let outside = d.join("elsewhere");
    std::fs::write(&outside, "keep").expect("write");
    let link = tree.join("conf/localhost-30001/.mup-Link00");
    std::os::unix::fs::symlink(&outside, &link).expect("symlink");

    gen(d, &["--check"])
        .code(1)
        .stdout_has("extra: conf/localhost-30000/.mup-Ab3xYz (staged by an interrupted gen)")
        .stdout_has("extra: .mup-Qr7tUv");

    gen(d, &[])
        .ok()
        .stdout_has("removed conf/localhost-30000/.mup-Ab3xYz (staged by an interrupted gen)");
    for s in &staged {
        assert!(!s.exists(), "{} removed", s.display());
    }
    assert!(link.symlink_metadata().is_ok(), "a symlink is not staged");
    assert_eq!(std::fs::read_to_string(&outside).expect("kept"), "keep");
    gen(d, &["--check"]).stdout_lacks("staged");
}

/// `--out` a symlink to a directory not made yet: refused as bad input (exit 2) naming the
/// link and its target, instead of "cannot create …: File exists"; nothing is created.
#[test]
fn an_out_that_is_a_dangling_symlink_is_named_with_its_target() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    std::fs::write(d.join("meta.yaml"), "name: dangling\nversion: \"7.0\"\nbin_path: /b\nsupervisor_port: 9012\nsupervisor_password: pw\nhome: /h\nuser: u\n").expect("write");
    std::fs::write(d.join("topology.yaml"), topo(&[30000])).expect("write");
    let target = d.join("not-yet");
    std::os::unix::fs::symlink(&target, d.join("tree")).expect("symlink");
    gen(d, &[])
        .code(2)
        .stderr_has(&format!("{}", d.join("tree").display()))
        .stderr_has(&format!(
            "a symbolic link to {}, which does not exist",
            target.display()
        ));
    assert!(!target.exists(), "nothing is created through the link");
}
