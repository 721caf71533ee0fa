//! Every bound of the control plane, in one place. A bound that input can reach is checked
//! where the input is decoded, and the error names the bound.

/// Redis Cluster's slot count: a key's slot is CRC16(key or its {hash tag}) mod 16384.
pub const SLOTS: usize = 16384;
/// Nodes in one map, removed ones included.
pub const NODES_MAX: usize = 1024;
/// Shards of one node.
pub const SHARDS_PER_NODE_MAX: u16 = 1024;
/// Log partitions in one map.
pub const PARTITIONS_MAX: usize = 1 << 20;
/// An address (`host:port`) in the map.
pub const ADDR_BYTES_MAX: usize = 255;
/// A topic name, as Kafka bounds it.
pub const TOPIC_BYTES_MAX: usize = 249;
/// An operator weight. Zero is allowed and means "owns nothing".
pub const WEIGHT_MAX: u32 = 1_000_000;
/// One frame of the control protocol, and one record of the write-ahead file. A map of
/// 1024 nodes and a million partitions in JSON stays under this.
pub const FRAME_BYTES_MAX: usize = 64 << 20;
/// Connections the control plane serves at once (nodes and operators together).
pub const CONNECTIONS_MAX: usize = 256;
/// Operator requests queued behind the change in progress.
pub const PENDING_OPS_MAX: usize = 64;
/// Records in the write-ahead file before it is compacted into one snapshot record.
pub const WAL_RECORDS_MAX: usize = 1024;
/// Bytes of a shared secret file.
pub const SECRET_BYTES_MAX: usize = 4096;
/// Fewest bytes of a shared secret: shorter ones are refused at start-up.
pub const SECRET_BYTES_MIN: usize = 16;
/// Slots a load-driven rebalance may move in one round (one map change). Moves that must
/// happen (the owner left, drains, a removed node) are not bounded by this.
pub const SLOT_MOVES_PER_ROUND_MAX: usize = 1024;
/// Partitions a load-driven rebalance may move in one round.
pub const PARTITION_MOVES_PER_ROUND_MAX: usize = 16;
/// Log partitions a node's heartbeat may report holding (more are not placed in the map;
/// they stay with their name's slot's owner).
pub const PARTITIONS_REPORTED_MAX: usize = 16_384;
/// A peer must finish its handshake (first authenticated frame) within this.
pub const HANDSHAKE_TIMEOUT_MS: u64 = 5_000;
/// A connection with nothing to read for this long is closed (nodes heartbeat far more
/// often; operator commands are one request and one reply).
pub const IDLE_TIMEOUT_MS: u64 = 60_000;
/// A write to a peer that does not drain its socket for this long closes the connection.
pub const WRITE_TIMEOUT_MS: u64 = 5_000;
/// Frames queued for one connection's writer before the connection is dropped as too slow.
pub const OUTBOX_FRAMES_MAX: usize = 1024;

// The etcd store and leadership (`--store etcd://...`).

/// The leader's etcd lease. A leader that cannot renew it for this long stops coordinating,
/// and a standby takes over within about this long after the leader dies. etcd's default
/// election timeout (1 s) puts its own floor at 2 s.
pub const LEADER_LEASE_TTL_S: i64 = 5;
/// How often the lease is renewed: several renewals fit in one TTL, so one slow round trip
/// does not depose a leader.
pub const LEADER_KEEPALIVE_MS: u64 = 1_000;
/// One etcd request (an append, a load, a lease call) that takes longer fails. An append
/// that fails this way has an unknown outcome, so the leader stops and whoever leads next
/// reads the log as etcd has it.
pub const ETCD_REQUEST_TIMEOUT_MS: u64 = 3_000;
/// The pause before trying etcd again after an error (unreachable, no quorum).
pub const ETCD_RETRY_MS: u64 = 500;
/// One record in etcd. etcd refuses requests over its `--max-request-bytes` (1.5 MiB by
/// default); a map that does not fit needs that raised, and this with it.
pub const ETCD_RECORD_BYTES_MAX: usize = 1 << 20;

// The move phase (`moves.rs`): streaming moving slots' data before the map flips.

/// Slots a new owner that owns none yet gets from each old owner in the first round of
/// a change (`moves.rs`, `MovePhase::first_round`); the rest follows once it is listed.
pub const MOVE_FIRST_ROUND_UNITS: usize = 16;
/// Units (slots) in one move order.
pub const MOVE_ORDER_UNITS_MAX: usize = 256;
/// Units in flight over all orders of a move phase.
pub const MOVE_UNITS_IN_FLIGHT_MAX: usize = 2048;
/// An order with no report from its old owner for this long fails its remaining units
/// (they stay with the old owner).
pub const MOVE_ORDER_TIMEOUT_MS: u64 = 30_000;

// Connection weights inside a node (`map::ConnWeights`, `--conn-balance weighted`).

/// A shard's connection weight, pinned by the operator or derived from load. Zero is
/// allowed (the shard gets no new connections) as long as one shard of the node is above it.
pub const CONN_WEIGHT_MAX: u32 = 1_000;

// Topics in the map (CreateTopics through the control plane).

/// Topics in one map.
pub const TOPICS_MAX: usize = 65_536;
/// Partitions of one topic (Kafka's and a node's bound, `TOPIC_PARTITIONS_MAX` there).
pub const TOPIC_PARTITIONS_MAX: u32 = 100_000;
/// Configs one topic sets.
pub const TOPIC_CONFIGS_MAX: usize = 64;
/// A topic config's name or value.
pub const TOPIC_CONFIG_BYTES_MAX: usize = 4096;
/// Topic changes (create, delete, add partitions) queued behind the change in progress.
pub const TOPIC_CHANGES_QUEUED_MAX: usize = 256;
/// How long a deleted topic's partitions, still reported by a node's heartbeat, are not
/// placed again (the nodes delete them when they install the map that drops the topic).
pub const DELETED_TOPIC_FORGET_MS: u64 = 60_000;
