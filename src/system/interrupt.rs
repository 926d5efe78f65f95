//! Ctrl-C during a deploy: once [`catch`] is called, SIGINT only sets a flag, which the
//! start sequence checks between its bounded steps, so that the command can say what it
//! left running and how to go on before it exits 130 (instead of dying mid-step).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// Set by the SIGINT handler once [`catch`] installed it.
fn flag() -> &'static Arc<AtomicBool> {
    static REQUESTED: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    REQUESTED.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

/// The command's exit code after Ctrl-C (128 + SIGINT, as a shell reports it).
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

/// From now on SIGINT sets the flag instead of ending the process. Idempotent.
pub(crate) fn catch() {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(flag())).is_ok()
    });
}

/// From now on SIGHUP (a closed terminal) and SIGTERM do not end mup either: for the time a
/// child it waits for (the shell of `cluster connect`) holds a file mup must remove after it,
/// the child gets those signals itself and mup cleans up once it has exited. Idempotent.
pub(crate) fn outlive_hangup() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let seen = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGHUP, signal_hook::consts::SIGTERM] {
            // A registration that fails leaves the default: mup ends, as it did before.
            let _ = signal_hook::flag::register(sig, Arc::clone(&seen));
        }
    });
}

/// True once Ctrl-C was pressed (after [`catch`]).
pub(crate) fn requested() -> bool {
    flag().load(Ordering::SeqCst)
}

/// The error a command ends with after Ctrl-C: its message says what was left and how to go
/// on; the exit code is [`EXIT_INTERRUPTED`].
#[derive(Debug)]
pub(crate) struct Interrupted(pub String);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Interrupted {}

/// `Err(Interrupted)` once Ctrl-C was pressed: called between the bounded steps of a start.
pub(crate) fn check() -> anyhow::Result<()> {
    if requested() {
        return Err(Interrupted("interrupted (Ctrl-C)".into()).into());
    }
    Ok(())
}
