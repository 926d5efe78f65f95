//! What `mup gen` says about a tree: the differences `--check` finds, what `--dry-run` would
//! do, and what a write did.

use crate::deployment::layout::Layout;
use crate::deployment::render::{self, OutFile};
use crate::deployment::write::{self, Comparison, State};
use crate::ui::Ui;
use std::path::{Path, PathBuf};

/// `--dry-run` output: what a write would create, update, remove and keep.
pub(super) fn would_write(
    ui: &Ui,
    cmp: &Comparison,
    files: &[OutFile],
    layout: &Layout,
) -> std::io::Result<()> {
    let rel = |p: &Path| layout.relative(p).display().to_string();
    outln!(ui, "would write to {}:", layout.root().display())?;
    for d in &write::with_missing_parents(&cmp.missing_dirs, layout.root()) {
        let outside = if d.starts_with(layout.root()) {
            ""
        } else {
            " (outside the tree)"
        };
        outln!(ui, "  mkdir      {}{outside}", shown_dir(layout, d))?;
    }
    for (i, s) in &cmp.changed {
        let verb = if *s == State::Missing {
            "create"
        } else {
            "update"
        };
        outln!(ui, "  {verb:<9}  {}", rel(&files[*i].path))?;
    }
    for i in &cmp.unchanged {
        outln!(ui, "  unchanged  {}", rel(&files[*i].path))?;
    }
    for p in cmp.stale.iter().chain(&cmp.extra) {
        outln!(ui, "  remove     {}", rel(p))?;
    }
    for p in &cmp.foreign {
        outln!(ui, "  keep       {} (not made by mup)", rel(p))?;
    }
    Ok(())
}

/// What a write did, beyond the files it wrote: directories made outside the tree, files
/// removed, files left alone.
pub(super) fn written(
    ui: &Ui,
    cmp: &Comparison,
    created: &[PathBuf],
    layout: &Layout,
) -> std::io::Result<()> {
    let rel = |p: &Path| layout.relative(p).display().to_string();
    for d in created.iter().filter(|d| !d.starts_with(layout.root())) {
        noteln!(ui, "created {} (outside the tree)", shown_dir(layout, d));
    }
    for p in &cmp.stale {
        outln!(ui, "removed {} (staged by an interrupted gen)", rel(p))?;
    }
    for p in &cmp.extra {
        outln!(
            ui,
            "removed {} (no longer in the tree; gen never removes a data directory)",
            rel(p)
        )?;
    }
    for p in &cmp.foreign {
        warnln!(
            ui,
            "{} was not made by mup and is left alone; supervisord loads it through the include",
            rel(p)
        );
    }
    outln!(
        ui,
        "wrote {} ({} files changed, {} unchanged)",
        layout.root().display(),
        cmp.changed.len(),
        cmp.unchanged.len()
    )
}

/// A directory in gen's output: relative inside the tree, absolute for the tree itself and
/// for what lies outside it (data and log directories set in the topology), with a final `/`.
fn shown_dir(layout: &Layout, dir: &Path) -> String {
    let shown = match layout.relative(dir) {
        p if p.as_os_str().is_empty() => dir,
        p => p,
    };
    format!("{}/", shown.display())
}

/// `--check` output: one line per difference, with a diff for files that are not secret.
pub(super) fn differences(
    ui: &Ui,
    cmp: &Comparison,
    files: &[OutFile],
    layout: &Layout,
) -> std::io::Result<()> {
    let rel = |p: &Path| layout.relative(p).display().to_string();
    for d in &cmp.missing_dirs {
        outln!(ui, "missing: {}", shown_dir(layout, d))?;
    }
    for (i, state) in &cmp.changed {
        let f = &files[*i];
        let path = &f.path;
        match state {
            State::Missing => outln!(ui, "missing: {}", rel(path))?,
            _ => {
                outln!(ui, "differs: {}", rel(path))?;
                if f.mode == render::PRIVATE {
                    continue; // holds credentials: never print its content
                }
                let old = std::fs::read_to_string(path).unwrap_or_default();
                let diff = similar::TextDiff::from_lines(&old, &f.contents);
                out!(
                    ui,
                    "{}",
                    diff.unified_diff()
                        .context_radius(2)
                        .header("on disk", "generated")
                )?;
            }
        }
    }
    for p in &cmp.stale {
        outln!(ui, "extra: {} (staged by an interrupted gen)", rel(p))?;
    }
    for p in &cmp.extra {
        outln!(ui, "extra: {}", rel(p))?;
    }
    for p in &cmp.foreign {
        outln!(
            ui,
            "extra: {} (not made by mup; supervisord loads it through the include)",
            rel(p)
        )?;
    }
    Ok(())
}
