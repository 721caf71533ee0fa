//! A shard: one thread pinned to one CPU, its own io_uring, listener, connections, slots of
//! the keyspace, and metrics. Nothing here is shared with another shard except the mesh
//! lanes, and after start-up the thread makes no blocking system call: accept, receive,
//! send, close, timers, doorbells and control wake-ups all go through the ring.
//!
//! One loop turn: submit and wait for at least one completion; handle every completion;
//! drain the mesh (responses always, requests while the reply lane back has room); retry
//! connections that were waiting for mesh room; start sends for connections with output;
//! ring the doorbells of shards we sent to. `docs/architecture.md` explains the choices.

pub mod conn;
mod dispatch;
mod files;
pub mod join;
mod kafka;
mod local;
pub mod logs;
pub mod node;
pub mod table;

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use io_uring::{cqueue, opcode, squeue, types, IoUring};

use crate::cache::store::Store;
use crate::config::Config;
use crate::mesh::{Endpoint, ReqBody, RespBody, Response};
use crate::metrics::ShardMetrics;
use crate::proto::resp::parse::{self, Limits};
use crate::runtime::bufring::BufRing;
use crate::runtime::{next_gen, submit, Kind, Token};
use conn::{Conn, Pending, RecvState};
use join::{Finished, Outcome};

/// Messages from the main thread, delivered through a channel plus an eventfd wake-up.
pub enum Control {
    Shutdown,
    Metrics(mpsc::Sender<ShardMetrics>),
}

/// Node-wide facts every shard reads; written once at start-up.
pub struct NodeShared {
    pub cfg: Config,
    pub nshards: usize,
    pub started: Instant,
    pub resp_port: u16,
    pub kafka_port: u16,
    pub fsync: logs::Fsync,
    /// Connections open across the node, for --max-connections (touched at accept and
    /// close only, never per request).
    pub connections: AtomicUsize,
    /// Shards that have not finished draining at shutdown.
    pub draining: AtomicUsize,
}

/// How often the tick fires: active expiry, shutdown progress.
const TICK: Duration = Duration::from_millis(100);
/// How long a long-polling fetch waits before asking its partitions again.
const FAST_TICK: Duration = Duration::from_millis(5);

/// A join that runs its log parts again at `at`.
pub struct Delayed {
    at: Instant,
    slot: u32,
    gen: u32,
    seq: u64,
    parts: Vec<(usize, crate::log::ops::LogOp)>,
}

/// Unparsed input above which a paused connection also stops being read.
const QUERY_PAUSE_BYTES: usize = 1 << 20;
const BUF_GROUP: u16 = 0;
pub const LISTENER_RESP: u32 = 0;
pub const LISTENER_KAFKA: u32 = 1;

pub struct Shard {
    // Drop order matters: the ring must go before the buffer ring it references.
    ring: IoUring,
    bufring: BufRing,
    id: usize,
    shared: Arc<NodeShared>,
    /// Listeners by protocol: [`LISTENER_RESP`], [`LISTENER_KAFKA`]. Emptied at drain.
    listeners: Vec<OwnedFd>,
    conns: Vec<Option<Conn>>,
    gens: Vec<u32>,
    free: Vec<u32>,
    store: Store,
    mesh: Endpoint,
    owner: table::SlotTable,
    metrics: ShardMetrics,
    control_rx: mpsc::Receiver<Control>,
    control_fd: OwnedFd,
    control_buf: Box<[u8; 8]>,
    tick_ts: Box<types::Timespec>,
    limits: Limits,
    args: Vec<(usize, usize)>,
    scratch: Vec<u8>,
    dirty: Vec<u32>,
    blocked: Vec<u32>,
    cqes: Vec<(u64, i32, u32)>,
    now_ms: u64,
    next_client: u64,
    draining: bool,
    drained: bool,
    drain_deadline: Option<Instant>,
    /// Requests left on incoming lanes because the response lane back was full.
    requests_deferred: bool,
    /// Later-round parts (MSETNX's writes) that found their lane full; at most one entry
    /// per waiting reply slot, so bounded by connections x --max-inflight-per-conn.
    parked: std::collections::VecDeque<(usize, crate::mesh::Request)>,
    /// The log partitions this shard owns and the topic table.
    logs: logs::Logs,
    /// Joins waiting to run their log parts again (long-polling fetches).
    delayed: Vec<Delayed>,
    fast_ts: Box<types::Timespec>,
    fast_tick_armed: bool,
    next_producer: u64,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
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
                && !self.requests_deferred
                && self.parked.is_empty()
                && self.dirty.is_empty()
                && self.logs.idle();
            let want = if idle { 1 } else { 0 };
            match self.ring.submit_and_wait(want) {
                Ok(_) => {}
                Err(e)
                    if e.raw_os_error() == Some(libc::EINTR)
                        || e.raw_os_error() == Some(libc::EBUSY) => {}
                Err(e) => {
                    tracing::error!(shard = self.id, error = %e, "io_uring submit failed");
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            self.now_ms = unix_ms();
            self.cqes.clear();
            for cqe in self.ring.completion() {
                self.cqes.push((cqe.user_data(), cqe.result(), cqe.flags()));
            }
            let cqes = std::mem::take(&mut self.cqes);
            for &(ud, res, flags) in &cqes {
                self.on_cqe(ud, res, flags);
            }
            self.cqes = cqes;
            self.poll_mesh();
            self.retry_parked();
            self.retry_blocked();
            self.log_housekeeping();
            self.flush_log();
            self.flush_dirty();
            self.ring_doorbells();
            // Exit only when no operation can still touch the log's buffers.
            if self.drained
                && self.shared.draining.load(Ordering::Acquire) == 0
                && self.logs.io_done()
            {
                break;
            }
        }
        // Close whatever is left (only after a forced drain).
        for c in self.conns.iter().flatten() {
            // SAFETY: the loop has ended, so no operation of the ring uses this socket any
            // more, and the connection owned it alone.
            drop(unsafe { crate::runtime::sys::adopt(c.fd) });
        }
        self.metrics.counters.connections_open = 0;
        self.metrics
    }

    fn on_cqe(&mut self, ud: u64, res: i32, flags: u32) {
        let Some(t) = Token::decode(ud) else {
            tracing::warn!(shard = self.id, ud, "completion with unknown user_data");
            return;
        };
        match t.kind {
            Kind::Accept => self.on_accept(t.index, res, flags),
            Kind::Recv => self.on_recv(t, res, flags),
            Kind::Send => self.on_send(t, res, flags),
            Kind::Close => self.on_closed(t),
            Kind::Doorbell => {} // the mesh is drained every turn
            Kind::DoorbellSent => {
                if res < 0 {
                    tracing::warn!(
                        shard = self.id,
                        to = t.index,
                        error = res,
                        "doorbell failed"
                    );
                }
            }
            Kind::Control => self.on_control(res),
            Kind::Tick if t.index == 1 => self.on_fast_tick(),
            Kind::Tick => self.on_tick(),
            Kind::Cancel => {}
            Kind::LogWrite => {
                self.logs.in_flight = self.logs.in_flight.saturating_sub(1);
                self.on_log_write(t.index as usize, t.gen, res)
            }
            Kind::LogSync => {
                self.logs.in_flight = self.logs.in_flight.saturating_sub(1);
                self.on_log_sync(t.index as usize, t.gen, res)
            }
            Kind::LogRead => {
                self.logs.in_flight = self.logs.in_flight.saturating_sub(1);
                self.on_log_read(t.index, res)
            }
            Kind::File => self.on_file(t.index, res),
        }
    }

    // ----- submission helpers -------------------------------------------------------------

    fn push(&mut self, e: squeue::Entry) {
        // SAFETY: every entry pushed points only at memory owned by the shard that outlives
        // the operation: connection `sending` buffers (untouched while `send_inflight`,
        // which a zero-copy send keeps until its notification), the boxed control buffer and
        // timespec (live as long as the shard, which outlives its ring), the buffer ring
        // (dropped after the ring), group-commit buffers (in `committing` until written and
        // synced; kept in `spare` if the partition fails), read buffers (in `reads` until
        // their completion) and file-job paths and data (in the job's slot until the step's
        // completion).
        unsafe { submit::push(&mut self.ring, &e) };
    }

    fn arm_accept(&mut self, which: u32) {
        if let Some(l) = self.listeners.get(which as usize) {
            let e = opcode::AcceptMulti::new(types::Fd(l.as_raw_fd()))
                .flags(libc::SOCK_CLOEXEC)
                .build()
                .user_data(Token::new(Kind::Accept, 0, which).encode());
            self.push(e);
        }
    }

    fn arm_control(&mut self) {
        let e = opcode::Read::new(
            types::Fd(self.control_fd.as_raw_fd()),
            self.control_buf.as_mut_ptr(),
            8,
        )
        .build()
        .user_data(Token::new(Kind::Control, 0, 0).encode());
        self.push(e);
    }

    fn arm_tick(&mut self) {
        let ts: *const types::Timespec = &*self.tick_ts;
        let e = opcode::Timeout::new(ts)
            .build()
            .user_data(Token::new(Kind::Tick, 0, 0).encode());
        self.push(e);
    }

    fn arm_recv(&mut self, slot: u32) {
        let Some(c) = self.conns[slot as usize].as_mut() else {
            return;
        };
        if c.recv != RecvState::Idle || c.closing {
            return;
        }
        c.recv = RecvState::Armed;
        let e = opcode::RecvMulti::new(types::Fd(c.fd), BUF_GROUP)
            .build()
            .user_data(Token::new(Kind::Recv, c.gen, slot).encode());
        self.push(e);
    }

    fn cancel_recv(&mut self, slot: u32) {
        let Some(c) = self.conns[slot as usize].as_mut() else {
            return;
        };
        if c.recv != RecvState::Armed {
            return;
        }
        c.recv = RecvState::Cancelling;
        let target = Token::new(Kind::Recv, c.gen, slot).encode();
        let e = opcode::AsyncCancel::new(target)
            .build()
            .user_data(Token::new(Kind::Cancel, 0, slot).encode());
        self.push(e);
    }

    // ----- accept ---------------------------------------------------------------------------

    fn on_accept(&mut self, which: u32, res: i32, flags: u32) {
        if !cqueue::more(flags) && !self.draining {
            self.arm_accept(which);
        }
        if res < 0 {
            if res != -libc::ECANCELED {
                tracing::warn!(shard = self.id, error = %std::io::Error::from_raw_os_error(-res), "accept failed");
            }
            return;
        }
        let fd = res as RawFd;
        if self.draining {
            // Draining: close the socket through the ring; no connection slot owns it.
            let e = opcode::Close::new(types::Fd(fd))
                .build()
                .user_data(Token::new(Kind::Close, 0, u32::MAX).encode());
            self.push(e);
            return;
        }
        let open = self.shared.connections.fetch_add(1, Ordering::Relaxed) + 1;
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.conns.push(None);
                self.gens.push(0);
                (self.conns.len() - 1) as u32
            }
        };
        let gen = self.gens[slot as usize];
        self.next_client += 1;
        let id = self.next_client * self.shared.nshards as u64 + self.id as u64;
        let authed = self.shared.cfg.requirepass.is_none();
        tracing::debug!(shard = self.id, slot, fd, client = id, open, "accepted");
        let mut c = Conn::new(fd, gen, id, authed, which == LISTENER_KAFKA);
        self.metrics.counters.connections_accepted += 1;
        self.metrics.counters.connections_open += 1;
        if open > self.shared.cfg.max_connections {
            self.metrics.counters.connections_rejected += 1;
            c.out
                .extend_from_slice(b"-ERR max number of clients reached\r\n");
            c.closing = true;
            self.conns[slot as usize] = Some(c);
            self.mark_dirty(slot);
            return;
        }
        self.conns[slot as usize] = Some(c);
        self.arm_recv(slot);
    }

    // ----- receive --------------------------------------------------------------------------

    fn on_recv(&mut self, t: Token, res: i32, flags: u32) {
        let bid = cqueue::buffer_select(flags);
        let slot = t.index;
        let live = self
            .conns
            .get(slot as usize)
            .and_then(|c| c.as_ref())
            .is_some_and(|c| c.gen == t.gen);
        if !cqueue::more(flags) {
            if let Some(c) = self
                .conns
                .get_mut(slot as usize)
                .and_then(|c| c.as_mut())
                .filter(|c| c.gen == t.gen)
            {
                c.recv = RecvState::Idle;
            }
        }
        if !live {
            if let Some(bid) = bid {
                self.bufring.recycle(bid);
            }
            return;
        }
        if res > 0 {
            let n = res as usize;
            if let Some(bid) = bid {
                let data = self.bufring.get(bid, n);
                if let Some(c) = self.conns[slot as usize].as_mut() {
                    if !c.closing {
                        c.query.extend_from_slice(data);
                    }
                }
                self.bufring.recycle(bid);
            }
            self.metrics.counters.bytes_in += n as u64;
            self.process(slot);
            // Re-arm if the multishot ended and the connection still wants input.
            self.mark_dirty(slot);
        } else if res == 0 {
            self.close_conn(slot, true);
        } else {
            match -res {
                libc::ENOBUFS => {
                    self.metrics.counters.recv_nobufs += 1;
                    self.mark_dirty(slot);
                }
                libc::ECANCELED => self.mark_dirty(slot),
                _ => self.close_conn(slot, true),
            }
        }
    }

    /// Parse and run what the connection's query buffer holds, until it is empty, a frame
    /// is incomplete, or a bound says stop.
    fn process(&mut self, slot: u32) {
        let Some(c) = self.conns[slot as usize].as_mut() else {
            return;
        };
        if c.closing || c.blocked {
            return;
        }
        if c.kafka {
            return self.process_kafka(slot);
        }
        let mut query = std::mem::take(&mut c.query);
        let mut args = std::mem::take(&mut self.args);
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut pos = 0;
        let max_inflight = self.shared.cfg.max_inflight_per_conn;
        while let Some(c) = self.conns[slot as usize].as_mut() {
            if c.closing {
                break;
            }
            if c.pending.len() >= max_inflight {
                self.metrics.counters.inflight_backpressure += 1;
                break;
            }
            if pos >= query.len() {
                break;
            }
            let frame = match parse::parse(&query[pos..], &self.limits, &mut args, &mut scratch) {
                Ok(f) => f,
                Err(e) => {
                    self.metrics.counters.protocol_errors += 1;
                    tracing::debug!(shard = self.id, client = c.id, error = %e, "protocol error; closing");
                    let msg = e.message();
                    self.reply_now(slot, |o| o.error(&msg));
                    self.close_conn(slot, false);
                    break;
                }
            };
            match frame {
                parse::Frame::Incomplete => {
                    let unparsed = query.len() - pos;
                    if unparsed > self.shared.cfg.max_query_buffer_bytes {
                        self.metrics.counters.closed_query_limit += 1;
                        tracing::warn!(
                            shard = self.id,
                            client = c.id,
                            bytes = unparsed,
                            "closing client that reached --max-query-buffer-bytes"
                        );
                        self.close_conn(slot, true);
                    } else if let Some(want) = parse::bytes_wanted(&query[pos..]) {
                        // Grow once for a large bulk instead of doubling many times.
                        query.reserve(want.saturating_sub(query.len() - pos));
                    }
                    break;
                }
                parse::Frame::Empty { consumed } => pos += consumed,
                parse::Frame::Multibulk { consumed } => {
                    let a = crate::cache::exec::Args {
                        src: &query[pos..],
                        ranges: &args,
                    };
                    let whole = &query[pos..pos + consumed];
                    if !self.dispatch(slot, a, whole) {
                        break; // blocked on a full mesh lane; retried later
                    }
                    pos += consumed;
                }
                parse::Frame::Inline { consumed } => {
                    let a = crate::cache::exec::Args {
                        src: &scratch,
                        ranges: &args,
                    };
                    let frame_copy = scratch.clone();
                    if !self.dispatch(slot, a, &frame_copy) {
                        break;
                    }
                    pos += consumed;
                }
            }
        }
        query.drain(..pos);
        self.args = args;
        self.scratch = scratch;
        if let Some(c) = self.conns[slot as usize].as_mut() {
            if !c.closing {
                // Keep bytes that arrived while we worked (none can: we own the only copy).
                c.query = query;
            }
        }
    }

    /// Should the connection be read from right now?
    fn wants_input(&self, c: &Conn) -> bool {
        // A paused connection keeps up to one receive's worth of input; past that it is not
        // read until it can make progress again.
        let paused = c.blocked || c.pending.len() >= self.shared.cfg.max_inflight_per_conn;
        !(c.closing || self.draining || (paused && c.query.len() >= QUERY_PAUSE_BYTES))
    }

    // ----- send -----------------------------------------------------------------------------

    fn mark_dirty(&mut self, slot: u32) {
        if let Some(c) = self.conns[slot as usize].as_mut() {
            if !c.dirty {
                c.dirty = true;
                self.dirty.push(slot);
            }
        }
    }

    fn flush_dirty(&mut self) {
        // Flushing can dirty connections again (a close after the last send): repeat a few
        // times; whatever is left keeps the next turn from sleeping.
        for _ in 0..4 {
            if self.dirty.is_empty() {
                break;
            }
            let dirty = std::mem::take(&mut self.dirty);
            for &slot in &dirty {
                let Some(c) = self.conns[slot as usize].as_mut() else {
                    continue;
                };
                c.dirty = false;
                self.flush(slot);
                let Some(c) = self.conns[slot as usize].as_ref() else {
                    continue;
                };
                let want = self.wants_input(c);
                match (want, c.recv) {
                    (true, RecvState::Idle) => self.arm_recv(slot),
                    (false, RecvState::Armed) => self.cancel_recv(slot),
                    _ => {}
                }
            }
        }
    }

    fn flush(&mut self, slot: u32) {
        let limit = self.shared.cfg.output_buffer_limit_bytes;
        let Some(c) = self.conns[slot as usize].as_mut() else {
            return;
        };
        if c.queued_out() > limit && !c.abort {
            self.metrics.counters.closed_output_limit += 1;
            tracing::warn!(
                shard = self.id,
                client = c.id,
                queued = c.queued_out(),
                "closing client over --output-buffer-limit-bytes"
            );
            self.close_conn(slot, true);
            return;
        }
        let Some(c) = self.conns[slot as usize].as_mut() else {
            return;
        };
        if !c.send_inflight && !c.out.is_empty() && !c.abort {
            std::mem::swap(&mut c.out, &mut c.sending);
            c.out.clear();
            c.sent = 0;
            c.send_inflight = true;
            self.send_from(slot);
        } else if c.closing && c.quiescent() {
            self.finish_close(slot);
        }
    }

    /// Send `sending[sent..]` (the send is already marked in flight): SEND_ZC when it is
    /// at least --send-zc-min-bytes, else a plain send.
    fn send_from(&mut self, slot: u32) {
        let zc_min = self.shared.cfg.send_zc_min_bytes;
        let Some(c) = self.conns.get(slot as usize).and_then(|c| c.as_ref()) else {
            return;
        };
        let rest = &c.sending[c.sent.min(c.sending.len())..];
        let ud = Token::new(Kind::Send, c.gen, slot).encode();
        let (fd, ptr, len) = (types::Fd(c.fd), rest.as_ptr(), rest.len() as u32);
        let e = if zc_min > 0 && rest.len() >= zc_min {
            self.metrics.counters.sends_zc += 1;
            opcode::SendZc::new(fd, ptr, len)
                .flags(libc::MSG_NOSIGNAL)
                .build()
        } else {
            opcode::Send::new(fd, ptr, len)
                .flags(libc::MSG_NOSIGNAL)
                .build()
        };
        self.push(e.user_data(ud));
    }

    fn on_send(&mut self, t: Token, res: i32, flags: u32) {
        let slot = t.index;
        let Some(c) = self
            .conns
            .get_mut(slot as usize)
            .and_then(|c| c.as_mut())
            .filter(|c| c.gen == t.gen)
        else {
            return;
        };
        // A zero-copy send completes twice: its result (with MORE), then a notification
        // once the kernel is done with the buffer. Act on the result only then.
        let res = if cqueue::notif(flags) {
            match c.zc_result.take() {
                Some(r) => r,
                None => return,
            }
        } else if cqueue::more(flags) {
            c.zc_result = Some(res);
            return;
        } else {
            res
        };
        c.send_inflight = false;
        if res < 0 {
            // EPIPE, ECONNRESET: the peer is gone; drop what it will never read.
            c.abort = true;
            self.close_conn(slot, true);
            return;
        }
        self.metrics.counters.bytes_out += res as u64;
        c.sent += res as usize;
        if c.sent < c.sending.len() && !c.abort {
            // Short write: send the rest.
            c.send_inflight = true;
            self.send_from(slot);
            return;
        }
        c.sending.clear();
        c.sent = 0;
        // Reclaim memory after a burst of large replies.
        if c.sending.capacity() > 1 << 20 {
            c.sending = Vec::new();
        }
        self.mark_dirty(slot);
        // Room in the reply queue may let paused input continue.
        self.process(slot);
    }

    // ----- close ----------------------------------------------------------------------------

    /// Begin closing. `abort`: drop queued output (limit hit, peer gone); otherwise flush it.
    fn close_conn(&mut self, slot: u32, abort: bool) {
        let Some(c) = self.conns[slot as usize].as_mut() else {
            return;
        };
        c.closing = true;
        if abort {
            c.abort = true;
            c.out.clear();
            c.pending.clear();
        }
        self.cancel_recv(slot);
        self.mark_dirty(slot);
    }

    fn finish_close(&mut self, slot: u32) {
        let Some(c) = self.conns[slot as usize].as_mut() else {
            return;
        };
        if c.close_submitted || c.recv == RecvState::Armed || c.send_inflight {
            if c.recv == RecvState::Armed {
                self.cancel_recv(slot);
            }
            return;
        }
        if c.recv == RecvState::Cancelling {
            return; // the cancel's completion marks us dirty again
        }
        c.close_submitted = true;
        tracing::debug!(
            shard = self.id,
            slot,
            fd = c.fd,
            client = c.id,
            "closing socket"
        );
        let e = opcode::Close::new(types::Fd(c.fd))
            .build()
            .user_data(Token::new(Kind::Close, c.gen, slot).encode());
        self.push(e);
    }

    fn on_closed(&mut self, t: Token) {
        let slot = t.index as usize;
        if self
            .conns
            .get(slot)
            .and_then(|c| c.as_ref())
            .is_some_and(|c| c.gen == t.gen)
        {
            self.conns[slot] = None;
            self.gens[slot] = next_gen(self.gens[slot]);
            self.free.push(slot as u32);
            self.shared.connections.fetch_sub(1, Ordering::Relaxed);
            self.metrics.counters.connections_open -= 1;
            self.blocked.retain(|&s| s as usize != slot);
        }
    }

    // ----- mesh -----------------------------------------------------------------------------

    fn poll_mesh(&mut self) {
        let n = self.shared.nshards;
        // Responses first: they never wait on anything.
        for from in 0..n {
            while let Some(r) = self.mesh.inc[from].resp.pop() {
                self.on_response(r);
            }
        }
        self.requests_deferred = false;
        for from in 0..n {
            loop {
                if self.mesh.resp_room(from) == 0 {
                    if !self.mesh.inc[from].req.is_empty() {
                        self.requests_deferred = true;
                    }
                    break;
                }
                let Some(req) = self.mesh.inc[from].req.pop() else {
                    break;
                };
                self.metrics.counters.mesh_requests_served += 1;
                let body = match req.body {
                    ReqBody::Command { frame, resp3 } => {
                        RespBody::Encoded(self.exec_remote_command(&frame, resp3))
                    }
                    ReqBody::Part(op) => RespBody::Part(self.exec_part(op)),
                    ReqBody::Log(op) => {
                        // Answered when its I/O completes, through log_reply.
                        let reply = logs::ReplyTo::Remote {
                            shard: from,
                            conn: req.conn,
                            seq: req.seq,
                            part: req.part,
                            sent: req.sent,
                        };
                        self.exec_log(op, reply);
                        continue;
                    }
                };
                let resp = Response {
                    conn: req.conn,
                    seq: req.seq,
                    part: req.part,
                    body,
                    sent: req.sent,
                };
                // Room was checked above and only this shard produces into that lane.
                if self.mesh.push_resp(from, resp).is_err() {
                    tracing::error!(
                        shard = self.id,
                        to = from,
                        "response lane full after room check"
                    );
                }
            }
        }
    }

    fn on_response(&mut self, r: Response) {
        self.metrics
            .mesh_hop
            .saturating_record(r.sent.elapsed().as_nanos() as u64);
        let slot = r.conn.slot;
        let live = self.conns.get(slot as usize).and_then(|c| c.as_ref());
        if live.is_none_or(|c| c.gen != r.conn.gen) {
            return; // the connection closed meanwhile
        }
        let outcome = match r.body {
            RespBody::Encoded(b) => Outcome::Encoded(b),
            RespBody::Part(p) => Outcome::Part(p),
            RespBody::Log(l) => Outcome::Log(l),
        };
        self.accept_part(slot, r.seq, r.part, outcome);
        // Replies drained may let paused input continue.
        self.process(slot);
    }

    /// A join at `pending[idx]` has all its parts: encode it, or start its next round.
    fn complete_join(&mut self, slot: u32, idx: usize) {
        let Some(c) = self.conns[slot as usize].as_mut() else {
            return;
        };
        let resp3 = c.resp3;
        let placeholder = Pending::Ready(Vec::new());
        let Pending::Waiting(join) = std::mem::replace(&mut c.pending[idx], placeholder) else {
            return;
        };
        let family = join.family;
        let started = join.started;
        match join.finish(resp3) {
            Finished::Reply(bytes) => {
                self.metrics
                    .record(family, started.elapsed().as_nanos() as u64);
                let c = self.conns[slot as usize].as_mut().expect("checked above");
                c.pending[idx] = Pending::Ready(bytes);
                c.drain_ready();
                self.mark_dirty(slot);
            }
            Finished::NextRound(parts, kind) => {
                let seq = c.head_seq + idx as u64;
                self.start_round(slot, seq, idx, parts, kind, family, started);
            }
            Finished::NextLogRound(parts, kind) => {
                let seq = c.head_seq + idx as u64;
                self.start_log_round(slot, seq, idx, parts, kind, family, started);
            }
            Finished::Later(parts, kind) => {
                let seq = c.head_seq + idx as u64;
                let gen = c.gen;
                c.pending[idx] = Pending::Waiting(join::Join::new(kind, 0, family, started));
                self.delayed.push(Delayed {
                    at: Instant::now() + FAST_TICK,
                    slot,
                    gen,
                    seq,
                    parts,
                });
                self.arm_fast_tick();
            }
        }
    }

    fn retry_blocked(&mut self) {
        if self.blocked.is_empty() {
            return;
        }
        let blocked = std::mem::take(&mut self.blocked);
        for slot in blocked {
            if let Some(c) = self.conns[slot as usize].as_mut() {
                c.blocked = false;
                self.process(slot);
                self.mark_dirty(slot);
            }
        }
    }

    fn ring_doorbells(&mut self) {
        for to in 0..self.shared.nshards {
            if !self.mesh.pushed[to] {
                continue;
            }
            self.mesh.pushed[to] = false;
            if to == self.id {
                continue;
            }
            let fd = self.mesh.ring_fds[to];
            let e = opcode::MsgRingData::new(
                types::Fd(fd),
                0,
                Token::new(Kind::Doorbell, 0, self.id as u32).encode(),
                None,
            )
            .build()
            .flags(squeue::Flags::SKIP_SUCCESS)
            .user_data(Token::new(Kind::DoorbellSent, 0, to as u32).encode());
            self.push(e);
        }
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
                    m.counters.connections_open = self.conns.iter().flatten().count() as u64;
                    let _ = tx.send(m);
                }
            }
        }
    }

    fn arm_fast_tick(&mut self) {
        if self.fast_tick_armed {
            return;
        }
        self.fast_tick_armed = true;
        let ts: *const types::Timespec = &*self.fast_ts;
        let e = opcode::Timeout::new(ts)
            .build()
            .user_data(Token::new(Kind::Tick, 0, 1).encode());
        self.push(e);
    }

    /// Re-run log parts whose wait is over (fetches long-polling for data).
    fn on_fast_tick(&mut self) {
        self.fast_tick_armed = false;
        let now = Instant::now();
        let (due, later): (Vec<Delayed>, Vec<Delayed>) = std::mem::take(&mut self.delayed)
            .into_iter()
            .partition(|d| d.at <= now);
        self.delayed = later;
        for d in due {
            let Some(c) = self
                .conns
                .get_mut(d.slot as usize)
                .and_then(|c| c.as_mut())
                .filter(|c| c.gen == d.gen)
            else {
                continue;
            };
            let Some(idx) = d
                .seq
                .checked_sub(c.head_seq)
                .map(|i| i as usize)
                .filter(|&i| i < c.pending.len())
            else {
                continue;
            };
            let Pending::Waiting(j) =
                std::mem::replace(&mut c.pending[idx], Pending::Ready(Vec::new()))
            else {
                continue;
            };
            self.start_log_round(d.slot, d.seq, idx, d.parts, j.kind, j.family, j.started);
        }
        if !self.delayed.is_empty() {
            self.arm_fast_tick();
        }
    }

    fn on_tick(&mut self) {
        self.arm_tick();
        let budget = self.shared.cfg.expire_keys_per_tick;
        // Like Redis: repeat while a large share of what was examined had expired.
        for _ in 0..4 {
            let expired = self.store.active_expire(self.now_ms, budget);
            if expired * 4 < budget {
                break;
            }
        }
        self.log_tick();
        if self.draining {
            self.check_drained();
        }
    }

    fn begin_drain(&mut self) {
        if self.draining {
            return;
        }
        self.draining = true;
        self.drain_deadline =
            Some(Instant::now() + Duration::from_secs(self.shared.cfg.shutdown_grace_s));
        // Stop accepting: cancel the multishot accepts and close the listeners.
        for which in 0..self.listeners.len() as u32 {
            let e = opcode::AsyncCancel::new(Token::new(Kind::Accept, 0, which).encode())
                .build()
                .user_data(Token::new(Kind::Cancel, 0, 0).encode());
            self.push(e);
        }
        self.listeners.clear();
        // Finish what was received, then close each connection once its replies are out.
        let slots: Vec<u32> = (0..self.conns.len() as u32)
            .filter(|&s| self.conns[s as usize].is_some())
            .collect();
        for slot in slots {
            self.process(slot);
            self.close_conn(slot, false);
        }
        self.check_drained();
    }

    fn check_drained(&mut self) {
        if self.drained {
            return;
        }
        let open = self.conns.iter().flatten().count();
        let past = self.drain_deadline.is_some_and(|d| Instant::now() >= d);
        if open > 0 && past {
            tracing::warn!(
                shard = self.id,
                open,
                "shutdown grace period over; dropping connections"
            );
            for slot in 0..self.conns.len() as u32 {
                self.close_conn(slot, true);
            }
        }
        if open == 0 || past {
            self.drained = true;
            self.shared.draining.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl crate::cache::exec::ShardInfo {
    pub fn add(&mut self, o: &Self) {
        self.keys += o.keys;
        self.expires += o.expires;
        self.used_bytes += o.used_bytes;
        self.maxmemory_bytes += o.maxmemory_bytes;
        self.hits += o.hits;
        self.misses += o.misses;
        self.expired += o.expired;
        self.evicted += o.evicted;
        self.clients += o.clients;
        self.commands += o.commands;
        self.connections_received += o.connections_received;
        self.rejected_connections += o.rejected_connections;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
    }
}
