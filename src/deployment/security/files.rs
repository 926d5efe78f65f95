//! The secret files of a secured tree, under `<cluster>/security/` (mode 0700): the keyFile
//! (`keyfile`, random base64, 0400), and with TLS a local CA (`ca.pem` 0644, `ca-key.pem`
//! 0400) and one PEM per node holding its certificate and key (`<host>-<port>.pem`, 0400;
//! SAN: the node's host, `localhost` and 127.0.0.1). Each is made once, when missing, and
//! never rewritten: a later gen (a scale-out) only adds the certificates of new nodes.

use super::Settings;
use crate::deployment::layout::Layout;
use crate::deployment::model::Cluster;
use anyhow::Context;
use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// Random bytes in the keyFile: 756, base64-encoded to 1008 characters (mongod accepts 6
/// to 1024), as `openssl rand -base64 756` in the manual.
const KEY_BYTES: usize = 756;
/// Private files: the keyFile and every private key (mongod refuses a keyFile any other
/// user may read).
pub(crate) const SECRET: u32 = 0o400;
const PUBLIC: u32 = 0o644;

/// The paths of the security files of one tree.
pub(crate) struct Paths {
    dir: PathBuf,
}

impl Paths {
    pub(crate) fn new(layout: &Layout) -> Paths {
        Paths {
            dir: layout.security_dir(),
        }
    }
    pub(crate) fn key_file(&self) -> PathBuf {
        self.dir.join("keyfile")
    }
    pub(crate) fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    pub(crate) fn ca_key_file(&self) -> PathBuf {
        self.dir.join("ca-key.pem")
    }
    /// The certificate and key of the node `host:port` (named as its conf directory).
    pub(crate) fn node_pem(&self, host: &str, port: u16) -> PathBuf {
        let node_dir = crate::deployment::naming::node_dir_name(host, port);
        self.dir.join(format!("{node_dir}.pem"))
    }
}

/// Every file `cluster`'s security needs, with the mode it must have: the keyFile (auth),
/// the CA, its key and each node's PEM (tls).
fn wanted(cluster: &Cluster) -> Vec<(PathBuf, u32)> {
    let Some(settings) = &cluster.security else {
        return Vec::new();
    };
    let paths = Paths::new(&cluster.layout);
    let mut out = Vec::new();
    if settings.auth {
        out.push((paths.key_file(), SECRET));
    }
    if settings.tls {
        out.push((paths.ca_file(), PUBLIC));
        out.push((paths.ca_key_file(), SECRET));
        for n in &cluster.nodes {
            out.push((paths.node_pem(&n.host, n.port), SECRET));
        }
    }
    out
}

/// The files of [`wanted`] that do not exist yet (`gen --dry-run`).
pub(crate) fn missing(cluster: &Cluster) -> Vec<PathBuf> {
    wanted(cluster)
        .into_iter()
        .filter(|(p, _)| !p.exists())
        .map(|(p, _)| p)
        .collect()
}

/// The private files (keys) others may read now: a regular file of the tree (a symlink is
/// never followed) whose mode lets group or others read it.
pub(crate) fn too_open(cluster: &Cluster) -> Vec<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    wanted(cluster)
        .into_iter()
        .filter(|(p, mode)| {
            *mode == SECRET
                && std::fs::symlink_metadata(p)
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o077 != 0)
        })
        .map(|(p, _)| p)
        .collect()
}

/// `gen --check`'s lines for the security files: missing ones, and a private one others may
/// read (mongod refuses such a keyFile).
pub(crate) fn drift(cluster: &Cluster) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let rel = |p: &Path| cluster.layout.relative(p).display().to_string();
    wanted(cluster)
        .into_iter()
        .filter_map(|(p, mode)| match std::fs::metadata(&p) {
            Err(_) => Some(format!("missing: {}", rel(&p))),
            Ok(m) if mode == SECRET && m.permissions().mode() & 0o077 != 0 => Some(format!(
                "differs: {} (mode {:o}: a key must be readable by its owner only, 0400)",
                rel(&p),
                m.permissions().mode() & 0o777
            )),
            Ok(_) => None,
        })
        .collect()
}

/// Makes the files `cluster`'s security needs that are missing. The caller holds the
/// cluster lock (gen's write).
pub(crate) fn ensure(cluster: &Cluster) -> anyhow::Result<()> {
    let Some(settings) = &cluster.security else {
        return Ok(());
    };
    let paths = Paths::new(&cluster.layout);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&paths.dir)
        .with_context(|| format!("cannot create {}", paths.dir.display()))?;
    ensure_key_file(settings, &paths)?;
    if settings.tls {
        let ca = ensure_ca(&cluster.name, &paths)?;
        for n in &cluster.nodes {
            let pem = paths.node_pem(&n.host, n.port);
            if !pem.exists() {
                let text = node_certificate(&n.host, &ca)
                    .with_context(|| format!("cannot make the certificate of {}", n.source))?;
                crate::deployment::write::write_atomic(&pem, text.as_bytes(), SECRET)?;
            }
        }
    }
    // A key someone opened up (chmod) is made private again: mongod refuses a keyFile others
    // may read, and a CA key others may read signs certificates for them.
    for p in too_open(cluster) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(SECRET))
            .with_context(|| format!("cannot make {} private", p.display()))?;
    }
    Ok(())
}

fn ensure_key_file(settings: &Settings, paths: &Paths) -> anyhow::Result<()> {
    let path = paths.key_file();
    if !settings.auth || path.exists() {
        return Ok(());
    }
    let mut bytes = vec![0u8; KEY_BYTES];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no random bytes for the keyFile: {e}"))?;
    let key = base64::engine::general_purpose::STANDARD.encode(&bytes);
    crate::deployment::write::write_atomic(&path, format!("{key}\n").as_bytes(), SECRET)
}

/// The CA's parameters: the same for every call, so that the issuer of a new node's
/// certificate is the CA's subject.
fn ca_params(cluster: &str) -> anyhow::Result<CertificateParams> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::OrganizationName, "mup");
    p.distinguished_name.push(
        DnType::CommonName,
        format!("mup local CA of cluster {cluster}"),
    );
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(p)
}

/// The CA that signs the nodes' certificates: made when `ca.pem` or its key is missing,
/// else its key read back.
fn ensure_ca(cluster: &str, paths: &Paths) -> anyhow::Result<Issuer<'static, KeyPair>> {
    let (cert, key) = (paths.ca_file(), paths.ca_key_file());
    let params = ca_params(cluster)?;
    match (cert.exists(), key.exists()) {
        (true, true) => {
            let pem = read_small(&key)?;
            let pair = KeyPair::from_pem(&pem)
                .with_context(|| format!("{} is not a private key", key.display()))?;
            return Ok(Issuer::new(params, pair));
        }
        (false, false) => {}
        (has_cert, _) => {
            let (there, gone) = if has_cert {
                (&cert, &key)
            } else {
                (&key, &cert)
            };
            anyhow::bail!(
                "{} is there but {} is missing: restore it (a new CA would not verify the nodes' certificates), or remove the security directory's CA and node files to make new ones",
                there.display(),
                gone.display()
            );
        }
    }
    let pair = KeyPair::generate().context("cannot generate the CA's key")?;
    let ca = params.self_signed(&pair).context("cannot sign the CA")?;
    crate::deployment::write::write_atomic(&key, pair.serialize_pem().as_bytes(), SECRET)?;
    crate::deployment::write::write_atomic(&cert, ca.pem().as_bytes(), PUBLIC)?;
    Ok(Issuer::new(params, pair))
}

/// A node's PEM: its certificate (SAN: `host`, `localhost`, 127.0.0.1), then its key.
fn node_certificate(host: &str, ca: &Issuer<'_, KeyPair>) -> anyhow::Result<String> {
    let mut names = vec![host.to_string()];
    for other in ["localhost", "127.0.0.1"] {
        if !names.iter().any(|n| n == other) {
            names.push(other.to_string());
        }
    }
    let mut params = CertificateParams::new(names)?;
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "mup");
    params.distinguished_name.push(DnType::CommonName, host);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let pair = KeyPair::generate()?;
    let cert = params.signed_by(&pair, ca)?;
    Ok(format!("{}{}", cert.pem(), pair.serialize_pem()))
}

/// A file of the security directory (a key: a few KiB), read whole up to 64 KiB.
fn read_small(path: &Path) -> anyhow::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(64 * 1024).read_to_string(&mut text))
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text)
}
