//! The Go mup's PID-tracked meta.yaml (before supervisord): read only, for `mup cluster migrate`.

use crate::error::InputResult;
use serde::Deserialize;
use std::path::Path;

/// The fields mup needs; the Go mup's file carries many more (topology, monitoring, status,
/// ...), which are ignored here on purpose: this is another program's format.
#[derive(Debug, Deserialize)]
pub(crate) struct LegacyMeta {
    pub name: String,
    pub version: String,
    pub bin_path: String,
    #[serde(default)]
    pub nodes: Vec<LegacyNode>,
}

/// One node: `type` is mongod, mongos or config.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct LegacyNode {
    #[serde(rename = "type")]
    pub kind: String,
    pub host: String,
    pub port: u16,
    #[serde(default)]
    pub replica_set: Option<String>,
    #[serde(default)]
    pub data_dir: Option<String>,
    #[serde(default)]
    pub config_file: Option<String>,
    #[serde(default)]
    pub pid: Option<i64>,
}

pub(crate) fn load(path: &Path, shown: &str) -> InputResult<LegacyMeta> {
    crate::deployment::yaml::load(path, shown)
}
