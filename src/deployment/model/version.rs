//! A MongoDB version (`major.minor.patch`): parsed from what users and binaries say, compared,
//! shown.

use std::fmt;

/// A MongoDB version as `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    /// Accepts `7.0`, `7.0.14`, `8.0.0-rc1` (the suffix is ignored).
    pub(crate) fn parse(text: &str) -> Option<Version> {
        if !text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'))
        {
            return None;
        }
        let core = text.split(['-', '+']).next()?;
        let mut parts = core.split('.');
        let num = |p: Option<&str>| -> Option<u32> {
            let p = p?;
            (!p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
                .then(|| p.parse().ok())
                .flatten()
        };
        let major = num(parts.next())?;
        let minor = num(parts.next())?;
        let patch = match parts.next() {
            Some(p) => num(Some(p))?,
            None => 0,
        };
        parts.next().is_none().then_some(Version {
            major,
            minor,
            patch,
        })
    }
    pub(crate) const fn at_least(self, major: u32, minor: u32) -> bool {
        self.major > major || (self.major == major && self.minor >= minor)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}
