//! Log operations as they travel to a partition's owner shard, and their results.

use bytes::Bytes;

use super::topics::TopicMeta;

#[derive(Debug, Clone)]
pub enum LogOp {
    /// Every shard adds the topic to its table; owners of its partitions create them.
    CreateTopic(TopicMeta),
    /// Every shard drops the topic; owners close and delete its partitions.
    DeleteTopic(String),
    /// Write the topic's `topic.meta` (run on the topic's home shard, which claims the name).
    PersistTopic(TopicMeta),
    /// Remove the topic's `topic.meta`, before its partitions are deleted.
    RemoveTopicMeta(String),
    Produce {
        topic: String,
        partition: i32,
        records: Bytes,
    },
    Fetch {
        topic: String,
        partition: i32,
        offset: i64,
        max_bytes: i32,
        /// isolation_level=read_committed: up to the last stable offset, with the aborted
        /// transactions in the range (`log/txn_index.rs`).
        committed: bool,
    },
    ListOffsets {
        topic: String,
        partition: i32,
        timestamp: i64,
        /// read_committed: "latest" is the last stable offset.
        committed: bool,
    },
    // Transactions (`kafka/txn/`).
    /// The partition joined producer `pid`'s transaction at `epoch` (AddPartitionsToTxn):
    /// its transactional batches are taken until the marker (answered `Created`).
    TxnBegin {
        topic: String,
        partition: i32,
        pid: i64,
        epoch: i16,
    },
    /// Append a transaction's COMMIT or ABORT control batch (answered `Produced`).
    TxnMarker {
        topic: String,
        partition: i32,
        pid: i64,
        epoch: i16,
        commit: bool,
    },
    // Admin (CreatePartitions, AlterConfigs, IncrementalAlterConfigs, DeleteRecords).
    /// On the topic's home: write the changed topic's `topic.meta` (its epoch one past the
    /// home's copy, else the change raced another), holding the topic until `ChangeTopic`
    /// reaches the home. Answers `Created`.
    RewriteTopic(TopicMeta),
    /// Every shard takes the changed topic (a newer epoch than its copy): its configs
    /// apply to the partitions it owns, and the owners of new partitions create them.
    /// Answers `Created`.
    ChangeTopic(TopicMeta),
    /// Move the partition's log start offset to `offset` (-1: the high watermark), durably,
    /// and delete the whole segments below it. Answers `Offset` with the new log start.
    DeleteRecords {
        topic: String,
        partition: i32,
        offset: i64,
    },
}

#[derive(Debug, Clone)]
pub enum LogResult {
    Created {
        error: i16,
    },
    Produced {
        error: i16,
        base_offset: i64,
        log_start: i64,
    },
    Fetched {
        error: i16,
        high_watermark: i64,
        log_start: i64,
        records: Option<Bytes>,
        /// The last stable offset (the high watermark when no transaction is open).
        last_stable: i64,
        /// read_committed: the aborted transactions in the range, (producer id, first
        /// offset).
        aborted: Vec<(i64, i64)>,
    },
    Offset {
        error: i16,
        offset: i64,
        timestamp: i64,
    },
}

impl LogResult {
    /// The error code and the two numbers a result carries: a produce's base offset and
    /// log start, a ListOffsets answer's offset and timestamp, a fetch's high watermark and
    /// log start (-1s where a result has none).
    pub fn figures(&self) -> (i16, i64, i64) {
        match *self {
            LogResult::Created { error } => (error, -1, -1),
            LogResult::Produced {
                error,
                base_offset: a,
                log_start: b,
            } => (error, a, b),
            LogResult::Offset {
                error,
                offset: a,
                timestamp: b,
            } => (error, a, b),
            LogResult::Fetched {
                error,
                high_watermark: a,
                log_start: b,
                ..
            } => (error, a, b),
        }
    }

    pub fn error(&self) -> i16 {
        match self {
            LogResult::Created { error } => *error,
            LogResult::Produced { error, .. } => *error,
            LogResult::Fetched { error, .. } => *error,
            LogResult::Offset { error, .. } => *error,
        }
    }
}
