//! `mup cluster` and `mup playground` against the real daemon and the stand-ins.

use crate::common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

const SMALL_SHARDED: &str = "config_servers:
  - {host: localhost, port: {p0}, replica_set: cfg}
mongod_servers:
  - {host: localhost, port: {p1}, replica_set: shard1}
  - {host: localhost, port: {p2}, replica_set: shard1}
mongos_servers:
  - {host: localhost, port: {p3}}
";

#[test]
fn deploy_display_stop_start_restart_destroy() {
    let mut h = Home::new(&["life"]);
    let topo = h.topology("topology.yaml", SMALL_SHARDED, 4);
    let out = h.deploy("life", &topo);
    assert!(
        out.contains(&format!("connect: mongodb://localhost:{}/", h.ports[3])),
        "{out}"
    );
    let (code, _, err) = h.run(&[
        "cluster",
        "deploy",
        "life",
        topo.to_str().expect("utf8"),
        "--bin-path",
        "fixtures/bin",
        "--yes",
    ]);
    assert_eq!(
        code, 0,
        "the same deploy again continues (here: finds it done)\n{err}"
    );
    // A gen killed while staging leaves its .mup-* files beside the tree's: what the daemon
    // and the nodes read is still this deploy's, so the same deploy still continues.
    let staged = h.cluster_dir("life").join(".mup-Xy12Zw");
    std::fs::write(&staged, "staged").expect("stage");
    let (code, _, err) = h.run(&[
        "cluster",
        "deploy",
        "life",
        topo.to_str().expect("utf8"),
        "--bin-path",
        "fixtures/bin",
        "--yes",
    ]);
    assert_eq!(code, 0, "staged leftovers are not another topology\n{err}");
    let other = h.scratch().join("other.yaml");
    std::fs::write(
        &other,
        std::fs::read_to_string(&topo)
            .expect("topology")
            .replace(&h.ports[3].to_string(), &free_port().to_string()),
    )
    .expect("write topology");
    let (code, _, err) = h.try_deploy("life", &other, &stand_in_bin());
    assert_eq!(
        code, 2,
        "another topology under an existing name is refused"
    );
    assert!(
        err.contains("already exists") && err.contains("`mup cluster start life`"),
        "{err}"
    );

    // display: every node RUNNING, with the pids the daemon reports.
    let (code, d) = h.display("life");
    assert_eq!(code, 0);
    assert_eq!(d["supervisord"]["state"], "RUNNING");
    assert_eq!(
        (d["total"].as_u64(), d["running"].as_u64()),
        (Some(4), Some(4))
    );
    let tree = h.cluster_dir("life");
    let daemon: BTreeMap<String, u64> = client_for(&tree)
        .get_all_process_info()
        .expect("info")
        .into_iter()
        .filter(|p| !is_monitoring(&p.name))
        .map(|p| (p.name, u64::from(p.pid)))
        .collect();
    assert_eq!(h.pids("life"), daemon);
    let text = h.ok(&["cluster", "display", "life"]);
    assert!(
        text.contains("Total nodes: 4, running: 4, not running: 0"),
        "{text}"
    );
    // The monitoring programs under their own heading, the metrics URL with a scrape config,
    // the events command.
    let metrics_port = read_meta(&tree)["metrics_port"]
        .as_u64()
        .expect("metrics_port");
    let url = format!("http://127.0.0.1:{metrics_port}/metrics");
    assert_eq!(d["metrics_url"], url.as_str());
    let monitoring: Vec<&str> = d["monitoring"]
        .as_array()
        .expect("monitoring")
        .iter()
        .map(|m| {
            assert_eq!(m["state"], "RUNNING", "{m}");
            m["program"].as_str().expect("program")
        })
        .collect();
    assert_eq!(monitoring, ["mup-events", "mup-metrics"]);
    for want in [
        "\nMonitoring\n",
        &format!("Metrics:     {url}"),
        "- job_name: mup-life",
        &format!("- targets: [\"127.0.0.1:{metrics_port}\"]"),
        "mup cluster events life",
    ] {
        assert!(text.contains(want), "{want:?} in:\n{text}");
    }
    // What the event listener saw of the deploy: every node STARTING then RUNNING.
    let events = h.ok(&["cluster", "events", "life", "--json"]);
    for name in daemon.keys() {
        for to in ["STARTING", "RUNNING"] {
            assert!(
                events.contains(&format!("\"program\":\"{name}\",\"group\""))
                    && events
                        .lines()
                        .any(|l| l.contains(&format!("\"program\":\"{name}\""))
                            && l.contains(&format!("\"to\":\"{to}\""))),
                "{name} {to} in:\n{events}"
            );
        }
    }

    // stop: no process left, the daemon gone; display still works and exits 3.
    let daemon_pid = client_for(&tree).get_pid().expect("pid");
    h.ok(&["cluster", "stop", "life"]);
    assert!(!pid_alive(daemon_pid));
    for pid in daemon.values() {
        assert!(!pid_alive(*pid as u32));
    }
    let (code, d) = h.display("life");
    assert_eq!(code, 3);
    assert_eq!(d["supervisord"]["state"], "DOWN");
    assert!(d["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .all(|n| n["state"] == "STOPPED"));

    // start, then restart only the mongod role.
    h.ok(&["cluster", "start", "life"]);
    let before = h.pids("life");
    assert!(before.values().all(|p| *p > 0));
    h.ok(&["cluster", "restart", "life", "-R", "mongod"]);
    let after = h.pids("life");
    for (name, pid) in &before {
        assert_eq!(after[name] != *pid, name.starts_with("mongod-"), "{name}");
    }
    // -N picks one node (localhost and 127.0.0.1 are the same machine).
    h.ok(&[
        "cluster",
        "stop",
        "life",
        "-N",
        &format!("127.0.0.1:{}", h.ports[2]),
    ]);
    assert_eq!(h.pids("life")[&format!("mongod-{}", h.ports[2])], 0);
    h.ok(&[
        "cluster",
        "start",
        "life",
        "-N",
        &format!("localhost:{}", h.ports[2]),
    ]);

    // destroy: tree gone, every port free.
    let out = h.ok(&["cluster", "destroy", "life", "--yes"]);
    assert!(out.contains("cluster life destroyed"), "{out}");
    assert!(out.contains(&format!(", {metrics_port})")), "{out}");
    assert!(!tree.exists());
    for p in h.ports.iter().chain([&(metrics_port as u16)]) {
        assert!(!port_answers(*p), "port {p} free");
    }
    let (code, _, _) = h.run(&["cluster", "display", "life"]);
    assert_eq!(code, 2);
}

#[test]
fn two_clusters_side_by_side_get_their_own_daemon_ports() {
    let mut h = Home::new(&["alpha", "beta"]);
    let rs = "mongod_servers:\n  - {host: localhost, port: {p0}, replica_set: rs0}\n";
    let a = h.topology("a.yaml", rs, 1);
    let b = h.topology("b.yaml", rs, 1);
    h.deploy("alpha", &a);
    h.deploy("beta", &b);
    let (_, da) = h.display("alpha");
    let (_, db) = h.display("beta");
    assert_ne!(da["supervisord"]["url"], db["supervisord"]["url"]);
    assert_eq!(
        (da["running"].as_u64(), db["running"].as_u64()),
        (Some(1), Some(1))
    );
    let list = h.ok(&["cluster", "list", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&list).expect("json");
    let states: Vec<(&str, &str)> = rows
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["name"].as_str().expect("n"),
                r["supervisord"].as_str().expect("s"),
            )
        })
        .filter(|(name, _)| ["alpha", "beta"].contains(name)) // the home is shared
        .collect();
    assert_eq!(states, vec![("alpha", "RUNNING"), ("beta", "RUNNING")]);
    h.ok(&["cluster", "destroy", "alpha", "--keep-data", "--yes"]);
    assert!(
        h.cluster_dir("alpha").join("data").is_dir(),
        "--keep-data keeps the data"
    );
    assert!(!h.cluster_dir("alpha").join("meta.yaml").exists());
    h.ok(&["cluster", "destroy", "beta", "--yes"]);
}

#[test]
fn twenty_concurrent_invocations_never_corrupt_or_double_start() {
    let mut h = Home::new(&["storm"]);
    let topo = h.topology("topology.yaml", SMALL_SHARDED, 4);
    h.deploy("storm", &topo);
    let verbs: [&[&str]; 4] = [
        &["cluster", "display", "storm"],
        &["cluster", "start", "storm"],
        &["cluster", "stop", "storm"],
        &["cluster", "restart", "storm", "-R", "mongod"],
    ];
    std::thread::scope(|s| {
        for i in 0..20 {
            let args = verbs[i % 4];
            let h = &h;
            s.spawn(move || {
                // Mutating commands wait for each other on the cluster lock (up to 20 of
                // them in a row here: allow for it).
                let o = mup(h.path())
                    .env("MUP_LOCK_TIMEOUT", "600")
                    .args(args)
                    .output()
                    .expect("run mup");
                let code = o.status.code().unwrap_or(-1);
                let (out, err) = (
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr),
                );
                if args[1] == "display" {
                    // No lock: it may see the daemon stopped (exit 3) or going down under it.
                    let valid = (code == 0 || code == 3) && out.contains("Cluster:     storm")
                        || code == 1 && err.contains("supervisord");
                    assert!(valid, "{args:?} exit {code}: {out}{err}");
                } else {
                    // Serialized by the lock, each one succeeds on the state the last left.
                    assert_eq!(code, 0, "{args:?}: {out}{err}");
                }
            });
        }
    });
    let tree = h.cluster_dir("storm");
    let meta: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(tree.join("meta.yaml")).expect("meta"))
            .expect("meta.yaml parses");
    assert_eq!(meta["name"], "storm");
    // A consistent end: start converges, then every node has exactly one stand-in, the one
    // supervisord reports, holding its lock.
    h.ok(&["cluster", "start", "storm"]);
    wait_started(&tree);
    let (code, d) = h.display("storm");
    assert_eq!(code, 0, "{d}");
    for n in d["nodes"].as_array().expect("nodes") {
        let port: u16 = n["id"]
            .as_str()
            .and_then(|id| id.rsplit(':').next()?.parse().ok())
            .expect("port");
        assert_eq!(
            mup::listener_pid(port).map(u64::from),
            n["pid"].as_u64(),
            "{n}"
        );
    }
    // No stand-in ever found its port or dbPath taken by another.
    for log in std::fs::read_dir(tree.join("logs"))
        .expect("logs")
        .flatten()
    {
        let text = std::fs::read_to_string(log.path()).unwrap_or_default();
        assert!(
            !text.contains("Address already in use"),
            "{}: {text}",
            log.path().display()
        );
        assert!(
            !text.contains("another mongod is using this dbPath"),
            "{}",
            log.path().display()
        );
    }
}

/// Initiates a one-member set on `port` and waits for it to be primary, as any client would.
fn initiate_one(port: u16, rs: &str) {
    use mongodb::bson::doc;
    let members = vec![doc! { "_id": 0, "host": format!("localhost:{port}") }];
    mongo_command(
        port,
        doc! { "replSetInitiate": { "_id": rs, "members": members } },
    );
    assert!(wait_until(Duration::from_secs(10), || {
        mongo_command(port, doc! { "hello": 1 })
            .get_bool("isWritablePrimary")
            .unwrap_or(false)
    }));
}

/// Starts a stand-in the way the Go mup did: directly, tracked only by its pid.
fn legacy_node(
    dir: &Path,
    kind: &str,
    port: u16,
    rs: Option<&str>,
    config_db: &str,
) -> (u32, PathBuf, PathBuf) {
    let node_dir = dir.join(format!("{kind}-{port}"));
    let data = node_dir.join("data");
    std::fs::create_dir_all(&data).expect("mkdir");
    std::fs::write(data.join("MARKER"), format!("data of {port}")).expect("marker");
    let conf = node_dir.join(format!("{kind}.conf"));
    let mut text =
        format!("net:\n  port: {port}\n  bindIp: 127.0.0.1\nprocessManagement:\n  fork: false\n");
    if kind != "mongos" {
        text.push_str(&format!("storage:\n  dbPath: {}\n", data.display()));
    }
    if let Some(rs) = rs {
        text.push_str(&format!("replication:\n  replSetName: {rs}\n"));
    }
    if kind == "mongos" {
        text.push_str(&format!("sharding:\n  configDB: {config_db}\n"));
    }
    std::fs::write(&conf, text).expect("conf");
    let bin = stand_in_bin().join(if kind == "mongos" { "mongos" } else { "mongod" });
    let child = std::process::Command::new(bin)
        .arg("--config")
        .arg(&conf)
        .stdout(std::fs::File::create(node_dir.join("process.log")).expect("log"))
        .spawn()
        .expect("spawn stand-in");
    let pid = child.id();
    assert!(wait_until(Duration::from_secs(10), || port_answers(port)));
    // Reap it in the background so a stopped legacy node does not linger as a zombie.
    std::thread::spawn(move || {
        let mut child = child;
        let _ = child.wait();
    });
    (pid, conf, data)
}

#[test]
fn migrate_moves_a_pid_tracked_cluster_under_supervisord_with_its_data_in_place() {
    let mut h = Home::new(&["legacy"]);
    let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
    h.ports.extend(&ports);
    let cluster = h.cluster_dir("legacy");
    let nodes_dir = h.scratch().join("go-mup-nodes");
    let cfg = format!("cfg/localhost:{}", ports[0]);
    let specs = [
        ("config", ports[0], Some("cfg")),
        ("mongod", ports[1], Some("shard1")),
        ("mongod", ports[2], Some("shard1")),
        ("mongos", ports[3], None),
    ];
    let mut yaml = format!("name: legacy\nversion: \"7.0.14\"\nvariant: mongo\nbin_path: {}\ncreated_at: 2025-01-02T03:04:05Z\nstatus: running\ndeploy_mode: local\nnodes:\n", stand_in_bin().display());
    let mut legacy = Vec::new();
    for (kind, port, rs) in specs {
        let (pid, conf, data) = legacy_node(&nodes_dir, kind, port, rs, &cfg);
        if let Some(rs) = rs.filter(|_| kind != "mongos") {
            // The Go mup initiated its sets; a mongos listens only once cfg has a primary.
            if !legacy.iter().any(|(_, _, _, _, set)| *set == Some(rs)) {
                initiate_one(port, rs);
            }
        }
        yaml.push_str(&format!(
            "  - type: {kind}\n    host: localhost\n    port: {port}\n"
        ));
        if let Some(rs) = rs {
            yaml.push_str(&format!("    replica_set: {rs}\n"));
        }
        if kind != "mongos" {
            yaml.push_str(&format!("    data_dir: {}\n", data.display()));
        }
        yaml.push_str(&format!(
            "    config_file: {}\n    pid: {pid}\n",
            conf.display()
        ));
        legacy.push((kind, port, pid, data, rs));
    }
    std::fs::create_dir_all(&cluster).expect("mkdir");
    std::fs::write(cluster.join("meta.yaml"), &yaml).expect("legacy meta");

    // Other commands tell the user to migrate.
    let (code, _, err) = h.run(&["cluster", "display", "legacy"]);
    assert_eq!(code, 2);
    assert!(err.contains("mup cluster migrate"), "{err}");

    let out = {
        let _ports = allocation_lock();
        h.ok(&["cluster", "migrate", "legacy"])
    };
    assert!(out.contains("cluster legacy migrated"), "{out}");
    wait_started(&cluster);
    let (code, d) = h.display("legacy");
    assert_eq!(code, 0, "{d}");
    for (kind, port, old_pid, data, _) in &legacy {
        assert!(!pid_alive(*old_pid), "legacy {kind} pid {old_pid} is gone");
        let node = d["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .find(|n| n["id"] == format!("localhost:{port}"))
            .expect("node");
        assert_eq!(node["state"], "RUNNING");
        assert_ne!(node["pid"].as_u64(), Some(u64::from(*old_pid)));
        if *kind != "mongos" {
            assert_eq!(
                node["data_dir"].as_str(),
                Some(data.to_str().expect("utf8")),
                "data dir kept in place"
            );
            assert_eq!(
                std::fs::read_to_string(data.join("MARKER")).expect("marker"),
                format!("data of {port}")
            );
        }
    }
    let meta = std::fs::read_to_string(cluster.join("meta.yaml")).expect("meta");
    assert!(
        meta.contains("supervisor_enabled: true") && !meta.contains("pid:"),
        "{meta}"
    );
    assert_eq!(
        std::fs::read_to_string(cluster.join("meta.yaml.legacy")).expect("kept"),
        yaml
    );

    let again = h.ok(&["cluster", "migrate", "legacy"]);
    assert!(again.contains("already managed by supervisord"), "{again}");
}

#[test]
fn playground_start_status_stop_destroy() {
    let _ports = allocation_lock(); // for the whole test: the playground holds 30000..
    let h = Home::new(&["playground"]);
    let bin = stand_in_bin();
    let out = h.ok(&[
        "playground",
        "start",
        "--bin-path",
        bin.to_str().expect("utf8"),
    ]);
    let uri = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("connect: "))
        .expect("connection string")
        .to_string();
    assert!(
        uri.ends_with("/?replicaSet=rs0") && uri.matches("localhost:").count() == 3,
        "{uri}"
    );
    wait_started(&h.cluster_dir("playground"));
    let (_, d) = h.display("playground");
    let mut ports: Vec<u16> = d["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            n["id"]
                .as_str()
                .and_then(|i| i.rsplit(':').next()?.parse().ok())
                .expect("port")
        })
        .collect();
    ports.sort();
    assert_eq!(d["running"].as_u64(), Some(3));
    // rs0 is initiated: one primary, as a client sees it.
    let primaries: Vec<u16> = ports
        .iter()
        .copied()
        .filter(|p| {
            let hello = mongo_command(*p, mongodb::bson::doc! { "hello": 1 });
            assert_eq!(hello.get_str("setName").ok(), Some("rs0"), "{hello}");
            hello.get_bool("isWritablePrimary").unwrap_or(false)
        })
        .collect();
    assert_eq!(primaries.len(), 1, "{primaries:?}");
    let states: Vec<&str> = d["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["member_state"].as_str())
        .collect();
    assert_eq!(states.iter().filter(|s| **s == "PRIMARY").count(), 1, "{d}");
    let status = h.ok(&["playground", "status"]);
    assert!(status.contains(&format!("Connect:     {uri}")), "{status}");
    h.ok(&["playground", "stop"]);
    let (code, _, _) = h.run(&["playground", "status"]);
    assert_eq!(code, 3);
    h.ok(&["playground", "start"]);
    wait_started(&h.cluster_dir("playground"));
    assert_eq!(h.display("playground").1["running"].as_u64(), Some(3));
    h.ok(&["playground", "destroy"]);
    assert!(!h.cluster_dir("playground").exists());
    for p in ports {
        assert!(!port_answers(p));
    }
}

/// `mup ARGS` (under `mup_home`) with its stdout a pipe whose reader is closed before mup
/// writes a byte: every write fails with EPIPE.
fn with_closed_stdout(mup_home: &Path, args: &[&str]) -> std::process::Output {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    std::process::Command::new(env!("CARGO_BIN_EXE_mup"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", mup_home.join("home"))
        .env("MUP_HOME", mup_home)
        .env("MUP_SUPERVISORD", supervisord())
        .stdout(writer)
        .output()
        .expect("run mup")
}

/// A `--bin-path` holding the stand-in `mongod` (a link) and, when given, `mongos` as a script.
fn bin_dir(dir: &Path, mongos: Option<&str>) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir bin");
    std::os::unix::fs::symlink(stand_in_bin().join("mongod"), bin.join("mongod")).expect("link");
    if let Some(script) = mongos {
        std::fs::write(bin.join("mongos"), script).expect("write mongos");
        std::fs::set_permissions(bin.join("mongos"), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }
    bin
}

#[test]
fn deploy_checks_supervisord_and_every_binary_before_writing_anything() {
    let mut h = Home::new(&["nodaemon", "nomongos"]);
    let topo = h.topology("prereq.yaml", SMALL_SHARDED, 4);
    let topo = topo.to_str().expect("utf8");
    // No supervisord where mup looks: MUP_SUPERVISORD empty, none on PATH, no `mup setup` copy.
    let empty = h.scratch().join("empty-path");
    std::fs::create_dir(&empty).expect("mkdir");
    let bins = stand_in_bin();
    let out = mup(h.path())
        .env("MUP_SUPERVISORD", "")
        .env("PATH", &empty)
        .args(["cluster", "deploy", "nodaemon", topo, "--version", "7.0.14"])
        .args(["--bin-path", bins.to_str().expect("utf8"), "--yes"])
        .output()
        .expect("run mup");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("supervisord not found") && err.contains("nothing was written"),
        "{err}"
    );
    assert!(!h.cluster_dir("nodaemon").exists(), "nothing was written");

    // mongod but no mongos: named before anything is written or started.
    let bin = bin_dir(h.scratch(), None);
    let (code, _, err) = h.try_deploy("nomongos", Path::new(topo), &bin);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "has no executable mongos (needed by mongos-{})",
            h.ports[3]
        )) && err.contains("nothing was written"),
        "{err}"
    );
    assert!(!h.cluster_dir("nomongos").exists(), "nothing was written");
    for p in &h.ports {
        assert!(!port_answers(*p), "nothing was started on {p}");
    }
}

/// The `[done/total]` counts of `-v` progress lines.
fn progress_counts(out: &str) -> Vec<(usize, usize)> {
    out.lines()
        .filter_map(|l| {
            let (count, _) = l.strip_prefix('[')?.split_once(']')?;
            let (done, total) = count.split_once('/')?;
            Some((done.parse().ok()?, total.parse().ok()?))
        })
        .collect()
}

#[test]
fn a_deploy_that_stopped_short_says_what_is_left_and_the_same_deploy_finishes_it() {
    let mut h = Home::new(&["unfinished"]);
    let topo = h.topology("unfinished.yaml", SMALL_SHARDED, 4);
    let topo_arg = topo.to_str().expect("utf8");
    // Routers that cannot start: every attempt exits 3 at once.
    let bin = bin_dir(
        h.scratch(),
        Some("#!/bin/sh\necho 'no router here'\nexit 3\n"),
    );
    let bin_arg = bin.to_str().expect("utf8");
    let deploy = [
        "cluster",
        "deploy",
        "unfinished",
        topo_arg,
        "--bin-path",
        bin_arg,
    ];
    let mongos = format!("mongos-{}", h.ports[3]);
    let _ports = allocation_lock();

    // 1. Ctrl-C once the shards answer: exit 130, saying what is left and how to go on.
    let mut child = mup_process(h.path())
        .arg("-v")
        .args(deploy)
        .arg("--yes")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn mup");
    let stdout = child.stdout.take().expect("stdout");
    let seen = std::io::BufRead::lines(std::io::BufReader::new(stdout))
        .map_while(Result::ok)
        .find(|l| l.starts_with("mongod answer:"));
    if seen.is_none() {
        let out = child.wait_with_output().expect("output");
        panic!(
            "the shards never answered: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(interrupted.success());
    assert!(
        wait_until(Duration::from_secs(30), || child
            .try_wait()
            .is_ok_and(|s| s.is_some())),
        "mup ended after Ctrl-C"
    );
    let out = child.wait_with_output().expect("output");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    for want in [
        "interrupted (Ctrl-C) while deploying cluster unfinished",
        "supervisord (pid ",
        "of 4 node(s) are left running",
        "run the same `mup cluster deploy` again",
    ] {
        assert!(err.contains(want), "{want:?} in:\n{err}");
    }

    // 2. The same deploy continues, and fails naming the router that does not run.
    let (code, _, err) = h.run(&[&deploy[..], &["--yes"]].concat());
    assert_eq!(code, 1, "{err}");
    for want in [
        format!("{mongos} (localhost:{}) went FATAL", h.ports[3]),
        "no router here".to_string(),
        "deploy of cluster unfinished did not finish".to_string(),
        "3 of 4 node(s) are left running".to_string(),
        "run the same `mup cluster deploy` again".to_string(),
    ] {
        assert!(err.contains(&want), "{want:?} in:\n{err}");
    }
    let before = h.pids("unfinished");
    assert_eq!(before[&mongos], 0, "{before:?}");

    // 3. With a router that works, the same deploy finishes: the running nodes are kept, the
    //    sets are not initiated again, and the progress only counts up, to the end.
    std::fs::remove_file(bin.join("mongos")).expect("rm mongos");
    std::os::unix::fs::symlink(stand_in_bin().join("mongod"), bin.join("mongos")).expect("link");
    let (code, out, err) = h.run(&[&["-v"][..], &deploy[..], &["--yes"]].concat());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("cfg: already initiated"), "{out}");
    assert!(out.contains("shard shard1 added"), "{out}");
    let counts = progress_counts(&out);
    assert!(!counts.is_empty(), "progress lines in:\n{out}");
    assert!(
        counts.windows(2).all(|w| w[0].0 <= w[1].0),
        "the count never goes back: {counts:?}"
    );
    assert_eq!(
        counts.last(),
        Some(&(6, 6)),
        "4 nodes and 2 monitoring programs"
    );
    let after = h.pids("unfinished");
    for (name, pid) in &before {
        if *name != mongos {
            assert_eq!(after[name], *pid, "{name} kept running");
        }
    }
    assert!(after[&mongos] > 0);
    h.ok(&["cluster", "destroy", "unfinished", "--yes"]);
}

/// `mup … | head` under `set -o pipefail`: when the reader has closed the pipe, mup ends
/// quietly with exit 0 (as ripgrep does), not 141 and not a panic.
#[test]
fn a_closed_stdout_ends_quietly_with_success() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for args in [
        &["cluster", "list", "--json"][..],
        &["completions", "bash"][..],
    ] {
        let out = with_closed_stdout(&tmp.path().join("mup-home"), args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "mup {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "mup {args:?}");
    }
}

/// deploy reads the version `mongod --version` starts its line with, even when the build
/// prints more after it; a line without a version is refused naming the binary.
#[test]
fn deploy_reads_the_leading_version_of_mongod() {
    let mut h = Home::new(&["buildver", "nover"]);
    let topo = h.topology(
        "topology.yaml",
        "mongod_servers:\n  - host: localhost\n    port: {p0}\n",
        1,
    );
    let deploy = |name: &str, says: &str| {
        let _ports = allocation_lock();
        let out = mup(h.path())
            .env("MUP_STANDIN_VERSION", says)
            .args(["cluster", "deploy", name])
            .arg(&topo)
            .arg("--bin-path")
            .arg(stand_in_bin())
            .arg("--yes")
            .output()
            .expect("run mup");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = deploy("buildver", "7.0.14 (build)");
    assert_eq!(code, Some(0), "{out}\n{err}");
    let (_, d) = h.display("buildver");
    assert_eq!(d["version"], "7.0.14", "{d}");
    h.ok(&["cluster", "destroy", "buildver", "--yes"]);

    let (code, out, err) = deploy("nover", "banana (build)");
    assert_eq!(code, Some(2), "{out}\n{err}");
    assert_eq!(
        err,
        format!(
            "error: {}: --version: \"db version vbanana (build)\" does not start with a MongoDB version like 7.0.14: pass --version\n",
            stand_in_bin().join("mongod").display()
        )
    );
    assert!(!h.cluster_dir("nover").exists(), "nothing written");
}

/// With no playground, every playground command says so in its own words: no `NAME` the
/// user never typed.
#[test]
fn playground_commands_without_a_playground_say_so() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("mup-home");
    for verb in ["connect", "status", "stop", "destroy"] {
        let out = mup(&home)
            .args(["playground", verb])
            .output()
            .expect("run mup");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!(
                "error: mup playground: there is no playground (under {}): `mup playground start` makes one\n",
                home.join("storage/clusters").display()
            ),
            "playground {verb}"
        );
        assert_eq!(out.status.code(), Some(2), "playground {verb}");
    }
}

/// `mup cluster deploy … --yes | head -1` (or `| grep -q`): a reader that stops reading must
/// not stop the deploy half-way and have it report success. The output is dropped, the work
/// is done, and the exit code is the command's own.
#[test]
fn a_closed_stdout_does_not_cut_a_deploy_short() {
    let mut h = Home::new(&["pipedeploy"]);
    let topo = h.topology(
        "topology.yaml",
        "mongod_servers:\n  - {host: localhost, port: {p0}, replica_set: rs0}\n",
        1,
    );
    let _ports = allocation_lock();
    let bin = stand_in_bin();
    let (topo, bin) = (topo.to_str().expect("utf8"), bin.to_str().expect("utf8"));
    let args = [
        "cluster",
        "deploy",
        "pipedeploy",
        topo,
        "--bin-path",
        bin,
        "--yes",
    ];
    let out = with_closed_stdout(h.path(), &args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The deploy returns once the node answers; RUNNING comes after supervisord's startsecs.
    wait_started(&h.cluster_dir("pipedeploy"));
    let (code, d) = h.display("pipedeploy");
    assert_eq!(code, 0, "{d}");
    assert_eq!(d["supervisord"]["state"], "RUNNING", "{d}");
    assert_eq!(
        (d["total"].as_u64(), d["running"].as_u64()),
        (Some(1), Some(1)),
        "{d}"
    );
}

/// deploy runs `mongod --version` within bounds: a mongod that hangs, or prints without
/// end, fails the deploy naming the program and the limit, killed with its process group;
/// mup neither hangs nor aborts.
#[test]
fn deploy_bounds_mongod_version() {
    use std::os::unix::fs::PermissionsExt;
    let mut h = Home::new(&["hangs", "chatty"]);
    let topo = h.topology(
        "topology.yaml",
        "mongod_servers:\n  - host: localhost\n    port: {p0}\n",
        1,
    );
    let bins = tempfile::tempdir().expect("tempdir");
    let pidfile = bins.path().join("sleep.pid");
    for (name, script) in [
        (
            "hangs",
            format!(
                "#!/bin/sh\nsleep 100000 &\necho $! > {}\nwait\n",
                pidfile.display()
            ),
        ),
        (
            "chatty",
            "#!/bin/sh\nexec yes 'db version v7.0.14'\n".to_string(),
        ),
    ] {
        let dir = bins.path().join(name);
        std::fs::create_dir(&dir).expect("mkdir");
        let mongod = dir.join("mongod");
        std::fs::write(&mongod, script).expect("write mongod");
        std::fs::set_permissions(&mongod, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let deploy = |name: &str| {
        let out = mup(h.path())
            .args(["cluster", "deploy", name])
            .arg(&topo)
            .arg("--bin-path")
            .arg(bins.path().join(name))
            .arg("--yes")
            .output()
            .expect("run mup");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let mongod = |name: &str| bins.path().join(name).join("mongod").display().to_string();

    let (code, err) = deploy("hangs");
    assert_eq!(
        err,
        format!("error: `{} --version` did not finish within 10 s (killed it and its process group); check that it is a working mongod, or pass --version\n", mongod("hangs"))
    );
    assert_eq!(code, Some(1));
    let sleeper: u32 = std::fs::read_to_string(&pidfile)
        .expect("the fake mongod started its child")
        .trim()
        .parse()
        .expect("a pid");
    assert!(
        !std::path::Path::new(&format!("/proc/{sleeper}")).exists()
            || std::fs::read_to_string(format!("/proc/{sleeper}/stat"))
                .is_ok_and(|s| s.contains(") Z ")),
        "the fake mongod's child {sleeper} outlived the deploy"
    );

    let (code, err) = deploy("chatty");
    assert_eq!(
        err,
        format!("error: `{} --version` printed more than 65536 bytes (killed it and its process group); check that it is a working mongod, or pass --version\n", mongod("chatty"))
    );
    assert_eq!(code, Some(1));
    for name in ["hangs", "chatty"] {
        assert!(!h.cluster_dir(name).exists(), "nothing written for {name}");
    }
}

/// `cluster display --json` of a cluster whose daemon is frozen (SIGSTOP) prints the document
/// (daemon UNRESPONSIVE, nodes UNKNOWN) and fails saying the call timed out.
#[test]
fn display_json_of_a_frozen_daemon_is_a_document() {
    let mut h = Home::new(&["frozendisplay"]);
    let topo = h.topology(
        "topology.yaml",
        "mongod_servers:\n  - host: localhost\n    port: {p0}\n",
        1,
    );
    h.deploy("frozendisplay", &topo);
    let dir = h.cluster_dir("frozendisplay");
    let daemon: u32 = std::fs::read_to_string(dir.join("supervisor.pid"))
        .expect("supervisor.pid")
        .trim()
        .parse()
        .expect("a pid");
    let kill = |signal: &str| {
        std::process::Command::new("kill")
            .args([signal, &daemon.to_string()])
            .status()
            .expect("run kill")
    };
    assert!(kill("-STOP").success());
    let (code, out, err) = h.run(&["cluster", "display", "frozendisplay", "--json"]);
    // Stopped by signal before anything is asserted, so nothing is left frozen.
    let (down_code, down_out, down_err) =
        h.run(&["ctl", "--dir", dir.to_str().expect("utf8"), "down"]);
    let _ = kill("-CONT");

    assert_eq!(code, 1, "{out}\n{err}");
    let d: serde_json::Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("display --json is not JSON ({e}):\n{out}\n{err}"));
    assert_eq!(d["supervisord"]["state"], "UNRESPONSIVE", "{d}");
    assert_eq!(d["supervisord"]["pid"], daemon, "{d}");
    let nodes = d["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 1, "{d}");
    assert_eq!(nodes[0]["state"], "UNKNOWN", "{d}");
    assert!(
        err.contains("did not answer within 10 s (timed out)"),
        "{err}"
    );
    assert_eq!(down_code, 0, "{down_out}\n{down_err}");
    assert!(
        down_out.contains("it was stopped with SIGTERM"),
        "{down_out}"
    );
}
