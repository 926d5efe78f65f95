//! `mup ctl status`: one row per program from one getAllProcessInfo, as a table or as JSON.

use super::{Selection, Tree};
use crate::supervisor::{state, Client, ProcessInfo};
use crate::table;
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
pub(crate) fn run(tree: &Tree, selection: &Selection, json: bool) -> anyhow::Result<bool> {
    use super::daemon::Reach;
    let (client, silent) = match super::daemon::reach(tree)? {
        Reach::Answers(client) => (Some(client), None),
        Reach::Down => (None, None),
        Reach::Silent { pid, why } => (None, Some((pid, why))),
    };
    let st = match &silent {
        Some((pid, why)) => super::silent::status(tree, selection, *pid, why)?,
        None => collect(tree, client.as_ref(), selection, json)?,
    };
    if json {
        outln!("{}", serde_json::to_string_pretty(&st)?)?;
    } else if client.is_some() {
        out!("{}", table(&st))?;
    }
    if let Some((_, why)) = silent {
        return Err(tree.explain(why));
    }
    if client.is_none() {
        return Err(super::not_running(tree));
    }
    Ok(st.programs.iter().all(Program::running))
}

/// Collects the status of `selection` (nodes first, then the monitoring programs); with the
/// daemon down, every program shows STOPPED.
pub(crate) fn collect(
    tree: &Tree,
    client: Option<&Client>,
    selection: &Selection,
    with_pid: bool,
) -> anyhow::Result<Status> {
    let members = &selection.nodes;
    let mut daemon = Daemon {
        url: tree.url(),
        state: "DOWN".into(),
        pid: None,
    };
    let mut infos: BTreeMap<String, ProcessInfo> = BTreeMap::new();
    if let Some(c) = client {
        for p in c.get_all_process_info().map_err(|e| tree.explain(e))? {
            infos.insert(p.qualified(), p);
        }
        daemon.state = "RUNNING".into();
        if with_pid {
            daemon.pid = Some(c.get_pid().map_err(|e| tree.explain(e))?);
        }
    }
    // With the daemon down, a node process may still run (the daemon died): say so.
    let loose: BTreeMap<String, u32> = if client.is_none() {
        super::owner::running_nodes(members)
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
