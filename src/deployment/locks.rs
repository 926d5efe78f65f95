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
    private_dirs(layout.root())?;
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
        private_dirs(dir)?;
    }
    hold(ui, &path, "the port allocation of every cluster")
}

/// Creates `dir` and its missing parents with mode 0700 (a cluster's tree, `MUP_HOME` and its
/// `storage/` hold paths, pids and credentials' files: their owner's only); directories that
/// exist keep their mode.
fn private_dirs(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}
