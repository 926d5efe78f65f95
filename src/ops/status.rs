//! `mup ctl status`: one row per program from one request (the daemon's identification and
//! getAllProcessInfo in one multicall), as a table or as JSON.

use crate::deployment::Selection;
use crate::deployment::Tree;
use crate::supervisor::{state, Client, ProcessInfo};
use crate::ui::table;
use crate::ui::Ui;
use serde::Serialize;
use std::collections::BTreeMap;

/// The state of a node process that runs without supervisord (the daemon died).
pub(crate) const UNSUPERVISED: &str = "UNSUPERVISED";

/// `--json` output. Stable: fields are only ever added.
#[derive(Debug, Serialize)]
pub(crate) struct Status {
    pub cluster: String,
    pub supervisord: Daemon,
    pub programs: Vec<Program>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Daemon {
    pub url: String,
    /// RUNNING when it answers, DOWN when it does not run, UNRESPONSIVE when it runs but
    /// does not answer in time, UNAUTHORIZED when it refuses meta.yaml's credentials.
    pub state: String,
    pub pid: Option<u32>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Program {
    pub name: String,
    pub group: String,
    /// config | mongod | mongos, or events | metrics for the monitoring programs
    pub role: String,
    pub replica_set: Option<String>,
    pub host: String,
    /// `None` for the event listener, which listens on no port.
    pub port: Option<u16>,
    /// supervisord's state name (STOPPED, STARTING, RUNNING, BACKOFF, STOPPING, EXITED, FATAL),
    /// or UNSUPERVISED: the node's process runs, but the daemon does not.
    pub state: String,
    pub pid: Option<u32>,
    pub uptime_seconds: Option<i64>,
    pub log_file: String,
}

impl Program {
    pub(crate) fn running(&self) -> bool {
        self.state == "RUNNING"
    }
}

/// `mup ctl status`: the table, or the JSON document; returns whether every listed program
/// is RUNNING. With the daemon down, or not answering, it fails saying so (exit 1), and
/// `--json` first prints the document anyway (`"state": "DOWN"`, `"UNRESPONSIVE"`,
/// `"UNAUTHORIZED"`), so a script always gets JSON to read.
pub(crate) fn run(ui: &Ui, tree: &Tree, selection: &Selection, json: bool) -> anyhow::Result<bool> {
    let (st, seen) = gather(tree, selection, json)?;
    if json {
        outln!(ui, "{}", serde_json::to_string_pretty(&st)?)?;
    } else if matches!(seen, Seen::Answered) {
        out!(ui, "{}", table(&st))?;
    }
    match seen {
        Seen::Answered => {}
        Seen::Down => return Err(crate::ops::unsupervised::not_running(tree)),
        Seen::Silent(why) => return Err(tree.explain(why)),
    }
    Ok(st.programs.iter().all(Program::running))
}

/// How this tree's daemon was found by [`gather`].
pub(crate) enum Seen {
    /// Proven ours, and it answered.
    Answered,
    /// Not running.
    Down,
    /// Proven ours, but it timed out or refused the credentials.
    Silent(crate::supervisor::Error),
}

/// The status of `selection` in one request to the daemon proven ours, and how it was
/// found: a daemon that does not answer gives what is known without it
/// ([`crate::ops::silent::status`]).
pub(crate) fn gather(
    tree: &Tree,
    selection: &Selection,
    with_pid: bool,
) -> anyhow::Result<(Status, Seen)> {
    let Some(client) = crate::ops::daemon::proven(tree)? else {
        return Ok((collect(tree, None, selection, with_pid)?, Seen::Down));
    };
    match collect(tree, Some(&client), selection, with_pid) {
        Ok(st) => Ok((st, Seen::Answered)),
        Err(e) => match e.downcast::<crate::supervisor::Error>() {
            Ok(why) => Ok((
                crate::ops::silent::status(tree, selection, client.1, &why)?,
                Seen::Silent(why),
            )),
            Err(e) => Err(e),
        },
    }
}

/// Collects the status of `selection` (nodes first, then the monitoring programs) from the
/// daemon proven ours ([`crate::ops::daemon::proven`]: its client and pid), checking its
/// identification on the way; with the daemon down, every program shows STOPPED.
pub(crate) fn collect(
    tree: &Tree,
    client: Option<&(Client, u32)>,
    selection: &Selection,
    with_pid: bool,
) -> anyhow::Result<Status> {
    let members = &selection.nodes;
    let (daemon, infos) = ask(tree, client, with_pid)?;
    // With the daemon down, a node process may still run (the daemon died): say so.
    let loose: BTreeMap<String, u32> = if client.is_none() {
        crate::deployment::owner::running_nodes(members)
            .into_iter()
            .map(|(m, pid)| (m.program, pid))
            .collect()
    } else {
        BTreeMap::new()
    };
    let state_of = |info: Option<&ProcessInfo>, loose_pid: Option<u32>| -> String {
        info.map(|p| p.statename.clone()).unwrap_or_else(|| {
            if client.is_some() {
                "UNKNOWN".into()
            } else if loose_pid.is_some() {
                UNSUPERVISED.into()
            } else {
                "STOPPED".into()
            }
        })
    };
    let pid_of = |info: Option<&ProcessInfo>| {
        info.filter(|p| p.pid > 0 && p.state != state::STOPPED)
            .map(|p| p.pid)
    };
    let mut programs: Vec<Program> = members
        .iter()
        .map(|m| {
            let info = infos.get(&m.qualified());
            let loose_pid = loose.get(&m.program).copied();
            Program {
                name: m.program.clone(),
                group: m.group().to_string(),
                role: m.role.label().to_string(),
                replica_set: m.replica_set.clone(),
                host: m.host.clone(),
                port: Some(m.port),
                state: state_of(info, loose_pid),
                pid: pid_of(info).or(loose_pid),
                uptime_seconds: info.and_then(ProcessInfo::uptime),
                log_file: m.log_file.display().to_string(),
            }
        })
        .collect();
    programs.extend(selection.monitors.iter().map(|m| {
        let info = infos.get(&m.qualified());
        Program {
            name: m.program().to_string(),
            group: m.group().to_string(),
            role: m.service.meta_type().to_string(),
            replica_set: None,
            host: "127.0.0.1".into(),
            port: m.port,
            state: state_of(info, None),
            pid: pid_of(info),
            uptime_seconds: info.and_then(ProcessInfo::uptime),
            log_file: m.log_file.display().to_string(),
        }
    }));
    Ok(Status {
        cluster: tree.name().to_string(),
        supervisord: daemon,
        programs,
    })
}

/// The daemon's row and its programs' infos by qualified name, in one request: its
/// identification (checked) and getAllProcessInfo.
fn ask(
    tree: &Tree,
    client: Option<&(Client, u32)>,
    with_pid: bool,
) -> anyhow::Result<(Daemon, BTreeMap<String, ProcessInfo>)> {
    let mut daemon = Daemon {
        url: tree.url(),
        state: "DOWN".into(),
        pid: None,
    };
    let mut infos = BTreeMap::new();
    if let Some((c, pid)) = client {
        // A daemon that times out or refuses the credentials is left to the caller
        // ([`gather`]) as the typed error; anything else is explained here.
        let (ident, all) = c.identification_and_infos().map_err(|e| match e {
            e @ (crate::supervisor::Error::Timeout { .. }
            | crate::supervisor::Error::Unauthorized) => anyhow::Error::new(e),
            e => tree.explain(e),
        })?;
        crate::ops::daemon::identified(tree, &ident)?;
        infos.extend(all.into_iter().map(|p| (p.qualified(), p)));
        daemon.state = "RUNNING".into();
        // The pid proven to hold the daemon's port is the one getPID would answer.
        daemon.pid = with_pid.then_some(*pid);
    }
    Ok((daemon, infos))
}

/// The table `mup ctl status` prints.
pub(crate) fn table(status: &Status) -> String {
    let rows: Vec<Vec<String>> = status
        .programs
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                p.group.clone(),
                p.role.clone(),
                p.replica_set.clone().unwrap_or_else(|| "-".into()),
                p.port
                    .map(|port| format!("{}:{port}", p.host))
                    .unwrap_or_else(|| "-".into()),
                p.state.clone(),
                p.pid.map(|x| x.to_string()).unwrap_or_else(|| "-".into()),
                p.uptime_seconds
                    .map(table::duration)
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table::render(
        &[
            "NAME",
            "GROUP",
            "ROLE",
            "REPLICA SET",
            "ADDRESS",
            "STATE",
            "PID",
            "UPTIME",
        ],
        &rows,
    )
}
