//! The marker flight: the second phase of a transaction's two-phase commit, started by
//! the coordinator shard once the transaction's PREPARE record is durable (after EndTxn,
//! a fencing InitProducerId, a timeout, or at recovery).
//!
//! Hop 1: a COMMIT or ABORT control batch to every partition of the transaction, each on
//! its owner shard (`LogOp::TxnMarker`, acknowledged once durable like any produce), and
//! the end of the transaction's staged offsets to every group's coordinator
//! (`GroupOp::TxnMarker`). Parts that failed (a storage error) are run again after
//! [`TXN_MARKER_RETRY`] until they succeed; a partition that no longer exists needs no
//! marker. Hop 2: the coordinator logs the transaction complete. Nobody waits for the
//! reply: the flight answers no connection.

use std::time::Instant;

use super::ops::TxnOp;
use super::Drive;
use crate::kafka::groups::coordinator;
use crate::kafka::groups::ops::{GroupOp, GroupRes};
use crate::limits::TXN_MARKER_RETRY;
use crate::log::ops::{LogOp, LogResult};
use crate::log::topics::partition_slot;
use crate::mesh::SlotTable;
use crate::proto::kafka::ErrorCode;
use crate::txn::{Op, Res, Rounds, Step};

pub struct MarkerRounds {
    /// Parts not yet done (none sent yet: `sent` is false).
    pending: Vec<(usize, Op)>,
    sent: bool,
    complete: Option<(usize, Op)>,
    /// The `markers` crash point: only the first marker was sent.
    cut: bool,
}

/// The flight that writes `d`'s markers, for the shards `owner` maps.
pub fn markers(d: Drive, owner: &SlotTable) -> MarkerRounds {
    let mut pending = Vec::new();
    if d.begin {
        // An open transaction announced to its partitions again (recovery): no markers,
        // nothing to complete.
        for (topic, partition) in d.partitions {
            let shard = owner.shard(partition_slot(&topic, partition));
            let op = LogOp::TxnBegin {
                topic,
                partition,
                pid: d.pid,
                epoch: d.epoch,
            };
            pending.push((shard, Op::Log(op)));
        }
        return MarkerRounds {
            pending,
            sent: false,
            complete: None,
            cut: false,
        };
    }
    for (topic, partition) in d.partitions {
        let shard = owner.shard(partition_slot(&topic, partition));
        let op = LogOp::TxnMarker {
            topic,
            partition,
            pid: d.pid,
            epoch: d.epoch,
            commit: d.commit,
        };
        pending.push((shard, Op::Log(op)));
    }
    for group in d.groups {
        let shard = coordinator(owner, &group);
        let op = GroupOp::TxnMarker {
            group,
            pid: d.pid,
            commit: d.commit,
        };
        pending.push((shard, Op::Group(Box::new(op))));
    }
    let home = coordinator(owner, &d.id);
    let complete = GroupOp::Txn(Box::new(TxnOp::Complete {
        id: d.id,
        pid: d.pid,
        epoch: d.epoch,
        commit: d.commit,
    }));
    MarkerRounds {
        pending,
        sent: false,
        complete: Some((home, Op::Group(Box::new(complete)))),
        cut: false,
    }
}

impl MarkerRounds {
    /// The shards of the first hop (what it needs room for).
    pub fn first_shards(&self) -> Vec<usize> {
        if self.pending.is_empty() {
            self.complete.iter().map(|(s, _)| *s).collect()
        } else {
            self.pending.iter().map(|(s, _)| *s).collect()
        }
    }
}

/// Whether a marker part is done: durable, or nothing to mark (the partition is gone).
fn done(r: Res) -> bool {
    match r {
        Res::Log(LogResult::Produced { error, .. } | LogResult::Created { error }) => {
            error == 0 || error == ErrorCode::UnknownTopicOrPartition.code()
        }
        Res::Group(g) => matches!(*g, GroupRes::Error(0)),
        _ => false,
    }
}

impl Rounds for MarkerRounds {
    fn next(&mut self, results: Vec<Res>, _now: Instant) -> Step {
        if self.cut {
            super::crash_point("markers");
        }
        if !self.sent {
            self.sent = true;
            if self.pending.len() > 1 && self.complete.is_some() && super::crash_armed("markers") {
                self.cut = true;
                return Step::Hop {
                    parts: self.pending[..1].to_vec(),
                    last: false,
                };
            }
            if !self.pending.is_empty() {
                return Step::Hop {
                    parts: self.pending.clone(),
                    last: false,
                };
            }
        } else if !self.pending.is_empty() {
            let sent = std::mem::take(&mut self.pending);
            self.pending = sent
                .into_iter()
                .zip(results)
                .filter_map(|(p, r)| (!done(r)).then_some(p))
                .collect();
            if !self.pending.is_empty() {
                tracing::warn!(
                    parts = self.pending.len(),
                    "transaction markers failed; retrying"
                );
                return Step::Again {
                    parts: self.pending.clone(),
                    after: TXN_MARKER_RETRY,
                };
            }
        }
        match self.complete.take() {
            Some(part) => Step::Hop {
                parts: vec![part],
                last: false,
            },
            None => Step::Reply(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn produced(error: i16) -> Res {
        Res::Log(LogResult::Produced {
            error,
            base_offset: 0,
            log_start: 0,
        })
    }

    #[test]
    fn markers_then_complete_retrying_only_what_failed() {
        let owner = SlotTable::new(2);
        let d = Drive {
            id: "tx".into(),
            pid: 9,
            epoch: 2,
            commit: true,
            partitions: vec![("a".into(), 0), ("a".into(), 1), ("gone".into(), 0)],
            groups: vec!["g".into()],
            begin: false,
        };
        let mut r = markers(d, &owner);
        let now = Instant::now();
        let Step::Hop { parts, .. } = r.next(Vec::new(), now) else {
            panic!("the markers first")
        };
        assert_eq!(parts.len(), 4);
        assert!(matches!(
            &parts[0].1,
            Op::Log(LogOp::TxnMarker {
                pid: 9,
                epoch: 2,
                commit: true,
                ..
            })
        ));
        assert!(matches!(&parts[3].1, Op::Group(g) if matches!(**g, GroupOp::TxnMarker { .. })));
        // One partition's write failed, one partition is gone: only the failed one again.
        let storage = ErrorCode::KafkaStorageError.code();
        let gone = ErrorCode::UnknownTopicOrPartition.code();
        let results = vec![
            produced(0),
            produced(storage),
            produced(gone),
            Res::Group(Box::new(GroupRes::Error(0))),
        ];
        let Step::Again { parts, after } = r.next(results, now) else {
            panic!("a retry")
        };
        assert_eq!((parts.len(), after), (1, TXN_MARKER_RETRY));
        assert!(matches!(
            &parts[0].1,
            Op::Log(LogOp::TxnMarker { partition: 1, .. })
        ));
        // Done: the coordinator logs the transaction complete, then nobody is answered.
        let Step::Hop { parts, .. } = r.next(vec![produced(0)], now) else {
            panic!("the completion")
        };
        assert_eq!(parts[0].0, coordinator(&owner, "tx"));
        assert!(matches!(&parts[0].1, Op::Group(g)
            if matches!(**g, GroupOp::Txn(ref t) if matches!(**t, TxnOp::Complete { commit: true, .. }))));
        assert!(matches!(
            r.next(vec![Res::Group(Box::new(GroupRes::Error(0)))], now),
            Step::Reply(ref b) if b.is_empty()
        ));
    }

    #[test]
    fn a_transaction_with_nothing_to_mark_completes_at_once() {
        let owner = SlotTable::new(2);
        let d = Drive {
            id: "tx".into(),
            pid: 1,
            epoch: 0,
            commit: false,
            partitions: Vec::new(),
            groups: Vec::new(),
            begin: false,
        };
        let mut r = markers(d, &owner);
        assert_eq!(r.first_shards(), vec![coordinator(&owner, "tx")]);
        let Step::Hop { parts, .. } = r.next(Vec::new(), Instant::now()) else {
            panic!("the completion")
        };
        assert_eq!(parts.len(), 1);
    }
}
