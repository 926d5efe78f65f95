//! The test stand-in models the real server's access control and TLS (docs/mongodb.md §7):
//! keyFile checks at start, internal authentication between members, SCRAM checked by pymongo,
//! Unauthorized (13), the localhost exception, requireTLS.

use crate::common::*;
use mongodb::bson::doc;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn key_file(dir: &Path, name: &str, key: &str, mode: u32) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    let path = dir.join(name);
    std::fs::write(&path, key).expect("write key");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    path
}

fn security(key: &Path) -> String {
    format!("security:\n  keyFile: {}\n", key.display())
}

#[test]
fn a_key_file_open_to_others_missing_or_empty_stops_the_start() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let open = key_file(tmp.path(), "open", "c2VjcmV0a2V5MTIz\n", 0o644);
    let empty = key_file(tmp.path(), "empty", "\n", 0o400);
    let missing = tmp.path().join("missing");
    for (key, why) in [
        (&open, "are too open"),
        (&empty, "has length 0"),
        (&missing, "No such file or directory"),
    ] {
        let extra = security(key);
        let (status, log) = refused_start(
            &tmp.path().join("n"),
            &Spec {
                extra: &extra,
                ..Spec::default()
            },
        );
        assert_eq!(status, Some(1), "{}: {log}", key.display());
        assert!(
            log.contains("Read security file failed") && log.contains(why),
            "{log}"
        );
        assert!(log.contains("Unable to acquire security key[s]"), "{log}");
    }
    let extra = format!(
        "{}sharding:\n  configDB: cfg/localhost:1\n",
        security(&open)
    );
    let (status, log) = refused_start(
        &tmp.path().join("s"),
        &Spec {
            tool: "mongos",
            extra: &extra,
            ..Spec::default()
        },
    );
    assert_eq!(status, Some(14), "mongos exits 14: {log}");
}

#[test]
fn members_with_different_key_files_fail_the_initiation_quorum_check() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let one = security(&key_file(tmp.path(), "one", "b25la2V5MTIzNDU2", 0o400));
    let two = security(&key_file(tmp.path(), "two", "dHdva2V5NjU0MzIx", 0o600));
    let node = |name: &str, extra: &str| {
        start_in(
            &tmp.path().join(name),
            &Spec {
                set: Some("rs0"),
                extra,
                ..Spec::default()
            },
        )
    };
    let (a, b, c) = (node("a", &one), node("b", &two), node("c", &one));
    let config = |other: u16| {
        doc! {"replSetInitiate": {"_id": "rs0", "members": [
            {"_id": 0, "host": format!("localhost:{}", a.port)},
            {"_id": 1, "host": format!("localhost:{other}")},
        ]}}
    };
    let (code, msg) = error_code(a.port, config(b.port));
    assert_eq!(code, 74, "{msg}");
    assert!(msg.contains("Authentication failed"), "{msg}");
    try_command(a.port, config(c.port)).expect("the same keyFile: initiated (localhost exception)");
}

const SCRAM: &str = r#"
import json, sys
from pymongo import MongoClient
from pymongo.errors import OperationFailure
ports = sys.argv[1:]
def client(port, **kw):
    return MongoClient(f"mongodb://localhost:{port}/?directConnection=true",
                       serverSelectionTimeoutMS=5000, **kw)
def code(f):
    try:
        f()
        return 0
    except OperationFailure as e:
        return e.code
out = {}
out["listDatabases_before"] = code(lambda: client(ports[0]).admin.command("listDatabases"))
out["ping_before"] = client(ports[0]).admin.command("ping")["ok"]
out["createUser_first"] = code(lambda: client(ports[0]).admin.command(
    "createUser", "mup", pwd="s3cret", roles=[{"role": "root", "db": "admin"}]))
out["createUser_second"] = code(lambda: client(ports[0]).admin.command(
    "createUser", "other", pwd="x", roles=["root"]))
for mech in ("SCRAM-SHA-256", "SCRAM-SHA-1"):
    for port in ports:
        c = client(port, username="mup", password="s3cret", authMechanism=mech)
        out[f"{mech}_{port}"] = [d["name"] for d in c.admin.command("listDatabases")["databases"]]
out["wrong_password"] = code(lambda: client(ports[0], username="mup", password="nope")
                             .admin.command("listDatabases"))
print(json.dumps(out))
"#;

#[test]
fn pymongo_authenticates_with_scram_and_the_unauthenticated_get_13() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let extra = security(&key_file(tmp.path(), "key", "c2VjcmV0a2V5MTIz", 0o400));
    let nodes: Vec<StandIn> = ["a", "b"]
        .iter()
        .map(|n| {
            start_in(
                &tmp.path().join(n),
                &Spec {
                    set: Some("rs0"),
                    extra: &extra,
                    ..Spec::default()
                },
            )
        })
        .collect();
    let hosts: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| doc! {"_id": i as i32, "host": format!("localhost:{}", n.port)})
        .collect();
    try_command(
        nodes[0].port,
        doc! {"replSetInitiate": {"_id": "rs0", "members": hosts}},
    )
    .expect("replSetInitiate through the localhost exception");
    let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
    agreed_primary(&ports);
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    let args: Vec<&str> = ports.iter().map(String::as_str).collect();
    let out = pymongo(SCRAM, &args);
    assert_eq!(out["listDatabases_before"], 13, "{out}");
    assert_eq!(out["ping_before"], 1.0, "{out}");
    assert_eq!(out["createUser_first"], 0, "the localhost exception: {out}");
    assert_eq!(
        out["createUser_second"], 13,
        "closed once a user exists: {out}"
    );
    for mech in ["SCRAM-SHA-256", "SCRAM-SHA-1"] {
        for port in &ports {
            let names = &out[format!("{mech}_{port}")];
            assert!(
                names
                    .as_array()
                    .is_some_and(|a| a.iter().any(|n| n == "admin")),
                "{out}"
            );
        }
    }
    assert_eq!(out["wrong_password"], 18, "{out}");

    // The Rust driver (the one mup uses) authenticates too: speculative SCRAM-SHA-256 in hello.
    let rust = |password: &str| {
        let mut o = direct_options(
            "localhost",
            nodes[0].port,
            std::time::Duration::from_secs(5),
        );
        o.credential = Some(
            mongodb::options::Credential::builder()
                .username("mup".to_string())
                .password(password.to_string())
                .source("admin".to_string())
                .build(),
        );
        let client = mongodb::sync::Client::with_options(o).expect("client");
        client
            .database("admin")
            .run_command(doc! {"listDatabases": 1})
            .run()
    };
    assert!(rust("s3cret").is_ok(), "{:?}", rust("s3cret"));
    let wrong = rust("nope").expect_err("a wrong password");
    assert!(
        matches!(
            *wrong.kind,
            mongodb::error::ErrorKind::Authentication { .. }
        ),
        "{wrong}"
    );
}

const CERTS: &str = r#"
import datetime, ipaddress, json, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
out = sys.argv[1]
now = datetime.datetime.now(datetime.timezone.utc)
def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mup-test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])
def cert(cn, key, issuer, issuer_key, ca):
    b = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(issuer)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1))
         .not_valid_after(now + datetime.timedelta(days=2))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        b = b.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
    return b.sign(issuer_key, hashes.SHA256())
pem = lambda c: c.public_bytes(serialization.Encoding.PEM)
key_pem = lambda k: k.private_bytes(serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
ca_key = ec.generate_private_key(ec.SECP256R1())
ca = cert("test CA", ca_key, name("test CA"), ca_key, True)
open(f"{out}/ca.pem", "wb").write(pem(ca))
for who in ("server", "client"):
    k = ec.generate_private_key(ec.SECP256R1())
    open(f"{out}/{who}.pem", "wb").write(pem(cert(who, k, ca.subject, ca_key, False)) + key_pem(k))
print(json.dumps({}))
"#;

const TLS_CLIENT: &str = r#"
import json, sys
from pymongo import MongoClient
port, d = sys.argv[1], sys.argv[2]
def hello(**kw):
    try:
        c = MongoClient(f"mongodb://localhost:{port}/?directConnection=true",
                        serverSelectionTimeoutMS=3000, **kw)
        return c.admin.command("hello")["ok"]
    except Exception as e:
        return type(e).__name__
print(json.dumps({
    "tls": hello(tls=True, tlsCAFile=f"{d}/ca.pem", tlsCertificateKeyFile=f"{d}/client.pem"),
    "tls_without_client_certificate": hello(tls=True, tlsCAFile=f"{d}/ca.pem"),
    "plain": hello(),
}))
"#;

#[test]
fn require_tls_refuses_plain_connections_and_serves_tls_clients() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path().display().to_string();
    pymongo(CERTS, &[&d]);
    let net = format!(
        "  tls:\n    mode: requireTLS\n    certificateKeyFile: {d}/server.pem\n    CAFile: {d}/ca.pem\n"
    );
    let node = start_in(
        &tmp.path().join("n"),
        &Spec {
            net: &net,
            ..Spec::default()
        },
    );
    let (code, _) = error_code(node.port, doc! {"hello": 1});
    assert_eq!(code, -1, "a plain driver connection gets no reply");
    let out = pymongo(TLS_CLIENT, &[&node.port.to_string(), &d]);
    assert_eq!(out["tls"], 1.0, "{out}");
    assert_ne!(
        out["tls_without_client_certificate"], 1.0,
        "CAFile asks for one: {out}"
    );
    assert_ne!(out["plain"], 1.0, "{out}");
    assert!(node
        .log()
        .contains("The server is configured to only allow SSL connections"));
}
