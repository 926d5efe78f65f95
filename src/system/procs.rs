//! Processes as Linux's /proc shows them: liveness, arguments, who listens on a port, and
//! signalling. Which of them are this cluster's is decided in [`crate::deployment::owner`], never here.

use std::collections::BTreeSet;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, Instant};

/// True while `pid` exists and is not a zombie.
pub(crate) fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            stat.rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next())
                != Some("Z")
        }
        Err(_) => Path::new(&format!("/proc/{pid}")).exists(),
    }
}

/// The arguments of `pid` (argv), or `None` when it is gone or not readable.
pub(crate) fn args(pid: u32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

/// The command line of `pid`, arguments joined by spaces, for messages.
pub(crate) fn cmdline(pid: u32) -> Option<String> {
    args(pid).map(|a| a.join(" "))
}

/// `pid N (command)`, or `pid N` when its command line cannot be read (another user's).
pub(crate) fn describe(pid: u32) -> String {
    match cmdline(pid).filter(|c| !c.is_empty()) {
        Some(c) => format!("pid {pid} ({c})"),
        None => format!("pid {pid}"),
    }
}

/// Every pid in /proc.
pub(crate) fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
                .collect()
        })
        .unwrap_or_default()
}

/// True when something accepts TCP connections on `host:port`. With nothing listening on a
/// port of the kernel's ephemeral range, the probe's own source port can be that port, and
/// TCP's simultaneous open then connects the socket to itself: such a connection (local
/// address = remote address) is no listener. It is closed at once and abortively (SO_LINGER
/// 0, no TIME_WAIT): a closed self-connection otherwise stays in TIME_WAIT for a minute, and
/// that blocks the node's own bind even with SO_REUSEADDR (the node exits 48).
pub(crate) fn listening(host: &str, port: u16) -> bool {
    let Ok(mut addrs) = (host, port).to_socket_addrs() else {
        return false;
    };
    addrs.any(
        |a| match TcpStream::connect_timeout(&a, Duration::from_millis(200)) {
            Ok(stream) if stream.local_addr().ok() == Some(a) => {
                let _ = rustix::net::sockopt::set_socket_linger(&stream, Some(Duration::ZERO));
                false
            }
            Ok(_) => true,
            Err(_) => false,
        },
    )
}

/// The kernel's TCP socket tables. Each read costs a few ms whatever the number of sockets
/// (the kernel walks its whole hash table), so callers read only the ones they need.
pub(crate) const TCP4: &[&str] = &["/proc/net/tcp"];
pub(crate) const TCP_ALL: &[&str] = &["/proc/net/tcp", "/proc/net/tcp6"];

/// The socket inodes listening on TCP `port` (any address) in `tables`, as /proc/PID/fd
/// names them (`socket:[N]`): asked of the kernel for that port alone (netlink sock_diag),
/// read from the tables only where netlink is refused.
pub(crate) fn listening_inodes(port: u16, tables: &[&str]) -> BTreeSet<String> {
    let v6 = tables.contains(&"/proc/net/tcp6");
    if let Some(found) = crate::system::sockdiag::listening_inodes(port, v6) {
        return found.iter().map(|i| format!("socket:[{i}]")).collect();
    }
    let mut inodes = BTreeSet::new();
    for table in tables {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address is "HEXIP:HEXPORT", st 0A is LISTEN, inode is field 9.
            let listens = f.get(3) == Some(&"0A");
            let p = f
                .get(1)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|h| u16::from_str_radix(h, 16).ok());
            if listens && p == Some(port) {
                if let Some(inode) = f.get(9) {
                    inodes.insert(format!("socket:[{inode}]"));
                }
            }
        }
    }
    inodes
}

/// True when `pid` holds one of `inodes` open (only readable for one's own processes).
fn holds_any(pid: u32, inodes: &BTreeSet<String>) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .ok()
            .and_then(|t| t.to_str().map(|t| inodes.contains(t)))
            .unwrap_or(false)
    })
}

/// The descriptors of `pid` that hold `inodes`, when it holds every one of them open (only
/// readable for one's own processes). Those in `hint` (found by an earlier call) are read
/// first; all of them only when those no longer do (a daemon holds thousands).
pub(crate) fn holding_fds(pid: u32, inodes: &BTreeSet<String>, hint: &[u32]) -> Option<Vec<u32>> {
    let holds = |fd: &u32| {
        std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
            .ok()
            .is_some_and(|t| t.to_str().is_some_and(|t| inodes.contains(t)))
    };
    let all = |fds: &[u32]| {
        let held: BTreeSet<String> = fds
            .iter()
            .filter_map(|fd| std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok())
            .filter_map(|t| t.to_str().map(String::from))
            .filter(|t| inodes.contains(t))
            .collect();
        !inodes.is_empty() && held.len() == inodes.len()
    };
    if !hint.is_empty() && all(hint) {
        return Some(hint.to_vec());
    }
    let holding: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .flatten()
        .filter_map(|fd| fd.file_name().to_str()?.parse().ok())
        .filter(holds)
        .collect();
    all(&holding).then_some(holding)
}

/// True when `pid` itself holds the socket listening on IPv4 TCP `port`. The lowest
/// descriptors are read first: a daemon opens its listener before it starts its programs, and
/// listing all of its descriptors (three per program) costs ~1.5 ms at 500 programs.
pub(crate) fn owns_listener4(pid: u32, port: u16) -> bool {
    let inodes = listening_inodes(port, TCP4);
    !inodes.is_empty() && (holds_low(pid, &inodes) || holds_any(pid, &inodes))
}

/// How many of the lowest descriptors [`owns_listener4`] reads before it lists them all.
const LOW_FDS: u32 = 16;

/// True when one of the descriptors `0..LOW_FDS` of `pid` holds one of `inodes`.
fn holds_low(pid: u32, inodes: &BTreeSet<String>) -> bool {
    (0..LOW_FDS).any(|fd| {
        std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
            .is_ok_and(|t| t.to_str().is_some_and(|t| inodes.contains(t)))
    })
}

/// The pid of the process listening on TCP `port` (any address). `None` when nothing
/// listens, or the listener belongs to another user (its descriptors cannot be read).
pub fn listener_pid(port: u16) -> Option<u32> {
    let inodes = listening_inodes(port, TCP_ALL);
    if inodes.is_empty() {
        return None;
    }
    all_pids().into_iter().find(|pid| holds_any(*pid, &inodes))
}

/// Sends `signal` to `pid`; false when it could not be sent.
pub(crate) fn signal(pid: u32, signal: rustix::process::Signal) -> bool {
    i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .is_some_and(|p| rustix::process::kill_process(p, signal).is_ok())
}

/// Waits (bounded poll) until `pid` has exited.
pub(crate) fn wait_gone(pid: u32, limit: Duration) -> bool {
    let start = Instant::now();
    while alive(pid) {
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    #[test]
    fn a_listener_above_the_lowest_descriptors_is_still_found() {
        // Bind until a listener lands past the descriptors read first (the others held open).
        let mut held = Vec::new();
        let listener = loop {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            if l.as_raw_fd() >= crate::system::procs::LOW_FDS as i32 {
                break l;
            }
            held.push(l);
        };
        let port = listener.local_addr().expect("addr").port();
        assert!(crate::system::procs::owns_listener4(
            std::process::id(),
            port
        ));
        // A process that holds no socket does not own it.
        let mut other = std::process::Command::new("sleep")
            .arg("10")
            .spawn()
            .expect("sleep");
        let owns = crate::system::procs::owns_listener4(other.id(), port);
        let _ = other.kill();
        let _ = other.wait();
        assert!(!owns);
    }
}
