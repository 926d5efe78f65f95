//! Ports: the one decision of every port a cluster uses (the daemon's, the exporter's, each
//! node's: given, recorded or allocated), and what every other cluster under `MUP_HOME` has
//! recorded (running or not), so no two clusters share a port or a data directory. Allocation and recording happen under the MUP_HOME-wide port lock
//! ([`crate::deployment::locks::ports`]).

use crate::deployment::layout;
use crate::deployment::meta;
use crate::error::{InputError, InputResult};
use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

/// First port tried for nodes with `port: 0` (the Go mup's base).
pub(crate) const NODE_PORT_BASE: u16 = 30000;
/// First port tried for supervisord's HTTP server.
pub(crate) const SUPERVISOR_PORT_BASE: u16 = 9001;
/// First port tried for the Prometheus exporter.
pub(crate) const METRICS_PORT_BASE: u16 = 9401;

/// True when nothing listens on 127.0.0.1:`port` right now.
pub(crate) fn is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// What one other cluster under `MUP_HOME` has recorded in its meta.yaml.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Recorded {
    pub name: String,
    pub root: PathBuf,
    /// Its supervisord port, its exporter's port and every node port.
    pub ports: BTreeSet<u16>,
    pub data_dirs: Vec<PathBuf>,
    /// Where its MongoDB binaries are.
    pub bin_path: Option<PathBuf>,
}

/// Every other cluster under `MUP_HOME`. A directory whose meta.yaml cannot be read still
/// reserves its directory (its ports are unknown).
pub(crate) fn other_clusters(own_root: &Path) -> Vec<Recorded> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(layout::clusters_dir()) else {
        return found;
    };
    for entry in entries.flatten() {
        let root = layout::normalize(&entry.path());
        if root == own_root || !root.is_dir() {
            continue;
        }
        let mut r = Recorded {
            name: entry.file_name().to_string_lossy().into_owned(),
            root: root.clone(),
            ..Recorded::default()
        };
        let file = root.join("meta.yaml");
        if let Ok(m) = meta::load(&file, &file.display().to_string()) {
            r.ports
                .extend(m.supervisor_port.and_then(|p| u16::try_from(p).ok()));
            r.ports
                .extend(m.metrics_port.and_then(|p| u16::try_from(p).ok()));
            r.ports.extend(m.nodes.iter().map(|n| n.port));
            r.bin_path = Some(PathBuf::from(&m.bin_path));
            r.data_dirs = m
                .nodes
                .iter()
                .filter_map(|n| n.data_dir.as_ref().map(PathBuf::from))
                .collect();
        }
        found.push(r);
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

/// Port → the name of the other cluster that recorded it.
pub(crate) fn reserved(others: &[Recorded]) -> BTreeMap<u16, &str> {
    others
        .iter()
        .flat_map(|r| r.ports.iter().map(move |p| (*p, r.name.as_str())))
        .collect()
}

/// The first port from `base` upward that is not in `taken` and is free on this machine.
pub(crate) fn allocate(base: u16, taken: &BTreeSet<u16>) -> Option<u16> {
    (base..=u16::MAX).find(|p| !taken.contains(p) && is_free(*p))
}

/// A port as a file gives it (any integer: checked when used), and that file for messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PortValue<'a> {
    port: i64,
    file: &'a str,
}

impl<'a> PortValue<'a> {
    pub(crate) fn new(port: i64, file: &'a str) -> Self {
        PortValue { port, file }
    }

    pub(crate) fn of(port: Option<i64>, file: &'a str) -> Option<Self> {
        port.map(|p| PortValue::new(p, file))
    }
}

/// One port to decide: the daemon's, the exporter's or a node's.
pub(crate) struct PortChoice<'a> {
    /// The value the input fixes: used as it is, or refused.
    pub pinned: Option<PortValue<'a>>,
    /// The value the tree recorded: kept unless taken by now.
    pub recorded: Option<PortValue<'a>>,
    /// Where a fresh choice starts.
    pub base: u16,
    /// How messages name the field (and the file, when no port is free).
    pub file: &'a str,
    pub field: String,
}

/// The one port decision. A pinned value must be a port (1..65535) that no other cluster under
/// MUP_HOME records; a recorded one must be a port, and is kept unless `taken` holds it; else
/// the first free port from the base that neither `taken` nor another cluster uses. Errors name
/// the file the value came from, the field and the value.
pub(crate) fn decide_port(
    choice: PortChoice,
    taken: &BTreeSet<u16>,
    reserved: &BTreeMap<u16, &str>,
) -> InputResult<u16> {
    let field = choice.field.as_str();
    let checked = |v: PortValue| -> InputResult<u16> {
        u16::try_from(v.port)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| {
                InputError::new(
                    v.file,
                    field,
                    format!("{} is not a port: use 1..65535", v.port),
                )
            })
    };
    if let Some(v) = choice.pinned {
        let port = checked(v)?;
        return match reserved.get(&port) {
            Some(other) => Err(InputError::new(
                v.file,
                field,
                format!(
                    "{port} is already recorded by cluster {other:?} (under {}): pick another port",
                    layout::clusters_dir().display()
                ),
            )),
            None => Ok(port),
        };
    }
    if let Some(v) = choice.recorded {
        let port = checked(v)?;
        if !taken.contains(&port) {
            return Ok(port);
        }
    }
    let avoid: BTreeSet<u16> = taken
        .union(&reserved.keys().copied().collect())
        .copied()
        .collect();
    allocate(choice.base, &avoid)
        .ok_or_else(|| InputError::new(choice.file, field, "no free port found: set one"))
}

#[cfg(test)]
mod tests {
    use crate::system::procs;
    use std::net::TcpListener;

    /// The kernel's ephemeral range (32768–60999 by default): with nothing listening on such a
    /// port, repeated probes sweep their source ports across it and one of them is the port
    /// itself (the first pass uses ports of the range's parity, so an even port is hit within
    /// some 30,000 probes here). The probe must never take that self-connection for a listener.
    #[test]
    fn a_port_in_the_ephemeral_range_is_not_taken_for_listening() {
        let port = (40_000..60_000u16)
            .step_by(2)
            .find(|p| TcpListener::bind(("127.0.0.1", *p)).is_ok())
            .expect("a free even port in the ephemeral range");
        for attempt in 0..60_000 {
            assert!(
                !procs::listening("127.0.0.1", port),
                "probe {attempt} of 127.0.0.1:{port}, where nothing listens, said it listens"
            );
        }
        // Nothing was left holding the port (a closed self-connection in TIME_WAIT would).
        assert!(TcpListener::bind(("127.0.0.1", port)).is_ok());
    }
}
