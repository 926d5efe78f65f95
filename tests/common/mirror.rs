//! A local MongoDB download mirror (fixtures/mirror/serve.py) serving a release index and
//! packages of the stand-ins at chosen versions: each package's `bin/mongod` and `mongos`
//! run the stand-ins with `MUP_STANDIN_VERSION` set, as a real package runs its version.

use super::{free_port, repo, spawn_ready, stand_in_bin};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// A mirror on a free port, stopped when dropped.
pub(crate) struct StandInMirror {
    _dir: tempfile::TempDir,
    child: Child,
    pub url: String,
}

impl Drop for StandInMirror {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_string()
}

/// `<dir>/<top>.tgz` holding `<top>/bin/mongod` and `mongos` of `version`.
fn package(dir: &Path, top: &str, version: &str) -> PathBuf {
    let bin = dir.join("build").join(top).join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    for tool in ["mongod", "mongos"] {
        let p = bin.join(tool);
        let target = stand_in_bin().join(tool);
        let script = format!(
            "#!/bin/sh\nMUP_STANDIN_VERSION={version} exec {} \"$@\"\n",
            target.display()
        );
        std::fs::write(&p, script).expect("wrapper");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let out = dir.join(format!("{top}.tgz"));
    let ok = Command::new("tar")
        .arg("czf")
        .arg(&out)
        .arg("-C")
        .arg(dir.join("build"))
        .arg(top)
        .status()
        .expect("tar")
        .success();
    assert!(ok, "tar {top}");
    out
}

/// A mirror serving production releases of `versions`.
pub(crate) fn stand_in_mirror(versions: &[&str]) -> StandInMirror {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut releases = Vec::new();
    for version in versions {
        let top = format!("mongodb-linux-x86_64-{version}");
        let path = package(dir.path(), &top, version);
        releases.push(serde_json::json!({
            "version": version,
            "production_release": true,
            "downloads": [
                {"target": "linux", "arch": std::env::consts::ARCH, "edition": "base",
                 "archive": {"url": format!("https://fastdl.example/linux/{top}.tgz"),
                             "sha256": sha256(&path)}},
            ],
        }));
    }
    std::fs::write(
        dir.path().join("full.json"),
        serde_json::json!({ "versions": releases }).to_string(),
    )
    .expect("index");
    let port = free_port();
    let child = spawn_ready(
        Command::new("python3")
            .arg(repo().join("fixtures/mirror/serve.py"))
            .arg(dir.path())
            .arg(port.to_string()),
        "serving",
    );
    StandInMirror {
        _dir: dir,
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}
