//! The coordinator's writes: a request whose records were appended to an offsets file
//! waits as a [`Waiter`] until the write is durable (or failed), then it is applied and
//! answered ([`Groups::finish`]). Also the turn's flush, the files' completions, and the
//! rewrite of a file that grew, from a snapshot of its live records.

use super::offsets::commit_record;
use super::ops::{GroupRes, OffsetDeleteRes};
use super::store;
use super::txn_offsets::TxnWaiter;
use super::{err, Committed, Groups};
use crate::runtime::io::{Completion, Io};
use crate::txn::Dest;

/// A request waiting for its records to be durable.
pub(super) enum Waiter {
    Commit {
        dest: Dest,
        group: String,
        errors: Vec<i16>,
        apply: Vec<((String, i32), Committed)>,
    },
    /// One group of a DeleteGroups part (`batch`), at `index` in it.
    Delete {
        batch: u64,
        index: usize,
        group: String,
    },
    OffsetDelete {
        dest: Dest,
        group: String,
        res: OffsetDeleteRes,
        remove: Vec<(String, i32)>,
    },
    /// Transactions (`txn_offsets.rs`).
    Txn(TxnWaiter),
}

impl Groups {
    /// Append a request's records (`put`) to partition `part`'s offsets file; the request
    /// waits as `w` for the write, or fails now if the file takes no writes.
    pub(super) fn append(
        &mut self,
        part: u32,
        put: impl FnOnce(&mut Vec<u8>),
        w: Waiter,
        out: &mut Vec<(Dest, GroupRes)>,
    ) {
        if let Err(w) = self.log.append(part, put, w) {
            self.finish(w, false, out);
        }
    }

    /// A request's records are durable (`ok`) or could not be written: apply and answer.
    pub(super) fn finish(&mut self, w: Waiter, ok: bool, out: &mut Vec<(Dest, GroupRes)>) {
        match w {
            Waiter::Commit {
                dest,
                group,
                errors,
                apply,
            } => {
                if ok {
                    self.entry(&group).offsets.extend(apply);
                }
                out.push((dest, commit_answer(errors, ok)));
            }
            Waiter::Delete {
                batch,
                index,
                group,
            } => self.deleted(batch, index, &group, ok, out),
            Waiter::OffsetDelete {
                dest,
                group,
                mut res,
                remove,
            } => {
                if !ok {
                    res = OffsetDeleteRes::error(err::COORDINATOR_NOT_AVAILABLE);
                } else if let Some(e) = self.groups.get_mut(&group) {
                    for k in remove {
                        e.offsets.remove(&k);
                    }
                }
                out.push((dest, GroupRes::OffsetDelete(res)));
            }
            Waiter::Txn(w) => self.finish_txn(w, ok, out),
        }
    }

    /// Start this turn's offsets writes.
    pub fn flush(&mut self, io: &mut Io) {
        self.log.flush(io);
    }

    /// A completion of an offsets file operation.
    pub fn on_completion(&mut self, c: Completion, io: &mut Io) {
        let mut done = Vec::new();
        self.log.on_completion(c, io, &mut done);
        let wrote = !done.is_empty();
        let mut out = std::mem::take(&mut self.replies);
        for (w, ok) in done {
            self.finish(w, ok, &mut out);
        }
        self.replies = out;
        // Between two writes is when a busy file can be rewritten.
        if wrote {
            self.rewrite_due(io);
        }
    }

    pub(super) fn rewrite_due(&mut self, io: &mut Io) {
        for p in self.log.rewrites_due() {
            let snap = self.snapshot(p);
            self.log.start_rewrite(p, snap, io);
        }
    }

    /// Every live offset of partition `p`'s groups, as records.
    fn snapshot(&self, p: u32) -> Vec<u8> {
        let mut b = Vec::new();
        for (id, e) in self.groups.iter().filter(|(_, e)| e.part == p) {
            for ((topic, partition), c) in &e.offsets {
                store::encode(&commit_record(id, topic, *partition, c), &mut b);
            }
        }
        self.snapshot_txn(p, &mut b);
        b
    }
}

/// A commit's answer, OffsetCommit's or TxnOffsetCommit's, once its write is done: the
/// offsets it wrote fail COORDINATOR_NOT_AVAILABLE if the write did.
pub(super) fn commit_answer(mut errors: Vec<i16>, ok: bool) -> GroupRes {
    if !ok {
        for e in errors.iter_mut().filter(|e| **e == err::NONE) {
            *e = err::COORDINATOR_NOT_AVAILABLE;
        }
    }
    GroupRes::Commit(errors)
}
