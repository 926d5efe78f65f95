//! The supervisord INI dialect: the one place where values are checked and escaped.
//!
//! supervisord reads its files with Python's configparser (`inline_comment_prefixes=(';','#')`)
//! and then %-interpolates most values; `command` and `environment` are split with shlex.
//! Every value mup writes into an INI file goes through [`check`] (while the model is built,
//! so the error can name the input file and field) and one of the `escape_*` functions here.

/// Why a value cannot be written into a supervisord file, or `None` when it can.
///
/// - control characters: a newline followed by `[program:x]` injects a whole program
///   (docs/supervisord.md §2);
/// - whitespace followed by `#` or `;` (or a value starting with one) silently truncates the
///   value, and configparser has no escape for it (docs/supervisord.md §2);
/// - leading or trailing whitespace is stripped by configparser.
pub(crate) fn check(value: &str) -> Option<String> {
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Some(format!(
            "{value:?} contains the control character {c:?}, which supervisord would read as a new line or section"
        ));
    }
    if value.contains("%(") {
        return Some(format!(
            "{value:?} contains \"%(\", which supervisord reads as an interpolation such as %(here)s (it expands some values twice, so no escaping is safe)"
        ));
    }
    if value.starts_with('#') || value.starts_with(';') {
        return Some(format!(
            "{value:?} starts with '{}', which supervisord reads as a comment",
            &value[..1]
        ));
    }
    let mut prev_space = false;
    for c in value.chars() {
        if prev_space && (c == '#' || c == ';') {
            return Some(format!(
                "{value:?} contains whitespace followed by '{c}', which supervisord reads as the start of a comment (the rest would be dropped)"
            ));
        }
        prev_space = c.is_whitespace();
    }
    if value.trim() != value {
        return Some(format!(
            "{value:?} has leading or trailing whitespace, which supervisord would drop"
        ));
    }
    None
}

/// A value supervisord %-interpolates once (most keys): `%` becomes `%%` (docs/supervisord.md §2).
pub(crate) fn escape(value: &str) -> String {
    value.replace('%', "%%")
}

/// `stdout_logfile`/`stderr_logfile` are interpolated twice, so `%` becomes `%%%%` (docs/supervisord.md §2).
pub(crate) fn escape_logfile(value: &str) -> String {
    value.replace('%', "%%%%")
}

/// A `command` line: each token shell-quoted when it needs it (supervisord splits with
/// shlex in POSIX mode, docs/supervisord.md §2), then %-escaped.
pub(crate) fn escape_command<'a>(argv: impl IntoIterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = argv.into_iter().map(shell_quote).collect();
    escape(&quoted.join(" "))
}

/// Why a value cannot be written into `environment=`, or `None` when it can: [`check`]'s
/// rules, plus what supervisord's parser of that option cannot carry (docs/supervisord.md §2).
pub(crate) fn check_env(value: &str) -> Option<String> {
    check(value).or_else(|| env_token(value).err())
}

/// One `KEY=value` pair of `environment=`, %-escaped; an error (from [`check_env`]) when
/// the value cannot be written.
pub(crate) fn env_pair(key: &str, value: &str) -> Result<String, String> {
    Ok(escape(&format!("{key}={}", env_token(value)?)))
}

/// `value` as one token of supervisord's `environment=` parser: `shlex.shlex` in non-POSIX
/// mode, where a quoted token runs to the next identical quote with no escape character (a
/// backslash is an ordinary character), then every `'` and `"` at either end of the token is
/// stripped. So a value is wrapped in the quote it does not contain; one that contains both,
/// or starts or ends with a quote, cannot be written.
fn env_token(value: &str) -> Result<String, String> {
    let quote = |q: char| format!("{q}{value}{q}");
    if value.starts_with(['"', '\'']) || value.ends_with(['"', '\'']) {
        return Err(format!(
            "{value:?} starts or ends with a quote, which supervisord's environment= parser strips"
        ));
    }
    match (value.contains('"'), value.contains('\'')) {
        (false, _) => Ok(quote('"')),
        (true, false) => Ok(quote('\'')),
        (true, true) => Err(format!(
            "{value:?} contains both ' and \", which supervisord's environment= parser cannot quote (it has no escape character)"
        )),
    }
}

/// POSIX single-quoting, only where the token needs it (also what a node's launcher script
/// quotes its binary with: /bin/sh reads it the same way).
pub(crate) fn shell_quote(token: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c);
    if !token.is_empty() && token.chars().all(safe) {
        token.to_string()
    } else {
        format!("'{}'", token.replace('\'', "'\\''"))
    }
}

/// Credentials go into `[inet_http_server]` and `[supervisorctl]` unescaped: a `%` in the
/// password silently becomes a different password (docs/supervisord.md §2), so only this alphabet is allowed.
pub(crate) fn is_credential(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_newlines_and_inline_comments() {
        assert!(check("/data/x\n[program:evil]").is_some());
        assert!(check("a\tb").is_some());
        assert!(check("/x/replica #1").is_some());
        assert!(check("/x/out ;x.log").is_some());
        assert!(check("#x").is_some());
        assert!(check(" /x").is_some());
        assert!(check("/x/a#b;c").is_none());
        assert!(check("/x/my cluster 50%").is_none());
        assert!(check("/x/a%(here)s/b").is_some());
    }

    #[test]
    fn escapes_percent_per_key_kind() {
        assert_eq!(escape("/a/50%"), "/a/50%%");
        assert_eq!(escape_logfile("/a/50%.log"), "/a/50%%%%.log");
    }

    #[test]
    fn quotes_command_tokens_only_when_needed() {
        assert_eq!(
            escape_command(["/bin/mongod", "--config", "/a b/it's 5%.conf"]),
            "/bin/mongod --config '/a b/it'\\''s 5%%.conf'"
        );
        assert_eq!(escape_command(["/bin/mongod"]), "/bin/mongod");
    }

    #[test]
    fn environment_values_are_quoted_without_escapes() {
        // Non-POSIX shlex: no escape character, so a backslash stays single and a value is
        // wrapped in the quote it does not contain.
        assert_eq!(
            env_pair("HOME", "/h/a\\b,c=d 5%").as_deref(),
            Ok("HOME=\"/h/a\\b,c=d 5%%\"")
        );
        assert_eq!(
            env_pair("USER", "x\",INJECT=1,Z=\"y").as_deref(),
            Ok("USER='x\",INJECT=1,Z=\"y'")
        );
        assert_eq!(env_pair("USER", "it's").as_deref(), Ok("USER=\"it's\""));
        assert!(
            check_env("x\",INJECT=1,Z=\"").is_some(),
            "ends with a quote"
        );
        assert!(check_env("'x").is_some(), "starts with a quote");
        assert!(check_env("a'b\"c").is_some(), "both quotes");
        assert!(check_env("a\nb").is_some(), "control character");
        assert!(check_env("/h/a'b").is_none());
    }

    #[test]
    fn credentials_alphabet() {
        assert!(is_credential("abc-DEF_123"));
        assert!(!is_credential("p%ss"));
        assert!(!is_credential(""));
    }
}
