//! Everything mup reads from the network for packages, each read bounded: the connect and
//! idle-read timeout (`MUP_DOWNLOAD_TIMEOUT` seconds, default [`DEFAULT_TIMEOUT`]), a floor on
//! the rate over each such period ([`MIN_RATE`], so a trickle ends too), the size of
//! the release index ([`INDEX_MAX`]) and of an archive ([`ARCHIVE_MAX`]). The index is read
//! (up to its bound) and then parsed; an archive is hashed as it streams to disk.

use super::Index;
use crate::ui::Ui;
use anyhow::{anyhow, bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::time::Duration;

/// The longest wait for a connection, for the response headers, and between two reads of
/// the body, unless `MUP_DOWNLOAD_TIMEOUT` says otherwise.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The slowest a body may arrive, averaged over each whole timeout period: a mirror that
/// sends a byte now and then is never silent for the timeout, yet would never finish. At
/// this floor the largest archive takes at most about 36 hours, the largest index 2.
pub(crate) const MIN_RATE: u64 = 16 << 10;
/// The largest release index mup reads.
pub(crate) const INDEX_MAX: u64 = 128 << 20;
/// The largest archive mup downloads.
pub(crate) const ARCHIVE_MAX: u64 = 2 << 30;

fn timeout() -> Duration {
    std::env::var("MUP_DOWNLOAD_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9)
        .map(Duration::from_secs_f64)
        .unwrap_or(DEFAULT_TIMEOUT)
}

/// `n` bytes for a message: `128 MiB`.
pub(crate) fn size(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{} GiB", n >> 30),
        n if n >= 1 << 20 => format!("{} MiB", n >> 20),
        n => format!("{n} bytes"),
    }
}

/// A response body read with a bound on its size and a name for its errors: past `limit`
/// bytes, or when the server sends nothing for the timeout, a read fails with a message
/// naming the URL.
pub(crate) struct Body {
    resp: reqwest::blocking::Response,
    url: String,
    what: &'static str,
    read: u64,
    limit: u64,
    /// The current timeout period: when it began, and the bytes read since.
    window: (std::time::Instant, u64),
}

impl Body {
    /// The declared length, if the server sent one.
    pub(crate) fn content_length(&self) -> Option<u64> {
        self.resp.content_length()
    }
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.resp.read(buf).map_err(|e| {
            if timed_out(&e) {
                std::io::Error::other(stalled(&self.url))
            } else {
                std::io::Error::other(format!("the download of {} broke off: {e}", self.url))
            }
        })?;
        self.read += n as u64;
        self.window.1 += n as u64;
        let period = timeout();
        if n > 0 && self.window.0.elapsed() >= period {
            if self.window.1 < (MIN_RATE as f64 * period.as_secs_f64()) as u64 {
                return Err(std::io::Error::other(format!(
                    "{} sent only {} bytes in {} s, slower than {} KiB/s: gave up (MUP_DOWNLOAD_TIMEOUT sets the period in seconds)",
                    self.url,
                    self.window.1,
                    period.as_secs_f64(),
                    MIN_RATE >> 10
                )));
            }
            self.window = (std::time::Instant::now(), 0);
        }
        if self.read > self.limit {
            return Err(std::io::Error::other(format!(
                "{} is larger than {}, the most mup reads for {}: refused",
                self.url,
                size(self.limit),
                self.what
            )));
        }
        Ok(n)
    }
}

fn stalled(url: &str) -> String {
    format!(
        "{url} sent nothing for {} s: gave up (MUP_DOWNLOAD_TIMEOUT sets the wait in seconds)",
        timeout().as_secs_f64()
    )
}

/// Whether a read failed because the timeout passed (reqwest wraps its own error).
fn timed_out(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::TimedOut
        || e.get_ref()
            .and_then(|inner| inner.downcast_ref::<reqwest::Error>())
            .is_some_and(reqwest::Error::is_timeout)
}

/// GETs `url`: a success status within the timeout, and a declared length within `limit`.
fn get(ui: &Ui, url: &str, what: &'static str, limit: u64) -> anyhow::Result<Body> {
    if url.starts_with("http://") {
        warnln!(ui, "{url} is plain HTTP: the download is checked against the index's sha256, but the index itself is not protected");
    }
    let wait = timeout();
    // In the blocking client `timeout` bounds the wait for the headers and each body read.
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(wait)
        .timeout(wait)
        .build()
        .context("cannot set up the HTTP client")?;
    let resp = client.get(url).send().map_err(|e| {
        if e.is_timeout() {
            anyhow!(stalled(url))
        } else {
            anyhow!(e).context(format!("cannot download {url}"))
        }
    })?;
    if !resp.status().is_success() {
        bail!("cannot download {url}: HTTP {}", resp.status());
    }
    if let Some(len) = resp.content_length().filter(|l| *l > limit) {
        bail!(
            "{url} is {} bytes, larger than {}, the most mup reads for {what}: refused",
            len,
            size(limit)
        );
    }
    Ok(Body {
        resp,
        url: url.to_string(),
        what,
        read: 0,
        limit,
        window: (std::time::Instant::now(), 0),
    })
}

/// Reads and parses the release index at `url`, at most [`INDEX_MAX`] bytes of it.
pub(crate) fn index(ui: &Ui, url: &str) -> anyhow::Result<Index> {
    let mut body = get(ui, url, "a release index", INDEX_MAX)?;
    let mut text = Vec::new();
    body.read_to_end(&mut text)?;
    serde_json::from_slice(&text).with_context(|| format!("{url} is not a MongoDB release index"))
}

/// Streams `url` into `file`, hashing as it goes; fails (and keeps nothing) unless the whole
/// body arrived and its sha256 is `sha256`.
pub(crate) fn download(ui: &Ui, url: &str, file: &Path, sha256: &str) -> anyhow::Result<()> {
    if sha256.is_empty() {
        bail!("the index publishes no sha256 for {url}: refusing to install an unverified archive");
    }
    let mut body = get(ui, url, "an archive", ARCHIVE_MAX)?;
    let expected = body.content_length();
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
    let mut out =
        std::fs::File::create(file).with_context(|| format!("cannot create {}", file.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = body.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .with_context(|| format!("cannot write {}", file.display()))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(size(INDEX_MAX), "128 MiB");
        assert_eq!(size(ARCHIVE_MAX), "2 GiB");
        assert_eq!(size(3 << 29), "1536 MiB");
        assert_eq!(size(512), "512 bytes");
    }
}
