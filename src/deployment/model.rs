//! The validated cluster: every naming rule, every input check, the mongod config documents.
//! Built once from topology.yaml + meta.yaml + the decisions of `gen`; pure (no I/O).

use crate::deployment::layout::{resolve, Layout};
use crate::deployment::meta::{Hook, ServiceMeta};
use crate::deployment::meta::{Meta, NodeMeta};
use crate::deployment::mongod_conf::{base_conf, config_db};
pub(crate) use crate::deployment::naming::{check_name, program_name, Role, Service};
pub(crate) use crate::deployment::nodes::{outline, Outline};
use crate::error::InputResult;

mod build;
mod checks;
mod node;
mod version;

use crate::deployment::yaml::Mapping;
pub(crate) use checks::foreign_data_dir;
use checks::{check_hooks, ini_path};
pub(crate) use node::{Monitor, Node};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
pub(crate) use version::Version;

/// What kind of deployment the topology describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Standalone,
    ReplicaSet,
    Sharded,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Standalone => "standalone",
            Kind::ReplicaSet => "replica_set",
            Kind::Sharded => "sharded",
        }
    }
}

/// Everything `gen` decided that the inputs did not say, recorded in the tree's meta.yaml.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Decisions {
    pub supervisor_port: u16,
    pub supervisor_user: String,
    pub supervisor_password: String,
    pub home: String,
    pub user: String,
    /// Port of every node, by `Draft::source()`.
    pub ports: BTreeMap<String, u16>,
    /// Directories no data directory may be, contain or lie in: the other clusters' trees
    /// and data directories under `MUP_HOME`, and `MUP_HOME` itself.
    pub others: Vec<crate::deployment::ports::Recorded>,
    pub mup_home: PathBuf,
    /// The event listener is on.
    pub events: bool,
    /// The exporter's port; `None` when metrics are off.
    pub metrics_port: Option<u16>,
    /// The mup binary supervisord runs for the monitoring programs (absolute).
    pub mup_binary: PathBuf,
    /// `--auth` / `--tls`, completed (user and password decided); `None`: not secured.
    pub security: Option<crate::deployment::security::Settings>,
}

/// Where inputs came from, for messages and relative paths.
#[derive(Debug, Clone)]
pub(crate) struct Sources {
    pub topology: String,
    pub meta: String,
    /// Relative `bin_path` is resolved against the meta file's directory.
    pub meta_dir: PathBuf,
}

/// A node as gen builds it: the [`Node`] every command works on, where it comes from in
/// topology.yaml, and its complete mongod/mongos config document.
#[derive(Debug, Clone)]
pub(crate) struct Configured {
    pub node: Node,
    /// `mongod_servers[1]`
    pub source: String,
    /// The complete mongod/mongos config document.
    pub conf: Mapping,
}

impl std::ops::Deref for Configured {
    type Target = Node;
    fn deref(&self) -> &Node {
        &self.node
    }
}

impl std::ops::DerefMut for Configured {
    fn deref_mut(&mut self) -> &mut Node {
        &mut self.node
    }
}

/// The validated cluster.
#[derive(Debug, Clone)]
pub(crate) struct Cluster {
    pub name: String,
    pub version_text: String,
    pub bin_path: PathBuf,
    pub layout: Layout,
    pub kind: Kind,
    pub supervisor_port: u16,
    pub supervisor_user: String,
    pub supervisor_password: String,
    pub home: String,
    pub user: String,
    /// In tier order: config servers, mongods, mongos; topology order within a tier.
    pub nodes: Vec<Configured>,
    /// Directories the tree must contain (created if missing, contents never touched).
    pub dirs: BTreeSet<PathBuf>,
    /// The event listener and the exporter, those that are on.
    pub monitors: Vec<Monitor>,
    pub mup_binary: PathBuf,
    pub hooks: Vec<Hook>,
    pub security: Option<crate::deployment::security::Settings>,
}

impl Cluster {
    /// Builds the cluster from the checked outline, the user's meta and the decisions.
    pub(crate) fn build(
        outline: &Outline,
        meta: &Meta,
        decided: &Decisions,
        layout: Layout,
        src: &Sources,
    ) -> InputResult<Cluster> {
        let mf = src.meta.as_str();
        let tf = src.topology.as_str();
        let checked = build::check_meta(outline, meta, decided, &layout, src)?;
        let home = Path::new(&decided.home);
        let root = &checked.root;
        let global_logs = match &outline.log_dir {
            Some(d) => ini_path(&resolve(d, home, root), tf, "global.log_dir")?,
            None => layout.default_logs_dir(),
        };
        let mut dirs = BTreeSet::from([layout.conf_dir(), global_logs.clone()]);
        let mut nodes = Vec::new();
        for d in &outline.drafts {
            let (node, logs) =
                build::node_of(d, outline, decided, &layout, root, &global_logs, tf)?;
            dirs.insert(logs);
            if let Some(dd) = &node.data_dir {
                dirs.insert(dd.clone());
            }
            nodes.push(node);
        }
        build::check_overlaps(&nodes, tf)?;
        let mup_binary = ini_path(&decided.mup_binary, "mup", "binary")?;
        check_hooks(&meta.hooks, decided.events, mf)?;
        build::check_metrics_port(&nodes, decided, mf)?;
        let monitors = build::monitors(decided, &layout, &global_logs);
        let config_db = config_db(nodes.iter().map(|n| &n.node));
        for (i, d) in outline.drafts.iter().enumerate() {
            let base = base_conf(&nodes[i], checked.version, outline.kind, &config_db);
            let mut conf = build::node_conf(base, d, outline, tf)?;
            let files = crate::deployment::security::node_files(
                decided.security.as_ref(),
                &layout,
                &nodes[i],
            );
            crate::deployment::mongod_conf::secure(
                &mut conf,
                &files,
                checked.version,
                tf,
                &d.source(),
            )?;
            nodes[i].conf = conf;
        }
        Ok(Cluster {
            name: meta.name.clone(),
            version_text: meta.version.clone(),
            bin_path: checked.bin_path,
            layout,
            kind: outline.kind,
            supervisor_port: decided.supervisor_port,
            supervisor_user: decided.supervisor_user.clone(),
            supervisor_password: decided.supervisor_password.clone(),
            home: decided.home.clone(),
            user: decided.user.clone(),
            nodes,
            dirs,
            monitors,
            mup_binary,
            hooks: meta.hooks.clone(),
            security: decided.security.clone(),
        })
    }

    /// The monitoring program `service`, when it is on.
    pub(crate) fn monitor(&self, service: Service) -> Option<&Monitor> {
        self.monitors.iter().find(|m| m.service == service)
    }

    /// The completed meta.yaml for the tree.
    pub(crate) fn meta(&self) -> Meta {
        Meta {
            name: self.name.clone(),
            version: self.version_text.clone(),
            bin_path: self.bin_path.display().to_string(),
            supervisor_enabled: Some(true),
            supervisor_port: Some(i64::from(self.supervisor_port)),
            supervisor_user: Some(self.supervisor_user.clone()),
            supervisor_password: Some(self.supervisor_password.clone()),
            home: Some(self.home.clone()),
            user: Some(self.user.clone()),
            topology: Some(self.kind.as_str().to_string()),
            events: Some(self.monitor(Service::Events).is_some()),
            metrics: Some(self.monitor(Service::Metrics).is_some()),
            metrics_port: self
                .monitor(Service::Metrics)
                .and_then(|m| m.port)
                .map(i64::from),
            hooks: self.hooks.clone(),
            security: self.security.clone(),
            services: self
                .monitors
                .iter()
                .map(|m| ServiceMeta {
                    kind: m.service.meta_type().to_string(),
                    supervisor_name: m.service.program().to_string(),
                    supervisor_group: m.service.group().to_string(),
                    supervisor_config_file: m.ini_file().display().to_string(),
                    command: self.mup_binary.display().to_string(),
                    port: m.port,
                    log_file: m.log_file.display().to_string(),
                })
                .collect(),
            nodes: self
                .nodes
                .iter()
                .map(|n| NodeMeta {
                    kind: n.role.meta_type().to_string(),
                    host: n.host.clone(),
                    port: n.port,
                    replica_set: n.replica_set.clone(),
                    source: n.source.clone(),
                    supervisor_name: n.program.clone(),
                    supervisor_group: n.group.clone(),
                    config_file: n.config_file.display().to_string(),
                    supervisor_config_file: n.ini_file().display().to_string(),
                    data_dir: n.data_dir.as_ref().map(|d| d.display().to_string()),
                    data_dir_created: n.data_dir_created.then_some(true),
                    data_dir_resolved: n
                        .data_dir_resolved
                        .as_ref()
                        .map(|d| d.display().to_string()),
                    log_file: n.log_file.display().to_string(),
                    priority: n.priority,
                    hidden: n.hidden,
                    votes: n.votes,
                })
                .collect(),
        }
    }
}
