//! `mup install`, `versions`, `uninstall` and `--version` without `--bin-path`, against a local
//! mirror (fixtures/mirror/serve.py) serving a generated release index and archives of the
//! stand-ins. No test touches the internet.

use crate::common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

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
/// stand-ins, reporting `version`; `hostile` changes `<top>` before it is packed.
fn archive_with(
    dir: &Path,
    name: &str,
    top: &str,
    version: &str,
    hostile: impl Fn(&Path),
) -> PathBuf {
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
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    hostile(&dir.join("build").join(top));
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

/// How a release's archive misbehaves.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Good,
    /// The published sha256 is wrong.
    WrongSha,
    /// The mirror sends half of it and closes the connection.
    Broken,
    /// The mirror sends half of it and then nothing, the connection left open.
    Stalled,
    /// `bin/mongod` is setuid (04755); `bin/open` and `share/` are 0777.
    Setuid,
    /// Beside `bin/`, a file of 256 MiB of zeros: a gzip bomb.
    Bomb,
}

/// Releases 7.0.9, 7.0.14, 7.0.15-rc0 (not production) and 8.0.4; 6.0.19 whose published
/// sha256 is wrong; 6.0.20 whose download breaks off.
fn mirror() -> Mirror {
    mirror_of(&[
        ("7.0.9", true, Kind::Good),
        ("7.0.14", true, Kind::Good),
        ("7.0.15-rc0", false, Kind::Good),
        ("8.0.4", true, Kind::Good),
        ("6.0.19", true, Kind::WrongSha),
        ("6.0.20", true, Kind::Broken),
    ])
}

/// 7.0.9 and 7.0.14; 6.0.21 that stalls; 6.0.22 setuid; 6.0.23 a gzip bomb; and a release
/// whose version is the path `../../escape`, an archive that would install fine.
fn hostile_mirror() -> Mirror {
    mirror_of(&[
        ("7.0.9", true, Kind::Good),
        ("7.0.14", true, Kind::Good),
        ("6.0.21", true, Kind::Stalled),
        ("6.0.22", true, Kind::Setuid),
        ("6.0.23", true, Kind::Bomb),
        ("../../escape", true, Kind::Good),
    ])
}

fn make_hostile(top: &Path, kind: Kind) {
    let mode = |p: &Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod")
    };
    match kind {
        Kind::Setuid => {
            mode(&top.join("bin/mongod"), 0o4755);
            std::fs::write(top.join("bin/open"), "#!/bin/sh\n").expect("write");
            mode(&top.join("bin/open"), 0o777);
            std::fs::create_dir(top.join("share")).expect("mkdir");
            mode(&top.join("share"), 0o777);
        }
        Kind::Bomb => {
            // Sparse here (no disk used); tar packs 256 MiB of zeros into a few hundred KB.
            let filler = std::fs::File::create(top.join("filler")).expect("filler");
            filler.set_len(256 << 20).expect("set_len");
        }
        _ => {}
    }
}

fn mirror_of(releases: &[(&str, bool, Kind)]) -> Mirror {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut versions = Vec::new();
    for &(version, prod, kind) in releases {
        let top = format!("mongodb-linux-x86_64-{}", version.replace('/', "_"));
        let file = match kind {
            Kind::Broken => format!("broken-{top}.tgz"),
            Kind::Stalled => format!("stall-{top}.tgz"),
            _ => format!("{top}.tgz"),
        };
        let path = archive_with(dir.path(), &file, &top, version, |t| make_hostile(t, kind));
        let sha = if kind == Kind::WrongSha {
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

fn install(home: &Path, m: &Mirror, version: &str) -> Output {
    run_mup(
        mup(home),
        &["install", version, "--mirror", &m.url, "--yes"],
    )
}

#[test]
fn install_by_version_and_series_verified_and_whole() {
    let m = mirror();
    let home = tempfile::tempdir().expect("home");
    let h = home.path();

    // A plain-HTTP mirror is warned about.
    install(h, &m, "7.0.9").ok().stderr_has("plain HTTP");
    let out = install(h, &m, "7.0").ok();
    let bin = h.join("storage/packages/7.0.14/bin");
    assert_eq!(
        out.stdout.trim_end().lines().last(),
        Some(bin.to_str().expect("utf8"))
    );
    let version = Command::new(bin.join("mongod"))
        .arg("--version")
        .output()
        .expect("mongod --version");
    assert!(String::from_utf8_lossy(&version.stdout).contains("db version v7.0.14"));
    assert_eq!(packages(h), vec!["7.0.14", "7.0.9"]);
    let listed = run_mup(mup(h), &["versions", "--mirror", &m.url]).stdout;
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
        install(h, &m, version).code(1).stderr_has(why);
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
    a.ok();
    b.ok();
    assert_eq!(packages(h), vec!["7.0.14", "7.0.9", "8.0.4"]);

    run_mup(mup(h), &["uninstall", "7.0.9"]).ok();
    assert_eq!(packages(h), vec!["7.0.14", "8.0.4"]);
}

#[test]
fn playground_with_a_version_installs_and_runs_it() {
    let m = mirror();
    let _ports = allocation_lock(); // the playground takes ports from 30000
    let home = tempfile::tempdir().expect("home");
    let h = home.path();
    run_mup(
        mup(h),
        &[
            "playground",
            "start",
            "--version",
            "7.0",
            "--mirror",
            &m.url,
            "--yes",
            "--nodes",
            "1",
        ],
    )
    .ok();
    let tree = h.join("storage/clusters/playground");
    let meta = read_meta(&tree);
    assert_eq!(meta["version"], "7.0.14");
    assert_eq!(
        meta["bin_path"].as_str(),
        h.join("storage/packages/7.0.14/bin").to_str()
    );
    wait_started(&tree); // display exits 0 once supervisord calls the node RUNNING
    run_mup(mup(h), &["cluster", "display", "playground", "--json"]).ok();

    // A version a cluster uses cannot be uninstalled.
    run_mup(mup(h), &["uninstall", "7.0.14"])
        .code(1)
        .stderr_has("used by cluster(s) playground");
    run_mup(mup(h), &["playground", "destroy"]).ok();
    run_mup(mup(h), &["uninstall", "7.0.14"]).ok();
}

/// `mup ARGS` under `home` with `env`, as the tests' `mup` runs it, bounded by `limit` (a
/// hang fails the test instead of stalling the suite).
fn mup_bounded(home: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = mup(home);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.timeout(Duration::from_secs(60));
    run_mup(cmd, args)
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .expect("stat")
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn a_setuid_archive_installs_at_most_0755() {
    let m = hostile_mirror();
    let home = tempfile::tempdir().expect("home");
    let h = home.path();
    install(h, &m, "6.0.22").ok();
    let pkg = h.join("storage/packages/6.0.22");
    assert_eq!(mode(&pkg.join("bin/mongod")), 0o755, "setuid dropped");
    assert_eq!(
        mode(&pkg.join("bin/open")),
        0o755,
        "group/other write dropped"
    );
    assert_eq!(mode(&pkg.join("share")), 0o755, "a 0777 directory");
    assert_eq!(mode(&h.join("storage/packages")), 0o700);
}

#[test]
fn a_stalled_mirror_fails_naming_the_url_and_releases_the_lock() {
    let m = hostile_mirror();
    let home = tempfile::tempdir().expect("home");
    let h = home.path();
    let short = [("MUP_DOWNLOAD_TIMEOUT", "1"), ("MUP_LOCK_TIMEOUT", "0")];

    // Before the headers: the index.
    let stalled = format!("{}/stall-head", m.url);
    mup_bounded(h, &short, &["install", "7.0.9", "--mirror", &stalled])
        .code(1)
        .stderr_has(&format!("{stalled}/full.json sent nothing for 1 s"));

    // Mid-body: the archive, twice: the second run finds the version's lock free.
    let url = format!("{}/stall-mongodb-linux-x86_64-6.0.21.tgz", m.url);
    for _ in 0..2 {
        mup_bounded(h, &short, &["install", "6.0.21", "--mirror", &m.url])
            .code(1)
            .stderr_has(&format!("{url} sent nothing for 1 s"));
        assert_eq!(packages(h), Vec::<String>::new(), "nothing left behind");
    }
}

/// A mirror that sends a byte every 0.1 s is never silent for the timeout, yet would take
/// hours: a download slower than the floor rate over a whole timeout period gives up.
#[test]
fn a_trickling_mirror_fails_naming_the_url() {
    let m = hostile_mirror();
    let home = tempfile::tempdir().expect("home");
    let short = [("MUP_DOWNLOAD_TIMEOUT", "1"), ("MUP_LOCK_TIMEOUT", "0")];
    let trickle = format!("{}/trickle", m.url);
    mup_bounded(
        home.path(),
        &short,
        &["install", "7.0.9", "--mirror", &trickle],
    )
    .code(1)
    .stderr_has(&format!("{trickle}/full.json sent only "));
}

/// `.download-*` directories under `home`'s package cache.
fn downloads(home: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(home.join("storage/packages"))
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().contains("/.download-"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_killed_install_leaves_nothing_once_the_next_runs() {
    let m = hostile_mirror();
    let home = tempfile::tempdir().expect("home");
    let h = home.path();
    // An install that stalls mid-download, with a timeout longer than this test.
    let mut stalled = std::process::Command::new(env!("CARGO_BIN_EXE_mup"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", h.join("home"))
        .env("MUP_HOME", h)
        .env("MUP_DOWNLOAD_TIMEOUT", "300")
        .args(["install", "6.0.21", "--mirror", &m.url])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn mup install");
    let has_archive = |h: &Path| {
        downloads(h)
            .iter()
            .any(|d| d.join("archive.tgz").metadata().is_ok_and(|m| m.len() > 0))
    };
    assert!(
        wait_until(Duration::from_secs(30), || has_archive(h)),
        "the stalled install never started its download"
    );
    let in_use = downloads(h);

    // Another install while it runs: its directory is in use and stays.
    install(h, &m, "7.0.9").ok();
    assert_eq!(downloads(h), in_use, "a running install's download is kept");

    // Killed: its directory stays behind until the next install, which removes it.
    stalled.kill().expect("kill");
    stalled.wait().expect("wait");
    assert_eq!(downloads(h), in_use);
    install(h, &m, "7.0.14").ok();
    assert_eq!(
        downloads(h),
        Vec::<PathBuf>::new(),
        "the stale download is gone"
    );
    assert_eq!(packages(h), vec!["7.0.14", "7.0.9"]);
}

#[test]
fn a_gzip_bomb_stops_at_the_bound() {
    let m = hostile_mirror();
    let home = tempfile::tempdir().expect("home");
    let h = home.path();
    install(h, &m, "6.0.23")
        .code(1)
        .stderr_has("/filler it would unpack to more than 64 MiB")
        .stderr_has("stopped");
    assert_eq!(packages(h), Vec::<String>::new(), "nothing left behind");
}

#[test]
fn a_huge_index_is_refused() {
    let m = hostile_mirror();
    let home = tempfile::tempdir().expect("home");
    // 200 MiB, streamed without a Content-Length.
    let huge = format!("{}/huge-index-{}", m.url, 200u64 << 20);
    mup_bounded(home.path(), &[], &["versions", "--mirror", &huge])
        .code(1)
        .stderr_has(&format!("{huge}/full.json is larger than 128 MiB"));
}

#[test]
fn a_version_that_is_a_path_is_refused() {
    let m = hostile_mirror();
    let home = tempfile::tempdir().expect("home");
    let h = home.path();
    for (version, mirror) in [
        ("./../../x", "http://127.0.0.1:9"), // refused before any request
        ("../../escape", m.url.as_str()),    // in the index, still refused
    ] {
        mup_bounded(h, &[], &["install", version, "--mirror", mirror])
            .code(2)
            .stderr_has(&format!("{version:?} is not a MongoDB version"));
    }
    assert!(!h.join("escape").exists() && !h.join("storage/escape").exists());
    assert_eq!(packages(h), Vec::<String>::new());
}

#[test]
fn install_without_a_terminal_does_not_ask() {
    let m = mirror();
    let home = tempfile::tempdir().expect("home");
    let h = home.path();
    let mut cmd = mup(h);
    cmd.write_stdin(""); // not a terminal, and nothing to answer with
    run_mup(cmd, &["install", "7.0", "--mirror", &m.url]).ok();
    assert_eq!(packages(h), vec!["7.0.14"]);
}

#[test]
fn uninstall_refuses_a_version_a_cluster_uses_through_a_symlink() {
    let m = mirror();
    let _ports = allocation_lock(); // the playground takes ports from 30000
    let home = tempfile::tempdir().expect("home");
    let h = home.path();
    install(h, &m, "7.0.14").ok();
    let link = h.join("mongodb-bin");
    std::os::unix::fs::symlink(h.join("storage/packages/7.0.14/bin"), &link).expect("symlink");
    run_mup(
        mup(h),
        &[
            "playground",
            "start",
            "--yes",
            "--nodes",
            "1",
            "--bin-path",
            link.to_str().expect("utf8"),
        ],
    )
    .ok();

    run_mup(mup(h), &["uninstall", "7.0.14"])
        .code(1)
        .stderr_has("used by cluster(s) playground");
    assert!(link.join("mongod").is_file(), "the package is still there");
    run_mup(mup(h), &["playground", "destroy"]).ok();
}
