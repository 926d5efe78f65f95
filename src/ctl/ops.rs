//! Ordered start and stop. Start goes config servers → mongods → routers: within a tier every
//! process is started at once (one multicall of `startProcess(name, false)`), and the next tier
//! begins as soon as the previous tier's ports accept TCP connections; the command returns
//! when every target is RUNNING. Stop goes the other way, each tier at once.

use super::{log_tail, owner, procs, Member, Tree};
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

/// One `system.multicall` of `method(name, false)` for each member (never a waiting call
/// after another: those run one by one, docs/supervisord.md §5).
fn call_each(
    tree: &Tree,
    client: &Client,
    method: &str,
    members: &[&Member],
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

fn failure(client: &Client, m: &Member, why: &str) -> String {
    format!(
        "{} ({}) {why}; last lines of {}:\n{}",
        m.program,
        m.address(),
        m.log_file.display(),
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

/// Starts `members` in tier order; returns when all are RUNNING, or fails naming each
/// process that could not start, with the end of its log. With `init` (a whole-cluster
/// start), the cluster is made ready between tiers: the config servers' set is initiated
/// and has a primary before the shards start, every set has a primary before the routers
/// start (a mongos listens only then), and every shard is added once a router listens.
pub(crate) fn start(
    tree: &Tree,
    client: &Client,
    members: &[Member],
    init: bool,
) -> anyhow::Result<()> {
    let bar = progress(members.len());
    let began = Instant::now();
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
        let backoff: Vec<&Member> = tier
            .iter()
            .copied()
            .filter(|m| st(m) == state::BACKOFF)
            .collect();
        if !backoff.is_empty() {
            stop_tier(tree, client, &backoff)?;
        }
        let idle: Vec<&Member> = tier
            .iter()
            .copied()
            .filter(|m| !matches!(st(m), state::RUNNING | state::STARTING) || backoff.contains(m))
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
        let mut failures = Vec::new();
        for (m, r) in idle
            .iter()
            .zip(call_each(tree, client, "supervisor.startProcess", &idle)?)
        {
            match r {
                Ok(()) => {}
                Err(e) if e.fault_code() == Some(fault::ALREADY_STARTED) => {}
                Err(e) if e.fault_code() == Some(fault::BAD_NAME) => return Err(tree.explain(e)),
                Err(e) => failures.push(failure(client, m, &format!("could not be started ({e})"))),
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
    let failures = wait_tier(tree, client, &started, &bar, START_LIMIT, |p, _| {
        p.state == state::RUNNING
    })?;
    bar.finish_and_clear();
    if !failures.is_empty() {
        bail!(
            "cluster {}: failed to start:\n{}",
            tree.name(),
            failures.join("\n")
        );
    }
    outln!(
        "{} program(s) RUNNING ({:.1} s)",
        members.len(),
        began.elapsed().as_secs_f64()
    )?;
    Ok(())
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
                indent(&log_tail(client, m, 10))
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
fn wait_tier(
    tree: &Tree,
    client: &Client,
    tier: &[&Member],
    bar: &ProgressBar,
    limit: Duration,
    ready: impl Fn(&ProcessInfo, &Member) -> bool,
) -> anyhow::Result<Vec<String>> {
    let start = Instant::now();
    let mut pending: Vec<&Member> = tier.to_vec();
    let mut failures = Vec::new();
    while !pending.is_empty() {
        let now = infos(tree, client)?;
        let mut still = Vec::new();
        for m in pending {
            let Some(p) = now.get(&m.qualified()) else {
                failures.push(format!("{} is no longer known to supervisord", m.program));
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
                    let why = if m.role == Role::Mongos {
                        " (a mongos accepts connections only once its config servers' replica set has a primary)"
                    } else {
                        ""
                    };
                    failures.push(failure(
                        client,
                        m,
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

/// Stops `members` in reverse tier order, each tier at once; idempotent.
pub(crate) fn stop(tree: &Tree, client: &Client, members: &[Member]) -> anyhow::Result<()> {
    let began = Instant::now();
    // The pids let each tier wait for its processes' exit locally (/proc), without a round
    // trip to the daemon per poll; supervisord's view is checked once, at the end.
    let pids: BTreeMap<String, u32> = infos(tree, client)?
        .into_iter()
        .filter(|(_, p)| p.pid > 0)
        .map(|(q, p)| (q, p.pid))
        .collect();
    for role in Role::TIERS.into_iter().rev() {
        let tier: Vec<&Member> = members.iter().filter(|m| m.role == role).collect();
        send_stops(tree, client, &tier)?;
        let tier_pids: Vec<u32> = tier
            .iter()
            .filter_map(|m| pids.get(&m.qualified()).copied())
            .collect();
        let start = Instant::now();
        while tier_pids.iter().any(|p| procs::alive(*p)) && start.elapsed() < STOP_LIMIT {
            std::thread::sleep(EXIT_POLL);
        }
    }
    let all: Vec<&Member> = members.iter().collect();
    wait_stopped(tree, client, &all)?;
    outln!(
        "{} program(s) stopped ({:.1} s)",
        members.len(),
        began.elapsed().as_secs_f64()
    )?;
    Ok(())
}

/// Stops one tier and waits until supervisord reports it stopped.
fn stop_tier(tree: &Tree, client: &Client, tier: &[&Member]) -> anyhow::Result<()> {
    send_stops(tree, client, tier)?;
    wait_stopped(tree, client, tier)
}

/// One multicall of `stopProcess(name, false)`. No state lookup first: a stopped program
/// answers NOT_RUNNING, which is success here.
fn send_stops(tree: &Tree, client: &Client, tier: &[&Member]) -> anyhow::Result<()> {
    for (m, r) in tier
        .iter()
        .zip(call_each(tree, client, "supervisor.stopProcess", tier)?)
    {
        match r {
            Ok(()) => {}
            Err(e) if e.fault_code() == Some(fault::NOT_RUNNING) => {}
            Err(e) => bail!("cluster {}: cannot stop {}: {e}", tree.name(), m.program),
        }
    }
    Ok(())
}

/// Polls the daemon until none of `members` is running, starting, stopping or backing off.
fn wait_stopped(tree: &Tree, client: &Client, members: &[&Member]) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let now = infos(tree, client)?;
        let busy: Vec<&str> = members
            .iter()
            .filter(|m| {
                now.get(&m.qualified()).is_some_and(|p| {
                    matches!(
                        p.state,
                        state::RUNNING | state::STARTING | state::STOPPING | state::BACKOFF
                    )
                })
            })
            .map(|m| m.program.as_str())
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
