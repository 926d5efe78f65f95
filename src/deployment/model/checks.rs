//! The cluster's input checks that stand apart from its build: paths written into
//! supervisord's files, data directories mup must never mix with what it may delete, hooks.

use super::Decisions;
use crate::deployment::ini;
use crate::deployment::layout::Layout;
use crate::deployment::meta::Hook;
use crate::error::{InputError, InputResult};
use std::path::{Path, PathBuf};

/// Checks a path that will be written into a supervisord file.
pub(super) fn ini_path(path: &Path, file: &str, field: &str) -> InputResult<PathBuf> {
    let text = path
        .to_str()
        .ok_or_else(|| InputError::new(file, field, format!("{path:?} is not valid UTF-8")))?;
    match ini::check(text) {
        Some(why) => Err(InputError::new(file, field, why)),
        None => Ok(path.to_path_buf()),
    }
}

/// Why `dd` cannot be a node's data directory, or `None`: it may not be, contain or lie in
/// anything mup must never delete or mix with a node's files — `/`, the home directory,
/// `MUP_HOME`, this tree's own files, another cluster's tree or data directories.
pub(crate) fn foreign_data_dir(
    dd: &Path,
    layout: &Layout,
    home: &Path,
    decided: &Decisions,
) -> Option<String> {
    let shown = dd.display();
    let root = layout.root();
    let overlaps = |p: &Path| p.starts_with(dd) || dd.starts_with(p);
    if dd.parent().is_none() {
        return Some(format!("{shown} is the root directory"));
    }
    if home.starts_with(dd) {
        return Some(format!(
            "{shown} contains the home directory {}",
            home.display()
        ));
    }
    if decided.mup_home.starts_with(dd) {
        return Some(format!(
            "{shown} contains MUP_HOME ({})",
            decided.mup_home.display()
        ));
    }
    if root.starts_with(dd) {
        return Some(format!(
            "{shown} contains the cluster directory {} (its configuration and credentials)",
            root.display()
        ));
    }
    if let Some(own) = layout.own_entries().iter().find(|p| overlaps(p)) {
        return Some(format!(
            "{shown} overlaps {}, which mup writes in the cluster directory",
            own.display()
        ));
    }
    for other in &decided.others {
        if overlaps(&other.root) {
            return Some(format!(
                "{shown} overlaps the directory of cluster {:?} ({})",
                other.name,
                other.root.display()
            ));
        }
        if let Some(d) = other.data_dirs.iter().find(|d| overlaps(d)) {
            return Some(format!(
                "{shown} overlaps a data directory of cluster {:?} ({})",
                other.name,
                d.display()
            ));
        }
    }
    if dd.starts_with(&decided.mup_home) && !dd.starts_with(root) {
        return Some(format!(
            "{shown} lies inside MUP_HOME ({}), outside this cluster's directory",
            decided.mup_home.display()
        ));
    }
    None
}

/// Hooks name known states and a command, and need the event listener.
pub(super) fn check_hooks(hooks: &[Hook], events: bool, mf: &str) -> InputResult<()> {
    if !hooks.is_empty() && !events {
        return Err(InputError::new(
            mf,
            "hooks",
            "the event listener runs hooks, but events: false turns it off",
        ));
    }
    for (i, h) in hooks.iter().enumerate() {
        if h.command.trim().is_empty() || h.command.contains('\0') {
            return Err(InputError::new(
                mf,
                format!("hooks[{i}].command"),
                format!("{:?} is not a command", h.command),
            ));
        }
        if h.on.is_empty() {
            return Err(InputError::new(
                mf,
                format!("hooks[{i}].on"),
                format!(
                    "is empty: name states, e.g. [{}]",
                    crate::deployment::monitoring::HOOK_STATES.join(", ")
                ),
            ));
        }
        for (j, on) in h.on.iter().enumerate() {
            if !crate::deployment::monitoring::HOOK_STATES.contains(&on.as_str()) {
                return Err(InputError::new(
                    mf,
                    format!("hooks[{i}].on[{j}]"),
                    format!(
                        "{on:?} is not one of {}",
                        crate::deployment::monitoring::HOOK_STATES.join(", ")
                    ),
                ));
            }
        }
        let max = crate::deployment::monitoring::MAX_TIMEOUT_SECS;
        if let Some(t) = h.timeout.filter(|t| !(1..=max).contains(t)) {
            return Err(InputError::new(
                mf,
                format!("hooks[{i}].timeout"),
                format!("{t} is not a number of seconds from 1 to {max}"),
            ));
        }
    }
    Ok(())
}
