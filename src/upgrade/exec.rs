//! Running one upgrade step against the cluster: supervisord stops and starts only the node
//! being upgraded (ctl's ordered stop and start of a one-node selection: no group is
//! updated), the node's launcher (and, where the version changes an option, its config file)
//! is rewritten atomically in between, and every wait on a server is bounded, its error
//! naming the node and the server's last answer.

use super::plan::Step;
use super::survey;
use crate::ctl::{ops, Member, Selection, Tree};
use crate::model::Role;
use crate::mongo;
use crate::supervisor::Client;
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
}

/// Runs one step.
pub(crate) fn run(cx: &Cx, step: &Step) -> anyhow::Result<()> {
    match step {
        Step::StopBalancer { router } => {
            admin(router, doc! {"balancerStop": 1, "maxTimeMS": COMMAND_MS})
        }
        Step::StartBalancer { router } => {
            admin(router, doc! {"balancerStart": 1, "maxTimeMS": COMMAND_MS})
        }
        Step::Restart {
            node,
            version,
            alone,
        } => restart(cx, &node.program, version, *alone),
        Step::Handover { set, primary } => step_down(cx.tree, set, primary),
        Step::Record { version } => record(cx, version),
        Step::SetFcv { fcv } => set_fcv(cx.tree, fcv),
    }
}

/// One command on the admin database of `address` (`host:port`).
fn admin(address: &str, cmd: mongodb::bson::Document) -> anyhow::Result<()> {
    let (host, port) = split(address)?;
    let name = cmd.keys().next().cloned().unwrap_or_default();
    mongo::command(host, port, cmd)
        .map(|_| ())
        .with_context(|| format!("{name} on {address}"))
}

fn split(address: &str) -> anyhow::Result<(&str, u16)> {
    let (host, port) = address
        .rsplit_once(':')
        .context("an address is host:port")?;
    Ok((host, port.parse().context("an address ends with a port")?))
}

fn member<'a>(tree: &'a Tree, program: &str) -> anyhow::Result<&'a Member> {
    tree.members
        .iter()
        .find(|m| m.program == program)
        .with_context(|| format!("no node {program} in cluster {}", tree.name()))
}

/// The launcher supervisord runs for `m` (`conf/<host>-<port>/mongod`, beside its config).
pub(crate) fn launcher(m: &Member) -> std::path::PathBuf {
    crate::layout::launcher(
        m.config_file.parent().unwrap_or(Path::new("/")),
        m.role.binary(),
    )
}

/// Stop `program`, point its launcher at the new binaries, start it, and wait until it runs
/// `version` (and, for a set member, until it is a caught-up SECONDARY).
fn restart(cx: &Cx, program: &str, version: &str, alone: bool) -> anyhow::Result<()> {
    let m = member(cx.tree, program)?;
    let member_of = m
        .replica_set
        .as_deref()
        .filter(|_| m.role != Role::Mongos && !alone);
    if let Some(rs) = member_of {
        // A member that is up: not the primary (the plan steps it down first), and stopping it
        // must not make it the second member of its set down.
        match mongo::hello(&m.host, m.port) {
            Ok(h) if h.writable_primary => bail!(
                "{program} ({}) is the primary of {rs} now, which it was not when the plan was made: nothing was changed; run the command again",
                m.address()
            ),
            Ok(_) => others_up(cx.tree, m, rs)?,
            Err(_) => {} // down already: starting it adds no member down
        }
    }
    ops::stop(cx.tree, cx.client, &[m as &dyn crate::ctl::Program])?;
    let text = crate::render::launcher(cx.bin_path, m.role);
    crate::tree::write_atomic(&launcher(m), text.as_bytes(), crate::render::LAUNCHER)?;
    rewrite_conf(cx.tree, m, version)?;
    let one = Selection {
        nodes: vec![m.clone()],
        monitors: Vec::new(),
    };
    ops::start(cx.tree, cx.client, &one, false)?;
    let now = survey::version(m).map_err(|why| {
        anyhow::anyhow!(
            "{program} ({}) was started but buildInfo fails: {why}",
            m.address()
        )
    })?;
    if now != version {
        bail!(
            "{program} ({}) runs {now} after its restart, not {version}: its launcher {} is not what supervisord runs",
            m.address(),
            launcher(m).display()
        );
    }
    if alone {
        wait_primary(m)?;
    } else if m.replica_set.is_some() && m.role != Role::Mongos {
        wait_secondary(m)?;
    }
    Ok(())
}

/// `m`'s config document as gen writes it for `version`: the options that depend on the
/// version set for it (`mongod_conf::set_version_options`), the header naming it. Written
/// (atomically) only when it differs.
fn rewrite_conf(tree: &Tree, m: &Member, version: &str) -> anyhow::Result<()> {
    let path = &m.config_file;
    let shown = path.display().to_string();
    let text = crate::yaml::read(path, &shown)?;
    let mut conf: crate::yaml::Mapping = crate::yaml::parse(&text, &shown)?;
    let v = crate::model::Version::parse(version)
        .with_context(|| format!("{version:?} is not a version"))?;
    crate::mongod_conf::set_version_options(&mut conf, v);
    let source = tree
        .meta
        .nodes
        .iter()
        .find(|n| n.supervisor_name == m.program)
        .map_or("", |n| n.source.as_str());
    let new = crate::render::conf_text(m.role, &m.program, source, tree.name(), version, &conf);
    if new != text {
        crate::tree::write_atomic(path, new.as_bytes(), crate::render::PUBLIC)?;
    }
    Ok(())
}

/// Every other member of `m`'s set answers: stopping `m` then leaves one member down at most.
/// (The plan restarts members that are down first; one that went down since is named.)
fn others_up(tree: &Tree, m: &Member, rs: &str) -> anyhow::Result<()> {
    let down: Vec<String> = set_members(tree, rs)
        .into_iter()
        .filter(|o| o.program != m.program)
        .filter_map(|o| {
            mongo::hello(&o.host, o.port)
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
fn wait_primary(m: &Member) -> anyhow::Result<()> {
    let began = Instant::now();
    loop {
        let last = match mongo::hello(&m.host, m.port) {
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
fn wait_secondary(m: &Member) -> anyhow::Result<()> {
    let began = Instant::now();
    loop {
        let last = match survey::caught_up_secondary(m) {
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

fn set_members<'a>(tree: &'a Tree, set: &str) -> Vec<&'a Member> {
    tree.members
        .iter()
        .filter(|m| m.replica_set.as_deref() == Some(set) && m.role != Role::Mongos)
        .collect()
}

/// `replSetStepDown` on `primary` (unless another member already is primary), then wait
/// until a member other than it is primary.
fn step_down(tree: &Tree, set: &str, primary: &str) -> anyhow::Result<()> {
    let members = set_members(tree, set);
    let old = members
        .iter()
        .find(|m| m.is(primary))
        .with_context(|| format!("no member {primary} in set {set}"))?;
    let now = survey::primary_of(&members);
    if now.as_deref().is_some_and(|p| !old.is(p)) {
        return Ok(()); // stepped down before (an interrupted upgrade)
    }
    let cmd = doc! {"replSetStepDown": STEP_DOWN_SECS, "secondaryCatchUpPeriodSecs": CATCH_UP_SECS};
    mongo::command(&old.host, old.port, cmd).with_context(|| {
        format!(
            "replSetStepDown on {} ({primary}), the primary of {set}",
            old.program
        )
    })?;
    let began = Instant::now();
    loop {
        let now = survey::primary_of(&members);
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
    crate::tree::write_atomic(
        &cx.tree.layout.meta_file(),
        meta.to_yaml().as_bytes(),
        crate::render::PRIVATE,
    )
}

/// `setFeatureCompatibilityVersion` with `confirm: true` (required since 7.0): on a router
/// for a sharded cluster (the config servers set it on every shard), else on each set's
/// primary and each standalone node.
fn set_fcv(tree: &Tree, fcv: &str) -> anyhow::Result<()> {
    let cmd =
        || doc! {"setFeatureCompatibilityVersion": fcv, "confirm": true, "maxTimeMS": COMMAND_MS};
    if let Some(r) = tree.members.iter().find(|m| m.role == Role::Mongos) {
        return admin(&r.address(), cmd());
    }
    let mut sets: Vec<&str> = Vec::new();
    for m in &tree.members {
        match m.replica_set.as_deref() {
            Some(rs) if !sets.contains(&rs) => sets.push(rs),
            Some(_) => {}
            None => admin(&m.address(), cmd())?,
        }
    }
    for rs in sets {
        let primary = survey::primary_of(&set_members(tree, rs)).with_context(|| {
            format!("{rs} has no primary to set featureCompatibilityVersion on")
        })?;
        admin(&primary, cmd())?;
    }
    Ok(())
}
