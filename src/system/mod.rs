//! What mup needs from the machine: processes as /proc and the kernel's socket table show
//! them, the ownership rule (which processes and directories are provably this cluster's),
//! locks, bounded child processes, Ctrl-C, and the data directories' deletion checks.

pub(crate) mod child;
pub(crate) mod data_dirs;
pub(crate) mod interrupt;
pub(crate) mod lock;
pub(crate) mod owner;
pub(crate) mod procs;
mod sockdiag;
