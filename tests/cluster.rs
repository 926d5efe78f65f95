//! `mup cluster` and `mup playground` against the real daemon and the stand-ins.

use crate::common::*;
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
    let (c, out) = TestCluster::named("life")
        .topology(SMALL_SHARDED)
        .try_deploy();
    out.ok()
        .stdout_has(&format!("connect: mongodb://localhost:{}/", c.ports[3]));
    wait_started(&c.tree);
    let topo = c.topology_file();
    let again = [
        "cluster",
        "deploy",
        "life",
        topo.to_str().expect("utf8"),
        "--bin-path",
        "fixtures/bin",
        "--yes",
    ];
    // The same deploy again continues (here: finds it done).
    c.run(&again).ok();
    // A gen killed while staging leaves its .mup-* files beside the tree's: what the daemon
    // and the nodes read is still this deploy's, so the same deploy still continues (staged
    // leftovers are not another topology).
    let staged = c.tree.join(".mup-Xy12Zw");
    std::fs::write(&staged, "staged").expect("stage");
    c.run(&again).ok();
    // Another topology under an existing name is refused.
    let other = c.scratch().join("other.yaml");
    std::fs::write(
        &other,
        std::fs::read_to_string(&topo)
            .expect("topology")
            .replace(&c.ports[3].to_string(), &free_port().to_string()),
    )
    .expect("write topology");
    c.run(&[
        "cluster",
        "deploy",
        "life",
        other.to_str().expect("utf8"),
        "--bin-path",
        stand_in_bin().to_str().expect("utf8"),
        "--yes",
    ])
    .code(2)
    .stderr_has("already exists")
    .stderr_has("`mup cluster start life`");

    // display: every node RUNNING, with the pids the daemon reports.
    let d = c.display().ok().json();
    assert_eq!(d["supervisord"]["state"], "RUNNING");
    assert_eq!(
        (d["total"].as_u64(), d["running"].as_u64()),
        (Some(4), Some(4))
    );
    let tree = c.tree.clone();
    let daemon = c.pids();
    assert_eq!(daemon.len(), 4);
    assert_eq!(shown_pids(&d), daemon);
    let text = c
        .run(&["cluster", "display", "life"])
        .ok()
        .stdout_has("Total nodes: 4, running: 4, not running: 0")
        .stdout;
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
    let events = c.run(&["cluster", "events", "life", "--json"]).ok().stdout;
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
    let daemon_pid = c.client().get_pid().expect("pid");
    c.run(&["cluster", "stop", "life"]).ok();
    assert!(!pid_alive(daemon_pid));
    for pid in daemon.values() {
        assert!(!pid_alive(*pid));
    }
    let d = c.display().code(3).json();
    assert_eq!(d["supervisord"]["state"], "DOWN");
    assert!(d["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .all(|n| n["state"] == "STOPPED"));

    // start, then restart only the mongod role.
    c.run(&["cluster", "start", "life"]).ok();
    let before = c.pids();
    assert!(before.values().all(|p| *p > 0));
    c.run(&["cluster", "restart", "life", "-R", "mongod"]).ok();
    let after = c.pids();
    for (name, pid) in &before {
        assert_eq!(after[name] != *pid, name.starts_with("mongod-"), "{name}");
    }
    // -N picks one node (localhost and 127.0.0.1 are the same machine).
    let node = |host: &str| format!("{host}:{}", c.ports[2]);
    c.run(&["cluster", "stop", "life", "-N", &node("127.0.0.1")])
        .ok();
    assert_eq!(c.pids()[&format!("mongod-{}", c.ports[2])], 0);
    c.run(&["cluster", "start", "life", "-N", &node("localhost")])
        .ok();

    // destroy: tree gone, every port free.
    c.run(&["cluster", "destroy", "life", "--yes"])
        .ok()
        .stdout_has("cluster life destroyed")
        .stdout_has(&format!(", {metrics_port})"));
    assert!(!tree.exists());
    for p in c.ports.iter().chain([&(metrics_port as u16)]) {
        assert!(!port_answers(*p), "port {p} free");
    }
    c.run(&["cluster", "display", "life"]).code(2);
}

#[test]
fn two_clusters_side_by_side_get_their_own_daemon_ports() {
    let rs = "mongod_servers:\n  - {host: localhost, port: {p0}, replica_set: rs0}\n";
    let alpha = TestCluster::named("alpha").topology(rs).deploy();
    let beta = TestCluster::named("beta").topology(rs).deploy();
    let da = alpha.display().json();
    let db = beta.display().json();
    assert_ne!(da["supervisord"]["url"], db["supervisord"]["url"]);
    assert_eq!(
        (da["running"].as_u64(), db["running"].as_u64()),
        (Some(1), Some(1))
    );
    let rows = alpha.run(&["cluster", "list", "--json"]).ok().json();
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
    alpha
        .run(&["cluster", "destroy", "alpha", "--keep-data", "--yes"])
        .ok();
    assert!(
        alpha.tree.join("data").is_dir(),
        "--keep-data keeps the data"
    );
    assert!(!alpha.tree.join("meta.yaml").exists());
    beta.run(&["cluster", "destroy", "beta", "--yes"]).ok();
}

#[test]
fn twenty_concurrent_invocations_never_corrupt_or_double_start() {
    let c = TestCluster::named("storm").topology(SMALL_SHARDED).deploy();
    let verbs: [&[&str]; 4] = [
        &["cluster", "display", "storm"],
        &["cluster", "start", "storm"],
        &["cluster", "stop", "storm"],
        &["cluster", "restart", "storm", "-R", "mongod"],
    ];
    std::thread::scope(|s| {
        for i in 0..20 {
            let args = verbs[i % 4];
            let c = &c;
            s.spawn(move || {
                // Mutating commands wait for each other on the cluster lock (up to 20 of
                // them in a row here: allow for it).
                let mut cmd = c.mup();
                cmd.env("MUP_LOCK_TIMEOUT", "600");
                let (code, out, err) = run_mup(cmd, args).parts();
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
    let tree = c.tree.clone();
    let meta: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(tree.join("meta.yaml")).expect("meta"))
            .expect("meta.yaml parses");
    assert_eq!(meta["name"], "storm");
    // A consistent end: start converges, then every node has exactly one stand-in, the one
    // supervisord reports, holding its lock.
    c.run(&["cluster", "start", "storm"]).ok();
    wait_started(&tree);
    let d = c.display().ok().json();
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
    let c = TestCluster::named("legacy").ports(4).guard();
    let ports = c.ports.clone();
    let cluster = c.tree.clone();
    let nodes_dir = c.scratch().join("go-mup-nodes");
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
    c.run(&["cluster", "display", "legacy"])
        .code(2)
        .stderr_has("mup cluster migrate");

    {
        let _ports = allocation_lock();
        c.run(&["cluster", "migrate", "legacy"])
            .ok()
            .stdout_has("cluster legacy migrated");
    }
    wait_started(&cluster);
    let d = c.display().ok().json();
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

    c.run(&["cluster", "migrate", "legacy"])
        .ok()
        .stdout_has("already managed by supervisord");
}

#[test]
fn playground_start_status_stop_destroy() {
    let _ports = allocation_lock(); // for the whole test: the playground holds 30000..
    let c = TestCluster::named("playground").guard();
    let bin = stand_in_bin();
    let out = c
        .run(&[
            "playground",
            "start",
            "--bin-path",
            bin.to_str().expect("utf8"),
        ])
        .ok()
        .stdout;
    let uri = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("connect: "))
        .expect("connection string")
        .to_string();
    assert!(
        uri.ends_with("/?replicaSet=rs0") && uri.matches("localhost:").count() == 3,
        "{uri}"
    );
    wait_started(&c.tree);
    let d = c.display().json();
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
    c.run(&["playground", "status"])
        .ok()
        .stdout_has(&format!("Connect:     {uri}"));
    c.run(&["playground", "stop"]).ok();
    c.run(&["playground", "status"]).code(3);
    c.run(&["playground", "start"]).ok();
    wait_started(&c.tree);
    assert_eq!(c.display().json()["running"].as_u64(), Some(3));
    c.run(&["playground", "destroy"]).ok();
    assert!(!c.tree.exists());
    for p in ports {
        assert!(!port_answers(p));
    }
}

/// `mup ARGS` (under `mup_home`) with its stdout a pipe whose reader is closed before mup
/// writes a byte: every write fails with EPIPE.
fn with_closed_stdout(mup_home: &Path, args: &[&str]) -> std::process::Output {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    mup_process(mup_home)
        .args(args)
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
    let nodaemon = TestCluster::named("nodaemon")
        .topology(SMALL_SHARDED)
        .guard();
    let topo = nodaemon.topology_file();
    let topo = topo.to_str().expect("utf8");
    // No supervisord where mup looks: MUP_SUPERVISORD empty, none on PATH, no `mup setup` copy.
    let empty = nodaemon.scratch().join("empty-path");
    std::fs::create_dir(&empty).expect("mkdir");
    let bins = stand_in_bin();
    let mut cmd = nodaemon.mup();
    cmd.env("MUP_SUPERVISORD", "").env("PATH", &empty);
    let out = run_mup(
        cmd,
        &[
            "cluster",
            "deploy",
            "nodaemon",
            topo,
            "--version",
            "7.0.14",
            "--bin-path",
            bins.to_str().expect("utf8"),
            "--yes",
        ],
    )
    .stderr_has("supervisord not found")
    .stderr_has("nothing was written");
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert!(!nodaemon.tree.exists(), "nothing was written");

    // mongod but no mongos: named before anything is written or started.
    let bin = bin_dir(nodaemon.scratch(), None);
    let (nomongos, out) = TestCluster::named("nomongos")
        .topology(SMALL_SHARDED)
        .bin(&bin)
        .try_deploy();
    out.code(2)
        .stderr_has(&format!(
            "has no executable mongos (needed by mongos-{})",
            nomongos.ports[3]
        ))
        .stderr_has("nothing was written");
    assert!(!nomongos.tree.exists(), "nothing was written");
    for p in nodaemon.ports.iter().chain(&nomongos.ports) {
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
    let c = TestCluster::named("unfinished")
        .topology(SMALL_SHARDED)
        .guard();
    let topo = c.topology_file();
    let topo_arg = topo.to_str().expect("utf8");
    // Routers that cannot start: every attempt exits 3 at once.
    let bin = bin_dir(
        c.scratch(),
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
    let mongos = format!("mongos-{}", c.ports[3]);
    let _ports = allocation_lock();

    // 1. Ctrl-C once the shards answer: exit 130, saying what is left and how to go on.
    let mut child = mup_process(c.home())
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
    assert!(send_signal(child.id(), "INT"), "kill -INT");
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
    let err = c.run(&[&deploy[..], &["--yes"]].concat()).code(1).stderr;
    for want in [
        format!("{mongos} (localhost:{}) went FATAL", c.ports[3]),
        "no router here".to_string(),
        "deploy of cluster unfinished did not finish".to_string(),
        "3 of 4 node(s) are left running".to_string(),
        "run the same `mup cluster deploy` again".to_string(),
    ] {
        assert!(err.contains(&want), "{want:?} in:\n{err}");
    }
    let before = c.pids();
    assert_eq!(before[&mongos], 0, "{before:?}");

    // 3. With a router that works, the same deploy finishes: the running nodes are kept, the
    //    sets are not initiated again, and the progress only counts up, to the end.
    std::fs::remove_file(bin.join("mongos")).expect("rm mongos");
    std::os::unix::fs::symlink(stand_in_bin().join("mongod"), bin.join("mongos")).expect("link");
    let out = c
        .run(&[&["-v"][..], &deploy[..], &["--yes"]].concat())
        .ok()
        .stdout_has("cfg: already initiated")
        .stdout_has("shard shard1 added")
        .stdout;
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
    let after = c.pids();
    for (name, pid) in &before {
        if *name != mongos {
            assert_eq!(after[name], *pid, "{name} kept running");
        }
    }
    assert!(after[&mongos] > 0);
    c.run(&["cluster", "destroy", "unfinished", "--yes"]).ok();
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
    let topology = "mongod_servers:\n  - host: localhost\n    port: {p0}\n";
    let deploy = |c: &TestCluster, says: &str| {
        let _ports = allocation_lock();
        let mut cmd = c.mup();
        cmd.env("MUP_STANDIN_VERSION", says);
        c.deploy_with(cmd, &stand_in_bin())
    };
    let buildver = TestCluster::named("buildver").topology(topology).guard();
    deploy(&buildver, "7.0.14 (build)").ok();
    let d = buildver.display().json();
    assert_eq!(d["version"], "7.0.14", "{d}");
    buildver
        .run(&["cluster", "destroy", "buildver", "--yes"])
        .ok();

    let nover = TestCluster::named("nover").topology(topology).guard();
    let err = deploy(&nover, "banana (build)").code(2).stderr;
    assert_eq!(
        err,
        format!(
            "error: {}: --version: \"db version vbanana (build)\" does not start with a MongoDB version like 7.0.14: pass --version\n",
            stand_in_bin().join("mongod").display()
        )
    );
    assert!(!nover.tree.exists(), "nothing written");
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
    let c = TestCluster::named("pipedeploy")
        .topology("mongod_servers:\n  - {host: localhost, port: {p0}, replica_set: rs0}\n")
        .guard();
    let topo = c.topology_file();
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
    let out = with_closed_stdout(c.home(), &args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The deploy returns once the node answers; RUNNING comes after supervisord's startsecs.
    wait_started(&c.tree);
    let d = c.display().ok().json();
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
    let topology = "mongod_servers:\n  - host: localhost\n    port: {p0}\n";
    let clusters = ["hangs", "chatty"].map(|n| TestCluster::named(n).topology(topology).guard());
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
    let deploy = |i: usize| {
        let c = &clusters[i];
        let out = c.deploy_with(c.mup(), &bins.path().join(&c.name));
        (Some(out.code), out.stderr)
    };
    let mongod = |name: &str| bins.path().join(name).join("mongod").display().to_string();

    let (code, err) = deploy(0);
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

    let (code, err) = deploy(1);
    assert_eq!(
        err,
        format!("error: `{} --version` printed more than 65536 bytes (killed it and its process group); check that it is a working mongod, or pass --version\n", mongod("chatty"))
    );
    assert_eq!(code, Some(1));
    for c in &clusters {
        assert!(!c.tree.exists(), "nothing written for {}", c.name);
    }
}

/// `cluster display --json` of a cluster whose daemon is frozen (SIGSTOP) prints the document
/// (daemon UNRESPONSIVE, nodes UNKNOWN) and fails saying the call timed out.
#[test]
fn display_json_of_a_frozen_daemon_is_a_document() {
    let c = TestCluster::named("frozendisplay")
        .topology("mongod_servers:\n  - host: localhost\n    port: {p0}\n")
        .deploy();
    let daemon = c.daemon_pid();
    assert!(send_signal(daemon, "STOP"), "kill -STOP {daemon}");
    let resume = Resume(daemon);
    let display = c.display();
    // Stopped by signal before anything is asserted, so nothing is left frozen.
    let down = c.ctl_run(&["down"]);
    drop(resume);

    let d = display
        .code(1)
        .stderr_has("did not answer within 10 s (timed out)")
        .json();
    assert_eq!(d["supervisord"]["state"], "UNRESPONSIVE", "{d}");
    assert_eq!(d["supervisord"]["pid"], daemon, "{d}");
    let nodes = d["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 1, "{d}");
    assert_eq!(nodes[0]["state"], "UNKNOWN", "{d}");
    down.ok().stdout_has("it was stopped with SIGTERM");
}
