//! Data directories and what proves one is mup's to delete: what `mup gen` records about each
//! (whether mup created it and, outside the tree, the path it resolves to with every symlink
//! followed), and the checks `mup cluster destroy` makes on the resolved path before it
//! removes one (docs/safety.md, "Deleting").

use crate::deployment::meta::{Meta, NodeMeta};
use crate::deployment::model::Cluster;
use crate::deployment::ports::Recorded;
use std::collections::HashMap;
use std::fs::{File, TryLockError};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// `path` with every symlink followed: as it is, or, for a path that does not exist yet, as it
/// will be once mup creates its missing directories (its deepest existing ancestor resolved,
/// the missing components appended). `None` when an existing component cannot be resolved.
pub(crate) fn resolved(path: &Path) -> Option<PathBuf> {
    let existing = path
        .ancestors()
        .find(|a| std::fs::symlink_metadata(a).is_ok())?;
    let rest = path.strip_prefix(existing).ok()?;
    let base = std::fs::canonicalize(existing).ok()?;
    Some(if rest.as_os_str().is_empty() {
        base
    } else {
        base.join(rest)
    })
}

/// [`resolved`] for many paths in one go (gen's data directories, 10,000 of them): each
/// directory on the way is looked at once, not once per path under it, and only symlinks are
/// followed by the kernel (`realpath`); any other entry resolves to where its parent does,
/// plus its name.
#[derive(Default)]
pub(crate) struct Resolver {
    known: HashMap<PathBuf, Option<PathBuf>>,
}

impl Resolver {
    pub(crate) fn resolved(&mut self, path: &Path) -> Option<PathBuf> {
        if let Some(known) = self.known.get(path) {
            return known.clone();
        }
        let symlink =
            |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink());
        let found = match (path.parent(), path.file_name()) {
            // Missing, or there and no symlink: where its parent resolves, plus its name.
            (Some(parent), Some(name)) if !symlink(path) => {
                self.resolved(parent).map(|base| base.join(name))
            }
            _ => resolved(path),
        };
        self.known.insert(path.to_path_buf(), found.clone());
        found
    }
}

/// The first component of `path` (itself included) that is a symlink now, if any.
pub(crate) fn symlink_in(path: &Path) -> Option<PathBuf> {
    let mut components: Vec<&Path> = path.ancestors().collect();
    components.reverse();
    components
        .into_iter()
        .find(|a| std::fs::symlink_metadata(a).is_ok_and(|m| m.file_type().is_symlink()))
        .map(Path::to_path_buf)
}

/// Records on each node of a compiled cluster whether mup creates (or created) its data
/// directory, and for one outside the tree, the path it resolves to. A directory the tree
/// already records as created stays so only while it resolves where it did then (a tree made
/// before resolved paths were recorded: while no component of it is a symlink); otherwise
/// something else now lies behind that path, and it is not mup's.
pub(crate) fn record(cluster: &mut Cluster, existing: Option<&Meta>) {
    let root = cluster.layout.root().to_path_buf();
    let mut resolver = Resolver::default();
    // The data directories the tree records as created, looked up by path (not each node
    // against every recorded one); the first record of a path counts.
    let mut created_before: HashMap<&Path, &NodeMeta> = HashMap::new();
    for p in existing.iter().flat_map(|m| &m.nodes) {
        if let Some(d) = p
            .data_dir
            .as_deref()
            .filter(|_| p.data_dir_created == Some(true))
        {
            created_before.entry(Path::new(d)).or_insert(p);
        }
    }
    for n in &mut cluster.nodes {
        let Some(d) = n.data_dir.clone() else {
            continue;
        };
        let outside = !d.starts_with(&root);
        let now = resolver.resolved(&d);
        let prior = created_before.get(d.as_path());
        let created = if std::fs::symlink_metadata(&d).is_err() {
            true
        } else if let Some(p) = prior {
            match &p.data_dir_resolved {
                Some(r) => now.as_deref() == Some(Path::new(r)),
                None => !outside || symlink_in(&d).is_none(),
            }
        } else {
            false
        };
        n.data_dir_created = created && (!outside || now.is_some());
        n.data_dir_resolved = now.filter(|_| outside && n.data_dir_created);
    }
}

/// What destroy does with the data directory `dir` of a node, outside the tree, that the
/// tree records: `Ok(Some(path))` removes `path` (its resolved path), `Ok(None)` means nothing
/// is there, `Err(why)` keeps it. `created` and `recorded` are what gen recorded.
pub(crate) fn removable(
    dir: &Path,
    created: bool,
    recorded: Option<&Path>,
    others: &[Recorded],
) -> Result<Option<PathBuf>, String> {
    if !created {
        return Err("mup did not create it".into());
    }
    if std::fs::symlink_metadata(dir).is_err() {
        return Ok(None);
    }
    let target = match recorded {
        Some(r) => {
            let now =
                std::fs::canonicalize(dir).map_err(|e| format!("it cannot be resolved: {e}"))?;
            if now != r {
                return Err(format!(
                    "it now resolves to {}, not to {} where mup created it",
                    now.display(),
                    r.display()
                ));
            }
            now
        }
        None => {
            if let Some(link) = symlink_in(dir) {
                return Err(format!(
                    "{} is a symlink, and the tree does not record where the directory resolved when mup created it",
                    link.display()
                ));
            }
            dir.to_path_buf()
        }
    };
    // The resolved path itself must be reached through no symlink (it may have changed since).
    if let Some(link) = symlink_in(&target) {
        return Err(format!("{} is a symlink", link.display()));
    }
    if let Some(why) = in_use(&target, others) {
        return Err(why);
    }
    match foreign_content(&target) {
        Some(why) => Err(why),
        None => Ok(Some(target)),
    }
}

/// Why the data directory `dir` is another's now, or `None`: its `mongod.lock` is locked by
/// a live process, or another cluster under `MUP_HOME` records it (compared resolved).
pub(crate) fn in_use(dir: &Path, others: &[Recorded]) -> Option<String> {
    let real = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    if let Some(holder) = lock_holder(&real.join("mongod.lock")) {
        return Some(format!(
            "its mongod.lock is locked by a running process: {holder}"
        ));
    }
    let overlaps = |p: &Path| {
        let p = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        p.starts_with(&real) || real.starts_with(&p)
    };
    for o in others {
        if overlaps(&o.root) {
            return Some(format!(
                "it overlaps the directory of cluster {:?} ({})",
                o.name,
                o.root.display()
            ));
        }
        if let Some(d) = o.data_dirs.iter().find(|d| overlaps(d)) {
            return Some(format!(
                "cluster {:?} records it as its data directory {}",
                o.name,
                d.display()
            ));
        }
    }
    None
}

/// Who holds a flock on `lock` (a node's `mongod.lock`), probed with a non-blocking lock of
/// our own that is released at once; `None` when nobody does, or `lock` is not a regular file
/// (a symlink is not followed).
fn lock_holder(lock: &Path) -> Option<String> {
    if !std::fs::symlink_metadata(lock).ok()?.is_file() {
        return None;
    }
    let file = File::open(lock).ok()?;
    match file.try_lock() {
        Ok(()) => None, // released when `file` is dropped
        Err(TryLockError::WouldBlock) => Some(crate::system::flock::holder(&file)),
        Err(TryLockError::Error(e)) => Some(format!("cannot probe the lock ({e})")),
    }
}

/// Why `dir` holds more than one node's files, or `None`. Looks for what a mongod data
/// directory never contains: a mount point, a file of another user, a cluster tree, or a
/// second node's data (a `mongod.lock` below the top level). Symlinks are not followed.
pub(crate) fn foreign_content(dir: &Path) -> Option<String> {
    let top = std::fs::symlink_metadata(dir).ok()?;
    if !top.is_dir() {
        return Some(format!("{} is not a directory", dir.display()));
    }
    let mut stack = vec![(dir.to_path_buf(), 0usize)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            return Some(format!("{} cannot be read", d.display()));
        };
        for e in entries.flatten() {
            let path = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.dev() != top.dev() {
                return Some(format!("{} is another file system", path.display()));
            }
            if meta.uid() != top.uid() {
                return Some(format!("{} belongs to another user", path.display()));
            }
            let name = e.file_name();
            let name = name.to_string_lossy();
            if matches!(name.as_ref(), "meta.yaml" | "supervisor.ini" | ".mup.lock") {
                return Some(format!(
                    "{} looks like a cluster directory's file",
                    path.display()
                ));
            }
            if name == "mongod.lock" && depth > 0 {
                return Some(format!("{} is another node's lock", path.display()));
            }
            if meta.is_dir() {
                stack.push((path, depth + 1));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn a_missing_tail_resolves_under_its_resolved_parent() {
        let t = tempfile::tempdir().expect("tempdir");
        let real = std::fs::canonicalize(t.path())
            .expect("resolves")
            .join("real");
        std::fs::create_dir(&real).expect("mkdir");
        symlink(&real, t.path().join("link")).expect("symlink");
        assert_eq!(resolved(&t.path().join("link/a/b")), Some(real.join("a/b")));
        // The same, each directory on the way looked at once.
        let mut resolver = Resolver::default();
        std::fs::create_dir_all(real.join("d/e")).expect("mkdir");
        for p in [
            "link/a/b",
            "link/a/c",
            "link",
            "real/x",
            "link/d/e/f",
            "real/d/e",
            "real/d",
        ] {
            assert_eq!(
                resolver.resolved(&t.path().join(p)),
                resolved(&t.path().join(p)),
                "{p}"
            );
        }
        assert_eq!(
            symlink_in(&t.path().join("link/a")),
            Some(t.path().join("link"))
        );
        assert_eq!(symlink_in(&real.join("a")), None);
    }

    #[test]
    fn a_tree_without_resolved_paths_removes_through_no_symlink() {
        let t = tempfile::tempdir().expect("tempdir");
        let base = std::fs::canonicalize(t.path()).expect("resolves");
        let plain = base.join("plain/node");
        std::fs::create_dir_all(&plain).expect("mkdir");
        assert_eq!(removable(&plain, true, None, &[]), Ok(Some(plain.clone())));
        std::fs::create_dir_all(base.join("users/node")).expect("mkdir");
        symlink(base.join("users"), base.join("q")).expect("symlink");
        let why = removable(&base.join("q/node"), true, None, &[]).expect_err("kept");
        assert!(why.contains("is a symlink"), "{why}");
    }

    #[test]
    fn a_directory_another_cluster_records_through_an_alias_is_kept() {
        let t = tempfile::tempdir().expect("tempdir");
        let base = std::fs::canonicalize(t.path()).expect("resolves");
        let node = base.join("real/node");
        std::fs::create_dir_all(&node).expect("mkdir");
        symlink(base.join("real"), base.join("alias")).expect("symlink");
        let other = Recorded {
            name: "b".into(),
            root: base.join("b-tree"),
            data_dirs: vec![base.join("alias/node")],
            ..Recorded::default()
        };
        let why = removable(&node, true, Some(&node), &[other]).expect_err("kept");
        assert!(why.contains("cluster \"b\" records it"), "{why}");
    }
}
