//! The transaction log's records. They are records of the coordinator shard's offsets
//! files (`kafka/groups/store.rs`, kind `TXN`): Kafka's `__transaction_state` has 50
//! partitions mapped by the same hash as `__consumer_offsets`, so a transactional id's
//! partition is written by the same shard, through the same CRC-32C framing, one write
//! and one fdatasync per turn, the same recovery (a torn tail is cut) and the same
//! rewrite (the live state goes into the snapshot).
//!
//! - [`TxnRecord::State`]: a transactional id's state after a transition (the whole
//!   state, so replay keeps the last one);
//! - [`TxnRecord::Offset`]: an offset a transaction staged for a group (TxnOffsetCommit),
//!   in the group's file, visible only once that producer's COMMIT marker follows;
//! - [`TxnRecord::Marker`]: the end of a producer's transaction for a group: its staged
//!   offsets are committed or dropped.

use crate::kafka::groups::store::{put_str, Body};

/// A transactional id's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub id: String,
    pub pid: i64,
    pub epoch: i16,
    /// `state::Phase` as a byte.
    pub phase: u8,
    pub timeout_ms: i32,
    pub start_ms: i64,
    pub partitions: Vec<(String, i32)>,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnRecord {
    State(State),
    Offset {
        group: String,
        pid: i64,
        topic: String,
        partition: i32,
        offset: i64,
        leader_epoch: i32,
        metadata: String,
        commit_ms: i64,
    },
    Marker {
        group: String,
        pid: i64,
        commit: bool,
    },
}

const STATE: u8 = 1;
const OFFSET: u8 = 2;
const MARKER: u8 = 3;

impl TxnRecord {
    /// The record's body (after the store's kind byte).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            TxnRecord::State(s) => {
                out.push(STATE);
                put_str(out, &s.id);
                out.extend_from_slice(&s.pid.to_be_bytes());
                out.extend_from_slice(&s.epoch.to_be_bytes());
                out.push(s.phase);
                out.extend_from_slice(&s.timeout_ms.to_be_bytes());
                out.extend_from_slice(&s.start_ms.to_be_bytes());
                out.extend_from_slice(&(s.partitions.len() as u32).to_be_bytes());
                for (t, p) in &s.partitions {
                    put_str(out, t);
                    out.extend_from_slice(&p.to_be_bytes());
                }
                out.extend_from_slice(&(s.groups.len() as u32).to_be_bytes());
                for g in &s.groups {
                    put_str(out, g);
                }
            }
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
                out.push(OFFSET);
                put_str(out, group);
                out.extend_from_slice(&pid.to_be_bytes());
                put_str(out, topic);
                out.extend_from_slice(&partition.to_be_bytes());
                out.extend_from_slice(&offset.to_be_bytes());
                out.extend_from_slice(&leader_epoch.to_be_bytes());
                put_str(out, metadata);
                out.extend_from_slice(&commit_ms.to_be_bytes());
            }
            TxnRecord::Marker { group, pid, commit } => {
                out.push(MARKER);
                put_str(out, group);
                out.extend_from_slice(&pid.to_be_bytes());
                out.push(*commit as u8);
            }
        }
    }

    /// A whole body as [`TxnRecord::encode`] wrote it; None when it is anything else.
    pub fn decode(b: &[u8]) -> Option<TxnRecord> {
        let mut c = Body(b);
        let r = match c.u8()? {
            STATE => {
                let id = c.str()?;
                let pid = c.i64()?;
                let epoch = c.i16()?;
                let phase = c.u8()?;
                let timeout_ms = c.i32()?;
                let start_ms = c.i64()?;
                let n = c.count(8)?;
                let mut partitions = Vec::with_capacity(n);
                for _ in 0..n {
                    partitions.push((c.str()?, c.i32()?));
                }
                let n = c.count(4)?;
                let mut groups = Vec::with_capacity(n);
                for _ in 0..n {
                    groups.push(c.str()?);
                }
                TxnRecord::State(State {
                    id,
                    pid,
                    epoch,
                    phase,
                    timeout_ms,
                    start_ms,
                    partitions,
                    groups,
                })
            }
            OFFSET => TxnRecord::Offset {
                group: c.str()?,
                pid: c.i64()?,
                topic: c.str()?,
                partition: c.i32()?,
                offset: c.i64()?,
                leader_epoch: c.i32()?,
                metadata: c.str()?,
                commit_ms: c.i64()?,
            },
            MARKER => TxnRecord::Marker {
                group: c.str()?,
                pid: c.i64()?,
                commit: c.u8()? != 0,
            },
            _ => return None,
        };
        c.0.is_empty().then_some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_refuse_garbage() {
        let recs = [
            TxnRecord::State(State {
                id: "tx-1".into(),
                pid: 77,
                epoch: 3,
                phase: 2,
                timeout_ms: 60_000,
                start_ms: 1_700_000_000_000,
                partitions: vec![("a".into(), 0), ("b".into(), 5)],
                groups: vec!["g".into()],
            }),
            TxnRecord::Offset {
                group: "g".into(),
                pid: 77,
                topic: "in".into(),
                partition: 1,
                offset: 42,
                leader_epoch: -1,
                metadata: String::new(),
                commit_ms: 5,
            },
            TxnRecord::Marker {
                group: "g".into(),
                pid: 77,
                commit: true,
            },
        ];
        for r in recs {
            let mut b = Vec::new();
            r.encode(&mut b);
            assert_eq!(TxnRecord::decode(&b), Some(r.clone()));
            // Every cut is refused, and so is a byte too many.
            for n in 0..b.len() {
                assert_eq!(TxnRecord::decode(&b[..n]), None, "{r:?} cut at {n}");
            }
            b.push(0);
            assert_eq!(TxnRecord::decode(&b), None);
        }
        // A huge count is refused before anything is reserved.
        let mut b = vec![STATE];
        put_str(&mut b, "x");
        b.extend_from_slice(&[0; 8 + 2 + 1 + 4 + 8]);
        b.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(TxnRecord::decode(&b), None);
    }
}
