//! What a reload does to each group of the daemon, decided from the diff of
//! `reloadConfig()`, the programs that ran before and the tree's programs: pure.

use crate::deployment::Program;
use crate::deployment::Tree;
use crate::supervisor::{state, ProcessInfo, Reload};
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
    pub(super) fn label(self) -> &'static str {
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
pub(super) fn wanted(tree: &Tree) -> Vec<Wanted> {
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
}
