//! Transactions on the group coordinator: the transaction coordinator's seam (its
//! requests, records and timer run through this shard's `Groups`, see `kafka/txn/`), and
//! offsets staged by transactions (TxnOffsetCommit).
//!
//! A staged offset is written to the group's offsets file as a `TxnRecord::Offset` and held
//! apart, per (group, producer id), invisible to OffsetFetch. The transaction's marker for
//! the group (`GroupOp::TxnMarker`, from the marker flight) is written after them: on
//! COMMIT the staged offsets become the group's committed offsets, on ABORT they are
//! dropped. Replaying a file in order therefore rebuilds both what is committed and what
//! is still staged by a transaction that has not ended.

use super::offsets::offset_error;
use super::ops::{CommitOffset, GroupRes, TxnCommitReq};
use super::store::{self, Record};
use super::writes::commit_answer;
use super::{err, partition_for, Committed, GroupCtx, Groups, Waiter};
use crate::kafka::txn::ops::TxnOp;
use crate::kafka::txn::record::TxnRecord;
use crate::kafka::txn::Effect;
use crate::limits::GROUP_OFFSETS_MAX;
use crate::txn::Dest;

/// Offsets staged by open transactions: by (group, producer id), each (topic, partition)
/// with its offset, in request order.
pub(super) type Staged = std::collections::HashMap<(String, i64), Vec<((String, i32), Committed)>>;

/// A transaction's request waiting for its records to be durable (`Waiter::Txn`).
pub(super) enum TxnWaiter {
    /// The transaction coordinator's (`kafka/txn/`).
    Coordinator(crate::kafka::txn::Waiter),
    /// TxnOffsetCommit: offsets to stage.
    Commit {
        dest: Dest,
        group: String,
        pid: i64,
        errors: Vec<i16>,
        apply: Vec<((String, i32), Committed)>,
    },
    /// A transaction's end for a group.
    Marker {
        dest: Dest,
        group: String,
        pid: i64,
        commit: bool,
    },
}

impl Groups {
    /// A transaction coordinator request.
    pub(super) fn txn_exec(
        &mut self,
        op: TxnOp,
        dest: Dest,
        ctx: &mut GroupCtx,
        out: &mut Vec<(Dest, GroupRes)>,
    ) {
        let mut effects = Vec::new();
        self.txns
            .exec(op, dest, ctx.now_ms, ctx.topics, &mut effects);
        self.txn_effects(effects, out);
    }

    fn txn_effects(&mut self, effects: Vec<Effect>, out: &mut Vec<(Dest, GroupRes)>) {
        for e in effects {
            match e {
                Effect::Reply(dest, res) => out.push((dest, GroupRes::Txn(res))),
                Effect::Append(part, bytes, w) => {
                    let w = Waiter::Txn(TxnWaiter::Coordinator(w));
                    self.append(part, |b| b.extend_from_slice(&bytes), w, out);
                }
            }
        }
    }

    /// The transaction coordinator's timer (from the shard's tick).
    pub(super) fn txn_tick(&mut self, now_ms: u64, out: &mut Vec<(Dest, GroupRes)>) {
        let mut effects = Vec::new();
        self.txns.tick(now_ms, &mut effects);
        self.txn_effects(effects, out);
    }

    /// TxnOffsetCommit: stage the offsets (durably) until the transaction ends.
    pub(super) fn txn_commit(
        &mut self,
        req: TxnCommitReq,
        dest: Dest,
        ctx: &mut GroupCtx,
        out: &mut Vec<(Dest, GroupRes)>,
    ) {
        let n = req.offsets.len();
        let all = |e: i16| GroupRes::Commit(vec![e; n]);
        if req.group.is_empty() {
            return out.push((dest, all(err::INVALID_GROUP_ID)));
        }
        if self.draining {
            return out.push((dest, all(err::NOT_COORDINATOR)));
        }
        // A consumer that names its generation (v3+) must be a member of it.
        if req.generation >= 0 {
            let check = match self.groups.get_mut(&req.group) {
                Some(e) => e.group.check_commit(
                    req.generation,
                    &req.member,
                    req.instance.as_deref(),
                    ctx.now,
                ),
                None => Err(err::ILLEGAL_GENERATION),
            };
            if let Err(code) = check {
                return out.push((dest, all(code)));
            }
        }
        let key = (req.group.clone(), req.pid);
        let held = self.staged.get(&key).map_or(0, Vec::len);
        let mut errors = Vec::with_capacity(n);
        let mut apply = Vec::new();
        let mut bytes = Vec::new();
        for CommitOffset {
            topic,
            partition,
            offset,
            leader_epoch,
            metadata,
        } in req.offsets
        {
            let metadata = metadata.unwrap_or_default();
            let full = held + apply.len() >= GROUP_OFFSETS_MAX;
            let error = offset_error(ctx.topics, &topic, partition, &metadata, full);
            errors.push(error);
            if error != err::NONE {
                continue;
            }
            let c = Committed {
                offset,
                leader_epoch,
                metadata,
                commit_ms: ctx.now_ms as i64,
            };
            let rec = staged_record(&req.group, req.pid, &topic, partition, &c);
            store::encode(&Record::Txn(rec), &mut bytes);
            apply.push(((topic, partition), c));
        }
        if apply.is_empty() {
            return out.push((dest, GroupRes::Commit(errors)));
        }
        let w = Waiter::Txn(TxnWaiter::Commit {
            dest,
            group: req.group,
            pid: req.pid,
            errors,
            apply,
        });
        let part = partition_for(&key.0);
        self.append(part, |b| b.extend_from_slice(&bytes), w, out);
    }

    /// A transaction of `pid` ended: its staged offsets for `group` are committed or
    /// dropped, once the marker is durable.
    pub(super) fn txn_marker(
        &mut self,
        group: String,
        pid: i64,
        commit: bool,
        dest: Dest,
        out: &mut Vec<(Dest, GroupRes)>,
    ) {
        if !self.staged.contains_key(&(group.clone(), pid)) {
            return out.push((dest, GroupRes::Error(err::NONE)));
        }
        let mut bytes = Vec::new();
        let rec = TxnRecord::Marker {
            group: group.clone(),
            pid,
            commit,
        };
        store::encode(&Record::Txn(rec), &mut bytes);
        let part = partition_for(&group);
        let w = Waiter::Txn(TxnWaiter::Marker {
            dest,
            group,
            pid,
            commit,
        });
        self.append(part, |b| b.extend_from_slice(&bytes), w, out);
    }

    /// Whether an open transaction staged an offset for `group`'s `topic`/`partition`.
    pub(super) fn unstable(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.staged.iter().any(|((g, _), offsets)| {
            g == group
                && offsets
                    .iter()
                    .any(|((t, p), _)| t == topic && *p == partition)
        })
    }

    /// The end of a staged transaction: commit its offsets into the group, or drop them.
    fn end_staged(&mut self, group: &str, pid: i64, commit: bool) {
        let Some(offsets) = self.staged.remove(&(group.to_string(), pid)) else {
            return;
        };
        if commit {
            self.entry(group).offsets.extend(offsets);
        }
    }

    /// A transaction record replayed at start-up.
    pub(super) fn replay_txn(&mut self, t: TxnRecord) {
        match t {
            TxnRecord::State(s) => self.txns.replay(s),
            TxnRecord::Offset {
                group,
                pid,
                topic,
                partition,
                offset,
                leader_epoch,
                metadata,
                commit_ms,
            } => {
                let c = Committed {
                    offset,
                    leader_epoch,
                    metadata,
                    commit_ms,
                };
                self.staged
                    .entry((group, pid))
                    .or_default()
                    .push(((topic, partition), c));
            }
            TxnRecord::Marker { group, pid, commit } => self.end_staged(&group, pid, commit),
        }
    }

    /// A transaction request's records are durable (`ok`) or could not be written.
    pub(super) fn finish_txn(&mut self, w: TxnWaiter, ok: bool, out: &mut Vec<(Dest, GroupRes)>) {
        match w {
            TxnWaiter::Coordinator(w) => {
                if let Some((dest, res)) = self.txns.finish(w, ok) {
                    out.push((dest, GroupRes::Txn(res)));
                }
            }
            TxnWaiter::Commit {
                dest,
                group,
                pid,
                errors,
                apply,
            } => {
                if ok {
                    self.staged.entry((group, pid)).or_default().extend(apply);
                }
                out.push((dest, commit_answer(errors, ok)));
            }
            TxnWaiter::Marker {
                dest,
                group,
                pid,
                commit,
            } => {
                let e = if ok {
                    self.end_staged(&group, pid, commit);
                    err::NONE
                } else {
                    err::COORDINATOR_NOT_AVAILABLE
                };
                out.push((dest, GroupRes::Error(e)));
            }
        }
    }

    /// The transaction records of partition `p` that a rewrite keeps: its transactional
    /// ids' states and the offsets its groups' open transactions staged.
    pub(super) fn snapshot_txn(&self, p: u32, b: &mut Vec<u8>) {
        self.txns.snapshot(p, b);
        for ((group, pid), offsets) in &self.staged {
            if partition_for(group) != p {
                continue;
            }
            for ((topic, partition), c) in offsets {
                let rec = staged_record(group, *pid, topic, *partition, c);
                store::encode(&Record::Txn(rec), b);
            }
        }
    }
}

/// The record of an offset staged by producer `pid`'s transaction (a TxnOffsetCommit's,
/// or a rewrite's snapshot's).
fn staged_record(group: &str, pid: i64, topic: &str, partition: i32, c: &Committed) -> TxnRecord {
    TxnRecord::Offset {
        group: group.to_string(),
        pid,
        topic: topic.to_string(),
        partition,
        offset: c.offset,
        leader_epoch: c.leader_epoch,
        metadata: c.metadata.clone(),
        commit_ms: c.commit_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::super::ops::{FetchReq, Fetched};
    use super::*;
    use crate::config::Config;
    use crate::mesh::SlotTable;
    use clap::Parser;

    fn groups(tag: &str) -> Groups {
        let dir =
            std::env::temp_dir().join(format!("pinion-txn-offsets-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cfg = Config::parse_from(["pinion", "--data-dir", dir.to_str().expect("utf-8")]);
        Groups::recover(&cfg, 0, &SlotTable::new(1), 0).expect("recover")
    }

    fn offset(pid: i64, partition: i32, offset: i64) -> Record {
        Record::Txn(TxnRecord::Offset {
            group: "g".into(),
            pid,
            topic: "t".into(),
            partition,
            offset,
            leader_epoch: -1,
            metadata: String::new(),
            commit_ms: 1,
        })
    }

    fn marker(pid: i64, commit: bool) -> Record {
        Record::Txn(TxnRecord::Marker {
            group: "g".into(),
            pid,
            commit,
        })
    }

    fn fetched(g: &Groups, stable: bool) -> Vec<(i64, i16)> {
        let req = FetchReq {
            group: "g".into(),
            topics: Some(vec![("t".into(), vec![0, 1])]),
            require_stable: stable,
        };
        g.fetch(&req).topics[0]
            .1
            .iter()
            .map(|f: &Fetched| (f.offset, f.error))
            .collect()
    }

    #[test]
    fn staged_offsets_are_invisible_until_the_commit_marker_and_survive_a_rewrite() {
        let mut g = groups("stage");
        g.replay(offset(7, 0, 10));
        g.replay(offset(7, 1, 11));
        // Not committed; a stable fetch is told to wait.
        assert_eq!(fetched(&g, false), vec![(-1, 0), (-1, 0)]);
        let unstable = err::UNSTABLE_OFFSET_COMMIT;
        assert_eq!(fetched(&g, true), vec![(-1, unstable), (-1, unstable)]);
        // A rewrite keeps what is staged: replayed into a fresh coordinator, it is the same.
        let mut snap = Vec::new();
        g.snapshot_txn(partition_for("g"), &mut snap);
        let (recs, _) = store::decode_all(&snap);
        let mut h = groups("rewrite");
        for r in recs {
            h.replay(r);
        }
        assert_eq!(fetched(&h, true), vec![(-1, unstable), (-1, unstable)]);
        // COMMIT makes them the group's offsets.
        h.replay(marker(7, true));
        assert_eq!(fetched(&h, true), vec![(10, 0), (11, 0)]);
        // ABORT drops another producer's.
        h.replay(offset(8, 0, 20));
        assert_eq!(fetched(&h, true)[0], (-1, unstable));
        h.replay(marker(8, false));
        assert_eq!(fetched(&h, true), vec![(10, 0), (11, 0)]);
        assert!(h.staged.is_empty());
    }
}
