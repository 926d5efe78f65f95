//! Where a cluster's files may go, checked on the paths as they resolve now (every symlink
//! followed, on each side): the tree itself (`--out`), each node's data directory and each
//! log directory, against `/`, the home directory, `MUP_HOME` and every other cluster's tree
//! and data directories. gen checks the paths as written first ([`crate::deployment::model`]);
//! these checks catch what only resolving shows — `/tmp/mine/db` where `/tmp/mine` links into
//! another cluster's tree is that tree's, whatever the path as written says.

use crate::deployment::data_dirs::{resolved, Resolver};
use crate::deployment::layout::Layout;
use crate::deployment::model::{foreign_data_dir, Cluster, Decisions};
use std::path::{Path, PathBuf};

/// A refusal: the field (`--out`, `mongod_servers[1].data_dir`, ...) and why.
pub(crate) type Refusal = (String, String);

/// Why a path whose existing part cannot be resolved is refused: mup could neither prove
/// where it leads nor create it.
fn unresolvable(p: &Path) -> String {
    if let Some(target) = std::fs::read_link(p).ok().filter(|_| !p.exists()) {
        return format!(
            "{} is a symbolic link to {}, which does not exist: create that directory, or remove the link",
            p.display(),
            target.display()
        );
    }
    format!(
        "{} cannot be resolved: a component is a dangling symbolic link, a loop of links or unreadable",
        p.display()
    )
}

fn real(p: &Path) -> PathBuf {
    resolved(p).unwrap_or_else(|| p.to_path_buf())
}

/// The decisions with every path resolved.
fn resolved_decisions(decided: &Decisions) -> Decisions {
    let mut d = decided.clone();
    d.mup_home = real(&decided.mup_home);
    for o in &mut d.others {
        o.root = real(&o.root);
        o.data_dirs = o.data_dirs.iter().map(|p| real(p)).collect();
    }
    d
}

/// The tree itself (`--out`), before anything about its nodes: see [`check_root`].
pub(crate) fn check_tree(layout: &Layout, decided: &Decisions) -> Option<Refusal> {
    if resolved(layout.root()).is_none() {
        return Some(("--out".into(), unresolvable(layout.root())));
    }
    let d = resolved_decisions(decided);
    let home = real(Path::new(&decided.home));
    check_root(layout.root(), &real(layout.root()), &home, &d)
}

/// The first refused place of `cluster`'s nodes and monitoring programs, if any: its data
/// directories, then its log directories.
pub(crate) fn check(cluster: &Cluster, decided: &Decisions) -> Option<Refusal> {
    let d = resolved_decisions(decided);
    let home = real(Path::new(&decided.home));
    let root = real(cluster.layout.root());
    check_data_dirs(cluster, &Layout::new(root), &home, &d).or_else(|| check_log_dirs(cluster, &d))
}

/// What `dir` (resolved) overlaps of another cluster: its tree or one of its data directories.
fn others_overlap(dir: &Path, d: &Decisions) -> Option<String> {
    let overlaps = |p: &Path| p.starts_with(dir) || dir.starts_with(p);
    for o in &d.others {
        if overlaps(&o.root) {
            return Some(format!(
                "overlaps the directory of cluster {:?} ({})",
                o.name,
                o.root.display()
            ));
        }
        if let Some(x) = o.data_dirs.iter().find(|x| overlaps(x)) {
            return Some(format!(
                "overlaps a data directory of cluster {:?} ({})",
                o.name,
                x.display()
            ));
        }
    }
    None
}

/// The tree may not be `/`, contain the home directory or `MUP_HOME`, or overlap another
/// cluster's tree or data.
fn check_root(written: &Path, root: &Path, home: &Path, d: &Decisions) -> Option<Refusal> {
    let why = if root.parent().is_none() {
        Some("is the root directory".to_string())
    } else if home.starts_with(root) {
        Some(format!("contains the home directory {}", home.display()))
    } else if d.mup_home.starts_with(root) {
        Some(format!("contains MUP_HOME ({})", d.mup_home.display()))
    } else {
        others_overlap(root, d)
    }?;
    Some((
        "--out".into(),
        format!("{} (resolved: {}) {why}", written.display(), root.display()),
    ))
}

/// Each data directory, resolved, passes gen's rules, and no two overlap.
fn check_data_dirs(
    cluster: &Cluster,
    layout: &Layout,
    home: &Path,
    d: &Decisions,
) -> Option<Refusal> {
    let mut resolver = Resolver::default();
    let mut mine: Vec<(&str, &PathBuf, PathBuf)> = Vec::new();
    for n in &cluster.nodes {
        let Some(dd) = &n.data_dir else { continue };
        let Some(rd) = resolver.resolved(dd) else {
            return Some((format!("{}.data_dir", n.source), unresolvable(dd)));
        };
        mine.push((n.source.as_str(), dd, rd));
    }
    // Sorted, not each against every other: 10,000 nodes are 10,000 checks, not 50 million.
    let dirs: Vec<&Path> = mine.iter().map(|(_, _, rd)| rd.as_path()).collect();
    let overlap = crate::deployment::nodes::first_overlap(&dirs);
    for (at, (source, dd, rd)) in mine.iter().enumerate() {
        let refuse = |why: String| {
            let field = format!("{source}.data_dir");
            Some((
                field,
                format!("{} resolves to {}: {why}", dd.display(), rd.display()),
            ))
        };
        if let Some(why) = foreign_data_dir(rd, layout, home, d) {
            return refuse(why);
        }
        if let Some((other, _)) = overlap.filter(|(_, then)| *then == at) {
            return refuse(format!(
                "it overlaps the data directory of {}: every node needs its own",
                mine[other].0
            ));
        }
    }
    None
}

/// No log directory (a node's own or `global.log_dir`) lies in or holds another cluster's
/// tree or data: two daemons would write, and rotate, the same files.
fn check_log_dirs(cluster: &Cluster, d: &Decisions) -> Option<Refusal> {
    let nodes = cluster
        .nodes
        .iter()
        .map(|n| (format!("{}.log_dir", n.source), &n.log_file));
    let monitors = cluster
        .monitors
        .iter()
        .map(|m| ("global.log_dir".to_string(), &m.log_file));
    let mut resolver = Resolver::default();
    for (field, file) in nodes.chain(monitors) {
        let Some(dir) = file.parent() else { continue };
        let Some(rd) = resolver.resolved(dir) else {
            return Some((field, unresolvable(dir)));
        };
        if let Some(why) = others_overlap(&rd, d) {
            return Some((
                field,
                format!("{} (resolved: {}) {why}", dir.display(), rd.display()),
            ));
        }
    }
    None
}
