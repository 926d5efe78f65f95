//! Command-line options (clap). Nothing here reaches the logic directly: `lib::run` maps them.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Run local MongoDB clusters (standalone, replica sets, sharded) under a stock supervisord.
#[derive(Debug, Parser)]
#[command(name = "mup", version, about, propagate_version = true)]
pub struct Opts {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compile topology.yaml + meta.yaml into the cluster's supervisord tree
    Gen(GenOpts),
    /// Install a stock supervisord (supervisor==4.3.0) into a venv under $MUP_HOME/tools
    Setup,
}

#[derive(Debug, clap::Args)]
pub struct GenOpts {
    /// The topology file (global, mongod_servers, config_servers, mongos_servers)
    pub topology: PathBuf,
    /// The cluster's meta.yaml (name, version, bin_path; the rest is decided once)
    #[arg(long)]
    pub meta: PathBuf,
    /// Where to write the tree [default: $MUP_HOME/storage/clusters/<name>]
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write nothing; exit 1 and list the differences when the tree on disk is not up to date
    #[arg(long, conflicts_with = "dry_run")]
    pub check: bool,
    /// Write nothing; print the files that would be written
    #[arg(long)]
    pub dry_run: bool,
}
