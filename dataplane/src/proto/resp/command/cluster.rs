//! Cluster commands (issue 12): CLUSTER and the connection flags cluster clients send
//! (READONLY, READWRITE, ASKING). Answered by `cluster/resp.rs` from the node's cluster view.

#[allow(unused_imports)]
use super::{s, Cmd, Family as F, Route as R, Spec, NOAUTH, NOSCRIPT};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClusterCmd {
    Cluster,
    Readonly,
    Readwrite,
    Asking,
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
];
