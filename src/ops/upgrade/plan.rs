//! The upgrade as a pure plan: from what the servers said about each node (its binary's
//! version, whether it is its set's primary) and the target version, the ordered steps of
//! the server's rolling procedure (docs/mongodb.md §4): the balancer stopped, the config
//! servers' set, each shard's set, the standalone nodes, the routers, the balancer started;
//! in each set the nodes that are down first, then the secondaries one at a time, then a
//! step-down of the primary and the old primary itself. Nodes already on the target version
//! are left out, which is what makes the same command, run again, continue an interrupted
//! upgrade.

use crate::deployment::model::{Role, Version};
use crate::ops::steps::{Plan, Step as StepTrait};

/// One node as the survey saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeView {
    /// `mongod-30000`
    pub program: String,
    /// `localhost:30000`
    pub address: String,
    pub role: Role,
    pub replica_set: Option<String>,
    /// What `buildInfo` answered; `None` when the node did not answer (down).
    pub version: Option<String>,
    /// It said it is its set's writable primary.
    pub primary: bool,
}

/// The cluster as the survey saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct State {
    /// Tier order: config servers, mongods, routers (the tree's order).
    pub nodes: Vec<NodeView>,
    /// The version meta.yaml records (that of every node once an upgrade is done).
    pub recorded: String,
    /// The lowest featureCompatibilityVersion the mongods answered; `None` when none did.
    pub fcv: Option<String>,
}

/// One step of an upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// `balancerStop` on a router.
    StopBalancer { router: String },
    /// Stop the node through supervisord, point its launcher at the new binaries, start it,
    /// and wait until it answers (a member: until it is SECONDARY and caught up; the member of
    /// a one-member set, `alone`, which has no one to step down to: until it is primary again).
    Restart {
        node: NodeView,
        version: String,
        alone: bool,
    },
    /// `replSetStepDown` on the set's primary, then wait for another member to be primary.
    Handover { set: String, primary: String },
    /// `balancerStart` on a router.
    StartBalancer { router: String },
    /// meta.yaml records the new version and binaries.
    Record { version: String },
    /// `setFeatureCompatibilityVersion` (with `confirm: true`) on a router, or on the
    /// primary of each replica set, or on each standalone node.
    SetFcv { fcv: String },
}

impl StepTrait for Step {
    fn describe(&self) -> String {
        match self {
            Step::StopBalancer { router } => {
                format!("stop the balancer (balancerStop on {router})")
            }
            Step::Restart {
                node,
                version,
                alone,
            } => {
                let wait = match &node.replica_set {
                    Some(rs) if *alone => format!(
                        "wait until it is the PRIMARY of {rs} again (a one-member set: unavailable meanwhile)"
                    ),
                    Some(rs) if node.role != Role::Mongos => {
                        format!("wait until it is a caught-up SECONDARY of {rs}")
                    }
                    _ => "wait until it answers".to_string(),
                };
                let was = node.version.as_deref().unwrap_or("down");
                format!(
                    "restart {} ({}, {was}) on {version}, {wait}",
                    node.program, node.address
                )
            }
            Step::Handover { set, primary } => {
                format!("step down the primary of {set} ({primary}) and wait for a new primary")
            }
            Step::StartBalancer { router } => {
                format!("start the balancer (balancerStart on {router})")
            }
            Step::Record { version } => format!("record version {version} in meta.yaml"),
            Step::SetFcv { fcv } => {
                format!("set featureCompatibilityVersion {fcv} (confirm: true)")
            }
        }
    }
}

/// `7.0` for 7.0.14: the featureCompatibilityVersion a binary sets as its newest.
pub(crate) fn fcv_of(version: Version) -> String {
    format!("{}.{}", version.major, version.minor)
}

/// The plan that brings the surveyed cluster to `target` (an exact version), with the
/// featureCompatibilityVersion set at the end when `fcv`.
pub(crate) fn plan(state: &State, target: &str, fcv: bool, name: &str) -> Plan<Step> {
    let from = versions_text(state);
    let mut p = Plan::new(format!("upgrade cluster {name} from {from} to {target}"));
    let behind = |n: &NodeView| n.version.as_deref() != Some(target);
    let work = state.nodes.iter().any(behind);
    let router = state
        .nodes
        .iter()
        .find(|n| n.role == Role::Mongos)
        .map(|n| n.address.clone());
    if work || state.recorded != target {
        if let Some(r) = &router {
            p.push(Step::StopBalancer { router: r.clone() });
        }
        for set in sets(state) {
            rolling(&mut p, state, &set, target);
        }
        for n in state.nodes.iter().filter(|n| n.replica_set.is_none()) {
            if behind(n) {
                p.push(restart(n, target));
            }
        }
        if let Some(r) = &router {
            p.push(Step::StartBalancer { router: r.clone() });
        }
        p.push(Step::Record {
            version: target.to_string(),
        });
    }
    let target_fcv = Version::parse(target).map(fcv_of);
    if let (true, Some(want)) = (fcv, target_fcv) {
        if state.fcv.as_deref() != Some(want.as_str()) {
            p.push(Step::SetFcv { fcv: want });
        }
    }
    p
}

/// The replica sets, config servers' set first, in the tree's order.
fn sets(state: &State) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in &state.nodes {
        if let Some(rs) = &n.replica_set {
            if n.role != Role::Mongos && !out.contains(rs) {
                out.push(rs.clone());
            }
        }
    }
    out
}

/// One set's steps: members that are down, then the secondaries, then the primary after a
/// step-down.
fn rolling(p: &mut Plan<Step>, state: &State, set: &str, target: &str) {
    let members: Vec<&NodeView> = state
        .nodes
        .iter()
        .filter(|n| n.replica_set.as_deref() == Some(set) && n.version.as_deref() != Some(target))
        .collect();
    let size = state
        .nodes
        .iter()
        .filter(|n| n.replica_set.as_deref() == Some(set))
        .count();
    if size == 1 {
        for n in members {
            p.push(Step::Restart {
                node: n.clone(),
                version: target.to_string(),
                alone: true,
            });
        }
        return;
    }
    let down = members.iter().filter(|n| n.version.is_none());
    let secondaries = members.iter().filter(|n| n.version.is_some() && !n.primary);
    for n in down.chain(secondaries) {
        p.push(restart(n, target));
    }
    if let Some(primary) = members.iter().find(|n| n.version.is_some() && n.primary) {
        p.push(Step::Handover {
            set: set.to_string(),
            primary: primary.address.clone(),
        });
        p.push(restart(primary, target));
    }
}

fn restart(n: &NodeView, target: &str) -> Step {
    Step::Restart {
        node: n.clone(),
        version: target.to_string(),
        alone: false,
    }
}

/// `7.0.14`, or `7.0.14 and 8.0.4` while the nodes differ.
fn versions_text(state: &State) -> String {
    let mut seen: Vec<&str> = state
        .nodes
        .iter()
        .filter_map(|n| n.version.as_deref())
        .collect();
    seen.sort_by_key(|v| Version::parse(v));
    seen.dedup();
    match seen.len() {
        0 => state.recorded.clone(),
        _ => seen.join(" and "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(port: u16, role: Role, rs: Option<&str>, version: &str, primary: bool) -> NodeView {
        NodeView {
            program: crate::deployment::model::program_name(role, port),
            address: format!("localhost:{port}"),
            role,
            replica_set: rs.map(String::from),
            version: (!version.is_empty()).then(|| version.to_string()),
            primary,
        }
    }

    fn sharded(v: &str) -> State {
        State {
            nodes: vec![
                node(1, Role::ConfigServer, Some("cfg"), v, false),
                node(2, Role::ConfigServer, Some("cfg"), v, true),
                node(3, Role::Mongod, Some("sh1"), v, true),
                node(4, Role::Mongod, Some("sh1"), v, false),
                node(5, Role::Mongos, None, v, false),
            ],
            recorded: v.into(),
            fcv: Some("7.0".into()),
        }
    }

    fn lines(p: &Plan<Step>) -> Vec<String> {
        p.steps.iter().map(StepTrait::describe).collect()
    }

    #[test]
    fn sharded_order_follows_the_servers_procedure() {
        let p = plan(&sharded("7.0.14"), "8.0.4", true, "c");
        assert_eq!(p.what, "upgrade cluster c from 7.0.14 to 8.0.4");
        let l = lines(&p);
        let expected = [
            "stop the balancer (balancerStop on localhost:5)",
            "restart config-server-1 (localhost:1, 7.0.14) on 8.0.4, wait until it is a caught-up SECONDARY of cfg",
            "step down the primary of cfg (localhost:2) and wait for a new primary",
            "restart config-server-2 (localhost:2, 7.0.14) on 8.0.4, wait until it is a caught-up SECONDARY of cfg",
            "restart mongod-4 (localhost:4, 7.0.14) on 8.0.4, wait until it is a caught-up SECONDARY of sh1",
            "step down the primary of sh1 (localhost:3) and wait for a new primary",
            "restart mongod-3 (localhost:3, 7.0.14) on 8.0.4, wait until it is a caught-up SECONDARY of sh1",
            "restart mongos-5 (localhost:5, 7.0.14) on 8.0.4, wait until it answers",
            "start the balancer (balancerStart on localhost:5)",
            "record version 8.0.4 in meta.yaml",
            "set featureCompatibilityVersion 8.0 (confirm: true)",
        ];
        assert_eq!(l, expected);
    }

    #[test]
    fn nodes_already_upgraded_are_left_out_and_down_ones_come_first() {
        let mut s = sharded("7.0.14");
        s.nodes[0].version = Some("8.0.4".into()); // done before an interruption
        s.nodes[3].version = None; // stopped when mup was killed
        s.nodes[4].version = Some("8.0.4".into());
        let p = plan(&s, "8.0.4", false, "c");
        let restarted: Vec<&str> = p
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Restart { node, .. } => Some(node.program.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(restarted, ["config-server-2", "mongod-4", "mongod-3"]);
        assert!(matches!(p.steps[0], Step::StopBalancer { .. }));
        // The config set's primary is on the old version: stepped down first.
        assert!(matches!(&p.steps[1], Step::Handover { set, .. } if set == "cfg"));
    }

    #[test]
    fn a_one_member_set_is_restarted_without_a_step_down() {
        let s = State {
            nodes: vec![node(1, Role::Mongod, Some("rs0"), "7.0.14", true)],
            recorded: "7.0.14".into(),
            fcv: Some("7.0".into()),
        };
        assert_eq!(
            lines(&plan(&s, "8.0.4", false, "p")),
            [
                "restart mongod-1 (localhost:1, 7.0.14) on 8.0.4, wait until it is the PRIMARY of rs0 again (a one-member set: unavailable meanwhile)",
                "record version 8.0.4 in meta.yaml",
            ]
        );
    }

    #[test]
    fn an_upgraded_cluster_only_records_then_has_nothing_to_do() {
        let mut s = sharded("8.0.4");
        s.recorded = "7.0.14".into(); // killed after the last node, before meta.yaml
        let p = plan(&s, "8.0.4", false, "c");
        assert_eq!(
            lines(&p),
            [
                "stop the balancer (balancerStop on localhost:5)",
                "start the balancer (balancerStart on localhost:5)",
                "record version 8.0.4 in meta.yaml"
            ]
        );
        s.recorded = "8.0.4".into();
        assert!(plan(&s, "8.0.4", false, "c").steps.is_empty());
        s.fcv = Some("8.0".into());
        assert!(plan(&s, "8.0.4", true, "c").steps.is_empty());
    }
}
