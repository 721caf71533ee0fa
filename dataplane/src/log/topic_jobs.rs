//! A topic's files on this shard: creating the partitions it owns, writing and removing
//! `topic.meta`, deleting the partitions. Each is a file job (`files.rs`); the answer waits
//! for it.
//!
//! Order on disk: CreateTopics first has the topic's home shard (`topics::home_slot`) write
//! `topic.meta` (temp file, fsync, rename, fsync the folder); the home *claims* the name
//! while it does, and until its own partitions are created, so of several concurrent
//! creates of one name exactly one goes on (the others are answered TOPIC_ALREADY_EXISTS).
//! Then, on each owner, the partitions' folders and first segments. A crash in between
//! leaves `topic.meta` without partitions, which start-up creates empty. DeleteTopics
//! removes `topic.meta` first (durably), then each owner unlinks its partitions, so a
//! crash in between leaves a folder without `topic.meta`, which start-up removes.

use super::files::{c_path, Job, Step, Then};
use super::ops::LogResult;
use super::partition::{segment_path, Partition, COMPACTED_FILE, LOG_START_FILE};
use super::state::{PartState, SegmentHandles};
use super::topics::{self, TopicMeta};
use super::{LogCtx, Logs};
use crate::proto::kafka::ErrorCode;
use crate::runtime::slab::SlabKey;
use crate::txn::Dest;

fn created(error: ErrorCode) -> LogResult {
    LogResult::Created {
        error: error.code(),
    }
}

impl Logs {
    /// Forget a topic; close and delete the partitions this shard owns (a file job; the
    /// answer waits for it). Appends and fetches still waiting on them are answered now.
    pub(super) fn delete_topic_here(&mut self, name: &str, reply: Dest, ctx: &mut LogCtx) {
        let Some(meta) = self.topics.remove(name) else {
            return ctx.reply(reply, created(ErrorCode::UnknownTopicOrPartition));
        };
        let then = Then::Deleted {
            topic: name.to_string(),
            reply,
        };
        let mut job = Job::new(format!("deleting topic {name}"), then);
        if ctx.owns(name, 0) {
            // The home: a change of the topic may have renamed a new `topic.meta` in after
            // the delete removed it; it goes again (the change's answer says the topic is
            // gone, see `change_topic_here`).
            if let Ok(c) = c_path(&topics::topic_dir(&ctx.cfg.data_dir, name).join("topic.meta")) {
                job.step(Step::Unlink {
                    path: c,
                    dir: false,
                });
            }
        }
        let mut handles = Vec::new();
        for p in 0..meta.partitions {
            let Some(part) = self.find(name, p) else {
                continue;
            };
            // Appends waiting (for a segment open, for their group's turn) or on the disk
            // are answered now; completions still to come find another generation.
            self.drop_appends(part, ErrorCode::UnknownTopicOrPartition, ctx);
            self.drop_read_ahead(part, ErrorCode::UnknownTopicOrPartition, ctx);
            let Some(mut ps) = self.remove_part(part) else {
                continue;
            };
            handles.extend(ps.files.drain().map(|(_, (f, _))| f));
            handles.extend(ps.writers.drain().map(|(_, (f, _))| f));
            // The folder's other files too, or the rmdir fails and a topic created again
            // under the name would start from them.
            let others = [LOG_START_FILE, COMPACTED_FILE].map(|f| ps.log.dir.join(f));
            let files = ps.log.segments.iter().map(|s| &s.path).chain(&others);
            for path in files.chain([&ps.log.dir]) {
                match c_path(path) {
                    Ok(c) => {
                        job.step(Step::Unlink {
                            path: c,
                            dir: path == &ps.log.dir,
                        });
                    }
                    Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot delete"),
                }
            }
        }
        for f in handles {
            job.close(f);
        }
        if !job.has_steps() {
            return ctx.reply(reply, created(ErrorCode::None));
        }
        self.busy.insert(name.to_string());
        self.start_job(job, ctx);
    }

    /// Add a topic; create the partitions this shard owns: their folders and first
    /// segments, through a file job. The topic joins the table when they are all there.
    pub(super) fn create_topic_here(&mut self, meta: TopicMeta, reply: Dest, ctx: &mut LogCtx) {
        if self.topics.contains_key(&meta.name) || self.busy.contains(&meta.name) {
            // Only the create holding the home's claim gets here: it ends.
            self.claimed.remove(&meta.name);
            return ctx.reply(reply, created(ErrorCode::TopicAlreadyExists));
        }
        let partitions: Vec<i32> = (0..meta.partitions)
            .filter(|&p| ctx.owns(&meta.name, p))
            .collect();
        if partitions.is_empty() {
            self.claimed.remove(&meta.name);
            self.topics.insert(meta.name.clone(), meta);
            return ctx.reply(reply, created(ErrorCode::None));
        }
        self.create_partitions_job(meta, partitions, reply, ctx);
    }

    /// Create partitions `partitions` of `meta` (this shard owns them): their folders and
    /// first segments, through a file job whose end adds them and `meta` to the table
    /// ([`Logs::topic_created`]).
    fn create_partitions_job(
        &mut self,
        meta: TopicMeta,
        partitions: Vec<i32>,
        reply: Dest,
        ctx: &mut LogCtx,
    ) {
        let data_dir = &ctx.cfg.data_dir;
        let direct = ctx.cfg.direct_io;
        let name = meta.name.clone();
        let mut paths = vec![
            data_dir.join("log"),
            topics::topic_dir(data_dir, &meta.name),
        ];
        for &p in &partitions {
            let dir = topics::partition_dir(data_dir, &meta.name, p);
            paths.push(segment_path(&dir, 0));
            paths.push(dir);
        }
        let Ok(c) = paths
            .iter()
            .map(|p| c_path(p))
            .collect::<Result<Vec<_>, _>>()
        else {
            tracing::error!(topic = %name, "a partition path cannot be passed to the kernel");
            self.claimed.remove(&name);
            return ctx.reply(reply, created(ErrorCode::KafkaStorageError));
        };
        let then = Then::Created {
            meta,
            partitions,
            reply,
        };
        let mut job = Job::new(format!("creating partitions of {name}"), then);
        job.step(Step::MkDir(c[0].clone()))
            .step(Step::MkDir(c[1].clone()));
        for (k, pair) in c[2..].chunks(2).enumerate() {
            let (segment, dir) = (&pair[0], &pair[1]);
            job.step(Step::MkDir(dir.clone()))
                .open_segment(segment, direct, 2 * k);
        }
        self.busy.insert(name);
        self.start_job(job, ctx);
    }

    /// The create job ended: with every partition's handles, the partitions join the shard
    /// and the topic its table; without, the create failed.
    pub(super) fn topic_created(
        &mut self,
        meta: TopicMeta,
        partitions: Vec<i32>,
        handles: Option<Vec<SegmentHandles>>,
        reply: Dest,
        ctx: &mut LogCtx,
    ) {
        self.busy.remove(&meta.name);
        self.claimed.remove(&meta.name);
        let Some(handles) = handles else {
            ctx.reply(reply, created(ErrorCode::KafkaStorageError));
            // Changes that waited for these partitions find them missing and create them.
            let name = meta.name.clone();
            return self.run_deferred_changes(&name, ctx);
        };
        for (&p, (read, write)) in partitions.iter().zip(handles) {
            let dir = topics::partition_dir(&ctx.cfg.data_dir, &meta.name, p);
            let log = Partition::empty(
                &dir,
                meta.config.segment_bytes,
                meta.config.segment_ms,
                ctx.now_ms,
            );
            self.add_part(PartState::created(&meta, p, log, read, write));
        }
        let name = meta.name.clone();
        if self.topics.get(&name).is_none_or(|m| m.epoch <= meta.epoch) {
            self.topics.insert(name.clone(), meta);
        }
        ctx.reply(reply, created(ErrorCode::None));
        self.run_deferred_changes(&name, ctx);
    }

    /// Changes of `name` that waited for its partitions to be created run now.
    fn run_deferred_changes(&mut self, name: &str, ctx: &mut LogCtx) {
        if self.deferred_changes.is_empty() {
            return;
        }
        let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.deferred_changes)
            .into_iter()
            .partition(|(m, _)| m.name == name);
        self.deferred_changes = later;
        for (meta, reply) in now {
            self.change_topic_here(meta, reply, ctx);
        }
    }

    /// On the topic's home: claim the name and write `topic.meta` (a temporary file of this
    /// shard's, fsynced, renamed over, then the folder fsynced). A name that exists, is
    /// being deleted or is claimed by a create under way is answered TOPIC_ALREADY_EXISTS.
    pub(super) fn persist_topic(&mut self, meta: &TopicMeta, reply: Dest, ctx: &mut LogCtx) {
        let name = &meta.name;
        if self.topics.contains_key(name) || self.busy.contains(name) || self.claimed.contains(name)
        {
            return ctx.reply(reply, created(ErrorCode::TopicAlreadyExists));
        }
        self.claimed.insert(name.clone());
        self.write_meta(meta, reply, ctx);
    }

    /// Write `meta`'s `topic.meta` for a topic this shard (its home) claimed; the claim is
    /// dropped if the write fails.
    fn write_meta(&mut self, meta: &TopicMeta, reply: Dest, ctx: &mut LogCtx) {
        let name = &meta.name;
        let data_dir = &ctx.cfg.data_dir;
        let dir = topics::topic_dir(data_dir, name);
        let paths = [
            data_dir.join("log"),
            dir.clone(),
            dir.join(topics::meta_tmp_name(ctx.me)),
            dir.join("topic.meta"),
        ];
        let Ok(c) = paths
            .iter()
            .map(|p| c_path(p))
            .collect::<Result<Vec<_>, _>>()
        else {
            self.claimed.remove(name);
            return ctx.reply(reply, created(ErrorCode::KafkaStorageError));
        };
        let then = Then::Persisted {
            topic: name.clone(),
            reply,
        };
        let mut job = Job::new(format!("writing {}", paths[3].display()), then);
        job.step(Step::MkDir(c[0].clone()))
            .step(Step::MkDir(c[1].clone()))
            .step(Step::Open {
                path: c[2].clone(),
                flags: libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
                into: 0,
            })
            .step(Step::Write {
                fd: 0,
                data: meta.to_text().into_bytes(),
            })
            .step(Step::Fsync { fd: 0 })
            .step(Step::Close { fd: 0 })
            .step(Step::Rename {
                from: c[2].clone(),
                to: c[3].clone(),
            })
            .sync_dir(c[1].clone(), 1);
        self.start_job(job, ctx);
    }

    /// Remove `topic.meta` and make that durable, so a crash while the partitions are
    /// being deleted does not bring the topic back (start-up removes topic folders
    /// without one).
    pub(super) fn remove_topic_meta(&mut self, name: &str, reply: Dest, ctx: &mut LogCtx) {
        let dir = topics::topic_dir(&ctx.cfg.data_dir, name);
        let (Ok(meta), Ok(cdir)) = (c_path(&dir.join("topic.meta")), c_path(&dir)) else {
            return ctx.reply(reply, created(ErrorCode::KafkaStorageError));
        };
        let mut job = Job::new(format!("removing {name}/topic.meta"), Then::Reply(reply));
        job.step(Step::Unlink {
            path: meta,
            dir: false,
        })
        .sync_dir(cdir, 0);
        self.start_job(job, ctx);
    }
}

/// A change of a topic raced another change of it (or its creation or deletion): Kafka has
/// no closer code; the client may retry.
fn raced() -> LogResult {
    LogResult::Created {
        error: kafka_protocol::ResponseError::ConcurrentTransactions.code(),
    }
}

// Admin: CreatePartitions, AlterConfigs and IncrementalAlterConfigs change a topic in two
// hops, as CreateTopics creates one: its home writes the changed `topic.meta`
// (`rewrite_topic`), then every shard takes the change (`change_topic_here`). DeleteRecords
// is one partition's: its owner moves the log start (`delete_records`).
impl Logs {
    /// On the topic's home: write the changed `topic.meta`. The home holds the topic (its
    /// claim) from here until the change reaches it, so changes of one topic go one at a
    /// time: one whose epoch is not the next is answered as having raced.
    pub(super) fn rewrite_topic(&mut self, meta: &TopicMeta, reply: Dest, ctx: &mut LogCtx) {
        let name = &meta.name;
        let Some(cur) = self.topics.get(name) else {
            return ctx.reply(reply, created(ErrorCode::UnknownTopicOrPartition));
        };
        if self.busy.contains(name) || self.claimed.contains(name) || meta.epoch != cur.epoch + 1 {
            return ctx.reply(reply, raced());
        }
        self.claimed.insert(name.clone());
        self.write_meta(meta, reply, ctx);
    }

    /// Take a changed topic: newer configs apply to the partitions this shard owns at once
    /// (segment size and age for the next roll, retention at the next tick, the largest
    /// batch for the next produce); partitions added that it owns are created (a file job)
    /// and join it when they are there.
    pub(super) fn change_topic_here(&mut self, meta: TopicMeta, reply: Dest, ctx: &mut LogCtx) {
        // The change reached the home: its hold on the topic ends.
        let home = self.claimed.remove(&meta.name);
        let Some(cur) = self.topics.get(&meta.name) else {
            if home {
                // Deleted while the home rewrote `topic.meta`: what the rewrite renamed in
                // after the delete's unlink goes, so a restart does not bring it back.
                return self.remove_topic_meta(&meta.name, reply, ctx);
            }
            return ctx.reply(reply, created(ErrorCode::UnknownTopicOrPartition));
        };
        if cur.epoch >= meta.epoch {
            return ctx.reply(reply, created(ErrorCode::None));
        }
        if self.busy.contains(&meta.name) {
            // The partitions an earlier change added are still being created here: this
            // one waits for them, or it would create them a second time.
            self.deferred_changes.push((meta, reply));
            return;
        }
        let old = cur.partitions;
        for p in 0..old.min(meta.partitions) {
            let Some(key) = self.find(&meta.name, p) else {
                continue;
            };
            if let Some(ps) = self.parts.get_mut(key) {
                ps.config = meta.config;
                ps.log.segment_bytes = meta.config.segment_bytes;
                ps.log.segment_ms = meta.config.segment_ms;
            }
        }
        let added: Vec<i32> = (old..meta.partitions)
            .filter(|&p| ctx.owns(&meta.name, p) && self.find(&meta.name, p).is_none())
            .collect();
        if added.is_empty() {
            self.topics.insert(meta.name.clone(), meta);
            return ctx.reply(reply, created(ErrorCode::None));
        }
        self.create_partitions_job(meta, added, reply, ctx);
    }

    /// DeleteRecords on one partition: the log start moves to `offset` (-1: the high
    /// watermark; above it: OFFSET_OUT_OF_RANGE), written to the partition's
    /// `log-start-offset` (temporary file, fsync, rename, fsync of the folder) before the
    /// answer, then whole segments below it are unlinked and their handles closed. Fetches
    /// below it answer OFFSET_OUT_OF_RANGE from now on.
    pub(super) fn delete_records(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        reply: Dest,
        ctx: &mut LogCtx,
    ) {
        let answer = |error: ErrorCode, offset: i64| LogResult::Offset {
            error: error.code(),
            offset,
            timestamp: -1,
        };
        let Some(key) = self.find(topic, partition) else {
            return ctx.reply(reply, answer(ErrorCode::UnknownTopicOrPartition, -1));
        };
        let Some(p) = self.parts.get_mut(key) else {
            return ctx.reply(reply, answer(ErrorCode::UnknownTopicOrPartition, -1));
        };
        let offset = if offset == -1 { p.hw } else { offset };
        let start = p.log.log_start();
        if offset < 0 || offset > p.hw {
            return ctx.reply(reply, answer(ErrorCode::OffsetOutOfRange, start));
        }
        if offset <= start {
            return ctx.reply(reply, answer(ErrorCode::None, start));
        }
        // The segments wholly below the new start go, as retention deletes them: their
        // handles are closed after the unlinks (a write handle with a group in flight closes
        // when the group ends).
        let mut removed = Vec::new();
        for path in p.log.delete_before(offset) {
            let mut handles = Vec::new();
            if let Some((f, _)) = p.files.remove(&path) {
                handles.push(f);
            }
            if !p.committing.iter().any(|c| c.writes_to(&path)) {
                if let Some((f, _)) = p.writers.remove(&path) {
                    handles.push(f);
                }
            }
            removed.push((path, handles));
        }
        // One write of the partition's log start at a time, so they land in order; what
        // comes meanwhile goes with the next.
        if let Some(queued) = self.start_writes.get_mut(&key) {
            let q = queued.get_or_insert_with(Default::default);
            q.replies.push(reply);
            q.removed.extend(removed);
            return;
        }
        self.start_writes.insert(key, None);
        self.write_log_start(key, vec![reply], removed, ctx);
    }

    /// Write partition `part`'s log start as it is now to `log-start-offset` (temporary
    /// file, fsync, rename, folder fsync), then unlink `removed` and close their handles;
    /// `replies` are answered when it is durable.
    fn write_log_start(
        &mut self,
        part: SlabKey,
        replies: Vec<Dest>,
        removed: Vec<(std::path::PathBuf, Vec<std::fs::File>)>,
        ctx: &mut LogCtx,
    ) {
        let Some(p) = self.parts.get(part) else {
            self.start_writes.remove(&part);
            for r in replies {
                ctx.reply(r, records_deleted(ErrorCode::UnknownTopicOrPartition, -1));
            }
            return;
        };
        let log_start = p.log.log_start();
        let dir = p.log.dir.clone();
        let what = format!("moving the log start of {}-{}", p.topic, p.partition);
        let tmp = dir.join(format!("{LOG_START_FILE}.tmp"));
        let paths = [tmp, dir.join(LOG_START_FILE), dir.clone()];
        let Ok(c) = paths
            .iter()
            .map(|p| c_path(p))
            .collect::<Result<Vec<_>, _>>()
        else {
            self.start_writes.remove(&part);
            for r in replies {
                ctx.reply(r, records_deleted(ErrorCode::KafkaStorageError, log_start));
            }
            return;
        };
        let then = Then::RecordsDeleted {
            part,
            replies,
            log_start,
        };
        let mut job = Job::new(what, then);
        job.step(Step::Open {
            path: c[0].clone(),
            flags: libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
            into: 0,
        })
        .step(Step::Write {
            fd: 0,
            data: format!("{log_start}\n").into_bytes(),
        })
        .step(Step::Fsync { fd: 0 })
        .step(Step::Close { fd: 0 })
        .step(Step::Rename {
            from: c[0].clone(),
            to: c[1].clone(),
        })
        .sync_dir(c[2].clone(), 1);
        for (path, handles) in removed {
            let Ok(cp) = c_path(&path) else { continue };
            job.step(Step::Unlink {
                path: cp,
                dir: false,
            });
            for f in handles {
                job.close(f);
            }
        }
        self.start_job(job, ctx);
    }

    /// A log start write ended: answer its requests, and write again for those that came
    /// meanwhile.
    pub(super) fn log_start_written(
        &mut self,
        part: SlabKey,
        replies: Vec<Dest>,
        log_start: i64,
        ok: bool,
        ctx: &mut LogCtx,
    ) {
        let error = if ok {
            ErrorCode::None
        } else {
            ErrorCode::KafkaStorageError
        };
        for r in replies {
            ctx.reply(r, records_deleted(error, log_start));
        }
        match self.start_writes.get_mut(&part).and_then(Option::take) {
            Some(q) => self.write_log_start(part, q.replies, q.removed, ctx),
            None => {
                self.start_writes.remove(&part);
            }
        }
    }
}

/// DeleteRecords requests that came while their partition's log start was being written.
#[derive(Default)]
pub struct StartWrite {
    replies: Vec<Dest>,
    removed: Vec<(std::path::PathBuf, Vec<std::fs::File>)>,
}

fn records_deleted(error: ErrorCode, log_start: i64) -> LogResult {
    LogResult::Offset {
        error: error.code(),
        offset: log_start,
        timestamp: -1,
    }
}
