//! Partition pulls: moving a topic-partition from one node (the source, X) to another (the
//! new owner, Y) by offset, so that every acknowledged record keeps its offset.
//!
//! On Y, a pull is a plain thread (not a shard) that connects to X's Kafka port as a
//! client and Fetches the partition read_uncommitted from X's log start, writing the record
//! batches exactly as fetched (base offsets, producer ids, epochs and sequences,
//! transactional and control batches) into the partition's folder (`copy.rs`). The
//! partition is *importing* meanwhile: the shard that owns it does not hold it, and answers
//! NOT_LEADER_OR_FOLLOWER for it (`shard.rs`). The copy tails X until a Fetch finds it at
//! X's end (lag 0), and keeps tailing.
//!
//! Finishing, in order:
//! 1. X *fences* the partition ([`Pulls::release`] with [`Move::Fenced`]): produce answers
//!    NOT_LEADER_OR_FOLLOWER (retriable: clients refresh metadata and send again), and the
//!    release waits until no append is in flight and no transaction is open, then answers
//!    X's end offset, which no longer moves.
//! 2. Y copies up to that end ([`Pulls::finish`]), makes the folder durable, recovers it as
//!    start-up does (index, idempotent producers' state, transaction index), checks that
//!    its end is X's, and hands the partition to its shard, which serves it from then on.
//! 3. X *retires* the partition (`Move::Retired`): every request for it answers
//!    NOT_LEADER_OR_FOLLOWER; its files stay until the topic is deleted there.
//!
//! A state survives a restart in the partition folder's `moved` file, written (temporary
//! file, fsync, rename, folder fsync) by the thread that asks for the state before the
//! shard takes it, so a shard never blocks on a file. A node killed mid-pull restarts with
//! the partition importing (not opened, not served); a pull started again resumes from what
//! recovery keeps of the copy, or starts over when X no longer holds the offset it needs.
//!
//! The control plane's orchestration calls the same API: [`Pulls::start`],
//! [`Pulls::progress`], [`Pulls::finish`] on the new owner; [`Pulls::release`] on the old.
//! The admin endpoint exposes them (`metrics/admin.rs`, docs/operations.md).

pub mod client;
pub mod copy;
mod folder;
pub mod shard;

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use client::{Client, ClientError, OFFSET_OUT_OF_RANGE};
use copy::{Copy, CopyError};
use folder::{crash_point, remove_marker, sweep_trash, write_copied, write_marker};
pub use folder::{marker, marker_epoch, trash_dir, wipe_retired, CRASH_ENV, MARKER_FILE};
pub use shard::{Fence, Held, Move, MoveError, ShardCmd};

use super::state::PartState;
use super::topics::{self, TopicMeta};
use crate::limits::{
    PULLS_MAX, PULL_FETCH_BYTES, PULL_FETCH_WAIT_MS, PULL_FINISH_WAIT_MS, PULL_SETTLE_WAIT_MS,
    PULL_SHARD_WAIT_MS,
};
use crate::mesh::SlotTable;

/// Sends shard `i` a command through its control channel (built by `shard/node.rs`).
pub type Link = Arc<dyn Fn(usize, ShardCmd) + Send + Sync>;

/// What the pulls need to know of their node.
pub struct NodeLink {
    pub data_dir: PathBuf,
    pub direct_io: bool,
    pub nshards: usize,
    /// This node's own Kafka address, to create a topic the source has and it lacks.
    pub kafka_addr: SocketAddr,
    pub send: Link,
}

/// Why a pull or a release could not be done.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("a pull of {0}-{1} is already running")]
    Running(String, i32),
    #[error("no pull of {0}-{1} is running")]
    NotRunning(String, i32),
    #[error("{PULLS_MAX} pulls are running at once; finish or stop some first")]
    TooMany,
    #[error("source: {0}")]
    Source(#[from] ClientError),
    #[error("{0}")]
    Move(#[from] MoveError),
    #[error("copying: {0}")]
    Copy(#[from] CopyError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("shard {0} did not answer in time")]
    ShardSilent(usize),
    #[error("partition {topic}-{partition} did not settle within {PULL_SETTLE_WAIT_MS} ms (end {end}; an append or a transaction is still open); it stays fenced")]
    NotSettled {
        topic: String,
        partition: i32,
        end: i64,
    },
    #[error("the pull failed: {0}")]
    Failed(String),
    #[error("the pull did not finish within {PULL_FINISH_WAIT_MS} ms: {0}")]
    Slow(String),
}

/// Where a pull is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Copying, behind the source.
    Copying,
    /// A Fetch found the copy at the source's end; it keeps tailing.
    CaughtUp,
    /// Copying up to the end a finish gave, then serving.
    Finishing,
    /// Serving here.
    Done,
    Failed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Copying => "copying",
            Phase::CaughtUp => "caught_up",
            Phase::Finishing => "finishing",
            Phase::Done => "done",
            Phase::Failed => "failed",
        }
    }

    fn ended(self) -> bool {
        matches!(self, Phase::Done | Phase::Failed)
    }
}

/// A pull's progress, as the endpoint and the orchestration read it.
#[derive(Debug, Clone)]
pub struct Progress {
    pub topic: String,
    pub partition: i32,
    pub from: String,
    pub phase: Phase,
    /// The next offset the copy wants (-1 before the first batch).
    pub next_offset: i64,
    /// The source's end offset at the last Fetch.
    pub source_end: i64,
    /// `source_end - next_offset` at the last Fetch (0: caught up).
    pub lag: i64,
    /// Bytes of record batches written by this run of the pull.
    pub bytes: u64,
    /// Seconds since the pull started, and from then until it first caught up.
    pub elapsed_s: f64,
    pub caught_up_s: Option<f64>,
    /// It continued a copy an earlier run (before a restart) left.
    pub resumed: bool,
    /// It found the source no longer held what the copy needed next, and started over.
    pub restarted: bool,
    pub error: Option<String>,
}

impl Progress {
    pub fn to_json(&self) -> serde_json::Value {
        let mb_s = if self.elapsed_s > 0.0 {
            self.bytes as f64 / 1e6 / self.caught_up_s.unwrap_or(self.elapsed_s).max(1e-3)
        } else {
            0.0
        };
        serde_json::json!({
            "topic": self.topic,
            "partition": self.partition,
            "from": self.from,
            "state": self.phase.as_str(),
            "next_offset": self.next_offset,
            "source_end": self.source_end,
            "lag": self.lag,
            "bytes": self.bytes,
            "elapsed_s": self.elapsed_s,
            "caught_up_s": self.caught_up_s,
            "copy_mb_per_s": mb_s,
            "resumed": self.resumed,
            "restarted": self.restarted,
            "error": self.error,
        })
    }
}

/// One pull: its progress, shared between its thread and whoever asks.
pub struct Pull {
    progress: Mutex<Progress>,
    changed: Condvar,
    /// The end offset a finish asked for, and whether the copy then waits for the map
    /// (`Some(epoch)`: the epoch its move started from) or is served at once (`None`).
    finish_at: Mutex<Option<(i64, Option<u64>)>>,
    stop: AtomicBool,
    started: Instant,
}

impl Pull {
    pub fn progress(&self) -> Progress {
        let mut p = lock(&self.progress).clone();
        p.elapsed_s = self.started.elapsed().as_secs_f64();
        p
    }

    fn update(&self, f: impl FnOnce(&mut Progress)) {
        f(&mut lock(&self.progress));
        self.changed.notify_all();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The node's pulls (as new owner) and releases (as source).
pub struct Pulls {
    node: NodeLink,
    owner: SlotTable,
    pulls: Mutex<BTreeMap<(String, i32), Arc<Pull>>>,
    /// Held through a start, so two starts of one partition cannot both begin a copy.
    starting: Mutex<()>,
}

impl Pulls {
    pub fn new(node: NodeLink) -> Pulls {
        sweep_trash(&node.data_dir);
        Pulls {
            owner: SlotTable::new(node.nshards),
            node,
            pulls: Mutex::new(BTreeMap::new()),
            starting: Mutex::new(()),
        }
    }

    fn dir(&self, topic: &str, partition: i32) -> PathBuf {
        topics::partition_dir(&self.node.data_dir, topic, partition)
    }

    /// Ask the shard that owns the partition, and wait for its answer.
    fn ask<T>(
        &self,
        topic: &str,
        partition: i32,
        cmd: impl FnOnce(mpsc::Sender<T>) -> ShardCmd,
    ) -> Result<T, PullError> {
        let shard = self.owner.shard(topics::partition_slot(topic, partition));
        let (tx, rx) = mpsc::channel();
        (self.node.send)(shard, cmd(tx));
        rx.recv_timeout(Duration::from_millis(PULL_SHARD_WAIT_MS))
            .map_err(|_| PullError::ShardSilent(shard))
    }

    fn check_name(topic: &str, partition: i32) -> Result<(), PullError> {
        if !topics::valid_name(topic) || partition < 0 {
            return Err(PullError::BadRequest(format!(
                "no such partition name: {topic}-{partition}"
            )));
        }
        Ok(())
    }

    /// Start pulling `topic`-`partition` from the Kafka port at `from`. Connects and checks
    /// before it returns, so a bad address, an unknown topic or a partition here that holds
    /// records is an error at once; the copy then runs on its own thread.
    pub fn start(&self, topic: &str, partition: i32, from: &str) -> Result<Arc<Pull>, PullError> {
        Self::check_name(topic, partition)?;
        let key = (topic.to_string(), partition);
        let _starting = lock(&self.starting);
        {
            let mut pulls = lock(&self.pulls);
            if pulls.get(&key).is_some_and(|p| !p.progress().phase.ended()) {
                return Err(PullError::Running(key.0, key.1));
            }
            if pulls.len() >= PULLS_MAX {
                // Ended pulls make room (their outcome was there to read until now).
                pulls.retain(|_, p| !p.progress().phase.ended());
            }
            if pulls.len() >= PULLS_MAX && !pulls.contains_key(&key) {
                return Err(PullError::TooMany);
            }
        }
        let mut source = Client::connect(from)?;
        let info = source.describe_topic(topic)?;
        if partition >= info.partitions {
            return Err(PullError::BadRequest(format!(
                "{from} has {} partitions of {topic}; there is no partition {partition}",
                info.partitions
            )));
        }
        let held = match self.import(topic, partition)? {
            Err(MoveError::NoTopic(_)) => {
                // The topic is new here: create it as the source has it.
                let mut me = Client::connect(&self.node.kafka_addr.to_string())?;
                me.create_topic(topic, &info)?;
                self.import(topic, partition)??
            }
            r => r?,
        };
        let dir = self.dir(topic, partition);
        // A complete copy the map never gave this node (its move's flip aborted): kept and
        // resumed when it is a prefix of the source's log, else wiped like a retired one.
        let mut kept = false;
        let checked = !held.wipe && (held.check || marker(&dir) == Some(Move::Copied));
        if checked {
            kept = prefix_of_source(&mut source, topic, partition, &dir)?;
            if !kept {
                wipe_retired(&dir).map_err(|source| PullError::Io {
                    what: format!("wiping the copy in {}", dir.display()),
                    source,
                })?;
                tracing::info!(
                    topic,
                    partition,
                    "the copy here was not a prefix of the source's log; wiped for the import"
                );
            }
        }
        // A partition this node gave away earlier (its folder says so even when an earlier
        // wipe failed and the shard already holds it for the import): wiped first.
        let wiped = held.wipe || (!held.check && marker(&dir) == Some(Move::Retired));
        if wiped {
            wipe_retired(&dir).map_err(|source| PullError::Io {
                what: format!("wiping the retired copy in {}", dir.display()),
                source,
            })?;
            tracing::info!(
                topic,
                partition,
                "the retired copy here was wiped for the import"
            );
        }
        fs::create_dir_all(&dir)
            .and_then(|_| write_marker(&dir, Move::Importing))
            .map_err(|source| PullError::Io {
                what: format!("writing {}", dir.join(MARKER_FILE).display()),
                source,
            })?;
        let resumed = if checked {
            kept
        } else {
            held.resumed && !wiped
        };
        let pull = Arc::new(Pull {
            progress: Mutex::new(Progress {
                topic: topic.to_string(),
                partition,
                from: from.to_string(),
                phase: Phase::Copying,
                next_offset: -1,
                source_end: -1,
                lag: -1,
                bytes: 0,
                elapsed_s: 0.0,
                caught_up_s: None,
                resumed,
                restarted: false,
                error: None,
            }),
            changed: Condvar::new(),
            finish_at: Mutex::new(None),
            stop: AtomicBool::new(false),
            started: Instant::now(),
        });
        let job = Job {
            pull: pull.clone(),
            source,
            meta: held.meta,
            partition,
            dir,
            data_dir: self.node.data_dir.clone(),
            direct_io: self.node.direct_io,
            install: {
                let send = self.node.send.clone();
                let shard = self.owner.shard(topics::partition_slot(topic, partition));
                Box::new(move |part: Box<PartState>, hold: bool| {
                    let (tx, rx) = mpsc::channel();
                    send(
                        shard,
                        ShardCmd::Install {
                            part,
                            hold,
                            reply: tx,
                        },
                    );
                    rx.recv_timeout(Duration::from_millis(PULL_SHARD_WAIT_MS))
                        .map_err(|_| PullError::ShardSilent(shard))?
                        .map_err(PullError::from)
                })
            },
        };
        std::thread::Builder::new()
            .name(format!("pull-{partition}"))
            .spawn(move || job.run())
            .map_err(|source| PullError::Io {
                what: "starting the pull's thread".into(),
                source,
            })?;
        lock(&self.pulls).insert(key, pull.clone());
        tracing::info!(
            topic,
            partition,
            from,
            resumed,
            wiped,
            "partition pull started"
        );
        Ok(pull)
    }

    /// Ask the shard to take the partition for an import. A retired or copied one still
    /// busy (an append, a compaction pass, a retention unlink or a log start write of its
    /// folder in flight: each ends within milliseconds) is asked again until it is idle,
    /// for up to [`PULL_SETTLE_WAIT_MS`].
    fn import(&self, topic: &str, partition: i32) -> Result<Result<Held, MoveError>, PullError> {
        let deadline = Instant::now() + Duration::from_millis(PULL_SETTLE_WAIT_MS);
        loop {
            let r = self.ask(topic, partition, |reply| ShardCmd::Import {
                topic: topic.to_string(),
                partition,
                reply,
            })?;
            if !matches!(r, Err(MoveError::RetiredBusy(..))) || Instant::now() >= deadline {
                return Ok(r);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Every pull this node ran since it started, and how each stands.
    pub fn progress(&self) -> Vec<Progress> {
        lock(&self.pulls).values().map(|p| p.progress()).collect()
    }

    /// Copy up to `end` (the source's end once fenced), then serve the partition here.
    /// Waits until it is served (or the pull failed).
    pub fn finish(&self, topic: &str, partition: i32, end: i64) -> Result<Progress, PullError> {
        self.finish_held(topic, partition, end, None)
    }

    /// As [`Pulls::finish`]; with `hold` (the map epoch the move started from) the complete
    /// copy is held `Copied`, not served, until [`Pulls::release`] serves it (the map gave
    /// it here) or a later pull takes it again.
    pub fn finish_held(
        &self,
        topic: &str,
        partition: i32,
        end: i64,
        hold: Option<u64>,
    ) -> Result<Progress, PullError> {
        let pull = lock(&self.pulls)
            .get(&(topic.to_string(), partition))
            .cloned()
            .ok_or_else(|| PullError::NotRunning(topic.to_string(), partition))?;
        *lock(&pull.finish_at) = Some((end, hold));
        let deadline = Instant::now() + Duration::from_millis(PULL_FINISH_WAIT_MS);
        let mut g = lock(&pull.progress);
        while !g.phase.ended() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(PullError::Slow(format!(
                    "at offset {}, {} behind",
                    g.next_offset, g.lag
                )));
            }
            g = pull
                .changed
                .wait_timeout(g, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let p = g.clone();
        drop(g);
        match p.phase {
            Phase::Done => Ok(pull.progress()),
            _ => Err(PullError::Failed(p.error.unwrap_or_default())),
        }
    }

    /// Stop a running pull (the partition stays importing; a pull started again resumes).
    pub fn stop(&self, topic: &str, partition: i32) -> Result<(), PullError> {
        let pull = lock(&self.pulls)
            .get(&(topic.to_string(), partition))
            .cloned()
            .ok_or_else(|| PullError::NotRunning(topic.to_string(), partition))?;
        pull.stop.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// A copy held `Copied` that the map did not give this node (its move's flip aborted):
    /// its file forgets the epoch, so no later map serves it; only a pull takes it again.
    pub fn forget_copy(&self, topic: &str, partition: i32) -> Result<(), PullError> {
        let dir = self.dir(topic, partition);
        if marker(&dir) != Some(Move::Copied) {
            return Ok(());
        }
        write_copied(&dir, None).map_err(|source| PullError::Io {
            what: format!("writing {}", dir.join(MARKER_FILE).display()),
            source,
        })
    }

    /// On the source: move the partition to `to` (`Fenced`: produce refused, and wait
    /// until its end settles; `Retired`: nothing served) or back to serving (`None`).
    /// Answers where the partition stands.
    pub fn release(
        &self,
        topic: &str,
        partition: i32,
        to: Option<Move>,
    ) -> Result<Fence, PullError> {
        Self::check_name(topic, partition)?;
        let dir = self.dir(topic, partition);
        let before = marker(&dir);
        if before == Some(Move::Importing) || to == Some(Move::Importing) {
            return Err(MoveError::Importing(topic.to_string(), partition).into());
        }
        if !dir.is_dir() {
            return Err(MoveError::NoPartition(topic.to_string(), partition).into());
        }
        let io = |source| PullError::Io {
            what: format!("writing {}", dir.join(MARKER_FILE).display()),
            source,
        };
        match to {
            Some(m) => write_marker(&dir, m).map_err(io)?,
            None => remove_marker(&dir).map_err(io)?,
        }
        let asked = self.ask(topic, partition, |reply| ShardCmd::Release {
            topic: topic.to_string(),
            partition,
            to,
            reply,
        });
        let mut fence = match asked {
            Ok(Ok(f)) => f,
            Ok(Err(e)) => {
                // Put the file back as it was.
                let _ = match before {
                    Some(m) => write_marker(&dir, m),
                    None => remove_marker(&dir),
                };
                return Err(e.into());
            }
            Err(e) => return Err(e),
        };
        if to == Some(Move::Fenced) {
            let deadline = Instant::now() + Duration::from_millis(PULL_SETTLE_WAIT_MS);
            while !fence.settled {
                if Instant::now() >= deadline {
                    return Err(PullError::NotSettled {
                        topic: topic.to_string(),
                        partition,
                        end: fence.end,
                    });
                }
                std::thread::sleep(Duration::from_millis(5));
                fence = self.ask(topic, partition, |reply| ShardCmd::Release {
                    topic: topic.to_string(),
                    partition,
                    to,
                    reply,
                })??;
            }
        }
        tracing::info!(
            topic,
            partition,
            state = to.map_or("serving", Move::as_str),
            end = fence.end,
            "partition move state set"
        );
        Ok(fence)
    }
}

type Install = Box<dyn FnOnce(Box<PartState>, bool) -> Result<(), PullError> + Send>;

/// Whether the complete copy in `dir` is a prefix of the source's log: the source holds
/// its last batch at the same offsets, with the same header and CRC (every batch is copied
/// as fetched, so a copy of the same log ends in the same bytes). A copy holding nothing is
/// a prefix of anything.
fn prefix_of_source(
    source: &mut Client,
    topic: &str,
    partition: i32,
    dir: &Path,
) -> Result<bool, PullError> {
    let last = copy::last_batch(dir).map_err(|source| PullError::Io {
        what: format!("reading the copy in {}", dir.display()),
        source,
    })?;
    let Some((mine, crc)) = last else {
        return Ok(true);
    };
    let f = source.fetch(topic, partition, mine.base_offset, PULL_FETCH_BYTES, 0)?;
    if f.error != 0 {
        return Ok(false);
    }
    let theirs = crate::log::batch::peek(&f.records)
        .ok()
        .filter(|h| h.size <= f.records.len())
        .map(|h| (h, copy::crc_of(&f.records)));
    Ok(theirs == Some((mine, crc)))
}

/// A pull's thread: the copy loop.
struct Job {
    pull: Arc<Pull>,
    source: Client,
    meta: TopicMeta,
    partition: i32,
    dir: PathBuf,
    data_dir: PathBuf,
    direct_io: bool,
    install: Install,
}

impl Job {
    fn run(mut self) {
        let (topic, partition) = (self.meta.name.clone(), self.partition);
        match self.copy() {
            Ok(()) => {
                tracing::info!(topic, partition, "partition pull done: serving it here");
                self.pull.update(|p| p.phase = Phase::Done);
            }
            Err(e) => {
                tracing::warn!(topic, partition, error = %e, "partition pull failed; the partition stays importing");
                self.pull.update(|p| {
                    p.phase = Phase::Failed;
                    p.error = Some(e.to_string());
                });
            }
        }
    }

    fn copy(&mut self) -> Result<(), PullError> {
        let topic = self.meta.name.clone();
        let partition = self.partition;
        let mut copy = Copy::open(&self.dir, self.meta.config.segment_bytes, now_ms())?;
        let mut want = copy.next_offset().unwrap_or(0);
        loop {
            if self.pull.stop.load(Ordering::Relaxed) {
                return Err(PullError::Failed("stopped".into()));
            }
            let finish_at = *lock(&self.pull.finish_at);
            // A long poll: it answers at once while there is something to copy.
            let wait = PULL_FETCH_WAIT_MS;
            let f = self
                .source
                .fetch(&topic, partition, want, PULL_FETCH_BYTES, wait)?;
            match f.error {
                0 => {}
                OFFSET_OUT_OF_RANGE if want < f.log_start => {
                    // Retention or DeleteRecords at the source moved past what the copy
                    // needs next (or this is the first fetch): start at its log start.
                    if copy.next_offset().is_some() {
                        copy.wipe()?;
                        self.pull.update(|p| p.restarted = true);
                    }
                    want = f.log_start;
                    continue;
                }
                code => {
                    return Err(ClientError::Kafka {
                        addr: self.source.addr().to_string(),
                        what: "Fetch",
                        code,
                        message: Some(format!("{topic}-{partition} at offset {want}")),
                    }
                    .into())
                }
            }
            copy.append(&f.records)?;
            if !f.records.is_empty() {
                crash_point("copied");
            }
            want = copy.next_offset().unwrap_or(want);
            // Nothing readable between `want` and the end (compaction removed the last
            // records): the copy is at the end.
            let at = if f.records.is_empty() {
                want.max(f.high_watermark)
            } else {
                want
            };
            let lag = (f.high_watermark - at).max(0);
            let bytes = copy.bytes;
            let started = self.pull.started;
            self.pull.update(|p| {
                p.next_offset = want;
                p.source_end = f.high_watermark;
                p.lag = lag;
                p.bytes = bytes;
                if lag == 0 && p.caught_up_s.is_none() {
                    p.caught_up_s = Some(started.elapsed().as_secs_f64());
                }
                p.phase = match (finish_at, lag) {
                    (Some(_), _) => Phase::Finishing,
                    (None, 0) => Phase::CaughtUp,
                    (None, _) => Phase::Copying,
                };
            });
            let Some((end, hold)) = finish_at else {
                continue;
            };
            if lag > 0 || f.high_watermark < end {
                continue;
            }
            if f.high_watermark > end {
                return Err(PullError::Failed(format!(
                    "the source's end is {}, past {end}, the end the finish gave: is the partition fenced there?",
                    f.high_watermark
                )));
            }
            return self.install(&mut copy, end, f.log_start, hold);
        }
    }

    /// The copy holds everything below `end`: make it durable, recover it as start-up
    /// would, and hand it to the shard.
    fn install(
        &mut self,
        copy: &mut Copy,
        end: i64,
        log_start: i64,
        hold: Option<u64>,
    ) -> Result<(), PullError> {
        let (topic, partition) = (self.meta.name.clone(), self.partition);
        copy.seal(end, log_start)?;
        let ps = PartState::open(
            &self.data_dir,
            &self.meta,
            partition,
            now_ms(),
            self.direct_io,
        )
        .map_err(|source| PullError::Io {
            what: format!("recovering the copy of {topic}-{partition}"),
            source,
        })?;
        if ps.hw != end {
            return Err(PullError::Failed(format!(
                "the recovered copy ends at {}; the source's end is {end}",
                ps.hw
            )));
        }
        let io = |source| PullError::Io {
            what: format!("writing {}", self.dir.join(MARKER_FILE).display()),
            source,
        };
        // Once the marker is gone a restart serves the copy, which is complete; held for
        // the map, it says `copied` and a restart holds it, not served, until the map
        // gives it here.
        match hold {
            Some(epoch) => write_copied(&self.dir, Some(epoch)).map_err(io)?,
            None => remove_marker(&self.dir).map_err(io)?,
        }
        let installed = (self.install_fn())(Box::new(ps), hold.is_some());
        if let Err(PullError::Move(_)) = installed {
            // The shard refused it (the topic went, say): the folder is an import again. A
            // shard that did not answer in time may still install it, so then the folder
            // stays as it is: complete, and served after a restart.
            let _ = write_marker(&self.dir, Move::Importing);
        }
        installed
    }

    fn install_fn(&mut self) -> Install {
        std::mem::replace(
            &mut self.install,
            Box::new(|_, _| Err(PullError::Failed("installed twice".into()))),
        )
    }
}
