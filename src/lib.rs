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

pub mod commands;
mod deployment;
mod error;
mod mongo;
mod monitor;
mod ops;
pub mod supervisor;
mod system;
mod ui;

use cli::Opts;
pub use commands::cli;

// What the integration tests use besides the CLI: the daemon client, the /proc view of a
// port, a generated tree and the replSetInitiate documents built from it.
pub use deployment::Tree;
pub use ops::initiate::{rs_config, sets};
use std::process::ExitCode;
pub use system::procs::listener_pid;

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
    pub(crate) fn running(all_running: bool) -> Outcome {
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
    commands::dispatch(opts.command).map(Outcome::exit_code)
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
    if err
        .chain()
        .any(|c| c.is::<system::interrupt::Interrupted>())
    {
        system::interrupt::EXIT_INTERRUPTED
    } else if err.chain().any(|c| c.is::<error::InputError>()) {
        EXIT_BAD_INPUT
    } else {
        EXIT_FAILURE
    }
}
