//! `mup ctl tail`, `signal` and `pid`.

use crate::deployment::Program;
use crate::deployment::Tree;
use crate::error::InputError;
use crate::supervisor::{fault, Client};
use crate::ui::Ui;
use anyhow::bail;
use std::time::Duration;

/// Prints the last `bytes` of a program's log; with `follow`, keeps printing what is appended.
pub(crate) fn tail(
    ui: &Ui,
    tree: &Tree,
    client: &Client,
    program: &dyn Program,
    bytes: i64,
    follow: bool,
) -> anyhow::Result<()> {
    let (text, mut offset, _) = program
        .tail(client, 0, bytes)
        .map_err(|e| tree.explain(e))?;
    ui.bytes(text.as_bytes())?;
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
        ui.bytes(more.as_bytes())?;
        offset = next;
    }
}

/// Sends `signal` (HUP, USR1, 10, ...) to each running target.
pub(crate) fn signal(
    ui: &Ui,
    tree: &Tree,
    client: &Client,
    programs: &[&dyn Program],
    signal: &str,
) -> anyhow::Result<()> {
    let mut errors = Vec::new();
    for m in programs {
        match client.signal_process(&m.qualified(), signal) {
            Ok(_) => outln!(ui, "{}: sent SIG{}", m.name(), signal.trim_start_matches("SIG"))?,
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
