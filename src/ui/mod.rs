//! The output seam: everything a command says goes through one [`Ui`] value, made once from
//! the options (`--verbose`) and handed down to the operations, in the spirit of cargo's
//! `Shell`. Results go to stdout ([`outln!`], [`out!`]), messages to stderr ([`noteln!`],
//! [`warnln!`]), progress through [`Progress`] (a bar on a terminal, `-v` lines otherwise),
//! questions through [`Ui::confirm`]. Nothing else in mup prints, except the long-running
//! monitoring programs, whose stderr is their log file ([`logln!`]).
//!
//! A closed stdout (`mup ... | head`) is not an error: what is printed is dropped and the
//! command still does all of its work (a deploy cut short by `| grep -q` must not report
//! success); a loop that only prints (`--follow`) ends when [`Ui::stdout_closed`] says so.

use crate::error::InputError;
use anyhow::bail;
use std::fmt;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// A line of the command's result on stdout: `outln!(ui, "...")`.
#[macro_export]
macro_rules! outln {
    ($ui:expr, $($arg:tt)*) => {
        $ui.line(format_args!($($arg)*))
    };
}

/// Text on stdout without a line break: `out!(ui, "...")`.
#[macro_export]
macro_rules! out {
    ($ui:expr, $($arg:tt)*) => {
        $ui.text(format_args!($($arg)*))
    };
}

/// A message on stderr (what was kept, what was removed, a note): `noteln!(ui, "...")`.
#[macro_export]
macro_rules! noteln {
    ($ui:expr, $($arg:tt)*) => {
        $ui.note(format_args!($($arg)*))
    };
}

/// `warning: ...` on stderr: `warnln!(ui, "...")`.
#[macro_export]
macro_rules! warnln {
    ($ui:expr, $($arg:tt)*) => {
        $ui.note(format_args!("warning: {}", format_args!($($arg)*)))
    };
}

/// A log line of a monitoring program (mup-events, mup-metrics): its stderr is its log.
#[macro_export]
macro_rules! logln {
    ($($arg:tt)*) => {
        $crate::ui::log(format_args!($($arg)*))
    };
}

pub(crate) mod progress;
pub(crate) mod table;

pub(crate) use progress::Progress;

/// What a broken pipe on stdout becomes, so that it is told apart from a broken pipe
/// anywhere else (a socket, a child's stdin), which stays an error.
#[derive(Debug)]
pub(crate) struct StdoutClosed;

impl fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stdout was closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// Set once a write to stdout found the pipe closed.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// How mup talks to the user, handed down from the command to every operation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ui {
    verbose: bool,
}

impl Ui {
    pub(crate) fn new(verbose: bool) -> Ui {
        Ui { verbose }
    }

    /// `--verbose`: progress lines even when stdout is not a terminal.
    pub(crate) fn verbose(&self) -> bool {
        self.verbose
    }

    /// stdout is a terminal: progress is a bar, not lines.
    pub(crate) fn terminal(&self) -> bool {
        std::io::stdout().is_terminal()
    }

    /// A line on stdout; a closed pipe is remembered ([`Ui::stdout_closed`]) and dropped.
    pub(crate) fn line(&self, args: fmt::Arguments) -> std::io::Result<()> {
        tolerate_closed(writeln!(std::io::stdout(), "{args}"))
    }

    /// Text on stdout without a line break, flushed.
    pub(crate) fn text(&self, args: fmt::Arguments) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        tolerate_closed(write!(out, "{args}").and_then(|()| out.flush()))
    }

    /// Bytes on stdout, flushed, for the writers that end at a closed pipe (`ctl tail
    /// --follow`, the completion script): a closed pipe is an error marked [`StdoutClosed`].
    pub(crate) fn bytes(&self, data: &[u8]) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(data)
            .and_then(|()| out.flush())
            .map_err(closed_error)
    }

    /// True once stdout was found closed: a loop that only prints (`--follow`) ends.
    pub(crate) fn stdout_closed(&self) -> bool {
        STDOUT_CLOSED.load(Ordering::Relaxed)
    }

    /// A message on stderr. An unwritable stderr has nowhere to be reported: ignored.
    pub(crate) fn note(&self, args: fmt::Arguments) {
        let _ = writeln!(std::io::stderr(), "{args}");
    }

    /// The progress of `total` programs (see [`Progress`]).
    pub(crate) fn progress(&self, total: usize) -> Progress {
        Progress::new(*self, total)
    }

    /// Asks `question` on a terminal; without one, `--yes` is required.
    pub(crate) fn confirm(&self, question: &str, yes: bool) -> anyhow::Result<()> {
        if yes {
            return Ok(());
        }
        if !std::io::stdin().is_terminal() {
            return Err(InputError::new(
                "--yes",
                "",
                format!(
                    "stdin is not a terminal, so this cannot be confirmed: pass --yes ({question})"
                ),
            )
            .into());
        }
        self.text(format_args!("{question} [y/N] "))?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if matches!(answer.trim(), "y" | "Y" | "yes") {
            Ok(())
        } else {
            bail!("cancelled")
        }
    }
}

/// A log line of a monitoring program on its stderr (see [`logln!`]).
pub(crate) fn log(args: fmt::Arguments) {
    let _ = writeln!(std::io::stderr(), "{args}");
}

/// An error writing stdout, with a broken pipe marked as [`StdoutClosed`].
fn closed_error(e: std::io::Error) -> std::io::Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
        std::io::Error::new(std::io::ErrorKind::BrokenPipe, StdoutClosed)
    } else {
        e
    }
}

/// A broken pipe is remembered and dropped, so the command goes on and ends with its own
/// exit code; any other error stays one.
fn tolerate_closed(r: std::io::Result<()>) -> std::io::Result<()> {
    match r.map_err(closed_error) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r,
    }
}
