//! topology.yaml as written by users (the Go mup's schema): parsing only, no decisions.

use crate::error::{InputError, InputResult};
use serde::Deserialize;
use std::path::Path;

/// The whole file. Unknown keys are errors, so a typo never drops a setting.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Topology {
    #[serde(default)]
    pub global: Global,
    #[serde(default)]
    pub mongod_servers: Vec<NodeSpec>,
    #[serde(default)]
    pub config_servers: Vec<NodeSpec>,
    #[serde(default)]
    pub mongos_servers: Vec<NodeSpec>,
    /// Go mup's optional replica-set list; checked against the nodes' `replica_set`.
    #[serde(default)]
    pub replica_sets: Vec<ReplicaSetSpec>,
}

/// `global:` settings every node inherits.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Global {
    /// Default for the `USER` written into `environment=`.
    pub user: Option<String>,
    /// Base directory of the nodes' data directories (`<data_dir>/<host>-<port>`).
    pub data_dir: Option<String>,
    /// Directory of the supervisord-managed log files (default `<cluster>/logs`).
    pub log_dir: Option<String>,
    /// mongod options merged into every node's config file.
    pub runtime_config: Option<serde_yaml::Mapping>,
    /// Accepted for Go mup files; mup deploys locally into the cluster directory.
    pub deploy_dir: Option<String>,
    /// Accepted for Go mup files; configuration always lives in `<cluster>/conf`.
    pub config_dir: Option<String>,
    /// Accepted for Go mup files; mup deploys on this machine only.
    pub ssh_port: Option<i64>,
    /// Accepted for Go mup files; not used by a supervisord deployment.
    pub systemd_config: Option<serde_yaml::Value>,
    pub os_config: Option<serde_yaml::Value>,
    pub resource_control: Option<serde_yaml::Value>,
}

/// One entry of `mongod_servers`, `config_servers` or `mongos_servers`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NodeSpec {
    pub host: Option<String>,
    /// `0` means "allocate a free port".
    pub port: Option<i64>,
    pub replica_set: Option<String>,
    pub priority: Option<f64>,
    pub hidden: Option<bool>,
    pub votes: Option<i64>,
    /// This node's data directory (kept where it is: nothing is moved).
    pub data_dir: Option<String>,
    pub log_dir: Option<String>,
    pub runtime_config: Option<serde_yaml::Mapping>,
    pub deploy_dir: Option<String>,
    pub config_dir: Option<String>,
}

/// An entry of the Go mup's `replica_sets:` list.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplicaSetSpec {
    pub name: String,
    #[serde(default)]
    pub members: Vec<String>,
}

/// Reads and parses a topology file; `shown` is the name used in messages.
pub(crate) fn load(path: &Path, shown: &str) -> InputResult<Topology> {
    let text = read(path, shown)?;
    parse_yaml(&text, shown)
}

/// Reads a whole input file, mapping I/O errors to a message that names it.
pub(crate) fn read(path: &Path, shown: &str) -> InputResult<String> {
    std::fs::read_to_string(path)
        .map_err(|e| InputError::new(shown, "", format!("cannot read the file: {e}")))
}

/// The one place YAML input is parsed (serde_yaml is deprecated upstream; a swap touches this).
pub(crate) fn parse_yaml<T: serde::de::DeserializeOwned>(
    text: &str,
    shown: &str,
) -> InputResult<T> {
    if text.trim().is_empty() {
        return Err(InputError::new(shown, "", "the file is empty"));
    }
    let depth = flow_depth(text);
    if depth > MAX_DEPTH {
        return Err(InputError::new(
            shown,
            "",
            format!("nests {depth} levels of [ ] or {{ }}: more than {MAX_DEPTH} is refused (no mup input needs it, and the YAML parser takes time quadratic in the depth)"),
        ));
    }
    serde_yaml::from_str(text).map_err(|e| InputError::new(shown, "", e.to_string()))
}

/// The deepest nesting accepted in a YAML input.
const MAX_DEPTH: usize = 64;

/// The deepest nesting of flow collections (`[`, `{`) outside quotes and comments.
fn flow_depth(text: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some('\''), '\'') if chars.peek() == Some(&'\'') => {
                chars.next();
            }
            (Some('"'), '\\') => {
                chars.next();
            }
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            // A quote opens a quoted scalar only where a scalar can start (not in `it's`).
            (None, '\'' | '"') if prev.is_whitespace() || "[{,:-".contains(prev) => quote = Some(c),
            (None, '#') if prev.is_whitespace() => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        break;
                    }
                }
            }
            (None, '[' | '{') => {
                depth += 1;
                max = max.max(depth);
            }
            (None, ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
        prev = c;
    }
    max
}

#[cfg(test)]
mod tests {
    #[test]
    fn measures_flow_nesting_outside_quotes_and_comments() {
        assert_eq!(super::flow_depth("a: [1, {b: [2]}]"), 3);
        assert_eq!(super::flow_depth("a: '[[[[' # [[[[\nb: \"{{\\\"\""), 0);
        assert_eq!(super::flow_depth("a: 'it''s [' "), 0);
        assert_eq!(super::flow_depth("a: it's [[\nb: ']'"), 2);
    }
}
