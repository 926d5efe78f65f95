//! `mup cluster scale-out NAME FRAGMENT.yaml` and `mup cluster scale-in NAME -N host:port,..`:
//! nodes added to or removed from a running cluster as a plan of steps (plan.rs), with the
//! cluster lock held. Each node is its own supervisord group, so adding or removing one is
//! `addProcessGroup` / `removeProcessGroup` of that group alone: no other node restarts
//! (docs/supervisord.md, "One group per node"). Membership follows the server's procedure
//! (members.rs, shards.rs); every step can run again, so the same command run after an
//! interruption goes on. Data directories of removed nodes are kept where they are.

mod members;
mod plan;
mod shards;
mod tree;

use crate::deployment::gen::{self, Compiled, Mode};
use crate::deployment::model::{Kind, Role};
use crate::deployment::Node;
use crate::deployment::Selection;
use crate::deployment::Tree;
use crate::error::InputError;
use crate::ops::daemon;
use crate::ops::lifecycle;
use crate::ops::steps::{self, Observer};
use crate::supervisor::{fault, Client};
use crate::ui::Ui;
use anyhow::Context;
use plan::Step;
use std::path::Path;

/// The step being run, said on stdout as it begins (`-v` lines and terminals alike).
struct Say<'a>(&'a Ui);

impl Observer for Say<'_> {
    fn begin(&self, index: usize, total: usize, what: &str) {
        let _ = outln!(self.0, "[{}/{total}] {what}", index + 1);
    }
    fn end(&self, _: usize, _: usize, _: &str) {}
}

fn is_sharded(tree: &Tree) -> bool {
    tree.meta.topology.as_deref() == Some(Kind::Sharded.as_str())
}

/// The daemon of the cluster, which must run an older tree's tier groups no more.
fn daemon_of(tree: &Tree) -> anyhow::Result<Client> {
    let client = daemon::running(tree)?.with_context(|| {
        format!(
            "supervisord for cluster {} is not running: `mup cluster start {}` first",
            tree.name(),
            tree.name()
        )
    })?;
    let infos = client.get_all_process_info().map_err(|e| tree.explain(e))?;
    if let Some(p) = infos.iter().find(|p| Role::from_tier(&p.group).is_some()) {
        anyhow::bail!(
            "supervisord of cluster {} runs an older tree that groups its nodes by tier ({}): changing that group would restart every node in it; see docs/supervisord.md, \"One group per node\"",
            tree.name(),
            p.group
        );
    }
    Ok(client)
}

/// `mup cluster scale-out`.
pub(crate) fn scale_out(ui: &Ui, name: &str, fragment: &Path, dry_run: bool) -> anyhow::Result<()> {
    let layout = crate::ops::cluster::load(name)?.layout;
    let label = fragment.display().to_string();
    let frag = crate::deployment::topology::load(fragment, &label)?;
    let count = frag.mongod_servers.len() + frag.config_servers.len() + frag.mongos_servers.len();
    if count == 0 {
        return Err(InputError::new(&label, "", "names no node to add").into());
    }
    if !frag.config_servers.is_empty() {
        return Err(InputError::new(
            &label,
            "config_servers",
            "config servers cannot be added: every router's configDB names them (deploy a new cluster for another config server set)",
        )
        .into());
    }
    // Ports are decided and recorded under the MUP_HOME-wide lock, as at deploy, until the
    // tree holds them; a dry run changes nothing and takes no lock.
    let mut ports = if dry_run {
        None
    } else {
        Some(crate::deployment::locks::ports(ui)?)
    };
    let _lock = if dry_run {
        None
    } else {
        Some(crate::deployment::locks::exclusive(ui, &layout)?)
    };
    // Read again under the lock: what another command changed meanwhile counts.
    let old = crate::ops::cluster::load(name)?;
    let (rest, written) = tree::already_written(&frag, &old.members);
    let before: Vec<Node> = old
        .members
        .iter()
        .filter(|m| !written.contains(m))
        .cloned()
        .collect();
    let topology = tree::merged(tree::current(&old)?, &rest);
    // Its entries come after the cluster's own in each list (so do the indexes in messages).
    let merged_label = format!("{label} (after the cluster's own nodes)");
    let compiled = tree::compile(&old, topology, &merged_label)?;
    let after: Vec<Node> = compiled
        .cluster
        .nodes
        .iter()
        .map(|n| n.node.clone())
        .collect();
    let plan = plan::scale_out(name, &before, &after, is_sharded(&old))?;
    let again = format!(
        "run the same `mup cluster scale-out {name} {label}` again to finish it (a `port: 0` entry got a port, recorded in meta.yaml: name it in the fragment)"
    );
    // Once the tree is written, its meta.yaml records the new ports: other clusters see them.
    let done = carry_out(ui, &plan, &old, &compiled, dry_run, again, || {
        drop(ports.take())
    })?;
    if !done {
        return Ok(());
    }
    outln!(
        ui,
        "cluster {name}: {} node(s) added",
        after.len() - before.len()
    )?;
    Ok(())
}

/// `mup cluster scale-in`.
pub(crate) fn scale_in(ui: &Ui, name: &str, nodes: &[String], dry_run: bool) -> anyhow::Result<()> {
    if nodes.is_empty() {
        return Err(InputError::new("-N", "", "name the nodes to remove (host:port)").into());
    }
    let layout = crate::ops::cluster::load(name)?.layout;
    let _lock = if dry_run {
        None
    } else {
        Some(crate::deployment::locks::exclusive(ui, &layout)?)
    };
    // Read under the lock: what another command changed meanwhile counts.
    let old = crate::ops::cluster::load(name)?;
    let gone = old.select_nodes(&[], nodes)?.nodes;
    let plan = plan::scale_in(name, &old.members, &gone, is_sharded(&old))?;
    let addresses: Vec<String> = gone.iter().map(Node::address).collect();
    let topology = tree::without(tree::current(&old)?, &addresses);
    let compiled = tree::compile(&old, topology, "the cluster's topology")?;
    let again = format!(
        "run the same `mup cluster scale-in {name} -N {}` again to finish it",
        nodes.join(",")
    );
    if !carry_out(ui, &plan, &old, &compiled, dry_run, again, || {})? {
        return Ok(());
    }
    outln!(ui, "cluster {name}: {} node(s) removed", gone.len())?;
    for m in &gone {
        let Some(dir) = &m.data_dir else { continue };
        let fate = if dir.starts_with(old.layout.root()) {
            "inside the cluster directory: `mup cluster destroy` removes it with the cluster"
        } else {
            "no longer recorded in meta.yaml: mup never removes it"
        };
        outln!(
            ui,
            "  data of {} kept in {} ({fate})",
            m.program,
            dir.display()
        )?;
    }
    Ok(())
}

/// Prints the plan and returns false with `dry_run`; else runs it on the cluster's daemon
/// (`written` is called once the tree is written) and returns true. A failure or Ctrl-C says
/// `again`: how to go on.
fn carry_out(
    ui: &Ui,
    plan: &steps::Plan<Step>,
    old: &Tree,
    compiled: &Compiled,
    dry_run: bool,
    again: String,
    mut written: impl FnMut(),
) -> anyhow::Result<bool> {
    if dry_run {
        out!(ui, "{}", plan.render())?;
        outln!(ui, "dry run: nothing changed")?;
        return Ok(false);
    }
    let client = daemon_of(old)?;
    crate::system::interrupt::catch();
    let mut now = old.clone();
    steps::execute(plan, &Say(ui), |s| {
        run(ui, s, old, &mut now, &client, compiled)?;
        if matches!(s, Step::WriteTree { .. }) {
            written();
        }
        Ok(())
    })
    .map_err(|e| {
        if steps::refused(&e) {
            e
        } else {
            e.context(again)
        }
    })?;
    Ok(true)
}

/// Existing members of `set` in `old` (they know the primary).
fn set_members(old: &Tree, set: &str) -> Vec<Node> {
    old.members
        .iter()
        .filter(|m| m.replica_set.as_deref() == Some(set))
        .cloned()
        .collect()
}

/// Runs one step. `now` is the tree as written so far (the old one until WriteTree).
fn run(
    ui: &Ui,
    step: &Step,
    old: &Tree,
    now: &mut Tree,
    client: &Client,
    compiled: &Compiled,
) -> anyhow::Result<()> {
    // The tree's own credentials and CA: a secured cluster stays secured when it grows.
    let access = &crate::deployment::security::access(old);
    match step {
        Step::WriteTree { .. } => {
            gen::apply(ui, compiled, Mode::Write)?;
            *now = Tree::load(old.layout.root())?;
        }
        Step::AddPrograms(nodes) => {
            client.reload_config().map_err(|e| now.explain(e))?;
            for m in nodes {
                match client.add_process_group(m.group()) {
                    Ok(_) => {}
                    Err(e) if e.fault_code() == Some(fault::ALREADY_ADDED) => {}
                    Err(e) => return Err(now.explain(e)),
                }
            }
        }
        Step::Start { nodes, init } => {
            let sel = Selection {
                nodes: nodes.clone(),
                monitors: Vec::new(),
            };
            lifecycle::start(ui, now, client, &sel, *init)?;
        }
        Step::AddMember { set, member } => {
            members::add(set, &set_members(old, set), member, access)?;
        }
        Step::Promote { set, member } => {
            members::promote(set, &set_members(old, set), member, access)?;
        }
        Step::AddShard { set, router } => {
            let sets = crate::ops::initiate::sets(&now.members);
            let s = sets
                .iter()
                .find(|s| &s.name == set)
                .with_context(|| format!("no replica set {set} in the tree"))?;
            shards::add(router, s, access)?;
        }
        Step::RemoveShard { set, router } => {
            let say = |line: String| {
                let _ = outln!(ui, "  {line}");
            };
            shards::drain(router, set, &say, access)?;
        }
        Step::RemoveMember { set, member } => {
            members::remove(set, &set_members(old, set), member, access)?;
        }
        Step::RemovePrograms(nodes) => remove_programs(ui, now, client, nodes)?,
    }
    Ok(())
}

/// Stops each node (routers first) and removes its group; a group already gone is fine.
fn remove_programs(ui: &Ui, tree: &Tree, client: &Client, nodes: &[Node]) -> anyhow::Result<()> {
    let live: Vec<String> = client
        .get_all_process_info()
        .map_err(|e| tree.explain(e))?
        .into_iter()
        .map(|p| p.group)
        .collect();
    let present: Vec<&Node> = nodes
        .iter()
        .filter(|m| live.iter().any(|g| g == m.group()))
        .collect();
    let programs: Vec<&dyn crate::deployment::Program> = present
        .iter()
        .map(|m| *m as &dyn crate::deployment::Program)
        .collect();
    if !programs.is_empty() {
        lifecycle::stop(ui, tree, client, &programs)?;
    }
    for m in present {
        match client.remove_process_group(m.group()) {
            Ok(_) => {}
            Err(e) if e.fault_code() == Some(fault::BAD_NAME) => {}
            Err(e) => return Err(tree.explain(e)),
        }
    }
    Ok(())
}
