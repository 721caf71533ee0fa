//! A client connection as its shard sees it.
//!
//! Lifecycle: `Open` from accept until the peer closes, a protocol error, QUIT, a limit, or
//! shutdown; then `Closing`: no more input is processed, the multishot receive is cancelled,
//! and once no operation of the connection is in flight its socket is closed and the slot
//! freed (its generation bumped, so late completions and mesh replies are recognised).
//!
//! Invariants: `sending` is owned by the kernel while `send_inflight` (never touched then);
//! `pending` holds replies in request order, the front having sequence number `head_seq`.

use std::collections::VecDeque;
use std::os::fd::RawFd;

use super::join::Join;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvState {
    Idle,
    Armed,
    Cancelling,
}

/// A reply slot in request order.
pub enum Pending {
    Ready(Vec<u8>),
    Waiting(Join),
}

pub struct Conn {
    /// Speaks the Kafka protocol (accepted on the Kafka listener) rather than RESP.
    pub kafka: bool,
    pub fd: RawFd,
    pub gen: u32,
    pub id: u64,
    pub recv: RecvState,
    pub send_inflight: bool,
    pub close_submitted: bool,
    /// Stop processing input; close once every reply is flushed.
    pub closing: bool,
    /// Close without waiting for queued replies (limit exceeded, peer gone).
    pub abort: bool,
    pub query: Vec<u8>,
    pub out: Vec<u8>,
    pub sending: Vec<u8>,
    pub sent: usize,
    /// A zero-copy send's result, held until its notification says the kernel no longer
    /// reads `sending` (the send stays in flight until then).
    pub zc_result: Option<i32>,
    pub pending: VecDeque<Pending>,
    pub head_seq: u64,
    pub resp3: bool,
    pub authed: bool,
    pub name: Option<Vec<u8>>,
    /// Waiting for room in a mesh lane; on the shard's blocked list.
    pub blocked: bool,
    /// On the shard's dirty list for this loop turn.
    pub dirty: bool,
}

impl Conn {
    pub fn new(fd: RawFd, gen: u32, id: u64, authed: bool, kafka: bool) -> Conn {
        Conn {
            kafka,
            fd,
            gen,
            id,
            recv: RecvState::Idle,
            send_inflight: false,
            close_submitted: false,
            closing: false,
            abort: false,
            query: Vec::new(),
            out: Vec::new(),
            sending: Vec::new(),
            sent: 0,
            zc_result: None,
            pending: VecDeque::new(),
            head_seq: 0,
            resp3: false,
            authed,
            name: None,
            blocked: false,
            dirty: false,
        }
    }

    /// Sequence number the next reply slot gets.
    pub fn next_seq(&self) -> u64 {
        self.head_seq + self.pending.len() as u64
    }

    /// Bytes queued for the client and not yet acknowledged by the kernel.
    pub fn queued_out(&self) -> usize {
        self.out.len() + self.sending.len().saturating_sub(self.sent)
    }

    /// Move replies that are ready at the front of `pending` into `out`.
    pub fn drain_ready(&mut self) {
        const MOVE_REPLY_BYTES: usize = 64 << 10;
        while let Some(Pending::Ready(_)) = self.pending.front() {
            if let Some(Pending::Ready(bytes)) = self.pending.pop_front() {
                if self.out.is_empty() && bytes.len() >= MOVE_REPLY_BYTES {
                    // A large reply (a fetch) goes out as it is instead of being copied.
                    self.out = bytes;
                } else {
                    self.out.extend_from_slice(&bytes);
                }
            }
            self.head_seq += 1;
        }
    }

    /// Nothing left to do before the socket may close.
    pub fn quiescent(&self) -> bool {
        (self.abort || (self.pending.is_empty() && self.out.is_empty())) && !self.send_inflight
    }
}
