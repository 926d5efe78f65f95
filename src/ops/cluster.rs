//! `mup cluster` and `mup playground`: named clusters under `$MUP_HOME/storage/clusters`,
//! composed from gen (the tree) and ctl (the daemon) — no second way to start a process.

pub(crate) use super::deploy::deploy;
pub(crate) use super::deploy::deploy_topology;
pub(crate) use super::destroy::destroy;
pub(crate) use super::display::{display, list};
pub(crate) use super::migrate::migrate;
pub(crate) use super::playground::{existing_playground, playground_start};

use crate::deployment::layout;
use crate::deployment::model::{self, Role};
use crate::deployment::Node;
use crate::deployment::Tree;
use crate::error::InputError;
use crate::ops::daemon;
use crate::ops::lifecycle;
use crate::system::child;
use crate::ui::Ui;
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the MongoDB binaries are and which version they are.
pub(crate) struct Binaries {
    pub bin_path: PathBuf,
    pub version: String,
}

/// The binaries a command uses: `--bin-path` (its version from `--version` or what `mongod
/// --version` says); else with `--version` alone the installed package of that version,
/// installed first (asking on a terminal unless `yes`); else the directory of `mongod` on PATH.
pub(crate) fn binaries(
    ui: &Ui,
    bin_path: Option<&Path>,
    version: Option<&str>,
    source: &crate::ops::packages::Source,
    yes: bool,
) -> anyhow::Result<Binaries> {
    let bin_path = match (bin_path, version) {
        (Some(p), _) => layout::absolute(p),
        (None, Some(v)) => {
            let exact = crate::ops::packages::install(ui, v, source, &|q| ui.confirm(q, yes))?;
            return Ok(Binaries {
                bin_path: crate::ops::packages::bin_dir(&exact),
                version: exact,
            });
        }
        (None, None) => which::which("mongod")
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .ok_or_else(|| {
                InputError::new("--bin-path", "", "mongod is not on PATH: name the directory holding mongod and mongos with --bin-path, or a version to install with --version (e.g. --version 7.0)")
            })?,
    };
    let mongod = bin_path.join("mongod");
    if !mongod.is_file() {
        return Err(InputError::new(
            "--bin-path",
            "",
            format!("{} has no mongod", bin_path.display()),
        )
        .into());
    }
    let version = match version {
        Some(v) => v.to_string(),
        None => detect_version(&mongod)?,
    };
    Ok(Binaries { bin_path, version })
}

/// The version `mongod --version` starts its `db version v7.0.14 ...` line with (builds may
/// add text after it); a line without one is refused naming the binary.
fn detect_version(mongod: &Path) -> anyhow::Result<String> {
    let out = child::run(
        std::process::Command::new(mongod).arg("--version"),
        child::Bound {
            time: Duration::from_secs(10),
            bytes: 64 * 1024,
        },
        "check that it is a working mongod, or pass --version",
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("db version v"));
    let version = line
        .and_then(|l| l.split_whitespace().next())
        .filter(|v| model::Version::parse(v).is_some());
    match version {
        Some(v) => Ok(v.to_string()),
        None => Err(InputError::new(
            mongod.display().to_string(),
            "--version",
            match line {
                Some(l) => format!(
                    "{:?} does not start with a MongoDB version like 7.0.14: pass --version",
                    format!("db version v{l}")
                ),
                None => "prints no \"db version v...\" line: pass --version".to_string(),
            },
        )
        .into()),
    }
}

/// The tree of cluster `name`, which must exist and be supervisord-managed.
pub(crate) fn load(name: &str) -> anyhow::Result<Tree> {
    Tree::load(&crate::deployment::named_cluster_dir(name, "NAME")?)
}

pub(super) fn log_dir(tree: &Tree) -> PathBuf {
    tree.members
        .first()
        .and_then(|m| m.log_file.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| tree.layout.default_logs_dir())
}

/// MongoDB connection strings: the routers for a sharded cluster, one per replica set
/// otherwise, one per standalone node. A secured cluster's carry the user (not the
/// password), `authSource`, `tls=true` and `tlsCAFile`.
pub(crate) fn connection_strings(tree: &Tree) -> Vec<String> {
    connection_strings_with(tree, false)
}

/// [`connection_strings`], with the password in them when `password`.
pub(crate) fn connection_strings_with(tree: &Tree, password: bool) -> Vec<String> {
    let (user, secured) = crate::deployment::security::uri_parts(tree, password);
    with_options(tree, &user, &secured)
}

/// The connection strings with `user` (`name@`, or empty) and the `extra` options.
pub(crate) fn with_options(tree: &Tree, user: &str, extra: &[String]) -> Vec<String> {
    addresses(tree)
        .into_iter()
        .map(|(hosts, mut options)| {
            options.extend(extra.iter().cloned());
            let query = if options.is_empty() {
                String::new()
            } else {
                format!("?{}", options.join("&"))
            };
            format!("mongodb://{user}{hosts}/{query}")
        })
        .collect()
}

/// Each connection string's hosts and its own options (`replicaSet`, `directConnection`).
fn addresses(tree: &Tree) -> Vec<(String, Vec<String>)> {
    let routers: Vec<String> = tree
        .members
        .iter()
        .filter(|m| m.role == Role::Mongos)
        .map(Node::address)
        .collect();
    if !routers.is_empty() {
        return vec![(routers.join(","), Vec::new())];
    }
    let mut out = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for m in tree.members.iter().filter(|m| m.role == Role::Mongod) {
        match m.replica_set.as_deref() {
            Some(rs) if !seen.contains(&rs) => {
                seen.push(rs);
                let hosts: Vec<String> = tree
                    .members
                    .iter()
                    .filter(|x| x.replica_set.as_deref() == Some(rs))
                    .map(Node::address)
                    .collect();
                out.push((hosts.join(","), vec![format!("replicaSet={rs}")]));
            }
            Some(_) => {}
            None => out.push((m.address(), vec!["directConnection=true".into()])),
        }
    }
    out
}

/// `mup cluster connect`: runs the MongoDB shell (mongosh, or for versions before 6.0 also
/// the legacy mongo) from bin_path or PATH on the cluster's connection string, in place of
/// mup. Without a shell, prints the connection string and says what it looked for.
pub(crate) fn connect(ui: &Ui, name: &str) -> anyhow::Result<()> {
    let tree = load(name)?;
    let secured = tree.meta.security.clone().unwrap_or_default();
    // With auth, the shell gets the user and password from a private script, not from
    // its command line: the URI carries neither (a user without a password makes it ask).
    let uris = match secured.auth {
        true => with_options(
            &tree,
            "",
            &crate::deployment::security::uri_parts(&tree, false).1,
        ),
        false => connection_strings(&tree),
    };
    let uri = uris.first().context("the cluster has no node")?;
    let mut shells = vec!["mongosh"];
    if model::Version::parse(&tree.meta.version).is_some_and(|v| !v.at_least(6, 0)) {
        shells.push("mongo");
    }
    let bin_path = PathBuf::from(&tree.meta.bin_path);
    let found = shells.iter().find_map(|s| {
        let local = bin_path.join(s);
        if local.is_file() {
            Some(local)
        } else {
            which::which(s).ok()
        }
    });
    let Some(shell) = found else {
        outln!(ui, "{uri}")?;
        bail!(
            "no MongoDB shell found: looked for {} in {} and on PATH; the connection string is above",
            shells.join(" and "),
            bin_path.display()
        );
    };
    if uris.len() > 1 {
        noteln!(
            ui,
            "note: the cluster has {} replica sets; connecting to the first ({uri})",
            uris.len()
        );
    }
    if secured.auth {
        return crate::ops::credentials::run(&tree, &shell, uri);
    }
    use std::os::unix::process::CommandExt;
    let err = std::process::Command::new(&shell).arg(uri).exec();
    Err(err).with_context(|| format!("cannot run {}", shell.display()))
}

/// `mup cluster credentials`: where a secured cluster's secrets are kept.
pub(crate) fn credentials(ui: &Ui, name: &str) -> anyhow::Result<()> {
    let tree = load(name)?;
    let uris = connection_strings(&tree);
    crate::ops::credentials::credentials(ui, &tree, &uris)
}

/// `mup cluster start`: the daemon up if needed, then an ordered start.
pub(crate) fn start(
    ui: &Ui,
    name: &str,
    roles: &[Role],
    nodes: &[String],
    init: bool,
) -> anyhow::Result<()> {
    let tree = load(name)?;
    let members = tree.select_nodes(roles, nodes)?;
    let _lock = crate::deployment::locks::exclusive(ui, &tree.layout)?;
    let client = daemon::up(ui, &tree, false)?;
    let whole = roles.is_empty() && nodes.is_empty();
    lifecycle::start(ui, &tree, &client, &members, whole && init)?;
    if whole {
        for uri in connection_strings(&tree) {
            outln!(ui, "  connect: {uri}")?;
        }
    }
    Ok(())
}

/// `mup cluster stop`: an ordered stop; without filters the daemon is shut down too.
pub(crate) fn stop(ui: &Ui, name: &str, roles: &[Role], nodes: &[String]) -> anyhow::Result<()> {
    let tree = load(name)?;
    let members = tree.select_nodes(roles, nodes)?;
    let _lock = crate::deployment::locks::exclusive(ui, &tree.layout)?;
    if roles.is_empty() && nodes.is_empty() {
        return daemon::down(ui, &tree);
    }
    match daemon::running(&tree)? {
        Some(client) => lifecycle::stop(ui, &tree, &client, &members.programs()),
        None => {
            if crate::ops::unsupervised::stop_unsupervised(ui, &tree, &members.nodes)? == 0 {
                outln!(
                    ui,
                    "supervisord for cluster {name} is not running: nothing to stop"
                )?;
            }
            Ok(())
        }
    }
}

/// `mup cluster restart`.
pub(crate) fn restart(ui: &Ui, name: &str, roles: &[Role], nodes: &[String]) -> anyhow::Result<()> {
    let tree = load(name)?;
    let members = tree.select_nodes(roles, nodes)?;
    let _lock = crate::deployment::locks::exclusive(ui, &tree.layout)?;
    let client = daemon::up(ui, &tree, false)?;
    lifecycle::stop(ui, &tree, &client, &members.programs())?;
    lifecycle::start(
        ui,
        &tree,
        &client,
        &members,
        roles.is_empty() && nodes.is_empty(),
    )
}

/// What `mup cluster start|stop|restart --dry-run` prints: the plan of steps, from the tree
/// alone (nothing is asked of the daemon, nothing locked or changed).
pub(crate) fn preview(
    name: &str,
    roles: &[Role],
    nodes: &[String],
    verb: Verb,
    init: bool,
) -> anyhow::Result<String> {
    let tree = load(name)?;
    let members = tree.select_nodes(roles, nodes)?;
    let whole = roles.is_empty() && nodes.is_empty();
    let mut text = String::new();
    if matches!(verb, Verb::Stop | Verb::Restart) {
        if whole && verb == Verb::Stop {
            text += &lifecycle::stop_preview(&tree, &tree.all().programs());
            text += "then supervisord is shut down\n";
            return Ok(text);
        }
        text += &lifecycle::stop_preview(&tree, &members.programs());
    }
    if matches!(verb, Verb::Start | Verb::Restart) {
        text += &lifecycle::start_preview(&tree, &members, whole && init);
    }
    Ok(text)
}

/// Which ordered operation [`preview`] shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    Start,
    Stop,
    Restart,
}
