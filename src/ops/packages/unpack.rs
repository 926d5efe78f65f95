//! Unpacking a verified archive, as hostile input: only regular files and directories, each
//! inside the target (the tar crate refuses `..` and absolute paths); at most
//! [`MAX_ENTRIES`] entries; an unpacked size bound (see [`limit`]) checked before each entry
//! is written and on the decompressed stream itself, so a gzip bomb stops as soon as it
//! passes it; and modes clamped to 0755: no setuid, setgid or sticky bit, nothing group- or
//! other-writable, whatever the archive says.

use super::fetch::size;
use anyhow::{bail, Context};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// How many times its archive's size a package may unpack to: gzip rarely shrinks
/// executables more than about 5 times (`gzip -l ARCHIVE.tgz` shows both sizes).
pub(crate) const RATIO: u64 = 16;
/// The unpacked size always allowed, however small the archive (tar's own padding makes a
/// tiny archive expand far more than [`RATIO`]).
pub(crate) const FLOOR: u64 = 64 << 20;
/// The unpacked size never allowed, however large the archive.
pub(crate) const ABSOLUTE: u64 = 4 << 30;
/// The most entries (files and directories) an archive may hold.
pub(crate) const MAX_ENTRIES: u64 = 10_000;
/// The widest mode anything in a package gets.
const MODE_MASK: u32 = 0o755;

/// The unpacked-size bound of an archive of `archive_len` bytes.
pub(crate) fn limit(archive_len: u64) -> u64 {
    archive_len.saturating_mul(RATIO).clamp(FLOOR, ABSOLUTE)
}

/// The decompressed stream, failing once more than `limit` bytes came out of it.
struct Counted<R> {
    inner: R,
    read: u64,
    limit: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(std::io::Error::other(format!(
                "it unpacks to more than {}",
                size(self.limit)
            )));
        }
        Ok(n)
    }
}

/// Unpacks `archive` into `into` (which must not exist) under the bounds above; `name` (its
/// URL) names it in messages.
pub(crate) fn unpack(archive: &Path, into: &Path, name: &str) -> anyhow::Result<()> {
    let what = || format!("cannot unpack {name}");
    let len = std::fs::metadata(archive).with_context(what)?.len();
    let limit = limit(len);
    let f = std::fs::File::open(archive).with_context(what)?;
    let stream = Counted {
        inner: flate2::read::GzDecoder::new(std::io::BufReader::new(f)),
        read: 0,
        limit,
    };
    let mut tar = tar::Archive::new(stream);
    // Permission bits only (no setuid/setgid/sticky), less group/other write; no owners.
    tar.set_preserve_permissions(false);
    tar.set_mask(0o022);
    tar.set_preserve_ownerships(false);
    tar.set_unpack_xattrs(false);
    tar.set_overwrite(false);
    std::fs::create_dir(into).with_context(what)?;
    let mut total = 0u64;
    for (count, entry) in (1u64..).zip(tar.entries().with_context(what)?) {
        let mut entry = entry.with_context(what)?;
        let entry_name = entry.path().map(|p| p.display().to_string());
        let entry_name = entry_name.unwrap_or_else(|_| "an entry".into());
        if count > MAX_ENTRIES {
            bail!("{}: more than {MAX_ENTRIES} entries", what());
        }
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            continue;
        }
        if !(kind.is_file() || kind.is_dir()) {
            bail!(
                "{}: {entry_name} is a {kind:?} entry; a package holds only files and directories",
                what()
            );
        }
        total = total.saturating_add(entry.size());
        if total > limit {
            bail!(
                "{}: with {entry_name} it would unpack to more than {} ({RATIO} times the archive's {} bytes, at least {}, at most {}): stopped",
                what(),
                size(limit),
                len,
                size(FLOOR),
                size(ABSOLUTE)
            );
        }
        entry
            .unpack_in(into)
            .with_context(|| format!("{}: {entry_name}", what()))?;
    }
    clamp_modes(into)
}

/// Every file and directory under `dir` (and `dir` itself) at most [`MODE_MASK`], directories
/// at least 0700; this also covers the parent directories tar creates for entries the archive did not list.
fn clamp_modes(dir: &Path) -> anyhow::Result<()> {
    let mut todo = vec![dir.to_path_buf()];
    while let Some(path) = todo.pop() {
        let meta = std::fs::symlink_metadata(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mode = meta.permissions().mode() & 0o7777;
        if meta.is_dir() {
            for e in std::fs::read_dir(&path)
                .with_context(|| format!("cannot read {}", path.display()))?
            {
                todo.push(e?.path());
            }
        } else if !meta.is_file() {
            bail!("{} is neither a file nor a directory", path.display());
        }
        // A directory stays the owner's to enter and change (so it can be removed).
        let want = if meta.is_dir() {
            (mode & MODE_MASK) | 0o700
        } else {
            mode & MODE_MASK
        };
        if want != mode {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(want))
                .with_context(|| format!("cannot set the mode of {}", path.display()))?;
        }
    }
    Ok(())
}

/// The directory of an unpacked archive that holds `bin/mongod` (the archive's top directory).
pub(crate) fn package_root(unpacked: &Path) -> Option<PathBuf> {
    if unpacked.join("bin").join("mongod").is_file() {
        return Some(unpacked.to_path_buf());
    }
    std::fs::read_dir(unpacked)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("bin").join("mongod").is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A .tgz in `dir` of `top/bin/mongod` (mode 04777), and a symlink `top/bin/evil` if `link`.
    fn archive(dir: &Path, link: bool) -> PathBuf {
        let path = dir.join(if link { "link.tgz" } else { "plain.tgz" });
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).expect("create"),
            flate2::Compression::fast(),
        );
        let mut b = tar::Builder::new(gz);
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o4777);
        h.set_cksum();
        b.append_data(&mut h, "top/bin/mongod", &b"#!\n"[..])
            .expect("file");
        if link {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, "top/bin/evil", "/etc/passwd")
                .expect("link");
        }
        b.into_inner().expect("tar").finish().expect("gz");
        path
    }

    #[test]
    fn modes_are_clamped_and_links_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let into = dir.path().join("plain");
        unpack(&archive(dir.path(), false), &into, "plain").expect("unpacks");
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o7777;
        assert_eq!(mode(&into.join("top/bin/mongod")), 0o755);
        assert_eq!(mode(&into.join("top/bin")), 0o755);
        let err = unpack(&archive(dir.path(), true), &dir.path().join("l"), "link")
            .expect_err("a link is refused");
        assert!(
            format!("{err:#}").contains("top/bin/evil is a Symlink entry"),
            "{err:#}"
        );
    }

    #[test]
    fn the_bound_follows_the_archive_between_floor_and_absolute() {
        assert_eq!(limit(0), FLOOR);
        assert_eq!(limit(70 << 20), (70 * RATIO) << 20);
        assert_eq!(limit(u64::MAX), ABSOLUTE);
    }
}
