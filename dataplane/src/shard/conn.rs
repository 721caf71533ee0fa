//! A client connection as its shard sees it, and the table of a shard's connections.
//!
//! Lifecycle ([`Life`]): `Open` from accept until the peer closes, a protocol error, QUIT, a
//! limit, or shutdown; then `Closing`: no more input is processed, the multishot receive
//! is cancelled, queued replies are flushed (or dropped, when aborting); once no operation
//! of the connection is in flight its socket is closed (`CloseSent`) and, on that
//! completion, the slot is freed and its generation bumped, so late completions and
//! replies for the old connection are recognised and dropped.
//!
//! Invariants: the send buffer is with the ring while `send` is `InFlight` (the connection
//! holds none then); `pending` holds replies in request order, the front one having
//! sequence number `head_seq`, and `pending_bytes` is the capacity of its ready ones; a
//! connection is on the shard's dirty list iff `dirty`, on its blocked list iff `blocked`,
//! on the budget's paused list iff `budget_paused`; `charged` is what the shard's memory
//! budget counts for it ([`Conn::input_bytes`], [`Conn::output_bytes`] when last accounted).

use std::collections::VecDeque;
use std::os::fd::RawFd;

use crate::budget::free_elsewhere;
use crate::limits::{
    DIRECT_RECV_MIN_BYTES, INFLIGHT_REPLY_BYTES_MAX, MOVE_REPLY_BYTES, QUERY_GROW_STEP_MAX_BYTES,
    QUERY_KEEP_BYTES, REPLY_ESTIMATE_START_BYTES, TLS_CONN_BYTES,
};
use crate::proto::resp::write::Out;
use crate::redis::Session;
use crate::runtime::io::OpId;
use crate::runtime::slab::{Slab, SlabKey};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Life {
    Open,
    /// No more input; close once the replies are out. `abort`: drop them instead (a limit
    /// was hit, or the peer is gone).
    Closing {
        abort: bool,
    },
    /// The close is with the ring.
    CloseSent,
}

/// How a connection is being read. Small requests arrive through a multishot receive
/// into the shard's provided buffers (`Armed`). A connection with a large partial frame
/// instead lends its query buffer to one receive at a time (`Direct`): the frame grows in
/// place, and it takes none of the provided buffers that every other connection needs (a
/// few streaming uploads used to take them all, starving small clients for seconds).
/// Direct receives are limited per shard and served in turn ([`DirectRecvs`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvState {
    Idle,
    Armed(OpId),
    /// The query buffer is with the ring (see `Conn::lent`).
    Direct(OpId),
    Cancelling,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendState {
    Idle,
    /// A buffer of `len` bytes is with the ring; `sent` of them went out before this send.
    /// `op` is the send, to cancel when the connection is dropped.
    InFlight {
        sent: usize,
        len: usize,
        op: OpId,
    },
}

/// The protocol a connection speaks, and its per-protocol state.
pub enum Proto {
    Resp(Session),
    Kafka,
}

/// A reply slot in request order.
pub enum Pending {
    Ready(Vec<u8>),
    /// An operation in flight will fill it.
    Waiting,
}

pub struct Conn {
    pub fd: RawFd,
    pub gen: u32,
    /// CLIENT ID: unique on the node; `id % shards` is the connection's shard.
    pub id: u64,
    pub life: Life,
    pub recv: RecvState,
    pub send: SendState,
    pub proto: Proto,
    pub query: Vec<u8>,
    /// Replies ready to send, in order.
    pub out: Vec<u8>,
    /// The send buffer between sends (kept to reuse its memory).
    pub spare: Vec<u8>,
    pub pending: VecDeque<Pending>,
    pub head_seq: u64,
    /// Waiting for room in the mesh; on the shard's blocked list.
    pub blocked: bool,
    /// On the shard's dirty list for this loop turn.
    pub dirty: bool,
    /// Capacity of the ready replies in `pending`.
    pub pending_bytes: usize,
    /// What the memory budget counts for this connection now: input, output.
    pub charged: (usize, usize),
    /// Paused by the memory budget (on its paused list).
    pub budget_paused: bool,
    /// Bytes the client has taken (sends completed).
    pub sent_total: u64,
    /// Over --output-buffer-limit-bytes since this instant, with `sent_total` then.
    pub over_limit: Option<(std::time::Instant, u64)>,
    /// A running average of the size of the replies that came back to this connection from
    /// operations in flight: how many may be in flight at once ([`Conn::may_launch`]).
    pub reply_estimate: usize,
    /// The query buffer's length and capacity while it is lent to a direct receive (the
    /// connection's `query` is empty then).
    pub lent: (usize, usize),
    /// Waiting for a direct receive (on [`DirectRecvs::waiting`]).
    pub direct_waiting: bool,
    /// The frame loop last stopped at an incomplete frame at the front of the query buffer:
    /// nothing in it can run until more bytes arrive, so it may be lent to a receive.
    pub incomplete: bool,
    /// Idle and slowloris clocks, source address (`hygiene.rs`).
    pub hyg: super::hygiene::ConnClock,
    /// TLS between the socket and the buffers above, on a TLS listener's connections
    /// (`crate::tls`, `shard/tls.rs`): `query` and `out` hold plaintext either way.
    pub tls: Option<Box<crate::tls::TlsConn>>,

    /// A Kafka connection's SASL state and principal (issue 13, f-sec; `auth/sasl.rs`).
    pub sasl: Option<Box<crate::auth::sasl::SaslConn>>,
    /// A RESP request of many arguments parsed in part: its arguments so far and where the
    /// parse goes on (`frames.rs`; charged as input).
    pub partial: Option<Box<PartialRequest>>,
    /// The loop turn (`ShardMetrics::loop_turn`'s count) in which this connection's partial
    /// request was last parsed, and how many of its arguments were parsed in that turn.
    pub parse_turn: (u64, usize),
}

/// The state of a RESP request parsed over several receives or loop turns.
pub struct PartialRequest {
    pub args: Vec<(usize, usize)>,
    pub resume: crate::proto::resp::parse::Resume,
}

impl PartialRequest {
    /// Memory it holds (charged to the budget as the connection's input).
    pub fn bytes(&self) -> usize {
        self.args.capacity() * std::mem::size_of::<(usize, usize)>()
    }
}

impl Conn {
    pub fn new(fd: RawFd, gen: u32, id: u64, proto: Proto) -> Conn {
        Conn {
            fd,
            gen,
            id,
            life: Life::Open,
            recv: RecvState::Idle,
            send: SendState::Idle,
            proto,
            query: Vec::new(),
            out: Vec::new(),
            spare: Vec::new(),
            pending: VecDeque::new(),
            head_seq: 0,
            blocked: false,
            dirty: false,
            pending_bytes: 0,
            charged: (0, 0),
            budget_paused: false,
            sent_total: 0,
            over_limit: None,
            reply_estimate: REPLY_ESTIMATE_START_BYTES,
            lent: (0, 0),
            direct_waiting: false,
            incomplete: false,
            hyg: Default::default(),
            tls: None,

            sasl: None,
            partial: None,
            parse_turn: (0, 0),
        }
    }

    pub fn is_open(&self) -> bool {
        self.life == Life::Open
    }

    pub fn aborting(&self) -> bool {
        self.life == (Life::Closing { abort: true })
    }

    pub fn resp3(&self) -> bool {
        matches!(&self.proto, Proto::Resp(s) if s.resp3)
    }

    /// Write the connection's next reply: into its output when no reply is waiting ahead
    /// of it, else into a ready slot behind the waiting ones, so request order holds.
    pub fn reply(&mut self, f: impl FnOnce(&mut Out)) {
        let resp3 = self.resp3();
        if self.pending.is_empty() {
            f(&mut Out::new(&mut self.out, resp3));
        } else {
            let mut buf = Vec::new();
            f(&mut Out::new(&mut buf, resp3));
            self.pending_bytes += buf.capacity();
            self.pending.push_back(Pending::Ready(buf));
        }
    }

    /// Reserve the next reply slot for an operation in flight; returns its sequence number.
    pub fn wait_reply(&mut self) -> u64 {
        let seq = self.head_seq + self.pending.len() as u64;
        self.pending.push_back(Pending::Waiting);
        seq
    }

    /// May another request go in flight? At most `max_inflight`, and no more than
    /// `INFLIGHT_REPLY_BYTES_MAX` of replies expected (at this connection's running average
    /// reply size), so a pipeline of GETs of large values does not land all its replies at
    /// once; one is always allowed.
    pub fn may_launch(&self, max_inflight: usize) -> bool {
        let n = self.pending.len();
        n == 0 || (n < max_inflight && n * self.reply_estimate < INFLIGHT_REPLY_BYTES_MAX)
    }

    fn estimate(&mut self, reply_bytes: usize) {
        self.reply_estimate = (self.reply_estimate * 7 + reply_bytes) / 8;
    }

    /// The reply for slot `seq` arrived. At the front it goes straight to the output.
    pub fn fill(&mut self, seq: u64, bytes: &[u8]) {
        self.estimate(bytes.len());
        let Some(idx) = seq
            .checked_sub(self.head_seq)
            .map(|i| i as usize)
            .filter(|&i| i < self.pending.len())
        else {
            panic!("a reply for slot {seq}, which is not waiting");
        };
        if idx == 0 {
            self.out.extend_from_slice(bytes);
            self.pending.pop_front();
            self.head_seq += 1;
        } else {
            self.pending_bytes += bytes.len();
            self.pending[idx] = Pending::Ready(bytes.to_vec());
        }
        self.drain_ready();
    }

    /// Like [`Conn::fill`], taking the bytes (a large fetch reply moves, uncopied).
    pub fn fill_owned(&mut self, seq: u64, bytes: Vec<u8>) {
        let idx = seq
            .checked_sub(self.head_seq)
            .map(|i| i as usize)
            .filter(|&i| i < self.pending.len())
            .unwrap_or_else(|| panic!("a reply for slot {seq}, which is not waiting"));
        self.estimate(bytes.len());
        self.pending_bytes += bytes.capacity();
        self.pending[idx] = Pending::Ready(bytes);
        self.drain_ready();
    }

    /// Move replies that are ready at the front of `pending` into `out`.
    fn drain_ready(&mut self) {
        while let Some(Pending::Ready(_)) = self.pending.front() {
            if let Some(Pending::Ready(bytes)) = self.pending.pop_front() {
                self.pending_bytes -= bytes.capacity();
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

    /// Bytes queued for the client and not yet acknowledged by the kernel.
    pub fn queued_out(&self) -> usize {
        self.out.len()
            + match self.send {
                SendState::InFlight { sent, len, .. } => len - sent,
                SendState::Idle => 0,
            }
    }

    /// Replies built and not yet taken by the client, in bytes (the ones waiting behind a
    /// reply still in flight included).
    pub fn queued_replies(&self) -> usize {
        self.queued_out() + self.pending_bytes
    }

    /// Memory the connection's input holds (what the budget charges as input).
    pub fn input_bytes(&self) -> usize {
        self.query.capacity()
            + self.lent.1
            + self.tls.as_ref().map_or(0, |_| TLS_CONN_BYTES)
            + self.partial.as_ref().map_or(0, |p| p.bytes())
    }

    /// Unparsed input, whether in the query buffer or lent to a receive.
    pub fn partial_len(&self) -> usize {
        self.query.len() + self.lent.0
    }

    /// A large frame is arriving: its bytes should come by direct receives (its buffer
    /// holds nothing that could run before they do).
    pub fn wants_direct(&self) -> bool {
        // A TLS connection's bytes must go through rustls, never straight into `query`.
        self.incomplete && self.partial_len() >= DIRECT_RECV_MIN_BYTES && self.tls.is_none()
    }

    /// Memory the connection's replies hold (what the budget charges as output).
    pub fn output_bytes(&self) -> usize {
        let sending = match self.send {
            SendState::InFlight { len, .. } => len,
            SendState::Idle => 0,
        };
        self.out.capacity() + self.spare.capacity() + self.pending_bytes + sending
    }

    /// Append received bytes to the query buffer. It grows by doubling up to a step, then
    /// by that step, so that its capacity stays close to what was received (a 400 MB bulk
    /// arriving is not charged 400 MB at its header, nor 512 MB at 257 MB).
    pub fn take_input(&mut self, bytes: &[u8]) {
        grow_query(&mut self.query, bytes.len());
        self.query.extend_from_slice(bytes);
    }

    /// Ciphertext arrived on a TLS connection: its plaintext goes to the query buffer as
    /// [`Conn::take_input`] would put it there.
    pub fn take_tls_input(&mut self, bytes: &[u8]) -> Result<crate::tls::Received, rustls::Error> {
        match self.tls.as_deref_mut() {
            Some(tls) => tls.receive(bytes, &mut self.query, grow_query),
            None => {
                self.take_input(bytes);
                Ok(crate::tls::Received::Open)
            }
        }
    }

    /// After the frames were run: a query buffer that grew for a large frame is given back
    /// once it holds little (freed on the helper thread when large).
    pub fn shrink_input(&mut self) {
        let cap = self.query.capacity();
        if cap > QUERY_KEEP_BYTES && self.query.len() <= cap / 4 {
            let mut small = Vec::with_capacity(self.query.len().max(QUERY_KEEP_BYTES / 4));
            small.extend_from_slice(&self.query);
            free_elsewhere(std::mem::replace(&mut self.query, small), cap);
        }
    }

    /// The connection is gone: its large buffers are freed on the helper thread.
    pub fn free_buffers(&mut self) {
        if let Some(p) = self.partial.take() {
            let bytes = p.bytes();
            free_elsewhere(p, bytes);
        }
        for buf in [&mut self.query, &mut self.out, &mut self.spare] {
            let cap = buf.capacity();
            free_elsewhere(std::mem::take(buf), cap);
        }
        for p in self.pending.drain(..) {
            if let Pending::Ready(buf) = p {
                let cap = buf.capacity();
                free_elsewhere(buf, cap);
            }
        }
    }

    /// Nothing left to do before the socket may close.
    pub fn quiescent(&self) -> bool {
        (self.aborting() || (self.pending.is_empty() && self.out.is_empty()))
            && self.send == SendState::Idle
            && self
                .tls
                .as_ref()
                .is_none_or(|t| self.aborting() || !t.wants_write())
    }
}

/// Make room for `more` bytes in a query buffer: it grows by doubling up to a step, then
/// by that step, so that its capacity stays close to what was received.
fn grow_query(query: &mut Vec<u8>, more: usize) {
    let need = query.len() + more;
    if need > query.capacity() {
        let step = query
            .capacity()
            .clamp(QUERY_KEEP_BYTES / 4, QUERY_GROW_STEP_MAX_BYTES);
        query.reserve_exact((need - query.len()).max(step));
    }
}

/// A shard's connections by slot, with generations.
#[derive(Default)]
pub struct Conns {
    slab: Slab<Conn>,
    pub direct: DirectRecvs,
}

/// Direct receives (see [`RecvState`]): at most `DIRECT_RECVS_MAX` in flight per shard,
/// each of at most `DIRECT_RECV_BYTES`, so the large uploads together add a bounded amount
/// of work to a loop turn; connections wanting one wait in turn.
#[derive(Default)]
pub struct DirectRecvs {
    pub in_flight: usize,
    pub waiting: VecDeque<u32>,
}

impl Conns {
    /// A free slot and its generation, for a new connection ([`Conns::insert`] fills it).
    pub fn reserve(&mut self) -> (u32, u32) {
        let k = self.slab.reserve();
        (k.slot, k.gen)
    }

    pub fn insert(&mut self, slot: u32, c: Conn) {
        let gen = c.gen;
        let filled = self.slab.fill(SlabKey { slot, gen }, c);
        assert!(
            filled,
            "connection slot {slot} was not reserved for generation {gen}"
        );
    }

    /// Free a slot after its socket closed, if it still holds that connection (`gen`); its
    /// generation moves on.
    pub fn remove(&mut self, slot: u32, gen: u32) -> Option<Conn> {
        self.slab.remove(SlabKey { slot, gen })
    }

    pub fn get(&self, slot: u32) -> Option<&Conn> {
        self.slab.at(slot)
    }

    pub fn get_mut(&mut self, slot: u32) -> Option<&mut Conn> {
        self.slab.at_mut(slot)
    }

    /// The connection in `slot` if it is still the one of generation `gen`.
    pub fn live(&mut self, slot: u32, gen: u32) -> Option<&mut Conn> {
        self.slab.get_mut(SlabKey { slot, gen })
    }

    /// Connections open (a slot is filled as soon as it is reserved).
    pub fn open(&self) -> usize {
        self.slab.len()
    }

    pub fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.slab.iter().map(|(s, _)| s)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Conn> {
        self.slab.iter().map(|(_, c)| c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Conn {
        Conn::new(-1, 0, 1, Proto::Kafka)
    }

    #[test]
    fn the_query_buffer_grows_with_what_arrives_and_shrinks_after() {
        let mut c = conn();
        let chunk = vec![7u8; 16 << 10];
        for _ in 0..(8 << 20) / chunk.len() {
            c.take_input(&chunk);
        }
        assert_eq!(c.query.len(), 8 << 20);
        // Charged close to what arrived: at most one growth step more.
        assert!(c.input_bytes() <= (8 << 20) + QUERY_GROW_STEP_MAX_BYTES);
        c.query.clear();
        c.shrink_input();
        assert!(c.input_bytes() <= QUERY_KEEP_BYTES);
    }

    #[test]
    fn requests_in_flight_are_bounded_by_the_replies_they_will_bring() {
        let mut c = conn();
        // Before any reply: up to INFLIGHT_REPLY_BYTES_MAX at the starting estimate.
        let mut n = 0;
        while c.may_launch(1024) {
            c.wait_reply();
            n += 1;
        }
        assert_eq!(n, INFLIGHT_REPLY_BYTES_MAX / REPLY_ESTIMATE_START_BYTES);
        // Large replies come back: fewer may be in flight.
        while !c.pending.is_empty() {
            let seq = c.head_seq;
            c.fill_owned(seq, vec![0; 1 << 20]);
            c.out.clear();
        }
        let mut m = 0;
        while c.may_launch(1024) {
            c.wait_reply();
            m += 1;
        }
        assert!(m <= 5, "{m} in flight at ~1 MiB each");
        // One is always allowed.
        let mut fresh = conn();
        fresh.reply_estimate = usize::MAX / 2;
        assert!(fresh.may_launch(1));
    }

    #[test]
    fn ready_replies_behind_a_waiting_one_are_counted() {
        let mut c = conn();
        let first = c.wait_reply();
        c.reply(|o| o.bulk(&[1u8; 1000]));
        assert!(c.pending_bytes >= 1000);
        assert!(c.queued_replies() >= 1000);
        c.fill(first, b"+OK\r\n");
        assert_eq!(c.pending_bytes, 0);
        assert!(c.out.len() > 1000);
    }
}
