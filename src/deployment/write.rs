//! Writing a rendered tree: all files or none, stale node files removed, data never touched;
//! and comparing a tree on disk with what would be written (`--check`, `--dry-run`).

use crate::deployment::model::{Cluster, Role, Service};
use crate::deployment::render::OutFile;
use anyhow::Context;
use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// How a file on disk compares with the rendered one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Missing,
    Differs,
    Same,
}

/// The comparison of a whole tree with its rendering.
#[derive(Debug, Default)]
pub(crate) struct Comparison {
    /// Indices of rendered files that are missing or differ (content or mode) on disk.
    pub changed: Vec<(usize, State)>,
    /// Indices of rendered files already on disk as rendered.
    pub unchanged: Vec<usize>,
    /// Generated files of nodes (or monitoring programs) no longer in the tree.
    pub extra: Vec<PathBuf>,
    /// Files mup did not make that supervisord's include pattern would load (hand-added
    /// programs or listeners): reported, never removed.
    pub foreign: Vec<PathBuf>,
    /// Directories the tree needs that do not exist yet.
    pub missing_dirs: Vec<PathBuf>,
    /// Staged files ([`STAGED_PREFIX`]) a gen killed before its renames left behind: mup's
    /// own (only a gen holding the cluster lock stages), removed by the next write.
    pub stale: Vec<PathBuf>,
}

/// The name prefix of the temp files a write stages beside their targets.
const STAGED_PREFIX: &str = ".mup-";

impl Comparison {
    /// The tree on disk is exactly what gen writes.
    pub(crate) fn is_clean(&self) -> bool {
        self.is_rendered() && self.stale.is_empty()
    }

    /// Every rendered file is on disk as rendered, nothing else loads: what supervisord and
    /// the nodes read is this rendering, whatever staged leftovers lie beside it.
    pub(crate) fn is_rendered(&self) -> bool {
        self.changed.is_empty()
            && self.extra.is_empty()
            && self.missing_dirs.is_empty()
            && self.foreign.is_empty()
    }
}

fn state_of(file: &OutFile) -> State {
    let Ok(mut on_disk) = fs::File::open(&file.path) else {
        return State::Missing;
    };
    // One open and one stat: the mode and the size from the open file, then the bytes.
    let Ok(meta) = on_disk.metadata() else {
        return State::Differs;
    };
    let want = file.contents.as_bytes();
    if meta.permissions().mode() & 0o777 != file.mode || meta.len() != want.len() as u64 {
        return State::Differs;
    }
    let mut bytes = Vec::with_capacity(want.len());
    match on_disk.read_to_end(&mut bytes) {
        Ok(_) if bytes == want => State::Same,
        _ => State::Differs,
    }
}

/// Compares the rendered files with the tree on disk. Reads only.
pub(crate) fn compare(cluster: &Cluster, files: &[OutFile]) -> Comparison {
    let mut cmp = Comparison::default();
    for (i, f) in files.iter().enumerate() {
        match state_of(f) {
            State::Same => cmp.unchanged.push(i),
            s => cmp.changed.push((i, s)),
        }
    }
    let wanted: BTreeSet<&Path> = files.iter().map(|f| f.path.as_path()).collect();
    let (generated, foreign) = files_on_disk(cluster);
    cmp.extra = generated
        .into_iter()
        .filter(|p| !wanted.contains(p.as_path()))
        .collect();
    cmp.foreign = foreign;
    cmp.stale = staged_leftovers(cluster);
    let mut dirs = cluster.dirs.clone();
    dirs.extend(
        files
            .iter()
            .filter_map(|f| f.path.parent().map(Path::to_path_buf)),
    );
    cmp.missing_dirs = dirs.into_iter().filter(|d| !d.is_dir()).collect();
    cmp
}

/// Regular files named [`STAGED_PREFIX`]* in the tree's root and in conf/*/ (where a write
/// stages), never following a symlink.
fn staged_leftovers(cluster: &Cluster) -> Vec<PathBuf> {
    let conf_dirs = fs::read_dir(cluster.layout.conf_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path());
    let mut stale: Vec<PathBuf> = std::iter::once(cluster.layout.root().to_path_buf())
        .chain(conf_dirs)
        .filter_map(|dir| fs::read_dir(dir).ok())
        .flat_map(|entries| entries.flatten())
        .filter(|e| {
            e.file_name().to_string_lossy().starts_with(STAGED_PREFIX)
                && e.file_type().is_ok_and(|t| t.is_file())
        })
        .map(|e| e.path())
        .collect();
    stale.sort();
    stale
}

/// Files under conf/*/ whose names mup generates (other files there are left alone), and
/// the other files there that supervisord's include (`conf/*/supervisor-*.ini`) would load.
fn files_on_disk(cluster: &Cluster) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let names: BTreeSet<String> = Role::TIERS
        .into_iter()
        .flat_map(|r| [r.conf_file(), r.ini_file(), r.binary().to_string()])
        .chain(Service::ALL.into_iter().map(Service::ini_file))
        .collect();
    let mut generated = Vec::new();
    let mut foreign = Vec::new();
    let Ok(dirs) = fs::read_dir(cluster.layout.conf_dir()) else {
        return (generated, foreign);
    };
    for dir in dirs.flatten() {
        let Ok(entries) = fs::read_dir(dir.path()) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if names.contains(&name) {
                generated.push(e.path());
            } else if name.starts_with("supervisor-") && name.ends_with(".ini") {
                foreign.push(e.path());
            }
        }
    }
    generated.sort();
    foreign.sort();
    (generated, foreign)
}

/// Writes `contents` to `path` atomically: a temp file in the same directory, synced, then
/// renamed into place.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    let tmp = written_beside(path, contents, mode)?;
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Applies a comparison as one step: every new file is first written beside its target
/// (staged) and closed — no descriptor is held, whatever the number of files — and only when
/// all are staged and on disk (one `syncfs` per file system) are they renamed into place
/// (meta.yaml last, as rendered), and the renames made durable by a final `syncfs`. If
/// anything fails before the renames, the staged files and the directories this call created
/// are removed, and the tree is exactly as it was. Then the files of vanished nodes are
/// removed (and their conf directory when it is left empty). Returns the directories it
/// created, missing parents included, each parent before its children.
pub(crate) fn apply(cmp: &Comparison, files: &[OutFile]) -> anyhow::Result<Vec<PathBuf>> {
    let mut created: Vec<PathBuf> = Vec::new();
    let staged = create_dirs(&cmp.missing_dirs, &mut created).and_then(|()| {
        let staged = cmp
            .changed
            .iter()
            .map(|(i, _)| {
                let f = &files[*i];
                Ok((
                    stage(&f.path, f.contents.as_bytes(), f.mode)?,
                    f.path.clone(),
                ))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let paths = staged.iter().map(|(_, path)| path.as_path());
        let file_systems = file_systems(paths.chain(cmp.extra.iter().map(PathBuf::as_path)));
        sync(&file_systems)?;
        Ok((staged, file_systems))
    });
    let (staged, file_systems) = match staged {
        Ok(s) => s,
        Err(e) => {
            // Staged temp files were dropped (deleted) with the error; undo the directories.
            for d in created.iter().rev() {
                let _ = fs::remove_dir(d);
            }
            return Err(e.context("nothing was changed"));
        }
    };
    for (tmp, path) in staged {
        tmp.persist(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    for p in cmp.stale.iter().chain(&cmp.extra) {
        fs::remove_file(p).with_context(|| format!("cannot remove {}", p.display()))?;
        if let Some(dir) = p.parent() {
            // Only succeeds when empty: anything else the user put there stays.
            let _ = fs::remove_dir(dir);
        }
    }
    sync(&file_systems)?;
    Ok(created)
}

/// One directory on each file system that holds `paths` (of files being written).
fn file_systems<'a>(paths: impl Iterator<Item = &'a Path>) -> Vec<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let mut devices = std::collections::HashSet::new();
    let mut last: Option<&Path> = None;
    let mut dirs = Vec::new();
    for dir in paths.filter_map(Path::parent) {
        if last == Some(dir) {
            continue; // files come grouped by directory: each is looked at once
        }
        last = Some(dir);
        if let Ok(meta) = fs::metadata(dir) {
            if devices.insert(meta.dev()) {
                dirs.push(dir.to_path_buf());
            }
        }
    }
    dirs
}

/// Flushes each file system of `dirs` (one `syncfs` each, whatever the number of files):
/// cheaper than one fsync per file, and what makes staged files and renames durable.
fn sync(dirs: &[PathBuf]) -> anyhow::Result<()> {
    for dir in dirs {
        let handle =
            fs::File::open(dir).with_context(|| format!("cannot open {}", dir.display()))?;
        rustix::fs::syncfs(&handle)
            .with_context(|| format!("cannot sync the file system of {}", dir.display()))?;
    }
    Ok(())
}

/// `dir` and its parents that do not exist yet, deepest first.
pub(crate) fn missing_dirs(dir: &Path) -> Vec<PathBuf> {
    dir.ancestors()
        .take_while(|d| !d.exists())
        .map(Path::to_path_buf)
        .collect()
}

/// The directories creating `dirs` makes: each of `dirs` outside `root` preceded by its
/// missing parents (parents first), each once.
pub(crate) fn with_missing_parents(dirs: &[PathBuf], root: &Path) -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for d in dirs {
        let chain = if d.starts_with(root) {
            vec![d.clone()]
        } else {
            missing_dirs(d).into_iter().rev().collect()
        };
        for c in chain {
            if seen.insert(c.clone()) {
                all.push(c);
            }
        }
    }
    all
}

/// After a failed first write of a tree: removes its lock file (then releases `lock`) and
/// the directories `new` ([`missing_dirs`] before the lock created them), each only when
/// empty.
pub(crate) fn remove_new(new: &[PathBuf], lock_file: &Path, lock: fs::File) {
    if new.is_empty() {
        return;
    }
    let _ = fs::remove_file(lock_file);
    drop(lock);
    for d in new {
        let _ = fs::remove_dir(d);
    }
}

/// Creates `dirs` (mode 0700: logs and data are the owner's only), recording each directory
/// it created, parents included, in `created`.
fn create_dirs(dirs: &[PathBuf], created: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for d in dirs {
        create_dir(d, created)?;
    }
    Ok(())
}

/// Creates `dir`, and first its missing parents when there are any (tried in that order: one
/// system call for a directory whose parent exists).
fn create_dir(dir: &Path, created: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    use std::io::ErrorKind;
    use std::os::unix::fs::DirBuilderExt;
    let mkdir = || fs::DirBuilder::new().mode(0o700).create(dir);
    let result = match mkdir() {
        Err(e) if e.kind() == ErrorKind::NotFound => match dir.parent() {
            Some(parent) => {
                create_dir(parent, created)?;
                mkdir()
            }
            None => Err(e),
        },
        other => other,
    };
    match result {
        Ok(()) => created.push(dir.to_path_buf()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists && dir.is_dir() => {}
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
    }
    Ok(())
}

/// Writes a file's new contents to a temp file in its directory and closes it: not yet in
/// place, not yet synced, and removed when the returned path is dropped.
fn stage(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<tempfile::TempPath> {
    Ok(written_beside(path, contents, mode)?.into_temp_path())
}

/// A temp file in `path`'s directory holding `contents` with `mode`, still open.
fn written_beside(
    path: &Path,
    contents: &[u8],
    mode: u32,
) -> anyhow::Result<tempfile::NamedTempFile> {
    let dir = path.parent().context("a file path has a parent")?;
    let mut tmp = tempfile::Builder::new()
        .prefix(STAGED_PREFIX)
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    tmp.write_all(contents)
        .and_then(|()| {
            tmp.as_file()
                .set_permissions(fs::Permissions::from_mode(mode))
        })
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(tmp)
}
