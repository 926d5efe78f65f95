//! `mup cluster deploy` (and the playground's first start): every prerequisite checked
//! before anything is written; the tree generated, the daemon brought up and the cluster
//! started to ready. A deploy that stopped short (a failure, Ctrl-C) says what it left
//! running and how to go on, and the same deploy run again continues it.

use crate::deployment::gen::{self, Compiled, Inputs, Mode};
use crate::deployment::layout::Layout;
use crate::deployment::meta::Meta;
use crate::deployment::model::{self, Role};
use crate::deployment::security::Settings;
use crate::deployment::topology::Topology;
use crate::deployment::Tree;
use crate::error::InputError;
use crate::ops::cluster::{connection_strings, log_dir, Binaries};
use crate::ops::daemon;
use crate::ops::lifecycle;
use crate::supervisor::state;
use crate::system::interrupt;
use crate::system::procs;
use crate::ui::Ui;
use anyhow::bail;
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// `mup cluster deploy`.
pub(crate) fn deploy(
    ui: &Ui,
    name: &str,
    topology_path: &Path,
    bins: &Binaries,
    init: bool,
    yes: bool,
    security: Option<Settings>,
) -> anyhow::Result<()> {
    let tf = topology_path.display().to_string();
    let topology = crate::deployment::topology::load(topology_path, &tf)?;
    deploy_topology(ui, name, topology, tf, bins, (init, yes), security)
}

/// A deploy of `topology` as cluster `name`; `(init, yes)`: make it ready, do not ask.
pub(crate) fn deploy_topology(
    ui: &Ui,
    name: &str,
    topology: Topology,
    label: String,
    bins: &Binaries,
    (init, yes): (bool, bool),
    security: Option<Settings>,
) -> anyhow::Result<()> {
    model::check_name(name, "NAME")?;
    let layout = Layout::for_cluster(name);
    crate::deployment::security::refuse_change(&layout, name, security.as_ref())?;
    // A tree that exists keeps the security it records (the flags asked for no more).
    let security = security.filter(|_| !layout.meta_file().exists());
    let inputs = || Inputs {
        topology: topology.clone(),
        topology_label: label.clone(),
        meta: Meta {
            name: name.to_string(),
            version: bins.version.clone(),
            bin_path: bins.bin_path.display().to_string(),
            security: security.clone(),
            ..Meta::default()
        },
        meta_label: "meta".into(),
        meta_dir: PathBuf::from("/"),
    };
    // A first compile, to check everything and to show what will be deployed before asking.
    let draft = gen::compile_inputs(inputs(), layout.clone(), false)?;
    prerequisites(&draft.cluster)?;
    let continuing = written_before(name, &draft)?;
    let question = if continuing {
        format!(
            "Cluster {name} is already written in {} by this deploy; continue it (start what is not running, make it ready)?",
            layout.root().display()
        )
    } else {
        check_ports_free(name, &draft.cluster)?;
        format!(
            "Deploy cluster {name} ({} node(s), MongoDB {}) into {}?",
            draft.cluster.nodes.len(),
            draft.cluster.version_text,
            layout.root().display()
        )
    };
    ui.confirm(&question, yes)?;
    // The real one: ports decided and recorded under the MUP_HOME-wide lock, so a deploy
    // running at the same time sees them and picks others.
    let ports = crate::deployment::locks::ports(ui)?;
    let compiled = gen::compile_inputs(inputs(), layout.clone(), false)?;
    let _lock = crate::deployment::locks::exclusive(ui, &layout)?;
    // From here on Ctrl-C is noticed between bounded steps, so that the command can say what
    // it leaves behind (the question above still ends at Ctrl-C).
    interrupt::catch();
    // Another deploy may have won the race for the name.
    if !written_before(name, &compiled)? {
        check_ports_free(name, &compiled.cluster)?;
        gen::apply(ui, &compiled, Mode::Write)?;
    }
    drop(ports); // recorded in meta.yaml: other clusters now see them
    let tree = Tree::load(layout.root())?;
    let started = daemon::up(ui, &tree, false).and_then(|client| {
        interrupt::check()?;
        lifecycle::start(ui, &tree, &client, &tree.all(), init)
    });
    if let Err(e) = started {
        return Err(unfinished(&tree, e));
    }
    outln!(ui, "cluster {name} is running")?;
    for uri in connection_strings(&tree) {
        outln!(ui, "  connect: {uri}")?;
    }
    outln!(
        ui,
        "  logs:    {}/supervisor-<program>.log",
        log_dir(&tree).display()
    )?;
    outln!(ui, "  manage:  mup cluster display {name}")?;
    Ok(())
}

/// What must hold before anything is written: a supervisord to run the tree, and in
/// bin_path an executable of each kind the topology has (mongod for config servers and
/// mongod nodes, mongos for routers).
fn prerequisites(c: &model::Cluster) -> anyhow::Result<()> {
    crate::ops::setup::find_supervisord()
        .map_err(|e| e.context(format!("cannot deploy {}: nothing was written", c.name)))?;
    let needed: BTreeSet<Role> = c.nodes.iter().map(|n| n.role).collect();
    for role in needed {
        let binary = c.bin_path.join(role.binary());
        let executable = std::fs::metadata(&binary)
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
        if !executable {
            let users: Vec<String> = c
                .nodes
                .iter()
                .filter(|n| n.role == role)
                .map(|n| n.program.clone())
                .collect();
            return Err(InputError::new(
                "--bin-path",
                "",
                format!(
                    "{} has no executable {} (needed by {}): nothing was written",
                    c.bin_path.display(),
                    role.binary(),
                    users.join(", ")
                ),
            )
            .into());
        }
    }
    Ok(())
}

/// True when the cluster's directory already holds exactly what this deploy writes (a
/// deploy that stopped short, or one already done): the deploy then continues with it.
/// Another cluster of that name is refused, naming the commands that do go on.
fn written_before(name: &str, compiled: &Compiled) -> anyhow::Result<bool> {
    let layout = &compiled.cluster.layout;
    if !layout.meta_file().exists() {
        return Ok(false);
    }
    let cmp = crate::deployment::write::compare(&compiled.cluster, &compiled.files);
    if cmp.is_rendered() {
        return Ok(true);
    }
    let differs: Vec<String> = cmp
        .changed
        .iter()
        .map(|(i, _)| compiled.files[*i].path.clone())
        .chain(cmp.extra.iter().cloned())
        .chain(cmp.foreign.iter().cloned())
        .take(3)
        .map(|p| layout.relative(&p).display().to_string())
        .collect();
    Err(InputError::new(
        "NAME",
        "",
        format!(
            "cluster {name:?} already exists in {} and differs from this deploy ({}): `mup cluster start {name}` starts it as it is; to deploy this topology under that name, `mup cluster destroy {name}` first",
            layout.root().display(),
            if differs.is_empty() {
                "its directories".to_string()
            } else {
                differs.join(", ")
            }
        ),
    )
    .into())
}

/// A deploy that stopped short after writing the tree: the error, what is left running and
/// the commands that go on. Ctrl-C keeps its exit code (130).
fn unfinished(tree: &Tree, err: anyhow::Error) -> anyhow::Error {
    let name = tree.name();
    let next = format!(
        "the cluster is written in {}; run the same `mup cluster deploy` again (or `mup cluster start {name}`) to finish it, or `mup cluster destroy {name} --yes` to remove it",
        tree.layout.root().display()
    );
    let left = left_running(tree);
    if err.chain().any(|c| c.is::<interrupt::Interrupted>()) {
        return interrupt::Interrupted(format!(
            "interrupted (Ctrl-C) while deploying cluster {name}: {left}\n{next}"
        ))
        .into();
    }
    anyhow::anyhow!("{err:#}\ndeploy of cluster {name} did not finish: {left}\n{next}")
}

/// What the cluster has running now, in a sentence.
fn left_running(tree: &Tree) -> String {
    let Ok(Some(client)) = daemon::running(tree) else {
        let loose = crate::deployment::owner::running_nodes(&tree.members);
        return if loose.is_empty() {
            "nothing of it is running".into()
        } else {
            format!(
                "{} node process(es) run without supervisord ({})",
                loose.len(),
                loose
                    .iter()
                    .map(|(m, pid)| format!("{} pid {pid}", m.program))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
    };
    let daemon = client
        .get_pid()
        .map(|p| format!("supervisord (pid {p})"))
        .unwrap_or_else(|_| "supervisord".into());
    let up: Vec<String> = client
        .get_all_process_info()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| {
            matches!(p.state, state::STARTING | state::RUNNING | state::BACKOFF)
                && tree.members.iter().any(|m| m.qualified() == p.qualified())
        })
        .map(|p| p.name)
        .collect();
    if up.is_empty() {
        format!("{daemon} is left running, with no node running")
    } else {
        format!(
            "{daemon} and {} of {} node(s) are left running: {}",
            up.len(),
            tree.members.len(),
            up.join(", ")
        )
    }
}

/// Every node port, the daemon's and the exporter's must be free before anything is written
/// or started.
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
    if let Some(port) = c
        .monitor(model::Service::Metrics)
        .and_then(|m| m.port)
        .filter(|p| procs::listening("127.0.0.1", *p))
    {
        held.push(format!("127.0.0.1:{port} (metrics exporter)"));
    }
    if !held.is_empty() {
        bail!(
            "cannot deploy {name}: ports already in use: {}",
            held.join(", ")
        );
    }
    Ok(())
}
