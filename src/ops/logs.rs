//! `mup ctl tail`, `signal` and `pid`.

use crate::deployment::Program;
use crate::deployment::Tree;
use crate::error::InputError;
use crate::supervisor::{fault, Client};
use anyhow::bail;
use std::io::Write;
use std::time::Duration;

/// Prints the last `bytes` of a program's log; with `follow`, keeps printing what is appended.
pub(crate) fn tail(
    tree: &Tree,
    client: &Client,
    program: &dyn Program,
    bytes: i64,
    follow: bool,
) -> anyhow::Result<()> {
    let (text, mut offset, _) = program
        .tail(client, 0, bytes)
        .map_err(|e| tree.explain(e))?;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(crate::stdout_error)?;
    if !follow {
        return Ok(());
    }
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let (more, next, _) = program
            .tail(client, offset, 65_536)
            .map_err(|e| tree.explain(e))?;
        if next < offset {
            offset = 0; // rotated: read the new file from its start
            continue;
        }
        out.write_all(more.as_bytes())
            .and_then(|()| out.flush())
            .map_err(crate::stdout_error)?;
        offset = next;
    }
}

/// Sends `signal` (HUP, USR1, 10, ...) to each running target.
pub(crate) fn signal(
    tree: &Tree,
    client: &Client,
    programs: &[&dyn Program],
    signal: &str,
) -> anyhow::Result<()> {
    let mut errors = Vec::new();
    for m in programs {
        match client.signal_process(&m.qualified(), signal) {
            Ok(_) => outln!("{}: sent SIG{}", m.name(), signal.trim_start_matches("SIG"))?,
            Err(e) if e.fault_code() == Some(fault::BAD_SIGNAL) => {
                return Err(InputError::new(
                    "SIGNAL",
                    "",
                    format!("{signal:?} is not a signal name or number supervisord knows (HUP, USR1, 10, ...)"),
                )
                .into())
            }
            Err(e) => errors.push(format!("{}: {}", m.name(), tree.explain(e))),
        }
    }
    if !errors.is_empty() {
        bail!("{}", errors.join("\n"));
    }
    Ok(())
}

/// The daemon's pid, or a program's (0 when it is not running).
pub(crate) fn pid(
    tree: &Tree,
    client: &Client,
    member: Option<&dyn Program>,
) -> anyhow::Result<u32> {
    match member {
        None => client.get_pid().map_err(|e| tree.explain(e)),
        Some(m) => Ok(client
            .get_process_info(&m.qualified())
            .map_err(|e| tree.explain(e))?
            .pid),
    }
}
