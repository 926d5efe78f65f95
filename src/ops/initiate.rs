//! From started processes to a ready cluster: each replica set initiated and with a primary
//! (the config servers' set first, with `configsvr: true`), and every shard added through a
//! mongos. Every decision is read from the servers (`hello`, `listShards`), never from a flag
//! in meta.yaml, so a rerun on a ready cluster does no initiation work. Every wait is bounded,
//! and ends early after Ctrl-C ([`crate::system::interrupt`]).

use crate::deployment::model::Role;
use crate::deployment::Node;
use crate::mongo::{self, code, Access, Hello};
use mongodb::bson::{doc, Bson, Document};
use std::fmt;
use std::time::{Duration, Instant};

/// How long every member of a set may take to answer `hello`.
pub(crate) const REACH_LIMIT: Duration = Duration::from_secs(60);
/// How long a set may take to elect a primary once initiated.
pub(crate) const PRIMARY_LIMIT: Duration = Duration::from_secs(120);
/// How long a mongos may take to accept connections (it listens only once its config set
/// has a primary).
pub(crate) const MONGOS_LIMIT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(25);

/// One replica set of the tree, members in topology order.
#[derive(Debug, Clone)]
pub struct Set {
    pub name: String,
    /// The config servers' set (`configsvr: true`).
    pub configsvr: bool,
    pub members: Vec<Node>,
}

/// The replica sets among `members`, in the order their first member appears.
pub fn sets(members: &[Node]) -> Vec<Set> {
    let mut out: Vec<Set> = Vec::new();
    for m in members.iter().filter(|m| m.role != Role::Mongos) {
        let Some(rs) = &m.replica_set else { continue };
        match out.iter_mut().find(|s| &s.name == rs) {
            Some(s) => s.members.push(m.clone()),
            None => out.push(Set {
                name: rs.clone(),
                configsvr: m.role == Role::ConfigServer,
                members: vec![m.clone()],
            }),
        }
    }
    out
}

/// The `replSetInitiate` document of a set: `_id` the set's name, member `_id`s by topology
/// order, hosts as in the topology, priority/hidden/votes only where the topology sets them.
pub fn rs_config(set: &Set) -> Document {
    let members: Vec<Bson> = set
        .members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut d = doc! { "_id": i as i32, "host": m.address() };
            if let Some(p) = m.priority {
                d.insert("priority", p);
            }
            if let Some(h) = m.hidden {
                d.insert("hidden", h);
            }
            if let Some(v) = m.votes {
                d.insert("votes", v as i32);
            }
            Bson::Document(d)
        })
        .collect();
    let mut config = doc! { "_id": set.name.clone() };
    if set.configsvr {
        config.insert("configsvr", true);
    }
    config.insert("members", members);
    config
}

/// The `addShard` seed list of a set: `<set>/<host:port>,...` of its non-hidden members.
pub(crate) fn shard_seed(set: &Set) -> String {
    let seeds: Vec<String> = set
        .members
        .iter()
        .filter(|m| m.hidden != Some(true))
        .map(Node::address)
        .collect();
    format!("{}/{}", set.name, seeds.join(","))
}

/// Why a set or a shard could not be made ready; names the member whose log explains it.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub set: String,
    pub member: Option<Box<Node>>,
    pub why: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.member {
            Some(m) => write!(
                f,
                "{}: {} ({}): {}",
                self.set,
                m.program,
                m.address(),
                self.why
            ),
            None => write!(f, "{}: {}", self.set, self.why),
        }
    }
}

/// What was done for one set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// replSetInitiate was sent (or answered AlreadyInitialized for a concurrent one).
    Initiated { primary: String },
    /// Every member already reported this set's name.
    AlreadyInitiated { primary: String },
}

fn fail(set: &Set, member: Option<&Node>, why: String) -> Failure {
    Failure {
        set: set.name.clone(),
        member: member.cloned().map(Box::new),
        why,
    }
}

/// Waits until every member answers `hello` (bounded by [`REACH_LIMIT`]).
fn reach(set: &Set, access: &Access) -> Result<Vec<Hello>, Failure> {
    let start = Instant::now();
    let mut hellos = Vec::new();
    for m in &set.members {
        loop {
            match mongo::hello(&m.host, m.port, access) {
                Ok(h) => {
                    hellos.push(h);
                    break;
                }
                Err(_) if crate::system::interrupt::requested() => {
                    return Err(fail(set, None, "interrupted (Ctrl-C)".into()))
                }
                Err(e) if start.elapsed() >= REACH_LIMIT => {
                    return Err(fail(
                        set,
                        Some(m),
                        format!("did not answer within {} s ({e})", REACH_LIMIT.as_secs()),
                    ))
                }
                Err(_) => std::thread::sleep(POLL),
            }
        }
    }
    Ok(hellos)
}

/// Initiates `set` unless its members already belong to it, then waits for a primary.
/// replSetInitiate is sent without credentials (the localhost exception: no user exists
/// before a set has a primary).
pub(crate) fn initiate(set: &Set, access: &Access) -> Result<Outcome, Failure> {
    let hellos = reach(set, access)?;
    for (m, h) in set.members.iter().zip(&hellos) {
        match &h.set_name {
            Some(name) if *name != set.name => {
                return Err(fail(
                    set,
                    Some(m),
                    format!(
                        "it belongs to replica set {name:?}, not {:?} (its data directory holds another set's configuration)",
                        set.name
                    ),
                ))
            }
            _ if !h.replica_set => {
                return Err(fail(
                    set,
                    Some(m),
                    "it was not started with a replica set name".into(),
                ))
            }
            _ => {}
        }
    }
    let initiated = hellos
        .iter()
        .any(|h| h.set_name.as_deref() == Some(&set.name));
    if !initiated {
        let first = &set.members[0];
        let cmd = doc! { "replSetInitiate": rs_config(set) };
        match mongo::command(&first.host, first.port, &access.anonymous(), cmd) {
            Ok(_) => {}
            Err(e) if e.code() == Some(code::ALREADY_INITIALIZED) => {}
            Err(e) => return Err(fail(set, Some(first), format!("replSetInitiate: {e}"))),
        }
    }
    let primary = wait_primary(set, access)?;
    Ok(if initiated {
        Outcome::AlreadyInitiated { primary }
    } else {
        Outcome::Initiated { primary }
    })
}

/// Polls the members' `hello` until one is a writable primary (bounded by [`PRIMARY_LIMIT`]).
fn wait_primary(set: &Set, access: &Access) -> Result<String, Failure> {
    let start = Instant::now();
    loop {
        for m in &set.members {
            if let Ok(h) = mongo::hello(&m.host, m.port, access) {
                if h.writable_primary && h.set_name.as_deref() == Some(&set.name) {
                    return Ok(m.address());
                }
            }
        }
        if crate::system::interrupt::requested() {
            return Err(fail(set, None, "interrupted (Ctrl-C)".into()));
        }
        if start.elapsed() >= PRIMARY_LIMIT {
            return Err(fail(
                set,
                set.members.first(),
                format!(
                    "no primary was elected within {} s",
                    PRIMARY_LIMIT.as_secs()
                ),
            ));
        }
        std::thread::sleep(POLL);
    }
}

/// Initiates every set at once; results in input order.
pub(crate) fn initiate_all(
    sets: &[Set],
    access: &Access,
) -> Vec<(Set, Result<Outcome, Failure>, Duration)> {
    std::thread::scope(|s| {
        let handles: Vec<_> = sets
            .iter()
            .map(|set| {
                s.spawn(move || {
                    let start = Instant::now();
                    let r = initiate(set, access);
                    (set.clone(), r, start.elapsed())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("an initiation thread does not panic"))
            .collect()
    })
}

/// A shard as `listShards` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shard {
    pub id: String,
    pub host: String,
}

/// `listShards` through the mongos at `router`.
pub(crate) fn list_shards(router: &Node, access: &Access) -> Result<Vec<Shard>, mongo::Error> {
    let d = mongo::command(&router.host, router.port, access, doc! { "listShards": 1 })?;
    Ok(d.get_array("shards")
        .map(|a| {
            a.iter()
                .filter_map(Bson::as_document)
                .map(|s| Shard {
                    id: s.get_str("_id").unwrap_or_default().to_string(),
                    host: s.get_str("host").unwrap_or_default().to_string(),
                })
                .collect()
        })
        .unwrap_or_default())
}

/// Adds through `router` every shard set not yet in `listShards`; returns, per set, whether
/// it was added now (`true`) or already known (`false`).
pub(crate) fn add_shards(
    router: &Node,
    shards: &[Set],
    access: &Access,
) -> Result<Vec<(String, bool)>, Failure> {
    let router_failure = |e: mongo::Error| Failure {
        set: "shards".into(),
        member: Some(Box::new(router.clone())),
        why: format!("listShards: {e}"),
    };
    let known = list_shards(router, access).map_err(router_failure)?;
    let mut out = Vec::new();
    for set in shards {
        if known.iter().any(|s| s.id == set.name) {
            out.push((set.name.clone(), false));
            continue;
        }
        let cmd = doc! { "addShard": shard_seed(set), "name": set.name.clone() };
        mongo::command(&router.host, router.port, access, cmd).map_err(|e| Failure {
            set: set.name.clone(),
            member: Some(Box::new(router.clone())),
            why: format!("addShard {}: {e}", shard_seed(set)),
        })?;
        out.push((set.name.clone(), true));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn member(role: Role, port: u16, rs: &str) -> Node {
        Node {
            role,
            host: "localhost".into(),
            port,
            replica_set: Some(rs.into()),
            program: format!("p-{port}"),
            group: format!("p-{port}"),
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

    #[test]
    fn the_config_follows_the_topology() {
        let mut hidden = member(Role::Mongod, 30002, "rs0");
        hidden.priority = Some(0.0);
        hidden.hidden = Some(true);
        hidden.votes = Some(0);
        let members = vec![
            member(Role::ConfigServer, 30100, "cfg"),
            member(Role::Mongod, 30000, "rs0"),
            member(Role::Mongod, 30001, "rs0"),
            hidden,
        ];
        let sets = sets(&members);
        assert_eq!(sets.len(), 2);
        assert_eq!(
            rs_config(&sets[0]),
            doc! { "_id": "cfg", "configsvr": true, "members": [
                { "_id": 0, "host": "localhost:30100" },
            ] }
        );
        assert_eq!(
            rs_config(&sets[1]),
            doc! { "_id": "rs0", "members": [
                { "_id": 0, "host": "localhost:30000" },
                { "_id": 1, "host": "localhost:30001" },
                { "_id": 2, "host": "localhost:30002", "priority": 0.0, "hidden": true, "votes": 0 },
            ] }
        );
        assert_eq!(shard_seed(&sets[1]), "rs0/localhost:30000,localhost:30001");
    }
}
