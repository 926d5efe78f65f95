//! `mup gen`: topology.yaml + meta.yaml → the cluster tree. Decides what the inputs leave
//! open (ports, credentials, HOME/USER) once, records it in the tree's meta.yaml, renders,
//! and writes atomically.

mod report;

use crate::deployment::layout::{self, Layout};
use crate::deployment::meta::{self, Meta};
use crate::deployment::model::{self, Cluster, Decisions, Outline, Sources};
use crate::deployment::ports::{self, decide_port, PortChoice, PortValue};
use crate::deployment::render::{self, OutFile};
use crate::deployment::topology;
use crate::deployment::write;
use crate::error::{InputError, InputResult};
use crate::ui::Ui;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A compiled cluster: the model, its rendered files and warnings about ignored input.
pub(crate) struct Compiled {
    pub cluster: Cluster,
    pub files: Vec<OutFile>,
    pub warnings: Vec<String>,
}

/// The inputs of a compile, already read (from files, or built by `mup cluster`).
pub(crate) struct Inputs {
    pub topology: topology::Topology,
    /// How the topology is named in messages.
    pub topology_label: String,
    pub meta: Meta,
    pub meta_label: String,
    /// A relative `bin_path` is resolved against this directory.
    pub meta_dir: PathBuf,
}

/// Reads both inputs, decides what is missing and renders the tree (nothing is written).
pub(crate) fn compile(
    topology_path: &Path,
    meta_path: &Path,
    out: Option<&Path>,
) -> anyhow::Result<Compiled> {
    let tf = topology_path.display().to_string();
    let mf = meta_path.display().to_string();
    let inputs = Inputs {
        topology: topology::load(topology_path, &tf)?,
        topology_label: tf,
        meta: meta::load(meta_path, &mf)?,
        meta_label: mf,
        meta_dir: layout::absolute(meta_path)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/")),
    };
    model::check_name(&inputs.meta.name, &inputs.meta_label)?;
    let root = match out {
        Some(dir) => layout::absolute(dir),
        None => layout::clusters_dir().join(&inputs.meta.name),
    };
    compile_inputs(inputs, Layout::new(root), false)
}

/// Compiles read inputs into the tree at `layout`. A PID-tracked (legacy) meta.yaml already
/// in the tree is refused unless `replacing_legacy` (`mup cluster migrate`).
pub(crate) fn compile_inputs(
    inputs: Inputs,
    layout: Layout,
    replacing_legacy: bool,
) -> anyhow::Result<Compiled> {
    let Inputs {
        topology,
        topology_label: tf,
        meta: given,
        meta_label: mf,
        meta_dir,
    } = inputs;
    let outline = model::outline(&topology, &tf)?;
    model::check_name(&given.name, &mf)?;
    let existing = existing_meta(&layout, &given, replacing_legacy)?;
    let decided = decide(&outline, &given, existing.as_ref(), &layout, &mf, &tf)?;
    let src = Sources {
        topology: tf,
        meta: mf,
        meta_dir,
    };
    if let Some((field, why)) = crate::deployment::places::check_tree(&layout, &decided) {
        return Err(InputError::new(field, "", why).into());
    }
    let mut cluster = Cluster::build(&outline, &given, &decided, layout, &src)?;
    // Whether mup creates (created) each data directory, and where it resolves: destroy's proof.
    crate::deployment::data_dirs::record(&mut cluster, existing.as_ref());
    if let Some((field, why)) = crate::deployment::places::check(&cluster, &decided) {
        return Err(InputError::new(&src.topology, field, why).into());
    }
    let files = render::render(&cluster)?;
    Ok(Compiled {
        cluster,
        files,
        warnings: outline.warnings,
    })
}

/// The tree's own meta.yaml, if the output directory already holds a cluster.
fn existing_meta(
    layout: &Layout,
    given: &Meta,
    replacing_legacy: bool,
) -> InputResult<Option<Meta>> {
    let path = layout.meta_file();
    if !path.exists() {
        return Ok(None);
    }
    let shown = path.display().to_string();
    if meta::is_legacy(&path, &shown)? {
        if replacing_legacy {
            return Ok(None);
        }
        return Err(InputError::new(
            "--out",
            "",
            format!(
                "{} holds a PID-tracked cluster (no supervisor_enabled in its meta.yaml): run `mup cluster migrate` instead of overwriting it",
                layout.root().display()
            ),
        ));
    }
    let m = meta::load(&path, &shown)?;
    if m.name != given.name {
        return Err(InputError::new(
            "--out",
            "",
            format!(
                "{} holds the cluster {:?}, not {:?}: choose another directory",
                layout.root().display(),
                m.name,
                given.name
            ),
        ));
    }
    Ok(Some(m))
}

/// Every decision, in order of authority: the given meta.yaml, the topology, the tree's
/// existing meta.yaml, then a fresh choice.
fn decide(
    outline: &Outline,
    given: &Meta,
    existing: Option<&Meta>,
    layout: &Layout,
    mf: &str,
    tf: &str,
) -> InputResult<Decisions> {
    let prior = |f: fn(&Meta) -> Option<String>| f(given).or_else(|| existing.and_then(f));
    let home = prior(|m| m.home.clone())
        .or_else(|| std::env::var("HOME").ok().filter(|h| !h.is_empty()))
        .ok_or_else(|| {
            InputError::new(
                mf,
                "home",
                "not set, and HOME is not set: add home: /your/home",
            )
        })?;
    let user = given
        .user
        .clone()
        .or_else(|| outline.user.clone())
        .or_else(|| existing.and_then(|m| m.user.clone()))
        .or_else(caller_user)
        .ok_or_else(|| {
            InputError::new(mf, "user", "not set, and USER is not set: add user: <name>")
        })?;
    let supervisor_user = prior(|m| m.supervisor_user.clone()).unwrap_or_else(|| "mup".into());
    let supervisor_password = match prior(|m| m.supervisor_password.clone()) {
        Some(p) => p,
        // 24 letters and digits: safe in supervisord's files (no `%`).
        None => crate::deployment::security::random_alnum(24).map_err(|e| {
            InputError::new(
                mf,
                "supervisor_password",
                format!("cannot generate one: {e}"),
            )
        })?,
    };

    let recorded = existing.and_then(|m| m.security.as_ref());
    let security = crate::deployment::security::decide(given.security.as_ref(), recorded, mf)?;
    let events = prior_flag(given, existing, |m| m.events);
    let metrics = prior_flag(given, existing, |m| m.metrics);
    let ports = decide_ports(outline, given, existing, layout, metrics, (mf, tf))?;
    let mup_binary = std::env::current_exe()
        .map(|p| layout::absolute(&p))
        .map_err(|e| {
            InputError::new(
                "mup",
                "binary",
                format!("cannot tell where the running mup binary is ({e}): the monitoring programs run it"),
            )
        })?;
    Ok(Decisions {
        supervisor_port: ports.supervisor,
        supervisor_user,
        supervisor_password,
        home,
        user,
        ports: ports.nodes,
        others: ports.others,
        mup_home: layout::mup_home(),
        events,
        metrics_port: ports.metrics,
        mup_binary,
        security,
    })
}

/// Every port of the cluster, decided by [`decide_port`], and the other clusters they avoid.
struct Ports {
    supervisor: u16,
    /// By `Draft::source()`.
    nodes: BTreeMap<String, u16>,
    /// `None` when metrics are off.
    metrics: Option<u16>,
    others: Vec<ports::Recorded>,
}

/// The daemon's port, then each node's (topology order), then the exporter's (when
/// `metrics`); `mf`/`tf` name the given meta.yaml and the topology in messages.
fn decide_ports(
    outline: &Outline,
    given: &Meta,
    existing: Option<&Meta>,
    layout: &Layout,
    metrics: bool,
    (mf, tf): (&str, &str),
) -> InputResult<Ports> {
    let others = ports::other_clusters(layout.root());
    let reserved = ports::reserved(&others);
    let tree_meta = layout.meta_file().display().to_string();
    let tm = tree_meta.as_str();
    let explicit: BTreeSet<u16> = outline.explicit_ports().into_iter().collect();
    // The daemon's port as given, else as recorded: pinned (moving it would lose the daemon).
    let supervisor_port = decide_port(
        PortChoice {
            pinned: PortValue::of(given.supervisor_port, mf)
                .or_else(|| PortValue::of(existing.and_then(|m| m.supervisor_port), tm)),
            recorded: None,
            base: ports::SUPERVISOR_PORT_BASE,
            file: mf,
            field: "supervisor_port".into(),
        },
        &explicit,
        &reserved,
    )?;
    // Ports of `port: 0` nodes: the one recorded for the same topology entry, else the first
    // free one from 30000 (config servers, then mongods, then routers: the drafts' order).
    let recorded: BTreeMap<&str, PortValue> = existing
        .map(|m| (m, tm))
        .into_iter()
        .chain(std::iter::once((given, mf)))
        .flat_map(|(m, file)| {
            m.nodes
                .iter()
                .map(move |n| (n.source.as_str(), PortValue::new(n.port.into(), file)))
        })
        .collect();
    let mut taken: BTreeSet<u16> = explicit.clone();
    taken.insert(supervisor_port);
    let mut assigned = BTreeMap::new();
    for d in &outline.drafts {
        let source = d.source();
        let port = decide_port(
            PortChoice {
                pinned: PortValue::of(d.port.map(i64::from), tf),
                recorded: recorded.get(source.as_str()).copied(),
                base: ports::NODE_PORT_BASE,
                file: tf,
                field: format!("{source}.port"),
            },
            &taken,
            &reserved,
        )?;
        taken.insert(port);
        assigned.insert(source, port);
    }
    let metrics = metrics
        .then(|| {
            decide_port(
                PortChoice {
                    pinned: PortValue::of(given.metrics_port, mf),
                    recorded: PortValue::of(existing.and_then(|m| m.metrics_port), tm),
                    base: ports::METRICS_PORT_BASE,
                    file: mf,
                    field: "metrics_port".into(),
                },
                &taken,
                &reserved,
            )
        })
        .transpose()?;
    Ok(Ports {
        supervisor: supervisor_port,
        nodes: assigned,
        metrics,
        others,
    })
}

/// An on/off switch of meta.yaml: the given file, else the tree's, else on.
fn prior_flag(given: &Meta, existing: Option<&Meta>, f: fn(&Meta) -> Option<bool>) -> bool {
    f(given).or_else(|| existing.and_then(f)).unwrap_or(true)
}

fn caller_user() -> Option<String> {
    for var in ["USER", "LOGNAME"] {
        if let Ok(u) = std::env::var(var) {
            if !u.is_empty() {
                return Some(u);
            }
        }
    }
    let bound = crate::system::child::Bound {
        time: std::time::Duration::from_secs(10),
        bytes: 4096,
    };
    let out = crate::system::child::run_bounded(std::process::Command::new("id").arg("-un"), bound)
        .ok()?;
    let name = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!name.is_empty()).then_some(name)
}

/// What `mup gen` does with a compiled tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Write,
    Check,
    DryRun,
}

/// Runs `mup gen`; returns false when `--check` found differences.
pub(crate) fn run(
    ui: &Ui,
    topology_path: &Path,
    meta_path: &Path,
    out: Option<&Path>,
    mode: Mode,
) -> anyhow::Result<bool> {
    if mode != Mode::Write {
        return apply(ui, &compile(topology_path, meta_path, out)?, mode);
    }
    // Ports are decided and recorded under the MUP_HOME-wide lock, so that two clusters
    // generated at once never get the same one.
    let _ports = crate::deployment::locks::ports(ui)?;
    let compiled = compile(topology_path, meta_path, out)?;
    // A failed gen leaves no new directory behind (the lock creates the tree's root).
    let new_dirs = write::missing_dirs(compiled.cluster.layout.root());
    let lock = crate::deployment::locks::exclusive(ui, &compiled.cluster.layout)?;
    let result = apply(ui, &compiled, mode);
    if result.is_err() {
        write::remove_new(&new_dirs, &compiled.cluster.layout.lock_file(), lock);
    }
    result
}

/// Writes (or checks, or lists) a compiled tree. The caller holds the cluster lock for `Write`.
pub(crate) fn apply(ui: &Ui, compiled: &Compiled, mode: Mode) -> anyhow::Result<bool> {
    for w in &compiled.warnings {
        warnln!(ui, "{w}");
    }
    let layout = &compiled.cluster.layout;
    let cmp = write::compare(&compiled.cluster, &compiled.files);
    match mode {
        Mode::Check => {
            report::differences(ui, &cmp, &compiled.files, layout)?;
            let secrets = crate::deployment::security::files::drift(&compiled.cluster);
            secrets.iter().try_for_each(|line| outln!(ui, "{line}"))?;
            let clean = cmp.is_clean() && secrets.is_empty();
            if clean {
                outln!(
                    ui,
                    "{}: up to date ({} files)",
                    layout.root().display(),
                    compiled.files.len()
                )?;
            }
            Ok(clean)
        }
        Mode::DryRun => {
            report::would_write(ui, &cmp, &compiled.files, layout)?;
            for p in crate::deployment::security::files::missing(&compiled.cluster) {
                outln!(ui, "  create     {}", layout.relative(&p).display())?;
            }
            for p in crate::deployment::security::files::too_open(&compiled.cluster) {
                outln!(ui, "  chmod 0400 {}", layout.relative(&p).display())?;
            }
            Ok(true)
        }
        Mode::Write => {
            // The keyFile and certificates first: meta.yaml, written last, names them.
            crate::deployment::security::files::ensure(&compiled.cluster)?;
            let created = write::apply(&cmp, &compiled.files)?;
            report::written(ui, &cmp, &created, layout)?;
            Ok(true)
        }
    }
}
