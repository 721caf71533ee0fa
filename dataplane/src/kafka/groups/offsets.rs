//! Offsets on the coordinator: OffsetCommit (validated against the group, written to its
//! partition's offsets file, applied and answered once durable), OffsetFetch (what is
//! committed; an offset an open transaction staged is UNSTABLE_OFFSET_COMMIT to a fetch
//! that requires stable offsets) and OffsetDelete (a tombstone per partition the group does
//! not consume).

use std::collections::BTreeMap;

use super::group::State;
use super::ops::{
    CommitReq, FetchReq, FetchRes, Fetched, GroupRes, OffsetDeleteReq, OffsetDeleteRes,
};
use super::store::{self, Record};
use super::{err, subscription, Committed, GroupCtx, Groups, Waiter};
use crate::limits::{GROUPS_PER_SHARD_MAX, GROUP_OFFSETS_MAX, GROUP_OFFSET_METADATA_MAX_BYTES};
use crate::log::topics::TopicMeta;
use crate::txn::Dest;

impl Groups {
    pub(super) fn commit(
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
            self.entry(&req.group);
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
            let metadata = o.metadata.unwrap_or_default();
            let key = (o.topic, o.partition);
            let full =
                e.offsets.len() + apply.len() >= GROUP_OFFSETS_MAX && !e.offsets.contains_key(&key);
            let error = offset_error(ctx.topics, &key.0, key.1, &metadata, full);
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
            store::encode(&commit_record(&req.group, &key.0, key.1, &c), &mut bytes);
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
        self.append(part, |b| b.extend_from_slice(&bytes), w, out);
    }

    pub(super) fn fetch(&self, req: &FetchReq) -> FetchRes {
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

    pub(super) fn offset_delete(
        &mut self,
        req: OffsetDeleteReq,
        dest: Dest,
        out: &mut Vec<(Dest, GroupRes)>,
    ) {
        let Some(e) = self.groups.get(&req.group) else {
            return out.push((
                dest,
                GroupRes::OffsetDelete(OffsetDeleteRes::error(err::GROUP_ID_NOT_FOUND)),
            ));
        };
        // Topics the group consumes now keep their offsets.
        let subscribed: Vec<String> = match e.group.state() {
            State::Empty => Vec::new(),
            State::Dead => {
                return out.push((
                    dest,
                    GroupRes::OffsetDelete(OffsetDeleteRes::error(err::GROUP_ID_NOT_FOUND)),
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
                    GroupRes::OffsetDelete(OffsetDeleteRes::error(err::NON_EMPTY_GROUP)),
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
        self.append(part, |b| b.extend_from_slice(&bytes), w, out);
    }
}

/// The error of one offset of a commit, OffsetCommit's or TxnOffsetCommit's: its partition
/// must exist, and its metadata fit; `full` when the group holds as many offsets as it may.
pub(super) fn offset_error(
    topics: &BTreeMap<String, TopicMeta>,
    topic: &str,
    partition: i32,
    metadata: &str,
    full: bool,
) -> i16 {
    let exists = topics
        .get(topic)
        .is_some_and(|t| (0..t.partitions).contains(&partition));
    if !exists {
        err::UNKNOWN_TOPIC_OR_PARTITION
    } else if metadata.len() > GROUP_OFFSET_METADATA_MAX_BYTES || full {
        err::OFFSET_METADATA_TOO_LARGE
    } else {
        err::NONE
    }
}

/// The record of a committed offset (a commit's, or a rewrite's snapshot's).
pub(super) fn commit_record(group: &str, topic: &str, partition: i32, c: &Committed) -> Record {
    Record::Commit {
        group: group.to_string(),
        topic: topic.to_string(),
        partition,
        offset: c.offset,
        leader_epoch: c.leader_epoch,
        metadata: c.metadata.clone(),
        commit_ms: c.commit_ms,
    }
}
