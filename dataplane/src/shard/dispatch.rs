//! Routing one parsed command: run it here, send it to the key's owner, or split it over the
//! owners and join the parts. Replies keep request order through the connection's `pending`
//! queue.
//!
//! A command that needs room in a mesh lane that is full is not consumed: the connection is
//! put on the blocked list and its input is parsed again next loop turn (backpressure).

use std::time::Instant;

use super::conn::Pending;
use super::join::{Join, JoinKind, Outcome};
use super::Shard;
use crate::cache::exec::{self, Args, PartOp, PartResult};
use crate::cache::slot::key_slot;
use crate::mesh::{ConnRef, ReqBody, Request};
use crate::proto::resp::command::{lookup, Cmd, Family, Route, Spec, NOAUTH};
use crate::proto::resp::parse::{self, Frame};
use crate::proto::resp::write::Out;

impl Shard {
    /// Handle one request. Returns false if it could not be taken now (mesh lane full).
    pub(super) fn dispatch(&mut self, slot: u32, a: Args, frame: &[u8]) -> bool {
        let started = Instant::now();
        let Some(c) = self.conns[slot as usize].as_mut() else {
            return true;
        };
        let Some(spec) = lookup(a.get(0)) else {
            let mut msg = format!(
                "ERR unknown command '{}', with args beginning with: ",
                printable(a.get(0))
            );
            for i in 1..a.len().min(4) {
                msg.push_str(&format!("'{}' ", printable(a.get(i))));
            }
            self.reply_now(slot, |o| o.error(&msg));
            return true;
        };
        if !spec.arity_ok(a.len()) {
            let msg = format!("ERR wrong number of arguments for '{}' command", spec.name);
            self.reply_now(slot, |o| o.error(&msg));
            return true;
        }
        if !c.authed && spec.flags & NOAUTH == 0 {
            self.reply_now(slot, |o| o.error("NOAUTH Authentication required."));
            return true;
        }
        let taken = match spec.route {
            Route::Local => self.exec_local(slot, spec, a, started),
            Route::Key => self.dispatch_key(slot, spec, a, frame, started),
            Route::Keys { step } => self.dispatch_keys(slot, spec, a, step, started),
            Route::All => self.dispatch_all(slot, spec, a, started),
            Route::Cursor => self.dispatch_scan(slot, spec, a, started),
        };
        if taken {
            self.metrics.counters.commands += 1;
        }
        taken
    }

    /// Write a reply now: straight into the output buffer when nothing is waiting ahead of
    /// it, else into a ready slot behind the waiting ones.
    pub(super) fn reply_now(&mut self, slot: u32, f: impl FnOnce(&mut Out)) {
        if let Some(c) = self.conns[slot as usize].as_mut() {
            reply_in_order(c, f);
            self.mark_dirty(slot);
        }
    }

    fn dispatch_key(
        &mut self,
        slot: u32,
        spec: &'static Spec,
        a: Args,
        frame: &[u8],
        started: Instant,
    ) -> bool {
        let kslot = key_slot(a.get(1));
        let owner = self.owner.shard(kslot);
        if owner == self.id {
            let now = self.now_ms;
            let Some(c) = self.conns[slot as usize].as_mut() else {
                return true;
            };
            let store = &mut self.store;
            reply_in_order(c, |out| exec::exec_key(store, spec, &a, kslot, now, out));
            self.metrics
                .record(spec.family, started.elapsed().as_nanos() as u64);
            self.mark_dirty(slot);
            return true;
        }
        if self.mesh.req_room(owner) == 0 {
            self.block(slot);
            return false;
        }
        let Some(c) = self.conns[slot as usize].as_mut() else {
            return true;
        };
        let seq = c.next_seq();
        let resp3 = c.resp3;
        c.pending.push_back(Pending::Waiting(Join::new(
            JoinKind::Single,
            1,
            spec.family,
            started,
        )));
        let req = Request {
            conn: ConnRef { slot, gen: c.gen },
            seq,
            part: 0,
            body: ReqBody::Command {
                frame: frame.into(),
                resp3,
            },
            sent: started,
        };
        self.metrics.counters.mesh_requests_sent += 1;
        if self.mesh.push_req(owner, req).is_err() {
            tracing::error!(
                shard = self.id,
                to = owner,
                "request lane full after room check"
            );
        }
        true
    }

    pub(super) fn block(&mut self, slot: u32) {
        if let Some(c) = self.conns[slot as usize].as_mut() {
            if !c.blocked {
                c.blocked = true;
                self.blocked.push(slot);
                self.metrics.counters.mesh_backpressure += 1;
            }
        }
    }

    /// MGET, MSET, MSETNX, DEL, UNLINK, EXISTS: group keys by owner.
    fn dispatch_keys(
        &mut self,
        slot: u32,
        spec: &'static Spec,
        a: Args,
        step: usize,
        started: Instant,
    ) -> bool {
        if step == 2 && a.len() % 2 == 0 {
            let msg = format!("ERR wrong number of arguments for '{}' command", spec.name);
            self.reply_now(slot, |o| o.error(&msg));
            return true;
        }
        let n = self.shared.nshards;
        let mut by_shard: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (pos, i) in (1..a.len()).step_by(step).enumerate() {
            by_shard[self.owner.shard(key_slot(a.get(i)))].push(pos as u32);
        }
        let key = |pos: u32| a.get(1 + pos as usize * step).to_vec();
        let val = |pos: u32| a.get(2 + pos as usize * step).to_vec();
        let mut parts = Vec::new();
        let mut positions = Vec::new();
        for (shard, ps) in by_shard.into_iter().enumerate() {
            if ps.is_empty() {
                continue;
            }
            let op = match spec.cmd {
                Cmd::Mget => PartOp::Mget(ps.iter().map(|&p| key(p)).collect()),
                Cmd::Mset => PartOp::Mset(ps.iter().map(|&p| (key(p), val(p))).collect()),
                Cmd::Msetnx => PartOp::CountExisting(ps.iter().map(|&p| key(p)).collect()),
                Cmd::Exists => PartOp::CountExisting(ps.iter().map(|&p| key(p)).collect()),
                _ => PartOp::Del(ps.iter().map(|&p| key(p)).collect()),
            };
            parts.push((shard, op));
            positions.push(ps);
        }
        let kind = match spec.cmd {
            Cmd::Mget => JoinKind::Mget {
                positions,
                n: a.len() - 1,
            },
            Cmd::Mset => JoinKind::Ok,
            Cmd::Msetnx => JoinKind::MsetNx {
                stage2: positions
                    .iter()
                    .zip(&parts)
                    .map(|(ps, (shard, _))| {
                        (
                            *shard,
                            PartOp::Mset(ps.iter().map(|&p| (key(p), val(p))).collect()),
                        )
                    })
                    .collect(),
            },
            _ => JoinKind::Sum,
        };
        self.launch_new(slot, parts, kind, spec.family, started)
    }

    /// INFO, DBSIZE, FLUSHDB, FLUSHALL, KEYS: one part per shard.
    fn dispatch_all(&mut self, slot: u32, spec: &'static Spec, a: Args, started: Instant) -> bool {
        let (op, kind): (Box<dyn Fn() -> PartOp>, JoinKind) = match spec.cmd {
            Cmd::Dbsize => (Box::new(|| PartOp::Dbsize), JoinKind::Sum),
            Cmd::Flushdb | Cmd::Flushall => {
                if a.len() > 2 || (a.len() == 2 && !a.eq(1, "ASYNC") && !a.eq(1, "SYNC")) {
                    self.reply_now(slot, |o| o.error(exec::SYNTAX));
                    return true;
                }
                (Box::new(|| PartOp::Flush), JoinKind::Ok)
            }
            Cmd::Keys => {
                let pattern = a.get(1).to_vec();
                (
                    Box::new(move || PartOp::Keys(pattern.clone())),
                    JoinKind::Keys,
                )
            }
            _ => {
                let sections: Vec<String> = (1..a.len())
                    .map(|i| String::from_utf8_lossy(a.get(i)).to_ascii_lowercase())
                    .collect();
                let render = self.info_renderer(sections);
                (Box::new(|| PartOp::Info), JoinKind::Info { render })
            }
        };
        let parts = (0..self.shared.nshards).map(|s| (s, op())).collect();
        self.launch_new(slot, parts, kind, spec.family, started)
    }

    /// SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]: the cursor is a slot, so a shard.
    fn dispatch_scan(&mut self, slot: u32, spec: &'static Spec, a: Args, started: Instant) -> bool {
        let cursor = match std::str::from_utf8(a.get(1))
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
        {
            Some(c) if c < crate::cache::slot::SLOTS as u64 => c as usize,
            Some(_) => 0,
            None => {
                self.reply_now(slot, |o| o.error("ERR invalid cursor"));
                return true;
            }
        };
        let (mut count, mut pattern, mut kind) = (10usize, None, None);
        let mut i = 2;
        while i < a.len() {
            if i + 1 >= a.len() {
                self.reply_now(slot, |o| o.error(exec::SYNTAX));
                return true;
            }
            if a.eq(i, "COUNT") {
                match a.int(i + 1) {
                    Some(n) if n >= 1 => count = n as usize,
                    Some(_) => {
                        self.reply_now(slot, |o| o.error(exec::SYNTAX));
                        return true;
                    }
                    None => {
                        self.reply_now(slot, |o| o.error(exec::NOT_INT));
                        return true;
                    }
                }
            } else if a.eq(i, "MATCH") {
                pattern = Some(a.get(i + 1).to_vec());
            } else if a.eq(i, "TYPE") {
                kind = Some(match a.get(i + 1).to_ascii_lowercase().as_slice() {
                    b"string" => crate::cache::entry::KIND_STR,
                    b"hash" => crate::cache::entry::KIND_HASH,
                    _ => u8::MAX, // a type we do not have: matches nothing
                });
            } else {
                self.reply_now(slot, |o| o.error(exec::SYNTAX));
                return true;
            }
            i += 2;
        }
        let owner = self.owner.shard(cursor as u16);
        let parts = vec![(
            owner,
            PartOp::Scan {
                cursor,
                count,
                pattern,
                kind,
            },
        )];
        self.launch_new(slot, parts, JoinKind::Scan, spec.family, started)
    }

    /// Do the request lanes to every other shard named in `parts` have room for all of their
    /// parts? Checked before sending any, so a split request is never half-sent.
    fn lanes_have_room<T>(&self, parts: &[(usize, T)]) -> bool {
        let mut need = vec![0usize; self.shared.nshards];
        for (s, _) in parts {
            if *s != self.id {
                need[*s] += 1;
            }
        }
        need.iter()
            .enumerate()
            .all(|(s, &k)| k == 0 || self.mesh.req_room(s) >= k)
    }

    /// Open a waiting reply slot for a split command, after checking that every lane its
    /// parts need has room (so nothing is ever half-sent).
    fn open_join<T>(
        &mut self,
        slot: u32,
        parts: &[(usize, T)],
        kind: JoinKind,
        family: Family,
        started: Instant,
    ) -> Opened {
        if !self.lanes_have_room(parts) {
            self.block(slot);
            return Opened::Blocked;
        }
        let Some(c) = self.conns[slot as usize].as_mut() else {
            return Opened::Gone;
        };
        let (seq, idx) = (c.next_seq(), c.pending.len());
        c.pending.push_back(Pending::Waiting(Join::new(
            kind,
            parts.len(),
            family,
            started,
        )));
        Opened::At { seq, idx }
    }

    /// Start a split command in a new reply slot. Refuses (returns false) when a lane it
    /// needs lacks room for its parts, so nothing is half-sent.
    pub(super) fn launch_new(
        &mut self,
        slot: u32,
        parts: Vec<(usize, PartOp)>,
        kind: JoinKind,
        family: Family,
        started: Instant,
    ) -> bool {
        match self.open_join(slot, &parts, kind, family, started) {
            Opened::Blocked => false,
            Opened::Gone => true,
            Opened::At { seq, .. } => {
                self.send_parts(slot, seq, parts, started);
                true
            }
        }
    }

    /// A later round of a split command (MSETNX's writes) in its existing reply slot.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn start_round(
        &mut self,
        slot: u32,
        seq: u64,
        idx: usize,
        parts: Vec<(usize, PartOp)>,
        kind: JoinKind,
        family: Family,
        started: Instant,
    ) {
        let Some(c) = self.conns[slot as usize].as_mut() else {
            return;
        };
        c.pending[idx] = Pending::Waiting(Join::new(kind, parts.len(), family, started));
        self.send_parts(slot, seq, parts, started);
    }

    fn send_parts(&mut self, slot: u32, seq: u64, parts: Vec<(usize, PartOp)>, started: Instant) {
        let Some(gen) = self.conns[slot as usize].as_ref().map(|c| c.gen) else {
            return;
        };
        let mut local = Vec::new();
        for (part, (shard, op)) in parts.into_iter().enumerate() {
            if shard == self.id {
                local.push((part as u32, op));
                continue;
            }
            let req = Request {
                conn: ConnRef { slot, gen },
                seq,
                part: part as u32,
                body: ReqBody::Part(op),
                sent: started,
            };
            self.metrics.counters.mesh_requests_sent += 1;
            if let Err(req) = self.mesh.push_req(shard, req) {
                // Only a later round can get here (first rounds checked room): park it.
                self.parked.push_back((shard, req));
            }
        }
        for (part, op) in local {
            let r = self.exec_part(op);
            self.accept_part(slot, seq, part, Outcome::Part(r));
        }
    }

    /// Start a Kafka request split into log parts, in a new reply slot. Like
    /// [`Shard::launch_new`], refuses (false) when a lane lacks room for its parts.
    pub(super) fn launch_log(
        &mut self,
        slot: u32,
        parts: Vec<(usize, crate::log::ops::LogOp)>,
        kind: JoinKind,
        started: Instant,
    ) -> bool {
        match self.open_join(slot, &parts, kind, Family::Server, started) {
            Opened::Blocked => false,
            Opened::Gone => true,
            Opened::At { idx, .. } if parts.is_empty() => {
                self.complete_join(slot, idx);
                true
            }
            Opened::At { seq, .. } => {
                self.send_log_parts(slot, seq, parts, started);
                true
            }
        }
    }

    /// Run a Kafka join's log parts again in its existing reply slot.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn start_log_round(
        &mut self,
        slot: u32,
        seq: u64,
        idx: usize,
        parts: Vec<(usize, crate::log::ops::LogOp)>,
        kind: JoinKind,
        family: Family,
        started: Instant,
    ) {
        let Some(c) = self.conns[slot as usize].as_mut() else {
            return;
        };
        c.pending[idx] = Pending::Waiting(Join::new(kind, parts.len(), family, started));
        self.send_log_parts(slot, seq, parts, started);
    }

    fn send_log_parts(
        &mut self,
        slot: u32,
        seq: u64,
        parts: Vec<(usize, crate::log::ops::LogOp)>,
        started: Instant,
    ) {
        let Some(gen) = self.conns[slot as usize].as_ref().map(|c| c.gen) else {
            return;
        };
        for (part, (shard, op)) in parts.into_iter().enumerate() {
            let part = part as u32;
            if shard == self.id {
                self.exec_log(
                    op,
                    super::logs::ReplyTo::Local {
                        slot,
                        gen,
                        seq,
                        part,
                    },
                );
                continue;
            }
            let req = Request {
                conn: ConnRef { slot, gen },
                seq,
                part,
                body: ReqBody::Log(op),
                sent: started,
            };
            self.metrics.counters.mesh_requests_sent += 1;
            if let Err(req) = self.mesh.push_req(shard, req) {
                // Only a later round can get here (first rounds checked room): park it.
                self.parked.push_back((shard, req));
            }
        }
    }

    /// Deliver a part's outcome to its join; completes the join when it was the last.
    pub(super) fn accept_part(&mut self, slot: u32, seq: u64, part: u32, o: Outcome) {
        let Some(c) = self.conns[slot as usize].as_mut() else {
            return;
        };
        let Some(idx) = seq
            .checked_sub(c.head_seq)
            .map(|i| i as usize)
            .filter(|&i| i < c.pending.len())
        else {
            return;
        };
        let done = match &mut c.pending[idx] {
            Pending::Waiting(j) => j.accept(part, o),
            Pending::Ready(_) => false,
        };
        if done {
            self.complete_join(slot, idx);
        }
    }

    /// Run a single-key command another shard sent us, encoding for its connection.
    pub(super) fn exec_remote_command(&mut self, frame: &[u8], resp3: bool) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut out = Out::new(&mut buf, resp3);
        let mut args = Vec::new();
        let mut scratch = Vec::new();
        let parsed = parse::parse(frame, &self.limits, &mut args, &mut scratch);
        let src: &[u8] = match parsed {
            Ok(Frame::Multibulk { .. }) => frame,
            Ok(Frame::Inline { .. }) => &scratch,
            _ => {
                out.error("ERR internal: bad forwarded frame");
                return buf;
            }
        };
        let a = Args { src, ranges: &args };
        match lookup(a.get(0)) {
            Some(spec) if a.len() >= 2 => {
                exec::exec_key(
                    &mut self.store,
                    spec,
                    &a,
                    key_slot(a.get(1)),
                    self.now_ms,
                    &mut out,
                );
            }
            _ => out.error("ERR internal: bad forwarded command"),
        }
        buf
    }

    /// Run a part here, adding shard-level figures to INFO parts.
    pub(super) fn exec_part(&mut self, op: PartOp) -> PartResult {
        let r = exec::exec_part(&mut self.store, op, self.now_ms);
        match r {
            PartResult::Info(mut i) => {
                let k = &self.metrics.counters;
                i.clients = self.conns.iter().flatten().count() as u64;
                i.commands = k.commands;
                i.connections_received = k.connections_accepted;
                i.rejected_connections = k.connections_rejected;
                i.bytes_in = k.bytes_in;
                i.bytes_out = k.bytes_out;
                PartResult::Info(i)
            }
            other => other,
        }
    }

    /// Send parts that found their lane full; called every loop turn.
    pub(super) fn retry_parked(&mut self) {
        let mut left = std::collections::VecDeque::new();
        while let Some((shard, req)) = self.parked.pop_front() {
            if let Err(req) = self.mesh.push_req(shard, req) {
                left.push_back((shard, req));
            }
        }
        self.parked = left;
    }
}

/// What opening a split command's reply slot gave.
enum Opened {
    /// A lane lacked room: the connection is blocked; the request is retried later.
    Blocked,
    /// The connection is gone; the request is dropped.
    Gone,
    At {
        seq: u64,
        idx: usize,
    },
}

/// Write a connection's next reply: into its output buffer when no reply is waiting ahead
/// of it, else into a ready slot behind the waiting ones, so request order holds.
fn reply_in_order(c: &mut super::conn::Conn, f: impl FnOnce(&mut Out)) {
    let resp3 = c.resp3;
    if c.pending.is_empty() {
        f(&mut Out::new(&mut c.out, resp3));
    } else {
        let mut buf = Vec::new();
        f(&mut Out::new(&mut buf, resp3));
        c.pending.push_back(Pending::Ready(buf));
    }
}

/// A client-supplied word made safe for an error line.
fn printable(b: &[u8]) -> String {
    let s: String = String::from_utf8_lossy(&b[..b.len().min(128)])
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    s
}
