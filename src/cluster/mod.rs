//! `mup cluster` and `mup playground`: named clusters under `$MUP_HOME/storage/clusters`,
//! composed from gen (the tree) and ctl (the daemon) — no second way to start a process.

mod deploy;
mod destroy;
mod display;
mod migrate;
mod playground;
mod servers;

pub(crate) use deploy::deploy;
use deploy::deploy_topology;
pub(crate) use destroy::destroy;
pub(crate) use display::{display, list};
pub(crate) use migrate::migrate;
pub(crate) use playground::{existing_playground, playground_start};

use crate::child;
use crate::ctl::{daemon, ops, Member, Tree};
use crate::error::InputError;
use crate::layout;
use crate::model::{self, Role};
use anyhow::{bail, Context};
use std::io::{BufRead, IsTerminal, Write};
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
    bin_path: Option<&Path>,
    version: Option<&str>,
    source: &crate::packages::Source,
    yes: bool,
) -> anyhow::Result<Binaries> {
    let bin_path = match (bin_path, version) {
        (Some(p), _) => layout::absolute(p),
        (None, Some(v)) => {
            let exact = crate::packages::install(v, source, &|q| confirm(q, yes))?;
            return Ok(Binaries {
                bin_path: crate::packages::bin_dir(&exact),
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

/// Asks on a terminal; without one, `--yes` is required.
pub(crate) fn confirm(question: &str, yes: bool) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(InputError::new(
            "--yes",
            "",
            format!(
                "stdin is not a terminal, so this cannot be confirmed: pass --yes ({question})"
            ),
        )
        .into());
    }
    out!("{question} [y/N] ")?;
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        bail!("cancelled")
    }
}

/// The tree of cluster `name`, which must exist and be supervisord-managed.
pub(crate) fn load(name: &str) -> anyhow::Result<Tree> {
    Tree::load(&crate::ctl::named_cluster_dir(name, "NAME")?)
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
    let (user, secured) = crate::security::uri_parts(tree, password);
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
        .map(Member::address)
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
                    .map(Member::address)
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
pub(crate) fn connect(name: &str) -> anyhow::Result<()> {
    let tree = load(name)?;
    let secured = tree.meta.security.clone().unwrap_or_default();
    // With auth, the shell gets the user and password from a private script, not from
    // its command line: the URI carries neither (a user without a password makes it ask).
    let uris = match secured.auth {
        true => with_options(&tree, "", &crate::security::uri_parts(&tree, false).1),
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
        outln!("{uri}")?;
        bail!(
            "no MongoDB shell found: looked for {} in {} and on PATH; the connection string is above",
            shells.join(" and "),
            bin_path.display()
        );
    };
    if uris.len() > 1 {
        eprintln!(
            "note: the cluster has {} replica sets; connecting to the first ({uri})",
            uris.len()
        );
    }
    if secured.auth {
        return crate::security::shell::run(&tree, &shell, uri);
    }
    use std::os::unix::process::CommandExt;
    let err = std::process::Command::new(&shell).arg(uri).exec();
    Err(err).with_context(|| format!("cannot run {}", shell.display()))
}

/// `mup cluster credentials`: where a secured cluster's secrets are kept.
pub(crate) fn credentials(name: &str) -> anyhow::Result<()> {
    let tree = load(name)?;
    let uris = connection_strings(&tree);
    crate::security::shell::credentials(&tree, &uris)
}

/// `mup cluster start`: the daemon up if needed, then an ordered start.
pub(crate) fn start(
    name: &str,
    roles: &[Role],
    nodes: &[String],
    init: bool,
) -> anyhow::Result<()> {
    let tree = load(name)?;
    let members = tree.select_nodes(roles, nodes)?;
    let _lock = crate::lock::exclusive(&tree.layout)?;
    let client = daemon::up(&tree, false)?;
    let whole = roles.is_empty() && nodes.is_empty();
    ops::start(&tree, &client, &members, whole && init)?;
    if whole {
        for uri in connection_strings(&tree) {
            outln!("  connect: {uri}")?;
        }
    }
    Ok(())
}

/// `mup cluster stop`: an ordered stop; without filters the daemon is shut down too.
pub(crate) fn stop(name: &str, roles: &[Role], nodes: &[String]) -> anyhow::Result<()> {
    let tree = load(name)?;
    let members = tree.select_nodes(roles, nodes)?;
    let _lock = crate::lock::exclusive(&tree.layout)?;
    if roles.is_empty() && nodes.is_empty() {
        return daemon::down(&tree);
    }
    match daemon::running(&tree)? {
        Some(client) => ops::stop(&tree, &client, &members.programs()),
        None => {
            if daemon::stop_unsupervised(&tree, &members.nodes)? == 0 {
                outln!("supervisord for cluster {name} is not running: nothing to stop")?;
            }
            Ok(())
        }
    }
}

/// `mup cluster restart`.
pub(crate) fn restart(name: &str, roles: &[Role], nodes: &[String]) -> anyhow::Result<()> {
    let tree = load(name)?;
    let members = tree.select_nodes(roles, nodes)?;
    let _lock = crate::lock::exclusive(&tree.layout)?;
    let client = daemon::up(&tree, false)?;
    ops::stop(&tree, &client, &members.programs())?;
    ops::start(
        &tree,
        &client,
        &members,
        roles.is_empty() && nodes.is_empty(),
    )
}
