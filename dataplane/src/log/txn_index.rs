//! Transactions on a partition (its owner shard): the open transactions, whose first
//! offset bounds the **last stable offset** (LSO), the **aborted-transactions index** that
//! read_committed fetches answer with, and the COMMIT/ABORT control batches (markers) the
//! transaction coordinator's marker flight appends.
//!
//! A transactional producer's first batch in a transaction opens it here (at the offset
//! and file position its append was planned at); its marker closes it, and an ABORT adds
//! (producer id, first offset, marker offset) to the aborted index. The LSO is the first
//! offset of the oldest open transaction, or the high watermark when none is open: a
//! read_committed consumer reads below it only, so it never sees a batch whose fate is
//! undecided, and skips aborted ones itself with the index (as Kafka's clients do).
//!
//! Durability: the markers and the transactional batches are in the log, so the index is
//! as durable as the log and is rebuilt at recovery from every batch's header (and the
//! control record's type) while the segments are validated ([`TxnIndex::recovered`]),
//! the way the idempotent producers' state is: no separate file can disagree with the
//! log. Entries whose marker retention removed are dropped ([`TxnIndex::trim`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::batch::{self, BatchHeader, HEADER_BYTES, LOG_OVERHEAD};
use super::ops::LogResult;
use super::{producers, LogCtx, Logs};
use crate::proto::kafka::ErrorCode;
use crate::txn::Dest;

/// Batch attribute bits.
pub const TRANSACTIONAL: i16 = 0x10;
pub const CONTROL: i16 = 0x20;
/// Control record types (the key's second field).
const ABORT: i16 = 0;
const COMMIT: i16 = 1;

/// A partition's transactions.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TxnIndex {
    /// Open transactions by producer id: first offset, and where its batch starts.
    open: HashMap<i64, (i64, PathBuf, u64)>,
    /// Aborted transactions in marker order: (producer id, first offset, marker offset).
    aborted: Vec<(i64, i64, i64)>,
    /// Producers whose transaction added this partition, with their epoch: their
    /// transactional batches are taken until their marker.
    allowed: HashMap<i64, i16>,
    /// At recovery: the newest epoch of each producer's markers, which fenced its older
    /// epochs here (`Recovery` hands it to the producers' state, then it is emptied).
    marker_epochs: HashMap<i64, i16>,
}

impl TxnIndex {
    /// The last stable offset, given the high watermark.
    pub fn last_stable(&self, hw: i64) -> i64 {
        self.open
            .values()
            .map(|o| o.0)
            .min()
            .map_or(hw, |f| f.min(hw))
    }

    /// Where the oldest open transaction's first batch starts (a read_committed read ends
    /// there).
    pub fn stable_end(&self) -> Option<(&Path, u64)> {
        self.open
            .values()
            .min_by_key(|o| o.0)
            .map(|(_, path, at)| (path.as_path(), *at))
    }

    /// Open transactions (tests, metrics).
    pub fn open(&self) -> usize {
        self.open.len()
    }

    /// A transactional batch of `pid` planned at `offset` (file `path`, byte `position`).
    pub fn note_data(&mut self, pid: i64, offset: i64, path: &Path, position: u64) {
        self.open
            .entry(pid)
            .or_insert_with(|| (offset, path.to_path_buf(), position));
    }

    /// `pid`'s transaction (at `epoch`) added this partition.
    pub fn allow(&mut self, pid: i64, epoch: i16) {
        self.allowed.insert(pid, epoch);
    }

    /// A transactional batch is taken only from a producer whose transaction added the
    /// partition, at that epoch (what KIP-890 has the leader verify): a batch of a
    /// transaction that ended, or of a fenced producer, gets INVALID_TXN_STATE.
    pub fn check_produce(&self, h: &BatchHeader) -> Result<(), ErrorCode> {
        if h.attributes & TRANSACTIONAL == 0 || h.is_control() {
            return Ok(());
        }
        match self.allowed.get(&h.producer_id) {
            Some(&e) if e == h.producer_epoch => Ok(()),
            Some(&e) if h.producer_epoch < e => Err(ErrorCode::InvalidProducerEpoch),
            _ => Err(ErrorCode::InvalidTxnState),
        }
    }

    /// `pid`'s marker at `offset`: its transaction ends.
    pub fn note_marker(&mut self, pid: i64, commit: bool, offset: i64) {
        self.allowed.remove(&pid);
        if let Some((first, _, _)) = self.open.remove(&pid) {
            if !commit {
                self.aborted.push((pid, first, offset));
            }
        }
    }

    /// Aborted transactions that overlap offsets `[from, to)`: (producer id, first offset),
    /// what a read_committed FetchResponse lists.
    pub fn aborted_in(&self, from: i64, to: i64) -> Vec<(i64, i64)> {
        let start = self.aborted.partition_point(|a| a.2 < from);
        self.aborted[start..]
            .iter()
            .filter(|a| a.1 < to)
            .map(|a| (a.0, a.1))
            .collect()
    }

    /// The markers' epochs found at recovery, for the producers' state (once).
    pub fn take_marker_epochs(&mut self) -> HashMap<i64, i16> {
        std::mem::take(&mut self.marker_epochs)
    }

    /// Forget aborted transactions whose marker is before the log's start (retention).
    pub fn trim(&mut self, log_start: i64) {
        let gone = self.aborted.partition_point(|a| a.2 < log_start);
        self.aborted.drain(..gone);
    }

    /// A batch found valid at recovery (`bytes` is the whole batch, at `position` of
    /// `path`).
    pub fn recovered(&mut self, h: &BatchHeader, bytes: &[u8], path: &Path, position: u64) {
        if h.attributes & TRANSACTIONAL == 0 || h.producer_id < 0 {
            return;
        }
        if h.is_control() {
            if let Some(commit) = control_commit(bytes) {
                self.note_marker(h.producer_id, commit, h.base_offset);
                let e = self
                    .marker_epochs
                    .entry(h.producer_id)
                    .or_insert(h.producer_epoch);
                *e = (*e).max(h.producer_epoch);
            }
        } else {
            self.note_data(h.producer_id, h.base_offset, path, position);
            self.allowed.insert(h.producer_id, h.producer_epoch);
        }
    }
}

/// What a client's batch may not be: a control batch (only the coordinator writes those),
/// or transactional without a producer id.
pub fn check_produced(h: &BatchHeader) -> Result<(), ErrorCode> {
    if h.is_control() || (h.attributes & TRANSACTIONAL != 0 && h.producer_id < 0) {
        return Err(ErrorCode::InvalidRecord);
    }
    Ok(())
}

fn varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let byte = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
}

/// A COMMIT or ABORT control batch of producer `pid`/`epoch`, as Kafka writes it: one
/// record whose key is (version 0, type) and whose value is (version 0, coordinator
/// epoch); attributes transactional and control; no sequence.
pub fn control_batch(pid: i64, epoch: i16, commit: bool, timestamp: i64) -> Vec<u8> {
    let mut rec = Vec::new();
    rec.push(0); // attributes
    varint(&mut rec, 0); // timestamp delta
    varint(&mut rec, 0); // offset delta
    varint(&mut rec, 4);
    rec.extend_from_slice(&0i16.to_be_bytes());
    rec.extend_from_slice(&(if commit { COMMIT } else { ABORT }).to_be_bytes());
    varint(&mut rec, 6);
    rec.extend_from_slice(&0i16.to_be_bytes());
    rec.extend_from_slice(&0i32.to_be_bytes()); // coordinator epoch
    varint(&mut rec, 0); // headers
    let mut b = Vec::with_capacity(HEADER_BYTES + rec.len() + 2);
    b.extend_from_slice(&0i64.to_be_bytes());
    let len = HEADER_BYTES - LOG_OVERHEAD + rec.len() + 1;
    b.extend_from_slice(&(len as i32).to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes()); // leader epoch
    b.push(2);
    b.extend_from_slice(&[0; 4]); // crc, below
    b.extend_from_slice(&(TRANSACTIONAL | CONTROL).to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes()); // last offset delta
    b.extend_from_slice(&timestamp.to_be_bytes());
    b.extend_from_slice(&timestamp.to_be_bytes());
    b.extend_from_slice(&pid.to_be_bytes());
    b.extend_from_slice(&epoch.to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    b.extend_from_slice(&1i32.to_be_bytes());
    varint(&mut b, rec.len() as i64);
    b.extend_from_slice(&rec);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

fn read_varint(b: &[u8], at: &mut usize) -> Option<i64> {
    let mut z = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        z |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return Some(((z >> 1) as i64) ^ -((z & 1) as i64));
        }
    }
    None
}

/// Whether control batch `b` is a COMMIT (Some(true)) or an ABORT (Some(false)); None for
/// anything else.
pub fn control_commit(b: &[u8]) -> Option<bool> {
    let mut at = HEADER_BYTES;
    read_varint(b, &mut at)?; // record length
    at += 1; // attributes
    read_varint(b, &mut at)?; // timestamp delta
    read_varint(b, &mut at)?; // offset delta
    if read_varint(b, &mut at)? < 4 {
        return None;
    }
    let key = b.get(at..at + 4)?;
    match i16::from_be_bytes([key[2], key[3]]) {
        COMMIT => Some(true),
        ABORT => Some(false),
        _ => None,
    }
}

impl Logs {
    /// AddPartitionsToTxn reached the partition: take `pid`'s transactional batches.
    pub(super) fn txn_begin(
        &mut self,
        topic: &str,
        partition: i32,
        pid: i64,
        epoch: i16,
        reply: Dest,
        ctx: &mut LogCtx,
    ) {
        let p = self
            .find(topic, partition)
            .and_then(|k| self.parts.get_mut(k));
        let error = match p {
            Some(p) => {
                p.txn.allow(pid, epoch);
                0
            }
            None => ErrorCode::UnknownTopicOrPartition.code(),
        };
        ctx.reply(reply, LogResult::Created { error });
    }

    /// Append `pid`'s COMMIT or ABORT marker to a partition, answered like a produce once
    /// durable. The marker's epoch fences older producers of `pid` on this partition.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn txn_marker(
        &mut self,
        topic: &str,
        partition: i32,
        pid: i64,
        epoch: i16,
        commit: bool,
        reply: Dest,
        ctx: &mut LogCtx,
    ) {
        let error = |e: ErrorCode| LogResult::Produced {
            error: e.code(),
            base_offset: -1,
            log_start: -1,
        };
        let Some(part) = self.find(topic, partition) else {
            return ctx.reply(reply, error(ErrorCode::UnknownTopicOrPartition));
        };
        let Some(p) = self.parts.get_mut(part) else {
            return ctx.reply(reply, error(ErrorCode::UnknownTopicOrPartition));
        };
        if p.failed {
            return ctx.reply(reply, error(ErrorCode::KafkaStorageError));
        }
        let bytes = control_batch(pid, epoch, commit, ctx.now_ms as i64);
        let Ok(h) = batch::validate(&bytes) else {
            return ctx.reply(reply, error(ErrorCode::CorruptMessage));
        };
        producers::fence(&mut p.producers, pid, epoch);
        let base = self.append_own(part, Bytes::from(bytes), &h, reply, ctx);
        if let (Some(p), Some(base)) = (self.parts.get_mut(part), base) {
            p.txn.note_marker(pid, commit, base);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_batches_validate_and_say_what_they_are() {
        for commit in [true, false] {
            let b = control_batch(42, 3, commit, 1000);
            let h = batch::validate(&b).expect("a valid batch");
            assert!(h.is_control());
            assert_eq!(h.attributes & TRANSACTIONAL, TRANSACTIONAL);
            assert_eq!(
                (h.producer_id, h.producer_epoch, h.record_count),
                (42, 3, 1)
            );
            assert_eq!(h.base_sequence, -1);
            assert_eq!(h.size, b.len());
            assert_eq!(control_commit(&b), Some(commit));
            assert_eq!(check_produced(&h), Err(ErrorCode::InvalidRecord));
        }
        assert_eq!(control_commit(&batch::build(0, 0, &[b"x"])), None);
    }

    #[test]
    fn last_stable_offset_and_aborted_index() {
        let mut t = TxnIndex::default();
        let path = Path::new("/x/0.log");
        assert_eq!(t.last_stable(10), 10);
        t.note_data(7, 10, path, 100);
        t.note_data(7, 12, path, 200); // same transaction: the first offset holds
        t.note_data(8, 11, path, 150);
        assert_eq!(t.last_stable(20), 10);
        assert_eq!(t.stable_end(), Some((path, 100)));
        // Below the LSO the high watermark bounds it.
        assert_eq!(t.last_stable(5), 5);
        t.note_marker(7, false, 13);
        assert_eq!(t.last_stable(20), 11);
        t.note_marker(8, true, 14);
        assert_eq!(t.last_stable(20), 20);
        assert_eq!(t.stable_end(), None);
        t.note_data(7, 15, path, 300);
        t.note_marker(7, false, 16);
        assert_eq!(t.aborted_in(0, 20), vec![(7, 10), (7, 15)]);
        assert_eq!(t.aborted_in(14, 20), vec![(7, 15)]);
        assert_eq!(t.aborted_in(0, 12), vec![(7, 10)]);
        assert_eq!(t.aborted_in(17, 20), vec![]);
        // Only producers whose transaction added the partition, at their epoch.
        let mut h = batch::peek(&control_batch(7, 3, true, 0)).expect("header");
        h.attributes = TRANSACTIONAL;
        assert_eq!(t.check_produce(&h), Err(ErrorCode::InvalidTxnState));
        t.allow(7, 3);
        assert_eq!(t.check_produce(&h), Ok(()));
        h.producer_epoch = 2;
        assert_eq!(t.check_produce(&h), Err(ErrorCode::InvalidProducerEpoch));
        t.note_marker(7, true, 18);
        h.producer_epoch = 3;
        assert_eq!(t.check_produce(&h), Err(ErrorCode::InvalidTxnState));
        h.attributes = 0;
        assert_eq!(t.check_produce(&h), Ok(()));
        // A marker without an open transaction (a retry) changes nothing.
        t.note_marker(9, false, 17);
        assert_eq!(t.aborted_in(0, 20).len(), 2);
        t.trim(14);
        assert_eq!(t.aborted_in(0, 20), vec![(7, 15)]);
    }

    #[test]
    fn recovery_rebuilds_from_batches() {
        let path = Path::new("/x/0.log");
        let mut t = TxnIndex::default();
        let mut data = batch::build(5, 0, &[b"a", b"b"]);
        data[21..23].copy_from_slice(&TRANSACTIONAL.to_be_bytes());
        data[43..51].copy_from_slice(&9i64.to_be_bytes());
        let h = batch::peek(&data).expect("header");
        t.recovered(&h, &data, path, 0);
        assert_eq!(t.last_stable(100), 5);
        let mut m = control_batch(9, 0, false, 0);
        batch::set_base_offset(&mut m, 7);
        let h = batch::peek(&m).expect("header");
        t.recovered(&h, &m, path, 80);
        assert_eq!(t.last_stable(100), 100);
        assert_eq!(t.aborted_in(0, 100), vec![(9, 5)]);
        assert_eq!(t.take_marker_epochs(), HashMap::from([(9, 0)]));
        // Plain batches are not transactions.
        let plain = batch::build(8, 0, &[b"c"]);
        t.recovered(&batch::peek(&plain).expect("header"), &plain, path, 160);
        assert_eq!(t.open(), 0);
    }
}
