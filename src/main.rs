//! The `mup` binary: parses the command line and hands it to the library (`mup::run`), then maps
//! the result to an exit code and an `error:` line.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    match mup::run(mup::cli::Opts::parse()) {
        Ok(code) => code,
        // `mup ctl tail -f | head` closed stdout: the reader has what it wanted. End quietly
        // with success, as ripgrep does (141 would fail a `set -o pipefail` pipeline).
        Err(err) if mup::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(mup::exit_code_for(&err))
        }
    }
}
