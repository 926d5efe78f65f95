//! `mup cluster scale-out` / `scale-in` against the real supervisord and the stand-ins: the
//! pids of every other node (supervisord's getAllProcessInfo) are the same before and after,
//! and the servers' own answers (replSetGetConfig, listShards, read with the driver) match
//! the topology after each step.

use crate::common::*;
use mongodb::bson::{doc, Bson, Document};
use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::time::Duration;

/// Every running node's pid, from supervisord itself (the one [`TestCluster::pids`], the
/// nodes not running, pid 0, left out).
fn running(c: &TestCluster) -> BTreeMap<String, u32> {
    c.pids().into_iter().filter(|(_, pid)| *pid != 0).collect()
}

fn same_pids(before: &BTreeMap<String, u32>, after: &BTreeMap<String, u32>, except: &[String]) {
    let kept: Vec<&String> = before.keys().filter(|k| !except.contains(k)).collect();
    assert!(!kept.is_empty(), "nodes to compare");
    for k in kept {
        assert_eq!(
            after.get(k),
            Some(&before[k]),
            "{k} was restarted or stopped"
        );
    }
}

/// `(host, votes, priority)` of each member, as the server's replSetGetConfig says.
fn set_config(port: u16) -> Vec<(String, i32, f64)> {
    let d = mongo_command(port, doc! { "replSetGetConfig": 1 });
    let config = d.get_document("config").expect("config");
    config
        .get_array("members")
        .expect("members")
        .iter()
        .filter_map(Bson::as_document)
        .map(|m: &Document| {
            (
                m.get_str("host").expect("host").to_string(),
                m.get_i32("votes").unwrap_or(1),
                m.get_f64("priority").unwrap_or(1.0),
            )
        })
        .collect()
}

/// Runs `mup ARGS` and kills it (SIGKILL) once a line of its output contains `needle`.
fn kill_when(c: &TestCluster, args: &[&str], needle: &str) {
    let mut child = mup_process(c.home())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn mup");
    let out = child.stdout.take().expect("stdout");
    let mut said = Vec::new();
    let seen = std::io::BufReader::new(out)
        .lines()
        .map_while(Result::ok)
        .inspect(|l| said.push(l.clone()))
        .any(|l| l.contains(needle));
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    assert!(
        seen,
        "mup {args:?} never said {needle:?}:\n{}",
        said.join("\n")
    );
}

fn hosts(ports: &[u16]) -> BTreeSet<String> {
    ports.iter().map(|p| format!("localhost:{p}")).collect()
}

fn primary_port(ports: &[u16]) -> u16 {
    let mut found = None;
    assert!(wait_until(Duration::from_secs(30), || {
        found = ports.iter().copied().find(|p| {
            mongo_command(*p, doc! { "hello": 1 })
                .get_bool("isWritablePrimary")
                .unwrap_or(false)
        });
        found.is_some()
    }));
    found.expect("a primary")
}

const REPLICA_SET: &str = "mongod_servers:
  - {host: localhost, port: {p0}, replica_set: rs0}
  - {host: localhost, port: {p1}, replica_set: rs0}
  - {host: localhost, port: {p2}, replica_set: rs0}
";

#[test]
fn a_replica_set_grows_by_one_member_and_loses_its_primary_without_restarting_the_others() {
    let h = TestCluster::named("scalers")
        .topology(REPLICA_SET)
        .ports(4)
        .deploy();
    let tree = h.tree.clone();
    let p = h.ports.clone();

    // Refused: with p1 down, removing p2 leaves 2 voters of which 1 healthy.
    h.run(&[
        "cluster",
        "stop",
        "scalers",
        "-N",
        &format!("localhost:{}", p[1]),
    ])
    .ok();
    let Output {
        code, stderr: err, ..
    } = h.run(&[
        "cluster",
        "scale-in",
        "scalers",
        "-N",
        &format!("localhost:{}", p[2]),
    ]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("refused") && err.contains("majority"), "{err}");
    assert!(
        !err.contains("run the same"),
        "a refusal is not an interruption: {err}"
    );
    let hosts_now: BTreeSet<String> = set_config(p[0]).into_iter().map(|m| m.0).collect();
    assert_eq!(
        hosts_now,
        hosts(&p[..3]),
        "the refused scale-in changed nothing"
    );
    h.run(&[
        "cluster",
        "start",
        "scalers",
        "-N",
        &format!("localhost:{}", p[1]),
    ])
    .ok();
    wait_started(&tree);

    // --dry-run prints the plan and changes nothing.
    let fragment = h.scratch().join("more.yaml");
    std::fs::write(
        &fragment,
        format!(
            "mongod_servers:\n  - {{host: localhost, port: {}, replica_set: rs0}}\n",
            p[3]
        ),
    )
    .expect("write fragment");
    let f = fragment.to_str().expect("utf8");
    let before = running(&h);
    let meta_before = std::fs::read_to_string(tree.join("meta.yaml")).expect("meta");
    // Fragments it refuses (exit 2): config servers, and a node the cluster has (written
    // another way) rather than the entry an interrupted scale-out wrote.
    for (i, text) in [
        format!(
            "config_servers:\n  - {{host: localhost, port: {}, replica_set: cfg}}\n",
            p[3]
        ),
        format!(
            "mongod_servers:\n  - {{host: 127.0.0.1, port: {}, replica_set: rs0}}\n",
            p[1]
        ),
    ]
    .iter()
    .enumerate()
    {
        let bad = h.scratch().join(format!("bad-{i}.yaml"));
        std::fs::write(&bad, text).expect("write fragment");
        h.run(&[
            "cluster",
            "scale-out",
            "scalers",
            bad.to_str().expect("utf8"),
        ])
        .code(2);
    }
    // A dry run takes no lock: it answers while another command holds the cluster's.
    let lock = std::fs::File::open(tree.join(".mup.lock")).expect("lock file");
    lock.lock().expect("hold the cluster lock");
    let plan = h
        .run(&["cluster", "scale-out", "scalers", f, "--dry-run"])
        .ok()
        .stdout;
    lock.unlock().expect("release");
    assert!(
        plan.contains("without a vote") && plan.contains("nothing changed"),
        "{plan}"
    );
    assert_eq!(running(&h), before);
    assert_eq!(
        std::fs::read_to_string(tree.join("meta.yaml")).expect("meta"),
        meta_before
    );
    assert_eq!(set_config(p[0]).len(), 3);

    // scale-out, killed (SIGKILL) while it starts the new node, then run again: the new
    // member votes, every other node keeps its process.
    kill_when(&h, &["cluster", "scale-out", "scalers", f], "[3/");
    h.run(&["cluster", "scale-out", "scalers", f]).ok();
    wait_started(&tree);
    let after = running(&h);
    same_pids(&before, &after, &[]);
    assert!(after.contains_key(&format!("mongod-{}", p[3])), "{after:?}");
    let config = set_config(p[0]);
    assert_eq!(
        config.iter().map(|m| m.0.clone()).collect::<BTreeSet<_>>(),
        hosts(&p)
    );
    assert!(config.iter().all(|m| m.1 == 1 && m.2 == 1.0), "{config:?}");

    // scale-in of the primary: stepped down first, removed, nobody else restarted.
    let primary = primary_port(&p);
    let gone = format!("mongod-{primary}");
    let node = format!("localhost:{primary}");
    let plan = h
        .run(&["cluster", "scale-in", "scalers", "-N", &node, "--dry-run"])
        .ok()
        .stdout;
    assert!(
        plan.contains("stepped down first") && plan.contains("nothing changed"),
        "{plan}"
    );
    assert_eq!(running(&h), after);
    assert_eq!(set_config(primary).len(), 4);
    h.run(&[
        "cluster",
        "scale-in",
        "scalers",
        "-N",
        &format!("localhost:{primary}"),
    ])
    .ok();
    let last = running(&h);
    same_pids(&after, &last, std::slice::from_ref(&gone));
    assert!(!last.contains_key(&gone));
    let left: Vec<u16> = p.iter().copied().filter(|x| *x != primary).collect();
    let config = set_config(left[0]);
    assert_eq!(
        config.into_iter().map(|m| m.0).collect::<BTreeSet<_>>(),
        hosts(&left)
    );
    assert_ne!(primary_port(&left), primary);
    assert!(
        tree.join(format!("data/localhost-{primary}")).is_dir(),
        "data kept"
    );
}

const SHARDED: &str = "global:
  runtime_config:
    standin.drainSecs: 6
config_servers:
  - {host: localhost, port: {p0}, replica_set: cfg}
mongod_servers:
  - {host: localhost, port: {p1}, replica_set: shard1}
mongos_servers:
  - {host: localhost, port: {p2}}
";

fn shard_ids(router: u16) -> Vec<(String, bool)> {
    mongo_command(router, doc! { "listShards": 1 })
        .get_array("shards")
        .expect("shards")
        .iter()
        .filter_map(Bson::as_document)
        .map(|s| {
            (
                s.get_str("_id").expect("_id").to_string(),
                s.get_bool("draining").unwrap_or(false),
            )
        })
        .collect()
}

#[test]
fn a_new_shard_is_added_and_an_interrupted_drain_finishes_when_run_again() {
    let h = TestCluster::named("scaleshards")
        .topology(SHARDED)
        .ports(5)
        .deploy();
    let tree = h.tree.clone();
    let p = h.ports.clone();
    let router = p[2];

    let fragment = h.scratch().join("shard2.yaml");
    std::fs::write(
        &fragment,
        format!(
            "mongod_servers:\n  - {{host: localhost, port: {}, replica_set: shard2}}\nmongos_servers:\n  - {{host: localhost, port: {}}}\n",
            p[3], p[4]
        ),
    )
    .expect("write fragment");
    let before = running(&h);
    let out = h
        .run(&[
            "cluster",
            "scale-out",
            "scaleshards",
            fragment.to_str().expect("utf8"),
        ])
        .ok()
        .stdout;
    assert!(out.contains("addShard shard2"), "{out}");
    wait_started(&tree);
    let after = running(&h);
    same_pids(&before, &after, &[]);
    assert!(after.contains_key(&format!("mongos-{}", p[4])), "{after:?}");
    assert_eq!(
        shard_ids(p[4]),
        [("shard1".to_string(), false), ("shard2".to_string(), false)]
    );

    // scale-in of the new shard and router, killed (SIGKILL) while it drains.
    let node = format!("localhost:{},localhost:{}", p[3], p[4]);
    kill_when(
        &h,
        &["cluster", "scale-in", "scaleshards", "-N", &node],
        "draining",
    );
    assert_eq!(
        shard_ids(router),
        [("shard1".to_string(), false), ("shard2".to_string(), true)],
        "left draining"
    );

    // The same command finishes it.
    let done = h
        .run(&["cluster", "scale-in", "scaleshards", "-N", &node])
        .ok()
        .stdout;
    assert!(done.contains("drained and removed"), "{done}");
    assert_eq!(shard_ids(router), [("shard1".to_string(), false)]);
    let last = running(&h);
    let gone = [format!("mongod-{}", p[3]), format!("mongos-{}", p[4])];
    same_pids(&after, &last, &gone);
    assert!(gone.iter().all(|g| !last.contains_key(g)), "{last:?}");
}

/// A tree written by an earlier mup grouped a tier's nodes in one `[group:]`. Its running
/// daemon is still driven by its own meta.yaml; the regenerated tree, applied with `mup ctl
/// reload`, moves each node into its own group once (each running node restarted once) and
/// says why; after that nothing changes.
#[test]
fn an_older_trees_tier_group_is_regrouped_once_by_reload() {
    let topo = "mongod_servers:
  - {host: localhost, port: {p0}, replica_set: rs0}
  - {host: localhost, port: {p1}, replica_set: rs0}
";
    let c = TestCluster::new("regroup", topo, 2);
    let programs: Vec<String> = c.ports.iter().map(|p| format!("mongod-{p}")).collect();
    let ini = c.tree.join("supervisor.ini");
    let mut text = std::fs::read_to_string(&ini).expect("supervisor.ini");
    text.push_str(&format!(
        "\n[group:mongod-servers]\nprograms = {}\n",
        programs.join(",")
    ));
    std::fs::write(&ini, text).expect("write supervisor.ini");
    let meta = c.tree.join("meta.yaml");
    let mut text = std::fs::read_to_string(&meta).expect("meta.yaml");
    for p in &programs {
        text = text.replace(
            &format!("supervisor_group: {p}\n"),
            "supervisor_group: mongod-servers\n",
        );
    }
    std::fs::write(&meta, text).expect("write meta.yaml");
    // This mup still drives it: its meta.yaml names the groups the daemon runs.
    c.ok(&["up"]);
    c.ok(&["start"]);
    wait_started(&c.tree);
    let groups = |c: &TestCluster| -> BTreeMap<String, (String, String, u32)> {
        c.client()
            .get_all_process_info()
            .expect("getAllProcessInfo")
            .into_iter()
            .filter(|p| !is_monitoring(&p.name))
            .map(|p| (p.name.clone(), (p.group, p.statename, p.pid)))
            .collect()
    };
    let old = groups(&c);
    assert_eq!(old.len(), 2);
    assert!(
        old.values()
            .all(|(g, s, _)| g == "mongod-servers" && s == "RUNNING"),
        "{old:?}"
    );

    c.gen();
    let plan = c.ok(&["reload", "--dry-run"]);
    assert!(
        plan.contains("mongod-servers: removed (a tier group of an older tree"),
        "{plan}"
    );
    c.ok(&["reload"]);
    wait_started(&c.tree);
    let new = groups(&c);
    for p in &programs {
        let (group, state, pid) = &new[p];
        assert_eq!((group, state.as_str()), (p, "RUNNING"), "{new:?}");
        assert_ne!(*pid, old[p].2, "{p} restarted once, into its own group");
    }
    let again = c.ok(&["reload"]);
    assert!(again.contains("nothing to do"), "{again}");
    assert_eq!(groups(&c), new);
}
