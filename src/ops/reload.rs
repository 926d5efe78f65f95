//! `mup ctl reload`: applies a regenerated tree to the running daemon like `supervisorctl
//! update`, but never leaves a program stopped that was running. Never calls `restart()`
//! (it stops every node and, with autostart=false, leaves them stopped: docs/supervisord.md §4).

use crate::deployment::Program;
use crate::deployment::Selection;
use crate::deployment::Tree;
use crate::ops::lifecycle;
use crate::ops::steps::{self, Plan, Step};
use crate::supervisor::{fault, state, Client, ProcessInfo, Reload};
use crate::ui::Ui;
use anyhow::anyhow;
use std::collections::BTreeSet;

/// What happens to a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    /// New in the tree: added (and started when the cluster runs).
    Added,
    /// Membership or settings changed: removed and added again; what ran restarts.
    Changed,
    /// No longer in the tree: stopped and removed.
    Removed,
}

impl ChangeKind {
    fn label(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Changed => "changed",
            ChangeKind::Removed => "removed",
        }
    }
}

/// What reload will do to one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupChange {
    pub group: String,
    pub kind: ChangeKind,
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
pub(crate) fn plan(before: &[ProcessInfo], diff: &Reload, programs: &[Wanted]) -> Vec<GroupChange> {
    let mut changes: Vec<GroupChange> = diff.removed.iter().map(|g| removed(before, g)).collect();
    changes.extend(diff.changed.iter().map(|g| changed(before, programs, g)));
    changes.extend(diff.added.iter().map(|g| added(before, programs, g)));
    changes
}

fn is_in<'a>(before: &'a [ProcessInfo], group: &str) -> Vec<&'a ProcessInfo> {
    before.iter().filter(|p| p.group == group).collect()
}

fn wanted_in<'a>(programs: &'a [Wanted], group: &str) -> Vec<&'a Wanted> {
    programs.iter().filter(|m| m.group == group).collect()
}

/// A group no longer in the tree: what runs of it stops.
fn removed(before: &[ProcessInfo], g: &str) -> GroupChange {
    GroupChange {
        group: g.to_string(),
        kind: ChangeKind::Removed,
        note: removed_note(g).into(),
        stop: is_in(before, g)
            .iter()
            .filter(|p| is_live(p))
            .map(|p| p.name.clone())
            .collect(),
        start: vec![],
    }
}

/// A group whose membership or settings changed: removed and added again, so what ran of it
/// restarts, and a member added to a running group starts.
fn changed(before: &[ProcessInfo], programs: &[Wanted], g: &str) -> GroupChange {
    let old = is_in(before, g);
    let old_names: BTreeSet<&str> = old.iter().map(|p| p.name.as_str()).collect();
    let new = wanted_in(programs, g);
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
    GroupChange {
        group: g.to_string(),
        kind: ChangeKind::Changed,
        note,
        stop,
        start,
    }
}

/// A new group: started when the cluster runs (a program that was stopped in another group,
/// a tier group of an older tree, stays so), a monitoring program always.
fn added(before: &[ProcessInfo], programs: &[Wanted], g: &str) -> GroupChange {
    let cluster_running = before
        .iter()
        .any(|p| is_live(p) && p.stop_rank() < crate::deployment::OTHER_RANK);
    let was_stopped = |name: &str| before.iter().any(|p| p.name == name && !is_live(p));
    let members = wanted_in(programs, g);
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
    GroupChange {
        group: g.to_string(),
        kind: ChangeKind::Added,
        note: note.into(),
        stop: vec![],
        start,
    }
}

/// One action of a reload, in the order they run: what must stop (routers first, monitoring
/// last, as the daemon knows them), the groups swapped, then what starts, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// `(group, program)` pairs.
    Stop(Vec<(String, String)>),
    RemoveGroup(String),
    AddGroup(String),
    Start(Vec<String>),
}

impl Step for Action {
    fn describe(&self) -> String {
        match self {
            Action::Stop(p) => format!(
                "stop {}",
                p.iter()
                    .map(|(_, n)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Action::RemoveGroup(g) => format!("remove group {g}"),
            Action::AddGroup(g) => format!("add group {g}"),
            Action::Start(p) => format!("start {}", p.join(" ")),
        }
    }
}

/// The actions that carry out `changes`.
pub(crate) fn actions(cluster: &str, changes: &[GroupChange]) -> Plan<Action> {
    let mut plan = Plan::new(format!("reload cluster {cluster}"));
    let stop: Vec<(String, String)> = changes
        .iter()
        .flat_map(|s| s.stop.iter().map(move |n| (s.group.clone(), n.clone())))
        .collect();
    if !stop.is_empty() {
        plan.push(Action::Stop(stop));
    }
    for s in changes {
        if s.kind != ChangeKind::Added {
            plan.push(Action::RemoveGroup(s.group.clone()));
        }
        if s.kind != ChangeKind::Removed {
            plan.push(Action::AddGroup(s.group.clone()));
        }
    }
    let start: BTreeSet<String> = changes.iter().flat_map(|s| s.start.clone()).collect();
    if !start.is_empty() {
        plan.push(Action::Start(start.into_iter().collect()));
    }
    plan
}

/// Plans and (unless `dry_run`) applies the diff between the tree and the daemon.
pub(crate) fn reload(ui: &Ui, tree: &Tree, client: &Client, dry_run: bool) -> anyhow::Result<()> {
    let before: Vec<ProcessInfo> = client.get_all_process_info().map_err(|e| tree.explain(e))?;
    let diff = client.reload_config().map_err(|e| match e.fault_code() {
        Some(fault::CANT_REREAD) => anyhow!("supervisord cannot read the regenerated tree: {e}"),
        _ => tree.explain(e),
    })?;
    let changes = plan(&before, &diff, &wanted(tree));
    if changes.is_empty() {
        outln!(
            ui,
            "cluster {}: supervisord already runs the tree's configuration; nothing to do",
            tree.name()
        )?;
        return Ok(());
    }
    say_changes(ui, &changes)?;
    if dry_run {
        outln!(ui, "dry run: nothing changed")?;
        return Ok(());
    }
    let plan = actions(tree.name(), &changes);
    steps::execute(&plan, &steps::Quiet, |a| act(ui, tree, client, &before, a))?;
    outln!(ui, "cluster {}: reloaded", tree.name())?;
    Ok(())
}

/// What happens to each group, and why.
fn say_changes(ui: &Ui, changes: &[GroupChange]) -> std::io::Result<()> {
    for s in changes {
        outln!(ui, "{}: {} ({})", s.group, s.kind.label(), s.note)?;
        if !s.stop.is_empty() {
            let verb = if s.kind == ChangeKind::Changed {
                "restart"
            } else {
                "stop"
            };
            outln!(ui, "  {verb}: {}", s.stop.join(", "))?;
        }
        let fresh: Vec<&str> = s
            .start
            .iter()
            .filter(|p| !s.stop.contains(p))
            .map(String::as_str)
            .collect();
        if !fresh.is_empty() {
            outln!(ui, "  start: {}", fresh.join(", "))?;
        }
    }
    Ok(())
}

/// Carries out one action on the daemon.
fn act(
    ui: &Ui,
    tree: &Tree,
    client: &Client,
    before: &[ProcessInfo],
    action: &Action,
) -> anyhow::Result<()> {
    match action {
        Action::Stop(pairs) => {
            let to_stop: Vec<&dyn Program> = before
                .iter()
                .filter(|p| pairs.contains(&(p.group.clone(), p.name.clone())))
                .map(|p| p as &dyn Program)
                .collect();
            lifecycle::stop(ui, tree, client, &to_stop)
        }
        Action::RemoveGroup(g) => client
            .remove_process_group(g)
            .map(|_| ())
            .map_err(|e| tree.explain(e)),
        Action::AddGroup(g) => match client.add_process_group(g) {
            Ok(_) => Ok(()),
            Err(e) if e.fault_code() == Some(fault::ALREADY_ADDED) => Ok(()),
            Err(e) => Err(tree.explain(e)),
        },
        Action::Start(names) => {
            let all = tree.all();
            let to_start = Selection {
                nodes: all
                    .nodes
                    .into_iter()
                    .filter(|m| names.contains(&m.program))
                    .collect(),
                monitors: all
                    .monitors
                    .into_iter()
                    .filter(|m| names.iter().any(|n| n == m.program()))
                    .collect(),
            };
            if to_start.is_empty() {
                return Ok(());
            }
            lifecycle::start(ui, tree, client, &to_start, false)
        }
    }
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
        let changes = plan(&before, &diff, &members);
        let removed: Vec<(&str, &[String], &str)> = changes
            .iter()
            .filter(|s| s.kind == ChangeKind::Removed)
            .map(|s| (s.group.as_str(), s.stop.as_slice(), s.note.as_str()))
            .collect();
        assert_eq!(removed.len(), 2);
        assert_eq!(
            (removed[0].0, removed[0].1),
            ("mongod-servers", &["mongod-1".to_string()][..])
        );
        assert!(removed[0].2.contains("tier group"), "{}", removed[0].2);
        assert_eq!(removed[1].1, &["mongos-9".to_string()][..]);
        let started: Vec<&str> = changes
            .iter()
            .filter(|s| s.kind == ChangeKind::Added)
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
        let changes = plan(
            &before,
            &diff,
            &[member(Role::Mongod, 1), member(Role::Mongod, 2)],
        );
        assert_eq!(changes.len(), 1);
        assert_eq!(
            (changes[0].stop.clone(), changes[0].start.clone()),
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
        let changes = plan(&before, &diff, &[member(Role::Mongod, 1), metrics]);
        let removed = changes
            .iter()
            .find(|s| s.kind == ChangeKind::Removed)
            .expect("removed");
        assert_eq!(
            (removed.group.as_str(), removed.stop.clone()),
            ("crashmail", vec!["crashmail".to_string()])
        );
        assert!(removed.start.is_empty());
        let added = changes
            .iter()
            .find(|s| s.kind == ChangeKind::Added)
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
        let changes = plan(&before, &diff, &[member(Role::Mongos, 7)]);
        assert_eq!(changes.len(), 1);
        assert!(changes[0].start.is_empty() && changes[0].stop.is_empty());
    }

    #[test]
    fn actions_stop_first_then_swap_the_groups_then_start() {
        let changes = vec![
            GroupChange {
                group: "mongod-1".into(),
                kind: ChangeKind::Changed,
                note: String::new(),
                stop: vec!["mongod-1".into()],
                start: vec!["mongod-1".into()],
            },
            GroupChange {
                group: "gone".into(),
                kind: ChangeKind::Removed,
                note: String::new(),
                stop: vec!["gone".into()],
                start: vec![],
            },
            GroupChange {
                group: "mongod-2".into(),
                kind: ChangeKind::Added,
                note: String::new(),
                stop: vec![],
                start: vec!["mongod-2".into()],
            },
        ];
        let plan = actions("c", &changes);
        assert_eq!(
            plan.steps,
            vec![
                Action::Stop(vec![
                    ("mongod-1".into(), "mongod-1".into()),
                    ("gone".into(), "gone".into())
                ]),
                Action::RemoveGroup("mongod-1".into()),
                Action::AddGroup("mongod-1".into()),
                Action::RemoveGroup("gone".into()),
                Action::AddGroup("mongod-2".into()),
                Action::Start(vec!["mongod-1".into(), "mongod-2".into()]),
            ]
        );
    }
}
