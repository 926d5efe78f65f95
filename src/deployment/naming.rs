//! Every name mup gives: roles and their programs, groups and files, node directories, the
//! cluster name and supervisord's identifier. gen and ctl both call these, so they never disagree.

use crate::error::{InputError, InputResult};

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
    /// The tier's name (`mongod-servers`): a ctl target naming every node of this role. Each
    /// node is its own supervisord group (docs/supervisord.md, "One group per node"); trees
    /// written before that grouped a tier's nodes under this name, which a daemon still
    /// running such a tree reports.
    pub fn tier(self) -> &'static str {
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
    pub fn from_tier(tier: &str) -> Option<Role> {
        Role::TIERS.into_iter().find(|r| r.tier() == tier)
    }
    /// The role of a node's program name (`mongod-30000`), `None` for any other name.
    pub fn from_program(program: &str) -> Option<Role> {
        Role::TIERS.into_iter().find(|r| {
            program
                .strip_prefix(r.program_prefix())
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|port| port.parse::<u16>().is_ok())
        })
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

/// A program of the tree that is not a MongoDB node: the event listener and the metrics
/// exporter, both the mup binary in a monitoring mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    Events,
    Metrics,
}

/// The group of the exporter (the Go mup's name for its monitoring group).
pub(crate) const MONITORING_GROUP: &str = "monitoring";

impl Service {
    pub const ALL: [Service; 2] = [Service::Events, Service::Metrics];

    pub fn program(self) -> &'static str {
        match self {
            Service::Events => "mup-events",
            Service::Metrics => "mup-metrics",
        }
    }
    /// An event listener is its own group in supervisord (a `[group:]` may only name
    /// `[program:]`s), so only the exporter is in `monitoring`.
    pub fn group(self) -> &'static str {
        match self {
            Service::Events => "mup-events",
            Service::Metrics => MONITORING_GROUP,
        }
    }
    /// `type` in meta.yaml's `services` list, the word for tables, and the argument of
    /// `mup monitor` that runs it (`owner::running_monitors` reads it back).
    pub fn meta_type(self) -> &'static str {
        match self {
            Service::Events => "events",
            Service::Metrics => "metrics",
        }
    }
    /// `conf/monitoring/<this>`
    pub fn ini_file(self) -> String {
        format!("supervisor-{}.ini", self.program())
    }
    pub fn from_meta_type(kind: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|s| s.meta_type() == kind)
    }
    pub fn from_program(name: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|s| s.program() == name)
    }
}

/// `mongod-30000`: the program name for a role and port.
pub(crate) fn program_name(role: Role, port: u16) -> String {
    format!("{}-{port}", role.program_prefix())
}

/// `host:port`: how MongoDB and mup's messages name a node.
pub(crate) fn address(host: &str, port: u16) -> String {
    format!("{host}:{port}")
}

/// `<host>-<port>`: the node's directory name under conf/ and data/.
pub(crate) fn node_dir_name(host: &str, port: u16) -> String {
    format!("{host}-{port}")
}

/// A cluster name is one safe path segment; it also becomes supervisord's identifier.
pub(crate) fn check_name(name: &str, file: &str) -> InputResult<()> {
    let ok = is_safe_name(name)
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
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

/// 1 to 64 of `A-Z a-z 0-9 . _ -`: safe as a path segment, in supervisord's files and in
/// MongoDB's replica-set names.
fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// A replica-set name: `field` of `file` in messages.
pub(crate) fn check_rs_name(name: &str, file: &str, field: &str) -> InputResult<()> {
    if is_safe_name(name) {
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

/// supervisord's `identifier`, checked by `mup ctl` through getIdentification().
pub(crate) fn identifier(cluster: &str) -> String {
    format!("mup-{cluster}")
}
