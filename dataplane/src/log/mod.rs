//! The durable log: the pure parts (RecordBatch v2 validation in [`batch`], a partition's
//! segments, index, recovery and retention in [`partition`], topics in [`topics`], the
//! operations that travel to an owner in [`ops`]) and, on top of them, a shard's partitions
//! and their I/O ([`Logs`]).
//!
//! The seam between the two is *plan, then execute*: a partition plans an append (offsets,
//! file, position) or a read (file, byte range) without I/O, and [`Logs`] carries the plan
//! out through the shard's io_uring ([`crate::runtime::io::Io`]), handed in with every call
//! in a [`LogCtx`] together with the clock and a list the results go to. No file system
//! call blocks a serving shard; only start-up recovery ([`Logs::recover`]) reads and
//! truncates with plain calls.
//!
//! - [`commit`]: group commit of produced batches, durability (`--fsync`), retention;
//! - [`fetch`]: reads for Fetch and ListOffsets, clamped to acknowledged data, and
//!   read-ahead of a consumer's next range;
//! - [`files`]: file jobs (open, mkdir, unlink, rename, fsync ... one after another);
//! - [`topic_jobs`]: creating and deleting a topic's files on this shard;
//! - [`producers`]: idempotent producers' sequence state; [`state`]: a partition's state;
//! - [`compact`]: log compaction (`cleanup.policy=compact`), in slices of file jobs.
//!
//! Owned by one shard; created at start-up, dropped when the shard exits, which waits until
//! no operation of the log is in flight.

pub mod batch;
pub mod commit;
pub mod compact;
pub mod fetch;
pub mod files;
pub mod ops;
pub mod partition;
pub mod producers;
// Partition moves between nodes (issue 12, f-pull).
pub mod pull;
pub mod readers;
pub mod records;
pub mod recovery;
pub mod state;
pub mod topic_config;
pub mod topic_jobs;
pub mod topics;
// Transactions: the last stable offset, the aborted index, markers.
pub mod txn_index;

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::config::Config;
use crate::mesh::SlotTable;
use crate::metrics::Counters;
use crate::runtime::io::{Completion, Io};
use crate::runtime::slab::{Slab, SlabKey};
use crate::runtime::{Kind, Owner};
use crate::txn::Dest;
use ops::{LogOp, LogResult};
use state::PartState;
use topics::TopicMeta;

/// What every log call needs from its shard.
pub struct LogCtx<'a> {
    pub io: &'a mut Io,
    pub cfg: &'a Config,
    pub now_ms: u64,
    /// This shard, and who owns which slot (a topic's partitions spread over the shards).
    pub me: usize,
    pub owner: &'a SlotTable,
    /// Results, for the shard to deliver.
    pub replies: &'a mut Vec<(Dest, LogResult)>,
    pub counters: &'a mut Counters,
}

impl LogCtx<'_> {
    pub fn reply(&mut self, to: Dest, r: LogResult) {
        self.replies.push((to, r));
    }

    fn owns(&self, topic: &str, partition: i32) -> bool {
        self.owner.shard(topics::partition_slot(topic, partition)) == self.me
    }
}

/// Why a shard's log could not be recovered at start-up.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error("shard {shard}: reading the topics under --data-dir: {source} (if it says too many open files, raise `ulimit -n`)")]
    Topics {
        shard: usize,
        #[source]
        source: std::io::Error,
    },
    #[error("shard {shard}: opening {topic}-{partition}: {source} (if it says too many open files, raise `ulimit -n`)")]
    Partition {
        shard: usize,
        topic: String,
        partition: i32,
        #[source]
        source: std::io::Error,
    },
}

/// Errors that say the machine, not the data, is the problem.
fn is_environment(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::EACCES | libc::EPERM)
    )
}

/// The log side of a shard: the topic table and the partitions this shard owns.
#[derive(Default)]
pub struct Logs {
    pub topics: BTreeMap<String, TopicMeta>,
    /// The partitions by slot. A deleted partition's slot is reused; its generation goes
    /// up, so completions still in flight for the old partition are recognised and
    /// dropped (the buffers they bring back are simply freed).
    parts: Slab<PartState>,
    index: HashMap<(String, i32), SlabKey>,
    /// Partitions with appends planned this turn (group commit runs once per turn).
    dirty: Vec<SlabKey>,
    /// The list `flush` works through while `dirty` collects the next turn's; the two are
    /// swapped, so neither is allocated again each turn.
    flushing: Vec<SlabKey>,
    reads: fetch::Reads,
    jobs: files::Jobs,
    /// Topics being created or deleted on this shard: another create of the name is
    /// refused (Kafka: TOPIC_ALREADY_EXISTS, "marked for deletion") until that is done.
    busy: HashSet<String>,
    /// Topics this shard, their home, is creating: `topic.meta` written (or being
    /// written) and the partitions not yet all there. A second create is refused meanwhile.
    claimed: HashSet<String>,
    last_sync_ms: u64,
    /// Segment writes, fdatasyncs and reads submitted and not completed.
    in_flight: usize,
    /// Read handles of older segments, bounded (`readers.rs`).
    readers: readers::ReaderCache,
    /// Partitions whose log start (DeleteRecords) is being written, with the requests that
    /// came meanwhile (`topic_jobs.rs`).
    start_writes: HashMap<SlabKey, Option<topic_jobs::StartWrite>>,
    /// Topic changes waiting for partitions an earlier change added to be created here.
    deferred_changes: Vec<(TopicMeta, Dest)>,
    /// Rolled segments whose open ran out of descriptors: opened again at the next tick.
    roll_opens: Vec<(SlabKey, std::path::PathBuf)>,

    /// The shard's log compactor (`compact/`).
    compact: compact::Compactor,
    /// Partitions moving to or from another node, and how each answers meanwhile
    /// (`pull/shard.rs`).
    moves: HashMap<(String, i32), pull::shard::Move>,
    /// Retention unlinks submitted and not completed, per partition: a retired partition
    /// is not taken for an import (its folder wiped) while one could still unlink a file
    /// of the folder the import makes again (`commit.rs`, `pull/shard.rs`).
    retaining: HashMap<SlabKey, u32>,
}

impl Logs {
    /// Load the topic table and recover the partitions shard `me` owns (start-up: blocking
    /// I/O is fine here).
    ///
    /// A partition whose files do not recover is logged and left out (its topic answers
    /// for it with an error). A failure of the environment (no file descriptors, no memory,
    /// no permission) fails the shard's start instead, and so the node's: serving on would
    /// leave every partition it could not open failing for good.
    pub fn recover(
        cfg: &Config,
        me: usize,
        owner: &SlotTable,
        now_ms: u64,
    ) -> Result<Logs, RecoverError> {
        let mut logs = Logs::default();
        let metas = match topics::load_all(&cfg.data_dir, cfg.topic_defaults()) {
            Ok(m) => m,
            Err(e) if is_environment(&e) => {
                return Err(RecoverError::Topics {
                    shard: me,
                    source: e,
                })
            }
            Err(e) => {
                tracing::error!(shard = me, error = %e, "reading the topics under --data-dir failed");
                return Ok(logs);
            }
        };
        for meta in metas {
            for p in 0..meta.partitions {
                if owner.shard(topics::partition_slot(&meta.name, p)) != me {
                    continue;
                }
                // A partition moving between nodes (`pull/`): an import is not opened.
                if let Some(m) = pull::marker(&topics::partition_dir(&cfg.data_dir, &meta.name, p))
                {
                    logs.note_moved(&meta.name, p, m);
                    if m == pull::shard::Move::Importing {
                        continue;
                    }
                }
                match PartState::open(&cfg.data_dir, &meta, p, now_ms, cfg.direct_io) {
                    Ok(ps) => {
                        let key = logs.add_part(ps);
                        logs.cache_recovered_readers(key);
                    }
                    Err(e) if is_environment(&e) => {
                        return Err(RecoverError::Partition {
                            shard: me,
                            topic: meta.name.clone(),
                            partition: p,
                            source: e,
                        })
                    }
                    Err(e) => {
                        tracing::error!(topic = %meta.name, partition = p, error = %e, "opening a partition failed")
                    }
                }
            }
            logs.topics.insert(meta.name.clone(), meta);
        }
        Ok(logs)
    }

    /// No operation in flight that the log waits for (the shard may exit).
    pub fn io_done(&self) -> bool {
        self.in_flight == 0 && self.jobs.is_empty()
    }

    /// Nothing planned that the next turn must write.
    pub fn idle(&self) -> bool {
        self.dirty.is_empty() && !self.compaction_ready()
    }

    /// Partition slots in use (tests and metrics).
    pub fn partitions(&self) -> usize {
        self.index.len()
    }

    /// Partition slots ever allocated (they are reused after deletes).
    pub fn partition_slots(&self) -> usize {
        self.parts.capacity()
    }

    fn add_part(&mut self, p: PartState) -> SlabKey {
        let name = (p.topic.clone(), p.partition);
        let key = self.parts.insert(p);
        self.index.insert(name, key);
        key
    }

    /// Take a partition out; its slot is free for the next one.
    fn remove_part(&mut self, key: SlabKey) -> Option<PartState> {
        let p = self.parts.remove(key)?;
        self.index.remove(&(p.topic.clone(), p.partition));
        self.dirty.retain(|&d| d != key);
        Some(p)
    }

    /// The key of a partition this shard has: it names the partition, and no later one
    /// that takes over its slot.
    fn find(&self, topic: &str, partition: i32) -> Option<SlabKey> {
        self.index.get(&(topic.to_string(), partition)).copied()
    }

    fn mark_dirty(&mut self, key: SlabKey) {
        if !self.dirty.contains(&key) {
            self.dirty.push(key);
        }
    }

    /// Run a log operation on this shard (it owns the partition, or it is a topic-wide op).
    pub fn exec(&mut self, op: LogOp, reply: Dest, ctx: &mut LogCtx) {
        if let Some(r) = self.moved_answer(&op) {
            return ctx.reply(reply, r);
        }
        match op {
            LogOp::CreateTopic(meta) => self.create_topic_here(meta, reply, ctx),
            LogOp::DeleteTopic(name) => self.delete_topic_here(&name, reply, ctx),
            LogOp::PersistTopic(meta) => self.persist_topic(&meta, reply, ctx),
            LogOp::RemoveTopicMeta(name) => self.remove_topic_meta(&name, reply, ctx),
            LogOp::Produce {
                topic,
                partition,
                records,
            } => self.produce(&topic, partition, records, reply, ctx),
            LogOp::Fetch {
                topic,
                partition,
                offset,
                max_bytes,
                committed,
            } => self.fetch(&topic, partition, offset, max_bytes, committed, reply, ctx),
            LogOp::ListOffsets {
                topic,
                partition,
                timestamp,
                committed,
            } => self.list_offsets(&topic, partition, timestamp, committed, reply, ctx),
            // Admin (`topic_jobs.rs`).
            LogOp::RewriteTopic(meta) => self.rewrite_topic(&meta, reply, ctx),
            LogOp::ChangeTopic(meta) => self.change_topic_here(meta, reply, ctx),
            LogOp::DeleteRecords {
                topic,
                partition,
                offset,
            } => self.delete_records(&topic, partition, offset, reply, ctx),
            // Transactions (`txn_index.rs`).
            LogOp::TxnBegin {
                topic,
                partition,
                pid,
                epoch,
            } => self.txn_begin(&topic, partition, pid, epoch, reply, ctx),
            LogOp::TxnMarker {
                topic,
                partition,
                pid,
                epoch,
                commit,
            } => self.txn_marker(&topic, partition, pid, epoch, commit, reply, ctx),
        }
    }

    /// A completion of one of the log's operations.
    pub fn on_completion(&mut self, c: Completion, ctx: &mut LogCtx) {
        match c.owner.kind {
            Kind::LogWrite => {
                self.in_flight -= 1;
                self.on_write(c, ctx)
            }
            Kind::LogSync => {
                self.in_flight -= 1;
                self.on_sync(c, ctx)
            }
            Kind::LogRead => {
                self.in_flight -= 1;
                self.on_read(c, ctx)
            }
            Kind::File => self.on_file(c, ctx),
            other => panic!("a {other:?} completion routed to the log"),
        }
    }
}

/// The slab key a completion's owner names: its index and generation.
fn owner_key(owner: &Owner) -> SlabKey {
    SlabKey {
        slot: owner.index,
        gen: owner.gen,
    }
}
