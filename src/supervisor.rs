//! The supervisord XML-RPC client: one type with typed methods and one typed error.
//! The data model and XML are dxr's; the transport is reqwest's blocking client.

use dxr::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

mod infos;
mod values;

pub(crate) use infos::read_process_infos;
pub use values::process_infos;
use values::*;
pub(crate) use values::{all_process_info, decode_answer, encode_call};

/// Process states (docs/supervisord.md §5).
pub mod state {
    pub const STOPPED: i32 = 0;
    pub const STARTING: i32 = 10;
    pub const RUNNING: i32 = 20;
    pub const BACKOFF: i32 = 30;
    pub const STOPPING: i32 = 40;
    pub const EXITED: i32 = 100;
    pub const FATAL: i32 = 200;
}

/// Fault codes supervisord answers with (docs/supervisord.md §5).
pub mod fault {
    pub const BAD_NAME: i32 = 10;
    pub const BAD_SIGNAL: i32 = 11;
    pub const ALREADY_STARTED: i32 = 60;
    pub const NOT_RUNNING: i32 = 70;
    pub const ALREADY_ADDED: i32 = 90;
    pub const CANT_REREAD: i32 = 92;
    pub const SHUTDOWN_STATE: i32 = 6;
}

/// Everything that can go wrong talking to the daemon.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// supervisord answered with a fault.
    Fault { code: i32, message: String },
    /// HTTP 401: the credentials do not match the running daemon.
    Unauthorized,
    /// Nothing listens on the port: the daemon is not running (or is shutting down).
    NotRunning,
    /// The daemon did not answer on `port` within `after` (stopped with SIGSTOP, or stuck).
    Timeout { port: u16, after: Duration },
    /// Timeouts, resets, unexpected HTTP statuses, unreadable answers.
    Transport(String),
}

impl Error {
    /// The fault code, when supervisord answered with one.
    pub fn fault_code(&self) -> Option<i32> {
        match self {
            Error::Fault { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Fault { code, message } => write!(f, "supervisord fault {code}: {message}"),
            Error::Unauthorized => write!(f, "supervisord refused the credentials (HTTP 401)"),
            Error::NotRunning => write!(f, "supervisord is not running (connection refused)"),
            Error::Timeout { port, after } => write!(
                f,
                "supervisord on 127.0.0.1:{port} did not answer within {} s (timed out)",
                after.as_secs_f64()
            ),
            Error::Transport(m) => write!(f, "cannot talk to supervisord: {m}"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// One process as `getProcessInfo`/`getAllProcessInfo` report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub name: String,
    pub group: String,
    pub state: i32,
    pub statename: String,
    pub pid: u32,
    /// Epoch seconds of the last start (0 if never), of the last stop, and the daemon's clock.
    pub start: i64,
    pub stop: i64,
    pub now: i64,
    pub spawnerr: String,
    pub exitstatus: i64,
    pub description: String,
    pub logfile: String,
}

impl ProcessInfo {
    /// `group:name`
    pub fn qualified(&self) -> String {
        format!("{}:{}", self.group, self.name)
    }
    /// Seconds since the last start while running, from the integer fields (not the
    /// locale text of `description`, docs/supervisord.md §5).
    pub fn uptime(&self) -> Option<i64> {
        (self.state == state::RUNNING && self.start > 0).then(|| (self.now - self.start).max(0))
    }
}

/// The diff `reloadConfig()` computes (nothing is applied by it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reload {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
}

/// A client for one daemon.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::blocking::Client,
    url: String,
    port: u16,
    timeout: Duration,
    username: String,
    password: String,
}

/// Long enough for a waiting stop (stopwaitsecs=30 plus the daemon's 1 s tick).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// A loopback connect that takes this long finds a full backlog: the daemon does not accept.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// For calls that only read (get*, tail*, read*): the daemon answers those at once, so a
/// daemon silent this long is stopped or stuck.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

impl Client {
    pub fn new(port: u16, username: &str, password: &str) -> Client {
        Client::with_timeout(port, username, password, REQUEST_TIMEOUT)
    }

    /// A client whose calls give up after `timeout` (probes of a port that may not be ours).
    pub fn with_timeout(port: u16, username: &str, password: &str, timeout: Duration) -> Client {
        let http = reqwest::blocking::Client::builder()
            // A fresh connection per call: on a kept-alive one, the daemon's multi-segment
            // answers (getAllProcessInfo) stall ~40 ms on Nagle + delayed ACK (measured with
            // benches/status.sh: `mup ctl status` on 10 programs 49.5 ms → 7.9 ms); a loopback
            // connect costs ~0.1 ms.
            .pool_max_idle_per_host(0)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(timeout)
            .build()
            .expect("a plain-HTTP client builds");
        Client {
            http,
            url: format!("http://127.0.0.1:{port}/RPC2"),
            port,
            timeout,
            username: username.to_string(),
            password: password.to_string(),
        }
    }

    /// Calls `method` with `params` and returns the raw value.
    pub fn call(&self, method: &str, params: Vec<Value>) -> Result<Value> {
        let (status, text) = self.post(method, params)?;
        decode_answer(method, status, &text)
    }

    /// One POST of a call of `method`: the HTTP status and the answer's text.
    fn post(&self, method: &str, params: Vec<Value>) -> Result<(u16, String)> {
        let timeout = if reads_only(method, &params) {
            self.timeout.min(READ_TIMEOUT)
        } else {
            self.timeout
        };
        let body = encode_call(method, params)?;
        let classify = |e: reqwest::Error| match (e.is_timeout(), e.is_connect()) {
            (true, connect) => Error::Timeout {
                port: self.port,
                after: if connect { CONNECT_TIMEOUT } else { timeout },
            },
            (false, true) => Error::NotRunning,
            _ => Error::Transport(e.to_string()),
        };
        let resp = self
            .http
            .post(&self.url)
            .timeout(timeout)
            .basic_auth(&self.username, Some(&self.password))
            .header("Content-Type", "text/xml")
            .body(body)
            .send()
            .map_err(classify)?;
        let status = resp.status().as_u16();
        let text = resp.text().map_err(classify)?;
        Ok((status, text))
    }

    fn sup(&self, method: &str, params: Vec<Value>) -> Result<Value> {
        self.call(&format!("supervisor.{method}"), params)
    }

    pub fn get_state(&self) -> Result<(i32, String)> {
        let v = self.sup("getState", vec![])?;
        let s = as_struct(&v)?;
        Ok((int(s, "statecode")? as i32, string(s, "statename")?))
    }

    pub fn get_pid(&self) -> Result<u32> {
        Ok(as_int(&self.sup("getPID", vec![])?)? as u32)
    }

    pub fn get_identification(&self) -> Result<String> {
        as_string(&self.sup("getIdentification", vec![])?)
    }

    pub fn get_all_process_info(&self) -> Result<Vec<ProcessInfo>> {
        let method = "supervisor.getAllProcessInfo";
        let (status, text) = self.post(method, vec![])?;
        all_process_info(method, status, &text)
    }

    pub fn get_process_info(&self, name: &str) -> Result<ProcessInfo> {
        process_info(&self.sup("getProcessInfo", vec![s(name)])?)
    }

    /// `wait=false` returns at once with the process STARTING (docs/supervisord.md §6).
    pub fn start_process(&self, name: &str, wait: bool) -> Result<bool> {
        as_bool(&self.sup("startProcess", vec![s(name), Value::Boolean(wait)])?)
    }

    pub fn signal_process(&self, name: &str, signal: &str) -> Result<bool> {
        as_bool(&self.sup("signalProcess", vec![s(name), s(signal)])?)
    }

    /// `[text, next_offset, overflow]` of the last `length` bytes from `offset`.
    pub fn tail_process_stdout_log(
        &self,
        name: &str,
        offset: i64,
        length: i64,
    ) -> Result<(String, i64, bool)> {
        self.tail_log("tailProcessStdoutLog", name, offset, length)
    }

    /// The stderr log of a program that keeps one (an event listener: its stdout is the
    /// protocol).
    pub fn tail_process_stderr_log(
        &self,
        name: &str,
        offset: i64,
        length: i64,
    ) -> Result<(String, i64, bool)> {
        self.tail_log("tailProcessStderrLog", name, offset, length)
    }

    fn tail_log(
        &self,
        method: &'static str,
        name: &str,
        offset: i64,
        length: i64,
    ) -> Result<(String, i64, bool)> {
        let v = self.sup(
            method,
            vec![
                s(name),
                Value::Integer(clamp(offset)),
                Value::Integer(clamp(length)),
            ],
        )?;
        let a = as_array(&v)?;
        match a.as_slice() {
            [text, off, overflow] => Ok((as_string(text)?, as_int(off)?, as_bool(overflow)?)),
            _ => Err(shape(method)),
        }
    }

    pub fn reload_config(&self) -> Result<Reload> {
        let v = self.sup("reloadConfig", vec![])?;
        // [[added, changed, removed]]
        let outer = as_array(&v)?;
        let inner = outer
            .first()
            .map(as_array)
            .transpose()?
            .ok_or_else(|| shape("reloadConfig"))?;
        let list = |i: usize| -> Result<Vec<String>> {
            match inner.get(i) {
                Some(v) => as_array(v)?.iter().map(as_string).collect(),
                None => Ok(Vec::new()),
            }
        };
        Ok(Reload {
            added: list(0)?,
            changed: list(1)?,
            removed: list(2)?,
        })
    }

    pub fn add_process_group(&self, name: &str) -> Result<bool> {
        as_bool(&self.sup("addProcessGroup", vec![s(name)])?)
    }

    pub fn remove_process_group(&self, name: &str) -> Result<bool> {
        as_bool(&self.sup("removeProcessGroup", vec![s(name)])?)
    }

    /// Returns at once; the daemon exits later (docs/supervisord.md §6).
    pub fn shutdown(&self) -> Result<bool> {
        as_bool(&self.sup("shutdown", vec![])?)
    }

    /// `system.multicall`: successful results come back unwrapped, faults as structs with
    /// `faultCode` (docs/supervisord.md §5).
    pub fn multicall(&self, calls: &[(&str, Vec<Value>)]) -> Result<Vec<Result<Value>>> {
        let list: Vec<Value> = calls
            .iter()
            .map(|(m, p)| {
                let mut st = BTreeMap::new();
                st.insert("methodName".to_string(), s(m));
                st.insert("params".to_string(), Value::Array(p.clone()));
                Value::Struct(st)
            })
            .collect();
        multicall_results(&self.call("system.multicall", vec![Value::Array(list)])?)
    }
}

/// Whether a call only reads (`get*`, `tail*`, `read*`, or a multicall of only those): such a
/// call waits at most [`READ_TIMEOUT`].
fn reads_only(method: &str, params: &[Value]) -> bool {
    let reads = |m: &str| {
        m.strip_prefix("supervisor.")
            .is_some_and(|m| ["get", "tail", "read"].iter().any(|p| m.starts_with(p)))
    };
    if method != "system.multicall" {
        return reads(method);
    }
    let Some(Value::Array(calls)) = params.first() else {
        return false;
    };
    calls.iter().all(|c| match c {
        Value::Struct(st) => matches!(st.get("methodName"), Some(Value::String(m)) if reads(m)),
        _ => false,
    })
}
