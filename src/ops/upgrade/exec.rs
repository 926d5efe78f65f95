//! Running one upgrade step against the cluster: supervisord stops and starts only the node
//! being upgraded (ctl's ordered stop and start of a one-node selection: no group is
//! updated), the node's launcher (and, where the version changes an option, its config file)
//! is rewritten atomically in between, and every wait on a server is bounded, its error
//! naming the node and the server's last answer.

use super::plan::Step;
use super::survey;
use crate::deployment::model::Role;
use crate::deployment::Node;
use crate::deployment::Selection;
use crate::deployment::Tree;
use crate::mongo::{self, Access};
use crate::ops::lifecycle;
use crate::supervisor::Client;
use crate::ui::Ui;
use anyhow::{bail, Context};
use mongodb::bson::doc;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a restarted member may take to be a caught-up SECONDARY, and a set to elect a
/// new primary after a step-down.
const MEMBER_WAIT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(50);
/// `replSetStepDown` arguments: the old primary is not electable for this long (it is
/// restarted meanwhile), and waits this long for a caught-up secondary (the server's default).
const STEP_DOWN_SECS: i64 = 60;
const CATCH_UP_SECS: i64 = 10;
/// `maxTimeMS` of the balancer and FCV commands (the server's own default for balancerStop).
const COMMAND_MS: i64 = 60_000;

/// What every step needs.
pub(crate) struct Cx<'a> {
    pub tree: &'a Tree,
    pub client: &'a Client,
    /// The directory holding the new version's mongod and mongos.
    pub bin_path: &'a Path,
    pub ui: &'a Ui,
    /// How mup connects to the cluster's nodes (credentials, CA).
    pub access: &'a Access,
}

/// Runs one step.
pub(crate) fn run(cx: &Cx, step: &Step) -> anyhow::Result<()> {
    let access = cx.access;
    match step {
        Step::StopBalancer { router } => admin(
            router,
            doc! {"balancerStop": 1, "maxTimeMS": COMMAND_MS},
            access,
        ),
        Step::StartBalancer { router } => admin(
            router,
            doc! {"balancerStart": 1, "maxTimeMS": COMMAND_MS},
            access,
        ),
        Step::Restart {
            node,
            version,
            alone,
        } => restart(cx, &node.program, version, *alone),
        Step::Handover { set, primary } => step_down(cx.tree, set, primary, access),
        Step::Record { version } => record(cx, version),
        Step::SetFcv { fcv } => set_fcv(cx.tree, fcv, access),
    }
}

/// One command on the admin database of `address` (`host:port`).
fn admin(address: &str, cmd: mongodb::bson::Document, access: &Access) -> anyhow::Result<()> {
    let (host, port) = split(address)?;
    let name = cmd.keys().next().cloned().unwrap_or_default();
    mongo::command(host, port, access, cmd)
        .map(|_| ())
        .with_context(|| format!("{name} on {address}"))
}

fn split(address: &str) -> anyhow::Result<(&str, u16)> {
    let (host, port) = address
        .rsplit_once(':')
        .context("an address is host:port")?;
    Ok((host, port.parse().context("an address ends with a port")?))
}

fn member<'a>(tree: &'a Tree, program: &str) -> anyhow::Result<&'a Node> {
    tree.members
        .iter()
        .find(|m| m.program == program)
        .with_context(|| format!("no node {program} in cluster {}", tree.name()))
}

/// Stop `program`, point its launcher at the new binaries, start it, and wait until it runs
/// `version` (and, for a set member, until it is a caught-up SECONDARY).
fn restart(cx: &Cx, program: &str, version: &str, alone: bool) -> anyhow::Result<()> {
    let access = cx.access;
    let m = member(cx.tree, program)?;
    let member_of = m
        .replica_set
        .as_deref()
        .filter(|_| m.role != Role::Mongos && !alone);
    if let Some(rs) = member_of {
        // A member that is up: not the primary (the plan steps it down first), and stopping it
        // must not make it the second member of its set down.
        match mongo::hello(&m.host, m.port, access) {
            Ok(h) if h.writable_primary => bail!(
                "{program} ({}) is the primary of {rs} now, which it was not when the plan was made: nothing was changed; run the command again",
                m.address()
            ),
            Ok(_) => others_up(cx.tree, m, rs, access)?,
            Err(_) => {} // down already: starting it adds no member down
        }
    }
    lifecycle::stop(
        cx.ui,
        cx.tree,
        cx.client,
        &[m as &dyn crate::deployment::Program],
    )?;
    let text = crate::deployment::render::launcher(cx.bin_path, m.role);
    crate::deployment::write::write_atomic(
        &m.launcher(),
        text.as_bytes(),
        crate::deployment::render::LAUNCHER,
    )?;
    rewrite_conf(cx.tree, m, version)?;
    let one = Selection {
        nodes: vec![m.clone()],
        monitors: Vec::new(),
    };
    lifecycle::start(cx.ui, cx.tree, cx.client, &one, false)?;
    let now = survey::version(m, access).map_err(|why| {
        anyhow::anyhow!(
            "{program} ({}) was started but buildInfo fails: {why}",
            m.address()
        )
    })?;
    if now != version {
        bail!(
            "{program} ({}) runs {now} after its restart, not {version}: its launcher {} is not what supervisord runs",
            m.address(),
            m.launcher().display()
        );
    }
    if alone {
        wait_primary(m, access)?;
    } else if m.replica_set.is_some() && m.role != Role::Mongos {
        wait_secondary(m, access)?;
    }
    Ok(())
}

/// `m`'s config document as gen writes it for `version`: the options that depend on the
/// version set for it (`mongod_conf::set_version_options`), the header naming it. Written
/// (atomically) only when it differs.
fn rewrite_conf(tree: &Tree, m: &Node, version: &str) -> anyhow::Result<()> {
    let path = &m.config_file;
    let shown = path.display().to_string();
    let text = crate::deployment::yaml::read(path, &shown)?;
    let mut conf: crate::deployment::yaml::Mapping = crate::deployment::yaml::parse(&text, &shown)?;
    let v = crate::deployment::model::Version::parse(version)
        .with_context(|| format!("{version:?} is not a version"))?;
    crate::deployment::mongod_conf::set_version_options(&mut conf, v);
    let source = tree
        .meta
        .nodes
        .iter()
        .find(|n| n.supervisor_name == m.program)
        .map_or("", |n| n.source.as_str());
    let new = crate::deployment::render::conf_text(
        m.role,
        &m.program,
        source,
        tree.name(),
        version,
        &conf,
    );
    if new != text {
        crate::deployment::write::write_atomic(
            path,
            new.as_bytes(),
            crate::deployment::render::PUBLIC,
        )?;
    }
    Ok(())
}

/// Every other member of `m`'s set answers: stopping `m` then leaves one member down at most.
/// (The plan restarts members that are down first; one that went down since is named.)
fn others_up(tree: &Tree, m: &Node, rs: &str, access: &Access) -> anyhow::Result<()> {
    let down: Vec<String> = set_members(tree, rs)
        .into_iter()
        .filter(|o| o.program != m.program)
        .filter_map(|o| {
            mongo::hello(&o.host, o.port, access)
                .err()
                .map(|e| format!("{} ({e})", o.address()))
        })
        .collect();
    if !down.is_empty() {
        bail!(
            "{} of {rs} does not answer: stopping {} ({}) now would leave two members of {rs} down; nothing was changed: start it (`mup cluster start {} -N <host:port>`) and run the command again",
            down.join(", "),
            m.program,
            m.address(),
            tree.name()
        );
    }
    Ok(())
}

/// Until `m`, alone in its set, is its primary again, bounded by [`MEMBER_WAIT`].
fn wait_primary(m: &Node, access: &Access) -> anyhow::Result<()> {
    let began = Instant::now();
    loop {
        let last = match mongo::hello(&m.host, m.port, access) {
            Ok(h) if h.writable_primary => return Ok(()),
            Ok(h) => format!(
                "hello says isWritablePrimary false, primary {:?}",
                h.primary
            ),
            Err(e) => e.to_string(),
        };
        if began.elapsed() >= MEMBER_WAIT {
            bail!(
                "{} ({}) is not the primary of its one-member set after {} s: {last}",
                m.program,
                m.address(),
                MEMBER_WAIT.as_secs()
            );
        }
        std::thread::sleep(POLL);
    }
}

/// Until `m` is a caught-up SECONDARY, bounded by [`MEMBER_WAIT`].
fn wait_secondary(m: &Node, access: &Access) -> anyhow::Result<()> {
    let began = Instant::now();
    loop {
        let last = match survey::caught_up_secondary(m, access) {
            Ok(()) => return Ok(()),
            Err(why) => why,
        };
        if began.elapsed() >= MEMBER_WAIT {
            bail!(
                "{} ({}) is not a caught-up SECONDARY of {} after {} s: {last}",
                m.program,
                m.address(),
                m.replica_set.as_deref().unwrap_or("its set"),
                MEMBER_WAIT.as_secs()
            );
        }
        std::thread::sleep(POLL);
    }
}

fn set_members<'a>(tree: &'a Tree, set: &str) -> Vec<&'a Node> {
    tree.members
        .iter()
        .filter(|m| m.replica_set.as_deref() == Some(set) && m.role != Role::Mongos)
        .collect()
}

/// `replSetStepDown` on `primary` (unless another member already is primary), then wait
/// until a member other than it is primary.
fn step_down(tree: &Tree, set: &str, primary: &str, access: &Access) -> anyhow::Result<()> {
    let members = set_members(tree, set);
    let old = members
        .iter()
        .find(|m| m.is(primary))
        .with_context(|| format!("no member {primary} in set {set}"))?;
    let now = survey::primary_of(&members, access);
    if now.as_deref().is_some_and(|p| !old.is(p)) {
        return Ok(()); // stepped down before (an interrupted upgrade)
    }
    let cmd = doc! {"replSetStepDown": STEP_DOWN_SECS, "secondaryCatchUpPeriodSecs": CATCH_UP_SECS};
    mongo::command(&old.host, old.port, access, cmd).with_context(|| {
        format!(
            "replSetStepDown on {} ({primary}), the primary of {set}",
            old.program
        )
    })?;
    let began = Instant::now();
    loop {
        let now = survey::primary_of(&members, access);
        if now.as_deref().is_some_and(|p| !old.is(p)) {
            return Ok(());
        }
        if began.elapsed() >= MEMBER_WAIT {
            bail!(
                "{set} has no new primary {} s after {primary} stepped down: the members name {}",
                MEMBER_WAIT.as_secs(),
                now.map_or("no primary".to_string(), |p| format!("{p} as primary"))
            );
        }
        std::thread::sleep(POLL);
    }
}

/// meta.yaml records the new version and binaries (written atomically).
fn record(cx: &Cx, version: &str) -> anyhow::Result<()> {
    let mut meta = cx.tree.meta.clone();
    meta.version = version.to_string();
    meta.bin_path = cx.bin_path.display().to_string();
    crate::deployment::write::write_atomic(
        &cx.tree.layout.meta_file(),
        meta.to_yaml().as_bytes(),
        crate::deployment::render::PRIVATE,
    )
}

/// `setFeatureCompatibilityVersion` with `confirm: true` (required since 7.0): on a router
/// for a sharded cluster (the config servers set it on every shard), else on each set's
/// primary and each standalone node.
fn set_fcv(tree: &Tree, fcv: &str, access: &Access) -> anyhow::Result<()> {
    let cmd =
        || doc! {"setFeatureCompatibilityVersion": fcv, "confirm": true, "maxTimeMS": COMMAND_MS};
    if let Some(r) = tree.members.iter().find(|m| m.role == Role::Mongos) {
        return admin(&r.address(), cmd(), access);
    }
    let mut sets: Vec<&str> = Vec::new();
    for m in &tree.members {
        match m.replica_set.as_deref() {
            Some(rs) if !sets.contains(&rs) => sets.push(rs),
            Some(_) => {}
            None => admin(&m.address(), cmd(), access)?,
        }
    }
    for rs in sets {
        let primary = survey::primary_of(&set_members(tree, rs), access).with_context(|| {
            format!("{rs} has no primary to set featureCompatibilityVersion on")
        })?;
        admin(&primary, cmd(), access)?;
    }
    Ok(())
}
