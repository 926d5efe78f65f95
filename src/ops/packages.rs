//! MongoDB binaries on demand: `mup install`, `mup versions`, `mup uninstall`, and the
//! verified package cache `$MUP_HOME/storage/packages/<version>/bin/{mongod,mongos}`.
//!
//! The version list and the archives come from MongoDB's published release index
//! (`full.json`: `versions[]` with `version`, `production_release` and `downloads[]` of
//! `target`, `arch`, `edition` and `archive: {url, sha256}`), or from a mirror (`--mirror URL`
//! or `MUP_MIRROR`: `URL/full.json` and `URL/<archive file name>`). An archive is verified
//! against its published sha256 before anything is unpacked, unpacked into a temporary
//! directory and renamed into place, so an interrupted or corrupt download never leaves half
//! a package; installs of one version hold a lock. Every network read is bounded
//! ([`fetch`]), an archive is unpacked as hostile input ([`unpack`]), and the temporary
//! directories of killed installs are cleaned up ([`staging`]). A version is a path here
//! (`packages/<version>`), so every version — typed or read from the index — is checked by
//! [`is_exact`] before it is used as one.

mod fetch;
mod staging;
mod unpack;

use crate::deployment::layout;
use crate::deployment::model::Version;
use crate::error::InputError;
use crate::ui::Ui;
use anyhow::{bail, Context};
use serde::Deserialize;
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

    /// Where to download `archive` from: its URL, or on a mirror its file name (which must be
    /// a plain file name: the index is network input).
    fn archive_url(&self, archive: &Archive) -> anyhow::Result<String> {
        let Some(m) = &self.mirror else {
            return Ok(archive.url.clone());
        };
        let name = archive.url.rsplit('/').next().unwrap_or_default();
        let plain = !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'+'));
        if name.is_empty() || !plain {
            bail!(
                "the index names the archive {:?}, which has no plain file name to fetch from the mirror",
                archive.url
            );
        }
        Ok(format!("{m}/{name}"))
    }
}

/// Reads the release index (bounded, see [`fetch`]); releases whose version is not
/// [`is_exact`] are dropped: their version would be used as a directory name.
pub(crate) fn index(ui: &Ui, source: &Source) -> anyhow::Result<Index> {
    let mut index = fetch::index(ui, &source.index_url())?;
    index.versions.retain(|r| is_exact(&r.version));
    Ok(index)
}

/// `N.N.N` with an optional `-suffix` of letters and digits, in parts separated by `-` or `.`
/// (`7.0.14`, `8.0.0-rc1`): the one check of a version before it names a directory.
pub(crate) fn is_exact(text: &str) -> bool {
    let (core, suffix) = match text.split_once('-') {
        Some((c, s)) => (c, Some(s)),
        None => (text, None),
    };
    let numbers = core.split('.').collect::<Vec<_>>();
    numbers.len() == 3
        && numbers.iter().all(|n| is_number(n))
        && suffix.is_none_or(|s| {
            s.split(['-', '.'])
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()))
        })
}

/// One part of a version number: 1 to 9 digits.
fn is_number(n: &str) -> bool {
    (1..=9).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit())
}

/// What a user may type as a version: `latest`, a series (`7.0`) or an exact version; anything
/// else is refused (exit 2) naming the value.
fn check_spec(spec: &str) -> anyhow::Result<()> {
    let series = spec
        .split_once('.')
        .is_some_and(|(a, b)| is_number(a) && is_number(b));
    if spec == "latest" || series || is_exact(spec) {
        return Ok(());
    }
    Err(InputError::new(
        "VERSION",
        "",
        format!("{spec:?} is not a MongoDB version: give one such as 7.0.14 or 8.0.0-rc1, a series such as 7.0, or latest"),
    )
    .into())
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
                .filter(|v| is_exact(v))
                .collect()
        })
        .unwrap_or_default();
    v.sort_by_key(|s| Version::parse(s));
    v
}

/// `mup install`: the package of `spec` in the cache (downloaded, verified, unpacked); returns
/// the exact version. Already installed is a no-op. `confirm` is asked (with the version and
/// URL) before anything is downloaded: `mup install` itself never asks, an implicit install
/// by deploy, playground or migrate does.
pub(crate) fn install(
    ui: &Ui,
    spec: &str,
    source: &Source,
    confirm: &dyn Fn(&str) -> anyhow::Result<()>,
) -> anyhow::Result<String> {
    check_spec(spec)?;
    if is_exact(spec) && bin_dir(spec).join("mongod").is_file() {
        return Ok(spec.to_string());
    }
    let index = index(ui, source)?;
    let release = resolve(&index, spec)?;
    let version = release.version.clone();
    if bin_dir(&version).join("mongod").is_file() {
        return Ok(version);
    }
    let archive = choose(release)?;
    let url = source.archive_url(archive)?;
    confirm(&format!("Download MongoDB {version} from {url}?"))?;
    let dir = packages_dir();
    create_private(&dir)?;
    let _lock = crate::system::flock::hold(
        ui,
        &dir.join(format!(".{version}.lock")),
        &format!("MongoDB {version}"),
    )?;
    if bin_dir(&version).join("mongod").is_file() {
        return Ok(version); // another install finished while we waited
    }
    let _staging = staging::enter(ui, &dir)?;
    let tmp = tempfile::Builder::new()
        .prefix(staging::PREFIX)
        .tempdir_in(&dir)
        .context("cannot create a temporary directory")?;
    let file = tmp.path().join("archive.tgz");
    fetch::download(ui, &url, &file, &archive.sha256)?;
    let unpacked = tmp.path().join("unpacked");
    unpack::unpack(&file, &unpacked, &url)?;
    let root = unpack::package_root(&unpacked)
        .with_context(|| format!("{url} holds no bin/mongod: not a MongoDB server archive"))?;
    std::fs::rename(&root, dir.join(&version))
        .with_context(|| format!("cannot move the package into {}", dir.display()))?;
    outln!(
        ui,
        "MongoDB {version} installed in {}",
        dir.join(&version).display()
    )?;
    Ok(version)
}

/// Creates `dir` (and its parents) 0700 like every directory mup creates, or makes an
/// existing one (from an older mup) private.
fn create_private(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let mode = std::fs::metadata(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700))
            .with_context(|| format!("cannot make {} private", dir.display()))?;
    }
    Ok(())
}

/// `mup uninstall`: refused while a cluster under `MUP_HOME` uses the version, its
/// `bin_path` compared with the package after both are resolved (every symlink followed).
pub(crate) fn uninstall(ui: &Ui, version: &str) -> anyhow::Result<()> {
    if !is_exact(version) {
        return Err(InputError::new(
            "VERSION",
            "",
            format!("{version:?} is not an exact MongoDB version such as 7.0.14"),
        )
        .into());
    }
    let dir = packages_dir().join(version);
    if !dir.join("bin").join("mongod").is_file() {
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
    let resolved = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| layout::normalize(p));
    let package = resolved(&dir);
    let users: Vec<String> = crate::deployment::ports::other_clusters(Path::new("/"))
        .into_iter()
        .filter(|c| {
            c.bin_path
                .as_deref()
                .is_some_and(|b| resolved(b).starts_with(&package))
        })
        .map(|c| c.name)
        .collect();
    if !users.is_empty() {
        bail!(
            "MongoDB {version} is used by cluster(s) {}: destroy them first (or migrate them to another version)",
            users.join(", ")
        );
    }
    std::fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    outln!(ui, "MongoDB {version} uninstalled")?;
    Ok(())
}

/// `mup versions`: the production releases in the index, newest first, marked when
/// installed; with `installed_only`, the cache's versions without asking the index.
pub(crate) fn versions(ui: &Ui, source: &Source, installed_only: bool) -> anyhow::Result<()> {
    let have = installed();
    if installed_only {
        for v in have.iter().rev() {
            outln!(ui, "{v}")?;
        }
        return Ok(());
    }
    let index = index(ui, source)?;
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
        outln!(ui, "{v}{mark}")?;
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
    fn exact_versions_are_numbers_and_a_plain_suffix() {
        for ok in [
            "7.0.14",
            "8.0.0-rc1",
            "7.3.0-alpha-1026-g3c44f80",
            "4.4.0-rc13.1",
        ] {
            assert!(is_exact(ok), "{ok}");
        }
        for bad in [
            "./../../x",
            "../../escape",
            "7.0",
            "7.0.14/..",
            "7.0.14-",
            "7.0.14-a/b",
            "7..1",
            "7.0.14-..",
            "7.0.1 ",
            "",
            "1234567890.0.0",
        ] {
            assert!(!is_exact(bad), "{bad}");
        }
        assert!(check_spec("7.0").is_ok() && check_spec("latest").is_ok());
        assert!(check_spec("7").is_err() && check_spec("7.0.x").is_err());
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
