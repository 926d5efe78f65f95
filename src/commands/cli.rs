//! Command-line options (clap). Nothing here reaches the logic directly: the commands (`crate::commands`) map them.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

mod cluster;

pub use cluster::{ClusterCmd, DeployArgs, PlaygroundCmd, ScaleInArgs, ScaleOutArgs, UpgradeArgs};

/// Run local MongoDB clusters (standalone, replica sets, sharded) under a stock supervisord.
#[derive(Debug, Parser)]
#[command(name = "mup", version, about)]
pub struct Opts {
    /// Print progress lines (initiation steps, tiers) even when stdout is not a terminal
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compile topology.yaml + meta.yaml into the cluster's supervisord tree
    Gen(GenOpts),
    /// Drive a cluster tree's supervisord: up, down, status, start, stop, restart, reload, ...
    Ctl(CtlOpts),
    /// Named clusters under $MUP_HOME/storage/clusters: deploy, start, stop, display, ...
    #[command(subcommand)]
    Cluster(ClusterCmd),
    /// A throw-away replica set named `playground`
    #[command(subcommand)]
    Playground(PlaygroundCmd),
    /// Install a stock supervisord (supervisor==4.3.0) into a venv under $MUP_HOME/tools
    Setup,
    /// Download a MongoDB release into $MUP_HOME/storage/packages (verified by its sha256)
    Install {
        /// 7.0.14, a series such as 7.0 (its newest production release), or latest
        version: String,
        #[command(flatten)]
        source: SourceOpts,
        /// Accepted for scripts: `mup install` never asks
        #[arg(short, long)]
        yes: bool,
    },
    /// List MongoDB releases (newest first), or the installed ones
    Versions {
        /// Only the installed versions (no download of the index)
        #[arg(long)]
        installed: bool,
        #[command(flatten)]
        source: SourceOpts,
    },
    /// Remove an installed MongoDB release (refused while a cluster uses it)
    Uninstall {
        /// The exact installed version (7.0.14)
        version: String,
    },
    /// Print a shell completion script
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
    /// Run by supervisord, not by hand: a cluster's event listener or metrics exporter
    #[command(hide = true)]
    Monitor {
        #[arg(value_enum)]
        mode: MonitorMode,
        /// The cluster directory
        #[arg(long)]
        dir: PathBuf,
    },
}

/// What `mup monitor` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MonitorMode {
    /// The event listener (supervisord's eventlistener protocol on stdin/stdout)
    Events,
    /// The Prometheus exporter
    Metrics,
}

/// How `events` shows what the event listener recorded.
#[derive(Debug, Clone, clap::Args)]
pub struct EventsOpts {
    /// Keep printing events as they come
    #[arg(short, long)]
    pub follow: bool,
    /// One JSON object per line (time, program, group, from, to, expected, pid, exit_status)
    #[arg(long)]
    pub json: bool,
    /// Only events younger than this: 90s, 10m, 2h, 1d
    #[arg(long, value_name = "DURATION", value_parser = since)]
    pub since: Option<std::time::Duration>,
}

/// A `--since` duration: humantime's syntax, and no further back than the clock can count.
fn since(text: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    match std::time::SystemTime::now().checked_sub(d) {
        Some(_) => Ok(d),
        None => Err(
            "reaches back further than the clock can count: use a shorter duration such as 30d"
                .into(),
        ),
    }
}

#[derive(Debug, clap::Args)]
pub struct CtlOpts {
    /// The cluster directory (made by `mup gen`)
    #[arg(long, global = true, conflicts_with = "cluster")]
    pub dir: Option<PathBuf>,
    /// The cluster's name: $MUP_HOME/storage/clusters/NAME
    #[arg(long, global = true)]
    pub cluster: Option<String>,
    #[command(subcommand)]
    pub verb: CtlVerb,
}

/// Which programs a verb acts on: names, groups, a replica set; all when empty.
#[derive(Debug, Clone, clap::Args)]
pub struct Targets {
    /// Program (mongod-30000, mup-metrics), tier (config-servers, mongod-servers,
    /// mongos-routers) or monitoring; all if none
    pub targets: Vec<String>,
    /// Every member of this replica set
    #[arg(long = "rs", value_name = "NAME")]
    pub replica_set: Option<String>,
}

impl CtlVerb {
    /// A verb asked only to print its plan.
    pub fn is_dry_run(&self) -> bool {
        match self {
            CtlVerb::Start { plan, .. }
            | CtlVerb::Stop { plan, .. }
            | CtlVerb::Restart { plan, .. } => plan.dry_run,
            CtlVerb::Reload { dry_run } => *dry_run,
            _ => false,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum CtlVerb {
    /// Start supervisord for the cluster (if it is not running) and verify it
    Up {
        /// Stop node processes left running without supervisord, so that it owns them again
        #[arg(long)]
        adopt: bool,
    },
    /// Stop every program (routers first), shut supervisord down, wait until it has exited
    Down,
    /// One row per program; exit 3 when any listed program is not RUNNING
    Status {
        #[command(flatten)]
        targets: Targets,
        /// Machine-readable output (schema in the README)
        #[arg(long)]
        json: bool,
    },
    /// Start programs: config servers, then mongod, then mongos; wait until RUNNING (the whole
    /// cluster: initiate replica sets and add shards between tiers)
    Start {
        #[command(flatten)]
        targets: Targets,
        #[command(flatten)]
        init: InitOpts,
        #[command(flatten)]
        plan: PlanOpts,
    },
    /// Stop programs: mongos, then mongod, then config servers
    Stop {
        #[command(flatten)]
        targets: Targets,
        #[command(flatten)]
        plan: PlanOpts,
    },
    /// Stop, then start, in tier order
    Restart {
        #[command(flatten)]
        targets: Targets,
        #[command(flatten)]
        plan: PlanOpts,
    },
    /// Apply a regenerated tree to the running daemon (like `supervisorctl update`)
    Reload {
        /// Print which programs would be added, removed or restarted; change nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the end of a program's log
    Tail {
        /// The program (mongod-30000)
        program: String,
        /// How many bytes from the end
        #[arg(short = 'n', long = "bytes", default_value_t = 1600)]
        bytes: i64,
        /// Keep printing what is appended
        #[arg(short, long)]
        follow: bool,
    },
    /// Send a signal (HUP, USR1, ...) to programs
    Signal {
        /// A signal name or number: HUP, USR1, 10, ...
        signal: String,
        #[command(flatten)]
        targets: Targets,
    },
    /// Process state changes recorded by the cluster's event listener (events.log)
    Events(EventsOpts),
    /// Print supervisord's pid, or a program's
    Pid {
        /// The program (mongod-30000); supervisord itself when omitted
        program: Option<String>,
    },
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

/// Whether a whole-cluster start initiates replica sets and adds shards.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct InitOpts {
    /// Start the processes only: do not initiate replica sets or add shards
    #[arg(long)]
    pub no_init: bool,
}

/// Where MongoDB packages come from.
#[derive(Debug, Clone, clap::Args)]
pub struct SourceOpts {
    /// A mirror of MongoDB's downloads: URL/full.json and URL/<archive> [env: MUP_MIRROR]
    #[arg(long, value_name = "URL")]
    pub mirror: Option<String>,
}

/// Where the MongoDB binaries are and their version: `--bin-path` (default: mongod on PATH),
/// or with `--version` alone the installed package of that version (installed first).
#[derive(Debug, Clone, clap::Args)]
pub struct BinOpts {
    /// MongoDB version: without --bin-path, the package of this version (installed if
    /// needed); with it, the version of those binaries (default: `mongod --version`)
    #[arg(long)]
    pub version: Option<String>,
    /// Directory holding mongod and mongos (default: the one of `mongod` on PATH)
    #[arg(long)]
    pub bin_path: Option<PathBuf>,
    #[command(flatten)]
    pub source: SourceOpts,
}

/// A secured cluster: access control and TLS (recorded in meta.yaml, kept by later starts).
#[derive(Debug, Clone, clap::Args)]
pub struct SecurityOpts {
    /// Access control: a keyFile for every node and a first user (role root); the
    /// credentials are kept in the cluster's meta.yaml (mode 0600)
    #[arg(long)]
    pub auth: bool,
    /// TLS from a local CA: every node requires TLS; URIs carry tls=true&tlsCAFile=...
    #[arg(long)]
    pub tls: bool,
    /// The first user's name (with --auth)
    #[arg(long, requires = "auth", value_name = "NAME")]
    pub username: Option<String>,
    /// Read the first user's password from this file's first line (with --auth; default:
    /// a random one)
    #[arg(long, requires = "auth", value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

/// A node role, as `-R` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    /// Config servers
    #[value(alias = "config-server", alias = "config-servers", alias = "configsvr")]
    Config,
    /// Shard and replica-set members, standalone mongod
    #[value(alias = "shard", alias = "mongod-servers")]
    Mongod,
    /// Routers
    #[value(alias = "router", alias = "mongos-routers")]
    Mongos,
}

/// `--dry-run` of the operations that run a plan of steps.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct PlanOpts {
    /// Print the plan of steps and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// `-R ROLE` / `-N HOST:PORT` filters.
#[derive(Debug, Clone, clap::Args)]
pub struct Filters {
    /// Only nodes of these roles (comma-separated or repeated)
    #[arg(short = 'R', long = "role", value_enum, value_delimiter = ',')]
    pub roles: Vec<RoleArg>,
    /// Only these nodes, as host:port (comma-separated or repeated)
    #[arg(short = 'N', long = "node", value_delimiter = ',')]
    pub nodes: Vec<String>,
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        super::Opts::command().debug_assert();
    }
}
