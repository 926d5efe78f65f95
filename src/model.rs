//! The validated cluster: every naming rule, every input check, the mongod config documents.
//! Built once from topology.yaml + meta.yaml + the decisions of `gen`; pure (no I/O).

use crate::error::{InputError, InputResult};
use crate::ini;
use crate::layout::{resolve, Layout};
use crate::meta::{Hook, ServiceMeta};
use crate::meta::{Meta, NodeMeta};
use crate::mongod_conf::{base_conf, config_db, expand, overlay, MONGOD_ONLY};
pub(crate) use crate::naming::{check_name, node_dir_name, program_name, Role, Service};
pub(crate) use crate::plan::{plan, Plan};

mod checks;
mod version;

use crate::yaml::Mapping;
use checks::{check_hooks, foreign_data_dir, ini_path};
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
    pub others: Vec<crate::ports::Recorded>,
    pub mup_home: PathBuf,
    /// The event listener is on.
    pub events: bool,
    /// The exporter's port; `None` when metrics are off.
    pub metrics_port: Option<u16>,
    /// The mup binary supervisord runs for the monitoring programs (absolute).
    pub mup_binary: PathBuf,
}

/// Where inputs came from, for messages and relative paths.
#[derive(Debug, Clone)]
pub(crate) struct Sources {
    pub topology: String,
    pub meta: String,
    /// Relative `bin_path` is resolved against the meta file's directory.
    pub meta_dir: PathBuf,
}

/// A node of the cluster, with every name and path it needs.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub role: Role,
    pub host: String,
    pub port: u16,
    pub replica_set: Option<String>,
    pub source: String,
    pub priority: Option<f64>,
    pub hidden: Option<bool>,
    pub votes: Option<i64>,
    /// `None` for mongos.
    pub data_dir: Option<PathBuf>,
    /// mup creates (or created) the data directory: only then may destroy delete it.
    pub data_dir_created: bool,
    /// Outside the tree, when mup creates it: the path it resolves to (see `data_dirs`).
    pub data_dir_resolved: Option<PathBuf>,
    pub conf_dir: PathBuf,
    pub log_file: PathBuf,
    /// The complete mongod/mongos config document.
    pub conf: Mapping,
}

impl Node {
    pub(crate) fn program(&self) -> String {
        program_name(self.role, self.port)
    }
    pub(crate) fn group(&self) -> &'static str {
        self.role.group()
    }
    pub(crate) fn conf_file(&self) -> PathBuf {
        self.conf_dir.join(self.role.conf_file())
    }
    pub(crate) fn ini_file(&self) -> PathBuf {
        self.conf_dir.join(self.role.ini_file())
    }
    /// The launcher script supervisord runs (`conf/<host>-<port>/mongod` or `mongos`).
    pub(crate) fn launcher(&self) -> PathBuf {
        crate::layout::launcher(&self.conf_dir, self.role.binary())
    }
    /// `host:port`
    pub(crate) fn address(&self) -> String {
        crate::naming::address(&self.host, self.port)
    }
    /// The process's working directory: its data dir (mongod) or its conf dir (mongos).
    pub(crate) fn directory(&self) -> &Path {
        self.data_dir.as_deref().unwrap_or(&self.conf_dir)
    }
}

/// A monitoring program of the cluster (the event listener or the exporter).
#[derive(Debug, Clone)]
pub(crate) struct Monitor {
    pub service: Service,
    /// The exporter's port.
    pub port: Option<u16>,
    /// `conf/monitoring`
    pub conf_dir: PathBuf,
    /// Its own messages (the listener's stderr, the exporter's output).
    pub log_file: PathBuf,
}

impl Monitor {
    pub(crate) fn ini_file(&self) -> PathBuf {
        self.conf_dir.join(self.service.ini_file())
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
    pub nodes: Vec<Node>,
    /// Directories the tree must contain (created if missing, contents never touched).
    pub dirs: BTreeSet<PathBuf>,
    /// The event listener and the exporter, those that are on.
    pub monitors: Vec<Monitor>,
    pub mup_binary: PathBuf,
    pub hooks: Vec<Hook>,
}

impl Cluster {
    /// Builds the cluster from the checked plan, the user's meta and the decisions.
    pub(crate) fn build(
        plan: &Plan,
        meta: &Meta,
        decided: &Decisions,
        layout: Layout,
        src: &Sources,
    ) -> InputResult<Cluster> {
        let mf = src.meta.as_str();
        let tf = src.topology.as_str();
        check_name(&meta.name, mf)?;
        let version = Version::parse(&meta.version).ok_or_else(|| {
            InputError::new(
                mf,
                "version",
                format!("{:?} is not a MongoDB version like 7.0.14", meta.version),
            )
        })?;
        if !version.at_least(3, 6) {
            return Err(InputError::new(
                mf,
                "version",
                format!("{:?}: mup supports MongoDB 3.6 and later", meta.version),
            ));
        }
        let root = ini_path(layout.root(), "--out", "cluster directory")?;
        if meta.bin_path.is_empty() {
            return Err(InputError::new(
                mf,
                "bin_path",
                "is empty: name the directory holding mongod and mongos",
            ));
        }
        let home = Path::new(&decided.home);
        let bin_path = ini_path(
            &resolve(&meta.bin_path, home, &src.meta_dir),
            mf,
            "bin_path",
        )?;
        if !home.is_absolute() {
            return Err(InputError::new(
                mf,
                "home",
                format!("{:?} is not an absolute path", decided.home),
            ));
        }
        for (value, field) in [(&decided.home, "home"), (&decided.user, "user")] {
            if let Some(why) = ini::check_env(value) {
                return Err(InputError::new(mf, field, why));
            }
        }
        for (value, field) in [
            (&decided.supervisor_user, "supervisor_user"),
            (&decided.supervisor_password, "supervisor_password"),
        ] {
            if !ini::is_credential(value) {
                return Err(InputError::new(
                    mf,
                    field,
                    format!("{value:?} may only use letters, digits, '_' and '-' (supervisord would silently change other values)"),
                ));
            }
        }
        if let Some(d) = plan
            .drafts
            .iter()
            .find(|d| decided.ports.get(&d.source()) == Some(&decided.supervisor_port))
        {
            return Err(InputError::new(
                mf,
                "supervisor_port",
                format!(
                    "{} is already used by {}",
                    decided.supervisor_port,
                    d.source()
                ),
            ));
        }

        let global_logs = match &plan.log_dir {
            Some(d) => ini_path(&resolve(d, home, &root), tf, "global.log_dir")?,
            None => layout.default_logs_dir(),
        };
        let mut dirs = BTreeSet::from([layout.conf_dir(), global_logs.clone()]);
        let mut nodes = Vec::new();
        for d in &plan.drafts {
            let source = d.source();
            let port = *decided
                .ports
                .get(&source)
                .expect("gen decides a port for every draft");
            let dir_name = node_dir_name(&d.host, port);
            let conf_dir = layout.node_conf_dir(&dir_name);
            let data_dir = match (d.role, &d.data_dir, &plan.data_dir) {
                (Role::Mongos, _, _) => None,
                (_, Some(own), _) => Some(ini_path(
                    &resolve(own, home, &root),
                    tf,
                    &format!("{source}.data_dir"),
                )?),
                (_, None, Some(base)) => Some(
                    ini_path(&resolve(base, home, &root), tf, "global.data_dir")?.join(&dir_name),
                ),
                (_, None, None) => Some(layout.default_data_dir(&dir_name)),
            };
            let logs = match &d.log_dir {
                Some(own) => {
                    ini_path(&resolve(own, home, &root), tf, &format!("{source}.log_dir"))?
                }
                None => global_logs.clone(),
            };
            dirs.insert(logs.clone());
            if let Some(dd) = &data_dir {
                let field = format!("{source}.data_dir");
                if let Some(why) = foreign_data_dir(dd, &layout, home, decided) {
                    return Err(InputError::new(tf, field, why));
                }
                dirs.insert(dd.clone());
            }
            let log_file = crate::layout::log_file(&logs, &program_name(d.role, port));
            nodes.push(Node {
                role: d.role,
                host: d.host.clone(),
                port,
                replica_set: d.replica_set.clone(),
                source,
                priority: d.priority,
                hidden: d.hidden,
                votes: d.votes,
                data_dir,
                data_dir_created: false,
                data_dir_resolved: None,
                conf_dir,
                log_file,
                conf: Mapping::new(),
            });
        }
        let with_data: Vec<(&Node, &Path)> = nodes
            .iter()
            .filter_map(|n| n.data_dir.as_deref().map(|d| (n, d)))
            .collect();
        let data_dirs: Vec<&Path> = with_data.iter().map(|(_, d)| *d).collect();
        if let Some((first, then)) = crate::plan::first_overlap(&data_dirs) {
            let ((other, od), (node, dd)) = (with_data[first], with_data[then]);
            return Err(InputError::new(
                tf,
                format!("{}.data_dir", node.source),
                format!(
                    "{} overlaps the data directory of {} ({}): every node needs its own",
                    dd.display(),
                    other.source,
                    od.display()
                ),
            ));
        }
        let mup_binary = ini_path(&decided.mup_binary, "mup", "binary")?;
        check_hooks(&meta.hooks, decided.events, mf)?;
        if let Some(port) = decided.metrics_port {
            if let Some(n) = nodes.iter().find(|n| n.port == port) {
                return Err(InputError::new(
                    mf,
                    "metrics_port",
                    format!("{port} is already used by {}", n.source),
                ));
            }
            if port == decided.supervisor_port {
                return Err(InputError::new(
                    mf,
                    "metrics_port",
                    format!("{port} is already the supervisor_port"),
                ));
            }
        }
        let monitors: Vec<Monitor> = Service::ALL
            .into_iter()
            .filter(|s| match s {
                Service::Events => decided.events,
                Service::Metrics => decided.metrics_port.is_some(),
            })
            .map(|service| Monitor {
                service,
                port: (service == Service::Metrics)
                    .then_some(decided.metrics_port)
                    .flatten(),
                conf_dir: layout.monitoring_conf_dir(),
                log_file: crate::layout::log_file(&global_logs, service.program()),
            })
            .collect();
        let config_db = config_db(&nodes);
        for (i, d) in plan.drafts.iter().enumerate() {
            let base = base_conf(&nodes[i], version, plan.kind, &config_db);
            let mut conf = base;
            let mut global = expand(&plan.runtime_config, tf, "global.runtime_config")?;
            if d.role == Role::Mongos {
                // A router has no storage and no replication; mongos refuses those sections.
                for section in MONGOD_ONLY {
                    global.remove(section);
                }
            }
            overlay(&mut conf, &global, "", tf, "global.runtime_config")?;
            let own = format!("{}.runtime_config", d.source());
            overlay(
                &mut conf,
                &expand(&d.runtime_config, tf, &own)?,
                "",
                tf,
                &own,
            )?;
            nodes[i].conf = conf;
        }
        Ok(Cluster {
            name: meta.name.clone(),
            version_text: meta.version.clone(),
            bin_path,
            layout,
            kind: plan.kind,
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
        })
    }

    /// The monitoring program `service`, when it is on.
    pub(crate) fn monitor(&self, service: Service) -> Option<&Monitor> {
        self.monitors.iter().find(|m| m.service == service)
    }

    /// Nodes of one role, in topology order.
    pub(crate) fn nodes_of(&self, role: Role) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(move |n| n.role == role)
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
                    supervisor_name: n.program(),
                    supervisor_group: n.group().to_string(),
                    config_file: n.conf_file().display().to_string(),
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
