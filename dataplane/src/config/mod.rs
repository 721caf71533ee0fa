//! The node's CLI: every flag, its default and its validation, in one place.
//!
//! Every bound on the data path is a flag here, with its unit in its name. `Config::validate`
//! checks the derived limits at start-up, so a node never starts with bounds that contradict
//! each other.
//!
//! The flags, their errors and `validate` stay together here, so that a new flag is one block
//! appended to each. `values.rs` reads flag values (CPU lists, byte sizes, yes/no);
//! `inert.rs` lists the Redis settings CONFIG SET stores without effect.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use crate::cache::store::Policy;
use crate::limits::{
    EVICTION_SAMPLES_MAX, OUTPUT_LIMIT_FLOOR_BYTES, RECV_MEMORY_MAX_BYTES, RING_CAPACITY_MAX,
    RING_CAPACITY_MIN, TOPIC_PARTITIONS_MAX,
};

mod inert;
mod values;

pub use inert::{InertKind, InertSetting, INERT_SETTINGS};
pub use values::{parse_bytes, parse_cpu_list, parse_yes_no};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "pinion",
    version,
    about = "pinion node: thread-per-core io_uring cache (RESP) and log"
)]
pub struct Config {
    /// CPUs to run shards on, one shard pinned per CPU: `all`, or a list such as `0,2-5`.
    #[arg(long, default_value = "all")]
    pub cores: String,

    /// Address the RESP (Redis protocol) listener binds; every shard listens with SO_REUSEPORT.
    #[arg(long, default_value = "0.0.0.0:6379")]
    pub resp_listen: SocketAddr,

    /// Address the Kafka protocol listener binds; every shard listens with SO_REUSEPORT.
    #[arg(long, default_value = "0.0.0.0:9092")]
    pub kafka_listen: SocketAddr,

    /// host:port that Kafka clients are told to connect to (Metadata); defaults to the
    /// Kafka listen address, with 127.0.0.1 standing in for an unspecified host.
    #[arg(long)]
    pub advertise: Option<String>,

    /// Largest Kafka request; a larger size prefix closes the connection.
    #[arg(long, default_value = "100mb", value_parser = parse_bytes)]
    pub max_request_bytes: usize,

    /// When produced data is made durable: `always` (fdatasync per group commit, before the
    /// produce is acknowledged), `interval:<ms>`, or `never`. docs/operations.md says what
    /// each risks.
    #[arg(long, default_value = "always", value_parser = crate::log::commit::parse_fsync)]
    pub fsync: crate::log::commit::Fsync,

    /// Write log segments with O_DIRECT (from 4 KiB-aligned buffers, bypassing the page
    /// cache). Falls back to buffered writes, with a log line, where the filesystem refuses
    /// it (tmpfs). `false` always writes through the page cache.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub direct_io: bool,

    /// Sends of at least this many bytes (large fetch responses) use zero-copy SEND_ZC:
    /// the NIC reads the reply from our buffer, which is held until the kernel says it is
    /// done. 0 turns it off. Over loopback the kernel copies anyway (see
    /// docs/operations.md), so it pays off only for clients on other hosts.
    #[arg(long, default_value = "0", value_parser = parse_bytes)]
    pub send_zc_min_bytes: usize,

    /// Largest record batch a producer may send (Kafka's message.max.bytes).
    #[arg(long, default_value = "1mb", value_parser = parse_bytes)]
    pub max_message_bytes: usize,

    /// Roll a partition's active segment when it would pass this size.
    #[arg(long, default_value = "1gb", value_parser = parse_bytes)]
    pub segment_bytes: usize,

    /// Roll a partition's active segment when it is older than this (ms).
    #[arg(long, default_value_t = 7 * 24 * 3600 * 1000)]
    pub segment_ms: u64,

    /// Delete a partition's oldest segments while it is larger than this (default: no limit).
    #[arg(long, value_parser = parse_bytes)]
    pub retention_bytes: Option<usize>,

    /// Delete segments whose newest record is older than this (ms; default 7 days).
    #[arg(long, default_value_t = 7 * 24 * 3600 * 1000)]
    pub retention_ms: u64,

    /// Create a topic when a client asks for one that does not exist (Metadata, Produce).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub auto_create_topics: bool,

    /// Partitions of an auto-created topic, and of CreateTopics with -1.
    #[arg(long, default_value_t = 1)]
    pub default_partitions: i32,

    /// Address of the admin HTTP endpoint (`/metrics`, `/histograms`).
    #[arg(long, default_value = "127.0.0.1:9644")]
    pub admin_listen: SocketAddr,

    /// Folder for the node's data.
    #[arg(long, default_value = "./pinion-data")]
    pub data_dir: PathBuf,

    /// Log filter (`error`, `warn`, `info`, `debug`, `trace`, or a tracing directive).
    #[arg(long, default_value = "info")]
    pub log_level: String,

    /// Submission queue entries per shard ring (the completion queue gets 4x).
    #[arg(long, default_value_t = 4096)]
    pub sq_entries: u32,

    /// Run each ring with a kernel SQ polling thread that idles after this many ms.
    /// Costs a kernel thread per shard; off by default.
    #[arg(long)]
    pub sqpoll_idle_ms: Option<u32>,

    /// Provided receive buffers per shard (a power of two, at most 32768).
    #[arg(long, default_value_t = 256)]
    pub recv_buffers: u16,

    /// Size of each provided receive buffer.
    #[arg(long, default_value_t = 16384)]
    pub recv_buffer_bytes: u32,

    /// Messages each inter-shard lane holds before the sender applies backpressure.
    #[arg(long, default_value_t = 4096)]
    pub ring_capacity: usize,

    /// RESP client connections across the node (Redis's maxclients); further ones get
    /// `-ERR max number of clients reached` and are closed.
    #[arg(long, default_value_t = 10_000)]
    pub max_connections: usize,

    /// Kafka client connections across the node; further ones are closed at once (a Kafka
    /// client reads no RESP error).
    #[arg(long, default_value_t = 10_000)]
    pub max_kafka_connections: usize,

    /// Largest bulk string a request may carry (Redis's proto-max-bulk-len).
    #[arg(long, default_value = "512mb", value_parser = parse_bytes)]
    pub max_bulk_bytes: usize,

    /// Largest unparsed input a connection may hold (Redis's client-query-buffer-limit).
    #[arg(long, default_value = "1gb", value_parser = parse_bytes)]
    pub max_query_buffer_bytes: usize,

    /// Replies queued for a client beyond this: it runs nothing more until it reads, and is
    /// closed if it takes none of them for 500 ms (it stopped reading). A client that reads
    /// gets replies of any size.
    #[arg(long, default_value = "256mb", value_parser = parse_bytes)]
    pub output_buffer_limit_bytes: usize,

    /// Requests of one connection in flight (not yet answered) before it stops being read.
    #[arg(long, default_value_t = 1024)]
    pub max_inflight_per_conn: usize,

    /// Memory limit for cached data across the node, split evenly over shards (0 = none).
    #[arg(long, default_value = "0", value_parser = parse_bytes)]
    pub maxmemory: usize,

    /// What to do at the memory limit.
    #[arg(long, value_enum, default_value_t = Policy::Noeviction)]
    pub eviction: Policy,

    /// Keys sampled per eviction (Redis's maxmemory-samples).
    #[arg(long, default_value_t = 5)]
    pub eviction_samples: usize,

    /// Entries active expiry examines per shard per 100 ms tick.
    #[arg(long, default_value_t = 2000)]
    pub expire_keys_per_tick: usize,

    /// Require clients to AUTH with this password.
    #[arg(long)]
    pub requirepass: Option<String>,

    /// Write merged and per-shard HDR histograms here on SIGUSR1 and at shutdown.
    #[arg(long)]
    pub hist_dump: Option<PathBuf>,

    /// Seconds to finish in-flight requests at shutdown before closing connections anyway.
    #[arg(long, default_value_t = 5)]
    pub shutdown_grace_s: u64,

    // ----- consumer groups (issue 11, f-groups) -----
    /// Kafka's group.initial.rebalance.delay.ms: how long the first rebalance of an empty
    /// group waits for more members (each new member extends it, up to the rebalance
    /// timeout). 0 completes it as soon as every known member has joined.
    #[arg(long, default_value_t = 3000)]
    pub group_initial_rebalance_delay_ms: u64,

    /// Kafka's group.min.session.timeout.ms: a JoinGroup asking for less is refused with
    /// INVALID_SESSION_TIMEOUT.
    #[arg(long, default_value_t = 6000)]
    pub group_min_session_timeout_ms: u64,

    /// Kafka's group.max.session.timeout.ms.
    #[arg(long, default_value_t = 1_800_000)]
    pub group_max_session_timeout_ms: u64,

    // ----- the memory budget (issue 13, item 1) -----
    /// Memory the node may spend, across the node, split evenly over shards: request bytes
    /// in flight, produce batches waiting for commit, fetches, replies not yet sent, and the
    /// cache (of which --maxmemory is the share, at most 7/8 of this). At the budget a
    /// shard stops reading from the connections that want more. Default: 3/4 of the
    /// memory this process may use (RAM or its cgroup limit).
    #[arg(long, value_parser = parse_bytes)]
    pub memory_budget: Option<usize>,

    // ----- stall detection (issue 13, f-stall) -----
    /// Warn (rate-limited) naming the piece of work, and count a stall, when one loop turn of
    /// a shard runs past this many milliseconds. 0 turns the warning, the count and the
    /// per-piece clock readings off (the loop-turn histogram is kept).
    #[arg(long, default_value_t = 50)]
    pub stall_warn_ms: u64,

    // ----- connection hygiene (issue 13, f-hygiene) -----
    /// Close a RESP connection idle this long (Redis's `timeout`; 0 = never). Clients parked
    /// in a blocking command, or waiting for a reply, are not idle. `CONFIG SET timeout`
    /// changes it while running.
    #[arg(long, default_value_t = 0)]
    pub client_idle_timeout_s: u64,

    /// Close a Kafka connection idle this long (Kafka's connections.max.idle.ms; 0 = never).
    /// A connection waiting for a reply (a long-polling Fetch) is not idle.
    #[arg(long, default_value_t = 600_000)]
    pub kafka_idle_timeout_ms: u64,

    /// A request that has been arriving for longer than this must have come at an average
    /// of at least `PARTIAL_FRAME_MIN_BYTES_PER_S` (limits.rs) since its first byte, else the
    /// connection is closed (slowloris). 0 = never.
    #[arg(long, default_value_t = 30)]
    pub partial_frame_timeout_s: u64,

    /// Connections from one source address, RESP and Kafka together (0 = no limit). A RESP
    /// client past it gets `-ERR max number of clients per address reached`; a Kafka client
    /// is closed.
    #[arg(long, default_value_t = 0)]
    pub max_connections_per_ip: usize,

    /// Redis's protected mode: with no --requirepass, RESP clients from addresses other than
    /// loopback are refused with `-DENIED ...`. `no` serves them.
    #[arg(long, default_value = "yes", value_parser = parse_yes_no, action = clap::ArgAction::Set)]
    pub protected_mode: bool,

    // TLS (issue 13)
    /// PEM certificate chain the TLS listeners present (the server's certificate first).
    /// Re-read on SIGHUP.
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1). Re-read on SIGHUP.
    #[arg(long)]
    pub tls_key: Option<PathBuf>,

    /// PEM CA certificates: when set, TLS clients must present a certificate they sign
    /// (mutual TLS); one without, or with an expired or untrusted one, fails its handshake.
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,

    /// Address a RESP listener over TLS binds, next to --resp-listen (needs --tls-cert and
    /// --tls-key).
    #[arg(long)]
    pub resp_tls_listen: Option<SocketAddr>,

    /// Address a Kafka listener over TLS binds, next to --kafka-listen (clients use
    /// security.protocol=SSL; Metadata sends them to this port).
    #[arg(long)]
    pub kafka_tls_listen: Option<SocketAddr>,

    /// A TLS client must finish its handshake within this many milliseconds of being
    /// accepted, else it is closed (0 = no limit).
    #[arg(long, default_value_t = 10_000)]
    pub tls_handshake_timeout_ms: u64,

    // ----- fd budget (issue 11/13, f-kadmin) -----
    /// Log partitions the node may hold, all topics together: CreateTopics, CreatePartitions
    /// and auto-creation past it are refused (POLICY_VIOLATION / INVALID_PARTITIONS). 0 =
    /// derived from `ulimit -n` (2 descriptors per partition, after what connections and the
    /// node need); a value the fd limit cannot hold fails the start, saying what to raise.
    #[arg(long, default_value_t = 0)]
    pub max_partitions: u64,

    // ----- Security (issue 13) -----
    /// Users file: one `user NAME RULE ...` line per user (ACL LIST's form) with salted SCRAM
    /// credentials, never passwords. Loaded at start; ACL LOAD and ACL SAVE read and write it.
    /// `pinion users add NAME [RULE ...] --password-stdin --file FILE` adds a user.
    #[arg(long)]
    pub users: Option<PathBuf>,

    /// Kafka clients must authenticate with SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)
    /// before any request but ApiVersions and SaslHandshake/SaslAuthenticate. Default: yes
    /// when --users is given, else no.
    #[arg(long, value_parser = parse_yes_no)]
    pub kafka_sasl: Option<bool>,

    /// Bearer token the admin endpoint requires (`Authorization: Bearer TOKEN`) for
    /// everything but /metrics. `@PATH` reads it from a file (first line).
    #[arg(long)]
    pub admin_token: Option<String>,

    // Cluster (issue 12)
    /// Shard i also listens for RESP on port BASE+i (same host as --resp-listen), and is
    /// listed by CLUSTER SLOTS/NODES as its own master: cluster-aware clients reach the
    /// owning shard directly, and keys of other shards there get `-MOVED`.
    #[arg(long)]
    pub shard_ports: Option<u16>,

    /// The control plane's address (`host:port`), or several (`A,B`: control planes sharing
    /// an etcd store; the node finds the leader): the node joins the cluster it runs.
    /// Without it the node runs standalone.
    #[arg(long)]
    pub control: Option<String>,

    /// This node's id in the cluster map (with --control).
    #[arg(long)]
    pub node_id: Option<u32>,

    /// This node's operator weight (with --control): its share of slots and partitions is
    /// weight x shards, relative to the others.
    #[arg(long, default_value_t = 1)]
    pub weight: u32,

    /// The secret shared with the control plane (with --control); at least 16 bytes.
    #[arg(long)]
    pub control_secret_file: Option<PathBuf>,

    /// How often the node reports its load to the control plane (with --control).
    #[arg(long, default_value_t = 1000)]
    pub heartbeat_ms: u64,

    // Connection balancing (issue 12)
    /// How new connections are spread over the shards: `reuseport` (a listener per shard,
    /// the kernel picks), or one listener on shard 0 handing each connection to a shard
    /// `round-robin`, `weighted` (by --shard-weights) or `least-conn` (fewest open).
    #[arg(long, value_enum, default_value_t = crate::shard::balance::ConnBalance::Reuseport)]
    pub conn_balance: crate::shard::balance::ConnBalance,

    /// Per-shard weights for `--conn-balance weighted`, one per shard: `3,1` (default all 1).
    #[arg(long, value_delimiter = ',')]
    pub shard_weights: Vec<u32>,

    // Kafka shard ports (issue 12, f-2pckill)
    /// Shard i also listens for Kafka on port BASE+i (same host as --kafka-listen) and is
    /// listed by Metadata as its own broker (id node-id x 1000 + i), leading the partitions
    /// it owns: clients reach the owning shard directly. Standalone nodes only for now.
    #[arg(long)]
    pub kafka_shard_ports: Option<u16>,

    // ----- failed authentications per address (issue 13, f-harden) -----
    /// Failed authentications (AUTH, HELLO AUTH, Kafka SASL) one client address may make
    /// within --auth-failure-window-ms; past it every attempt from that address, a right
    /// password included, is refused for --auth-block-ms. 0 = no limit.
    #[arg(long, default_value_t = crate::limits::AUTH_FAILURES_MAX)]
    pub auth_failures_max: u32,

    /// The window failed authentications are counted in, from the first of them.
    #[arg(long, default_value_t = crate::limits::AUTH_FAILURE_WINDOW_MS)]
    pub auth_failure_window_ms: u64,

    /// How long an address past --auth-failures-max is refused.
    #[arg(long, default_value_t = crate::limits::AUTH_BLOCK_MS)]
    pub auth_block_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--cores: {0}")]
    Cores(String),
    #[error("--recv-buffers must be a power of two between 1 and 32768, got {0}")]
    RecvBuffers(u16),
    #[error("--recv-buffer-bytes must be between 512 and 1048576, got {0}")]
    RecvBufferBytes(u32),
    #[error("--sq-entries must be a power of two between 8 and 32768, got {0}")]
    SqEntries(u32),
    #[error("--ring-capacity must be between {min} and {max}, got {got}")]
    RingCapacity { got: usize, min: usize, max: usize },
    #[error("--max-query-buffer-bytes ({query}) must exceed --max-bulk-bytes ({bulk}) and be below 4 GiB")]
    QueryBuffer { query: usize, bulk: usize },
    #[error("--max-inflight-per-conn must be at least 1")]
    Inflight,
    #[error("--max-connections and --max-kafka-connections must be at least 1")]
    Connections,
    #[error("--max-message-bytes ({message}) must fit in --max-request-bytes ({request})")]
    MessageBytes { message: usize, request: usize },
    #[error("--default-partitions must be between 1 and {max}, got {got}")]
    DefaultPartitions { got: i32, max: i32 },
    #[error("--eviction-samples must be between 1 and {max}, got {got}")]
    EvictionSamples { got: usize, max: usize },
    #[error("--expire-keys-per-tick must be at least 1")]
    ExpireKeys,
    #[error("--recv-buffers x --recv-buffer-bytes ({0} bytes) must stay below 1 GiB per shard")]
    RecvMemory(usize),
    #[error("--output-buffer-limit-bytes must be at least {need}: the largest reply a bulk can make (--max-bulk-bytes), or 1 MiB if that is smaller")]
    OutputLimit { need: usize },
    // ----- consumer groups (issue 11, f-groups) -----
    #[error("--group-min-session-timeout-ms must be at least 1 and at most --group-max-session-timeout-ms, which is at most {max}")]
    GroupSession { max: u64 },
    #[error("--group-initial-rebalance-delay-ms must be at most {max}")]
    GroupDelay { max: u64 },

    #[error("--memory-budget must be at least {min} bytes, got {got}")]
    BudgetTooSmall { got: usize, min: usize },
    #[error("--maxmemory ({maxmemory}) must leave 1/8 of --memory-budget ({budget}) for requests and replies: raise --memory-budget to at least {need} or lower --maxmemory")]
    BudgetCache {
        maxmemory: usize,
        budget: usize,
        need: usize,
    },
    // TLS (issue 13)
    #[error("{0}")]
    Tls(&'static str),
    // Cluster (issue 12)
    #[error("--control needs --node-id and --control-secret-file")]
    ClusterFlags,
    #[error("--heartbeat-ms must be between 1 and {max}")]
    Heartbeat { max: u64 },
    // ----- failed authentications per address (issue 13, f-harden) -----
    #[error("--auth-failure-window-ms and --auth-block-ms must be between 1 and {max}")]
    AuthLimits { max: u64 },
}

impl Config {
    /// Kafka SASL is on (issue 13, Security): `--kafka-sasl`, or `--users` given.
    pub fn kafka_sasl_enabled(&self) -> bool {
        self.kafka_sasl.unwrap_or(self.users.is_some())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.recv_buffers.is_power_of_two() || self.recv_buffers > 32768 {
            return Err(ConfigError::RecvBuffers(self.recv_buffers));
        }
        if !(512..=1 << 20).contains(&self.recv_buffer_bytes) {
            return Err(ConfigError::RecvBufferBytes(self.recv_buffer_bytes));
        }
        if !self.sq_entries.is_power_of_two() || !(8..=32768).contains(&self.sq_entries) {
            return Err(ConfigError::SqEntries(self.sq_entries));
        }
        if !(RING_CAPACITY_MIN..=RING_CAPACITY_MAX).contains(&self.ring_capacity) {
            return Err(ConfigError::RingCapacity {
                got: self.ring_capacity,
                min: RING_CAPACITY_MIN,
                max: RING_CAPACITY_MAX,
            });
        }
        if self.max_query_buffer_bytes <= self.max_bulk_bytes
            || self.max_query_buffer_bytes >= 1 << 32
        {
            return Err(ConfigError::QueryBuffer {
                query: self.max_query_buffer_bytes,
                bulk: self.max_bulk_bytes,
            });
        }
        if self.max_inflight_per_conn == 0 {
            return Err(ConfigError::Inflight);
        }
        if self.max_connections == 0 || self.max_kafka_connections == 0 {
            return Err(ConfigError::Connections);
        }
        let recv = self.recv_buffers as usize * self.recv_buffer_bytes as usize;
        if recv >= RECV_MEMORY_MAX_BYTES {
            return Err(ConfigError::RecvMemory(recv));
        }
        if self.max_message_bytes > self.max_request_bytes {
            return Err(ConfigError::MessageBytes {
                message: self.max_message_bytes,
                request: self.max_request_bytes,
            });
        }
        if !(1..=TOPIC_PARTITIONS_MAX).contains(&self.default_partitions) {
            return Err(ConfigError::DefaultPartitions {
                got: self.default_partitions,
                max: TOPIC_PARTITIONS_MAX,
            });
        }
        if !(1..=EVICTION_SAMPLES_MAX).contains(&self.eviction_samples) {
            return Err(ConfigError::EvictionSamples {
                got: self.eviction_samples,
                max: EVICTION_SAMPLES_MAX,
            });
        }
        if self.expire_keys_per_tick == 0 {
            return Err(ConfigError::ExpireKeys);
        }
        // A client may GET the largest value it may SET; the limit is for clients that stop
        // reading, not for large replies.
        let need = self.max_bulk_bytes.min(OUTPUT_LIMIT_FLOOR_BYTES);
        if self.output_buffer_limit_bytes < need {
            return Err(ConfigError::OutputLimit { need });
        }
        // Consumer groups (issue 11, f-groups).
        let max = crate::limits::GROUP_TIMEOUT_MS_MAX;
        if self.group_min_session_timeout_ms == 0
            || self.group_min_session_timeout_ms > self.group_max_session_timeout_ms
            || self.group_max_session_timeout_ms > max
        {
            return Err(ConfigError::GroupSession { max });
        }
        if self.group_initial_rebalance_delay_ms > max {
            return Err(ConfigError::GroupDelay { max });
        }
        // The memory budget (issue 13, item 1).
        if let Some(budget) = self.memory_budget {
            if budget < crate::limits::BUDGET_MIN_BYTES {
                return Err(ConfigError::BudgetTooSmall {
                    got: budget,
                    min: crate::limits::BUDGET_MIN_BYTES,
                });
            }
            let need = crate::budget::cache_fits(self.maxmemory);
            if budget < need {
                return Err(ConfigError::BudgetCache {
                    maxmemory: self.maxmemory,
                    budget,
                    need,
                });
            }
        }
        // TLS (issue 13).
        let listens = self.resp_tls_listen.is_some() || self.kafka_tls_listen.is_some();
        let files = self.tls_cert.is_some() || self.tls_key.is_some() || self.tls_ca.is_some();
        if listens && (self.tls_cert.is_none() || self.tls_key.is_none()) {
            return Err(ConfigError::Tls(
                "--resp-tls-listen and --kafka-tls-listen need --tls-cert and --tls-key",
            ));
        }
        if files && !listens {
            return Err(ConfigError::Tls(
                "--tls-cert, --tls-key and --tls-ca serve only --resp-tls-listen or --kafka-tls-listen: add one",
            ));
        }
        // Cluster (issue 12)
        if self.control.is_some() && (self.node_id.is_none() || self.control_secret_file.is_none())
        {
            return Err(ConfigError::ClusterFlags);
        }
        if self.heartbeat_ms == 0 || self.heartbeat_ms > crate::limits::HEARTBEAT_MS_MAX {
            return Err(ConfigError::Heartbeat {
                max: crate::limits::HEARTBEAT_MS_MAX,
            });
        }
        // Failed authentications per address (issue 13, f-harden).
        let ms_max = crate::limits::AUTH_LIMIT_MS_MAX;
        if (self.auth_failures_max > 0 && !(1..=ms_max).contains(&self.auth_failure_window_ms))
            || !(1..=ms_max).contains(&self.auth_block_ms)
        {
            return Err(ConfigError::AuthLimits { max: ms_max });
        }
        Ok(())
    }

    /// The failed-authentication limits (`auth/guard.rs`).
    pub fn auth_limits(&self) -> crate::auth::guard::AuthLimits {
        crate::auth::guard::AuthLimits {
            failures_max: self.auth_failures_max,
            window: std::time::Duration::from_millis(self.auth_failure_window_ms),
            block: std::time::Duration::from_millis(self.auth_block_ms),
        }
    }

    /// The TLS files, when a TLS listener is configured (`validate` checked they are all
    /// there).
    pub fn tls_files(&self) -> Option<crate::tls::TlsFiles> {
        if self.resp_tls_listen.is_none() && self.kafka_tls_listen.is_none() {
            return None;
        }
        Some(crate::tls::TlsFiles {
            cert: self.tls_cert.clone()?,
            key: self.tls_key.clone()?,
            ca: self.tls_ca.clone(),
        })
    }

    /// The CPUs named by `--cores`, checked against the CPUs this process may run on.
    pub fn cpu_list(&self, available: &[usize]) -> Result<Vec<usize>, ConfigError> {
        parse_cpu_list(&self.cores, available)
    }
}

impl Config {
    /// Topic configs for a topic that names none.
    pub fn topic_defaults(&self) -> crate::log::topics::TopicConfig {
        crate::log::topics::TopicConfig {
            segment_bytes: self.segment_bytes as u64,
            segment_ms: self.segment_ms,
            retention_bytes: self.retention_bytes.map(|b| b as u64),
            retention_ms: Some(self.retention_ms),
            max_message_bytes: self.max_message_bytes as u64,
            cleanup: crate::log::topics::Cleanup::Delete,
        }
    }

    /// The host and port Kafka clients should use to reach this node.
    pub fn advertised(&self, kafka_port: u16) -> (String, u16) {
        if let Some(a) = &self.advertise {
            if let Some((h, p)) = a.rsplit_once(':') {
                if let Ok(p) = p.parse() {
                    return (h.to_string(), p);
                }
            }
            return (a.clone(), kafka_port);
        }
        let ip = self.kafka_listen.ip();
        let host = if ip.is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            ip.to_string()
        };
        (host, kafka_port)
    }
}

#[cfg(test)]
mod tests;
