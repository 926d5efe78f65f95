//! `mup cluster destroy`: the cluster stopped, checked dead, and what mup owns removed. mup
//! deletes only what it can prove is its own: the cluster directory, and a data directory
//! outside it only as the proof in [`crate::deployment::data_dirs`] allows (created by mup, still resolving
//! where it did then, through no symlink, not locked by a live mongod, not another cluster's,
//! holding nothing but that node's files). Everything else is kept and listed. The removal is
//! decided after the cluster is stopped and before anything is removed.

use crate::deployment::data_dirs;
use crate::deployment::owner;
use crate::deployment::ports::Recorded;
use crate::deployment::Node;
use crate::deployment::Tree;
use crate::ops::cluster::load;
use crate::ops::daemon;
use crate::system::procs;
use crate::ui::Ui;
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};

/// `mup cluster destroy`: stop, shut the daemon down (stopping node processes that run
/// without it), check nothing of the cluster is alive, then remove what mup owns (see
/// [`removal`]) and list what it keeps.
pub(crate) fn destroy(ui: &Ui, name: &str, keep_data: bool, yes: bool) -> anyhow::Result<()> {
    let tree = load(name)?;
    let what = match (
        keep_data,
        crate::deployment::security::kept_user_note(&tree),
    ) {
        (true, Some(note)) => format!("its data directories are kept; {note}"),
        (true, None) => "its data directories are kept".to_string(),
        (false, _) => "its data is deleted".to_string(),
    };
    ui.confirm(
        &format!(
            "Destroy cluster {name} in {} ({what})?",
            tree.layout.root().display()
        ),
        yes,
    )?;
    let _lock = crate::deployment::locks::exclusive(ui, &tree.layout)?;
    daemon::down(ui, &tree)?;
    let alive = leftovers(&tree);
    if !alive.is_empty() {
        bail!(
            "cluster {name}: still alive after shutdown, nothing removed: {}",
            alive.join("; ")
        );
    }
    let plan = removal(&tree, keep_data);
    remove(&plan, tree.layout.root())?;
    for p in plan
        .remove
        .iter()
        .filter(|p| !p.starts_with(tree.layout.root()))
    {
        outln!(ui, "removed data directory {}", p.display())?;
    }
    for (p, why) in &plan.keep {
        outln!(ui, "kept {} ({why})", p.display())?;
    }
    if !plan.whole_root {
        outln!(
            ui,
            "kept {}: it holds what is kept; mup's own files in it were removed",
            tree.layout.root().display()
        )?;
    }
    let mut notes = Vec::new();
    for m in &tree.members {
        if let owner::Holder::Foreign(who) = owner::port_holder(m) {
            notes.push(format!(
                "port {} is held by {who}, which is not this cluster's: left alone",
                m.port
            ));
        }
    }
    outln!(
        ui,
        "cluster {name} destroyed: no process of it is left (ports {})",
        ports_list(&tree)
    )?;
    for n in notes {
        outln!(ui, "note: {n}")?;
    }
    Ok(())
}

fn ports_list(tree: &Tree) -> String {
    let mut p: Vec<String> = tree.members.iter().map(|m| m.port.to_string()).collect();
    p.push(tree.port.to_string());
    p.extend(
        tree.monitors
            .iter()
            .filter_map(|s| s.port)
            .map(|p| p.to_string()),
    );
    p.join(", ")
}

/// Processes of the cluster still alive, by the ownership rule (a foreign process on one
/// of its ports is not the cluster's, and does not stop the destroy).
fn leftovers(tree: &Tree) -> Vec<String> {
    let mut alive: Vec<String> = owner::running_nodes(&tree.members)
        .into_iter()
        .map(|(m, pid)| format!("{} ({})", m.program, procs::describe(pid)))
        .collect();
    match owner::daemon(tree) {
        owner::Daemon::Serving(pid) | owner::Daemon::Astray(pid) => {
            alive.push(format!("supervisord ({})", procs::describe(pid)));
        }
        owner::Daemon::Absent | owner::Daemon::Foreign(_) => {}
    }
    // The monitoring programs leave by themselves within a second of the daemon.
    let start = std::time::Instant::now();
    let mut monitors = owner::running_monitors(tree);
    while !monitors.is_empty() && start.elapsed() < MONITORS_LEAVE {
        std::thread::sleep(std::time::Duration::from_millis(50));
        monitors = owner::running_monitors(tree);
    }
    alive.extend(
        monitors
            .into_iter()
            .map(|(program, pid)| format!("{program} ({})", procs::describe(pid))),
    );
    alive
}

/// How long destroy waits for the monitoring programs to leave after the daemon.
const MONITORS_LEAVE: std::time::Duration = std::time::Duration::from_secs(3);

/// Removals and kept paths, with the reason each path is kept.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Removal {
    /// Remove the whole cluster directory (nothing to keep lies in it or contains it).
    pub whole_root: bool,
    /// Paths removed (recursively), in order.
    pub remove: Vec<PathBuf>,
    /// Paths kept, and why.
    pub keep: Vec<(PathBuf, String)>,
}

/// Decides what destroy removes. Reads the file system (ownership, contents, locks, other
/// clusters' records), changes nothing. Paths are compared resolved (every symlink followed).
pub(super) fn removal(tree: &Tree, keep_data: bool) -> Removal {
    let root = tree.layout.root();
    let others = crate::deployment::ports::other_clusters(root);
    let mut p = Removal::default();
    for m in &tree.members {
        let Some(d) = m.data_dir.as_deref() else {
            continue;
        };
        let decision = data_dir_decision(tree, m, d, keep_data, &others);
        match decision {
            Ok(Some(real)) => p.remove.push(real),
            Ok(None) => {}
            Err(why) => p.keep.push((d.to_path_buf(), why)),
        }
    }
    // A cluster directory that is a symlink (the tree moved to another disk): the link goes,
    // nothing is removed through it, and what it points to is kept and named.
    if std::fs::symlink_metadata(root).is_ok_and(|m| m.file_type().is_symlink()) {
        let real = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        let why = format!(
            "{} is a symlink to it: only the link is removed",
            root.display()
        );
        p.keep.push((real, why));
        p.whole_root = true;
        return p;
    }
    // Paths as written and as resolved: a kept directory may lie in the tree only through a
    // symlink, and destroy never removes it that way either.
    let both = |x: &Path| {
        let mut v = vec![x.to_path_buf()];
        v.extend(std::fs::canonicalize(x).ok());
        v
    };
    let kept: Vec<PathBuf> = p.keep.iter().flat_map(|(k, _)| both(k)).collect();
    let holds_kept = |x: &Path| {
        both(x)
            .iter()
            .any(|x| kept.iter().any(|k| k.starts_with(x)))
    };
    let in_kept = |x: &Path| {
        both(x)
            .iter()
            .any(|x| kept.iter().any(|k| x.starts_with(k)))
    };
    if !holds_kept(root) && !in_kept(root) {
        p.whole_root = true;
        return p;
    }
    // Something kept lies in (or contains) the tree: remove only mup's own files there.
    let mut own = tree.layout.own_entries();
    if let Ok(entries) = std::fs::read_dir(root) {
        own.extend(entries.flatten().map(|e| e.path()).filter(|e| {
            // supervisord's rotated logs: supervisor.log.1, ...
            e.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("supervisor.log."))
        }));
    }
    // An own entry goes unless it is, or contains, something kept (mup's files inside a data
    // directory that is the tree itself are still mup's).
    let removable: Vec<PathBuf> = own
        .into_iter()
        .filter(|e| e.symlink_metadata().is_ok() && !holds_kept(e))
        .collect();
    p.remove.extend(removable);
    p
}

/// What destroy does with one node's data directory `d`: remove it (by the resolved path
/// returned), leave it to the tree's removal (`None`), or keep it with the reason.
fn data_dir_decision(
    tree: &Tree,
    m: &Node,
    d: &Path,
    keep_data: bool,
    others: &[Recorded],
) -> Result<Option<PathBuf>, String> {
    let root = tree.layout.root();
    if keep_data {
        Err("--keep-data".to_string())
    } else if root.starts_with(d) {
        Err("it contains the cluster directory".to_string())
    } else if d.starts_with(root) {
        // Removed with the cluster directory (whose removal follows no symlink in it),
        // unless it is another's now.
        data_dirs::in_use(d, others).map_or(Ok(None), Err)
    } else {
        let recorded = tree
            .meta
            .nodes
            .iter()
            .find(|n| n.supervisor_name == m.program)
            .and_then(|n| n.data_dir_resolved.as_deref())
            .map(Path::new);
        data_dirs::removable(d, m.data_dir_created, recorded, others)
    }
}

/// Carries out a removal.
pub(super) fn remove(plan: &Removal, root: &Path) -> anyhow::Result<()> {
    for p in &plan.remove {
        // Checked again right before: a directory outside the tree is removed only where it
        // resolved when the plan was made, through no symlink.
        if !p.starts_with(root) {
            if let Some(link) = data_dirs::symlink_in(p) {
                bail!(
                    "{} changed while destroy ran ({} is a symlink now): it is kept, and nothing more is removed",
                    p.display(),
                    link.display()
                );
            }
        }
        let meta = std::fs::symlink_metadata(p);
        let result = match meta {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
            Ok(_) => std::fs::remove_file(p),
            Err(_) => continue,
        };
        result.with_context(|| format!("cannot remove {}", p.display()))?;
    }
    if plan.whole_root {
        std::fs::remove_dir_all(root)
            .with_context(|| format!("cannot remove {}", root.display()))?;
    }
    Ok(())
}
