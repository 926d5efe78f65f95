//! MongoDB binaries on demand: `mup install`, `mup versions`, `mup uninstall`, and the
//! verified package cache `$MUP_HOME/storage/packages/<version>/bin/{mongod,mongos}`.
//!
//! The version list and the archives come from MongoDB's published release index
//! (`full.json`: `versions[]` with `version`, `production_release` and `downloads[]` of
//! `target`, `arch`, `edition` and `archive: {url, sha256}`), or from a mirror (`--mirror URL`
//! or `MUP_MIRROR`: `URL/full.json` and `URL/<archive file name>`). An archive is verified
//! against its published sha256 before anything is unpacked, unpacked into a temporary
//! directory and renamed into place, so an interrupted or corrupt download never leaves half
//! a package; installs of one version hold a lock.

use crate::error::InputError;
use crate::layout;
use crate::model::Version;
use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

/// MongoDB's release index.
pub(crate) const OFFICIAL_INDEX: &str = "https://downloads.mongodb.org/full.json";

/// `$MUP_HOME/storage/packages`.
pub(crate) fn packages_dir() -> PathBuf {
    layout::mup_home().join("storage").join("packages")
}

/// The `bin` directory of an installed version.
pub(crate) fn bin_dir(version: &str) -> PathBuf {
    packages_dir().join(version).join("bin")
}

#[derive(Debug, Deserialize)]
pub(crate) struct Index {
    pub versions: Vec<Release>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Release {
    pub version: String,
    #[serde(default)]
    pub production_release: bool,
    #[serde(default)]
    pub downloads: Vec<Download>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Download {
    #[serde(default)]
    pub target: String,
    #[serde(default)]
    pub arch: String,
    #[serde(default)]
    pub edition: String,
    pub archive: Option<Archive>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Archive {
    pub url: String,
    #[serde(default)]
    pub sha256: String,
}

/// Where the index and archives come from.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    /// `None`: the official index and the archives' own URLs.
    pub mirror: Option<String>,
}

impl Source {
    /// `--mirror`, else `MUP_MIRROR`, else the official index.
    pub(crate) fn new(mirror: Option<&str>) -> Source {
        let mirror = mirror
            .map(String::from)
            .or_else(|| std::env::var("MUP_MIRROR").ok().filter(|m| !m.is_empty()))
            .map(|m| m.trim_end_matches('/').to_string());
        Source { mirror }
    }

    fn index_url(&self) -> String {
        match &self.mirror {
            Some(m) => format!("{m}/full.json"),
            None => OFFICIAL_INDEX.to_string(),
        }
    }

    fn archive_url(&self, archive: &Archive) -> String {
        match &self.mirror {
            Some(m) => format!(
                "{m}/{}",
                archive.url.rsplit('/').next().unwrap_or(&archive.url)
            ),
            None => archive.url.clone(),
        }
    }
}

fn http() -> anyhow::Result<reqwest::blocking::Client> {
    reqwest::blocking::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(15))
        .timeout(None)
        .build()
        .context("cannot set up the HTTP client")
}

fn get(url: &str) -> anyhow::Result<reqwest::blocking::Response> {
    if url.starts_with("http://") {
        eprintln!("warning: {url} is plain HTTP: the download is checked against the index's sha256, but the index itself is not protected");
    }
    let resp = http()?
        .get(url)
        .send()
        .with_context(|| format!("cannot download {url}"))?;
    if !resp.status().is_success() {
        bail!("cannot download {url}: HTTP {}", resp.status());
    }
    Ok(resp)
}

/// Reads the release index.
pub(crate) fn index(source: &Source) -> anyhow::Result<Index> {
    let url = source.index_url();
    let text = get(&url)?
        .text()
        .with_context(|| format!("cannot read {url}"))?;
    serde_json::from_str(&text).with_context(|| format!("{url} is not a MongoDB release index"))
}

/// The release a user's `spec` names: an exact version (`7.0.14`), a series (`7.0`, its newest
/// production release) or `latest` (the newest production release).
pub(crate) fn resolve<'a>(index: &'a Index, spec: &str) -> anyhow::Result<&'a Release> {
    let newest = |filter: &dyn Fn(&Release) -> bool| {
        index
            .versions
            .iter()
            .filter(|r| r.production_release && filter(r))
            .filter_map(|r| Version::parse(&r.version).map(|v| (v, r)))
            .max_by_key(|(v, _)| *v)
            .map(|(_, r)| r)
    };
    let found = if spec == "latest" {
        newest(&|_| true)
    } else if spec.matches('.').count() == 1 {
        let prefix = format!("{spec}.");
        newest(&|r| r.version.starts_with(&prefix))
    } else {
        index.versions.iter().find(|r| r.version == spec)
    };
    found.ok_or_else(|| {
        InputError::new(
            "VERSION",
            "",
            format!("{spec:?} is not in the release index (`mup versions` lists them)"),
        )
        .into()
    })
}

/// This machine's download target names (`ubuntu2204`, `debian12`, `rhel90`, ...), most
/// specific first, from /etc/os-release.
pub(crate) fn host_targets() -> Vec<String> {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default()
    };
    targets_for(&field("ID"), &field("VERSION_ID"), &field("ID_LIKE"))
}

/// Download targets for an os-release ID, VERSION_ID and ID_LIKE.
fn targets_for(id: &str, version: &str, like: &str) -> Vec<String> {
    let major = version.split('.').next().unwrap_or_default();
    let digits: String = version.chars().filter(char::is_ascii_digit).collect();
    let mut out = match id {
        "ubuntu" => vec![format!("ubuntu{digits}")],
        "debian" => vec![format!("debian{major}")],
        "amzn" => vec![format!("amazon{major}")],
        "sles" | "opensuse-leap" => vec![format!("suse{major}")],
        _ if id == "rhel"
            || like
                .split_whitespace()
                .any(|l| l == "rhel" || l == "fedora") =>
        {
            vec![format!("rhel{major}0"), format!("rhel{major}")]
        }
        _ => Vec::new(),
    };
    out.push("linux".into()); // old generic archives
    out
}

/// The processor names the index may use for this machine.
fn host_arches() -> &'static [&'static str] {
    match std::env::consts::ARCH {
        "x86_64" => &["x86_64"],
        "aarch64" => &["aarch64", "arm64"],
        "powerpc64" => &["ppc64le"],
        "s390x" => &["s390x"],
        _ => &[],
    }
}

/// The archive of `release` for this machine: the first host target that has one (the
/// targeted edition before the generic base), or an error listing what exists.
pub(crate) fn choose(release: &Release) -> anyhow::Result<&Archive> {
    let targets = host_targets();
    let arches = host_arches();
    for target in &targets {
        for edition in ["targeted", "base", ""] {
            if let Some(a) = release.downloads.iter().find(|d| {
                &d.target == target
                    && arches.contains(&d.arch.as_str())
                    && (edition.is_empty() || d.edition == edition)
            }) {
                if let Some(archive) = &a.archive {
                    return Ok(archive);
                }
            }
        }
    }
    let available: Vec<String> = release
        .downloads
        .iter()
        .filter(|d| d.archive.is_some())
        .map(|d| format!("{}/{}", d.target, d.arch))
        .collect();
    bail!(
        "MongoDB {} has no archive for this machine (looked for {} on {}); available: {}",
        release.version,
        targets.join(", "),
        std::env::consts::ARCH,
        available.join(", ")
    )
}

/// Installed versions, oldest first.
pub(crate) fn installed() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(packages_dir())
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().join("bin").join("mongod").is_file())
                .filter_map(|e| e.file_name().to_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    v.sort_by_key(|s| Version::parse(s));
    v
}

/// `mup install`: the package of `spec` in the cache (downloaded, verified, unpacked); returns
/// the exact version. Asks first on a terminal unless `yes`; already installed is a no-op.
pub(crate) fn install(spec: &str, source: &Source, yes: bool) -> anyhow::Result<String> {
    if Version::parse(spec).is_some() && bin_dir(spec).join("mongod").is_file() {
        return Ok(spec.to_string());
    }
    let index = index(source)?;
    let release = resolve(&index, spec)?;
    let version = release.version.clone();
    if bin_dir(&version).join("mongod").is_file() {
        return Ok(version);
    }
    let archive = choose(release)?;
    let url = source.archive_url(archive);
    crate::cluster::confirm(&format!("Download MongoDB {version} from {url}?"), yes)?;
    let dir = packages_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let _lock = crate::lock::hold(
        &dir.join(format!(".{version}.lock")),
        &format!("MongoDB {version}"),
    )?;
    if bin_dir(&version).join("mongod").is_file() {
        return Ok(version); // another install finished while we waited
    }
    let tmp = tempfile::Builder::new()
        .prefix(".download-")
        .tempdir_in(&dir)
        .context("cannot create a temporary directory")?;
    let file = tmp.path().join("archive.tgz");
    download(&url, &file, &archive.sha256)?;
    let unpacked = tmp.path().join("unpacked");
    unpack(&file, &unpacked)?;
    let root = package_root(&unpacked)
        .with_context(|| format!("{url} holds no bin/mongod: not a MongoDB server archive"))?;
    std::fs::rename(&root, dir.join(&version))
        .with_context(|| format!("cannot move the package into {}", dir.display()))?;
    outln!(
        "MongoDB {version} installed in {}",
        dir.join(&version).display()
    )?;
    Ok(version)
}

/// Streams `url` into `file`, hashing as it goes; fails (and keeps nothing) unless the whole
/// body arrived and its sha256 is `sha256`.
fn download(url: &str, file: &Path, sha256: &str) -> anyhow::Result<()> {
    if sha256.is_empty() {
        bail!("the index publishes no sha256 for {url}: refusing to install an unverified archive");
    }
    let mut resp = get(url)?;
    let expected = resp.content_length();
    let bar = match expected {
        Some(len) if std::io::stderr().is_terminal() => {
            let b = ProgressBar::new(len);
            b.set_style(
                ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec}")
                    .expect("static template parses"),
            );
            b
        }
        _ => ProgressBar::hidden(),
    };
    let mut out = std::fs::File::create(file)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = resp
            .read(&mut buf)
            .with_context(|| format!("the download of {url} broke off"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        total += n as u64;
        bar.set_position(total);
    }
    bar.finish_and_clear();
    if let Some(len) = expected {
        if total != len {
            bail!("the download of {url} broke off after {total} of {len} bytes");
        }
    }
    let got = hex(&hasher.finalize());
    if !got.eq_ignore_ascii_case(sha256) {
        bail!("{url}: sha256 {got} does not match the published {sha256}; nothing was installed");
    }
    out.sync_all()?;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unpack(archive: &Path, into: &Path) -> anyhow::Result<()> {
    let f = std::fs::File::open(archive)?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    tar.set_preserve_permissions(true);
    // `unpack` refuses entries that would land outside `into` (`..`, absolute paths).
    tar.unpack(into)
        .with_context(|| format!("cannot unpack {}", archive.display()))
}

/// The directory of an unpacked archive that holds `bin/mongod` (the archive's top directory).
fn package_root(unpacked: &Path) -> Option<PathBuf> {
    if unpacked.join("bin").join("mongod").is_file() {
        return Some(unpacked.to_path_buf());
    }
    std::fs::read_dir(unpacked)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("bin").join("mongod").is_file())
}

/// `mup uninstall`: refused while a cluster under `MUP_HOME` uses the version.
pub(crate) fn uninstall(version: &str) -> anyhow::Result<()> {
    let dir = packages_dir().join(version);
    if Version::parse(version).is_none() || !dir.join("bin").join("mongod").is_file() {
        return Err(InputError::new(
            "VERSION",
            "",
            format!(
                "MongoDB {version:?} is not installed (installed: {})",
                installed().join(", ")
            ),
        )
        .into());
    }
    let users: Vec<String> = crate::ports::other_clusters(Path::new("/"))
        .into_iter()
        .filter(|c| c.bin_path.as_deref().is_some_and(|b| b.starts_with(&dir)))
        .map(|c| c.name)
        .collect();
    if !users.is_empty() {
        bail!(
            "MongoDB {version} is used by cluster(s) {}: destroy them first (or migrate them to another version)",
            users.join(", ")
        );
    }
    std::fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    outln!("MongoDB {version} uninstalled")?;
    Ok(())
}

/// `mup versions`: the production releases in the index, newest first, marked when
/// installed; with `installed_only`, the cache's versions without asking the index.
pub(crate) fn versions(source: &Source, installed_only: bool) -> anyhow::Result<()> {
    let have = installed();
    if installed_only {
        for v in have.iter().rev() {
            outln!("{v}")?;
        }
        return Ok(());
    }
    let index = index(source)?;
    let mut list: Vec<(Version, &str)> = index
        .versions
        .iter()
        .filter(|r| r.production_release)
        .filter_map(|r| Version::parse(&r.version).map(|v| (v, r.version.as_str())))
        .collect();
    list.sort_by_key(|x| std::cmp::Reverse(x.0));
    for (_, v) in list {
        let mark = if have.iter().any(|h| h == v) {
            "  (installed)"
        } else {
            ""
        };
        outln!("{v}{mark}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_from_os_release() {
        assert_eq!(targets_for("ubuntu", "22.04", "debian")[0], "ubuntu2204");
        assert_eq!(targets_for("debian", "12", "")[0], "debian12");
        assert_eq!(
            targets_for("rocky", "9.3", "rhel centos fedora")[0],
            "rhel90"
        );
        assert_eq!(targets_for("plan9", "4", ""), vec!["linux".to_string()]);
    }

    #[test]
    fn a_series_resolves_to_its_newest_production_release() {
        let r = |v: &str, prod: bool| Release {
            version: v.into(),
            production_release: prod,
            downloads: Vec::new(),
        };
        let index = Index {
            versions: vec![
                r("7.0.9", true),
                r("7.0.14", true),
                r("7.0.15-rc0", false),
                r("8.0.4", true),
            ],
        };
        assert_eq!(resolve(&index, "7.0").expect("series").version, "7.0.14");
        assert_eq!(resolve(&index, "latest").expect("latest").version, "8.0.4");
        assert_eq!(resolve(&index, "7.0.9").expect("exact").version, "7.0.9");
        assert!(resolve(&index, "6.0").is_err());
    }
}
