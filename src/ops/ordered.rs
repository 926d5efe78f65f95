//! The ordered start and stop of a selection, as plans of steps ([`crate::ops::steps`]): pure
//! values built from the selection, which `--dry-run` prints and [`super::lifecycle`] runs.
//!
//! Start: the monitoring programs first (so that the event listener sees every node start),
//! then the tiers (config servers, mongods, routers), each started at once and waited for until
//! every node answers `hello` from its own process; with initiation (a whole-cluster start),
//! each tier's replica sets are initiated with a primary before the next tier starts (a mongos
//! listens only once its config set has a primary), and the shards are added once a router
//! answers; then the monitoring programs are waited for and the nodes looked at a last time.
//! Stop: the other way, by rank (routers, mongods, config servers, other programs, the event
//! listener last), each rank at once.

use super::initiate;
use super::lifecycle::tier_name;
use super::steps::{Plan, Step};
use crate::deployment::model::Role;
use crate::deployment::{Node, Program, Selection, LAST_RANK};

/// One step of an ordered start; programs are named by their supervisord program names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StartStep {
    /// Start the monitoring programs that are not running (waited for at the end).
    Monitors(Vec<String>),
    /// Start a tier's nodes at once; wait until each answers `hello` from its own process.
    Tier { role: Role, programs: Vec<String> },
    /// Initiate the replica sets of a tier that answers, each until it has a primary.
    Initiate { role: Role, sets: Vec<String> },
    /// Add every shard (replica sets of the mongod tier) through the first router.
    AddShards { router: String, shards: Vec<String> },
    /// Wait for the monitoring programs to be RUNNING; check that every node that answered
    /// is still the process supervisord runs.
    Settle { monitors: Vec<String> },
}

impl Step for StartStep {
    fn describe(&self) -> String {
        match self {
            StartStep::Monitors(p) => format!("start the monitoring programs: {}", p.join(" ")),
            StartStep::Tier { role, programs } => format!(
                "start {} {}; wait until each answers hello",
                tier_name(*role),
                programs.join(" ")
            ),
            StartStep::Initiate { sets, .. } => format!(
                "initiate replica set(s) {}; wait for a primary in each",
                sets.join(", ")
            ),
            StartStep::AddShards { router, shards } => {
                format!("add the shard(s) {} through {router}", shards.join(", "))
            }
            StartStep::Settle { monitors } if monitors.is_empty() => {
                "check that every node still runs".to_string()
            }
            StartStep::Settle { monitors } => format!(
                "wait until {} run; check that every node still runs",
                monitors.join(" ")
            ),
        }
    }
}

/// The ordered start of `selection`; `all` is every node of the tree (the shards a router
/// adds are all of the tree's mongod sets, whatever was selected); `init` makes the cluster
/// ready between tiers.
pub(crate) fn start_plan(
    cluster: &str,
    selection: &Selection,
    all: &[Node],
    init: bool,
) -> Plan<StartStep> {
    let mut plan = Plan::new(format!(
        "start {} program(s) of cluster {cluster}",
        selection.len()
    ));
    let monitors: Vec<String> = selection
        .monitors
        .iter()
        .map(|m| m.program().to_string())
        .collect();
    if !monitors.is_empty() {
        plan.push(StartStep::Monitors(monitors.clone()));
    }
    for role in Role::TIERS {
        let tier: Vec<&Node> = selection.nodes.iter().filter(|m| m.role == role).collect();
        if tier.is_empty() {
            continue;
        }
        plan.push(StartStep::Tier {
            role,
            programs: tier.iter().map(|m| m.program.clone()).collect(),
        });
        if !init {
            continue;
        }
        if role == Role::Mongos {
            let shards = set_names(all.iter().filter(|m| m.role == Role::Mongod));
            if !shards.is_empty() {
                plan.push(StartStep::AddShards {
                    router: tier[0].program.clone(),
                    shards,
                });
            }
        } else {
            let sets = set_names(tier.iter().copied());
            if !sets.is_empty() {
                plan.push(StartStep::Initiate { role, sets });
            }
        }
    }
    plan.push(StartStep::Settle { monitors });
    plan
}

/// The replica sets of `members`, in order of first appearance.
fn set_names<'a>(members: impl Iterator<Item = &'a Node>) -> Vec<String> {
    let owned: Vec<Node> = members.cloned().collect();
    initiate::sets(&owned).into_iter().map(|s| s.name).collect()
}

/// One rank of an ordered stop: its programs are stopped at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StopRank {
    pub rank: usize,
    pub programs: Vec<String>,
}

impl Step for StopRank {
    fn describe(&self) -> String {
        let what = if self.rank == LAST_RANK {
            "let the event listener record the stops, then stop it"
        } else {
            "stop"
        };
        format!("{what}: {}", self.programs.join(" "))
    }
}

/// The ordered stop of `programs`: one step per rank that has programs.
pub(crate) fn stop_plan(cluster: &str, programs: &[&dyn Program]) -> Plan<StopRank> {
    let mut plan = Plan::new(format!(
        "stop {} program(s) of cluster {cluster}",
        programs.len()
    ));
    for rank in 0..=LAST_RANK {
        let names: Vec<String> = programs
            .iter()
            .filter(|p| p.stop_rank() == rank)
            .map(|p| p.name().to_string())
            .collect();
        if !names.is_empty() {
            plan.push(StopRank {
                rank,
                programs: names,
            });
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::model::Service;
    use crate::deployment::Monitor;
    use std::path::PathBuf;

    fn node(role: Role, port: u16, set: Option<&str>) -> Node {
        Node {
            role,
            host: "localhost".into(),
            port,
            replica_set: set.map(str::to_string),
            program: format!("{}-{port}", role.binary()),
            group: format!("{}-{port}", role.binary()),
            data_dir: None,
            data_dir_created: false,
            data_dir_resolved: None,
            config_file: PathBuf::from("/x"),
            log_file: PathBuf::from("/x.log"),
            priority: None,
            hidden: None,
            votes: None,
        }
    }

    fn sharded() -> Vec<Node> {
        vec![
            node(Role::ConfigServer, 1, Some("cfg")),
            node(Role::ConfigServer, 2, Some("cfg")),
            node(Role::Mongod, 3, Some("shard1")),
            node(Role::Mongod, 4, Some("shard2")),
            node(Role::Mongos, 5, None),
            node(Role::Mongos, 6, None),
        ]
    }

    fn monitor(service: Service) -> Monitor {
        Monitor {
            service,
            port: None,
            conf_dir: PathBuf::from("/c"),
            log_file: PathBuf::from("/m.log"),
        }
    }

    #[test]
    fn a_whole_sharded_start_readies_each_tier_before_the_next() {
        let all = sharded();
        let sel = Selection {
            nodes: all.clone(),
            monitors: vec![monitor(Service::Events)],
        };
        let plan = start_plan("c", &sel, &all, true);
        let kinds: Vec<String> = plan.steps.iter().map(Step::describe).collect();
        assert_eq!(
            plan.steps,
            vec![
                StartStep::Monitors(vec!["mup-events".into()]),
                StartStep::Tier {
                    role: Role::ConfigServer,
                    programs: vec!["mongod-1".into(), "mongod-2".into()]
                },
                StartStep::Initiate {
                    role: Role::ConfigServer,
                    sets: vec!["cfg".into()]
                },
                StartStep::Tier {
                    role: Role::Mongod,
                    programs: vec!["mongod-3".into(), "mongod-4".into()]
                },
                StartStep::Initiate {
                    role: Role::Mongod,
                    sets: vec!["shard1".into(), "shard2".into()]
                },
                StartStep::Tier {
                    role: Role::Mongos,
                    programs: vec!["mongos-5".into(), "mongos-6".into()]
                },
                StartStep::AddShards {
                    router: "mongos-5".into(),
                    shards: vec!["shard1".into(), "shard2".into()]
                },
                StartStep::Settle {
                    monitors: vec!["mup-events".into()]
                },
            ],
            "{kinds:#?}"
        );
    }

    #[test]
    fn a_partial_start_initiates_nothing_but_still_settles() {
        let all = sharded();
        let sel = Selection {
            nodes: vec![all[4].clone()],
            monitors: vec![],
        };
        let plan = start_plan("c", &sel, &all, false);
        assert_eq!(
            plan.steps,
            vec![
                StartStep::Tier {
                    role: Role::Mongos,
                    programs: vec!["mongos-5".into()]
                },
                StartStep::Settle { monitors: vec![] },
            ]
        );
        assert!(plan
            .render()
            .contains("1. start mongos routers mongos-5; wait"));
    }

    #[test]
    fn a_stop_goes_routers_first_and_the_event_listener_last() {
        let all = sharded();
        let events = monitor(Service::Events);
        let metrics = monitor(Service::Metrics);
        let mut programs: Vec<&dyn Program> = vec![&events, &metrics];
        programs.extend(all.iter().map(|m| m as &dyn Program));
        let plan = stop_plan("c", &programs);
        let order: Vec<Vec<String>> = plan.steps.iter().map(|s| s.programs.clone()).collect();
        assert_eq!(
            order,
            vec![
                vec!["mongos-5".to_string(), "mongos-6".into()],
                vec!["mongod-3".into(), "mongod-4".into()],
                vec!["mongod-1".into(), "mongod-2".into()],
                vec!["mup-metrics".into()],
                vec!["mup-events".into()],
            ]
        );
        assert_eq!(plan.steps.last().map(|s| s.rank), Some(LAST_RANK));
    }
}
