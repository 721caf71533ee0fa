//! Idempotent producers of one partition: their epoch and the sequence numbers of their
//! last few batches, so a retried batch is answered with where it was stored instead of
//! being stored twice, and a gap is refused. Rebuilt at start-up from the batch headers in
//! the log (they carry producer id, epoch and sequence), as Kafka does without a producer
//! snapshot.

use std::collections::{HashMap, VecDeque};

use super::batch::BatchHeader;
use crate::limits::PRODUCER_BATCHES;
use crate::proto::kafka::ErrorCode;

#[derive(Default)]
pub struct ProducerState {
    epoch: i16,
    /// (first sequence, last sequence, base offset) of recent batches, oldest first.
    recent: VecDeque<(i32, i32, i64)>,
}

pub type Producers = HashMap<i64, ProducerState>;

/// What the sequence check says about a batch from an idempotent producer.
#[derive(Debug)]
pub enum SeqCheck {
    Fresh,
    /// Already stored at this base offset: answer success without storing it again.
    Duplicate(i64),
    Reject(ErrorCode),
}

/// Note a stored batch of an idempotent producer (at `base_offset`) for later checks.
pub fn remember(producers: &mut Producers, h: &BatchHeader, base_offset: i64) {
    if h.producer_id < 0 || h.base_sequence < 0 {
        return;
    }
    let st = producers.entry(h.producer_id).or_default();
    if h.producer_epoch > st.epoch {
        st.recent.clear();
    }
    st.epoch = h.producer_epoch;
    st.recent.push_back((
        h.base_sequence,
        h.base_sequence.wrapping_add(h.last_offset_delta),
        base_offset,
    ));
    if st.recent.len() > PRODUCER_BATCHES {
        st.recent.pop_front();
    }
}

/// A transaction marker of `pid` at `epoch` was written: a newer epoch fences the older
/// producer here (its batches are refused) and starts the sequence again.
pub fn fence(producers: &mut Producers, pid: i64, epoch: i16) {
    let st = producers.entry(pid).or_default();
    if epoch > st.epoch {
        st.epoch = epoch;
        st.recent.clear();
    }
}

pub fn check(producers: &Producers, h: &BatchHeader) -> SeqCheck {
    if h.producer_id < 0 || h.base_sequence < 0 {
        return SeqCheck::Fresh;
    }
    let Some(st) = producers.get(&h.producer_id) else {
        return SeqCheck::Fresh;
    };
    if h.producer_epoch < st.epoch {
        return SeqCheck::Reject(ErrorCode::InvalidProducerEpoch);
    }
    if h.producer_epoch > st.epoch {
        return if h.base_sequence == 0 {
            SeqCheck::Fresh
        } else {
            SeqCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        };
    }
    let last_seq = h.base_sequence.wrapping_add(h.last_offset_delta);
    if let Some(&(_, _, base)) = st
        .recent
        .iter()
        .find(|(f, l, _)| *f == h.base_sequence && *l == last_seq)
    {
        return SeqCheck::Duplicate(base);
    }
    match st.recent.back() {
        Some(&(_, l, _)) if h.base_sequence != l.wrapping_add(1) => {
            SeqCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        }
        _ => SeqCheck::Fresh,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pid: i64, epoch: i16, seq: i32, records: i32) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            size: 100,
            attributes: 0,
            last_offset_delta: records - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            record_count: records,
        }
    }

    fn state(epoch: i16, batches: &[(i32, i32, i64)]) -> Producers {
        let mut m = HashMap::new();
        m.insert(
            7,
            ProducerState {
                epoch,
                recent: batches.iter().copied().collect(),
            },
        );
        m
    }

    #[test]
    fn idempotent_sequences() {
        let s = state(0, &[(0, 9, 100), (10, 19, 110)]);
        // Next in line, unknown producers and non-idempotent batches are fresh.
        assert!(matches!(check(&s, &header(7, 0, 20, 5)), SeqCheck::Fresh));
        assert!(matches!(check(&s, &header(8, 0, 42, 1)), SeqCheck::Fresh));
        assert!(matches!(check(&s, &header(-1, -1, -1, 1)), SeqCheck::Fresh));
        // A retry of a stored batch is answered with where it was stored.
        assert!(matches!(
            check(&s, &header(7, 0, 10, 10)),
            SeqCheck::Duplicate(110)
        ));
        assert!(matches!(
            check(&s, &header(7, 0, 0, 10)),
            SeqCheck::Duplicate(100)
        ));
        // A gap, or an overlap that is not a whole stored batch, is out of order.
        assert!(matches!(
            check(&s, &header(7, 0, 25, 1)),
            SeqCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        ));
        assert!(matches!(
            check(&s, &header(7, 0, 15, 5)),
            SeqCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        ));
        // Epochs: older is fenced; a newer one must start at sequence 0.
        let s2 = state(3, &[(0, 0, 5)]);
        assert!(matches!(
            check(&s2, &header(7, 2, 1, 1)),
            SeqCheck::Reject(ErrorCode::InvalidProducerEpoch)
        ));
        assert!(matches!(check(&s2, &header(7, 4, 0, 1)), SeqCheck::Fresh));
        assert!(matches!(
            check(&s2, &header(7, 4, 3, 1)),
            SeqCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        ));
        // Remembering keeps the last few batches of the current epoch.
        let mut p = Producers::new();
        for k in 0..10 {
            remember(&mut p, &header(9, 1, k, 1), k as i64);
        }
        assert!(matches!(
            check(&p, &header(9, 1, 9, 1)),
            SeqCheck::Duplicate(9)
        ));
        assert!(matches!(check(&p, &header(9, 1, 10, 1)), SeqCheck::Fresh));
    }

    #[test]
    fn a_marker_epoch_fences_older_epochs() {
        let mut p = state(1, &[(0, 4, 10)]);
        // A marker of the same epoch (a commit) keeps the sequence going.
        fence(&mut p, 7, 1);
        assert!(matches!(check(&p, &header(7, 1, 5, 1)), SeqCheck::Fresh));
        // A newer one (the coordinator aborted under a new epoch): the old epoch is refused,
        // the next starts at 0.
        fence(&mut p, 7, 2);
        assert!(matches!(
            check(&p, &header(7, 1, 5, 1)),
            SeqCheck::Reject(ErrorCode::InvalidProducerEpoch)
        ));
        assert!(matches!(check(&p, &header(7, 3, 0, 1)), SeqCheck::Fresh));
        // An older marker changes nothing; an unknown producer starts at the marker's epoch.
        fence(&mut p, 7, 0);
        assert!(matches!(
            check(&p, &header(7, 1, 5, 1)),
            SeqCheck::Reject(ErrorCode::InvalidProducerEpoch)
        ));
        fence(&mut p, 8, 4);
        assert!(matches!(
            check(&p, &header(8, 3, 0, 1)),
            SeqCheck::Reject(ErrorCode::InvalidProducerEpoch)
        ));
    }
}
