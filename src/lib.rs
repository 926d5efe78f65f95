//! mup: compiles a topology into a supervisord configuration tree and drives the daemon.

/// `writeln!` to stdout, returning the `io::Result`. A closed pipe (`mup ... | head`) is
/// not an error: what is printed is dropped and the command still does all of its work (a
/// deploy cut short by `| grep -q` must not report success); see [`stdout_result`].
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        $crate::stdout_result(writeln!(std::io::stdout(), $($arg)*))
    }};
}

/// `write!` to stdout, returning the `io::Result` (see [`outln!`]).
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        $crate::stdout_result(write!(std::io::stdout(), $($arg)*))
    }};
}

/// What a broken pipe on stdout becomes, so that it is told apart from a broken pipe
/// anywhere else (a socket, a child's stdin), which stays an error.
#[derive(Debug)]
pub struct StdoutClosed;

impl std::fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stdout was closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// Set once a write to stdout found the pipe closed.
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// An error writing stdout, with a broken pipe marked as [`StdoutClosed`] (for the writers
/// that end at a closed pipe: `ctl tail --follow`, the completion script).
#[doc(hidden)]
pub fn stdout_error(e: std::io::Error) -> std::io::Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        STDOUT_CLOSED.store(true, std::sync::atomic::Ordering::Relaxed);
        std::io::Error::new(std::io::ErrorKind::BrokenPipe, StdoutClosed)
    } else {
        e
    }
}

/// The result of a write to stdout by [`outln!`]/[`out!`]: a broken pipe is remembered
/// ([`stdout_closed`]) and dropped, so the command goes on and ends with its own exit code;
/// any other error stays one.
#[doc(hidden)]
pub fn stdout_result(r: std::io::Result<()>) -> std::io::Result<()> {
    match r.map_err(stdout_error) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r,
    }
}

/// True once stdout was found closed: a loop that only prints (`--follow`) ends.
pub(crate) fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(std::sync::atomic::Ordering::Relaxed)
}

mod child;
pub mod cli;
mod cluster;
mod ctl;
mod data_dirs;
mod error;
mod gen;
mod ini;
mod init;
mod interrupt;
mod layout;
mod legacy;
mod lock;
mod meta;
mod model;
mod mongo;
mod mongod_conf;
mod monitor;
mod naming;
mod packages;
mod plan;
mod ports;
mod render;
mod setup;
mod steps;
pub mod supervisor;
mod table;
mod topology;
mod tree;
mod upgrade;
mod yaml;

use cli::{Command, Opts};

// What the integration tests use besides the CLI: the daemon client, the /proc view of a
// port, a generated tree and the replSetInitiate documents built from it.
pub use ctl::{procs::listener_pid, Tree};
pub use init::{rs_config, sets};
use std::process::ExitCode;

/// Exit code when `--check` finds a difference, or an operation fails.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for bad input (nothing was written).
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code of `status`/`display` when a listed program is not RUNNING (as supervisorctl).
pub const EXIT_NOT_RUNNING: u8 = 3;

/// How a command ended when it did not fail; [`Outcome::exit_code`] is the one mapping to
/// exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// `gen --check` found the tree out of date.
    Drift,
    /// `status`/`display`: a listed program is not RUNNING.
    NotRunning,
}

impl Outcome {
    pub fn exit_code(self) -> ExitCode {
        match self {
            Outcome::Success => ExitCode::SUCCESS,
            Outcome::Drift => ExitCode::from(EXIT_FAILURE),
            Outcome::NotRunning => ExitCode::from(EXIT_NOT_RUNNING),
        }
    }

    /// `Success` when `all_running`, else `NotRunning`.
    fn running(all_running: bool) -> Outcome {
        if all_running {
            Outcome::Success
        } else {
            Outcome::NotRunning
        }
    }
}

static VERBOSE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `--verbose`: progress lines are printed even when stdout is not a terminal.
pub fn verbose() -> bool {
    VERBOSE.load(std::sync::atomic::Ordering::Relaxed)
}

/// The program's outline: parse options, run the command, return its exit code.
pub fn run(opts: Opts) -> anyhow::Result<ExitCode> {
    VERBOSE.store(opts.verbose, std::sync::atomic::Ordering::Relaxed);
    dispatch(opts.command).map(Outcome::exit_code)
}

fn dispatch(command: Command) -> anyhow::Result<Outcome> {
    match command {
        Command::Gen(g) => {
            let mode = match (g.check, g.dry_run) {
                (true, _) => gen::Mode::Check,
                (_, true) => gen::Mode::DryRun,
                _ => gen::Mode::Write,
            };
            let ok = gen::run(&g.topology, &g.meta, g.out.as_deref(), mode)?;
            Ok(if ok { Outcome::Success } else { Outcome::Drift })
        }
        Command::Ctl(c) => run_ctl(c),
        Command::Cluster(c) => run_cluster(c),
        Command::Playground(p) => run_playground(p),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            // Rendered first, then written: a closed pipe is an error here, not a panic.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Opts::command(), "mup", &mut script);
            std::io::Write::write_all(&mut std::io::stdout(), &script).map_err(stdout_error)?;
            Ok(Outcome::Success)
        }
        Command::Install {
            version,
            source,
            yes: _, // `mup install` never asks
        } => {
            let src = packages::Source::new(source.mirror.as_deref());
            let v = packages::install(&version, &src, &|_| Ok(()))?;
            outln!("{}", packages::bin_dir(&v).display())?;
            Ok(Outcome::Success)
        }
        Command::Versions { installed, source } => {
            packages::versions(&packages::Source::new(source.mirror.as_deref()), installed)?;
            Ok(Outcome::Success)
        }
        Command::Uninstall { version } => {
            packages::uninstall(&version)?;
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
                "supervisord {} is at {}",
                setup::SUPERVISOR_VERSION,
                path.display()
            )?;
            Ok(Outcome::Success)
        }
    }
}

fn run_cluster(cmd: cli::ClusterCmd) -> anyhow::Result<Outcome> {
    use cli::ClusterCmd as C;
    match cmd {
        C::Deploy {
            name,
            topology,
            bins,
            init,
            yes,
        } => {
            let b = binaries(&bins, yes)?;
            cluster::deploy(&name, &topology, &b, !init.no_init, yes)?;
        }
        C::Upgrade {
            name,
            version,
            fcv,
            dry_run,
            source,
            yes,
        } => upgrade::upgrade(&upgrade::Request {
            name: &name,
            version: &version,
            fcv,
            dry_run,
            yes,
            source: packages::Source::new(source.mirror.as_deref()),
        })?,
        C::Start {
            name,
            filters,
            init,
        } => cluster::start(&name, &roles(&filters), &filters.nodes, !init.no_init)?,
        C::Stop { name, filters } => cluster::stop(&name, &roles(&filters), &filters.nodes)?,
        C::Restart { name, filters } => cluster::restart(&name, &roles(&filters), &filters.nodes)?,
        C::Display { name, json } => return cluster::display(&name, json).map(Outcome::running),
        C::List { json } => cluster::list(json)?,
        C::Connect { name } => cluster::connect(&name)?,
        C::Events { name, opts } => monitor::show::run(&cluster::load(&name)?, events_opts(&opts))?,
        C::Uri { name } => {
            for uri in cluster::connection_strings(&cluster::load(&name)?) {
                outln!("{uri}")?;
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
                _ => Some(binaries(&bins, yes)?),
            };
            cluster::migrate(&name, b.as_ref())?
        }
    }
    Ok(Outcome::Success)
}

fn run_playground(cmd: cli::PlaygroundCmd) -> anyhow::Result<Outcome> {
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
                _ => Some(binaries(&bins, yes)?),
            };
            cluster::playground_start(nodes, b, !init.no_init)?;
        }
        P::Stop => cluster::stop(cluster::existing_playground()?, &[], &[])?,
        P::Status => {
            return cluster::display(cluster::existing_playground()?, false).map(Outcome::running)
        }
        P::Connect => cluster::connect(cluster::existing_playground()?)?,
        P::Destroy => cluster::destroy(cluster::existing_playground()?, false, true)?,
    }
    Ok(Outcome::Success)
}

/// `mup ctl VERB`: the tree, the lock for verbs that change something, then the verb.
fn run_ctl(opts: cli::CtlOpts) -> anyhow::Result<Outcome> {
    use cli::CtlVerb as V;
    use ctl::{daemon, logs, ops, reload, status, Tree};
    let tree = Tree::load(&ctl::cluster_dir(
        opts.dir.as_deref(),
        opts.cluster.as_deref(),
    )?)?;
    let mutating = !matches!(
        opts.verb,
        V::Status { .. } | V::Tail { .. } | V::Pid { .. } | V::Events(_)
    );
    let _lock = if mutating {
        Some(lock::exclusive(&tree.layout)?)
    } else {
        None
    };
    match opts.verb {
        V::Up { adopt } => {
            let client = daemon::up(&tree, adopt)?;
            let pid = client.get_pid().map_err(|e| tree.explain(e))?;
            outln!(
                "supervisord for cluster {} is up at {} (pid {pid}, {} programs)",
                tree.name(),
                tree.url(),
                tree.all().len()
            )?;
        }
        V::Down => daemon::down(&tree)?,
        V::Status { targets, json } => {
            let members = tree.select(&targets.targets, targets.replica_set.as_deref())?;
            return status::run(&tree, &members, json).map(Outcome::running);
        }
        V::Start { targets: t, init } => {
            let members = tree.select(&t.targets, t.replica_set.as_deref())?;
            let whole = t.targets.is_empty() && t.replica_set.is_none();
            ops::start(
                &tree,
                &ctl::connect(&tree)?,
                &members,
                whole && !init.no_init,
            )?;
        }
        V::Stop(t) => {
            let members = tree.select(&t.targets, t.replica_set.as_deref())?;
            ops::stop(&tree, &ctl::connect(&tree)?, &members.programs())?;
        }
        V::Restart(t) => {
            let members = tree.select(&t.targets, t.replica_set.as_deref())?;
            let client = ctl::connect(&tree)?;
            ops::stop(&tree, &client, &members.programs())?;
            let whole = t.targets.is_empty() && t.replica_set.is_none();
            ops::start(&tree, &client, &members, whole)?;
        }
        V::Reload { dry_run } => reload::reload(&tree, &ctl::connect(&tree)?, dry_run)?,
        V::Tail {
            program,
            bytes,
            follow,
        } => {
            let p = tree.program(&program)?;
            logs::tail(&tree, &ctl::connect(&tree)?, p.as_ref(), bytes, follow)?;
        }
        V::Signal { signal, targets } => {
            let members = tree.select(&targets.targets, targets.replica_set.as_deref())?;
            logs::signal(&tree, &ctl::connect(&tree)?, &members.programs(), &signal)?;
        }
        V::Events(e) => monitor::show::run(&tree, events_opts(&e))?,
        V::Pid { program } => {
            let p = program.as_deref().map(|p| tree.program(p)).transpose()?;
            outln!("{}", logs::pid(&tree, &ctl::connect(&tree)?, p.as_deref())?)?;
        }
    }
    Ok(Outcome::Success)
}

/// The binaries `--bin-path` / `--version` / `--mirror` name.
fn binaries(bins: &cli::BinOpts, yes: bool) -> anyhow::Result<cluster::Binaries> {
    cluster::binaries(
        bins.bin_path.as_deref(),
        bins.version.as_deref(),
        &packages::Source::new(bins.source.mirror.as_deref()),
        yes,
    )
}

fn events_opts(e: &cli::EventsOpts) -> monitor::show::Options {
    monitor::show::Options {
        follow: e.follow,
        json: e.json,
        since: e.since,
    }
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

/// True when the error is stdout closed early (`mup ctl tail -f | head`): the command ends
/// quietly with exit 0, as ripgrep does, so `set -o pipefail` pipelines do not fail.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .is_some_and(|inner| inner.is::<StdoutClosed>())
    })
}

/// The exit code for an error: 130 after Ctrl-C, 2 when the cause is bad input, 1 otherwise.
pub fn exit_code_for(err: &anyhow::Error) -> u8 {
    if err.chain().any(|c| c.is::<interrupt::Interrupted>()) {
        interrupt::EXIT_INTERRUPTED
    } else if err.chain().any(|c| c.is::<error::InputError>()) {
        EXIT_BAD_INPUT
    } else {
        EXIT_FAILURE
    }
}
