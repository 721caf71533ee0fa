//! Kafka consumer groups (the classic protocol, as Kafka 3.x brokers serve it): the group
//! coordinator.
//!
//! Each group belongs to one `__consumer_offsets` partition, `abs(javaHash(group id)) % 50`
//! as in Kafka ([`partition_for`]), and each partition to the shard that owns the slot of
//! `"__consumer_offsets-<p>"`, as any topic-partition does: that shard is the group's
//! *coordinator* ([`coordinator`]). A group request read on any shard becomes a plain
//! flight with one part, [`GroupOp`], for the coordinator ([`rounds`]); the coordinator's
//! [`Groups`] answers at once (Heartbeat, OffsetFetch, DescribeGroups ...), after the
//! offsets file's write (OffsetCommit, DeleteGroups, OffsetDelete), or when the rebalance
//! gets there (JoinGroup, SyncGroup: the flight's part simply waits).
//!
//! - [`group`]: one group's state machine (membership, rebalance, timers), pure;
//! - [`store`]: the offsets files, their records, writes, rewrite and recovery;
//! - [`ops`]: what travels to the coordinator and back; [`rounds`]: the flight;
//!   [`subscription`]: the topics in a consumer's protocol metadata;
//! - `txn_offsets.rs`: offsets staged by transactions, and the transaction coordinator's
//!   seam (its requests, records, waiters and timer on this shard's `Groups`).
//!
//! The coordinator, [`Groups`], one file per concern: this file holds its state, the
//! group → partition → shard map and the error codes; `recovery.rs` builds it at start-up
//! from the offsets files; `exec.rs` dispatches a request and runs the membership ones
//! (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, DescribeGroups, ListGroups), the tick and
//! unload; `offsets.rs` OffsetCommit, OffsetFetch and OffsetDelete; `delete.rs`
//! DeleteGroups; `writes.rs` the requests waiting for their records, answered when the
//! write completes, and the files' rewrites.
//!
//! Owned by its shard; built at start-up from the recovered offsets files (groups come back
//! `Empty`, with their offsets: membership is not persisted, so members rejoin after a
//! restart, as they do after a coordinator moves in Kafka). At shutdown waiting JoinGroup
//! and SyncGroup requests are answered NOT_COORDINATOR.

pub mod group;
pub mod ops;
pub mod rounds;
pub mod store;
pub mod subscription;
// Transactions: offsets staged by transactions, and the transaction coordinator's seam.
mod txn_offsets;
// The coordinator, `Groups`, by concern (see above).
mod delete;
mod exec;
mod offsets;
mod recovery;
mod writes;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

use crate::limits::GROUP_OFFSET_PARTITIONS;
use crate::log::topics::{self, TopicMeta};
use crate::mesh::SlotTable;
use crate::runtime::io::Io;
use crate::txn::Dest;
use delete::Deletes;
use group::{Group, Settings};
use ops::GroupRes;
use store::OffsetLog;
use writes::Waiter;

/// Kafka's error codes that groups answer with.
pub mod err {
    pub const NONE: i16 = 0;
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const OFFSET_METADATA_TOO_LARGE: i16 = 12;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const NOT_COORDINATOR: i16 = 16;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    pub const INVALID_GROUP_ID: i16 = 24;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const INVALID_SESSION_TIMEOUT: i16 = 26;
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    pub const INVALID_REQUEST: i16 = 42;
    pub const NON_EMPTY_GROUP: i16 = 68;
    pub const GROUP_ID_NOT_FOUND: i16 = 69;
    pub const MEMBER_ID_REQUIRED: i16 = 79;
    pub const GROUP_MAX_SIZE_REACHED: i16 = 81;
    pub const FENCED_INSTANCE_ID: i16 = 82;
    pub const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;
    pub const UNSTABLE_OFFSET_COMMIT: i16 = 88;
}

/// The internal topic whose partitions groups map to (it holds no log here: each partition
/// is an offsets file).
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Java's `String.hashCode` (over UTF-16 code units), which Kafka partitions groups by.
pub fn java_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
}

/// The `__consumer_offsets` partition of a group (Kafka's `partitionFor`:
/// `Utils.abs(groupId.hashCode) % offsets.topic.num.partitions`).
pub fn partition_for(group: &str) -> u32 {
    let h = java_hash(group);
    let abs = if h == i32::MIN { 0 } else { h.unsigned_abs() };
    abs % GROUP_OFFSET_PARTITIONS
}

/// The shard that coordinates `group`.
pub fn coordinator(owner: &SlotTable, group: &str) -> usize {
    owner.shard(topics::partition_slot(
        OFFSETS_TOPIC,
        partition_for(group) as i32,
    ))
}

/// The offsets partitions shard `me` coordinates.
pub fn partitions_of(owner: &SlotTable, me: usize) -> Vec<u32> {
    (0..GROUP_OFFSET_PARTITIONS)
        .filter(|&p| owner.shard(topics::partition_slot(OFFSETS_TOPIC, p as i32)) == me)
        .collect()
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_ms: i64,
}

/// A group as its coordinator holds it: membership and committed offsets.
struct Entry {
    group: Group,
    offsets: HashMap<(String, i32), Committed>,
    /// Its `__consumer_offsets` partition (which file its records go to).
    part: u32,
}

impl Entry {
    fn new(id: &str) -> Entry {
        Entry {
            group: Group::new(id.to_string()),
            offsets: HashMap::new(),
            part: partition_for(id),
        }
    }
}

impl Groups {
    /// The group `id`, created (with no members and no offsets) if this shard has none.
    fn entry(&mut self, id: &str) -> &mut Entry {
        self.groups
            .entry(id.to_string())
            .or_insert_with(|| Entry::new(id))
    }
}

/// What a coordinator call needs from its shard.
pub struct GroupCtx<'a> {
    pub io: &'a mut Io,
    pub now: Instant,
    pub now_ms: u64,
    /// This shard's copy of the topic table (commits name partitions that exist).
    pub topics: &'a BTreeMap<String, TopicMeta>,
}

/// Why a shard's offsets could not be recovered at start-up.
#[derive(Debug, thiserror::Error)]
#[error("shard {shard}: recovering consumer group offsets under {dir}: {source}")]
pub struct RecoverError {
    shard: usize,
    dir: String,
    #[source]
    source: std::io::Error,
}

/// A shard's group coordinator: the groups of its `__consumer_offsets` partitions.
pub struct Groups {
    me: usize,
    groups: HashMap<String, Entry>,
    log: OffsetLog<Waiter>,
    settings: Settings,
    /// Member ids: this shard, the start time and a counter make them unique across
    /// shards and restarts.
    next_member: u64,
    started_ms: u64,
    draining: bool,
    replies: Vec<(Dest, GroupRes)>,
    deletes: HashMap<u64, Deletes>,
    next_batch: u64,
    /// The transaction coordinator of this shard's transactional ids (`kafka/txn/`).
    pub txns: crate::kafka::txn::Txns,
    /// Offsets staged by open transactions, by (group, producer id), in request order.
    staged: txn_offsets::Staged,
}

/// Where a shard's offsets files live.
pub fn dir(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("groups")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_map_to_partitions_as_kafka_does() {
        // Java: "a".hashCode() == 97; "consumer-group".hashCode() is negative.
        assert_eq!(java_hash("a"), 97);
        assert_eq!(partition_for("a"), 47);
        assert_eq!(java_hash("polygenelubricants"), i32::MIN);
        assert_eq!(partition_for("polygenelubricants"), 0);
        assert_eq!(java_hash("Aa"), java_hash("BB"));
        let h = java_hash("my-group");
        assert_eq!(partition_for("my-group"), h.unsigned_abs() % 50);
        // Every partition has one coordinator, and every shard gets some with 2 shards.
        let owner = SlotTable::new(2);
        let (a, b) = (partitions_of(&owner, 0), partitions_of(&owner, 1));
        assert_eq!(a.len() + b.len(), GROUP_OFFSET_PARTITIONS as usize);
        assert!(!a.is_empty() && !b.is_empty());
    }
}
