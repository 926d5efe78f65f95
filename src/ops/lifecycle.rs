//! Ordered start and stop. Start goes monitoring → config servers → mongods → routers: within a
//! tier every process is started at once (one multicall of `startProcess(name, false)`), and
//! the next tier begins as soon as each of the previous tier's nodes answers `hello` from the
//! process supervisord started for it ([`crate::ops::starting`]); the command returns once the
//! last tier answers. Stop goes the other way, each tier at once, the monitoring programs
//! last.

use crate::deployment::log_tail;
use crate::deployment::model::Role;
use crate::deployment::owner;
use crate::deployment::Node;
use crate::deployment::Program;
use crate::deployment::Selection;
use crate::deployment::Tree;
use crate::deployment::LAST_RANK;
use crate::ops::initiate;
use crate::ops::ordered::{self, StartStep};
use crate::ops::starting;
use crate::ops::steps;
use crate::supervisor::{fault, state, Client, ProcessInfo};
use crate::system::procs;
use crate::ui::Progress;
use crate::ui::Ui;
use anyhow::bail;
use dxr::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a tier may take to accept connections / reach RUNNING (mongod may recover a
/// large journal before it listens).
const START_LIMIT: Duration = Duration::from_secs(300);
/// stopwaitsecs (30 s, then SIGKILL) plus the daemon's tick.
const STOP_LIMIT: Duration = Duration::from_secs(45);
/// Stopping is bounded by how fast processes exit (tens of ms), so poll closely: each
/// getAllProcessInfo costs the daemon ~1 ms for a dozen programs and wakes its main loop.
const STOP_POLL: Duration = Duration::from_millis(5);
/// Waiting for a pid to exit is a local /proc read: poll it closely.
const EXIT_POLL: Duration = Duration::from_millis(1);

pub(super) fn infos(tree: &Tree, client: &Client) -> anyhow::Result<BTreeMap<String, ProcessInfo>> {
    Ok(client
        .get_all_process_info()
        .map_err(|e| tree.explain(e))?
        .into_iter()
        .map(|p| (p.qualified(), p))
        .collect())
}

pub(super) fn tier_name(role: Role) -> &'static str {
    match role {
        Role::ConfigServer => "config servers",
        Role::Mongod => "mongod",
        Role::Mongos => "mongos routers",
    }
}

/// One `system.multicall` of `method(name, false)` for each program (never a waiting call
/// after another: those run one by one, docs/supervisord.md §5).
pub(super) fn call_each(
    tree: &Tree,
    client: &Client,
    method: &str,
    members: &[&dyn Program],
) -> anyhow::Result<Vec<Result<(), crate::supervisor::Error>>> {
    if members.is_empty() {
        return Ok(Vec::new());
    }
    let calls: Vec<(&str, Vec<Value>)> = members
        .iter()
        .map(|m| {
            (
                method,
                vec![Value::String(m.qualified()), Value::Boolean(false)],
            )
        })
        .collect();
    Ok(client
        .multicall(&calls)
        .map_err(|e| tree.explain(e))?
        .into_iter()
        .map(|r| r.map(|_| ()))
        .collect())
}

pub(super) fn failure(client: &Client, m: &dyn Program, why: &str) -> String {
    let address = m.address();
    let at = if address.is_empty() {
        String::new()
    } else {
        format!(" ({address})")
    };
    format!(
        "{}{at} {why}; last lines of {}:\n{}",
        m.name(),
        m.log_file().display(),
        indent(&log_tail(client, m, 10))
    )
}

pub(super) fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Starts `selection` in order ([`ordered::start_plan`]): the monitoring programs first,
/// then the nodes tier by tier. A tier is ready when each of its nodes answers `hello` from
/// the process supervisord started for it; the next tier starts then, and the command returns
/// once the last tier is ready — without sitting out supervisord's startsecs (status shows
/// STARTING until supervisord calls it RUNNING). It fails naming each node that could not
/// start, never answered, or whose port another process answers, with the end of its log;
/// and, at the last look before returning, each node that answered but is no longer the
/// process supervisord runs. With `init` (a whole-cluster start), the cluster is made ready
/// between tiers.
pub(crate) fn start(
    ui: &Ui,
    tree: &Tree,
    client: &Client,
    selection: &Selection,
    init: bool,
) -> anyhow::Result<()> {
    let plan = ordered::start_plan(tree.name(), selection, &tree.members, init);
    let progress = ui.progress(selection.len());
    let mut answered: Vec<(&Node, u32)> = Vec::new();
    let result = steps::execute(&plan, &progress, |step| {
        run_start_step(ui, tree, client, selection, step, &progress, &mut answered)
    });
    progress.finish();
    result?;
    // Only the monitoring programs that were part of the selection are counted.
    let monitors = match selection.monitors.len() {
        0 => String::new(),
        n => format!(", {n} monitoring program(s) RUNNING"),
    };
    outln!(
        ui,
        "{} node(s) answer{monitors} ({:.1} s)",
        answered.len(),
        progress.elapsed()
    )?;
    Ok(())
}

/// What `--dry-run` prints for a start: the plan; nothing is asked of the daemon.
pub(crate) fn start_preview(tree: &Tree, selection: &Selection, init: bool) -> String {
    ordered::start_plan(tree.name(), selection, &tree.members, init).render()
}

/// What `--dry-run` prints for a stop.
pub(crate) fn stop_preview(tree: &Tree, programs: &[&dyn Program]) -> String {
    ordered::stop_plan(tree.name(), programs).render()
}

fn by_name<'a>(selection: &'a Selection, programs: &[String]) -> Vec<&'a Node> {
    selection
        .nodes
        .iter()
        .filter(|m| programs.contains(&m.program))
        .collect()
}

fn run_start_step<'a>(
    ui: &Ui,
    tree: &Tree,
    client: &Client,
    selection: &'a Selection,
    step: &StartStep,
    progress: &Progress,
    answered: &mut Vec<(&'a Node, u32)>,
) -> anyhow::Result<()> {
    match step {
        StartStep::Monitors(_) => starting::start_monitors(ui, tree, client, &selection.monitors),
        StartStep::Tier { role, programs } => {
            let tier = by_name(selection, programs);
            start_tier(tree, client, *role, &tier)?;
            let limit = if *role == Role::Mongos {
                initiate::MONGOS_LIMIT
            } else {
                START_LIMIT
            };
            answered.extend(starting::wait_answering(
                tree, client, &tier, progress, limit,
            )?);
            progress.say(format!(
                "{} answer: {} ({:.1} s)",
                tier_name(*role),
                programs.join(" "),
                progress.elapsed()
            ));
            Ok(())
        }
        StartStep::Initiate { role, .. } => {
            let tier: Vec<&Node> = selection.nodes.iter().filter(|m| m.role == *role).collect();
            starting::make_ready(tree, client, &tree.members, *role, &tier, progress)
        }
        StartStep::AddShards { router, .. } => {
            let routers = by_name(selection, std::slice::from_ref(router));
            starting::make_ready(
                tree,
                client,
                &tree.members,
                Role::Mongos,
                &routers,
                progress,
            )
        }
        StartStep::Settle { .. } => {
            progress.message("monitoring programs".into());
            starting::wait_monitors(ui, tree, client, &selection.monitors, progress, START_LIMIT)?;
            starting::still_up(tree, client, answered)
        }
    }
}

/// Starts the nodes of one tier that are not running, at once (a BACKOFF one is stopped
/// first); refuses when something else holds a node's port.
fn start_tier(tree: &Tree, client: &Client, role: Role, tier: &[&Node]) -> anyhow::Result<()> {
    let now = infos(tree, client)?;
    let st = |m: &Node| {
        now.get(&m.qualified())
            .map(|p| p.state)
            .unwrap_or(state::STOPPED)
    };
    // A BACKOFF process answers ALREADY_STARTED: stop it first (docs/supervisord.md §5).
    let backoff: Vec<&dyn Program> = tier
        .iter()
        .filter(|m| st(m) == state::BACKOFF)
        .map(|m| *m as &dyn Program)
        .collect();
    if !backoff.is_empty() {
        stop_tier(tree, client, &backoff)?;
    }
    let idle: Vec<&Node> = tier
        .iter()
        .copied()
        .filter(|m| !matches!(st(m), state::RUNNING | state::STARTING))
        .collect();
    // Something else on a node's port would make the start fail with exit 48.
    let held: Vec<String> = idle
        .iter()
        .filter_map(|m| match owner::port_holder(m) {
            owner::Holder::Free => None,
            owner::Holder::Node(pid) => Some(format!(
                "{} (port {}): its own process, pid {pid}, runs without supervisord; `mup ctl --dir {} up --adopt` stops it",
                m.program,
                m.port,
                tree.layout.root().display()
            )),
            owner::Holder::Foreign(who) => Some(format!(
                "{} (port {}): held by {who}, which is not this cluster's node; stop it yourself",
                m.program, m.port
            )),
        })
        .collect();
    if !held.is_empty() {
        bail!(
            "cluster {}: node ports are already in use:\n  {}",
            tree.name(),
            held.join("\n  ")
        );
    }
    let idle_programs: Vec<&dyn Program> = idle.iter().map(|m| *m as &dyn Program).collect();
    let mut failures = Vec::new();
    for (m, r) in idle_programs.iter().zip(call_each(
        tree,
        client,
        "supervisor.startProcess",
        &idle_programs,
    )?) {
        match r {
            Ok(()) => {}
            Err(e) if e.fault_code() == Some(fault::ALREADY_STARTED) => {}
            Err(e) if e.fault_code() == Some(fault::BAD_NAME) => return Err(tree.explain(e)),
            Err(e) => failures.push(failure(client, *m, &format!("could not be started ({e})"))),
        }
    }
    if !failures.is_empty() {
        bail!(
            "cluster {}: {} failed to start:\n{}",
            tree.name(),
            tier_name(role),
            failures.join("\n")
        );
    }
    Ok(())
}

/// Stops `programs` in order: routers, mongods, config servers, then everything else (the
/// monitoring programs last), each rank at once; idempotent. Before the event listener
/// stops, it is given time to record the stops it has not written yet.
pub(crate) fn stop(
    ui: &Ui,
    tree: &Tree,
    client: &Client,
    programs: &[&dyn Program],
) -> anyhow::Result<()> {
    let began = Instant::now();
    let plan = ordered::stop_plan(tree.name(), programs);
    // The pids let each rank wait for its processes' exit locally (/proc), without a round
    // trip to the daemon per poll; supervisord's view is checked once, at the end.
    let pids: BTreeMap<String, u32> = infos(tree, client)?
        .into_iter()
        .filter(|(_, p)| p.pid > 0)
        .map(|(q, p)| (q, p.pid))
        .collect();
    let mut events = crate::monitor::Tail::at_end(tree.layout.events_log());
    let mut stopped: Vec<String> = Vec::new();
    steps::execute(&plan, &steps::Quiet, |step| {
        let tier: Vec<&dyn Program> = programs
            .iter()
            .copied()
            .filter(|p| p.stop_rank() == step.rank)
            .collect();
        // The event listener's rank: let it record what stopped before it stops.
        if step.rank == LAST_RANK {
            await_recorded(&mut events, &stopped);
        }
        send_stops(tree, client, &tier)?;
        let tier_pids: Vec<u32> = tier
            .iter()
            .filter_map(|m| pids.get(&m.qualified()).copied())
            .collect();
        stopped.extend(
            tier.iter()
                .filter(|m| pids.contains_key(&m.qualified()))
                .map(|m| m.name().to_string()),
        );
        let start = Instant::now();
        while tier_pids.iter().any(|p| procs::alive(*p)) && start.elapsed() < STOP_LIMIT {
            std::thread::sleep(EXIT_POLL);
        }
        Ok(())
    })?;
    wait_stopped(tree, client, programs)?;
    outln!(
        ui,
        "{} program(s) stopped ({:.1} s)",
        programs.len(),
        began.elapsed().as_secs_f64()
    )?;
    Ok(())
}

/// How long a stop waits for the event listener to record the stops before it stops it.
const RECORD_LIMIT: Duration = Duration::from_secs(3);

/// Waits (bounded) until events.log holds the end of each of `programs` (STOPPED, EXITED or
/// FATAL): supervisord hands events to the listener one at a time, after the transition.
fn await_recorded(events: &mut crate::monitor::Tail, programs: &[String]) {
    let mut pending: Vec<&String> = programs.iter().collect();
    let start = Instant::now();
    while !pending.is_empty() && start.elapsed() < RECORD_LIMIT {
        for ev in events.read_new() {
            if matches!(ev.to.as_str(), "STOPPED" | "EXITED" | "FATAL") {
                pending.retain(|p| **p != ev.program);
            }
        }
        if !pending.is_empty() {
            std::thread::sleep(STOP_POLL);
        }
    }
}

/// Stops one tier and waits until supervisord reports it stopped.
fn stop_tier(tree: &Tree, client: &Client, tier: &[&dyn Program]) -> anyhow::Result<()> {
    send_stops(tree, client, tier)?;
    wait_stopped(tree, client, tier)
}

/// One multicall of `stopProcess(name, false)`. No state lookup first: a stopped program
/// answers NOT_RUNNING, which is success here.
fn send_stops(tree: &Tree, client: &Client, tier: &[&dyn Program]) -> anyhow::Result<()> {
    for (m, r) in tier
        .iter()
        .zip(call_each(tree, client, "supervisor.stopProcess", tier)?)
    {
        match r {
            Ok(()) => {}
            Err(e) if e.fault_code() == Some(fault::NOT_RUNNING) => {}
            Err(e) => bail!("cluster {}: cannot stop {}: {e}", tree.name(), m.name()),
        }
    }
    Ok(())
}

/// Polls the daemon until none of `programs` is running, starting, stopping or backing off.
fn wait_stopped(tree: &Tree, client: &Client, programs: &[&dyn Program]) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let now = infos(tree, client)?;
        let busy: Vec<&str> = programs
            .iter()
            .filter(|m| {
                now.get(&m.qualified()).is_some_and(|p| {
                    matches!(
                        p.state,
                        state::RUNNING | state::STARTING | state::STOPPING | state::BACKOFF
                    )
                })
            })
            .map(|m| m.name())
            .collect();
        if busy.is_empty() {
            return Ok(());
        }
        if start.elapsed() > STOP_LIMIT {
            bail!(
                "cluster {}: still stopping after {} s: {}",
                tree.name(),
                STOP_LIMIT.as_secs(),
                busy.join(", ")
            );
        }
        std::thread::sleep(STOP_POLL);
    }
}
