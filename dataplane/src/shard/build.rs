//! Building a shard on its own thread: its ring (single-issuer, so it must be created by the
//! thread that uses it), receive buffers, keyspace for its slot range, and the log
//! partitions it owns (recovered from disk, blocking I/O being fine before serving).

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::{mpsc, Arc};

use super::conn::Conns;
use super::flights::Flights;
use super::{Control, Drain, Listener, NodeShared, Shard};
use crate::cache::store::Store;
use crate::log::Logs;
use crate::mesh::{Endpoint, SlotTable};
use crate::metrics::ShardMetrics;
use crate::proto::resp::parse::Limits;
use crate::runtime::io::Io;
use crate::runtime::ring;
use crate::txn::waiters::Waiters;
use crate::txn::Scheduler;

/// What a shard is built from.
pub struct ShardInit {
    pub id: usize,
    pub shared: Arc<NodeShared>,
    pub listeners: Vec<OwnedFd>,
    /// TLS listeners, each with its protocol (`LISTENER_RESP` or `LISTENER_KAFKA`).
    pub tls_listeners: Vec<(OwnedFd, u32)>,
    /// `--shard-ports`: this shard's own RESP port (its connections never move to another
    /// shard, and keys of other shards there answer MOVED).
    pub shard_port: Option<OwnedFd>,
    /// `--kafka-shard-ports`: this shard's own Kafka port (`cluster/kafka_ports.rs`).
    pub kafka_shard_port: Option<OwnedFd>,
    pub mesh: Endpoint,
    pub control_rx: mpsc::Receiver<Control>,
    pub control_fd: OwnedFd,
    /// The log partitions this shard owns, recovered before the node reported ready.
    pub logs: Logs,
    /// The consumer groups this shard coordinates, with their recovered offsets.
    pub groups: crate::kafka::groups::Groups,
}

/// Why a shard could not start, in words that say what to change.
pub type StartError = String;

/// The ring and its receive buffers, made first: other shards need the ring's fd before
/// any shard serves.
pub fn make_io(shared: &NodeShared, id: usize) -> Result<Io, StartError> {
    let cfg = &shared.cfg;
    let (ring, features) = ring::build(cfg.sq_entries, cfg.sqpoll_idle_ms).map_err(|e| {
        let e = e.to_string();
        // EMFILE: say which limit to raise.
        let hint = if e.contains("os error 24") {
            " (raise `ulimit -n`)"
        } else {
            ""
        };
        format!("shard {id}: {e}{hint}")
    })?;
    let io = Io::new(
        ring,
        features,
        cfg.recv_buffers,
        cfg.recv_buffer_bytes as usize,
    )
    .map_err(|e| {
        format!(
            "shard {id}: registering {} receive buffers: {e} (raise `ulimit -l` or lower --recv-buffers)",
            cfg.recv_buffers
        )
    })?;
    tracing::debug!(shard = id, features = ?io.features, "shard ring ready");
    Ok(io)
}

impl Shard {
    /// Everything but the ring: keyspace, log recovery, tables.
    pub fn build(io: Io, init: ShardInit) -> Shard {
        let shared = init.shared;
        let cfg = &shared.cfg;
        let id = init.id;
        let n = shared.nshards;
        let now = shared.clock.now();
        let now_ms = shared.clock.unix_ms();
        let range = SlotTable::range_of(id, n);
        crate::script::attach(shared.scripts.clone(), id);
        let mut store = Store::new(
            range.start,
            range.len(),
            0x5eed ^ ((id as u64 + 1) * 0x9e37_79b9),
        );
        store.maxmemory_bytes = cfg.maxmemory.div_ceil(n);
        store.policy = cfg.eviction;
        store.samples = cfg.eviction_samples;
        super::hygiene::seed_timeout(&mut store, cfg.client_idle_timeout_s);
        let owner = SlotTable::new(n);
        let logs = init.logs;
        let limits = Limits {
            bulk_bytes_max: cfg.max_bulk_bytes,
            ..Limits::default()
        };
        Shard {
            io,
            id,
            listeners: init
                .listeners
                .into_iter()
                .map(|fd| Listener {
                    fd,
                    accept: None,
                    tls: None,
                    shard_port: None,
                })
                .chain(init.tls_listeners.into_iter().map(|(fd, proto)| Listener {
                    fd,
                    accept: None,
                    tls: Some(proto),
                    shard_port: None,
                }))
                .chain(init.shard_port.into_iter().map(|fd| Listener {
                    fd,
                    accept: None,
                    tls: None,
                    shard_port: Some(super::LISTENER_RESP),
                }))
                .chain(init.kafka_shard_port.into_iter().map(|fd| Listener {
                    fd,
                    accept: None,
                    tls: None,
                    shard_port: Some(super::LISTENER_KAFKA),
                }))
                .collect(),
            conns: Conns::default(),
            store,
            logs,
            groups: init.groups,
            sched: Scheduler::new(id as u16),
            flights: Flights::default(),
            mesh: init.mesh,
            owner,
            metrics: ShardMetrics::new(id),
            control_rx: init.control_rx,
            control_fd: init.control_fd,
            limits,
            args: Vec::new(),
            scratch: Vec::new(),
            dirty: Vec::new(),
            blocked: Vec::new(),
            completions: Vec::new(),
            now,
            now_ms,
            next_client: 0,
            next_tx: 0,
            next_producer: 0,
            drain: Drain::Serving,
            self_msgs: VecDeque::new(),
            in_self: false,
            resume: Vec::new(),
            keys_jobs: Default::default(),
            reply_jobs: Default::default(),
            log_replies: Vec::new(),
            outputs: Vec::new(),
            runnable: Vec::new(),
            running: false,
            timers: Vec::new(),
            fast_timer: false,
            waiters: Waiters::default(),
            accept_paused: Vec::new(),
            accept_error_logged: None,
            accept_errors_unlogged: 0,
            refusing_writes: false,
            doorbells: Vec::new(),
            budget: crate::budget::Budget::new(cfg, n),
            stall: crate::metrics::stall::StallWatch::new(id, shared.cfg.stall_warn_ms, now),
            hygiene: Default::default(),
            tls: Default::default(),
            pickers: Default::default(),
            shared,
        }
    }
}
