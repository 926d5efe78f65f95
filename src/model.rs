//! The validated cluster: every naming rule, every input check, the mongod config documents.
//! Built once from topology.yaml + meta.yaml + the decisions of `gen`; pure (no I/O).

use crate::error::{InputError, InputResult};
use crate::ini;
use crate::layout::{resolve, Layout};
use crate::meta::{Meta, NodeMeta};
use crate::topology::{NodeSpec, Topology};
use serde_yaml::{Mapping, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// What a node is; decides its names, files, binary and start tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    ConfigServer,
    Mongod,
    Mongos,
}

impl Role {
    /// Start order: config servers, then shard/replica mongods, then routers.
    pub const TIERS: [Role; 3] = [Role::ConfigServer, Role::Mongod, Role::Mongos];

    /// Prefix of the supervisord program name (`mongod-30000`).
    pub fn program_prefix(self) -> &'static str {
        match self {
            Role::ConfigServer => "config-server",
            Role::Mongod => "mongod",
            Role::Mongos => "mongos",
        }
    }
    /// The supervisord group holding every node of this role.
    pub fn group(self) -> &'static str {
        match self {
            Role::ConfigServer => "config-servers",
            Role::Mongod => "mongod-servers",
            Role::Mongos => "mongos-routers",
        }
    }
    /// The MongoDB binary this role runs.
    pub fn binary(self) -> &'static str {
        match self {
            Role::Mongos => "mongos",
            _ => "mongod",
        }
    }
    /// The node's MongoDB config file name (`conf/<host>-<port>/<this>`).
    pub fn conf_file(self) -> String {
        format!("{}.conf", self.program_prefix())
    }
    /// The node's supervisord program file name (`conf/<host>-<port>/<this>`).
    pub fn ini_file(self) -> String {
        format!("supervisor-{}.ini", self.program_prefix())
    }
    /// `type` in meta.yaml, as the Go mup writes it.
    pub fn meta_type(self) -> &'static str {
        match self {
            Role::ConfigServer => "config",
            Role::Mongod => "mongod",
            Role::Mongos => "mongos",
        }
    }
    /// The topology.yaml list this role comes from.
    pub fn topology_key(self) -> &'static str {
        match self {
            Role::ConfigServer => "config_servers",
            Role::Mongod => "mongod_servers",
            Role::Mongos => "mongos_servers",
        }
    }
    pub fn from_group(group: &str) -> Option<Role> {
        Role::TIERS.into_iter().find(|r| r.group() == group)
    }
    pub fn from_meta_type(kind: &str) -> Option<Role> {
        Role::TIERS.into_iter().find(|r| r.meta_type() == kind)
    }
    /// A short word for tables.
    pub fn label(self) -> &'static str {
        match self {
            Role::ConfigServer => "config",
            Role::Mongod => "mongod",
            Role::Mongos => "mongos",
        }
    }
}

/// `mongod-30000`: the program name for a role and port.
pub fn program_name(role: Role, port: u16) -> String {
    format!("{}-{port}", role.program_prefix())
}

/// `<host>-<port>`: the node's directory name under conf/ and data/.
pub fn node_dir_name(host: &str, port: u16) -> String {
    format!("{host}-{port}")
}

/// What kind of deployment the topology describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Standalone,
    ReplicaSet,
    Sharded,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Standalone => "standalone",
            Kind::ReplicaSet => "replica_set",
            Kind::Sharded => "sharded",
        }
    }
}

/// A MongoDB version as `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    /// Accepts `7.0`, `7.0.14`, `8.0.0-rc1` (the suffix is ignored).
    pub fn parse(text: &str) -> Option<Version> {
        if !text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'))
        {
            return None;
        }
        let core = text.split(['-', '+']).next()?;
        let mut parts = core.split('.');
        let num = |p: Option<&str>| -> Option<u32> {
            let p = p?;
            (!p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
                .then(|| p.parse().ok())
                .flatten()
        };
        let major = num(parts.next())?;
        let minor = num(parts.next())?;
        let patch = match parts.next() {
            Some(p) => num(Some(p))?,
            None => 0,
        };
        parts.next().is_none().then_some(Version {
            major,
            minor,
            patch,
        })
    }
    pub const fn at_least(self, major: u32, minor: u32) -> bool {
        self.major > major || (self.major == major && self.minor >= minor)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// A node as read from the topology, before ports are allocated.
#[derive(Debug, Clone)]
pub struct Draft {
    pub role: Role,
    pub index: usize,
    pub host: String,
    /// `None` for `port: 0` (allocate).
    pub port: Option<u16>,
    pub replica_set: Option<String>,
    pub priority: Option<f64>,
    pub hidden: Option<bool>,
    pub votes: Option<i64>,
    pub data_dir: Option<String>,
    pub log_dir: Option<String>,
    pub runtime_config: Mapping,
}

impl Draft {
    /// `mongod_servers[1]`: where the node is in topology.yaml.
    pub fn source(&self) -> String {
        format!("{}[{}]", self.role.topology_key(), self.index)
    }
}

/// The topology, checked: nodes in tier order, global settings, warnings for ignored fields.
#[derive(Debug)]
pub struct Plan {
    pub drafts: Vec<Draft>,
    pub kind: Kind,
    pub user: Option<String>,
    pub data_dir: Option<String>,
    pub log_dir: Option<String>,
    pub runtime_config: Mapping,
    pub warnings: Vec<String>,
}

impl Plan {
    /// Ports written explicitly in the topology.
    pub fn explicit_ports(&self) -> Vec<u16> {
        self.drafts.iter().filter_map(|d| d.port).collect()
    }
}

/// A cluster name is one safe path segment; it also becomes supervisord's identifier.
pub fn check_name(name: &str, file: &str) -> InputResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(InputError::new(
            file,
            "name",
            format!("{name:?} is not a valid cluster name: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"),
        ))
    }
}

fn is_local_host(host: &str) -> bool {
    if host == "localhost" {
        return true;
    }
    let parts: Vec<&str> = host.split('.').collect();
    parts.len() == 4
        && parts[0] == "127"
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.parse::<u8>().is_ok())
}

fn check_rs_name(name: &str, file: &str, field: &str) -> InputResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(InputError::new(
            file,
            field,
            format!(
                "{name:?} is not a valid replica set name: use letters, digits, '.', '_' or '-'"
            ),
        ))
    }
}

/// Checks a topology file and returns its plan (ports not yet allocated).
pub fn plan(topo: &Topology, file: &str) -> InputResult<Plan> {
    let err = |field: String, msg: String| InputError::new(file, field, msg);
    let mut warnings = Vec::new();
    let g = &topo.global;
    for (set, key) in [
        (g.deploy_dir.is_some(), "deploy_dir"),
        (g.config_dir.is_some(), "config_dir"),
        (g.ssh_port.is_some(), "ssh_port"),
        (g.systemd_config.is_some(), "systemd_config"),
        (g.os_config.is_some(), "os_config"),
        (g.resource_control.is_some(), "resource_control"),
    ] {
        if set {
            warnings.push(format!(
                "{file}: global.{key} is ignored: mup runs the cluster on this machine, in its cluster directory"
            ));
        }
    }

    let mut drafts = Vec::new();
    for role in Role::TIERS {
        let list = match role {
            Role::ConfigServer => &topo.config_servers,
            Role::Mongod => &topo.mongod_servers,
            Role::Mongos => &topo.mongos_servers,
        };
        for (index, spec) in list.iter().enumerate() {
            drafts.push(draft(role, index, spec, file, &mut warnings)?);
        }
    }
    if drafts.is_empty() {
        return Err(err(
            String::new(),
            "the topology has no nodes: list at least one entry under mongod_servers".into(),
        ));
    }

    // Ports: unique on this machine (localhost and 127.0.0.1 are the same machine).
    let mut seen: BTreeMap<u16, String> = BTreeMap::new();
    for d in &drafts {
        if let Some(p) = d.port {
            if let Some(first) = seen.get(&p) {
                return Err(err(
                    format!("{}.port", d.source()),
                    format!("{p} is already used by {first}"),
                ));
            }
            seen.insert(p, d.source());
        }
    }

    let count = |r: Role| drafts.iter().filter(|d| d.role == r).count();
    let sharded = count(Role::ConfigServer) > 0 || count(Role::Mongos) > 0;
    if count(Role::Mongos) > 0 && count(Role::ConfigServer) == 0 {
        return Err(err(
            "mongos_servers".into(),
            "a topology with mongos needs config_servers (a config server replica set)".into(),
        ));
    }
    if sharded && count(Role::Mongod) == 0 {
        return Err(err(
            "mongod_servers".into(),
            "a sharded topology needs at least one shard in mongod_servers".into(),
        ));
    }

    // Replica-set names: one role each; config servers share one; shards need one.
    let mut rs_role: BTreeMap<&str, (Role, String)> = BTreeMap::new();
    for d in &drafts {
        match (&d.replica_set, d.role) {
            (None, Role::ConfigServer) => {
                return Err(err(
                    format!("{}.replica_set", d.source()),
                    "config servers need a replica_set (the config server replica set)".into(),
                ))
            }
            (None, Role::Mongod) if sharded => {
                return Err(err(
                    format!("{}.replica_set", d.source()),
                    "in a sharded topology every mongod is a shard member and needs a replica_set"
                        .into(),
                ))
            }
            (Some(rs), role) => {
                if let Some((other, first)) = rs_role.get(rs.as_str()) {
                    if *other != role {
                        return Err(err(
                            format!("{}.replica_set", d.source()),
                            format!("{rs:?} is already the replica set of {first}, a {} node; use another name", other.label()),
                        ));
                    }
                }
                rs_role.entry(rs).or_insert((role, d.source()));
            }
            _ => {}
        }
    }
    let config_sets: Vec<&str> = rs_role
        .iter()
        .filter(|(_, (r, _))| *r == Role::ConfigServer)
        .map(|(n, _)| *n)
        .collect();
    if config_sets.len() > 1 {
        return Err(err(
            "config_servers".into(),
            format!(
                "all config servers must be in one replica set, found {}",
                config_sets.join(", ")
            ),
        ));
    }

    // Go mup's replica_sets list must agree with the nodes.
    for (i, rs) in topo.replica_sets.iter().enumerate() {
        check_rs_name(&rs.name, file, &format!("replica_sets[{i}].name"))?;
        for (j, member) in rs.members.iter().enumerate() {
            let found = drafts.iter().any(|d| {
                d.replica_set.as_deref() == Some(rs.name.as_str())
                    && d.port.is_some_and(|p| format!("{}:{p}", d.host) == *member)
            });
            if !found {
                return Err(err(
                    format!("replica_sets[{i}].members[{j}]"),
                    format!("{member:?} is not a node with replica_set {:?}", rs.name),
                ));
            }
        }
    }

    let kind = if sharded {
        Kind::Sharded
    } else if drafts.iter().any(|d| d.replica_set.is_some()) {
        Kind::ReplicaSet
    } else {
        Kind::Standalone
    };
    Ok(Plan {
        drafts,
        kind,
        user: g.user.clone(),
        data_dir: g.data_dir.clone(),
        log_dir: g.log_dir.clone(),
        runtime_config: g.runtime_config.clone().unwrap_or_default(),
        warnings,
    })
}

fn draft(
    role: Role,
    index: usize,
    spec: &NodeSpec,
    file: &str,
    warnings: &mut Vec<String>,
) -> InputResult<Draft> {
    let source = format!("{}[{index}]", role.topology_key());
    let err = |field: &str, msg: String| InputError::new(file, format!("{source}.{field}"), msg);
    let host = spec
        .host
        .clone()
        .ok_or_else(|| err("host", "missing: name the host (localhost)".into()))?;
    if !is_local_host(&host) {
        return Err(err(
            "host",
            format!("{host:?} is not this machine: mup runs local clusters, use localhost or a 127.x.x.x address"),
        ));
    }
    let port = match spec.port {
        None => {
            return Err(err(
                "port",
                "missing: give a port, or 0 to let mup pick a free one".into(),
            ))
        }
        Some(0) => None,
        Some(p) if (1..=65535).contains(&p) => Some(p as u16),
        Some(p) => {
            return Err(err(
                "port",
                format!("{p} is not a port: use 1..65535, or 0 to let mup pick one"),
            ))
        }
    };
    if let Some(rs) = &spec.replica_set {
        check_rs_name(rs, file, &format!("{source}.replica_set"))?;
    }
    if role == Role::Mongos {
        for (set, key) in [
            (spec.replica_set.is_some(), "replica_set"),
            (spec.data_dir.is_some(), "data_dir"),
            (spec.priority.is_some(), "priority"),
            (spec.hidden.is_some(), "hidden"),
            (spec.votes.is_some(), "votes"),
        ] {
            if set {
                return Err(err(key, "a mongos router has no such setting".into()));
            }
        }
    }
    let member_option = spec.priority.is_some() || spec.hidden.is_some() || spec.votes.is_some();
    if member_option && spec.replica_set.is_none() {
        return Err(err(
            "replica_set",
            "priority, hidden and votes are replica set member options: set replica_set".into(),
        ));
    }
    if let Some(p) = spec.priority {
        if !(0.0..=1000.0).contains(&p) {
            return Err(err("priority", format!("{p} is out of range 0..1000")));
        }
    }
    if let Some(v) = spec.votes {
        if !(0..=1).contains(&v) {
            return Err(err("votes", format!("{v} must be 0 or 1")));
        }
    }
    if spec.hidden == Some(true) && spec.priority != Some(0.0) {
        return Err(err(
            "hidden",
            "a hidden member must have priority: 0".into(),
        ));
    }
    if spec.votes == Some(0) && spec.priority != Some(0.0) {
        return Err(err(
            "votes",
            "a non-voting member must have priority: 0 (the server refuses the set otherwise)"
                .into(),
        ));
    }
    for (set, key) in [
        (spec.deploy_dir.is_some(), "deploy_dir"),
        (spec.config_dir.is_some(), "config_dir"),
    ] {
        if set {
            warnings.push(format!(
                "{file}: {source}.{key} is ignored: configuration lives in the cluster directory"
            ));
        }
    }
    Ok(Draft {
        role,
        index,
        host,
        port,
        replica_set: spec.replica_set.clone(),
        priority: spec.priority,
        hidden: spec.hidden,
        votes: spec.votes,
        data_dir: spec.data_dir.clone(),
        log_dir: spec.log_dir.clone(),
        runtime_config: spec.runtime_config.clone().unwrap_or_default(),
    })
}

/// Everything `gen` decided that the inputs did not say, recorded in the tree's meta.yaml.
#[derive(Debug, Clone, PartialEq)]
pub struct Decisions {
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
}

/// Where inputs came from, for messages and relative paths.
#[derive(Debug, Clone)]
pub struct Sources {
    pub topology: String,
    pub meta: String,
    /// Relative `bin_path` is resolved against the meta file's directory.
    pub meta_dir: PathBuf,
}

/// A node of the cluster, with every name and path it needs.
#[derive(Debug, Clone)]
pub struct Node {
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
    pub conf_dir: PathBuf,
    pub log_file: PathBuf,
    /// The complete mongod/mongos config document.
    pub conf: Mapping,
}

impl Node {
    pub fn program(&self) -> String {
        program_name(self.role, self.port)
    }
    pub fn group(&self) -> &'static str {
        self.role.group()
    }
    /// `group:program`, how supervisord addresses a group member (docs/supervisord.md §5).
    pub fn qualified(&self) -> String {
        format!("{}:{}", self.group(), self.program())
    }
    pub fn dir_name(&self) -> String {
        node_dir_name(&self.host, self.port)
    }
    pub fn conf_file(&self) -> PathBuf {
        self.conf_dir.join(self.role.conf_file())
    }
    pub fn ini_file(&self) -> PathBuf {
        self.conf_dir.join(self.role.ini_file())
    }
    /// `host:port`
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
    /// The process's working directory: its data dir (mongod) or its conf dir (mongos).
    pub fn directory(&self) -> &Path {
        self.data_dir.as_deref().unwrap_or(&self.conf_dir)
    }
}

/// The validated cluster.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub name: String,
    pub version_text: String,
    pub version: Version,
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
}

/// Checks a path that will be written into a supervisord file.
fn ini_path(path: &Path, file: &str, field: &str) -> InputResult<PathBuf> {
    let text = path
        .to_str()
        .ok_or_else(|| InputError::new(file, field, format!("{path:?} is not valid UTF-8")))?;
    match ini::check(text) {
        Some(why) => Err(InputError::new(file, field, why)),
        None => Ok(path.to_path_buf()),
    }
}

/// Why `dd` cannot be a node's data directory, or `None`: it may not be, contain or lie in
/// anything mup must never delete or mix with a node's files — `/`, the home directory,
/// `MUP_HOME`, this tree's own files, another cluster's tree or data directories.
fn foreign_data_dir(
    dd: &Path,
    layout: &Layout,
    home: &Path,
    decided: &Decisions,
) -> Option<String> {
    let shown = dd.display();
    let root = layout.root();
    let overlaps = |p: &Path| p.starts_with(dd) || dd.starts_with(p);
    if dd.parent().is_none() {
        return Some(format!("{shown} is the root directory"));
    }
    if home.starts_with(dd) {
        return Some(format!(
            "{shown} contains the home directory {}",
            home.display()
        ));
    }
    if decided.mup_home.starts_with(dd) {
        return Some(format!(
            "{shown} contains MUP_HOME ({})",
            decided.mup_home.display()
        ));
    }
    if root.starts_with(dd) {
        return Some(format!(
            "{shown} contains the cluster directory {} (its configuration and credentials)",
            root.display()
        ));
    }
    if let Some(own) = layout.own_entries().iter().find(|p| overlaps(p)) {
        return Some(format!(
            "{shown} overlaps {}, which mup writes in the cluster directory",
            own.display()
        ));
    }
    for other in &decided.others {
        if overlaps(&other.root) {
            return Some(format!(
                "{shown} overlaps the directory of cluster {:?} ({})",
                other.name,
                other.root.display()
            ));
        }
        if let Some(d) = other.data_dirs.iter().find(|d| overlaps(d)) {
            return Some(format!(
                "{shown} overlaps a data directory of cluster {:?} ({})",
                other.name,
                d.display()
            ));
        }
    }
    if dd.starts_with(&decided.mup_home) && !dd.starts_with(root) {
        return Some(format!(
            "{shown} lies inside MUP_HOME ({}), outside this cluster's directory",
            decided.mup_home.display()
        ));
    }
    None
}

impl Cluster {
    /// Builds the cluster from the checked plan, the user's meta and the decisions.
    pub fn build(
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
            if let Some(why) = ini::check(value) {
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
                if let Some(other) = nodes.iter().find(|n: &&Node| {
                    n.data_dir
                        .as_deref()
                        .is_some_and(|o| o.starts_with(dd) || dd.starts_with(o))
                }) {
                    return Err(InputError::new(
                        tf,
                        field,
                        format!(
                            "{} overlaps the data directory of {} ({}): every node needs its own",
                            dd.display(),
                            other.source,
                            other.data_dir.as_deref().unwrap_or(dd).display()
                        ),
                    ));
                }
                dirs.insert(dd.clone());
            }
            let log_file = logs.join(format!("supervisor-{}.log", program_name(d.role, port)));
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
                conf_dir,
                log_file,
                conf: Mapping::new(),
            });
        }
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
            version,
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
        })
    }

    /// Nodes of one role, in topology order.
    pub fn nodes_of(&self, role: Role) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(move |n| n.role == role)
    }

    /// The completed meta.yaml for the tree.
    pub fn meta(&self) -> Meta {
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
                    log_file: n.log_file.display().to_string(),
                    priority: n.priority,
                    hidden: n.hidden,
                    votes: n.votes,
                })
                .collect(),
        }
    }
}

/// `sharding.configDB` for routers: `<configRS>/host:port,...`.
fn config_db(nodes: &[Node]) -> String {
    let cfg: Vec<&Node> = nodes
        .iter()
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
const MONGOD_ONLY: [&str; 2] = ["storage", "replication"];

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
fn base_conf(node: &Node, version: Version, kind: Kind, config_db: &str) -> Mapping {
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
        let mut storage = vec![("dbPath", s(&data.display().to_string()))];
        // storage.journal.enabled was removed in 6.1 (mongod refuses it there).
        if !version.at_least(6, 1) {
            storage.push(("journal", map(vec![("enabled", Value::Bool(true))])));
        }
        doc.push(("storage", map(storage)));
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
    match map(doc) {
        Value::Mapping(m) => m,
        _ => unreachable!("map() builds a mapping"),
    }
}

/// runtime_config with dotted keys (`storage.wiredTiger.engineConfig.cacheSizeGB: 1`)
/// expanded into nested mappings.
fn expand(m: &Mapping, file: &str, field: &str) -> InputResult<Mapping> {
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
fn overlay(
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
