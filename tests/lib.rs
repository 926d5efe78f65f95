//! mup's integration tests: one binary (fast to build), one module per feature.

mod cluster;
mod common;
mod ctl;
mod errors;
mod gen_daemon;
mod gen_tree;
mod golden;
mod hooks;
mod init;
mod metrics_large;
mod monitor;
mod packages;
mod readme;
mod resolved_overlap;
mod resolved_paths;
mod safety;
mod scale;
mod secured_day2;
mod security;
mod standin;
mod standin_security;
mod upgrade;
