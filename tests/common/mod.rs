//! Test harness: the mup binary with a clean environment, the real supervisord (installed
//! with `mup setup` when missing, never skipped), free ports, and daemon guards.

#![allow(dead_code)]

use assert_cmd::Command;
use mup::supervisor::Client;
use std::collections::BTreeSet;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixtures() -> PathBuf {
    repo().join("fixtures")
}

pub fn stand_in_bin() -> PathBuf {
    fixtures().join("bin")
}

/// The mup binary with an environment that cannot leak the developer's settings.
pub fn mup(mup_home: &Path) -> Command {
    let mut cmd = Command::cargo_bin("mup").expect("the mup binary is built");
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", mup_home.join("home"))
        .env("USER", "tester")
        .env("MUP_HOME", mup_home)
        .env("MUP_SUPERVISORD", supervisord())
        .current_dir(repo());
    cmd
}

/// Stock supervisord 4.3.0: `$MUP_SUPERVISORD`, else installed once with `mup setup`
/// under target/. A test never skips for want of it: installing is part of the test run.
pub fn supervisord() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Some(p) = std::env::var_os("MUP_SUPERVISORD").filter(|p| !p.is_empty()) {
            let p = PathBuf::from(p);
            assert!(
                p.is_file(),
                "MUP_SUPERVISORD={} does not exist",
                p.display()
            );
            return p;
        }
        let tools = repo().join("target").join("test-tools");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mup"))
            .arg("setup")
            .env("MUP_HOME", &tools)
            .output()
            .expect("run mup setup");
        assert!(
            out.status.success(),
            "mup setup failed; supervisord is required by the tests:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        tools.join("tools/supervisor/bin/supervisord")
    })
    .clone()
}

pub fn supervisorctl() -> PathBuf {
    supervisord().with_file_name("supervisorctl")
}

/// A port nothing listens on, never handed out twice in this test process.
pub fn free_port() -> u16 {
    static GIVEN: OnceLock<Mutex<BTreeSet<u16>>> = OnceLock::new();
    let given = GIVEN.get_or_init(|| Mutex::new(BTreeSet::new()));
    loop {
        let port = TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .expect("bind an ephemeral port")
            .port();
        if given.lock().expect("port set lock").insert(port) {
            return port;
        }
    }
}

/// Polls `check` every 50 ms until it is true or `limit` passes.
pub fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

pub fn port_answers(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
}

pub fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.split_whitespace().nth(2) == Some("Z"))
            .unwrap_or(false)
}

/// The tree's meta.yaml as the test reads it (independently of mup's model).
pub fn read_meta(tree: &Path) -> serde_yaml::Value {
    let text = std::fs::read_to_string(tree.join("meta.yaml")).expect("tree has meta.yaml");
    serde_yaml::from_str(&text).expect("meta.yaml parses")
}

/// An XML-RPC client for the daemon of a generated tree.
pub fn client_for(tree: &Path) -> Client {
    let m = read_meta(tree);
    Client::new(
        m["supervisor_port"].as_u64().expect("port") as u16,
        m["supervisor_user"].as_str().expect("user"),
        m["supervisor_password"].as_str().expect("password"),
    )
}

/// A supervisord started directly on a tree; shut down (and reaped) when dropped.
pub struct Daemon {
    pub tree: PathBuf,
    pub client: Client,
    pub pid: u32,
}

impl Daemon {
    pub fn start(tree: &Path) -> Daemon {
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
pub fn stop_daemon(client: &Client, pid: u32) {
    let _ = client.shutdown();
    if !wait_until(Duration::from_secs(40), || !pid_alive(pid)) {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }
}
