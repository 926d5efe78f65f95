//! `mup ctl reload`: applies a regenerated tree to the running daemon like `supervisorctl
//! update`, but never leaves a program stopped that was running. Never calls `restart()`
//! (it stops every node and, with autostart=false, leaves them stopped: docs/supervisord.md §4).

use crate::deployment::Program;
use crate::deployment::Selection;
use crate::deployment::Tree;
use crate::ops::lifecycle;
use crate::ops::steps::{self, Plan, Step};
use crate::supervisor::{fault, Client, ProcessInfo};
use crate::ui::Ui;

mod changes;

use anyhow::anyhow;
use changes::wanted;
pub(crate) use changes::{plan, ChangeKind, GroupChange};
use std::collections::BTreeSet;

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
