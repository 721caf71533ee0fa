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
use super::partition::{segment_path, Partition};
use super::state::{PartState, SegmentHandles};
use super::topics::{self, TopicMeta};
use super::{LogCtx, Logs};
use crate::proto::kafka::ErrorCode;
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
            for path in ps.log.segments.iter().map(|s| &s.path).chain([&ps.log.dir]) {
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
            return ctx.reply(reply, created(ErrorCode::KafkaStorageError));
        };
        let then = Then::Created {
            meta,
            partitions,
            reply,
        };
        let mut job = Job::new(format!("creating topic {name}"), then);
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
            return ctx.reply(reply, created(ErrorCode::KafkaStorageError));
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
        self.topics.insert(meta.name.clone(), meta);
        ctx.reply(reply, created(ErrorCode::None));
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
            return ctx.reply(reply, created(ErrorCode::KafkaStorageError));
        };
        self.claimed.insert(name.clone());
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
