//! `mup monitor metrics --dir TREE`: the Prometheus exporter supervisord runs for a cluster
//! (`[program:mup-metrics]` in the group `monitoring`), on 127.0.0.1 at meta.yaml's
//! `metrics_port`. It reads the daemon's credentials from the tree, and sends them only to the
//! daemon proven to be this tree's (the one that started it). A scrape is one
//! `getAllProcessInfo`, one /proc read per running program, and the lines added to events.log
//! since the last scrape. The daemon's state needs no `getState`: supervisord answers calls
//! only while RUNNING, and a SHUTDOWN_STATE fault otherwise (docs/monitoring.md).
//!
//! Series: node_exporter's supervisord collector names (`node_supervisord_up`, `_state`,
//! `_exit_status`, `_start_time_seconds`, labels `name` and `group`) with the labels
//! `cluster`, `role`, `replica_set`, `host` and `port` added; `mup_process_cpu_seconds_total`,
//! `mup_process_resident_memory_bytes`, `mup_process_unexpected_exits_total`, and the daemon's
//! own `mup_supervisord_up` / `mup_supervisord_state`.

use crate::ctl::{owner, Tree};
use crate::naming::Service;
use crate::supervisor::{fault, state, Client, ProcessInfo};
use anyhow::Context;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// OpenMetrics text, which a Prometheus server asks for first.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The two exposition formats, as the scraper asks (`Accept`), both encoded by the
/// Prometheus client crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    OpenMetrics,
    /// Prometheus text 0.0.4, for every other client (curl, promtool).
    Text,
}

impl Format {
    fn of(request: &tiny_http::Request) -> Format {
        let wants_openmetrics = request.headers().iter().any(|h| {
            h.field.equiv("Accept") && h.value.as_str().contains("application/openmetrics-text")
        });
        if wants_openmetrics {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
    fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => OPENMETRICS,
            Format::Text => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        }
    }
}

/// supervisord's state codes (`getState`): it answers only while RUNNING...
const DAEMON_RUNNING: i32 = 1;
/// ...and with a SHUTDOWN_STATE fault while it shuts down (or restarts).
const DAEMON_SHUTDOWN: i32 = -1;

/// The labels of every per-program series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    name: String,
    group: String,
    cluster: String,
    /// config | mongod | mongos | events | metrics; empty for a program mup did not make.
    role: String,
    replica_set: String,
    host: String,
    port: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DaemonLabels {
    cluster: String,
}

/// Runs the exporter until its daemon goes away.
pub(crate) fn run(dir: &Path) -> anyhow::Result<()> {
    let tree = Tree::load(dir)?;
    let port = tree
        .monitor(Service::Metrics)
        .and_then(|s| s.port)
        .with_context(|| {
            format!(
                "{}: metrics are off for cluster {} (no metrics_port)",
                tree.layout.meta_file().display(),
                tree.name()
            )
        })?;
    let server = tiny_http::Server::http(("127.0.0.1", port)).map_err(|e| {
        let holder = crate::ctl::procs::listener_pid(port)
            .map(|pid| format!(" (held by {})", crate::ctl::procs::describe(pid)))
            .unwrap_or_default();
        anyhow::anyhow!(
            "cluster {}: cannot listen on 127.0.0.1:{port}{holder}: {e}; set another metrics_port in meta.yaml and run `mup gen` again",
            tree.name()
        )
    })?;
    eprintln!(
        "mup-metrics: serving http://127.0.0.1:{port}/metrics for cluster {}",
        tree.name()
    );
    let parent = std::os::unix::process::parent_id();
    let mut exporter = Exporter::new(tree);
    loop {
        if let Some(request) = server.recv_timeout(Duration::from_secs(1))? {
            exporter.respond(request);
        }
        // Started by the daemon: once it is gone (the exporter was reparented), so is the job.
        if std::os::unix::process::parent_id() != parent {
            return Ok(());
        }
    }
}

struct Exporter {
    tree: Tree,
    /// The daemon proven this tree's, and its client (kept while it stays the parent).
    proven: Option<(u32, Client)>,
    exits: ExitCounter,
}

impl Exporter {
    fn new(tree: Tree) -> Exporter {
        let exits = ExitCounter::new(tree.layout.events_log());
        Exporter {
            tree,
            proven: None,
            exits,
        }
    }

    fn respond(&mut self, request: tiny_http::Request) {
        let path = request.url().split('?').next().unwrap_or_default();
        let response = match path {
            "/metrics" => {
                let format = Format::of(&request);
                let body = self.scrape(format);
                let header = tiny_http::Header::from_bytes("Content-Type", format.content_type())
                    .expect("a static header is valid");
                tiny_http::Response::from_string(body).with_header(header)
            }
            "/" => tiny_http::Response::from_string(format!(
                "mup exporter of cluster {}: see /metrics\n",
                self.tree.name()
            )),
            _ => tiny_http::Response::from_string("not found\n").with_status_code(404),
        };
        if let Err(e) = request.respond(response) {
            eprintln!("mup-metrics: cannot answer a scrape: {e}");
        }
    }

    /// The client of this tree's daemon, proven first; `None` when it is not (or not ours).
    fn client(&mut self) -> Option<&Client> {
        let parent = std::os::unix::process::parent_id();
        if self.proven.as_ref().is_some_and(|(pid, _)| *pid == parent) {
            return self.proven.as_ref().map(|(_, c)| c);
        }
        self.proven = None;
        match owner::daemon(&self.tree) {
            owner::Daemon::Serving(pid) => {
                self.proven = Some((pid, self.tree.client()));
                self.proven.as_ref().map(|(_, c)| c)
            }
            _ => None,
        }
    }

    /// The exposition text of one scrape.
    fn scrape(&mut self, format: Format) -> String {
        let answer = self.client().map(Client::get_all_process_info);
        let (daemon_state, infos) = match answer {
            Some(Ok(infos)) => (Some(DAEMON_RUNNING), infos),
            Some(Err(e)) if e.fault_code() == Some(fault::SHUTDOWN_STATE) => {
                (Some(DAEMON_SHUTDOWN), Vec::new())
            }
            Some(Err(e)) => {
                eprintln!("mup-metrics: supervisord did not answer: {e}");
                self.proven = None;
                (None, Vec::new())
            }
            None => (None, Vec::new()),
        };
        self.exits.catch_up();
        let mut registry = Registry::default();
        let daemon = DaemonLabels {
            cluster: self.tree.name().to_string(),
        };
        let d_up = Family::<DaemonLabels, Gauge>::default();
        let d_state = Family::<DaemonLabels, Gauge>::default();
        registry.register(
            "mup_supervisord_up",
            "Whether the cluster's supervisord answered this scrape",
            d_up.clone(),
        );
        registry.register(
            "mup_supervisord_state",
            "supervisord's state code: 1 RUNNING, -1 shutting down (or restarting)",
            d_state.clone(),
        );
        d_up.get_or_create(&daemon)
            .set(i64::from(daemon_state.is_some()));
        if let Some(code) = daemon_state {
            d_state.get_or_create(&daemon).set(i64::from(code));
        }

        let up = Family::<Labels, Gauge>::default();
        let st = Family::<Labels, Gauge>::default();
        let exit = Family::<Labels, Gauge>::default();
        let started = Family::<Labels, Gauge>::default();
        let cpu = Family::<Labels, Counter<f64, AtomicU64>>::default();
        let rss = Family::<Labels, Gauge>::default();
        let unexpected = Family::<Labels, Counter>::default();
        registry.register("node_supervisord_up", "Process Up", up.clone());
        registry.register("node_supervisord_state", "Process State", st.clone());
        registry.register(
            "node_supervisord_exit_status",
            "Process Exit Status",
            exit.clone(),
        );
        registry.register(
            "node_supervisord_start_time_seconds",
            "Process start time",
            started.clone(),
        );
        registry.register(
            "mup_process_cpu_seconds",
            "CPU time (user and system) of the program's process",
            cpu.clone(),
        );
        registry.register_with_unit(
            "mup_process_resident_memory",
            "Resident memory of the program's process",
            Unit::Bytes,
            rss.clone(),
        );
        registry.register(
            "mup_process_unexpected_exits",
            "Unexpected exits recorded in events.log",
            unexpected.clone(),
        );

        let ticks = procfs::ticks_per_second() as f64;
        for p in &infos {
            let labels = self.labels(&p.name, &p.group);
            st.get_or_create(&labels).set(i64::from(p.state));
            exit.get_or_create(&labels).set(p.exitstatus);
            let running = matches!(p.state, state::STARTING | state::RUNNING | state::STOPPING);
            up.get_or_create(&labels).set(i64::from(running));
            if running {
                started.get_or_create(&labels).set(p.start);
                if let Some((seconds, bytes)) = usage(p, ticks) {
                    cpu.get_or_create(&labels).inc_by(seconds);
                    rss.get_or_create(&labels)
                        .set(i64::try_from(bytes).unwrap_or(i64::MAX));
                }
            }
        }
        // Every known program has a count, zero included, so alerts on its increase work
        // from the first scrape.
        let mut known: BTreeMap<String, String> = infos
            .iter()
            .map(|p| (p.name.clone(), p.group.clone()))
            .collect();
        known.extend(
            self.tree
                .members
                .iter()
                .map(|m| (m.program.clone(), m.group().to_string())),
        );
        for (name, group) in &self.exits.groups {
            known.entry(name.clone()).or_insert_with(|| group.clone());
        }
        for (name, group) in &known {
            let n = self.exits.counts.get(name).copied().unwrap_or(0);
            unexpected
                .get_or_create(&self.labels(name, group))
                .inc_by(n);
        }
        let mut body = String::new();
        let encoded = match format {
            Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut body, &registry),
            Format::Text => {
                prometheus_client::encoding::prometheus_text::encode(&mut body, &registry)
            }
        };
        if let Err(e) = encoded {
            eprintln!("mup-metrics: cannot encode: {e}");
        }
        body
    }

    fn labels(&self, name: &str, group: &str) -> Labels {
        let mut l = Labels {
            name: name.to_string(),
            group: group.to_string(),
            cluster: self.tree.name().to_string(),
            role: String::new(),
            replica_set: String::new(),
            host: String::new(),
            port: String::new(),
        };
        if let Some(m) = self.tree.members.iter().find(|m| m.program == name) {
            l.role = m.role.meta_type().to_string();
            l.replica_set = m.replica_set.clone().unwrap_or_default();
            l.host = m.host.clone();
            l.port = m.port.to_string();
        } else if let Some(s) = self.tree.monitors.iter().find(|s| s.program() == name) {
            l.role = s.service.meta_type().to_string();
            l.host = "127.0.0.1".into();
            l.port = s.port.map(|p| p.to_string()).unwrap_or_default();
        }
        l
    }
}

/// CPU seconds and resident bytes of a running program's process, from /proc/PID/stat (one
/// read).
fn usage(p: &ProcessInfo, ticks: f64) -> Option<(f64, u64)> {
    use procfs::{FromRead, WithCurrentSystemInfo};
    let pid = Some(p.pid).filter(|pid| *pid > 0)?;
    let stat = procfs::process::Stat::from_file(format!("/proc/{pid}/stat")).ok()?;
    Some((
        (stat.utime + stat.stime) as f64 / ticks,
        stat.rss_bytes().get(),
    ))
}

/// Unexpected exits per program, counted from events.log as it grows.
struct ExitCounter {
    tail: super::Tail,
    counts: BTreeMap<String, u64>,
    groups: BTreeMap<String, String>,
}

impl ExitCounter {
    fn new(path: PathBuf) -> ExitCounter {
        ExitCounter {
            tail: super::Tail::new(path),
            counts: BTreeMap::new(),
            groups: BTreeMap::new(),
        }
    }

    /// Counts what was appended since the last call.
    fn catch_up(&mut self) {
        for ev in self.tail.read_new() {
            self.groups.insert(ev.program.clone(), ev.group.clone());
            if ev.unexpected_exit() {
                *self.counts.entry(ev.program).or_default() += 1;
            }
        }
    }
}
