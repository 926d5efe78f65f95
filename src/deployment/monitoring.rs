//! What the tree fixes about its monitoring programs, so that gen (which checks meta.yaml and
//! renders the programs) and the programs themselves ([`crate::monitor`]) agree: the states a
//! hook may name, a hook's longest time limit, how long the event listener may take to stop,
//! and how events.log and hooks.log are rotated.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a hook's `on` list may name: the states supervisord reports, and an unexpected exit.
pub(crate) const HOOK_STATES: [&str; 8] = [
    "STARTING",
    "RUNNING",
    "BACKOFF",
    "STOPPING",
    "STOPPED",
    "EXITED",
    "EXITED_UNEXPECTED",
    "FATAL",
];

/// events.log and hooks.log are rotated when they would grow past this size...
pub(crate) const LOG_MAX_BYTES: u64 = 10 * 1024 * 1024;
/// ...keeping this many older files (events.log.1 is the newest).
pub(crate) const LOG_BACKUPS: u32 = 3;

/// The longest `timeout` meta.yaml may set, in seconds.
pub(crate) const MAX_TIMEOUT_SECS: u64 = 3600;
/// How long a stopping listener lets running hooks finish.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(10);
/// supervisord's `stopwaitsecs` for the listener: the grace, the kill, and a margin, so the
/// daemon's SIGKILL never comes before the listener has killed what is left.
pub(crate) const LISTENER_STOP_WAIT_SECS: u64 = STOP_GRACE.as_secs() + 5;

/// `events.log.<i>`
pub(crate) fn backup(events_log: &Path, i: u32) -> PathBuf {
    let mut name = events_log.as_os_str().to_owned();
    name.push(format!(".{i}"));
    PathBuf::from(name)
}
