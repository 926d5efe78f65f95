//! Ordered start and stop. Start goes monitoring → config servers → mongods → routers: within a
//! tier every process is started at once (one multicall of `startProcess(name, false)`), and
//! the next tier begins as soon as the previous tier's ports accept TCP connections; the
//! command returns when every target is RUNNING. Stop goes the other way, each tier at once,
//! the monitoring programs last.

use super::{log_tail, owner, procs, Member, Monitor, Program, Selection, Tree, LAST_RANK};
use crate::init;
use crate::model::Role;
use crate::supervisor::{fault, state, Client, ProcessInfo};
use anyhow::bail;
use dxr::Value;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// How long a tier may take to accept connections / reach RUNNING (mongod may recover a
/// large journal before it listens).
const START_LIMIT: Duration = Duration::from_secs(300);
/// stopwaitsecs (30 s, then SIGKILL) plus the daemon's tick.
const STOP_LIMIT: Duration = Duration::from_secs(45);
const POLL: Duration = Duration::from_millis(50);
/// Stopping is bounded by how fast processes exit (tens of ms), so poll closely: each
/// getAllProcessInfo costs the daemon ~1 ms for a dozen programs and wakes its main loop.
const STOP_POLL: Duration = Duration::from_millis(5);
/// Waiting for a pid to exit is a local /proc read: poll it closely.
const EXIT_POLL: Duration = Duration::from_millis(1);

/// A progress line on a terminal; nothing when stdout is piped.
fn progress(len: usize) -> ProgressBar {
    if !std::io::stdout().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{pos}/{len}] {msg}")
            .expect("static template parses"),
    );
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

fn infos(tree: &Tree, client: &Client) -> anyhow::Result<BTreeMap<String, ProcessInfo>> {
    Ok(client
        .get_all_process_info()
        .map_err(|e| tree.explain(e))?
        .into_iter()
        .map(|p| (p.qualified(), p))
        .collect())
}

fn tier_name(role: Role) -> &'static str {
    match role {
        Role::ConfigServer => "config servers",
        Role::Mongod => "mongod",
        Role::Mongos => "mongos routers",
    }
}

/// One `system.multicall` of `method(name, false)` for each program (never a waiting call
/// after another: those run one by one, docs/supervisord.md §5).
fn call_each(
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

fn failure(client: &Client, m: &dyn Program, why: &str) -> String {
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

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Prints a progress line: on a terminal above the progress bar, when piped only with
/// `--verbose`.
fn say(bar: &ProgressBar, line: String) {
    if std::io::stdout().is_terminal() {
        bar.println(line);
    } else if crate::verbose() {
        // A progress line: a closed pipe is noticed by the command's next real output.
        let _ = outln!("{line}");
    }
}

/// Starts `selection` in order: the monitoring programs first (so that the event listener
/// sees every node start), then the nodes tier by tier; returns when all are RUNNING, or
/// fails naming each process that could not start, with the end of its log. With `init` (a
/// whole-cluster start), the cluster is made ready between tiers: the config servers' set is
/// initiated and has a primary before the shards start, every set has a primary before the
/// routers start (a mongos listens only then), and every shard is added once a router
/// listens.
pub(crate) fn start(
    tree: &Tree,
    client: &Client,
    selection: &Selection,
    init: bool,
) -> anyhow::Result<()> {
    let members = &selection.nodes;
    let bar = progress(selection.len());
    let began = Instant::now();
    start_monitors(tree, client, &selection.monitors)?;
    let mut started: Vec<&Member> = Vec::new();
    for role in Role::TIERS {
        let tier: Vec<&Member> = members.iter().filter(|m| m.role == role).collect();
        if tier.is_empty() {
            continue;
        }
        bar.set_message(format!("starting {}", tier_name(role)));
        let now = infos(tree, client)?;
        let st = |m: &Member| {
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
        let idle: Vec<&Member> = tier
            .iter()
            .copied()
            .filter(|m| !matches!(st(m), state::RUNNING | state::STARTING))
            .collect();
        // Something else on a node's port would make the start fail with exit 48 and look
        // ready to the port check below.
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
                Err(e) => {
                    failures.push(failure(client, *m, &format!("could not be started ({e})")))
                }
            }
        }
        if failures.is_empty() {
            let limit = if role == Role::Mongos {
                init::MONGOS_LIMIT
            } else {
                START_LIMIT
            };
            failures = wait_tier(tree, client, &tier, &bar, limit, |p, m| {
                procs::listening(&m.host, m.port)
                    && matches!(p.state, state::STARTING | state::RUNNING)
            })?;
        }
        if !failures.is_empty() {
            bar.finish_and_clear();
            bail!(
                "cluster {}: {} failed to start:\n{}",
                tree.name(),
                tier_name(role),
                failures.join("\n")
            );
        }
        say(
            &bar,
            format!(
                "{} accept connections: {} ({:.1} s)",
                tier_name(role),
                tier.iter()
                    .map(|m| m.program.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                began.elapsed().as_secs_f64()
            ),
        );
        if init {
            if let Err(e) = make_ready(tree, client, members, role, &tier, &bar) {
                bar.finish_and_clear();
                return Err(e);
            }
        }
        started.extend(tier);
    }
    bar.set_message("waiting for RUNNING (startsecs)");
    bar.set_position(0);
    let monitors: Vec<&Monitor> = selection.monitors.iter().collect();
    let monitoring = wait_tier(tree, client, &monitors, &bar, START_LIMIT, |p, _| {
        p.state == state::RUNNING
    })?;
    let failures = wait_tier(tree, client, &started, &bar, START_LIMIT, |p, _| {
        p.state == state::RUNNING
    })?;
    bar.finish_and_clear();
    warn_monitoring(tree, &monitoring);
    if !failures.is_empty() {
        bail!(
            "cluster {}: failed to start:\n{}",
            tree.name(),
            failures.join("\n")
        );
    }
    outln!(
        "{} program(s) RUNNING ({:.1} s)",
        selection.len(),
        began.elapsed().as_secs_f64()
    )?;
    Ok(())
}

/// Starts the monitoring programs that are not running, without waiting (they are waited for
/// at the end). One that cannot start is a warning, not a failure of the start.
fn start_monitors(tree: &Tree, client: &Client, monitors: &[Monitor]) -> anyhow::Result<()> {
    if monitors.is_empty() {
        return Ok(());
    }
    let now = infos(tree, client)?;
    let idle: Vec<&dyn Program> = monitors
        .iter()
        .filter(|m| {
            !now.get(&m.qualified())
                .is_some_and(|p| matches!(p.state, state::RUNNING | state::STARTING))
        })
        .map(|m| m as &dyn Program)
        .collect();
    let mut failures = Vec::new();
    for (m, r) in idle
        .iter()
        .zip(call_each(tree, client, "supervisor.startProcess", &idle)?)
    {
        match r {
            Ok(()) => {}
            Err(e) if e.fault_code() == Some(fault::ALREADY_STARTED) => {}
            Err(e) => failures.push(failure(client, *m, &format!("could not be started ({e})"))),
        }
    }
    warn_monitoring(tree, &failures);
    Ok(())
}

/// A monitoring program that does not run is said, and the start goes on: the nodes do not
/// depend on it.
fn warn_monitoring(tree: &Tree, failures: &[String]) {
    if failures.is_empty() {
        return;
    }
    eprintln!(
        "warning: cluster {}: monitoring is not running (the nodes are not affected):\n{}\n(`mup gen --check` tells whether the tree names another mup binary; `mup gen` then `mup ctl reload` fixes that)",
        tree.name(),
        failures.join("\n")
    );
}

/// The initiation step after `role`'s tier accepts connections: its replica sets initiated
/// with a primary (config servers, shards), or every shard added (routers).
fn make_ready(
    tree: &Tree,
    client: &Client,
    members: &[Member],
    role: Role,
    tier: &[&Member],
    bar: &ProgressBar,
) -> anyhow::Result<()> {
    let explain = |f: init::Failure| -> anyhow::Error {
        match &f.member {
            Some(m) => anyhow::anyhow!(
                "cluster {}: {f}; last lines of {}:\n{}",
                tree.name(),
                m.log_file.display(),
                indent(&log_tail(client, m.as_ref(), 10))
            ),
            None => anyhow::anyhow!("cluster {}: {f}", tree.name()),
        }
    };
    if role == Role::Mongos {
        let shards = init::sets(
            &members
                .iter()
                .filter(|m| m.role == Role::Mongod)
                .cloned()
                .collect::<Vec<_>>(),
        );
        let Some(router) = tier.first() else {
            return Ok(());
        };
        for (name, added) in init::add_shards(router, &shards).map_err(explain)? {
            let line = if added {
                format!("shard {name} added")
            } else {
                format!("shard {name}: already added")
            };
            say(bar, line);
        }
        return Ok(());
    }
    let owned: Vec<Member> = tier.iter().map(|m| (*m).clone()).collect();
    bar.set_message(format!("initiating the {} replica sets", tier_name(role)));
    let mut failures = Vec::new();
    for (set, result, took) in init::initiate_all(&init::sets(&owned)) {
        match result {
            Ok(init::Outcome::Initiated { primary }) => say(
                bar,
                format!(
                    "{}: initiated, primary {primary} ({:.1} s)",
                    set.name,
                    took.as_secs_f64()
                ),
            ),
            Ok(init::Outcome::AlreadyInitiated { primary }) => say(
                bar,
                format!("{}: already initiated, primary {primary}", set.name),
            ),
            Err(f) => failures.push(explain(f).to_string()),
        }
    }
    if !failures.is_empty() {
        bail!("{}", failures.join("\n"));
    }
    Ok(())
}

/// Polls until every member satisfies `ready`, or has failed for good (FATAL, EXITED, or
/// STOPPED behind our back). BACKOFF is waited out: supervisord retries startretries times.
fn wait_tier<P: Program>(
    tree: &Tree,
    client: &Client,
    tier: &[&P],
    bar: &ProgressBar,
    limit: Duration,
    ready: impl Fn(&ProcessInfo, &P) -> bool,
) -> anyhow::Result<Vec<String>> {
    let start = Instant::now();
    let mut pending: Vec<&P> = tier.to_vec();
    let mut failures = Vec::new();
    while !pending.is_empty() {
        let now = infos(tree, client)?;
        let mut still = Vec::new();
        for m in pending {
            let Some(p) = now.get(&m.qualified()) else {
                failures.push(format!("{} is no longer known to supervisord", m.name()));
                continue;
            };
            if ready(p, m) {
                bar.inc(1);
            } else if matches!(p.state, state::FATAL | state::EXITED | state::STOPPED) {
                let why = if p.spawnerr.is_empty() {
                    p.statename.clone()
                } else {
                    format!("{}: {}", p.statename, p.spawnerr)
                };
                failures.push(failure(client, m, &format!("went {why}")));
            } else {
                still.push(m);
            }
        }
        pending = still;
        if !pending.is_empty() {
            if start.elapsed() > limit {
                for m in &pending {
                    let why = if m.qualified().starts_with(Role::Mongos.group()) {
                        " (a mongos accepts connections only once its config servers' replica set has a primary)"
                    } else {
                        ""
                    };
                    failures.push(failure(
                        client,
                        *m,
                        &format!("was not ready after {} s{why}", limit.as_secs()),
                    ));
                }
                break;
            }
            std::thread::sleep(POLL);
        }
    }
    Ok(failures)
}

/// Stops `programs` in order: routers, mongods, config servers, then everything else (the
/// monitoring programs last), each rank at once; idempotent. Before the event listener
/// stops, it is given time to record the stops it has not written yet.
pub(crate) fn stop(tree: &Tree, client: &Client, programs: &[&dyn Program]) -> anyhow::Result<()> {
    let began = Instant::now();
    // The pids let each rank wait for its processes' exit locally (/proc), without a round
    // trip to the daemon per poll; supervisord's view is checked once, at the end.
    let pids: BTreeMap<String, u32> = infos(tree, client)?
        .into_iter()
        .filter(|(_, p)| p.pid > 0)
        .map(|(q, p)| (q, p.pid))
        .collect();
    let mut events = crate::monitor::Tail::at_end(tree.layout.events_log());
    let mut stopped: Vec<String> = Vec::new();
    for rank in 0..=LAST_RANK {
        let tier: Vec<&dyn Program> = programs
            .iter()
            .copied()
            .filter(|p| p.stop_rank() == rank)
            .collect();
        if tier.is_empty() {
            continue;
        }
        // The event listener's rank: let it record what stopped before it stops.
        if rank == LAST_RANK {
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
    }
    wait_stopped(tree, client, programs)?;
    outln!(
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
