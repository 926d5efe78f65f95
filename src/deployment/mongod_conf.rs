//! The mongod/mongos YAML config document of a node: what mup owns, then runtime_config
//! (global, then the node's) merged in, refusing the options mup owns.

use crate::deployment::model::{Kind, Node, Version};
use crate::deployment::naming::Role;
use crate::deployment::yaml::{Mapping, Value};
use crate::error::{InputError, InputResult};

/// `sharding.configDB` for routers: `<configRS>/host:port,...`.
pub(crate) fn config_db<'a>(nodes: impl IntoIterator<Item = &'a Node>) -> String {
    let cfg: Vec<&Node> = nodes
        .into_iter()
        .filter(|n| n.role == Role::ConfigServer)
        .collect();
    match cfg.first().and_then(|n| n.replica_set.as_ref()) {
        Some(rs) => {
            let hosts: Vec<String> = cfg.iter().map(|n| n.address()).collect();
            format!("{rs}/{}", hosts.join(","))
        }
        None => String::new(),
    }
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Mapping(
        entries
            .into_iter()
            .map(|(k, v)| (Value::String(k.to_string()), v))
            .collect(),
    )
}

fn s(text: &str) -> Value {
    Value::String(text.to_string())
}

/// Sections of global.runtime_config that only apply to mongod (not given to mongos).
pub(crate) const MONGOD_ONLY: [&str; 2] = ["storage", "replication"];

/// The options mup owns; runtime_config may not set them.
const OWNED: [&str; 9] = [
    "net.port",
    "net.bindIp",
    "processManagement.fork",
    "storage.dbPath",
    "replication.replSetName",
    "sharding.clusterRole",
    "sharding.configDB",
    "systemLog.destination",
    "systemLog.path",
];

/// The config document mup writes before runtime_config is merged in.
pub(crate) fn base_conf(node: &Node, version: Version, kind: Kind, config_db: &str) -> Mapping {
    let bind_ip = if node.host == "localhost" {
        "127.0.0.1"
    } else {
        node.host.as_str()
    };
    let mut doc = vec![
        (
            "net",
            map(vec![
                ("port", Value::from(node.port)),
                ("bindIp", s(bind_ip)),
            ]),
        ),
        // supervisord supervises the foreground process; its stdout is the log
        // (no systemLog.path: supervisord owns the log file and its rotation).
        ("processManagement", map(vec![("fork", Value::Bool(false))])),
    ];
    if let Some(data) = &node.data_dir {
        doc.push((
            "storage",
            map(vec![("dbPath", s(&data.display().to_string()))]),
        ));
    }
    if let Some(rs) = &node.replica_set {
        doc.push(("replication", map(vec![("replSetName", s(rs))])));
    }
    match (node.role, kind) {
        (Role::ConfigServer, _) => {
            doc.push(("sharding", map(vec![("clusterRole", s("configsvr"))])))
        }
        (Role::Mongod, Kind::Sharded) => {
            doc.push(("sharding", map(vec![("clusterRole", s("shardsvr"))])))
        }
        (Role::Mongos, _) => doc.push(("sharding", map(vec![("configDB", s(config_db))]))),
        _ => {}
    }
    let mut conf = match map(doc) {
        Value::Mapping(m) => m,
        _ => unreachable!("map() builds a mapping"),
    };
    set_version_options(&mut conf, version);
    conf
}

/// The options of a node's config document that depend on the binary's version:
/// `storage.journal.enabled: true` before 6.1; from 6.1 on none (6.1 removed the option and
/// mongod refuses to start with it). gen builds every document with this, and
/// `mup cluster upgrade` applies it to a node's document on disk when it moves the node to
/// another version. Nodes without storage (routers) have none.
pub(crate) fn set_version_options(conf: &mut Mapping, version: Version) {
    let Some(Value::Mapping(storage)) = conf.get_mut("storage") else {
        return;
    };
    let journal = s("journal");
    if version.at_least(6, 1) {
        if let Some(Value::Mapping(j)) = storage.get_mut(&journal) {
            j.remove("enabled");
            if j.is_empty() {
                storage.remove(&journal);
            }
        }
    } else {
        match storage.get_mut(&journal) {
            Some(Value::Mapping(j)) => {
                j.entry(s("enabled")).or_insert(Value::Bool(true));
            }
            _ => {
                storage.insert(journal, map(vec![("enabled", Value::Bool(true))]));
            }
        }
    }
}

/// runtime_config with dotted keys (`storage.wiredTiger.engineConfig.cacheSizeGB: 1`)
/// expanded into nested mappings.
pub(crate) fn expand(m: &Mapping, file: &str, field: &str) -> InputResult<Mapping> {
    let mut out = Mapping::new();
    for (k, v) in m {
        let key = k.as_str().ok_or_else(|| {
            InputError::new(file, field, format!("the key {k:?} is not a string"))
        })?;
        let parts: Vec<&str> = key.split('.').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(InputError::new(
                file,
                format!("{field}.{key}"),
                "is not a valid option name",
            ));
        }
        let value = match v {
            Value::Mapping(inner) => {
                Value::Mapping(expand(inner, file, &format!("{field}.{key}"))?)
            }
            other => other.clone(),
        };
        insert_path(&mut out, &parts, value);
    }
    Ok(out)
}

fn insert_path(out: &mut Mapping, parts: &[&str], value: Value) {
    let key = Value::String(parts[0].to_string());
    if parts.len() == 1 {
        match (out.get_mut(&key), value) {
            (Some(Value::Mapping(existing)), Value::Mapping(new)) => {
                for (k, v) in new {
                    let name = k.as_str().unwrap_or_default().to_string();
                    insert_path(existing, &[name.as_str()], v);
                }
            }
            (_, value) => {
                out.insert(key, value);
            }
        }
        return;
    }
    if !out.get(&key).is_some_and(Value::is_mapping) {
        out.insert(key.clone(), Value::Mapping(Mapping::new()));
    }
    if let Some(Value::Mapping(inner)) = out.get_mut(&key) {
        insert_path(inner, &parts[1..], value);
    }
}

/// Merges `over` into `base`, refusing options mup owns.
pub(crate) fn overlay(
    base: &mut Mapping,
    over: &Mapping,
    path: &str,
    file: &str,
    field: &str,
) -> InputResult<()> {
    for (k, v) in over {
        let key = k.as_str().unwrap_or_default();
        let full = if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        };
        let owned_below = OWNED.iter().any(|o| o.starts_with(&format!("{full}.")));
        if OWNED.contains(&full.as_str()) || (owned_below && !v.is_mapping()) {
            return Err(InputError::new(
                file,
                format!("{field}.{full}"),
                "mup sets this option itself (ports, paths, replica set and logging come from the topology)".to_string(),
            ));
        }
        match (base.get_mut(k), v) {
            (Some(Value::Mapping(b)), Value::Mapping(o)) => overlay(b, o, &full, file, field)?,
            (_, Value::Mapping(o)) => {
                let mut fresh = Mapping::new();
                overlay(&mut fresh, o, &full, file, field)?;
                base.insert(k.clone(), Value::Mapping(fresh));
            }
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(())
}

/// Removes from a node's config document every option mup writes itself — [`OWNED`], the
/// option that follows the version ([`set_version_options`]) and a secured cluster's
/// ([`secure`]; only when `security` says the cluster is secured: otherwise runtime_config may
/// set them) — so that what is left is what the topology's runtime_config set (scale-out
/// rebuilds a kept node's entry that way).
pub(crate) fn strip_written(
    conf: &mut Mapping,
    security: Option<&crate::deployment::security::Settings>,
) {
    let auth = security
        .is_some_and(|s| s.auth)
        .then_some("security.keyFile");
    let tls = security.is_some_and(|s| s.tls).then_some("net.tls");
    let also = ["storage.journal.enabled"]
        .into_iter()
        .chain(auth)
        .chain(tls);
    for path in OWNED.iter().copied().chain(also) {
        let parts: Vec<&str> = path.split('.').collect();
        remove_path(conf, &parts);
    }
}

fn remove_path(m: &mut Mapping, path: &[&str]) {
    let key = s(path[0]);
    if path.len() == 1 {
        m.remove(&key);
        return;
    }
    if let Some(Value::Mapping(inner)) = m.get_mut(&key) {
        remove_path(inner, &path[1..]);
        if inner.is_empty() {
            m.remove(&key);
        }
    }
}

/// Adds what a secured cluster sets on every node: `security.keyFile` (auth) and
/// `net.tls` (tls: requireTLS with the node's certificate and the cluster's CA; clients
/// without a certificate of their own are accepted, the CA file alone verifies the server).
/// runtime_config (already merged into `conf`) may not set those options then (`tf` and
/// `source` name the topology entry in the message).
pub(crate) fn secure(
    conf: &mut Mapping,
    files: &crate::deployment::security::NodeFiles,
    version: Version,
    tf: &str,
    source: &str,
) -> InputResult<()> {
    if files.tls.is_some() && !version.at_least(4, 2) {
        return Err(InputError::new(
            "--tls",
            "",
            "mup writes net.tls, which MongoDB has from 4.2 on (before: net.ssl): use 4.2 or later",
        ));
    }
    let taken = |conf: &Mapping, section: &str, key: &str| {
        conf.get(section)
            .and_then(Value::as_mapping)
            .is_some_and(|m| m.contains_key(key))
    };
    let refuse = |option: &str, flag: &str| {
        InputError::new(
            tf,
            format!("{source}.runtime_config"),
            format!(
                "sets {option}, which mup sets itself for {flag} (global or node runtime_config)"
            ),
        )
    };
    if let Some(key) = &files.key_file {
        if taken(conf, "security", "keyFile") || taken(conf, "security", "clusterAuthMode") {
            return Err(refuse(
                "security.keyFile or security.clusterAuthMode",
                "--auth",
            ));
        }
        section(conf, "security").insert(s("keyFile"), s(&key.display().to_string()));
    }
    if let Some((pem, ca)) = &files.tls {
        if taken(conf, "net", "tls") || taken(conf, "net", "ssl") {
            return Err(refuse("net.tls", "--tls"));
        }
        section(conf, "net").insert(
            s("tls"),
            map(vec![
                ("mode", s("requireTLS")),
                ("certificateKeyFile", s(&pem.display().to_string())),
                ("CAFile", s(&ca.display().to_string())),
                ("allowConnectionsWithoutCertificates", Value::Bool(true)),
            ]),
        );
    }
    Ok(())
}

/// The mapping `name` of `conf`, made (in place, keeping the order of keys) when missing.
fn section<'a>(conf: &'a mut Mapping, name: &str) -> &'a mut Mapping {
    if !conf.get(name).is_some_and(Value::is_mapping) {
        conf.insert(s(name), Value::Mapping(Mapping::new()));
    }
    match conf.get_mut(name) {
        Some(Value::Mapping(m)) => m,
        _ => unreachable!("made a mapping just above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::security::NodeFiles;
    use std::path::PathBuf;

    fn files() -> NodeFiles {
        NodeFiles {
            key_file: Some(PathBuf::from("/c/security/keyfile")),
            tls: Some((
                PathBuf::from("/c/security/n.pem"),
                PathBuf::from("/c/security/ca.pem"),
            )),
        }
    }

    #[test]
    fn a_secured_node_gets_its_key_file_and_tls_and_runtime_config_may_not_set_them() {
        let v7 = Version::parse("7.0.14").expect("version");
        let mut conf: Mapping =
            crate::deployment::yaml::parse("net:\n  port: 1\n", "t").expect("yaml");
        secure(&mut conf, &files(), v7, "t", "mongod_servers[0]").expect("secured");
        let text = crate::deployment::yaml::to_string(&conf);
        assert!(
            text.starts_with("net:\n  port: 1\n  tls:\n    mode: requireTLS\n"),
            "{text}"
        );
        assert!(
            text.contains("allowConnectionsWithoutCertificates: true"),
            "{text}"
        );
        assert!(
            text.contains("security:\n  keyFile: /c/security/keyfile"),
            "{text}"
        );
        for own in [
            "security:\n  keyFile: /k\n",
            "net:\n  tls:\n    mode: disabled\n",
        ] {
            let mut conf: Mapping = crate::deployment::yaml::parse(own, "t").expect("yaml");
            let e = secure(&mut conf, &files(), v7, "t", "mongod_servers[0]").expect_err("refused");
            assert!(
                e.to_string().contains("mongod_servers[0].runtime_config"),
                "{e}"
            );
        }
        let old = Version::parse("4.0.28").expect("version");
        let e = secure(&mut Mapping::new(), &files(), old, "t", "x").expect_err("no net.tls");
        assert!(e.to_string().contains("4.2"), "{e}");
        let none = NodeFiles {
            key_file: None,
            tls: None,
        };
        let mut conf = Mapping::new();
        secure(&mut conf, &none, old, "t", "x").expect("nothing to do");
        assert!(conf.is_empty());
    }

    fn conf(text: &str) -> Mapping {
        crate::deployment::yaml::parse(text, "test").expect("yaml")
    }

    #[test]
    fn the_journal_option_follows_the_version() {
        let v = |t: &str| Version::parse(t).expect("version");
        let mut c = conf("storage:\n  dbPath: /d\n  journal:\n    enabled: true\n");
        set_version_options(&mut c, v("7.0.14"));
        assert_eq!(c, conf("storage:\n  dbPath: /d\n"));
        set_version_options(&mut c, v("6.0.2"));
        assert_eq!(
            c,
            conf("storage:\n  dbPath: /d\n  journal:\n    enabled: true\n")
        );
        // Other journal options stay; a router has no storage.
        let mut c = conf("storage:\n  journal:\n    enabled: true\n    commitIntervalMs: 50\n");
        set_version_options(&mut c, v("8.0.4"));
        assert_eq!(c, conf("storage:\n  journal:\n    commitIntervalMs: 50\n"));
        let mut r = conf("net:\n  port: 1\n");
        set_version_options(&mut r, v("6.0.2"));
        assert_eq!(r, conf("net:\n  port: 1\n"));
    }
}
