//! topology.yaml checked: nodes in tier order with their roles, hosts, replica sets and
//! member options, before ports are decided; and the rule that no two nodes' data
//! directories overlap. Pure.

use crate::deployment::model::Kind;
use crate::deployment::naming::{check_rs_name, Role};
use crate::deployment::topology::{NodeSpec, Topology};
use crate::deployment::yaml::Mapping;
use crate::error::{InputError, InputResult};
use std::collections::BTreeMap;
use std::path::Path;

/// A node as read from the topology, before ports are allocated.
#[derive(Debug, Clone)]
pub(crate) struct Draft {
    pub role: Role,
    pub index: usize,
    pub host: String,
    /// `None` for `port: 0` (allocate).
    pub port: Option<u16>,
    pub replica_set: Option<String>,
    pub priority: Option<f64>,
    pub hidden: Option<bool>,
    pub votes: Option<i64>,
    pub data_dir: Option<String>,
    pub log_dir: Option<String>,
    pub runtime_config: Mapping,
}

impl Draft {
    /// `mongod_servers[1]`: where the node is in topology.yaml.
    pub(crate) fn source(&self) -> String {
        format!("{}[{}]", self.role.topology_key(), self.index)
    }
}

/// The topology's outline, checked: nodes in tier order, global settings, warnings for ignored fields.
#[derive(Debug)]
pub(crate) struct Outline {
    pub drafts: Vec<Draft>,
    pub kind: Kind,
    pub user: Option<String>,
    pub data_dir: Option<String>,
    pub log_dir: Option<String>,
    pub runtime_config: Mapping,
    pub warnings: Vec<String>,
}

impl Outline {
    /// Ports written explicitly in the topology.
    pub(crate) fn explicit_ports(&self) -> Vec<u16> {
        self.drafts.iter().filter_map(|d| d.port).collect()
    }
}

fn is_local_host(host: &str) -> bool {
    if host == "localhost" {
        return true;
    }
    let parts: Vec<&str> = host.split('.').collect();
    parts.len() == 4
        && parts[0] == "127"
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.parse::<u8>().is_ok())
}

/// Checks a topology file and returns its outline (ports not yet allocated).
pub(crate) fn outline(topo: &Topology, file: &str) -> InputResult<Outline> {
    let mut warnings = ignored_globals(topo, file);
    let mut drafts = Vec::new();
    for role in Role::TIERS {
        let list = match role {
            Role::ConfigServer => &topo.config_servers,
            Role::Mongod => &topo.mongod_servers,
            Role::Mongos => &topo.mongos_servers,
        };
        for (index, spec) in list.iter().enumerate() {
            drafts.push(draft(role, index, spec, file, &mut warnings)?);
        }
    }
    if drafts.is_empty() {
        return Err(InputError::new(
            file,
            "",
            "the topology has no nodes: list at least one entry under mongod_servers",
        ));
    }
    check_ports(&drafts, file)?;
    let sharded = check_tiers(&drafts, file)?;
    check_replica_sets(&drafts, sharded, file)?;
    check_set_sizes(&drafts, file)?;
    check_listed_sets(topo, &drafts, file)?;
    let kind = if sharded {
        Kind::Sharded
    } else if drafts.iter().any(|d| d.replica_set.is_some()) {
        Kind::ReplicaSet
    } else {
        Kind::Standalone
    };
    let g = &topo.global;
    Ok(Outline {
        drafts,
        kind,
        user: g.user.clone(),
        data_dir: g.data_dir.clone(),
        log_dir: g.log_dir.clone(),
        runtime_config: g.runtime_config.clone().unwrap_or_default(),
        warnings,
    })
}

/// The Go mup's global settings that mean nothing for a local cluster, as warnings.
fn ignored_globals(topo: &Topology, file: &str) -> Vec<String> {
    let g = &topo.global;
    [
        (g.deploy_dir.is_some(), "deploy_dir"),
        (g.config_dir.is_some(), "config_dir"),
        (g.ssh_port.is_some(), "ssh_port"),
        (g.systemd_config.is_some(), "systemd_config"),
        (g.os_config.is_some(), "os_config"),
        (g.resource_control.is_some(), "resource_control"),
    ]
    .into_iter()
    .filter(|(set, _)| *set)
    .map(|(_, key)| format!(
        "{file}: global.{key} is ignored: mup runs the cluster on this machine, in its cluster directory"
    ))
    .collect()
}

/// Ports are unique on this machine (localhost and 127.0.0.1 are the same machine).
fn check_ports(drafts: &[Draft], file: &str) -> InputResult<()> {
    let mut seen: BTreeMap<u16, String> = BTreeMap::new();
    for d in drafts {
        if let Some(p) = d.port {
            if let Some(first) = seen.get(&p) {
                return Err(InputError::new(
                    file,
                    format!("{}.port", d.source()),
                    format!("{p} is already used by {first}"),
                ));
            }
            seen.insert(p, d.source());
        }
    }
    Ok(())
}

/// Routers need config servers, and a sharded topology shards; true when it is sharded.
fn check_tiers(drafts: &[Draft], file: &str) -> InputResult<bool> {
    let count = |r: Role| drafts.iter().filter(|d| d.role == r).count();
    let sharded = count(Role::ConfigServer) > 0 || count(Role::Mongos) > 0;
    if count(Role::Mongos) > 0 && count(Role::ConfigServer) == 0 {
        return Err(InputError::new(
            file,
            "mongos_servers",
            "a topology with mongos needs config_servers (a config server replica set)",
        ));
    }
    if sharded && count(Role::Mongod) == 0 {
        return Err(InputError::new(
            file,
            "mongod_servers",
            "a sharded topology needs at least one shard in mongod_servers",
        ));
    }
    Ok(sharded)
}

/// Replica-set names: one role each; config servers share one; shards need one.
fn check_replica_sets(drafts: &[Draft], sharded: bool, file: &str) -> InputResult<()> {
    let err = |field: String, msg: String| InputError::new(file, field, msg);
    let mut rs_role: BTreeMap<&str, (Role, String)> = BTreeMap::new();
    for d in drafts {
        match (&d.replica_set, d.role) {
            (None, Role::ConfigServer) => {
                return Err(err(
                    format!("{}.replica_set", d.source()),
                    "config servers need a replica_set (the config server replica set)".into(),
                ))
            }
            (None, Role::Mongod) if sharded => {
                return Err(err(
                    format!("{}.replica_set", d.source()),
                    "in a sharded topology every mongod is a shard member and needs a replica_set"
                        .into(),
                ))
            }
            (Some(rs), role) => {
                if let Some((other, first)) = rs_role.get(rs.as_str()) {
                    if *other != role {
                        return Err(err(
                            format!("{}.replica_set", d.source()),
                            format!("{rs:?} is already the replica set of {first}, a {} node; use another name", other.label()),
                        ));
                    }
                }
                rs_role.entry(rs).or_insert((role, d.source()));
            }
            _ => {}
        }
    }
    let config_sets: Vec<&str> = rs_role
        .iter()
        .filter(|(_, (r, _))| *r == Role::ConfigServer)
        .map(|(n, _)| *n)
        .collect();
    if config_sets.len() > 1 {
        return Err(err(
            "config_servers".into(),
            format!(
                "all config servers must be in one replica set, found {}",
                config_sets.join(", ")
            ),
        ));
    }
    Ok(())
}

/// The server's limits on one replica set: at most 50 members, at most 7 of them voting
/// (`replSetInitiate` and `replSetReconfig` refuse more).
pub(crate) const MAX_MEMBERS: usize = 50;
pub(crate) const MAX_VOTING: usize = 7;

fn check_set_sizes(drafts: &[Draft], file: &str) -> InputResult<()> {
    let mut sets: BTreeMap<&str, (usize, usize, String)> = BTreeMap::new();
    for d in drafts {
        if let Some(rs) = &d.replica_set {
            let e = sets.entry(rs).or_insert((0, 0, d.source()));
            e.0 += 1;
            e.1 += usize::from(d.votes != Some(0));
        }
    }
    for (rs, (members, voting, first)) in sets {
        let why = if members > MAX_MEMBERS {
            format!(
                "replica set {rs:?} has {members} members: MongoDB allows at most {MAX_MEMBERS}"
            )
        } else if voting > MAX_VOTING {
            format!("replica set {rs:?} has {voting} voting members: MongoDB allows at most {MAX_VOTING}; give the others `votes: 0, priority: 0`")
        } else {
            continue;
        };
        return Err(InputError::new(file, format!("{first}.replica_set"), why));
    }
    Ok(())
}

/// The Go mup's `replica_sets` list must agree with the nodes.
fn check_listed_sets(topo: &Topology, drafts: &[Draft], file: &str) -> InputResult<()> {
    for (i, rs) in topo.replica_sets.iter().enumerate() {
        check_rs_name(&rs.name, file, &format!("replica_sets[{i}].name"))?;
        for (j, member) in rs.members.iter().enumerate() {
            let found = drafts.iter().any(|d| {
                d.replica_set.as_deref() == Some(rs.name.as_str())
                    && d.port.is_some_and(|p| format!("{}:{p}", d.host) == *member)
            });
            if !found {
                return Err(InputError::new(
                    file,
                    format!("replica_sets[{i}].members[{j}]"),
                    format!("{member:?} is not a node with replica_set {:?}", rs.name),
                ));
            }
        }
    }
    Ok(())
}

/// Two of `dirs` where one is, or lies inside, the other, as indices `(earlier, later)`: the
/// pair whose later index is the smallest, `None` when no two overlap. Paths sort component
/// by component, so everything inside a directory sorts right after it: comparing each path
/// with its neighbour finds an overlap whenever there is one, in n log n, not n².
pub(crate) fn first_overlap(dirs: &[&Path]) -> Option<(usize, usize)> {
    first_overlap_counted(dirs, &mut 0)
}

/// [`first_overlap`], adding the number of path comparisons it made to `comparisons`.
fn first_overlap_counted(dirs: &[&Path], comparisons: &mut usize) -> Option<(usize, usize)> {
    let mut order: Vec<usize> = (0..dirs.len()).collect();
    order.sort_by(|a, b| {
        *comparisons += 1;
        dirs[*a].cmp(dirs[*b]).then(a.cmp(b))
    });
    order
        .windows(2)
        .filter(|w| {
            *comparisons += 1;
            dirs[w[1]].starts_with(dirs[w[0]])
        })
        .map(|w| (w[0].min(w[1]), w[0].max(w[1])))
        .min_by_key(|(first, then)| (*then, *first))
}

/// priority, hidden and votes: only for replica-set members, in the server's ranges, and in
/// the combinations the server accepts.
fn check_member_options(
    spec: &NodeSpec,
    err: &dyn Fn(&str, String) -> InputError,
) -> InputResult<()> {
    let member_option = spec.priority.is_some() || spec.hidden.is_some() || spec.votes.is_some();
    if member_option && spec.replica_set.is_none() {
        return Err(err(
            "replica_set",
            "priority, hidden and votes are replica set member options: set replica_set".into(),
        ));
    }
    if let Some(p) = spec.priority {
        if !(0.0..=1000.0).contains(&p) {
            return Err(err("priority", format!("{p} is out of range 0..1000")));
        }
    }
    if let Some(v) = spec.votes {
        if !(0..=1).contains(&v) {
            return Err(err("votes", format!("{v} must be 0 or 1")));
        }
    }
    if spec.hidden == Some(true) && spec.priority != Some(0.0) {
        return Err(err(
            "hidden",
            "a hidden member must have priority: 0".into(),
        ));
    }
    if spec.votes == Some(0) && spec.priority != Some(0.0) {
        return Err(err(
            "votes",
            "a non-voting member must have priority: 0 (the server refuses the set otherwise)"
                .into(),
        ));
    }
    Ok(())
}

fn draft(
    role: Role,
    index: usize,
    spec: &NodeSpec,
    file: &str,
    warnings: &mut Vec<String>,
) -> InputResult<Draft> {
    let source = format!("{}[{index}]", role.topology_key());
    let err = |field: &str, msg: String| InputError::new(file, format!("{source}.{field}"), msg);
    let host = spec
        .host
        .clone()
        .ok_or_else(|| err("host", "missing: name the host (localhost)".into()))?;
    if !is_local_host(&host) {
        return Err(err(
            "host",
            format!("{host:?} is not this machine: mup runs local clusters, use localhost or a 127.x.x.x address"),
        ));
    }
    let port = match spec.port {
        None => {
            return Err(err(
                "port",
                "missing: give a port, or 0 to let mup pick a free one".into(),
            ))
        }
        Some(0) => None,
        Some(p) if (1..=65535).contains(&p) => Some(p as u16),
        Some(p) => {
            return Err(err(
                "port",
                format!("{p} is not a port: use 1..65535, or 0 to let mup pick one"),
            ))
        }
    };
    if let Some(rs) = &spec.replica_set {
        check_rs_name(rs, file, &format!("{source}.replica_set"))?;
    }
    if role == Role::Mongos {
        for (set, key) in [
            (spec.replica_set.is_some(), "replica_set"),
            (spec.data_dir.is_some(), "data_dir"),
            (spec.priority.is_some(), "priority"),
            (spec.hidden.is_some(), "hidden"),
            (spec.votes.is_some(), "votes"),
        ] {
            if set {
                return Err(err(key, "a mongos router has no such setting".into()));
            }
        }
    }
    check_member_options(spec, &err)?;
    for (set, key) in [
        (spec.deploy_dir.is_some(), "deploy_dir"),
        (spec.config_dir.is_some(), "config_dir"),
    ] {
        if set {
            warnings.push(format!(
                "{file}: {source}.{key} is ignored: configuration lives in the cluster directory"
            ));
        }
    }
    Ok(Draft {
        role,
        index,
        host,
        port,
        replica_set: spec.replica_set.clone(),
        priority: spec.priority,
        hidden: spec.hidden,
        votes: spec.votes,
        data_dir: spec.data_dir.clone(),
        log_dir: spec.log_dir.clone(),
        runtime_config: spec.runtime_config.clone().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn first(dirs: &[&str]) -> Option<(usize, usize)> {
        let paths: Vec<&Path> = dirs.iter().map(Path::new).collect();
        first_overlap(&paths)
    }

    fn set_of(n: usize, non_voting: usize) -> Topology {
        let mut text = String::from("mongod_servers:\n");
        for i in 0..n {
            let extra = if i < non_voting {
                ", votes: 0, priority: 0"
            } else {
                ""
            };
            text.push_str(&format!(
                "  - {{host: localhost, port: {}, replica_set: rs{extra}}}\n",
                20000 + i
            ));
        }
        crate::deployment::yaml::parse(&text, "t").expect("topology")
    }

    #[test]
    fn the_servers_limits_on_a_replica_set() {
        assert!(outline(&set_of(7, 0), "t").is_ok());
        let e = outline(&set_of(8, 0), "t").expect_err("8 voting");
        assert!(e.to_string().contains("8 voting members"), "{e}");
        assert!(
            outline(&set_of(50, 43), "t").is_ok(),
            "50 members, 7 voting"
        );
        let e = outline(&set_of(51, 44), "t").expect_err("51 members");
        assert!(e.to_string().contains("51 members"), "{e}");
    }

    #[test]
    fn finds_every_kind_of_overlap() {
        assert_eq!(first(&["/d/a", "/d/b", "/d/c"]), None);
        assert_eq!(first(&["/d/a", "/d/a"]), Some((0, 1)));
        assert_eq!(first(&["/d/a/x", "/d/b", "/d/a"]), Some((0, 2)));
        assert_eq!(first(&["/d", "/d/a"]), Some((0, 1)));
        // Component order, not string order: /d/a-1 sorts after /d/a's contents.
        assert_eq!(first(&["/d/a-1", "/d/a", "/d/b", "/d/a/x"]), Some((1, 3)));
        // A shared name prefix is not an overlap.
        assert_eq!(first(&["/d/a", "/d/ab", "/d/a-b"]), None);
    }

    #[test]
    fn ten_thousand_directories_are_checked_by_sorting_not_pairwise() {
        // 10,000 distinct directories in a scrambled order: no overlap; then one nested
        // directory added at the end is found, with the directory it lies in. Counted, not
        // timed: pairwise would be 50 million comparisons, sorting is n log n.
        let mut dirs: Vec<PathBuf> = (0..10_000u64)
            .map(|i| PathBuf::from(format!("/data/n{}", (i * 7919) % 10_000)))
            .collect();
        let refs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
        let mut comparisons = 0;
        assert_eq!(first_overlap_counted(&refs, &mut comparisons), None);
        assert!(comparisons > 10_000, "{comparisons}");
        assert!(comparisons < 20 * 10_000, "{comparisons} comparisons");
        let inside = dirs[1234].join("sub");
        dirs.push(inside);
        let refs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
        let mut comparisons = 0;
        assert_eq!(
            first_overlap_counted(&refs, &mut comparisons),
            Some((1234, 10_000))
        );
        assert!(comparisons < 20 * 10_001, "{comparisons} comparisons");
    }
}
