//! Operations as plans of steps: a multi-step operation on a cluster (upgrade, scale-out,
//! scale-in, and the ordered start) first builds a [`Plan`] — an ordered list of typed steps,
//! a pure value that unit tests check and `--dry-run` prints — and then one executor,
//! [`execute`], runs it: Ctrl-C noticed between steps, each step said as it begins, and a
//! failure reported as the step that failed (its number and what it was doing), with the
//! steps that were done before it.
//!
//! A step's own waits are bounded by the step (every wait in mup has a limit); the executor
//! adds no timing of its own.

use crate::system::interrupt;

/// One step of a plan: what it does, said in one line (`restart shard1-2 on 8.0.4`).
pub(crate) trait Step {
    fn describe(&self) -> String;
}

/// A step the cluster's present state refuses (a removal that would leave a set without a
/// healthy majority): running the plan again does not help until that state changes, so the
/// commands do not suggest it.
#[derive(Debug)]
pub(crate) struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// True when `err` is (or wraps) a [`Refused`] step.
pub(crate) fn refused(err: &anyhow::Error) -> bool {
    err.chain().any(|c| c.is::<Refused>())
}

/// An ordered list of steps and what they achieve together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan<S> {
    /// What the plan does, e.g. `upgrade cluster shards from 7.0.14 to 8.0.4`.
    pub what: String,
    pub steps: Vec<S>,
}

impl<S: Step> Plan<S> {
    pub(crate) fn new(what: impl Into<String>) -> Plan<S> {
        Plan {
            what: what.into(),
            steps: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, step: S) {
        self.steps.push(step);
    }

    /// The plan as `--dry-run` prints it: its title, then one numbered line per step
    /// (`nothing to do` when it has none).
    pub(crate) fn render(&self) -> String {
        let mut out = format!("{}:\n", self.what);
        if self.steps.is_empty() {
            out.push_str("  nothing to do\n");
        }
        let width = self.steps.len().to_string().len();
        for (i, s) in self.steps.iter().enumerate() {
            out.push_str(&format!("  {:>width$}. {}\n", i + 1, s.describe()));
        }
        out
    }
}

/// What [`execute`] tells about a step as it runs (the progress display of the command).
pub(crate) trait Observer {
    /// Step `index` (0-based) of `total` begins.
    fn begin(&self, index: usize, total: usize, what: &str);
    /// Step `index` ended well.
    fn end(&self, index: usize, total: usize, what: &str);
}

/// An observer that says nothing (tests, and callers that report at the end).
pub(crate) struct Quiet;

impl Observer for Quiet {
    fn begin(&self, _: usize, _: usize, _: &str) {}
    fn end(&self, _: usize, _: usize, _: &str) {}
}

/// Runs `plan`'s steps in order with `run`, telling `observer` of each. Ctrl-C (once
/// [`interrupt::catch`] was called) is noticed before each step. A failing step ends the
/// plan: the error names the step (`step 3 of 7 (restart shard1-2 on 8.0.4) failed`) and
/// how many were done; the steps after it are not run.
pub(crate) fn execute<S: Step>(
    plan: &Plan<S>,
    observer: &dyn Observer,
    mut run: impl FnMut(&S) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let total = plan.steps.len();
    for (i, step) in plan.steps.iter().enumerate() {
        let what = step.describe();
        interrupt::check().map_err(|e| e.context(stopped_before(plan, i, &what)))?;
        observer.begin(i, total, &what);
        run(step).map_err(|e| {
            e.context(format!(
                "{}: step {} of {total} ({what}) failed; {} step(s) before it were done",
                plan.what,
                i + 1,
                i
            ))
        })?;
        observer.end(i, total, &what);
    }
    Ok(())
}

fn stopped_before<S>(plan: &Plan<S>, i: usize, what: &str) -> String {
    format!(
        "{}: stopped before step {} of {} ({what}); {i} step(s) were done",
        plan.what,
        i + 1,
        plan.steps.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq)]
    struct S(&'static str);

    impl Step for S {
        fn describe(&self) -> String {
            self.0.to_string()
        }
    }

    fn plan() -> Plan<S> {
        let mut p = Plan::new("do things");
        for s in ["one", "two", "three"] {
            p.push(S(s));
        }
        p
    }

    #[test]
    fn render_numbers_the_steps() {
        assert_eq!(
            plan().render(),
            "do things:\n  1. one\n  2. two\n  3. three\n"
        );
        assert_eq!(Plan::<S>::new("idle").render(), "idle:\n  nothing to do\n");
    }

    #[test]
    fn a_failing_step_ends_the_plan_and_is_named() {
        let mut ran = Vec::new();
        let err = execute(&plan(), &Quiet, |s| {
            ran.push(s.0);
            if s.0 == "two" {
                anyhow::bail!("the server said no")
            }
            Ok(())
        })
        .expect_err("step two fails");
        assert_eq!(ran, ["one", "two"]);
        let text = format!("{err:#}");
        assert!(
            text.contains("step 2 of 3 (two) failed; 1 step(s) before it were done"),
            "{text}"
        );
        assert!(text.contains("the server said no"), "{text}");
    }

    #[test]
    fn every_step_runs_in_order() {
        let mut ran = Vec::new();
        execute(&plan(), &Quiet, |s| {
            ran.push(s.0);
            Ok(())
        })
        .expect("no step fails");
        assert_eq!(ran, ["one", "two", "three"]);
    }
}
