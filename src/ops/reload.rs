//! `mup ctl reload`: applies a regenerated tree to the running daemon like `supervisorctl
//! update`, but never leaves a program stopped that was running. Never calls `restart()`
//! (it stops every node and, with autostart=false, leaves them stopped: docs/supervisord.md §4).

use crate::deployment::Program;
use crate::deployment::Selection;
use crate::deployment::Tree;
use crate::ops::lifecycle;
use crate::supervisor::{fault, state, Client, ProcessInfo, Reload};
use crate::ui::Ui;
use anyhow::anyhow;
use std::collections::BTreeSet;

/// What happens to a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StepKind {
    /// New in the tree: added (and started when the cluster runs).
    Added,
    /// Membership or settings changed: removed and added again; what ran restarts.
    Changed,
    /// No longer in the tree: stopped and removed.
    Removed,
}

impl StepKind {
    fn label(self) -> &'static str {
        match self {
            StepKind::Added => "added",
            StepKind::Changed => "changed",
            StepKind::Removed => "removed",
        }
    }
}

/// What reload will do to one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    pub group: String,
    pub kind: StepKind,
    /// Running programs that must stop (and, for a changed group, start again).
    pub stop: Vec<String>,
    /// Programs started afterwards.
    pub start: Vec<String>,
    pub note: String,
}

fn is_live(p: &ProcessInfo) -> bool {
    matches!(p.state, state::RUNNING | state::STARTING | state::BACKOFF)
}

/// One program of the tree, as reload plans it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wanted {
    pub group: String,
    pub program: String,
    /// A monitoring program: supervisord starts it when its group is added (autostart).
    pub autostart: bool,
}

/// Every program of the tree.
fn wanted(tree: &Tree) -> Vec<Wanted> {
    let sel = tree.all();
    sel.nodes
        .iter()
        .map(|m| Wanted {
            group: m.group().into(),
            program: m.program.clone(),
            autostart: false,
        })
        .chain(sel.monitors.iter().map(|m| Wanted {
            group: m.group().into(),
            program: m.program().into(),
            autostart: true,
        }))
        .collect()
}

/// Why a group of the daemon is removed.
fn removed_note(group: &str) -> &'static str {
    if crate::deployment::model::Role::from_tier(group).is_some() {
        "a tier group of an older tree: each node is its own group now, so its nodes restart once, each in its own group (docs/supervisord.md, \"One group per node\")"
    } else {
        "its programs are no longer in the tree"
    }
}

/// The plan for a diff of `reloadConfig()`: pure, from the programs that ran before
/// (`before`) and the tree's programs. A group is handled by what the tree and the daemon
/// say it holds, never by its name: an unknown group is only ever stopped and removed.
pub(crate) fn plan(before: &[ProcessInfo], diff: &Reload, programs: &[Wanted]) -> Vec<Step> {
    let cluster_running = before
        .iter()
        .any(|p| is_live(p) && p.stop_rank() < crate::deployment::OTHER_RANK);
    let in_group =
        |g: &str| -> Vec<&ProcessInfo> { before.iter().filter(|p| p.group == g).collect() };
    let new_members =
        |g: &str| -> Vec<&Wanted> { programs.iter().filter(|m| m.group == g).collect() };
    let mut steps = Vec::new();
    for g in &diff.removed {
        let stop: Vec<String> = in_group(g)
            .iter()
            .filter(|p| is_live(p))
            .map(|p| p.name.clone())
            .collect();
        steps.push(Step {
            group: g.clone(),
            kind: StepKind::Removed,
            note: removed_note(g).into(),
            stop,
            start: vec![],
        });
    }
    for g in &diff.changed {
        let old = in_group(g);
        let old_names: BTreeSet<&str> = old.iter().map(|p| p.name.as_str()).collect();
        let new = new_members(g);
        let new_names: BTreeSet<&str> = new.iter().map(|m| m.program.as_str()).collect();
        let added: Vec<&str> = new_names.difference(&old_names).copied().collect();
        let gone: Vec<&str> = old_names.difference(&new_names).copied().collect();
        let stop: Vec<String> = old
            .iter()
            .filter(|p| is_live(p))
            .map(|p| p.name.clone())
            .collect();
        let group_up = !stop.is_empty();
        let start: Vec<String> = new
            .iter()
            .filter(|m| {
                m.autostart
                    || stop.contains(&m.program)
                    || (group_up && added.contains(&m.program.as_str()))
            })
            .map(|m| m.program.clone())
            .collect();
        let mut note = String::from("supervisord cannot change a group in place: it is removed and added again, so its running programs restart");
        if !added.is_empty() {
            note.push_str(&format!("; members added: {}", added.join(", ")));
        }
        if !gone.is_empty() {
            note.push_str(&format!("; members removed: {}", gone.join(", ")));
        }
        steps.push(Step {
            group: g.clone(),
            kind: StepKind::Changed,
            note,
            stop,
            start,
        });
    }
    // A program that was stopped in another group (a tier group of an older tree) stays so.
    let was_stopped = |name: &str| before.iter().any(|p| p.name == name && !is_live(p));
    for g in &diff.added {
        let members = new_members(g);
        let monitoring = !members.is_empty() && members.iter().all(|m| m.autostart);
        let start: Vec<String> = members
            .iter()
            .filter(|m| m.autostart || cluster_running && !was_stopped(&m.program))
            .map(|m| m.program.clone())
            .collect();
        let note = if monitoring {
            "new monitoring program; started, as it is with the daemon"
        } else if cluster_running {
            "new group; the cluster is running, so it is started"
        } else {
            "new group; the cluster is stopped, so it is only added"
        };
        steps.push(Step {
            group: g.clone(),
            kind: StepKind::Added,
            note: note.into(),
            stop: vec![],
            start,
        });
    }

    steps
}

/// Plans and (unless `dry_run`) applies the diff between the tree and the daemon.
pub(crate) fn reload(ui: &Ui, tree: &Tree, client: &Client, dry_run: bool) -> anyhow::Result<()> {
    let before: Vec<ProcessInfo> = client.get_all_process_info().map_err(|e| tree.explain(e))?;
    let diff = client.reload_config().map_err(|e| match e.fault_code() {
        Some(fault::CANT_REREAD) => anyhow!("supervisord cannot read the regenerated tree: {e}"),
        _ => tree.explain(e),
    })?;
    let steps = plan(&before, &diff, &wanted(tree));
    if steps.is_empty() {
        outln!(
            ui,
            "cluster {}: supervisord already runs the tree's configuration; nothing to do",
            tree.name()
        )?;
        return Ok(());
    }
    for s in &steps {
        outln!(ui, "{}: {} ({})", s.group, s.kind.label(), s.note)?;
        if !s.stop.is_empty() {
            let verb = if s.kind == StepKind::Changed {
                "restart"
            } else {
                "stop"
            };
            outln!(ui, "  {verb}: {}", s.stop.join(", "))?;
        }
        let fresh: Vec<&String> = s.start.iter().filter(|p| !s.stop.contains(p)).collect();
        if !fresh.is_empty() {
            outln!(
                ui,
                "  start: {}",
                fresh
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )?;
        }
    }
    if dry_run {
        outln!(ui, "dry run: nothing changed")?;
        return Ok(());
    }

    // Stop what must stop (routers first, monitoring last), as the daemon knows it, then
    // swap the groups, then start in order.
    let stopping: BTreeSet<(&str, &str)> = steps
        .iter()
        .flat_map(|s| s.stop.iter().map(move |n| (s.group.as_str(), n.as_str())))
        .collect();
    let to_stop: Vec<&dyn Program> = before
        .iter()
        .filter(|p| stopping.contains(&(p.group.as_str(), p.name.as_str())))
        .map(|p| p as &dyn Program)
        .collect();
    if !to_stop.is_empty() {
        lifecycle::stop(ui, tree, client, &to_stop)?;
    }
    for s in &steps {
        if s.kind != StepKind::Added {
            client
                .remove_process_group(&s.group)
                .map_err(|e| tree.explain(e))?;
        }
        if s.kind != StepKind::Removed {
            match client.add_process_group(&s.group) {
                Ok(_) => {}
                Err(e) if e.fault_code() == Some(fault::ALREADY_ADDED) => {}
                Err(e) => return Err(tree.explain(e)),
            }
        }
    }
    let starting: BTreeSet<&str> = steps
        .iter()
        .flat_map(|s| s.start.iter().map(String::as_str))
        .collect();
    let all = tree.all();
    let to_start = Selection {
        nodes: all
            .nodes
            .into_iter()
            .filter(|m| starting.contains(m.program.as_str()))
            .collect(),
        monitors: all
            .monitors
            .into_iter()
            .filter(|m| starting.contains(m.program()))
            .collect(),
    };
    if !to_start.is_empty() {
        lifecycle::start(ui, tree, client, &to_start, false)?;
    }
    outln!(ui, "cluster {}: reloaded", tree.name())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::model::Role;

    fn info(group: &str, name: &str, state: i32) -> ProcessInfo {
        ProcessInfo {
            name: name.into(),
            group: group.into(),
            state,
            statename: String::new(),
            pid: 0,
            start: 0,
            stop: 0,
            now: 0,
            spawnerr: String::new(),
            exitstatus: 0,
            description: String::new(),
            logfile: String::new(),
        }
    }

    fn member(role: Role, port: u16) -> Wanted {
        Wanted {
            group: crate::deployment::naming::program_name(role, port),
            program: crate::deployment::naming::program_name(role, port),
            autostart: false,
        }
    }

    #[test]
    fn the_tier_groups_of_an_older_tree_become_one_group_per_node() {
        let before = vec![
            info("mongod-servers", "mongod-1", state::RUNNING),
            info("mongod-servers", "mongod-2", state::STOPPED),
            info("old-group", "mongos-9", state::RUNNING),
        ];
        let members = vec![
            member(Role::Mongod, 1),
            member(Role::Mongod, 2),
            member(Role::Mongod, 3),
            member(Role::ConfigServer, 5),
        ];
        let diff = Reload {
            added: members.iter().map(|m| m.group.clone()).collect(),
            changed: vec![],
            removed: vec!["mongod-servers".into(), "old-group".into()],
        };
        let steps = plan(&before, &diff, &members);
        let removed: Vec<(&str, &[String], &str)> = steps
            .iter()
            .filter(|s| s.kind == StepKind::Removed)
            .map(|s| (s.group.as_str(), s.stop.as_slice(), s.note.as_str()))
            .collect();
        assert_eq!(removed.len(), 2);
        assert_eq!(
            (removed[0].0, removed[0].1),
            ("mongod-servers", &["mongod-1".to_string()][..])
        );
        assert!(removed[0].2.contains("tier group"), "{}", removed[0].2);
        assert_eq!(removed[1].1, &["mongos-9".to_string()][..]);
        let started: Vec<&str> = steps
            .iter()
            .filter(|s| s.kind == StepKind::Added)
            .flat_map(|s| s.start.iter().map(String::as_str))
            .collect();
        assert_eq!(
            started,
            ["mongod-1", "mongod-3", "config-server-5"],
            "not the stopped mongod-2"
        );
    }

    #[test]
    fn a_changed_node_group_restarts_that_node_only() {
        let before = vec![
            info("mongod-1", "mongod-1", state::RUNNING),
            info("mongod-2", "mongod-2", state::RUNNING),
        ];
        let diff = Reload {
            added: vec![],
            changed: vec!["mongod-1".into()],
            removed: vec![],
        };
        let steps = plan(
            &before,
            &diff,
            &[member(Role::Mongod, 1), member(Role::Mongod, 2)],
        );
        assert_eq!(steps.len(), 1);
        assert_eq!(
            (steps[0].stop.clone(), steps[0].start.clone()),
            (vec!["mongod-1".to_string()], vec!["mongod-1".to_string()])
        );
    }

    #[test]
    fn an_unknown_group_is_only_stopped_and_removed_and_monitoring_starts_with_its_group() {
        // A hand-added listener, named like nothing mup makes, and a running cluster.
        let before = vec![
            info("mongod-1", "mongod-1", state::RUNNING),
            info("crashmail", "crashmail", state::RUNNING),
        ];
        let diff = Reload {
            added: vec!["monitoring".into()],
            changed: vec![],
            removed: vec!["crashmail".into()],
        };
        let metrics = Wanted {
            group: "monitoring".into(),
            program: "mup-metrics".into(),
            autostart: true,
        };
        let steps = plan(&before, &diff, &[member(Role::Mongod, 1), metrics]);
        let removed = steps
            .iter()
            .find(|s| s.kind == StepKind::Removed)
            .expect("removed");
        assert_eq!(
            (removed.group.as_str(), removed.stop.clone()),
            ("crashmail", vec!["crashmail".to_string()])
        );
        assert!(removed.start.is_empty());
        let added = steps
            .iter()
            .find(|s| s.kind == StepKind::Added)
            .expect("added");
        assert_eq!(added.start, vec!["mup-metrics"]);
        assert_eq!(
            before[1].stop_rank(),
            crate::deployment::OTHER_RANK,
            "never taken for a node"
        );
    }

    #[test]
    fn a_new_group_of_a_stopped_cluster_is_only_added() {
        let before = vec![info("mongod-1", "mongod-1", state::STOPPED)];
        let diff = Reload {
            added: vec!["mongos-7".into()],
            changed: vec![],
            removed: vec![],
        };
        let steps = plan(&before, &diff, &[member(Role::Mongos, 7)]);
        assert_eq!(steps.len(), 1);
        assert!(steps[0].start.is_empty() && steps[0].stop.is_empty());
    }
}
