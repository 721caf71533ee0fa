//! The coordinator's log in etcd, as a [`Store`], over a small seam ([`LogKv`]): the three
//! etcd operations the store needs. `client.rs` does them against etcd; the tests here
//! against an in-memory etcd with the same conditions, so the store's logic (key order,
//! fencing, compaction, decoding) is tested without a server.
//!
//! Owned by the core thread of the leading control plane; a standby only reads
//! ([`decode`]). Invariant: `records` is exactly what etcd holds under the log prefix, in
//! order, and `next_seq` is one above the last record's number, so an append that etcd
//! accepted is the next record after everything this store has seen.

use crate::limits::ETCD_RECORD_BYTES_MAX;
use crate::store::{Store, StoreError};
use crate::twopc::Record;

/// Digits of a record's number in its key: etcd orders keys bytewise, so fixed-width
/// numbers keep log order.
const SEQ_DIGITS: usize = 20;

/// The etcd operations of the log. Every write is conditioned on this process still
/// holding the leader key (the fence).
pub trait LogKv {
    /// Every key under the log prefix with its value, in key order.
    fn load(&mut self) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// Puts record `seq` if the fence holds and record `seq` does not exist yet.
    /// `Ok(false)`: refused (another process leads, or wrote `seq`).
    fn append(&mut self, seq: u64, value: Vec<u8>) -> Result<bool, StoreError>;
    /// Deletes every record before `seq` and puts record `seq`, in one transaction, on the
    /// same conditions as `append`.
    fn replace(&mut self, seq: u64, value: Vec<u8>) -> Result<bool, StoreError>;
    /// Where the log lives, for status output.
    fn describe(&self) -> String;
}

/// `PREFIX/log/`: the log's keys.
pub fn log_prefix(prefix: &str) -> String {
    format!("{prefix}log/")
}

/// The key of record `seq`.
pub fn record_key(prefix: &str, seq: u64) -> String {
    format!("{prefix}log/{seq:0SEQ_DIGITS$}")
}

/// Decodes a loaded log: each record's number and the record, checking the keys' form and
/// their order.
pub fn decode(prefix: &str, kvs: &[(String, Vec<u8>)]) -> Result<Vec<(u64, Record)>, StoreError> {
    let logp = log_prefix(prefix);
    let mut out: Vec<(u64, Record)> = Vec::with_capacity(kvs.len());
    for (key, value) in kvs {
        let bad = |why: String| StoreError::BadRecord {
            key: key.clone(),
            why,
        };
        let seq = key
            .strip_prefix(&logp)
            .filter(|s| s.len() == SEQ_DIGITS && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| bad(format!("not a record key ({logp} and {SEQ_DIGITS} digits)")))?;
        if out.last().is_some_and(|(last, _)| *last >= seq) {
            return Err(bad("out of order".into()));
        }
        let rec = serde_json::from_slice::<Record>(value).map_err(|e| bad(e.to_string()))?;
        out.push((seq, rec));
    }
    Ok(out)
}

/// The log in etcd, for the leader's coordinator.
pub struct LogStore<K> {
    kv: K,
    records: Vec<Record>,
    next_seq: u64,
}

impl<K: LogKv> LogStore<K> {
    /// Loads the log. Call it after winning the leader key, so that the load sees every
    /// record a previous leader appended (etcd reads are linearizable).
    pub fn open(mut kv: K, prefix: &str) -> Result<LogStore<K>, StoreError> {
        let loaded = decode(prefix, &kv.load()?)?;
        let next_seq = loaded.last().map_or(0, |(seq, _)| seq + 1);
        Ok(LogStore {
            kv,
            records: loaded.into_iter().map(|(_, r)| r).collect(),
            next_seq,
        })
    }

    fn encode(rec: &Record) -> Result<Vec<u8>, StoreError> {
        let value = serde_json::to_vec(rec).expect("records always serialise");
        if value.len() > ETCD_RECORD_BYTES_MAX {
            return Err(StoreError::TooLarge {
                bytes: value.len(),
                max: ETCD_RECORD_BYTES_MAX,
            });
        }
        Ok(value)
    }
}

impl<K: LogKv> Store for LogStore<K> {
    fn records(&self) -> &[Record] {
        &self.records
    }

    fn append(&mut self, rec: Record) -> Result<(), StoreError> {
        let value = Self::encode(&rec)?;
        if !self.kv.append(self.next_seq, value)? {
            return Err(StoreError::NotLeader);
        }
        self.next_seq += 1;
        self.records.push(rec);
        Ok(())
    }

    fn compact(&mut self, snapshot: Record) -> Result<(), StoreError> {
        let value = Self::encode(&snapshot)?;
        if !self.kv.replace(self.next_seq, value)? {
            return Err(StoreError::NotLeader);
        }
        self.next_seq += 1;
        self.records = vec![snapshot];
        Ok(())
    }

    fn describe(&self) -> String {
        self.kv.describe()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::map::ClusterMap;
    use crate::twopc::SignedMap;

    const P: &str = "/t/";

    /// An etcd with one leader key and the log, shared by the processes of a test.
    #[derive(Default)]
    pub struct MemEtcd {
        /// Which process holds the leader key (its "create revision").
        pub leader: Option<u64>,
        pub kvs: BTreeMap<String, Vec<u8>>,
        /// Fail every request (etcd unreachable).
        pub down: bool,
    }

    /// One process's view: it believes it holds the leader key as `me`.
    pub struct MemKv {
        pub etcd: Arc<Mutex<MemEtcd>>,
        pub me: u64,
    }

    impl LogKv for MemKv {
        fn load(&mut self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
            let e = self.etcd.lock().unwrap();
            if e.down {
                return Err(StoreError::Etcd("unreachable".into()));
            }
            let lp = log_prefix(P);
            Ok(e.kvs
                .range(lp.clone()..)
                .take_while(|(k, _)| k.starts_with(&lp))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect())
        }

        fn append(&mut self, seq: u64, value: Vec<u8>) -> Result<bool, StoreError> {
            let mut e = self.etcd.lock().unwrap();
            if e.down {
                return Err(StoreError::Etcd("unreachable".into()));
            }
            let key = record_key(P, seq);
            if e.leader != Some(self.me) || e.kvs.contains_key(&key) {
                return Ok(false);
            }
            e.kvs.insert(key, value);
            Ok(true)
        }

        fn replace(&mut self, seq: u64, value: Vec<u8>) -> Result<bool, StoreError> {
            let mut e = self.etcd.lock().unwrap();
            if e.down {
                return Err(StoreError::Etcd("unreachable".into()));
            }
            let key = record_key(P, seq);
            if e.leader != Some(self.me) || e.kvs.contains_key(&key) {
                return Ok(false);
            }
            let lp = log_prefix(P);
            e.kvs.retain(|k, _| !k.starts_with(&lp) || *k >= key);
            e.kvs.insert(key, value);
            Ok(true)
        }

        fn describe(&self) -> String {
            format!("memory etcd, process {}", self.me)
        }
    }

    fn rec(epoch: u64) -> [Record; 3] {
        let mut m = ClusterMap::empty();
        m.epoch = epoch;
        [
            Record::Begin {
                epoch,
                map: SignedMap::new(m),
            },
            Record::Decide {
                epoch,
                commit: true,
            },
            Record::End { epoch },
        ]
    }

    fn process(etcd: &Arc<Mutex<MemEtcd>>, me: u64) -> LogStore<MemKv> {
        etcd.lock().unwrap().leader = Some(me);
        LogStore::open(
            MemKv {
                etcd: etcd.clone(),
                me,
            },
            P,
        )
        .unwrap()
    }

    #[test]
    fn appends_are_in_order_and_a_new_leader_loads_them_all() {
        let etcd = Arc::new(Mutex::new(MemEtcd::default()));
        let mut a = process(&etcd, 1);
        assert!(a.records().is_empty());
        // More than 10 records, so the keys' fixed width matters for their order.
        let want: Vec<Record> = (1..=5).flat_map(rec).collect();
        for r in &want {
            a.append(r.clone()).unwrap();
        }
        assert_eq!(a.records(), want.as_slice());
        let keys: Vec<String> = etcd.lock().unwrap().kvs.keys().cloned().collect();
        assert_eq!(keys[0], "/t/log/00000000000000000000");
        assert_eq!(keys[14], "/t/log/00000000000000000014");
        let b = process(&etcd, 2);
        assert_eq!(b.records(), want.as_slice());
        assert_eq!(b.next_seq, 15);
    }

    #[test]
    fn a_deposed_leader_can_append_nothing() {
        let etcd = Arc::new(Mutex::new(MemEtcd::default()));
        let mut a = process(&etcd, 1);
        let [begin, decide, end] = rec(1);
        a.append(begin.clone()).unwrap();
        // Process 2 takes the leader key (process 1's lease expired) and loads the log.
        let mut b = process(&etcd, 2);
        // Process 1 does not know yet: its decision is refused, and changes nothing.
        assert!(matches!(a.append(decide), Err(StoreError::NotLeader)));
        assert!(matches!(
            a.compact(Record::End { epoch: 1 }),
            Err(StoreError::NotLeader)
        ));
        assert_eq!(a.records(), std::slice::from_ref(&begin));
        // The new leader finishes the change as a restarted coordinator: it aborts.
        let abort = Record::Decide {
            epoch: 1,
            commit: false,
        };
        b.append(abort.clone()).unwrap();
        b.append(end.clone()).unwrap();
        let c = process(&etcd, 3);
        assert_eq!(c.records(), &[begin, abort, end]);
    }

    #[test]
    fn two_writers_never_both_write_one_record() {
        // Even with the fence passed (a bug elsewhere), record n is written once.
        let etcd = Arc::new(Mutex::new(MemEtcd::default()));
        let mut a = process(&etcd, 1);
        let mut b = LogStore::open(
            MemKv {
                etcd: etcd.clone(),
                me: 1,
            },
            P,
        )
        .unwrap();
        let [begin, ..] = rec(1);
        a.append(begin.clone()).unwrap();
        assert!(matches!(
            b.append(Record::End { epoch: 9 }),
            Err(StoreError::NotLeader)
        ));
        assert_eq!(process(&etcd, 2).records(), &[begin]);
    }

    #[test]
    fn compaction_leaves_one_snapshot_and_numbers_go_on() {
        let etcd = Arc::new(Mutex::new(MemEtcd::default()));
        let mut a = process(&etcd, 1);
        for r in (1..=3).flat_map(rec) {
            a.append(r).unwrap();
        }
        let snap = Record::Snapshot {
            committed: SignedMap::empty(),
            last_epoch: 3,
        };
        a.compact(snap.clone()).unwrap();
        a.append(Record::End { epoch: 3 }).unwrap();
        let keys: Vec<String> = etcd.lock().unwrap().kvs.keys().cloned().collect();
        assert_eq!(
            keys,
            ["/t/log/00000000000000000009", "/t/log/00000000000000000010"]
        );
        let b = process(&etcd, 2);
        assert_eq!(b.records(), &[snap, Record::End { epoch: 3 }]);
    }

    #[test]
    fn etcd_errors_and_bad_keys_are_errors_not_lost_records() {
        let etcd = Arc::new(Mutex::new(MemEtcd::default()));
        let mut a = process(&etcd, 1);
        etcd.lock().unwrap().down = true;
        assert!(matches!(
            a.append(Record::End { epoch: 1 }),
            Err(StoreError::Etcd(_))
        ));
        assert!(a.records().is_empty());
        etcd.lock().unwrap().down = false;
        a.append(Record::End { epoch: 1 }).unwrap();
        assert_eq!(a.records().len(), 1);

        let load = |kvs: &[(&str, &[u8])]| {
            let kvs: Vec<(String, Vec<u8>)> = kvs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_vec()))
                .collect();
            decode(P, &kvs)
        };
        let end = br#"{"type":"end","epoch":1}"#;
        assert_eq!(
            load(&[("/t/log/00000000000000000007", end)]).unwrap(),
            [(7, Record::End { epoch: 1 })]
        );
        for bad in [
            vec![("/t/log/7", &end[..])],
            vec![("/t/log/0000000000000000000x", &end[..])],
            vec![("/t/log/00000000000000000001", &b"{}"[..])],
            vec![
                ("/t/log/00000000000000000002", &end[..]),
                ("/t/log/00000000000000000002", &end[..]),
            ],
        ] {
            assert!(
                matches!(load(&bad), Err(StoreError::BadRecord { .. })),
                "{bad:?}"
            );
        }
        // Too large a record is refused before it is sent, with what to change.
        let mut m = ClusterMap::empty();
        m.epoch = 1;
        m.upsert_node(crate::map::Node {
            id: 1,
            resp_addr: "127.0.0.1:7000".into(),
            kafka_addr: "127.0.0.1:9000".into(),
            shard_endpoints: vec!["127.0.0.1:65535".into(); usize::from(u16::MAX)],
            shards: 1,
            weight: 1,
            state: crate::map::NodeState::Joining,
        });
        let big = Record::Begin {
            epoch: 1,
            map: SignedMap::new(m),
        };
        let e = a.append(big).unwrap_err();
        assert!(matches!(e, StoreError::TooLarge { .. }), "{e}");
        assert!(e.to_string().contains("--max-request-bytes"));
        assert_eq!(a.records().len(), 1);
    }
}
