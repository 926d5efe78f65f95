//! `mup setup`: a stock supervisord without root (a venv under `$MUP_HOME/tools`), and
//! where `mup ctl` finds the daemon's binary.

use crate::deployment::layout;
use crate::system::child;
use anyhow::{bail, Context};
use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// How long `python3 -m venv` and `pip install` may take, and how much they may print.
const INSTALL_BOUND: child::Bound = child::Bound {
    time: Duration::from_secs(600),
    bytes: 1024 * 1024,
};

/// The Supervisor release mup is tested against (docs/supervisord.md).
pub(crate) const SUPERVISOR_VERSION: &str = "4.3.0";

/// `$MUP_HOME/tools/supervisor`: the venv `mup setup` creates.
pub(crate) fn venv_dir() -> PathBuf {
    layout::mup_home().join("tools").join("supervisor")
}

/// supervisord: `$MUP_SUPERVISORD`, then `supervisord` on PATH, then the `mup setup` copy.
pub(crate) fn find_supervisord() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("MUP_SUPERVISORD").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!("MUP_SUPERVISORD={} is not a file", p.display());
        }
        return Ok(p);
    }
    if let Ok(p) = which::which("supervisord") {
        return Ok(p);
    }
    let p = venv_dir().join("bin").join("supervisord");
    if p.is_file() {
        return Ok(p);
    }
    bail!("supervisord not found: run `mup setup` (installs supervisor=={SUPERVISOR_VERSION} under {}), or set MUP_SUPERVISORD", venv_dir().display())
}

fn installed_version(supervisord: &std::path::Path) -> Option<String> {
    let bound = child::Bound {
        time: Duration::from_secs(30),
        bytes: 64 * 1024,
    };
    let out = child::run_bounded(Command::new(supervisord).arg("--version"), bound).ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Creates the venv and installs the pinned supervisor; idempotent. Returns supervisord's path.
pub(crate) fn run() -> anyhow::Result<PathBuf> {
    let dir = venv_dir();
    let tools = dir.parent().context("the venv has a parent")?;
    std::fs::create_dir_all(tools).with_context(|| format!("cannot create {}", tools.display()))?;
    // Parallel `mup setup` runs (test binaries) install once.
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(tools.join(".setup.lock"))?;
    lock.lock()?;
    let supervisord = dir.join("bin").join("supervisord");
    if installed_version(&supervisord).as_deref() == Some(SUPERVISOR_VERSION) {
        return Ok(supervisord);
    }
    let python = which::which("python3").map_err(|_| {
        anyhow::anyhow!("python3 not found on PATH: install Python 3 with its venv module (Debian: apt-get install python3 python3-venv), then run `mup setup` again")
    })?;
    let out = child::run(
        Command::new(&python)
            .args(["-m", "venv", "--clear"])
            .arg(&dir),
        INSTALL_BOUND,
        "run `mup setup` again",
    )?;
    if !out.status.success() {
        bail!("`python3 -m venv {}` failed: install the venv module (Debian: apt-get install python3-venv): {}", dir.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    let pip = dir.join("bin").join("pip");
    let out = child::run(
        Command::new(&pip)
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(format!("supervisor=={SUPERVISOR_VERSION}")),
        INSTALL_BOUND,
        "check that PyPI is reachable, then run `mup setup` again",
    )?;
    if !out.status.success() {
        bail!(
            "pip could not install supervisor=={SUPERVISOR_VERSION} (is PyPI reachable?): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    match installed_version(&supervisord) {
        Some(v) if v == SUPERVISOR_VERSION => Ok(supervisord),
        other => {
            bail!("installed supervisord reports version {other:?}, expected {SUPERVISOR_VERSION}")
        }
    }
}
