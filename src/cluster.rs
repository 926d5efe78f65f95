//! `mup cluster` and `mup playground`: named clusters under `$MUP_HOME/storage/clusters`,
//! composed from gen (the tree) and ctl (the daemon) — no second way to start a process.

use crate::ctl::{daemon, ops, owner, procs, status, Member, Tree};
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

/// Where the MongoDB binaries are and which version they are.
pub struct Binaries {
    pub bin_path: PathBuf,
    pub version: String,
}

/// The binaries a command uses: `--bin-path` (its version from `--version` or what `mongod
/// --version` says); else with `--version` alone the installed package of that version,
/// installed first (asking on a terminal unless `yes`); else the directory of `mongod` on PATH.
pub fn binaries(opts: &crate::cli::BinOpts, yes: bool) -> anyhow::Result<Binaries> {
    let bin_path = match (&opts.bin_path, &opts.version) {
        (Some(p), _) => layout::absolute(p),
        (None, Some(v)) => {
            let source = crate::packages::Source::new(opts.source.mirror.as_deref());
            let exact = crate::packages::install(v, &source, yes)?;
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
    let version = match &opts.version {
        Some(v) => v.clone(),
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
pub fn confirm(question: &str, yes: bool) -> anyhow::Result<()> {
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
pub fn deploy(
    name: &str,
    topology_path: &Path,
    bins: &Binaries,
    init: bool,
    yes: bool,
) -> anyhow::Result<()> {
    let tf = topology_path.display().to_string();
    let topology = crate::topology::load(topology_path, &tf)?;
    deploy_topology(name, topology, tf, bins, init, yes)
}

fn deploy_topology(
    name: &str,
    topology: Topology,
    label: String,
    bins: &Binaries,
    init: bool,
    yes: bool,
) -> anyhow::Result<()> {
    model::check_name(name, "NAME")?;
    let layout = Layout::for_cluster(name);
    refuse_existing(&layout, name)?;
    let inputs = || Inputs {
        topology: topology.clone(),
        topology_label: label.clone(),
        meta: Meta {
            name: name.to_string(),
            version: bins.version.clone(),
            bin_path: bins.bin_path.display().to_string(),
            ..Meta::default()
        },
        meta_label: "meta".into(),
        meta_dir: PathBuf::from("/"),
    };
    // A first compile, to check and to show what will be deployed before asking.
    let draft = gen::compile_inputs(inputs(), layout.clone(), false)?;
    check_ports_free(name, &draft.cluster)?;
    confirm(
        &format!(
            "Deploy cluster {name} ({} node(s), MongoDB {}) into {}?",
            draft.cluster.nodes.len(),
            draft.cluster.version_text,
            layout.root().display()
        ),
        yes,
    )?;
    // The real one: ports decided and recorded under the MUP_HOME-wide lock, so a deploy
    // running at the same time sees them and picks others.
    let ports = crate::lock::ports()?;
    let compiled = gen::compile_inputs(inputs(), layout.clone(), false)?;
    let _lock = crate::lock::exclusive(&layout)?;
    refuse_existing(&layout, name)?; // another deploy may have won the race
    check_ports_free(name, &compiled.cluster)?;
    gen::apply(&compiled, Mode::Write)?;
    drop(ports); // recorded in meta.yaml: other clusters now see them
    let tree = Tree::load(layout.root())?;
    let client = daemon::up(&tree, false)?;
    ops::start(&tree, &client, &tree.members, init)?;
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

/// Every node port and the daemon's port must be free before anything is written or started.
fn check_ports_free(name: &str, c: &model::Cluster) -> anyhow::Result<()> {
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
            None => out.push(format!("mongodb://{}/?directConnection=true", m.address())),
        }
    }
    out
}

/// `mup cluster connect`: runs the MongoDB shell (mongosh, or for versions before 6.0 also
/// the legacy mongo) from bin_path or PATH on the cluster's connection string, in place of
/// mup. Without a shell, prints the connection string and says what it looked for.
pub fn connect(name: &str) -> anyhow::Result<()> {
    let tree = load(name)?;
    let uris = connection_strings(&tree);
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
        println!("{uri}");
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
    use std::os::unix::process::CommandExt;
    let err = std::process::Command::new(&shell).arg(uri).exec();
    Err(err).with_context(|| format!("cannot run {}", shell.display()))
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
pub fn start(name: &str, roles: &[String], nodes: &[String], init: bool) -> anyhow::Result<()> {
    let tree = load(name)?;
    let members = select(&tree, roles, nodes)?;
    let _lock = crate::lock::exclusive(&tree.layout)?;
    let client = daemon::up(&tree, false)?;
    let whole = roles.is_empty() && nodes.is_empty();
    ops::start(&tree, &client, &members, whole && init)?;
    if whole {
        for uri in connection_strings(&tree) {
            println!("  connect: {uri}");
        }
    }
    Ok(())
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
            if daemon::stop_unsupervised(&tree, &members)? == 0 {
                println!("supervisord for cluster {name} is not running: nothing to stop");
            }
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
    ops::start(
        &tree,
        &client,
        &members,
        roles.is_empty() && nodes.is_empty(),
    )
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
    /// The shards a router knows (`listShards`); empty when no router answers.
    pub shards: Vec<DisplayShard>,
    pub nodes: Vec<DisplayNode>,
    pub total: usize,
    pub running: usize,
}

#[derive(Debug, Serialize)]
pub struct DisplayShard {
    pub id: String,
    /// `<set>/<host:port>,...`
    pub host: String,
}

#[derive(Debug, Serialize)]
pub struct DisplayNode {
    /// host:port
    pub id: String,
    pub role: String,
    pub replica_set: Option<String>,
    pub program: String,
    pub state: String,
    /// Replica-set member state (PRIMARY, SECONDARY, STARTUP, ...) as the node reports it;
    /// `None` when it is down, or not a replica-set member.
    pub member_state: Option<String>,
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
    let up: Vec<bool> = st.programs.iter().map(|p| p.running()).collect();
    let (roles, shards) = server_view(&tree.members, &up);
    let nodes: Vec<DisplayNode> = st
        .programs
        .iter()
        .zip(&tree.members)
        .zip(roles)
        .map(|((p, m), member_state)| DisplayNode {
            member_state,
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
        shards,
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

/// Each running node's replica-set state and the shards the first answering router knows,
/// asked of the servers in parallel (short timeouts: a node that does not answer shows `-`).
fn server_view(members: &[Member], up: &[bool]) -> (Vec<Option<String>>, Vec<DisplayShard>) {
    std::thread::scope(|s| {
        let states: Vec<_> = members
            .iter()
            .zip(up)
            .map(|(m, up)| {
                s.spawn(move || {
                    if !*up || m.role == Role::Mongos {
                        return None;
                    }
                    crate::mongo::member_state(&m.host, m.port).ok().flatten()
                })
            })
            .collect();
        let shards = s.spawn(|| {
            members
                .iter()
                .zip(up)
                .filter(|(m, up)| m.role == Role::Mongos && **up)
                .find_map(|(m, _)| crate::init::list_shards(m).ok())
                .unwrap_or_default()
                .into_iter()
                .map(|sh| DisplayShard {
                    id: sh.id,
                    host: sh.host,
                })
                .collect()
        });
        (
            states
                .into_iter()
                .map(|h| h.join().unwrap_or(None))
                .collect(),
            shards.join().unwrap_or_default(),
        )
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
    for sh in &d.shards {
        out.push_str(&format!("Shard:       {} {}\n", sh.id, sh.host));
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
                n.member_state.clone().unwrap_or_else(|| "-".into()),
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
            "MEMBER",
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
    let loose: Vec<String> = d
        .nodes
        .iter()
        .filter(|n| n.state == status::UNSUPERVISED)
        .map(|n| n.program.clone())
        .collect();
    if !loose.is_empty() {
        out.push_str(&format!(
            "UNSUPERVISED: {} run without supervisord (did it die?): `mup cluster stop {}` stops them; `mup ctl --cluster {} up --adopt` hands the nodes to a new daemon\n",
            loose.join(", "),
            d.name,
            d.name
        ));
    }
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
    /// RUNNING | DOWN | LEGACY | ASTRAY (this tree's daemon is not on its recorded port) |
    /// PORT TAKEN (something else holds its port) | UNREADABLE (meta.yaml cannot be read)
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
        let legacy = match meta::is_legacy(&file, &shown) {
            Ok(l) => l,
            Err(e) => {
                rows.push(unreadable(&dir, &e.into()));
                continue;
            }
        };
        let row = if legacy {
            match legacy::load(&file, &shown) {
                Ok(m) => ListRow {
                    name: m.name,
                    version: m.version,
                    topology: "legacy".into(),
                    nodes: m.nodes.len(),
                    supervisord: "LEGACY".into(),
                    dir: dir.display().to_string(),
                },
                Err(e) => unreadable(&dir, &e.into()),
            }
        } else {
            match Tree::load(&dir) {
                Ok(t) => {
                    let state = match owner::daemon(&t) {
                        owner::Daemon::Serving(_) => "RUNNING",
                        owner::Daemon::Absent => "DOWN",
                        owner::Daemon::Astray(_) => "ASTRAY",
                        owner::Daemon::Foreign(who) => {
                            eprintln!(
                                "warning: cluster {}: port {} is held by {who}, which is not its supervisord",
                                t.name(),
                                t.port
                            );
                            "PORT TAKEN"
                        }
                    }
                    .to_string();
                    ListRow {
                        name: t.name().to_string(),
                        version: t.meta.version.clone(),
                        topology: t.meta.topology.clone().unwrap_or_default(),
                        nodes: t.members.len(),
                        supervisord: state,
                        dir: dir.display().to_string(),
                    }
                }
                Err(e) => unreadable(&dir, &e),
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

/// A `list` row for a directory whose meta.yaml cannot be read; the reason goes to stderr.
fn unreadable(dir: &Path, err: &anyhow::Error) -> ListRow {
    eprintln!("warning: {err:#}");
    ListRow {
        name: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        version: "-".into(),
        topology: "-".into(),
        nodes: 0,
        supervisord: "UNREADABLE".into(),
        dir: dir.display().to_string(),
    }
}

/// `mup cluster destroy`: stop, shut the daemon down (stopping node processes that run
/// without it), check nothing of the cluster is alive, then remove what mup owns (see
/// [`crate::destroy`]) and list what it keeps.
pub fn destroy(name: &str, keep_data: bool, yes: bool) -> anyhow::Result<()> {
    let tree = load(name)?;
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
    let plan = crate::destroy::plan(&tree, keep_data);
    crate::destroy::apply(&plan, tree.layout.root())?;
    for p in plan
        .remove
        .iter()
        .filter(|p| !p.starts_with(tree.layout.root()))
    {
        println!("removed data directory {}", p.display());
    }
    for (p, why) in &plan.keep {
        println!("kept {} ({why})", p.display());
    }
    if !plan.whole_root {
        println!(
            "kept {}: it holds what is kept; mup's own files in it were removed",
            tree.layout.root().display()
        );
    }
    let mut notes = Vec::new();
    for m in &tree.members {
        if let owner::Holder::Foreign(who) = owner::port_holder(m) {
            notes.push(format!(
                "port {} is held by {who}, which is not this cluster's: left alone",
                m.port
            ));
        }
    }
    println!(
        "cluster {name} destroyed: no process of it is left (ports {})",
        ports_list(&tree)
    );
    for n in notes {
        println!("note: {n}");
    }
    Ok(())
}

fn ports_list(tree: &Tree) -> String {
    let mut p: Vec<String> = tree.members.iter().map(|m| m.port.to_string()).collect();
    p.push(tree.port.to_string());
    p.join(", ")
}

/// Processes of the cluster still alive, by the ownership rule (a foreign process on one
/// of its ports is not the cluster's, and does not stop the destroy).
fn leftovers(tree: &Tree) -> Vec<String> {
    let mut alive: Vec<String> = owner::running_nodes(&tree.members)
        .into_iter()
        .map(|(m, pid)| format!("{} ({})", m.program, procs::describe(pid)))
        .collect();
    match owner::daemon(tree) {
        owner::Daemon::Serving(pid) | owner::Daemon::Astray(pid) => {
            alive.push(format!("supervisord ({})", procs::describe(pid)));
        }
        owner::Daemon::Absent | owner::Daemon::Foreign(_) => {}
    }
    alive
}

/// `mup cluster migrate`: a PID-tracked cluster of the Go mup → supervisord, data in place.
/// With `bins`, the new tree uses those binaries instead of the legacy cluster's.
pub fn migrate(name: &str, bins: Option<&Binaries>) -> anyhow::Result<()> {
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
    let _ports = crate::lock::ports()?;
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
    let compiled = gen::compile_inputs(
        legacy_inputs(&old, &shown, &layout, bins)?,
        layout.clone(),
        true,
    )?;
    stop_legacy(&old);
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
    ops::start(&tree, &client, &tree.members, true)?;
    println!(
        "cluster {name} migrated: supervisord owns {} nodes, data directories unchanged; the old metadata is in {}",
        tree.members.len(),
        kept.display()
    );
    Ok(())
}

/// The topology and meta of a legacy cluster: every node keeps its data directory.
fn legacy_inputs(
    old: &legacy::LegacyMeta,
    shown: &str,
    layout: &Layout,
    bins: Option<&Binaries>,
) -> anyhow::Result<Inputs> {
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
            version: bins.map_or_else(|| old.version.clone(), |b| b.version.clone()),
            bin_path: bins.map_or_else(
                || old.bin_path.clone(),
                |b| b.bin_path.display().to_string(),
            ),
            ..Meta::default()
        },
        meta_label: shown.to_string(),
        meta_dir: layout.root().to_path_buf(),
    })
}

/// Stops the legacy processes by PID, routers first, as supervisord would (SIGINT, SIGKILL
/// after stopwaitsecs). A pid is signalled only if its arguments name the config file the
/// legacy meta.yaml records for that node (the ownership rule); a pid that is gone, or
/// cannot be proven the node's, is reported and left alone.
fn stop_legacy(old: &legacy::LegacyMeta) {
    for role in Role::TIERS.into_iter().rev() {
        let mut owned = Vec::new();
        for n in old
            .nodes
            .iter()
            .filter(|n| Role::from_meta_type(&n.kind) == Some(role))
        {
            let Some(pid) = n.pid.and_then(|p| u32::try_from(p).ok()).filter(|p| *p > 0) else {
                continue;
            };
            let who = format!("{} {}:{} (pid {pid})", n.kind, n.host, n.port);
            let Some(conf) = n.config_file.as_deref() else {
                println!("{who}: no config_file is recorded, so it cannot be proven this cluster's node; not signalled");
                continue;
            };
            let proof = owner::Proof::Node(layout::absolute(Path::new(conf)));
            if !procs::alive(pid) {
                println!("{who}: already gone");
            } else if !proof.holds(pid) {
                println!(
                    "{who}: the pid now belongs to another program ({}), not the node of {conf}; not signalled",
                    procs::cmdline(pid).unwrap_or_default()
                );
            } else {
                owned.push(owner::Owned {
                    label: who,
                    pid,
                    proof,
                });
            }
        }
        for (o, r) in owned
            .iter()
            .zip(owner::stop(&owned, "INT", daemon::STOP_WAIT))
        {
            match r {
                owner::Stopped::Killed => eprintln!(
                    "warning: {} ignored SIGINT for {} s and was killed with SIGKILL",
                    o.label,
                    daemon::STOP_WAIT.as_secs()
                ),
                owner::Stopped::Survived => eprintln!("warning: {} survived SIGKILL", o.label),
                _ => println!("{}: stopped", o.label),
            }
        }
    }
}

/// The playground: a replica set `rs0` of `nodes` members on free ports, named `playground`.
pub const PLAYGROUND: &str = "playground";

/// `mup playground start`: deploys the playground, or starts it if it exists.
pub fn playground_start(nodes: usize, bins: Option<Binaries>, init: bool) -> anyhow::Result<()> {
    if Layout::for_cluster(PLAYGROUND).meta_file().exists() {
        start(PLAYGROUND, &[], &[], init)
    } else {
        if nodes == 0 {
            return Err(
                InputError::new("--nodes", "", "the playground needs at least one node").into(),
            );
        }
        let bins = match bins {
            Some(b) => b,
            None => binaries(
                &crate::cli::BinOpts {
                    version: None,
                    bin_path: None,
                    source: crate::cli::SourceOpts { mirror: None },
                },
                false,
            )?,
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
            init,
            true,
        )
    }
}

/// `mup playground status`: the display, then the connection string.
pub fn playground_status() -> anyhow::Result<ExitCode> {
    let code = display(PLAYGROUND, false)?;
    Ok(code)
}
