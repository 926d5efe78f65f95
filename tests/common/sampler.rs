//! A sampler for rolling operations: every replica-set member asked `hello` at once, and
//! supervisord's pids, at 10 Hz until stopped — what a rolling upgrade (or scale) must keep:
//! at most one primary per set, never two members of a set down at once, each program's pids.

use super::{client_for, direct_client, read_meta};
use mongodb::bson::doc;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Each replica-set member of a tree as meta.yaml lists it: (set, port).
fn set_members(tree: &Path) -> Vec<(String, u16)> {
    read_meta(tree)["nodes"]
        .as_sequence()
        .expect("nodes")
        .iter()
        .filter_map(|n| {
            let rs = n["replica_set"].as_str()?;
            Some((rs.to_string(), n["port"].as_u64()? as u16))
        })
        .collect()
}

/// What the sampler saw, once per tick (10 Hz).
#[derive(Default)]
pub(crate) struct Seen {
    pub ticks: usize,
    /// Per set: its primary's port at each tick, `-` for none, consecutive repeats merged.
    pub primaries: BTreeMap<String, Vec<String>>,
    /// Violations: more than one primary in a set, or two members of a set down at once.
    pub bad: Vec<String>,
    /// Per program (nodes and monitoring programs): each distinct pid in order (0 = none).
    pub pids: BTreeMap<String, Vec<u32>>,
}

/// Samples every member (`hello` on a direct connection) and supervisord's pids at 10 Hz
/// until stopped.
pub(crate) struct Sampler {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    pub(crate) fn start(tree: &Path) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let members: Vec<(String, u16, mongodb::sync::Client)> = set_members(tree)
            .into_iter()
            .map(|(rs, port)| {
                let client = direct_client("localhost", port, Duration::from_millis(250));
                (rs, port, client)
            })
            .collect();
        let supervisor = client_for(tree);
        let (s, out) = (Arc::clone(&stop), Arc::clone(&seen));
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let tick = Instant::now();
                sample(&members, &supervisor, &mut out.lock().expect("seen"));
                std::thread::sleep(Duration::from_millis(100).saturating_sub(tick.elapsed()));
            }
        });
        Sampler {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    pub(crate) fn finish(mut self) -> Seen {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().expect("sampler thread");
        }
        std::mem::take(&mut *self.seen.lock().expect("seen"))
    }
}

/// `hello` on a member: Some(claims to be the writable primary), None when it does not answer.
fn claims_primary(client: &mongodb::sync::Client) -> Option<bool> {
    client
        .database("admin")
        .run_command(doc! {"hello": 1})
        .run()
        .ok()
        .map(|h| h.get_bool("isWritablePrimary").unwrap_or(false))
}

/// One tick: every member asked at once (one thread each, so the answers describe one
/// moment, give or take a few ms). Two members of a set that both claim to be primary are
/// asked once more: a primary that stepped down between the two answers (a handover, which
/// is one change, not two primaries) no longer claims it; two that still do are reported.
fn sample(
    members: &[(String, u16, mongodb::sync::Client)],
    supervisor: &mup::supervisor::Client,
    seen: &mut Seen,
) {
    seen.ticks += 1;
    let answers: Vec<Option<bool>> = std::thread::scope(|s| {
        let asks: Vec<_> = members
            .iter()
            .map(|(_, _, c)| s.spawn(move || claims_primary(c)))
            .collect();
        asks.into_iter()
            .map(|a| a.join().expect("a hello thread"))
            .collect()
    });
    let mut primaries: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut down: BTreeMap<&str, Vec<u16>> = BTreeMap::new();
    for (i, (rs, port, _)) in members.iter().enumerate() {
        let p = primaries.entry(rs).or_default();
        let d = down.entry(rs).or_default();
        match answers[i] {
            Some(true) => p.push(i),
            Some(false) => {}
            None => d.push(*port),
        }
    }
    for (rs, ps) in &mut primaries {
        if ps.len() > 1 {
            ps.retain(|&i| claims_primary(&members[i].2) == Some(true));
        }
        let ports: Vec<u16> = ps.iter().map(|&i| members[i].1).collect();
        if ports.len() > 1 {
            seen.bad
                .push(format!("tick {}: {rs} has primaries {ports:?}", seen.ticks));
        }
        let now = match ports.as_slice() {
            [p] => p.to_string(),
            _ => "-".to_string(),
        };
        let order = seen.primaries.entry(rs.to_string()).or_default();
        if order.last() != Some(&now) {
            order.push(now);
        }
    }
    for (rs, ds) in &down {
        if ds.len() > 1 {
            seen.bad.push(format!(
                "tick {}: {rs} has members down at once: {ds:?}",
                seen.ticks
            ));
        }
    }
    if let Ok(infos) = supervisor.get_all_process_info() {
        for p in infos {
            let order = seen.pids.entry(p.name).or_default();
            if order.last() != Some(&p.pid) {
                order.push(p.pid);
            }
        }
    }
}
