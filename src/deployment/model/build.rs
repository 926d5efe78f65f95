//! The steps of [`super::Cluster::build`]: meta.yaml's values checked, each node built from its
//! draft with its paths, the checks across nodes (data directories, the metrics port), the
//! monitoring programs, and each node's complete config document.

use super::checks::{foreign_data_dir, ini_path};
use super::{Configured, Decisions, Monitor, Node, Outline, Role, Service, Sources, Version};
use crate::deployment::ini;
use crate::deployment::layout::{resolve, Layout};
use crate::deployment::meta::Meta;
use crate::deployment::mongod_conf::{expand, overlay, MONGOD_ONLY};
use crate::deployment::naming::{check_name, node_dir_name, program_name};
use crate::deployment::nodes::Draft;
use crate::deployment::yaml::Mapping;
use crate::error::{InputError, InputResult};
use std::path::{Path, PathBuf};

/// meta.yaml's values that the cluster takes as they are, once checked.
pub(super) struct CheckedMeta {
    pub version: Version,
    /// The tree's root, as supervisord's ini may hold it.
    pub root: PathBuf,
    pub bin_path: PathBuf,
}

/// Checks meta.yaml's name, version, paths, environment values and credentials, and that
/// the supervisor port is no node's.
pub(super) fn check_meta(
    outline: &Outline,
    meta: &Meta,
    decided: &Decisions,
    layout: &Layout,
    src: &Sources,
) -> InputResult<CheckedMeta> {
    let mf = src.meta.as_str();
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
    check_environment(decided, mf)?;
    check_supervisor_port(outline, decided, mf)?;
    Ok(CheckedMeta {
        version,
        root,
        bin_path,
    })
}

/// HOME and USER go into supervisord's environment; the credentials into its ini.
fn check_environment(decided: &Decisions, mf: &str) -> InputResult<()> {
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
    Ok(())
}

fn check_supervisor_port(outline: &Outline, decided: &Decisions, mf: &str) -> InputResult<()> {
    match outline
        .drafts
        .iter()
        .find(|d| decided.ports.get(&d.source()) == Some(&decided.supervisor_port))
    {
        Some(d) => Err(InputError::new(
            mf,
            "supervisor_port",
            format!(
                "{} is already used by {}",
                decided.supervisor_port,
                d.source()
            ),
        )),
        None => Ok(()),
    }
}

/// One node from its draft: its port, directories and log file (its config document comes
/// later, once every node is known), and its log directory.
pub(super) fn node_of(
    d: &Draft,
    outline: &Outline,
    decided: &Decisions,
    layout: &Layout,
    root: &Path,
    global_logs: &Path,
    tf: &str,
) -> InputResult<(Configured, PathBuf)> {
    let home = Path::new(&decided.home);
    let source = d.source();
    let port = *decided
        .ports
        .get(&source)
        .expect("gen decides a port for every draft");
    let dir_name = node_dir_name(&d.host, port);
    let conf_dir = layout.node_conf_dir(&dir_name);
    let data_dir = match (d.role, &d.data_dir, &outline.data_dir) {
        (Role::Mongos, _, _) => None,
        (_, Some(own), _) => Some(ini_path(
            &resolve(own, home, root),
            tf,
            &format!("{source}.data_dir"),
        )?),
        (_, None, Some(base)) => {
            Some(ini_path(&resolve(base, home, root), tf, "global.data_dir")?.join(&dir_name))
        }
        (_, None, None) => Some(layout.default_data_dir(&dir_name)),
    };
    let logs = match &d.log_dir {
        Some(own) => ini_path(&resolve(own, home, root), tf, &format!("{source}.log_dir"))?,
        None => global_logs.to_path_buf(),
    };
    if let Some(dd) = &data_dir {
        if let Some(why) = foreign_data_dir(dd, layout, home, decided) {
            return Err(InputError::new(tf, format!("{source}.data_dir"), why));
        }
    }
    let log_file = crate::deployment::layout::log_file(&logs, &program_name(d.role, port));
    let node = Configured {
        node: Node {
            role: d.role,
            host: d.host.clone(),
            port,
            replica_set: d.replica_set.clone(),
            program: program_name(d.role, port),
            group: program_name(d.role, port),
            data_dir,
            data_dir_created: false,
            data_dir_resolved: None,
            config_file: conf_dir.join(d.role.conf_file()),
            log_file,
            priority: d.priority,
            hidden: d.hidden,
            votes: d.votes,
        },
        source,
        conf: Mapping::new(),
    };
    Ok((node, logs))
}

/// No two nodes' data directories may be, contain or lie in each other.
pub(super) fn check_overlaps(nodes: &[Configured], tf: &str) -> InputResult<()> {
    let with_data: Vec<(&Configured, &Path)> = nodes
        .iter()
        .filter_map(|n| n.data_dir.as_deref().map(|d| (n, d)))
        .collect();
    let data_dirs: Vec<&Path> = with_data.iter().map(|(_, d)| *d).collect();
    let Some((first, then)) = crate::deployment::nodes::first_overlap(&data_dirs) else {
        return Ok(());
    };
    let ((other, od), (node, dd)) = (with_data[first], with_data[then]);
    Err(InputError::new(
        tf,
        format!("{}.data_dir", node.source),
        format!(
            "{} overlaps the data directory of {} ({}): every node needs its own",
            dd.display(),
            other.source,
            od.display()
        ),
    ))
}

/// The exporter's port is no node's and not the supervisor port.
pub(super) fn check_metrics_port(
    nodes: &[Configured],
    decided: &Decisions,
    mf: &str,
) -> InputResult<()> {
    let Some(port) = decided.metrics_port else {
        return Ok(());
    };
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
    Ok(())
}

/// The monitoring programs that are on.
pub(super) fn monitors(decided: &Decisions, layout: &Layout, global_logs: &Path) -> Vec<Monitor> {
    Service::ALL
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
            log_file: crate::deployment::layout::log_file(global_logs, service.program()),
        })
        .collect()
}

/// A node's complete config document: mup's `base`, then `global.runtime_config` (without
/// the sections a router refuses), then the node's own `runtime_config`.
pub(super) fn node_conf(
    mut conf: Mapping,
    d: &Draft,
    outline: &Outline,
    tf: &str,
) -> InputResult<Mapping> {
    let mut global = expand(&outline.runtime_config, tf, "global.runtime_config")?;
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
    Ok(conf)
}
