//! The first user of a secured cluster (docs/mongodb.md §7): created without credentials
//! through the localhost exception — on a replica set's primary once it has one, on a
//! standalone node, and for a sharded cluster through a router (the user lives in the config
//! servers) and on each shard's primary (a shard-local user of the same name and password,
//! which closes that shard's own exception and lets mup and users connect to its members
//! directly). Whether to create it is read from the server: once any user exists the
//! exception is closed (13), and the recorded credentials must then authenticate.

use crate::deployment::Node;
use crate::mongo::{self, code::AUTHENTICATION_FAILED, Access};
use crate::ops::initiate::Failure;
use mongodb::bson::doc;

/// Unauthorized: the localhost exception is closed (a user exists).
const UNAUTHORIZED: i32 = 13;
/// The user already exists (a concurrent creation won).
const USER_EXISTS: i32 = 51003;

/// What [`ensure`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Created,
    /// A user existed, and the recorded credentials authenticate.
    Existing,
}

/// [`ensure`] on the node `m` (a set's primary, a standalone node, a router), its failure
/// naming `place` (the set, or `cluster`) and the node.
pub(crate) fn first_user(
    m: &Node,
    place: &str,
    access: &Access,
) -> Result<Option<Outcome>, Failure> {
    ensure(&m.host, m.port, access).map_err(|why| Failure {
        set: place.to_string(),
        member: Some(Box::new(m.clone())),
        why,
    })
}

/// Makes sure the first user of `access` exists on `host:port` and that its credentials
/// authenticate there. Nothing to do without credentials (auth off).
pub(crate) fn ensure(host: &str, port: u16, access: &Access) -> Result<Option<Outcome>, String> {
    let Some((user, password)) = &access.credential else {
        return Ok(None);
    };
    let create = doc! {
        "createUser": user.clone(),
        "pwd": password.clone(),
        "roles": [{ "role": "root", "db": "admin" }],
    };
    match mongo::command(host, port, &access.anonymous(), create) {
        Ok(_) => return Ok(Some(Outcome::Created)),
        Err(e) if matches!(e.code(), Some(UNAUTHORIZED | USER_EXISTS)) => {}
        Err(e) => return Err(format!("createUser {user:?}: {e}")),
    }
    match mongo::command(host, port, access, doc! { "ping": 1 }) {
        Ok(_) => Ok(Some(Outcome::Existing)),
        Err(e) => Err(refused(user, &e)),
    }
}

/// The sentence for credentials a server does not take.
pub(crate) fn refused(user: &str, e: &mongo::Error) -> String {
    if e.code() == Some(AUTHENTICATION_FAILED) {
        format!(
            "the server refused user {user:?} with the password recorded in meta.yaml (security.password): {e}; the cluster has other credentials than this tree records"
        )
    } else {
        format!("authenticating as {user:?}: {e}")
    }
}

/// A progress line for the first user of `place` (none without auth).
pub(crate) fn said(place: &str, made: Option<Outcome>) -> Option<String> {
    Some(match made? {
        Outcome::Created => format!("{place}: first user created"),
        Outcome::Existing => format!("{place}: the recorded user authenticates"),
    })
}
