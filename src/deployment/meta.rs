//! meta.yaml: what the user gives (name, version, bin_path, optional decisions) and what
//! `mup gen` records in the tree (every decision, plus the node list ctl and cluster read).

use crate::deployment::yaml;
use crate::error::InputResult;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Both the user's meta.yaml and the completed one in the tree; fields after `user` are
/// written by mup and recomputed on every `gen` (only `nodes[].source`/`port` are read back,
/// to keep allocated ports stable).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    pub name: String,
    /// MongoDB version of the binaries, e.g. "7.0.14".
    pub version: String,
    /// Directory holding mongod and mongos.
    pub bin_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisor_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisor_port: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisor_user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisor_password: Option<String>,
    /// HOME written into every program's `environment=` (and used to expand `~`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
    /// USER written into every program's `environment=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// standalone | replica_set | sharded
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology: Option<String>,
    /// The event listener (default true): transitions appended to `<cluster>/events.log`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<bool>,
    /// The Prometheus exporter (default true), on 127.0.0.1:`metrics_port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_port: Option<i64>,
    /// Access control and TLS (`--auth`, `--tls`), with the first user's credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<crate::deployment::security::Settings>,
    /// Commands the event listener runs on chosen transitions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeMeta>,
    /// The monitoring programs, as recorded by gen.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceMeta>,
}

/// A command run by the event listener when a program reaches one of the `on` states.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Hook {
    /// State names (`EXITED`, `FATAL`, `RUNNING`, ...) and `EXITED_UNEXPECTED`.
    pub on: Vec<String>,
    /// Run with `/bin/sh -c` in the cluster directory, the event in `MUP_*` variables.
    pub command: String,
    /// Seconds after which the hook and every process it started are killed (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
}

/// A monitoring program as recorded in the tree's meta.yaml.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceMeta {
    /// events | metrics
    #[serde(rename = "type")]
    pub kind: String,
    pub supervisor_name: String,
    pub supervisor_group: String,
    pub supervisor_config_file: String,
    /// The mup binary supervisord runs for it.
    pub command: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    pub log_file: String,
}

/// One node as recorded in the tree's meta.yaml.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NodeMeta {
    /// mongod | config | mongos (the Go mup's names)
    #[serde(rename = "type")]
    pub kind: String,
    pub host: String,
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_set: Option<String>,
    /// The topology entry this node came from, e.g. `mongod_servers[1]`.
    pub source: String,
    pub supervisor_name: String,
    pub supervisor_group: String,
    pub config_file: String,
    pub supervisor_config_file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
    /// mup created the data directory, so `destroy` may remove it (never one it found).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir_created: Option<bool>,
    /// For a data directory outside the tree that mup created: the path it resolved to then,
    /// every symlink followed. `destroy` removes it only while it still resolves there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir_resolved: Option<String>,
    pub log_file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub votes: Option<i64>,
}

/// Reads and parses a meta.yaml; `shown` is the name used in messages.
pub(crate) fn load(path: &Path, shown: &str) -> InputResult<Meta> {
    yaml::load(path, shown)
}

/// True when the meta.yaml at `path` is not one `mup gen` wrote: a PID-tracked cluster of the
/// Go mup (`supervisor_enabled` absent or false).
pub(crate) fn is_legacy(path: &Path, shown: &str) -> InputResult<bool> {
    legacy_text(&yaml::read(path, shown)?, shown)
}

/// [`is_legacy`] of a meta.yaml's text.
fn legacy_text(text: &str, shown: &str) -> InputResult<bool> {
    let v: yaml::Value = yaml::parse(text, shown)?;
    Ok(v.get("supervisor_enabled").and_then(yaml::Value::as_bool) != Some(true))
}

/// A tree's meta.yaml read once: `Ok(None)` when it is a PID-tracked cluster
/// ([`is_legacy`]), else the parsed [`Meta`]. Same outcome and messages as [`is_legacy`]
/// followed by [`load`], with one read and, for a file `mup gen` wrote, one parse.
pub(crate) fn load_tree(path: &Path, shown: &str) -> InputResult<Option<Meta>> {
    let text = yaml::read(path, shown)?;
    match yaml::parse::<Meta>(&text, shown) {
        // A `Meta` holds `supervisor_enabled` exactly when the document has it as a bool.
        Ok(meta) if meta.supervisor_enabled == Some(true) => Ok(Some(meta)),
        Ok(_) => Ok(None),
        // Not a `Meta`: the YAML error first, then the legacy verdict, then the `Meta` error.
        Err(e) => match legacy_text(&text, shown)? {
            true => Ok(None),
            false => Err(e),
        },
    }
}

impl Meta {
    /// The text written to the tree's meta.yaml.
    pub fn to_yaml(&self) -> String {
        let body = yaml::to_string(self);
        format!("# Cluster metadata, completed by `mup gen`. Keep this file: it records the ports,\n# credentials and environment decided for this cluster.\n{body}")
    }
}

#[cfg(test)]
mod tests {
    use super::{is_legacy, load, load_tree};

    /// One read and one parse give what [`is_legacy`] then [`load`] gave: the verdict, the
    /// `Meta`, or the very same message.
    #[test]
    fn load_tree_agrees_with_is_legacy_then_load() {
        let dir = tempfile::tempdir().expect("temp dir");
        let base = "name: a\nversion: \"7.0.14\"\nbin_path: /b\n";
        let cases = [
            format!("{base}supervisor_enabled: true\nsupervisor_port: 9001\n"),
            format!("{base}supervisor_enabled: false\n"),
            base.to_string(),
            format!("{base}supervisor_enabled: \"yes\"\n"),
            format!("{base}supervisor_enabled: true\nbogus: 1\n"),
            format!("{base}status: running\ncreated_at: x\n"),
            format!("{base}supervisor_enabled: true\nsupervisor_port: [\n"),
            "[1, 2]\n".to_string(),
            String::new(),
        ];
        for (i, text) in cases.iter().enumerate() {
            let path = dir.path().join(format!("meta-{i}.yaml"));
            std::fs::write(&path, text).expect("write");
            let old = is_legacy(&path, "m").and_then(|legacy| match legacy {
                true => Ok(None),
                false => load(&path, "m").map(Some),
            });
            let new = load_tree(&path, "m");
            match (old, new) {
                (Ok(a), Ok(b)) => assert_eq!(
                    a.map(|m| format!("{m:?}")),
                    b.map(|m| format!("{m:?}")),
                    "{text}"
                ),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{text}"),
                (a, b) => panic!("{text}: {a:?} against {b:?}"),
            }
        }
    }
}
