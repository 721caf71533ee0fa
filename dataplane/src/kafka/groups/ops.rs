//! What a group request carries to the group's coordinator shard ([`GroupOp`]) and what comes
//! back ([`GroupRes`]): plain values, decoupled from the wire types, so the coordinator and
//! its state machine are tested without codecs. The handlers (`kafka/handlers/*.rs`) convert
//! from the decoded request and to the response of the request's version.

use bytes::Bytes;

/// A protocol a member supports, with its metadata (for consumers: the subscription).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol {
    pub name: String,
    pub metadata: Bytes,
}

#[derive(Debug, Clone)]
pub struct JoinReq {
    pub group: String,
    /// Empty for a member that has none yet.
    pub member: String,
    pub instance: Option<String>,
    pub client_id: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<Protocol>,
    /// v4+: a new member is given an id and asked to join again with it
    /// (MEMBER_ID_REQUIRED).
    pub require_known_member: bool,
    /// v9+: a static leader rejoining a stable group may be told to skip the assignment.
    pub supports_skip: bool,
}

/// A member as the leader sees it in the JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    pub id: String,
    pub instance: Option<String>,
    pub metadata: Bytes,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinRes {
    pub error: i16,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: String,
    pub skip_assignment: bool,
    pub member: String,
    pub members: Vec<JoinedMember>,
}

impl JoinRes {
    /// A failed join: Kafka's `JoinGroupResult(memberId, error)`.
    pub fn error(member: &str, error: i16) -> JoinRes {
        JoinRes {
            error,
            generation: -1,
            member: member.to_string(),
            ..JoinRes::default()
        }
    }
}

#[derive(Debug, Clone)]
pub struct SyncReq {
    pub group: String,
    pub generation: i32,
    pub member: String,
    pub instance: Option<String>,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    /// The leader's assignment: member id and its bytes.
    pub assignments: Vec<(String, Bytes)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncRes {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub assignment: Bytes,
}

impl SyncRes {
    pub fn error(error: i16) -> SyncRes {
        SyncRes {
            error,
            ..SyncRes::default()
        }
    }
}

#[derive(Debug, Clone)]
pub struct HeartbeatReq {
    pub group: String,
    pub generation: i32,
    pub member: String,
    pub instance: Option<String>,
}

#[derive(Debug, Clone)]
pub struct LeaveReq {
    pub group: String,
    /// Member id (empty: name the member by its instance id) and instance id.
    pub members: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaveRes {
    pub error: i16,
    /// One error per member of the request, in its order.
    pub members: Vec<i16>,
}

/// One partition's offset to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CommitReq {
    pub group: String,
    pub generation: i32,
    pub member: String,
    pub instance: Option<String>,
    pub offsets: Vec<CommitOffset>,
}

#[derive(Debug, Clone)]
pub struct FetchReq {
    pub group: String,
    /// The partitions asked for; None: every partition the group has an offset for.
    pub topics: Option<Vec<(String, Vec<i32>)>>,
    /// v7+ (KIP-447): a partition with offsets staged by an open transaction answers
    /// UNSTABLE_OFFSET_COMMIT, and the client asks again.
    pub require_stable: bool,
}

/// A committed offset as OffsetFetch reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub error: i16,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchRes {
    pub error: i16,
    pub topics: Vec<(String, Vec<Fetched>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedMember {
    pub id: String,
    pub instance: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Described {
    pub error: i16,
    pub state: &'static str,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<DescribedMember>,
}

/// A group as ListGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub group: String,
    pub protocol_type: String,
    pub state: &'static str,
}

#[derive(Debug, Clone)]
pub struct OffsetDeleteReq {
    pub group: String,
    pub partitions: Vec<(String, i32)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetDeleteRes {
    pub error: i16,
    /// One error per partition of the request, in its order (empty with a group error).
    pub partitions: Vec<i16>,
}

impl OffsetDeleteRes {
    /// A group error: no partition's.
    pub fn error(error: i16) -> OffsetDeleteRes {
        OffsetDeleteRes {
            error,
            partitions: Vec::new(),
        }
    }
}

/// A request for a group's coordinator shard.
#[derive(Debug, Clone)]
pub enum GroupOp {
    Join(JoinReq),
    Sync(SyncReq),
    Heartbeat(HeartbeatReq),
    Leave(LeaveReq),
    Commit(CommitReq),
    /// Batched APIs name many groups: each coordinator gets one part with its groups.
    Fetch(Vec<FetchReq>),
    Describe(Vec<String>),
    /// Every group of the shard in one of these states (all when empty).
    List(Vec<String>),
    Delete(Vec<String>),
    OffsetDelete(OffsetDeleteReq),
    // Transactions (`kafka/txn/`).
    /// A request for a transactional id's coordinator (the same shard map as groups').
    Txn(Box<crate::kafka::txn::ops::TxnOp>),
    /// TxnOffsetCommit: offsets staged by a transaction, visible once it commits.
    TxnCommit(TxnCommitReq),
    /// A transaction ended: its staged offsets for the group are committed or dropped.
    TxnMarker {
        group: String,
        pid: i64,
        commit: bool,
    },
}

/// TxnOffsetCommit for a group's coordinator.
#[derive(Debug, Clone)]
pub struct TxnCommitReq {
    pub group: String,
    pub pid: i64,
    pub epoch: i16,
    /// v3+: the consumer's generation and member (-1 and empty when not given).
    pub generation: i32,
    pub member: String,
    pub instance: Option<String>,
    pub offsets: Vec<CommitOffset>,
}

/// The coordinator's answer, one variant per request kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupRes {
    Join(JoinRes),
    Sync(SyncRes),
    /// Heartbeat: an error code.
    Error(i16),
    /// DeleteGroups: an error code per group of the part.
    Deleted(Vec<i16>),
    Leave(LeaveRes),
    /// OffsetCommit: one error per offset of the request, in its order.
    Commit(Vec<i16>),
    Fetch(Vec<FetchRes>),
    Describe(Vec<Described>),
    List(Vec<Listed>),
    OffsetDelete(OffsetDeleteRes),
    /// A transaction coordinator's answer (`kafka/txn/`).
    Txn(crate::kafka::txn::ops::TxnRes),
}
