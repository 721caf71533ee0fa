//! The owner shard's side of a partition move: which of its partitions are moving and how
//! each answers meanwhile, and the commands a pull (a plain thread, `pull/mod.rs`) sends it
//! through the shard's control channel.
//!
//! A moving partition is in one of three states, kept in `Logs::moves` and, across
//! restarts, in the partition folder's `moved` file (written by the thread that asks for
//! the state, before it asks, so a shard never blocks on it):
//!
//! - `Importing` (the new owner, while it copies): the shard does not hold the partition at
//!   all (the copy writes its folder from the pull's thread); every request for it answers
//!   NOT_LEADER_OR_FOLLOWER.
//! - `Fenced` (the old owner, while the new one copies the last batches): produce,
//!   AddPartitionsToTxn and DeleteRecords answer NOT_LEADER_OR_FOLLOWER, so its end no
//!   longer moves; fetches (the copy's) and transaction markers (open transactions ending)
//!   are served.
//! - `Retired` (the old owner, after the new one serves): every request answers
//!   NOT_LEADER_OR_FOLLOWER. The files stay until the topic is deleted.
//! - `Copied` (the new owner, once a move's copy is complete, until the map gives it the
//!   partition): the shard holds the partition (recovered, ready) but every request
//!   answers NOT_LEADER_OR_FOLLOWER. The map's flip serves it (`cluster/pmove.rs`); a flip
//!   that never comes (the change aborted) leaves a copy that is never served, which a
//!   later pull resumes (it is a prefix of the source's log) or wipes.
//!
//! NOT_LEADER_OR_FOLLOWER is retriable: librdkafka and the Java client refresh metadata and
//! send again, so a produce during the pause is delayed, not failed.

use std::sync::mpsc::Sender;

use super::super::files::{Job, Then};
use super::super::ops::{LogOp, LogResult};
use super::super::state::PartState;
use super::super::topics::TopicMeta;
use super::super::{LogCtx, Logs};
use crate::cluster::kafka::NOT_LEADER_OR_FOLLOWER;
use crate::proto::kafka::ErrorCode;

/// How a moving partition answers on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    Importing,
    Fenced,
    Retired,
    Copied,
}

impl Move {
    pub fn as_str(self) -> &'static str {
        match self {
            Move::Importing => "importing",
            Move::Fenced => "fenced",
            Move::Retired => "retired",
            Move::Copied => "copied",
        }
    }

    /// The state a `moved` file's first word names (a `copied` file may add the map epoch
    /// its move started from).
    pub fn parse(s: &str) -> Option<Move> {
        match s.split_whitespace().next().unwrap_or("") {
            "importing" => Some(Move::Importing),
            "fenced" => Some(Move::Fenced),
            "retired" => Some(Move::Retired),
            "copied" => Some(Move::Copied),
            _ => None,
        }
    }
}

/// Where the old owner's partition stands once fenced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fence {
    /// No append is planned or being written, and no transaction is open: `end` will not
    /// move again.
    pub settled: bool,
    /// The high watermark (every acknowledged record is below it).
    pub end: i64,
    pub log_start: i64,
}

/// What the import step found on the new owner.
#[derive(Debug, Clone)]
pub struct Held {
    pub meta: TopicMeta,
    /// The partition was already importing (a pull that ran before a restart, or one
    /// started again): its folder holds what that copy wrote.
    pub resumed: bool,
    /// The partition was retired here (this node gave it away earlier): its folder holds
    /// that old copy, which the pull wipes before it copies (`pull::wipe_retired`).
    pub wipe: bool,
    /// The partition held a complete copy the map never gave this node (`Copied`): the pull
    /// keeps it when it is a prefix of the source's log, else wipes it.
    pub check: bool,
}

/// Why a shard refused a move command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoveError {
    #[error("topic {0} does not exist on this node")]
    NoTopic(String),
    #[error("partition {1} of topic {0} does not exist on this node")]
    NoPartition(String, i32),
    #[error("partition {topic}-{partition} already holds records ({end} is its end offset); an import goes only into an empty partition (delete the topic here first)")]
    NotEmpty {
        topic: String,
        partition: i32,
        end: i64,
    },
    #[error("partition {0}-{1} is not importing here")]
    NotImporting(String, i32),
    #[error("partition {0}-{1} is importing here; it has nothing to release")]
    Importing(String, i32),
    #[error("partition {0}-{1} is retired here but still busy (an append, a segment open or a compaction pass); try again")]
    RetiredBusy(String, i32),
}

/// A command for the shard that owns a partition.
pub enum ShardCmd {
    /// New owner: take the partition out of service for an import. It must be empty, or
    /// already importing, or retired (given away earlier: the pull wipes it first); the
    /// answer is its topic.
    Import {
        topic: String,
        partition: i32,
        reply: Sender<Result<Held, MoveError>>,
    },
    /// New owner: hold the partition the import recovered from its folder, and serve it
    /// (`hold`: false) or keep it `Copied` until the map gives it here (`hold`: true).
    Install {
        part: Box<PartState>,
        hold: bool,
        reply: Sender<Result<(), MoveError>>,
    },
    /// Old owner: set the partition's state (`Fenced` or `Retired`; `None`: serve it
    /// again) and answer where it stands.
    Release {
        topic: String,
        partition: i32,
        to: Option<Move>,
        reply: Sender<Result<Fence, MoveError>>,
    },
}

/// The answer a moving partition gives `op` instead of running it, if any.
fn refused(op: &LogOp, state: Move) -> Option<LogResult> {
    let all = state != Move::Fenced;
    let produced = LogResult::Produced {
        error: NOT_LEADER_OR_FOLLOWER,
        base_offset: -1,
        log_start: -1,
    };
    let offset = LogResult::Offset {
        error: NOT_LEADER_OR_FOLLOWER,
        offset: -1,
        timestamp: -1,
    };
    match op {
        LogOp::Produce { .. } => Some(produced),
        LogOp::TxnBegin { .. } => Some(LogResult::Created {
            error: NOT_LEADER_OR_FOLLOWER,
        }),
        LogOp::DeleteRecords { .. } => Some(offset),
        LogOp::TxnMarker { .. } if all => Some(produced),
        LogOp::ListOffsets { .. } if all => Some(offset),
        LogOp::Fetch { .. } if all => Some(LogResult::Fetched {
            error: NOT_LEADER_OR_FOLLOWER,
            high_watermark: -1,
            log_start: -1,
            records: None,
            last_stable: -1,
            aborted: Vec::new(),
        }),
        _ => None,
    }
}

/// The topic and partition a partition op names.
fn names(op: &LogOp) -> Option<(&str, i32)> {
    match op {
        LogOp::Produce {
            topic, partition, ..
        }
        | LogOp::Fetch {
            topic, partition, ..
        }
        | LogOp::ListOffsets {
            topic, partition, ..
        }
        | LogOp::TxnBegin {
            topic, partition, ..
        }
        | LogOp::TxnMarker {
            topic, partition, ..
        }
        | LogOp::DeleteRecords {
            topic, partition, ..
        } => Some((topic, *partition)),
        _ => None,
    }
}

impl Logs {
    /// If `op` is for a moving partition that does not serve it, its answer. A deleted
    /// topic's partitions stop moving (a pull of one then fails at its install, and a
    /// topic created again under the name starts serving).
    pub(in crate::log) fn moved_answer(&mut self, op: &LogOp) -> Option<LogResult> {
        if self.moves.is_empty() {
            return None;
        }
        if let LogOp::DeleteTopic(name) = op {
            self.moves.retain(|(t, _), _| t != name);
            return None;
        }
        let (topic, partition) = names(op)?;
        let state = *self.moves.get(&(topic.to_string(), partition))?;
        refused(op, state)
    }

    /// Note a moving partition found at start-up (its `moved` file).
    pub(in crate::log) fn note_moved(&mut self, topic: &str, partition: i32, state: Move) {
        self.moves.insert((topic.to_string(), partition), state);
    }

    /// Run a command of a partition move.
    pub fn pull_cmd(&mut self, cmd: ShardCmd, ctx: &mut LogCtx) {
        match cmd {
            ShardCmd::Import {
                topic,
                partition,
                reply,
            } => {
                let _ = reply.send(self.hold_for_import(&topic, partition, ctx));
            }
            ShardCmd::Install { part, hold, reply } => {
                let _ = reply.send(self.install_import(part, hold));
            }
            ShardCmd::Release {
                topic,
                partition,
                to,
                reply,
            } => {
                let _ = reply.send(self.release(&topic, partition, to));
            }
        }
    }

    fn hold_for_import(
        &mut self,
        topic: &str,
        partition: i32,
        ctx: &mut LogCtx,
    ) -> Result<Held, MoveError> {
        let Some(meta) = self.topics.get(topic).cloned() else {
            return Err(MoveError::NoTopic(topic.to_string()));
        };
        if partition < 0 || partition >= meta.partitions {
            return Err(MoveError::NoPartition(topic.to_string(), partition));
        }
        let name = (topic.to_string(), partition);
        let copied = self.moves.get(&name) == Some(&Move::Copied);
        let retired = match self.moves.get(&name) {
            Some(Move::Importing) => {
                return Ok(Held {
                    meta,
                    resumed: true,
                    wipe: false,
                    check: false,
                })
            }
            Some(Move::Retired | Move::Copied) => true,
            Some(Move::Fenced) => {
                return Err(MoveError::NotImporting(topic.to_string(), partition))
            }
            None => false,
        };
        let Some(key) = self.find(topic, partition) else {
            return Err(MoveError::NoPartition(topic.to_string(), partition));
        };
        let Some(p) = self.parts.get(key) else {
            return Err(MoveError::NoPartition(topic.to_string(), partition));
        };
        // No append, segment open or compaction of it in flight, so its handles may simply
        // close: a partition nothing was ever written to, or one retired or copied here (it
        // answers nothing, so only what was in flight when it was fenced could still be).
        let idle = p.pending.is_empty() && p.committing.is_empty() && p.opening.is_empty();
        if retired {
            // Nothing of its folder may still be written or unlinked once the pull renames
            // it away: no compaction pass, retention unlink or log start write in flight.
            let files_busy = self.compact.works_on(key)
                || self.retaining.contains_key(&key)
                || self.start_writes.contains_key(&key);
            if !idle || files_busy {
                return Err(MoveError::RetiredBusy(topic.to_string(), partition));
            }
        } else if !(idle && p.hw == 0 && p.log.size_bytes() == 0 && p.log.log_start() == 0) {
            return Err(MoveError::NotEmpty {
                topic: topic.to_string(),
                partition,
                end: p.log.next_offset(),
            });
        }
        self.drop_read_ahead(key, ErrorCode::UnknownTopicOrPartition, ctx);
        if let Some(mut ps) = self.remove_part(key) {
            let mut job = Job::new(
                format!("closing {topic}-{partition} for an import"),
                Then::Nothing,
            );
            for (_, (f, _)) in ps.files.drain() {
                job.close(f);
            }
            for (_, (f, _)) in ps.writers.drain() {
                job.close(f);
            }
            if job.has_steps() {
                self.start_job(job, ctx);
            }
        }
        self.moves.insert(name, Move::Importing);
        Ok(Held {
            meta,
            resumed: copied,
            wipe: retired && !copied,
            check: copied,
        })
    }

    fn install_import(&mut self, part: Box<PartState>, hold: bool) -> Result<(), MoveError> {
        let name = (part.topic.clone(), part.partition);
        if self.moves.get(&name) != Some(&Move::Importing) || self.find(&name.0, name.1).is_some() {
            return Err(MoveError::NotImporting(name.0, name.1));
        }
        if !self.topics.contains_key(&name.0) {
            return Err(MoveError::NoTopic(name.0));
        }
        if hold {
            self.moves.insert(name, Move::Copied);
        } else {
            self.moves.remove(&name);
        }
        let key = self.add_part(*part);
        self.cache_recovered_readers(key);
        Ok(())
    }

    fn release(
        &mut self,
        topic: &str,
        partition: i32,
        to: Option<Move>,
    ) -> Result<Fence, MoveError> {
        let name = (topic.to_string(), partition);
        if self.moves.get(&name) == Some(&Move::Importing) {
            return Err(MoveError::Importing(topic.to_string(), partition));
        }
        let Some(p) = self.find(topic, partition).and_then(|k| self.parts.get(k)) else {
            return Err(MoveError::NoPartition(topic.to_string(), partition));
        };
        let fence = Fence {
            settled: p.pending.is_empty()
                && p.committing.is_empty()
                && p.opening.is_empty()
                && p.txn.last_stable(p.hw) == p.hw,
            end: p.hw,
            log_start: p.log.log_start(),
        };
        match to {
            Some(Move::Importing) => return Err(MoveError::NotImporting(name.0, name.1)),
            Some(m) => {
                self.moves.insert(name, m);
            }
            None => {
                self.moves.remove(&name);
            }
        }
        Ok(fence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn produce() -> LogOp {
        LogOp::Produce {
            topic: "t".into(),
            partition: 0,
            records: Bytes::new(),
        }
    }

    fn fetch() -> LogOp {
        LogOp::Fetch {
            topic: "t".into(),
            partition: 0,
            offset: 0,
            max_bytes: 1,
            committed: false,
        }
    }

    #[test]
    fn a_fenced_partition_refuses_writes_and_serves_reads() {
        assert_eq!(
            refused(&produce(), Move::Fenced).map(|r| r.error()),
            Some(NOT_LEADER_OR_FOLLOWER)
        );
        assert!(refused(&fetch(), Move::Fenced).is_none());
        let marker = LogOp::TxnMarker {
            topic: "t".into(),
            partition: 0,
            pid: 1,
            epoch: 0,
            commit: true,
        };
        assert!(refused(&marker, Move::Fenced).is_none());
        for m in [Move::Importing, Move::Retired, Move::Copied] {
            for op in [produce(), fetch(), marker.clone()] {
                assert_eq!(
                    refused(&op, m).map(|r| r.error()),
                    Some(NOT_LEADER_OR_FOLLOWER)
                );
            }
        }
    }

    #[test]
    fn states_round_trip_through_their_names() {
        for m in [Move::Importing, Move::Fenced, Move::Retired, Move::Copied] {
            assert_eq!(Move::parse(m.as_str()), Some(m));
        }
        assert_eq!(Move::parse("copied 7\n"), Some(Move::Copied));
        assert_eq!(Move::parse("serving"), None);
    }
}
