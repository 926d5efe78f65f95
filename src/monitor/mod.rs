//! Observability of a cluster: the event listener supervisord runs (`mup monitor events`),
//! the Prometheus exporter it supervises (`mup monitor metrics`), and `mup ... events`, which
//! shows what the listener recorded. One transition is one [`Event`], one JSON line of
//! `<cluster>/events.log`.

pub(crate) mod exporter;
mod hook_procs;
pub(crate) mod hooks;
mod http;
mod link;
pub(crate) mod listener;
mod series;
pub(crate) mod show;
mod usage;

pub(crate) use crate::deployment::monitoring::{backup, LOG_BACKUPS, LOG_MAX_BYTES};
use serde::{Deserialize, Serialize};
use std::io::{Read, Seek};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// One process state transition, as supervisord reported it. Stable JSON: fields are only
/// ever added; absent values are `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Event {
    /// When the listener received it: RFC 3339, UTC, milliseconds.
    pub time: String,
    pub program: String,
    pub group: String,
    pub from: String,
    pub to: String,
    /// EXITED only: whether the exit code is one of the program's `exitcodes`.
    pub expected: Option<bool>,
    pub pid: Option<u32>,
    /// EXITED and BACKOFF: the exit code, or minus the signal that killed it (-9: SIGKILL).
    pub exit_status: Option<i32>,
}

impl Event {
    pub(crate) fn unexpected_exit(&self) -> bool {
        self.to == "EXITED" && self.expected == Some(false)
    }
    pub(crate) fn at(&self) -> Option<SystemTime> {
        humantime::parse_rfc3339(&self.time).ok()
    }
}

/// `<cluster>/events.log`, and its rotated files oldest first.
pub(crate) fn log_files(events_log: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = (1..=LOG_BACKUPS)
        .rev()
        .map(|i| backup(events_log, i))
        .filter(|p| p.is_file())
        .collect();
    files.push(events_log.to_path_buf());
    files
}

/// Shifts `path` to `path.1`, `.1` to `.2`, ... keeping [`LOG_BACKUPS`] older files (the
/// oldest is overwritten): the one rotation of events.log and hooks.log.
pub(crate) fn rotate(path: &Path) -> std::io::Result<()> {
    for i in (1..LOG_BACKUPS).rev() {
        let from = backup(path, i);
        if from.exists() {
            std::fs::rename(&from, backup(path, i + 1))?;
        }
    }
    std::fs::rename(path, backup(path, 1))
}

/// The events in `text`, one per JSON line; lines that do not parse are skipped.
pub(crate) fn parse_lines(text: &str) -> impl Iterator<Item = Event> + '_ {
    text.lines()
        .filter_map(|l| serde_json::from_str::<Event>(l).ok())
}

/// Signal numbers of the names supervisord writes in "terminated by SIG...".
pub(crate) fn signal_number(name: &str) -> Option<i32> {
    const NAMES: [&str; 31] = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    NAMES
        .iter()
        .position(|n| *n == name)
        .and_then(|i| i32::try_from(i + 1).ok())
}

/// The events appended to events.log since the last read, across a rotation (the rest of
/// the old file is then events.log.1).
pub(crate) struct Tail {
    path: PathBuf,
    offset: u64,
    inode: Option<u64>,
}

impl Tail {
    /// From the start of the current file.
    pub(crate) fn new(path: PathBuf) -> Tail {
        Tail {
            path,
            offset: 0,
            inode: None,
        }
    }

    /// From the current end of the file: only what is appended from now on.
    pub(crate) fn at_end(path: PathBuf) -> Tail {
        let meta = std::fs::metadata(&path).ok();
        Tail {
            offset: meta.as_ref().map_or(0, |m| m.len()),
            inode: meta.map(|m| m.ino()),
            path,
        }
    }

    pub(crate) fn read_new(&mut self) -> Vec<Event> {
        let Ok(meta) = std::fs::metadata(&self.path) else {
            return Vec::new();
        };
        let mut events = Vec::new();
        if self.inode.is_some_and(|i| i != meta.ino()) {
            let old = backup(&self.path, 1);
            if std::fs::metadata(&old).is_ok_and(|m| Some(m.ino()) == self.inode) {
                events.extend(self.read_from(&old));
            }
            self.offset = 0;
        } else if meta.len() < self.offset {
            self.offset = 0;
        }
        self.inode = Some(meta.ino());
        let path = self.path.clone();
        events.extend(self.read_from(&path));
        events
    }

    fn read_from(&mut self, path: &Path) -> Vec<Event> {
        let mut added = Vec::new();
        let read = std::fs::File::open(path).and_then(|mut f| {
            f.seek(std::io::SeekFrom::Start(self.offset))?;
            f.read_to_end(&mut added)
        });
        if read.is_err() {
            return Vec::new();
        }
        // Whole lines only: a line being written is read the next time.
        let whole = added.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        self.offset += whole as u64;
        parse_lines(&String::from_utf8_lossy(&added[..whole])).collect()
    }
}
