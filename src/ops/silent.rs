//! A daemon proven this tree's (it runs this tree's supervisor.ini and holds the listening
//! socket) that does not answer: it timed out (stopped with SIGSTOP, or stuck), or it refuses
//! the credentials in meta.yaml. What `status`/`display` show for it, and how `down` stops it
//! by signal.

use crate::deployment::owner;
use crate::deployment::Selection;
use crate::deployment::Tree;
use crate::ops::status::{self, Status};
use crate::supervisor::Error;
use crate::system::procs;
use crate::ui::Ui;
use rustix::process::Signal;

/// The daemon's state in `--json` documents: UNRESPONSIVE (timed out) or UNAUTHORIZED.
fn state(why: &Error) -> &'static str {
    match why {
        Error::Unauthorized => "UNAUTHORIZED",
        _ => "UNRESPONSIVE",
    }
}

/// The status of `selection` under a silent daemon (pid `pid`): its state says why, every
/// program is UNKNOWN (with the pid of a node process that runs, proven by its arguments).
pub(crate) fn status(
    tree: &Tree,
    selection: &Selection,
    pid: u32,
    why: &Error,
) -> anyhow::Result<Status> {
    let mut st = status::collect(tree, None, selection, true)?;
    st.supervisord.state = state(why).into();
    st.supervisord.pid = Some(pid);
    for p in &mut st.programs {
        p.state = "UNKNOWN".into();
    }
    Ok(st)
}

/// Why the daemon is silent, as a sentence.
fn reason(tree: &Tree, why: &Error) -> String {
    match why {
        Error::Unauthorized => format!(
            "refused the credentials in {}: they do not match the ones it runs with (from {}, was meta.yaml edited by hand?)",
            tree.layout.meta_file().display(),
            tree.layout.supervisor_ini().display()
        ),
        other => other.to_string(),
    }
}

/// `down` of a silent daemon: SIGCONT (a stopped daemon cannot handle SIGTERM), then SIGTERM
/// (supervisord stops its programs, each with its stopsignal and stopwaitsecs, and exits),
/// then SIGKILL after [`crate::ops::daemon::EXIT_LIMIT`]. The proof is checked before each signal.
/// Node processes a killed daemon leaves behind are stopped by the caller.
pub(crate) fn stop(ui: &Ui, tree: &Tree, pid: u32, why: &Error) -> anyhow::Result<()> {
    let proof = owner::Proof::Daemon(tree.layout.supervisor_ini());
    if proof.holds(pid) {
        procs::signal(pid, Signal::CONT);
    }
    let daemon = owner::Owned {
        label: "supervisord".into(),
        pid,
        proof,
    };
    let how = match owner::stop(&[daemon], Signal::TERM, crate::ops::daemon::EXIT_LIMIT).first() {
        Some(owner::Stopped::Survived) => anyhow::bail!(
            "supervisord pid {pid} of cluster {} survived SIGKILL",
            tree.name()
        ),
        Some(owner::Stopped::Killed) => format!(
            "it did not exit within {} s of SIGTERM and was killed with SIGKILL",
            crate::ops::daemon::EXIT_LIMIT.as_secs()
        ),
        Some(owner::Stopped::Gone) => "it exited before a signal was sent".to_string(),
        _ => "it was stopped with SIGTERM (it stopped its programs first)".to_string(),
    };
    outln!(
        ui,
        "supervisord for cluster {} (pid {pid}) {}: {how}",
        tree.name(),
        reason(tree, why)
    )?;
    Ok(())
}
