//! A shard's socket I/O: accepting, receiving into the connection's query buffer, sending
//! its output (at most one send in flight per connection; replies produced meanwhile go out
//! together), closing, and the timers, wake-ups and doorbells of the loop.

use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};
use std::sync::atomic::Ordering;

use super::conn::{Conn, Life, Proto, RecvState, SendState};
use super::{Drain, Shard, LISTENER_KAFKA, LISTENER_RESP};
use crate::limits::{
    ACCEPT_ERROR_LOG_INTERVAL, DIRECT_RECVS_MAX, DIRECT_RECV_BYTES, FETCH_POLL,
    FLUSH_ROUNDS_PER_TURN, QUERY_GROW_STEP_MAX_BYTES, QUERY_PAUSE_BYTES, SEND_BUF_KEEP_BYTES, TICK,
};
use crate::proto::resp::errors::MAX_CLIENTS;
use crate::redis::Session;
use crate::runtime::io::Completion;
use crate::runtime::{Kind, Owner, TIMER_FAST, TIMER_TICK};
use crate::tls::Received;

/// `Owner::aux` of a direct receive's completion (a multishot receive's is 0).
const RECV_DIRECT: u32 = 1;

impl Shard {
    pub(super) fn arm_accept(&mut self, which: u32) {
        if let Some(l) = self.listeners.get_mut(which as usize) {
            let op = self
                .io
                .accept_multi(l.fd.as_raw_fd(), Owner::new(Kind::Accept, which, 0));
            l.accept = Some(op);
        }
    }

    pub(super) fn arm_control(&mut self) {
        let fd = self.control_fd.as_raw_fd();
        self.io.read_eventfd(fd, Owner::new(Kind::Control, 0, 0));
    }

    pub(super) fn arm_tick(&mut self) {
        self.io
            .timeout(TICK, Owner::new(Kind::Timer, TIMER_TICK, 0));
    }

    pub(super) fn arm_fast_timer(&mut self) {
        if !self.fast_timer {
            self.fast_timer = true;
            self.io
                .timeout(FETCH_POLL, Owner::new(Kind::Timer, TIMER_FAST, 0));
        }
    }

    /// Cancel the multishot accepts and close the listeners (shutdown).
    pub(super) fn stop_accepting(&mut self) {
        for l in &mut self.listeners {
            if let Some(op) = l.accept.take() {
                self.io.cancel(op, Owner::new(Kind::Ignore, 0, 0));
            }
        }
        self.listeners.clear();
    }

    pub(super) fn ring_doorbells(&mut self) {
        let mut rung = std::mem::take(&mut self.doorbells);
        self.mesh.take_doorbells(&mut rung);
        for to in rung.drain(..) {
            if to != self.id {
                self.io
                    .doorbell(self.mesh.ring_fds[to], self.id as u32, to as u32);
            }
        }
        self.doorbells = rung;
    }

    /// Start reading `slot`: a direct receive when it holds a large partial frame (in turn
    /// with the others), else the multishot receive.
    fn arm_recv(&mut self, slot: u32) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        if c.recv != RecvState::Idle || !c.is_open() {
            return;
        }
        if c.wants_direct() {
            if !c.direct_waiting {
                c.direct_waiting = true;
                self.conns.direct.waiting.push_back(slot);
            }
            return self.start_direct_recvs();
        }
        let op = self
            .io
            .recv_multi(c.fd, Owner::new(Kind::Recv, slot, c.gen));
        c.recv = RecvState::Armed(op);
    }

    /// Give the direct receives free to the connections waiting for one, in turn.
    fn start_direct_recvs(&mut self) {
        while self.conns.direct.in_flight < DIRECT_RECVS_MAX {
            let Some(slot) = self.conns.direct.waiting.pop_front() else {
                break;
            };
            match self.conns.get_mut(slot) {
                Some(c) if c.direct_waiting => c.direct_waiting = false,
                _ => continue, // closed, or its slot taken over
            }
            // It may have been paused (or closed) while it waited.
            let held = self.holds_input(slot);
            let Some(c) = self.conns.get(slot) else {
                continue;
            };
            if held || c.recv != RecvState::Idle || !self.wants_input(c) || !c.wants_direct() {
                continue;
            }
            let Some(c) = self.conns.get_mut(slot) else {
                continue;
            };
            let mut buf = std::mem::take(&mut c.query);
            if buf.capacity() - buf.len() < DIRECT_RECV_BYTES {
                // Grow by doubling up to a step, as `Conn::take_input` does.
                let step = buf.capacity().clamp(
                    DIRECT_RECV_BYTES,
                    QUERY_GROW_STEP_MAX_BYTES.max(DIRECT_RECV_BYTES),
                );
                buf.reserve_exact(step);
            }
            c.lent = (buf.len(), buf.capacity());
            let owner = Owner::new(Kind::Recv, slot, c.gen).with_aux(RECV_DIRECT);
            let op = self.io.recv_into(c.fd, buf, DIRECT_RECV_BYTES, owner);
            c.recv = RecvState::Direct(op);
            self.conns.direct.in_flight += 1;
        }
    }

    fn cancel_recv(&mut self, slot: u32) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        if let RecvState::Armed(op) | RecvState::Direct(op) = c.recv {
            c.recv = RecvState::Cancelling;
            self.io.cancel(op, Owner::new(Kind::Ignore, 0, 0));
        }
    }

    // ----- accept ---------------------------------------------------------------------------

    /// An accept failed: logged at most once per `ACCEPT_ERROR_LOG_INTERVAL`, with how many
    /// were not logged since.
    fn log_accept_error(&mut self, res: i32) {
        let due = self
            .accept_error_logged
            .is_none_or(|at| self.now.saturating_duration_since(at) >= ACCEPT_ERROR_LOG_INTERVAL);
        if !due {
            self.accept_errors_unlogged += 1;
            return;
        }
        let unlogged = std::mem::take(&mut self.accept_errors_unlogged);
        self.accept_error_logged = Some(self.now);
        tracing::warn!(
            shard = self.id,
            error = %std::io::Error::from_raw_os_error(-res),
            more_since_last_line = unlogged,
            "accept failed (new clients wait; retried every tick)"
        );
    }

    /// Listeners whose accept stopped for want of descriptors or memory accept again.
    pub(super) fn resume_accepting(&mut self) {
        if self.drain != Drain::Serving {
            self.accept_paused.clear();
            return;
        }
        for which in std::mem::take(&mut self.accept_paused) {
            self.arm_accept(which);
        }
    }

    pub(super) fn on_accept(&mut self, c: Completion) {
        let which = c.owner.index;
        // Out of descriptors or memory: accepting again at once would fail again at once
        // (a tight loop, a log line each time). Wait for the next tick instead.
        let starved = matches!(
            -c.res,
            libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM
        );
        if !c.more && self.drain == Drain::Serving {
            if starved {
                if !self.accept_paused.contains(&which) {
                    self.accept_paused.push(which);
                }
            } else {
                self.arm_accept(which);
            }
        }
        let Some(fd) = c.accepted_owned() else {
            if c.res != -libc::ECANCELED {
                self.metrics.counters.accept_errors += 1;
                self.log_accept_error(c.res);
            }
            return;
        };
        if self.drain != Drain::Serving {
            // Draining: close the socket through the ring; no connection slot owns it.
            self.io
                .close_fd(fd.into_raw_fd(), Owner::new(Kind::Close, u32::MAX, 0));
            return;
        }
        // A shard port's connections are this shard's, whatever `--conn-balance` says.
        if let Some(kind) = self
            .listeners
            .get(which as usize)
            .and_then(|l| l.shard_port)
        {
            self.shared.balance.opened(self.id);
            return self.adopt(fd, kind, false, true);
        }
        // A TLS listener serves its protocol as the plain one does, with TLS in between.
        let tls = self.listeners.get(which as usize).and_then(|l| l.tls);
        let kind = if tls.unwrap_or(which) == LISTENER_KAFKA {
            LISTENER_KAFKA
        } else {
            LISTENER_RESP
        };
        // This shard serves it, or (`--conn-balance`) the shard picked for it (`balance.rs`).
        self.route_accepted(fd, kind, tls.is_some());
    }

    /// Serve an accepted socket (`kind`: `LISTENER_RESP` or `LISTENER_KAFKA`), accepted
    /// here or handed over by the accepting shard; its count in `NodeShared::balance` is
    /// already taken for this shard.
    pub(super) fn adopt(&mut self, fd: OwnedFd, kind: u32, tls: bool, shard_port: bool) {
        let fd = fd.into_raw_fd();
        if self.drain != Drain::Serving {
            // Draining: close the socket through the ring; no connection slot owns it.
            self.shared.balance.closed(self.id);
            self.io.close_fd(fd, Owner::new(Kind::Close, u32::MAX, 0));
            return;
        }
        let open = self.shared.connections[kind as usize].fetch_add(1, Ordering::Relaxed) + 1;
        let (slot, gen) = self.conns.reserve();
        self.next_client += 1;
        let id = self.next_client * self.shared.nshards as u64 + self.id as u64;
        let proto = if kind == LISTENER_KAFKA {
            Proto::Kafka
        } else {
            let mut s = Session::new(self.shared.users.default_open());
            s.shard_port = shard_port;
            // The source address failed AUTHs are counted against (`auth/guard.rs`).
            s.peer = crate::runtime::sys::peer_ip(fd).ok();
            Proto::Resp(s)
        };
        tracing::debug!(shard = self.id, slot, fd, client = id, open, "accepted");
        let mut conn = Conn::new(fd, gen, id, proto);
        self.metrics.counters.connections_accepted += 1;
        self.metrics.counters.connections_open += 1;
        if tls && !self.attach_tls(slot, &mut conn) {
            conn.life = Life::Closing { abort: true };
            self.conns.insert(slot, conn);
            self.mark_dirty(slot);
            return;
        }
        let max = if kind == LISTENER_KAFKA {
            self.shared.cfg.max_kafka_connections
        } else {
            self.shared.cfg.max_connections
        };
        let refused = if open > max {
            Some(MAX_CLIENTS)
        } else {
            self.admit(&mut conn, kind).err()
        };
        if let Some(error) = refused {
            self.metrics.counters.connections_rejected += 1;
            // A RESP client reads Redis's error; a Kafka client is closed, as a broker does.
            if kind == LISTENER_RESP {
                conn.reply(|o| o.error(error));
            }
            conn.life = Life::Closing { abort: false };
            self.conns.insert(slot, conn);
            self.mark_dirty(slot);
            return;
        }
        self.conns.insert(slot, conn);
        self.arm_recv(slot);
    }

    // ----- receive --------------------------------------------------------------------------

    pub(super) fn on_recv(&mut self, c: Completion) {
        if c.owner.aux == RECV_DIRECT {
            return self.on_direct_recv(c);
        }
        let (slot, gen, res) = (c.owner.index, c.owner.gen, c.res);
        let Some(conn) = self.conns.live(slot, gen) else {
            if let Some(bid) = c.buf_id {
                self.io.recycle(bid);
            }
            return;
        };
        if !c.more {
            conn.recv = RecvState::Idle;
        }
        if res > 0 {
            let n = res as usize;
            conn.hyg.input(n, self.now);
            let mut fed = Ok(Received::Open);
            if let Some(bid) = c.buf_id {
                if conn.is_open() {
                    let bytes = self.io.recv_bytes(bid, n);
                    if conn.tls.is_none() {
                        conn.take_input(bytes);
                    } else {
                        fed = conn.take_tls_input(bytes);
                    }
                }
                self.io.recycle(bid);
            }
            self.metrics.counters.bytes_in += n as u64;
            match fed {
                Ok(Received::Open) => self.process(slot),
                other => self.tls_received(slot, other),
            }
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

    /// A direct receive completed: the query buffer comes back with the bytes received.
    fn on_direct_recv(&mut self, c: Completion) {
        let (slot, gen, res) = (c.owner.index, c.owner.gen, c.res);
        self.conns.direct.in_flight -= 1;
        let buf = c.held.into_bytes();
        match self.conns.live(slot, gen) {
            Some(conn) => {
                conn.recv = RecvState::Idle;
                conn.lent = (0, 0);
                // Nothing is added to `query` while its buffer is lent (no other receive
                // runs).
                debug_assert!(conn.query.is_empty());
                conn.query = buf;
                if res > 0 {
                    conn.hyg.input(res as usize, self.now);
                    self.metrics.counters.bytes_in += res as u64;
                    self.process(slot);
                    self.mark_dirty(slot);
                } else if res != -libc::ECANCELED {
                    // The peer closed (0) or the socket failed.
                    self.close_conn(slot, true);
                } else {
                    self.mark_dirty(slot);
                }
            }
            None => {
                let cap = buf.capacity();
                crate::budget::free_elsewhere(buf, cap);
            }
        }
        self.start_direct_recvs();
    }

    /// Should the connection be read from right now?
    fn wants_input(&self, c: &Conn) -> bool {
        // A paused connection keeps up to one receive's worth of input; past that it is not
        // read until it can make progress again.
        let paused = c.blocked || !c.may_launch(self.shared.cfg.max_inflight_per_conn);
        c.is_open()
            && self.drain == Drain::Serving
            && !(paused && c.partial_len() >= QUERY_PAUSE_BYTES)
    }

    // ----- send -----------------------------------------------------------------------------

    pub(super) fn mark_dirty(&mut self, slot: u32) {
        if let Some(c) = self.conns.get_mut(slot) {
            if !c.dirty {
                c.dirty = true;
                self.dirty.push(slot);
            }
        }
    }

    pub(super) fn flush_dirty(&mut self) {
        self.check_budget();
        for _ in 0..FLUSH_ROUNDS_PER_TURN {
            if self.dirty.is_empty() {
                break;
            }
            let dirty = std::mem::take(&mut self.dirty);
            for &slot in &dirty {
                let Some(c) = self.conns.get_mut(slot) else {
                    continue;
                };
                c.dirty = false;
                self.flush(slot);
                self.account(slot);
                let held = self.holds_input(slot);
                let Some(c) = self.conns.get(slot) else {
                    continue;
                };
                let big = c.wants_direct();
                match (self.wants_input(c) && !held, c.recv) {
                    (true, RecvState::Idle) => self.arm_recv(slot),
                    (false, RecvState::Armed(_) | RecvState::Direct(_)) => self.cancel_recv(slot),
                    // A large frame is arriving: its next bytes come by direct receives.
                    (true, RecvState::Armed(_)) if big => self.cancel_recv(slot),
                    _ => {}
                }
            }
        }
    }

    fn flush(&mut self, slot: u32) {
        let limit = self.shared.cfg.output_buffer_limit_bytes;
        let zc_min = self.shared.cfg.send_zc_min_bytes;
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        // Over the limit: its requests wait (`holds_requests`), and if it takes nothing for
        // a while it is closed (`admission.rs`); a client that reads is not closed for the
        // size of one reply.
        if c.over_limit.is_none() && c.queued_replies() > limit && !c.aborting() {
            c.over_limit = Some((self.now, c.sent_total));
            self.budget.over_limit.push(slot);
        }
        if c.tls.is_some() {
            return self.flush_tls(slot);
        }
        if c.send == SendState::Idle && !c.out.is_empty() && !c.aborting() {
            let mut buf = std::mem::take(&mut c.spare);
            buf.clear();
            std::mem::swap(&mut c.out, &mut buf);
            let zc = zc_min > 0 && buf.len() >= zc_min;
            self.send(slot, buf, 0, zc);
        } else if c.life != Life::CloseSent && !c.is_open() && c.quiescent() {
            self.finish_close(slot);
        }
    }

    /// Send `buf[from..]` (SEND_ZC when asked).
    pub(super) fn send(&mut self, slot: u32, buf: Vec<u8>, from: usize, zc: bool) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        if zc {
            self.metrics.counters.sends_zc += 1;
        }
        let len = buf.len();
        let op = self
            .io
            .send(c.fd, buf, from, zc, Owner::new(Kind::Send, slot, c.gen));
        c.send = SendState::InFlight {
            sent: from,
            len,
            op,
        };
    }

    pub(super) fn on_send(&mut self, comp: Completion) {
        let (slot, gen, res) = (comp.owner.index, comp.owner.gen, comp.res);
        let zc_min = self.shared.cfg.send_zc_min_bytes;
        let buf = comp.held.into_bytes();
        let Some(c) = self.conns.live(slot, gen) else {
            return;
        };
        let SendState::InFlight { sent, .. } = c.send else {
            panic!("a send completed for a connection with no send in flight");
        };
        c.send = SendState::Idle;
        if res < 0 {
            // EPIPE, ECONNRESET: the peer is gone; drop what it will never read.
            return self.close_conn(slot, true);
        }
        self.metrics.counters.bytes_out += res as u64;
        c.sent_total += res as u64;
        c.hyg.output(self.now);
        let sent = sent + res as usize;
        if sent < buf.len() && !c.aborting() {
            // Short write: send the rest. What went out may let requests waiting for their
            // client to read go on.
            let zc = zc_min > 0 && buf.len() - sent >= zc_min;
            self.send(slot, buf, sent, zc);
            return self.process(slot);
        }
        // Keep the buffer's memory for the next send, unless a burst made it large.
        if buf.capacity() <= SEND_BUF_KEEP_BYTES {
            c.spare = buf;
        } else {
            let cap = buf.capacity();
            crate::budget::free_elsewhere(buf, cap);
        }
        self.mark_dirty(slot);
        // Room in the reply queue may let paused input continue.
        self.process(slot);
    }

    // ----- close ----------------------------------------------------------------------------

    /// Begin closing. `abort`: drop queued output (limit hit, peer gone); otherwise flush it.
    pub(super) fn close_conn(&mut self, slot: u32, abort: bool) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        match c.life {
            Life::CloseSent => return,
            Life::Closing { abort: true } => {}
            _ => c.life = Life::Closing { abort },
        }
        if abort {
            c.out.clear();
            // A client that stopped reading would keep this send (and the connection) for
            // ever.
            if let SendState::InFlight { op, .. } = c.send {
                self.io.cancel(op, Owner::new(Kind::Ignore, 0, 0));
            }
        }
        self.cancel_recv(slot);
        self.mark_dirty(slot);
    }

    pub(super) fn finish_close(&mut self, slot: u32) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        match c.recv {
            RecvState::Armed(_) | RecvState::Direct(_) => return self.cancel_recv(slot),
            // The cancel's completion marks the connection dirty again.
            RecvState::Cancelling => return,
            RecvState::Idle => {}
        }
        if c.send != SendState::Idle {
            return;
        }
        c.life = Life::CloseSent;
        tracing::debug!(
            shard = self.id,
            slot,
            fd = c.fd,
            client = c.id,
            "closing socket"
        );
        let owner = Owner::new(Kind::Close, slot, c.gen);
        self.io.close_fd(c.fd, owner);
    }

    pub(super) fn on_closed(&mut self, c: Completion) {
        let (slot, gen) = (c.owner.index, c.owner.gen);
        let Some(mut conn) = self.conns.remove(slot, gen) else {
            return;
        };
        self.discharge(slot, &conn);
        conn.free_buffers();
        let kind = match conn.proto {
            Proto::Kafka => LISTENER_KAFKA,
            Proto::Resp(_) => LISTENER_RESP,
        };
        self.shared.connections[kind as usize].fetch_sub(1, Ordering::Relaxed);
        self.shared.balance.closed(self.id);
        self.metrics.counters.connections_open -= 1;
        self.forget_peer(&conn);
        if conn.blocked {
            self.blocked.retain(|&s| s != slot);
        }
        // Its watches and parked blocking commands end with it.
        if let Proto::Resp(sess) = &conn.proto {
            let shards = sess.watch_shards();
            let origin = self.conn_id(slot, gen);
            self.send_unwatch(origin, &shards);
            self.send_unblock(origin, &sess.blocked_on);
        }
        if self.drain != Drain::Serving {
            self.check_drained();
        }
    }
}
