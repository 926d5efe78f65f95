use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    match mup::run(mup::cli::Opts::parse()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(mup::exit_code_for(&err))
        }
    }
}
