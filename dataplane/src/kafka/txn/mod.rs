//! Kafka transactions (exactly-once): the transaction coordinator.
//!
//! A transactional id belongs to one `__transaction_state` partition,
//! `abs(javaHash(id)) % 50` as in Kafka, the same map as groups' `__consumer_offsets`
//! partitions, so its coordinator is the shard `groups::coordinator` names. The
//! coordinator's [`Txns`] lives inside that shard's `Groups` (its requests travel as
//! `GroupOp::Txn`, its records go to the same offsets files, see [`record`]), and is a
//! plain state machine: a request in, effects out (an answer now, or records to append
//! and the answer once they are durable), unit-tested without I/O.
//!
//! The protocol is Kafka's two-phase commit: InitProducerId gives the id a producer id and
//! a new epoch (fencing the previous producer; an open transaction of the id is aborted);
//! AddPartitionsToTxn and AddOffsetsToTxn log the partitions and groups the transaction
//! touches (`Ongoing`); EndTxn logs `PrepareCommit` or `PrepareAbort`, answers, and starts
//! the marker flight ([`rounds`]): a COMMIT or ABORT control batch on every partition (on
//! their owner shards) and the staged offsets of every group made visible or dropped;
//! when all are durable the flight logs `CompleteCommit`/`CompleteAbort` here. Requests
//! for an id whose transaction is being completed are answered CONCURRENT_TRANSACTIONS,
//! which clients retry.
//!
//! Recovery: the records replayed at start-up give every id its last logged state; a
//! transaction found prepared (PREPARE logged, markers maybe half written, COMPLETE not
//! logged) has its markers written again (a marker twice is harmless) and is completed;
//! an `Ongoing` one is aborted when its `transaction.timeout.ms` has passed since it began,
//! or when its producer comes back (InitProducerId). The shard's tick aborts transactions
//! past their timeout, bumping the epoch so their producer is fenced.

pub mod ops;
pub mod record;
pub mod rounds;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;

use crate::kafka::groups::partition_for;
use crate::kafka::groups::store::{self, Record};
use crate::limits::{TXN_IDS_PER_SHARD_MAX, TXN_PARTITIONS_MAX, TXN_TIMEOUT_MS_MAX};
use crate::log::topics::TopicMeta;
use crate::txn::Dest;
use ops::{Described, Listed, TxnOp, TxnRes};
use record::{State, TxnRecord};

/// Kafka's error codes that transactions answer with.
pub mod err {
    pub const NONE: i16 = 0;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const NOT_COORDINATOR: i16 = 16;
    pub const INVALID_REQUEST: i16 = 42;
    pub const INVALID_PRODUCER_EPOCH: i16 = 47;
    pub const INVALID_TXN_STATE: i16 = 48;
    pub const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
    pub const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
    pub const CONCURRENT_TRANSACTIONS: i16 = 51;
    pub const OPERATION_NOT_ATTEMPTED: i16 = 55;
    pub const PRODUCER_FENCED: i16 = 90;
    pub const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;

    /// PRODUCER_FENCED as a client of `version` understands it: Kafka answers requests older
    /// than KIP-588's versions (`fenced_from`) with INVALID_PRODUCER_EPOCH.
    pub fn fenced_for(code: i16, version: i16, fenced_from: i16) -> i16 {
        if code == PRODUCER_FENCED && version < fenced_from {
            INVALID_PRODUCER_EPOCH
        } else {
            code
        }
    }
}

/// Fault injection for the recovery tests: with `PINION_TXN_CRASH_AT=<step>` in its
/// environment the node aborts (as kill -9 would stop it) at that step of the two-phase
/// commit: `prepare` (a PREPARE record durable, before the answer and before any marker),
/// `markers` (the first partition's marker durable, the others not written), `complete`
/// (the COMPLETE record durable). Unset, this is one load of a static per call.
pub fn crash_point(step: &str) {
    if crash_armed(step) {
        tracing::error!("crash point {step} reached (PINION_TXN_CRASH_AT); aborting");
        eprintln!("crash point {step} reached (PINION_TXN_CRASH_AT); aborting");
        std::process::abort();
    }
}

/// Whether `PINION_TXN_CRASH_AT` names `step`.
pub fn crash_armed(step: &str) -> bool {
    static AT: OnceLock<Option<String>> = OnceLock::new();
    AT.get_or_init(|| std::env::var("PINION_TXN_CRASH_AT").ok())
        .as_deref()
        == Some(step)
}

/// Where a transactional id's transaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Empty = 0,
    Ongoing = 1,
    PrepareCommit = 2,
    PrepareAbort = 3,
    CompleteCommit = 4,
    CompleteAbort = 5,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Empty => "Empty",
            Phase::Ongoing => "Ongoing",
            Phase::PrepareCommit => "PrepareCommit",
            Phase::PrepareAbort => "PrepareAbort",
            Phase::CompleteCommit => "CompleteCommit",
            Phase::CompleteAbort => "CompleteAbort",
        }
    }

    fn of(b: u8) -> Phase {
        match b {
            1 => Phase::Ongoing,
            2 => Phase::PrepareCommit,
            3 => Phase::PrepareAbort,
            4 => Phase::CompleteCommit,
            5 => Phase::CompleteAbort,
            _ => Phase::Empty,
        }
    }

    fn prepared(self) -> Option<bool> {
        match self {
            Phase::PrepareCommit => Some(true),
            Phase::PrepareAbort => Some(false),
            _ => None,
        }
    }
}

/// One transactional id as its coordinator holds it.
#[derive(Debug, Clone)]
struct Meta {
    pid: i64,
    epoch: i16,
    phase: Phase,
    timeout_ms: i32,
    /// When the open transaction began (wall clock ms; -1 when none).
    start_ms: i64,
    partitions: BTreeSet<(String, i32)>,
    groups: BTreeSet<String>,
    /// Its `__transaction_state` partition (which file its records go to).
    part: u32,
}

/// The markers of a prepared transaction, for the marker flight to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drive {
    pub id: String,
    pub pid: i64,
    pub epoch: i16,
    pub commit: bool,
    pub partitions: Vec<(String, i32)>,
    pub groups: Vec<String>,
    /// Not markers: tell the partitions of an open transaction that they are in it again
    /// (after a restart their list of admitted producers is rebuilt from their data only).
    pub begin: bool,
}

/// A request waiting for its record to be durable.
#[derive(Debug)]
pub struct Waiter {
    dest: Option<Dest>,
    res: TxnRes,
    /// The marker flight to start once the PREPARE record is durable.
    drive: Option<Drive>,
    /// The record is a COMPLETE (the `complete` crash point).
    complete: bool,
}

/// What the coordinator asks of its shard.
#[derive(Debug)]
pub enum Effect {
    Reply(Dest, TxnRes),
    /// Append `bytes` (framed records) to offsets file `part`; then finish `waiter`.
    Append(u32, Vec<u8>, Waiter),
}

/// A shard's transaction coordinator.
pub struct Txns {
    me: usize,
    txns: HashMap<String, Meta>,
    next_pid: u64,
    /// Marker flights to start (the shard seam takes them).
    drives: Vec<Drive>,
    /// Prepared transactions found at recovery still have to be driven.
    resumed: bool,
}

impl Txns {
    pub fn new(me: usize) -> Txns {
        Txns {
            me,
            txns: HashMap::new(),
            next_pid: 0,
            drives: Vec::new(),
            resumed: false,
        }
    }

    /// Transactional ids this shard coordinates.
    pub fn len(&self) -> usize {
        self.txns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txns.is_empty()
    }

    /// Marker flights to start now.
    pub fn take_drives(&mut self) -> Vec<Drive> {
        std::mem::take(&mut self.drives)
    }

    /// A producer id no other producer of this node has had: the wall clock, this shard
    /// and a counter, in a range (bit 62 set) the idempotent producers' ids stay out of.
    fn fresh_pid(&mut self, now_ms: u64) -> i64 {
        self.next_pid = self.next_pid.wrapping_add(1);
        let ms = (now_ms as i64) & ((1 << 44) - 1);
        (1 << 62) | (ms << 18) | (((self.me as i64) & 0x3ff) << 8) | (self.next_pid as i64 & 0xff)
    }

    /// A record replayed at start-up.
    pub fn replay(&mut self, s: State) {
        let part = partition_for(&s.id);
        self.txns.insert(
            s.id,
            Meta {
                pid: s.pid,
                epoch: s.epoch,
                phase: Phase::of(s.phase),
                timeout_ms: s.timeout_ms,
                start_ms: s.start_ms,
                partitions: s.partitions.into_iter().collect(),
                groups: s.groups.into_iter().collect(),
                part,
            },
        );
    }

    fn state(id: &str, m: &Meta) -> TxnRecord {
        TxnRecord::State(State {
            id: id.to_string(),
            pid: m.pid,
            epoch: m.epoch,
            phase: m.phase as u8,
            timeout_ms: m.timeout_ms,
            start_ms: m.start_ms,
            partitions: m.partitions.iter().cloned().collect(),
            groups: m.groups.iter().cloned().collect(),
        })
    }

    /// Log `id`'s state as it now is, answering `dest` with `res` once durable.
    fn log(&self, id: &str, dest: Option<Dest>, res: TxnRes, drive: bool, out: &mut Vec<Effect>) {
        let Some(m) = self.txns.get(id) else {
            return;
        };
        let mut bytes = Vec::new();
        store::encode(&Record::Txn(Txns::state(id, m)), &mut bytes);
        let drive = drive
            .then(|| m.phase.prepared())
            .flatten()
            .map(|commit| Drive {
                id: id.to_string(),
                pid: m.pid,
                epoch: m.epoch,
                commit,
                partitions: m.partitions.iter().cloned().collect(),
                groups: m.groups.iter().cloned().collect(),
                begin: false,
            });
        let complete = matches!(m.phase, Phase::CompleteCommit | Phase::CompleteAbort);
        out.push(Effect::Append(
            m.part,
            bytes,
            Waiter {
                dest,
                res,
                drive,
                complete,
            },
        ));
    }

    /// The producer `pid`/`epoch` of `id`, checked: Kafka's rules for requests inside a
    /// transaction.
    fn producer(&self, id: &str, pid: i64, epoch: i16) -> Result<&Meta, i16> {
        match self.txns.get(id) {
            None => Err(err::INVALID_PRODUCER_ID_MAPPING),
            Some(m) if m.pid != pid => Err(err::INVALID_PRODUCER_ID_MAPPING),
            Some(m) if m.epoch != epoch => Err(err::PRODUCER_FENCED),
            Some(m) => Ok(m),
        }
    }

    /// Run a transaction request on this, its coordinator shard.
    pub fn exec(
        &mut self,
        op: TxnOp,
        dest: Dest,
        now_ms: u64,
        topics: &BTreeMap<String, TopicMeta>,
        out: &mut Vec<Effect>,
    ) {
        let now = now_ms as i64;
        match op {
            TxnOp::Init {
                id,
                timeout_ms,
                pid,
                epoch,
            } => self.init(id, timeout_ms, pid, epoch, dest, now_ms, out),
            TxnOp::AddPartitions {
                id,
                pid,
                epoch,
                partitions,
            } => {
                let n = partitions.len();
                let all = |e| TxnRes::Added(vec![e; n]);
                let m = match self.producer(&id, pid, epoch) {
                    Ok(m) => m,
                    Err(e) => return out.push(Effect::Reply(dest, all(e))),
                };
                if m.phase.prepared().is_some() {
                    return out.push(Effect::Reply(dest, all(err::CONCURRENT_TRANSACTIONS)));
                }
                let known = |(t, p): &(String, i32)| {
                    topics
                        .get(t)
                        .is_some_and(|meta| (0..meta.partitions).contains(p))
                };
                if !partitions.iter().all(known) {
                    let errors = partitions
                        .iter()
                        .map(|tp| {
                            if known(tp) {
                                err::OPERATION_NOT_ATTEMPTED
                            } else {
                                err::UNKNOWN_TOPIC_OR_PARTITION
                            }
                        })
                        .collect();
                    return out.push(Effect::Reply(dest, TxnRes::Added(errors)));
                }
                let fresh = partitions.iter().filter(|tp| !m.partitions.contains(*tp));
                if m.partitions.len() + fresh.count() > TXN_PARTITIONS_MAX {
                    return out.push(Effect::Reply(dest, all(err::INVALID_REQUEST)));
                }
                if m.phase == Phase::Ongoing
                    && partitions.iter().all(|tp| m.partitions.contains(tp))
                {
                    return out.push(Effect::Reply(dest, all(err::NONE)));
                }
                if let Some(m) = self.txns.get_mut(&id) {
                    m.begin(now);
                    m.partitions.extend(partitions);
                }
                self.log(&id, Some(dest), all(err::NONE), false, out);
            }
            TxnOp::AddOffsets {
                id,
                pid,
                epoch,
                group,
            } => {
                let m = match self.producer(&id, pid, epoch) {
                    Ok(m) => m,
                    Err(e) => return out.push(Effect::Reply(dest, TxnRes::Error(e))),
                };
                if m.phase.prepared().is_some() {
                    let e = err::CONCURRENT_TRANSACTIONS;
                    return out.push(Effect::Reply(dest, TxnRes::Error(e)));
                }
                if group.is_empty() {
                    return out.push(Effect::Reply(dest, TxnRes::Error(err::INVALID_REQUEST)));
                }
                if m.phase == Phase::Ongoing && m.groups.contains(&group) {
                    return out.push(Effect::Reply(dest, TxnRes::Error(err::NONE)));
                }
                if let Some(m) = self.txns.get_mut(&id) {
                    m.begin(now);
                    m.groups.insert(group);
                }
                self.log(&id, Some(dest), TxnRes::Error(err::NONE), false, out);
            }
            TxnOp::End {
                id,
                pid,
                epoch,
                commit,
            } => {
                let m = match self.producer(&id, pid, epoch) {
                    Ok(m) => m,
                    Err(e) => return out.push(Effect::Reply(dest, TxnRes::Error(e))),
                };
                let e = match (m.phase, commit) {
                    (Phase::Ongoing, _) => {
                        if let Some(m) = self.txns.get_mut(&id) {
                            m.phase = if commit {
                                Phase::PrepareCommit
                            } else {
                                Phase::PrepareAbort
                            };
                        }
                        return self.log(&id, Some(dest), TxnRes::Error(err::NONE), true, out);
                    }
                    // A retry of an EndTxn that got through.
                    (Phase::CompleteCommit, true) | (Phase::CompleteAbort, false) => err::NONE,
                    (Phase::PrepareCommit, true) | (Phase::PrepareAbort, false) => {
                        err::CONCURRENT_TRANSACTIONS
                    }
                    _ => err::INVALID_TXN_STATE,
                };
                out.push(Effect::Reply(dest, TxnRes::Error(e)));
            }
            TxnOp::Complete {
                id,
                pid,
                epoch,
                commit,
            } => {
                let due = self.txns.get(&id).is_some_and(|m| {
                    m.pid == pid && m.epoch == epoch && m.phase.prepared() == Some(commit)
                });
                if !due {
                    return out.push(Effect::Reply(dest, TxnRes::Error(err::NONE)));
                }
                if let Some(m) = self.txns.get_mut(&id) {
                    m.phase = if commit {
                        Phase::CompleteCommit
                    } else {
                        Phase::CompleteAbort
                    };
                    m.partitions.clear();
                    m.groups.clear();
                    m.start_ms = -1;
                }
                self.log(&id, Some(dest), TxnRes::Error(err::NONE), false, out);
            }
            TxnOp::Describe(ids) => {
                let d = ids
                    .into_iter()
                    .map(|id| match self.txns.get(&id) {
                        Some(m) => Described {
                            error: err::NONE,
                            state: m.phase.name(),
                            pid: m.pid,
                            epoch: m.epoch,
                            timeout_ms: m.timeout_ms,
                            start_ms: m.start_ms,
                            partitions: m.partitions.iter().cloned().collect(),
                            id,
                        },
                        None => Described {
                            id,
                            error: err::TRANSACTIONAL_ID_NOT_FOUND,
                            state: "",
                            pid: -1,
                            epoch: -1,
                            timeout_ms: -1,
                            start_ms: -1,
                            partitions: Vec::new(),
                        },
                    })
                    .collect();
                out.push(Effect::Reply(dest, TxnRes::Describe(d)));
            }
            TxnOp::List { states, pids } => {
                let mut listed: Vec<Listed> = self
                    .txns
                    .iter()
                    .filter(|(_, m)| {
                        (states.is_empty() || states.iter().any(|s| s == m.phase.name()))
                            && (pids.is_empty() || pids.contains(&m.pid))
                    })
                    .map(|(id, m)| Listed {
                        id: id.clone(),
                        pid: m.pid,
                        state: m.phase.name(),
                    })
                    .collect();
                listed.sort_by(|a, b| a.id.cmp(&b.id));
                out.push(Effect::Reply(dest, TxnRes::List(listed)));
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn init(
        &mut self,
        id: String,
        timeout_ms: i32,
        pid: i64,
        epoch: i16,
        dest: Dest,
        now_ms: u64,
        out: &mut Vec<Effect>,
    ) {
        let reply = |out: &mut Vec<Effect>, error| {
            out.push(Effect::Reply(
                dest,
                TxnRes::Init {
                    error,
                    pid: -1,
                    epoch: -1,
                },
            ))
        };
        if id.is_empty() {
            return reply(out, err::INVALID_REQUEST);
        }
        if timeout_ms <= 0 || timeout_ms > TXN_TIMEOUT_MS_MAX {
            return reply(out, err::INVALID_TRANSACTION_TIMEOUT);
        }
        if !self.txns.contains_key(&id) {
            if self.txns.len() >= TXN_IDS_PER_SHARD_MAX {
                return reply(out, err::COORDINATOR_NOT_AVAILABLE);
            }
            let pid = self.fresh_pid(now_ms);
            self.txns.insert(
                id.clone(),
                Meta {
                    pid,
                    epoch: -1,
                    phase: Phase::Empty,
                    timeout_ms,
                    start_ms: -1,
                    partitions: BTreeSet::new(),
                    groups: BTreeSet::new(),
                    part: partition_for(&id),
                },
            );
        }
        let fresh = self.fresh_pid(now_ms);
        let Some(m) = self.txns.get_mut(&id) else {
            return;
        };
        // A producer that names itself (v3+, KIP-360) must be the current one.
        if pid >= 0 && (pid != m.pid || epoch != m.epoch) {
            return reply(out, err::PRODUCER_FENCED);
        }
        match m.phase {
            Phase::PrepareCommit | Phase::PrepareAbort => reply(out, err::CONCURRENT_TRANSACTIONS),
            Phase::Ongoing => {
                // Fence the old producer: abort its transaction under a new epoch (its
                // markers carry it, so partitions refuse the old one too). The caller
                // retries until the abort is complete.
                tracing::info!(shard = self.me, transactional_id = %id,
                    "a new producer of the id: aborting its open transaction");
                m.bump(fresh);
                m.phase = Phase::PrepareAbort;
                let res = TxnRes::Init {
                    error: err::CONCURRENT_TRANSACTIONS,
                    pid: -1,
                    epoch: -1,
                };
                self.log(&id, Some(dest), res, true, out);
            }
            _ => {
                m.bump(fresh);
                m.phase = Phase::Empty;
                m.timeout_ms = timeout_ms;
                m.partitions.clear();
                m.groups.clear();
                m.start_ms = -1;
                let res = TxnRes::Init {
                    error: err::NONE,
                    pid: m.pid,
                    epoch: m.epoch,
                };
                self.log(&id, Some(dest), res, false, out);
            }
        }
    }

    /// A request's record is durable (`ok`) or could not be written: its answer, and the
    /// marker flight it starts.
    pub fn finish(&mut self, w: Waiter, ok: bool) -> Option<(Dest, TxnRes)> {
        let res = if ok {
            if let Some(d) = w.drive {
                crash_point("prepare");
                self.drives.push(d);
            }
            if w.complete {
                crash_point("complete");
            }
            w.res
        } else {
            w.res.failed(err::COORDINATOR_NOT_AVAILABLE)
        };
        w.dest.map(|d| (d, res))
    }

    /// The periodic tick: transactions past their timeout are aborted (under a new epoch,
    /// fencing their producer); after recovery, prepared transactions are driven again.
    pub fn tick(&mut self, now_ms: u64, out: &mut Vec<Effect>) {
        if !self.resumed {
            self.resumed = true;
            for (id, m) in &self.txns {
                let drive = |commit, begin| Drive {
                    id: id.clone(),
                    pid: m.pid,
                    epoch: m.epoch,
                    commit,
                    partitions: m.partitions.iter().cloned().collect(),
                    groups: m.groups.iter().cloned().collect(),
                    begin,
                };
                if let Some(commit) = m.phase.prepared() {
                    tracing::info!(shard = self.me, transactional_id = %id, commit,
                        "completing a transaction prepared before the restart");
                    self.drives.push(drive(commit, false));
                } else if m.phase == Phase::Ongoing && !m.partitions.is_empty() {
                    self.drives.push(drive(false, true));
                }
            }
        }
        let now = now_ms as i64;
        let expired: Vec<String> = self
            .txns
            .iter()
            .filter(|(_, m)| {
                m.phase == Phase::Ongoing
                    && m.start_ms >= 0
                    && now.saturating_sub(m.start_ms) > m.timeout_ms as i64
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            let fresh = self.fresh_pid(now_ms);
            let Some(m) = self.txns.get_mut(&id) else {
                continue;
            };
            tracing::info!(shard = self.me, transactional_id = %id, timeout_ms = m.timeout_ms,
                "aborting a transaction past its timeout");
            m.bump(fresh);
            m.phase = Phase::PrepareAbort;
            self.log(&id, None, TxnRes::Error(err::NONE), true, out);
        }
    }

    /// Every transactional id of partition `p`, as records (an offsets file's rewrite).
    pub fn snapshot(&self, p: u32, out: &mut Vec<u8>) {
        for (id, m) in self.txns.iter().filter(|(_, m)| m.part == p) {
            store::encode(&Record::Txn(Txns::state(id, m)), out);
        }
    }
}

impl Meta {
    /// A new epoch (a new producer id once the epoch is used up, as Kafka does).
    fn bump(&mut self, fresh_pid: i64) {
        if self.epoch >= i16::MAX - 1 {
            self.pid = fresh_pid;
            self.epoch = 0;
        } else {
            self.epoch += 1;
        }
    }

    /// The transaction is open from now on (if it was not already).
    fn begin(&mut self, now_ms: i64) {
        if self.phase != Phase::Ongoing {
            self.phase = Phase::Ongoing;
            self.start_ms = now_ms;
            self.partitions.clear();
            self.groups.clear();
        }
    }
}

#[cfg(test)]
mod tests;
