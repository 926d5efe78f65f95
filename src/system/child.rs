//! Running a short-lived child program with bounds: a time limit, a cap on the bytes it may
//! print, and its own process group, killed as a whole when either is passed. Every child
//! mup waits for goes through [`run`]; long-lived children that stay attached to the user
//! (`connect`'s shell) and supervised ones (hooks) do not.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a child may run and how much it may print (on stdout and on stderr each).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bound {
    pub time: Duration,
    pub bytes: usize,
}

/// What a child that finished within its bound printed, and how it ended.
#[derive(Debug)]
pub(crate) struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Why [`run`] has no [`Output`].
#[derive(Debug)]
pub(crate) enum Failure {
    /// The program could not be started.
    Spawn(std::io::Error),
    /// It ran past the time limit (it and its process group were killed).
    Timeout,
    /// It printed more than the byte cap (it and its process group were killed).
    TooMuchOutput,
}

/// `cmd` with its arguments, the way messages name it.
pub(crate) fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `cmd` to completion within `bound`, stdin closed, stdout and stderr captured, in a
/// new process group. On a failure the error names the command, the limit passed, and
/// `advice` (what the user can do).
pub(crate) fn run(cmd: &mut Command, bound: Bound, advice: &str) -> anyhow::Result<Output> {
    run_bounded(cmd, bound).map_err(|f| {
        let what = describe(cmd);
        match f {
            Failure::Spawn(e) => anyhow::anyhow!("cannot run `{what}`: {e}; {advice}"),
            Failure::Timeout => anyhow::anyhow!(
                "`{what}` did not finish within {} s (killed it and its process group); {advice}",
                bound.time.as_secs_f64()
            ),
            Failure::TooMuchOutput => anyhow::anyhow!(
                "`{what}` printed more than {} bytes (killed it and its process group); {advice}",
                bound.bytes
            ),
        }
    })
}

/// [`run`] without the message.
pub(crate) fn run_bounded(cmd: &mut Command, bound: Bound) -> Result<Output, Failure> {
    let deadline = Instant::now() + bound.time;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(Failure::Spawn)?;
    let group = rustix::process::Pid::from_raw(child.id() as i32);
    let kill = |child: &mut std::process::Child| {
        if let Some(g) = group {
            let _ = rustix::process::kill_process_group(g, rustix::process::Signal::KILL);
        }
        let _ = child.kill();
        let _ = child.wait();
    };
    let (tx, rx) = mpsc::channel();
    let stdout = child
        .stdout
        .take()
        .map(|p| Box::new(p) as Box<dyn Read + Send>);
    let stderr = child
        .stderr
        .take()
        .map(|p| Box::new(p) as Box<dyn Read + Send>);
    for (index, pipe) in [stdout, stderr].into_iter().enumerate() {
        let tx = tx.clone();
        let pipe = pipe.expect("both pipes were requested");
        // Detached: a reader blocked on a pipe that a process outside the group still
        // holds must not hold up the caller.
        std::thread::spawn(move || {
            let _ = tx.send((index, read_capped(pipe, bound.bytes)));
        });
    }
    drop(tx);
    let mut captured: [Option<Vec<u8>>; 2] = [None, None];
    while captured.iter().any(Option::is_none) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((index, Some(bytes))) => captured[index] = Some(bytes),
            Ok((_, None)) => {
                kill(&mut child);
                return Err(Failure::TooMuchOutput);
            }
            Err(_) => {
                kill(&mut child);
                return Err(Failure::Timeout);
            }
        }
    }
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                kill(&mut child);
                return Err(Failure::Timeout);
            }
        }
    };
    let [stdout, stderr] = captured.map(Option::unwrap_or_default);
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// Everything `pipe` yields up to its end, or `None` once it passes `cap` bytes.
fn read_capped(pipe: Box<dyn Read + Send>, cap: usize) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let limit = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
    pipe.take(limit).read_to_end(&mut buf).ok()?;
    (buf.len() <= cap).then_some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("/bin/sh");
        c.arg("-c").arg(script);
        c
    }

    const SHORT: Bound = Bound {
        time: Duration::from_millis(500),
        bytes: 4096,
    };

    #[test]
    fn returns_what_a_quick_child_printed() {
        let out = run(&mut sh("echo out; echo err >&2; exit 3"), SHORT, "x").expect("runs");
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
        assert_eq!(out.status.code(), Some(3));
    }

    #[test]
    fn kills_a_hanging_child_with_its_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pidfile = dir.path().join("pid");
        let script = format!("sleep 1000 & echo $! > {}; wait", pidfile.display());
        let err = run(&mut sh(&script), SHORT, "check the program")
            .expect_err("times out")
            .to_string();
        assert!(
            err.contains("did not finish within 0.5 s") && err.ends_with("; check the program"),
            "{err}"
        );
        assert!(err.starts_with("`/bin/sh -c sleep 1000"), "{err}");
        let pid: u32 = std::fs::read_to_string(&pidfile)
            .expect("the script wrote its child's pid")
            .trim()
            .parse()
            .expect("a pid");
        assert!(
            crate::system::procs::wait_gone(pid, Duration::from_secs(5)),
            "the grandchild {pid} was killed with the group"
        );
    }

    #[test]
    fn stops_a_child_that_prints_endlessly() {
        let bound = Bound {
            time: Duration::from_secs(60),
            bytes: 4096,
        };
        let err = run(&mut sh("yes 'db version v7.0.14'"), bound, "x")
            .expect_err("too much")
            .to_string();
        assert!(err.contains("printed more than 4096 bytes"), "{err}");
    }

    #[test]
    fn names_a_program_that_cannot_start() {
        let err = run(&mut Command::new("/nonexistent/prog"), SHORT, "install it")
            .expect_err("no such program")
            .to_string();
        assert!(
            err.starts_with("cannot run `/nonexistent/prog`: ") && err.ends_with("; install it"),
            "{err}"
        );
    }
}
