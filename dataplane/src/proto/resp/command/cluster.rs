//! Cluster commands (issue 12): CLUSTER and the connection flags cluster clients send
//! (READONLY, READWRITE, ASKING). Answered by `cluster/resp.rs` from the node's cluster view.

#[allow(unused_imports)]
use super::{s, Cmd, Family as F, Route as R, Spec, NOAUTH, NOSCRIPT, WRITE};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClusterCmd {
    Cluster,
    Readonly,
    Readwrite,
    Asking,
    /// Internal (moving data, `cache/migrate.rs`): the old owner's side of a slot move.
    MoveSlot,
    /// Internal: the new owner stores one moved key.
    MoveIn,
}

use ClusterCmd as C;

pub static TABLE: &[Spec] = &[
    s(
        "cluster",
        Cmd::Cluster(C::Cluster),
        -2,
        NOSCRIPT,
        R::Local,
        F::Server,
    ),
    s(
        "readonly",
        Cmd::Cluster(C::Readonly),
        1,
        NOSCRIPT,
        R::Local,
        F::Connection,
    ),
    s(
        "readwrite",
        Cmd::Cluster(C::Readwrite),
        1,
        NOSCRIPT,
        R::Local,
        F::Connection,
    ),
    s(
        "asking",
        Cmd::Cluster(C::Asking),
        1,
        NOSCRIPT,
        R::Local,
        F::Connection,
    ),
    // Internal: moving a slot's keys between nodes (`cache/migrate.rs`). The key argument
    // routes them to the shard that holds the slot; they skip the cluster check.
    s(
        "pinion.moveslot",
        Cmd::Cluster(C::MoveSlot),
        -3,
        WRITE | NOSCRIPT,
        R::Key,
        F::Keyspace,
    ),
    s(
        "pinion.movein",
        Cmd::Cluster(C::MoveIn),
        4,
        WRITE | NOSCRIPT,
        R::Key,
        F::Keyspace,
    ),
];
