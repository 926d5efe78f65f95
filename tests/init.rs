//! A deployed cluster is a working MongoDB cluster: replica sets initiated with one primary,
//! the config set with `configsvr: true`, every shard added; idempotent across stop/start;
//! errors named. Real supervisord; the stand-ins speak the wire protocol and model the servers'
//! rules (a mongos listens only once its config set has a primary). The result is checked with
//! the driver directly, independently of mup's own code.

use crate::common::*;
use mongodb::bson::doc;
use std::path::{Path, PathBuf};

/// The nodes of a display JSON: (port, role, replica set, member state).
fn nodes(d: &serde_json::Value) -> Vec<(u16, String, Option<String>, Option<String>)> {
    d["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            let id = n["id"].as_str().expect("id");
            (
                id.rsplit(':').next().expect("port").parse().expect("port"),
                n["role"].as_str().expect("role").to_string(),
                n["replica_set"].as_str().map(String::from),
                n["member_state"].as_str().map(String::from),
            )
        })
        .collect()
}

/// How many times each stand-in log under `logs` says `text`.
fn count_in_logs(logs: &Path, text: &str) -> usize {
    std::fs::read_dir(logs)
        .expect("logs")
        .flatten()
        .map(|e| {
            std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .matches(text)
                .count()
        })
        .sum()
}

const SHARDED: &str = "config_servers:
  - {host: localhost, port: {p0}, replica_set: cfg}
  - {host: localhost, port: {p1}, replica_set: cfg}
mongod_servers:
  - {host: localhost, port: {p2}, replica_set: shard1}
  - {host: localhost, port: {p3}, replica_set: shard1}
  - {host: localhost, port: {p4}, replica_set: shard1, priority: 0, hidden: true}
  - {host: 127.0.0.1, port: {p5}, replica_set: shard2}
mongos_servers:
  - {host: localhost, port: {p6}}
";

#[test]
fn a_sharded_deploy_is_ready_and_stays_ready_without_initiating_twice() {
    let (c, out) = TestCluster::named("ready").topology(SHARDED).try_deploy();
    out.ok().stdout_has("connect: mongodb://localhost:");
    wait_started(&c.tree);
    let p = c.ports.clone();
    let logs = c.tree.join("logs");

    let check = |c: &TestCluster| {
        // One primary per set, the right members, configsvr on the config set.
        for (set, ports) in [
            ("cfg", &p[0..2]),
            ("shard1", &p[2..5]),
            ("shard2", &p[5..6]),
        ] {
            let primaries: Vec<u16> = ports
                .iter()
                .copied()
                .filter(|port| {
                    let hello = mongo_command(*port, doc! { "hello": 1 });
                    assert_eq!(hello.get_str("setName").expect("setName"), set);
                    hello.get_bool("isWritablePrimary").unwrap_or(false)
                })
                .collect();
            assert_eq!(primaries.len(), 1, "{set}: one primary, got {primaries:?}");
            let config = mongo_command(ports[0], doc! { "replSetGetConfig": 1 });
            let config = config.get_document("config").expect("config");
            let hosts: Vec<&str> = config
                .get_array("members")
                .expect("members")
                .iter()
                .map(|m| m.as_document().expect("doc").get_str("host").expect("host"))
                .collect();
            assert_eq!(hosts.len(), ports.len(), "{set}: {hosts:?}");
            assert_eq!(config.get_bool("configsvr").unwrap_or(false), set == "cfg");
        }
        let shards = mongo_command(p[6], doc! { "listShards": 1 });
        let shards: Vec<(String, String)> = shards
            .get_array("shards")
            .expect("shards")
            .iter()
            .map(|s| {
                let s = s.as_document().expect("doc");
                (
                    s.get_str("_id").expect("_id").to_string(),
                    s.get_str("host").expect("host").to_string(),
                )
            })
            .collect();
        assert_eq!(
            shards,
            vec![
                (
                    "shard1".to_string(),
                    format!("shard1/localhost:{},localhost:{}", p[2], p[3])
                ),
                ("shard2".to_string(), format!("shard2/127.0.0.1:{}", p[5])),
            ],
            "the hidden member is not a seed"
        );
        // display shows the member states and the shards.
        let d = c.display().ok().json();
        let states: Vec<_> = nodes(&d);
        let primaries = states
            .iter()
            .filter(|n| n.3.as_deref() == Some("PRIMARY"))
            .count();
        let secondaries = states
            .iter()
            .filter(|n| n.3.as_deref() == Some("SECONDARY"))
            .count();
        assert_eq!((primaries, secondaries), (3, 3), "{d}");
        assert!(states.iter().any(|n| n.1 == "mongos" && n.3.is_none()));
        assert_eq!(d["shards"].as_array().map(Vec::len), Some(2), "{d}");
    };
    check(&c);
    let initiations = || count_in_logs(&logs, "replSetInitiate: initiated");
    let added = || count_in_logs(&logs, "shard added");
    assert_eq!((initiations(), added()), (3, 2));

    // Stop, start, start again: ready each time, and no second initiation or addShard.
    c.run(&["cluster", "stop", "ready"]).ok();
    c.run(&["-v", "cluster", "start", "ready"])
        .ok()
        .stdout_has("cfg: already initiated")
        .stdout_has("shard shard1: already added");
    c.run(&["cluster", "start", "ready"]).ok();
    wait_started(&c.tree);
    check(&c);
    assert_eq!((initiations(), added()), (3, 2));
    c.run(&["cluster", "destroy", "ready", "--yes"]).ok();
}

const REPLICA_SET: &str = "mongod_servers:
  - {host: localhost, port: {p0}, replica_set: rs0}
  - {host: localhost, port: {p1}, replica_set: rs0}
  - {host: localhost, port: {p2}, replica_set: rs0}
";

/// display asks every node that has a process, not only the RUNNING ones: with the daemon
/// killed the members run UNSUPERVISED and still report PRIMARY / SECONDARY (they showed `-`).
#[test]
fn display_shows_the_member_states_of_nodes_running_without_supervisord() {
    let c = TestCluster::named("unsupervised-rs")
        .topology(REPLICA_SET)
        .deploy();
    let d = c.display().json();
    let daemon = d["supervisord"]["pid"].as_u64().expect("daemon pid") as u32;
    assert!(send_signal(daemon, "9"), "kill -9 {daemon}");
    assert!(wait_until(
        std::time::Duration::from_secs(5),
        || !pid_alive(daemon)
    ));

    let d = c.display().code(3).json();
    let states = d["nodes"].as_array().expect("nodes");
    assert_eq!(states.len(), 3, "{d}");
    assert!(states.iter().all(|n| n["state"] == "UNSUPERVISED"), "{d}");
    let mut members: Vec<_> = nodes(&d).into_iter().map(|n| n.3).collect();
    members.sort();
    let want = ["PRIMARY", "SECONDARY", "SECONDARY"].map(|s| Some(s.to_string()));
    assert_eq!(members, want, "{d}");
    c.run(&["cluster", "destroy", "unsupervised-rs", "--yes"])
        .ok();
}

#[test]
fn a_member_whose_data_belongs_to_another_set_is_named() {
    let c = TestCluster::named("foreignset")
        .topology(
            "mongod_servers:
  - {host: localhost, port: {p0}, replica_set: rs0}
  - {host: localhost, port: {p1}, replica_set: rs0}
",
        )
        .gen();
    // The second member's dbPath already holds the config of a set called "other".
    let data = c
        .tree
        .join("data")
        .join(format!("localhost-{}", c.ports[1]));
    std::fs::write(
        data.join("standin-replset.json"),
        format!(
            r#"{{"_id": "other", "version": 1, "members": [{{"_id": 0, "host": "localhost:{}"}}]}}"#,
            c.ports[1]
        ),
    )
    .expect("seed another set");
    c.ok(&["up"]);
    let member = format!("mongod-{} (localhost:{})", c.ports[1], c.ports[1]);
    c.ctl_run(&["start"])
        .code(1)
        .stderr_has(&format!(
            "rs0: {member}: it belongs to replica set \"other\", not \"rs0\""
        ))
        // the member's log tail
        .stderr_has("last lines of");
    // Nothing was initiated.
    let hello = mongo_command(c.ports[0], doc! { "hello": 1 });
    assert!(hello.get_str("setName").is_err(), "{hello}");
}

#[test]
fn an_uninitiated_config_set_is_explained_and_no_init_starts_processes_only() {
    let c = TestCluster::named("noinit")
        .topology(
            "mongod_servers:
  - {host: localhost, port: {p0}, replica_set: rs0}
",
        )
        .gen();
    c.ok(&["up"]);
    c.ok(&["start", "--no-init"]);
    let hello = mongo_command(c.ports[0], doc! { "hello": 1 });
    assert_eq!(
        hello.get_str("info").ok(),
        Some("Does not have a valid replica set config"),
        "--no-init leaves the set uninitiated: {hello}"
    );
    // A whole-cluster start initiates it.
    c.ok(&["start"]);
    let hello = mongo_command(c.ports[0], doc! { "hello": 1 });
    assert_eq!(hello.get_str("setName").ok(), Some("rs0"), "{hello}");
}

#[test]
fn connect_runs_the_shell_with_the_connection_string() {
    let c = TestCluster::named("shell")
        .topology("mongod_servers:\n  - {host: localhost, port: {p0}, replica_set: rs0}\n")
        .deploy();
    let uri = format!("mongodb://localhost:{}/?replicaSet=rs0", c.ports[0]);
    assert_eq!(c.run(&["cluster", "uri", "shell"]).ok().stdout.trim(), uri);

    // A fake mongosh on PATH records what it is given.
    let fake = c.scratch().join("fakebin");
    std::fs::create_dir_all(&fake).expect("mkdir");
    let record = c.scratch().join("args");
    std::fs::write(
        fake.join("mongosh"),
        format!("#!/bin/sh\necho \"$@\" > {}\n", record.display()),
    )
    .expect("fake shell");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(fake.join("mongosh"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    let path = format!(
        "{}:{}",
        fake.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = c.mup();
    cmd.env("PATH", &path);
    run_mup(cmd, &["cluster", "connect", "shell"]).ok();
    assert_eq!(
        std::fs::read_to_string(&record)
            .expect("the shell ran")
            .trim(),
        uri
    );

    // Without a shell: the connection string, and what was looked for.
    let mut cmd = c.mup();
    cmd.env("PATH", "/usr/bin:/bin");
    let out = run_mup(cmd, &["cluster", "connect", "shell"])
        .code(1)
        .stderr_has("looked for mongosh");
    assert_eq!(out.stdout.trim(), uri);
    c.run(&["cluster", "destroy", "shell", "--yes"]).ok();
}

/// With `MUP_TEST_MONGODB_BIN` naming a directory of real MongoDB binaries (mongod, mongos),
/// deploys a standalone, a replica set and a sharded cluster with them and checks them with
/// the driver. Ignored unless asked for (`--ignored`), then it needs the variable.
#[test]
#[ignore = "needs real MongoDB binaries: MUP_TEST_MONGODB_BIN=DIR cargo test real_binaries -- --ignored"]
fn real_binaries_deploy_standalone_replica_set_and_sharded() {
    let bin = std::env::var_os("MUP_TEST_MONGODB_BIN")
        .map(PathBuf::from)
        .expect("MUP_TEST_MONGODB_BIN names a directory holding real mongod and mongos");
    let cases = [
        (
            "real-standalone",
            "mongod_servers:\n  - {host: localhost, port: {p0}}\n",
            1,
        ),
        (
            "real-rs",
            "mongod_servers:
  - {host: localhost, port: {p0}, replica_set: rs0}
  - {host: localhost, port: {p1}, replica_set: rs0}
  - {host: localhost, port: {p2}, replica_set: rs0}
",
            3,
        ),
        ("real-sharded", SHARDED, 7),
    ];
    for (name, template, n) in cases {
        let (c, out) = TestCluster::named(name)
            .topology(template)
            .ports(n)
            .bin(&bin)
            .try_deploy();
        out.ok().stdout_has("is running");
        let ports = c.ports.clone();
        let router_or_first = *ports.last().expect("a port");
        let hello = mongo_command(router_or_first, doc! { "hello": 1 });
        assert!(
            hello.get_bool("isWritablePrimary").unwrap_or(false) || hello.contains_key("setName")
        );
        if name == "real-sharded" {
            let shards = mongo_command(ports[6], doc! { "listShards": 1 });
            assert_eq!(shards.get_array("shards").map(Vec::len).ok(), Some(2));
        }
        if name == "real-rs" {
            let primaries = ports
                .iter()
                .filter(|p| {
                    mongo_command(**p, doc! { "hello": 1 })
                        .get_bool("isWritablePrimary")
                        .unwrap_or(false)
                })
                .count();
            assert_eq!(primaries, 1);
        }
        c.run(&["cluster", "destroy", name, "--yes"]).ok();
    }
}
