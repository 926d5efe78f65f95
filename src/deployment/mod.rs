//! The cluster model and its tree: topology.yaml and meta.yaml read and checked, the decisions
//! gen records (ports, credentials), the model built from them, the files of the tree rendered
//! (supervisord's ini, mongod's YAML) and written atomically, and the tree loaded again by every
//! later command ([`loaded::Tree`]). Names and paths come from [`naming`] and [`layout`] only.

pub(crate) mod data_dirs;
pub(crate) mod gen;
pub(crate) mod ini;
pub(crate) mod layout;
pub(crate) mod legacy;
mod loaded;
pub(crate) mod locks;
pub(crate) mod meta;
pub(crate) mod model;
pub(crate) mod mongod_conf;
pub(crate) mod monitoring;
pub(crate) mod naming;
pub(crate) mod nodes;
pub(crate) mod owner;
pub(crate) mod places;
pub(crate) mod ports;
pub(crate) mod programs;
pub(crate) mod render;
pub(crate) mod security;
pub(crate) mod topology;
pub(crate) mod write;
pub(crate) mod yaml;

pub use loaded::Tree;
pub(crate) use loaded::{cluster_dir, log_tail, named_cluster_dir};
pub(crate) use model::{Monitor, Node};
pub(crate) use programs::{Program, Selection, LAST_RANK, OTHER_RANK};
