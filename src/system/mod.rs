//! What mup needs from the machine: processes as /proc and the kernel's socket table show
//! them, locks, bounded child processes and Ctrl-C. Which processes and directories are a
//! cluster's is decided above, in [`crate::deployment::owner`] and
//! [`crate::deployment::data_dirs`].

pub(crate) mod child;
pub(crate) mod flock;
pub(crate) mod interrupt;
pub(crate) mod procs;
mod sockdiag;
