//! `mup cluster upgrade` against stock supervisord and the stand-ins, from a local mirror
//! holding 7.0.14 and 8.0.4. What the servers and supervisord say is read with the driver and
//! over XML-RPC, never from mup's output: every node's buildInfo, the primaries and the pids
//! sampled at 10 Hz while the upgrade runs.

use crate::common::mirror::{stand_in_mirror, StandInMirror};
use crate::common::sampler::{Sampler, Seen};
use crate::common::*;
use mongodb::bson::doc;
use std::path::Path;
use std::time::Duration;

const OLD: &str = "7.0.14";
const NEW: &str = "8.0.4";

const REPLICA_SET: &str = "mongod_servers:
  - {host: localhost, port: {p0}, replica_set: NAME}
  - {host: localhost, port: {p1}, replica_set: NAME}
  - {host: localhost, port: {p2}, replica_set: NAME}
";

/// The shape of fixtures/sharded: 3 config servers, 2 shards of 3 (one hidden member), 2 routers.
const SHARDED: &str = "config_servers:
  - {host: localhost, port: {p0}, replica_set: cfg}
  - {host: localhost, port: {p1}, replica_set: cfg}
  - {host: localhost, port: {p2}, replica_set: cfg}
mongod_servers:
  - {host: localhost, port: {p3}, replica_set: shard1}
  - {host: localhost, port: {p4}, replica_set: shard1}
  - {host: localhost, port: {p5}, replica_set: shard1, priority: 0, hidden: true, votes: 1}
  - {host: 127.0.0.1, port: {p6}, replica_set: shard2}
  - {host: 127.0.0.1, port: {p7}, replica_set: shard2}
  - {host: 127.0.0.1, port: {p8}, replica_set: shard2}
mongos_servers:
  - {host: localhost, port: {p9}}
  - {host: localhost, port: {p10}}
";

/// One node as meta.yaml lists it: (program, port, replica set; None for a router).
type Node = (String, u16, Option<String>);

fn nodes(tree: &Path) -> Vec<Node> {
    let meta = read_meta(tree);
    meta["nodes"]
        .as_sequence()
        .expect("nodes")
        .iter()
        .map(|n| {
            (
                n["supervisor_name"].as_str().expect("name").to_string(),
                n["port"].as_u64().expect("port") as u16,
                n["replica_set"].as_str().map(String::from),
            )
        })
        .collect()
}

/// Cluster `name` of `template` (its replica sets named NAME called `name`), deployed at OLD
/// from `mirror`.
fn deploy(mirror: &StandInMirror, name: &str, template: &str) -> TestCluster {
    TestCluster::named(name)
        .topology(&template.replace("NAME", name))
        .release(OLD, &mirror.url)
        .deploy()
}

fn upgrade(c: &TestCluster, mirror: &StandInMirror, extra: &[&str]) -> Output {
    let mut args = vec![
        "cluster",
        "upgrade",
        &c.name,
        "--mirror",
        &mirror.url,
        "--yes",
    ];
    args.extend_from_slice(extra);
    c.run(&args)
}

fn build_info(port: u16) -> String {
    mongo_command(port, doc! {"buildInfo": 1})
        .get_str("version")
        .expect("buildInfo has a version")
        .to_string()
}

fn fcv(port: u16) -> String {
    let d = mongo_command(
        port,
        doc! {"getParameter": 1, "featureCompatibilityVersion": 1},
    );
    d.get_document("featureCompatibilityVersion")
        .and_then(|f| f.get_str("version"))
        .expect("an FCV")
        .to_string()
}

/// The checks shared by the upgrade tests: every node on NEW (buildInfo), the sampler saw no
/// violation, one primary change per set, each node restarted once (one new pid, never a
/// moment without... counted as distinct non-zero pids) and the monitoring programs never.
fn assert_rolled(tree: &Path, seen: &Seen) {
    let all = nodes(tree);
    assert!(!all.is_empty());
    for (program, port, _) in &all {
        assert_eq!(build_info(*port), NEW, "{program} on port {port}");
    }
    assert!(seen.ticks > 10, "the sampler ran {} times", seen.ticks);
    assert!(seen.bad.is_empty(), "{:#?}", seen.bad);
    let sets: std::collections::BTreeSet<&String> =
        all.iter().filter_map(|(_, _, rs)| rs.as_ref()).collect();
    assert!(!sets.is_empty());
    for rs in sets {
        // One change of primary, and no moment without one but the step-down's window.
        let order = seen.primaries.get(rs).cloned().unwrap_or_default();
        let shape: Vec<bool> = order.iter().map(|p| p != "-").collect();
        assert!(
            shape == [true, true] || shape == [true, false, true],
            "{rs}: primaries in order {order:?} (- for none)"
        );
        assert_ne!(order.first(), order.last(), "{rs}: {order:?}");
        // The change was a step-down: the old primary's own log says so.
        let old = order.first().expect("checked above");
        let log = read_meta(tree)["nodes"]
            .as_sequence()
            .expect("nodes")
            .iter()
            .find(|n| n["port"].as_u64().map(|p| p.to_string()).as_deref() == Some(old.as_str()))
            .and_then(|n| n["log_file"].as_str().map(String::from))
            .expect("the old primary's log file");
        let text = std::fs::read_to_string(&log).expect("read the log");
        assert!(
            text.contains("stepped down"),
            "{rs}: {log} has no step-down"
        );
    }
    for (program, _, _) in &all {
        let ps: Vec<u32> = seen.pids[program]
            .iter()
            .copied()
            .filter(|p| *p != 0)
            .collect();
        assert_eq!(
            ps.len(),
            2,
            "{program}: pids in order {:?}",
            seen.pids[program]
        );
    }
    for (program, ps) in &seen.pids {
        if is_monitoring(program) {
            assert_eq!(ps.len(), 1, "{program} restarted: {ps:?}");
        }
    }
    let meta = read_meta(tree);
    assert_eq!(meta["version"].as_str(), Some(NEW));
}

#[test]
fn replica_set_upgrade_refusals_dry_run_and_rolling_upgrade() {
    let mirror = stand_in_mirror(&[OLD, NEW]);
    let c = deploy(&mirror, "upgrade-rs", REPLICA_SET);
    let tree = c.tree.clone();
    let ports: Vec<u16> = nodes(&tree).iter().map(|n| n.1).collect();
    let before = pids_with_monitoring(&tree);

    // Two majors at once: refused, naming both versions, before anything is downloaded.
    let err = upgrade(&c, &mirror, &["--version", "9.0.1"]).code(2).stderr;
    assert!(err.contains(OLD) && err.contains("9.0.1"), "{err}");

    // An FCV below the current major: refused, naming it and the target.
    let primary = agreed_primary(&ports);
    let pport: u16 = primary
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    mongo_command(
        pport,
        doc! {"setFeatureCompatibilityVersion": "6.0", "confirm": true},
    );
    let err = upgrade(&c, &mirror, &["--version", NEW]).code(2).stderr;
    assert!(err.contains("6.0") && err.contains(NEW), "{err}");
    mongo_command(
        pport,
        doc! {"setFeatureCompatibilityVersion": "7.0", "confirm": true},
    );

    // A node without its launcher (a tree from an older mup) is refused, naming the file.
    let node_dir = |port: u16| {
        read_meta(&tree)["nodes"]
            .as_sequence()
            .expect("nodes")
            .iter()
            .find(|n| n["port"].as_u64() == Some(u64::from(port)))
            .and_then(|n| n["config_file"].as_str().map(std::path::PathBuf::from))
            .and_then(|c| c.parent().map(Path::to_path_buf))
            .expect("the node's conf directory")
    };
    let launcher = node_dir(ports[0]).join("mongod");
    let aside = launcher.with_extension("aside");
    std::fs::rename(&launcher, &aside).expect("move the launcher aside");
    let out = upgrade(&c, &mirror, &["--version", NEW]);
    std::fs::rename(&aside, &launcher).expect("put it back");
    let err = out.code(2).stderr;
    assert!(err.contains(&launcher.display().to_string()), "{err}");

    // --dry-run prints the plan and changes nothing: no package, no restart, no record.
    let out = upgrade(&c, &mirror, &["--version", NEW, "--dry-run"])
        .ok()
        .stdout;
    assert!(
        out.contains(&format!("step down the primary of upgrade-rs ({primary})")),
        "{out}"
    );
    assert_eq!(out.matches(&format!(" on {NEW}, ")).count(), 3, "{out}");
    assert_eq!(pids_with_monitoring(&tree), before);
    for p in &ports {
        assert_eq!(build_info(*p), OLD);
    }
    assert_eq!(read_meta(&tree)["version"].as_str(), Some(OLD));

    let sampler = Sampler::start(&tree);
    let out = upgrade(&c, &mirror, &["--version", NEW, "--fcv"]);
    let seen = sampler.finish();
    out.ok();
    assert_rolled(&tree, &seen);
    for p in &ports {
        assert_eq!(fcv(*p), "8.0", "FCV on port {p}");
    }
    assert_ne!(
        agreed_primary(&ports),
        primary,
        "the old primary was stepped down"
    );

    // The upgraded tree is exactly what a deploy of the new version writes: that deploy finds
    // it already written, changes nothing and restarts nothing.
    let after = pids_with_monitoring(&tree);
    let topo = c.topology_file();
    let topo = topo.to_str().expect("utf8");
    c.run(&[
        "cluster",
        "deploy",
        "upgrade-rs",
        topo,
        "--version",
        NEW,
        "--mirror",
        &mirror.url,
        "--yes",
    ])
    .ok();
    assert_eq!(pids_with_monitoring(&tree), after);
}

#[test]
fn sharded_cluster_upgrade_keeps_every_set_available() {
    let mirror = stand_in_mirror(&[OLD, NEW]);
    let c = deploy(&mirror, "upgrade-sh", SHARDED);
    let tree = c.tree.clone();
    let router = nodes(&tree)
        .iter()
        .find(|n| n.2.is_none())
        .map(|n| n.1)
        .expect("a router");
    let sampler = Sampler::start(&tree);
    let out = upgrade(&c, &mirror, &["--version", NEW, "--fcv"]);
    let seen = sampler.finish();
    out.ok();
    assert_rolled(&tree, &seen);
    let status = mongo_command(router, doc! {"balancerStatus": 1});
    assert_eq!(status.get_str("mode").ok(), Some("full"), "{status}");
    for (program, port, rs) in nodes(&tree) {
        if rs.is_some() {
            assert_eq!(fcv(port), "8.0", "FCV of {program} on port {port}");
        }
    }
}

#[test]
fn an_upgrade_killed_midway_finishes_when_run_again() {
    let mirror = stand_in_mirror(&[OLD, NEW]);
    let c = deploy(&mirror, "upgrade-kill", REPLICA_SET);
    let tree = c.tree.clone();
    let before = pids_with_monitoring(&tree);
    // The package first, so that the kill falls among the restarts.
    c.run(&["install", NEW, "--mirror", &mirror.url]).ok();
    let sampler = Sampler::start(&tree);
    let mut child = mup_process(c.home())
        .args([
            "cluster",
            "upgrade",
            "upgrade-kill",
            "--version",
            NEW,
            "--yes",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn mup");
    // Killed once the first node was restarted (a new pid), while the others wait.
    let restarted = wait_until(Duration::from_secs(60), || {
        let now = pids_with_monitoring(&tree);
        before
            .iter()
            .any(|(p, pid)| !is_monitoring(p) && now.get(p).is_some_and(|n| n != pid && *n != 0))
    });
    assert!(restarted, "no node was restarted within 60 s");
    child.kill().expect("SIGKILL mup");
    let _ = child.wait();
    let versions: Vec<String> = nodes(&tree)
        .iter()
        .filter_map(|n| {
            try_command(n.1, doc! {"buildInfo": 1})
                .ok()
                .and_then(|d| d.get_str("version").ok().map(String::from))
        })
        .collect();
    assert!(
        versions.iter().any(|v| v == OLD),
        "the kill came too late: {versions:?}"
    );
    assert_eq!(
        read_meta(&tree)["version"].as_str(),
        Some(OLD),
        "recorded before every node ran it"
    );

    // Meanwhile display shows which node runs which version (asked of the servers).
    let d = c.display().json();
    let shown: std::collections::BTreeSet<&str> = d["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["version"].as_str())
        .collect();
    assert!(shown.contains(OLD) && shown.contains(NEW), "{d:#}");

    let out = upgrade(&c, &mirror, &["--version", NEW]);
    let seen = sampler.finish();
    out.ok();
    assert_rolled(&tree, &seen);
    let d = c.display().json();
    let nodes = d["nodes"].as_array().expect("nodes");
    assert!(
        !nodes.is_empty() && nodes.iter().all(|n| n.get("version").is_none()),
        "{d:#}"
    );
}

#[test]
fn a_one_member_set_is_upgraded_without_a_step_down() {
    let mirror = stand_in_mirror(&[OLD, NEW]);
    let one = "mongod_servers:\n  - {host: localhost, port: {p0}, replica_set: NAME}\n";
    let c = deploy(&mirror, "upgrade-one", one);
    let tree = c.tree.clone();
    let port = nodes(&tree)[0].1;
    let before = pids_with_monitoring(&tree);
    upgrade(&c, &mirror, &["--version", NEW]).ok();
    assert_eq!(build_info(port), NEW);
    let hello = mongo_command(port, doc! {"hello": 1});
    assert_eq!(
        hello.get_bool("isWritablePrimary").ok(),
        Some(true),
        "{hello}"
    );
    let after = pids_with_monitoring(&tree);
    let changed: Vec<&String> = before.keys().filter(|p| before[*p] != after[*p]).collect();
    assert_eq!(changed, [&nodes(&tree)[0].0], "only the node restarted");
    assert_eq!(read_meta(&tree)["version"].as_str(), Some(NEW));
}
