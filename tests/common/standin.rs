//! Stand-in servers (fixtures/bin/mongod, mongos) started directly, without mup or supervisord,
//! for the tests of what the stand-in models; each is killed when its handle is dropped.

use super::{free_port, port_answers, stand_in_bin, wait_until};
use mongodb::bson::Document;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running stand-in: its port, directory (config, log, data) and process.
pub(crate) struct StandIn {
    pub(crate) port: u16,
    pub(crate) dir: PathBuf,
    child: Child,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl StandIn {
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

/// How to start one stand-in: `tool` is "mongod" or "mongos"; `extra` is YAML appended to the
/// config (top-level sections); `version` its binary version.
pub(crate) struct Spec<'a> {
    pub(crate) tool: &'a str,
    pub(crate) set: Option<&'a str>,
    pub(crate) extra: &'a str,
    /// More keys of the `net:` section, indented by two spaces.
    pub(crate) net: &'a str,
    pub(crate) version: &'a str,
    pub(crate) env: &'a [(&'a str, &'a str)],
}

impl Default for Spec<'_> {
    fn default() -> Self {
        Spec {
            tool: "mongod",
            set: None,
            extra: "",
            net: "",
            version: "7.0.14",
            env: &[],
        }
    }
}

/// The command that starts a stand-in in `dir` on `port` (config written, data dir made).
fn command(dir: &Path, port: u16, spec: &Spec) -> Command {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("mkdir data");
    let mut yaml = format!("net:\n  port: {port}\n  bindIp: 127.0.0.1\n{}", spec.net);
    if spec.tool == "mongod" {
        yaml += &format!("storage:\n  dbPath: {}\n", data.display());
    }
    if let Some(set) = spec.set {
        yaml += &format!("replication:\n  replSetName: {set}\n");
    }
    yaml += spec.extra;
    let config = dir.join("node.yaml");
    std::fs::write(&config, yaml).expect("write config");
    let log = std::fs::File::create(dir.join("log")).expect("log file");
    let mut cmd = Command::new(stand_in_bin().join(spec.tool));
    cmd.arg("--config")
        .arg(&config)
        .env("MUP_STANDIN_VERSION", spec.version)
        .envs(spec.env.iter().copied())
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log);
    cmd
}

/// Starts a stand-in in `dir` and waits (20 s at most) until it accepts connections.
pub(crate) fn start_in(dir: &Path, spec: &Spec) -> StandIn {
    let port = free_port();
    let child = command(dir, port, spec)
        .spawn()
        .expect("spawn the stand-in");
    let node = StandIn {
        port,
        dir: dir.to_path_buf(),
        child,
    };
    assert!(
        wait_until(Duration::from_secs(20), || port_answers(port)),
        "the stand-in on {port} never listened:\n{}",
        node.log()
    );
    node
}

/// Runs a stand-in that is expected to refuse to start: its exit status and log (20 s bound).
pub(crate) fn refused_start(dir: &Path, spec: &Spec) -> (Option<i32>, String) {
    let mut child = command(dir, free_port(), spec)
        .spawn()
        .expect("spawn the stand-in");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s.code();
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the stand-in in {} did not exit", dir.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status,
        std::fs::read_to_string(dir.join("log")).unwrap_or_default(),
    )
}

/// One command on a direct connection with the Rust driver: the reply, or the server's
/// (code, code name, message); any other failure (a network error) as code -1.
pub(crate) fn try_command(port: u16, cmd: Document) -> Result<Document, (i32, String, String)> {
    direct_client("localhost", port, Duration::from_secs(3))
        .database("admin")
        .run_command(cmd)
        .run()
        .map_err(|e| match *e.kind {
            mongodb::error::ErrorKind::Command(c) => (c.code, c.code_name, c.message),
            other => (-1, String::new(), other.to_string()),
        })
}

/// A client of the official driver on a direct connection to `host:port`.
pub(crate) fn direct_client(host: &str, port: u16, timeout: Duration) -> mongodb::sync::Client {
    mongodb::sync::Client::with_options(direct_options(host, port, timeout)).expect("client")
}

/// The options of [`direct_client`].
pub(crate) fn direct_options(
    host: &str,
    port: u16,
    timeout: Duration,
) -> mongodb::options::ClientOptions {
    let mut o = mongodb::options::ClientOptions::default();
    o.hosts = vec![mongodb::options::ServerAddress::Tcp {
        host: host.into(),
        port: Some(port),
    }];
    o.direct_connection = Some(true);
    o.server_selection_timeout = Some(timeout);
    o
}

/// The code of the server's error for `cmd`, which must fail.
pub(crate) fn error_code(port: u16, cmd: Document) -> (i32, String) {
    match try_command(port, cmd) {
        Ok(reply) => panic!("expected an error from port {port}, got {reply}"),
        Err((code, _, msg)) => (code, msg),
    }
}

/// The primary every one of `ports` names in hello, once they agree (20 s at most).
pub(crate) fn agreed_primary(ports: &[u16]) -> String {
    let mut seen = Vec::new();
    let agreed = wait_until(Duration::from_secs(20), || {
        seen = ports
            .iter()
            .map(|&p| {
                try_command(p, mongodb::bson::doc! {"hello": 1})
                    .ok()
                    .and_then(|h| h.get_str("primary").ok().map(String::from))
            })
            .collect();
        seen[0].is_some() && seen.iter().all(|s| *s == seen[0])
    });
    assert!(agreed, "the members never agreed on a primary: {seen:?}");
    seen[0].clone().expect("checked above")
}
