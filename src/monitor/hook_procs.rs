//! Which processes are a hook's, and killing them. A hook is started in its own process
//! group with `MUP_HOOK=<listener pid>.<n>` and `MUP_CLUSTER_DIR` in its environment; its
//! processes are the members of that group, every process of the listener's user whose
//! environment carries both values (a `setsid` child leaves the group but keeps its
//! environment), and every descendant of those (a child that cleared its environment but
//! whose parent is still there). A process that left the group, dropped the variables and
//! lost its parent is out of reach: that is how a daemon detaches on purpose (`mup ctl up`
//! starts supervisord with a cleared environment), and docs/monitoring.md says so.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::time::Duration;

/// The variable that marks a hook's processes.
pub(crate) const MARKER: &str = "MUP_HOOK";

/// How many find-and-kill passes a kill makes (a process may fork while it is killed).
const KILL_ROUNDS: usize = 5;

/// Which `MUP_HOOK` values count.
#[derive(Debug, Clone, Copy)]
pub(super) enum Mark<'a> {
    /// One hook's.
    Hook(&'a str),
    /// Every hook of one listener: `<listener pid>.` followed by anything.
    Listener(&'a str),
    /// Any hook of any listener of the cluster.
    Any,
}

impl Mark<'_> {
    fn matches(&self, value: &OsStr) -> bool {
        match self {
            Mark::Hook(id) => value == OsStr::new(id),
            Mark::Listener(prefix) => value
                .to_str()
                .is_some_and(|v| v.strip_prefix(prefix).is_some_and(|n| n.starts_with('.'))),
            Mark::Any => true,
        }
    }
}

/// The processes to find: the members of `groups` (hooks' process groups) and those
/// carrying `mark` with `cluster_dir` as their MUP_CLUSTER_DIR.
#[derive(Debug, Clone, Copy)]
pub(super) struct Target<'a> {
    pub groups: &'a [u32],
    pub cluster_dir: &'a OsStr,
    pub mark: Mark<'a>,
}

/// The live (not zombie) processes of `target`, never the calling process itself.
pub(super) fn find(target: Target) -> Vec<i32> {
    let Ok(all) = procfs::process::all_processes() else {
        return Vec::new();
    };
    let me = std::process::id() as i32;
    let uid = rustix::process::getuid().as_raw();
    let mut links = Vec::new(); // (pid, ppid)
    let mut found = BTreeSet::new();
    for p in all.flatten() {
        let Ok(stat) = p.stat() else { continue };
        if stat.pid == me || matches!(stat.state, 'Z' | 'X') {
            continue;
        }
        links.push((stat.pid, stat.ppid));
        let in_group = target
            .groups
            .iter()
            .any(|g| i64::from(*g) == i64::from(stat.pgrp));
        let marked = || {
            p.uid().is_ok_and(|u| u == uid)
                && p.environ().is_ok_and(|env| {
                    env.get(OsStr::new("MUP_CLUSTER_DIR"))
                        .is_some_and(|d| d == target.cluster_dir)
                        && env
                            .get(OsStr::new(MARKER))
                            .is_some_and(|v| target.mark.matches(v))
                })
        };
        if in_group || marked() {
            found.insert(stat.pid);
        }
    }
    // Their descendants, to a fixed point (bounded by the number of processes).
    loop {
        let more: Vec<i32> = links
            .iter()
            .filter(|(pid, ppid)| found.contains(ppid) && !found.contains(pid))
            .map(|(pid, _)| *pid)
            .collect();
        if more.is_empty() {
            break;
        }
        found.extend(more);
    }
    found.into_iter().collect()
}

/// SIGKILLs every process of `target` (first each of `live_groups` at once: groups whose
/// leader is not reaped yet, so their number cannot have been reused), then looks again, up
/// to [`KILL_ROUNDS`] times. Returns how many distinct processes it found.
pub(super) fn kill(target: Target, live_groups: &[u32]) -> usize {
    use rustix::process::{kill_process, kill_process_group, Pid, Signal};
    let mut signalled = BTreeSet::new();
    for round in 0..KILL_ROUNDS {
        let pids: Vec<i32> = find(target)
            .into_iter()
            .filter(|p| !signalled.contains(p))
            .collect();
        if round == 0 {
            for pgid in live_groups.iter().filter_map(|g| Pid::from_raw(*g as i32)) {
                let _ = kill_process_group(pgid, Signal::KILL);
            }
        }
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            if let Some(p) = Pid::from_raw(pid) {
                let _ = kill_process(p, Signal::KILL);
            }
            signalled.insert(pid);
        }
        // SIGKILL is delivered asynchronously: let the killed become zombies before looking.
        std::thread::sleep(Duration::from_millis(20));
    }
    signalled.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next())
                != Some("Z")
        })
    }

    #[test]
    fn marks_match_one_hook_one_listener_or_any() {
        let v = OsStr::new("4242.7");
        assert!(Mark::Hook("4242.7").matches(v));
        assert!(!Mark::Hook("4242.70").matches(v));
        assert!(Mark::Listener("4242").matches(v));
        assert!(!Mark::Listener("424").matches(v));
        assert!(Mark::Any.matches(v));
    }

    #[test]
    fn finds_and_kills_a_hook_with_its_setsid_grandchild() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pids = dir.path().join("pids");
        let script = format!(
            "setsid sh -c 'echo $$ >> {p}; exec sleep 300' & sh -c 'echo $$ >> {p}; exec sleep 300' & wait",
            p = pids.display()
        );
        let mut child = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .env(MARKER, "1.1")
            .env("MUP_CLUSTER_DIR", dir.path())
            .process_group(0)
            .spawn()
            .expect("spawn");
        let start = std::time::Instant::now();
        while std::fs::read_to_string(&pids).map_or(0, |t| t.lines().count()) < 2 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "children started"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let grandchildren: Vec<i32> = std::fs::read_to_string(&pids)
            .expect("pids")
            .lines()
            .map(|l| l.parse().expect("a pid"))
            .collect();
        let target = Target {
            groups: &[child.id()],
            cluster_dir: dir.path().as_os_str(),
            mark: Mark::Hook("1.1"),
        };
        let other = Target {
            mark: Mark::Hook("1.2"),
            groups: &[],
            ..target
        };
        assert!(find(other).is_empty(), "another hook's mark finds nothing");
        let found = find(target);
        for pid in &grandchildren {
            assert!(found.contains(pid), "{pid} in {found:?}");
        }
        assert!(kill(target, &[child.id()]) >= 3);
        child.wait().expect("reaped");
        for pid in grandchildren {
            let start = std::time::Instant::now();
            while alive(pid) && start.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(10));
            }
            assert!(!alive(pid), "{pid} was killed");
        }
    }
}
