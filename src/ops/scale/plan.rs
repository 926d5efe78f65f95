//! The plans of `mup cluster scale-out` and `scale-in`: pure, from the cluster's nodes
//! before and after, so that unit tests check them and `--dry-run` prints them. Refusals
//! that need no server (a whole replica set, the config servers, the last router) are
//! decided here; the server's own rules (majority, primary) when the step runs.

use crate::deployment::model::Role;
use crate::deployment::Node;
use crate::error::InputError;
use crate::ops::steps::{self, Plan};

/// One step of a scale plan.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// The regenerated tree written (atomically, as `mup gen`), meta.yaml last.
    WriteTree { nodes: usize },
    /// `reloadConfig`, then `addProcessGroup` of each new node's own group.
    AddPrograms(Vec<Node>),
    /// An ordered start of these nodes; with `init` their new replica set is initiated.
    Start { nodes: Vec<Node>, init: bool },
    /// `replSetReconfig` adding the member without a vote, then a wait for SECONDARY.
    AddMember { set: String, member: Node },
    /// `replSetReconfig` giving the member its topology's vote and priority.
    Promote { set: String, member: Node },
    /// `addShard` through a router that was there before.
    AddShard { set: String, router: Node },
    /// `removeShard` through a router that stays, until completed.
    RemoveShard { set: String, router: Node },
    /// `replSetReconfig` without the member (stepped down first when it is the primary).
    RemoveMember { set: String, member: Node },
    /// `stopProcess`, then `removeProcessGroup`, of each node's own group.
    RemovePrograms(Vec<Node>),
}

fn programs(nodes: &[Node]) -> String {
    nodes
        .iter()
        .map(|m| format!("{} ({})", m.program, m.address()))
        .collect::<Vec<_>>()
        .join(", ")
}

impl steps::Step for Step {
    fn describe(&self) -> String {
        match self {
            Step::WriteTree { nodes } => format!("write the tree with {nodes} node(s)"),
            Step::AddPrograms(n) => format!("add to supervisord: {}", programs(n)),
            Step::Start { nodes, init: true } => {
                format!("start {} and initiate their replica set", programs(nodes))
            }
            Step::Start { nodes, .. } => format!("start {}", programs(nodes)),
            Step::AddMember { set, member } => format!(
                "add {} to replica set {set} without a vote, wait until it is SECONDARY",
                member.address()
            ),
            Step::Promote { set, member } => format!(
                "give {} of {set} votes {} and priority {}",
                member.address(),
                member.votes.unwrap_or(1),
                member.priority.map_or("1".into(), |p| p.to_string())
            ),
            Step::AddShard { set, router } => {
                format!("addShard {set} through {}", router.address())
            }
            Step::RemoveShard { set, router } => format!(
                "removeShard {set} through {}, waiting until it is drained and removed",
                router.address()
            ),
            Step::RemoveMember { set, member } => format!(
                "remove {} from replica set {set} (stepped down first if it is the primary)",
                member.address()
            ),
            Step::RemovePrograms(n) => {
                format!("stop and remove from supervisord: {}", programs(n))
            }
        }
    }
}

/// The replica sets of `nodes` in first-appearance order, with their members.
fn sets(nodes: &[&Node]) -> Vec<(String, Vec<Node>)> {
    let mut out: Vec<(String, Vec<Node>)> = Vec::new();
    for m in nodes.iter().filter(|m| m.role != Role::Mongos) {
        let Some(rs) = &m.replica_set else { continue };
        match out.iter_mut().find(|(n, _)| n == rs) {
            Some((_, v)) => v.push((*m).clone()),
            None => out.push((rs.clone(), vec![(*m).clone()])),
        }
    }
    out
}

fn refuse(why: String) -> anyhow::Error {
    InputError::new("FRAGMENT", "", why).into()
}

/// Scale-out from the nodes `before` to `after` (a superset) of a cluster.
pub(crate) fn scale_out(
    name: &str,
    before: &[Node],
    after: &[Node],
    sharded: bool,
) -> anyhow::Result<Plan<Step>> {
    let added: Vec<&Node> = after
        .iter()
        .filter(|m| !before.iter().any(|b| b.program == m.program))
        .collect();
    let mut plan = Plan::new(format!("scale-out of cluster {name}"));
    if added.is_empty() {
        return Ok(plan);
    }
    if let Some(c) = added.iter().find(|m| m.role == Role::ConfigServer) {
        return Err(refuse(format!(
            "{} is a config server: the config server set cannot be scaled (every router's configDB names its members)",
            c.address()
        )));
    }
    plan.push(Step::WriteTree { nodes: after.len() });
    plan.push(Step::AddPrograms(
        added.iter().map(|m| (*m).clone()).collect(),
    ));
    for (set, members) in sets(&added) {
        if before
            .iter()
            .any(|b| b.replica_set.as_deref() == Some(set.as_str()))
        {
            for m in members {
                plan.push(Step::Start {
                    nodes: vec![m.clone()],
                    init: false,
                });
                plan.push(Step::AddMember {
                    set: set.clone(),
                    member: m.clone(),
                });
                if m.votes != Some(0) {
                    plan.push(Step::Promote {
                        set: set.clone(),
                        member: m,
                    });
                }
            }
        } else {
            plan.push(Step::Start {
                nodes: members,
                init: true,
            });
            if sharded {
                let router = before
                    .iter()
                    .find(|m| m.role == Role::Mongos)
                    .ok_or_else(|| refuse("the cluster has no router to add the shard".into()))?;
                plan.push(Step::AddShard {
                    set,
                    router: router.clone(),
                });
            }
        }
    }
    let loose: Vec<Node> = added
        .iter()
        .filter(|m| m.role == Role::Mongos || m.replica_set.is_none())
        .map(|m| (*m).clone())
        .collect();
    if !loose.is_empty() {
        plan.push(Step::Start {
            nodes: loose,
            init: false,
        });
    }
    Ok(plan)
}

/// Scale-in of `gone` from the cluster's nodes `before`.
pub(crate) fn scale_in(
    name: &str,
    before: &[Node],
    gone: &[Node],
    sharded: bool,
) -> anyhow::Result<Plan<Step>> {
    let refuse = |why: String| -> anyhow::Error { InputError::new("-N", "", why).into() };
    let mut plan = Plan::new(format!("scale-in of cluster {name}"));
    let router = before
        .iter()
        .find(|m| m.role == Role::Mongos && !gone.contains(m));
    if sharded && router.is_none() {
        return Err(refuse(
            "every router would be removed: keep at least one".into(),
        ));
    }
    let gone_refs: Vec<&Node> = gone.iter().collect();
    let mut members = Vec::new();
    for (set, removing) in sets(&gone_refs) {
        let all: Vec<&Node> = before
            .iter()
            .filter(|m| m.replica_set.as_deref() == Some(set.as_str()))
            .collect();
        if removing[0].role == Role::ConfigServer {
            return Err(refuse(format!(
                "{} is a config server: the config server set cannot be scaled",
                removing[0].address()
            )));
        }
        if removing.len() == all.len() {
            if !sharded {
                return Err(refuse(format!(
                    "every member of replica set {set} would be removed: `mup cluster destroy {name}` removes a whole cluster"
                )));
            }
            let router = router.expect("a sharded cluster keeps a router").clone();
            plan.push(Step::RemoveShard { set, router });
            continue;
        }
        let voters_left = all
            .iter()
            .filter(|m| !removing.contains(m) && m.votes != Some(0))
            .count();
        if voters_left == 0 {
            return Err(refuse(format!(
                "replica set {set} would have no voting member left"
            )));
        }
        for m in removing {
            members.push(Step::RemoveMember {
                set: set.clone(),
                member: m,
            });
        }
    }
    plan.steps.extend(members);
    plan.push(Step::RemovePrograms(gone.to_vec()));
    plan.push(Step::WriteTree {
        nodes: before.len() - gone.len(),
    });
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn node(role: Role, port: u16, rs: Option<&str>) -> Node {
        Node {
            role,
            host: "localhost".into(),
            port,
            replica_set: rs.map(String::from),
            program: crate::deployment::naming::program_name(role, port),
            group: crate::deployment::naming::program_name(role, port),
            data_dir: None,
            data_dir_created: false,
            data_dir_resolved: None,
            config_file: PathBuf::new(),
            log_file: PathBuf::new(),
            priority: None,
            hidden: None,
            votes: None,
        }
    }

    fn kinds(p: &Plan<Step>) -> Vec<&'static str> {
        p.steps
            .iter()
            .map(|s| match s {
                Step::WriteTree { .. } => "write",
                Step::AddPrograms(_) => "add-programs",
                Step::Start { init: true, .. } => "start+init",
                Step::Start { .. } => "start",
                Step::AddMember { .. } => "add-member",
                Step::Promote { .. } => "promote",
                Step::AddShard { .. } => "add-shard",
                Step::RemoveShard { .. } => "remove-shard",
                Step::RemoveMember { .. } => "remove-member",
                Step::RemovePrograms(_) => "remove-programs",
            })
            .collect()
    }

    fn sharded() -> Vec<Node> {
        vec![
            node(Role::ConfigServer, 1, Some("cfg")),
            node(Role::Mongod, 2, Some("s1")),
            node(Role::Mongod, 3, Some("s1")),
            node(Role::Mongod, 4, Some("s1")),
            node(Role::Mongos, 5, None),
        ]
    }

    #[test]
    fn a_new_member_joins_without_a_vote_then_gets_it_and_a_new_set_becomes_a_shard() {
        let before = sharded();
        let mut after = before.clone();
        after.push(node(Role::Mongod, 6, Some("s1")));
        after.push(node(Role::Mongod, 7, Some("s2")));
        after.push(node(Role::Mongos, 8, None));
        let plan = scale_out("c", &before, &after, true).expect("a plan");
        assert_eq!(
            kinds(&plan),
            [
                "write",
                "add-programs",
                "start",
                "add-member",
                "promote",
                "start+init",
                "add-shard",
                "start"
            ]
        );
        assert!(scale_out("c", &before, &before, true)
            .expect("a plan")
            .steps
            .is_empty());
        let mut cfg = before.clone();
        cfg.push(node(Role::ConfigServer, 9, Some("cfg")));
        assert!(scale_out("c", &before, &cfg, true).is_err());
    }

    #[test]
    fn scale_in_drains_a_whole_shard_and_removes_members_one_by_one() {
        let before = sharded();
        let plan = scale_in("c", &before, &before[1..3], true).expect("a plan");
        assert_eq!(
            kinds(&plan),
            ["remove-member", "remove-member", "remove-programs", "write"]
        );
        let plan = scale_in("c", &before, &before[1..4], true).expect("a plan");
        assert_eq!(kinds(&plan), ["remove-shard", "remove-programs", "write"]);
        let refused = |gone: &[Node], sharded| {
            scale_in("c", &before, gone, sharded)
                .expect_err("refused")
                .to_string()
        };
        assert!(refused(&before[4..5], true).contains("every router"));
        assert!(refused(&before[0..1], true).contains("config server"));
        assert!(refused(&before[1..4], false).contains("every member"));
    }
}
