//! Operations: the work each command does on a cluster — deploy, the ordered start and stop,
//! initiation of replica sets and shards, destroy, migrate, reload, status and display, the
//! daemon's lifecycle, and MongoDB packages. Each works on the loaded cluster model
//! ([`crate::deployment`]) through the clients ([`crate::supervisor`], [`crate::mongo`]) and
//! the system layer ([`crate::system`]); multi-step operations are plans of steps ([`steps`]).

pub(crate) mod cluster;
pub(crate) mod credentials;
pub(crate) mod daemon;
pub(crate) mod deploy;
pub(crate) mod destroy;
pub(crate) mod display;
pub(crate) mod initiate;
pub(crate) mod lifecycle;
pub(crate) mod logs;
pub(crate) mod migrate;
pub(crate) mod ordered;
pub(crate) mod packages;
pub(crate) mod playground;
pub(crate) mod reload;
pub(crate) mod scale;
pub(crate) mod servers;
pub(crate) mod setup;
pub(crate) mod silent;
pub(crate) mod starting;
pub(crate) mod status;
pub(crate) mod steps;
pub(crate) mod unsupervised;
pub(crate) mod upgrade;
pub(crate) mod users;
