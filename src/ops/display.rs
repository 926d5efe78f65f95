//! `mup cluster display` and `mup cluster list`: what the daemon and the servers say about
//! each cluster, as a table or JSON.

use crate::deployment::layout::{self};
use crate::deployment::legacy;
use crate::deployment::meta::{self};
use crate::deployment::model::Service;
use crate::deployment::owner;
use crate::deployment::Tree;
use crate::ops::cluster::{connection_strings, load};
use crate::ops::servers::server_view;
use crate::ops::status;
use crate::ui::table;
use crate::ui::Ui;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// `mup cluster display --json`. Stable: fields are only ever added.
#[derive(Debug, Serialize)]
pub(crate) struct Display {
    pub name: String,
    pub version: String,
    pub topology: String,
    pub dir: String,
    pub supervisord: status::Daemon,
    pub connection: Vec<String>,
    /// The shards a router knows (`listShards`); empty when no router answers.
    pub shards: Vec<DisplayShard>,
    pub nodes: Vec<DisplayNode>,
    /// Counts of `nodes` (the monitoring programs are not counted).
    pub total: usize,
    pub running: usize,
    /// The event listener and the exporter, those that are on.
    pub monitoring: Vec<DisplayMonitor>,
    /// The exporter's endpoint; `None` when metrics are off, or when something else holds
    /// its port (`metrics_port_held_by`).
    pub metrics_url: Option<String>,
    /// What holds the exporter's port when it is not this cluster's exporter (another
    /// cluster's exporter: its series are not this cluster's); `None` otherwise.
    pub metrics_port_held_by: Option<String>,
    /// Where the event listener appends transitions; `None` when events are off.
    pub events_log: Option<String>,
    /// `access control (user NAME)`, `TLS`, or both; `None` when the cluster is not secured.
    pub security: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct DisplayMonitor {
    pub program: String,
    pub group: String,
    /// events | metrics
    pub role: String,
    pub state: String,
    pub pid: Option<u32>,
    pub uptime_seconds: Option<i64>,
    pub log_file: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct DisplayShard {
    pub id: String,
    /// `<set>/<host:port>,...`
    pub host: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct DisplayNode {
    /// host:port
    pub id: String,
    pub role: String,
    pub replica_set: Option<String>,
    pub program: String,
    pub state: String,
    /// Replica-set member state (PRIMARY, SECONDARY, STARTUP, ...) as its set reports it;
    /// `None` when it is down, or not a replica-set member.
    pub member_state: Option<String>,
    pub pid: Option<u32>,
    pub uptime_seconds: Option<i64>,
    pub data_dir: Option<String>,
    pub log_file: String,
    /// The node's MongoDB version as it answers (`buildInfo`), only while the nodes may run
    /// different versions (an unfinished `mup cluster upgrade`); else absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// `mup cluster display`; returns whether every node is RUNNING. Works with the daemon down;
/// with a daemon that does not answer, shows what is known, then fails saying why.
pub(crate) fn display(ui: &Ui, name: &str, json: bool) -> anyhow::Result<bool> {
    let tree = load(name)?;
    let (st, seen) = status::gather(&tree, &tree.all(), true)?;
    let silent = match seen {
        status::Seen::Silent(why) => Some(why),
        status::Seen::Answered | status::Seen::Down => None,
    };
    // Every node with a process (STARTING, RUNNING, UNSUPERVISED) is asked, not only RUNNING ones.
    let up: Vec<bool> = st.programs.iter().map(|p| p.pid.is_some()).collect();
    let (roles, shards) = server_view(
        &tree.members,
        &up,
        &crate::deployment::security::access(&tree),
    );
    let versions = crate::ops::upgrade::versions_while_mixed(&tree, &up).unwrap_or_default();
    let nodes = node_rows(&tree, &st, roles, &versions);
    let running = nodes.iter().filter(|n| n.state == "RUNNING").count();
    let monitoring = monitor_rows(&tree, &st);
    let metrics_port = tree.monitor(Service::Metrics).and_then(|s| s.port);
    let metrics_port_held_by = metrics_port.and_then(|port| owner::foreign_exporter(&tree, port));
    let metrics_url = metrics_port
        .filter(|_| metrics_port_held_by.is_none())
        .map(|port| format!("http://127.0.0.1:{port}/metrics"));
    let events_log = tree
        .monitor(Service::Events)
        .map(|_| tree.layout.events_log().display().to_string());
    let d = Display {
        name: tree.name().to_string(),
        version: tree.meta.version.clone(),
        topology: tree.meta.topology.clone().unwrap_or_default(),
        dir: tree.layout.root().display().to_string(),
        supervisord: st.supervisord,
        connection: connection_strings(&tree),
        shards,
        total: nodes.len(),
        running,
        nodes,
        monitoring,
        metrics_url,
        metrics_port_held_by,
        events_log,
        security: crate::deployment::security::summary(&tree),
    };
    if json {
        outln!(ui, "{}", serde_json::to_string_pretty(&d)?)?;
    } else {
        out!(ui, "{}", display_text(&d))?;
    }
    if let Some(why) = silent {
        return Err(tree.explain(why));
    }
    Ok(running == d.total)
}

/// One row per node: what supervisord says of its program and what its set says of it.
fn node_rows(
    tree: &Tree,
    st: &status::Status,
    roles: Vec<Option<String>>,
    versions: &[Option<String>],
) -> Vec<DisplayNode> {
    st.programs
        .iter()
        .zip(&tree.members)
        .zip(roles)
        .enumerate()
        .map(|(i, ((p, m), member_state))| DisplayNode {
            member_state,
            version: versions.get(i).cloned().flatten(),
            id: m.address(),
            role: p.role.clone(),
            replica_set: p.replica_set.clone(),
            program: p.name.clone(),
            state: p.state.clone(),
            pid: p.pid,
            uptime_seconds: p.uptime_seconds,
            data_dir: m.data_dir.as_ref().map(|d| d.display().to_string()),
            log_file: p.log_file.clone(),
        })
        .collect()
}

/// One row per monitoring program.
fn monitor_rows(tree: &Tree, st: &status::Status) -> Vec<DisplayMonitor> {
    st.programs[tree.members.len()..]
        .iter()
        .map(|p| DisplayMonitor {
            program: p.name.clone(),
            group: p.group.clone(),
            role: p.role.clone(),
            state: p.state.clone(),
            pid: p.pid,
            uptime_seconds: p.uptime_seconds,
            log_file: p.log_file.clone(),
        })
        .collect()
}

/// The lines above the table: the cluster, its daemon, connection strings, security and
/// shards.
fn header_text(d: &Display) -> String {
    let daemon = match d.supervisord.pid {
        Some(pid) => format!("{} ({}, pid {pid})", d.supervisord.url, d.supervisord.state),
        None => format!("{} ({})", d.supervisord.url, d.supervisord.state),
    };
    let mut out = format!(
        "Cluster:     {}\nMongoDB:     {}\nTopology:    {}\nSupervisord: {daemon}\nDirectory:   {}\n",
        d.name, d.version, d.topology, d.dir
    );
    for uri in &d.connection {
        out.push_str(&format!("Connect:     {uri}\n"));
    }
    if let Some(s) = &d.security {
        let name = &d.name;
        out.push_str(&format!(
            "Security:    {s} (secrets: mup cluster credentials {name})\n"
        ));
    }
    for sh in &d.shards {
        out.push_str(&format!("Shard:       {} {}\n", sh.id, sh.host));
    }
    out
}

fn display_text(d: &Display) -> String {
    let mut out = header_text(d);
    out.push('\n');
    let rows: Vec<Vec<String>> = d
        .nodes
        .iter()
        .map(|n| {
            vec![
                n.id.clone(),
                n.role.clone(),
                n.replica_set.clone().unwrap_or_else(|| "-".into()),
                n.program.clone(),
                n.state.clone(),
                n.member_state.clone().unwrap_or_else(|| "-".into()),
                n.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                n.uptime_seconds
                    .map(table::duration)
                    .unwrap_or_else(|| "-".into()),
                n.data_dir.clone().unwrap_or_else(|| "-".into()),
                n.log_file.clone(),
            ]
        })
        .collect();
    out.push_str(&table::render(
        &[
            "ID",
            "ROLE",
            "REPLICA SET",
            "PROGRAM",
            "STATE",
            "MEMBER",
            "PID",
            "UPTIME",
            "DATA DIR",
            "LOG FILE",
        ],
        &rows,
    ));
    // Right after a start the nodes answer before supervisord calls them RUNNING.
    let starting = d.nodes.iter().filter(|n| n.state == "STARTING").count();
    let starting = match starting {
        0 => String::new(),
        n => format!(" ({n} STARTING: RUNNING once supervisord's startsecs have passed)"),
    };
    out.push_str(&format!(
        "\nTotal nodes: {}, running: {}, not running: {}{starting}\n",
        d.total,
        d.running,
        d.total - d.running
    ));
    out.push_str(&(versions_text(d) + &monitoring_text(d)));
    let loose: Vec<String> = d
        .nodes
        .iter()
        .filter(|n| n.state == status::UNSUPERVISED)
        .map(|n| n.program.clone())
        .collect();
    if !loose.is_empty() {
        out.push_str(&format!(
            "UNSUPERVISED: {} run without supervisord (did it die?): `mup cluster stop {}` stops them; `mup ctl --cluster {} up --adopt` hands the nodes to a new daemon\n",
            loose.join(", "),
            d.name,
            d.name
        ));
    }
    out
}

/// While the nodes may run different versions: which runs which, and how to finish.
fn versions_text(d: &Display) -> String {
    let mut by_version: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for n in d.nodes.iter() {
        if let Some(v) = &n.version {
            by_version.entry(v).or_default().push(&n.program);
        }
    }
    if by_version.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = by_version
        .iter()
        .map(|(v, programs)| format!("{v} on {}", programs.join(", ")))
        .collect();
    format!(
        "Versions:    {} (an upgrade is unfinished: `mup cluster upgrade {} --version V` again finishes it)\n",
        parts.join("; "),
        d.name
    )
}

/// The monitoring programs, the metrics URL with a scrape config for it, and the events
/// commands.
fn monitoring_text(d: &Display) -> String {
    if d.monitoring.is_empty() {
        return "\nMonitoring: off (events: false and metrics: false in meta.yaml)\n".into();
    }
    let rows: Vec<Vec<String>> = d
        .monitoring
        .iter()
        .map(|m| {
            vec![
                m.program.clone(),
                m.role.clone(),
                m.state.clone(),
                m.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                m.uptime_seconds
                    .map(table::duration)
                    .unwrap_or_else(|| "-".into()),
                m.log_file.clone(),
            ]
        })
        .collect();
    let mut out = String::from("\nMonitoring\n");
    out.push_str(&table::render(
        &["PROGRAM", "ROLE", "STATE", "PID", "UPTIME", "LOG FILE"],
        &rows,
    ));
    if let Some(url) = &d.metrics_url {
        let target = url
            .trim_start_matches("http://")
            .trim_end_matches("/metrics");
        // A whole prometheus.yml (promtool check config accepts it as it is), flush left so
        // that it can be saved as printed.
        out.push_str(&format!(
            "Metrics:     {url}\n             Prometheus scrape config (a prometheus.yml as it is, or merge the job into yours):\n\nscrape_configs:\n  - job_name: mup-{}\n    static_configs:\n      - targets: [\"{target}\"]\n\n",
            d.name
        ));
    }
    if let Some(who) = &d.metrics_port_held_by {
        out.push_str(&format!(
            "Metrics:     none: the exporter's port (metrics_port in meta.yaml) is held by {who}, not by this cluster's exporter, so what it serves is not this cluster's\n"
        ));
    }
    if let Some(log) = &d.events_log {
        out.push_str(&format!(
            "Events:      mup cluster events {} [--follow] [--json] [--since 10m]  ({log})\n",
            d.name
        ));
    }
    out
}

/// `mup cluster list --json` rows.
#[derive(Debug, Serialize)]
pub(crate) struct ListRow {
    pub name: String,
    pub version: String,
    /// standalone | replica_set | sharded | legacy (PID-tracked, to migrate)
    pub topology: String,
    pub nodes: usize,
    /// RUNNING | DOWN | LEGACY | ASTRAY (this tree's daemon is not on its recorded port) |
    /// PORT TAKEN (something else holds its port) | UNREADABLE (meta.yaml cannot be read)
    pub supervisord: String,
    pub dir: String,
}

/// `mup cluster list`.
pub(crate) fn list(ui: &Ui, json: bool) -> anyhow::Result<()> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(layout::clusters_dir())
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    dirs.sort();
    let rows: Vec<ListRow> = dirs
        .iter()
        .filter(|dir| dir.join("meta.yaml").is_file())
        .map(|dir| list_row(ui, dir))
        .collect();
    if json {
        outln!(ui, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(());
    }
    let table_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.version.clone(),
                r.topology.clone(),
                r.nodes.to_string(),
                r.supervisord.clone(),
                r.dir.clone(),
            ]
        })
        .collect();
    out!(
        ui,
        "{}",
        table::render(
            &["NAME", "VERSION", "TOPOLOGY", "NODES", "SUPERVISORD", "DIR"],
            &table_rows
        )
    )?;
    Ok(())
}

/// The row of the cluster in `dir` (whose meta.yaml exists): a tree, a Go mup cluster, or
/// one that cannot be read (said on stderr).
fn list_row(ui: &Ui, dir: &Path) -> ListRow {
    let file = dir.join("meta.yaml");
    let shown = file.display().to_string();
    let legacy = match meta::is_legacy(&file, &shown) {
        Ok(l) => l,
        Err(e) => return unreadable(ui, dir, &e.into()),
    };
    if legacy {
        return match legacy::load(&file, &shown) {
            Ok(m) => ListRow {
                name: m.name,
                version: m.version,
                topology: "legacy".into(),
                nodes: m.nodes.len(),
                supervisord: "LEGACY".into(),
                dir: dir.display().to_string(),
            },
            Err(e) => unreadable(ui, dir, &e.into()),
        };
    }
    let t = match Tree::load(dir) {
        Ok(t) => t,
        Err(e) => return unreadable(ui, dir, &e),
    };
    let state = match owner::daemon(&t) {
        owner::Daemon::Serving(_) => "RUNNING",
        owner::Daemon::Absent => "DOWN",
        owner::Daemon::Astray(_) => "ASTRAY",
        owner::Daemon::Foreign(who) => {
            warnln!(
                ui,
                "cluster {}: port {} is held by {who}, which is not its supervisord",
                t.name(),
                t.port
            );
            "PORT TAKEN"
        }
    };
    ListRow {
        name: t.name().to_string(),
        version: t.meta.version.clone(),
        topology: t.meta.topology.clone().unwrap_or_default(),
        nodes: t.members.len(),
        supervisord: state.to_string(),
        dir: dir.display().to_string(),
    }
}

/// A `list` row for a directory whose meta.yaml cannot be read; the reason goes to stderr.
fn unreadable(ui: &Ui, dir: &Path, err: &anyhow::Error) -> ListRow {
    warnln!(ui, "{err:#}");
    ListRow {
        name: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        version: "-".into(),
        topology: "-".into(),
        nodes: 0,
        supervisord: "UNREADABLE".into(),
        dir: dir.display().to_string(),
    }
}
