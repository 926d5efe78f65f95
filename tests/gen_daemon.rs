//! Each golden case loads in stock supervisord 4.3: the expected programs in the expected
//! groups, a program started over XML-RPC reaches RUNNING and its port answers,
//! `supervisorctl -c` works on the tree, and an unauthenticated request gets 401.
//! Ports are remapped to free ones so the cases run in parallel beside anything else.

use crate::common::*;
use mup::supervisor::state;
use serde_yaml::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

/// The fixture's topology with every port replaced by a free one; returns the expected
/// `group:program` names, computed here from the topology (not by mup's naming code).
fn remap(case: &Path, dir: &Path) -> BTreeSet<String> {
    let mut topo: Value =
        serde_yaml::from_str(&std::fs::read_to_string(case.join("topology.yaml")).expect("read"))
            .expect("parse");
    let mut expected = BTreeSet::new();
    for (key, prefix) in [
        ("config_servers", "config-server"),
        ("mongod_servers", "mongod"),
        ("mongos_servers", "mongos"),
    ] {
        if let Some(list) = topo.get_mut(key).and_then(Value::as_sequence_mut) {
            for node in list {
                let port = free_port();
                node["port"] = Value::from(port);
                // Each node is its own group, named like its program.
                expected.insert(format!("{prefix}-{port}:{prefix}-{port}"));
            }
        }
    }
    // The Go style's replica_sets list names host:port members; it is checked elsewhere.
    if let Some(m) = topo.as_mapping_mut() {
        m.remove("replica_sets");
    }
    std::fs::write(
        dir.join("topology.yaml"),
        serde_yaml::to_string(&topo).expect("yaml"),
    )
    .expect("write");

    let mut meta: Value =
        serde_yaml::from_str(&std::fs::read_to_string(case.join("meta.yaml")).expect("read"))
            .expect("parse");
    meta["bin_path"] = Value::from(stand_in_bin().display().to_string());
    meta["supervisor_port"] = Value::from(free_port());
    meta["home"] = Value::from(dir.display().to_string());
    // The monitoring programs: the event listener (its own group) unless `events: false`,
    // the exporter (group monitoring) unless `metrics: false`.
    if meta.get("events") != Some(&Value::from(false)) {
        expected.insert("mup-events:mup-events".to_string());
    }
    if meta.get("metrics") != Some(&Value::from(false)) {
        meta["metrics_port"] = Value::from(free_port());
        expected.insert("monitoring:mup-metrics".to_string());
    }
    let m = meta.as_mapping_mut().expect("meta is a mapping");
    m.remove("supervisor_password"); // let gen pick random credentials
    std::fs::write(
        dir.join("meta.yaml"),
        serde_yaml::to_string(&meta).expect("yaml"),
    )
    .expect("write");
    expected
}

fn loads_in_daemon(name: &str) {
    let case = fixtures().join(name);
    let tmp = tempfile::tempdir().expect("tempdir");
    let expected = remap(&case, tmp.path());
    let out = tmp.path().join(
        std::fs::read_to_string(case.join("out-dir"))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "cluster".into()),
    );
    mup(&tmp.path().join("mup-home"))
        .arg("gen")
        .arg(tmp.path().join("topology.yaml"))
        .arg("--meta")
        .arg(tmp.path().join("meta.yaml"))
        .arg("--out")
        .arg(&out)
        .assert()
        .success();

    let daemon = Daemon::start(&out);
    let c = &daemon.client;
    assert_eq!(
        c.get_identification().expect("identification"),
        format!("mup-{}", read_meta(&out)["name"].as_str().expect("name"))
    );
    let infos = c.get_all_process_info().expect("getAllProcessInfo");
    let loaded: BTreeSet<String> = infos.iter().map(|p| p.qualified()).collect();
    assert_eq!(
        loaded, expected,
        "{name}: programs and groups loaded by supervisord"
    );
    let is_node = |p: &&mup::supervisor::ProcessInfo| !p.name.starts_with("mup-");
    assert!(
        infos
            .iter()
            .filter(is_node)
            .all(|p| p.state == state::STOPPED),
        "autostart=false: no node runs yet"
    );
    // The monitoring programs start with the daemon (autostart).
    let monitoring = expected.iter().filter(|e| e.contains(":mup-")).count();
    assert!(
        monitoring > 0,
        "every fixture keeps at least the event listener"
    );
    assert!(wait_until(Duration::from_secs(10), || c
        .get_all_process_info()
        .expect("getAllProcessInfo")
        .iter()
        .filter(|p| !is_node(p) && p.state == state::RUNNING)
        .count()
        == monitoring));

    // Start the first node (a config server when sharded) and wait for RUNNING.
    let first = infos
        .iter()
        .filter(is_node)
        .min_by_key(|p| (!p.group.starts_with("config"), p.name.clone()))
        .expect("at least one program");
    c.start_process(&first.qualified(), false)
        .expect("startProcess");
    let port: u16 = first
        .name
        .rsplit('-')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port in name");
    assert!(
        wait_until(Duration::from_secs(5), || port_answers(port)),
        "{name}: port {port} answers"
    );
    assert!(
        wait_until(Duration::from_secs(10), || c
            .get_process_info(&first.qualified())
            .map(|p| p.state == state::RUNNING)
            .unwrap_or(false)),
        "{name}: {} reaches RUNNING",
        first.qualified()
    );

    // supervisorctl works on the tree (exit 3: the other programs are not running).
    let ctl = std::process::Command::new(supervisorctl())
        .arg("-c")
        .arg(out.join("supervisor.ini"))
        .arg("status")
        .output()
        .expect("run supervisorctl");
    let text = String::from_utf8_lossy(&ctl.stdout);
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(
        rows.len(),
        expected.len(),
        "{name}: supervisorctl status rows:\n{text}"
    );
    // A program that is its own group is shown by its name alone.
    let shown = if first.group == first.name {
        first.name.clone()
    } else {
        first.qualified()
    };
    assert!(
        text.contains(&format!("{shown} ")) && text.contains("RUNNING"),
        "{text}"
    );
    let nodes = expected.iter().filter(|e| !e.contains(":mup-")).count();
    let code = if nodes == 1 { 0 } else { 3 };
    assert_eq!(
        ctl.status.code(),
        Some(code),
        "{name}: supervisorctl exit code\n{text}"
    );

    // No credentials, no control.
    let port = read_meta(&out)["supervisor_port"].as_u64().expect("port");
    let anon = reqwest::blocking::Client::new()
        .post(format!("http://127.0.0.1:{port}/RPC2"))
        .body("<?xml version=\"1.0\"?><methodCall><methodName>supervisor.getState</methodName></methodCall>")
        .send()
        .expect("POST");
    assert_eq!(anon.status().as_u16(), 401);
    let wrong = mup::supervisor::Client::new(port as u16, "mup", "wrong");
    assert_eq!(wrong.get_state(), Err(mup::supervisor::Error::Unauthorized));
}

#[test]
fn daemon_loads_standalone() {
    loads_in_daemon("standalone");
}

#[test]
fn daemon_loads_replica_set() {
    loads_in_daemon("replica-set");
}

#[test]
fn daemon_loads_sharded() {
    loads_in_daemon("sharded");
}

#[test]
fn daemon_loads_go_style() {
    loads_in_daemon("go-style");
}

#[test]
fn daemon_loads_spaces_and_percent() {
    loads_in_daemon("spaces-percent");
}

/// A running process's environment, from /proc.
fn environ(pid: u32) -> std::collections::BTreeMap<String, String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).expect("read environ");
    String::from_utf8_lossy(&raw)
        .split('\0')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// HOME and USER reach a running node and the event listener exactly as meta.yaml gives
/// them, through stock supervisord's `environment=` parser: each character it treats
/// specially (`"`, `'`, `\`, `,`, `=`, `%`, space) arrives as written, and a value built to
/// close the quoting and add a variable adds nothing. (The values it cannot carry are refused
/// by gen: tests/errors.rs.)
#[test]
fn environment_values_reach_the_processes_verbatim() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let base = tmp.path().display().to_string();
    let cases = [
        (
            format!("{base}/a \"b\\c,d=e%f"),
            "it's x,MUPINJECT=/tmp/injected.so,Z='y".to_string(),
        ),
        (
            format!("{base}/it's\\x y"),
            "x\",MUPINJECT=/tmp/injected.so,Z=\"y".to_string(),
        ),
    ];
    for (i, (home, user)) in cases.iter().enumerate() {
        let dir = tmp.path().join(format!("case{i}"));
        std::fs::create_dir(&dir).expect("mkdir");
        let port = free_port();
        std::fs::write(
            dir.join("topology.yaml"),
            format!("mongod_servers:\n  - host: localhost\n    port: {port}\n"),
        )
        .expect("write topology");
        let mut meta = serde_yaml::Mapping::new();
        for (k, v) in [
            ("name", Value::from(format!("env{i}"))),
            ("version", Value::from("7.0.14")),
            (
                "bin_path",
                Value::from(stand_in_bin().display().to_string()),
            ),
            ("supervisor_port", Value::from(free_port())),
            ("metrics", Value::from(false)),
            ("home", Value::from(home.as_str())),
            ("user", Value::from(user.as_str())),
        ] {
            meta.insert(Value::from(k), v);
        }
        std::fs::write(
            dir.join("meta.yaml"),
            serde_yaml::to_string(&meta).expect("yaml"),
        )
        .expect("write meta");
        run_gen(&dir, "tree", &[]).ok();
        let daemon = Daemon::start(&dir.join("tree"));
        let c = &daemon.client;
        let node = format!("mongod-{port}:mongod-{port}");
        c.start_process(&node, false).expect("startProcess");
        let mut pids = Vec::new();
        // The pid is known from the fork; its environment is the program's once it has
        // exec'd its command (until then it is supervisord's own), and a node's command is its
        // launcher, which execs the binary in turn: wait for the binary itself.
        let binary = stand_in_bin().join("mongod").display().to_string();
        for (program, runs) in [
            (node.as_str(), binary.as_str()),
            ("mup-events:mup-events", "monitor"),
        ] {
            let mut pid = 0;
            assert!(
                wait_until(Duration::from_secs(10), || {
                    pid = c.get_process_info(program).map(|p| p.pid).unwrap_or(0);
                    pid > 0
                        && std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                            .is_ok_and(|cmd| cmd.contains(runs))
                        && environ(pid).contains_key("HOME")
                }),
                "{program} runs"
            );
            pids.push((program, pid));
        }
        for (program, pid) in pids {
            let env = environ(pid);
            assert_eq!(env.get("HOME"), Some(home), "{program}: HOME");
            assert_eq!(env.get("USER"), Some(user), "{program}: USER");
            assert!(!env.contains_key("MUPINJECT"), "{program}: {env:?}");
            assert!(!env.contains_key("Z"), "{program}: {env:?}");
        }
    }
}
