//! A generated cluster tree, loaded: what every command after gen works on. The tree's
//! meta.yaml is read with the same naming functions gen used, so both always agree on names
//! and paths; the daemon's address and credentials, the programs and their selection.

use crate::deployment::layout::Layout;
use crate::deployment::meta::{self, Meta};
use crate::deployment::model::{program_name, Role, Service};
use crate::error::InputError;
use crate::supervisor::{self, fault, Client};
use anyhow::anyhow;

use super::model::{Monitor, Node};
use super::programs::Program;
use super::programs::Selection;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A generated cluster tree, loaded.
#[derive(Debug, Clone)]
pub struct Tree {
    pub layout: Layout,
    pub meta: Meta,
    pub port: u16,
    /// In tier order (config servers, mongods, routers), as gen wrote them.
    pub members: Vec<Node>,
    /// The monitoring programs that are on.
    pub monitors: Vec<Monitor>,
}

/// The nodes meta.yaml records, in tier order.
fn nodes_of(meta: &Meta, shown: &str) -> anyhow::Result<Vec<Node>> {
    let mut members = Vec::new();
    for (i, n) in meta.nodes.iter().enumerate() {
        let role = Role::from_meta_type(&n.kind).ok_or_else(|| {
            InputError::new(
                shown,
                format!("nodes[{i}].type"),
                format!("{:?} is not mongod, config or mongos", n.kind),
            )
        })?;
        members.push(Node {
            role,
            host: n.host.clone(),
            port: n.port,
            replica_set: n.replica_set.clone(),
            program: program_name(role, n.port),
            group: match n.supervisor_group.as_str() {
                "" => program_name(role, n.port),
                g => g.to_string(),
            },
            data_dir: n.data_dir.as_ref().map(PathBuf::from),
            data_dir_created: n.data_dir_created == Some(true),
            data_dir_resolved: n.data_dir_resolved.as_ref().map(PathBuf::from),
            config_file: PathBuf::from(&n.config_file),
            log_file: PathBuf::from(&n.log_file),
            priority: n.priority,
            hidden: n.hidden,
            votes: n.votes,
        });
    }
    members.sort_by_key(|m| Role::TIERS.iter().position(|r| *r == m.role));
    Ok(members)
}

/// The monitoring programs meta.yaml records.
fn monitors_of(meta: &Meta, layout: &Layout, shown: &str) -> anyhow::Result<Vec<Monitor>> {
    let mut monitors = Vec::new();
    for (i, s) in meta.services.iter().enumerate() {
        let service = Service::from_meta_type(&s.kind).ok_or_else(|| {
            InputError::new(
                shown,
                format!("services[{i}].type"),
                format!("{:?} is not events or metrics", s.kind),
            )
        })?;
        monitors.push(Monitor {
            service,
            port: s.port,
            conf_dir: layout.monitoring_conf_dir(),
            log_file: PathBuf::from(&s.log_file),
        });
    }
    Ok(monitors)
}

impl Tree {
    /// Loads `<dir>/meta.yaml`; refuses trees not made by `mup gen` (e.g. PID-tracked clusters).
    pub fn load(dir: &Path) -> anyhow::Result<Tree> {
        let layout = Layout::new(crate::deployment::layout::absolute(dir));
        let file = layout.meta_file();
        let shown = file.display().to_string();
        if !file.is_file() {
            return Err(InputError::new(
                &shown,
                "",
                "no such file: is this a cluster directory made by `mup gen`?",
            )
            .into());
        }
        let Some(meta) = meta::load_tree(&file, &shown)? else {
            return Err(InputError::new(
                &shown,
                "supervisor_enabled",
                "this cluster tracks PIDs and is not managed by supervisord yet: run `mup cluster migrate <name>` first",
            )
            .into());
        };
        let port = match meta.supervisor_port {
            None => Err("missing: run `mup gen` on this tree again".to_string()),
            Some(p) => u16::try_from(p)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("{p} is not a port: use 1..65535")),
        }
        .map_err(|why| InputError::new(&shown, "supervisor_port", why))?;
        let members = nodes_of(&meta, &shown)?;
        let monitors = monitors_of(&meta, &layout, &shown)?;
        Ok(Tree {
            layout,
            meta,
            port,
            members,
            monitors,
        })
    }

    pub fn name(&self) -> &str {
        &self.meta.name
    }

    /// A client with this tree's credentials: only for a daemon proven ours first
    /// ([`daemon::running`], [`owner::daemon`]).
    pub(crate) fn client(&self) -> Client {
        Client::new(
            self.port,
            self.meta.supervisor_user.as_deref().unwrap_or_default(),
            self.meta.supervisor_password.as_deref().unwrap_or_default(),
        )
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every program name, for messages.
    pub fn known(&self) -> String {
        self.members
            .iter()
            .map(|m| m.program.as_str())
            .chain(self.monitors.iter().map(|m| -> &str { m.program() }))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The monitoring program `service`, when it is on.
    pub fn monitor(&self, service: Service) -> Option<&Monitor> {
        self.monitors.iter().find(|m| m.service == service)
    }

    /// Every program of the tree.
    pub fn all(&self) -> Selection {
        Selection {
            nodes: self.members.clone(),
            monitors: self.monitors.clone(),
        }
    }

    /// The members named by `targets` (program, `group:program`, or group name) and
    /// `replica_set` (a replica-set name); all members when both are empty.
    pub fn select(
        &self,
        targets: &[String],
        replica_set: Option<&str>,
    ) -> anyhow::Result<Selection> {
        if targets.is_empty() && replica_set.is_none() {
            return Ok(self.all());
        }
        let mut chosen: BTreeSet<usize> = BTreeSet::new();
        let mut monitors: Vec<Monitor> = Vec::new();
        for t in targets {
            let named: Vec<&Monitor> = self
                .monitors
                .iter()
                .filter(|m| {
                    *t == m.program()
                        || *t == m.qualified()
                        || *t == m.group()
                        || *t == format!("{}:*", m.group())
                })
                .collect();
            if !named.is_empty() {
                for m in named {
                    if !monitors.contains(m) {
                        monitors.push(m.clone());
                    }
                }
                continue;
            }
            let hits: Vec<usize> = self
                .members
                .iter()
                .enumerate()
                .filter(|(_, m)| {
                    *t == m.program
                        || *t == m.qualified()
                        || *t == m.role.tier()
                        || *t == format!("{}:*", m.role.tier())
                })
                .map(|(i, _)| i)
                .collect();
            if hits.is_empty() {
                return Err(InputError::new(
                    "TARGET",
                    "",
                    format!(
                        "no such program, tier or group {t:?} in cluster {}; programs: {}; tiers and groups: {}",
                        self.name(),
                        self.known(),
                        self.groups().join(", ")
                    ),
                )
                .into());
            }
            chosen.extend(hits);
        }
        if let Some(rs) = replica_set {
            chosen.extend(self.set_members(rs)?);
        }
        monitors.sort_by_key(|m| m.service);
        Ok(Selection {
            nodes: chosen
                .into_iter()
                .map(|i| self.members[i].clone())
                .collect(),
            monitors,
        })
    }

    /// The indices of the members of replica set `rs`, which must exist.
    fn set_members(&self, rs: &str) -> anyhow::Result<Vec<usize>> {
        let hits: Vec<usize> = self
            .members
            .iter()
            .enumerate()
            .filter(|(_, m)| m.replica_set.as_deref() == Some(rs))
            .map(|(i, _)| i)
            .collect();
        if hits.is_empty() {
            let sets: BTreeSet<&str> = self
                .members
                .iter()
                .filter_map(|m| m.replica_set.as_deref())
                .collect();
            return Err(InputError::new(
                "--rs",
                "",
                format!(
                    "no replica set {rs:?} in cluster {}; replica sets: {}",
                    self.name(),
                    sets.into_iter().collect::<Vec<_>>().join(", ")
                ),
            )
            .into());
        }
        Ok(hits)
    }

    /// The members of `roles` (all when empty) that are also among `nodes` (`host:port`,
    /// all when empty): `mup cluster`'s `-R`/`-N`, as in tiup. Without filters, the
    /// monitoring programs too.
    pub fn select_nodes(&self, roles: &[Role], nodes: &[String]) -> anyhow::Result<Selection> {
        if roles.is_empty() && nodes.is_empty() {
            return Ok(self.all());
        }
        let ids: Vec<&str> = nodes.iter().map(|n| n.trim()).collect();
        if let Some(id) = ids.iter().find(|id| !self.members.iter().any(|m| m.is(id))) {
            let known: Vec<String> = self.members.iter().map(Node::address).collect();
            return Err(InputError::new(
                "-N",
                "",
                format!(
                    "no node {id:?} in cluster {}; nodes: {}",
                    self.name(),
                    known.join(", ")
                ),
            )
            .into());
        }
        Ok(Selection {
            nodes: self
                .members
                .iter()
                .filter(|m| roles.is_empty() || roles.contains(&m.role))
                .filter(|m| ids.is_empty() || ids.iter().any(|id| m.is(id)))
                .cloned()
                .collect(),
            monitors: Vec::new(),
        })
    }

    fn groups(&self) -> Vec<&'static str> {
        let mut g: Vec<&'static str> = self
            .members
            .iter()
            .map(|m| m.role.tier())
            .chain(self.monitors.iter().map(Monitor::group))
            .collect();
        g.dedup();
        g
    }

    /// The member a program name (bare or qualified) refers to.
    pub fn member(&self, program: &str) -> anyhow::Result<Node> {
        self.members
            .iter()
            .find(|m| m.program == program || m.qualified() == program)
            .cloned()
            .ok_or_else(|| {
                InputError::new(
                    "PROGRAM",
                    "",
                    format!(
                        "no such program {program:?} in cluster {}; programs: {}",
                        self.name(),
                        self.known()
                    ),
                )
                .into()
            })
    }

    /// The node or monitoring program a name (bare or qualified) refers to.
    pub(crate) fn program(&self, name: &str) -> anyhow::Result<Box<dyn Program>> {
        if let Some(m) = self
            .monitors
            .iter()
            .find(|m| m.program() == name || m.qualified() == name)
        {
            return Ok(Box::new(m.clone()));
        }
        Ok(Box::new(self.member(name)?))
    }

    /// A supervisor error as a sentence the user can act on.
    pub fn explain(&self, err: supervisor::Error) -> anyhow::Error {
        match err {
            supervisor::Error::NotRunning => anyhow!(
                "supervisord for cluster {} is not running on 127.0.0.1:{} (start it with `mup ctl --dir {} up`)",
                self.name(),
                self.port,
                self.layout.root().display()
            ),
            supervisor::Error::Unauthorized => anyhow!(
                "supervisord on 127.0.0.1:{} refused the credentials in {}: they do not match the running daemon (is another cluster's daemon on this port, or was supervisor.ini regenerated while it ran?)",
                self.port,
                self.layout.meta_file().display()
            ),
            supervisor::Error::Timeout { .. } => anyhow!(
                "{err}: is supervisord of cluster {} stopped (SIGSTOP) or stuck? `mup ctl --dir {} down` stops it by signal",
                self.name(),
                self.layout.root().display()
            ),
            supervisor::Error::Fault { code, message } if code == fault::BAD_NAME => anyhow!(
                "supervisord for cluster {} has no program {}: programs are {} (run `mup ctl reload` after `mup gen`)",
                self.name(),
                message.trim_start_matches("BAD_NAME: "),
                self.known()
            ),
            other => anyhow!("cluster {}: {other}", self.name()),
        }
    }
}

/// The last `lines` lines of a program's log, from the daemon (or from its file when the
/// daemon cannot tell).
pub(crate) fn log_tail(client: &Client, program: &dyn Program, lines: usize) -> String {
    let text = match program.tail(client, 0, 4096) {
        Ok((text, _, _)) => text,
        Err(e) => match std::fs::read(program.log_file()) {
            Ok(bytes) => {
                String::from_utf8_lossy(&bytes[bytes.len().saturating_sub(4096)..]).into_owned()
            }
            Err(_) => return format!("(log unavailable: {e})"),
        },
    };
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The directory of the cluster called `name` under `MUP_HOME`, which must exist;
/// `shown` names the argument in messages (`--cluster`, `NAME`).
pub(crate) fn named_cluster_dir(name: &str, shown: &str) -> anyhow::Result<PathBuf> {
    crate::deployment::model::check_name(name, shown)?;
    let layout = Layout::for_cluster(name);
    if !layout.meta_file().is_file() {
        return Err(InputError::new(
            shown,
            "",
            format!(
                "no cluster {name:?} under {} (see `mup cluster list`)",
                crate::deployment::layout::clusters_dir().display()
            ),
        )
        .into());
    }
    Ok(layout.root().to_path_buf())
}

/// The cluster directory named by `--dir` or `--cluster`.
pub(crate) fn cluster_dir(dir: Option<&Path>, cluster: Option<&str>) -> anyhow::Result<PathBuf> {
    match (dir, cluster) {
        (Some(d), _) => Ok(d.to_path_buf()),
        (None, Some(name)) => named_cluster_dir(name, "--cluster"),
        (None, None) => Err(InputError::new(
            "mup ctl",
            "",
            "name the cluster: --dir CLUSTER_DIR or --cluster NAME",
        )
        .into()),
    }
}
