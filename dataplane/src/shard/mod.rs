//! A shard: one thread pinned to one CPU, its own io_uring, listeners and connections, its
//! slots of the keyspace and partitions of the log. This folder is the reactor only: the
//! loop and completion dispatch (here), connections and their I/O ([`conn`], `io.rs`), the
//! one frame loop both protocols share (`frames.rs`), TLS connections' receive and send
//! (`tls.rs`), flights of the transaction framework
//! this shard coordinates (`flights.rs`), the mesh drain and the work other shards ask of
//! this one (`owner.rs`), construction ([`build`]) and the node's start and stop
//! ([`node`]). What a request *means* is in the front ends (`redis/`, `kafka/`), the
//! stores (`cache/`, `log/`) and the framework (`txn/`).
//!
//! One loop turn: submit and wait for at least one completion (or none, when there is work
//! that arrives no other way); handle every completion; drain the mesh (replies always,
//! requests while the reply lane back has room); retry connections blocked on the mesh;
//! start the log's group commits; start sends for connections with output; push this
//! turn's mesh batches and ring the doorbells of the shards they went to.
//! `docs/architecture.md` explains the choices.

mod admission;
pub mod balance;
mod blocked;
pub mod build;
pub mod conn;
mod flights;
mod frames;
mod groups;
pub mod hygiene;
mod io;
pub mod node;
mod owner;
mod sliced;
mod tls;

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use crate::cache::store::Store;
use crate::clock::Clock;
use crate::config::Config;
use crate::log::ops::LogResult;
use crate::log::{LogCtx, Logs};
use crate::mesh::{Endpoint, Msg, SlotTable};
use crate::metrics::stall::{StallWatch, What};
use crate::metrics::ShardMetrics;
use crate::proto::resp::command::Family;
use crate::proto::resp::parse::Limits;
use crate::runtime::io::{Completion, Io, OpId};
use crate::runtime::{Kind, TIMER_FAST};
use crate::txn::waiters::Waiters;
use crate::txn::{Dest, FlightRef, Output, Participant, Rounds, Scheduler, Ticket, Work};
use conn::Conns;
use flights::Flights;

/// Messages from the main thread, delivered through a channel plus an eventfd wake-up.
pub enum Control {
    Shutdown,
    Metrics(mpsc::Sender<ShardMetrics>),
    /// A partition move's command (issue 12, f-pull: `log/pull/`).
    Pull(crate::log::pull::ShardCmd),
}

/// Node-wide facts every shard reads; written once at start-up.
pub struct NodeShared {
    pub cfg: Config,
    pub nshards: usize,
    pub started: Instant,
    pub resp_port: u16,
    pub kafka_port: u16,
    pub clock: Arc<dyn Clock>,
    /// Connections open across the node per protocol (indexed by `LISTENER_RESP` and
    /// `LISTENER_KAFKA`), for --max-connections and --max-kafka-connections (touched at
    /// accept and close only, never per request).
    pub connections: [AtomicUsize; 2],
    /// Shards that have not finished draining at shutdown.
    pub draining: AtomicUsize,
    /// Per shard: over its memory limit with nothing it may evict, so writes are refused
    /// (written by that shard once per loop turn when it changes; MULTI reads it to refuse
    /// queueing a write for that shard, as Redis refuses queueing when out of memory).
    pub refusing_writes: Vec<AtomicBool>,
    /// Scripting's node-wide registry (cached scripts, function libraries) and each
    /// shard's running script, for SCRIPT KILL from another shard.
    pub scripts: Arc<crate::script::Shared>,
    /// Connections per source address (`--max-connections-per-ip`; `hygiene.rs`).
    pub peers: hygiene::Peers,
    /// TLS (issue 13): the reloadable server configuration when a TLS listener is on, and
    /// the TLS listeners' ports.
    pub tls: Option<crate::tls::Tls>,
    pub resp_tls_port: Option<u16>,
    pub kafka_tls_port: Option<u16>,

    /// Users, ACLs and the ACL log, node-wide (issue 13, f-sec; `auth/`).
    pub users: Arc<crate::auth::Users>,
    /// The cluster view (issue 12): who owns each slot and partition.
    pub cluster: Arc<crate::cluster::Cluster>,

    /// Connection balancing (issue 12): the policy, per-shard weights and open counts.
    pub balance: balance::Balance,
}

/// What a front end decided about one request.
pub enum Act {
    /// Answered: the reply is in the connection's output, in order.
    Done,
    /// Not taken: a mesh batch it needs is full. The request is parsed again later.
    Blocked,
    /// Answered; close the connection once the replies are out.
    Close,
    /// A request that cannot be served (undecodable): close, counted as a protocol error.
    Reject,
    /// Run this request (a single-key command) on `shard`: its owner, or this shard when a
    /// transaction holds its key.
    Forward {
        shard: usize,
        family: Family,
        /// A restricted user's script command: who runs it.
        caller: crate::auth::ScriptCaller,
    },
    /// Start a flight; its reply takes the connection's next reply slot.
    Launch(Launch),
    /// Answered; tell these shards to forget the connection's watches.
    Unwatch { shards: Vec<usize> },
}

/// A flight a front end asks for.
pub struct Launch {
    pub rounds: Box<dyn Rounds>,
    /// A transaction over these shards, or plain parts when None.
    pub atomic: Option<Vec<Participant>>,
    pub family: Family,
}

pub const LISTENER_RESP: u32 = 0;
pub const LISTENER_KAFKA: u32 = 1;
/// The shard's own RESP port (`--shard-ports`): clients that know the map come here.
pub const LISTENER_RESP_SHARD: u32 = 2;

pub struct Listener {
    fd: OwnedFd,
    accept: Option<OpId>,
    /// A TLS listener, for this protocol (`LISTENER_RESP` or `LISTENER_KAFKA`).
    tls: Option<u32>,
    /// This shard's own port, for this protocol: RESP (`--shard-ports`) or Kafka
    /// (`--kafka-shard-ports`).
    shard_port: Option<u32>,
}

/// Where a shard is in shutting down.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Drain {
    Serving,
    Draining { deadline: Instant },
    Drained,
}

pub struct Shard {
    io: Io,
    id: usize,
    shared: Arc<NodeShared>,
    listeners: Vec<Listener>,
    conns: Conns,
    store: Store,
    logs: Logs,
    /// The consumer groups this shard coordinates (`kafka/groups/`).
    groups: crate::kafka::groups::Groups,
    sched: Scheduler<Work>,
    flights: Flights,
    mesh: Endpoint,
    owner: SlotTable,
    metrics: ShardMetrics,
    control_rx: mpsc::Receiver<Control>,
    control_fd: OwnedFd,
    limits: Limits,
    args: Vec<(usize, usize)>,
    scratch: Vec<u8>,
    dirty: Vec<u32>,
    blocked: Vec<u32>,
    completions: Vec<Completion>,
    /// This loop turn's clock readings.
    now: Instant,
    now_ms: u64,
    next_client: u64,
    next_tx: u64,
    next_producer: u64,
    drain: Drain,
    /// Messages this shard sent itself, handled before the send returns.
    self_msgs: VecDeque<Msg>,
    in_self: bool,
    /// Connections to process once this shard's messages to itself are handled.
    resume: Vec<u32>,
    log_replies: Vec<(Dest, LogResult)>,
    outputs: Vec<Output>,
    runnable: Vec<(Ticket, Work)>,
    /// Queued work is being run (see `owner.rs`).
    running: bool,
    /// Flights waiting to run their parts again (long-polling fetches), and when.
    timers: Vec<(Instant, FlightRef)>,
    fast_timer: bool,
    /// Blocking commands parked on this shard's keys (`blocked.rs`).
    waiters: Waiters,
    /// Listeners whose accept stopped on EMFILE/ENFILE/ENOBUFS/ENOMEM, re-armed next tick.
    accept_paused: Vec<u32>,
    /// When an accept failure was last logged, and how many failed since without a line.
    accept_error_logged: Option<Instant>,
    accept_errors_unlogged: u64,
    /// What this shard last published in `NodeShared::refusing_writes`.
    refusing_writes: bool,
    /// Shards to ring this turn (reused).
    doorbells: Vec<usize>,
    /// This shard's memory budget (`crate::budget`, `admission.rs`).
    budget: crate::budget::Budget,
    /// Loop-turn lengths and stall warnings (`metrics/stall.rs`).
    stall: StallWatch,
    /// Idle and slowloris checks (`hygiene.rs`).
    hygiene: hygiene::Hygiene,
    /// KEYS parts running in slices (`sliced.rs`).
    keys_jobs: VecDeque<sliced::KeysJob>,
    /// Replies over big hashes built in slices (`sliced.rs`).
    reply_jobs: VecDeque<sliced::ReplyJob>,
    /// TLS handshake deadlines and the rate limit of failure warnings (`tls.rs`).
    tls: crate::tls::ShardTls,
    /// Connection balancing (issue 12): the choice state per protocol, on the accepting
    /// shard (`balance.rs`).
    pickers: [balance::Picker; 2],
}

impl Shard {
    /// Run until shutdown completes; returns the final metrics.
    pub fn run(mut self) -> ShardMetrics {
        for which in 0..self.listeners.len() as u32 {
            self.arm_accept(which);
        }
        self.arm_control();
        self.arm_tick();
        loop {
            let idle = self.blocked.is_empty()
                && self.dirty.is_empty()
                && self.logs.idle()
                && !self.mesh.backlogged()
                && !self.requests_waiting()
                && self.store.lazy_free.is_empty()
                && !self.sliced_pending();
            if let Err(e) = self.io.submit_and_wait(idle as usize) {
                // ENOMEM and the like: the kernel is short of something; back off a little
                // rather than spin, and try again.
                tracing::error!(shard = self.id, error = %e, "io_uring submit failed");
                std::thread::sleep(crate::limits::SUBMIT_RETRY);
            }
            self.now = self.shared.clock.now();
            self.now_ms = self.shared.clock.unix_ms();
            self.stall.wake(self.now);
            let mut completions = std::mem::take(&mut self.completions);
            self.io.reap(&mut completions);
            for c in completions.drain(..) {
                self.on_completion(c);
            }
            self.completions = completions;
            self.stall_mark(What::Named("mesh drain"));
            self.drain_mesh();
            self.retry_blocked();
            self.stall_mark(What::Named("log flush"));
            self.with_logs(|logs, ctx| logs.flush(ctx));
            if self.logs.compaction_ready() {
                // One slice of a compaction pass per turn (`log/compact/`).
                self.stall_mark(What::Named("log compaction slice"));
                let stopping = self.drain != Drain::Serving;
                self.with_logs(|logs, ctx| logs.compact_slice(stopping, ctx));
            }
            self.groups.flush(&mut self.io);
            // One slice of long commands (KEYS) per turn (`sliced.rs`).
            self.run_slices();
            self.stall_mark(What::Named("loop tail (sends, settle, mesh flush)"));
            self.flush_dirty();
            // Between commands: small collections go back inside their entries.
            self.store.settle();
            // What a flush dropped, a bounded number of items per turn.
            self.store
                .lazy_free
                .release(crate::limits::LAZY_FREE_ITEMS_PER_TURN);
            self.publish_memory();
            self.mesh.flush(self.now);
            self.ring_doorbells();
            self.stall
                .end_turn(self.shared.clock.now(), &mut self.metrics);
            // Exit only when no operation can still touch the log's buffers.
            if self.drain == Drain::Drained
                && self.shared.draining.load(Ordering::Acquire) == 0
                && self.logs.io_done()
                && self.groups.io_done()
            {
                break;
            }
        }
        // Close whatever is left (only after a forced drain). A socket whose close went to
        // the ring is not closed again: its number may already belong to another file.
        for c in self
            .conns
            .iter()
            .filter(|c| c.life != conn::Life::CloseSent)
        {
            crate::runtime::sys::close_after_loop(c.fd);
        }
        self.metrics.counters.connections_open = 0;
        self.metrics
    }

    fn on_completion(&mut self, c: Completion) {
        match c.owner.kind {
            Kind::Accept => self.on_accept(c),
            Kind::Recv => self.on_recv(c),
            Kind::Send => self.on_send(c),
            Kind::Close => self.on_closed(c),
            Kind::Doorbell => {} // the mesh is drained every turn
            Kind::DoorbellFailed => {
                tracing::warn!(
                    shard = self.id,
                    to = c.owner.index,
                    error = c.res,
                    "doorbell failed"
                )
            }
            Kind::Control => self.on_control(c.res),
            Kind::Timer if c.owner.index == TIMER_FAST => self.on_fast_timer(),
            Kind::Timer => self.on_tick(),
            Kind::LogWrite | Kind::LogSync | Kind::LogRead | Kind::File => {
                self.with_logs(|logs, ctx| logs.on_completion(c, ctx));
            }
            Kind::Group => self.with_groups(|groups, ctx| groups.on_completion(c, ctx.io)),
            Kind::Ignore => {}
        }
    }

    /// Start a named piece of the loop, for stall warnings (a clock reading only while
    /// they are on).
    #[inline]
    fn stall_mark(&mut self, next: What) {
        if self.stall.on() {
            self.stall.mark(self.shared.clock.now(), next);
        }
    }

    /// Start a piece of work run for a flight or another shard, for stall warnings.
    #[inline]
    fn stall_mark_work(&mut self, w: &Work) {
        if self.stall.on() {
            self.stall.mark(self.shared.clock.now(), work_label(w));
        }
    }

    /// Tell the other shards whether this one refuses writes, when that changed.
    fn publish_memory(&mut self) {
        let refusing = self.store.refuses_writes();
        if refusing != self.refusing_writes {
            self.refusing_writes = refusing;
            self.shared.refusing_writes[self.id].store(refusing, Ordering::Relaxed);
        }
    }

    /// Call into the log with this turn's context.
    /// Run `f` on the log side, then send the replies it produced to their flights.
    fn with_logs<R>(&mut self, f: impl FnOnce(&mut Logs, &mut LogCtx) -> R) -> R {
        let mut ctx = LogCtx {
            io: &mut self.io,
            cfg: &self.shared.cfg,
            now_ms: self.now_ms,
            me: self.id,
            owner: &self.owner,
            replies: &mut self.log_replies,
            counters: &mut self.metrics.counters,
        };
        let r = f(&mut self.logs, &mut ctx);
        self.route_log_replies();
        r
    }

    // ----- control, tick, shutdown ----------------------------------------------------------

    fn on_control(&mut self, res: i32) {
        if res < 0 && res != -libc::EINTR {
            tracing::warn!(shard = self.id, error = res, "control eventfd read failed");
        }
        self.arm_control();
        while let Ok(msg) = self.control_rx.try_recv() {
            match msg {
                Control::Shutdown => self.begin_drain(),
                Control::Metrics(tx) => {
                    let mut m = self.metrics.clone();
                    m.counters.connections_open = self.conns.open() as u64;
                    m.conn_weight = self.shared.balance.weight(self.id);
                    m.counters.io_backlogged = self.io.backlogged;
                    m.counters.log_partitions = self.logs.partitions() as u64;
                    m.counters.log_partition_slots = self.logs.partition_slots() as u64;
                    m.counters.lazy_free_pending = self.store.lazy_free.pending as u64;
                    m.counters.auth_refused = self.shared.users.guard.refused(self.id);
                    let _ = tx.send(m);
                }
                Control::Pull(cmd) => self.with_logs(|logs, ctx| logs.pull_cmd(cmd, ctx)),
            }
        }
    }

    fn on_tick(&mut self) {
        self.arm_tick();
        self.resume_accepting();
        self.check_hygiene();
        self.check_tls_handshakes();
        let budget = self.shared.cfg.expire_keys_per_tick;
        // Like Redis: repeat while a large share of what was examined had expired, within
        // a quarter of the tick, so an expiry storm drains fast without stalling the shard.
        let started = self.shared.clock.now();
        self.stall.mark(started, What::Named("active expiry"));
        for _ in 0..crate::limits::EXPIRE_ROUNDS_PER_TICK {
            let expired = self.store.active_expire(self.now_ms, budget);
            if expired * 4 < budget
                || self.shared.clock.now().saturating_duration_since(started)
                    >= crate::limits::EXPIRE_TIME_PER_TICK
            {
                break;
            }
        }
        self.stall_mark(What::Named("log and group tick (retention, timers)"));
        self.with_logs(|logs, ctx| logs.tick(ctx));
        let stopping = self.drain != Drain::Serving;
        self.with_logs(|logs, ctx| logs.compact_tick(stopping, ctx));
        self.with_groups(|groups, ctx| groups.tick(ctx));
        if matches!(self.drain, Drain::Draining { .. }) {
            self.check_drained();
        }
    }

    fn begin_drain(&mut self) {
        if self.drain != Drain::Serving {
            return;
        }
        let grace = std::time::Duration::from_secs(self.shared.cfg.shutdown_grace_s);
        self.drain = Drain::Draining {
            deadline: self.now + grace,
        };
        self.stop_accepting();
        // Finish what was received, then close each connection once its replies are out.
        // Clients parked in blocking commands get their timeout reply first, as Redis's
        // clients do when it shuts down.
        let slots: Vec<u32> = self.conns.slots().collect();
        for &slot in &slots {
            self.process(slot);
        }
        self.unblock_all();
        self.with_groups(|groups, _| groups.unload());
        for slot in slots {
            self.close_conn(slot, false);
        }
        self.check_drained();
    }

    fn check_drained(&mut self) {
        let Drain::Draining { deadline } = self.drain else {
            return;
        };
        let open = self.conns.open();
        let past = self.now >= deadline;
        if open > 0 && past {
            tracing::warn!(
                shard = self.id,
                open,
                "shutdown grace period over; dropping connections"
            );
            let slots: Vec<u32> = self.conns.slots().collect();
            for slot in slots {
                self.close_conn(slot, true);
            }
        }
        if open == 0 || past {
            self.drain = Drain::Drained;
            self.shared.draining.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// What a piece of scheduled work is, for a stall warning.
fn work_label(w: &Work) -> What {
    use crate::cache::op::Op as C;
    use crate::txn::Op;
    match w {
        Work::Command { frame, .. } => What::from_frame(frame),
        Work::Write { .. } => What::Named("big HSET start"),
        Work::Hop { .. } => What::Named("a transaction's hop"),
        Work::Proposed { .. } => What::Named("a transaction's proposal"),
        Work::Part { op, .. } => match op {
            Op::Cache(C::Command { frame, .. } | C::Block { frame, .. }) => What::from_frame(frame),
            Op::Cache(c) => What::Part(match c {
                C::Mget(_) => "MGET part",
                C::Mset(_) | C::Msetnx(_) => "MSET part",
                C::Del(_) => "DEL part",
                C::Exists(_) => "EXISTS part",
                C::Touch(_) => "TOUCH part",
                C::Dbsize => "DBSIZE part",
                C::Flush => "FLUSHALL/FLUSHDB part",
                C::Keys(_) => "KEYS part",
                C::RandomKey { .. } => "RANDOMKEY part",
                C::Scan { .. } => "SCAN part",
                C::Info => "INFO part",
                C::Configure(_) => "CONFIG part",
                C::Dump(_) => "key dump (multi-shard command)",
                C::Restore(_) => "key restore (multi-shard command)",
                C::Batch { .. } => "MULTI/EXEC batch",
                _ => "watch or blocking bookkeeping",
            }),
            Op::Log(_) => What::Named("log operation (produce, fetch, topic change)"),
            Op::Group(_) => What::Named("consumer group request"),
        },
    }
}
