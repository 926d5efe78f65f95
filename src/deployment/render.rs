//! Renders a cluster into the files of its tree. Pure: no file system, environment or clock.

use crate::deployment::ini;
use crate::deployment::layout::Layout;
use crate::deployment::model::{Cluster, Configured, Kind, Monitor, Role, Service};
use minijinja::{context, Environment, UndefinedBehavior};
use std::path::PathBuf;

/// One file of the tree, fully rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutFile {
    pub path: PathBuf,
    pub contents: String,
    /// Unix permission bits: 0o600 for files holding credentials.
    pub mode: u32,
}

/// `startsecs`: how long a node must stay up before supervisord calls it RUNNING. Below
/// ~5 s an early exit can be read as a successful start (exit detection lags up to ~1 s).
pub(crate) const START_SECS: u64 = 5;
/// `stopwaitsecs`: how long a node has to exit after SIGINT before SIGKILL. mup waits as
/// long when it stops a node process itself.
pub(crate) const STOP_WAIT_SECS: u64 = 30;

/// Files that hold the supervisord credentials are private to the owner.
pub(crate) const PRIVATE: u32 = 0o600;
pub(crate) const PUBLIC: u32 = 0o644;
/// A node's launcher: run by supervisord as the owner.
pub(crate) const LAUNCHER: u32 = 0o700;

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.add_template(
        "supervisor.ini",
        include_str!("../../templates/supervisor.ini.j2"),
    )
    .expect("embedded template parses");
    env.add_template(
        "program.ini",
        include_str!("../../templates/program.ini.j2"),
    )
    .expect("embedded template parses");
    env.add_template(
        "monitor.ini",
        include_str!("../../templates/monitor.ini.j2"),
    )
    .expect("embedded template parses");
    env
}

fn path_str(p: &std::path::Path) -> String {
    p.display().to_string()
}

/// Every file of the tree, in a stable order: per node its config and program files, the
/// monitoring programs' files, then supervisor.ini, then meta.yaml (written last, it marks
/// the tree complete).
pub(crate) fn render(cluster: &Cluster) -> anyhow::Result<Vec<OutFile>> {
    let env = environment();
    let mut files = Vec::new();
    for node in &cluster.nodes {
        files.push(OutFile {
            path: node.config_file.clone(),
            contents: mongo_conf(cluster, node),
            mode: PUBLIC,
        });
        files.push(OutFile {
            path: node.ini_file(),
            contents: program_ini(&env, cluster, node)?,
            mode: PUBLIC,
        });
        files.push(OutFile {
            path: node.launcher(),
            contents: launcher(&cluster.bin_path, node.role),
            mode: LAUNCHER,
        });
    }
    for m in &cluster.monitors {
        files.push(OutFile {
            path: m.ini_file(),
            contents: monitor_ini(&env, cluster, m)?,
            mode: PUBLIC,
        });
    }
    files.push(OutFile {
        path: cluster.layout.supervisor_ini(),
        contents: supervisor_ini(&env, cluster)?,
        mode: PRIVATE,
    });
    files.push(OutFile {
        path: cluster.layout.meta_file(),
        contents: cluster.meta().to_yaml(),
        mode: PRIVATE,
    });
    Ok(files)
}

fn supervisor_ini(env: &Environment, c: &Cluster) -> anyhow::Result<String> {
    // No [group:] for the nodes: each is its own group, so that adding or removing one
    // leaves every other node's group (and process) alone (docs/supervisord.md).
    let mut groups = Vec::new();
    if c.monitor(Service::Metrics).is_some() {
        groups.push(context! {
            name => Service::Metrics.group(),
            programs => Service::Metrics.program(),
            priority => MONITORING_PRIORITY,
        });
    }
    let l = &c.layout;
    Ok(env.get_template("supervisor.ini")?.render(context! {
        name => c.name,
        logfile => ini::escape(&path_str(&l.supervisor_log())),
        pidfile => ini::escape(&path_str(&l.supervisor_pid())),
        identifier => crate::deployment::naming::identifier(&c.name),
        directory => ini::escape(&path_str(l.root())),
        port => c.supervisor_port,
        username => c.supervisor_user,
        password => c.supervisor_password,
        include => Layout::INCLUDE_PATTERN,
        groups => groups,
    })?)
}

fn program_ini(env: &Environment, c: &Cluster, n: &Configured) -> anyhow::Result<String> {
    let binary = n.launcher();
    let conf = n.config_file.clone();
    let description = match (n.role, &n.replica_set, c.kind) {
        (Role::ConfigServer, Some(rs), _) => format!("config server, replica set {rs}"),
        (Role::Mongod, Some(rs), Kind::Sharded) => format!("shard {rs} member"),
        (Role::Mongod, Some(rs), _) => format!("replica set {rs} member"),
        (Role::Mongos, _, _) => "mongos router".to_string(),
        _ => "standalone mongod".to_string(),
    };
    Ok(env.get_template("program.ini")?.render(context! {
        source => n.source,
        description => description,
        cluster => c.name,
        program => n.program,
        startsecs => START_SECS,
        stopwaitsecs => STOP_WAIT_SECS,
        command => ini::escape_command([path_str(&binary).as_str(), "--config", path_str(&conf).as_str()]),
        directory => ini::escape(&path_str(n.directory())),
        logfile => ini::escape_logfile(&path_str(&n.log_file)),
        environment => program_environment(c)?,
    })?)
}

/// A node's launcher, the program supervisord's `command=` names: it `exec`s the node's
/// binary in `bin_path` (same pid, same arguments), so that `command=` stays the same when
/// `mup cluster upgrade` points one node at another version by rewriting this file alone
/// (docs/supervisord.md §4). Its text depends on `bin_path` and the role only.
pub(crate) fn launcher(bin_path: &std::path::Path, role: Role) -> String {
    let binary = path_str(&bin_path.join(role.binary()));
    format!(
        "#!/bin/sh\n# The {} of this node, run by supervisord: written by `mup gen`, pointed at another\n# version by `mup cluster upgrade`.\nexec {} \"$@\"\n",
        role.binary(),
        ini::shell_quote(&binary)
    )
}

/// The `environment=` of every program: HOME and USER (checked when the model was built).
fn program_environment(c: &Cluster) -> anyhow::Result<String> {
    let pair = |key: &str, value: &str| {
        ini::env_pair(key, value).map_err(|why| anyhow::anyhow!("environment {key}: {why}"))
    };
    Ok(format!(
        "{},{}",
        pair("HOME", &c.home)?,
        pair("USER", &c.user)?
    ))
}

/// supervisord's priority of the monitoring group: below the nodes' groups (999), so it starts
/// first and stops after them (the event listener, -1 by default, stops last).
const MONITORING_PRIORITY: i32 = 1;

fn monitor_ini(env: &Environment, c: &Cluster, m: &Monitor) -> anyhow::Result<String> {
    let root = path_str(c.layout.root());
    let (kind, description) = match m.service {
        Service::Events => (
            "event listener",
            "process state changes appended to events.log, hooks run",
        ),
        Service::Metrics => (
            "metrics exporter",
            "Prometheus text on 127.0.0.1, credentials read from the tree",
        ),
    };
    Ok(env.get_template("monitor.ini")?.render(context! {
        kind => kind,
        description => description,
        cluster => c.name,
        listener => m.service == Service::Events,
        listener_stopwaitsecs => crate::deployment::monitoring::LISTENER_STOP_WAIT_SECS,
        program => m.service.program(),
        command => ini::escape_command([
            path_str(&c.mup_binary).as_str(),
            "monitor",
            m.service.meta_type(),
            "--dir",
            root.as_str(),
        ]),
        directory => ini::escape(&root),
        logfile => ini::escape_logfile(&path_str(&m.log_file)),
        environment => program_environment(c)?,
    })?)
}

fn mongo_conf(c: &Cluster, n: &Configured) -> String {
    conf_text(
        n.role,
        &n.program,
        &n.source,
        &c.name,
        &c.version_text,
        &n.conf,
    )
}

/// A node's mongod.conf (or mongos.conf): a header naming the node and the version, then the
/// document. gen writes it, and `mup cluster upgrade` when it moves a node to another version.
pub(crate) fn conf_text(
    role: Role,
    program: &str,
    source: &str,
    cluster: &str,
    version: &str,
    conf: &crate::deployment::yaml::Mapping,
) -> String {
    let body = crate::deployment::yaml::to_string(conf);
    format!(
        "# {} configuration for {program} ({source}) of the mup cluster \"{cluster}\", MongoDB {version}.\n# Generated by `mup gen`: set options in the topology's runtime_config instead of editing here.\n{body}",
        role.binary(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// /bin/sh reads the launcher's quoting back as the exact path, whatever it holds, and the
    /// binary gets the arguments unchanged.
    #[test]
    fn the_launcher_execs_the_binary_of_an_odd_path_with_its_arguments() {
        let t = tempfile::tempdir().expect("tempdir");
        let bin = t.path().join("it's a \"bin\" $HOME 100%");
        std::fs::create_dir(&bin).expect("mkdir");
        let mongod = bin.join("mongod");
        std::fs::write(&mongod, "#!/bin/sh\nprintf '%s|' \"$0\" \"$@\"\n").expect("write");
        std::fs::set_permissions(&mongod, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let launcher_path = t.path().join("launcher");
        std::fs::write(&launcher_path, launcher(&bin, Role::Mongod)).expect("write");
        std::fs::set_permissions(&launcher_path, std::fs::Permissions::from_mode(LAUNCHER))
            .expect("chmod");
        let out = std::process::Command::new(&launcher_path)
            .args(["--config", "/a b/mongod.conf"])
            .output()
            .expect("run the launcher");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{}|--config|/a b/mongod.conf|", mongod.display())
        );
    }
}
