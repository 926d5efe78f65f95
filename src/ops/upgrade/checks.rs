//! What an upgrade refuses before it changes anything (docs/mongodb.md §4): a jump of more
//! than one major release, a downgrade, and a featureCompatibilityVersion the new binary
//! cannot start on (or, for a new major, one below the current major, which the server's
//! procedure requires first). Pure: the versions come from the survey.

use super::plan::{fcv_of, State};
use crate::deployment::model::Version;
use crate::error::InputError;

/// `target` checked against the versions the nodes run (and meta.yaml records) and the
/// cluster's featureCompatibilityVersion; an [`InputError`] (exit 2) naming both versions.
pub(crate) fn check(state: &State, target: &str) -> Result<(), InputError> {
    let want = Version::parse(target)
        .ok_or_else(|| refuse(format!("{target:?} is not a MongoDB version like 8.0.4")))?;
    let mut known: Vec<(Version, &str)> = state
        .nodes
        .iter()
        .filter_map(|n| n.version.as_deref())
        .chain(std::iter::once(state.recorded.as_str()))
        .filter_map(|v| Version::parse(v).map(|p| (p, v)))
        .collect();
    known.sort();
    let (Some(&(low, low_text)), Some(&(high, high_text))) = (known.first(), known.last()) else {
        return Ok(());
    };
    if want < high {
        return Err(refuse(format!(
            "{target} is older than {high_text}, which the cluster runs: mup cluster upgrade does not downgrade"
        )));
    }
    if want.major > low.major + 1 {
        return Err(refuse(format!(
            "cannot upgrade from {low_text} to {target}: MongoDB upgrades one major release at a time ({} then {}); upgrade to {}.0 first",
            fcv_of(low),
            fcv_of(want),
            low.major + 1
        )));
    }
    let Some(fcv_text) = state.fcv.as_deref() else {
        return Ok(());
    };
    let Some(fcv) = Version::parse(fcv_text) else {
        return Err(refuse(format!(
            "the cluster's featureCompatibilityVersion is {fcv_text:?}, which is not a version"
        )));
    };
    let needed = if want.major > low.major {
        Version {
            major: low.major,
            minor: low.minor,
            patch: 0,
        }
    } else {
        Version {
            major: want.major - 1,
            minor: 0,
            patch: 0,
        }
    };
    if fcv < needed {
        return Err(refuse(format!(
            "the cluster's featureCompatibilityVersion is {fcv_text}, lower than {} which {target} needs (the current major, {low_text}): finish the previous upgrade first with `mup cluster upgrade NAME --version {low_text} --fcv`",
            fcv_of(needed)
        )));
    }
    Ok(())
}

fn refuse(why: String) -> InputError {
    InputError::new("--version", "", why)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::model::Role;
    use crate::ops::upgrade::plan::NodeView;

    fn state(versions: &[&str], fcv: &str) -> State {
        State {
            nodes: versions
                .iter()
                .enumerate()
                .map(|(i, v)| NodeView {
                    program: format!("mongod-{i}"),
                    address: format!("localhost:{i}"),
                    role: Role::Mongod,
                    replica_set: Some("rs".into()),
                    version: (!v.is_empty()).then(|| v.to_string()),
                    primary: i == 0,
                })
                .collect(),
            recorded: versions[0].to_string(),
            fcv: (!fcv.is_empty()).then(|| fcv.to_string()),
        }
    }

    fn why(s: &State, target: &str) -> String {
        check(s, target).expect_err("refused").to_string()
    }

    #[test]
    fn one_major_at_a_time() {
        let s = state(&["7.0.14", "7.0.14"], "7.0");
        assert!(check(&s, "8.0.4").is_ok());
        assert!(check(&s, "7.0.20").is_ok());
        let w = why(&s, "9.0.1");
        assert!(w.contains("7.0.14") && w.contains("9.0.1"), "{w}");
        let w = why(&s, "6.0.20");
        assert!(w.contains("does not downgrade"), "{w}");
    }

    #[test]
    fn a_half_done_upgrade_continues() {
        let s = state(&["8.0.4", "7.0.14", ""], "7.0");
        assert!(check(&s, "8.0.4").is_ok());
    }

    #[test]
    fn a_low_fcv_is_refused_naming_both_versions() {
        let s = state(&["7.0.14", "7.0.14"], "6.0");
        let w = why(&s, "8.0.4");
        assert!(
            w.contains("6.0") && w.contains("8.0.4") && w.contains("7.0"),
            "{w}"
        );
        // Within a major the binary starts on the previous FCV.
        assert!(check(&s, "7.0.20").is_ok());
    }
}
