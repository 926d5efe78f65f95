//! Secured clusters (`--auth`, `--tls`) against the real supervisord and the stand-ins, checked
//! with pymongo (an independent driver) and /proc: the unauthenticated get Unauthorized (13),
//! the recorded credentials and the printed URI work, plain connections fail, the password is
//! in no process's command line or environment, secrets are private files, a wrong password
//! is a clear error, a restart keeps it all; and the refusals around it.

use crate::common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const SHARDED: &str = "config_servers:
  - {host: localhost, port: {p0}, replica_set: cfg}
mongod_servers:
  - {host: localhost, port: {p1}, replica_set: shard1}
  - {host: localhost, port: {p2}, replica_set: shard1}
  - {host: 127.0.0.1, port: {p3}, replica_set: shard2}
  - {host: 127.0.0.1, port: {p4}, replica_set: shard2}
mongos_servers:
  - {host: localhost, port: {p5}}
  - {host: localhost, port: {p6}}
";

/// The cluster `builder` makes, deployed: what the deploy did, asserted successful, and
/// supervisord's startsecs waited out.
#[track_caller]
fn deploy(builder: Builder) -> (TestCluster, Output) {
    let (c, out) = builder.try_deploy();
    let out = out.ok();
    wait_started(&c.tree);
    (c, out)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The first user's password, as meta.yaml records it.
fn password(tree: &Path) -> String {
    read_meta(tree)["security"]["password"]
        .as_str()
        .expect("security.password in meta.yaml")
        .to_string()
}

/// What an independent client sees. The password is read from meta.yaml by the script
/// itself (never on its command line).
const GOALS: &str = r#"
import json, re, sys
from concurrent.futures import ThreadPoolExecutor
from pymongo import MongoClient
from pymongo.errors import OperationFailure
cfg = json.loads(sys.argv[1])
password = re.search(r"^  password: (\S+)$", open(cfg["meta"]).read(), re.M).group(1)
tls = dict(tls=True, tlsCAFile=cfg["ca"])
def direct(port, timeout=5000, **kw):
    return MongoClient(f"mongodb://localhost:{port}/?directConnection=true",
                       serverSelectionTimeoutMS=timeout, **kw)
def code(f):
    try:
        f()
        return 0
    except OperationFailure as e:
        return e.code
def fails(f):
    try:
        f()
        return False
    except Exception:
        return True
out = {}
out["anonymous_routers"] = [code(lambda p=p: direct(p, **tls).admin.command("listDatabases"))
                            for p in cfg["routers"]]
out["anonymous_primaries"] = [code(lambda p=p: direct(p, **tls).admin.command("listDatabases"))
                              for p in cfg["primaries"]]
with ThreadPoolExecutor(len(cfg["nodes"])) as pool:
    out["plain_fails"] = list(pool.map(
        lambda p: fails(lambda: direct(p, timeout=700).admin.command("hello")), cfg["nodes"]))
c = MongoClient(cfg["uri"].replace("mup@", f"mup:{password}@", 1), serverSelectionTimeoutMS=5000)
out["databases"] = sorted(d["name"] for d in c.admin.command("listDatabases")["databases"])
out["shards"] = sorted(s["_id"] for s in c.admin.command("listShards")["shards"])
out["set_status"] = [direct(p, username="mup", password=password, **tls)
                     .admin.command("replSetGetStatus")["set"] for p in cfg["primaries"]]
print(json.dumps(out))
"#;

/// Checks the issue's goals on the running cluster `name` (routers on `routers`, every node
/// on `nodes`) with pymongo.
fn check_goals(c: &TestCluster, routers: &[u16], nodes: &[u16]) {
    let tree = &c.tree;
    let uri = c
        .run(&["cluster", "uri", &c.name])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert!(
        uri.starts_with("mongodb://mup@") && uri.contains("tls=true&tlsCAFile="),
        "{uri}"
    );
    assert!(
        !uri.contains(&password(tree)),
        "no password without --show-password: {uri}"
    );
    let d = c.display().json();
    assert_eq!(d["security"], "access control (user mup), TLS", "{d}");
    let primaries: Vec<u64> = d["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter(|n| n["role"] == "mongod" && n["member_state"] == "PRIMARY")
        .map(|n| {
            n["id"]
                .as_str()
                .and_then(|id| id.rsplit(':').next()?.parse().ok())
                .expect("port")
        })
        .collect();
    assert_eq!(
        primaries.len(),
        2,
        "one primary per shard, as display says: {d}"
    );
    let cfg = serde_json::json!({
        "meta": tree.join("meta.yaml"),
        "ca": tree.join("security/ca.pem"),
        "uri": uri,
        "routers": routers,
        "primaries": primaries,
        "nodes": nodes,
    });
    let out = pymongo(GOALS, &[&cfg.to_string()]);
    assert_eq!(
        out["anonymous_routers"],
        serde_json::json!([13, 13]),
        "{out}"
    );
    assert_eq!(
        out["anonymous_primaries"],
        serde_json::json!([13, 13]),
        "{out}"
    );
    let plain = out["plain_fails"].as_array().expect("a list");
    assert_eq!(plain.len(), nodes.len(), "{out}");
    assert!(
        plain.iter().all(|f| f == true),
        "every node refuses plain connections: {out}"
    );
    assert!(
        out["databases"]
            .as_array()
            .is_some_and(|a| a.iter().any(|n| n == "admin")),
        "{out}"
    );
    assert_eq!(
        out["shards"],
        serde_json::json!(["shard1", "shard2"]),
        "{out}"
    );
    assert_eq!(out["set_status"].as_array().map(Vec::len), Some(2), "{out}");
}

/// Every process whose command line or environment holds `secret` (pid, which).
fn processes_holding(secret: &str) -> Vec<(u32, &'static str)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        for which in ["cmdline", "environ"] {
            let bytes = std::fs::read(entry.path().join(which)).unwrap_or_default();
            if bytes.windows(secret.len()).any(|w| w == secret.as_bytes()) {
                found.push((pid, which));
            }
        }
    }
    found
}

#[test]
fn a_sharded_cluster_with_auth_and_tls_refuses_the_unauthenticated_and_keeps_its_secrets() {
    let (
        h,
        Output {
            stdout: out,
            stderr: err,
            ..
        },
    ) = deploy(
        TestCluster::named("sec-shards")
            .topology(SHARDED)
            .flags(&["--auth", "--tls"]),
    );
    let ports = h.ports.clone();
    let tree = h.tree.clone();
    let secret = password(&tree);
    assert_eq!(secret.len(), 32, "a random password");
    assert!(out.contains("connect: mongodb://mup@localhost:"), "{out}");
    assert!(
        !out.contains(&secret) && !err.contains(&secret),
        "{out}\n{err}"
    );

    // Private files: the keyFile and every private key 0400, what holds a password 0600.
    let security = tree.join("security");
    assert_eq!(mode(&security), 0o700);
    assert_eq!(mode(&security.join("keyfile")), 0o400);
    assert_eq!(mode(&security.join("ca-key.pem")), 0o400);
    for (host, port) in [
        ("localhost", ports[0]),
        ("127.0.0.1", ports[3]),
        ("localhost", ports[5]),
    ] {
        assert_eq!(mode(&security.join(format!("{host}-{port}.pem"))), 0o400);
    }
    assert_eq!(mode(&tree.join("meta.yaml")), 0o600);
    assert_eq!(mode(&tree.join("supervisor.ini")), 0o600);
    let conf =
        std::fs::read_to_string(tree.join(format!("conf/localhost-{}/mongos.conf", ports[5])))
            .expect("mongos.conf");
    assert!(
        conf.contains("keyFile:") && conf.contains("mode: requireTLS"),
        "{conf}"
    );

    check_goals(&h, &ports[5..], &ports);

    // No process (of the tree, or any other) has the password on its command line or in
    // its environment; the tree's processes are among those looked at.
    let tree_pids: Vec<u32> = h.pids().into_values().collect();
    assert_eq!(tree_pids.len(), 7);
    assert!(tree_pids
        .iter()
        .all(|p| *p > 0 && Path::new(&format!("/proc/{p}/environ")).exists()));
    assert_eq!(processes_holding(&secret), vec![], "the password leaked");

    // A wrong password in meta.yaml: the start says which credentials the server refused.
    let meta = tree.join("meta.yaml");
    let original = std::fs::read_to_string(&meta).expect("meta");
    std::fs::write(&meta, original.replace(&secret, "WrongPassword123")).expect("write meta");
    let Output {
        code,
        stdout: out,
        stderr: err,
        ..
    } = h.run(&["cluster", "start", "sec-shards"]);
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains("refused user \"mup\"") && err.contains("security.password"),
        "{err}"
    );
    std::fs::write(&meta, &original).expect("restore meta");

    // Stopped and started again: still secured, the same user.
    h.run(&["cluster", "stop", "sec-shards"]).ok();
    h.run(&["cluster", "start", "sec-shards"]).ok();
    wait_started(&tree);
    check_goals(&h, &ports[5..], &ports);
    assert_eq!(password(&tree), secret);
}

/// The same goals with real MongoDB binaries (`MUP_TEST_MONGODB_BIN`): what the stand-in
/// cannot show (the real option names, the real localhost exception and TLS).
#[test]
#[ignore = "needs real MongoDB binaries: MUP_TEST_MONGODB_BIN=DIR cargo test real_binaries -- --ignored"]
fn real_binaries_with_auth_and_tls() {
    let bin = std::env::var_os("MUP_TEST_MONGODB_BIN")
        .map(PathBuf::from)
        .expect("MUP_TEST_MONGODB_BIN names a directory holding real mongod and mongos");
    let (h, _) = deploy(
        TestCluster::named("real-secured")
            .topology(SHARDED)
            .bin(&bin)
            .flags(&["--auth", "--tls"]),
    );
    let ports = h.ports.clone();
    check_goals(&h, &ports[5..], &ports);
    h.run(&["cluster", "destroy", "real-secured", "--yes"]).ok();
}

const REPLICA_SET: &str = "mongod_servers:
  - {host: localhost, port: {p0}, replica_set: rs0}
  - {host: localhost, port: {p1}, replica_set: rs0}
";

/// A mongosh that records what it was given: its arguments, its environment, the scripts it
/// was asked to run (and their modes), into mongosh.json beside itself.
const FAKE_MONGOSH: &str = r#"#!/usr/bin/env python3
import json, os, sys
scripts = {a: [open(a).read(), oct(os.stat(a).st_mode & 0o777)] for a in sys.argv[1:] if a.endswith(".js")}
with open(os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), "mongosh.json"), "w") as f:
    json.dump({"argv": sys.argv, "environ": dict(os.environ), "scripts": scripts}, f)
"#;

/// A bin directory with the stand-ins and the recording mongosh.
fn bin_with_mongosh(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    for tool in ["mongod", "mongos"] {
        std::os::unix::fs::symlink(stand_in_bin().join("mongod"), bin.join(tool)).expect("link");
    }
    let shell = bin.join("mongosh");
    std::fs::write(&shell, FAKE_MONGOSH).expect("write mongosh");
    std::fs::set_permissions(&shell, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    bin
}

const USER_CHECK: &str = r#"
import json, sys
from pymongo import MongoClient
from pymongo.errors import OperationFailure
port, user, pwfile = sys.argv[1], sys.argv[2], sys.argv[3]
password = open(pwfile).read().strip()
def run(**kw):
    try:
        c = MongoClient(f"mongodb://localhost:{port}/?directConnection=true",
                        serverSelectionTimeoutMS=5000, **kw)
        return c.admin.command("listDatabases")["ok"]
    except OperationFailure as e:
        return e.code
print(json.dumps({"anonymous": run(), "user": run(username=user, password=password)}))
"#;

#[test]
fn auth_on_a_replica_set_user_and_password_file_connect_key_file_and_refusals() {
    let tools = tempfile::tempdir().expect("tempdir");
    let bin = bin_with_mongosh(tools.path());

    // A cluster deployed without --auth is not secured afterwards by a deploy with it.
    let (plain, _) = deploy(
        TestCluster::named("sec-plain")
            .topology("mongod_servers:\n  - {host: localhost, port: {p0}, replica_set: rs0}\n")
            .bin(&bin),
    );
    assert!(!plain.tree.join("security").exists());
    let topology = plain.topology_file();
    let err = {
        let _ports = allocation_lock();
        plain.run(&[
            "cluster",
            "deploy",
            "sec-plain",
            topology.to_str().expect("utf8"),
            "--bin-path",
            bin.to_str().expect("utf8"),
            "--yes",
            "--auth",
        ])
    }
    .code(2)
    .stderr;
    assert!(
        err.contains("already deployed without --auth")
            && err.contains("mup cluster destroy sec-plain"),
        "{err}"
    );
    let out = plain.run(&["cluster", "credentials", "sec-plain"]).stdout;
    assert!(out.contains("not secured"), "{out}");

    // --auth with a user name and a password file.
    let pwfile = tools.path().join("password");
    std::fs::write(&pwfile, "Sesame-Open-42\n").expect("write password");
    let pw = pwfile.to_str().expect("utf8");
    let (h, Output { stdout: out, .. }) = deploy(
        TestCluster::named("sec-rs")
            .topology(REPLICA_SET)
            .bin(&bin)
            .flags(&["--auth", "--username", "alice", "--password-file", pw]),
    );
    let topo = h.topology_file();
    assert!(
        out.contains("mongodb://alice@localhost:") && !out.contains("Sesame"),
        "{out}"
    );
    let tree = h.tree.clone();
    assert_eq!(password(&tree), "Sesame-Open-42");
    let d = h.display().json();
    let primary = d["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["member_state"] == "PRIMARY")
        .and_then(|n| n["id"].as_str()?.rsplit(':').next()?.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("display names the primary (authenticated): {d}"));
    let out = pymongo(USER_CHECK, &[&primary.to_string(), "alice", pw]);
    assert_eq!(out["anonymous"], 13, "{out}");
    assert_eq!(out["user"], 1.0, "{out}");
    let shown = h
        .run(&["cluster", "uri", "sec-rs", "--show-password"])
        .ok()
        .stdout;
    assert!(
        shown.contains("mongodb://alice:Sesame-Open-42@localhost:"),
        "{shown}"
    );
    let creds = h.run(&["cluster", "credentials", "sec-rs"]).ok().stdout;
    assert!(
        creds.contains("user:        alice")
            && creds.contains("meta.yaml")
            && !creds.contains("Sesame"),
        "{creds}"
    );

    // connect: mongosh gets the credentials from a private script, not its argv or env.
    h.run(&["cluster", "connect", "sec-rs"]).ok();
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(bin.join("mongosh.json")).expect("mongosh ran"),
    )
    .expect("json");
    let argv = record["argv"].to_string();
    assert!(
        !argv.contains("Sesame") && argv.contains("--shell"),
        "{argv}"
    );
    assert!(
        !record["environ"].to_string().contains("Sesame"),
        "{record}"
    );
    let scripts = record["scripts"].as_object().expect("scripts");
    assert_eq!(scripts.len(), 1, "{record}");
    let (path, script) = scripts.iter().next().expect("one script");
    assert!(
        script[0]
            .as_str()
            .is_some_and(|s| s.contains(r#".auth("alice", "Sesame-Open-42")"#)),
        "{script}"
    );
    assert_eq!(script[1], "0o600", "{script}");
    assert!(
        !Path::new(path).exists(),
        "the script is removed when the shell exits"
    );

    // A keyFile readable by others: the node refuses to start, as mongod does (exit 1).
    let key = tree.join("security/keyfile");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let meta = tree.join("meta.yaml");
    let Output {
        code, stdout: out, ..
    } = h.run(&[
        "gen",
        topo.to_str().expect("utf8"),
        "--meta",
        meta.to_str().expect("utf8"),
        "--out",
        tree.to_str().expect("utf8"),
        "--check",
    ]);
    assert_eq!(code, 1, "gen --check names the drift: {out}");
    assert!(out.contains("differs: security/keyfile (mode 644"), "{out}");
    let node = format!("localhost:{}", h.ports[0]);
    let Output {
        code, stderr: err, ..
    } = h.run(&["cluster", "restart", "sec-rs", "-N", &node]);
    assert_ne!(code, 0);
    assert!(
        err.contains("are too open"),
        "the node's log says why: {err}"
    );
    // gen makes it private again (and --dry-run says it will).
    let gen = |extra: &str| {
        let mut args = vec![
            "gen",
            topo.to_str().expect("utf8"),
            "--meta",
            meta.to_str().expect("utf8"),
            "--out",
            tree.to_str().expect("utf8"),
        ];
        if !extra.is_empty() {
            args.push(extra);
        }
        h.run(&args)
    };
    let Output {
        code, stdout: out, ..
    } = gen("--dry-run");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("chmod 0400 security/keyfile"), "{out}");
    assert_eq!(mode(&key), 0o644, "a dry run changes nothing");
    let Output {
        code,
        stdout: out,
        stderr: err,
        ..
    } = gen("");
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(mode(&key), 0o400, "gen made the keyFile private again");
    h.run(&["cluster", "start", "sec-rs"]).ok();
}
