//! The hooks of meta.yaml as the event listener runs them. Each hook is `/bin/sh -c COMMAND`
//! in its own process group, marked with `MUP_HOOK` (see [`super::hook_procs`]); its output
//! (stdout and stderr) goes, line by line and tagged with the hook's number, to `hooks.log`
//! beside the listener's log, rotated like events.log; the listener's own log keeps only its
//! diagnostics. A hook and everything it started is killed at its time limit (`timeout`,
//! default 60 s); at most [`MAX_RUNNING`] run at once. When the listener stops, running hooks
//! get [`STOP_GRACE`] to finish, then whatever is left of them is killed before it exits.

use super::hook_procs::{self, Mark, Target, MARKER};
use crate::deployment::meta::Hook;
use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

/// A hook's time limit when meta.yaml sets none.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
pub(crate) use crate::deployment::monitoring::STOP_GRACE;
/// Hooks running at once; an event that would start more is logged and its hook skipped.
pub(crate) const MAX_RUNNING: usize = 32;
/// How often the janitor reaps and enforces time limits.
const TICK: Duration = Duration::from_millis(50);
/// Longer output lines are cut into pieces of this size.
const MAX_LINE: usize = 16 * 1024;
/// How long a stopping listener waits for the last output of the killed hooks.
const DRAIN_LIMIT: Duration = Duration::from_secs(1);
/// How long the shells of killed hooks may take to exit (SIGKILL is asynchronous).
const REAP_LIMIT: Duration = Duration::from_secs(1);

/// The hooks running for one listener (a handle: clones share them).
#[derive(Clone)]
pub(crate) struct Hooks {
    shared: Arc<Shared>,
}

struct Shared {
    cluster_dir: OsString,
    /// `<listener pid>`: the prefix of every `MUP_HOOK` value of this listener.
    listener: String,
    state: Mutex<State>,
    log: Mutex<HooksLog>,
    /// Output forwarders still reading.
    readers: AtomicUsize,
}

#[derive(Default)]
struct State {
    running: Vec<Running>,
    started: u64,
    closing: bool,
}

struct Running {
    /// Its number in this listener's run (hooks.log names it so).
    n: u64,
    /// The shell's pid, its process group.
    pgid: u32,
    /// The `MUP_HOOK` value.
    id: String,
    label: String,
    child: Child,
    /// Set once the leader (the shell) has been reaped.
    status: Option<ExitStatus>,
    started: Instant,
    limit: Duration,
}

impl Running {
    fn target<'a>(&'a self, cluster_dir: &'a OsString) -> Target<'a> {
        Target {
            groups: std::slice::from_ref(&self.pgid),
            cluster_dir,
            mark: Mark::Hook(&self.id),
        }
    }
}

impl Hooks {
    /// Kills what earlier listeners of the cluster left running (a listener that was
    /// SIGKILLed could not), and starts the janitor thread.
    pub(crate) fn start(cluster_dir: &Path, log: PathBuf) -> Hooks {
        let cluster_dir = cluster_dir.as_os_str().to_owned();
        let left = hook_procs::kill(
            Target {
                groups: &[],
                cluster_dir: &cluster_dir,
                mark: Mark::Any,
            },
            &[],
        );
        if left > 0 {
            logln!(
                "mup-events: killed {left} process(es) an earlier listener's hooks left running"
            );
        }
        let shared = Arc::new(Shared {
            cluster_dir,
            listener: std::process::id().to_string(),
            state: Mutex::new(State::default()),
            log: Mutex::new(HooksLog::new(log)),
            readers: AtomicUsize::new(0),
        });
        let janitor = Arc::clone(&shared);
        std::thread::spawn(move || loop {
            std::thread::sleep(TICK);
            janitor.tick();
        });
        Hooks { shared }
    }

    /// Starts `hook` with `env` and returns at once; `label` (the command and the event)
    /// names it in the logs.
    pub(crate) fn run(&self, hook: &Hook, env: Vec<(&'static str, String)>, label: String) {
        let shared = &self.shared;
        let mut state = shared.lock_state();
        if state.closing {
            logln!("mup-events: {label} not started: the listener is stopping");
            return;
        }
        if state.running.len() >= MAX_RUNNING {
            logln!("mup-events: {label} not started: {MAX_RUNNING} hooks are still running");
            return;
        }
        state.started += 1;
        let n = state.started;
        let id = format!("{}.{n}", shared.listener);
        // One pipe for stdout and stderr, read by a forwarder thread.
        let (reader, out, err) = match std::io::pipe().and_then(|(r, w)| Ok((r, w.try_clone()?, w)))
        {
            Ok(pipe) => pipe,
            Err(e) => {
                logln!("mup-events: {label} could not start: {e}");
                return;
            }
        };
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(&hook.command)
            .current_dir(Path::new(&shared.cluster_dir))
            .envs(env)
            .env(MARKER, &id)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let spawned = cmd.spawn();
        drop(cmd); // our copies of the pipe's write end: the reader sees EOF when the hook's close
        let child = match spawned {
            Ok(c) => c,
            Err(e) => {
                logln!("mup-events: {label} could not start: {e}");
                return;
            }
        };
        shared.log_line(n, &format!("started: {label}, pid {}", child.id()));
        let label = format!("hook {n} {label}");
        shared.readers.fetch_add(1, Ordering::SeqCst);
        let forwarder = Arc::clone(shared);
        std::thread::spawn(move || {
            forwarder.forward(n, reader);
            forwarder.readers.fetch_sub(1, Ordering::SeqCst);
        });
        let limit = hook.timeout.map_or(DEFAULT_TIMEOUT, Duration::from_secs);
        state.running.push(Running {
            n,
            pgid: child.id(),
            id,
            label,
            child,
            status: None,
            started: Instant::now(),
            limit,
        });
    }

    /// Lets running hooks finish (at most [`STOP_GRACE`]), kills what is left of every hook
    /// this listener started, and waits (bounded) for their last output. No hook starts after.
    pub(crate) fn stop(&self, why: &str) {
        let shared = &self.shared;
        shared.lock_state().closing = true;
        let start = Instant::now();
        while start.elapsed() < STOP_GRACE
            && shared
                .lock_state()
                .running
                .iter()
                .any(|r| r.status.is_none())
        {
            std::thread::sleep(TICK);
        }
        let mut state = shared.lock_state();
        for r in &mut state.running {
            if r.status.is_none() {
                if let Ok(Some(status)) = r.child.try_wait() {
                    r.status = Some(status);
                    shared.finished(r, status);
                }
            }
        }
        if state.started == 0 {
            return; // no hook ran: nothing to look for
        }
        // One sweep over every hook of this listener: the groups of the shells still running
        // at once, then whatever carries this listener's mark or descends from it.
        let groups: Vec<u32> = state.running.iter().map(|r| r.pgid).collect();
        let live: Vec<u32> = state
            .running
            .iter()
            .filter(|r| r.status.is_none())
            .map(|r| r.pgid)
            .collect();
        let killed = hook_procs::kill(
            Target {
                groups: &groups,
                cluster_dir: &shared.cluster_dir,
                mark: Mark::Listener(&shared.listener),
            },
            &live,
        );
        for r in state.running.iter().filter(|r| r.status.is_none()) {
            logln!(
                "mup-events: {} was still running {} s after {why}: killed",
                r.label,
                STOP_GRACE.as_secs()
            );
        }
        if killed > 0 {
            let line = format!(
                "{} listener stopping ({why}): killed {killed} process(es) of its hooks\n",
                now()
            );
            shared.write_log(line.as_bytes());
        }
        let deadline = Instant::now() + REAP_LIMIT;
        for r in &mut state.running {
            reap(&mut r.child, deadline);
        }
        state.running.clear();
        drop(state);
        let start = Instant::now();
        while shared.readers.load(Ordering::SeqCst) > 0 && start.elapsed() < DRAIN_LIMIT {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Shared {
    fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reaps finished hooks and kills those past their time limit. A hook whose shell has
    /// exited but left processes behind is kept until its limit, then they are killed.
    fn tick(&self) {
        let mut state = self.lock_state();
        let mut i = 0;
        while i < state.running.len() {
            let r = &mut state.running[i];
            if r.status.is_none() {
                if let Ok(Some(status)) = r.child.try_wait() {
                    r.status = Some(status);
                    self.finished(r, status);
                    if hook_procs::find(r.target(&self.cluster_dir)).is_empty() {
                        state.running.swap_remove(i);
                        continue;
                    }
                }
            }
            let r = &mut state.running[i];
            if r.started.elapsed() >= r.limit {
                let unreaped = r.status.is_none();
                let live: &[u32] = if unreaped { &[r.pgid] } else { &[] };
                let killed = hook_procs::kill(r.target(&self.cluster_dir), live);
                reap(&mut r.child, Instant::now() + REAP_LIMIT);
                let what = if unreaped {
                    "was killed"
                } else {
                    "had left processes running: killed"
                };
                logln!(
                    "mup-events: {} {what} after {} s ({killed} process(es))",
                    r.label,
                    r.limit.as_secs()
                );
                self.log_line(
                    r.n,
                    &format!(
                        "killed after {} s ({killed} process(es))",
                        r.limit.as_secs()
                    ),
                );
                state.running.swap_remove(i);
                continue;
            }
            i += 1;
        }
    }

    /// Logs how a hook's shell ended: to hooks.log always, to the listener's log on failure.
    fn finished(&self, r: &Running, status: ExitStatus) {
        self.log_line(r.n, &format!("ended: {status}"));
        if !status.success() {
            logln!("mup-events: {} failed ({status})", r.label);
        }
    }

    /// One line in hooks.log about hook `n` (not its output).
    fn log_line(&self, n: u64, text: &str) {
        let line = format!("{} hook {n} {}\n", now(), text.replace('\n', " "));
        self.write_log(line.as_bytes());
    }

    /// Copies hook `n`'s output to hooks.log until every process holding the pipe has closed
    /// it, each line prefixed with the time and `hook N |`.
    fn forward(&self, n: u64, mut pipe: impl Read) {
        let mut buf = vec![0u8; 64 * 1024];
        let mut partial: Vec<u8> = Vec::new();
        loop {
            let got = match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(got) => got,
            };
            partial.extend_from_slice(&buf[..got]);
            self.write_log(&frame(n, &mut partial, false));
        }
        self.write_log(&frame(n, &mut partial, true));
    }

    fn write_log(&self, data: &[u8]) {
        if !data.is_empty() {
            self.log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .write(data);
        }
    }
}

/// Waits (until `deadline`) for a SIGKILLed hook's shell; one that does not go (a process in
/// uninterruptible sleep) stays a zombie until the listener exits.
fn reap(child: &mut Child, deadline: Instant) {
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// The whole lines of `pending` (and, at `end`, the rest), prefixed; lines longer than
/// [`MAX_LINE`] are cut. What is framed is removed from `pending`.
fn frame(n: u64, pending: &mut Vec<u8>, end: bool) -> Vec<u8> {
    let prefix = format!("{} hook {n} | ", now());
    let mut out = Vec::new();
    let mut rest: &[u8] = pending;
    loop {
        let cut = match rest.iter().position(|b| *b == b'\n') {
            Some(i) if i < MAX_LINE => i + 1,
            _ if rest.len() >= MAX_LINE => MAX_LINE,
            _ if end && !rest.is_empty() => rest.len(),
            _ => break,
        };
        out.extend_from_slice(prefix.as_bytes());
        out.extend_from_slice(&rest[..cut]);
        if out.last() != Some(&b'\n') {
            out.push(b'\n');
        }
        rest = &rest[cut..];
    }
    let used = pending.len() - rest.len();
    pending.drain(..used);
    out
}

/// hooks.log, rotated at [`super::LOG_MAX_BYTES`] like events.log.
struct HooksLog {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    /// A write error is reported once, not per line.
    failing: bool,
}

impl HooksLog {
    fn new(path: PathBuf) -> HooksLog {
        HooksLog {
            path,
            file: None,
            size: 0,
            failing: false,
        }
    }

    fn write(&mut self, data: &[u8]) {
        match self.try_write(data) {
            Ok(()) => self.failing = false,
            Err(e) => {
                self.file = None;
                if !self.failing {
                    logln!("mup-events: cannot write {}: {e}", self.path.display());
                }
                self.failing = true;
            }
        }
    }

    fn try_write(&mut self, data: &[u8]) -> std::io::Result<()> {
        if self.file.is_some()
            && self.size > 0
            && self.size + data.len() as u64 > super::LOG_MAX_BYTES
        {
            self.file = None;
            super::rotate(&self.path)?;
        }
        let file = match &mut self.file {
            Some(f) => f,
            None => {
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?;
                self.size = f.metadata()?.len();
                self.file.insert(f)
            }
        };
        file.write_all(data)?;
        self.size += data.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_framed_by_line_and_long_lines_are_cut() {
        let mut pending = b"one\ntwo\nthr".to_vec();
        let out = String::from_utf8(frame(3, &mut pending, false)).expect("utf-8");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(lines[0].ends_with(" hook 3 | one") && lines[1].ends_with(" hook 3 | two"));
        assert_eq!(pending, b"thr");
        let out = String::from_utf8(frame(3, &mut pending, true)).expect("utf-8");
        assert!(out.ends_with(" hook 3 | thr\n"), "{out}");
        assert!(pending.is_empty());
        let mut long = vec![b'x'; MAX_LINE * 2 + 5];
        let out = frame(1, &mut long, false);
        assert_eq!(String::from_utf8_lossy(&out).lines().count(), 2);
        assert_eq!(long.len(), 5);
    }

    #[test]
    fn hooks_log_rotates_and_keeps_a_bounded_number_of_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("hooks.log");
        let mut log = HooksLog::new(path.clone());
        let chunk = vec![b'y'; 1024 * 1024];
        for _ in 0..(super::super::LOG_MAX_BYTES / chunk.len() as u64 * 5) {
            log.write(&chunk);
        }
        assert!(!log.failing);
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        assert!(size(&path) <= super::super::LOG_MAX_BYTES);
        let backups = super::super::LOG_BACKUPS;
        for i in 1..=backups {
            assert!(size(&super::super::backup(&path, i)) > 0, "backup {i}");
        }
        assert!(!super::super::backup(&path, backups + 1).exists());
    }
}
