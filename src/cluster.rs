//! `mup cluster` and `mup playground`: named clusters under `$MUP_HOME/storage/clusters`,
//! composed from gen (the tree) and ctl (the daemon) — no second way to start a process.

use crate::ctl::{daemon, ops, procs, status, Member, Tree};
use crate::error::InputError;
use crate::gen::{self, Inputs, Mode};
use crate::layout::{self, Layout};
use crate::legacy;
use crate::meta::{self, Meta};
use crate::model::{self, Role};
use crate::table;
use crate::topology::{NodeSpec, Topology};
use anyhow::{bail, Context};
use serde::Serialize;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Where the MongoDB binaries are and which version they are.
pub struct Binaries {
    pub bin_path: PathBuf,
    pub version: String,
}

/// `--bin-path` or the directory of `mongod` on PATH; `--version` or what `mongod --version` says.
pub fn binaries(bin_path: Option<&Path>, version: Option<&str>) -> anyhow::Result<Binaries> {
    let bin_path = match bin_path {
        Some(p) => layout::absolute(p),
        None => which::which("mongod")
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .ok_or_else(|| {
                InputError::new("--bin-path", "", "mongod is not on PATH: name the directory holding mongod and mongos with --bin-path")
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

/// Parses `db version v7.0.14` from `mongod --version`.
fn detect_version(mongod: &Path) -> anyhow::Result<String> {
    let out = std::process::Command::new(mongod)
        .arg("--version")
        .output()
        .with_context(|| format!("cannot run {} --version", mongod.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.trim().strip_prefix("db version v"))
        .map(|v| v.trim().to_string())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "cannot read the version from `{} --version`; pass --version",
                mongod.display()
            )
        })
}

/// Asks on a terminal; without one, `--yes` is required.
fn confirm(question: &str, yes: bool) -> anyhow::Result<()> {
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
    print!("{question} [y/N] ");
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
pub fn load(name: &str) -> anyhow::Result<Tree> {
    Tree::load(&crate::ctl::named_cluster_dir(name, "NAME")?)
}

/// `mup cluster deploy`.
pub fn deploy(name: &str, topology_path: &Path, bins: &Binaries, yes: bool) -> anyhow::Result<()> {
    let tf = topology_path.display().to_string();
    let topology = crate::topology::load(topology_path, &tf)?;
    deploy_topology(name, topology, tf, bins, yes)
}

fn deploy_topology(
    name: &str,
    topology: Topology,
    label: String,
    bins: &Binaries,
    yes: bool,
) -> anyhow::Result<()> {
    model::check_name(name, "NAME")?;
    let layout = Layout::for_cluster(name);
    refuse_existing(&layout, name)?;
    let given = Meta {
        name: name.to_string(),
        version: bins.version.clone(),
        bin_path: bins.bin_path.display().to_string(),
        ..Meta::default()
    };
    let compiled = gen::compile_inputs(
        Inputs {
            topology,
            topology_label: label,
            meta: given,
            meta_label: "meta".into(),
            meta_dir: PathBuf::from("/"),
        },
        layout.clone(),
        false,
    )?;
    // Ports are checked free before anything is written or started.
    let c = &compiled.cluster;
    let mut held: Vec<String> = c
        .nodes
        .iter()
        .filter(|n| procs::listening(&n.host, n.port))
        .map(|n| format!("{} ({})", n.address(), n.source))
        .collect();
    if procs::listening("127.0.0.1", c.supervisor_port) {
        held.push(format!("127.0.0.1:{} (supervisord)", c.supervisor_port));
    }
    if !held.is_empty() {
        bail!(
            "cannot deploy {name}: ports already in use: {}",
            held.join(", ")
        );
    }
    confirm(
        &format!(
            "Deploy cluster {name} ({} node(s), MongoDB {}) into {}?",
            c.nodes.len(),
            c.version_text,
            layout.root().display()
        ),
        yes,
    )?;
    let _lock = crate::lock::exclusive(&layout)?;
    refuse_existing(&layout, name)?; // another deploy may have won the race for the lock
    gen::apply(&compiled, Mode::Write)?;
    let tree = Tree::load(layout.root())?;
    let client = daemon::up(&tree, false)?;
    ops::start(&tree, &client, &tree.members)?;
    println!("cluster {name} is running");
    for uri in connection_strings(&tree) {
        println!("  connect: {uri}");
    }
    println!(
        "  logs:    {}/supervisor-<program>.log",
        log_dir(&tree).display()
    );
    println!("  manage:  mup cluster display {name}");
    Ok(())
}

fn refuse_existing(layout: &Layout, name: &str) -> anyhow::Result<()> {
    if layout.meta_file().exists() {
        return Err(InputError::new(
            "NAME",
            "",
            format!(
                "cluster {name:?} already exists in {} (destroy it first, or pick another name)",
                layout.root().display()
            ),
        )
        .into());
    }
    Ok(())
}

fn log_dir(tree: &Tree) -> PathBuf {
    tree.members
        .first()
        .and_then(|m| m.log_file.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| tree.layout.default_logs_dir())
}

/// MongoDB connection strings: the routers for a sharded cluster, one per replica set
/// otherwise, one per standalone node.
pub fn connection_strings(tree: &Tree) -> Vec<String> {
    let routers: Vec<String> = tree
        .members
        .iter()
        .filter(|m| m.role == Role::Mongos)
        .map(Member::address)
        .collect();
    if !routers.is_empty() {
        return vec![format!("mongodb://{}/", routers.join(","))];
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
                out.push(format!("mongodb://{}/?replicaSet={rs}", hosts.join(",")));
            }
            Some(_) => {}
            None => out.push(format!("mongodb://{}/", m.address())),
        }
    }
    out
}

/// `-R ROLE` and `-N HOST:PORT` filters (comma lists; both must match, as in tiup).
pub fn select(tree: &Tree, roles: &[String], nodes: &[String]) -> anyhow::Result<Vec<Member>> {
    let roles: Vec<Role> = roles
        .iter()
        .flat_map(|r| r.split(','))
        .map(|r| match r.trim() {
            "config" | "config-server" | "config-servers" | "configsvr" => Ok(Role::ConfigServer),
            "mongod" | "shard" | "mongod-servers" => Ok(Role::Mongod),
            "mongos" | "router" | "mongos-routers" => Ok(Role::Mongos),
            other => Err(InputError::new(
                "-R",
                "",
                format!("{other:?} is not a role: use config, mongod or mongos"),
            )),
        })
        .collect::<Result<_, _>>()?;
    let ids: Vec<&str> = nodes
        .iter()
        .flat_map(|n| n.split(','))
        .map(str::trim)
        .collect();
    for id in &ids {
        if !tree.members.iter().any(|m| same_node(m, id)) {
            let known: Vec<String> = tree.members.iter().map(Member::address).collect();
            return Err(InputError::new(
                "-N",
                "",
                format!(
                    "no node {id:?} in cluster {}; nodes: {}",
                    tree.name(),
                    known.join(", ")
                ),
            )
            .into());
        }
    }
    Ok(tree
        .members
        .iter()
        .filter(|m| roles.is_empty() || roles.contains(&m.role))
        .filter(|m| ids.is_empty() || ids.iter().any(|id| same_node(m, id)))
        .cloned()
        .collect())
}

/// `localhost:30000` and `127.0.0.1:30000` name the same node (ports are unique per machine).
fn same_node(m: &Member, id: &str) -> bool {
    id == m.address()
        || id.rsplit(':').next().and_then(|p| p.parse::<u16>().ok()) == Some(m.port)
            && id.contains(':')
}

/// `mup cluster start`: the daemon up if needed, then an ordered start.
pub fn start(name: &str, roles: &[String], nodes: &[String]) -> anyhow::Result<()> {
    let tree = load(name)?;
    let members = select(&tree, roles, nodes)?;
    let _lock = crate::lock::exclusive(&tree.layout)?;
    let client = daemon::up(&tree, false)?;
    ops::start(&tree, &client, &members)
}

/// `mup cluster stop`: an ordered stop; without filters the daemon is shut down too.
pub fn stop(name: &str, roles: &[String], nodes: &[String]) -> anyhow::Result<()> {
    let tree = load(name)?;
    let members = select(&tree, roles, nodes)?;
    let _lock = crate::lock::exclusive(&tree.layout)?;
    if roles.is_empty() && nodes.is_empty() {
        return daemon::down(&tree);
    }
    match daemon::running(&tree)? {
        Some(client) => ops::stop(&tree, &client, &members),
        None => {
            println!("supervisord for cluster {name} is not running: nothing to stop");
            Ok(())
        }
    }
}

/// `mup cluster restart`.
pub fn restart(name: &str, roles: &[String], nodes: &[String]) -> anyhow::Result<()> {
    let tree = load(name)?;
    let members = select(&tree, roles, nodes)?;
    let _lock = crate::lock::exclusive(&tree.layout)?;
    let client = daemon::up(&tree, false)?;
    ops::stop(&tree, &client, &members)?;
    ops::start(&tree, &client, &members)
}

/// `mup cluster display --json`. Stable: fields are only ever added.
#[derive(Debug, Serialize)]
pub struct Display {
    pub name: String,
    pub version: String,
    pub topology: String,
    pub dir: String,
    pub supervisord: status::Daemon,
    pub connection: Vec<String>,
    pub nodes: Vec<DisplayNode>,
    pub total: usize,
    pub running: usize,
}

#[derive(Debug, Serialize)]
pub struct DisplayNode {
    /// host:port
    pub id: String,
    pub role: String,
    pub replica_set: Option<String>,
    pub program: String,
    pub state: String,
    pub pid: Option<u32>,
    pub uptime_seconds: Option<i64>,
    pub data_dir: Option<String>,
    pub log_file: String,
}

/// `mup cluster display`; exit 3 when a node is not RUNNING. Works with the daemon down.
pub fn display(name: &str, json: bool) -> anyhow::Result<ExitCode> {
    let tree = load(name)?;
    let client = daemon::running(&tree)?;
    let st = status::collect(&tree, client.as_ref(), &tree.members, true)?;
    let nodes: Vec<DisplayNode> = st
        .programs
        .iter()
        .zip(&tree.members)
        .map(|(p, m)| DisplayNode {
            id: m.address(),
            role: p.role.clone(),
            replica_set: p.replica_set.clone(),
            program: p.name.clone(),
            state: p.state.clone(),
            pid: p.pid,
            uptime_seconds: p.uptime_seconds,
            data_dir: m.data_dir.as_ref().map(|d| d.display().to_string()),
            log_file: p.log_file.clone(),
        })
        .collect();
    let running = nodes.iter().filter(|n| n.state == "RUNNING").count();
    let d = Display {
        name: tree.name().to_string(),
        version: tree.meta.version.clone(),
        topology: tree.meta.topology.clone().unwrap_or_default(),
        dir: tree.layout.root().display().to_string(),
        supervisord: st.supervisord,
        connection: connection_strings(&tree),
        total: nodes.len(),
        running,
        nodes,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&d)?);
    } else {
        print!("{}", display_text(&d));
    }
    Ok(if running == d.total {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::EXIT_NOT_RUNNING)
    })
}

fn display_text(d: &Display) -> String {
    let daemon = match d.supervisord.pid {
        Some(pid) => format!("{} ({}, pid {pid})", d.supervisord.url, d.supervisord.state),
        None => format!("{} ({})", d.supervisord.url, d.supervisord.state),
    };
    let mut out = format!(
        "Cluster:     {}\nMongoDB:     {}\nTopology:    {}\nSupervisord: {daemon}\nDirectory:   {}\n",
        d.name, d.version, d.topology, d.dir
    );
    for uri in &d.connection {
        out.push_str(&format!("Connect:     {uri}\n"));
    }
    out.push('\n');
    let rows: Vec<Vec<String>> = d
        .nodes
        .iter()
        .map(|n| {
            vec![
                n.id.clone(),
                n.role.clone(),
                n.replica_set.clone().unwrap_or_else(|| "-".into()),
                n.program.clone(),
                n.state.clone(),
                n.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                n.uptime_seconds
                    .map(table::duration)
                    .unwrap_or_else(|| "-".into()),
                n.data_dir.clone().unwrap_or_else(|| "-".into()),
                n.log_file.clone(),
            ]
        })
        .collect();
    out.push_str(&table::render(
        &[
            "ID",
            "ROLE",
            "REPLICA SET",
            "PROGRAM",
            "STATE",
            "PID",
            "UPTIME",
            "DATA DIR",
            "LOG FILE",
        ],
        &rows,
    ));
    out.push_str(&format!(
        "\nTotal nodes: {}, running: {}, not running: {}\n",
        d.total,
        d.running,
        d.total - d.running
    ));
    out
}

/// `mup cluster list --json` rows.
#[derive(Debug, Serialize)]
pub struct ListRow {
    pub name: String,
    pub version: String,
    /// standalone | replica_set | sharded | legacy (PID-tracked, to migrate)
    pub topology: String,
    pub nodes: usize,
    /// RUNNING | DOWN | LEGACY | ERROR
    pub supervisord: String,
    pub dir: String,
}

/// `mup cluster list`.
pub fn list(json: bool) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(layout::clusters_dir())
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    dirs.sort();
    for dir in dirs {
        let file = dir.join("meta.yaml");
        let shown = file.display().to_string();
        if !file.is_file() {
            continue;
        }
        let row = if meta::is_legacy(&file, &shown).unwrap_or(false) {
            match legacy::load(&file, &shown) {
                Ok(m) => ListRow {
                    name: m.name,
                    version: m.version,
                    topology: "legacy".into(),
                    nodes: m.nodes.len(),
                    supervisord: "LEGACY".into(),
                    dir: dir.display().to_string(),
                },
                Err(_) => continue,
            }
        } else {
            match Tree::load(&dir) {
                Ok(t) => {
                    let state = if !procs::listening("127.0.0.1", t.port) {
                        "DOWN".to_string()
                    } else if daemon::running(&t).ok().flatten().is_some() {
                        "RUNNING".to_string()
                    } else {
                        "ERROR".to_string()
                    };
                    ListRow {
                        name: t.name().to_string(),
                        version: t.meta.version.clone(),
                        topology: t.meta.topology.clone().unwrap_or_default(),
                        nodes: t.members.len(),
                        supervisord: state,
                        dir: dir.display().to_string(),
                    }
                }
                Err(_) => continue,
            }
        };
        rows.push(row);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let table_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.version.clone(),
                r.topology.clone(),
                r.nodes.to_string(),
                r.supervisord.clone(),
                r.dir.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(
            &["NAME", "VERSION", "TOPOLOGY", "NODES", "SUPERVISORD", "DIR"],
            &table_rows
        )
    );
    Ok(())
}

/// `mup cluster destroy`: stop, shut the daemon down, remove the tree (and the data unless
/// `keep_data`), then verify no process of the cluster is alive and no port is held.
pub fn destroy(name: &str, keep_data: bool, yes: bool) -> anyhow::Result<()> {
    let tree = load(name)?;
    let data_dirs: Vec<PathBuf> = tree
        .members
        .iter()
        .filter_map(|m| m.data_dir.clone())
        .collect();
    let what = if keep_data {
        "its data directories are kept"
    } else {
        "its data is deleted"
    };
    confirm(
        &format!(
            "Destroy cluster {name} in {} ({what})?",
            tree.layout.root().display()
        ),
        yes,
    )?;
    let _lock = crate::lock::exclusive(&tree.layout)?;
    daemon::down(&tree)?;
    let alive = leftovers(&tree);
    if !alive.is_empty() {
        bail!(
            "cluster {name}: still alive after shutdown, nothing removed: {}",
            alive.join("; ")
        );
    }
    let root = tree.layout.root();
    if !keep_data {
        for d in data_dirs.iter().filter(|d| !d.starts_with(root)) {
            // Never a directory that contains the cluster, nor one outside any cluster data.
            if root.starts_with(d) || d.parent().is_none() {
                eprintln!(
                    "warning: not removing {}: it contains the cluster directory",
                    d.display()
                );
                continue;
            }
            if d.exists() {
                std::fs::remove_dir_all(d)
                    .with_context(|| format!("cannot remove {}", d.display()))?;
                println!("removed data directory {}", d.display());
            }
        }
        std::fs::remove_dir_all(root)
            .with_context(|| format!("cannot remove {}", root.display()))?;
    } else {
        for entry in std::fs::read_dir(root)?.flatten() {
            let p = entry.path();
            if data_dirs.iter().any(|d| d.starts_with(&p)) {
                continue;
            }
            if p.is_dir() {
                std::fs::remove_dir_all(&p)?;
            } else {
                std::fs::remove_file(&p)?;
            }
        }
        println!(
            "kept data directories: {}",
            data_dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let alive = leftovers(&tree);
    if !alive.is_empty() {
        bail!(
            "cluster {name}: removed, but still alive: {}",
            alive.join("; ")
        );
    }
    println!(
        "cluster {name} destroyed: no process left, ports {} free",
        ports_list(&tree)
    );
    Ok(())
}

fn ports_list(tree: &Tree) -> String {
    let mut p: Vec<String> = tree.members.iter().map(|m| m.port.to_string()).collect();
    p.push(tree.port.to_string());
    p.join(", ")
}

/// Processes or ports of the cluster still alive.
fn leftovers(tree: &Tree) -> Vec<String> {
    let mut alive = Vec::new();
    for m in &tree.members {
        if procs::listening(&m.host, m.port) {
            alive.push(format!("port {} ({}) is held", m.port, m.program));
        }
        if let Some(pid) = m.data_dir.as_deref().and_then(procs::lock_pid) {
            if procs::alive(pid) {
                alive.push(format!("pid {pid} holds {}'s lock", m.program));
            }
        }
    }
    if procs::listening("127.0.0.1", tree.port) {
        alive.push(format!("supervisord port {} is held", tree.port));
    }
    alive
}

/// `mup cluster migrate`: a PID-tracked cluster of the Go mup → supervisord, data in place.
pub fn migrate(name: &str) -> anyhow::Result<()> {
    model::check_name(name, "NAME")?;
    let layout = Layout::for_cluster(name);
    let file = layout.meta_file();
    let shown = file.display().to_string();
    if !file.is_file() {
        return Err(InputError::new(
            "NAME",
            "",
            format!("no cluster {name:?}: {shown} does not exist"),
        )
        .into());
    }
    let _lock = crate::lock::exclusive(&layout)?;
    if !meta::is_legacy(&file, &shown)? {
        println!("cluster {name} is already managed by supervisord: nothing to migrate");
        return Ok(());
    }
    let old = legacy::load(&file, &shown)?;
    if old.name != name {
        return Err(InputError::new(
            &shown,
            "name",
            format!("{:?} does not match the directory name {name:?}", old.name),
        )
        .into());
    }

    // The new tree is compiled (and checked) before any legacy process is touched.
    let compiled =
        gen::compile_inputs(legacy_inputs(&old, &shown, &layout)?, layout.clone(), true)?;
    stop_legacy(&old)?;
    let held: Vec<String> = compiled
        .cluster
        .nodes
        .iter()
        .filter(|n| procs::listening(&n.host, n.port))
        .map(|n| n.address())
        .collect();
    if !held.is_empty() {
        bail!(
            "cluster {name}: after stopping the legacy processes, ports are still in use: {}",
            held.join(", ")
        );
    }
    let kept = layout.root().join("meta.yaml.legacy");
    crate::tree::write_atomic(&kept, &std::fs::read(&file)?, 0o600)?;
    gen::apply(&compiled, Mode::Write)?;
    let tree = Tree::load(layout.root())?;
    let client = daemon::up(&tree, false)?;
    ops::start(&tree, &client, &tree.members)?;
    println!(
        "cluster {name} migrated: supervisord owns {} nodes, data directories unchanged; the old metadata is in {}",
        tree.members.len(),
        kept.display()
    );
    Ok(())
}

/// The topology and meta of a legacy cluster: every node keeps its data directory.
fn legacy_inputs(old: &legacy::LegacyMeta, shown: &str, layout: &Layout) -> anyhow::Result<Inputs> {
    let mut topology = Topology::default();
    for (i, n) in old.nodes.iter().enumerate() {
        let role = Role::from_meta_type(&n.kind).ok_or_else(|| {
            InputError::new(
                shown,
                format!("nodes[{i}].type"),
                format!("{:?} is not mongod, config or mongos", n.kind),
            )
        })?;
        let spec = NodeSpec {
            host: Some(n.host.clone()),
            port: Some(i64::from(n.port)),
            replica_set: n.replica_set.clone(),
            data_dir: if role == Role::Mongos {
                None
            } else {
                n.data_dir.clone()
            },
            ..NodeSpec::default()
        };
        match role {
            Role::ConfigServer => topology.config_servers.push(spec),
            Role::Mongod => topology.mongod_servers.push(spec),
            Role::Mongos => topology.mongos_servers.push(spec),
        }
    }
    Ok(Inputs {
        topology,
        topology_label: format!("{shown} (nodes)"),
        meta: Meta {
            name: old.name.clone(),
            version: old.version.clone(),
            bin_path: old.bin_path.clone(),
            ..Meta::default()
        },
        meta_label: shown.to_string(),
        meta_dir: layout.root().to_path_buf(),
    })
}

/// Stops the legacy processes by PID, routers first: SIGINT, then SIGKILL after 30 s. A pid
/// that is gone or belongs to another program is reported, not signalled.
fn stop_legacy(old: &legacy::LegacyMeta) -> anyhow::Result<()> {
    for role in Role::TIERS.into_iter().rev() {
        std::thread::scope(|s| {
            for n in old
                .nodes
                .iter()
                .filter(|n| Role::from_meta_type(&n.kind) == Some(role))
            {
                let Some(pid) = n.pid.and_then(|p| u32::try_from(p).ok()).filter(|p| *p > 0) else {
                    continue;
                };
                s.spawn(move || {
                    let who = format!("{} {}:{} (pid {pid})", n.kind, n.host, n.port);
                    if !procs::alive(pid) {
                        println!("{who}: already gone");
                        return;
                    }
                    let cmd = procs::cmdline(pid).unwrap_or_default();
                    let ours = n.config_file.as_deref().is_some_and(|c| cmd.contains(c))
                        || cmd
                            .split_whitespace()
                            .any(|a| a.ends_with("mongod") || a.ends_with("mongos"));
                    if !ours {
                        println!(
                            "{who}: the pid now belongs to another program ({cmd}); not signalled"
                        );
                        return;
                    }
                    if procs::stop(pid, Duration::from_secs(30)) {
                        eprintln!(
                            "warning: {who} ignored SIGINT for 30 s and was killed with SIGKILL"
                        );
                    } else {
                        println!("{who}: stopped");
                    }
                });
            }
        });
    }
    Ok(())
}

/// The playground: a replica set `rs0` of `nodes` members on free ports, named `playground`.
pub const PLAYGROUND: &str = "playground";

/// `mup playground start`: deploys the playground, or starts it if it exists.
pub fn playground_start(nodes: usize, bins: Option<Binaries>) -> anyhow::Result<()> {
    if Layout::for_cluster(PLAYGROUND).meta_file().exists() {
        start(PLAYGROUND, &[], &[])?;
    } else {
        if nodes == 0 {
            return Err(
                InputError::new("--nodes", "", "the playground needs at least one node").into(),
            );
        }
        let bins = match bins {
            Some(b) => b,
            None => binaries(None, None)?,
        };
        let topology = Topology {
            mongod_servers: (0..nodes)
                .map(|_| NodeSpec {
                    host: Some("localhost".into()),
                    port: Some(0),
                    replica_set: Some("rs0".into()),
                    ..NodeSpec::default()
                })
                .collect(),
            ..Topology::default()
        };
        deploy_topology(
            PLAYGROUND,
            topology,
            "playground topology".into(),
            &bins,
            true,
        )?;
        return Ok(());
    }
    playground_connect()
}

fn playground_connect() -> anyhow::Result<()> {
    let tree = load(PLAYGROUND)?;
    for uri in connection_strings(&tree) {
        println!("connect: {uri}");
    }
    Ok(())
}

/// `mup playground status`: the display, then the connection string.
pub fn playground_status() -> anyhow::Result<ExitCode> {
    let code = display(PLAYGROUND, false)?;
    Ok(code)
}
