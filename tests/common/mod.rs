//! Test support: the mup binary with a clean environment, the real supervisord (installed
//! with `mup setup` when missing, never skipped), free ports, and daemon guards; the cluster
//! harness itself (`TestCluster`, `Output`, `pids`) is in `harness.rs`.

#![allow(dead_code)]

use assert_cmd::Command;
use mup::supervisor::Client;
use std::collections::BTreeSet;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

mod harness;
pub(crate) mod mirror;
mod python;
pub(crate) mod sampler;
mod standin;
pub(crate) use harness::*;
pub(crate) use python::*;
pub(crate) use standin::*;

pub(crate) fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn fixtures() -> PathBuf {
    repo().join("fixtures")
}

pub(crate) fn stand_in_bin() -> PathBuf {
    fixtures().join("bin")
}

/// The mup binary with an environment that cannot leak the developer's settings.
pub(crate) fn mup(mup_home: &Path) -> Command {
    Command::from_std(mup_process(mup_home))
}

/// [`mup`] as a plain process, for a test that reads its output while it runs or signals it.
pub(crate) fn mup_process(mup_home: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mup"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", mup_home.join("home"))
        .env("USER", "tester")
        .env("MUP_HOME", mup_home)
        .env("MUP_SUPERVISORD", supervisord())
        .current_dir(repo());
    cmd
}

/// [`run_gen`] as a plain `std::process::Output`, for tests written against it.
pub(crate) fn gen_in(dir: &Path, out: &str, extra: &[&str]) -> std::process::Output {
    mup(&dir.join("mup-home"))
        .current_dir(dir)
        .args(gen_args(out, extra))
        .output()
        .expect("run mup gen")
}

/// Stock supervisord 4.3.0: `$MUP_SUPERVISORD`, else installed once with `mup setup`
/// under target/. A test never skips for want of it: installing is part of the test run. If
/// that fails, the reason is kept and every test that needs the daemon fails with it (a panic:
/// libtest shows it without `--nocapture`, and each test's guards still stop what it started);
/// the install is tried only once.
pub(crate) fn supervisord() -> PathBuf {
    static PATH: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PATH.get_or_init(install_supervisord) {
        Ok(p) => p.clone(),
        Err(why) => {
            panic!("stock supervisord is required by this test and is not available: {why}")
        }
    }
}

fn install_supervisord() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("MUP_SUPERVISORD").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("MUP_SUPERVISORD={} does not exist", p.display()))
        };
    }
    let tools = repo().join("target").join("test-tools");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mup"))
        .arg("setup")
        .env("MUP_HOME", &tools)
        .output()
        .map_err(|e| format!("cannot run mup setup: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`MUP_HOME={} mup setup` failed ({}):\n{}",
            tools.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(tools.join("tools/supervisor/bin/supervisord"))
}

/// Says on the real stderr that a test skips all or part of what it checks, and why, so that
/// a skip never passes as a silent "ok": libtest captures only the print macros, not direct
/// writes to the stream.
pub(crate) fn skip(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED ({test}): {why}");
}

pub(crate) fn supervisorctl() -> PathBuf {
    supervisord().with_file_name("supervisorctl")
}

/// First port of the range tests draw from: `MUP_TEST_PORT_BASE`, default 20000. The range
/// is 10,000 ports wide; the default keeps it below the kernel's ephemeral range (so no
/// outgoing connection holds one) and away from 30000+, where `port: 0` allocation starts
/// (the golden cases rely on it).
pub(crate) fn port_base() -> u16 {
    std::env::var("MUP_TEST_PORT_BASE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|b: &u16| *b <= 55535)
        .unwrap_or(20000)
}

/// A port nothing listens on, never handed out twice in this test process, from the range
/// of [`port_base`].
pub(crate) fn free_port() -> u16 {
    use std::hash::{BuildHasher, RandomState};
    static GIVEN: OnceLock<Mutex<BTreeSet<u16>>> = OnceLock::new();
    let given = GIVEN.get_or_init(|| Mutex::new(BTreeSet::new()));
    let seed = RandomState::new();
    for attempt in 0u64.. {
        let port = port_base() + (seed.hash_one(attempt) % 10000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok()
            && given.lock().expect("port set lock").insert(port)
        {
            return port;
        }
    }
    unreachable!("the loop only ends by returning")
}

/// The event listener and the exporter mup adds to every tree (unless turned off).
pub(crate) fn is_monitoring(program: &str) -> bool {
    matches!(program, "mup-events" | "mup-metrics")
}

/// Polls `check` every 50 ms until it is true or `limit` passes.
pub(crate) fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

pub(crate) fn port_answers(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
}

pub(crate) fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.split_whitespace().nth(2) == Some("Z"))
            .unwrap_or(false)
}

/// The tree's meta.yaml as the test reads it (independently of mup's model).
pub(crate) fn read_meta(tree: &Path) -> serde_yaml::Value {
    let text = std::fs::read_to_string(tree.join("meta.yaml")).expect("tree has meta.yaml");
    serde_yaml::from_str(&text).expect("meta.yaml parses")
}

/// An XML-RPC client for the daemon of a generated tree.
pub(crate) fn client_for(tree: &Path) -> Client {
    let m = read_meta(tree);
    Client::new(
        m["supervisor_port"].as_u64().expect("port") as u16,
        m["supervisor_user"].as_str().expect("user"),
        m["supervisor_password"].as_str().expect("password"),
    )
}

/// Waits (up to 20 s) until supervisord reports no program of `tree` STARTING: a start
/// returns once every node answers, before supervisord's startsecs (5 s) makes it RUNNING.
pub(crate) fn wait_started(tree: &Path) {
    let client = client_for(tree);
    assert!(
        wait_until(Duration::from_secs(20), || client
            .get_all_process_info()
            .is_ok_and(|ps| ps.iter().all(|p| p.statename != "STARTING"))),
        "programs of {} still STARTING after 20 s",
        tree.display()
    );
}

/// A supervisord started directly on a tree; shut down (and reaped) when dropped.
pub(crate) struct Daemon {
    pub tree: PathBuf,
    pub client: Client,
    pub pid: u32,
}

impl Daemon {
    pub(crate) fn start(tree: &Path) -> Daemon {
        let status = std::process::Command::new(supervisord())
            .arg("-c")
            .arg(tree.join("supervisor.ini"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .current_dir("/")
            .status()
            .expect("run supervisord");
        assert!(status.success(), "supervisord refused {}", tree.display());
        let client = client_for(tree);
        assert!(
            wait_until(Duration::from_secs(10), || client.get_state().is_ok()),
            "supervisord on {} never answered",
            tree.display()
        );
        let pid = client.get_pid().expect("getPID");
        Daemon {
            tree: tree.to_path_buf(),
            client,
            pid,
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        stop_daemon(&self.client, self.pid);
    }
}

/// Shuts a daemon down and waits until its pid is gone (SIGKILL after 40 s).
pub(crate) fn stop_daemon(client: &Client, pid: u32) {
    let _ = client.shutdown();
    if !wait_until(Duration::from_secs(40), || !pid_alive(pid)) {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }
}

/// One command on a direct connection with the official driver, as any client would send
/// it: the tests' independent check of what mup set up.
pub(crate) fn mongo_command(port: u16, cmd: mongodb::bson::Document) -> mongodb::bson::Document {
    direct_client("127.0.0.1", port, Duration::from_secs(5))
        .database("admin")
        .run_command(cmd)
        .run()
        .unwrap_or_else(|e| panic!("command on port {port}: {e}"))
}

/// Spawns `cmd` with its stdout piped and waits for its first line, which must be `ready`
/// (the process says it is listening, or holds what it should).
pub(crate) fn spawn_ready(cmd: &mut std::process::Command, ready: &str) -> std::process::Child {
    use std::io::BufRead;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("read its first line");
    assert_eq!(line.trim(), ready, "{cmd:?}");
    child
}
