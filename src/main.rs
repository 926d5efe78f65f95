use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    match mup::run(mup::cli::Opts::parse()) {
        Ok(code) => code,
        // `mup ctl status | head` closed stdout: end quietly, as a SIGPIPE'd tool would.
        Err(err) if mup::is_broken_pipe(&err) => ExitCode::from(141),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(mup::exit_code_for(&err))
        }
    }
}
