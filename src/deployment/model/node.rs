//! The one model of a node and of a monitoring program: what gen builds, writes into
//! meta.yaml, and every later command loads back ([`crate::deployment::Tree`]); the status
//! rows, display rows, exporter labels and reload's wanted set are all built from these.

use crate::deployment::naming::{address, Role, Service};
use std::path::{Path, PathBuf};

/// One node (mongod, config server or mongos) of a cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub role: Role,
    pub host: String,
    pub port: u16,
    pub replica_set: Option<String>,
    /// `mongod-30000`
    pub program: String,
    /// Its supervisord group, as meta.yaml records it: its own, named like the program, so
    /// that adding or removing a node never touches another's group (docs/supervisord.md);
    /// a tree written by an earlier mup records its tier's group, which its daemon still runs.
    pub group: String,
    /// `None` for mongos.
    pub data_dir: Option<PathBuf>,
    /// mup creates (or created) the data directory: only then may destroy delete it.
    pub data_dir_created: bool,
    /// Outside the tree, when mup creates it: the path it resolves to (see `data_dirs`).
    pub data_dir_resolved: Option<PathBuf>,
    /// `conf/<node>/mongod.conf`
    pub config_file: PathBuf,
    pub log_file: PathBuf,
    /// Replica-set member options from the topology (`None`: the server's default).
    pub priority: Option<f64>,
    pub hidden: Option<bool>,
    pub votes: Option<i64>,
}

impl Node {
    pub fn group(&self) -> &str {
        &self.group
    }
    /// `mongod-30000:mongod-30000`, the name supervisord answers to.
    pub fn qualified(&self) -> String {
        format!("{}:{}", self.group(), self.program)
    }
    /// `host:port`
    pub fn address(&self) -> String {
        address(&self.host, self.port)
    }
    /// True when `host:port` names this node: `localhost` and `127.0.0.1` name the same
    /// machine, and ports are unique on it.
    pub fn is(&self, id: &str) -> bool {
        id == self.address()
            || id.contains(':')
                && id.rsplit(':').next().and_then(|p| p.parse::<u16>().ok()) == Some(self.port)
    }
    /// `conf/<node>`: the node's config file and its program's ini.
    pub(crate) fn conf_dir(&self) -> &Path {
        self.config_file.parent().unwrap_or(Path::new("/"))
    }
    pub(crate) fn ini_file(&self) -> PathBuf {
        self.conf_dir().join(self.role.ini_file())
    }
    /// The launcher script supervisord runs (`conf/<host>-<port>/mongod` or `mongos`).
    pub(crate) fn launcher(&self) -> PathBuf {
        crate::deployment::layout::launcher(self.conf_dir(), self.role.binary())
    }
    /// The process's working directory: its data dir (mongod) or its conf dir (mongos).
    pub(crate) fn directory(&self) -> &Path {
        self.data_dir.as_deref().unwrap_or(self.conf_dir())
    }
}

/// A monitoring program of a cluster (the event listener or the exporter).
#[derive(Debug, Clone, PartialEq)]
pub struct Monitor {
    pub service: Service,
    /// The exporter's port.
    pub port: Option<u16>,
    /// `conf/monitoring`
    pub conf_dir: PathBuf,
    /// Its own messages (the listener's stderr, the exporter's output).
    pub log_file: PathBuf,
}

impl Monitor {
    pub fn program(&self) -> &'static str {
        self.service.program()
    }
    pub fn group(&self) -> &'static str {
        self.service.group()
    }
    pub fn qualified(&self) -> String {
        format!("{}:{}", self.group(), self.program())
    }
    pub(crate) fn ini_file(&self) -> PathBuf {
        self.conf_dir.join(self.service.ini_file())
    }
}
