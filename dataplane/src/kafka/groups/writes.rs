//! The coordinator's writes: a request whose records were appended to an offsets file
//! waits as a [`Waiter`] until the write is durable (or failed), then it is applied and
//! answered ([`Groups::finish`]). Also the turn's flush, the files' completions, and the
//! rewrite of a file that grew, from a snapshot of its live records.

use super::ops::{GroupRes, OffsetDeleteRes};
use super::store::{self, Record};
use super::{err, Committed, Entry, Groups};
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
    // Transactions (`txn_offsets.rs`).
    Txn(crate::kafka::txn::Waiter),
    TxnCommit {
        dest: Dest,
        group: String,
        pid: i64,
        errors: Vec<i16>,
        apply: Vec<((String, i32), Committed)>,
    },
    TxnMarker {
        dest: Dest,
        group: String,
        pid: i64,
        commit: bool,
    },
}

impl Groups {
    /// A request's records are durable (`ok`) or could not be written: apply and answer.
    pub(super) fn finish(&mut self, w: Waiter, ok: bool, out: &mut Vec<(Dest, GroupRes)>) {
        match w {
            Waiter::Commit {
                dest,
                group,
                mut errors,
                apply,
            } => {
                if ok {
                    let e = self
                        .groups
                        .entry(group.clone())
                        .or_insert_with(|| Entry::new(&group));
                    e.offsets.extend(apply);
                } else {
                    for e in errors.iter_mut().filter(|e| **e == err::NONE) {
                        *e = err::COORDINATOR_NOT_AVAILABLE;
                    }
                }
                out.push((dest, GroupRes::Commit(errors)));
            }
            Waiter::Delete {
                batch,
                index,
                group,
            } => {
                if ok {
                    // The record is durable: the offsets are gone; a group that gained
                    // members meanwhile keeps them.
                    if let Some(e) = self.groups.get_mut(&group) {
                        e.offsets.clear();
                        if e.group.is_empty() {
                            self.groups.remove(&group);
                        }
                    }
                }
                if let Some(d) = self.deletes.get_mut(&batch) {
                    if !ok {
                        d.errors[index] = err::COORDINATOR_NOT_AVAILABLE;
                    }
                    d.left -= 1;
                }
                self.deletes_done(batch, out);
            }
            Waiter::OffsetDelete {
                dest,
                group,
                mut res,
                remove,
            } => {
                if !ok {
                    res = OffsetDeleteRes {
                        error: err::COORDINATOR_NOT_AVAILABLE,
                        partitions: Vec::new(),
                    };
                } else if let Some(e) = self.groups.get_mut(&group) {
                    for k in remove {
                        e.offsets.remove(&k);
                    }
                }
                out.push((dest, GroupRes::OffsetDelete(res)));
            }
            w @ (Waiter::Txn(_) | Waiter::TxnCommit { .. } | Waiter::TxnMarker { .. }) => {
                self.finish_txn(w, ok, out)
            }
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
                store::encode(
                    &Record::Commit {
                        group: id.clone(),
                        topic: topic.clone(),
                        partition: *partition,
                        offset: c.offset,
                        leader_epoch: c.leader_epoch,
                        metadata: c.metadata.clone(),
                        commit_ms: c.commit_ms,
                    },
                    &mut b,
                );
            }
        }
        self.snapshot_txn(p, &mut b);
        b
    }
}
