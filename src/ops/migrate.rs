//! `mup cluster migrate`: a PID-tracked cluster of the Go mup moved under supervisord.

use crate::deployment::gen::{self, Inputs, Mode};
use crate::deployment::layout::{self, Layout};
use crate::deployment::legacy;
use crate::deployment::meta::{self, Meta};
use crate::deployment::model::{self, Role};
use crate::deployment::owner;
use crate::deployment::topology::{NodeSpec, Topology};
use crate::deployment::Tree;
use crate::error::InputError;
use crate::ops::cluster::Binaries;
use crate::ops::daemon;
use crate::ops::lifecycle;
use crate::system::procs;
use crate::ui::Ui;
use anyhow::bail;
use rustix::process::Signal;
use std::path::Path;

/// `mup cluster migrate`: a PID-tracked cluster of the Go mup → supervisord, data in place.
/// With `bins`, the new tree uses those binaries instead of the legacy cluster's.
pub(crate) fn migrate(ui: &Ui, name: &str, bins: Option<&Binaries>) -> anyhow::Result<()> {
    model::check_name(name, "NAME")?;
    let layout = Layout::for_cluster(name);
    let file = layout.meta_file();
    let shown = file.display().to_string();
    if !file.is_file() {
        return Err(InputError::new(
            "NAME",
            "",
            format!("no cluster {name:?}: {shown} does not exist"),
        )
        .into());
    }
    let _ports = crate::deployment::locks::ports(ui)?;
    let _lock = crate::deployment::locks::exclusive(ui, &layout)?;
    if !meta::is_legacy(&file, &shown)? {
        outln!(
            ui,
            "cluster {name} is already managed by supervisord: nothing to migrate"
        )?;
        return Ok(());
    }
    let old = legacy::load(&file, &shown)?;
    if old.name != name {
        return Err(InputError::new(
            &shown,
            "name",
            format!("{:?} does not match the directory name {name:?}", old.name),
        )
        .into());
    }

    // The new tree is compiled (and checked) before any legacy process is touched.
    let compiled = gen::compile_inputs(
        legacy_inputs(&old, &shown, &layout, bins)?,
        layout.clone(),
        true,
    )?;
    stop_legacy(ui, &old)?;
    let held: Vec<String> = compiled
        .cluster
        .nodes
        .iter()
        .filter(|n| procs::listening(&n.host, n.port))
        .map(|n| n.address())
        .collect();
    if !held.is_empty() {
        bail!(
            "cluster {name}: after stopping the legacy processes, ports are still in use: {}",
            held.join(", ")
        );
    }
    let kept = layout.root().join("meta.yaml.legacy");
    crate::deployment::write::write_atomic(&kept, &std::fs::read(&file)?, 0o600)?;
    gen::apply(ui, &compiled, Mode::Write)?;
    let tree = Tree::load(layout.root())?;
    let client = daemon::up(ui, &tree, false)?;
    lifecycle::start(ui, &tree, &client, &tree.all(), true)?;
    outln!(
        ui,
        "cluster {name} migrated: supervisord owns {} nodes, data directories unchanged; the old metadata is in {}",
        tree.members.len(),
        kept.display()
    )?;
    Ok(())
}

/// The topology and meta of a legacy cluster: every node keeps its data directory.
fn legacy_inputs(
    old: &legacy::LegacyMeta,
    shown: &str,
    layout: &Layout,
    bins: Option<&Binaries>,
) -> anyhow::Result<Inputs> {
    let mut topology = Topology::default();
    for (i, n) in old.nodes.iter().enumerate() {
        let role = Role::from_meta_type(&n.kind).ok_or_else(|| {
            InputError::new(
                shown,
                format!("nodes[{i}].type"),
                format!("{:?} is not mongod, config or mongos", n.kind),
            )
        })?;
        let spec = NodeSpec {
            host: Some(n.host.clone()),
            port: Some(i64::from(n.port)),
            replica_set: n.replica_set.clone(),
            data_dir: if role == Role::Mongos {
                None
            } else {
                n.data_dir.clone()
            },
            ..NodeSpec::default()
        };
        match role {
            Role::ConfigServer => topology.config_servers.push(spec),
            Role::Mongod => topology.mongod_servers.push(spec),
            Role::Mongos => topology.mongos_servers.push(spec),
        }
    }
    Ok(Inputs {
        topology,
        topology_label: format!("{shown} (nodes)"),
        meta: Meta {
            name: old.name.clone(),
            version: bins.map_or_else(|| old.version.clone(), |b| b.version.clone()),
            bin_path: bins.map_or_else(
                || old.bin_path.clone(),
                |b| b.bin_path.display().to_string(),
            ),
            ..Meta::default()
        },
        meta_label: shown.to_string(),
        meta_dir: layout.root().to_path_buf(),
    })
}

/// Stops the legacy processes by PID, routers first, as supervisord would (SIGINT, SIGKILL
/// after stopwaitsecs). A pid is signalled only if its arguments name the config file the
/// legacy meta.yaml records for that node (the ownership rule); a pid that is gone, or
/// cannot be proven the node's, is reported and left alone.
fn stop_legacy(ui: &Ui, old: &legacy::LegacyMeta) -> std::io::Result<()> {
    for role in Role::TIERS.into_iter().rev() {
        let mut owned = Vec::new();
        for n in old
            .nodes
            .iter()
            .filter(|n| Role::from_meta_type(&n.kind) == Some(role))
        {
            let Some(pid) = n.pid.and_then(|p| u32::try_from(p).ok()).filter(|p| *p > 0) else {
                continue;
            };
            let who = format!("{} {}:{} (pid {pid})", n.kind, n.host, n.port);
            let Some(conf) = n.config_file.as_deref() else {
                outln!(ui, "{who}: no config_file is recorded, so it cannot be proven this cluster's node; not signalled")?;
                continue;
            };
            let proof = owner::Proof::Node(layout::absolute(Path::new(conf)));
            if !procs::alive(pid) {
                outln!(ui, "{who}: already gone")?;
            } else if !proof.holds(pid) {
                outln!(
                    ui,
                    "{who}: the pid now belongs to another program ({}), not the node of {conf}; not signalled",
                    procs::cmdline(pid).unwrap_or_default()
                )?;
            } else {
                owned.push(owner::Owned {
                    label: who,
                    pid,
                    proof,
                });
            }
        }
        for (o, r) in owned
            .iter()
            .zip(owner::stop(&owned, Signal::INT, daemon::STOP_WAIT))
        {
            match r {
                owner::Stopped::Killed => warnln!(
                    ui,
                    "{} ignored SIGINT for {} s and was killed with SIGKILL",
                    o.label,
                    daemon::STOP_WAIT.as_secs()
                ),
                owner::Stopped::Survived => warnln!(ui, "{} survived SIGKILL", o.label),
                _ => outln!(ui, "{}: stopped", o.label)?,
            }
        }
    }
    Ok(())
}
