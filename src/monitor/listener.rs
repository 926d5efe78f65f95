//! `mup monitor events --dir TREE`: the event listener supervisord runs for a cluster
//! (`[eventlistener:mup-events]`, subscribed to PROCESS_STATE). It speaks supervisord's
//! listener protocol on stdin/stdout, appends one JSON line per transition to events.log and
//! runs the hooks of meta.yaml ([`super::hooks`]). Every event is acknowledged, whatever
//! fails: a listener that stops answering would make the daemon buffer (and drop) every later
//! event. Its own messages go to stderr, which supervisord writes to its log file. On SIGTERM
//! (supervisord's stop), SIGINT, SIGHUP or the end of stdin (the daemon is gone) it lets
//! running hooks finish, bounded, kills what is left of them, and exits.

use super::hooks::Hooks;
use super::{Event, LOG_MAX_BYTES};
use crate::deployment::meta::Hook;
use crate::deployment::naming::Service;
use crate::deployment::Tree;
use std::collections::BTreeMap;
use std::io::{BufRead, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Runs the listener until supervisord stops it or closes its stdin.
pub(crate) fn run(dir: &Path) -> anyhow::Result<()> {
    let mut state = Listener::new(dir)?;
    let hooks = state.hooks.clone();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ])?;
    let on_signal = hooks.clone();
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            let name = signal_hook::low_level::signal_name(signal).unwrap_or("a signal");
            on_signal.stop(name);
            std::process::exit(0);
        }
    });
    let served = serve(&mut state);
    hooks.stop("the end of the listener's input");
    served
}

/// The listener protocol, until the daemon closes stdin.
fn serve(state: &mut Listener) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut output = std::io::stdout().lock();
    loop {
        output.write_all(b"READY\n")?;
        output.flush()?;
        let mut header = String::new();
        if input.read_line(&mut header)? == 0 {
            return Ok(()); // the daemon is gone
        }
        let fields = tokens(&header);
        let len: usize = fields.get("len").and_then(|l| l.parse().ok()).unwrap_or(0);
        let mut payload = vec![0u8; len];
        input.read_exact(&mut payload)?;
        let name = fields.get("eventname").copied().unwrap_or_default();
        if let Some(to) = name.strip_prefix("PROCESS_STATE_") {
            state.handle(to, &String::from_utf8_lossy(&payload));
        }
        output.write_all(b"RESULT 2\nOK")?;
        output.flush()?;
    }
}

/// `key:value` pairs separated by spaces (the header, and a process-state payload).
fn tokens(text: &str) -> BTreeMap<&str, &str> {
    text.split_whitespace()
        .filter_map(|t| t.split_once(':'))
        .collect()
}

/// The event a PROCESS_STATE_`to` payload describes, received `now`.
fn event(to: &str, payload: &str, now: SystemTime) -> Option<Event> {
    let f = tokens(payload);
    Some(Event {
        time: humantime::format_rfc3339_millis(now).to_string(),
        program: f.get("processname")?.to_string(),
        group: f.get("groupname")?.to_string(),
        from: f.get("from_state")?.to_string(),
        to: to.to_string(),
        expected: f.get("expected").map(|e| *e == "1"),
        pid: f.get("pid").and_then(|p| p.parse().ok()).filter(|p| *p > 0),
        exit_status: None,
    })
}

/// The exit status of the last `exited: <program> (...)` line in supervisord's log: the event
/// does not carry it, and supervisord writes that line before it sends the event.
fn exit_status(supervisor_log: &Path, program: &str) -> Option<i32> {
    let mut f = std::fs::File::open(supervisor_log).ok()?;
    let size = f.metadata().ok()?.len();
    f.seek(std::io::SeekFrom::Start(size.saturating_sub(64 * 1024)))
        .ok()?;
    let mut tail = Vec::new();
    f.read_to_end(&mut tail).ok()?;
    let text = String::from_utf8_lossy(&tail);
    let marker = format!("exited: {program} (");
    let line = text.lines().rev().find(|l| l.contains(&marker))?;
    let detail = line.split_once(&marker)?.1;
    if let Some(code) = detail.strip_prefix("exit status ") {
        return code
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok();
    }
    let signal = detail.strip_prefix("terminated by ")?;
    let name = signal.split([';', ' ']).next()?;
    super::signal_number(name).map(|n| -n)
}

struct Listener {
    tree: Tree,
    events_log: PathBuf,
    meta_stamp: Option<SystemTime>,
    hooks: Hooks,
}

impl Listener {
    fn new(dir: &Path) -> anyhow::Result<Listener> {
        let tree = Tree::load(dir)?;
        let events_log = tree.layout.events_log();
        let meta_stamp = modified(&tree.layout.meta_file());
        let logs = tree
            .monitor(Service::Events)
            .and_then(|m| m.log_file.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| tree.layout.default_logs_dir());
        let hooks_log = crate::deployment::layout::hooks_log(&logs);
        let hooks = Hooks::start(tree.layout.root(), hooks_log);
        Ok(Listener {
            tree,
            events_log,
            meta_stamp,
            hooks,
        })
    }

    /// Starts the event's hooks, then records it (a stop that has seen the line knows its
    /// hooks are running); every failure is reported on stderr only.
    fn handle(&mut self, to: &str, payload: &str) {
        let Some(mut ev) = event(to, payload, SystemTime::now()) else {
            logln!("mup-events: unreadable PROCESS_STATE_{to} payload: {payload:?}");
            return;
        };
        // Its own transitions reach the listener only once it runs again, late: not recorded.
        if Service::from_program(&ev.program) == Some(Service::Events) {
            return;
        }
        if matches!(ev.to.as_str(), "EXITED" | "BACKOFF") {
            ev.exit_status = exit_status(&self.tree.layout.supervisor_log(), &ev.program);
        }
        self.refresh();
        for hook in self.tree.meta.hooks.iter().filter(|h| fires(h, &ev)) {
            let label = format!("{:?} for {} {}", hook.command, ev.program, ev.to);
            self.hooks.run(hook, hook_env(&self.tree, &ev), label);
        }
        if let Err(e) = append(&self.events_log, &ev) {
            logln!(
                "mup-events: cannot write {}: {e}; event: {}",
                self.events_log.display(),
                serde_json::to_string(&ev).unwrap_or_default()
            );
        }
    }

    /// Picks up hooks changed by `mup gen` since the listener started.
    fn refresh(&mut self) {
        let stamp = modified(&self.tree.layout.meta_file());
        if stamp == self.meta_stamp {
            return;
        }
        match Tree::load(self.tree.layout.root()) {
            Ok(t) => {
                self.tree = t;
                self.meta_stamp = stamp;
            }
            Err(e) => logln!("mup-events: keeping the hooks read before: {e:#}"),
        }
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Appends one JSON line, rotating the file first when it would grow past the limit.
fn append(events_log: &Path, ev: &Event) -> std::io::Result<()> {
    let mut line = serde_json::to_string(ev).map_err(std::io::Error::other)?;
    line.push('\n');
    let size = std::fs::metadata(events_log).map(|m| m.len()).unwrap_or(0);
    if size > 0 && size + line.len() as u64 > LOG_MAX_BYTES {
        super::rotate(events_log)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(events_log)?;
    // One write: lines of concurrent writers (there are none) or readers never interleave.
    f.write_all(line.as_bytes())
}

/// True when `hook` is for the transition `ev`.
fn fires(hook: &Hook, ev: &Event) -> bool {
    hook.on
        .iter()
        .any(|on| *on == ev.to || (on == "EXITED_UNEXPECTED" && ev.unexpected_exit()))
}

/// The variables a hook gets.
fn hook_env(tree: &Tree, ev: &Event) -> Vec<(&'static str, String)> {
    let text = |v: Option<String>| v.unwrap_or_default();
    let mut env = vec![
        ("MUP_CLUSTER", tree.name().to_string()),
        ("MUP_CLUSTER_DIR", tree.layout.root().display().to_string()),
        ("MUP_TIME", ev.time.clone()),
        ("MUP_PROGRAM", ev.program.clone()),
        ("MUP_GROUP", ev.group.clone()),
        ("MUP_FROM_STATE", ev.from.clone()),
        ("MUP_TO_STATE", ev.to.clone()),
        (
            "MUP_EXPECTED",
            text(ev.expected.map(|e| if e { "1" } else { "0" }.to_string())),
        ),
        ("MUP_PID", text(ev.pid.map(|p| p.to_string()))),
        (
            "MUP_EXIT_STATUS",
            text(ev.exit_status.map(|s| s.to_string())),
        ),
    ];
    if let Some(m) = tree.members.iter().find(|m| m.program == ev.program) {
        env.push(("MUP_ROLE", m.role.meta_type().to_string()));
        env.push(("MUP_HOST", m.host.clone()));
        env.push(("MUP_PORT", m.port.to_string()));
        env.push(("MUP_REPLICA_SET", text(m.replica_set.clone())));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn reads_an_exited_payload() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let ev = event(
            "EXITED",
            "processname:mongod-30000 groupname:mongod-servers from_state:RUNNING expected:0 pid:4242",
            now,
        )
        .expect("parses");
        assert_eq!(ev.time, "2023-11-14T22:13:20.123Z");
        assert_eq!(
            (ev.program.as_str(), ev.group.as_str(), ev.from.as_str()),
            ("mongod-30000", "mongod-servers", "RUNNING")
        );
        assert_eq!((ev.expected, ev.pid), (Some(false), Some(4242)));
        assert!(ev.unexpected_exit());
        let hook = Hook {
            on: vec!["EXITED_UNEXPECTED".into()],
            command: "true".into(),
            ..Hook::default()
        };
        assert!(fires(&hook, &ev));
        let starting = event(
            "STARTING",
            "processname:mongod-30000 groupname:mongod-servers from_state:EXITED tries:0",
            now,
        )
        .expect("parses");
        assert!(!fires(&hook, &starting));
        assert_eq!(starting.expected, None);
    }

    #[test]
    fn finds_the_exit_status_in_the_daemon_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("supervisor.log");
        std::fs::write(
            &log,
            "2026-01-01 10:00:00,000 WARN exited: mongod-30000 (exit status 14; not expected)\n\
             2026-01-01 10:00:01,000 INFO spawned: 'mongod-30000' with pid 7\n\
             2026-01-01 10:00:09,000 WARN exited: mongod-30001 (terminated by SIGKILL; not expected)\n",
        )
        .expect("write");
        assert_eq!(exit_status(&log, "mongod-30000"), Some(14));
        assert_eq!(exit_status(&log, "mongod-30001"), Some(-9));
        assert_eq!(exit_status(&log, "mongod-3000"), None);
    }
}
