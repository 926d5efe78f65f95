//! Node processes of a tree that run without its supervisord (the daemon died, or was never
//! this tree's), and foreign processes on node ports: found (proven by [`owner`]), named in
//! messages, and stopped the way supervisord would stop them (SIGINT, then SIGKILL after
//! stopwaitsecs).

use super::daemon::STOP_WAIT;
use crate::deployment::model::Role;
use crate::deployment::owner;
use crate::deployment::Node;
use crate::deployment::Tree;
use crate::system::procs;
use crate::ui::Ui;
use anyhow::bail;
use rustix::process::Signal;
use std::collections::BTreeSet;

/// What stands in the way of a node before its daemon starts it.
#[derive(Debug, Clone)]
pub(super) enum Obstacle {
    /// This node's own process, running without supervisord (proven by its arguments).
    Orphan(u32),
    /// Something that is not this cluster's node listens on the node's port.
    Foreign(String),
}

/// Node processes supervisord does not own, and foreign processes on node ports.
pub(super) fn obstacles(tree: &Tree, owned: &BTreeSet<u32>) -> Vec<(Node, Obstacle)> {
    let mut found: Vec<(Node, Obstacle)> = owner::running_nodes(&tree.members)
        .into_iter()
        .filter(|(_, pid)| !owned.contains(pid))
        .map(|(m, pid)| (m, Obstacle::Orphan(pid)))
        .collect();
    for m in &tree.members {
        if found.iter().any(|(f, _)| f.program == m.program) {
            continue;
        }
        if let owner::Holder::Foreign(who) = owner::port_holder(m) {
            found.push((m.clone(), Obstacle::Foreign(who)));
        }
    }
    found
}

pub(super) fn describe(m: &Node, o: &Obstacle) -> String {
    match o {
        Obstacle::Orphan(pid) => format!(
            "  {} (port {}): {} runs {} without supervisord",
            m.program,
            m.port,
            procs::describe(*pid),
            m.config_file.display()
        ),
        Obstacle::Foreign(who) => format!(
            "  {} (port {}): the port is held by {who}, which is not this cluster's node",
            m.program, m.port
        ),
    }
}

/// Stops node processes proven ours the way supervisord would (SIGINT, then SIGKILL after
/// stopwaitsecs), routers first; prints one line per node and returns the survivors.
pub(super) fn stop_nodes(ui: &Ui, nodes: &[(Node, u32)], verb: &str) -> Vec<String> {
    let mut survivors = Vec::new();
    for role in Role::TIERS.into_iter().rev() {
        let tier: Vec<&(Node, u32)> = nodes.iter().filter(|(m, _)| m.role == role).collect();
        let owned: Vec<owner::Owned> = tier
            .iter()
            .map(|(m, pid)| owner::Owned {
                label: m.program.clone(),
                pid: *pid,
                proof: owner::node_proof(m),
            })
            .collect();
        for (o, result) in owned
            .iter()
            .zip(owner::stop(&owned, Signal::INT, STOP_WAIT))
        {
            let how = match result {
                owner::Stopped::Exited => "stopped with SIGINT".to_string(),
                owner::Stopped::Killed => format!(
                    "ignored SIGINT for {} s and was killed with SIGKILL",
                    STOP_WAIT.as_secs()
                ),
                owner::Stopped::Gone => "had already exited".to_string(),
                owner::Stopped::Survived => {
                    survivors.push(format!("{} (pid {})", o.label, o.pid));
                    "survived SIGKILL".to_string()
                }
            };
            noteln!(ui, "{verb} {}: pid {} {how}", o.label, o.pid);
        }
    }
    survivors
}

/// Stops the node processes of `members` that run without supervisord (the daemon died, or
/// was never this tree's). Returns how many there were; fails if any survives.
pub(crate) fn stop_unsupervised(ui: &Ui, tree: &Tree, members: &[Node]) -> anyhow::Result<usize> {
    let nodes = owner::running_nodes(members);
    if nodes.is_empty() {
        return Ok(0);
    }
    noteln!(
        ui,
        "cluster {}: {} node process(es) run without supervisord; stopping them as supervisord would (SIGINT, SIGKILL after {} s)",
        tree.name(),
        nodes.len(),
        STOP_WAIT.as_secs()
    );
    let survivors = stop_nodes(ui, &nodes, "stopped");
    if !survivors.is_empty() {
        bail!(
            "cluster {}: still alive after SIGKILL: {}",
            tree.name(),
            survivors.join(", ")
        );
    }
    Ok(nodes.len())
}

/// The error for this tree's daemon not running, naming the node processes that run
/// without it.
pub(crate) fn not_running(tree: &Tree) -> anyhow::Error {
    let loose = crate::deployment::owner::running_nodes(&tree.members);
    if loose.is_empty() {
        return tree.explain(crate::supervisor::Error::NotRunning);
    }
    // Not "start it with up": up refuses while its nodes run without it (--adopt is the way).
    let err = anyhow::anyhow!(
        "supervisord for cluster {} is not running on 127.0.0.1:{}",
        tree.name(),
        tree.port
    );
    let list: Vec<String> = loose
        .iter()
        .map(|(m, pid)| format!("{} (pid {pid})", m.program))
        .collect();
    err.context(format!(
        "node processes of this tree run without supervisord: {}; `mup ctl --dir {} down` stops them, `mup ctl --dir {} up --adopt` hands them back to a new daemon",
        list.join(", "),
        tree.layout.root().display(),
        tree.layout.root().display()
    ))
}
