//! Every path of a cluster tree, and where clusters live under `MUP_HOME`.

use std::path::{Component, Path, PathBuf};

/// `$MUP_HOME`, or `~/.mup` of the caller.
pub(crate) fn mup_home() -> PathBuf {
    match std::env::var_os("MUP_HOME") {
        Some(h) if !h.is_empty() => absolute(Path::new(&h)),
        _ => {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/".into());
            PathBuf::from(home).join(".mup")
        }
    }
}

/// `$MUP_HOME/storage/clusters`: one directory per cluster.
pub(crate) fn clusters_dir() -> PathBuf {
    mup_home().join("storage").join("clusters")
}

/// `<logs>/supervisor-<program>.log`: where supervisord writes a program's output.
pub(crate) fn log_file(logs: &Path, program: &str) -> PathBuf {
    logs.join(format!("supervisor-{program}.log"))
}

/// `<node conf dir>/mongod` (or `mongos`): the node's launcher, which supervisord's
/// `command=` names and which `exec`s the node's binary (see `render::launcher`).
pub(crate) fn launcher(node_conf_dir: &Path, binary: &str) -> PathBuf {
    node_conf_dir.join(binary)
}

/// `<logs>/hooks.log`: the output of the hooks the event listener runs (beside its own log).
pub(crate) fn hooks_log(logs: &Path) -> PathBuf {
    logs.join("hooks.log")
}

/// `$MUP_HOME/storage/.ports.lock`: held while ports are allocated and recorded.
pub(crate) fn ports_lock_file() -> PathBuf {
    mup_home().join("storage").join(".ports.lock")
}

/// The paths of one cluster tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// `root` must be absolute and normalised (see [`absolute`]).
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// The tree of the cluster called `name` under `MUP_HOME`.
    pub fn for_cluster(name: &str) -> Self {
        Self::new(clusters_dir().join(name))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn meta_file(&self) -> PathBuf {
        self.root.join("meta.yaml")
    }
    pub fn supervisor_ini(&self) -> PathBuf {
        self.root.join("supervisor.ini")
    }
    pub fn supervisor_log(&self) -> PathBuf {
        self.root.join("supervisor.log")
    }
    pub fn supervisor_pid(&self) -> PathBuf {
        self.root.join("supervisor.pid")
    }
    /// Held (flock) by every command that changes the cluster.
    pub fn lock_file(&self) -> PathBuf {
        self.root.join(".mup.lock")
    }
    /// Where the event listener appends the cluster's process transitions (rotated to
    /// events.log.1 ... .3).
    pub fn events_log(&self) -> PathBuf {
        self.root.join("events.log")
    }
    /// The old meta.yaml of a migrated PID-tracked cluster.
    pub fn legacy_meta_file(&self) -> PathBuf {
        self.root.join("meta.yaml.legacy")
    }
    /// What mup itself writes in the tree (everything but the nodes' data): `destroy
    /// --keep-data` removes exactly these, and no data directory may overlap one of them.
    pub fn own_entries(&self) -> Vec<PathBuf> {
        let events_backups = (1..=crate::deployment::monitoring::LOG_BACKUPS)
            .map(|i| crate::deployment::monitoring::backup(&self.events_log(), i));
        let mut own = vec![
            self.meta_file(),
            self.legacy_meta_file(),
            self.supervisor_ini(),
            self.supervisor_log(),
            self.supervisor_pid(),
            self.lock_file(),
            self.events_log(),
            self.conf_dir(),
            self.default_logs_dir(),
            self.security_dir(),
        ];
        own.extend(events_backups);
        own
    }
    /// `security/`: the keyFile, the local CA and the nodes' certificates (mode 0700).
    pub fn security_dir(&self) -> PathBuf {
        self.root.join("security")
    }
    pub fn conf_dir(&self) -> PathBuf {
        self.root.join("conf")
    }
    /// `conf/monitoring`: the monitoring programs' files (matched by the include).
    pub fn monitoring_conf_dir(&self) -> PathBuf {
        self.conf_dir().join("monitoring")
    }
    /// `conf/<host>-<port>`
    pub fn node_conf_dir(&self, node_dir: &str) -> PathBuf {
        self.conf_dir().join(node_dir)
    }
    /// `data/<host>-<port>`, unless the topology names another data directory.
    pub fn default_data_dir(&self, node_dir: &str) -> PathBuf {
        self.root.join("data").join(node_dir)
    }
    pub fn default_logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }
    /// The include pattern written into supervisor.ini. It stays relative: supervisord
    /// resolves it against the main file's directory and splits absolute patterns on
    /// whitespace (docs/supervisord.md §3).
    pub const INCLUDE_PATTERN: &'static str = "conf/*/supervisor-*.ini";

    /// `path` relative to the root, for messages.
    pub fn relative<'a>(&self, path: &'a Path) -> &'a Path {
        path.strip_prefix(&self.root).unwrap_or(path)
    }
}

/// `path` made absolute against the current directory and normalised lexically
/// (`.` and `..` removed, no symlinks resolved).
pub(crate) fn absolute(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    };
    normalize(&joined)
}

/// Lexical normalisation of an absolute path.
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// A path from an input file: `~` expanded with `home`, a relative path joined to `base`.
pub(crate) fn resolve(value: &str, home: &Path, base: &Path) -> PathBuf {
    let expanded = if value == "~" {
        home.to_path_buf()
    } else if let Some(rest) = value.strip_prefix("~/") {
        home.join(rest)
    } else {
        PathBuf::from(value)
    };
    if expanded.is_absolute() {
        normalize(&expanded)
    } else {
        normalize(&base.join(expanded))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_tilde_and_relative_paths() {
        let home = Path::new("/home/u");
        let base = Path::new("/c/x");
        assert_eq!(resolve("~/bin", home, base), PathBuf::from("/home/u/bin"));
        assert_eq!(resolve("../bin", home, base), PathBuf::from("/c/bin"));
        assert_eq!(
            resolve("/opt/./m/../b", home, base),
            PathBuf::from("/opt/b")
        );
    }
}
