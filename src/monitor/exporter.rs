//! `mup monitor metrics --dir TREE`: the Prometheus exporter supervisord runs for a cluster
//! (`[program:mup-metrics]` in the group `monitoring`), on 127.0.0.1 at meta.yaml's
//! `metrics_port`. It reads the daemon's credentials from the tree, and sends them only to the
//! daemon proven to be this tree's (the one that started it). A scrape is one
//! `getAllProcessInfo` (given up after [`DAEMON_DEADLINE`]: the scrape then reports the daemon
//! down), one /proc read per running program, and the lines added to events.log since the last
//! scrape. The daemon's state needs no `getState`: supervisord answers calls only while
//! RUNNING, and a SHUTDOWN_STATE fault otherwise (docs/monitoring.md). The HTTP side is
//! [`super::http`], the calls to the daemon [`super::link`].
//!
//! Series: node_exporter's supervisord collector names (`node_supervisord_up`, `_state`,
//! `_exit_status`, `_start_time_seconds`, labels `name` and `group`) with the labels
//! `cluster`, `role`, `replica_set`, `host` and `port` added; `mup_process_cpu_seconds_total`,
//! `mup_process_resident_memory_bytes`, `mup_process_unexpected_exits_total`, and the daemon's
//! own `mup_supervisord_up` / `mup_supervisord_state`.

use super::link::Link;
use super::series::{Format, Labels, Program, Snapshot};
use super::usage::Usage;
use crate::deployment::naming::Service;
use crate::deployment::owner;
use crate::deployment::Tree;
use crate::supervisor::{fault, state, Error, ProcessInfo};
use anyhow::Context;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a scrape waits for the daemon's answer before it reports `mup_supervisord_up 0`:
/// well below Prometheus' default scrape timeout (10 s), so a stopped daemon shows as such
/// instead of as a failed scrape.
pub(super) const DAEMON_DEADLINE: Duration = Duration::from_secs(5);

/// supervisord's state codes (`getState`): it answers only while RUNNING...
const DAEMON_RUNNING: i32 = 1;
/// ...and with a SHUTDOWN_STATE fault while it shuts down (or restarts).
const DAEMON_SHUTDOWN: i32 = -1;

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
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).map_err(|e| {
        let holder = crate::system::procs::listener_pid(port)
            .map(|pid| format!(" (held by {})", crate::system::procs::describe(pid)))
            .unwrap_or_default();
        anyhow::anyhow!(
            "cluster {}: cannot listen on 127.0.0.1:{port}{holder}: {e}; set another metrics_port in meta.yaml and run `mup gen` again",
            tree.name()
        )
    })?;
    logln!(
        "mup-metrics: serving http://127.0.0.1:{port}/metrics for cluster {}",
        tree.name()
    );
    // One thread: every wait (a client, the daemon) is a task's, none holds up another.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the exporter's runtime")?;
    runtime.block_on(super::http::serve(listener, Arc::new(Exporter::new(tree))))
}

/// What scrapes share: the tree, the link to its proven daemon, the exit counts.
pub(super) struct Exporter {
    tree: Tree,
    /// The daemon proven this tree's, and the link to it (kept while it stays the parent).
    link: Mutex<Option<(u32, Arc<Link>)>>,
    /// Whether the last call answered: a change is logged once, not every scrape.
    answered: Mutex<Option<bool>>,
    exits: Mutex<ExitCounter>,
    /// The label set of each program, made once.
    labels: Mutex<HashMap<String, Arc<Labels>>>,
    /// The processes of the last answer's running programs, read again while the next call
    /// waits for the daemon.
    pids: Mutex<Vec<u32>>,
    usage: Mutex<Usage>,
}

impl Exporter {
    fn new(tree: Tree) -> Exporter {
        let exits = ExitCounter::new(tree.layout.events_log());
        Exporter {
            tree,
            link: Mutex::new(None),
            answered: Mutex::new(None),
            exits: Mutex::new(exits),
            labels: Mutex::new(HashMap::new()),
            pids: Mutex::new(Vec::new()),
            usage: Mutex::new(Usage::new()),
        }
    }

    pub(super) fn cluster(&self) -> &str {
        self.tree.name()
    }

    /// The link to this tree's daemon, proven first; `None` when it is not (or not ours).
    fn link(&self) -> Option<Arc<Link>> {
        let parent = std::os::unix::process::parent_id();
        let mut link = self.link.lock().expect("the link lock is never poisoned");
        if let Some((_, l)) = link.as_ref().filter(|(pid, _)| *pid == parent) {
            return Some(Arc::clone(l));
        }
        *link = match owner::daemon(&self.tree) {
            owner::Daemon::Serving(pid) => {
                let meta = &self.tree.meta;
                Some((
                    pid,
                    Arc::new(Link::new(
                        self.tree.port,
                        pid,
                        meta.supervisor_user.as_deref().unwrap_or_default(),
                        meta.supervisor_password.as_deref().unwrap_or_default(),
                    )),
                ))
            }
            _ => None,
        };
        link.as_ref().map(|(_, l)| Arc::clone(l))
    }

    /// The exposition text of one scrape. What does not depend on the daemon's answer (the
    /// usage of the processes it reported last time, events.log) is read while it is awaited.
    pub(super) async fn scrape(&self, format: Format) -> String {
        let (answer, mut ahead) = match self.link() {
            Some(link) => {
                let (answer, ahead) = tokio::join!(link.all_process_info(DAEMON_DEADLINE), async {
                    self.read_ahead()
                });
                (Some(answer), ahead)
            }
            None => (None, self.read_ahead()),
        };
        let (daemon_state, infos) = match answer {
            Some(Ok(infos)) => (Some(DAEMON_RUNNING), infos),
            Some(Err(e)) if e.fault_code() == Some(fault::SHUTDOWN_STATE) => {
                (Some(DAEMON_SHUTDOWN), Vec::new())
            }
            Some(Err(e)) => {
                self.note(Some(&e));
                *self.link.lock().expect("the link lock is never poisoned") = None;
                (None, Vec::new())
            }
            None => (None, Vec::new()),
        };
        if daemon_state.is_some() {
            self.note(None);
        }
        let mut usage = self.usage.lock().expect("never poisoned");
        let programs: Vec<Program> = infos
            .iter()
            .map(|p| {
                let running = matches!(p.state, state::STARTING | state::RUNNING | state::STOPPING);
                Program {
                    labels: self.labels(&p.name, &p.group),
                    state: p.state,
                    exit_status: p.exitstatus,
                    running,
                    start: p.start,
                    usage: if running {
                        ahead.remove(&p.pid).or_else(|| usage.of(p.pid))
                    } else {
                        None
                    },
                }
            })
            .collect();
        let pids: Vec<u32> = programs
            .iter()
            .zip(&infos)
            .filter(|(p, _)| p.running)
            .map(|(_, i)| i.pid)
            .collect();
        usage.keep_only(&pids);
        drop(usage);
        *self.pids.lock().expect("never poisoned") = pids;
        Snapshot {
            cluster: self.tree.name().to_string(),
            daemon_state,
            exits: self.exit_counts(&infos),
            programs,
        }
        .encode(format)
    }

    /// The usage of the processes the last answer reported running, and events.log's new lines.
    fn read_ahead(&self) -> HashMap<u32, (f64, u64)> {
        self.exits
            .lock()
            .expect("the exit counts are never poisoned")
            .catch_up();
        let pids = self.pids.lock().expect("never poisoned").clone();
        let mut usage = self.usage.lock().expect("never poisoned");
        pids.into_iter()
            .filter_map(|pid| Some((pid, usage.of(pid)?)))
            .collect()
    }

    /// Logs (to the exporter's log) that the daemon stopped or started answering.
    fn note(&self, error: Option<&Error>) {
        let mut answered = self.answered.lock().expect("never poisoned");
        let now = error.is_none();
        if *answered != Some(now) {
            match error {
                Some(e) => logln!("mup-metrics: supervisord did not answer: {e}"),
                None if answered.is_some() => logln!("mup-metrics: supervisord answers again"),
                None => {}
            }
            *answered = Some(now);
        }
    }

    /// Every known program has a count, zero included, so alerts on its increase work from the
    /// first scrape.
    fn exit_counts(&self, infos: &[ProcessInfo]) -> Vec<(Arc<Labels>, u64)> {
        let exits = self
            .exits
            .lock()
            .expect("the exit counts are never poisoned");
        let mut known: BTreeMap<&str, &str> = infos
            .iter()
            .map(|p| (p.name.as_str(), p.group.as_str()))
            .collect();
        known.extend(
            self.tree
                .members
                .iter()
                .map(|m| (m.program.as_str(), m.group())),
        );
        for (name, group) in &exits.groups {
            known.entry(name).or_insert(group);
        }
        known
            .into_iter()
            .map(|(name, group)| {
                let n = exits.counts.get(name).copied().unwrap_or(0);
                (self.labels(name, group), n)
            })
            .collect()
    }

    fn labels(&self, name: &str, group: &str) -> Arc<Labels> {
        let mut cache = self
            .labels
            .lock()
            .expect("the label cache is never poisoned");
        if let Some(l) = cache.get(name).filter(|l| l.group == group) {
            return Arc::clone(l);
        }
        let mut l = Labels {
            name: name.to_string(),
            group: group.to_string(),
            cluster: self.tree.name().to_string(),
            ..Labels::default()
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
        let l = Arc::new(l);
        cache.insert(name.to_string(), Arc::clone(&l));
        l
    }
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
