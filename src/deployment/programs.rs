//! The programs of a tree as supervisord runs them: what a node ([`Node`]), a monitoring
//! program ([`Monitor`]) and whatever else the daemon reports answer as supervisord programs
//! ([`Program`]: names, groups, the rank that orders starts and stops), and the programs a
//! command acts on ([`Selection`]).

use crate::deployment::model::{Monitor, Node, Role, Service};
use crate::supervisor::{self, Client};
use std::path::Path;

/// A program supervisord runs, as the ordered start and stop handle it: a node, a monitoring
/// program, or whatever the daemon reports (a program no longer in the tree).
pub(crate) trait Program {
    /// `group:name`, the name supervisord answers to.
    fn qualified(&self) -> String;
    fn name(&self) -> &str;
    /// Where its output goes (for a failure's last lines); empty when unknown.
    fn log_file(&self) -> &Path;
    /// `host:port` for messages, or empty.
    fn address(&self) -> String;
    /// Stop order: routers (0), mongods (1), config servers (2), the other programs (3: the
    /// exporter, programs mup did not make), the event listener last (4), so that it records
    /// every other stop. A group mup does not know is never taken for a node's.
    fn stop_rank(&self) -> usize;
    /// Its log is its stderr (the event listener, whose stdout is the protocol).
    fn log_on_stderr(&self) -> bool {
        false
    }
    /// Tails `length` bytes of its log from `offset`.
    fn tail(
        &self,
        client: &Client,
        offset: i64,
        length: i64,
    ) -> supervisor::Result<(String, i64, bool)> {
        if self.log_on_stderr() {
            client.tail_process_stderr_log(&self.qualified(), offset, length)
        } else {
            client.tail_process_stdout_log(&self.qualified(), offset, length)
        }
    }
}

fn role_rank(role: Role) -> usize {
    Role::TIERS.len() - 1 - Role::TIERS.iter().position(|r| *r == role).unwrap_or(0)
}

/// Stop rank of the programs that are neither nodes nor the event listener.
pub(crate) const OTHER_RANK: usize = Role::TIERS.len();
/// Stop rank of the event listener: the last.
pub(crate) const LAST_RANK: usize = OTHER_RANK + 1;

impl Program for Node {
    fn qualified(&self) -> String {
        Node::qualified(self)
    }
    fn name(&self) -> &str {
        &self.program
    }
    fn log_file(&self) -> &Path {
        &self.log_file
    }
    fn address(&self) -> String {
        Node::address(self)
    }
    fn stop_rank(&self) -> usize {
        role_rank(self.role)
    }
}

impl Program for Monitor {
    fn qualified(&self) -> String {
        Monitor::qualified(self)
    }
    fn name(&self) -> &str {
        self.program()
    }
    fn log_file(&self) -> &Path {
        &self.log_file
    }
    fn address(&self) -> String {
        self.port
            .map(|p| crate::deployment::naming::address("127.0.0.1", p))
            .unwrap_or_default()
    }
    fn stop_rank(&self) -> usize {
        match self.service {
            Service::Events => LAST_RANK,
            Service::Metrics => OTHER_RANK,
        }
    }
    fn log_on_stderr(&self) -> bool {
        self.service == Service::Events
    }
}

impl Program for supervisor::ProcessInfo {
    fn qualified(&self) -> String {
        supervisor::ProcessInfo::qualified(self)
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn log_file(&self) -> &Path {
        Path::new(&self.logfile)
    }
    fn address(&self) -> String {
        String::new()
    }
    fn stop_rank(&self) -> usize {
        // Only a node's own group (or a tier group of an older tree) holding a program named
        // like a node is a node's.
        let node = Role::from_program(&self.name)
            .filter(|r| self.group == self.name || Role::from_tier(&self.group) == Some(*r));
        match node {
            Some(role) => role_rank(role),
            _ if self.group == Service::Events.group()
                && self.name == Service::Events.program() =>
            {
                LAST_RANK
            }
            _ => OTHER_RANK,
        }
    }
}

/// The programs a command acts on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    /// In tier order.
    pub nodes: Vec<Node>,
    pub monitors: Vec<Monitor>,
}

impl Selection {
    pub fn len(&self) -> usize {
        self.nodes.len() + self.monitors.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Every program, nodes first.
    pub(crate) fn programs(&self) -> Vec<&dyn Program> {
        self.nodes
            .iter()
            .map(|m| m as &dyn Program)
            .chain(self.monitors.iter().map(|m| m as &dyn Program))
            .collect()
    }
}
