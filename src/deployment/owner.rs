//! The ownership rule, the one place that decides what is this cluster's own:
//! - a process is a node of this tree only if its arguments name that node's own config file
//!   (`--config <exact path>`), as the program line mup generated does;
//! - a process is this tree's supervisord only if its arguments name this tree's own
//!   supervisor.ini (`-c <exact path>`), and it is *serving* only if it also holds the socket
//!   listening on the tree's supervisord port.
//!
//! Everything else found on a port or in a lock file is foreign: it is named in messages
//! (pid and command line when visible), never signalled and never sent the credentials.
//! Every signal mup sends goes through [`stop`], which checks the proof again right before
//! each signal (a pid can be reused while mup waits).

use crate::deployment::naming::Service;
use crate::deployment::Node;
use crate::deployment::Tree;
use crate::system::procs;
use rustix::process::Signal;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The value of an option in `args`: `--long VALUE`, `--long=VALUE`, `-s VALUE` or `-sVALUE`.
fn option_value<'a>(args: &'a [String], long: &str, short: &str) -> Option<&'a str> {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        if a == long || a == short {
            return it.next().map(String::as_str);
        }
        if let Some(v) = a.strip_prefix(long).and_then(|r| r.strip_prefix('=')) {
            return Some(v);
        }
        if let Some(v) = a
            .strip_prefix(short)
            .filter(|v| !v.is_empty() && !a.starts_with("--"))
        {
            return Some(v);
        }
    }
    None
}

/// What proves a pid is ours: the exact file its arguments must name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Proof {
    /// A mongod/mongos run with this config file (`--config`, or `-f`).
    Node(PathBuf),
    /// A supervisord run with this supervisor.ini (`-c`, or `--configuration`).
    Daemon(PathBuf),
}

impl Proof {
    /// True when `pid` is alive and its arguments name this proof's file.
    pub(crate) fn holds(&self, pid: u32) -> bool {
        let Some(args) = procs::args(pid).filter(|_| procs::alive(pid)) else {
            return false;
        };
        let (named, want) = match self {
            Proof::Node(conf) => (option_value(&args, "--config", "-f"), conf),
            Proof::Daemon(ini) => (option_value(&args, "--configuration", "-c"), ini),
        };
        named.is_some_and(|v| names_file(pid, Path::new(v), want))
    }
}

/// True when `named`, an argument of `pid`, is the file `want`: the same path, or (started
/// by hand, e.g. `supervisord -c supervisor.ini`) the same file once resolved against the
/// process's working directory and symlinks.
fn names_file(pid: u32, named: &Path, want: &Path) -> bool {
    named == want
        || resolve(pid, named).is_some_and(|a| std::fs::canonicalize(want).ok() == Some(a))
}

/// `named`, an argument of `pid`, as a real path (relative to the process's directory).
fn resolve(pid: u32, named: &Path) -> Option<std::path::PathBuf> {
    let absolute = if named.is_absolute() {
        named.to_path_buf()
    } else {
        std::fs::read_link(format!("/proc/{pid}/cwd"))
            .ok()?
            .join(named)
    };
    std::fs::canonicalize(absolute).ok()
}

/// The proof that a process is `member`'s node.
pub(crate) fn node_proof(member: &Node) -> Proof {
    Proof::Node(member.config_file.clone())
}

/// The node processes of `members` alive now, in `members` order: one pass over /proc, each
/// process's arguments read once.
pub(crate) fn running_nodes(members: &[Node]) -> Vec<(Node, u32)> {
    let mut by_member: Vec<Option<u32>> = vec![None; members.len()];
    for pid in procs::all_pids() {
        let Some(args) = procs::args(pid) else {
            continue;
        };
        let Some(conf) = option_value(&args, "--config", "-f") else {
            continue;
        };
        let exact = members
            .iter()
            .position(|m| m.config_file.as_path() == Path::new(conf));
        // Rare (a node started by hand with a relative path): resolve it once.
        let resolved = || {
            let real = resolve(pid, Path::new(conf))?;
            members
                .iter()
                .position(|m| std::fs::canonicalize(&m.config_file).ok().as_ref() == Some(&real))
        };
        if let Some(i) = exact.or_else(|| Path::new(conf).is_relative().then(resolved).flatten()) {
            if by_member[i].is_none() && procs::alive(pid) {
                by_member[i] = Some(pid);
            }
        }
    }
    members
        .iter()
        .zip(by_member)
        .filter_map(|(m, pid)| pid.map(|p| (m.clone(), p)))
        .collect()
}

/// The monitoring processes of this tree alive now — `mup monitor MODE --dir <this tree>`,
/// by their arguments — as (program, pid). They leave by themselves once the daemon is gone.
pub(crate) fn running_monitors(tree: &Tree) -> Vec<(&'static str, u32)> {
    procs::all_pids()
        .into_iter()
        .filter_map(|pid| {
            let service = monitor_of(tree, pid)?;
            procs::alive(pid).then_some((service.program(), pid))
        })
        .collect()
}

/// Which of this tree's monitoring programs `pid` is, by its arguments
/// (`mup monitor MODE --dir <this tree>`).
fn monitor_of(tree: &Tree, pid: u32) -> Option<Service> {
    let args = procs::args(pid)?;
    let at = args.iter().position(|a| a == "monitor")?;
    let service = Service::from_meta_type(args.get(at + 1)?)?;
    let dir = option_value(&args, "--dir", "--dir")?;
    names_file(pid, Path::new(dir), tree.layout.root()).then_some(service)
}

/// What holds the exporter's port when it is not this tree's exporter (another cluster's
/// exporter, anything else: described); `None` when nothing listens there, or this tree's
/// exporter does. Nothing is sent to the port.
pub(crate) fn foreign_exporter(tree: &Tree, port: u16) -> Option<String> {
    if procs::listening_inodes(port, procs::TCP_ALL).is_empty() {
        return None;
    }
    match procs::listener_pid(port) {
        Some(pid) if monitor_of(tree, pid) == Some(Service::Metrics) => None,
        Some(pid) => Some(procs::describe(pid)),
        None => Some("a process of another user (its pid is not visible)".into()),
    }
}

/// Who holds a node's TCP port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Holder {
    /// Nothing accepts connections there.
    Free,
    /// This node's own process (by the ownership rule).
    Node(u32),
    /// Anything else: its description (pid and command when visible).
    Foreign(String),
}

/// The one "who is on this port" check: nothing, the node itself, or something foreign.
pub(crate) fn port_holder(member: &Node) -> Holder {
    if !procs::listening(&member.host, member.port) {
        return Holder::Free;
    }
    match procs::listener_pid(member.port) {
        Some(pid) if node_proof(member).holds(pid) => Holder::Node(pid),
        Some(pid) => Holder::Foreign(procs::describe(pid)),
        None => Holder::Foreign("a process of another user (its pid is not visible)".into()),
    }
}

/// Where this tree's supervisord is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Daemon {
    /// Runs with this tree's supervisor.ini and holds the listening socket on its port.
    Serving(u32),
    /// Runs with this tree's supervisor.ini but does not listen on the port meta.yaml records
    /// (still starting, or the port was changed by `mup gen` while it ran).
    Astray(u32),
    /// Not running; nothing listens on its port.
    Absent,
    /// Not running; something else listens on its port (described).
    Foreign(String),
}

/// Finds this tree's daemon without sending it anything: the pid in supervisor.pid (or, if
/// that file is stale, the port's listener) must run this tree's supervisor.ini.
pub(crate) fn daemon(tree: &Tree) -> Daemon {
    let proof = Proof::Daemon(tree.layout.supervisor_ini());
    let from_file = std::fs::read_to_string(tree.layout.supervisor_pid())
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|pid| proof.holds(*pid));
    // supervisord listens on 127.0.0.1 only (the generated [inet_http_server]).
    if let Some(pid) = from_file {
        return if procs::owns_listener4(pid, tree.port) {
            Daemon::Serving(pid)
        } else {
            Daemon::Astray(pid)
        };
    }
    if procs::listening_inodes(tree.port, procs::TCP_ALL).is_empty() {
        return Daemon::Absent;
    }
    match procs::listener_pid(tree.port) {
        Some(pid) if proof.holds(pid) => Daemon::Serving(pid),
        Some(pid) => Daemon::Foreign(procs::describe(pid)),
        None => Daemon::Foreign("a process of another user (its pid is not visible)".into()),
    }
}

/// A connection to the daemon `pid` (proven this tree's by [`daemon`]) on 127.0.0.1:`port`,
/// itself proven to reach that daemon before anything is sent on it: the sockets listening on
/// the port, asked of the kernel just before and just after the connect, are the same ones,
/// and `pid` holds all of them. While a listening socket lives no other user can bind its
/// port, and a loopback connect is queued on the listener before it returns; so the
/// connection is the daemon's, not one taken by a listener bound while the daemon briefly
/// dropped its port (a reload closes and reopens it). `fds`: the daemon's descriptors found
/// holding the listener last time (read first), updated.
pub(crate) fn connect_daemon(
    pid: u32,
    port: u16,
    timeout: Duration,
    fds: &mut Vec<u32>,
) -> Result<std::net::TcpStream, crate::supervisor::Error> {
    use crate::supervisor::Error;
    let before = procs::listening_inodes(port, procs::TCP4);
    if before.is_empty() {
        return Err(Error::NotRunning);
    }
    let address = std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port));
    let stream = std::net::TcpStream::connect_timeout(&address, timeout).map_err(|e| {
        if e.kind() == std::io::ErrorKind::ConnectionRefused {
            Error::NotRunning
        } else {
            Error::Transport(format!("cannot connect to 127.0.0.1:{port}: {e}"))
        }
    })?;
    let after = procs::listening_inodes(port, procs::TCP4);
    match procs::holding_fds(pid, &after, fds).filter(|_| before == after) {
        Some(holding) => *fds = holding,
        None => {
            return Err(Error::Transport(format!(
                "127.0.0.1:{port} is not (or not only) held by supervisord (pid {pid}) any more"
            )))
        }
    }
    Ok(stream)
}

/// A process proven ours, to stop.
#[derive(Debug, Clone)]
pub(crate) struct Owned {
    /// How messages name it (`mongod-30000`).
    pub label: String,
    pub pid: u32,
    pub proof: Proof,
}

/// How a stop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stopped {
    /// Exited after the stop signal.
    Exited,
    /// Ignored it for the grace period and was killed with SIGKILL.
    Killed,
    /// Was gone, or no longer ours, before the first signal: nothing sent.
    Gone,
    /// Still alive after SIGKILL.
    Survived,
}

/// Stops every process at once the way supervisord does (`signal`, then SIGKILL after
/// `grace`), checking the proof right before each signal. Results in input order.
pub(crate) fn stop(owned: &[Owned], signal: Signal, grace: Duration) -> Vec<Stopped> {
    std::thread::scope(|s| {
        let handles: Vec<_> = owned
            .iter()
            .map(|o| {
                s.spawn(move || {
                    if !o.proof.holds(o.pid) {
                        return Stopped::Gone;
                    }
                    procs::signal(o.pid, signal);
                    if procs::wait_gone(o.pid, grace) {
                        return Stopped::Exited;
                    }
                    if !o.proof.holds(o.pid) {
                        return Stopped::Exited;
                    }
                    procs::signal(o.pid, Signal::KILL);
                    if procs::wait_gone(o.pid, Duration::from_secs(5)) {
                        Stopped::Killed
                    } else {
                        Stopped::Survived
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Stopped::Survived))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn reads_the_config_option_in_every_spelling() {
        for line in [
            "/b/mongod --config /c/mongod.conf",
            "/usr/bin/python3 /b/mongod --config=/c/mongod.conf",
            "mongod -f /c/mongod.conf",
            "mongod -f/c/mongod.conf",
        ] {
            assert_eq!(
                option_value(&argv(line), "--config", "-f"),
                Some("/c/mongod.conf"),
                "{line}"
            );
        }
        assert_eq!(
            option_value(&argv("mongod --port 1"), "--config", "-f"),
            None
        );
        // The program's own path is never read as an option.
        assert_eq!(option_value(&argv("-f --config"), "--config", "-f"), None);
        assert_eq!(
            option_value(
                &argv("python3 supervisord -c /t/supervisor.ini"),
                "--configuration",
                "-c"
            ),
            Some("/t/supervisor.ini")
        );
    }

    /// A child that sleeps with `args` on its command line, in `dir`, killed when dropped.
    struct Sleeper(std::process::Child);

    impl Sleeper {
        fn start(dir: &Path, args: &[&str]) -> Sleeper {
            let script = dir.join("sleep.py");
            std::fs::write(&script, "import time\ntime.sleep(30)\n").expect("write script");
            let child = std::process::Command::new("python3")
                .arg(&script)
                .args(args)
                .current_dir(dir)
                .spawn()
                .expect("python3");
            // Its arguments are readable once python3 has exec'd (a few ms).
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while procs::args(child.id()).is_none_or(|a| a.len() < 2 + args.len()) {
                assert!(std::time::Instant::now() < deadline, "no /proc args");
                std::thread::sleep(Duration::from_millis(10));
            }
            Sleeper(child)
        }
        fn pid(&self) -> u32 {
            self.0.id()
        }
    }

    impl Drop for Sleeper {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn a_relative_argument_is_resolved_against_the_process_directory() {
        // The process runs in `theirs`, this test in another directory: a relative argument
        // is the file in the process's directory, not in ours.
        let theirs = tempfile::tempdir().expect("tempdir");
        let file = theirs.path().join("mongod.conf");
        std::fs::write(&file, "").expect("write");
        let child = Sleeper::start(theirs.path(), &["--config", "mongod.conf"]);
        assert_ne!(std::env::current_dir().expect("cwd"), theirs.path());
        assert!(names_file(child.pid(), Path::new("mongod.conf"), &file));
        assert!(!names_file(
            std::process::id(),
            Path::new("mongod.conf"),
            &file
        ));
        let other = theirs.path().join("other.conf");
        std::fs::write(&other, "").expect("write");
        assert!(!names_file(child.pid(), Path::new("mongod.conf"), &other));
        // Through a symlink to the directory: the same file once resolved.
        let link = tempfile::tempdir().expect("tempdir");
        let via = link.path().join("via");
        std::os::unix::fs::symlink(theirs.path(), &via).expect("symlink");
        assert!(names_file(
            child.pid(),
            Path::new("mongod.conf"),
            &via.join("mongod.conf")
        ));
    }

    #[test]
    fn a_daemon_connection_is_made_only_to_the_daemon_listener() {
        use std::os::fd::AsRawFd;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let wait = Duration::from_secs(1);
        // This process holds the listener: proven when it is the daemon named.
        let me = std::process::id();
        let mut fds = Vec::new();
        assert!(connect_daemon(me, port, wait, &mut fds).is_ok());
        // The descriptor found holding the listener is read first next time; a stale one is
        // not trusted (all are read again).
        assert_eq!(fds, vec![listener.as_raw_fd() as u32]);
        let mut stale = vec![0];
        assert!(connect_daemon(me, port, wait, &mut stale).is_ok());
        assert_eq!(stale, fds);
        // Another process named as the daemon (a child that holds no socket): refused.
        let mut other = std::process::Command::new("sleep")
            .arg("10")
            .spawn()
            .expect("sleep");
        let refused = connect_daemon(other.id(), port, wait, &mut Vec::new());
        let _ = other.kill();
        let _ = other.wait();
        assert!(matches!(
            refused,
            Err(crate::supervisor::Error::Transport(_))
        ));
        drop(listener);
        // Nothing of ours listens any more: nothing is connected. (The port may already be
        // another process's — tests run side by side — which is refused as not the daemon's.)
        match connect_daemon(me, port, wait, &mut Vec::new()) {
            Err(crate::supervisor::Error::NotRunning) => {}
            Err(crate::supervisor::Error::Transport(why)) => {
                assert!(why.contains("not (or not only) held by"), "{why}")
            }
            other => panic!("expected no connection, got {other:?}"),
        }
    }

    #[test]
    fn a_process_is_ours_only_with_our_exact_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("mongod.conf");
        let ini = dir.path().join("supervisor.ini");
        let other = dir.path().join("other.conf");
        let node = Sleeper::start(dir.path(), &["--config", conf.to_str().expect("utf8")]);
        let daemon = Sleeper::start(dir.path(), &["-c", ini.to_str().expect("utf8")]);
        // Each holds its own proof, and only its own.
        assert!(Proof::Node(conf.clone()).holds(node.pid()));
        assert!(Proof::Daemon(ini.clone()).holds(daemon.pid()));
        assert!(!Proof::Node(other.clone()).holds(node.pid()));
        assert!(!Proof::Daemon(conf.clone()).holds(node.pid()));
        assert!(!Proof::Node(ini.clone()).holds(daemon.pid()));
        assert!(!Proof::Daemon(other).holds(daemon.pid()));
        // This test process names no file: never ours; nor a pid that is not alive.
        let me = std::process::id();
        assert!(!Proof::Node(conf.clone()).holds(me));
        assert!(!Proof::Daemon(ini).holds(me));
        let gone = node.pid();
        drop(node);
        assert!(!Proof::Node(conf).holds(gone));
        assert!(!Proof::Node(PathBuf::from("/x")).holds(u32::MAX));
    }
}
