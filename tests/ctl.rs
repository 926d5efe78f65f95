//! `mup ctl` against stock supervisord 4.3 and the stand-in mongod: never a mock.

use crate::common::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// 3 config servers, 2 shards × 3, 2 mongos: the sharded fixture's shape on free ports.
const SHARDED: &str = "config_servers:
  - {host: localhost, port: {p0}, replica_set: cfg}
  - {host: localhost, port: {p1}, replica_set: cfg}
  - {host: localhost, port: {p2}, replica_set: cfg}
mongod_servers:
  - {host: localhost, port: {p3}, replica_set: shard1}
  - {host: localhost, port: {p4}, replica_set: shard1}
  - {host: localhost, port: {p5}, replica_set: shard1}
  - {host: 127.0.0.1, port: {p6}, replica_set: shard2}
  - {host: 127.0.0.1, port: {p7}, replica_set: shard2}
  - {host: 127.0.0.1, port: {p8}, replica_set: shard2}
mongos_servers:
  - {host: localhost, port: {p9}}
  - {host: localhost, port: {p10}}
";

const REPLICA_SET: &str = "mongod_servers:
  - {host: localhost, port: {p0}, replica_set: rs0}
  - {host: localhost, port: {p1}, replica_set: rs0}
  - {host: localhost, port: {p2}, replica_set: rs0}
";

/// Timestamps of the stand-in's log lines containing `event`, per program.
fn events(status: &serde_json::Value, event: &str) -> BTreeMap<String, Vec<f64>> {
    let mut out = BTreeMap::new();
    for p in status["programs"].as_array().expect("programs") {
        let log =
            std::fs::read_to_string(p["log_file"].as_str().expect("log_file")).unwrap_or_default();
        let times: Vec<f64> = log
            .lines()
            .filter(|l| l.contains(event))
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect();
        out.insert(p["name"].as_str().expect("name").to_string(), times);
    }
    out
}

/// The last time each program named `prefix...` logged the event. Every such program must have
/// logged it, and there must be at least one: an order check over nothing proves nothing.
fn times_of(ev: &BTreeMap<String, Vec<f64>>, prefix: &str) -> Vec<f64> {
    let times: Vec<f64> = ev
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(k, v)| {
            *v.last()
                .unwrap_or_else(|| panic!("{k} never logged the event: {ev:?}"))
        })
        .collect();
    assert!(!times.is_empty(), "no program named {prefix}*: {ev:?}");
    times
}

fn last_of(ev: &BTreeMap<String, Vec<f64>>, prefix: &str) -> f64 {
    times_of(ev, prefix).into_iter().fold(f64::MIN, f64::max)
}

fn first_of(ev: &BTreeMap<String, Vec<f64>>, prefix: &str) -> f64 {
    times_of(ev, prefix).into_iter().fold(f64::MAX, f64::min)
}

/// The node pids `status --json` shows once supervisord's startsecs are over, every node
/// RUNNING with a pid.
fn running_pids(c: &TestCluster) -> BTreeMap<String, u32> {
    wait_started(&c.tree);
    let st = c.status();
    let pids = shown_pids(&st);
    for p in st["programs"].as_array().expect("programs") {
        if !is_monitoring(p["name"].as_str().unwrap_or_default()) {
            assert_eq!(p["state"], "RUNNING", "{p}");
        }
    }
    assert!(pids.values().all(|p| *p > 0), "{st}");
    pids
}

#[test]
fn sharded_up_start_status_stop_down_in_tier_order() {
    let c = TestCluster::named("tiers").topology(SHARDED).gen();
    let out = c.ok(&["up"]);
    assert!(out.contains("supervisord for cluster tiers is up"), "{out}");
    c.ok(&["up"]); // idempotent
    c.ok(&["start"]);

    // Every program RUNNING, with the pids the daemon reports.
    let pids = running_pids(&c);
    assert_eq!(pids.len(), 11);
    assert_eq!(pids, c.pids());
    let table = c.ok(&["status"]);
    assert_eq!(table.lines().count(), 14, "{table}"); // 11 nodes, 2 monitoring, header

    // Start order, from the stand-ins' own clocks: every config server listening before any
    // shard member starts; every shard member listening before any router starts.
    let st = c.status();
    let (listening, starting) = (
        events(&st, "Waiting for connections"),
        events(&st, " starting "),
    );
    assert!(
        last_of(&listening, "config-server") < first_of(&starting, "mongod"),
        "{listening:?}\n{starting:?}"
    );
    assert!(
        last_of(&listening, "mongod") < first_of(&starting, "mongos"),
        "{listening:?}\n{starting:?}"
    );

    // Idempotent start; stop in reverse order.
    c.ok(&["start"]);
    assert_eq!(c.pids(), pids, "starting RUNNING programs changes nothing");
    c.ok(&["stop"]);
    let st = c.status();
    let stopping = events(&st, "shutting down");
    assert!(
        last_of(&stopping, "mongos") < first_of(&stopping, "mongod"),
        "{stopping:?}"
    );
    assert!(
        last_of(&stopping, "mongod") < first_of(&stopping, "config-server"),
        "{stopping:?}"
    );
    // status exits 3 when a program is not RUNNING.
    c.ctl_run(&["status"]).code(3);
    c.ok(&["stop"]); // idempotent

    // down: the daemon's pid has exited and its port is free when the command returns.
    c.ok(&["start", "mongod-servers"]);
    let daemon_pid = c.client().get_pid().expect("pid");
    let out = c.ok(&["down"]);
    assert!(out.contains("is down"), "{out}");
    assert!(!pid_alive(daemon_pid));
    assert!(!port_answers(c.supervisor_port()));
    for p in pids.values() {
        assert!(!pid_alive(*p), "node pid {p} survived down");
    }
}

#[test]
fn kill_9_of_a_node_is_restarted_by_supervisord() {
    let c = TestCluster::named("heal").topology(REPLICA_SET).start();
    let before = running_pids(&c);
    let (name, old) = before
        .iter()
        .next()
        .map(|(k, v)| (k.clone(), *v))
        .expect("a node");
    let killed = Instant::now();
    assert!(send_signal(old, "9"), "kill -9 {old}");
    let client = c.client();
    let q = format!("{name}:{name}");
    let mut respawned = None;
    let healed = wait_until(Duration::from_secs(30), || {
        let p = client.get_process_info(&q).expect("info");
        if p.pid != 0 && p.pid != old && respawned.is_none() {
            respawned = Some(killed.elapsed());
        }
        p.pid != old && p.statename == "RUNNING"
    });
    assert!(healed, "{name} was not restarted");
    println!(
        "kill -9 {name}: new pid after {:.3} s, RUNNING again after {:.3} s (startsecs=5)",
        respawned.unwrap_or_default().as_secs_f64(),
        killed.elapsed().as_secs_f64()
    );
    let after = running_pids(&c);
    assert_ne!(after[&name], old);
    for (n, p) in &before {
        if *n != name {
            assert_eq!(after[n], *p, "{n} untouched");
        }
    }
}

#[test]
fn one_program_one_group_one_replica_set_leave_the_others_alone() {
    let c = TestCluster::named("targets").topology(SHARDED).start();
    let all = running_pids(&c);
    let same_except = |changed: &dyn Fn(&str) -> bool, now: &BTreeMap<String, u32>| {
        for (n, p) in &all {
            if changed(n) {
                assert_ne!(now[n], *p, "{n} should have been restarted");
            } else {
                assert_eq!(now[n], *p, "{n} should be untouched");
            }
        }
    };
    let one = format!("mongod-{}", c.ports[3]);

    // One program.
    c.ok(&["stop", &one]);
    let now = c.pids();
    assert_eq!(now[&one], 0);
    for (n, p) in &all {
        if *n != one {
            assert_eq!(now[n], *p);
        }
    }
    c.ok(&["start", &one]);
    let now = running_pids(&c);
    same_except(&|n| n == one, &now);

    // One group.
    c.ok(&["restart", "config-servers"]);
    let after_group = running_pids(&c);
    for (n, p) in &now {
        assert_eq!(after_group[n] != *p, n.starts_with("config-server"), "{n}");
    }

    // One replica set.
    c.ok(&["restart", "--rs", "shard2"]);
    let after_rs = running_pids(&c);
    let shard2: Vec<String> = c.ports[6..9]
        .iter()
        .map(|p| format!("mongod-{p}"))
        .collect();
    for (n, p) in &after_group {
        assert_eq!(after_rs[n] != *p, shard2.contains(n), "{n}");
    }

    // Unknown targets are bad input, naming what exists.
    c.ctl_run(&["stop", "mongod-1"])
        .code(2)
        .stderr_has("no such program, tier or group \"mongod-1\"")
        .stderr_has(&one);
}

#[test]
fn reload_adds_new_nodes_without_restarting_the_others() {
    let topo = "config_servers:
  - {host: localhost, port: {p0}, replica_set: cfg}
mongod_servers:
  - {host: localhost, port: {p1}, replica_set: shard1}
  - {host: localhost, port: {p2}, replica_set: shard1}
";
    let c = TestCluster::named("reload").topology(topo).ports(5).start();
    let first = running_pids(&c);

    // The first mongos: a new group.
    let filled = std::fs::read_to_string(c.topology_file()).expect("read");
    let with_mongos = format!(
        "{filled}mongos_servers:\n  - {{host: localhost, port: {}}}\n",
        c.ports[3]
    );
    std::fs::write(c.topology_file(), &with_mongos).expect("write");
    c.gen();
    let plan = c.ok(&["reload", "--dry-run"]);
    assert!(
        plan.contains(&format!("mongos-{}: added", c.ports[3])) && plan.contains("nothing changed"),
        "{plan}"
    );
    assert_eq!(c.pids(), first, "--dry-run changes nothing");
    assert!(!c.pids().contains_key(&format!("mongos-{}", c.ports[3])));
    c.ok(&["reload"]);
    let second = running_pids(&c);
    assert_eq!(second.len(), 4);
    for (n, p) in &first {
        assert_eq!(second[n], *p, "{n} keeps its pid when a group is added");
    }

    // A new member of a replica set: its own group is added, no other node restarts.
    let grown = with_mongos.replace(
        "mongos_servers:",
        &format!(
            "  - {{host: localhost, port: {}, replica_set: shard1}}\nmongos_servers:",
            c.ports[4]
        ),
    );
    std::fs::write(c.topology_file(), grown).expect("write");
    c.gen();
    let plan = c.ok(&["reload", "--dry-run"]);
    assert!(
        plan.contains(&format!("mongod-{}: added", c.ports[4])) && !plan.contains("restart: "),
        "{plan}"
    );
    assert_eq!(c.pids(), second);
    c.ok(&["reload"]);
    let third = running_pids(&c);
    assert_eq!(third.len(), 5);
    for (n, p) in &second {
        assert_eq!(third[n], *p, "{n} keeps its pid when a node is added");
    }
}

#[test]
fn orphans_of_a_killed_daemon_are_reported_then_adopted() {
    let c = TestCluster::named("orphans").topology(REPLICA_SET).start();
    let old = running_pids(&c);
    let monitoring: Vec<u32> = c
        .client()
        .get_all_process_info()
        .expect("info")
        .iter()
        .filter(|p| is_monitoring(&p.name))
        .map(|p| p.pid)
        .collect();
    assert_eq!(monitoring.len(), 2);
    let daemon = c.client().get_pid().expect("pid");
    assert!(send_signal(daemon, "9"), "kill -9 {daemon}");
    assert!(wait_until(Duration::from_secs(5), || !pid_alive(daemon)));
    // The listener (stdin closed) and the exporter (parent gone) leave with the daemon.
    assert!(
        wait_until(Duration::from_secs(3), || monitoring
            .iter()
            .all(|p| !pid_alive(*p))),
        "monitoring processes outlived the daemon: {monitoring:?}"
    );

    let err = c.ctl_run(&["up"]).code(1).stderr_has("--adopt").stderr;
    for (name, pid) in &old {
        let port = name.trim_start_matches("mongod-");
        assert!(
            err.contains(&format!("{name} (port {port}): pid {pid}")),
            "{name} pid {pid} reported:\n{err}"
        );
    }

    c.ok(&["up", "--adopt"]);
    for pid in old.values() {
        assert!(!pid_alive(*pid), "orphan {pid} stopped");
    }
    c.ok(&["start"]);
    let now = running_pids(&c);
    let st = c.status();
    for p in st["programs"].as_array().expect("programs") {
        let name = p["name"].as_str().expect("name");
        if is_monitoring(name) {
            // Both left with the daemon (stdin closed, parent gone) and run again under the
            // new one.
            assert_eq!(p["state"], "RUNNING", "{p}");
            continue;
        }
        let port = p["port"].as_u64().expect("port") as u16;
        // Exactly one stand-in on the port: the one supervisord owns, which holds the lock.
        assert_eq!(mup::listener_pid(port), Some(now[name]), "{name}");
        let lock = std::fs::read_to_string(
            c.tree
                .join("data")
                .join(format!("localhost-{port}"))
                .join("mongod.lock"),
        )
        .expect("lock");
        assert_eq!(lock.trim(), now[name].to_string(), "{name}'s lock file");
    }
}

#[test]
fn a_node_that_exits_at_once_fails_the_start_with_its_log() {
    let topo = "mongod_servers:
  - host: localhost
    port: {p0}
    runtime_config:
      standin:
        exitAfterSecs: 0
        exitCode: 1
";
    let c = TestCluster::named("crash").topology(topo).gen();
    c.ok(&["up"]);
    let name = format!("mongod-{}", c.ports[0]);
    c.ctl_run(&["start"])
        .code(1)
        .stderr_has(&format!("{name} (localhost:{}) went FATAL", c.ports[0]))
        // the log tail is shown
        .stderr_has("exiting on purpose code=1");
}

/// A script reading `status --json` gets JSON with the daemon down too: the document with
/// `"state": "DOWN"` and every program STOPPED, exit 1 and the sentence on stderr.
#[test]
fn status_json_with_the_daemon_down_is_a_document() {
    let c = TestCluster::named("downjson").topology(REPLICA_SET).gen();
    let out = c
        .ctl_run(&["status", "--json"])
        .code(1)
        .stderr_has("supervisord for cluster downjson is not running on 127.0.0.1:");
    let doc = out.json();
    assert_eq!(doc["cluster"], "downjson");
    assert_eq!(doc["supervisord"]["state"], "DOWN", "{doc}");
    assert_eq!(doc["supervisord"]["pid"], serde_json::Value::Null, "{doc}");
    let programs = doc["programs"].as_array().expect("programs");
    assert_eq!(
        programs.len(),
        3 + 2,
        "3 nodes and the 2 monitoring programs: {doc}"
    );
    assert!(
        programs
            .iter()
            .all(|p| p["state"] == "STOPPED" && p["pid"].is_null()),
        "{doc}"
    );
}

#[test]
fn wrong_credentials_and_a_stopped_daemon_get_sentences() {
    let c = TestCluster::named("sentences").topology(REPLICA_SET).gen();
    c.ctl_run(&["status"])
        .code(1)
        .stderr_has("supervisord for cluster sentences is not running on 127.0.0.1:")
        .stderr_has("mup ctl --dir");
    c.ok(&["up"]);
    let meta = c.tree.join("meta.yaml");
    let text = std::fs::read_to_string(&meta).expect("meta");
    let m: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
    let pw = m["supervisor_password"].as_str().expect("pw").to_string();
    std::fs::write(&meta, text.replace(&pw, "wrong-password")).expect("tamper");
    let out = c.ctl_run(&["status"]);
    std::fs::write(&meta, &text).expect("restore");
    out.code(1)
        .stderr_has("refused the credentials in")
        .stderr_has("do not match the running daemon");
}

#[test]
fn tail_pid_signal_and_a_held_supervisor_port() {
    let c = TestCluster::named("verbs")
        .topology("mongod_servers:\n  - {host: localhost, port: {p0}}\n")
        .gen();
    let name = format!("mongod-{}", c.ports[0]);

    // Something else on supervisord's port: a clear error naming the port.
    let port = c.supervisor_port();
    let blocker = std::net::TcpListener::bind(("127.0.0.1", port)).expect("hold the port");
    c.ctl_run(&["up"]).code(1).stderr_has(&format!(
        "port {port} is held by pid {}",
        std::process::id()
    ));
    drop(blocker);

    c.ok(&["up"]);
    c.ok(&["start"]);
    let pids = running_pids(&c);
    assert_eq!(c.ok(&["pid", &name]).trim(), pids[&name].to_string());
    assert_eq!(
        c.ok(&["pid"]).trim(),
        c.client().get_pid().expect("pid").to_string()
    );
    assert!(c.ok(&["tail", &name]).contains("Waiting for connections"));
    c.ok(&["signal", "USR1", &name]);
    assert!(wait_until(Duration::from_secs(5), || c
        .ok(&["tail", &name, "-n", "400"])
        .contains("received SIGUSR1")));
    assert_eq!(running_pids(&c), pids, "USR1 does not restart the node");
    // A signal supervisord does not know is bad input: exit 2, naming the value.
    let out = c.ctl_run(&["signal", "BOGUS", &name]).code(2);
    assert_eq!(
        out.stderr,
        "error: SIGNAL: \"BOGUS\" is not a signal name or number supervisord knows (HUP, USR1, 10, ...)\n"
    );
    c.ctl_run(&["tail", "mongod-1"])
        .code(2)
        .stderr_has(&format!("programs: {name}"));
}

/// `ctl tail` prints the log's bytes as they are: the final newline (and any whitespace at
/// either end of what supervisord sends) is kept.
#[test]
fn tail_keeps_the_logs_final_newline() {
    let c = TestCluster::named("tailnl").topology(REPLICA_SET).gen();
    c.ok(&["up"]);
    let name = format!("mongod-{}", c.ports[0]);
    c.ok(&["start", &name]);
    let log = c.tree.join(format!("logs/supervisor-{name}.log"));
    assert!(wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("Waiting for connections"))
    }));
    let out = c.ok(&["tail", &name, "-n", "100000"]);
    let file = std::fs::read_to_string(&log).expect("log");
    assert!(out.ends_with('\n'), "{out:?}");
    assert!(
        file.starts_with(&out),
        "the whole log as it is:\n{out:?}\n{file:?}"
    );
}

/// A frozen daemon (SIGSTOP): `status --json` still prints its document, saying the daemon
/// is UNRESPONSIVE and the programs UNKNOWN, and the error says it timed out, naming the port
/// and the wait; `down` stops it by signal (SIGCONT, SIGTERM), nodes included.
#[test]
fn a_frozen_daemon_is_reported_as_timed_out_and_stopped_by_down() {
    let c = TestCluster::named("frozen").topology(REPLICA_SET).start();
    let nodes: Vec<u32> = c.pids().into_values().collect();
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    assert!(nodes.iter().all(|p| *p > 0), "{nodes:?}");
    let daemon = c.daemon_pid();
    let port = c.supervisor_port();
    assert!(send_signal(daemon, "STOP"), "kill -STOP {daemon}");
    let _resume = Resume(daemon);

    let out = c
        .ctl_run(&["status", "--json"])
        .code(1)
        .stderr_has(&format!(
            "supervisord on 127.0.0.1:{port} did not answer within 10 s (timed out)"
        ))
        .stderr_has("down` stops it by signal");
    let doc = out.json();
    assert_eq!(doc["supervisord"]["state"], "UNRESPONSIVE", "{doc}");
    assert_eq!(doc["supervisord"]["pid"], daemon, "{doc}");
    let programs = doc["programs"].as_array().expect("programs");
    assert_eq!(programs.len(), 3 + 2, "{doc}");
    assert!(programs.iter().all(|p| p["state"] == "UNKNOWN"), "{doc}");

    c.ctl_run(&["down"]).ok().stdout_has(&format!(
        "supervisord for cluster frozen (pid {daemon}) supervisord on 127.0.0.1:{port} did not answer within 10 s (timed out): it was stopped with SIGTERM"
    ));
    assert!(!pid_alive(daemon), "the daemon {daemon} is gone");
    for pid in nodes {
        assert!(!pid_alive(pid), "node {pid} is stopped");
    }
}

/// A hand-edited supervisor_password in meta.yaml: `down` of the daemon (proven this tree's)
/// that refuses it stops the daemon by signal, saying the credentials do not match.
#[test]
fn down_stops_a_daemon_that_refuses_the_edited_credentials() {
    let c = TestCluster::named("badpass").topology(REPLICA_SET).start();
    let nodes: Vec<u32> = c.pids().into_values().collect();
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    assert!(nodes.iter().all(|p| *p > 0), "{nodes:?}");
    let daemon = c.daemon_pid();
    let meta = c.tree.join("meta.yaml");
    let text = std::fs::read_to_string(&meta).expect("meta");
    let pw = read_meta(&c.tree)["supervisor_password"]
        .as_str()
        .expect("pw")
        .to_string();
    std::fs::write(&meta, text.replace(&pw, "edited-by-hand")).expect("edit");

    c.ctl_run(&["down"])
        .ok()
        .stdout_has(&format!(
            "supervisord for cluster badpass (pid {daemon}) refused the credentials in {}: they do not match the ones it runs with (from {}",
            meta.display(),
            c.tree.join("supervisor.ini").display()
        ))
        .stdout_has("it was stopped with SIGTERM");
    assert!(!pid_alive(daemon), "the daemon {daemon} is gone");
    for pid in nodes {
        assert!(!pid_alive(pid), "node {pid} is stopped");
    }
}
