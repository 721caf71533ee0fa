//! Kafka consumer groups (the classic protocol, as Kafka 3.x brokers serve it): the group
//! coordinator.
//!
//! Each group belongs to one `__consumer_offsets` partition, `abs(javaHash(group id)) % 50`
//! as in Kafka ([`partition_for`]), and each partition to the shard that owns the slot of
//! `"__consumer_offsets-<p>"`, as any topic-partition does: that shard is the group's
//! *coordinator* ([`coordinator`]). A group request read on any shard becomes a plain
//! flight with one part, [`GroupOp`], for the coordinator ([`rounds`]); the coordinator's
//! [`Groups`] answers at once (Heartbeat, OffsetFetch, DescribeGroups ...), after the
//! offsets file's write (OffsetCommit, DeleteGroups, OffsetDelete), or when the rebalance
//! gets there (JoinGroup, SyncGroup: the flight's part simply waits).
//!
//! - [`group`]: one group's state machine (membership, rebalance, timers), pure;
//! - [`store`]: the offsets files, their records, writes, rewrite and recovery;
//! - [`ops`]: what travels to the coordinator and back; [`rounds`]: the flight;
//!   [`subscription`]: the topics in a consumer's protocol metadata.
//!
//! Owned by its shard; built at start-up from the recovered offsets files (groups come back
//! `Empty`, with their offsets: membership is not persisted, so members rejoin after a
//! restart, as they do after a coordinator moves in Kafka). At shutdown waiting JoinGroup
//! and SyncGroup requests are answered NOT_COORDINATOR.

pub mod group;
pub mod ops;
pub mod rounds;
pub mod store;
pub mod subscription;
// Transactions: offsets staged by transactions, and the transaction coordinator's seam.
mod txn_offsets;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::limits::{
    GROUPS_PER_SHARD_MAX, GROUP_OFFSETS_MAX, GROUP_OFFSET_METADATA_MAX_BYTES,
    GROUP_OFFSET_PARTITIONS,
};
use crate::log::topics::{self, TopicMeta};
use crate::mesh::SlotTable;
use crate::runtime::io::{Completion, Io};
use crate::txn::Dest;
use group::{Group, Settings, State};
use ops::{
    CommitReq, Described, FetchReq, FetchRes, Fetched, GroupOp, GroupRes, JoinReq, JoinRes,
    LeaveRes, Listed, OffsetDeleteReq, OffsetDeleteRes, SyncRes,
};
use store::{OffsetLog, Record};

/// Kafka's error codes that groups answer with.
pub mod err {
    pub const NONE: i16 = 0;
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const OFFSET_METADATA_TOO_LARGE: i16 = 12;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const NOT_COORDINATOR: i16 = 16;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    pub const INVALID_GROUP_ID: i16 = 24;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const INVALID_SESSION_TIMEOUT: i16 = 26;
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    pub const INVALID_REQUEST: i16 = 42;
    pub const NON_EMPTY_GROUP: i16 = 68;
    pub const GROUP_ID_NOT_FOUND: i16 = 69;
    pub const MEMBER_ID_REQUIRED: i16 = 79;
    pub const GROUP_MAX_SIZE_REACHED: i16 = 81;
    pub const FENCED_INSTANCE_ID: i16 = 82;
    pub const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;
    pub const UNSTABLE_OFFSET_COMMIT: i16 = 88;
}

/// The internal topic whose partitions groups map to (it holds no log here: each partition
/// is an offsets file).
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Java's `String.hashCode` (over UTF-16 code units), which Kafka partitions groups by.
pub fn java_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
}

/// The `__consumer_offsets` partition of a group (Kafka's `partitionFor`:
/// `Utils.abs(groupId.hashCode) % offsets.topic.num.partitions`).
pub fn partition_for(group: &str) -> u32 {
    let h = java_hash(group);
    let abs = if h == i32::MIN { 0 } else { h.unsigned_abs() };
    abs % GROUP_OFFSET_PARTITIONS
}

/// The shard that coordinates `group`.
pub fn coordinator(owner: &SlotTable, group: &str) -> usize {
    owner.shard(topics::partition_slot(
        OFFSETS_TOPIC,
        partition_for(group) as i32,
    ))
}

/// The offsets partitions shard `me` coordinates.
pub fn partitions_of(owner: &SlotTable, me: usize) -> Vec<u32> {
    (0..GROUP_OFFSET_PARTITIONS)
        .filter(|&p| owner.shard(topics::partition_slot(OFFSETS_TOPIC, p as i32)) == me)
        .collect()
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_ms: i64,
}

/// A group as its coordinator holds it: membership and committed offsets.
struct Entry {
    group: Group,
    offsets: HashMap<(String, i32), Committed>,
    /// Its `__consumer_offsets` partition (which file its records go to).
    part: u32,
}

impl Entry {
    fn new(id: &str) -> Entry {
        Entry {
            group: Group::new(id.to_string()),
            offsets: HashMap::new(),
            part: partition_for(id),
        }
    }
}

/// A request waiting for its records to be durable.
enum Waiter {
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

/// A DeleteGroups part waiting for its groups' records.
struct Deletes {
    dest: Dest,
    errors: Vec<i16>,
    left: usize,
}

/// What a coordinator call needs from its shard.
pub struct GroupCtx<'a> {
    pub io: &'a mut Io,
    pub now: Instant,
    pub now_ms: u64,
    /// This shard's copy of the topic table (commits name partitions that exist).
    pub topics: &'a BTreeMap<String, TopicMeta>,
}

/// Why a shard's offsets could not be recovered at start-up.
#[derive(Debug, thiserror::Error)]
#[error("shard {shard}: recovering consumer group offsets under {dir}: {source}")]
pub struct RecoverError {
    shard: usize,
    dir: String,
    #[source]
    source: std::io::Error,
}

/// A shard's group coordinator: the groups of its `__consumer_offsets` partitions.
pub struct Groups {
    me: usize,
    groups: HashMap<String, Entry>,
    log: OffsetLog<Waiter>,
    settings: Settings,
    /// Member ids: this shard, the start time and a counter make them unique across
    /// shards and restarts.
    next_member: u64,
    started_ms: u64,
    draining: bool,
    replies: Vec<(Dest, GroupRes)>,
    deletes: HashMap<u64, Deletes>,
    next_batch: u64,
    /// The transaction coordinator of this shard's transactional ids (`kafka/txn/`).
    pub txns: crate::kafka::txn::Txns,
    /// Offsets staged by open transactions, by (group, producer id), in request order.
    staged: txn_offsets::Staged,
}

impl Groups {
    /// Open this shard's offsets files and rebuild the groups' offsets from them
    /// (start-up: blocking I/O is fine).
    pub fn recover(
        cfg: &Config,
        me: usize,
        owner: &SlotTable,
        now_ms: u64,
    ) -> Result<Groups, RecoverError> {
        let dir = dir(&cfg.data_dir);
        let parts = partitions_of(owner, me);
        let sync = cfg.fsync != crate::log::commit::Fsync::Never;
        let (log, records) =
            OffsetLog::recover(&dir, &parts, sync).map_err(|source| RecoverError {
                shard: me,
                dir: dir.display().to_string(),
                source,
            })?;
        let mut g = Groups::new(cfg, me, log, now_ms);
        for r in records {
            g.replay(r);
        }
        if !g.groups.is_empty() {
            tracing::info!(
                shard = me,
                groups = g.groups.len(),
                "recovered consumer group offsets"
            );
        }
        Ok(g)
    }

    fn new(cfg: &Config, me: usize, log: OffsetLog<Waiter>, now_ms: u64) -> Groups {
        Groups {
            me,
            groups: HashMap::new(),
            log,
            settings: settings(cfg),
            next_member: 0,
            started_ms: now_ms,
            draining: false,
            replies: Vec::new(),
            deletes: HashMap::new(),
            next_batch: 0,
            txns: crate::kafka::txn::Txns::new(me),
            staged: HashMap::new(),
        }
    }

    fn replay(&mut self, r: Record) {
        match r {
            Record::Commit {
                group,
                topic,
                partition,
                offset,
                leader_epoch,
                metadata,
                commit_ms,
            } => {
                let e = self
                    .groups
                    .entry(group.clone())
                    .or_insert_with(|| Entry::new(&group));
                e.offsets.insert(
                    (topic, partition),
                    Committed {
                        offset,
                        leader_epoch,
                        metadata,
                        commit_ms,
                    },
                );
            }
            Record::Tombstone {
                group,
                topic,
                partition,
            } => {
                if let Some(e) = self.groups.get_mut(&group) {
                    e.offsets.remove(&(topic, partition));
                }
            }
            Record::GroupGone { group } => {
                if let Some(e) = self.groups.get_mut(&group) {
                    e.offsets.clear();
                }
            }
            Record::Txn(t) => self.replay_txn(t),
        }
        self.groups
            .retain(|_, e| !(e.offsets.is_empty() && e.group.is_empty()));
    }

    /// Answers ready for their flights.
    pub fn take_replies(&mut self) -> Vec<(Dest, GroupRes)> {
        std::mem::take(&mut self.replies)
    }

    /// No offsets write in flight (the shard may exit).
    pub fn io_done(&self) -> bool {
        self.log.io_done()
    }

    /// Groups this shard coordinates (tests, metrics).
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    fn fresh_member_id(&mut self, prefix: &str) -> String {
        self.next_member += 1;
        format!(
            "{prefix}-{:x}-{:x}-{:x}",
            self.me, self.started_ms, self.next_member
        )
    }

    /// Run a group request on this, its coordinator shard.
    pub fn exec(&mut self, op: GroupOp, dest: Dest, ctx: &mut GroupCtx) {
        let now = ctx.now;
        let s = self.settings;
        let mut out = std::mem::take(&mut self.replies);
        match op {
            GroupOp::Join(req) => self.join(req, dest, now, &mut out),
            GroupOp::Sync(req) => match self.groups.get_mut(&req.group) {
                _ if req.group.is_empty() => {
                    out.push((dest, GroupRes::Sync(SyncRes::error(err::INVALID_GROUP_ID))))
                }
                _ if self.draining => {
                    out.push((dest, GroupRes::Sync(SyncRes::error(err::NOT_COORDINATOR))))
                }
                Some(e) => e.group.sync(req, dest, now, &mut out),
                None => out.push((dest, GroupRes::Sync(SyncRes::error(err::UNKNOWN_MEMBER_ID)))),
            },
            GroupOp::Heartbeat(req) => {
                let e = match self.groups.get_mut(&req.group) {
                    _ if req.group.is_empty() => err::INVALID_GROUP_ID,
                    Some(e) => e.group.heartbeat(&req, now),
                    None => err::UNKNOWN_MEMBER_ID,
                };
                out.push((dest, GroupRes::Error(e)));
            }
            GroupOp::Leave(req) => {
                let res = match self.groups.get_mut(&req.group) {
                    _ if req.group.is_empty() => LeaveRes {
                        error: err::INVALID_GROUP_ID,
                        members: Vec::new(),
                    },
                    Some(e) => e.group.leave(&req, now, &s, &mut out),
                    None => LeaveRes {
                        error: err::NONE,
                        members: vec![err::UNKNOWN_MEMBER_ID; req.members.len()],
                    },
                };
                out.push((dest, GroupRes::Leave(res)));
            }
            GroupOp::Commit(req) => self.commit(req, dest, ctx, &mut out),
            GroupOp::Fetch(reqs) => {
                let res = reqs.iter().map(|r| self.fetch(r)).collect();
                out.push((dest, GroupRes::Fetch(res)));
            }
            GroupOp::Describe(ids) => {
                let d = ids
                    .iter()
                    .map(|id| match self.groups.get(id) {
                        Some(e) => e.group.describe(),
                        None => Described {
                            state: State::Dead.name(),
                            ..Described::default()
                        },
                    })
                    .collect();
                out.push((dest, GroupRes::Describe(d)));
            }
            GroupOp::List(states) => {
                let mut listed: Vec<Listed> = self
                    .groups
                    .iter()
                    .filter(|(_, e)| {
                        let name = e.group.state().name();
                        states.is_empty() || states.iter().any(|s| s.eq_ignore_ascii_case(name))
                    })
                    .map(|(id, e)| Listed {
                        group: id.clone(),
                        protocol_type: e.group.protocol_type().to_string(),
                        state: e.group.state().name(),
                    })
                    .collect();
                listed.sort_by(|a, b| a.group.cmp(&b.group));
                out.push((dest, GroupRes::List(listed)));
            }
            GroupOp::Delete(ids) => self.delete(ids, dest, &mut out),
            GroupOp::OffsetDelete(req) => self.offset_delete(req, dest, &mut out),
            // Transactions (`txn_offsets.rs`).
            GroupOp::Txn(op) => self.txn_exec(*op, dest, ctx, &mut out),
            GroupOp::TxnCommit(req) => self.txn_commit(req, dest, ctx, &mut out),
            GroupOp::TxnMarker { group, pid, commit } => {
                self.txn_marker(group, pid, commit, dest, &mut out)
            }
        }
        self.replies = out;
    }

    fn join(&mut self, req: JoinReq, dest: Dest, now: Instant, out: &mut Vec<(Dest, GroupRes)>) {
        let s = self.settings;
        let fail = |out: &mut Vec<(Dest, GroupRes)>, e| {
            out.push((dest, GroupRes::Join(JoinRes::error(&req.member, e))))
        };
        if req.group.is_empty() {
            return fail(out, err::INVALID_GROUP_ID);
        }
        if self.draining {
            return fail(out, err::NOT_COORDINATOR);
        }
        let session = Duration::from_millis(req.session_timeout_ms.max(0) as u64);
        if req.session_timeout_ms < 0 || session < s.min_session || session > s.max_session {
            return fail(out, err::INVALID_SESSION_TIMEOUT);
        }
        if !self.groups.contains_key(&req.group) {
            // A group is created by a member without an id only.
            if !req.member.is_empty() {
                return fail(out, err::UNKNOWN_MEMBER_ID);
            }
            if self.groups.len() >= GROUPS_PER_SHARD_MAX {
                return fail(out, err::COORDINATOR_NOT_AVAILABLE);
            }
            self.groups
                .insert(req.group.clone(), Entry::new(&req.group));
        }
        let prefix = req
            .instance
            .clone()
            .unwrap_or_else(|| req.client_id.clone());
        let fresh = self.fresh_member_id(&prefix);
        if let Some(e) = self.groups.get_mut(&req.group) {
            e.group.join(req, fresh, dest, now, &s, out);
        }
    }

    fn commit(
        &mut self,
        req: CommitReq,
        dest: Dest,
        ctx: &mut GroupCtx,
        out: &mut Vec<(Dest, GroupRes)>,
    ) {
        let n = req.offsets.len();
        let all = |e: i16| GroupRes::Commit(vec![e; n]);
        if !self.groups.contains_key(&req.group) {
            if req.generation >= 0 {
                // A member of a generation this coordinator never had (it restarted, or
                // the group was deleted): it must rejoin.
                return out.push((dest, all(err::ILLEGAL_GENERATION)));
            }
            if self.groups.len() >= GROUPS_PER_SHARD_MAX {
                return out.push((dest, all(err::COORDINATOR_NOT_AVAILABLE)));
            }
            // A group that commits without group management (assign()).
            self.groups
                .insert(req.group.clone(), Entry::new(&req.group));
        }
        let Some(e) = self.groups.get_mut(&req.group) else {
            return;
        };
        if let Err(code) = e.group.check_commit(
            req.generation,
            &req.member,
            req.instance.as_deref(),
            ctx.now,
        ) {
            return out.push((dest, all(code)));
        }
        let mut errors = Vec::with_capacity(n);
        let mut apply = Vec::new();
        let mut bytes = Vec::new();
        for o in req.offsets {
            let exists = ctx
                .topics
                .get(&o.topic)
                .is_some_and(|t| (0..t.partitions).contains(&o.partition));
            let metadata = o.metadata.unwrap_or_default();
            let key = (o.topic, o.partition);
            let error = if !exists {
                err::UNKNOWN_TOPIC_OR_PARTITION
            } else if metadata.len() > GROUP_OFFSET_METADATA_MAX_BYTES
                || (e.offsets.len() + apply.len() >= GROUP_OFFSETS_MAX
                    && !e.offsets.contains_key(&key))
            {
                err::OFFSET_METADATA_TOO_LARGE
            } else {
                err::NONE
            };
            errors.push(error);
            if error != err::NONE {
                continue;
            }
            let c = Committed {
                offset: o.offset,
                leader_epoch: o.leader_epoch,
                metadata,
                commit_ms: ctx.now_ms as i64,
            };
            store::encode(
                &Record::Commit {
                    group: req.group.clone(),
                    topic: key.0.clone(),
                    partition: key.1,
                    offset: c.offset,
                    leader_epoch: c.leader_epoch,
                    metadata: c.metadata.clone(),
                    commit_ms: c.commit_ms,
                },
                &mut bytes,
            );
            apply.push((key, c));
        }
        if apply.is_empty() {
            return out.push((dest, GroupRes::Commit(errors)));
        }
        let w = Waiter::Commit {
            dest,
            group: req.group,
            errors,
            apply,
        };
        let part = e.part;
        if let Err(w) = self.log.append(part, |b| b.extend_from_slice(&bytes), w) {
            self.finish(w, false, out);
        }
    }

    fn fetch(&self, req: &FetchReq) -> FetchRes {
        let e = self.groups.get(&req.group);
        let none = |partition| Fetched {
            partition,
            offset: -1,
            leader_epoch: -1,
            metadata: String::new(),
            error: err::NONE,
        };
        let found = |topic: &str, partition: i32| match e
            .and_then(|e| e.offsets.get(&(topic.to_string(), partition)))
        {
            // Transactions: offsets an open transaction staged (`txn_offsets.rs`).
            _ if req.require_stable && self.unstable(&req.group, topic, partition) => Fetched {
                error: err::UNSTABLE_OFFSET_COMMIT,
                ..none(partition)
            },
            Some(c) => Fetched {
                partition,
                offset: c.offset,
                leader_epoch: c.leader_epoch,
                metadata: c.metadata.clone(),
                error: err::NONE,
            },
            None => none(partition),
        };
        let topics = match &req.topics {
            Some(ts) => ts
                .iter()
                .map(|(t, ps)| (t.clone(), ps.iter().map(|&p| found(t, p)).collect()))
                .collect(),
            None => {
                let mut by_topic: BTreeMap<String, Vec<Fetched>> = BTreeMap::new();
                if let Some(e) = e {
                    for (t, p) in e.offsets.keys() {
                        by_topic.entry(t.clone()).or_default().push(found(t, *p));
                    }
                }
                by_topic
                    .into_iter()
                    .map(|(t, mut ps)| {
                        ps.sort_by_key(|f| f.partition);
                        (t, ps)
                    })
                    .collect()
            }
        };
        FetchRes {
            error: err::NONE,
            topics,
        }
    }

    /// DeleteGroups for this shard's groups of a request: each empty one gets a durable
    /// record; the part is answered when the last of them is written.
    fn delete(&mut self, ids: Vec<String>, dest: Dest, out: &mut Vec<(Dest, GroupRes)>) {
        self.next_batch += 1;
        let batch = self.next_batch;
        let mut errors = Vec::with_capacity(ids.len());
        let mut writes = Vec::new();
        for (i, id) in ids.into_iter().enumerate() {
            let e = match self.groups.get(&id).map(|e| (e.group.state(), e.part)) {
                None | Some((State::Dead, _)) => err::GROUP_ID_NOT_FOUND,
                Some((State::Empty, part)) => {
                    writes.push((i, id, part));
                    err::NONE
                }
                Some(_) => err::NON_EMPTY_GROUP,
            };
            errors.push(e);
        }
        self.deletes.insert(
            batch,
            Deletes {
                dest,
                errors,
                left: writes.len(),
            },
        );
        for (index, group, part) in writes {
            let rec = Record::GroupGone {
                group: group.clone(),
            };
            let w = Waiter::Delete {
                batch,
                index,
                group,
            };
            if let Err(w) = self.log.append(part, |b| store::encode(&rec, b), w) {
                self.finish(w, false, out);
            }
        }
        self.deletes_done(batch, out);
    }

    /// Answer a DeleteGroups part once none of its writes is outstanding.
    fn deletes_done(&mut self, batch: u64, out: &mut Vec<(Dest, GroupRes)>) {
        if self.deletes.get(&batch).is_some_and(|d| d.left == 0) {
            if let Some(d) = self.deletes.remove(&batch) {
                out.push((d.dest, GroupRes::Deleted(d.errors)));
            }
        }
    }

    fn offset_delete(&mut self, req: OffsetDeleteReq, dest: Dest, out: &mut Vec<(Dest, GroupRes)>) {
        let Some(e) = self.groups.get(&req.group) else {
            return out.push((
                dest,
                GroupRes::OffsetDelete(OffsetDeleteRes {
                    error: err::GROUP_ID_NOT_FOUND,
                    partitions: Vec::new(),
                }),
            ));
        };
        // Topics the group consumes now keep their offsets.
        let subscribed: Vec<String> = match e.group.state() {
            State::Empty => Vec::new(),
            State::Dead => {
                return out.push((
                    dest,
                    GroupRes::OffsetDelete(OffsetDeleteRes {
                        error: err::GROUP_ID_NOT_FOUND,
                        partitions: Vec::new(),
                    }),
                ))
            }
            _ if e.group.protocol_type() == "consumer" => e
                .group
                .subscriptions()
                .flat_map(|m| subscription::topics(&m).unwrap_or_default())
                .collect(),
            _ => {
                return out.push((
                    dest,
                    GroupRes::OffsetDelete(OffsetDeleteRes {
                        error: err::NON_EMPTY_GROUP,
                        partitions: Vec::new(),
                    }),
                ))
            }
        };
        let mut res = OffsetDeleteRes::default();
        let mut remove = Vec::new();
        let mut bytes = Vec::new();
        for (topic, partition) in req.partitions {
            if subscribed.contains(&topic) {
                res.partitions.push(err::GROUP_SUBSCRIBED_TO_TOPIC);
                continue;
            }
            res.partitions.push(err::NONE);
            if e.offsets.contains_key(&(topic.clone(), partition)) {
                store::encode(
                    &Record::Tombstone {
                        group: req.group.clone(),
                        topic: topic.clone(),
                        partition,
                    },
                    &mut bytes,
                );
                remove.push((topic, partition));
            }
        }
        if remove.is_empty() {
            return out.push((dest, GroupRes::OffsetDelete(res)));
        }
        let part = e.part;
        let w = Waiter::OffsetDelete {
            dest,
            group: req.group,
            res,
            remove,
        };
        if let Err(w) = self.log.append(part, |b| b.extend_from_slice(&bytes), w) {
            self.finish(w, false, out);
        }
    }

    /// A request's records are durable (`ok`) or could not be written: apply and answer.
    fn finish(&mut self, w: Waiter, ok: bool, out: &mut Vec<(Dest, GroupRes)>) {
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

    fn rewrite_due(&mut self, io: &mut Io) {
        for p in self.log.rewrites_due() {
            let snap = self.snapshot(p);
            self.log.start_rewrite(p, snap, io);
        }
    }

    /// The periodic tick: group timers, dropping groups with nothing left, and rewriting
    /// offsets files that grew.
    pub fn tick(&mut self, ctx: &mut GroupCtx) {
        let s = self.settings;
        let mut out = std::mem::take(&mut self.replies);
        for e in self.groups.values_mut() {
            e.group.tick(ctx.now, &s, &mut out);
        }
        self.groups.retain(|_, e| {
            !(e.offsets.is_empty() && e.group.is_empty() && e.group.state() == State::Empty)
        });
        self.txn_tick(ctx.now_ms, &mut out);
        self.replies = out;
        self.rewrite_due(ctx.io);
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

    /// Shutdown: waiting joins and syncs are answered NOT_COORDINATOR, and no new ones wait.
    pub fn unload(&mut self) {
        self.draining = true;
        let mut out = std::mem::take(&mut self.replies);
        for e in self.groups.values_mut() {
            e.group.unload(&mut out);
        }
        self.replies = out;
    }
}

fn settings(cfg: &Config) -> Settings {
    Settings {
        min_session: Duration::from_millis(cfg.group_min_session_timeout_ms),
        max_session: Duration::from_millis(cfg.group_max_session_timeout_ms),
        initial_delay: Duration::from_millis(cfg.group_initial_rebalance_delay_ms),
    }
}

/// Where a shard's offsets files live.
pub fn dir(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("groups")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_map_to_partitions_as_kafka_does() {
        // Java: "a".hashCode() == 97; "consumer-group".hashCode() is negative.
        assert_eq!(java_hash("a"), 97);
        assert_eq!(partition_for("a"), 47);
        assert_eq!(java_hash("polygenelubricants"), i32::MIN);
        assert_eq!(partition_for("polygenelubricants"), 0);
        assert_eq!(java_hash("Aa"), java_hash("BB"));
        let h = java_hash("my-group");
        assert_eq!(partition_for("my-group"), h.unsigned_abs() % 50);
        // Every partition has one coordinator, and every shard gets some with 2 shards.
        let owner = SlotTable::new(2);
        let (a, b) = (partitions_of(&owner, 0), partitions_of(&owner, 1));
        assert_eq!(a.len() + b.len(), GROUP_OFFSET_PARTITIONS as usize);
        assert!(!a.is_empty() && !b.is_empty());
    }
}
