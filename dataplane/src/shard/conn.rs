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
//! sequence number `head_seq`; a connection is on the shard's dirty list iff `dirty`, on
//! its blocked list iff `blocked`.

use std::collections::VecDeque;
use std::os::fd::RawFd;

use crate::limits::MOVE_REPLY_BYTES;
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvState {
    Idle,
    Armed(OpId),
    Cancelling,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendState {
    Idle,
    /// A buffer of `len` bytes is with the ring; `sent` of them went out before this send.
    InFlight {
        sent: usize,
        len: usize,
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
            self.pending.push_back(Pending::Ready(buf));
        }
    }

    /// Reserve the next reply slot for an operation in flight; returns its sequence number.
    pub fn wait_reply(&mut self) -> u64 {
        let seq = self.head_seq + self.pending.len() as u64;
        self.pending.push_back(Pending::Waiting);
        seq
    }

    /// The reply for slot `seq` arrived. At the front it goes straight to the output.
    pub fn fill(&mut self, seq: u64, bytes: &[u8]) {
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
        self.pending[idx] = Pending::Ready(bytes);
        self.drain_ready();
    }

    /// Move replies that are ready at the front of `pending` into `out`.
    fn drain_ready(&mut self) {
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

    /// Bytes queued for the client and not yet acknowledged by the kernel.
    pub fn queued_out(&self) -> usize {
        self.out.len()
            + match self.send {
                SendState::InFlight { sent, len } => len - sent,
                SendState::Idle => 0,
            }
    }

    /// Nothing left to do before the socket may close.
    pub fn quiescent(&self) -> bool {
        (self.aborting() || (self.pending.is_empty() && self.out.is_empty()))
            && self.send == SendState::Idle
    }
}

/// A shard's connections by slot, with generations.
#[derive(Default)]
pub struct Conns {
    slab: Slab<Conn>,
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
