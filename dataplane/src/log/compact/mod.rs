//! Log compaction: `cleanup.policy=compact` (and `compact,delete`) keeps the latest record
//! of every key, as Kafka's log cleaner does. Owned by the partition's shard; one pass at a
//! time per shard.
//!
//! A *pass* over one partition maps every key of its sealed segments (not the active one,
//! and only bytes already acknowledged) to its latest offset, then rewrites those segments
//! oldest first, each into `<segment>.cleaned`, keeping a record only when it is its key's
//! latest (tombstones too, until `delete.retention.ms` after their segment was first
//! cleaned). Offsets are kept: a cleaned batch keeps its base and last offsets, and fetches
//! skip the holes (`partition.rs` `plan_read`). Transactional and control batches are left
//! as they are.
//!
//! Every file operation is a file job on the shard's ring (`files.rs`): opens, reads of at
//! most [`COMPACT_SLICE_BYTES`], writes, fsyncs, renames. When a job ends, the loop's next
//! turn runs one *slice* (`compact_slice`): it works through what the job read and starts
//! the next job. A slice is named "log compaction slice" in stall warnings.
//!
//! Putting a cleaned segment in place is crash-safe: the `.cleaned` file is written and
//! fsynced, then renamed over the segment (atomic), then the folder is fsynced; a segment
//! nothing of which stays (except the first, which holds the log start offset) is unlinked
//! instead. Each segment is replaced by exactly one file, so Kafka's `.swap` stage (for
//! several segments merged into one) is not needed: after a crash at any point the folder
//! holds the old segment or the new one, and recovery deletes a `.cleaned` leftover. With
//! segments cleaned oldest first and a pass stopping at its first failure, a key's older
//! values are gone before its tombstone is.
//!
//! [`CRASH_ENV`] (`PINION_COMPACT_CRASH_AT=written|renamed`) aborts the process at that
//! point of the first segment a pass changes: fault injection for the tests.

pub mod filter;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use super::files::{c_path, Failure, Job, Step, Then};
use super::partition::{Segment, COMPACTED_FILE};
use super::topics::Cleanup;
use super::{LogCtx, Logs};
use crate::limits::{COMPACT_MAP_BYTES_PER_KEY_MIN, COMPACT_MAP_KEYS_MAX, COMPACT_SLICE_BYTES};
use crate::log::batch;
use crate::runtime::aligned::AlignedBuf;
use crate::runtime::slab::SlabKey;
use filter::{Cleaned, KeyMap};

/// The suffix of a segment's cleaned copy while it is written.
pub const CLEANED_SUFFIX: &str = ".cleaned";
/// Fault injection: `written` (the cleaned copy is synced, not yet renamed) or `renamed`
/// (renamed over the segment, the shard's memory not yet updated) aborts the process there.
pub const CRASH_ENV: &str = "PINION_COMPACT_CRASH_AT";
/// Kafka's defaults for the configs a topic does not set.
const DELETE_RETENTION_MS_DEFAULT: u64 = 86_400_000;
const DIRTY_RATIO_DEFAULT: f64 = 0.5;

/// Handle slots the pass's jobs use.
const SRC: usize = 0;
const OUT_W: usize = 1;
const OUT_R: usize = 2;
const DIR: usize = 3;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum CrashAt {
    Written,
    Renamed,
}

/// A shard's compactor.
#[derive(Default)]
pub struct Compactor {
    pass: Option<Pass>,
    /// A job of the pass ended; the loop's next slice continues from it.
    landed: Option<(Job, Result<(), Failure>)>,
    history: HashMap<SlabKey, History>,
    /// [`CRASH_ENV`], read at the first pass.
    crash_at: Option<Option<CrashAt>>,
    /// The key map's table, kept between passes (see [`KeyMap::reset`]).
    spare: KeyMap,
    /// The pass waits to switch a segment until reads of it in flight are done; the tick
    /// tries again.
    deferred: bool,
}

/// What earlier passes did to a partition (memory only: after a restart every segment is
/// dirty again and tombstones get a new `delete.retention.ms` from their next cleaning).
#[derive(Default)]
struct History {
    /// Segments from this offset on were not cleaned since they were written.
    clean_upto: i64,
    /// Per segment (by base offset): when it was first cleaned, and the tombstones it kept.
    cleaned: BTreeMap<i64, (u64, u64)>,
}

/// A sealed segment as the pass found it.
struct Src {
    base: i64,
    path: PathBuf,
    size: u64,
    end: i64,
}

struct Pass {
    part: SlabKey,
    dir: PathBuf,
    segs: Vec<Src>,
    map: KeyMap,
    /// Segments fully mapped: the ones this pass cleans.
    mapped: usize,
    /// A batch whose records could not be read was met: no tombstone goes this pass (an
    /// older value could hide in it).
    unreadable: bool,
    /// Per segment: records a later record of their key supersedes, and tombstones. A
    /// segment with neither to drop is left as it is (not rewritten).
    superseded: Vec<u64>,
    tombstones: Vec<u64>,
    /// The map has been sized (`reserve_map`).
    sized: bool,
    delete_retention_ms: u64,
    stage: Stage,
    /// Handles kept between jobs, by slot.
    fds: [Option<(File, bool)>; 3],
    reclaimed: u64,
    cleaned: usize,
}

enum Stage {
    /// Reading segment `seg` from `pos`, mapping keys.
    Map { seg: usize, pos: u64 },
    /// Writing segment `c.seg`'s cleaned copy.
    Clean(Cleaning),
    /// The cleaned copy is written and synced.
    Written(Cleaning),
    /// In place (or dropped); the shard's memory follows.
    Placed(Cleaning),
}

struct Cleaning {
    seg: usize,
    /// Read position in the source.
    pos: u64,
    /// The cleaned segment as it is written.
    out: Segment,
    changed: bool,
    drop_tombstones: bool,
    tombstones: u64,
    /// Nothing stays and it is not the first segment: unlinked instead of replaced.
    remove: bool,
}

fn cleaned_path(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(CLEANED_SUFFIX);
    PathBuf::from(s)
}

/// A read of the next slice of a `size`-byte segment from `pos`: COMPACT_SLICE_BYTES, or
/// `need` when one batch is larger.
fn read_step(size: u64, pos: u64, need: Option<usize>) -> Step {
    let len = COMPACT_SLICE_BYTES.max(need.unwrap_or(0)) as u64;
    Step::ReadAt {
        fd: SRC,
        at: pos,
        len: len.min(size.saturating_sub(pos)) as usize,
    }
}

/// A job of `pass`, holding its handles.
fn job(pass: &mut Pass, what: String) -> Job {
    let mut j = Job::new(what, Then::Compact);
    for (i, f) in pass.fds.iter_mut().enumerate() {
        if let Some(f) = f.take() {
            j.put(i, f);
        }
    }
    j
}

/// The whole batches of `data` (a slice read from `pos` of a `size`-byte segment): Ok with
/// them and the bytes they span, or Err(Some(n)) when the next read must be `n` bytes (one
/// batch larger than a slice), or Err(None) when the bytes are not batches.
type Batches = (Vec<(batch::BatchHeader, usize)>, usize);
fn batches_in(data: &[u8], pos: u64, size: u64) -> Result<Batches, Option<usize>> {
    if data.is_empty() {
        return Ok((Vec::new(), 0));
    }
    match filter::whole_batches(data) {
        Ok(b) => Ok(b),
        Err(n) if data.len() < n && pos + n as u64 <= size => Err(Some(n)),
        Err(_) => Err(None),
    }
}

/// Make room in the pass's map for the keys its segments may hold, estimated from the
/// records of its first batches (bytes per record, at least
/// `COMPACT_MAP_BYTES_PER_KEY_MIN`), so the map does not grow inside a slice: growing a
/// table rehashes every key at once. Too large a table costs page faults as it fills, so
/// the estimate is not simply the lowest record size.
fn reserve_map(pass: &mut Pass, first: &[(batch::BatchHeader, usize)]) {
    let (bytes, records) = first.iter().fold((0u64, 0u64), |(b, r), (h, _)| {
        (b + h.size as u64, r + h.record_count.max(0) as u64)
    });
    let per_record = (bytes / records.max(1)).max(COMPACT_MAP_BYTES_PER_KEY_MIN);
    let total: u64 = pass.segs.iter().map(|s| s.size).sum();
    let keys =
        (total / per_record).min(COMPACT_MAP_KEYS_MAX as u64 + COMPACT_MAP_KEYS_MAX as u64 / 8);
    pass.map.reset(keys as usize);
}

fn config_of(set: Option<&BTreeMap<String, String>>) -> (u64, f64) {
    let get = |k: &str| set.and_then(|s| s.get(k)).map(|v| v.trim().to_string());
    let dr = get("delete.retention.ms")
        .and_then(|v| v.parse().ok())
        .unwrap_or(DELETE_RETENTION_MS_DEFAULT);
    let ratio = get("min.cleanable.dirty.ratio")
        .and_then(|v| v.parse().ok())
        .unwrap_or(DIRTY_RATIO_DEFAULT);
    (dr, ratio)
}

// pback: a retired partition is not taken for an import while a pass works on it.
impl Compactor {
    /// Whether the pass now running works on partition `part`.
    pub(in crate::log) fn works_on(&self, part: SlabKey) -> bool {
        self.pass.as_ref().is_some_and(|p| p.part == part)
    }
}

impl Logs {
    /// A job of the compactor ended; the next slice continues from it.
    pub(super) fn compact_landed(&mut self, job: Job, result: Result<(), Failure>) {
        self.compact.landed = Some((job, result));
    }

    /// A compaction slice is ready to run (the loop does not wait in the ring meanwhile).
    pub fn compaction_ready(&self) -> bool {
        self.compact.landed.is_some()
    }

    fn crash_at(&mut self) -> Option<CrashAt> {
        *self.compact.crash_at.get_or_insert_with(|| {
            match std::env::var(CRASH_ENV).ok().as_deref() {
                Some("written") => Some(CrashAt::Written),
                Some("renamed") => Some(CrashAt::Renamed),
                _ => None,
            }
        })
    }

    fn crash_if(&mut self, at: CrashAt) {
        if self.crash_at() == Some(at) {
            tracing::error!(point = ?at, "{CRASH_ENV}: aborting mid-compaction (fault injection)");
            std::process::abort();
        }
    }

    /// From the tick: start a pass over the first partition that needs one (its dirty
    /// share of sealed bytes at least `min.cleanable.dirty.ratio`, or tombstones past
    /// `delete.retention.ms`). Nothing while a pass runs or the shard stops.
    pub fn compact_tick(&mut self, stopping: bool, ctx: &mut LogCtx) {
        if self.compact.deferred && self.compact.landed.is_none() {
            // Try the switch again in the next slice.
            self.compact.deferred = false;
            let job = Job::new("compaction: waiting for reads", Then::Compact);
            self.compact.landed = Some((job, Ok(())));
            return;
        }
        if stopping || self.compact.pass.is_some() || self.compact.landed.is_some() {
            return;
        }
        let now = ctx.now_ms;
        let parts = &self.parts;
        self.compact.history.retain(|k, _| parts.get(*k).is_some());
        let mut chosen = None;
        for (slot, p) in self.parts.iter() {
            if p.config.cleanup == Cleanup::Delete || p.failed {
                continue;
            }
            let Some(gen) = self.parts.gen(slot) else {
                continue;
            };
            let key = SlabKey { slot, gen };
            let (dr, ratio) = config_of(self.topics.get(&p.topic).map(|m| &m.set));
            let n = p.log.segments.len();
            let sealed: Vec<&Segment> = p.log.segments[..n.saturating_sub(1)]
                .iter()
                .take_while(|s| !p.writers.contains_key(&s.path) && s.end <= p.hw)
                .collect();
            if sealed.is_empty() {
                continue;
            }
            let h = self.compact.history.get(&key);
            let upto = h.map_or(i64::MIN, |h| h.clean_upto);
            let total: u64 = sealed.iter().map(|s| s.size).sum();
            let dirty: u64 = sealed
                .iter()
                .filter(|s| s.base >= upto)
                .map(|s| s.size)
                .sum();
            let tombstones_due = h.is_some_and(|h| {
                sealed.iter().any(|s| {
                    h.cleaned
                        .get(&s.base)
                        .is_some_and(|&(t, n)| n > 0 && now.saturating_sub(t) >= dr)
                })
            });
            let ratio_met = dirty > 0 && dirty as f64 >= ratio * total as f64;
            if ratio_met || tombstones_due {
                let segs: Vec<Src> = sealed
                    .iter()
                    .map(|s| Src {
                        base: s.base,
                        path: s.path.clone(),
                        size: s.size,
                        end: s.end,
                    })
                    .collect();
                chosen = Some((key, p.log.dir.clone(), segs, dr));
                break;
            }
        }
        let Some((part, dir, segs, delete_retention_ms)) = chosen else {
            return;
        };
        let pass = Pass {
            part,
            dir,
            segs,
            map: {
                // Sized by the first slice (`reserve_map`).
                let mut map = std::mem::take(&mut self.compact.spare);
                map.reset(0);
                map
            },
            mapped: 0,
            unreadable: false,
            superseded: Vec::new(),
            tombstones: Vec::new(),
            sized: false,
            delete_retention_ms,
            stage: Stage::Map { seg: 0, pos: 0 },
            fds: [None, None, None],
            reclaimed: 0,
            cleaned: 0,
        };
        self.map_segment(pass, 0, ctx);
    }

    /// Start mapping segment `seg` (after the previous one's handle is closed).
    fn map_segment(&mut self, mut pass: Pass, seg: usize, ctx: &mut LogCtx) {
        let Some(src) = pass.segs.get(seg) else {
            return self.start_cleaning(pass, 0, ctx);
        };
        let (size, path) = (src.size, src.path.clone());
        let Ok(c) = c_path(&path) else {
            return self.abandon(pass, "a segment path the kernel cannot take", ctx);
        };
        pass.stage = Stage::Map { seg, pos: 0 };
        let mut j = job(&mut pass, format!("compaction: mapping {}", path.display()));
        j.step(Step::Close { fd: SRC }).step(Step::Open {
            path: c,
            flags: libc::O_RDONLY | libc::O_CLOEXEC,
            into: SRC,
        });
        if size > 0 {
            j.step(read_step(size, 0, None));
        }
        self.continue_pass(pass, j, ctx);
    }

    fn continue_pass(&mut self, pass: Pass, job: Job, ctx: &mut LogCtx) {
        self.compact.pass = Some(pass);
        self.start_job(job, ctx);
    }

    /// The loop's compaction slice: continue the pass from the job that ended.
    pub fn compact_slice(&mut self, stopping: bool, ctx: &mut LogCtx) {
        let Some((mut job, result)) = self.compact.landed.take() else {
            return;
        };
        let Some(mut pass) = self.compact.pass.take() else {
            return;
        };
        for (i, f) in pass.fds.iter_mut().enumerate() {
            if let Some(h) = job.take_fd(i) {
                *f = Some(h);
            }
        }
        let read = job.read.take().unwrap_or_default();
        if let Err((step, e)) = result {
            let why = format!("{step}: {e}");
            return self.abandon(pass, &why, ctx);
        }
        if stopping {
            return self.abandon(pass, "the shard stops", ctx);
        }
        if self.parts.get(pass.part).is_none() {
            return self.abandon(pass, "the partition is gone", ctx);
        }
        match std::mem::replace(&mut pass.stage, Stage::Map { seg: 0, pos: 0 }) {
            Stage::Map { seg, pos } => self.map_slice(pass, seg, pos, read, ctx),
            Stage::Clean(c) => self.clean_slice(pass, c, read, ctx),
            Stage::Written(c) => self.place(pass, c, ctx),
            Stage::Placed(c) => self.swap(pass, c, ctx),
        }
    }

    fn map_slice(
        &mut self,
        mut pass: Pass,
        seg: usize,
        pos: u64,
        read: AlignedBuf,
        ctx: &mut LogCtx,
    ) {
        let size = pass.segs[seg].size;
        let data = &read.as_slice()[..read.len().min(size.saturating_sub(pos) as usize)];
        let (pos, need) = match batches_in(data, pos, size) {
            Ok((hs, used)) => {
                if !pass.sized && !hs.is_empty() {
                    reserve_map(&mut pass, &hs);
                    pass.sized = true;
                }
                pass.superseded.resize(pass.segs.len(), 0);
                pass.tombstones.resize(pass.segs.len(), 0);
                for (h, at) in hs {
                    let (segs, superseded) = (&pass.segs, &mut pass.superseded);
                    let m = filter::map_batch(&h, &data[at..at + h.size], &mut pass.map, |o| {
                        let i = segs.partition_point(|s| s.base <= o).saturating_sub(1);
                        superseded[i] += 1;
                    });
                    pass.unreadable |= !m.readable;
                    pass.tombstones[seg] += m.tombstones;
                }
                (pos + used as u64, None)
            }
            Err(Some(n)) => (pos, Some(n)),
            Err(None) => {
                return self.abandon(pass, "a segment holds bytes that are not batches", ctx)
            }
        };
        if pass.map.len() > COMPACT_MAP_KEYS_MAX {
            // The map is full: clean the segments mapped whole before this one.
            if pass.mapped == 0 {
                return self.abandon(pass, "one segment holds more keys than a pass maps", ctx);
            }
            return self.start_cleaning(pass, 0, ctx);
        }
        if pos < size {
            pass.stage = Stage::Map { seg, pos };
            let mut j = job(&mut pass, "compaction: mapping keys".into());
            j.step(read_step(size, pos, need));
            return self.continue_pass(pass, j, ctx);
        }
        pass.mapped = seg + 1;
        self.map_segment(pass, seg + 1, ctx);
    }

    /// Start writing the cleaned copy of segment `seg`, or of the first after it that has
    /// records to drop (the others are left as they are); past the mapped ones, end the
    /// pass.
    fn start_cleaning(&mut self, mut pass: Pass, mut seg: usize, ctx: &mut LogCtx) {
        let now = ctx.now_ms;
        let drop_tombstones = loop {
            if seg >= pass.mapped {
                return self.finish_pass(pass, ctx);
            }
            let base = pass.segs[seg].base;
            let h = self.compact.history.entry(pass.part).or_default();
            let drop_tombstones = !pass.unreadable
                && h.cleaned
                    .get(&base)
                    .is_some_and(|&(t, _)| now.saturating_sub(t) >= pass.delete_retention_ms);
            let tombstones = pass.tombstones.get(seg).copied().unwrap_or(0);
            let superseded = pass.superseded.get(seg).copied().unwrap_or(0);
            if superseded > 0 || (drop_tombstones && tombstones > 0) {
                break drop_tombstones;
            }
            // Nothing to drop: the segment counts as cleaned, left as it is.
            let e = h.cleaned.entry(base).or_insert((now, 0));
            e.1 = tombstones;
            if pass.unreadable && tombstones > 0 {
                // Its tombstones could not go this pass: try again in delete.retention.ms,
                // not at every tick.
                e.0 = now;
            }
            seg += 1;
        };
        let src = &pass.segs[seg];
        let (size, path) = (src.size, src.path.clone());
        let out_path = cleaned_path(&path);
        let (Ok(src_c), Ok(out_c)) = (c_path(&path), c_path(&out_path)) else {
            return self.abandon(pass, "a segment path the kernel cannot take", ctx);
        };
        let out = Segment::new(&pass.dir, src.base, now);
        pass.stage = Stage::Clean(Cleaning {
            seg,
            pos: 0,
            out,
            changed: false,
            drop_tombstones,
            tombstones: 0,
            remove: false,
        });
        let direct = if ctx.cfg.direct_io { libc::O_DIRECT } else { 0 };
        let mut j = job(
            &mut pass,
            format!("compaction: cleaning {}", path.display()),
        );
        j.step(Step::Close { fd: SRC })
            .step(Step::Open {
                path: src_c,
                flags: libc::O_RDONLY | libc::O_CLOEXEC,
                into: SRC,
            })
            .step(Step::Open {
                path: out_c.clone(),
                flags: libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
                into: OUT_W,
            })
            .step(Step::Open {
                path: out_c,
                flags: libc::O_RDONLY | libc::O_CLOEXEC | direct,
                into: OUT_R,
            });
        if size > 0 {
            j.step(read_step(size, 0, None));
        }
        self.continue_pass(pass, j, ctx);
    }

    fn clean_slice(&mut self, mut pass: Pass, mut c: Cleaning, read: AlignedBuf, ctx: &mut LogCtx) {
        let size = pass.segs[c.seg].size;
        let data = &read.as_slice()[..read.len().min(size.saturating_sub(c.pos) as usize)];
        let mut out = AlignedBuf::default();
        let at = c.out.size;
        let mut need = None;
        match batches_in(data, c.pos, size) {
            Ok((hs, used)) => {
                for (h, start) in hs {
                    let b = &data[start..start + h.size];
                    let (cleaned, tombstones) =
                        filter::clean_batch(&h, b, &pass.map, c.drop_tombstones);
                    c.tombstones += tombstones;
                    let rebuilt;
                    let (bytes, header) = match cleaned {
                        Cleaned::Keep => (b, h),
                        Cleaned::Drop => {
                            c.changed = true;
                            continue;
                        }
                        Cleaned::Rebuilt(n) => {
                            c.changed = true;
                            rebuilt = n;
                            match batch::peek(&rebuilt) {
                                Ok(nh) => (&rebuilt[..], nh),
                                Err(_) => (b, h),
                            }
                        }
                    };
                    c.out.note_batch(&header, c.out.size);
                    out.extend_from_slice(bytes);
                }
                c.pos += used as u64;
            }
            Err(Some(n)) => need = Some(n),
            Err(None) => {
                return self.abandon(pass, "a segment holds bytes that are not batches", ctx)
            }
        }
        let mut j = job(&mut pass, "compaction: writing a cleaned segment".into());
        if !out.is_empty() {
            j.step(Step::WriteAt {
                fd: OUT_W,
                at,
                data: out,
            });
        }
        if c.pos < size {
            j.step(read_step(size, c.pos, need));
            pass.stage = Stage::Clean(c);
        } else {
            j.step(Step::Fsync { fd: OUT_W })
                .step(Step::Close { fd: OUT_W });
            pass.stage = Stage::Written(c);
        }
        self.continue_pass(pass, j, ctx);
    }

    /// The cleaned copy is on disk: rename it over the segment (or unlink both when nothing
    /// stays, or drop the copy when nothing changed or the segment went meanwhile).
    fn place(&mut self, mut pass: Pass, mut c: Cleaning, ctx: &mut LogCtx) {
        let src = &pass.segs[c.seg];
        let (path, base) = (src.path.clone(), src.base);
        let Some(p) = self.parts.get(pass.part) else {
            return self.abandon(pass, "the partition is gone", ctx);
        };
        let present = p.log.segments.iter().any(|s| s.base == base);
        let first = p.log.segments.first().is_some_and(|s| s.base == base);
        let marked = p.log.compacted;
        let out_path = cleaned_path(&path);
        let (Ok(src_c), Ok(out_c), Ok(dir_c)) =
            (c_path(&path), c_path(&out_path), c_path(&pass.dir))
        else {
            return self.abandon(pass, "a segment path the kernel cannot take", ctx);
        };
        c.changed &= present;
        if c.changed {
            self.crash_if(CrashAt::Written);
        }
        c.remove = c.changed && c.out.size == 0 && !first;
        let mut j = job(
            &mut pass,
            format!("compaction: putting {} in place", path.display()),
        );
        if c.changed && !marked {
            // The partition's first hole: say so on disk before it is made, so recovery
            // accepts holes here even if the topic stops being compacted.
            let Ok(mark_c) = c_path(&pass.dir.join(COMPACTED_FILE)) else {
                return self.abandon(pass, "a segment path the kernel cannot take", ctx);
            };
            j.step(Step::Open {
                path: mark_c,
                flags: libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC,
                into: DIR,
            })
            .step(Step::Close { fd: DIR });
            j.sync_dir(dir_c.clone(), DIR);
        }
        if !c.changed {
            j.step(Step::Close { fd: OUT_R }).step(Step::Unlink {
                path: out_c,
                dir: false,
            });
        } else if c.remove {
            j.step(Step::Close { fd: OUT_R })
                .step(Step::Unlink {
                    path: src_c,
                    dir: false,
                })
                .step(Step::Unlink {
                    path: out_c,
                    dir: false,
                });
            j.sync_dir(dir_c, DIR);
        } else {
            j.step(Step::Rename {
                from: out_c,
                to: src_c,
            });
            j.sync_dir(dir_c, DIR);
        }
        pass.stage = Stage::Placed(c);
        self.continue_pass(pass, j, ctx);
    }

    /// The cleaned segment is in place: the partition reads it from now on.
    fn swap(&mut self, mut pass: Pass, c: Cleaning, ctx: &mut LogCtx) {
        if c.changed {
            self.crash_if(CrashAt::Renamed);
        }
        let now = ctx.now_ms;
        let (base, path) = (pass.segs[c.seg].base, pass.segs[c.seg].path.clone());
        if c.changed && self.reading(pass.part, &path) {
            // A read in flight was planned on the old file's positions (which its handle
            // still reads): switch once it is done.
            pass.stage = Stage::Placed(c);
            self.compact.pass = Some(pass);
            self.compact.deferred = true;
            return;
        }
        let reader = pass.fds[OUT_R].take();
        let mut tracked = None;
        let mut closes = Job::new(
            format!("compaction: closing the replaced {}", path.display()),
            Then::Nothing,
        );
        let mut k = 0;
        let mut close = |j: &mut Job, f: (File, bool)| {
            j.put(DIR + 1 + k, f).step(Step::Close { fd: DIR + 1 + k });
            k += 1;
        };
        let Some(p) = self.parts.get_mut(pass.part) else {
            pass.fds[OUT_R] = reader;
            return self.abandon(pass, "the partition is gone", ctx);
        };
        if c.changed {
            match p.log.segments.iter().position(|s| s.base == base) {
                None => {
                    // Retention deleted the segment while its cleaned copy went in: remove
                    // what the rename put back.
                    if let Ok(pc) = c_path(&path) {
                        closes.step(Step::Unlink {
                            path: pc,
                            dir: false,
                        });
                    }
                    if let Some(r) = reader {
                        close(&mut closes, r);
                    }
                }
                Some(i) => {
                    p.log.compacted = true;
                    let old = p.log.segments[i].size;
                    let mut out = c.out;
                    out.created_ms = p.log.segments[i].created_ms;
                    pass.reclaimed += old.saturating_sub(out.size);
                    if let Some(f) = p.files.remove(&path) {
                        close(&mut closes, f);
                    }
                    if c.remove {
                        p.log.segments.remove(i);
                        if let Some(r) = reader {
                            close(&mut closes, r);
                        }
                    } else {
                        p.log.segments[i] = out;
                        if let Some(r) = reader {
                            p.files.insert(path.clone(), r);
                            // An older segment's handle counts in the reader cache (the
                            // old one may have been closed by it already).
                            if i + 1 < p.log.segments.len() {
                                tracked = Some(path.clone());
                            }
                        }
                    }
                    // A read-ahead holds bytes at the old file's positions.
                    p.ahead = None;
                    pass.cleaned += 1;
                }
            }
        } else if let Some(r) = reader {
            close(&mut closes, r);
        }
        let h = self.compact.history.entry(pass.part).or_default();
        if c.remove {
            h.cleaned.remove(&base);
        } else {
            let e = h.cleaned.entry(base).or_insert((now, 0));
            e.1 = c.tombstones;
            if pass.unreadable && c.tombstones > 0 {
                e.0 = now; // as in start_cleaning
            }
        }
        if closes.has_steps() {
            self.start_job(closes, ctx);
        }
        if let Some(path) = tracked {
            self.retire_reader(pass.part, path, ctx);
        }
        self.start_cleaning(pass, c.seg + 1, ctx);
    }

    fn finish_pass(&mut self, mut pass: Pass, ctx: &mut LogCtx) {
        let h = self.compact.history.entry(pass.part).or_default();
        if let Some(last) = pass.mapped.checked_sub(1).and_then(|i| pass.segs.get(i)) {
            h.clean_upto = last.end;
        }
        ctx.counters.log_compaction_passes += 1;
        ctx.counters.log_compaction_reclaimed_bytes += pass.reclaimed;
        if let Some(p) = self.parts.get(pass.part) {
            tracing::debug!(topic = %p.topic, partition = p.partition, segments = pass.mapped,
                replaced = pass.cleaned, reclaimed_bytes = pass.reclaimed, "compaction pass done");
        }
        self.close_handles(&mut pass, None, ctx);
        self.compact.spare = pass.map;
    }

    /// End the pass early: close its handles, remove a cleaned copy not put in place. The
    /// partition keeps its segments as they are; a later pass tries again.
    fn abandon(&mut self, mut pass: Pass, why: &str, ctx: &mut LogCtx) {
        let topic = self
            .parts
            .get(pass.part)
            .map(|p| format!("{}-{}", p.topic, p.partition));
        match &topic {
            Some(t) => tracing::warn!(partition = %t, why, "a compaction pass stopped"),
            None => tracing::debug!(why, "a compaction pass stopped"),
        }
        // Nothing counts as clean: the next tick may try again.
        let leftover = match &pass.stage {
            Stage::Clean(c) | Stage::Written(c) => Some(cleaned_path(&pass.segs[c.seg].path)),
            Stage::Placed(c) if !c.changed => Some(cleaned_path(&pass.segs[c.seg].path)),
            _ => None,
        };
        self.close_handles(&mut pass, leftover, ctx);
        self.compact.spare = pass.map;
    }

    fn close_handles(&mut self, pass: &mut Pass, unlink: Option<PathBuf>, ctx: &mut LogCtx) {
        let mut j = Job::new("compaction: closing handles", Then::Nothing);
        for (i, f) in pass.fds.iter_mut().enumerate() {
            if let Some(f) = f.take() {
                j.put(i, f).step(Step::Close { fd: i });
            }
        }
        if let Some(c) = unlink.as_deref().and_then(|p| c_path(p).ok()) {
            j.step(Step::Unlink {
                path: c,
                dir: false,
            });
        }
        if j.has_steps() {
            self.start_job(j, ctx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::filter::keyed_batch;
    use crate::log::partition::{segment_path, trim_read, Offsets, Partition};
    use std::fs;

    #[test]
    fn recovery_and_reads_accept_the_holes_compaction_leaves() {
        let dir = std::env::temp_dir().join(format!("pinion-compact-{}-holes", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        // Segment 0 kept offsets 1..=2 of 0..=4 (a rebuilt batch spans 0..=2; 3..=4 went);
        // segment 5 starts after the hole, with a batch at 7 (5..=6 went).
        let mut a = keyed_batch(0, &[(Some(b"a"), Some(b"1")), (Some(b"b"), Some(b"2"))]);
        a[23..27].copy_from_slice(&2i32.to_be_bytes()); // last offset delta 2: a hole at 0
        let crc = crc32c::crc32c(&a[21..]);
        a[17..21].copy_from_slice(&crc.to_be_bytes());
        fs::write(segment_path(&dir, 0), &a).unwrap();
        let b = keyed_batch(7, &[(Some(b"c"), Some(b"3"))]);
        fs::write(segment_path(&dir, 5), &b).unwrap();
        fs::write(dir.join("00000000000000000005.log.cleaned"), b"half a copy").unwrap();
        let (p, rep) = Partition::recover(&dir, 1 << 20, u64::MAX, 0, Offsets::Holes).unwrap();
        assert_eq!(
            (rep.truncated_bytes, rep.segments_removed),
            (0, 0),
            "{rep:?}"
        );
        assert!(!dir.join("00000000000000000005.log.cleaned").exists());
        assert_eq!((p.log_start(), p.next_offset()), (0, 8));
        assert_eq!(p.segments[0].end, 3);
        // An offset in the hole at the end of segment 0 reads segment 5's batch.
        for (offset, first) in [(0, 0), (2, 0), (3, 7), (5, 7), (7, 7)] {
            let plan = p.plan_read(offset, 1 << 20).unwrap().unwrap();
            let data = fs::read(&plan.path).unwrap();
            let chunk = &data[plan.position as usize..(plan.position + plan.len) as usize];
            let r = trim_read(chunk, offset);
            let h = crate::log::batch::peek(&chunk[r]).unwrap();
            assert_eq!(h.base_offset, first, "fetch at {offset}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
