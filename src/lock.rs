//! The per-cluster lock: every command that changes a cluster holds it (flock). Readers
//! (status, display, list) take none: every file is replaced atomically, never half-written.

use crate::layout::Layout;
use anyhow::Context;
use std::fs::{File, OpenOptions, TryLockError};

/// Holds `<cluster>/.mup.lock` exclusively until dropped; waits (and says so) when another
/// mup command holds it.
pub fn exclusive(layout: &Layout) -> anyhow::Result<File> {
    std::fs::create_dir_all(layout.root())
        .with_context(|| format!("cannot create {}", layout.root().display()))?;
    let path = layout.lock_file();
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            eprintln!(
                "waiting for another mup command on {} ...",
                layout.root().display()
            );
            file.lock().context("cannot lock the cluster")?;
        }
        Err(TryLockError::Error(e)) => return Err(e).context("cannot lock the cluster"),
    }
    Ok(file)
}
