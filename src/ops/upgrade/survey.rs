//! What the servers say, read only: each node's binary version (`buildInfo`), whether it is
//! its set's primary (`hello`), the featureCompatibilityVersion (`getParameter`), and, while
//! an upgrade runs, whether a restarted member is a caught-up SECONDARY and who is primary.
//! Every call is one bounded command on a direct connection (src/mongo.rs).

use super::plan::{NodeView, State};
use crate::deployment::model::{Role, Version};
use crate::deployment::Node;
use crate::deployment::Tree;
use crate::mongo::{self, Access};
use mongodb::bson::{doc, Document};

/// The cluster as its servers answer now.
pub(crate) fn survey(tree: &Tree) -> State {
    let access = &crate::deployment::security::access(tree);
    let mut fcvs: Vec<String> = Vec::new();
    let nodes = tree
        .members
        .iter()
        .map(|m| {
            let (view, fcv) = node(m, access);
            fcvs.extend(fcv);
            view
        })
        .collect();
    fcvs.sort_by_key(|v| Version::parse(v));
    State {
        nodes,
        recorded: tree.meta.version.clone(),
        fcv: fcvs.into_iter().next(),
    }
}

/// One node's view, and its featureCompatibilityVersion (mongods only).
fn node(m: &Node, access: &Access) -> (NodeView, Option<String>) {
    let mut view = NodeView {
        program: m.program.clone(),
        address: m.address(),
        role: m.role,
        replica_set: m.replica_set.clone().filter(|_| m.role != Role::Mongos),
        version: None,
        primary: false,
    };
    let Ok(client) = mongo::connect(&m.host, m.port, access) else {
        return (view, None);
    };
    view.version = version_on(&client);
    if view.version.is_none() {
        return (view, None);
    }
    if view.replica_set.is_some() {
        view.primary = mongo::run(&client, doc! {"hello": 1})
            .is_ok_and(|d| d.get_bool("isWritablePrimary").unwrap_or(false));
    }
    let fcv = (m.role != Role::Mongos).then(|| fcv_on(&client)).flatten();
    (view, fcv)
}

fn version_on(client: &mongodb::sync::Client) -> Option<String> {
    mongo::run(client, doc! {"buildInfo": 1})
        .ok()
        .and_then(|d| d.get_str("version").ok().map(String::from))
}

fn fcv_on(client: &mongodb::sync::Client) -> Option<String> {
    let d = mongo::run(
        client,
        doc! {"getParameter": 1, "featureCompatibilityVersion": 1},
    )
    .ok()?;
    let f = d.get_document("featureCompatibilityVersion").ok()?;
    f.get_str("version").ok().map(String::from)
}

/// The version `host:port`'s binary reports, or why there is none.
pub(crate) fn version(m: &Node, access: &Access) -> Result<String, String> {
    let d = mongo::command(&m.host, m.port, access, doc! {"buildInfo": 1})
        .map_err(|e| e.to_string())?;
    d.get_str("version")
        .map(String::from)
        .map_err(|_| format!("buildInfo without a version: {d}"))
}

/// The primary of the set `members` form, as the first member that answers `hello` names
/// it (`None` while there is none, or none answers).
pub(crate) fn primary_of(members: &[&Node], access: &Access) -> Option<String> {
    members.iter().find_map(|m| {
        mongo::hello(&m.host, m.port, access)
            .ok()
            .and_then(|h| h.primary)
    })
}

/// Whether `m` is a SECONDARY that has caught up with its set's primary, from its own
/// `replSetGetStatus`: `Ok(())` when it is, else its answer in a few words. Caught up: its
/// `optimeDate` is not behind the primary's, when the server reports optimes.
pub(crate) fn caught_up_secondary(m: &Node, access: &Access) -> Result<(), String> {
    let d = mongo::command(&m.host, m.port, access, doc! {"replSetGetStatus": 1})
        .map_err(|e| e.to_string())?;
    let members: Vec<&Document> = d
        .get_array("members")
        .map(|a| a.iter().filter_map(|x| x.as_document()).collect())
        .unwrap_or_default();
    let state = |x: &Document| x.get_str("stateStr").unwrap_or("UNKNOWN").to_string();
    let own = members
        .iter()
        .find(|x| x.get_bool("self").unwrap_or(false))
        .ok_or_else(|| format!("replSetGetStatus lists no member as self: {d}"))?;
    if state(own) != "SECONDARY" {
        return Err(format!("it is {}", state(own)));
    }
    let Some(primary) = members.iter().find(|x| state(x) == "PRIMARY") else {
        return Err("its set has no primary".into());
    };
    let optime = |x: &Document| x.get_datetime("optimeDate").ok().copied();
    match (optime(own), optime(primary)) {
        (Some(mine), Some(theirs)) if mine < theirs => Err(format!(
            "it is SECONDARY, its optimeDate {mine} behind the primary's {theirs}"
        )),
        _ => Ok(()),
    }
}
