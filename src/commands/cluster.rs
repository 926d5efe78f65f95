//! `mup cluster ...` and `mup playground ...`.

use super::{binaries, cli, events_opts, roles};
use crate::ops::cluster::{self, Verb};
use crate::ui::Ui;
use crate::{monitor, Outcome};

pub(crate) fn run(ui: &Ui, cmd: cli::ClusterCmd) -> anyhow::Result<Outcome> {
    use cli::ClusterCmd as C;
    match cmd {
        C::Deploy(a) => deploy(ui, a)?,
        C::Upgrade(a) => upgrade(ui, a)?,
        C::ScaleOut(a) => crate::ops::scale::scale_out(ui, &a.name, &a.fragment, a.dry_run)?,
        C::ScaleIn(a) => crate::ops::scale::scale_in(ui, &a.name, &a.nodes, a.dry_run)?,
        C::Start {
            name,
            filters,
            init,
            plan,
        } => ordered(
            ui,
            &name,
            &filters,
            Verb::Start,
            !init.no_init,
            plan.dry_run,
        )?,
        C::Stop {
            name,
            filters,
            plan,
        } => ordered(ui, &name, &filters, Verb::Stop, false, plan.dry_run)?,
        C::Restart {
            name,
            filters,
            plan,
        } => ordered(ui, &name, &filters, Verb::Restart, true, plan.dry_run)?,
        C::Display { name, json } => {
            return cluster::display(ui, &name, json).map(Outcome::running)
        }
        C::List { json } => cluster::list(ui, json)?,
        C::Connect { name } => cluster::connect(ui, &name)?,
        C::Events { name, opts } => {
            monitor::show::run(ui, &cluster::load(&name)?, events_opts(&opts))?
        }
        C::Uri {
            name,
            show_password,
        } => {
            let tree = cluster::load(&name)?;
            for uri in cluster::connection_strings_with(&tree, show_password) {
                outln!(ui, "{uri}")?;
            }
        }
        C::Credentials { name } => cluster::credentials(ui, &name)?,
        C::Destroy {
            name,
            keep_data,
            yes,
        } => cluster::destroy(ui, &name, keep_data, yes)?,
        C::Migrate { name, bins, yes } => {
            let b = match (&bins.bin_path, &bins.version) {
                (None, None) => None,
                _ => Some(binaries(ui, &bins, yes)?),
            };
            cluster::migrate(ui, &name, b.as_ref())?
        }
    }
    Ok(Outcome::Success)
}

/// `mup cluster deploy`.
fn deploy(ui: &Ui, a: cli::DeployArgs) -> anyhow::Result<()> {
    let asked = super::requested(&a.security)?;
    let b = binaries(ui, &a.bins, a.yes)?;
    cluster::deploy(ui, &a.name, &a.topology, &b, !a.init.no_init, a.yes, asked)
}

/// `mup cluster upgrade`.
fn upgrade(ui: &Ui, a: cli::UpgradeArgs) -> anyhow::Result<()> {
    crate::ops::upgrade::upgrade(
        ui,
        &crate::ops::upgrade::Request {
            name: &a.name,
            version: &a.version,
            fcv: a.fcv,
            dry_run: a.dry_run,
            yes: a.yes,
            source: crate::ops::packages::Source::new(a.source.mirror.as_deref()),
        },
    )
}

/// `start`, `stop` and `restart` of a named cluster, or their plan with `--dry-run`.
fn ordered(
    ui: &Ui,
    name: &str,
    filters: &cli::Filters,
    verb: Verb,
    init: bool,
    dry_run: bool,
) -> anyhow::Result<()> {
    let r = roles(filters);
    if dry_run {
        let plan = cluster::preview(name, &r, &filters.nodes, verb, init)?;
        return Ok(out!(ui, "{plan}")?);
    }
    match verb {
        Verb::Start => cluster::start(ui, name, &r, &filters.nodes, init),
        Verb::Stop => cluster::stop(ui, name, &r, &filters.nodes),
        Verb::Restart => cluster::restart(ui, name, &r, &filters.nodes),
    }
}

pub(crate) fn run_playground(ui: &Ui, cmd: cli::PlaygroundCmd) -> anyhow::Result<Outcome> {
    use cli::PlaygroundCmd as P;
    match cmd {
        P::Start {
            nodes,
            bins,
            init,
            security,
            yes,
        } => {
            let asked = super::requested(&security)?;
            let b = match (&bins.bin_path, &bins.version) {
                (None, None) => None,
                _ => Some(binaries(ui, &bins, yes)?),
            };
            cluster::playground_start(ui, nodes, b, !init.no_init, asked)?;
        }
        P::Stop => cluster::stop(ui, cluster::existing_playground()?, &[], &[])?,
        P::Status => {
            return cluster::display(ui, cluster::existing_playground()?, false)
                .map(Outcome::running)
        }
        P::Connect => cluster::connect(ui, cluster::existing_playground()?)?,
        P::Destroy => cluster::destroy(ui, cluster::existing_playground()?, false, true)?,
    }
    Ok(Outcome::Success)
}
