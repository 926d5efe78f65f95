//! Day two of a secured cluster: a replica set deployed with `--auth --tls` grows by one member
//! (scale-out), is upgraded to the next major (a rolling upgrade), and shrinks again
//! (scale-in) — and stays secured throughout, as an independent client (pymongo) sees it: the
//! new member refuses the unauthenticated (13) and plain connections, the recorded user works
//! on every member over TLS with the cluster's CA, every member runs the new version.

use crate::common::mirror::stand_in_mirror;
use crate::common::*;

const OLD: &str = "7.0.14";
const NEW: &str = "8.0.4";

const TOPOLOGY: &str = "mongod_servers:
  - {host: localhost, port: {p0}, replica_set: rs0}
  - {host: localhost, port: {p1}, replica_set: rs0}
  - {host: localhost, port: {p2}, replica_set: rs0}
";

/// What pymongo sees of `ports`: per member, the code of an unauthenticated listDatabases over
/// TLS, whether a plain connection fails, and (with the recorded user) its version; and the
/// set's member count and their hosts from replSetGetConfig.
const SEEN: &str = r#"
import json, re, sys
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
out = {"anonymous": [], "plain_fails": [], "versions": []}
for p in cfg["ports"]:
    out["anonymous"].append(code(lambda: direct(p, **tls).admin.command("listDatabases")))
    out["plain_fails"].append(fails(lambda: direct(p, timeout=700).admin.command("hello")))
    c = direct(p, username="mup", password=password, **tls)
    out["versions"].append(c.admin.command("buildInfo")["version"])
c = direct(cfg["ports"][0], username="mup", password=password, **tls)
conf = c.admin.command("replSetGetConfig")["config"]
out["members"] = sorted(int(m["host"].rsplit(":", 1)[1]) for m in conf["members"])
print(json.dumps(out))
"#;

fn seen(tree: &std::path::Path, ports: &[u16]) -> serde_json::Value {
    let cfg = serde_json::json!({
        "meta": tree.join("meta.yaml"),
        "ca": tree.join("security/ca.pem"),
        "ports": ports,
    });
    pymongo(SEEN, &[&cfg.to_string()])
}

fn sorted(ports: &[u16]) -> serde_json::Value {
    let mut v = ports.to_vec();
    v.sort_unstable();
    serde_json::json!(v)
}

fn assert_secured(doc: &serde_json::Value, members: usize, version: &str) {
    assert_eq!(
        doc["anonymous"],
        serde_json::json!(vec![13; members]),
        "Unauthorized on every member without credentials: {doc}"
    );
    assert_eq!(
        doc["plain_fails"],
        serde_json::json!(vec![true; members]),
        "no plain connection: {doc}"
    );
    assert_eq!(
        doc["versions"],
        serde_json::json!(vec![version; members]),
        "{doc}"
    );
}

#[test]
fn a_secured_replica_set_grows_is_upgraded_and_shrinks_secured() {
    let mirror = stand_in_mirror(&[OLD, NEW]);
    let h = TestCluster::named("secday2")
        .topology(TOPOLOGY)
        .ports(4)
        .release(OLD, &mirror.url)
        .flags(&["--auth", "--tls"])
        .deploy();
    let (p, extra) = (h.ports.clone(), h.ports[3]);
    let tree = h.tree.clone();

    // Scale-out: the new member comes up secured and joins the set.
    let fragment = h.scratch().join("more.yaml");
    std::fs::write(
        &fragment,
        format!("mongod_servers:\n  - {{host: localhost, port: {extra}, replica_set: rs0}}\n"),
    )
    .expect("fragment");
    h.run(&[
        "cluster",
        "scale-out",
        "secday2",
        fragment.to_str().expect("utf8"),
    ])
    .ok();
    wait_started(&tree);
    let four = [p[0], p[1], p[2], extra];
    let doc = seen(&tree, &four);
    assert_secured(&doc, 4, OLD);
    assert_eq!(doc["members"], sorted(&four), "{doc}");
    assert!(tree
        .join(format!("security/localhost-{extra}.pem"))
        .is_file());

    // The rolling upgrade authenticates to every member and leaves them secured.
    h.run(&[
        "cluster",
        "upgrade",
        "secday2",
        "--version",
        NEW,
        "--mirror",
        &mirror.url,
        "--yes",
    ])
    .ok();
    wait_started(&tree);
    assert_secured(&seen(&tree, &four), 4, NEW);

    // Scale-in of the added member: the set is the three again, still secured.
    let node = format!("localhost:{extra}");
    h.run(&["cluster", "scale-in", "secday2", "-N", &node]).ok();
    let three = [p[0], p[1], p[2]];
    let doc = seen(&tree, &three);
    assert_secured(&doc, 3, NEW);
    assert_eq!(doc["members"], sorted(&three), "{doc}");
}
