//! Bad input: exit 2, a message naming the file, the field and the value (pinned verbatim
//! for a handful of cases), and nothing written.

use crate::common::{mup, run_gen, run_mup};

const META: &str = "name: demo\nversion: \"7.0.14\"\nbin_path: /opt/mongodb/bin\n";

/// A scratch directory holding `topology.yaml` and `meta.yaml`.
fn inputs(topology: &str, meta: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("topology.yaml"), topology).expect("write");
    std::fs::write(tmp.path().join("meta.yaml"), meta).expect("write");
    tmp
}

/// Runs `mup gen topology.yaml --meta meta.yaml --out out` in a scratch directory and
/// returns stderr; asserts exit 2 and that nothing was created.
fn refused(topology: &str, meta: &str) -> String {
    let tmp = inputs(topology, meta);
    let out = run_gen(tmp.path(), "out", &[])
        .code(2)
        .stderr_lacks("panicked");
    assert!(!tmp.path().join("out").exists(), "nothing may be written");
    out.stderr
}

fn rs(ports: &[&str]) -> String {
    let mut t = String::from("mongod_servers:\n");
    for p in ports {
        t.push_str(&format!(
            "  - host: localhost\n    port: {p}\n    replica_set: rs0\n"
        ));
    }
    t
}

#[test]
fn duplicate_port_names_both_nodes() {
    assert_eq!(
        refused(&rs(&["30000", "30000"]), META),
        "error: topology.yaml: mongod_servers[1].port: 30000 is already used by mongod_servers[0]\n"
    );
}

#[test]
fn newline_in_a_path_cannot_inject_a_program() {
    let topo = "mongod_servers:\n  - host: localhost\n    port: 30000\n    data_dir: \"/tmp/d\\n[program:evil]\\ncommand=/bin/touch /tmp/PWNED\"\n";
    assert_eq!(
        refused(topo, META),
        "error: topology.yaml: mongod_servers[0].data_dir: \"/tmp/d\\n[program:evil]\\ncommand=/bin/touch /tmp/PWNED\" contains the control character '\\n', which supervisord would read as a new line or section\n"
    );
}

#[test]
fn inline_comment_marker_in_a_path_is_refused() {
    let topo =
        "global:\n  log_dir: /tmp/logs #1\nmongod_servers:\n  - host: localhost\n    port: 30000\n";
    // YAML itself drops " #1" as a comment; quoting keeps it and mup refuses it.
    let quoted = topo.replace("/tmp/logs #1", "\"/tmp/logs #1\"");
    assert_eq!(
        refused(&quoted, META),
        "error: topology.yaml: global.log_dir: \"/tmp/logs #1\" contains whitespace followed by '#', which supervisord reads as the start of a comment (the rest would be dropped)\n"
    );
}

#[test]
fn unknown_key_is_an_error() {
    let topo = "mongod_servers:\n  - host: localhost\n    port: 30000\n    replica_sett: rs0\n";
    let err = refused(topo, META);
    assert!(
        err.starts_with("error: topology.yaml: mongod_servers[0]: unknown field `replica_sett`"),
        "{err}"
    );
    assert!(err.contains("line 4"), "{err}");
}

#[test]
fn cluster_name_must_be_one_path_segment() {
    assert_eq!(
        refused(&rs(&["30000"]), "name: ../evil\nversion: \"7.0\"\nbin_path: /b\n"),
        "error: meta.yaml: name: \"../evil\" is not a valid cluster name: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit\n"
    );
}

#[test]
fn mongos_needs_config_servers() {
    let topo = format!(
        "{}mongos_servers:\n  - host: localhost\n    port: 30100\n",
        rs(&["30000"])
    );
    assert_eq!(
        refused(&topo, META),
        "error: topology.yaml: mongos_servers: a topology with mongos needs config_servers (a config server replica set)\n"
    );
}

#[test]
fn sharded_mongod_needs_a_replica_set() {
    let topo = "config_servers:\n  - {host: localhost, port: 30100, replica_set: cfg}\nmongod_servers:\n  - {host: localhost, port: 30000}\n";
    assert_eq!(
        refused(topo, META),
        "error: topology.yaml: mongod_servers[0].replica_set: in a sharded topology every mongod is a shard member and needs a replica_set\n"
    );
}

#[test]
fn one_replica_set_name_one_role() {
    let topo = "config_servers:\n  - {host: localhost, port: 30100, replica_set: rs0}\nmongod_servers:\n  - {host: localhost, port: 30000, replica_set: rs0}\n";
    assert_eq!(
        refused(topo, META),
        "error: topology.yaml: mongod_servers[0].replica_set: \"rs0\" is already the replica set of config_servers[0], a config node; use another name\n"
    );
}

#[test]
fn port_out_of_range() {
    assert_eq!(
        refused(&rs(&["70000"]), META),
        "error: topology.yaml: mongod_servers[0].port: 70000 is not a port: use 1..65535, or 0 to let mup pick one\n"
    );
}

#[test]
fn supervisor_port_clashing_with_a_node() {
    let meta = format!("{META}supervisor_port: 30000\n");
    assert_eq!(
        refused(&rs(&["30000"]), &meta),
        "error: meta.yaml: supervisor_port: 30000 is already used by mongod_servers[0]\n"
    );
}

#[test]
fn percent_in_password_is_refused() {
    let meta = format!("{META}supervisor_password: p%ss\n");
    assert_eq!(
        refused(&rs(&["30000"]), &meta),
        "error: meta.yaml: supervisor_password: \"p%ss\" may only use letters, digits, '_' and '-' (supervisord would silently change other values)\n"
    );
}

#[test]
fn runtime_config_cannot_move_the_port() {
    let topo = "global:\n  runtime_config:\n    net.port: 1234\nmongod_servers:\n  - {host: localhost, port: 30000}\n";
    assert_eq!(
        refused(topo, META),
        "error: topology.yaml: global.runtime_config.net.port: mup sets this option itself (ports, paths, replica set and logging come from the topology)\n"
    );
}

#[test]
fn broken_yaml_duplicate_keys_and_alias_bombs_do_not_panic() {
    // Unparsable.
    let err = refused("mongod_servers: [\n", META);
    assert!(err.starts_with("error: topology.yaml: "), "{err}");
    // Duplicate key.
    let err = refused(
        "mongod_servers:\n  - host: localhost\n    port: 1\n    port: 2\n",
        META,
    );
    assert!(
        err.starts_with("error: topology.yaml: ") && err.contains("duplicate"),
        "{err}"
    );
    // Billion laughs.
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 0..9u8 {
        let (prev, next) = ((b'a' + i) as char, (b'a' + i + 1) as char);
        bomb.push_str(&format!("{next}: &{next} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
    }
    let err = refused(&bomb, META);
    assert!(err.starts_with("error: topology.yaml: "), "{err}");
    // Wrong type, empty file, missing file.
    let err = refused(
        "mongod_servers:\n  - host: localhost\n    port: \"30000\"\n",
        META,
    );
    assert!(
        err.contains("mongod_servers[0].port: invalid type: string"),
        "{err}"
    );
    assert_eq!(
        refused("", META),
        "error: topology.yaml: the file is empty\n"
    );
}

#[test]
fn existing_tree_of_another_cluster_is_not_overwritten() {
    let tmp = inputs(&rs(&["30000"]), META);
    std::fs::write(tmp.path().join("other.yaml"), META.replace("demo", "other")).expect("write");
    let gen = |meta: &str| {
        let mut cmd = mup(&tmp.path().join("mup-home"));
        cmd.current_dir(tmp.path());
        run_mup(
            cmd,
            &["gen", "topology.yaml", "--meta", meta, "--out", "out"],
        )
    };
    gen("meta.yaml").ok();
    let before = std::fs::read(tmp.path().join("out/meta.yaml")).expect("meta");
    gen("other.yaml")
        .code(2)
        .stderr_has("holds the cluster \"demo\", not \"other\"");
    assert_eq!(
        std::fs::read(tmp.path().join("out/meta.yaml")).expect("meta"),
        before
    );
}

/// What supervisord's `environment=` parser cannot carry is refused, naming the field and
/// the value: a value that closes the quoting to add a variable (`LD_PRELOAD` would work the
/// same way), one with both quotes, and a newline. (What it can carry reaches the programs
/// verbatim: tests/gen_daemon.rs.)
#[test]
fn environment_values_supervisord_cannot_carry_are_refused() {
    let meta = |field: &str, value: &str| format!("{META}{field}: {}\n", yaml_str(value));
    assert_eq!(
        refused(&rs(&["30000"]), &meta("user", "x\",MUPINJECT=/tmp/injected.so,Z=\"")),
        "error: meta.yaml: user: \"x\\\",MUPINJECT=/tmp/injected.so,Z=\\\"\" starts or ends with a quote, which supervisord's environment= parser strips\n"
    );
    assert_eq!(
        refused(&rs(&["30000"]), &meta("home", "/h/it's \"q\"x")),
        "error: meta.yaml: home: \"/h/it's \\\"q\\\"x\" contains both ' and \", which supervisord's environment= parser cannot quote (it has no escape character)\n"
    );
    assert_eq!(
        refused(&rs(&["30000"]), &meta("user", "a\nMUPINJECT=1")),
        "error: meta.yaml: user: \"a\\nMUPINJECT=1\" contains the control character '\\n', which supervisord would read as a new line or section\n"
    );
}

/// `value` as a YAML double-quoted scalar.
fn yaml_str(value: &str) -> String {
    serde_json::to_string(value).expect("a string serialises")
}

/// A port out of range hand-edited into the tree's own meta.yaml is refused by gen and by
/// `gen --check` (never written as port 0, never "up to date"), naming that file.
#[test]
fn a_port_out_of_range_in_the_trees_meta_is_refused_naming_that_file() {
    let tmp = inputs(&rs(&["30000"]), META);
    run_gen(tmp.path(), "out", &[]).ok();
    let tree_meta = tmp.path().join("out/meta.yaml");
    let ini = tmp.path().join("out/supervisor.ini");
    let (meta_before, ini_before) = (
        std::fs::read_to_string(&tree_meta).expect("meta"),
        std::fs::read(&ini).expect("ini"),
    );
    for field in ["supervisor_port", "metrics_port"] {
        let line = meta_before
            .lines()
            .find(|l| l.starts_with(&format!("{field}: ")))
            .unwrap_or_else(|| panic!("{field} recorded in\n{meta_before}"));
        let edited = meta_before.replace(line, &format!("{field}: 70000"));
        std::fs::write(&tree_meta, &edited).expect("edit");
        for extra in [&[][..], &["--check"][..], &["--dry-run"][..]] {
            let out = run_gen(tmp.path(), "out", extra).code(2);
            assert_eq!(
                out.stderr,
                format!(
                    "error: {}: {field}: 70000 is not a port: use 1..65535\n",
                    tree_meta.display()
                ),
                "gen {extra:?}"
            );
            assert_eq!(std::fs::read_to_string(&tree_meta).expect("meta"), edited);
            assert_eq!(std::fs::read(&ini).expect("ini"), ini_before);
        }
        std::fs::write(&tree_meta, &meta_before).expect("restore");
    }
}

/// A topology or meta file is read with a bound: `mup gen /dev/zero` (or a huge file named
/// by mistake) is refused naming the file, instead of being read into memory until the
/// machine runs out of it.
#[test]
fn an_input_file_is_read_with_a_bound() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("meta.yaml"), META).expect("write");
    // 64 MiB of zeros without the disk space: a sparse file.
    let big = std::fs::File::create(tmp.path().join("topology.yaml")).expect("create");
    big.set_len(64 << 20).expect("sparse");
    let out = run_gen(tmp.path(), "out", &[]).code(2);
    assert!(
        out.stderr
            .starts_with("error: topology.yaml: is larger than 16 MiB"),
        "{}",
        out.stderr
    );
    assert!(!tmp.path().join("out").exists(), "nothing may be written");
}

/// The same hand-edit read by ctl: `supervisor_port: 70000` is named as not a port (not as
/// "missing"), and `supervisor_port: 0` is refused before any daemon is started or asked.
#[test]
fn ctl_refuses_a_supervisor_port_out_of_range_in_the_trees_meta() {
    let tmp = inputs(&rs(&["30000"]), META);
    run_gen(tmp.path(), "out", &[]).ok();
    let tree_meta = tmp.path().join("out/meta.yaml");
    let meta_before = std::fs::read_to_string(&tree_meta).expect("meta");
    let line = meta_before
        .lines()
        .find(|l| l.starts_with("supervisor_port: "))
        .expect("supervisor_port recorded");
    for bad in ["70000", "0"] {
        std::fs::write(
            &tree_meta,
            meta_before.replace(line, &format!("supervisor_port: {bad}")),
        )
        .expect("edit");
        for cmd in ["status", "up"] {
            let tree = tmp.path().join("out");
            let out = run_mup(
                mup(&tmp.path().join("mup-home")),
                &["ctl", "--dir", tree.to_str().expect("utf8"), cmd],
            )
            .code(2);
            assert_eq!(
                out.stderr,
                format!(
                    "error: {}: supervisor_port: {bad} is not a port: use 1..65535\n",
                    tree_meta.display()
                ),
                "ctl {cmd}"
            );
            assert!(!tmp.path().join("out/supervisor.pid").exists(), "ctl {cmd}");
        }
    }
}
