//! The README's commands cannot rot: its main-job command runs, and CI runs its test command.

use crate::common::{mup, repo};

fn readme() -> String {
    std::fs::read_to_string(repo().join("README.md")).expect("README.md")
}

#[test]
fn the_readme_main_job_command_works() {
    let text = readme();
    let line = text
        .lines()
        .find(|l| l.starts_with("cargo run --locked --release -- gen "))
        .expect("the README's first command runs `mup gen`");
    let args: Vec<&str> = line
        .trim_start_matches("cargo run --locked --release -- ")
        .split_whitespace()
        .collect();
    let tmp = tempfile::tempdir().expect("tempdir");
    let out_at = args.iter().position(|a| *a == "--out").expect("--out") + 1;
    let out = tmp.path().join("demo");
    let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    args[out_at] = out.display().to_string();
    mup(&tmp.path().join("home")).args(&args).assert().success();
    assert!(out.join("supervisor.ini").is_file() && out.join("meta.yaml").is_file());
}

#[test]
fn ci_runs_the_readme_test_command() {
    let text = readme();
    let test_cmd = text
        .lines()
        .find(|l| l.starts_with("cargo test"))
        .expect("the README names its test command")
        .split('#')
        .next()
        .expect("command")
        .trim()
        .to_string();
    let ci = std::fs::read_to_string(repo().join(".ci/run")).expect(".ci/run");
    assert!(
        ci.lines().any(|l| l.trim() == test_cmd),
        ".ci/run must run `{test_cmd}`"
    );
}
