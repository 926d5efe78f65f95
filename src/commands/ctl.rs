//! `mup ctl VERB`: a tree's supervisord driven directly.

use super::{cli, events_opts};
use crate::deployment::locks;
use crate::deployment::{self as ctl, Tree};
use crate::ops::{daemon, lifecycle, logs, reload, status};
use crate::ui::Ui;
use crate::{monitor, Outcome};

/// `mup ctl VERB`: the tree, the lock for verbs that change something, then the verb.
pub(crate) fn run(ui: &Ui, opts: cli::CtlOpts) -> anyhow::Result<Outcome> {
    use cli::CtlVerb as V;
    let tree = Tree::load(&ctl::cluster_dir(
        opts.dir.as_deref(),
        opts.cluster.as_deref(),
    )?)?;
    let mutating = !matches!(
        opts.verb,
        V::Status { .. } | V::Tail { .. } | V::Pid { .. } | V::Events(_)
    ) && !opts.verb.is_dry_run();
    let _lock = if mutating {
        Some(locks::exclusive(ui, &tree.layout)?)
    } else {
        None
    };
    match opts.verb {
        V::Up { adopt } => {
            let client = daemon::up(ui, &tree, adopt)?;
            let pid = client.get_pid().map_err(|e| tree.explain(e))?;
            outln!(
                ui,
                "supervisord for cluster {} is up at {} (pid {pid}, {} programs)",
                tree.name(),
                tree.url(),
                tree.all().len()
            )?;
        }
        V::Down => daemon::down(ui, &tree)?,
        V::Status { targets, json } => {
            let members = tree.select(&targets.targets, targets.replica_set.as_deref())?;
            return status::run(ui, &tree, &members, json).map(Outcome::running);
        }
        V::Start {
            targets,
            init,
            plan,
        } => return start(ui, &tree, &targets, !init.no_init, plan.dry_run),
        V::Stop { targets, plan } => return stop(ui, &tree, &targets, plan.dry_run),
        V::Restart { targets, plan } => return restart(ui, &tree, &targets, plan.dry_run),
        V::Reload { dry_run } => reload::reload(ui, &tree, &daemon::connect(&tree)?, dry_run)?,
        V::Tail {
            program,
            bytes,
            follow,
        } => {
            let p = tree.program(&program)?;
            logs::tail(
                ui,
                &tree,
                &daemon::connect(&tree)?,
                p.as_ref(),
                bytes,
                follow,
            )?;
        }
        V::Signal { signal, targets } => {
            let members = tree.select(&targets.targets, targets.replica_set.as_deref())?;
            logs::signal(
                ui,
                &tree,
                &daemon::connect(&tree)?,
                &members.programs(),
                &signal,
            )?;
        }
        V::Events(e) => monitor::show::run(ui, &tree, events_opts(&e))?,
        V::Pid { program } => {
            let p = program.as_deref().map(|p| tree.program(p)).transpose()?;
            outln!(
                ui,
                "{}",
                logs::pid(&tree, &daemon::connect(&tree)?, p.as_deref())?
            )?;
        }
    }
    Ok(Outcome::Success)
}

/// `start`: an ordered start of the selected programs, or its plan with `--dry-run`.
fn start(
    ui: &Ui,
    tree: &Tree,
    t: &cli::Targets,
    init: bool,
    dry_run: bool,
) -> anyhow::Result<Outcome> {
    let members = tree.select(&t.targets, t.replica_set.as_deref())?;
    let whole = t.targets.is_empty() && t.replica_set.is_none();
    let init = whole && init;
    if dry_run {
        return show(ui, &lifecycle::start_preview(tree, &members, init));
    }
    lifecycle::start(ui, tree, &daemon::connect(tree)?, &members, init)?;
    Ok(Outcome::Success)
}

/// `stop`: an ordered stop of the selected programs, or its plan with `--dry-run`.
fn stop(ui: &Ui, tree: &Tree, t: &cli::Targets, dry_run: bool) -> anyhow::Result<Outcome> {
    let members = tree.select(&t.targets, t.replica_set.as_deref())?;
    if dry_run {
        return show(ui, &lifecycle::stop_preview(tree, &members.programs()));
    }
    lifecycle::stop(ui, tree, &daemon::connect(tree)?, &members.programs())?;
    Ok(Outcome::Success)
}

/// `restart`: an ordered stop, then an ordered start, or both plans with `--dry-run`.
fn restart(ui: &Ui, tree: &Tree, t: &cli::Targets, dry_run: bool) -> anyhow::Result<Outcome> {
    let members = tree.select(&t.targets, t.replica_set.as_deref())?;
    let whole = t.targets.is_empty() && t.replica_set.is_none();
    if dry_run {
        let stop = lifecycle::stop_preview(tree, &members.programs());
        return show(
            ui,
            &(stop + &lifecycle::start_preview(tree, &members, whole)),
        );
    }
    let client = daemon::connect(tree)?;
    lifecycle::stop(ui, tree, &client, &members.programs())?;
    lifecycle::start(ui, tree, &client, &members, whole)?;
    Ok(Outcome::Success)
}

/// A plan printed by `--dry-run`.
fn show(ui: &Ui, plan: &str) -> anyhow::Result<Outcome> {
    crate::out!(ui, "{plan}")?;
    Ok(Outcome::Success)
}
