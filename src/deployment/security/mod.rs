//! Secured clusters (`--auth`, `--tls`): the settings recorded in meta.yaml (`security:`),
//! checked and completed in one place ([`decide`]); the files mup makes in the tree for them
//! ([`files`]: keyFile, a local CA, one certificate per node); the first user and its
//! proof ([`users`]); how mup itself connects to a secured cluster ([`access`]) and the
//! connection strings it prints ([`uri_parts`]).

pub(crate) mod files;

use crate::deployment::layout::Layout;
use crate::deployment::Tree;
use crate::error::{InputError, InputResult};
use crate::mongo::Access;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The user mup creates when `--username` is not given.
pub(crate) const DEFAULT_USER: &str = "mup";
/// Characters of a generated password (no character a URI or a shell would need to escape).
const PASSWORD_LEN: usize = 32;
/// A password file larger than this is refused (a password is a line).
const PASSWORD_FILE_LIMIT: u64 = 4096;

/// `security:` in meta.yaml: what was asked for, and the first user once decided.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Access control: a keyFile for every node and a first user (role root).
    #[serde(default)]
    pub auth: bool,
    /// TLS from a local CA: `net.tls.mode: requireTLS` on every node.
    #[serde(default)]
    pub tls: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The first user's password (meta.yaml is mode 0600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

impl Settings {
    /// Nothing is secured.
    pub(crate) fn is_off(&self) -> bool {
        !self.auth && !self.tls
    }
}

/// The security of a compile: the given meta.yaml's, else the tree's; with auth on, the
/// user and password given, else recorded, else `mup` and a random password. Every value is
/// checked here (`mf` names the file in messages).
pub(crate) fn decide(
    given: Option<&Settings>,
    existing: Option<&Settings>,
    mf: &str,
) -> InputResult<Option<Settings>> {
    let Some(chosen) = given.or(existing) else {
        return Ok(None);
    };
    if chosen.is_off() {
        return Ok(None);
    }
    let mut out = Settings {
        auth: chosen.auth,
        tls: chosen.tls,
        username: None,
        password: None,
    };
    if out.auth {
        let prior =
            |f: fn(&Settings) -> Option<String>| given.and_then(f).or_else(|| existing.and_then(f));
        let username = prior(|s| s.username.clone()).unwrap_or_else(|| DEFAULT_USER.into());
        check_username(&username).map_err(|why| InputError::new(mf, "security.username", why))?;
        let password = match prior(|s| s.password.clone()) {
            Some(p) => p,
            None => random_alnum(PASSWORD_LEN).map_err(|e| {
                InputError::new(mf, "security.password", format!("cannot generate one: {e}"))
            })?,
        };
        check_password(&password).map_err(|why| InputError::new(mf, "security.password", why))?;
        out.username = Some(username);
        out.password = Some(password);
    }
    Ok(Some(out))
}

/// A user name mup accepts: 1–64 of `A-Z a-z 0-9 . _ -` (it appears in URIs and messages).
pub(crate) fn check_username(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a user name mup creates: use 1 to 64 of A-Z a-z 0-9 . _ -"
        ))
    }
}

/// A password mup accepts: 8 to 256 characters, none of them a control character.
pub(crate) fn check_password(password: &str) -> Result<(), String> {
    let count = password.chars().count();
    if !(8..=256).contains(&count) {
        return Err(format!("has {count} characters: use 8 to 256"));
    }
    if password.chars().any(char::is_control) {
        return Err("holds a control character (a newline, a tab, ...)".into());
    }
    Ok(())
}

/// The password in `path` (`--password-file`): its first line, at most 4 KiB read.
pub(crate) fn read_password_file(path: &std::path::Path) -> InputResult<String> {
    use std::io::Read;
    let shown = path.display().to_string();
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(PASSWORD_FILE_LIMIT + 1).read_to_string(&mut text))
        .map_err(|e| InputError::new("--password-file", "", format!("{shown}: {e}")))?;
    if text.len() as u64 > PASSWORD_FILE_LIMIT {
        return Err(InputError::new(
            "--password-file",
            "",
            format!("{shown} is larger than {PASSWORD_FILE_LIMIT} bytes: it should hold one line"),
        ));
    }
    let password = text.lines().next().unwrap_or_default().to_string();
    check_password(&password).map_err(|why| InputError::new(&shown, "password", why))?;
    Ok(password)
}

/// A deploy (or playground start) of a cluster that already exists may not secure it, nor
/// change its user: refused naming how to get a secured cluster. Without flags, or with the
/// ones it was deployed with, it goes on as the tree records.
pub(crate) fn refuse_change(
    layout: &Layout,
    name: &str,
    asked: Option<&Settings>,
) -> anyhow::Result<()> {
    let file = layout.meta_file();
    let (Some(asked), true) = (asked, file.is_file()) else {
        return Ok(());
    };
    let shown = file.display().to_string();
    let Some(meta) = crate::deployment::meta::load_tree(&file, &shown)? else {
        return Ok(());
    };
    let has = meta.security.unwrap_or_default();
    let missing: Vec<&str> = [
        (asked.auth && !has.auth, "--auth"),
        (asked.tls && !has.tls, "--tls"),
    ]
    .into_iter()
    .filter_map(|(m, flag)| m.then_some(flag))
    .collect();
    let how = format!("deploy the secured cluster under another name, or `mup cluster destroy {name}` (its data goes with it) and deploy again with the flags");
    if !missing.is_empty() {
        return Err(InputError::new(
            "NAME",
            "",
            format!(
                "cluster {name:?} is already deployed without {}: mup does not secure a deployed cluster (its nodes run without a keyFile or certificates, its data has no user); {how}",
                missing.join(" and ")
            ),
        )
        .into());
    }
    let other_user = asked.username.is_some() && asked.username != has.username;
    let other_password = asked.password.is_some() && asked.password != has.password;
    if other_user || other_password {
        return Err(InputError::new(
            "NAME",
            "",
            format!(
                "cluster {name:?} already has its first user ({:?}, recorded in {shown}): --username and --password-file only apply to a new cluster; {how}",
                has.username.unwrap_or_default()
            ),
        )
        .into());
    }
    Ok(())
}

/// `len` random letters and digits from the operating system's CSPRNG: mup's passwords
/// (supervisord's, the first user's).
pub(crate) fn random_alnum(len: usize) -> Result<String, getrandom::Error> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let mut bytes = [0u8; 64];
        getrandom::fill(&mut bytes)?;
        // 248 = 4 × 62: rejecting larger bytes keeps every character equally likely.
        out.extend(
            bytes
                .iter()
                .filter(|b| **b < 248)
                .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
                .take(len - out.len()),
        );
    }
    Ok(out)
}

/// What a node's config names for its security: the keyFile (auth) and its certificate
/// and the CA (tls).
pub(crate) struct NodeFiles {
    pub key_file: Option<PathBuf>,
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// The files `node`'s config names for `settings` (none when the cluster is not secured).
pub(crate) fn node_files(
    settings: Option<&Settings>,
    layout: &Layout,
    node: &crate::deployment::model::Node,
) -> NodeFiles {
    let paths = files::Paths::new(layout);
    let on = |f: fn(&Settings) -> bool| settings.is_some_and(f);
    NodeFiles {
        key_file: on(|s| s.auth).then(|| paths.key_file()),
        tls: on(|s| s.tls).then(|| (paths.node_pem(&node.host, node.port), paths.ca_file())),
    }
}

/// How mup connects to the servers of `tree`: with the first user's credentials when auth
/// is on, over TLS verified with the tree's CA when tls is on.
pub(crate) fn access(tree: &Tree) -> Access {
    let Some(s) = &tree.meta.security else {
        return Access::default();
    };
    Access {
        tls_ca: s.tls.then(|| files::Paths::new(&tree.layout).ca_file()),
        credential: match (&s.username, &s.password) {
            (Some(u), Some(p)) if s.auth => Some((u.clone(), p.clone())),
            _ => None,
        },
    }
}

/// What `display` says of `tree`'s security: `access control (user NAME)`, `TLS`, or
/// both; `None` when it is not secured.
pub(crate) fn summary(tree: &Tree) -> Option<String> {
    let s = tree.meta.security.as_ref().filter(|s| !s.is_off())?;
    let mut parts = Vec::new();
    if s.auth {
        let user = s.username.as_deref().unwrap_or_default();
        parts.push(format!("access control (user {user})"));
    }
    if s.tls {
        parts.push("TLS".to_string());
    }
    Some(parts.join(", "))
}

/// For `destroy --keep-data` of a cluster with auth: the kept data holds the first user,
/// whose password only meta.yaml records, and destroy removes meta.yaml.
pub(crate) fn kept_user_note(tree: &Tree) -> Option<String> {
    let s = tree.meta.security.as_ref().filter(|s| s.auth)?;
    Some(format!(
        "they hold the user {:?}, whose password is recorded only in meta.yaml, which is removed: note it first (`mup cluster uri {} --show-password`)",
        s.username.as_deref().unwrap_or_default(),
        tree.name()
    ))
}

/// What a connection string of `tree` carries for its security: the user-info part
/// (`user@` or, with `password`, `user:password@`, percent-encoded) and the options
/// (`authSource=admin`, `tls=true`, `tlsCAFile=...`).
pub(crate) fn uri_parts(tree: &Tree, password: bool) -> (String, Vec<String>) {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    // RFC 3986 unreserved characters stay; for a path, '/' stays too.
    const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    const PATH: &AsciiSet = &COMPONENT.remove(b'/');
    let access = access(tree);
    let mut options = Vec::new();
    let user = match &access.credential {
        Some((u, p)) => {
            options.push("authSource=admin".to_string());
            let u = utf8_percent_encode(u, COMPONENT);
            if password {
                format!("{u}:{}@", utf8_percent_encode(p, COMPONENT))
            } else {
                format!("{u}@")
            }
        }
        None => String::new(),
    };
    if let Some(ca) = &access.tls_ca {
        options.push("tls=true".into());
        options.push(format!(
            "tlsCAFile={}",
            utf8_percent_encode(&ca.display().to_string(), PATH)
        ));
    }
    (user, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decided_once_then_kept() {
        let asked = Settings {
            auth: true,
            ..Settings::default()
        };
        let first = decide(Some(&asked), None, "m").expect("valid").expect("on");
        assert_eq!(first.username.as_deref(), Some("mup"));
        let pw = first.password.clone().expect("a password");
        assert_eq!(pw.len(), PASSWORD_LEN);
        assert!(pw.chars().all(|c| c.is_ascii_alphanumeric()), "{pw}");
        let again = decide(Some(&asked), Some(&first), "m").expect("valid");
        assert_eq!(
            again.as_ref(),
            Some(&first),
            "the recorded password is kept"
        );
        assert_eq!(decide(None, Some(&first), "m").expect("valid"), Some(first));
        assert_eq!(decide(None, None, "m").expect("valid"), None);
    }

    #[test]
    fn bad_user_names_and_passwords_are_refused_naming_the_field() {
        let bad_user = Settings {
            auth: true,
            username: Some("a b".into()),
            ..Settings::default()
        };
        let e = decide(Some(&bad_user), None, "meta.yaml").expect_err("refused");
        assert!(e.to_string().contains("security.username"), "{e}");
        let short = Settings {
            auth: true,
            password: Some("short".into()),
            ..Settings::default()
        };
        let e = decide(Some(&short), None, "meta.yaml").expect_err("refused");
        assert!(e.to_string().contains("security.password"), "{e}");
        assert!(check_password("with\nnewline").is_err());
    }
}
