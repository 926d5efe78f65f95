//! The locks of clusters: every command that changes a cluster holds `<cluster>/.mup.lock`,
//! and every command that allocates or records ports holds `$MUP_HOME/storage/.ports.lock`, so
//! that two clusters can never be given the same port. Readers (status, display, list) take
//! none: every file is replaced atomically, never half-written. Holding them (private files,
//! a bounded wait, the holder named) is [`crate::system::flock`]'s.

use crate::deployment::layout::{self, Layout};
use crate::system::flock::hold;
use crate::ui::Ui;
use anyhow::Context;
use std::fs::File;

/// Holds `<cluster>/.mup.lock` exclusively until dropped.
pub(crate) fn exclusive(ui: &Ui, layout: &Layout) -> anyhow::Result<File> {
    let root = layout.root();
    if let Some(target) = std::fs::read_link(root).ok().filter(|_| !root.exists()) {
        // create_dir_all would only say "File exists".
        return Err(crate::error::InputError::new(
            root.display().to_string(),
            "",
            format!(
                "a symbolic link to {}, which does not exist: create that directory, or remove the link",
                target.display()
            ),
        )
        .into());
    }
    std::fs::create_dir_all(layout.root())
        .with_context(|| format!("cannot create {}", layout.root().display()))?;
    hold(
        ui,
        &layout.lock_file(),
        &format!("cluster {}", layout.root().display()),
    )
}

/// Holds the `MUP_HOME`-wide port lock until dropped.
pub(crate) fn ports(ui: &Ui) -> anyhow::Result<File> {
    let path = layout::ports_lock_file();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    hold(ui, &path, "the port allocation of every cluster")
}
