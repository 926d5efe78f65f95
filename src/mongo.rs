//! Talking to MongoDB servers with the official driver (blocking API): one direct connection
//! per server (an uninitiated replica-set member answers only those), short timeouts inside
//! the callers' own deadlines, and errors as the server's code name and message — never the
//! driver's raw text. A secured cluster's credentials and CA reach the driver here only
//! ([`Access`]).

use mongodb::bson::{doc, Document};
use mongodb::error::ErrorKind;
use mongodb::options::{ClientOptions, Credential, ServerAddress, Tls, TlsOptions};
use mongodb::sync::Client;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// How long one attempt may take to reach a server; callers retry within their deadline.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const SELECT_TIMEOUT: Duration = Duration::from_millis(1500);

/// Why a command did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Error {
    /// The server answered with an error.
    Command {
        code: i32,
        code_name: String,
        message: String,
    },
    /// The server could not be reached (not listening yet, or gone).
    Unreachable(String),
}

impl Error {
    pub(crate) fn code(&self) -> Option<i32> {
        match self {
            Error::Command { code, .. } => Some(*code),
            Error::Unreachable(_) => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Command {
                code,
                code_name,
                message,
            } => write!(f, "{code_name} ({code}): {message}"),
            Error::Unreachable(why) => write!(f, "unreachable: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// Server error codes mup branches on.
pub(crate) mod code {
    pub(crate) const ALREADY_INITIALIZED: i32 = 23;
    pub(crate) const NOT_YET_INITIALIZED: i32 = 94;
    pub(crate) const AUTHENTICATION_FAILED: i32 = 18;
}

/// How mup connects to a cluster's servers: the one place its credentials and CA reach the
/// driver (built from the tree by `security::access`). The default: plain, no credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct Access {
    /// TLS, verifying the servers' certificates with this CA.
    pub tls_ca: Option<PathBuf>,
    /// SCRAM credentials (user, password) of the `admin` database.
    pub credential: Option<(String, String)>,
}

impl Access {
    /// The same transport without credentials: for `hello` (answered before
    /// authentication) and for what the localhost exception allows.
    pub(crate) fn anonymous(&self) -> Access {
        Access {
            tls_ca: self.tls_ca.clone(),
            credential: None,
        }
    }
}

/// A direct connection to `host:port`, over TLS and authenticated as `access` says.
pub(crate) fn connect(host: &str, port: u16, access: &Access) -> Result<Client, Error> {
    let mut options = ClientOptions::default();
    if let Some(ca) = &access.tls_ca {
        options.tls = Some(Tls::Enabled(
            TlsOptions::builder().ca_file_path(ca.clone()).build(),
        ));
    }
    if let Some((user, password)) = &access.credential {
        options.credential = Some(
            Credential::builder()
                .username(user.clone())
                .password(password.clone())
                .source("admin".to_string())
                .build(),
        );
    }
    options.hosts = vec![ServerAddress::Tcp {
        host: host.to_string(),
        port: Some(port),
    }];
    options.direct_connection = Some(true);
    options.connect_timeout = Some(CONNECT_TIMEOUT);
    options.server_selection_timeout = Some(SELECT_TIMEOUT);
    options.app_name = Some("mup".into());
    Client::with_options(options).map_err(translate)
}

/// Runs `cmd` against the `admin` database of the server `client` is connected to.
pub(crate) fn run(client: &Client, cmd: Document) -> Result<Document, Error> {
    client
        .database("admin")
        .run_command(cmd)
        .run()
        .map_err(translate)
}

/// One command on the direct connection to `host:port` this process keeps for `access`. A
/// kept client whose server went away (a restarted node) is dropped and the command sent
/// once more on a new one.
pub(crate) fn command(
    host: &str,
    port: u16,
    access: &Access,
    cmd: Document,
) -> Result<Document, Error> {
    match run(&kept(host, port, access)?, cmd.clone()) {
        Err(Error::Unreachable(_)) => {
            forget(host, port, access);
            run(&kept(host, port, access)?, cmd)
        }
        answer => answer,
    }
}

/// The clients of this process, one per server and [`Access`]: a command reuses its pooled
/// connection instead of a new client's TCP, TLS and SCRAM handshakes (a deploy sends
/// hundreds of commands). The driver reconnects a pooled connection whose server restarted.
/// Bounded: a command runs for a cluster's own nodes only, and the process is short-lived.
type Key = (String, u16, Access);

fn clients() -> &'static std::sync::Mutex<std::collections::HashMap<Key, Client>> {
    static CLIENTS: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<Key, Client>>> =
        std::sync::OnceLock::new();
    CLIENTS.get_or_init(Default::default)
}

fn forget(host: &str, port: u16, access: &Access) {
    let key = (host.to_string(), port, access.clone());
    clients().lock().expect("client cache lock").remove(&key);
}

fn kept(host: &str, port: u16, access: &Access) -> Result<Client, Error> {
    let clients = clients();
    let key = (host.to_string(), port, access.clone());
    if let Some(c) = clients.lock().expect("client cache lock").get(&key) {
        return Ok(c.clone());
    }
    let client = connect(host, port, access)?;
    clients
        .lock()
        .expect("client cache lock")
        .insert(key, client.clone());
    Ok(client)
}

fn translate(e: mongodb::error::Error) -> Error {
    match *e.kind {
        ErrorKind::Command(c) => Error::Command {
            code: c.code,
            code_name: c.code_name,
            message: c.message,
        },
        ErrorKind::Authentication { message, .. } => Error::Command {
            code: code::AUTHENTICATION_FAILED,
            code_name: "AuthenticationFailed".into(),
            message,
        },
        ErrorKind::ServerSelection { .. } => {
            Error::Unreachable("no answer within the server selection timeout".into())
        }
        ErrorKind::Io(io) => Error::Unreachable(io.to_string()),
        other => Error::Unreachable(format!("{other:?}").chars().take(200).collect()),
    }
}

/// What `hello` says about a server, as far as mup needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Hello {
    pub set_name: Option<String>,
    pub writable_primary: bool,
    pub secondary: bool,
    /// `host:port` of the primary it knows.
    pub primary: Option<String>,
    /// Started with a replica-set name (set even before initiation).
    pub replica_set: bool,
}

/// `hello` on `host:port`, never authenticated (servers answer it before authentication).
pub(crate) fn hello(host: &str, port: u16, access: &Access) -> Result<Hello, Error> {
    let d = command(host, port, &access.anonymous(), doc! { "hello": 1 })?;
    let flag = |k: &str| d.get_bool(k).unwrap_or(false);
    Ok(Hello {
        set_name: d.get_str("setName").ok().map(String::from),
        writable_primary: flag("isWritablePrimary") || flag("ismaster"),
        secondary: flag("secondary"),
        primary: d.get_str("primary").ok().map(String::from),
        replica_set: flag("isreplicaset") || d.contains_key("setName"),
    })
}

/// What one member's `replSetGetStatus` says about its set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SetStatus {
    /// The answering member's own state (`STARTUP` before initiation).
    pub own: String,
    /// Every member of the set's config as the answering member sees it: (port, state name).
    pub members: Vec<(u16, String)>,
}

/// `replSetGetStatus` on `host:port`: the state of every member of its set in one answer;
/// `None` when it is not a replica-set member.
pub(crate) fn set_status(
    host: &str,
    port: u16,
    access: &Access,
) -> Result<Option<SetStatus>, Error> {
    let d = match command(host, port, access, doc! { "replSetGetStatus": 1 }) {
        Ok(d) => d,
        Err(e) if e.code() == Some(code::NOT_YET_INITIALIZED) => {
            return Ok(Some(SetStatus {
                own: "STARTUP".into(),
                members: Vec::new(),
            }))
        }
        // Not a member (a standalone, a router) answers with an error; credentials it
        // refuses are said.
        Err(e) if e.code() == Some(code::AUTHENTICATION_FAILED) => return Err(e),
        Err(Error::Command { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let number = |d: &Document, key: &str| {
        d.get_i32(key)
            .map(i64::from)
            .or_else(|_| d.get_i64(key))
            .or_else(|_| d.get_f64(key).map(|f| f as i64))
            .unwrap_or(-1)
    };
    let members = d
        .get_array("members")
        .map(|a| {
            a.iter()
                .filter_map(|m| m.as_document())
                .filter_map(|m| {
                    let name = m.get_str("name").ok()?;
                    let port = name.rsplit(':').next()?.parse().ok()?;
                    Some((port, state_name(number(m, "state")).to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(SetStatus {
        own: state_name(number(&d, "myState")).to_string(),
        members,
    }))
}

/// Replica-set member state names by number (the server's MemberState).
fn state_name(state: i64) -> &'static str {
    match state {
        0 => "STARTUP",
        1 => "PRIMARY",
        2 => "SECONDARY",
        3 => "RECOVERING",
        5 => "STARTUP2",
        6 => "UNKNOWN",
        7 => "ARBITER",
        8 => "DOWN",
        9 => "ROLLBACK",
        10 => "REMOVED",
        _ => "UNKNOWN",
    }
}
