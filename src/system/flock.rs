//! Lock files held with flock: which locks exist is [`crate::deployment::locks`]'s; this
//! module opens and holds them.
//!
//! Lock files are created mode 0600: flock needs only a readable descriptor, so a lock file
//! others can open is a lock others can hold forever. Waiting is bounded
//! (`MUP_LOCK_TIMEOUT` seconds, default [`DEFAULT_WAIT`]) and the message names the holder.

use crate::ui::Ui;
use anyhow::{bail, Context};
use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a command waits for a lock before it gives up (exit 1).
pub(crate) const DEFAULT_WAIT: Duration = Duration::from_secs(120);

fn wait_limit() -> Duration {
    std::env::var("MUP_LOCK_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(DEFAULT_WAIT)
}

/// Opens (creates) the lock file `path`, private to its owner; locking it is the caller's.
pub(crate) fn open(path: &Path) -> anyhow::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // A lock file from an older mup, or created under another umask: make it private.
    if file.metadata()?.permissions().mode() & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot make {} private", path.display()))?;
    }
    Ok(file)
}

/// Holds the lock file `path` (created 0600) until dropped; `what` names it in messages.
pub(crate) fn hold(ui: &Ui, path: &Path, what: &str) -> anyhow::Result<File> {
    let file = open(path)?;
    let limit = wait_limit();
    let start = Instant::now();
    let mut said = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
        let holder = holder(&file);
        if start.elapsed() >= limit {
            bail!(
                "gave up waiting for {} after {} s: it is held by {} (MUP_LOCK_TIMEOUT sets the wait in seconds)",
                path.display(),
                limit.as_secs_f64(),
                holder
            );
        }
        if !said {
            noteln!(
                ui,
                "waiting for {what}: {} is held by {holder} ...",
                path.display()
            );
            said = true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Who holds the flock on `file`, from /proc/locks: `pid N (command)`.
pub(crate) fn holder(file: &File) -> String {
    let Ok(meta) = file.metadata() else {
        return "another process".into();
    };
    let inode = meta.ino();
    let text = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    for line in text.lines() {
        // "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.get(1) != Some(&"FLOCK") {
            continue;
        }
        let same = f
            .get(5)
            .and_then(|d| d.rsplit(':').next())
            .and_then(|i| i.parse::<u64>().ok())
            == Some(inode);
        if let Some(pid) = f
            .get(4)
            .and_then(|p| p.parse::<u32>().ok())
            .filter(|_| same)
        {
            if pid != std::process::id() {
                return crate::system::procs::describe(pid);
            }
        }
    }
    "another process".into()
}
