//! The coordinator's state machine, without I/O: every request's answer and record, and
//! the marker flights it asks for.

use super::*;
use crate::log::topics::TopicMeta;
use crate::txn::{FlightRef, PartRef};

fn dest(n: u32) -> Dest {
    Dest {
        shard: 0,
        to: PartRef {
            flight: FlightRef { id: n, gen: 0 },
            part: 0,
        },
    }
}

fn topics() -> BTreeMap<String, TopicMeta> {
    let mut t = BTreeMap::new();
    let config = crate::log::topics::TopicConfig {
        segment_bytes: 1 << 20,
        segment_ms: 0,
        retention_bytes: None,
        retention_ms: None,
        max_message_bytes: 1 << 20,
        cleanup: crate::log::topics::Cleanup::Delete,
    };
    let m = TopicMeta {
        name: "out".into(),
        partitions: 2,
        config,
        set: BTreeMap::new(),
        epoch: 0,
    };
    t.insert("out".to_string(), m);
    t
}

/// Run `op` and make every record durable: the answer.
fn run(t: &mut Txns, op: TxnOp, now_ms: u64) -> TxnRes {
    let mut out = Vec::new();
    t.exec(op, dest(1), now_ms, &topics(), &mut out);
    settle(t, out).pop().expect("an answer")
}

fn settle(t: &mut Txns, out: Vec<Effect>) -> Vec<TxnRes> {
    let mut answers = Vec::new();
    for e in out {
        match e {
            Effect::Reply(_, r) => answers.push(r),
            Effect::Append(_, bytes, w) => {
                // The record decodes as what the state now is.
                let (recs, used) = store::decode_all(&bytes);
                assert_eq!(used, bytes.len());
                assert!(matches!(recs[..], [Record::Txn(TxnRecord::State(_))]));
                if let Some((_, r)) = t.finish(w, true) {
                    answers.push(r);
                }
            }
        }
    }
    answers
}

fn init(t: &mut Txns, id: &str) -> (i64, i16) {
    let op = TxnOp::Init {
        id: id.into(),
        timeout_ms: 60_000,
        pid: -1,
        epoch: -1,
    };
    match run(t, op, 1_000) {
        TxnRes::Init {
            error: 0,
            pid,
            epoch,
        } => (pid, epoch),
        other => panic!("init answered {other:?}"),
    }
}

fn add(t: &mut Txns, id: &str, pid: i64, epoch: i16) -> TxnRes {
    let op = TxnOp::AddPartitions {
        id: id.into(),
        pid,
        epoch,
        partitions: vec![("out".into(), 0), ("out".into(), 1)],
    };
    run(t, op, 2_000)
}

fn end(t: &mut Txns, id: &str, pid: i64, epoch: i16, commit: bool) -> TxnRes {
    let op = TxnOp::End {
        id: id.into(),
        pid,
        epoch,
        commit,
    };
    run(t, op, 3_000)
}

fn complete(t: &mut Txns, d: &Drive) -> TxnRes {
    let op = TxnOp::Complete {
        id: d.id.clone(),
        pid: d.pid,
        epoch: d.epoch,
        commit: d.commit,
    };
    run(t, op, 4_000)
}

fn phase(t: &Txns, id: &str) -> Phase {
    t.txns[id].phase
}

#[test]
fn commit_goes_through_prepare_markers_and_complete() {
    let mut t = Txns::new(0);
    let (pid, epoch) = init(&mut t, "tx");
    assert!(pid >= 1 << 62);
    assert_eq!(epoch, 0);
    assert_eq!(add(&mut t, "tx", pid, epoch), TxnRes::Added(vec![0, 0]));
    assert_eq!(phase(&t, "tx"), Phase::Ongoing);
    assert!(t.take_drives().is_empty());
    assert_eq!(end(&mut t, "tx", pid, epoch, true), TxnRes::Error(0));
    assert_eq!(phase(&t, "tx"), Phase::PrepareCommit);
    let d = t.take_drives();
    assert_eq!(d.len(), 1);
    assert!(d[0].commit);
    assert_eq!(d[0].partitions, vec![("out".into(), 0), ("out".into(), 1)]);
    // Until the markers are written, the producer is told to wait.
    assert_eq!(
        add(&mut t, "tx", pid, epoch),
        TxnRes::Added(vec![err::CONCURRENT_TRANSACTIONS; 2])
    );
    assert_eq!(
        end(&mut t, "tx", pid, epoch, true),
        TxnRes::Error(err::CONCURRENT_TRANSACTIONS)
    );
    assert_eq!(complete(&mut t, &d[0]), TxnRes::Error(0));
    assert_eq!(phase(&t, "tx"), Phase::CompleteCommit);
    // A retried EndTxn of the same outcome succeeds; the other outcome is refused.
    assert_eq!(end(&mut t, "tx", pid, epoch, true), TxnRes::Error(0));
    assert_eq!(
        end(&mut t, "tx", pid, epoch, false),
        TxnRes::Error(err::INVALID_TXN_STATE)
    );
    // The next transaction of the same producer.
    assert_eq!(add(&mut t, "tx", pid, epoch), TxnRes::Added(vec![0, 0]));
    assert_eq!(end(&mut t, "tx", pid, epoch, false), TxnRes::Error(0));
    assert!(!t.take_drives()[0].commit);
}

#[test]
fn a_new_producer_fences_the_old_one_and_aborts_its_transaction() {
    let mut t = Txns::new(0);
    let (pid, e0) = init(&mut t, "tx");
    add(&mut t, "tx", pid, e0);
    // The new instance: the open transaction is aborted under a new epoch first.
    let op = TxnOp::Init {
        id: "tx".into(),
        timeout_ms: 60_000,
        pid: -1,
        epoch: -1,
    };
    let r = run(&mut t, op.clone(), 5_000);
    assert!(matches!(
        r,
        TxnRes::Init {
            error: err::CONCURRENT_TRANSACTIONS,
            ..
        }
    ));
    let d = t.take_drives();
    assert_eq!((d.len(), d[0].commit, d[0].epoch), (1, false, e0 + 1));
    complete(&mut t, &d[0]);
    assert_eq!(phase(&t, "tx"), Phase::CompleteAbort);
    let r = run(&mut t, op, 6_000);
    assert_eq!(
        r,
        TxnRes::Init {
            error: 0,
            pid,
            epoch: e0 + 2
        }
    );
    // The zombie is fenced everywhere.
    assert_eq!(
        add(&mut t, "tx", pid, e0),
        TxnRes::Added(vec![err::PRODUCER_FENCED; 2])
    );
    assert_eq!(
        end(&mut t, "tx", pid, e0, true),
        TxnRes::Error(err::PRODUCER_FENCED)
    );
    assert_eq!(
        err::fenced_for(err::PRODUCER_FENCED, 1, 2),
        err::INVALID_PRODUCER_EPOCH
    );
    assert_eq!(
        err::fenced_for(err::PRODUCER_FENCED, 2, 2),
        err::PRODUCER_FENCED
    );
    // Unknown ids and producer ids.
    assert_eq!(
        end(&mut t, "nope", pid, 0, true),
        TxnRes::Error(err::INVALID_PRODUCER_ID_MAPPING)
    );
    assert_eq!(
        end(&mut t, "tx", pid + 1, e0 + 2, true),
        TxnRes::Error(err::INVALID_PRODUCER_ID_MAPPING)
    );
}

#[test]
fn timeouts_abort_and_recovery_resumes_prepared_transactions() {
    let mut t = Txns::new(0);
    let (pid, e) = init(&mut t, "slow");
    add(&mut t, "slow", pid, e); // begins at 2_000, times out after 60 s
    let mut out = Vec::new();
    t.tick(30_000, &mut out);
    assert!(out.is_empty());
    t.take_drives();
    t.tick(62_001, &mut out);
    settle(&mut t, out);
    assert_eq!(phase(&t, "slow"), Phase::PrepareAbort);
    let d = t.take_drives();
    assert_eq!((d[0].commit, d[0].epoch), (false, e + 1));
    assert_eq!(
        end(&mut t, "slow", pid, e, true),
        TxnRes::Error(err::PRODUCER_FENCED)
    );
    // Replaying the records into a fresh coordinator resumes the prepared transaction.
    let mut snap = Vec::new();
    t.snapshot(partition_for("slow"), &mut snap);
    let (recs, _) = store::decode_all(&snap);
    let mut r = Txns::new(0);
    for rec in recs {
        if let Record::Txn(TxnRecord::State(s)) = rec {
            r.replay(s);
        }
    }
    let mut out = Vec::new();
    r.tick(62_002, &mut out);
    assert_eq!(r.take_drives(), d);
    complete(&mut r, &d[0]);
    assert_eq!(phase(&r, "slow"), Phase::CompleteAbort);
}

#[test]
fn recovery_announces_open_transactions_to_their_partitions_again() {
    let mut t = Txns::new(0);
    let (pid, e) = init(&mut t, "open");
    add(&mut t, "open", pid, e);
    let mut snap = Vec::new();
    t.snapshot(partition_for("open"), &mut snap);
    let mut r = Txns::new(0);
    for rec in store::decode_all(&snap).0 {
        if let Record::Txn(TxnRecord::State(s)) = rec {
            r.replay(s);
        }
    }
    let mut out = Vec::new();
    r.tick(3_000, &mut out);
    let d = r.take_drives();
    assert_eq!(d.len(), 1);
    assert!(d[0].begin && d[0].partitions.len() == 2 && d[0].epoch == e);
    // Only once.
    r.tick(3_100, &mut out);
    assert!(r.take_drives().is_empty());
}

#[test]
fn bad_requests_are_refused() {
    let mut t = Txns::new(0);
    let op = |timeout_ms| TxnOp::Init {
        id: "x".into(),
        timeout_ms,
        pid: -1,
        epoch: -1,
    };
    for bad in [0, -1, TXN_TIMEOUT_MS_MAX + 1] {
        assert!(matches!(
            run(&mut t, op(bad), 0),
            TxnRes::Init {
                error: err::INVALID_TRANSACTION_TIMEOUT,
                ..
            }
        ));
    }
    let (pid, e) = init(&mut t, "x");
    let op = TxnOp::AddPartitions {
        id: "x".into(),
        pid,
        epoch: e,
        partitions: vec![("out".into(), 0), ("missing".into(), 0), ("out".into(), 9)],
    };
    assert_eq!(
        run(&mut t, op, 0),
        TxnRes::Added(vec![
            err::OPERATION_NOT_ATTEMPTED,
            err::UNKNOWN_TOPIC_OR_PARTITION,
            err::UNKNOWN_TOPIC_OR_PARTITION
        ])
    );
    // EndTxn with nothing begun.
    assert_eq!(
        end(&mut t, "x", pid, e, true),
        TxnRes::Error(err::INVALID_TXN_STATE)
    );
    // A failed write answers COORDINATOR_NOT_AVAILABLE and starts no flight.
    let mut out = Vec::new();
    let op = TxnOp::AddOffsets {
        id: "x".into(),
        pid,
        epoch: e,
        group: "g".into(),
    };
    t.exec(op, dest(2), 0, &topics(), &mut out);
    let Some(Effect::Append(_, _, w)) = out.pop() else {
        panic!("a record to write")
    };
    assert_eq!(
        t.finish(w, false).map(|(_, r)| r),
        Some(TxnRes::Error(err::COORDINATOR_NOT_AVAILABLE))
    );
}
