//! The commands: each parses its options, calls one operation ([`crate::ops`]) and renders
//! what it returns. No command holds logic of its own beyond choosing the operation.

pub mod cli;
mod cluster;
mod ctl;

use crate::deployment::{gen, model};
use crate::ops::{packages, setup};
use crate::ui::Ui;
use crate::{monitor, Outcome};
use cli::{Command, Opts};

pub(crate) fn dispatch(ui: &Ui, command: Command) -> anyhow::Result<Outcome> {
    match command {
        Command::Gen(g) => {
            let mode = match (g.check, g.dry_run) {
                (true, _) => gen::Mode::Check,
                (_, true) => gen::Mode::DryRun,
                _ => gen::Mode::Write,
            };
            let ok = gen::run(ui, &g.topology, &g.meta, g.out.as_deref(), mode)?;
            Ok(if ok { Outcome::Success } else { Outcome::Drift })
        }
        Command::Ctl(c) => ctl::run(ui, c),
        Command::Cluster(c) => cluster::run(ui, c),
        Command::Playground(p) => cluster::run_playground(ui, p),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            // Rendered first, then written: a closed pipe is an error here, not a panic.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Opts::command(), "mup", &mut script);
            ui.bytes(&script)?;
            Ok(Outcome::Success)
        }
        Command::Install {
            version,
            source,
            yes: _, // `mup install` never asks
        } => {
            let src = packages::Source::new(source.mirror.as_deref());
            let v = packages::install(ui, &version, &src, &|_| Ok(()))?;
            outln!(ui, "{}", packages::bin_dir(&v).display())?;
            Ok(Outcome::Success)
        }
        Command::Versions { installed, source } => {
            packages::versions(
                ui,
                &packages::Source::new(source.mirror.as_deref()),
                installed,
            )?;
            Ok(Outcome::Success)
        }
        Command::Uninstall { version } => {
            packages::uninstall(ui, &version)?;
            Ok(Outcome::Success)
        }
        Command::Monitor { mode, dir } => {
            match mode {
                cli::MonitorMode::Events => monitor::listener::run(&dir)?,
                cli::MonitorMode::Metrics => monitor::exporter::run(&dir)?,
            }
            Ok(Outcome::Success)
        }
        Command::Setup => {
            let path = setup::run()?;
            outln!(
                ui,
                "supervisord {} is at {}",
                setup::SUPERVISOR_VERSION,
                path.display()
            )?;
            Ok(Outcome::Success)
        }
    }
}

/// The binaries `--bin-path` / `--version` / `--mirror` name.
pub(crate) fn binaries(
    ui: &Ui,
    bins: &cli::BinOpts,
    yes: bool,
) -> anyhow::Result<crate::ops::cluster::Binaries> {
    crate::ops::cluster::binaries(
        ui,
        bins.bin_path.as_deref(),
        bins.version.as_deref(),
        &packages::Source::new(bins.source.mirror.as_deref()),
        yes,
    )
}

pub(crate) fn events_opts(e: &cli::EventsOpts) -> monitor::show::Options {
    monitor::show::Options {
        follow: e.follow,
        json: e.json,
        since: e.since,
    }
}

/// `-R` values as the model's roles.
pub(crate) fn roles(filters: &cli::Filters) -> Vec<model::Role> {
    filters
        .roles
        .iter()
        .map(|r| match r {
            cli::RoleArg::Config => model::Role::ConfigServer,
            cli::RoleArg::Mongod => model::Role::Mongod,
            cli::RoleArg::Mongos => model::Role::Mongos,
        })
        .collect()
}

/// What `--auth`, `--tls`, `--username` and `--password-file` ask for; `None` when neither
/// flag is given.
pub(crate) fn requested(
    opts: &cli::SecurityOpts,
) -> crate::error::InputResult<Option<crate::deployment::security::Settings>> {
    if !opts.auth && !opts.tls {
        return Ok(None);
    }
    if let Some(u) = &opts.username {
        crate::deployment::security::check_username(u)
            .map_err(|why| crate::error::InputError::new("--username", "", why))?;
    }
    let password = match &opts.password_file {
        Some(path) => Some(crate::deployment::security::read_password_file(path)?),
        None => None,
    };
    Ok(Some(crate::deployment::security::Settings {
        auth: opts.auth,
        tls: opts.tls,
        username: opts.username.clone(),
        password,
    }))
}
