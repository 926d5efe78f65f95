//! The usage the exporter reports of each running program's process — CPU seconds and
//! resident bytes, from `/proc/PID/stat` — read through descriptors kept open from one scrape
//! to the next (at most [`MAX_KEPT`]): reading an open /proc file costs the kernel's
//! formatting only, not a path walk, an open and a close at every scrape (about half of what a
//! scrape spends on /proc). An open /proc file stays its own process's: once that process is
//! gone it reads nothing, never a later process given the same pid.

use procfs::{FromRead, WithCurrentSystemInfo};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;

/// Descriptors kept open at most: the exporter also holds up to 256 client connections, well
/// within the 1,024 descriptors supervisord gives its programs (`minfds`).
const MAX_KEPT: usize = 256;

/// The longest `/proc/PID/stat` read: the line is a few hundred bytes (52 numbers and the
/// command name, at most 64 bytes).
const MAX_STAT: usize = 4096;

pub(super) struct Usage {
    kept: HashMap<u32, File>,
    ticks: f64,
}

impl Usage {
    pub(super) fn new() -> Usage {
        Usage {
            kept: HashMap::new(),
            ticks: procfs::ticks_per_second() as f64,
        }
    }

    /// CPU seconds (user and system) and resident bytes of the process `pid`, `None` when
    /// there is none.
    pub(super) fn of(&mut self, pid: u32) -> Option<(f64, u64)> {
        if pid == 0 {
            return None;
        }
        if let Some(file) = self.kept.get(&pid) {
            match self.read(file) {
                Some(usage) => return Some(usage),
                // That process is gone: the pid may be another's now.
                None => drop(self.kept.remove(&pid)),
            }
        }
        let file = File::open(format!("/proc/{pid}/stat")).ok()?;
        let usage = self.read(&file)?;
        if self.kept.len() < MAX_KEPT {
            self.kept.insert(pid, file);
        }
        Some(usage)
    }

    /// Closes the descriptors of processes other than `pids`.
    pub(super) fn keep_only(&mut self, pids: &[u32]) {
        let pids: HashSet<&u32> = pids.iter().collect();
        self.kept.retain(|pid, _| pids.contains(pid));
    }

    fn read(&self, file: &File) -> Option<(f64, u64)> {
        let mut line = [0u8; MAX_STAT];
        let n = file.read_at(&mut line, 0).ok().filter(|n| *n > 0)?;
        let stat = procfs::process::Stat::from_read(&line[..n]).ok()?;
        Some((
            (stat.utime + stat.stime) as f64 / self.ticks,
            stat.rss_bytes().get(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process's usage is read again through the descriptor kept open, and nothing is read
    /// through it once that process is gone.
    #[test]
    fn reads_a_live_process_again_and_nothing_once_it_is_gone() {
        let mut usage = Usage::new();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        let pid = child.id();
        usage.of(pid).expect("a live process has a usage");
        assert!(usage.kept.contains_key(&pid));
        assert!(
            usage.of(pid).is_some(),
            "read again through the kept descriptor"
        );
        child.kill().expect("kill");
        child.wait().expect("reap");
        assert_eq!(usage.of(pid), None);
        assert!(!usage.kept.contains_key(&pid), "the descriptor is closed");
        let this = usage.of(std::process::id()).expect("this process");
        assert!(this.1 > 0, "resident bytes: {this:?}");
        usage.keep_only(&[]);
        assert!(usage.kept.is_empty());
    }
}
