//! The per-shard io_uring layer. All `unsafe` code of the node lives in this folder.
//!
//! A shard is an explicit completion-driven state machine rather than an async executor:
//! it asks [`io::Io`] for operations, each tagged with an [`Owner`] (what the completion is
//! for), waits, and dispatches each [`io::Completion`] by its owner to the connection,
//! listener, timer, partition or file job that asked. `docs/architecture.md` argues the
//! choice. This folder owns:
//!
//! - ring construction with `SINGLE_ISSUER` + `DEFER_TASKRUN` (or `SQPOLL`), probing the
//!   kernel and falling back with a clear log line ([`ring`]);
//! - the provided buffer ring that multishot receives fill ([`bufring`]);
//! - [`io::Io`]: every operation the node submits, with the buffer contract of each written
//!   once. A buffer, path or timespec an operation needs is *moved into* `Io` when the
//!   operation is submitted and handed back in its completion, so no caller can free or
//!   touch memory the kernel may still write (the ownership model of monoio and glommio);
//! - the `user_data` encoding, the only place it is defined ([`UserData`]);
//! - pushing entries, where a full submission queue is an error value ([`submit`]);
//! - the table of values by slot with generations that operations, connections, flights
//!   and partitions are kept in ([`slab`]);
//! - aligned buffers for direct I/O ([`aligned`]), the few plain syscalls ([`sys`]) and the
//!   counting allocator the unit tests measure memory with ([`alloc`]).

pub mod aligned;
pub mod alloc;
pub mod bufring;
pub mod io;
pub mod ring;
pub mod slab;
pub mod submit;
pub mod sys;

/// What an operation is for: the owner kinds a completion is dispatched by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Multishot accept on the shard's listener. Index: listener number.
    Accept,
    /// Multishot receive on a connection. Index: connection slot.
    Recv,
    /// Send of a connection's output. Index: connection slot.
    Send,
    /// Close of a connection's socket. Index: connection slot (u32::MAX: no slot owns it).
    Close,
    /// A doorbell posted into this ring by another shard's `MSG_RING`. Index: sender shard.
    Doorbell,
    /// A doorbell this shard sent failed. Index: the shard it was for.
    DoorbellFailed,
    /// Read on the shard's control eventfd (shutdown, dumps, stats from the main thread).
    Control,
    /// A timer. Index: which ([`TIMER_TICK`], [`TIMER_FAST`]).
    Timer,
    /// A group commit's write to a log segment. Index: partition slot; aux: commit number.
    LogWrite,
    /// The fdatasync linked after a group commit's write. Index and aux as for the write.
    LogSync,
    /// A fetch's or a ListOffsets read from a log segment. Index and gen: the read's slot
    /// and generation.
    LogRead,
    /// A step of a file job (open, mkdir, unlink, ...). Index and gen: the job's slot and
    /// generation.
    File,
    /// Nothing waits for the result (cancels, interval fsyncs).
    Ignore,
    /// An operation on a consumer-group offsets file (`kafka/groups/store.rs`). Index: the
    /// `__consumer_offsets` partition; aux: which step.
    Group,
}

/// Timer indexes.
pub const TIMER_TICK: u32 = 0;
pub const TIMER_FAST: u32 = 1;

/// Who a completion is for: a kind, an index (connection slot, partition slot, job ...) and
/// a generation, so a completion for a reused slot is recognised and dropped. `aux` carries
/// one more number where the owner needs it (a group commit's number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub kind: Kind,
    pub index: u32,
    pub gen: u32,
    pub aux: u32,
}

impl Owner {
    pub const fn new(kind: Kind, index: u32, gen: u32) -> Owner {
        Owner {
            kind,
            index,
            gen,
            aux: 0,
        }
    }

    pub const fn with_aux(mut self, aux: u32) -> Owner {
        self.aux = aux;
        self
    }
}

/// `user_data` layout, the only place it is defined:
///
/// ```text
/// bit 63 = 0:  bits 0..32 are the slot of the operation in `Io`'s in-flight table and
///              bits 32..60 the slot's generation (a slot is reused once its operation
///              completed; a cancel aimed at the old one must not hit the new one)
/// bit 63 = 1:  a message, not an operation of ours; bits 32..40 say which
///              (1 = a doorbell from shard <bits 0..32>, 2 = our doorbell to shard <bits
///              0..32> failed; successful doorbells post no completion)
/// ```
///
/// The in-flight table is what maps an operation to its [`Owner`] and to the buffer lent
/// with it, so the value itself never has to carry more than a slot and its generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserData {
    Op { slot: u32, gen: u32 },
    DoorbellFrom(u32),
    DoorbellFailed(u32),
}

const MESSAGE: u64 = 1 << 63;
const DOORBELL_FROM: u64 = 1 << 32;
const DOORBELL_FAILED: u64 = 2 << 32;

impl UserData {
    pub fn encode(self) -> u64 {
        match self {
            UserData::Op { slot, gen } => ((gen & GEN_MASK) as u64) << 32 | slot as u64,
            UserData::DoorbellFrom(s) => MESSAGE | DOORBELL_FROM | s as u64,
            UserData::DoorbellFailed(s) => MESSAGE | DOORBELL_FAILED | s as u64,
        }
    }

    pub fn decode(v: u64) -> Option<UserData> {
        if v & MESSAGE == 0 {
            let gen = (v >> 32) as u32;
            return (gen <= GEN_MASK).then_some(UserData::Op {
                slot: v as u32,
                gen,
            });
        }
        let low = v as u32;
        match v & !MESSAGE & !0xffff_ffff {
            DOORBELL_FROM => Some(UserData::DoorbellFrom(low)),
            DOORBELL_FAILED => Some(UserData::DoorbellFailed(low)),
            _ => None,
        }
    }
}

/// Generations wrap inside 28 bits (kept small so they print readably in logs).
pub const GEN_MASK: u32 = (1 << 28) - 1;

pub fn next_gen(g: u32) -> u32 {
    (g + 1) & GEN_MASK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_round_trips() {
        for u in [
            UserData::Op { slot: 0, gen: 0 },
            UserData::Op {
                slot: u32::MAX,
                gen: GEN_MASK,
            },
            UserData::DoorbellFrom(7),
            UserData::DoorbellFailed(u32::MAX),
        ] {
            assert_eq!(UserData::decode(u.encode()), Some(u));
        }
        assert_eq!(UserData::decode(MESSAGE | (9 << 32)), None);
        assert_eq!(next_gen(GEN_MASK), 0);
    }
}
