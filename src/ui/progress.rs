//! Progress of an operation over programs: a bar on a terminal, `-v` lines otherwise.

use super::Ui;
use indicatif::{ProgressBar, ProgressStyle};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The progress of a start: `[done/total]` on a terminal; when piped, with `--verbose`, one
/// `[done/total] program ...` line per program. Each program counts once, so the count only
/// goes up, and it reaches the total when every program is done.
pub(crate) struct Progress {
    ui: Ui,
    bar: ProgressBar,
    total: usize,
    done: RefCell<BTreeSet<String>>,
    began: Instant,
}

impl Progress {
    pub(crate) fn new(ui: Ui, total: usize) -> Progress {
        let bar = if ui.terminal() {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{pos}/{len}] {msg}")
                    .expect("static template parses"),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        } else {
            ProgressBar::hidden()
        };
        Progress {
            ui,
            bar,
            total,
            done: RefCell::new(BTreeSet::new()),
            began: Instant::now(),
        }
    }

    pub(crate) fn message(&self, msg: String) {
        self.bar.set_message(msg);
    }

    /// Counts `program` as done (once, whatever the number of calls), saying `what` of it.
    pub(crate) fn done(&self, program: &str, what: &str) {
        if !self.done.borrow_mut().insert(program.to_string()) {
            return;
        }
        let count = self.count();
        self.bar.set_position(count as u64);
        if !self.ui.terminal() && self.ui.verbose() {
            // A progress line: a closed pipe is noticed by the command's next real output.
            let _ = outln!(
                self.ui,
                "[{count}/{}] {program} {what} ({:.1} s)",
                self.total,
                self.elapsed()
            );
        }
    }

    /// How many programs are done.
    pub(crate) fn count(&self) -> usize {
        self.done.borrow().len()
    }

    pub(crate) fn elapsed(&self) -> f64 {
        self.began.elapsed().as_secs_f64()
    }

    /// A step's line: above the bar on a terminal, when piped only with `--verbose`.
    pub(crate) fn say(&self, line: String) {
        if self.ui.terminal() {
            self.bar.println(line);
        } else if self.ui.verbose() {
            let _ = outln!(self.ui, "{line}");
        }
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_only_goes_up_and_reaches_the_total() {
        let p = Progress::new(Ui::new(false), 3);
        let mut seen = vec![p.count()];
        for program in ["a", "b", "a", "b", "c", "a"] {
            p.done(program, "answers");
            seen.push(p.count());
        }
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
        assert_eq!(p.count(), 3);
    }
}
