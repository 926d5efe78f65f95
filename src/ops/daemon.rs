//! The daemon's lifecycle: `up` (launch, verify, orphans) and `down` (ordered stop, shutdown,
//! wait until the pid has exited and the port is free).

use super::unsupervised::{
    describe, not_running, obstacles, stop_nodes, stop_unsupervised, Obstacle,
};
use crate::deployment::owner;
use crate::deployment::render;
use crate::deployment::Node;
use crate::deployment::Tree;
use crate::ops::lifecycle;
use crate::ops::setup;
use crate::supervisor::{self, Client};
use crate::system::child;
use crate::system::procs;
use crate::ui::Ui;
use anyhow::{bail, Context};
use rustix::process::Signal;
use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

/// How long a freshly launched daemon may take to answer (it answers ~0.1 s after
/// `supervisord -c` returns).
const READY_LIMIT: Duration = Duration::from_secs(15);
/// How long `supervisord -c` may take to start the daemon and exit, and what it may print.
/// It forks the daemon (which leaves the process group with setsid and closes its output)
/// and exits: a program that stays is not a daemonizing supervisord.
const LAUNCH_BOUND: child::Bound = child::Bound {
    time: Duration::from_secs(30),
    bytes: 1024 * 1024,
};
/// supervisord stops its children (stopwaitsecs=30) before it exits.
pub(crate) const EXIT_LIMIT: Duration = Duration::from_secs(60);

/// The grace a node gets after SIGINT before SIGKILL, as supervisord gives it.
pub(crate) const STOP_WAIT: Duration = Duration::from_secs(render::STOP_WAIT_SECS);

/// This tree's daemon, proven ours (see [`owner::daemon`]) before anything — credentials
/// included — is sent to it. `None` when it is not running. A foreign listener on its port,
/// or this tree's daemon listening elsewhere, is an error that names it.
pub(crate) fn running(tree: &Tree) -> anyhow::Result<Option<Client>> {
    match reach(tree)? {
        Reach::Answers(client) => Ok(Some(client)),
        Reach::Down => Ok(None),
        Reach::Silent { why, .. } => Err(tree.explain(why)),
    }
}

/// Checks the identification this tree's daemon answered (`getIdentification`): a daemon
/// running this tree's supervisor.ini calls itself by the cluster's name.
pub(crate) fn identified(tree: &Tree, ident: &str) -> anyhow::Result<()> {
    let want = crate::deployment::naming::identifier(tree.name());
    if ident != want {
        bail!(
            "the supervisord on 127.0.0.1:{} runs this tree's supervisor.ini but calls itself {ident:?}, not {want:?}: was supervisor.ini edited by hand?",
            tree.port
        );
    }
    Ok(())
}

/// This tree's daemon proven ours by its process ([`owner::daemon`]), not asked anything
/// yet: its client and its pid. The caller checks its identification ([`identified`]) with
/// its first call. `None` when it is not running; errors as [`running`].
pub(crate) fn proven(tree: &Tree) -> anyhow::Result<Option<(Client, u32)>> {
    match owner::daemon(tree) {
        owner::Daemon::Serving(pid) => Ok(Some((tree.client(), pid))),
        owner::Daemon::Absent => Ok(None),
        owner::Daemon::Astray(pid) => bail!(
            "supervisord of cluster {} ({}) runs with {} but does not listen on 127.0.0.1:{}, the port meta.yaml records (was supervisor_port changed by `mup gen` while it ran?); `mup ctl --dir {} down` stops it and its nodes",
            tree.name(),
            procs::describe(pid),
            tree.layout.supervisor_ini().display(),
            tree.port,
            tree.layout.root().display()
        ),
        owner::Daemon::Foreign(who) => bail!(
            "cluster {}: port {} is held by {who}, which is not this tree's supervisord (it does not run {}); nothing was sent to it",
            tree.name(),
            tree.port,
            tree.layout.supervisor_ini().display()
        ),
    }
}

/// How this tree's daemon answers.
pub(crate) enum Reach {
    /// Proven ours, and answers with this tree's credentials and identification.
    Answers(Client),
    /// Not running; nothing listens on its port.
    Down,
    /// Proven ours (pid `pid`), but timed out or refused the credentials (`why`).
    Silent { pid: u32, why: supervisor::Error },
}

/// Like [`running`], telling apart a daemon proven ours that does not answer.
pub(crate) fn reach(tree: &Tree) -> anyhow::Result<Reach> {
    let Some((client, pid)) = proven(tree)? else {
        return Ok(Reach::Down);
    };
    let ident = match client.get_identification() {
        Ok(ident) => ident,
        Err(why @ (supervisor::Error::Timeout { .. } | supervisor::Error::Unauthorized)) => {
            return Ok(Reach::Silent { pid, why })
        }
        Err(e) => return Err(tree.explain(e)),
    };
    identified(tree, &ident)?;
    Ok(Reach::Answers(client))
}

/// `mup ctl up`: the daemon running, verified, and no orphan left on any node.
pub(crate) fn up(ui: &Ui, tree: &Tree, adopt: bool) -> anyhow::Result<Client> {
    let existing = running(tree)?;
    let owned: BTreeSet<u32> = match &existing {
        Some(c) => c
            .get_all_process_info()
            .map_err(|e| tree.explain(e))?
            .iter()
            .filter(|p| p.pid > 0)
            .map(|p| p.pid)
            .collect(),
        None => BTreeSet::new(),
    };
    let found = obstacles(tree, &owned);
    let foreign: Vec<String> = found
        .iter()
        .filter(|(_, o)| matches!(o, Obstacle::Foreign(_)))
        .map(|(m, o)| describe(m, o))
        .collect();
    if !foreign.is_empty() {
        bail!(
            "cluster {}: node ports are held by processes that are not this cluster's; mup leaves them alone, stop them yourself:\n{}",
            tree.name(),
            foreign.join("\n")
        );
    }
    if !found.is_empty() {
        let list: Vec<String> = found.iter().map(|(m, o)| describe(m, o)).collect();
        if !adopt {
            bail!(
                "cluster {}: node processes are running without supervisord (left over from a daemon that died?):\n{}\nrun `mup ctl --dir {} up --adopt` to stop them so that supervisord owns the nodes again",
                tree.name(),
                list.join("\n"),
                tree.layout.root().display()
            );
        }
        let orphans: Vec<(Node, u32)> = found
            .into_iter()
            .filter_map(|(m, o)| match o {
                Obstacle::Orphan(pid) => Some((m, pid)),
                Obstacle::Foreign(_) => None,
            })
            .collect();
        let survivors = stop_nodes(ui, &orphans, "adopted");
        if !survivors.is_empty() {
            bail!(
                "cluster {}: still alive after SIGKILL: {}",
                tree.name(),
                survivors.join(", ")
            );
        }
    }
    let client = match existing {
        Some(c) => c,
        None => launch(ui, tree)?,
    };
    verify(tree, &client)?;
    Ok(client)
}

/// The environment supervisord (and so every node) starts with: explicit and minimal
/// (children inherit all of it, docs/supervisord.md §6).
fn daemon_env(tree: &Tree) -> Vec<(String, String)> {
    let mut env = vec![(
        "PATH".to_string(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
    )];
    if let Some(h) = &tree.meta.home {
        env.push(("HOME".into(), h.clone()));
    }
    if let Some(u) = &tree.meta.user {
        env.push(("USER".into(), u.clone()));
    }
    for var in ["LANG", "LC_ALL", "TZ"] {
        if let Ok(v) = std::env::var(var) {
            env.push((var.into(), v));
        }
    }
    env
}

fn launch(ui: &Ui, tree: &Tree) -> anyhow::Result<Client> {
    if let owner::Daemon::Foreign(who) = owner::daemon(tree) {
        bail!(
            "cannot start supervisord for cluster {}: port {} is held by {who}",
            tree.name(),
            tree.port
        );
    }
    let pidfile = tree.layout.supervisor_pid();
    if let Some(pid) = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
    {
        // Not this tree's daemon (that case is handled before): a stale pidfile from a
        // daemon that died, whose pid may now be another program's. supervisord would
        // overwrite it silently.
        let _ = std::fs::remove_file(&pidfile);
        let now = if procs::alive(pid) {
            format!("pid {pid} is now another program: {}", procs::describe(pid))
        } else {
            format!("pid {pid} is gone")
        };
        noteln!(ui, "removed stale {} ({now})", pidfile.display());
    }
    let supervisord = setup::find_supervisord()?;
    let out = child::run(
        Command::new(&supervisord)
            .arg("-c")
            .arg(tree.layout.supervisor_ini())
            .env_clear()
            .envs(daemon_env(tree))
            .current_dir(tree.layout.root()),
        LAUNCH_BOUND,
        "check that it is a stock supervisord that daemonizes (or set MUP_SUPERVISORD to one)",
    )?;
    if !out.status.success() {
        bail!(
            "supervisord refused to start for cluster {} ({}): {}",
            tree.name(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    // Credentials go out only once the listener is proven to be the daemon just launched.
    let start = Instant::now();
    loop {
        match owner::daemon(tree) {
            owner::Daemon::Serving(_) => break,
            owner::Daemon::Foreign(who) => bail!(
                "cluster {}: port {} was taken by {who} while supervisord started; see {}",
                tree.name(),
                tree.port,
                tree.layout.supervisor_log().display()
            ),
            _ if start.elapsed() < READY_LIMIT => std::thread::sleep(Duration::from_millis(10)),
            _ => bail!(
                "supervisord started but does not listen on 127.0.0.1:{}; see {}",
                tree.port,
                tree.layout.supervisor_log().display()
            ),
        }
    }
    let client = tree.client();
    loop {
        match client.get_state() {
            Ok(_) => return Ok(client),
            Err(supervisor::Error::NotRunning) if start.elapsed() < READY_LIMIT => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                return Err(tree.explain(e)).context(format!(
                    "supervisord started but does not answer; see {}",
                    tree.layout.supervisor_log().display()
                ))
            }
        }
    }
}

/// The daemon is this cluster's and has loaded exactly the programs in meta.yaml, nodes and
/// monitoring (an include that matches nothing is silent in the daemon, docs/supervisord.md
/// §3; one that matches a hand-added file loads it).
fn verify(tree: &Tree, client: &Client) -> anyhow::Result<()> {
    let loaded: BTreeSet<String> = client
        .get_all_process_info()
        .map_err(|e| tree.explain(e))?
        .iter()
        .map(|p| p.qualified())
        .collect();
    let wanted: BTreeSet<String> = tree
        .all()
        .programs()
        .iter()
        .map(|p| p.qualified())
        .collect();
    if loaded != wanted {
        let missing: Vec<&String> = wanted.difference(&loaded).collect();
        let extra: Vec<&String> = loaded.difference(&wanted).collect();
        let foreign = if extra.is_empty() {
            String::new()
        } else {
            format!(
                "; programs meta.yaml does not list come from files under {} that the include loads (`mup gen --check` names those mup did not make)",
                tree.layout.conf_dir().display()
            )
        };
        bail!(
            "supervisord for cluster {} has not loaded the programs in meta.yaml (missing: {missing:?}, unexpected: {extra:?}); if the tree was regenerated, run `mup ctl reload`, else see {}{foreign}",
            tree.name(),
            tree.layout.supervisor_log().display()
        );
    }
    Ok(())
}

/// `mup ctl down`: every program stopped in reverse tier order, then the daemon shut down;
/// returns once its pid has exited and its port is free. Node processes of this tree that run
/// without the daemon (it died, or listens on a port meta.yaml no longer records) are stopped
/// too, the way supervisord would; anything that survives is an error.
pub(crate) fn down(ui: &Ui, tree: &Tree) -> anyhow::Result<()> {
    match owner::daemon(tree) {
        owner::Daemon::Serving(_) => match reach(tree)? {
            Reach::Answers(client) => shutdown(ui, tree, &client)?,
            Reach::Down => outln!(ui, "supervisord for cluster {} is not running", tree.name())?,
            Reach::Silent { pid, why } => crate::ops::silent::stop(ui, tree, pid, &why)?,
        },
        owner::Daemon::Astray(pid) => {
            // Proven ours by its arguments: SIGTERM makes supervisord stop its programs
            // (each with its stopsignal and stopwaitsecs) and exit.
            let daemon = owner::Owned {
                label: "supervisord".into(),
                pid,
                proof: owner::Proof::Daemon(tree.layout.supervisor_ini()),
            };
            let result = owner::stop(&[daemon], Signal::TERM, EXIT_LIMIT);
            if result.first() == Some(&owner::Stopped::Survived) {
                bail!(
                    "supervisord pid {pid} of cluster {} survived SIGKILL",
                    tree.name()
                );
            }
            outln!(
                ui,
                "supervisord for cluster {} (pid {pid}) did not listen on port {}, the one meta.yaml records; it was stopped with SIGTERM",
                tree.name(),
                tree.port
            )?;
        }
        owner::Daemon::Absent => {
            outln!(ui, "supervisord for cluster {} is not running", tree.name())?;
        }
        owner::Daemon::Foreign(who) => {
            outln!(
                ui,
                "supervisord for cluster {} is not running (port {} is held by {who}, which is not this tree's: nothing was sent to it)",
                tree.name(),
                tree.port
            )?;
        }
    }
    stop_unsupervised(ui, tree, &tree.members)?;
    Ok(())
}

/// Ordered stop of every program, `shutdown()`, and the wait for the daemon's exit.
fn shutdown(ui: &Ui, tree: &Tree, client: &Client) -> anyhow::Result<()> {
    let pid = client.get_pid().map_err(|e| tree.explain(e))?;
    lifecycle::stop(ui, tree, client, &tree.all().programs())?;
    match client.shutdown() {
        Ok(_) | Err(supervisor::Error::NotRunning) => {}
        Err(e) => return Err(tree.explain(e)),
    }
    // shutdown() returns before the daemon has exited and released its port.
    let start = Instant::now();
    while procs::alive(pid) || procs::listening("127.0.0.1", tree.port) {
        if start.elapsed() > EXIT_LIMIT {
            bail!(
                "supervisord pid {pid} did not exit within {} s",
                EXIT_LIMIT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    outln!(
        ui,
        "supervisord for cluster {} is down (pid {pid} exited, port {} free)",
        tree.name(),
        tree.port
    )?;
    Ok(())
}

/// The client of this tree's daemon, proven ours (see [`running`]). When it is not
/// running, the error says so, and names the node processes that run without it.
pub(crate) fn connect(tree: &Tree) -> anyhow::Result<Client> {
    match running(tree)? {
        Some(client) => Ok(client),
        None => Err(not_running(tree)),
    }
}
