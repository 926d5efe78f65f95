//! The one home of YAML: serde_yaml is deprecated upstream, so every use of it (parsing the
//! inputs, the mapping and value types of config documents, writing meta.yaml and mongod.conf)
//! goes through this module, and a swap of the crate touches this file only.

use crate::error::{InputError, InputResult};
use std::path::Path;

pub(crate) use serde_yaml::{Mapping, Value};

/// Serializes plain data (string keys) as YAML.
pub(crate) fn to_string<T: serde::Serialize>(value: &T) -> String {
    serde_yaml::to_string(value).expect("plain data with string keys serializes")
}

/// Reads and parses a YAML input file; `shown` names it in messages.
pub(crate) fn load<T: serde::de::DeserializeOwned>(path: &Path, shown: &str) -> InputResult<T> {
    parse(&read(path, shown)?, shown)
}

/// The largest input file mup reads: a topology of a thousand nodes is about 100 KiB.
const MAX_INPUT: u64 = 16 << 20;

/// Reads a whole input file (at most [`MAX_INPUT`] bytes: a path such as `/dev/zero` is
/// refused, not read until memory runs out), mapping errors to a message that names it.
pub(crate) fn read(path: &Path, shown: &str) -> InputResult<String> {
    use std::io::Read;
    let cannot =
        |e: std::io::Error| InputError::new(shown, "", format!("cannot read the file: {e}"));
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_INPUT + 1).read_to_end(&mut bytes))
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_INPUT {
        return Err(InputError::new(
            shown,
            "",
            format!("is larger than {} MiB: refused", MAX_INPUT >> 20),
        ));
    }
    String::from_utf8(bytes)
        .map_err(|e| cannot(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

/// Parses a YAML input; `shown` names it in messages.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(text: &str, shown: &str) -> InputResult<T> {
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
