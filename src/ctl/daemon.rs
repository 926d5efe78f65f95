//! The daemon's lifecycle: `up` (launch, verify, orphans) and `down` (ordered stop, shutdown,
//! wait until the pid has exited and the port is free).

use super::{connect, ops, procs, Member, Tree};
use crate::supervisor::{self, Client};
use crate::{render, setup};
use anyhow::{bail, Context};
use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

/// How long a freshly launched daemon may take to answer (it answers ~0.1 s after
/// `supervisord -c` returns, SUPERVISORD_FACTS §5.1).
const READY_LIMIT: Duration = Duration::from_secs(15);
/// supervisord stops its children (stopwaitsecs=30) before it exits.
const EXIT_LIMIT: Duration = Duration::from_secs(60);

/// A node process supervisord does not own.
#[derive(Debug, Clone)]
pub struct Orphan {
    pub member: Member,
    /// `None` when the port is held but its owner cannot be found.
    pub pid: Option<u32>,
    pub evidence: String,
    /// Its command line names this node's config file or a mongod/mongos binary.
    pub is_node: bool,
}

/// Is the daemon of this tree answering? Errors when something else answers on its port.
pub fn running(tree: &Tree) -> anyhow::Result<Option<Client>> {
    match tree.probe().get_identification() {
        Ok(ident) if ident == render::identifier(tree.name()) => Ok(Some(tree.client())),
        Ok(other) => bail!(
            "port {} is held by another supervisord ({other:?}), not cluster {}'s",
            tree.port,
            tree.name()
        ),
        Err(supervisor::Error::NotRunning) => Ok(None),
        Err(supervisor::Error::Transport(why)) => bail!(
            "cluster {}: port {} is held by {}, which does not answer as supervisord ({why})",
            tree.name(),
            tree.port,
            holder(tree.port)
        ),
        Err(e) => Err(tree.explain(e)),
    }
}

/// Who listens on `port`, for messages.
fn holder(port: u16) -> String {
    procs::listener_pid(port)
        .map(|p| format!("pid {p} ({})", procs::cmdline(p).unwrap_or_default()))
        .unwrap_or_else(|| "another program".into())
}

/// Node processes alive without supervisord: a live pid in `<dbPath>/mongod.lock`, or a
/// listener on the node's port, that the daemon does not own.
pub fn orphans(tree: &Tree, owned: &BTreeSet<u32>) -> Vec<Orphan> {
    let mut found = Vec::new();
    for m in &tree.members {
        let is_node = |pid: u32| {
            procs::cmdline(pid).is_some_and(|c| {
                c.contains(&m.config_file.display().to_string())
                    || c.split_whitespace().any(|a| {
                        a.ends_with("/mongod")
                            || a.ends_with("/mongos")
                            || a == "mongod"
                            || a == "mongos"
                    })
            })
        };
        if let Some(pid) = m.data_dir.as_deref().and_then(procs::lock_pid) {
            if procs::alive(pid) && !owned.contains(&pid) {
                found.push(Orphan {
                    member: m.clone(),
                    pid: Some(pid),
                    evidence: format!(
                        "holds {}",
                        m.data_dir
                            .as_deref()
                            .map(|d| d.join("mongod.lock").display().to_string())
                            .unwrap_or_default()
                    ),
                    is_node: is_node(pid),
                });
                continue;
            }
        }
        if procs::listening(&m.host, m.port) {
            let pid = procs::listener_pid(m.port);
            if pid.is_some_and(|p| owned.contains(&p)) {
                continue;
            }
            found.push(Orphan {
                member: m.clone(),
                pid,
                evidence: format!("listens on {}", m.address()),
                is_node: pid.is_some_and(is_node),
            });
        }
    }
    found
}

fn describe(o: &Orphan) -> String {
    let who = match o.pid {
        Some(pid) => format!(
            "pid {pid} ({})",
            procs::cmdline(pid).unwrap_or_else(|| "?".into())
        ),
        None => "an unknown process".to_string(),
    };
    format!(
        "  {} (port {}): {who} {}",
        o.member.program, o.member.port, o.evidence
    )
}

/// `mup ctl up`: the daemon running, verified, and no orphan left on any node.
pub fn up(tree: &Tree, adopt: bool) -> anyhow::Result<Client> {
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
    let found = orphans(tree, &owned);
    if !found.is_empty() {
        let list: Vec<String> = found.iter().map(describe).collect();
        if !adopt {
            bail!(
                "cluster {}: node processes are running without supervisord (left over from a daemon that died?):\n{}\nrun `mup ctl up --adopt` to stop them so that supervisord owns the nodes again",
                tree.name(),
                list.join("\n")
            );
        }
        let strangers: Vec<&Orphan> = found.iter().filter(|o| !o.is_node).collect();
        if !strangers.is_empty() {
            let list: Vec<String> = strangers.iter().map(|o| describe(o)).collect();
            bail!(
                "cluster {}: these ports or data directories are held by processes that are not this cluster's nodes; stop them yourself:\n{}",
                tree.name(),
                list.join("\n")
            );
        }
        adopt_orphans(&found);
    }
    let client = match existing {
        Some(c) => c,
        None => launch(tree)?,
    };
    verify(tree, &client)?;
    Ok(client)
}

/// Stops orphans concurrently: SIGINT, then SIGKILL after stopwaitsecs.
fn adopt_orphans(found: &[Orphan]) {
    std::thread::scope(|s| {
        for o in found {
            let Some(pid) = o.pid else { continue };
            let program = o.member.program.clone();
            s.spawn(move || {
                let killed = procs::stop(pid, Duration::from_secs(30));
                let how = if killed {
                    "killed with SIGKILL after 30 s"
                } else {
                    "stopped with SIGINT"
                };
                eprintln!("adopted {program}: orphan pid {pid} {how}");
            });
        }
    });
}

/// The environment supervisord (and so every node) starts with: explicit and minimal
/// (children inherit all of it, SUPERVISORD_FACTS rule 27).
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

fn launch(tree: &Tree) -> anyhow::Result<Client> {
    if procs::listening("127.0.0.1", tree.port) {
        bail!(
            "cannot start supervisord for cluster {}: port {} is held by {}",
            tree.name(),
            tree.port,
            holder(tree.port)
        );
    }
    let pidfile = tree.layout.supervisor_pid();
    if let Some(pid) = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
    {
        if procs::alive(pid) && procs::cmdline(pid).is_some_and(|c| c.contains("supervisord")) {
            bail!(
                "supervisord pid {pid} (from {}) is alive but does not answer on port {}; stop it (kill {pid}) and try again",
                pidfile.display(),
                tree.port
            );
        }
        // A stale pidfile from a daemon that died: supervisord would overwrite it silently.
        let _ = std::fs::remove_file(&pidfile);
        eprintln!("removed stale {} (pid {pid} is gone)", pidfile.display());
    }
    let supervisord = setup::find_supervisord()?;
    let out = Command::new(&supervisord)
        .arg("-c")
        .arg(tree.layout.supervisor_ini())
        .env_clear()
        .envs(daemon_env(tree))
        .current_dir(tree.layout.root())
        .output()
        .with_context(|| format!("cannot run {}", supervisord.display()))?;
    if !out.status.success() {
        bail!(
            "supervisord refused to start for cluster {} ({}): {}",
            tree.name(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let client = tree.client();
    let start = Instant::now();
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

/// The daemon is this cluster's and has loaded exactly the programs in meta.yaml (an include
/// that matches nothing is silent in the daemon, SUPERVISORD_FACTS §3.5).
fn verify(tree: &Tree, client: &Client) -> anyhow::Result<()> {
    connect(tree)?;
    let loaded: BTreeSet<String> = client
        .get_all_process_info()
        .map_err(|e| tree.explain(e))?
        .iter()
        .map(|p| p.qualified())
        .collect();
    let wanted: BTreeSet<String> = tree.members.iter().map(Member::qualified).collect();
    if loaded != wanted {
        let missing: Vec<&String> = wanted.difference(&loaded).collect();
        let extra: Vec<&String> = loaded.difference(&wanted).collect();
        bail!(
            "supervisord for cluster {} has not loaded the programs in meta.yaml (missing: {missing:?}, unexpected: {extra:?}); if the tree was regenerated, run `mup ctl reload`, else see {}",
            tree.name(),
            tree.layout.supervisor_log().display()
        );
    }
    Ok(())
}

/// `mup ctl down`: every program stopped in reverse tier order, then the daemon shut down;
/// returns once its pid has exited and its port is free.
pub fn down(tree: &Tree) -> anyhow::Result<()> {
    let Some(client) = running(tree)? else {
        println!("supervisord for cluster {} is not running", tree.name());
        return Ok(());
    };
    let pid = client.get_pid().map_err(|e| tree.explain(e))?;
    ops::stop(tree, &client, &tree.members)?;
    match client.shutdown() {
        Ok(_) | Err(supervisor::Error::NotRunning) => {}
        Err(e) => return Err(tree.explain(e)),
    }
    // shutdown() returns before the daemon has exited and released its port (§5.4).
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
    println!(
        "supervisord for cluster {} is down (pid {pid} exited, port {} free)",
        tree.name(),
        tree.port
    );
    Ok(())
}
