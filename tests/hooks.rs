//! Hooks against the real supervisord: each runs in its own process group, a timed-out hook
//! is killed with everything it started (a `setsid` grandchild included), `ctl down` lets a
//! running hook finish and kills what hooks left behind, and hook output goes to hooks.log,
//! not to the listener's own log.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One mongod (a standalone), its port `{p0}`.
const STANDALONE: &str = "mongod_servers:\n  - host: localhost\n    port: {p0}\n";

/// Writes each `(on, script, timeout)` as a script file and appends the hooks running them
/// to the test's meta.yaml, then regenerates the tree.
fn with_hooks(c: &TestCluster, hooks: &[(&str, &str, Option<u64>)]) {
    let meta = c.tmp.path().join("meta.yaml");
    let mut text = std::fs::read_to_string(&meta).expect("meta");
    text.push_str("hooks:\n");
    for (i, (on, script, timeout)) in hooks.iter().enumerate() {
        let file = c.tmp.path().join(format!("hook-{i}.sh"));
        std::fs::write(&file, script).expect("write hook script");
        text.push_str(&format!(
            "  - on: [{on}]\n    command: sh {}\n",
            file.display()
        ));
        if let Some(t) = timeout {
            text.push_str(&format!("    timeout: {t}\n"));
        }
    }
    std::fs::write(&meta, text).expect("write meta");
    c.gen();
}

/// Shell lines starting `sleep 1000` in the background, once plainly and once in a new
/// session (`setsid`, out of the hook's process group); each writes its pid to a file in
/// `dir` first (`bg.pid`, `sid.pid`).
fn grandchildren(dir: &Path) -> String {
    let write = |name: &str| {
        let f = dir.join(name);
        format!(
            "echo $$ > {0}.tmp && mv {0}.tmp {0}; exec sleep 1000",
            f.display()
        )
    };
    format!(
        "setsid sh -c '{}' &\nsh -c '{}' &\n",
        write("sid.pid"),
        write("bg.pid")
    )
}

/// The pids the grandchildren wrote (waits until both are there).
fn grandchild_pids(dir: &Path) -> Vec<u32> {
    let files = [dir.join("sid.pid"), dir.join("bg.pid")];
    assert!(
        wait_until(Duration::from_secs(20), || files.iter().all(|f| f.exists())),
        "the hook started its children"
    );
    files
        .iter()
        .map(|f| {
            std::fs::read_to_string(f)
                .expect("pid file")
                .trim()
                .parse()
                .expect("a pid")
        })
        .collect()
}

/// Asserts that every one of `pids` has exited (or is a zombie) within `limit`.
fn assert_gone(pids: &[u32], limit: Duration, when: &str) {
    let alive = || -> Vec<u32> { pids.iter().copied().filter(|p| pid_alive(*p)).collect() };
    assert!(
        wait_until(limit, || alive().is_empty()),
        "still running {when}: {:?}",
        alive()
    );
}

fn listener_log(c: &TestCluster) -> String {
    std::fs::read_to_string(c.tree.join("logs/supervisor-mup-events.log")).unwrap_or_default()
}

fn hooks_log(c: &TestCluster) -> PathBuf {
    c.tree.join("logs/hooks.log")
}

/// Only the node's transitions (the monitoring programs have theirs too).
const NODE_ONLY: &str = "[ \"$MUP_ROLE\" = mongod ] || exit 0\n";

#[test]
fn a_timed_out_hook_is_killed_with_its_setsid_grandchild() {
    let c = TestCluster::named("hooktimeout").topology(STANDALONE).gen();
    let dir = c.tmp.path();
    let script = format!("{NODE_ONLY}{}wait\n", grandchildren(dir));
    with_hooks(&c, &[("RUNNING", &script, Some(2))]);
    c.ok(&["up"]);
    c.ok(&["start"]);
    let pids = grandchild_pids(dir);
    assert_gone(&pids, Duration::from_secs(20), "after the hook's timeout");
    // The listener says so once the kill is over.
    assert!(
        wait_until(Duration::from_secs(5), || listener_log(&c)
            .contains("was killed after 2 s")),
        "{}",
        listener_log(&c)
    );
    let hooks = std::fs::read_to_string(hooks_log(&c)).expect("hooks.log");
    assert!(hooks.contains("killed after 2 s ("), "{hooks}");
    // The listener itself goes on.
    assert_eq!(c.state_of("mup-events"), "RUNNING");
}

#[test]
fn down_kills_what_hooks_left_behind_even_in_another_session() {
    let c = TestCluster::named("hookdown").topology(STANDALONE).gen();
    let (left, running) = (c.tmp.path().join("left"), c.tmp.path().join("running"));
    for d in [&left, &running] {
        std::fs::create_dir(d).expect("mkdir");
    }
    // One hook's shell exits at once, its children stay (its limit is the default 60 s); the
    // other never ends: the stop waits for it (10 s), then kills it with its children.
    let finished = format!("{NODE_ONLY}{}exit 0\n", grandchildren(&left));
    let endless = format!("{NODE_ONLY}{}wait\n", grandchildren(&running));
    with_hooks(
        &c,
        &[("RUNNING", &finished, None), ("RUNNING", &endless, None)],
    );
    c.ok(&["up"]);
    c.ok(&["start"]);
    let mut pids = grandchild_pids(&left);
    pids.extend(grandchild_pids(&running));
    c.ok(&["down"]);
    assert_gone(&pids, Duration::from_secs(2), "after down");
    let log = listener_log(&c);
    assert!(
        log.contains("was still running 10 s after SIGTERM: killed"),
        "{log}"
    );
}

#[test]
fn a_hook_running_at_down_finishes_before_the_listener_exits() {
    let c = TestCluster::named("hookstop").topology(STANDALONE).gen();
    let done = c.tmp.path().join("stopped");
    let script = format!("sleep 3\necho \"$MUP_PROGRAM\" >> {}\n", done.display());
    with_hooks(&c, &[("STOPPED", &script, None)]);
    c.ok(&["up"]);
    c.ok(&["start"]);
    c.ok(&["down"]);
    let text = std::fs::read_to_string(&done).unwrap_or_default();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [format!("mongod-{}", c.ports[0]).as_str(), "mup-metrics"],
        "each STOPPED hook ran to its end"
    );
}

#[test]
fn a_chatty_hook_writes_to_its_own_bounded_log() {
    let c = TestCluster::named("hookchatty").topology(STANDALONE).gen();
    // 25 MB of 100-byte lines, more than hooks.log keeps in one file (10 MiB).
    let chatty = format!(
        "{NODE_ONLY}echo chatty-start\nhead -c 25000000 /dev/zero | tr '\\0' x | fold -w 99\necho\necho chatty-end\n"
    );
    // A failing hook: the listener's own diagnostic line.
    with_hooks(
        &c,
        &[("RUNNING", "exit 7\n", None), ("RUNNING", &chatty, None)],
    );
    c.ok(&["up"]);
    c.ok(&["start"]);
    let hooks = hooks_log(&c);
    assert!(
        wait_until(Duration::from_secs(60), || std::fs::read_to_string(&hooks)
            .is_ok_and(|t| t.contains("| chatty-end"))),
        "the chatty hook's output reached hooks.log"
    );
    let log = listener_log(&c);
    assert!(log.contains("failed (exit status: 7)"), "{log}");
    assert!(
        !log.contains("xxxxxxxxxx") && !log.contains("chatty-"),
        "{log}"
    );
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    assert!(size(&hooks) <= 10 * 1024 * 1024, "{}", size(&hooks));
    assert!(size(&c.tree.join("logs/hooks.log.1")) > 0, "rotated");
    assert!(
        !c.tree.join("logs/hooks.log.4").exists(),
        "at most 3 old files"
    );
    let text = std::fs::read_to_string(&hooks).expect("hooks.log");
    let line = text
        .lines()
        .find(|l| l.ends_with("| chatty-end"))
        .expect("the last line");
    assert!(line.contains(" hook "), "{line}");
}

#[test]
fn a_hook_timeout_out_of_range_is_refused_naming_the_field() {
    let c = TestCluster::named("hookbad").topology(STANDALONE).gen();
    let meta = c.tmp.path().join("meta.yaml");
    let mut text = std::fs::read_to_string(&meta).expect("meta");
    text.push_str("hooks:\n  - on: [FATAL]\n    command: 'true'\n    timeout: 0\n");
    std::fs::write(&meta, text).expect("write meta");
    run_gen(c.scratch(), "tree", &[])
        .code(2)
        .stderr_has("meta.yaml")
        .stderr_has("hooks[0].timeout")
        .stderr_has("0 is not a number of seconds from 1 to 3600");
}
