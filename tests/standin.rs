//! The test stand-in models the real server's rules that day-two operations depend on
//! (docs/mongodb.md §4–§6): versions and featureCompatibilityVersion, replSetStepDown,
//! replSetReconfig, the balancer and removeShard. Each stand-in is started directly and
//! checked with the official Rust driver.

use crate::common::*;
use mongodb::bson::{doc, Bson, Document};
use std::time::Duration;

fn initiate(ports: &[u16], set: &str, configsvr: bool) {
    let members: Vec<Document> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| doc! {"_id": i as i32, "host": format!("localhost:{p}")})
        .collect();
    let mut config = doc! {"_id": set, "members": members};
    if configsvr {
        config.insert("configsvr", true);
    }
    try_command(ports[0], doc! {"replSetInitiate": config}).expect("replSetInitiate");
}

/// `n` members of `set`, initiated, with a primary.
fn replica_set(tmp: &std::path::Path, set: &str, n: usize) -> Vec<StandIn> {
    let nodes: Vec<StandIn> = (0..n)
        .map(|i| {
            start_in(
                &tmp.join(format!("{set}-{i}")),
                &Spec {
                    set: Some(set),
                    ..Spec::default()
                },
            )
        })
        .collect();
    let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
    initiate(&ports, set, false);
    agreed_primary(&ports);
    nodes
}

fn fcv(port: u16) -> String {
    let r = try_command(
        port,
        doc! {"getParameter": 1, "featureCompatibilityVersion": 1},
    )
    .expect("getParameter");
    r.get_document("featureCompatibilityVersion")
        .and_then(|d| d.get_str("version"))
        .expect("version")
        .to_string()
}

#[test]
fn fcv_is_kept_in_the_data_and_a_binary_two_majors_away_exits_62() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("n");
    let spec = |version| Spec {
        version,
        ..Spec::default()
    };
    {
        let old = start_in(&dir, &spec("6.0.15"));
        assert_eq!(fcv(old.port), "6.0");
    }
    let (status, log) = refused_start(&dir, &spec("8.0.4"));
    assert_eq!(status, Some(62), "{log}");
    assert!(log.contains("Wrong mongod version"), "{log}");
    assert!(
        log.contains("Invalid feature compatibility version value '6.0'"),
        "{log}"
    );

    let node = start_in(&dir, &spec("7.0.14"));
    let info = try_command(node.port, doc! {"buildInfo": 1}).expect("buildInfo");
    assert_eq!(info.get_str("version"), Ok("7.0.14"));
    assert_eq!(
        info.get_array("versionArray").expect("versionArray").len(),
        4
    );
    assert_eq!(
        fcv(node.port),
        "6.0",
        "a new binary leaves the FCV as it was"
    );
    let (code, msg) = error_code(node.port, doc! {"setFeatureCompatibilityVersion": "7.0"});
    assert_eq!(code, 7369100, "{msg}");
    assert!(msg.contains("confirm: true"), "{msg}");
    let (code, _) = error_code(
        node.port,
        doc! {"setFeatureCompatibilityVersion": "8.0", "confirm": true},
    );
    assert_eq!(code, 2, "a 7.0 binary cannot set FCV 8.0");
    try_command(
        node.port,
        doc! {"setFeatureCompatibilityVersion": "7.0", "confirm": true},
    )
    .expect("setFCV 7.0");
    assert_eq!(fcv(node.port), "7.0");
    drop(node);

    let newer = start_in(&dir, &spec("8.0.4"));
    assert_eq!(fcv(newer.port), "7.0");
    drop(newer);
    let (status, log) = refused_start(&dir, &spec("6.0.15"));
    assert_eq!(
        status,
        Some(62),
        "a binary below the data's FCV refuses too: {log}"
    );
}

#[test]
fn step_down_hands_the_primary_to_a_secondary() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let nodes = replica_set(tmp.path(), "rs0", 3);
    let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
    let first = agreed_primary(&ports);
    assert_eq!(first, format!("localhost:{}", ports[0]));

    let (code, _) = error_code(ports[1], doc! {"replSetStepDown": 60});
    assert_eq!(code, 10107, "a secondary cannot step down");
    let (code, msg) = error_code(
        ports[0],
        doc! {"replSetStepDown": 5, "secondaryCatchUpPeriodSecs": 10},
    );
    assert_eq!(code, 2, "{msg}");
    try_command(ports[0], doc! {"replSetStepDown": 60}).expect("replSetStepDown");
    let second = agreed_primary(&ports);
    assert_ne!(second, first, "a new primary after the step-down");
    let hello = try_command(ports[0], doc! {"hello": 1}).expect("hello");
    assert_eq!(hello.get_bool("isWritablePrimary"), Ok(false));

    let single = replica_set(tmp.path(), "solo", 1);
    let (code, msg) = error_code(
        single[0].port,
        doc! {"replSetStepDown": 2, "secondaryCatchUpPeriodSecs": 1},
    );
    assert_eq!(code, 262, "no electable secondary: {msg}");
    assert!(msg.contains("No electable secondaries caught up"), "{msg}");
}

#[test]
fn repl_set_reconfig_follows_the_version_and_voting_rules() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let nodes = replica_set(tmp.path(), "rs0", 3);
    let spare = start_in(
        &tmp.path().join("spare"),
        &Spec {
            set: Some("rs0"),
            ..Spec::default()
        },
    );
    let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
    let config = try_command(ports[0], doc! {"replSetGetConfig": 1})
        .expect("replSetGetConfig")
        .get_document("config")
        .expect("config")
        .clone();
    assert_eq!(config.get_i32("version"), Ok(1));
    let members = config.get_array("members").expect("members").clone();
    let with = |version: i32, members: Vec<Bson>| {
        let mut c = config.clone();
        c.insert("version", version);
        c.insert("members", members);
        doc! {"replSetReconfig": c}
    };

    let (code, msg) = error_code(ports[0], with(1, members.clone()));
    assert_eq!(code, 103, "the version must increase: {msg}");
    let (code, _) = error_code(ports[1], with(2, members.clone()));
    assert_eq!(code, 10107, "only the primary reconfigures");
    let (code, msg) = error_code(ports[0], with(2, members[..1].to_vec()));
    assert_eq!(code, 93, "two voting members at once: {msg}");
    let mut absent = members.clone();
    absent.push(Bson::Document(
        doc! {"_id": 3, "host": format!("localhost:{}", free_port())},
    ));
    let (code, msg) = error_code(ports[0], with(2, absent));
    assert_eq!(code, 74, "a new member must answer: {msg}");

    let mut added = members.clone();
    added.push(Bson::Document(
        doc! {"_id": 3, "host": format!("localhost:{}", spare.port)},
    ));
    try_command(ports[0], with(2, added)).expect("add one member");
    let learnt = try_command(spare.port, doc! {"replSetGetConfig": 1}).expect("on the new member");
    let learnt = learnt.get_document("config").expect("config");
    assert_eq!(learnt.get_i32("version"), Ok(2));
    assert_eq!(learnt.get_array("members").expect("members").len(), 4);

    try_command(ports[0], with(3, members.clone())).expect("remove it again");
    let (code, _) = error_code(spare.port, doc! {"replSetGetStatus": 1});
    assert_eq!(code, 93, "a removed member is not in the set");
    assert_eq!(
        agreed_primary(&ports),
        format!("localhost:{}", ports[0]),
        "no election"
    );
}

#[test]
fn through_mongos_fcv_reaches_every_shard_and_remove_shard_drains_with_the_balancer() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let drain = [("MUP_STANDIN_DRAIN_SECS", "0.5")];
    let cfg = start_in(
        &tmp.path().join("cfg"),
        &Spec {
            set: Some("cfg"),
            extra: "sharding:\n  clusterRole: configsvr\n",
            env: &drain,
            ..Spec::default()
        },
    );
    initiate(&[cfg.port], "cfg", true);
    agreed_primary(&[cfg.port]);
    let shards: Vec<StandIn> = ["sh1", "sh2"]
        .iter()
        .map(|s| replica_set(tmp.path(), s, 1).remove(0))
        .collect();
    let extra = format!("sharding:\n  configDB: cfg/localhost:{}\n", cfg.port);
    let mongos = start_in(
        &tmp.path().join("mongos"),
        &Spec {
            tool: "mongos",
            extra: &extra,
            ..Spec::default()
        },
    );
    let m = mongos.port;
    for (name, shard) in ["sh1", "sh2"].iter().zip(&shards) {
        let spec = format!("{name}/localhost:{}", shard.port);
        try_command(m, doc! {"addShard": spec, "name": *name}).expect("addShard");
    }
    // setFeatureCompatibilityVersion through mongos reaches every shard.
    assert_eq!(fcv(m), "7.0");
    try_command(
        m,
        doc! {"setFeatureCompatibilityVersion": "6.0", "confirm": true},
    )
    .expect("setFCV through mongos");
    assert_eq!(
        (fcv(shards[1].port), fcv(cfg.port)),
        ("6.0".into(), "6.0".into())
    );
    let mode = |m| {
        try_command(m, doc! {"balancerStatus": 1})
            .expect("status")
            .get_str("mode")
            .map(String::from)
    };
    assert_eq!(mode(m), Ok("full".into()));
    try_command(m, doc! {"balancerStop": 1}).expect("balancerStop");
    assert_eq!(mode(m), Ok("off".into()));
    let (code, _) = error_code(shards[0].port, doc! {"balancerStop": 1});
    assert_eq!(code, 59, "the balancer commands are mongos's");

    let state = |m| {
        let r = try_command(m, doc! {"removeShard": "sh2"}).expect("removeShard");
        r.get_str("state").expect("state").to_string()
    };
    assert_eq!(state(m), "started");
    let listed = try_command(m, doc! {"listShards": 1}).expect("listShards");
    let sh2 = listed.get_array("shards").expect("shards")[1]
        .as_document()
        .expect("doc")
        .clone();
    assert_eq!(sh2.get_bool("draining"), Ok(true));
    std::thread::sleep(Duration::from_millis(800));
    let ongoing = try_command(m, doc! {"removeShard": "sh2"}).expect("removeShard");
    assert_eq!(
        ongoing.get_str("state"),
        Ok("ongoing"),
        "no chunk moves while the balancer is off"
    );
    assert!(
        ongoing
            .get_document("remaining")
            .expect("remaining")
            .get_i64("chunks")
            .expect("chunks")
            > 0
    );

    try_command(m, doc! {"balancerStart": 1}).expect("balancerStart");
    assert!(wait_until(Duration::from_secs(20), || state(m) == "completed"));
    let listed = try_command(m, doc! {"listShards": 1}).expect("listShards");
    let ids: Vec<&str> = listed
        .get_array("shards")
        .expect("shards")
        .iter()
        .map(|s| {
            s.as_document()
                .and_then(|d| d.get_str("_id").ok())
                .expect("_id")
        })
        .collect();
    assert_eq!(ids, ["sh1"]);
    assert_eq!(
        error_code(m, doc! {"removeShard": "sh2"}).0,
        70,
        "ShardNotFound once removed"
    );
    assert_eq!(
        error_code(m, doc! {"removeShard": "sh1"}).0,
        20,
        "the last shard stays"
    );
}
