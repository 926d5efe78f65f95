//! A secured cluster for people: `mup cluster connect` hands mongosh the credentials without
//! putting the password on its command line or in its environment, and `mup cluster
//! credentials` says where every secret is kept.

use crate::deployment::security::files::Paths;
use crate::deployment::Tree;
use crate::ui::Ui;
use anyhow::{bail, Context};
use std::io::Write;
use std::path::Path;

/// Runs `shell` on `uri` (which holds no credentials) with a script that authenticates as
/// the cluster's first user: the script is a file only its owner can read (0600, in the
/// temporary directory), named on the command line by `--shell` (run it, then stay
/// interactive); it is removed when the shell exits. mup waits for the shell, ignoring
/// Ctrl-C meanwhile (the shell handles it), and ends with its exit status.
pub(crate) fn run(tree: &Tree, shell: &Path, uri: &str) -> anyhow::Result<()> {
    let Some(security) = &tree.meta.security else {
        bail!("cluster {} has no credentials", tree.name());
    };
    let (Some(user), Some(password)) = (&security.username, &security.password) else {
        bail!(
            "{}: security.username or security.password is missing",
            tree.layout.meta_file().display()
        );
    };
    let mut script = tempfile::Builder::new()
        .prefix("mup-connect-")
        .suffix(".js")
        .tempfile()
        .context("cannot create the shell's login script")?;
    // JSON strings are JavaScript string literals: no quoting of our own.
    writeln!(
        script,
        "db.getSiblingDB(\"admin\").auth({}, {});",
        serde_json::to_string(user)?,
        serde_json::to_string(password)?
    )
    .context("cannot write the shell's login script")?;
    script.as_file().sync_all()?;
    // The script holds the password: mup outlives Ctrl-C, a closed terminal and SIGTERM (the
    // shell gets them) to remove it once the shell has exited.
    crate::system::interrupt::catch();
    crate::system::interrupt::outlive_hangup();
    let status = std::process::Command::new(shell)
        .arg(uri)
        .arg("--shell")
        .arg(script.path())
        .status()
        .with_context(|| format!("cannot run {}", shell.display()))?;
    drop(script);
    if !status.success() {
        bail!("{} ended with {status}", shell.display());
    }
    Ok(())
}

/// `mup cluster credentials`: the user, where the password, keyFile, CA and certificates
/// are, and the connection strings.
pub(crate) fn credentials(ui: &Ui, tree: &Tree, uris: &[String]) -> anyhow::Result<()> {
    let name = tree.name();
    let Some(s) = tree.meta.security.as_ref().filter(|s| !s.is_off()) else {
        outln!(ui, "cluster {name} is not secured (deployed without --auth and --tls): it has no credentials")?;
        return Ok(());
    };
    let paths = Paths::new(&tree.layout);
    let on = |b: bool| if b { "on" } else { "off" };
    outln!(
        ui,
        "cluster {name}: access control {}, TLS {}",
        on(s.auth),
        on(s.tls)
    )?;
    if s.auth {
        outln!(
            ui,
            "  user:        {} (role root, database admin)",
            s.username.as_deref().unwrap_or_default()
        )?;
        outln!(
            ui,
            "  password:    security.password in {} (mode 0600); `mup cluster uri {name} --show-password` prints it in the URI",
            tree.layout.meta_file().display()
        )?;
        outln!(
            ui,
            "  keyFile:     {} (mode 0400, members and routers authenticate to each other with it)",
            paths.key_file().display()
        )?;
    }
    if s.tls {
        outln!(
            ui,
            "  CA:          {} (clients verify the servers with it: tlsCAFile)",
            paths.ca_file().display()
        )?;
        outln!(
            ui,
            "  CA key:      {} (mode 0400)",
            paths.ca_key_file().display()
        )?;
        outln!(
            ui,
            "  nodes:       {} (each node's certificate and key, mode 0400)",
            tree.layout
                .security_dir()
                .join("<host>-<port>.pem")
                .display()
        )?;
    }
    for uri in uris {
        outln!(ui, "  connect:     {uri}")?;
    }
    Ok(())
}
