//! The arguments of `mup cluster ...` and `mup playground ...`.

use super::{BinOpts, EventsOpts, Filters, InitOpts, PlanOpts, SecurityOpts, SourceOpts};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum ClusterCmd {
    /// Generate the tree, bring supervisord up and start every node in tier order
    Deploy(DeployArgs),
    /// Add nodes to a running cluster: new members of a replica set, a new shard, new
    /// routers; no other node restarts
    ScaleOut(ScaleOutArgs),
    /// Remove nodes from a running cluster: members of a replica set, a whole shard
    /// (drained first), routers; no other node restarts, data directories are kept
    ScaleIn(ScaleInArgs),
    /// Rolling upgrade to another MongoDB version: one node restarted at a time, secondaries
    /// before their primary (after a step-down), the balancer stopped meanwhile; run it again
    /// after an interruption to continue
    Upgrade(UpgradeArgs),
    /// Start nodes (supervisord first, if needed), in tier order; the whole cluster is made
    /// ready (replica sets initiated, shards added)
    Start {
        /// The cluster's name (a directory under $MUP_HOME/storage/clusters)
        name: String,
        #[command(flatten)]
        filters: Filters,
        #[command(flatten)]
        init: InitOpts,
        #[command(flatten)]
        plan: PlanOpts,
    },
    /// Stop nodes in reverse tier order; without filters, shut supervisord down too
    Stop {
        /// The cluster's name (a directory under $MUP_HOME/storage/clusters)
        name: String,
        #[command(flatten)]
        filters: Filters,
        #[command(flatten)]
        plan: PlanOpts,
    },
    /// Stop, then start, nodes in tier order
    Restart {
        /// The cluster's name (a directory under $MUP_HOME/storage/clusters)
        name: String,
        #[command(flatten)]
        filters: Filters,
        #[command(flatten)]
        plan: PlanOpts,
    },
    /// The cluster and one row per node; exit 3 when a node is not RUNNING
    Display {
        /// The cluster's name (a directory under $MUP_HOME/storage/clusters)
        name: String,
        /// Machine-readable output (schema in the README)
        #[arg(long)]
        json: bool,
    },
    /// Open a MongoDB shell (mongosh; mongo for versions before 6.0) on the cluster
    Connect {
        /// The cluster's name (a directory under $MUP_HOME/storage/clusters)
        name: String,
    },
    /// Process state changes of the cluster's programs (crashes, restarts, stops)
    Events {
        /// The cluster's name (a directory under $MUP_HOME/storage/clusters)
        name: String,
        #[command(flatten)]
        opts: EventsOpts,
    },
    /// Print the cluster's connection string (a secured cluster's without its password)
    Uri {
        /// The cluster's name (a directory under $MUP_HOME/storage/clusters)
        name: String,
        /// Put the password in the connection string
        #[arg(long)]
        show_password: bool,
    },
    /// Where a secured cluster's credentials, keyFile and certificates are kept
    Credentials {
        /// The cluster's name (a directory under $MUP_HOME/storage/clusters)
        name: String,
    },
    /// Every cluster under $MUP_HOME
    List {
        #[arg(long)]
        json: bool,
    },
    /// Stop everything, shut supervisord down and remove the cluster
    Destroy {
        /// The cluster's name (a directory under $MUP_HOME/storage/clusters)
        name: String,
        /// Keep the data directories
        #[arg(long)]
        keep_data: bool,
        /// Do not ask for confirmation
        #[arg(short, long)]
        yes: bool,
    },
    /// Move a PID-tracked cluster (Go mup) under supervisord, data directories in place
    Migrate {
        /// The cluster's name (a directory under $MUP_HOME/storage/clusters)
        name: String,
        /// Other binaries than the legacy cluster's (e.g. --version 7.0: the package)
        #[command(flatten)]
        bins: BinOpts,
        /// Do not ask before downloading MongoDB
        #[arg(short, long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum PlaygroundCmd {
    /// Deploy (or start) the playground replica set rs0
    Start {
        /// Replica set members
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        #[command(flatten)]
        bins: BinOpts,
        #[command(flatten)]
        init: InitOpts,
        #[command(flatten)]
        security: SecurityOpts,
        /// Do not ask before downloading MongoDB
        #[arg(short, long)]
        yes: bool,
    },
    /// Stop the playground and its supervisord
    Stop,
    /// Show the playground and its connection string
    Status,
    /// Open a MongoDB shell on the playground
    Connect,
    /// Remove the playground and its data
    Destroy,
}

/// The arguments of `mup cluster deploy`.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    /// The cluster's name (a directory under $MUP_HOME/storage/clusters)
    pub name: String,
    /// The topology file (global, mongod_servers, config_servers, mongos_servers)
    pub topology: PathBuf,
    #[command(flatten)]
    pub bins: BinOpts,
    #[command(flatten)]
    pub init: InitOpts,
    #[command(flatten)]
    pub security: SecurityOpts,
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub yes: bool,
}

/// The arguments of `mup cluster scale-out`.
#[derive(Debug, clap::Args)]
pub struct ScaleOutArgs {
    /// The cluster's name (a directory under $MUP_HOME/storage/clusters)
    pub name: String,
    /// The new nodes, in the topology schema (port 0 allocates a free port)
    pub fragment: PathBuf,
    /// Print the plan and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// The arguments of `mup cluster scale-in`.
#[derive(Debug, clap::Args)]
pub struct ScaleInArgs {
    /// The cluster's name (a directory under $MUP_HOME/storage/clusters)
    pub name: String,
    /// The nodes to remove
    #[arg(
        short = 'N',
        long = "node",
        value_name = "HOST:PORT",
        value_delimiter = ',',
        required = true
    )]
    pub nodes: Vec<String>,
    /// Print the plan and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// The arguments of `mup cluster upgrade`.
#[derive(Debug, clap::Args)]
pub struct UpgradeArgs {
    /// The cluster's name (a directory under $MUP_HOME/storage/clusters)
    pub name: String,
    /// 8.0.4, a series such as 8.0 (its newest production release), or latest;
    /// installed if needed
    #[arg(long)]
    pub version: String,
    /// Set featureCompatibilityVersion to the new version at the end
    #[arg(long)]
    pub fcv: bool,
    /// Print the plan and change nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub source: SourceOpts,
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub yes: bool,
}
