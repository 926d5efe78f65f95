//! What the servers of a cluster say for `mup cluster display`: each replica set's member
//! states (one `replSetGetStatus` per set) and the shards a router knows, asked a bounded
//! number at a time.

use crate::deployment::model::Role;
use crate::deployment::Node;
use crate::mongo::Access;
use crate::ops::display::DisplayShard;
use std::collections::BTreeMap;

/// How many servers display asks at once (one driver client each, one thread each).
const CONCURRENT_QUESTIONS: usize = 8;
const _: () = assert!(
    CONCURRENT_QUESTIONS <= 16,
    "display asks at most 16 servers at once"
);

/// Each running node's replica-set state and the shards the first answering router knows.
/// One `replSetGetStatus` per replica set answers for all its members (asked of its running
/// members in turn until one that knows the set's config answers); standalone nodes and
/// routers have no member state. The sets are asked at most [`CONCURRENT_QUESTIONS`] at a
/// time, with short timeouts: a node that does not answer shows `-`.
pub(super) fn server_view(
    members: &[Node],
    up: &[bool],
    access: &Access,
) -> (Vec<Option<String>>, Vec<DisplayShard>) {
    let mut sets: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, m) in members.iter().enumerate() {
        if let (Some(set), true) = (&m.replica_set, up[i]) {
            sets.entry(set).or_default().push(i);
        }
    }
    let mut jobs: Vec<Job> = sets.into_values().map(Job::Set).collect();
    jobs.push(Job::Shards);
    let answers = bounded_map(&jobs, CONCURRENT_QUESTIONS, |job| match job {
        Job::Set(indices) => Answer::States(set_states(members, indices, access)),
        Job::Shards => Answer::Shards(router_shards(members, up, access)),
    });
    let mut states: Vec<Option<String>> = vec![None; members.len()];
    let mut shards = Vec::new();
    for answer in answers {
        match answer {
            Answer::States(found) => {
                for (i, state) in found {
                    states[i] = Some(state);
                }
            }
            Answer::Shards(found) => shards = found,
        }
    }
    (states, shards)
}

/// A question for the servers: the states of one set's running members (their indices), or
/// the shards a router knows.
enum Job {
    Set(Vec<usize>),
    Shards,
}

enum Answer {
    States(Vec<(usize, String)>),
    Shards(Vec<DisplayShard>),
}

/// The member states of one set, as (index into `members`, state): its running members
/// (`running`) are asked in turn until one answers for every one of them.
fn set_states(members: &[Node], running: &[usize], access: &Access) -> Vec<(usize, String)> {
    let mut found: BTreeMap<usize, String> = BTreeMap::new();
    for &asked in running {
        if found.len() == running.len() {
            break;
        }
        let m = &members[asked];
        let Ok(Some(status)) = crate::mongo::set_status(&server_host(m), m.port, access) else {
            continue;
        };
        found.insert(asked, status.own);
        for (port, state) in status.members {
            if let Some(&i) = running.iter().find(|&&i| members[i].port == port) {
                found.entry(i).or_insert(state);
            }
        }
    }
    found.into_iter().collect()
}

/// The shards the first running router that answers knows.
fn router_shards(members: &[Node], up: &[bool], access: &Access) -> Vec<DisplayShard> {
    members
        .iter()
        .zip(up)
        .filter(|(m, up)| m.role == Role::Mongos && **up)
        .find_map(|(m, _)| crate::ops::initiate::list_shards(m, access).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|sh| DisplayShard {
            id: sh.id,
            host: sh.host,
        })
        .collect()
}

/// The address a node's server listens on: a `localhost` node binds 127.0.0.1 (so no
/// name lookup, which the driver would run on threads of its own).
fn server_host(m: &Node) -> String {
    if m.host == "localhost" {
        "127.0.0.1".into()
    } else {
        m.host.clone()
    }
}

/// `work` applied to every item on at most `limit` threads at once; results in item order.
fn bounded_map<T: Sync, R: Send>(
    items: &[T],
    limit: usize,
    work: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let workers = limit.clamp(1, items.len().max(1));
    let mut results: Vec<(usize, R)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(i) else {
                            return done;
                        };
                        done.push((i, work(item)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a display worker does not panic"))
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn the_pool_runs_every_item_in_order_never_more_than_its_bound_at_once() {
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let threads = std::sync::Mutex::new(std::collections::HashSet::new());
        let items: Vec<usize> = (0..200).collect();
        let out = bounded_map(&items, CONCURRENT_QUESTIONS, |i| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            threads
                .lock()
                .expect("not poisoned")
                .insert(std::thread::current().id());
            std::thread::sleep(Duration::from_millis(2));
            running.fetch_sub(1, Ordering::SeqCst);
            i * 2
        });
        assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        let most = most.load(Ordering::SeqCst);
        assert!(most >= 2, "items ran in parallel ({most})");
        assert!(most <= CONCURRENT_QUESTIONS, "{most} at once");
        let threads = threads.lock().expect("not poisoned").len();
        assert!(threads <= CONCURRENT_QUESTIONS, "{threads} threads");
        assert!(bounded_map(&[] as &[usize], 4, |i| *i).is_empty());
    }
}
