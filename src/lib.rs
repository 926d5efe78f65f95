//! mup: compiles a topology into a supervisord configuration tree and drives the daemon.

pub mod cli;
pub mod cluster;
pub mod ctl;
pub mod error;
pub mod gen;
pub mod ini;
pub mod init;
pub mod layout;
pub mod legacy;
pub mod lock;
pub mod meta;
pub mod model;
pub mod mongo;
pub mod mongod_conf;
pub mod naming;
pub mod packages;
pub mod plan;
pub mod ports;
pub mod render;
pub mod setup;
pub mod supervisor;
pub mod table;
pub mod topology;
pub mod tree;

use cli::{Command, Opts};
use std::process::ExitCode;

/// Exit code when `--check` finds a difference, or an operation fails.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for bad input (nothing was written).
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code of `status`/`display` when a listed program is not RUNNING (as supervisorctl).
pub const EXIT_NOT_RUNNING: u8 = 3;

static VERBOSE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `--verbose`: progress lines are printed even when stdout is not a terminal.
pub fn verbose() -> bool {
    VERBOSE.load(std::sync::atomic::Ordering::Relaxed)
}

/// The program's outline: parse options, run the command, return its exit code.
pub fn run(opts: Opts) -> anyhow::Result<ExitCode> {
    VERBOSE.store(opts.verbose, std::sync::atomic::Ordering::Relaxed);
    match opts.command {
        Command::Gen(g) => {
            let mode = match (g.check, g.dry_run) {
                (true, _) => gen::Mode::Check,
                (_, true) => gen::Mode::DryRun,
                _ => gen::Mode::Write,
            };
            let ok = gen::run(&g.topology, &g.meta, g.out.as_deref(), mode)?;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_FAILURE)
            })
        }
        Command::Ctl(c) => ctl::run(c),
        Command::Cluster(c) => run_cluster(c),
        Command::Playground(p) => run_playground(p),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Opts::command(), "mup", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Install {
            version,
            source,
            yes,
        } => {
            let src = packages::Source::new(source.mirror.as_deref());
            let v = packages::install(&version, &src, yes)?;
            println!("{}", packages::bin_dir(&v).display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Versions { installed, source } => {
            packages::versions(&packages::Source::new(source.mirror.as_deref()), installed)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Uninstall { version } => {
            packages::uninstall(&version)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Setup => {
            let path = setup::run()?;
            println!(
                "supervisord {} is at {}",
                setup::SUPERVISOR_VERSION,
                path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn run_cluster(cmd: cli::ClusterCmd) -> anyhow::Result<ExitCode> {
    use cli::ClusterCmd as C;
    match cmd {
        C::Deploy {
            name,
            topology,
            bins,
            init,
            yes,
        } => {
            let b = cluster::binaries(&bins, yes)?;
            cluster::deploy(&name, &topology, &b, !init.no_init, yes)?;
        }
        C::Start {
            name,
            filters,
            init,
        } => cluster::start(&name, &roles(&filters), &filters.nodes, !init.no_init)?,
        C::Stop { name, filters } => cluster::stop(&name, &roles(&filters), &filters.nodes)?,
        C::Restart { name, filters } => cluster::restart(&name, &roles(&filters), &filters.nodes)?,
        C::Display { name, json } => return cluster::display(&name, json),
        C::List { json } => cluster::list(json)?,
        C::Connect { name } => cluster::connect(&name)?,
        C::Uri { name } => {
            for uri in cluster::connection_strings(&cluster::load(&name)?) {
                println!("{uri}");
            }
        }
        C::Destroy {
            name,
            keep_data,
            yes,
        } => cluster::destroy(&name, keep_data, yes)?,
        C::Migrate { name, bins, yes } => {
            let b = match (&bins.bin_path, &bins.version) {
                (None, None) => None,
                _ => Some(cluster::binaries(&bins, yes)?),
            };
            cluster::migrate(&name, b.as_ref())?
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_playground(cmd: cli::PlaygroundCmd) -> anyhow::Result<ExitCode> {
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
                _ => Some(cluster::binaries(&bins, yes)?),
            };
            cluster::playground_start(nodes, b, !init.no_init)?;
        }
        P::Stop => cluster::stop(cluster::PLAYGROUND, &[], &[])?,
        P::Status => return cluster::playground_status(),
        P::Connect => cluster::connect(cluster::PLAYGROUND)?,
        P::Destroy => cluster::destroy(cluster::PLAYGROUND, false, true)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `-R` values as the model's roles.
fn roles(filters: &cli::Filters) -> Vec<model::Role> {
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

/// The exit code for an error: 2 when the cause is bad input, 1 otherwise.
pub fn exit_code_for(err: &anyhow::Error) -> u8 {
    if err.chain().any(|c| c.is::<error::InputError>()) {
        EXIT_BAD_INPUT
    } else {
        EXIT_FAILURE
    }
}
