//! topology.yaml as written by users (the Go mup's schema): parsing only, no decisions.

use crate::deployment::yaml::{Mapping, Value};
use crate::error::InputResult;
use serde::Deserialize;
use std::path::Path;

/// The whole file. Unknown keys are errors, so a typo never drops a setting.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Topology {
    #[serde(default)]
    pub global: Global,
    #[serde(default)]
    pub mongod_servers: Vec<NodeSpec>,
    #[serde(default)]
    pub config_servers: Vec<NodeSpec>,
    #[serde(default)]
    pub mongos_servers: Vec<NodeSpec>,
    /// Go mup's optional replica-set list; checked against the nodes' `replica_set`.
    #[serde(default)]
    pub replica_sets: Vec<ReplicaSetSpec>,
}

/// `global:` settings every node inherits.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Global {
    /// Default for the `USER` written into `environment=`.
    pub user: Option<String>,
    /// Base directory of the nodes' data directories (`<data_dir>/<host>-<port>`).
    pub data_dir: Option<String>,
    /// Directory of the supervisord-managed log files (default `<cluster>/logs`).
    pub log_dir: Option<String>,
    /// mongod options merged into every node's config file.
    pub runtime_config: Option<Mapping>,
    /// Accepted for Go mup files; mup deploys locally into the cluster directory.
    pub deploy_dir: Option<String>,
    /// Accepted for Go mup files; configuration always lives in `<cluster>/conf`.
    pub config_dir: Option<String>,
    /// Accepted for Go mup files; mup deploys on this machine only.
    pub ssh_port: Option<i64>,
    /// Accepted for Go mup files; not used by a supervisord deployment.
    pub systemd_config: Option<Value>,
    pub os_config: Option<Value>,
    pub resource_control: Option<Value>,
}

/// One entry of `mongod_servers`, `config_servers` or `mongos_servers`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NodeSpec {
    pub host: Option<String>,
    /// `0` means "allocate a free port".
    pub port: Option<i64>,
    pub replica_set: Option<String>,
    pub priority: Option<f64>,
    pub hidden: Option<bool>,
    pub votes: Option<i64>,
    /// This node's data directory (kept where it is: nothing is moved).
    pub data_dir: Option<String>,
    pub log_dir: Option<String>,
    pub runtime_config: Option<Mapping>,
    pub deploy_dir: Option<String>,
    pub config_dir: Option<String>,
}

/// An entry of the Go mup's `replica_sets:` list.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplicaSetSpec {
    pub name: String,
    #[serde(default)]
    pub members: Vec<String>,
}

/// Reads and parses a topology file; `shown` is the name used in messages.
pub(crate) fn load(path: &Path, shown: &str) -> InputResult<Topology> {
    crate::deployment::yaml::load(path, shown)
}
