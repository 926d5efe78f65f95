//! The one test harness, in the style of just's tests: a cluster under test is built with
//! `TestCluster::named("life").topology(TOPOLOGY)` and made with `.deploy()` (a named
//! cluster under the shared MUP_HOME), `.gen()` (a bare ctl tree with its own MUP_HOME),
//! `.start()` (that tree up and started) or `.guard()` (the test makes it itself); every
//! command runs with `.run(args)` / `.ctl_run(args)` (or [`run_mup`], [`run_gen`]) into an
//! [`Output`] asserted with `.ok()`, `.code(n)`, `.stdout_has(..)`, `.stderr_has(..)`,
//! `.json()`. Also here: the one [`pids`] (what supervisord reports), [`shown_pids`] (what
//! mup's JSON shows) and the clean-up every guard shares.
//!
//! Kept for tests written against the older shapes, on the same pieces: `TestCluster::new`,
//! `TestCluster::ctl` and `TestCluster::ok`.

use super::{client_for, free_port, is_monitoring, mup, pid_alive, stand_in_bin, stop_daemon};
use super::{read_meta, repo, wait_started};
use assert_cmd::Command;
use mup::supervisor::Client;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What one mup command did: its exit code and output. Every assertion names the command and
/// shows both streams when it fails.
#[derive(Debug, Clone)]
pub(crate) struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    command: String,
}

impl Output {
    fn of(command: String, out: std::process::Output) -> Output {
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            command,
        }
    }

    fn fail(&self, what: &str) -> ! {
        panic!(
            "`{}` {what}\n--- exit code: {}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.command, self.code, self.stdout, self.stderr
        )
    }

    /// Asserts exit code 0.
    #[track_caller]
    pub(crate) fn ok(self) -> Output {
        self.code(0)
    }

    /// Asserts exit code `n`.
    #[track_caller]
    pub(crate) fn code(self, n: i32) -> Output {
        if self.code != n {
            self.fail(&format!("exited {}, expected {n}", self.code));
        }
        self
    }

    #[track_caller]
    pub(crate) fn stdout_has(self, text: &str) -> Output {
        if !self.stdout.contains(text) {
            self.fail(&format!("stdout lacks {text:?}"));
        }
        self
    }

    #[track_caller]
    pub(crate) fn stderr_has(self, text: &str) -> Output {
        if !self.stderr.contains(text) {
            self.fail(&format!("stderr lacks {text:?}"));
        }
        self
    }

    #[track_caller]
    pub(crate) fn stdout_lacks(self, text: &str) -> Output {
        if self.stdout.contains(text) {
            self.fail(&format!("stdout has {text:?}"));
        }
        self
    }

    #[track_caller]
    pub(crate) fn stderr_lacks(self, text: &str) -> Output {
        if self.stderr.contains(text) {
            self.fail(&format!("stderr has {text:?}"));
        }
        self
    }

    /// stdout parsed as JSON.
    #[track_caller]
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| self.fail(&format!("printed no JSON document: {e}")))
    }

    /// (code, stdout, stderr), the shape of the older helpers.
    pub(crate) fn parts(self) -> (i32, String, String) {
        (self.code, self.stdout, self.stderr)
    }
}

/// Runs `cmd` (a [`mup`] command) to its end: what it did.
pub(crate) fn run_mup(mut cmd: Command, args: &[&str]) -> Output {
    let out = cmd.args(args).output().expect("run mup");
    Output::of(format!("mup {}", args.join(" ")), out)
}

/// `mup gen topology.yaml --meta meta.yaml --out OUT EXTRA...`, run in `dir` with
/// MUP_HOME=`dir`/mup-home: what it did.
pub(crate) fn run_gen(dir: &Path, out: &str, extra: &[&str]) -> Output {
    let mut cmd = mup(&dir.join("mup-home"));
    cmd.current_dir(dir);
    run_mup(cmd, &gen_args(out, extra))
}

/// `gen topology.yaml --meta meta.yaml --out OUT EXTRA...`: the arguments of a gen in a
/// directory holding both files.
pub(crate) fn gen_args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let args = ["gen", "topology.yaml", "--meta", "meta.yaml", "--out", out];
    [&args[..], extra].concat()
}

/// The one `pids()`: program name → pid of a tree's nodes as supervisord reports them (0 when
/// not running); the monitoring programs (mup-events, mup-metrics) are left out.
pub(crate) fn pids(tree: &Path) -> BTreeMap<String, u32> {
    pids_with_monitoring(tree)
        .into_iter()
        .filter(|(name, _)| !is_monitoring(name))
        .collect()
}

/// [`pids`] with the monitoring programs kept: for a test that checks they were not
/// restarted either.
pub(crate) fn pids_with_monitoring(tree: &Path) -> BTreeMap<String, u32> {
    client_for(tree)
        .get_all_process_info()
        .expect("getAllProcessInfo")
        .into_iter()
        .map(|p| (p.name, p.pid))
        .collect()
}

/// The supervisord port a tree's meta.yaml records.
pub(crate) fn supervisor_port(tree: &Path) -> u16 {
    read_meta(tree)["supervisor_port"]
        .as_u64()
        .expect("supervisor_port") as u16
}

/// Sends `signal` (`9`, `STOP`, `USR1`, ...) to `pid` with kill(1); whether it was sent.
pub(crate) fn send_signal(pid: u32, signal: &str) -> bool {
    std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .is_ok_and(|s| s.success())
}

/// Resumes a stopped (SIGSTOP) process when dropped, a failed assertion included, so that
/// the clean-up can shut it down.
pub(crate) struct Resume(pub u32);

impl Drop for Resume {
    fn drop(&mut self) {
        if pid_alive(self.0) {
            send_signal(self.0, "CONT");
        }
    }
}

/// The node pids a mup JSON document shows: `cluster display --json` (`nodes`, by `program`)
/// or `ctl status --json` (`programs`, by `name`, monitoring left out); `null` as 0.
pub(crate) fn shown_pids(doc: &serde_json::Value) -> BTreeMap<String, u32> {
    let (list, key) = match doc.get("nodes") {
        Some(nodes) => (nodes, "program"),
        None => (&doc["programs"], "name"),
    };
    list.as_array()
        .unwrap_or_else(|| panic!("no node list in {doc}"))
        .iter()
        .map(|n| (n[key].as_str().expect("a program name").to_string(), n))
        .filter(|(name, _)| !is_monitoring(name))
        .map(|(name, n)| (name, n["pid"].as_u64().unwrap_or(0) as u32))
        .collect()
}

/// `template` with its `{p0}`, `{p1}`, ... placeholders replaced by `ports`.
fn fill(template: &str, ports: &[u16]) -> String {
    let mut text = template.to_string();
    for (i, p) in ports.iter().enumerate() {
        text = text.replace(&format!("{{p{i}}}"), &p.to_string());
    }
    text
}

/// How many ports `template` names: one more than its highest `{pN}`.
fn placeholders(template: &str) -> usize {
    (0..)
        .take_while(|i| template.contains(&format!("{{p{i}}}")))
        .count()
}

/// How a [`TestCluster`] is made; see [`TestCluster::named`].
pub(crate) struct Builder {
    name: String,
    topology: String,
    ports: usize,
    bin: PathBuf,
    release: Option<(String, String)>,
    flags: Vec<String>,
}

impl Builder {
    /// The topology, YAML whose ports are `{p0}`, `{p1}`, ... placeholders filled with free
    /// ports (as many as it names).
    pub(crate) fn topology(mut self, template: &str) -> Builder {
        self.ports = self.ports.max(placeholders(template));
        self.topology = template.to_string();
        self
    }

    /// At least `n` free ports drawn (`ports[i]` beyond the topology's, for a test to use).
    pub(crate) fn ports(mut self, n: usize) -> Builder {
        self.ports = self.ports.max(n);
        self
    }

    /// The binaries deployed (default: the stand-ins).
    pub(crate) fn bin(mut self, dir: &Path) -> Builder {
        self.bin = dir.to_path_buf();
        self
    }

    /// Deploys `version` downloaded from `mirror` (`--version V --mirror URL`) instead of
    /// the binaries of [`Builder::bin`].
    pub(crate) fn release(mut self, version: &str, mirror: &str) -> Builder {
        self.release = Some((version.to_string(), mirror.to_string()));
        self
    }

    /// More `cluster deploy` flags (`--auth`, `--tls`, ...).
    pub(crate) fn flags(mut self, flags: &[&str]) -> Builder {
        self.flags = flags.iter().map(|f| f.to_string()).collect();
        self
    }

    /// The scratch directory with the topology written to `topology.yaml`, its ports drawn.
    fn scratch(&self) -> (tempfile::TempDir, Vec<u16>) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let ports: Vec<u16> = (0..self.ports).map(|_| free_port()).collect();
        std::fs::write(
            tmp.path().join("topology.yaml"),
            fill(&self.topology, &ports),
        )
        .expect("write topology");
        (tmp, ports)
    }

    /// A ctl tree: `mup gen` into `<scratch>/tree`, with its own MUP_HOME and meta.yaml
    /// (stand-in binaries, free supervisord and metrics ports); nothing started.
    pub(crate) fn gen(self) -> TestCluster {
        let (tmp, ports) = self.scratch();
        let meta = format!(
            "name: {}\nversion: \"7.0.14\"\nbin_path: {}\nsupervisor_port: {}\nmetrics_port: {}\nhome: {}\n",
            self.name,
            self.bin.display(),
            free_port(),
            free_port(),
            tmp.path().display()
        );
        std::fs::write(tmp.path().join("meta.yaml"), meta).expect("write meta");
        let c = TestCluster {
            name: self.name,
            home: tmp.path().join("mup-home"),
            cwd: tmp.path().to_path_buf(),
            ctl_dir: "tree".into(),
            tree: tmp.path().join("tree"),
            tmp,
            ports,
        };
        c.gen();
        c
    }

    /// [`Builder::gen`], then `mup ctl up` and `mup ctl start`, each asserted successful.
    #[track_caller]
    pub(crate) fn start(self) -> TestCluster {
        let c = self.gen();
        c.ok(&["up"]);
        c.ok(&["start"]);
        c
    }

    /// A named cluster under the MUP_HOME the tests share that the test makes itself (a
    /// deploy with its own flags, `migrate`, `playground`): the topology written to
    /// `<scratch>/topology.yaml`, nothing run; what it makes is stopped when dropped.
    pub(crate) fn guard(self) -> TestCluster {
        let (tmp, ports) = self.scratch();
        let tree = shared_home().join("storage/clusters").join(&self.name);
        TestCluster {
            home: shared_home().to_path_buf(),
            cwd: repo(),
            ctl_dir: tree.clone(),
            tree,
            tmp,
            ports,
            name: self.name,
        }
    }

    /// `mup cluster deploy NAME <scratch>/topology.yaml --bin-path BIN FLAGS... --yes` (or
    /// `--version V --mirror URL` for a [`Builder::release`]) under the MUP_HOME the tests
    /// share: the cluster's guard and what the deploy did.
    pub(crate) fn try_deploy(self) -> (TestCluster, Output) {
        let mut args: Vec<String> = match &self.release {
            Some((version, mirror)) => {
                vec![
                    "--version".into(),
                    version.clone(),
                    "--mirror".into(),
                    mirror.clone(),
                ]
            }
            None => vec!["--bin-path".into(), self.bin.display().to_string()],
        };
        args.extend(self.flags.iter().cloned());
        let c = self.guard();
        let out = {
            let _ports = allocation_lock();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            c.deploy_args(c.mup(), &args)
        };
        (c, out)
    }

    /// [`Builder::try_deploy`], asserting success and waiting out supervisord's startsecs
    /// ([`wait_started`]).
    #[track_caller]
    pub(crate) fn deploy(self) -> TestCluster {
        let (c, out) = self.try_deploy();
        out.ok();
        wait_started(&c.tree);
        c
    }
}

/// One cluster under test, with its own scratch directory; everything it started is stopped
/// when dropped, even after a failure. A ctl tree ([`Builder::gen`]) has its own MUP_HOME; a
/// deployed cluster ([`Builder::deploy`]) lives under the MUP_HOME the tests share.
pub(crate) struct TestCluster {
    /// Scratch: topology.yaml (and meta.yaml and the tree of a ctl tree).
    pub tmp: tempfile::TempDir,
    /// The cluster's directory (supervisor.ini, meta.yaml, conf/, data/, logs/).
    pub tree: PathBuf,
    /// The free ports drawn for the topology's placeholders (and [`Builder::ports`]).
    pub ports: Vec<u16>,
    pub name: String,
    home: PathBuf,
    cwd: PathBuf,
    /// What `ctl --dir` is given: `tree` (relative to the scratch) or the cluster's directory.
    ctl_dir: PathBuf,
}

impl TestCluster {
    /// The builder: `TestCluster::named("life").topology(T).deploy()` or `.gen()`.
    pub(crate) fn named(name: &str) -> Builder {
        Builder {
            name: name.to_string(),
            topology: String::new(),
            ports: 0,
            bin: stand_in_bin(),
            release: None,
            flags: Vec::new(),
        }
    }

    /// `TestCluster::named(name).topology(topology).ports(nodes).gen()`.
    pub(crate) fn new(name: &str, topology: &str, nodes: usize) -> TestCluster {
        TestCluster::named(name)
            .topology(topology)
            .ports(nodes)
            .gen()
    }

    /// Its MUP_HOME.
    pub(crate) fn home(&self) -> &Path {
        &self.home
    }

    /// The scratch directory.
    pub(crate) fn scratch(&self) -> &Path {
        self.tmp.path()
    }

    /// The topology file this cluster was made from.
    pub(crate) fn topology_file(&self) -> PathBuf {
        self.tmp.path().join("topology.yaml")
    }

    /// Regenerates a ctl tree from `topology.yaml` (after a test edited it).
    pub(crate) fn gen(&self) {
        self.run(&gen_args("tree", &[])).ok();
    }

    /// The mup binary with this cluster's MUP_HOME, in its working directory (the scratch for
    /// a ctl tree, the repository for a deployed cluster).
    pub(crate) fn mup(&self) -> Command {
        let mut cmd = mup(&self.home);
        cmd.current_dir(&self.cwd);
        cmd
    }

    /// `mup cluster deploy NAME <scratch>/topology.yaml --bin-path BIN --yes` run with `cmd`
    /// (this cluster's [`TestCluster::mup`], with more environment if the test needs it).
    pub(crate) fn deploy_with(&self, cmd: Command, bin: &Path) -> Output {
        self.deploy_args(cmd, &["--bin-path", bin.to_str().expect("utf8")])
    }

    /// `mup cluster deploy NAME <scratch>/topology.yaml ARGS... --yes` run with `cmd`.
    fn deploy_args(&self, cmd: Command, args: &[&str]) -> Output {
        let topology = self.topology_file();
        let deploy = [
            "cluster",
            "deploy",
            &self.name,
            topology.to_str().expect("utf8"),
        ];
        run_mup(cmd, &[&deploy[..], args, &["--yes"]].concat())
    }

    /// `mup ARGS`: what it did.
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        run_mup(self.mup(), args)
    }

    /// `mup ctl --dir TREE ARGS`: what it did.
    pub(crate) fn ctl_run(&self, args: &[&str]) -> Output {
        let dir = self.ctl_dir.to_str().expect("utf8");
        let all: Vec<&str> = ["ctl", "--dir", dir]
            .into_iter()
            .chain(args.iter().copied())
            .collect();
        self.run(&all)
    }

    /// `mup ctl --dir TREE ARGS`: (exit code, stdout, stderr).
    pub(crate) fn ctl(&self, args: &[&str]) -> (i32, String, String) {
        self.ctl_run(args).parts()
    }

    /// `mup ctl --dir TREE ARGS`, asserted successful: its stdout.
    #[track_caller]
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        self.ctl_run(args).ok().stdout
    }

    pub(crate) fn client(&self) -> Client {
        client_for(&self.tree)
    }

    /// [`pids`] of this cluster.
    pub(crate) fn pids(&self) -> BTreeMap<String, u32> {
        pids(&self.tree)
    }

    /// The supervisord port recorded in meta.yaml.
    pub(crate) fn supervisor_port(&self) -> u16 {
        supervisor_port(&self.tree)
    }

    /// The daemon's pid as its pidfile records it.
    pub(crate) fn daemon_pid(&self) -> u32 {
        std::fs::read_to_string(self.tree.join("supervisor.pid"))
            .expect("supervisor.pid")
            .trim()
            .parse()
            .expect("a pid")
    }

    /// `mup ctl status --json`, parsed.
    pub(crate) fn status(&self) -> serde_json::Value {
        self.ctl_run(&["status", "--json"]).json()
    }

    /// The state `status --json` shows for `program` (which it lists exactly once).
    pub(crate) fn state_of(&self, program: &str) -> String {
        let st = self.status();
        let found: Vec<&serde_json::Value> = st["programs"]
            .as_array()
            .expect("programs")
            .iter()
            .filter(|p| p["name"] == program)
            .collect();
        assert_eq!(found.len(), 1, "{program} once in {st}");
        found[0]["state"].as_str().expect("state").to_string()
    }

    /// `mup cluster display NAME --json`: what it did (`.json()` for the document).
    pub(crate) fn display(&self) -> Output {
        self.run(&["cluster", "display", &self.name, "--json"])
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

/// The MUP_HOME every deployed cluster shares, as users' clusters share one: clusters under
/// one home never get the same supervisord port (allocation skips the ports other clusters
/// recorded, stopped ones included), which separate homes could not promise each other.
pub(crate) fn shared_home() -> &'static Path {
    static HOME: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    HOME.get_or_init(|| tempfile::tempdir().expect("tempdir"))
        .path()
}
