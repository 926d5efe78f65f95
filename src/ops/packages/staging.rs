//! The temporary `storage/packages/.download-*` directories an install downloads and unpacks
//! into. Every install holds `storage/packages/.downloads.lock` shared while its directory
//! exists, so one a killed install left behind is told from one in use: when an install can
//! take that lock exclusively, no other install runs, and every `.download-*` is stale and
//! removed. While another install runs, nothing is removed (the next install tries again).

use crate::ui::Ui;
use anyhow::{bail, Context};
use std::fs::{File, TryLockError};
use std::path::Path;
use std::time::{Duration, Instant};

/// The prefix of the temporary directories.
pub(crate) const PREFIX: &str = ".download-";

/// How long an install waits for another one's brief removal of stale directories.
const WAIT: Duration = Duration::from_secs(30);

/// Removes the stale `.download-*` directories of `packages` when no install runs, then
/// returns the lock file held shared: keep it until the temporary directory is gone.
pub(crate) fn enter(ui: &Ui, packages: &Path) -> anyhow::Result<File> {
    let path = packages.join(".downloads.lock");
    let file = crate::system::flock::open(&path)?;
    match file.try_lock() {
        Ok(()) => {
            remove_stale(ui, packages);
            file.unlock()
                .with_context(|| format!("cannot unlock {}", path.display()))?;
        }
        Err(TryLockError::WouldBlock) => {} // another install runs: its directory stays
        Err(TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
    // An exclusive holder only removes stale directories, so this wait is short.
    let start = Instant::now();
    loop {
        match file.try_lock_shared() {
            Ok(()) => return Ok(file),
            Err(TryLockError::WouldBlock) if start.elapsed() < WAIT => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(TryLockError::WouldBlock) => {
                bail!(
                    "gave up waiting for {} after {} s",
                    path.display(),
                    WAIT.as_secs()
                )
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
    }
}

/// Removes every `.download-*` directory of `packages` (no install holds the lock). A
/// directory that cannot be removed is named and kept.
fn remove_stale(ui: &Ui, packages: &Path) {
    let Ok(entries) = std::fs::read_dir(packages) else {
        return;
    };
    for e in entries.flatten() {
        let stale = e
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(PREFIX))
            && e.file_type().is_ok_and(|t| t.is_dir());
        if stale {
            if let Err(err) = std::fs::remove_dir_all(e.path()) {
                warnln!(
                    ui,
                    "cannot remove the stale download {}: {err}",
                    e.path().display()
                );
            }
        }
    }
}
