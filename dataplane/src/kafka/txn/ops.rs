//! What a transaction request carries to its transactional id's coordinator shard
//! ([`TxnOp`]) and what comes back ([`TxnRes`]): plain values, decoupled from the wire
//! types, so the coordinator is tested without codecs. They travel inside
//! `GroupOp::Txn` (the coordinator lives beside the group coordinator, see `mod.rs`).

#[derive(Debug, Clone)]
pub enum TxnOp {
    /// InitProducerId with a transactional id: a producer id and a new epoch, fencing the
    /// previous producer of the id. `pid`/`epoch` are the caller's (v3+; -1 when new).
    Init {
        id: String,
        timeout_ms: i32,
        pid: i64,
        epoch: i16,
    },
    AddPartitions {
        id: String,
        pid: i64,
        epoch: i16,
        partitions: Vec<(String, i32)>,
    },
    AddOffsets {
        id: String,
        pid: i64,
        epoch: i16,
        group: String,
    },
    End {
        id: String,
        pid: i64,
        epoch: i16,
        commit: bool,
    },
    /// Every marker of a prepared transaction is written: log it complete (sent by the
    /// marker flight, `rounds.rs`).
    Complete {
        id: String,
        pid: i64,
        epoch: i16,
        commit: bool,
    },
    Describe(Vec<String>),
    /// Every transaction of the shard in one of `states` (all when empty) and of one of
    /// `pids` (all when empty).
    List {
        states: Vec<String>,
        pids: Vec<i64>,
    },
}

/// A transaction as DescribeTransactions shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Described {
    pub id: String,
    pub error: i16,
    pub state: &'static str,
    pub pid: i64,
    pub epoch: i16,
    pub timeout_ms: i32,
    pub start_ms: i64,
    pub partitions: Vec<(String, i32)>,
}

/// A transaction as ListTransactions shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub id: String,
    pub pid: i64,
    pub state: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnRes {
    Init {
        error: i16,
        pid: i64,
        epoch: i16,
    },
    /// AddOffsetsToTxn, EndTxn, a completion: one error code.
    Error(i16),
    /// AddPartitionsToTxn: one error per partition of the request, in its order.
    Added(Vec<i16>),
    Describe(Vec<Described>),
    List(Vec<Listed>),
}

impl TxnRes {
    /// The same answer with `error` in place of success (its write failed).
    pub fn failed(self, error: i16) -> TxnRes {
        match self {
            TxnRes::Init { .. } => TxnRes::Init {
                error,
                pid: -1,
                epoch: -1,
            },
            TxnRes::Error(_) => TxnRes::Error(error),
            TxnRes::Added(v) => TxnRes::Added(vec![error; v.len()]),
            other => other,
        }
    }
}
