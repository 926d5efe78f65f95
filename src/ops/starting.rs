//! The steps of an ordered start that [`crate::ops::lifecycle::start`] strings together: readiness from
//! the wire (a node is ready when its port answers `hello` from the very process supervisord
//! started for it), the initiation step between tiers, the monitoring programs, the last look
//! before returning, and the progress counter, which only counts up.

use crate::deployment::log_tail;
use crate::deployment::model::Role;
use crate::deployment::Monitor;
use crate::deployment::Node;
use crate::deployment::Program;
use crate::deployment::Tree;
use crate::ops::initiate;
use crate::ops::lifecycle::{call_each, failure, indent, infos, tier_name};
use crate::ops::users;
use crate::supervisor::{fault, state, Client, ProcessInfo};
use crate::system::interrupt;
use crate::system::procs;
use crate::ui::Progress;
use crate::ui::Ui;
use anyhow::bail;
use std::time::{Duration, Instant};

/// Between two looks at the daemon and the ports while a tier comes up.
const POLL: Duration = Duration::from_millis(20);

/// A plan's steps as the bar's message (each step's own lines say what it did).
impl crate::ops::steps::Observer for crate::ui::Progress {
    fn begin(&self, _index: usize, _total: usize, what: &str) {
        self.message(what.to_string());
    }
    fn end(&self, _index: usize, _total: usize, _what: &str) {}
}

/// What a node's port shows.
enum Answer {
    /// Its own process listens there and answered `hello`.
    Ready,
    /// Nothing of its own answers yet.
    NotYet,
    /// Another process answers on the node's address (described).
    Foreign(String),
}

/// Whether `m`'s port answers `hello` from `pid`, the process supervisord started for it.
/// First the port probe (a connect, ~0.1 ms, which never takes a socket connected to itself
/// for a listener), then — once something listens — the socket table, read once (it costs
/// milliseconds per read on a busy machine), to prove the listener is that process, then
/// `hello`.
fn answer(m: &Node, pid: u32, access: &crate::mongo::Access) -> Answer {
    if !procs::listening(&m.host, m.port) {
        return Answer::NotYet;
    }
    if procs::owns_listener4(pid, m.port) {
        return match crate::mongo::hello(&m.host, m.port, access) {
            Ok(_) => Answer::Ready,
            Err(_) => Answer::NotYet,
        };
    }
    match procs::listener_pid(m.port) {
        Some(other) if other != pid => Answer::Foreign(procs::describe(other)),
        // Gone meanwhile, or another user's (its pid is not visible): look again.
        _ => Answer::NotYet,
    }
}

/// How many nodes are asked at once (each ask is a socket-table read and a `hello`).
const ASK_AT_ONCE: usize = 16;

/// [`answer`] for each (node, pid), asked in parallel, in input order.
fn answers(up: &[(&Node, u32)], access: &crate::mongo::Access) -> Vec<Answer> {
    up.chunks(ASK_AT_ONCE)
        .flat_map(|chunk| {
            std::thread::scope(|s| {
                let asks: Vec<_> = chunk
                    .iter()
                    .map(|(m, pid)| s.spawn(move || answer(m, *pid, access)))
                    .collect();
                asks.into_iter()
                    .map(|a| a.join().unwrap_or(Answer::NotYet))
                    .collect::<Vec<_>>()
            })
        })
        .collect()
}

/// Waits until every node of `tier` answers `hello` from the process supervisord started
/// for it; returns each node with that pid. Fails naming each node that went FATAL, EXITED
/// or STOPPED, whose port another process answers, or that did not answer within `limit`.
/// BACKOFF is waited out (supervisord retries startretries times).
pub(crate) fn wait_answering<'a>(
    tree: &Tree,
    client: &Client,
    tier: &[&'a Node],
    progress: &Progress,
    limit: Duration,
) -> anyhow::Result<Vec<(&'a Node, u32)>> {
    let start = Instant::now();
    let access = crate::deployment::security::access(tree);
    let mut pending: Vec<&Node> = tier.to_vec();
    let mut ready = Vec::new();
    let mut failures = Vec::new();
    while !pending.is_empty() {
        interrupt::check()?;
        let now = infos(tree, client)?;
        let mut still = Vec::new();
        let mut up: Vec<(&Node, u32)> = Vec::new();
        for m in pending {
            let Some(p) = now.get(&m.qualified()) else {
                failures.push(format!("{} is no longer known to supervisord", m.program));
                continue;
            };
            match p.state {
                state::FATAL | state::EXITED | state::STOPPED => {
                    failures.push(failure(client, m, &format!("went {}", state_why(p))));
                }
                state::STARTING | state::RUNNING if p.pid > 0 => up.push((m, p.pid)),
                _ => still.push(m),
            }
        }
        for ((m, pid), a) in up.iter().zip(answers(&up, &access)) {
            match a {
                Answer::Ready => {
                    progress.done(&m.program, &format!("answers, pid {pid}"));
                    ready.push((*m, *pid));
                }
                Answer::Foreign(who) => failures.push(failure(
                    client,
                    *m,
                    &format!(
                        "is not what answers on its port: {who} does, not its own process (pid {pid})"
                    ),
                )),
                Answer::NotYet => still.push(m),
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
                        *m,
                        &format!("did not answer hello within {} s{why}", limit.as_secs()),
                    ));
                }
                break;
            }
            std::thread::sleep(POLL);
        }
    }
    if !failures.is_empty() {
        bail!(
            "cluster {}: {} failed to start:\n{}",
            tree.name(),
            tier_name(tier.first().map_or(Role::Mongod, |m| m.role)),
            failures.join("\n")
        );
    }
    Ok(ready)
}

fn state_why(p: &ProcessInfo) -> String {
    if p.spawnerr.is_empty() {
        p.statename.clone()
    } else {
        format!("{}: {}", p.statename, p.spawnerr)
    }
}

/// The last look before a start returns: every node that answered must still be the
/// process supervisord runs (STARTING or RUNNING, the same pid). A node that answered and
/// then exited (supervisord may already be restarting it) fails the start, named.
pub(crate) fn still_up(
    tree: &Tree,
    client: &Client,
    answered: &[(&Node, u32)],
) -> anyhow::Result<()> {
    let now = infos(tree, client)?;
    let lost: Vec<String> = answered
        .iter()
        .filter_map(|(m, pid)| match now.get(&m.qualified()) {
            Some(p) if p.pid == *pid && matches!(p.state, state::STARTING | state::RUNNING) => None,
            Some(p) => Some(failure(
                client,
                *m,
                &format!(
                    "answered as pid {pid}, but supervisord now reports it {} (pid {})",
                    state_why(p),
                    p.pid
                ),
            )),
            None => Some(format!("{} is no longer known to supervisord", m.program)),
        })
        .collect();
    if !lost.is_empty() {
        bail!(
            "cluster {}: not running after it answered:\n{}",
            tree.name(),
            lost.join("\n")
        );
    }
    Ok(())
}

/// Starts the monitoring programs that are not running, without waiting (they are waited for
/// at the end). One that cannot start is a warning, not a failure of the start.
pub(crate) fn start_monitors(
    ui: &Ui,
    tree: &Tree,
    client: &Client,
    monitors: &[Monitor],
) -> anyhow::Result<()> {
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
    warn_monitoring(ui, tree, &failures);
    Ok(())
}

/// Waits (bounded) until the monitoring programs are RUNNING (their startsecs is 1 s, and
/// they started first); one that is not is a warning.
pub(crate) fn wait_monitors(
    ui: &Ui,
    tree: &Tree,
    client: &Client,
    monitors: &[Monitor],
    progress: &Progress,
    limit: Duration,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut pending: Vec<&Monitor> = monitors.iter().collect();
    let mut failures = Vec::new();
    while !pending.is_empty() {
        interrupt::check()?;
        let now = infos(tree, client)?;
        let mut still = Vec::new();
        for m in pending {
            match now.get(&m.qualified()) {
                Some(p) if p.state == state::RUNNING => {
                    progress.done(m.program(), &format!("RUNNING, pid {}", p.pid))
                }
                Some(p) if matches!(p.state, state::FATAL | state::EXITED | state::STOPPED) => {
                    progress.done(m.program(), "did not start");
                    failures.push(failure(client, m, &format!("went {}", state_why(p))));
                }
                Some(_) if start.elapsed() > limit => {
                    progress.done(m.program(), "did not start");
                    failures.push(failure(
                        client,
                        m,
                        &format!("was not RUNNING after {} s", limit.as_secs()),
                    ));
                }
                Some(_) => still.push(m),
                None => failures.push(format!("{} is no longer known to supervisord", m.program())),
            }
        }
        pending = still;
        if !pending.is_empty() {
            std::thread::sleep(POLL);
        }
    }
    warn_monitoring(ui, tree, &failures);
    Ok(())
}

/// A monitoring program that does not run is said, and the start goes on: the nodes do not
/// depend on it.
fn warn_monitoring(ui: &Ui, tree: &Tree, failures: &[String]) {
    if failures.is_empty() {
        return;
    }
    warnln!(
        ui,
        "cluster {}: monitoring is not running (the nodes are not affected):\n{}\n(`mup gen --check` tells whether the tree names another mup binary; `mup gen` then `mup ctl reload` fixes that)",
        tree.name(),
        failures.join("\n")
    );
}

/// The initiation step after `role`'s tier answers: its replica sets initiated with a
/// primary (config servers, shards), or every shard added (routers); with auth, the first
/// user made where it belongs (`security::users`).
pub(crate) fn make_ready(
    tree: &Tree,
    client: &Client,
    members: &[Node],
    role: Role,
    tier: &[&Node],
    progress: &Progress,
) -> anyhow::Result<()> {
    let access = crate::deployment::security::access(tree);
    let explain = |f: initiate::Failure| -> anyhow::Error {
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
        return ready_routers(members, tier, &access, progress, &explain);
    }
    let owned: Vec<Node> = tier.iter().map(|m| (*m).clone()).collect();
    progress.message(format!("initiating the {} replica sets", tier_name(role)));
    let mut failures = Vec::new();
    // Where a user is made once the tier is ready: each set's primary, each standalone node
    // (not the config servers: their users come through a router).
    let mut user_homes: Vec<(String, Node)> = owned
        .iter()
        .filter(|m| m.replica_set.is_none() && m.role == Role::Mongod)
        .map(|m| (m.program.clone(), m.clone()))
        .collect();
    for (set, result, took) in initiate::initiate_all(&initiate::sets(&owned), &access) {
        let primary = match result {
            Ok(initiate::Outcome::Initiated { primary }) => {
                progress.say(format!(
                    "{}: initiated, primary {primary} ({:.1} s)",
                    set.name,
                    took.as_secs_f64()
                ));
                primary
            }
            Ok(initiate::Outcome::AlreadyInitiated { primary }) => {
                progress.say(format!(
                    "{}: already initiated, primary {primary}",
                    set.name
                ));
                primary
            }
            Err(f) => {
                failures.push(explain(f).to_string());
                continue;
            }
        };
        if let Some(m) = set.members.iter().find(|m| m.is(&primary)) {
            if role == Role::Mongod {
                user_homes.push((set.name.clone(), m.clone()));
            }
        }
    }
    // Ctrl-C ends the initiation's waits early: say that, not their failure.
    interrupt::check()?;
    if failures.is_empty() {
        for (place, m) in &user_homes {
            match users::first_user(m, place, &access) {
                Ok(made) => users::said(place, made)
                    .into_iter()
                    .for_each(|l| progress.say(l)),
                Err(f) => failures.push(explain(f).to_string()),
            }
        }
    }
    if !failures.is_empty() {
        bail!("{}", failures.join("\n"));
    }
    Ok(())
}

/// The routers' step: the cluster's first user made through a router (it lives in the
/// config servers), before anything that needs it; then every shard added.
fn ready_routers(
    members: &[Node],
    tier: &[&Node],
    access: &crate::mongo::Access,
    progress: &Progress,
    explain: &dyn Fn(initiate::Failure) -> anyhow::Error,
) -> anyhow::Result<()> {
    let shards = initiate::sets(
        &members
            .iter()
            .filter(|m| m.role == Role::Mongod)
            .cloned()
            .collect::<Vec<_>>(),
    );
    let Some(router) = tier.first() else {
        return Ok(());
    };
    let made = users::first_user(router, "cluster", access).map_err(explain)?;
    if let Some(line) = users::said("cluster (through a router)", made) {
        progress.say(line);
    }
    progress.message("adding the shards".into());
    for (name, added) in initiate::add_shards(router, &shards, access).map_err(explain)? {
        progress.say(if added {
            format!("shard {name} added")
        } else {
            format!("shard {name}: already added")
        });
    }
    Ok(())
}
