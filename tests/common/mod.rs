//! Test harness: the mup binary with a clean environment, the real supervisord (installed
//! with `mup setup` when missing, never skipped), free ports, and daemon guards.

#![allow(dead_code)]

use assert_cmd::Command;
use mup::supervisor::Client;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub(crate) mod mirror;
mod python;
pub(crate) mod sampler;
mod standin;
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

/// `mup gen topology.yaml --meta meta.yaml --out OUT EXTRA...`, run in `dir` with
/// MUP_HOME=`dir`/mup-home.
pub(crate) fn gen_in(dir: &Path, out: &str, extra: &[&str]) -> std::process::Output {
    mup(&dir.join("mup-home"))
        .current_dir(dir)
        .args(["gen", "topology.yaml", "--meta", "meta.yaml", "--out", out])
        .args(extra)
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

/// A cluster tree generated for a test from a topology (ports chosen by the test), with its
/// own MUP_HOME; everything it started is stopped when dropped, even after a failure.
pub(crate) struct TestCluster {
    pub tmp: tempfile::TempDir,
    pub tree: PathBuf,
    pub ports: Vec<u16>,
}

impl TestCluster {
    /// `topology` is YAML whose ports are `{p0}`, `{p1}`, ... placeholders, filled with free ports.
    pub(crate) fn new(name: &str, topology: &str, nodes: usize) -> TestCluster {
        let tmp = tempfile::tempdir().expect("tempdir");
        let ports: Vec<u16> = (0..nodes).map(|_| free_port()).collect();
        let mut text = topology.to_string();
        for (i, p) in ports.iter().enumerate() {
            text = text.replace(&format!("{{p{i}}}"), &p.to_string());
        }
        std::fs::write(tmp.path().join("topology.yaml"), text).expect("write topology");
        let meta = format!(
            "name: {name}\nversion: \"7.0.14\"\nbin_path: {}\nsupervisor_port: {}\nmetrics_port: {}\nhome: {}\n",
            stand_in_bin().display(),
            free_port(),
            free_port(),
            tmp.path().display()
        );
        std::fs::write(tmp.path().join("meta.yaml"), meta).expect("write meta");
        let c = TestCluster {
            tree: tmp.path().join("tree"),
            tmp,
            ports,
        };
        c.gen();
        c
    }

    /// Regenerates the tree from `topology.yaml` (after a test edited it).
    pub(crate) fn gen(&self) {
        let out = gen_in(self.tmp.path(), "tree", &[]);
        assert!(
            out.status.success(),
            "gen: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub(crate) fn mup(&self) -> Command {
        let mut cmd = mup(&self.tmp.path().join("mup-home"));
        cmd.current_dir(self.tmp.path());
        cmd
    }

    /// `mup ctl --dir tree ARGS`: (exit code, stdout, stderr).
    pub(crate) fn ctl(&self, args: &[&str]) -> (i32, String, String) {
        let out = self
            .mup()
            .args(["ctl", "--dir", "tree"])
            .args(args)
            .output()
            .expect("run mup ctl");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs ctl and asserts success; returns stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.ctl(args);
        assert_eq!(code, 0, "mup ctl {args:?} failed:\n{out}\n{err}");
        out
    }

    pub(crate) fn client(&self) -> Client {
        client_for(&self.tree)
    }

    /// node program name → pid, as supervisord reports them (0 when not running); the
    /// monitoring programs (mup-events, mup-metrics) are left out.
    pub(crate) fn pids(&self) -> std::collections::BTreeMap<String, u32> {
        self.client()
            .get_all_process_info()
            .expect("getAllProcessInfo")
            .into_iter()
            .filter(|p| !is_monitoring(&p.name))
            .map(|p| (p.name, p.pid))
            .collect()
    }

    /// `mup ctl status --json`, parsed.
    pub(crate) fn status(&self) -> serde_json::Value {
        let (_, out, err) = self.ctl(&["status", "--json"]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("status --json: {e}\n{out}\n{err}"))
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        clean_up(std::slice::from_ref(&self.tree), &self.ports);
    }
}

/// The one clean-up of the tests' guards: each tree's daemon shut down (if its pidfile names
/// a live one), then whatever still listens on the test's ports (orphans of a killed daemon,
/// stand-ins a test started itself) killed.
pub(crate) fn clean_up(trees: &[PathBuf], ports: &[u16]) {
    for tree in trees {
        let pid = std::fs::read_to_string(tree.join("supervisor.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        if let Some(pid) = pid.filter(|p| pid_alive(*p)) {
            if tree.join("meta.yaml").exists() {
                stop_daemon(&client_for(tree), pid);
            }
        }
    }
    for port in ports {
        if let Some(pid) = mup::listener_pid(*port) {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        }
    }
}

/// Held around every command that lets mup allocate ports on the machine and then binds them:
/// allocation checks a port free, so two tests allocating at once (each with its own MUP_HOME)
/// could pick the same one before either binds it. The golden Go-style case needs 30000.. free
/// (`port: 0` allocation), which the playground takes; supervisord ports come from 9001.
pub(crate) fn allocation_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The MUP_HOME every test here shares, as users' clusters share one: clusters under one home
/// never get the same supervisord port (allocation skips the ports other clusters recorded,
/// stopped ones included), which separate homes could not promise each other.
fn shared_home() -> &'static Path {
    static HOME: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    HOME.get_or_init(|| tempfile::tempdir().expect("tempdir"))
        .path()
}

/// One test's view of the shared MUP_HOME: its own scratch directory, and on drop its own
/// clusters shut down and their ports cleared.
pub(crate) struct Home {
    scratch: tempfile::TempDir,
    names: Vec<&'static str>,
    pub ports: Vec<u16>,
}

impl Home {
    /// `names`: the clusters this test creates (cluster names are unique across tests).
    pub(crate) fn new(names: &[&'static str]) -> Home {
        Home {
            scratch: tempfile::tempdir().expect("tempdir"),
            names: names.to_vec(),
            ports: Vec::new(),
        }
    }
    pub(crate) fn path(&self) -> &Path {
        shared_home()
    }
    pub(crate) fn scratch(&self) -> &Path {
        self.scratch.path()
    }
    pub(crate) fn cluster_dir(&self, name: &str) -> PathBuf {
        self.path().join("storage/clusters").join(name)
    }
    /// `mup ARGS` with this MUP_HOME: (code, stdout, stderr).
    pub(crate) fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = mup(self.path()).args(args).output().expect("run mup");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(code, 0, "mup {args:?}:\n{out}\n{err}");
        out
    }
    /// A topology file with `n` fresh ports substituted for `{p0}`...
    pub(crate) fn topology(&mut self, file: &str, template: &str, n: usize) -> PathBuf {
        let mut text = template.to_string();
        for i in 0..n {
            let p = free_port();
            self.ports.push(p);
            text = text.replace(&format!("{{p{i}}}"), &p.to_string());
        }
        let path = self.scratch().join(file);
        std::fs::write(&path, text).expect("write topology");
        path
    }
    /// `mup cluster deploy NAME TOPOLOGY --bin-path BIN --yes`: (code, stdout, stderr).
    pub(crate) fn try_deploy(
        &self,
        name: &str,
        topology: &Path,
        bin: &Path,
    ) -> (i32, String, String) {
        self.run(&[
            "cluster",
            "deploy",
            name,
            topology.to_str().expect("utf8"),
            "--bin-path",
            bin.to_str().expect("utf8"),
            "--yes",
        ])
    }
    /// Deploys with the stand-ins, asserts success and waits out supervisord's startsecs
    /// ([`wait_started`]); returns stdout.
    pub(crate) fn deploy(&self, name: &str, topology: &Path) -> String {
        let _ports = allocation_lock();
        let (code, out, err) = self.try_deploy(name, topology, &stand_in_bin());
        assert_eq!(code, 0, "deploy {name}:\n{out}\n{err}");
        wait_started(&self.cluster_dir(name));
        out
    }
    pub(crate) fn display(&self, name: &str) -> (i32, serde_json::Value) {
        let (code, out, err) = self.run(&["cluster", "display", name, "--json"]);
        (
            code,
            serde_json::from_str(&out)
                .unwrap_or_else(|e| panic!("display --json: {e}\n{out}\n{err}")),
        )
    }
    pub(crate) fn pids(&self, name: &str) -> BTreeMap<String, u64> {
        let (_, d) = self.display(name);
        d["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| {
                (
                    n["program"].as_str().expect("p").to_string(),
                    n["pid"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let trees: Vec<PathBuf> = self.names.iter().map(|n| self.cluster_dir(n)).collect();
        clean_up(&trees, &self.ports);
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
