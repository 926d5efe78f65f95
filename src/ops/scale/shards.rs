//! Shards joining and leaving a running sharded cluster, through a router: `addShard` of a
//! new set, and `removeShard` called until the server reports the shard drained and removed
//! (docs/mongodb.md, "Removing a shard"). Both are safe to repeat: an added shard is known to
//! `listShards`, a removed one answers ShardNotFound.

use crate::deployment::Node;
use crate::mongo::{self, Access};
use crate::ops::initiate;
use anyhow::{anyhow, bail};
use mongodb::bson::{doc, Document};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// How long a shard may take to drain.
pub(crate) const DRAIN_LIMIT: Duration = Duration::from_secs(600);
const POLL: Duration = Duration::from_secs(1);
const SHARD_NOT_FOUND: i32 = 70;

/// Adds the set as a shard through `router` (nothing to do when listShards has it).
pub(crate) fn add(router: &Node, set: &initiate::Set, access: &Access) -> anyhow::Result<()> {
    initiate::add_shards(router, std::slice::from_ref(set), access)
        .map(|_| ())
        .map_err(|f| anyhow!("{f}"))
}

fn count(d: &Document, key: &str) -> i64 {
    d.get_i64(key)
        .or_else(|_| d.get_i32(key).map(i64::from))
        .or_else(|_| d.get_f64(key).map(|f| f as i64))
        .unwrap_or(0)
}

/// `removeShard` through `router` until it reports `completed` (or the shard is unknown:
/// removed by an earlier run), saying each change of what remains; bounded by
/// [`DRAIN_LIMIT`], naming what remains and the balancer's mode when it runs out.
pub(crate) fn drain(
    router: &Node,
    shard: &str,
    say: &dyn Fn(String),
    access: &Access,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut shown = String::new();
    loop {
        let answer = mongo::command(
            &router.host,
            router.port,
            access,
            doc! { "removeShard": shard },
        );
        let d = match answer {
            Ok(d) => d,
            Err(e) if e.code() == Some(SHARD_NOT_FOUND) => return Ok(()),
            Err(e) => bail!("removeShard {shard} on {}: {e}", router.address()),
        };
        let state = d.get_str("state").unwrap_or_default().to_string();
        if state == "completed" {
            say(format!("shard {shard}: drained and removed"));
            return Ok(());
        }
        let remaining = d.get_document("remaining").cloned().unwrap_or_default();
        let dbs: Vec<String> = d
            .get_array("dbsToMove")
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let now = format!(
            "shard {shard}: draining ({state}), {} chunk(s) and {} database(s) left",
            count(&remaining, "chunks"),
            count(&remaining, "dbs")
        );
        if now != shown {
            say(now.clone());
            shown = now;
        }
        if start.elapsed() > DRAIN_LIMIT {
            let balancer = mongo::command(
                &router.host,
                router.port,
                access,
                doc! { "balancerStatus": 1 },
            )
            .map(|b| b.get_str("mode").unwrap_or("?").to_string())
            .unwrap_or_else(|e| e.to_string());
            bail!(
                "{shown} after {} s (balancer mode: {balancer}{}); run the same scale-in again to go on waiting",
                DRAIN_LIMIT.as_secs(),
                if dbs.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; databases whose primary is this shard must be moved with movePrimary: {}",
                        dbs.join(", ")
                    )
                }
            );
        }
        sleep(POLL);
    }
}
