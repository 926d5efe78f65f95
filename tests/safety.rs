//! Regression tests for mup's safety rules, each reproducing an attack or a fault found on an
//! earlier version: mup must never delete, signal or send credentials to what is not its own
//! cluster's, and must never leave a tree half-written. Real supervisord, stand-in nodes.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const ONE_NODE: &str = "mongod_servers:\n  - {host: localhost, port: {p0}}\n";

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `cmd` as the unprivileged user `nobody` when the tests run as root, else as ourselves
/// (the test then says so).
fn as_other_user(program: &str) -> Command {
    if is_root() {
        // setpriv execs the program (no intermediate process): its pid is the program's.
        let mut c = Command::new("setpriv");
        c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]);
        // The caller's PATH may lead into directories that user cannot read.
        let system = Path::new("/usr/bin").join(program);
        c.arg(if system.exists() {
            system
        } else {
            PathBuf::from(program)
        });
        c
    } else {
        skip(
            "as_other_user",
            "not root: the foreign process runs as this user, not another one",
        );
        Command::new(program)
    }
}

/// A process that kills itself when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The pid of the node program `name` of cluster display JSON `d`.
fn node_pid(d: &serde_json::Value, i: usize) -> u32 {
    d["nodes"][i]["pid"]
        .as_u64()
        .expect("a running node has a pid") as u32
}

#[test]
fn destroy_deletes_only_what_mup_created() {
    let keeper_cluster = TestCluster::named("keeper").topology(ONE_NODE).deploy();
    let keeper = keeper_cluster.tree.clone();

    // A data directory that is another cluster's tree, or the home directory: refused.
    for (data_dir, why) in [
        (
            keeper.display().to_string(),
            "overlaps the directory of cluster \"keeper\"".to_string(),
        ),
        ("~".to_string(), "contains the home directory".to_string()),
    ] {
        let text = format!(
            "mongod_servers:\n  - {{host: localhost, port: {}, data_dir: \"{data_dir}\"}}\n",
            free_port()
        );
        let (intruder, out) = TestCluster::named("intruder").topology(&text).try_deploy();
        out.code(2)
            .stderr_has("mongod_servers[0].data_dir")
            .stderr_has(&why);
        assert!(!intruder.tree.exists(), "nothing written");
    }

    // One data directory the user made (with a file of theirs), one mup creates.
    let precious = keeper_cluster.scratch().join("precious");
    std::fs::create_dir_all(&precious).expect("mkdir");
    std::fs::write(precious.join("notes.txt"), "mine").expect("notes");
    let fresh = keeper_cluster.scratch().join("fresh").join("node");
    let text = format!(
        "mongod_servers:\n  - {{host: localhost, port: {{p0}}, data_dir: {}}}\n  - {{host: localhost, port: {{p1}}, data_dir: {}}}\n",
        precious.display(),
        fresh.display()
    );
    let outside = TestCluster::named("outside").topology(&text).deploy();
    assert!(fresh.join("mongod.lock").exists(), "the node ran in it");
    let out = outside
        .run(&["cluster", "destroy", "outside", "--yes"])
        .ok()
        .stdout;
    assert_eq!(
        std::fs::read_to_string(precious.join("notes.txt")).expect("kept"),
        "mine"
    );
    assert!(
        out.contains(&format!(
            "kept {} (mup did not create it)",
            precious.display()
        )),
        "{out}"
    );
    assert!(
        !fresh.exists(),
        "the directory mup created is removed:\n{out}"
    );
    assert!(!outside.tree.exists());

    // keeper still runs.
    keeper_cluster.display().ok();
    assert!(keeper.join("meta.yaml").exists());
}

#[test]
fn keep_data_never_removes_a_data_file() {
    // gen refuses the cluster directory itself as a data directory.
    let (_dotdata, out) = TestCluster::named("dotdata")
        .topology("mongod_servers:\n  - {host: localhost, port: {p0}, data_dir: .}\n")
        .try_deploy();
    out.code(2).stderr_has("contains the cluster directory");

    // A tree recorded before that rule (its meta.yaml says the data dir is the tree itself):
    // --keep-data removes mup's files and no data file.
    let c = TestCluster::named("keepdata").topology(ONE_NODE).deploy();
    let root = c.tree.clone();
    c.run(&["cluster", "stop", "keepdata"]).ok();
    let meta = root.join("meta.yaml");
    let m = read_meta(&root);
    let recorded = m["nodes"][0]["data_dir"].as_str().expect("data_dir");
    let text = std::fs::read_to_string(&meta).expect("meta");
    std::fs::write(
        &meta,
        text.replace(
            &format!("data_dir: {recorded}"),
            &format!("data_dir: {}", root.display()),
        ),
    )
    .expect("edit meta");
    std::fs::write(root.join("collection-0.wt"), "data").expect("data file");
    let out = c
        .run(&["cluster", "destroy", "keepdata", "--keep-data", "--yes"])
        .ok()
        .stdout;
    assert_eq!(
        std::fs::read_to_string(root.join("collection-0.wt")).expect("kept"),
        "data",
        "{out}"
    );
    assert!(
        PathBuf::from(recorded).join("mongod.lock").exists(),
        "the node's data stays"
    );
    assert!(
        !meta.exists() && !root.join("supervisor.ini").exists(),
        "{out}"
    );
}

/// A listener that records every byte it receives into `capture` and never answers.
fn capturing_listener(port: u16, capture: &Path) -> Reaped {
    let script = format!(
        r#"
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", {port})); s.listen(16)
print("listening", flush=True)
def serve(c):
    while True:
        b = c.recv(65536)
        if not b: return
        with open({capture:?}, "ab") as f: f.write(b)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#,
        capture = capture.display().to_string()
    );
    Reaped(spawn_ready(
        as_other_user("python3").args(["-c", &script]),
        "listening",
    ))
}

#[test]
fn credentials_go_only_to_this_clusters_daemon() {
    let c = TestCluster::named("creds").topology(ONE_NODE).deploy();
    c.run(&["cluster", "stop", "creds"]).ok();
    let dir = c.tree.clone();
    let port = supervisor_port(&dir);
    let password = read_meta(&dir)["supervisor_password"]
        .as_str()
        .expect("pw")
        .to_string();

    // Another user takes the stopped cluster's port and records what it is sent.
    let capture_dir = tempfile::tempdir().expect("tempdir");
    let capture = capture_dir.path().join("captured");
    std::fs::write(&capture, "").expect("capture file");
    let mut perm = std::fs::metadata(capture_dir.path())
        .expect("stat")
        .permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o777);
    std::fs::set_permissions(capture_dir.path(), perm.clone()).expect("chmod");
    std::fs::set_permissions(&capture, perm).expect("chmod");
    let listener = capturing_listener(port, &capture);
    let pid = listener.0.id();

    c.run(&["cluster", "list"]).ok().stdout_has("PORT TAKEN");
    for args in [
        vec!["cluster", "display", "creds"],
        vec!["cluster", "start", "creds"],
        vec!["ctl", "--cluster", "creds", "up"],
        vec!["ctl", "--cluster", "creds", "pid"],
    ] {
        c.run(&args)
            .code(1)
            .stderr_has(&format!("port {port} is held by"));
    }
    // A silent listener never makes mup wait for an answer (it used to take 60 s).
    let began = Instant::now();
    let out = c.run(&["ctl", "--cluster", "creds", "status"]).code(1);
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "status took {:?}",
        began.elapsed()
    );
    out.stderr_has(&format!("pid {pid}"));

    // The capture works (so an empty one means nothing was sent), and holds no credential.
    let mut probe = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    std::io::Write::write_all(&mut probe, b"PROBE-MARKER").expect("write");
    drop(probe);
    assert!(wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(&capture)
            .unwrap_or_default()
            .contains("PROBE-MARKER")
    }));
    let captured = std::fs::read_to_string(&capture).expect("capture");
    assert!(
        !captured.contains("Authorization") && !captured.contains(&password),
        "credentials were sent to a foreign listener:\n{captured}"
    );
    drop(listener);
    assert!(wait_until(Duration::from_secs(5), || !port_answers(port)));
    // Once the port is free again the cluster starts as usual.
    c.run(&["cluster", "start", "creds"]).ok();
}

#[test]
fn concurrent_deploys_never_share_a_port() {
    let _ports = allocation_lock();
    let [a, b] = ["race-a", "race-b"].map(|name| {
        TestCluster::named(name)
            .topology("mongod_servers:\n  - {host: localhost, port: 0}\n")
            .guard()
    });
    let bin = stand_in_bin();
    let deploy = |c: &TestCluster| {
        c.deploy_with(c.mup(), &bin).ok();
    };
    std::thread::scope(|s| {
        s.spawn(|| deploy(&a));
        s.spawn(|| deploy(&b));
    });
    let ma = read_meta(&a.tree);
    let mb = read_meta(&b.tree);
    assert_ne!(ma["supervisor_port"], mb["supervisor_port"]);
    assert_ne!(ma["nodes"][0]["port"], mb["nodes"][0]["port"]);
    for c in [&a, &b] {
        c.run(&["cluster", "destroy", &c.name, "--yes"]).ok();
    }
}

#[test]
fn another_clusters_node_is_never_signalled() {
    let victim = TestCluster::named("victim").topology(ONE_NODE).deploy();
    let d = victim.display().json();
    let victim_pid = node_pid(&d, 0);
    let victim_port = victim.ports[0];

    // An explicit port another cluster recorded is refused, naming that cluster.
    let (_thief, out) = TestCluster::named("thief")
        .topology(&format!(
            "mongod_servers:\n  - {{host: localhost, port: {victim_port}}}\n"
        ))
        .try_deploy();
    out.code(2)
        .stderr_has("mongod_servers[0].port")
        .stderr_has("already recorded by cluster \"victim\"");
    let bin = stand_in_bin();

    // A stale mongod.lock whose pid is now another cluster's node: not an orphan, not
    // signalled, and the node starts (mongod locks the file; the pid in it is information).
    let stale = TestCluster::named("stale").topology(ONE_NODE).gen();
    let lock = stale
        .tree
        .join("data")
        .join(format!("localhost-{}", stale.ports[0]))
        .join("mongod.lock");
    std::fs::write(&lock, format!("{victim_pid}\n")).expect("stale lock");
    let out = stale.ok(&["up"]);
    assert!(!out.contains(&victim_pid.to_string()), "{out}");
    stale.ok(&["start"]);

    // A tree (under another MUP_HOME, so its port was not refused) whose node port is the
    // victim's: reported as foreign, never adopted.
    let clash = TestCluster::named("clash")
        .topology(&format!(
            "mongod_servers:\n  - {{host: localhost, port: {victim_port}}}\n"
        ))
        .gen();
    for args in [&["up"][..], &["up", "--adopt"][..]] {
        clash
            .ctl_run(args)
            .code(1)
            .stderr_has("not this cluster's")
            .stderr_has(&format!("pid {victim_pid}"));
    }

    // A legacy (PID-tracked) cluster whose recorded pid is now the victim's node.
    let legacy = TestCluster::named("legacythief").ports(1).guard();
    let legacy_port = legacy.ports[0];
    let legacy_data = legacy.scratch().join("legacy-data");
    std::fs::create_dir_all(&legacy_data).expect("mkdir");
    let legacy_dir = legacy.tree.clone();
    std::fs::create_dir_all(&legacy_dir).expect("mkdir");
    std::fs::write(
        legacy_dir.join("meta.yaml"),
        format!(
            "name: legacythief\nversion: \"7.0.14\"\nbin_path: {}\nnodes:\n  - type: mongod\n    host: localhost\n    port: {legacy_port}\n    data_dir: {}\n    config_file: /nonexistent/mongod.conf\n    pid: {victim_pid}\n",
            bin.display(),
            legacy_data.display()
        ),
    )
    .expect("legacy meta");
    {
        let _ports = allocation_lock();
        legacy
            .run(&["cluster", "migrate", "legacythief"])
            .ok()
            .stdout_has("not signalled");
    }
    legacy
        .run(&["cluster", "destroy", "legacythief", "--yes"])
        .ok();

    assert!(
        pid_alive(victim_pid),
        "the victim's node was never signalled"
    );
    let d = victim.display().ok().json();
    assert_eq!(node_pid(&d, 0), victim_pid);
}

#[test]
fn a_dead_daemon_never_hides_running_nodes() {
    let c = TestCluster::named("orphaned").topology(ONE_NODE).deploy();
    let dir = c.tree.clone();
    let d = c.display().json();
    let node = node_pid(&d, 0);

    // Logs are the owner's only.
    let log = PathBuf::from(d["nodes"][0]["log_file"].as_str().expect("log"));
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&log) & 0o077, 0, "{} is private", log.display());
    assert_eq!(mode(log.parent().expect("dir")), 0o700);

    let daemon = d["supervisord"]["pid"].as_u64().expect("daemon pid") as u32;
    assert!(send_signal(daemon, "9"), "kill -9 {daemon}");
    assert!(wait_until(Duration::from_secs(5), || !pid_alive(daemon)));

    let d = c.display().code(3).json();
    assert_eq!(d["nodes"][0]["state"], "UNSUPERVISED", "{d}");
    assert_eq!(node_pid(&d, 0), node);
    c.run(&["cluster", "display", "orphaned"])
        .stdout_has("run without supervisord");

    // The suggestion names the cluster.
    c.run(&["ctl", "--cluster", "orphaned", "up"])
        .code(1)
        .stderr_has(&format!("mup ctl --dir {} up --adopt", dir.display()));

    c.run(&["cluster", "stop", "orphaned"])
        .ok()
        .stderr_has("run without supervisord");
    assert!(!pid_alive(node), "the unsupervised node was stopped");
}

#[test]
fn a_daemon_whose_port_changed_is_still_stopped() {
    let c = TestCluster::named("moved").topology(ONE_NODE).start();
    let daemon = c.client().get_pid().expect("pid");
    let node = c.pids()[&format!("mongod-{}", c.ports[0])];
    // Regenerate with another supervisord port while the daemon runs.
    let meta = c.tmp.path().join("meta.yaml");
    let text = std::fs::read_to_string(&meta).expect("meta");
    let old = supervisor_port(&c.tree);
    let new = free_port();
    std::fs::write(
        &meta,
        text.replace(
            &format!("supervisor_port: {old}"),
            &format!("supervisor_port: {new}"),
        ),
    )
    .expect("edit");
    c.gen();
    c.ctl_run(&["status"])
        .code(1)
        .stderr_has("does not listen on 127.0.0.1:");
    let out = c.ok(&["down"]);
    assert!(out.contains("stopped with SIGTERM"), "{out}");
    assert!(!pid_alive(daemon) && !pid_alive(node), "{out}");
}

#[test]
fn the_lock_is_private_and_waiting_for_it_is_bounded() {
    let c = TestCluster::named("locked").topology(ONE_NODE).gen();
    let lock = c.tree.join(".mup.lock");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&lock).expect("lock").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // A holder that never lets go: mup gives up after MUP_LOCK_TIMEOUT and names it.
    let holder = Reaped(spawn_ready(
        Command::new("python3")
            .args([
                "-c",
                "import fcntl, sys, time; f = open(sys.argv[1]); fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)",
            ])
            .arg(&lock),
        "held",
    ));
    let out = c
        .mup()
        .env("MUP_LOCK_TIMEOUT", "1")
        .args(["ctl", "--dir", "tree", "up"])
        .output()
        .expect("mup");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("held by pid {}", holder.0.id())) && err.contains("python3"),
        "{err}"
    );
}

#[test]
fn two_trees_with_one_name_never_drive_each_other() {
    let a = TestCluster::named("twin").topology(ONE_NODE).gen();
    let port = supervisor_port(&a.tree);
    let b_dir = tempfile::tempdir().expect("tempdir");
    let b_port = free_port();
    std::fs::write(
        b_dir.path().join("topology.yaml"),
        format!("mongod_servers:\n  - {{host: localhost, port: {b_port}}}\n"),
    )
    .expect("topo");
    std::fs::write(
        b_dir.path().join("meta.yaml"),
        format!(
            "name: twin\nversion: \"7.0.14\"\nbin_path: {}\nsupervisor_port: {port}\nhome: {}\n",
            stand_in_bin().display(),
            b_dir.path().display()
        ),
    )
    .expect("meta");
    run_gen(b_dir.path(), "tree", &[]).ok();
    a.ok(&["up"]);
    a.ok(&["start"]);
    let before = a.pids();

    let b = |args: &[&str]| {
        let mut cmd = mup(&b_dir.path().join("mup-home"));
        cmd.current_dir(b_dir.path());
        run_mup(cmd, &[&["ctl", "--dir", "tree"][..], args].concat())
    };
    let a_ini = a.tree.join("supervisor.ini").display().to_string();
    for args in [&["up"][..], &["status"][..], &["stop"][..]] {
        b(args)
            .code(1)
            .stderr_has("not this tree's supervisord")
            .stderr_has(&a_ini);
    }
    // Nothing of B runs: down says so and touches nothing.
    b(&["down"]).ok();
    assert_eq!(a.pids(), before, "A's programs were not touched");
    assert!(port_answers(a.ports[0]));
}

#[test]
fn smaller_input_and_listing_faults() {
    let dir = tempfile::tempdir().expect("tempdir");
    let meta = format!(
        "name: small\nversion: \"7.0.14\"\nbin_path: {}\nsupervisor_port: {}\n",
        stand_in_bin().display(),
        free_port()
    );
    std::fs::write(dir.path().join("meta.yaml"), &meta).expect("meta");

    // A path with %(here)s would break supervisord: refused.
    std::fs::write(
        dir.path().join("topology.yaml"),
        format!(
            "mongod_servers:\n  - {{host: localhost, port: {}, data_dir: \"d%(here)s\"}}\n",
            free_port()
        ),
    )
    .expect("topo");
    run_gen(dir.path(), "tree", &[])
        .code(2)
        .stderr_has("mongod_servers[0].data_dir")
        .stderr_has("%(");

    // Deeply nested YAML is refused at once instead of parsing in quadratic time.
    let deep = format!(
        "mongod_servers:\n  - host: localhost\n    port: {}\n    runtime_config:\n      a: {}{}\n",
        free_port(),
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    std::fs::write(dir.path().join("topology.yaml"), deep).expect("topo");
    run_gen(dir.path(), "tree", &[])
        .code(2)
        .stderr_has("nests 50000 levels");
    assert!(!dir.path().join("tree").exists());

    // `cluster list` names a cluster whose meta.yaml does not parse.
    let home = dir.path().join("mup-home");
    let broken = home.join("storage/clusters/broken");
    std::fs::create_dir_all(&broken).expect("mkdir");
    std::fs::write(broken.join("meta.yaml"), "name: [\n").expect("broken meta");
    let out = run_mup(mup(&home), &["cluster", "list"])
        .ok()
        .stderr_has(&broken.join("meta.yaml").display().to_string());
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("broken") && l.contains("UNREADABLE")),
        "{}",
        out.stdout
    );
}

/// True when a process other than ours holds a flock on `lock` (probed with flock(1)).
fn flock_held(lock: &Path) -> bool {
    let status = Command::new("flock")
        .args(["--nonblock", "--conflict-exit-code", "99"])
        .arg(lock)
        .arg("true")
        .status()
        .expect("run flock(1)");
    status.code() == Some(99)
}

/// Moves `dir` aside and puts a symlink to `target` in its place.
fn swap_for_symlink(dir: &Path, target: &Path) {
    let aside = dir.with_extension("aside");
    std::fs::rename(dir, &aside).expect("move the directory aside");
    std::os::unix::fs::symlink(target, dir).expect("symlink");
}

#[test]
fn destroy_never_deletes_through_a_symlinked_parent() {
    // B runs under the real supervisord; its node flock-holds its mongod.lock.
    let b = TestCluster::named("symvictim").topology(ONE_NODE).deploy();
    let victim_port = b.ports[0];
    let victim_data = b.tree.join("data");
    let victim_node = victim_data.join(format!("localhost-{victim_port}"));
    assert!(
        flock_held(&victim_node.join("mongod.lock")),
        "B's node holds its lock"
    );
    let d = b.display().json();
    let victim_pid = node_pid(&d, 0);

    // A: two data directories mup creates outside its tree, named like B's node directory
    // and like a directory of the user's.
    let q = b.scratch().join("q");
    let u = b.scratch().join("u");
    let text = format!(
        "mongod_servers:\n  - {{host: localhost, port: {{p0}}, data_dir: {}}}\n  - {{host: localhost, port: {{p1}}, data_dir: {}}}\n",
        q.join(format!("localhost-{victim_port}")).display(),
        u.join("mine").display()
    );
    let a = TestCluster::named("symstale").topology(&text).deploy();
    a.run(&["cluster", "stop", "symstale"]).ok();
    let recorded = read_meta(&a.tree)["nodes"][0]["data_dir_resolved"].clone();
    let created = std::fs::canonicalize(q.join(format!("localhost-{victim_port}")))
        .expect("resolves")
        .display()
        .to_string();

    // The parents become symlinks: one to B's data/, one to the user's own directory.
    swap_for_symlink(&q, &victim_data);
    let users = b.scratch().join("users-own");
    std::fs::create_dir_all(users.join("mine")).expect("mkdir");
    std::fs::write(users.join("mine").join("notes.txt"), "mine").expect("notes");
    swap_for_symlink(&u, &users);

    let out = a
        .run(&["cluster", "destroy", "symstale", "--yes"])
        .ok()
        .stdout;
    assert!(
        victim_node.join("mongod.lock").exists() && flock_held(&victim_node.join("mongod.lock")),
        "B's data directory is intact and still locked by its node:\n{out}"
    );
    assert_eq!(
        std::fs::read_to_string(users.join("mine").join("notes.txt")).expect("kept"),
        "mine",
        "{out}"
    );
    for kept in [q.join(format!("localhost-{victim_port}")), u.join("mine")] {
        assert!(
            out.contains(&format!("kept {} (it now resolves to", kept.display())),
            "{out}"
        );
    }
    assert!(std::fs::symlink_metadata(&q).is_ok_and(|m| m.is_symlink()));
    assert!(!a.tree.exists(), "A's own tree is gone");
    assert!(pid_alive(victim_pid), "B's node was not touched");
    assert_eq!(
        recorded.as_str(),
        Some(created.as_str()),
        "gen recorded where the directory resolved"
    );
    let d = b.display().ok().json();
    assert_eq!(node_pid(&d, 0), victim_pid);
}

#[test]
fn destroy_keeps_a_data_dir_that_a_running_node_locks() {
    // A: a data directory mup created outside the tree; A is stopped.
    let dirs = tempfile::tempdir().expect("tempdir");
    let real = dirs.path().join("real").join("node");
    let on = |data: &Path| {
        format!(
            "mongod_servers:\n  - {{host: localhost, port: {{p0}}, data_dir: {}}}\n",
            data.display()
        )
    };
    let a = TestCluster::named("lockowner")
        .topology(&on(&real))
        .deploy();
    a.run(&["cluster", "stop", "lockowner"]).ok();

    // B reaches the same directory through an alias and runs in it: deployed in a directory
    // of its own (gen refuses a data directory that already resolves into A's), which then
    // becomes a symlink to A's while B is stopped.
    let alias = dirs.path().join("alias");
    let b = TestCluster::named("lockalias")
        .topology(&on(&alias.join("node")))
        .deploy();
    b.run(&["cluster", "stop", "lockalias"]).ok();
    std::fs::remove_dir_all(&alias).expect("rm alias");
    std::os::unix::fs::symlink(dirs.path().join("real"), &alias).expect("symlink");
    b.run(&["cluster", "start", "lockalias"]).ok();
    wait_started(&b.tree);
    assert!(
        flock_held(&real.join("mongod.lock")),
        "B's node holds the lock"
    );

    let out = a
        .run(&["cluster", "destroy", "lockowner", "--yes"])
        .ok()
        .stdout_has(&format!(
            "kept {} (its mongod.lock is locked by a running process",
            real.display()
        ))
        .stdout;
    assert!(real.join("mongod.lock").exists(), "{out}");
    assert!(
        flock_held(&real.join("mongod.lock")),
        "B's node still runs in it"
    );
    b.display().ok();
}

#[test]
fn keep_data_keeps_data_that_resolves_into_the_tree() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let q = dirs.path().join("q");
    let text = format!(
        "mongod_servers:\n  - {{host: localhost, port: {{p0}}, data_dir: {}}}\n",
        q.join("node").display()
    );
    let c = TestCluster::named("keepalias").topology(&text).deploy();
    c.run(&["cluster", "stop", "keepalias"]).ok();
    // The data moves into the tree's logs/ and its old place becomes a symlink to it; conf/
    // becomes a symlink to a directory of the user's.
    let root = c.tree.clone();
    let moved = root.join("logs").join("q");
    std::fs::rename(&q, &moved).expect("move the data");
    std::os::unix::fs::symlink(&moved, &q).expect("symlink");
    std::fs::write(moved.join("node").join("collection-0.wt"), "data").expect("data file");
    let users = dirs.path().join("users-conf");
    std::fs::create_dir_all(&users).expect("mkdir");
    std::fs::write(users.join("notes.txt"), "mine").expect("notes");
    std::fs::remove_dir_all(root.join("conf")).expect("rm conf");
    std::os::unix::fs::symlink(&users, root.join("conf")).expect("symlink");

    let out = c
        .run(&["cluster", "destroy", "keepalias", "--keep-data", "--yes"])
        .ok()
        .stdout;
    assert_eq!(
        std::fs::read_to_string(moved.join("node").join("collection-0.wt")).expect("kept"),
        "data",
        "{out}"
    );
    assert!(moved.join("node").join("mongod.lock").exists(), "{out}");
    assert_eq!(
        std::fs::read_to_string(users.join("notes.txt")).expect("kept"),
        "mine"
    );
    assert!(
        std::fs::symlink_metadata(root.join("conf")).is_err(),
        "the symlink itself is mup's entry, removed as a link:\n{out}"
    );
    assert!(!root.join("meta.yaml").exists(), "{out}");
}

/// A cluster directory moved to another disk and replaced by a symlink: destroy removes the
/// link, never anything through it, and says that the directory it points to is kept (not
/// "destroyed" with the data silently left behind).
#[test]
fn destroy_of_a_symlinked_cluster_directory_removes_the_link_and_names_what_it_keeps() {
    let c = TestCluster::named("movedtree").topology(ONE_NODE).deploy();
    c.run(&["cluster", "stop", "movedtree"]).ok();
    let link = c.tree.clone();
    let moved = std::fs::canonicalize(c.scratch())
        .expect("resolves")
        .join("moved");
    std::fs::rename(&link, &moved).expect("move the tree");
    std::os::unix::fs::symlink(&moved, &link).expect("symlink");

    let out = c
        .run(&["cluster", "destroy", "movedtree", "--yes"])
        .ok()
        .stdout_has(&format!(
            "kept {} ({} is a symlink to it",
            moved.display(),
            link.display()
        ))
        .stdout;
    assert!(
        std::fs::symlink_metadata(&link).is_err(),
        "the link is gone"
    );
    for kept in ["meta.yaml", "supervisor.ini", "conf", "data"] {
        assert!(moved.join(kept).exists(), "{kept} kept: {out}");
    }
}

/// Tests that only root can run (another user's view, a mount): ignored with the reason in
/// a plain `cargo test`; `.ci/run`, which runs as root, runs them with
/// `cargo test --test integration -- --ignored needs_root`.
mod needs_root {
    use super::*;

    const NEEDS_ROOT: &str =
        "this test needs root: run it as root (cargo test --test integration -- --ignored needs_root)";

    /// The cluster lock file (mode 0600) cannot be opened by another user, even one who can
    /// reach its directory.
    #[test]
    #[ignore = "needs root (opens the file as user nobody); as root: cargo test --test integration -- --ignored needs_root"]
    fn the_lock_file_is_closed_to_other_users() {
        assert!(is_root(), "{NEEDS_ROOT}");
        use std::os::unix::fs::PermissionsExt;
        let c = TestCluster::named("lockmode").topology(ONE_NODE).gen();
        let lock = c.tree.join(".mup.lock");
        // Let another user reach the directory, so only the file's own mode decides.
        for d in [c.tmp.path(), c.tree.as_path()] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o711)).expect("chmod");
        }
        let control = c.tree.join("readable");
        std::fs::write(&control, "x").expect("control");
        std::fs::set_permissions(&control, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let open = |p: &Path| {
            as_other_user("python3")
                .args(["-c", "import sys; open(sys.argv[1])"])
                .arg(p)
                .output()
                .expect("python3")
        };
        assert!(
            open(&control).status.success(),
            "the directory is reachable"
        );
        let o = open(&lock);
        assert!(!o.status.success());
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("Permission denied"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// Every file and directory under `root` with its mode and contents.
    fn snapshot(root: &Path) -> Vec<(String, u32, Vec<u8>)> {
        use std::os::unix::fs::PermissionsExt;
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
                let p = e.path();
                let m = std::fs::symlink_metadata(&p).expect("stat");
                let rel = p.strip_prefix(root).expect("under").display().to_string();
                let contents = if m.is_dir() {
                    stack.push(p.clone());
                    Vec::new()
                } else {
                    std::fs::read(&p).expect("read")
                };
                out.push((rel, m.permissions().mode(), contents));
            }
        }
        out.sort();
        out
    }

    /// A small tmpfs, unmounted when dropped.
    struct Tmpfs(PathBuf);

    impl Drop for Tmpfs {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }

    #[test]
    #[ignore = "needs root (mounts a tmpfs); as root: cargo test --test integration -- --ignored needs_root"]
    fn a_gen_that_fails_midway_leaves_the_tree_as_it_was() {
        assert!(is_root(), "{NEEDS_ROOT}");
        let scratch = tempfile::tempdir().expect("tempdir");
        let mnt = scratch.path().join("mnt");
        std::fs::create_dir(&mnt).expect("mkdir");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"])
            .arg(&mnt)
            .status()
            .expect("mount");
        assert!(
            status.success(),
            "cannot mount a tmpfs on {}",
            mnt.display()
        );
        let _mount = Tmpfs(mnt.clone());
        let ports: Vec<u16> = (0..6).map(|_| free_port()).collect();
        let topo = |n: usize, cache: &str| {
            let mut t = format!(
                "global:\n  runtime_config:\n    standin:\n      tag: {cache}\nmongod_servers:\n"
            );
            for p in &ports[..n] {
                t.push_str(&format!(
                    "  - {{host: localhost, port: {p}, replica_set: rs0}}\n"
                ));
            }
            t
        };
        std::fs::write(scratch.path().join("topology.yaml"), topo(3, "first")).expect("topo");
        std::fs::write(
            scratch.path().join("meta.yaml"),
            format!(
                "name: full\nversion: \"7.0.14\"\nbin_path: {}\nsupervisor_port: {}\nhome: /tmp\n",
                stand_in_bin().display(),
                free_port()
            ),
        )
        .expect("meta");
        let tree = mnt.join("tree");
        run_gen(scratch.path(), tree.to_str().expect("utf8"), &[]).ok();
        let before = snapshot(&mnt);

        // Fill the file system, leaving room for a few of the new files but not all.
        let mut i = 0;
        while std::fs::write(mnt.join(format!("fill-{i}")), vec![0u8; 4096]).is_ok() {
            i += 1;
        }
        let _ = std::fs::remove_file(mnt.join(format!("fill-{i}")));
        for j in 1..=3 {
            std::fs::remove_file(mnt.join(format!("fill-{}", i - j))).expect("free a page");
        }
        let filled = snapshot(&mnt);

        std::fs::write(scratch.path().join("topology.yaml"), topo(6, "second")).expect("topo");
        run_gen(scratch.path(), tree.to_str().expect("utf8"), &[])
            .code(1)
            .stderr_has("nothing was changed");
        assert_eq!(snapshot(&mnt), filled, "the tree is exactly as before");
        assert!(
            filled.len() > before.len(),
            "the filler files are part of it"
        );
    }
}
