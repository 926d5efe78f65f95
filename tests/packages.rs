//! `mup install`, `versions`, `uninstall` and `--version` without `--bin-path`, against a local
//! mirror (fixtures/mirror/serve.py) serving a generated release index and archives of the
//! stand-ins. No test touches the internet.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// A mirror on a free port, stopped when dropped.
struct Mirror {
    _dir: tempfile::TempDir,
    child: Child,
    url: String,
}

impl Drop for Mirror {
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

/// An archive `name` holding `<top>/bin/mongod` and `mongos`: wrappers that run the
/// stand-ins, reporting `version`.
fn archive(dir: &Path, name: &str, top: &str, version: &str) -> PathBuf {
    let bin = dir.join("build").join(top).join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    for tool in ["mongod", "mongos"] {
        let target = stand_in_bin().join(tool);
        let p = bin.join(tool);
        std::fs::write(
            &p,
            format!(
                "#!/bin/sh\nMUP_STANDIN_VERSION={version} exec {} \"$@\"\n",
                target.display()
            ),
        )
        .expect("wrapper");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let out = dir.join(name);
    let ok = Command::new("tar")
        .arg("czf")
        .arg(&out)
        .arg("-C")
        .arg(dir.join("build"))
        .arg(top)
        .status()
        .expect("tar")
        .success();
    assert!(ok);
    out
}

/// Releases 7.0.9, 7.0.14, 7.0.15-rc0 (not production) and 8.0.4; 6.0.19 whose published
/// sha256 is wrong; 6.0.20 whose download breaks off.
fn mirror() -> Mirror {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut versions = Vec::new();
    for (version, prod) in [
        ("7.0.9", true),
        ("7.0.14", true),
        ("7.0.15-rc0", false),
        ("8.0.4", true),
        ("6.0.19", true),
        ("6.0.20", true),
    ] {
        let top = format!("mongodb-linux-x86_64-{version}");
        let file = if version == "6.0.20" {
            format!("broken-{top}.tgz")
        } else {
            format!("{top}.tgz")
        };
        let path = archive(dir.path(), &file, &top, version);
        let sha = if version == "6.0.19" {
            "0".repeat(64)
        } else {
            sha256(&path)
        };
        versions.push(serde_json::json!({
            "version": version,
            "production_release": prod,
            "downloads": [
                // A target no machine has: never chosen.
                {"target": "plan9", "arch": "x86_64", "edition": "targeted",
                 "archive": {"url": "https://example.invalid/nothing.tgz", "sha256": "00"}},
                {"target": "linux", "arch": std::env::consts::ARCH, "edition": "base",
                 "archive": {"url": format!("https://fastdl.example/linux/{file}"), "sha256": sha}},
            ],
        }));
    }
    std::fs::write(
        dir.path().join("full.json"),
        serde_json::json!({ "versions": versions }).to_string(),
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
    Mirror {
        _dir: dir,
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

fn packages(home: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(home.join("storage/packages"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.ends_with(".lock"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn install(home: &Path, m: &Mirror, version: &str) -> std::process::Output {
    mup(home)
        .args(["install", version, "--mirror", &m.url, "--yes"])
        .output()
        .expect("mup install")
}

#[test]
fn install_by_version_and_series_verified_and_whole() {
    let m = mirror();
    let home = tempfile::tempdir().expect("home");
    let h = home.path();

    let out = install(h, &m, "7.0.9");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("plain HTTP"),
        "a plain-HTTP mirror is warned about"
    );
    let out = install(h, &m, "7.0");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = h.join("storage/packages/7.0.14/bin");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .trim_end()
            .lines()
            .last(),
        Some(bin.to_str().expect("utf8"))
    );
    let version = Command::new(bin.join("mongod"))
        .arg("--version")
        .output()
        .expect("mongod --version");
    assert!(String::from_utf8_lossy(&version.stdout).contains("db version v7.0.14"));
    assert_eq!(packages(h), vec!["7.0.14", "7.0.9"]);
    let listed = mup(h)
        .args(["versions", "--mirror", &m.url])
        .output()
        .expect("versions");
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert_eq!(
        listed.lines().take(3).collect::<Vec<_>>(),
        vec!["8.0.4", "7.0.14  (installed)", "7.0.9  (installed)"],
        "{listed}"
    );
    assert!(!listed.contains("rc0"), "{listed}");

    // A wrong checksum, and a download that breaks off: refused, nothing left behind.
    for (version, why) in [
        ("6.0.19", "does not match the published"),
        ("6.0.20", "broke off"),
    ] {
        let out = install(h, &m, version);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{version}: {err}");
        assert!(err.contains(why), "{version}: {err}");
        assert_eq!(
            packages(h),
            vec!["7.0.14", "7.0.9"],
            "{version} left nothing"
        );
    }

    // Two installs of one version at once: one package, both succeed.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| install(h, &m, "8.0"));
        let b = s.spawn(|| install(h, &m, "8.0.4"));
        (a.join().expect("a"), b.join().expect("b"))
    });
    assert!(a.status.success() && b.status.success());
    assert_eq!(packages(h), vec!["7.0.14", "7.0.9", "8.0.4"]);

    let out = mup(h)
        .args(["uninstall", "7.0.9"])
        .output()
        .expect("uninstall");
    assert!(out.status.success());
    assert_eq!(packages(h), vec!["7.0.14", "8.0.4"]);
}

#[test]
fn playground_with_a_version_installs_and_runs_it() {
    let m = mirror();
    let _ports = allocation_lock(); // the playground takes ports from 30000
    let home = tempfile::tempdir().expect("home");
    let h = home.path();
    let out = mup(h)
        .args([
            "playground",
            "start",
            "--version",
            "7.0",
            "--mirror",
            &m.url,
            "--yes",
            "--nodes",
            "1",
        ])
        .output()
        .expect("playground start");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = h.join("storage/clusters/playground");
    let meta = read_meta(&tree);
    assert_eq!(meta["version"], "7.0.14");
    assert_eq!(
        meta["bin_path"].as_str(),
        h.join("storage/packages/7.0.14/bin").to_str()
    );
    wait_started(&tree); // display exits 0 once supervisord calls the node RUNNING
    let d = mup(h)
        .args(["cluster", "display", "playground", "--json"])
        .output()
        .expect("display");
    assert!(d.status.success(), "{}", String::from_utf8_lossy(&d.stdout));

    // A version a cluster uses cannot be uninstalled.
    let out = mup(h)
        .args(["uninstall", "7.0.14"])
        .output()
        .expect("uninstall");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("used by cluster(s) playground"));
    assert!(mup(h)
        .args(["playground", "destroy"])
        .output()
        .expect("destroy")
        .status
        .success());
    let out = mup(h)
        .args(["uninstall", "7.0.14"])
        .output()
        .expect("uninstall");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
