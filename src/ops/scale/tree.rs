//! The topology of a deployed cluster, rebuilt from its tree (meta.yaml and each node's
//! config file), changed by a scale-out fragment or a scale-in, and compiled again — with the
//! proof that no kept node's configuration changes (so supervisord keeps its process).

use crate::deployment::gen::{self, Compiled, Inputs};
use crate::deployment::meta::NodeMeta;
use crate::deployment::model::Role;
use crate::deployment::security::Settings;
use crate::deployment::topology::{NodeSpec, Topology};
use crate::deployment::yaml::{Mapping, Value};
use crate::deployment::Node;
use crate::deployment::Tree;
use crate::error::InputError;
use anyhow::Context;
use std::path::{Path, PathBuf};

/// What a node's config file holds beyond what mup owns: its runtime_config.
fn runtime_config(node: &NodeMeta, security: Option<&Settings>) -> anyhow::Result<Option<Mapping>> {
    let path = Path::new(&node.config_file);
    let shown = path.display().to_string();
    let value: Value = crate::deployment::yaml::load(path, &shown)?;
    let Value::Mapping(mut m) = value else {
        return Err(InputError::new(shown, "", "is not a YAML mapping").into());
    };
    crate::deployment::mongod_conf::strip_written(&mut m, security);
    Ok((!m.is_empty()).then_some(m))
}

fn node_spec(n: &NodeMeta, security: Option<&Settings>) -> anyhow::Result<NodeSpec> {
    // Explicit, so that a fragment's global data_dir or log_dir never moves a kept node.
    let log_dir = Path::new(&n.log_file)
        .parent()
        .map(|l| l.display().to_string());
    Ok(NodeSpec {
        host: Some(n.host.clone()),
        port: Some(i64::from(n.port)),
        replica_set: n.replica_set.clone(),
        priority: n.priority,
        hidden: n.hidden,
        votes: n.votes,
        data_dir: n.data_dir.clone(),
        log_dir,
        runtime_config: runtime_config(n, security)?,
        ..NodeSpec::default()
    })
}

/// The cluster's topology as its tree records it: every node with its port, data and log
/// directory and its own options (global settings folded into each node).
pub(crate) fn current(tree: &Tree) -> anyhow::Result<Topology> {
    let mut t = Topology::default();
    for n in &tree.meta.nodes {
        let spec = node_spec(n, tree.meta.security.as_ref())
            .with_context(|| format!("cannot read node {} of the tree", n.supervisor_name))?;
        match Role::from_meta_type(&n.kind) {
            Some(Role::ConfigServer) => t.config_servers.push(spec),
            Some(Role::Mongod) => t.mongod_servers.push(spec),
            Some(Role::Mongos) => t.mongos_servers.push(spec),
            None => anyhow::bail!("meta.yaml: node {} has type {:?}", n.source, n.kind),
        }
    }
    Ok(t)
}

/// `current` with the fragment's nodes appended. Its `global:` applies to its nodes only:
/// every kept node names its own directories, and global runtime_config is merged into each
/// new node's own (mongod-only sections not given to routers), as compile does.
pub(crate) fn merged(mut current: Topology, fragment: &Topology) -> Topology {
    let mut global = fragment.global.clone();
    let shared = global.runtime_config.take();
    let fill = |mongos: bool| {
        let shared = shared.clone();
        move |mut s: NodeSpec| {
            let mut rc = shared.clone().unwrap_or_default();
            if mongos {
                for k in crate::deployment::mongod_conf::MONGOD_ONLY {
                    rc.remove(k);
                }
            }
            for (k, v) in s.runtime_config.iter().flatten() {
                rc.insert(k.clone(), v.clone());
            }
            s.runtime_config = (!rc.is_empty()).then_some(rc);
            s
        }
    };
    current.global = global;
    let f = fragment.clone();
    current
        .config_servers
        .extend(f.config_servers.into_iter().map(fill(false)));
    current
        .mongod_servers
        .extend(f.mongod_servers.into_iter().map(fill(false)));
    current
        .mongos_servers
        .extend(f.mongos_servers.into_iter().map(fill(true)));
    current
}

/// `current` without the nodes at `addresses` (`host:port`).
pub(crate) fn without(mut current: Topology, gone: &[String]) -> Topology {
    let keep = |s: &NodeSpec| {
        let address = crate::deployment::naming::address(
            s.host.as_deref().unwrap_or_default(),
            s.port.and_then(|p| u16::try_from(p).ok()).unwrap_or(0),
        );
        !gone.contains(&address)
    };
    current.config_servers.retain(keep);
    current.mongod_servers.retain(keep);
    current.mongos_servers.retain(keep);
    current
}

/// Compiles `topology` into the cluster's tree with its own meta.yaml (nothing written).
pub(crate) fn compile(tree: &Tree, topology: Topology, label: &str) -> anyhow::Result<Compiled> {
    let mut meta = tree.meta.clone();
    meta.nodes.clear();
    let compiled = gen::compile_inputs(
        Inputs {
            topology,
            topology_label: label.to_string(),
            meta,
            meta_label: tree.layout.meta_file().display().to_string(),
            meta_dir: tree.layout.root().to_path_buf(),
        },
        tree.layout.clone(),
        false,
    )?;
    unchanged_for_kept(tree, &compiled)?;
    Ok(compiled)
}

/// The text of a generated file without its comment lines (they name the topology entry,
/// which moves when an earlier entry is removed; neither supervisord nor mongod read them).
fn body(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with(';'))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every file of a node that stays, and supervisor.ini, reads as before apart from comments:
/// otherwise a kept node would change (or, for supervisor.ini, its group), and supervisord
/// would restart it.
fn unchanged_for_kept(tree: &Tree, compiled: &Compiled) -> anyhow::Result<()> {
    let ini = tree.layout.supervisor_ini();
    let kept: Vec<PathBuf> = compiled
        .cluster
        .nodes
        .iter()
        .filter(|n| tree.members.iter().any(|m| m.program == n.program))
        .flat_map(|n| [n.config_file.clone(), n.ini_file()])
        .chain(std::iter::once(ini.clone()))
        .collect();
    for f in compiled.files.iter().filter(|f| kept.contains(&f.path)) {
        let old = crate::deployment::yaml::read(&f.path, &f.path.display().to_string())?;
        if body(&old) != body(&f.contents) {
            anyhow::bail!(
                "{} would change ({}): a running node would restart, so nothing was changed; `mup gen --check` on the tree shows what differs from what this mup writes",
                tree.layout.relative(&f.path).display(),
                if f.path == ini {
                    "the tree was written by a mup that grouped nodes by tier; see docs/supervisord.md, \"One group per node\""
                } else {
                    "its configuration differs from what mup writes for it"
                }
            );
        }
    }
    Ok(())
}

/// The fragment's entries that the tree already holds exactly (same role, host, port,
/// replica set and member options), written by a scale-out that was interrupted: taken out of the fragment and returned as
/// members, so that the same command run again finishes them instead of adding them twice.
/// Entries with `port: 0` cannot be recognised: name their allocated ports to go on.
pub(crate) fn already_written(fragment: &Topology, members: &[Node]) -> (Topology, Vec<Node>) {
    let mut rest = fragment.clone();
    let mut found = Vec::new();
    let mut take = |specs: &mut Vec<NodeSpec>, role: Role| {
        specs.retain(|s| {
            // Anything less than the same entry is not recognised: its port is then one the
            // cluster already uses, which the merged topology refuses.
            let hit = members.iter().find(|m| {
                m.role == role
                    && s.host.as_deref() == Some(m.host.as_str())
                    && s.port.is_some_and(|p| p > 0 && p == i64::from(m.port))
                    && s.replica_set == m.replica_set
                    && (s.priority, s.hidden, s.votes) == (m.priority, m.hidden, m.votes)
            });
            if let Some(m) = hit {
                found.push(m.clone());
            }
            hit.is_none()
        });
    };
    take(&mut rest.config_servers, Role::ConfigServer);
    take(&mut rest.mongod_servers, Role::Mongod);
    take(&mut rest.mongos_servers, Role::Mongos);
    (rest, found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(port: i64, rs: Option<&str>) -> NodeSpec {
        NodeSpec {
            host: Some("localhost".into()),
            port: Some(port),
            replica_set: rs.map(String::from),
            ..NodeSpec::default()
        }
    }

    fn member(port: u16, rs: &str) -> Node {
        Node {
            role: Role::Mongod,
            host: "localhost".into(),
            port,
            replica_set: Some(rs.into()),
            program: crate::deployment::naming::program_name(Role::Mongod, port),
            group: crate::deployment::naming::program_name(Role::Mongod, port),
            data_dir: None,
            data_dir_created: false,
            data_dir_resolved: None,
            config_file: Default::default(),
            log_file: Default::default(),
            priority: None,
            hidden: None,
            votes: None,
        }
    }

    #[test]
    fn a_fragment_adds_after_the_cluster_and_its_global_options_reach_only_its_nodes() {
        let current = Topology {
            mongod_servers: vec![spec(1, Some("rs0"))],
            ..Topology::default()
        };
        let mut fragment = Topology {
            mongod_servers: vec![spec(2, Some("rs0"))],
            mongos_servers: vec![spec(3, None)],
            ..Topology::default()
        };
        let rc: Mapping =
            crate::deployment::yaml::parse("{storage: {a: 1}, net: {b: 2}}", "rc").expect("yaml");
        fragment.global.runtime_config = Some(rc);
        let t = merged(current, &fragment);
        let ports: Vec<Option<i64>> = t.mongod_servers.iter().map(|s| s.port).collect();
        assert_eq!(ports, [Some(1), Some(2)]);
        assert!(
            t.mongod_servers[0].runtime_config.is_none(),
            "kept node untouched"
        );
        let new = t.mongod_servers[1].runtime_config.clone().expect("merged");
        assert!(new.contains_key("storage") && new.contains_key("net"));
        let router = t.mongos_servers[0].runtime_config.clone().expect("merged");
        assert!(!router.contains_key("storage") && router.contains_key("net"));
        assert!(t.global.runtime_config.is_none());
        let left = without(t, &["localhost:1".to_string()]);
        assert_eq!(left.mongod_servers.len(), 1);
        assert_eq!(left.mongod_servers[0].port, Some(2));
    }

    #[test]
    fn entries_the_tree_already_holds_are_recognised_by_port_and_set() {
        let fragment = Topology {
            mongod_servers: vec![
                spec(2, Some("rs0")),
                spec(3, Some("rs0")),
                spec(0, Some("rs0")),
            ],
            ..Topology::default()
        };
        let (rest, found) = already_written(&fragment, &[member(1, "rs0"), member(2, "rs0")]);
        assert_eq!(found, [member(2, "rs0")]);
        let left: Vec<Option<i64>> = rest.mongod_servers.iter().map(|s| s.port).collect();
        assert_eq!(left, [Some(3), Some(0)]);
        let (_, other_set) = already_written(&fragment, &[member(2, "rs1")]);
        assert!(other_set.is_empty());
    }
}
