//! Log operations as they travel to a partition's owner shard, and their results.

use bytes::Bytes;

use super::topics::TopicMeta;

#[derive(Debug, Clone)]
pub enum LogOp {
    /// Every shard adds the topic to its table; owners of its partitions create them.
    CreateTopic(TopicMeta),
    /// Every shard drops the topic; owners close and delete its partitions.
    DeleteTopic(String),
    /// Write the topic's `topic.meta` (run on the shard that took the request).
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
    },
    ListOffsets {
        topic: String,
        partition: i32,
        timestamp: i64,
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
    },
    Offset {
        error: i16,
        offset: i64,
        timestamp: i64,
    },
}

impl LogResult {
    pub fn error(&self) -> i16 {
        match self {
            LogResult::Created { error } => *error,
            LogResult::Produced { error, .. } => *error,
            LogResult::Fetched { error, .. } => *error,
            LogResult::Offset { error, .. } => *error,
        }
    }
}
