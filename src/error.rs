//! The one error type for bad user input: it names the file, the field path and the value.

use std::fmt;

/// Bad input: the command exits 2 and nothing is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InputError {
    /// The file the value came from, as the user named it (or a flag such as `--out`).
    pub file: String,
    /// Field path inside the file, e.g. `mongod_servers[2].port`; empty for whole-file errors.
    pub field: String,
    /// What is wrong, including the offending value.
    pub message: String,
}

impl InputError {
    pub(crate) fn new(
        file: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.into(),
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.field, self.message)
        }
    }
}

impl std::error::Error for InputError {}

/// Shorthand for a `Result` whose error is bad input.
pub(crate) type InputResult<T> = Result<T, InputError>;
