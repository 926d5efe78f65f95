//! Port allocation for `port: 0` nodes and the supervisord HTTP port.

use crate::layout;
use crate::meta;
use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::Path;

/// First port tried for nodes with `port: 0` (the Go mup's base).
pub const NODE_PORT_BASE: u16 = 30000;
/// First port tried for supervisord's HTTP server (the spec's example port).
pub const SUPERVISOR_PORT_BASE: u16 = 9001;

/// True when nothing listens on 127.0.0.1:`port` right now.
pub fn is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Ports recorded by the other clusters under `MUP_HOME` (supervisord and nodes), so that
/// clusters side by side never share one. Unreadable trees are skipped.
pub fn used_by_other_clusters(own_root: &Path) -> BTreeSet<u16> {
    let mut used = BTreeSet::new();
    let Ok(entries) = std::fs::read_dir(layout::clusters_dir()) else {
        return used;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        if layout::normalize(&dir) == own_root {
            continue;
        }
        let file = dir.join("meta.yaml");
        let Ok(m) = meta::load(&file, &file.display().to_string()) else {
            continue;
        };
        if let Some(p) = m.supervisor_port.and_then(|p| u16::try_from(p).ok()) {
            used.insert(p);
        }
        used.extend(m.nodes.iter().map(|n| n.port));
    }
    used
}

/// The first port from `base` upward that is not in `taken` and is free on this machine.
pub fn allocate(base: u16, taken: &BTreeSet<u16>) -> Option<u16> {
    (base..=u16::MAX).find(|p| !taken.contains(p) && is_free(*p))
}
