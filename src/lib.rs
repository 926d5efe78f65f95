//! mup: compiles a topology into a supervisord configuration tree and drives the daemon.

#[macro_use]
mod ui;
pub mod commands;
mod deployment;
mod error;
mod mongo;
mod monitor;
mod ops;
pub mod supervisor;
mod system;

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

/// The program's outline: parse options, run the command, return its exit code.
pub fn run(opts: Opts) -> anyhow::Result<ExitCode> {
    let ui = ui::Ui::new(opts.verbose);
    commands::dispatch(&ui, opts.command).map(Outcome::exit_code)
}

/// True when the error is stdout closed early (`mup ctl tail -f | head`): the command ends
/// quietly with exit 0, as ripgrep does, so `set -o pipefail` pipelines do not fail.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .is_some_and(|inner| inner.is::<ui::StdoutClosed>())
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
