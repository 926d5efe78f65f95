use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // `mup ctl status | head` closes stdout early: end quietly, as a SIGPIPE'd tool would,
    // instead of panicking in println!.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default_hook(info);
    }));
    match mup::run(mup::cli::Opts::parse()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(mup::exit_code_for(&err))
        }
    }
}
