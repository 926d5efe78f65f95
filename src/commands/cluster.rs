//! `mup cluster ...` and `mup playground ...`.

use super::{binaries, cli, events_opts, roles};
use crate::ops::cluster::{self, Verb};
use crate::ui::Ui;
use crate::{monitor, Outcome};

pub(crate) fn run(ui: &Ui, cmd: cli::ClusterCmd) -> anyhow::Result<Outcome> {
    use cli::ClusterCmd as C;
    match cmd {
        C::Deploy {
            name,
            topology,
            bins,
            init,
            yes,
        } => {
            let b = binaries(ui, &bins, yes)?;
            cluster::deploy(ui, &name, &topology, &b, !init.no_init, yes)?;
        }
        C::Start {
            name,
            filters,
            init,
            plan,
        } => {
            let (r, init) = (roles(&filters), !init.no_init);
            if plan.dry_run {
                let text = cluster::preview(&name, &r, &filters.nodes, Verb::Start, init)?;
                crate::out!(ui, "{text}")?;
            } else {
                cluster::start(ui, &name, &r, &filters.nodes, init)?;
            }
        }
        C::Stop {
            name,
            filters,
            plan,
        } => {
            let r = roles(&filters);
            if plan.dry_run {
                crate::out!(
                    ui,
                    "{}",
                    cluster::preview(&name, &r, &filters.nodes, Verb::Stop, false)?
                )?;
            } else {
                cluster::stop(ui, &name, &r, &filters.nodes)?;
            }
        }
        C::Restart {
            name,
            filters,
            plan,
        } => {
            let r = roles(&filters);
            if plan.dry_run {
                let text = cluster::preview(&name, &r, &filters.nodes, Verb::Restart, true)?;
                crate::out!(ui, "{text}")?;
            } else {
                cluster::restart(ui, &name, &r, &filters.nodes)?;
            }
        }
        C::Display { name, json } => {
            return cluster::display(ui, &name, json).map(Outcome::running)
        }
        C::List { json } => cluster::list(ui, json)?,
        C::Connect { name } => cluster::connect(ui, &name)?,
        C::Events { name, opts } => {
            monitor::show::run(ui, &cluster::load(&name)?, events_opts(&opts))?
        }
        C::Uri { name } => {
            for uri in cluster::connection_strings(&cluster::load(&name)?) {
                outln!(ui, "{uri}")?;
            }
        }
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

pub(crate) fn run_playground(ui: &Ui, cmd: cli::PlaygroundCmd) -> anyhow::Result<Outcome> {
    use cli::PlaygroundCmd as P;
    match cmd {
        P::Start {
            nodes,
            bins,
            init,
            yes,
        } => {
            let b = match (&bins.bin_path, &bins.version) {
                (None, None) => None,
                _ => Some(binaries(ui, &bins, yes)?),
            };
            cluster::playground_start(ui, nodes, b, !init.no_init)?;
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
