//! Replica-set membership on a running set, the server's way (docs/mongodb.md, "Changing a
//! set's members"): `replSetReconfig` on the primary with the version raised by one, one
//! voting member added or removed per reconfig, a new member added without a vote first and
//! given its vote once it is SECONDARY, the primary stepped down before it is removed, and no
//! removal that leaves the set's voters without a healthy majority. Every step is idempotent,
//! so a scale command run again after an interruption goes on from the server's state.

use crate::deployment::Node;
use crate::mongo::{self, Access, Error};
use anyhow::{anyhow, bail, Context};
use mongodb::bson::{doc, Bson, Document};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// How long a set may take to have a primary, or a new member to become SECONDARY.
pub(crate) const STATE_LIMIT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(200);
/// `replSetStepDown`: not electable for this long; secondaries get this long to catch up.
const STEP_DOWN_SECS: i32 = 60;
const CATCH_UP_SECS: i32 = 10;
/// `maxTimeMS` of a `replSetReconfig`.
const RECONFIG_MS: i32 = 60_000;

/// The `host:port` of the set's primary, asked of `members` (bounded by [`STATE_LIMIT`]).
pub(crate) fn primary(set: &str, members: &[Node], access: &Access) -> anyhow::Result<String> {
    let start = Instant::now();
    let mut last = String::from("no member answered");
    loop {
        for m in members {
            match mongo::hello(&m.host, m.port, access) {
                Ok(h) if h.writable_primary => return Ok(m.address()),
                Ok(h) => {
                    last = format!("{} answers primary {:?}", m.address(), h.primary);
                    if let Some(p) = h.primary.filter(|p| members.iter().any(|x| x.is(p))) {
                        return Ok(p);
                    }
                }
                Err(e) => last = format!("{}: {e}", m.address()),
            }
        }
        if start.elapsed() > STATE_LIMIT {
            bail!(
                "replica set {set} has no primary after {} s ({last})",
                STATE_LIMIT.as_secs()
            );
        }
        sleep(POLL);
    }
}

fn split(address: &str) -> (String, u16) {
    let (h, p) = address.rsplit_once(':').unwrap_or((address, "0"));
    (h.to_string(), p.parse().unwrap_or(0))
}

fn on(address: &str, cmd: Document, access: &Access) -> Result<Document, Error> {
    let (h, p) = split(address);
    mongo::command(&h, p, access, cmd)
}

/// The set's config as its primary holds it.
fn config(primary: &str, access: &Access) -> anyhow::Result<Document> {
    let d = on(primary, doc! { "replSetGetConfig": 1 }, access)
        .map_err(|e| anyhow!("replSetGetConfig on {primary}: {e}"))?;
    Ok(d.get_document("config")
        .with_context(|| format!("replSetGetConfig on {primary}: no config in {d}"))?
        .clone())
}

fn members_of(config: &Document) -> Vec<Document> {
    config
        .get_array("members")
        .map(|a| a.iter().filter_map(Bson::as_document).cloned().collect())
        .unwrap_or_default()
}

fn number(d: &Document, key: &str, default: i64) -> i64 {
    match d.get(key) {
        Some(Bson::Int32(v)) => i64::from(*v),
        Some(Bson::Int64(v)) => *v,
        Some(Bson::Double(v)) => *v as i64,
        _ => default,
    }
}

fn is_member(d: &Document, m: &Node) -> bool {
    d.get_str("host").is_ok_and(|h| m.is(h))
}

/// Sends `members` as the set's next config (version + 1) to the primary.
fn reconfig(
    primary: &str,
    mut config: Document,
    members: Vec<Document>,
    access: &Access,
) -> anyhow::Result<()> {
    let version = number(&config, "version", 1) + 1;
    config.insert("version", version as i32);
    config.insert(
        "members",
        members.into_iter().map(Bson::Document).collect::<Vec<_>>(),
    );
    config.remove("term");
    // The server waits for a majority to install the current and the new config; bounded.
    on(
        primary,
        doc! { "replSetReconfig": config, "maxTimeMS": RECONFIG_MS },
        access,
    )
    .map(|_| ())
    .map_err(|e| anyhow!("replSetReconfig on {primary} (version {version}): {e}"))
}

/// Adds `m` to `set` without a vote and with priority 0 (it cannot sway an election while it
/// syncs), then waits until it is SECONDARY. Nothing to do when the config has it already.
pub(crate) fn add(set: &str, members: &[Node], m: &Node, access: &Access) -> anyhow::Result<()> {
    let primary = primary(set, members, access)?;
    let config = config(&primary, access)?;
    let mut list = members_of(&config);
    if !list.iter().any(|d| is_member(d, m)) {
        let id = list.iter().map(|d| number(d, "_id", 0)).max().unwrap_or(-1) + 1;
        let mut d = doc! { "_id": id as i32, "host": m.address(), "priority": 0.0, "votes": 0 };
        if m.hidden == Some(true) {
            d.insert("hidden", true);
        }
        list.push(d);
        reconfig(&primary, config, list, access)?;
    }
    wait_state(set, &primary, m, &["SECONDARY"], access)
}

/// Gives `m` the vote and priority the topology names (1 and 1 by default), in one reconfig.
pub(crate) fn promote(
    set: &str,
    members: &[Node],
    m: &Node,
    access: &Access,
) -> anyhow::Result<()> {
    let primary = primary(set, members, access)?;
    let config = config(&primary, access)?;
    let mut list = members_of(&config);
    let votes = m.votes.unwrap_or(1);
    // A non-voting or hidden member must have priority 0 (InvalidReplicaSetConfig otherwise).
    let zero = votes == 0 || m.hidden == Some(true);
    let priority = m.priority.unwrap_or(if zero { 0.0 } else { 1.0 });
    let Some(d) = list.iter_mut().find(|d| is_member(d, m)) else {
        bail!("{} is not in the config of replica set {set}", m.address());
    };
    let same = number(d, "votes", 1) == votes && d.get_f64("priority").ok() == Some(priority);
    if same {
        return Ok(());
    }
    d.insert("votes", votes as i32);
    d.insert("priority", priority);
    reconfig(&primary, config, list, access)
}

/// The state of every member by `host:port`, as `primary` sees them.
fn states(primary: &str, access: &Access) -> anyhow::Result<Vec<(String, String)>> {
    let (h, p) = split(primary);
    let status = mongo::set_status(&h, p, access)
        .map_err(|e| anyhow!("replSetGetStatus on {primary}: {e}"))?
        .unwrap_or_default();
    Ok(status
        .members
        .into_iter()
        .map(|(port, state)| (crate::deployment::naming::address(&h, port), state))
        .collect())
}

fn wait_state(
    set: &str,
    primary: &str,
    m: &Node,
    wanted: &[&str],
    access: &Access,
) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let now = states(primary, access)?;
        let state = now
            .iter()
            .find(|(a, _)| m.is(a))
            .map(|(_, s)| s.as_str())
            .unwrap_or("not in the set");
        if wanted.contains(&state) {
            return Ok(());
        }
        if start.elapsed() > STATE_LIMIT {
            bail!(
                "{} ({}) of replica set {set} is {state} after {} s, not {}",
                m.program,
                m.address(),
                STATE_LIMIT.as_secs(),
                wanted.join(" or ")
            );
        }
        sleep(POLL);
    }
}

/// Removes `m` from `set`: stepped down first when it is the primary; refused when the
/// voters left would not have a healthy majority. Nothing to do when it is not in the config.
pub(crate) fn remove(set: &str, members: &[Node], m: &Node, access: &Access) -> anyhow::Result<()> {
    let mut primary = primary(set, members, access)?;
    if m.is(&primary) {
        step_down(set, members, m, &primary, access)?;
        let others: Vec<Node> = members
            .iter()
            .filter(|x| !x.is(&primary))
            .cloned()
            .collect();
        primary = self::primary(set, &others, access)?;
    }
    let config = config(&primary, access)?;
    let (gone, kept): (Vec<Document>, Vec<Document>) = members_of(&config)
        .into_iter()
        .partition(|d| is_member(d, m));
    if gone.is_empty() {
        return Ok(());
    }
    let states = states(&primary, access)?;
    let voters: Vec<String> = kept
        .iter()
        .filter(|d| number(d, "votes", 1) > 0)
        .filter_map(|d| d.get_str("host").ok().map(String::from))
        .collect();
    let healthy: Vec<&String> = voters
        .iter()
        .filter(|v| {
            states
                .iter()
                .any(|(a, s)| split(a).1 == split(v).1 && (s == "PRIMARY" || s == "SECONDARY"))
        })
        .collect();
    if voters.is_empty() || healthy.len() * 2 <= voters.len() {
        return Err(crate::ops::steps::Refused(format!(
            "refused: without {} replica set {set} would have {} voting member(s) of which {} healthy ({}); a majority must stay healthy — start the members that are down first",
            m.address(),
            voters.len(),
            healthy.len(),
            states
                .iter()
                .map(|(a, s)| format!("{a} {s}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into());
    }
    reconfig(&primary, config, kept, access)
}

/// `replSetStepDown` on the primary `m`, then a wait for another primary.
fn step_down(
    set: &str,
    members: &[Node],
    m: &Node,
    primary: &str,
    access: &Access,
) -> anyhow::Result<()> {
    let cmd =
        doc! { "replSetStepDown": STEP_DOWN_SECS, "secondaryCatchUpPeriodSecs": CATCH_UP_SECS };
    match on(primary, cmd, access) {
        Ok(_) => {}
        // A step-down may close the connection before the answer.
        Err(Error::Unreachable(_)) => {}
        Err(e) => bail!(
            "{} ({primary}) is the primary of {set} and could not step down before its removal: {e}",
            m.program
        ),
    }
    let others: Vec<Node> = members.iter().filter(|x| !x.is(primary)).cloned().collect();
    self::primary(set, &others, access).map(|_| ())
}
