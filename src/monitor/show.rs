//! `mup cluster events NAME` / `mup ctl events`: what the event listener recorded, as lines
//! (`12:00:01.234 mongod-30000 RUNNING → EXITED (unexpected, exit -9)`) or JSON lines.

use super::{Event, Tail};
use crate::deployment::naming::Service;
use crate::deployment::Tree;
use crate::ui::Ui;
use std::time::{Duration, SystemTime};

/// How often `--follow` looks for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// What to show.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    pub follow: bool,
    pub json: bool,
    /// Only events younger than this.
    pub since: Option<Duration>,
}

/// Prints the recorded events (oldest first), then, with `follow`, new ones as they come.
pub(crate) fn run(ui: &Ui, tree: &Tree, opts: Options) -> anyhow::Result<()> {
    if tree.monitor(Service::Events).is_none() {
        anyhow::bail!(
            "cluster {} records no events: {} says events: false (set it to true and run `mup gen` and `mup ctl reload`)",
            tree.name(),
            tree.layout.meta_file().display()
        );
    }
    let log = tree.layout.events_log();
    let cutoff = opts.since.and_then(|d| SystemTime::now().checked_sub(d));
    let shown = std::cell::Cell::new(0usize);
    let show = |ev: &Event| -> std::io::Result<()> {
        if cutoff.is_some_and(|c| ev.at().is_some_and(|t| t < c)) {
            return Ok(());
        }
        shown.set(shown.get() + 1);
        if opts.json {
            outln!(ui, "{}", serde_json::to_string(ev).unwrap_or_default())
        } else {
            outln!(ui, "{}", human(ev, SystemTime::now()))
        }
    };
    let files = super::log_files(&log);
    for backup in &files[..files.len() - 1] {
        let text = std::fs::read_to_string(backup).unwrap_or_default();
        for ev in super::parse_lines(&text) {
            show(&ev)?;
        }
    }
    let mut tail = Tail::new(log.clone());
    let mut first = true;
    loop {
        for ev in tail.read_new() {
            show(&ev)?;
        }
        if first && shown.get() == 0 && !opts.json {
            let when = opts
                .since
                .map(|d| format!(" in the last {}", humantime::format_duration(d)))
                .unwrap_or_default();
            logln!("no events{when} in {}", log.display());
        }
        first = false;
        if !opts.follow || ui.stdout_closed() {
            return Ok(());
        }
        std::thread::sleep(FOLLOW_POLL);
    }
}

/// One event as a line: the time (UTC; with the date when not `now`'s day), the program,
/// the transition and what else is known.
pub(crate) fn human(ev: &Event, now: SystemTime) -> String {
    let today = humantime::format_rfc3339_millis(now).to_string();
    let when = match (ev.time.get(..10), ev.time.get(11..23)) {
        (Some(day), Some(clock)) if today.starts_with(day) => clock.to_string(),
        (Some(day), Some(clock)) => format!("{day} {clock}"),
        _ => ev.time.clone(),
    };
    let mut detail = Vec::new();
    match ev.expected {
        Some(true) => detail.push("expected".to_string()),
        Some(false) => detail.push("unexpected".to_string()),
        None => {}
    }
    if let Some(status) = ev.exit_status {
        detail.push(format!("exit {status}"));
    }
    if ev.to == "RUNNING" {
        if let Some(pid) = ev.pid {
            detail.push(format!("pid {pid}"));
        }
    }
    let detail = if detail.is_empty() {
        String::new()
    } else {
        format!(" ({})", detail.join(", "))
    };
    format!("{when} {} {} → {}{detail}", ev.program, ev.from, ev.to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_reads_as_one_line() {
        let ev = Event {
            time: "2026-11-27T12:00:01.234Z".into(),
            program: "mongod-30000".into(),
            group: "mongod-servers".into(),
            from: "RUNNING".into(),
            to: "EXITED".into(),
            expected: Some(false),
            pid: Some(42),
            exit_status: Some(-9),
        };
        let same_day = humantime::parse_rfc3339("2026-11-27T18:00:00Z").expect("time");
        assert_eq!(
            human(&ev, same_day),
            "12:00:01.234 mongod-30000 RUNNING → EXITED (unexpected, exit -9)"
        );
        let next_day = humantime::parse_rfc3339("2026-11-28T01:00:00Z").expect("time");
        assert!(human(&ev, next_day).starts_with("2026-11-27 12:00:01.234 "));
    }
}
