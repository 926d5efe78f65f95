//! pymongo, the official Python driver, for tests that check the stand-in (or a cluster) with a
//! second, independent driver: installed once from PyPI into a venv under
//! `target/test-tools/pymongo`, with `cryptography` to make test certificates.

use super::repo;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Pinned, so that a new release cannot change what the tests check.
const PACKAGES: [&str; 2] = ["pymongo==4.10.1", "cryptography==44.0.0"];

/// The venv's python, with pymongo and cryptography; installed on first use.
pub(crate) fn pymongo_python() -> PathBuf {
    static PY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PY.get_or_init(install) {
        Ok(p) => p.clone(),
        Err(why) => panic!("pymongo is required by this test and could not be installed: {why}"),
    }
}

fn install() -> Result<PathBuf, String> {
    let tools = repo().join("target").join("test-tools");
    let venv = tools.join("pymongo");
    let python = venv.join("bin").join("python");
    if python.is_file() && venv.join("installed").is_file() {
        return Ok(python);
    }
    // Built beside and renamed into place: a half-made venv is never taken for a whole one.
    let tmp = tools.join(format!("pymongo.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tools).map_err(|e| format!("{}: {e}", tools.display()))?;
    run(Command::new("python3").arg("-m").arg("venv").arg(&tmp), 120)?;
    let mut pip = Command::new(tmp.join("bin").join("pip"));
    pip.args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--timeout",
        "60",
    ]);
    run(pip.args(PACKAGES), 600)?;
    std::fs::write(tmp.join("installed"), PACKAGES.join("\n")).map_err(|e| e.to_string())?;
    if std::fs::rename(&tmp, &venv).is_err() {
        // Another test process got there first; its venv is whole (it has `installed`).
        let _ = std::fs::remove_dir_all(&tmp);
    }
    if python.is_file() {
        Ok(python)
    } else {
        Err(format!("{} is missing after the install", python.display()))
    }
}

/// Runs `cmd` to its end within `secs`, killed after that.
fn run(cmd: &mut Command, secs: u64) -> Result<(), String> {
    let out = bounded_output(cmd, Duration::from_secs(secs))?;
    if out.0 == Some(0) {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed ({:?}):\n{}", out.0, out.2))
    }
}

/// (exit status, stdout, stderr) of `cmd`, killed after `limit`.
pub(crate) fn bounded_output(
    cmd: &mut Command,
    limit: Duration,
) -> Result<(Option<i32>, String, String), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let file = |p: &Path| std::fs::File::create(p).map_err(|e| e.to_string());
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(file(&out)?)
        .stderr(file(&err)?)
        .spawn()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break s.code();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{cmd:?} took longer than {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    Ok((status, read(&out), read(&err)))
}

/// Runs a Python `script` with pymongo (arguments in `sys.argv[1:]`) and returns the JSON
/// document its last stdout line holds.
pub(crate) fn pymongo(script: &str, args: &[&str]) -> serde_json::Value {
    let mut cmd = Command::new(pymongo_python());
    cmd.arg("-c").arg(script).args(args);
    let (status, out, err) =
        bounded_output(&mut cmd, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, Some(0), "the pymongo script failed:\n{out}\n{err}");
    let last = out.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: not JSON: {out}\n{err}"))
}
