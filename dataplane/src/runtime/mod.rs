//! The per-shard io_uring layer. All `unsafe` code of the node lives in this folder.
//!
//! A shard is an explicit completion-driven state machine rather than an async executor:
//! the shard loop submits operations tagged with a [`Token`], waits, and dispatches each
//! completion by its token to the connection, listener, timer or mesh code that owns it.
//! `docs/architecture.md` argues the choice. This module owns:
//!
//! - ring construction with `SINGLE_ISSUER` + `DEFER_TASKRUN` (or `SQPOLL`), probing the
//!   kernel and falling back with a clear log line ([`ring`]);
//! - the provided buffer ring that multishot receives fill ([`bufring`]);
//! - the one place where `user_data` is encoded ([`Token`]);
//! - [`submit::Sq`], which pushes entries and, when the submission queue is full, submits
//!   to make room instead of failing or blocking.

pub mod aligned;
pub mod alloc;
pub mod bufring;
pub mod ring;
pub mod submit;
pub mod sys;

/// What an operation is, stored in the top 4 bits of `user_data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Multishot accept on the shard's listener. Index: listener number.
    Accept = 1,
    /// Multishot receive on a connection. Index: connection slot.
    Recv = 2,
    /// Send of a connection's output. Index: connection slot.
    Send = 3,
    /// Close of a connection's socket. Index: connection slot.
    Close = 4,
    /// A doorbell posted into this ring by another shard's `MSG_RING`. Index: sender shard.
    Doorbell = 5,
    /// Read on the shard's control eventfd (shutdown, dumps, stats from the main thread).
    Control = 6,
    /// The periodic tick (active expiry, drain checks).
    Tick = 7,
    /// Completion of a cancel request; carries nothing to act on.
    Cancel = 8,
    /// Completion of a doorbell this shard sent (posted only on failure).
    DoorbellSent = 9,
    /// A group commit's write to a log segment. Index: partition number on the shard.
    LogWrite = 10,
    /// The fdatasync linked after a group commit's write. Index: partition number.
    LogSync = 11,
    /// A fetch's read from a log segment. Index: read slot.
    LogRead = 12,
    /// A step of a file job (open, mkdir, unlink, ...). Index: job slot.
    File = 13,
}

/// `user_data` layout, the only place it is defined:
///
/// ```text
/// bits 60..64  kind        (Kind)
/// bits 32..60  generation  (28 bits: detects completions for a reused connection slot)
/// bits  0..32  index       (connection slot, listener, shard)
/// ```
///
/// The value 0 is never used, so a zeroed CQE can never be mistaken for an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    pub gen: u32,
    pub index: u32,
}

const GEN_MASK: u64 = (1 << 28) - 1;

impl Token {
    pub fn new(kind: Kind, gen: u32, index: u32) -> Token {
        Token {
            kind,
            gen: gen & GEN_MASK as u32,
            index,
        }
    }

    pub fn encode(self) -> u64 {
        ((self.kind as u64) << 60) | ((self.gen as u64 & GEN_MASK) << 32) | self.index as u64
    }

    pub fn decode(v: u64) -> Option<Token> {
        let kind = match v >> 60 {
            1 => Kind::Accept,
            2 => Kind::Recv,
            3 => Kind::Send,
            4 => Kind::Close,
            5 => Kind::Doorbell,
            6 => Kind::Control,
            7 => Kind::Tick,
            8 => Kind::Cancel,
            9 => Kind::DoorbellSent,
            10 => Kind::LogWrite,
            11 => Kind::LogSync,
            12 => Kind::LogRead,
            13 => Kind::File,
            _ => return None,
        };
        Some(Token {
            kind,
            gen: ((v >> 32) & GEN_MASK) as u32,
            index: v as u32,
        })
    }
}

/// Generations wrap inside the 28 bits the token carries.
pub fn next_gen(g: u32) -> u32 {
    (g + 1) & GEN_MASK as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        for kind in [
            Kind::Accept,
            Kind::Recv,
            Kind::Send,
            Kind::Close,
            Kind::Doorbell,
            Kind::Control,
            Kind::Tick,
            Kind::Cancel,
            Kind::DoorbellSent,
            Kind::LogWrite,
            Kind::LogSync,
            Kind::LogRead,
            Kind::File,
        ] {
            let t = Token::new(kind, 0x0abc_def1, u32::MAX);
            assert_eq!(Token::decode(t.encode()), Some(t));
            assert_ne!(t.encode(), 0);
        }
        assert_eq!(Token::decode(0), None);
        assert_eq!(next_gen((1 << 28) - 1), 0);
    }
}
