//! Events and metrics (issue: observability) against the real supervisord: the event
//! listener's events.log, `events`, hooks, the exporter's series (checked by promtool and
//! scraped by a real Prometheus server), reload adding and removing the monitoring programs.

use crate::common::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// One mongod (a standalone), its port `{p0}`.
const STANDALONE: &str = "mongod_servers:\n  - host: localhost\n    port: {p0}\n";

/// A two-member replica set `rs0`.
const TWO_NODE_SET: &str = "mongod_servers:
  - host: localhost
    port: {p0}
    replica_set: rs0
  - host: localhost
    port: {p1}
    replica_set: rs0
";

/// Every event recorded so far, from `events --json`.
fn events(c: &TestCluster) -> Vec<serde_json::Value> {
    let out = c.ok(&["events", "--json"]);
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The lines of events.log itself (what the listener wrote).
fn events_log(tree: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(tree.join("events.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn has(events: &[serde_json::Value], program: &str, to: &str) -> bool {
    events
        .iter()
        .any(|e| e["program"] == program && e["to"] == to)
}

fn pid_of(c: &TestCluster, program: &str) -> u32 {
    c.ok(&["pid", program]).trim().parse().expect("a pid")
}

fn kill9(pid: u32) {
    assert!(send_signal(pid, "9"), "kill -9 {pid}");
}

pub(crate) fn metrics_port(tree: &Path) -> u16 {
    read_meta(tree)["metrics_port"]
        .as_u64()
        .expect("metrics_port") as u16
}

/// One scrape, as plain HTTP/1.0 (Prometheus text 0.0.4: no Accept header).
pub(crate) fn scrape(port: u16) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect exporter");
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(
        head.starts_with("HTTP/1.") && head.contains(" 200 "),
        "{head}"
    );
    body.to_string()
}

/// `series{...labels...} value` lines of one metric: labels as a map, and the value.
pub(crate) fn samples(body: &str, metric: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    body.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")))
        .map(|l| {
            let (labels, value) = l[metric.len() + 1..].rsplit_once("} ").expect("a sample");
            let map = labels
                .split("\",")
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once("=\"").expect("label");
                    (k.to_string(), v.trim_end_matches('"').to_string())
                })
                .collect();
            (map, value.parse().expect("a number"))
        })
        .collect()
}

/// The value of `metric` for program `name`.
fn value(body: &str, metric: &str, name: &str) -> Option<f64> {
    samples(body, metric)
        .into_iter()
        .find(|(l, _)| l.get("name").map(String::as_str) == Some(name))
        .map(|(_, v)| v)
}

#[test]
fn a_crash_and_a_clean_stop_are_recorded_and_shown() {
    let c = TestCluster::named("events").topology(TWO_NODE_SET).start();
    wait_started(&c.tree); // a start returns before startsecs: the tests below need RUNNING
    let program = format!("mongod-{}", c.ports[0]);
    let old = pid_of(&c, &program);
    let killed = Instant::now();
    kill9(old);
    let restarted = wait_until(Duration::from_secs(2), || {
        let log = events_log(&c.tree);
        let exit = log.iter().position(|e| {
            e["program"] == program.as_str() && e["to"] == "EXITED" && e["pid"] == old
        });
        exit.is_some_and(|i| {
            log[i + 1..]
                .iter()
                .any(|e| e["program"] == program.as_str() && e["to"] == "STARTING")
        })
    });
    assert!(
        restarted,
        "EXITED then STARTING within 2 s of kill -9; events.log: {:#?}",
        events_log(&c.tree)
    );
    println!(
        "kill -9 → EXITED and STARTING recorded within {:.3} s",
        killed.elapsed().as_secs_f64()
    );
    assert!(wait_until(Duration::from_secs(15), || has(
        &events_log(&c.tree),
        &program,
        "RUNNING"
    ) && events_log(
        &c.tree
    )
    .iter()
    .filter(|e| e["program"] == program.as_str() && e["to"] == "RUNNING")
    .count()
        >= 2));

    let shown = events(&c);
    let exit = shown
        .iter()
        .find(|e| e["program"] == program.as_str() && e["to"] == "EXITED")
        .expect("the crash in `events --json`");
    assert_eq!(exit["from"], "RUNNING");
    assert_eq!(
        exit["group"],
        program.as_str(),
        "each node is its own group"
    );
    assert_eq!(exit["expected"], false);
    assert_eq!(exit["pid"], old);
    assert_eq!(exit["exit_status"], -9, "killed by SIGKILL");
    let human = c.ok(&["events"]);
    assert!(
        human.contains(&format!("{program} RUNNING → EXITED (unexpected, exit -9)")),
        "{human}"
    );

    let other = format!("mongod-{}", c.ports[1]);
    c.ok(&["stop", &other]);
    // The listener records what supervisord hands it, after the transition: wait for it.
    let in_order = |log: &[serde_json::Value]| {
        let at = |to: &str| {
            log.iter()
                .position(|e| e["program"] == other.as_str() && e["to"] == to)
        };
        matches!((at("STOPPING"), at("STOPPED")), (Some(a), Some(b)) if a < b)
    };
    let recorded = wait_until(Duration::from_secs(10), || in_order(&events_log(&c.tree)));
    let after = events_log(&c.tree);
    assert!(recorded, "STOPPING then STOPPED for {other}: {after:#?}");
    // A whole stop: every node's STOPPED is recorded, then the exporter's (monitoring stops
    // last, the listener after everything it records); a whole start begins with monitoring.
    c.ok(&["stop"]);
    let log = events_log(&c.tree);
    let index = |program: &str, to: &str| {
        log.iter()
            .rposition(|e| e["program"] == program && e["to"] == to)
            .unwrap_or_else(|| panic!("{program} {to} in {log:#?}"))
    };
    let exporter_stopped = index("mup-metrics", "STOPPED");
    assert!(index(&program, "STOPPED") < exporter_stopped);
    assert!(
        !log.iter().any(|e| e["program"] == "mup-events"),
        "no own events"
    );
    let before = log.len();
    c.ok(&["start"]);
    let log = events_log(&c.tree);
    let starting: Vec<&str> = log[before..]
        .iter()
        .filter(|e| e["to"] == "STARTING")
        .map(|e| e["program"].as_str().expect("program"))
        .collect();
    assert_eq!(starting.first(), Some(&"mup-metrics"), "{starting:?}");
    assert!(starting.contains(&program.as_str()) && starting.contains(&other.as_str()));

    // --since leaves out what is older.
    std::thread::sleep(Duration::from_millis(1100));
    let recent = c.ok(&["events", "--since", "1s"]);
    assert!(
        !recent.contains("EXITED") && !recent.contains("STOPPING"),
        "{recent}"
    );
    let out = c.ctl_run(&["events", "--since", "1ms"]).ok();
    assert_eq!(out.stdout, "", "{}", out.stderr);
    assert!(
        out.stderr.starts_with("no events in the last 1ms in "),
        "{}",
        out.stderr
    );
}

/// A `--since` longer than the clock can go back is a clear usage error (exit 2), not a
/// panic; the longest the clock can count still works.
#[test]
fn events_since_beyond_the_clock_is_a_usage_error() {
    let c = TestCluster::named("longago").topology(STANDALONE).gen();
    c.ctl_run(&["events", "--since", "18446744073709551615s"])
        .code(2)
        .stderr_has("invalid value '18446744073709551615s' for '--since <DURATION>'")
        .stderr_has("reaches back further than the clock can count")
        .stderr_lacks("panicked");
    c.ctl_run(&["events", "--since", "100000years"]).ok();
}

#[test]
fn hooks_run_with_the_event_and_a_failing_hook_changes_nothing() {
    let c = TestCluster::named("hooks").topology(TWO_NODE_SET).gen();
    let out = c.tmp.path().join("hook-out");
    let meta = c.tmp.path().join("meta.yaml");
    let mut text = std::fs::read_to_string(&meta).expect("meta");
    text.push_str(&format!(
        "hooks:\n  - on: [EXITED_UNEXPECTED]\n    command: 'echo \"$MUP_CLUSTER $MUP_PROGRAM $MUP_FROM_STATE $MUP_TO_STATE $MUP_EXPECTED $MUP_PID $MUP_EXIT_STATUS $MUP_ROLE $MUP_PORT $MUP_REPLICA_SET\" >> {}'\n  - on: [EXITED, RUNNING]\n    command: exit 7\n",
        out.display()
    ));
    std::fs::write(&meta, text).expect("write meta");
    c.gen();
    c.ok(&["up"]);
    c.ok(&["start"]);
    wait_started(&c.tree); // a start returns before startsecs: the tests below need RUNNING
    let program = format!("mongod-{}", c.ports[0]);
    let old = pid_of(&c, &program);
    kill9(old);
    assert!(
        wait_until(Duration::from_secs(5), || out.exists()),
        "the hook ran"
    );
    assert!(wait_until(Duration::from_secs(2), || {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .ends_with('\n')
    }));
    let line = std::fs::read_to_string(&out).expect("hook output");
    assert_eq!(
        line.trim(),
        format!(
            "hooks {program} RUNNING EXITED 0 {old} -9 mongod {} rs0",
            c.ports[0]
        )
    );
    // The failing hook (exit 7 on every EXITED and RUNNING) is logged, and events go on.
    assert!(wait_until(Duration::from_secs(15), || events_log(&c.tree)
        .iter()
        .filter(|e| e["program"] == program.as_str() && e["to"] == "RUNNING")
        .count()
        >= 2));
    let log = std::fs::read_to_string(c.tree.join("logs/supervisor-mup-events.log"))
        .expect("the listener's log");
    assert!(
        log.contains("\"exit 7\"") && log.contains("failed"),
        "{log}"
    );
    // `ctl tail` reads the listener's log (its stderr: its stdout is the protocol).
    let tail = c.ok(&["tail", "mup-events"]);
    assert!(
        tail.contains("\"exit 7\"") && tail.contains("failed"),
        "{tail}"
    );
    assert!(pid_of(&c, "mup-metrics") > 0);
    assert_eq!(c.state_of("mup-events"), "RUNNING");
}

#[test]
fn metrics_follow_start_stop_and_crash_and_pass_promtool() {
    let c = TestCluster::named("metrics").topology(TWO_NODE_SET).start();
    wait_started(&c.tree); // a start returns before startsecs: the tests below need RUNNING
    let port = metrics_port(&c.tree);
    let (a, b) = (
        format!("mongod-{}", c.ports[0]),
        format!("mongod-{}", c.ports[1]),
    );
    let body = scrape(port);
    promtool_accepts(&body);
    assert_eq!(value(&body, "mup_supervisord_up", ""), None);
    assert!(
        body.contains("mup_supervisord_up{cluster=\"metrics\"} 1"),
        "{body}"
    );
    assert!(
        body.contains("mup_supervisord_state{cluster=\"metrics\"} 1"),
        "{body}"
    );
    let up = samples(&body, "node_supervisord_up");
    let (labels, v) = up
        .iter()
        .find(|(l, _)| l["name"] == a)
        .expect("a series for the first node");
    assert_eq!(*v, 1.0);
    let want: BTreeMap<String, String> = [
        ("name", a.as_str()),
        ("group", a.as_str()),
        ("cluster", "metrics"),
        ("role", "mongod"),
        ("replica_set", "rs0"),
        ("host", "localhost"),
        ("port", &c.ports[0].to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(labels, &want);
    assert_eq!(value(&body, "node_supervisord_state", &a), Some(20.0));
    let pid = pid_of(&c, &a);
    let rss = value(&body, "mup_process_resident_memory_bytes", &a).expect("rss");
    let statm: f64 = std::fs::read_to_string(format!("/proc/{pid}/statm"))
        .expect("statm")
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("resident pages");
    assert!(
        (rss - statm * 4096.0).abs() < 8.0 * 1024.0 * 1024.0,
        "rss {rss} vs /proc {}",
        statm * 4096.0
    );
    assert!(value(&body, "mup_process_cpu_seconds_total", &a).is_some_and(|s| s > 0.0));
    let started = value(&body, "node_supervisord_start_time_seconds", &a).expect("start time");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    assert!(now - started < 120.0 && now >= started);
    assert_eq!(
        value(&body, "mup_process_unexpected_exits_total", &a),
        Some(0.0)
    );
    assert_eq!(value(&body, "node_supervisord_up", "mup-events"), Some(1.0));

    c.ok(&["stop", &b]);
    let body = scrape(port);
    assert_eq!(value(&body, "node_supervisord_up", &b), Some(0.0));
    assert_eq!(value(&body, "node_supervisord_state", &b), Some(0.0));
    assert_eq!(
        value(&body, "node_supervisord_start_time_seconds", &b),
        None
    );
    assert_eq!(value(&body, "mup_process_resident_memory_bytes", &b), None);

    kill9(pid);
    assert!(wait_until(Duration::from_secs(5), || {
        value(&scrape(port), "mup_process_unexpected_exits_total", &a) == Some(1.0)
    }));
    let body = scrape(port);
    promtool_accepts(&body);
    // Restarted by supervisord: STARTING (10) or already RUNNING again.
    assert!(matches!(
        value(&body, "node_supervisord_state", &a),
        Some(s) if s == 10.0 || s == 20.0
    ));
}

/// `promtool check metrics` accepts `body` (the exposition format, on its stdin).
fn promtool_accepts(body: &str) {
    promtool(&["check", "metrics"], body, body);
}

/// Runs `promtool ARGS` with `stdin` and asserts it accepts; `shown` is what a failure
/// prints beside promtool's words. promtool is Debian's prometheus package (`.ci/run`
/// installs it): without it the test fails saying so.
fn promtool(args: &[&str], stdin: &str, shown: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; .ci/run installs it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool {}: {}{}\n{shown}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_prometheus_server_scrapes_the_exporter() {
    let c = TestCluster::named("scraped").topology(STANDALONE).start();
    let port = metrics_port(&c.tree);
    let web = free_port();
    let dir = c.tmp.path().join("prometheus");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: mup-scraped\n    static_configs:\n      - targets: [\"127.0.0.1:{port}\"]\n"),
    )
    .expect("write config");
    let mut server = std::process::Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{web}"))
        .stdout(std::process::Stdio::null())
        .stderr(
            std::fs::File::create(dir.join("log"))
                .map(std::process::Stdio::from)
                .expect("log"),
        )
        .spawn()
        .expect("prometheus (Debian's prometheus package; .ci/run installs it)");
    let query = |q: &str| -> Option<serde_json::Value> {
        let url = format!("http://127.0.0.1:{web}/api/v1/query?query={q}");
        let text = reqwest::blocking::get(url).ok()?.text().ok()?;
        serde_json::from_str(&text).ok()
    };
    let result =
        |v: &serde_json::Value| v["data"]["result"].as_array().cloned().unwrap_or_default();
    let seen = wait_until(Duration::from_secs(30), || {
        query("up").is_some_and(|v| {
            result(&v)
                .iter()
                .any(|r| r["metric"]["job"] == "mup-scraped" && r["value"][1] == "1")
        })
    });
    let program = format!("mongod-{}", c.ports[0]);
    let node = query(&format!(
        "node_supervisord_state%7Bname%3D%22{program}%22%7D"
    ));
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        seen,
        "Prometheus never saw up == 1 for the exporter; its log:\n{}",
        std::fs::read_to_string(dir.join("log")).unwrap_or_default()
    );
    let node = node.map(|v| result(&v)).unwrap_or_default();
    assert_eq!(node.len(), 1, "{node:?}");
    assert_eq!(node[0]["value"][1], "20");
    assert_eq!(node[0]["metric"]["cluster"], "scraped");
}

#[test]
fn reload_adds_and_removes_the_monitoring_programs_and_off_means_none() {
    let c = TestCluster::named("toggle").topology(STANDALONE).gen();
    let meta = c.tmp.path().join("meta.yaml");
    let original = std::fs::read_to_string(&meta).expect("meta");
    std::fs::write(&meta, format!("{original}events: false\nmetrics: false\n")).expect("write");
    c.gen();
    assert!(!c.tree.join("conf/monitoring").exists());
    let m = read_meta(&c.tree);
    assert!(
        m.get("services").is_none() && m.get("metrics_port").is_none(),
        "{m:?}"
    );
    c.ok(&["up"]);
    c.ok(&["start"]);
    let names: Vec<String> = c.pids().into_keys().collect();
    assert_eq!(names, vec![format!("mongod-{}", c.ports[0])]);
    assert!(!c.tree.join("events.log").exists());
    c.ctl_run(&["events"]).code(1).stderr_has("events: false");

    // On again: reload adds both, and they run (the node keeps its pid).
    let node_pid = c.pids()[&format!("mongod-{}", c.ports[0])];
    std::fs::write(&meta, format!("{original}events: true\nmetrics: true\n")).expect("write");
    c.gen();
    let out = c.ok(&["reload"]);
    assert!(
        out.contains("mup-events: added") && out.contains("monitoring: added"),
        "{out}"
    );
    let st = c.status();
    let state = |name: &str| {
        st["programs"]
            .as_array()
            .expect("programs")
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["state"].clone())
    };
    assert_eq!(state("mup-events"), Some("RUNNING".into()), "{st}");
    assert_eq!(state("mup-metrics"), Some("RUNNING".into()), "{st}");
    assert_eq!(c.pids()[&format!("mongod-{}", c.ports[0])], node_pid);
    assert!(scrape(metrics_port(&c.tree)).contains("node_supervisord_up"));

    // Off again: removed, the node untouched.
    std::fs::write(&meta, format!("{original}events: false\nmetrics: false\n")).expect("write");
    c.gen();
    let out = c.ok(&["reload"]);
    assert!(
        out.contains("mup-events: removed") && out.contains("monitoring: removed"),
        "{out}"
    );
    let names: Vec<String> = c.pids().into_keys().collect();
    assert_eq!(names, vec![format!("mongod-{}", c.ports[0])]);
    assert_eq!(c.pids()[&format!("mongod-{}", c.ports[0])], node_pid);
    c.ctl_run(&["up"]).ok();
}

#[test]
fn a_hand_added_listener_is_reported_and_reload_removes_it_by_its_group() {
    let c = TestCluster::named("handmade").topology(STANDALONE).start();
    let extra = c.tree.join("conf/extra/supervisor-crashmail.ini");
    std::fs::create_dir_all(extra.parent().expect("dir")).expect("mkdir");
    std::fs::write(
        &extra,
        "[eventlistener:crashmail]\ncommand = /bin/cat\nevents = PROCESS_STATE\nautostart = false\n",
    )
    .expect("write");
    run_gen(c.scratch(), "tree", &["--check"])
        .code(1)
        .stdout_has("extra: conf/extra/supervisor-crashmail.ini (not made by mup");
    // Loaded by the daemon: `up` names it; reload (after the file is gone) removes the group.
    c.client().reload_config().expect("reread");
    c.client().add_process_group("crashmail").expect("add");
    c.ctl_run(&["up"]).code(1).stderr_has("crashmail");
    std::fs::remove_file(&extra).expect("rm");
    let out = c.ok(&["reload"]);
    assert!(out.contains("crashmail: removed"), "{out}");
    c.ok(&["up"]);
}

#[test]
fn the_password_is_on_no_command_line() {
    let c = TestCluster::named("secret").topology(STANDALONE).start();
    let password = read_meta(&c.tree)["supervisor_password"]
        .as_str()
        .expect("password")
        .to_string();
    assert!(password.len() >= 16);
    // The exporter runs and has used the password (it reports the daemon up).
    assert!(scrape(metrics_port(&c.tree)).contains("mup_supervisord_up{cluster=\"secret\"} 1"));
    let ps = std::process::Command::new("ps")
        .args(["-eo", "pid,args", "--no-headers", "-ww"])
        .output()
        .expect("ps");
    let text = String::from_utf8_lossy(&ps.stdout);
    assert!(
        text.contains("monitor metrics --dir"),
        "the exporter is listed:\n{text}"
    );
    assert!(
        !text.contains(&password),
        "the password is on a command line:\n{text}"
    );
}

#[test]
fn gen_check_notices_a_moved_mup_binary() {
    let c = TestCluster::named("moved").topology(STANDALONE).gen();
    let elsewhere = c.tmp.path().join("bin");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    let copy = elsewhere.join("mup");
    std::fs::copy(env!("CARGO_BIN_EXE_mup"), &copy).expect("copy mup");
    // `mup gen ... EXTRA` run by the binary `mup`.
    let gen_by = |mup: &Path, extra: &[&str]| {
        let mut cmd = assert_cmd::Command::new(mup);
        cmd.current_dir(c.scratch())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", c.scratch())
            .env("USER", "tester")
            .env("MUP_HOME", c.home());
        run_mup(cmd, &gen_args("tree", extra))
    };
    gen_by(Path::new(env!("CARGO_BIN_EXE_mup")), &["--check"]).ok();
    let text = gen_by(&copy, &["--check"]).code(1).stdout;
    for file in [
        "conf/monitoring/supervisor-mup-events.ini",
        "conf/monitoring/supervisor-mup-metrics.ini",
    ] {
        assert!(text.contains(&format!("differs: {file}")), "{text}");
    }
    assert!(
        text.contains(&copy.display().to_string()),
        "the diff shows the new path:\n{text}"
    );

    // A tree written by the copy, which is then deleted: the nodes start, monitoring does not,
    // and the start says so without failing; `gen` with this binary and `reload` repair it.
    gen_by(&copy, &[]).ok();
    std::fs::remove_file(&copy).expect("rm the copy");
    c.ok(&["up"]);
    c.ctl_run(&["start"])
        .ok()
        .stderr_has("monitoring is not running (the nodes are not affected)");
    assert_eq!(
        c.pids().values().filter(|p| **p > 0).count(),
        1,
        "the node runs"
    );
    c.gen();
    c.ok(&["reload"]);
    let st = c.status();
    for p in st["programs"].as_array().expect("programs") {
        assert_eq!(p["state"], "RUNNING", "{p}");
    }
}

/// A named cluster `name` (one stand-in node, daemon down) generated under `mup_home` with
/// this `metrics_port`.
fn named_cluster(mup_home: &Path, name: &str, metrics_port: u16) {
    let scratch = mup_home.join(format!("{name}-input"));
    std::fs::create_dir_all(&scratch).expect("mkdir");
    std::fs::write(
        scratch.join("topology.yaml"),
        STANDALONE.replace("{p0}", &free_port().to_string()),
    )
    .expect("write topology");
    std::fs::write(
        scratch.join("meta.yaml"),
        format!(
            "name: {name}\nversion: \"7.0.14\"\nbin_path: {}\nsupervisor_port: {}\nmetrics_port: {metrics_port}\n",
            stand_in_bin().display(),
            free_port()
        ),
    )
    .expect("write meta");
    mup(mup_home)
        .arg("gen")
        .arg(scratch.join("topology.yaml"))
        .arg("--meta")
        .arg(scratch.join("meta.yaml"))
        .arg("--out")
        .arg(mup_home.join("storage/clusters").join(name))
        .assert()
        .success();
}

/// `mup cluster display NAME [ARGS]`: stdout (exit 3: the nodes are not running).
fn display(mup_home: &Path, name: &str, args: &[&str]) -> String {
    let out = mup(mup_home)
        .args(["cluster", "display", name])
        .args(args)
        .output()
        .expect("run mup");
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The scrape config `cluster display` prints is a whole Prometheus configuration: saved as
/// printed, `promtool check config` accepts it, and it scrapes the cluster's metrics port.
#[test]
fn display_prints_a_scrape_config_promtool_accepts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("mup-home");
    let port = free_port();
    named_cluster(&home, "scrapecfg", port);
    let text = display(&home, "scrapecfg", &[]);
    let start = text
        .find("\nscrape_configs:\n")
        .unwrap_or_else(|| panic!("no scrape_configs document in\n{text}"));
    let doc: String = text[start + 1..]
        .lines()
        .take_while(|l| !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        doc.contains("job_name: mup-scrapecfg")
            && doc.contains(&format!("targets: [\"127.0.0.1:{port}\"]")),
        "{doc}"
    );
    let file = tmp.path().join("prometheus.yml");
    std::fs::write(&file, &doc).expect("write");
    promtool(&["check", "config", file.to_str().expect("utf8")], "", &doc);
}

/// When another cluster's exporter holds this cluster's metrics port, display says so and
/// advertises no URL or scrape config (those series are the other cluster's).
#[test]
fn display_does_not_advertise_another_clusters_exporter() {
    let other = TestCluster::named("holder").topology(STANDALONE).gen();
    other.ok(&["up"]);
    let port = metrics_port(&other.tree);
    assert!(
        wait_until(Duration::from_secs(10), || port_answers(port)),
        "the other cluster's exporter listens on {port}"
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("mup-home");
    named_cluster(&home, "borrower", port);

    let text = display(&home, "borrower", &[]);
    let holder = format!("monitor metrics --dir {}", other.tree.display());
    assert!(
        text.contains("Metrics:     none: the exporter's port") && text.contains(&holder),
        "{text}"
    );
    assert!(
        !text.contains("scrape_configs:") && !text.contains(&format!("127.0.0.1:{port}/metrics")),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&display(&home, "borrower", &["--json"])).expect("json");
    assert_eq!(json["metrics_url"], serde_json::Value::Null, "{json}");
    let held = json["metrics_port_held_by"].as_str().unwrap_or_default();
    assert!(held.contains(&holder), "{json}");
}

/// One scrape that must answer within `limit` (a liveness bound, not a speed measure): the
/// answer's status line and body, or why there was none.
fn scrape_within(port: u16, limit: Duration) -> Result<String, String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(limit)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(limit))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut text = String::new();
    s.read_to_string(&mut text)
        .map_err(|e| format!("no answer within {limit:?}: {e}"))?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or(format!("not HTTP: {text}"))?;
    if !head.contains(" 200 ") {
        return Err(head.to_string());
    }
    Ok(body.to_string())
}

/// The peak resident memory of a process (`VmHWM`, bytes).
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM")
        * 1024
}

#[test]
fn a_client_that_pipelines_and_never_reads_does_not_hold_up_a_scrape() {
    let c = TestCluster::named("pipeline").topology(STANDALONE).start();
    let port = metrics_port(&c.tree);
    // 1,000 scrapes in one write, and not one answer read while it stays connected.
    let mut hostile = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    hostile
        .set_write_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let requests = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".repeat(1000);
        let _ = hostile.write_all(requests.as_bytes());
        hostile
    });
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..3 {
        let body = scrape_within(port, Duration::from_secs(3))
            .unwrap_or_else(|e| panic!("a scrape beside the pipelining client: {e}"));
        assert!(
            body.contains("mup_supervisord_up{cluster=\"pipeline\"} 1"),
            "{body}"
        );
    }
    let hostile = writer.join().expect("the writer");
    drop(hostile);
}

#[test]
fn clients_that_trickle_a_request_head_on_every_slot_do_not_hold_up_a_scrape() {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    let c = TestCluster::named("trickle").topology(STANDALONE).start();
    let port = metrics_port(&c.tree);
    assert!(scrape_within(port, Duration::from_secs(10)).is_ok());
    // 64 connections, twice the connections served at once, each sending one byte of a head
    // that never ends every 0.5 s, and connecting again when closed.
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let stopped = std::sync::Arc::clone(&stop);
    let trickler = std::thread::spawn(move || {
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let connect = || {
            let s =
                std::net::TcpStream::connect_timeout(&address, Duration::from_millis(500)).ok()?;
            s.set_write_timeout(Some(Duration::from_millis(100))).ok()?;
            Some(s)
        };
        let head = b"GET /metrics HTTP/1.1\r\nX-Slow: ";
        let mut clients: Vec<(Option<std::net::TcpStream>, usize)> =
            (0..64).map(|_| (connect(), 0)).collect();
        while !stopped.load(Ordering::SeqCst) {
            for (client, sent) in &mut clients {
                let byte = head.get(*sent).copied().unwrap_or(b'a');
                let alive = client
                    .as_mut()
                    .is_some_and(|s| s.write_all(&[byte]).is_ok());
                if alive {
                    *sent += 1;
                } else {
                    *client = connect();
                    *sent = 0;
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    std::thread::sleep(Duration::from_secs(1));
    let scrapes: Vec<Result<String, String>> = (0..3)
        .map(|_| scrape_within(port, Duration::from_secs(3)))
        .collect();
    stop.store(true, Ordering::SeqCst);
    trickler.join().expect("the trickling clients");
    for scrape in scrapes {
        let body = scrape.unwrap_or_else(|e| panic!("a scrape beside 64 trickling clients: {e}"));
        assert!(
            body.contains("mup_supervisord_up{cluster=\"trickle\"} 1"),
            "{body}"
        );
    }
}

#[test]
fn a_huge_request_head_is_refused_without_memory_growth() {
    use std::io::{Read, Write};
    let c = TestCluster::named("bighead").topology(STANDALONE).start();
    let port = metrics_port(&c.tree);
    assert!(scrape_within(port, Duration::from_secs(10)).is_ok());
    let exporter = pid_of(&c, "mup-metrics");
    let before = peak_rss(exporter);
    // 16 MB of header fields, written while the answer is read.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.set_write_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut w = s.try_clone().expect("clone");
    let writer = std::thread::spawn(move || {
        let field = format!("X-Filler: {}\r\n", "a".repeat(1000));
        let mut head = String::from("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        while head.len() < 16 * 1024 * 1024 {
            head.push_str(&field);
        }
        head.push_str("\r\n");
        // The exporter stops reading (and closes) long before the end.
        let _ = w.write_all(head.as_bytes());
    });
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    writer.join().expect("the writer");
    let text = String::from_utf8_lossy(&answer);
    let status = text.lines().next().unwrap_or_default();
    assert!(
        status.starts_with("HTTP/1.1 431 "),
        "answer to a 16 MB head: {status:?}"
    );
    let after = peak_rss(exporter);
    assert!(
        after < before + 4 * 1024 * 1024,
        "the exporter's peak memory grew from {before} to {after} bytes"
    );
    // It still serves.
    assert!(scrape_within(port, Duration::from_secs(10)).is_ok());
}

#[test]
fn a_stopped_daemon_is_reported_down_within_the_deadline() {
    let c = TestCluster::named("sigstop").topology(STANDALONE).start();
    let port = metrics_port(&c.tree);
    let up = "mup_supervisord_up{cluster=\"sigstop\"} ";
    assert!(scrape(port).contains(&format!("{up}1")));
    let daemon = c.daemon_pid();
    assert!(send_signal(daemon, "STOP"), "kill -STOP {daemon}");
    let resume = Resume(daemon);
    // Two scrapes at once: each gets its answer within the exporter's 5 s deadline (+ 3 s),
    // inside Prometheus' default scrape timeout of 10 s.
    let scrapes: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(move || scrape_within(port, Duration::from_secs(8))))
        .collect();
    for s in scrapes {
        let body = s
            .join()
            .expect("scrape thread")
            .unwrap_or_else(|e| panic!("a scrape while supervisord is stopped: {e}"));
        assert!(body.contains(&format!("{up}0")), "{body}");
        assert!(!body.contains("node_supervisord_state{"), "{body}");
    }
    drop(resume);
    assert!(wait_until(Duration::from_secs(10), || scrape(port)
        .contains(&format!("{up}1"))));
}
