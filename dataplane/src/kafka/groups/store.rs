//! Committed offsets on disk: one append-only file per `__consumer_offsets` partition
//! (`<data-dir>/groups/offsets-<p>.log`), owned by that partition's coordinator shard.
//!
//! A file is a sequence of records, each `[body length: u32][crc32c of body: u32][body]`
//! (big-endian): an offset commit, an offset's tombstone (OffsetDelete), or a group's
//! deletion (DeleteGroups). Replaying a file in order gives each (group, topic, partition)
//! its latest offset.
//!
//! Writes: what one loop turn appends to a file is one write at its end, linked to one
//! fdatasync (unless `--fsync never`); the requests that appended are answered when it
//! completes, so a commit that was acknowledged survives kill -9. One write per file is in
//! flight at a time; what arrives meanwhile goes into the next. A failed or short write
//! fails its requests and stops the file taking writes until restart (whose recovery cuts
//! the torn tail).
//!
//! Compaction: once a file passes twice the size of its live set (and at least
//! [`GROUP_LOG_REWRITE_MIN_BYTES`]), the coordinator hands a snapshot of the live offsets
//! to [`OffsetLog::start_rewrite`]: it goes to `offsets-<p>.log.tmp` (write, fdatasync),
//! is renamed over the file, the folder is fsynced, and appends continue on the new file.
//! Appends that arrive meanwhile wait and go to the new file. A crash at any point leaves
//! either the old file or the new one whole (a leftover `.tmp` is removed at start-up).
//!
//! Recovery (start-up, blocking I/O before the shard serves): read each file (creating the
//! missing ones, whose names are then made durable), stop at the first record that is short
//! or fails its CRC, truncate the file there, and hand the records to the coordinator. A
//! file is then held open only once a commit goes to it (opened through the ring; its first
//! appends wait for that), so a node with 50 partitions' files costs no descriptors for
//! groups it does not serve.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::limits::{GROUP_LOG_REWRITE_MIN_BYTES, GROUP_LOG_WRITE_MAX_BYTES};
use crate::log::files::{c_path, FILE_MODE};
use crate::runtime::aligned::AlignedBuf;
use crate::runtime::io::{Completion, Io};
use crate::runtime::{Kind, Owner};

/// One record of an offsets file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Commit {
        group: String,
        topic: String,
        partition: i32,
        offset: i64,
        leader_epoch: i32,
        metadata: String,
        commit_ms: i64,
    },
    /// OffsetDelete: the partition's offset is gone.
    Tombstone {
        group: String,
        topic: String,
        partition: i32,
    },
    /// DeleteGroups: every offset of the group is gone.
    GroupGone { group: String },
    /// Transactions (`kafka/txn/record.rs`): a transactional id's state, an offset staged
    /// by a transaction, or a transaction's end for a group.
    Txn(crate::kafka::txn::record::TxnRecord),
}

const COMMIT: u8 = 1;
const TOMBSTONE: u8 = 2;
const GROUP_GONE: u8 = 3;
const TXN: u8 = 4;
const HEADER: usize = 8;

/// Append `s` as a u32 length and its bytes (the store's string, also the transaction
/// records' in `kafka/txn/record.rs`).
pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Append `r`, framed, to `out`.
pub fn encode(r: &Record, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
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
            out.push(COMMIT);
            put_str(out, group);
            put_str(out, topic);
            out.extend_from_slice(&partition.to_be_bytes());
            out.extend_from_slice(&offset.to_be_bytes());
            out.extend_from_slice(&leader_epoch.to_be_bytes());
            put_str(out, metadata);
            out.extend_from_slice(&commit_ms.to_be_bytes());
        }
        Record::Tombstone {
            group,
            topic,
            partition,
        } => {
            out.push(TOMBSTONE);
            put_str(out, group);
            put_str(out, topic);
            out.extend_from_slice(&partition.to_be_bytes());
        }
        Record::GroupGone { group } => {
            out.push(GROUP_GONE);
            put_str(out, group);
        }
        Record::Txn(t) => {
            out.push(TXN);
            t.encode(out);
        }
    }
    let body = &out[start + HEADER..];
    let len = (body.len() as u32).to_be_bytes();
    let crc = crc32c::crc32c(body).to_be_bytes();
    out[start..start + 4].copy_from_slice(&len);
    out[start + 4..start + 8].copy_from_slice(&crc);
}

/// A cursor over a record's body; every read checks what is left.
pub(crate) struct Body<'a>(pub(crate) &'a [u8]);

impl Body<'_> {
    pub(crate) fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    pub(crate) fn i16(&mut self) -> Option<i16> {
        self.take(2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }
    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(crate) fn i32(&mut self) -> Option<i32> {
        self.u32().map(|v| v as i32)
    }
    pub(crate) fn i64(&mut self) -> Option<i64> {
        let b = self.take(8)?;
        let mut a = [0; 8];
        a.copy_from_slice(b);
        Some(i64::from_be_bytes(a))
    }
    pub(crate) fn str(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
    /// A count of items, each at least `min` bytes: never more than what is left allows.
    pub(crate) fn count(&mut self, min: usize) -> Option<usize> {
        let n = self.u32()? as usize;
        (n.saturating_mul(min) <= self.0.len()).then_some(n)
    }
}

fn decode_body(b: &[u8]) -> Option<Record> {
    let (&kind, rest) = b.split_first()?;
    let mut c = Body(rest);
    let r = match kind {
        COMMIT => Record::Commit {
            group: c.str()?,
            topic: c.str()?,
            partition: c.i32()?,
            offset: c.i64()?,
            leader_epoch: c.i32()?,
            metadata: c.str()?,
            commit_ms: c.i64()?,
        },
        TOMBSTONE => Record::Tombstone {
            group: c.str()?,
            topic: c.str()?,
            partition: c.i32()?,
        },
        GROUP_GONE => Record::GroupGone { group: c.str()? },
        TXN => {
            let t = crate::kafka::txn::record::TxnRecord::decode(c.0)?;
            c.0 = &[];
            Record::Txn(t)
        }
        _ => return None,
    };
    c.0.is_empty().then_some(r)
}

/// Every whole, intact record at the front of `bytes`, and how many bytes they take.
pub fn decode_all(bytes: &[u8]) -> (Vec<Record>, usize) {
    let mut out = Vec::new();
    let mut pos = 0;
    while bytes.len() - pos >= HEADER {
        let h = &bytes[pos..pos + HEADER];
        let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let crc = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
        let Some(body) = bytes.get(pos + HEADER..pos + HEADER + len) else {
            break;
        };
        if crc32c::crc32c(body) != crc {
            break;
        }
        let Some(r) = decode_body(body) else {
            break;
        };
        out.push(r);
        pos += HEADER + len;
    }
    (out, pos)
}

// ----- completion codes (the owner's aux) -------------------------------------------------

const WRITE: u32 = 1;
const SYNC: u32 = 2;
const RW_OPEN: u32 = 3;
const RW_WRITE: u32 = 4;
const RW_SYNC: u32 = 5;
const RW_RENAME: u32 = 6;
const RW_DIR_OPEN: u32 = 7;
const RW_DIR_SYNC: u32 = 8;
const OPEN: u32 = 9;

struct Writing<W> {
    len: u64,
    waiters: Vec<W>,
    written: bool,
    synced: bool,
    failed: bool,
}

/// A rewrite in progress, by the step whose completion it waits for.
enum Rewrite {
    Opening {
        snap: Vec<u8>,
    },
    Writing {
        new: Option<File>,
        len: u64,
        written: bool,
        synced: bool,
        failed: bool,
    },
    Renaming {
        new: File,
        len: u64,
    },
    OpeningDir {
        new: File,
        len: u64,
    },
    SyncingDir {
        new: File,
        len: u64,
        dir: File,
    },
}

struct LogFile<W> {
    /// Opened on the first append (see the module header).
    file: Option<File>,
    opening: bool,
    path: CString,
    size: u64,
    pending: Vec<u8>,
    waiting: Vec<W>,
    writing: Option<Writing<W>>,
    rewrite: Option<Rewrite>,
    failed: bool,
    /// Rewrite once the file is this large.
    rewrite_at: u64,
    /// Ops of this file in flight (its completions still to come).
    in_flight: usize,
}

/// A shard's offsets files; `W` is what waits for a write (the coordinator's requests).
pub struct OffsetLog<W> {
    dir: PathBuf,
    files: HashMap<u32, LogFile<W>>,
    dirty: Vec<u32>,
    sync: bool,
}

pub fn file_path(dir: &Path, p: u32) -> PathBuf {
    dir.join(format!("offsets-{p}.log"))
}

fn tmp_path(dir: &Path, p: u32) -> PathBuf {
    dir.join(format!("offsets-{p}.log.tmp"))
}

fn owner(p: u32, aux: u32) -> Owner {
    Owner::new(Kind::Group, p, 0).with_aux(aux)
}

impl<W> OffsetLog<W> {
    /// Open (creating) the files of `parts` under `dir`, read their records and cut any
    /// torn tail. Start-up only: blocking I/O.
    pub fn recover(
        dir: &Path,
        parts: &[u32],
        sync: bool,
    ) -> std::io::Result<(OffsetLog<W>, Vec<Record>)> {
        std::fs::create_dir_all(dir)?;
        let mut files = HashMap::new();
        let mut records = Vec::new();
        for &p in parts {
            let _ = std::fs::remove_file(tmp_path(dir, p));
            let path = file_path(dir, p);
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)?;
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)?;
            let (recs, good) = decode_all(&bytes);
            if good < bytes.len() {
                tracing::warn!(path = %path.display(), cut_bytes = bytes.len() - good,
                    "offsets file had a torn or corrupt tail; cutting it");
                file.set_len(good as u64)?;
                file.sync_data()?;
            }
            records.extend(recs);
            files.insert(
                p,
                LogFile {
                    file: None,
                    opening: false,
                    path: c_path(&path)?,
                    size: good as u64,
                    pending: Vec::new(),
                    waiting: Vec::new(),
                    writing: None,
                    rewrite: None,
                    failed: false,
                    rewrite_at: GROUP_LOG_REWRITE_MIN_BYTES,
                    in_flight: 0,
                },
            );
        }
        // New files' names are durable before anything is acknowledged into them.
        File::open(dir)?.sync_all()?;
        Ok((
            OffsetLog {
                dir: dir.to_path_buf(),
                files,
                dirty: Vec::new(),
                sync,
            },
            records,
        ))
    }

    /// Append records to file `p` (written by `f`), answered through `w` once durable.
    /// Refused (the waiter handed back) when the file failed or is not this shard's.
    pub fn append(&mut self, p: u32, f: impl FnOnce(&mut Vec<u8>), w: W) -> Result<(), W> {
        let Some(file) = self.files.get_mut(&p) else {
            return Err(w);
        };
        if file.failed {
            return Err(w);
        }
        f(&mut file.pending);
        file.waiting.push(w);
        if !self.dirty.contains(&p) {
            self.dirty.push(p);
        }
        Ok(())
    }

    /// Nothing in flight (the shard may exit).
    pub fn io_done(&self) -> bool {
        self.files.values().all(|f| f.in_flight == 0)
    }

    /// The size of file `p` (tests, metrics).
    pub fn size(&self, p: u32) -> Option<u64> {
        self.files.get(&p).map(|f| f.size)
    }

    /// Start a write for every file with appends waiting and none in flight.
    pub fn flush(&mut self, io: &mut Io) {
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.retain(|&p| {
            let Some(f) = self.files.get_mut(&p) else {
                return false;
            };
            if f.pending.is_empty() {
                return false;
            }
            if f.writing.is_some() || f.rewrite.is_some() || f.opening {
                return true; // next turn, after what is in flight
            }
            let Some(fd) = f.file.as_ref().map(|f| f.as_raw_fd()) else {
                let flags = libc::O_RDWR | libc::O_CREAT | libc::O_CLOEXEC;
                io.open_at(f.path.clone(), flags, FILE_MODE, owner(p, OPEN));
                f.in_flight += 1;
                f.opening = true;
                return true;
            };
            let n = if f.pending.len() <= GROUP_LOG_WRITE_MAX_BYTES {
                f.pending.len()
            } else {
                // Whole records only: the cut is where the waiters' appends end. All of
                // one waiter's bytes were appended together, so cut at a record boundary.
                record_prefix(&f.pending, GROUP_LOG_WRITE_MAX_BYTES)
            };
            let mut buf = AlignedBuf::default();
            buf.extend_from_slice(&f.pending[..n]);
            f.pending.drain(..n);
            // Waiters whose bytes are all in this write: every waiter appended whole
            // records, so all of them are in it unless the cut fell short.
            let waiters = if f.pending.is_empty() {
                std::mem::take(&mut f.waiting)
            } else {
                Vec::new()
            };
            let sync = self.sync;
            let then = sync.then(|| owner(p, SYNC));
            io.write_at(fd, buf, f.size, owner(p, WRITE), then);
            f.in_flight += 1 + sync as usize;
            f.writing = Some(Writing {
                len: n as u64,
                waiters,
                written: false,
                synced: !sync,
                failed: false,
            });
            !f.pending.is_empty()
        });
        self.dirty = dirty;
    }

    /// Files that have grown past their rewrite size and are idle.
    pub fn rewrites_due(&self) -> Vec<u32> {
        self.files
            .iter()
            .filter(|(_, f)| {
                !f.failed
                    && f.file.is_some()
                    && f.size >= f.rewrite_at
                    && f.writing.is_none()
                    && f.rewrite.is_none()
            })
            .map(|(&p, _)| p)
            .collect()
    }

    /// Replace file `p` with `snap` (the live records); appends wait meanwhile.
    pub fn start_rewrite(&mut self, p: u32, snap: Vec<u8>, io: &mut Io) {
        let Some(f) = self.files.get_mut(&p) else {
            return;
        };
        let Ok(tmp) = c_path(&tmp_path(&self.dir, p)) else {
            return;
        };
        // Not again before the file has doubled past its live size.
        f.rewrite_at = (2 * snap.len() as u64).max(GROUP_LOG_REWRITE_MIN_BYTES);
        tracing::info!(
            file = p,
            from_bytes = f.size,
            to_bytes = snap.len(),
            "rewriting an offsets file with its live offsets"
        );
        io.open_at(
            tmp,
            libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
            FILE_MODE,
            owner(p, RW_OPEN),
        );
        f.in_flight += 1;
        f.rewrite = Some(Rewrite::Opening { snap });
    }

    /// A completion of one of this log's operations; requests whose write finished go to
    /// `done` with whether it succeeded.
    pub fn on_completion(&mut self, c: Completion, io: &mut Io, done: &mut Vec<(W, bool)>) {
        let p = c.owner.index;
        let aux = c.owner.aux;
        let res = c.res;
        let Some(f) = self.files.get_mut(&p) else {
            return;
        };
        f.in_flight = f.in_flight.saturating_sub(1);
        match aux {
            OPEN => {
                f.opening = false;
                match c.into_file().filter(|_| res >= 0) {
                    Some(file) => f.file = Some(file),
                    None => {
                        tracing::error!(file = p, res, "opening an offsets file failed");
                        f.failed = true;
                        done.extend(f.waiting.drain(..).map(|w| (w, false)));
                        f.pending.clear();
                    }
                }
                if !f.pending.is_empty() && !self.dirty.contains(&p) {
                    self.dirty.push(p);
                }
            }
            WRITE | SYNC => {
                let Some(w) = f.writing.as_mut() else {
                    return;
                };
                if aux == WRITE {
                    w.written = true;
                    if res < 0 || res as u64 != w.len {
                        tracing::error!(file = p, res, "writing an offsets file failed");
                        w.failed = true;
                        if !self.sync {
                            // No linked sync follows.
                            w.synced = true;
                        }
                    }
                } else {
                    w.synced = true;
                    if res < 0 && !w.failed {
                        tracing::error!(file = p, res, "syncing an offsets file failed");
                        w.failed = true;
                    }
                }
                if !(w.written && w.synced) {
                    return;
                }
                let Some(w) = f.writing.take() else {
                    return;
                };
                if w.failed {
                    f.failed = true;
                    done.extend(w.waiters.into_iter().map(|w| (w, false)));
                    done.extend(f.waiting.drain(..).map(|w| (w, false)));
                    f.pending.clear();
                } else {
                    f.size += w.len;
                    done.extend(w.waiters.into_iter().map(|w| (w, true)));
                }
            }
            _ => self.rewrite_step(p, aux, c, io),
        }
    }

    fn rewrite_step(&mut self, p: u32, aux: u32, c: Completion, io: &mut Io) {
        self.rewrite_advance(p, aux, c, io);
        // Appends that waited for the rewrite go next (to whichever file is the file now).
        if self.files.get(&p).is_some_and(|f| !f.pending.is_empty()) && !self.dirty.contains(&p) {
            self.dirty.push(p);
        }
    }

    fn rewrite_advance(&mut self, p: u32, aux: u32, c: Completion, io: &mut Io) {
        let res = c.res;
        let (tmp, path, dir) = (
            tmp_path(&self.dir, p),
            file_path(&self.dir, p),
            self.dir.clone(),
        );
        let sync = self.sync;
        let Some(f) = self.files.get_mut(&p) else {
            return;
        };
        let Some(step) = f.rewrite.take() else {
            return;
        };
        let abandon = |why: &str, res: i32| {
            tracing::error!(
                file = p,
                step = why,
                res,
                "rewriting an offsets file failed; appending to the old one"
            );
        };
        match (step, aux) {
            (Rewrite::Opening { snap }, RW_OPEN) => {
                let Some(new) = c.into_file().filter(|_| res >= 0) else {
                    return abandon("open", res);
                };
                let len = snap.len() as u64;
                let mut buf = AlignedBuf::default();
                buf.extend_from_slice(&snap);
                let then = sync.then(|| owner(p, RW_SYNC));
                io.write_at(new.as_raw_fd(), buf, 0, owner(p, RW_WRITE), then);
                f.in_flight += 1 + sync as usize;
                f.rewrite = Some(Rewrite::Writing {
                    new: Some(new),
                    len,
                    written: false,
                    synced: !sync,
                    failed: false,
                });
            }
            (
                Rewrite::Writing {
                    new,
                    len,
                    mut written,
                    mut synced,
                    mut failed,
                },
                RW_WRITE | RW_SYNC,
            ) => {
                if aux == RW_WRITE {
                    written = true;
                    failed |= res < 0 || res as u64 != len;
                    if !sync {
                        synced = true;
                    }
                } else {
                    synced = true;
                    failed |= res < 0;
                }
                if !(written && synced) {
                    f.rewrite = Some(Rewrite::Writing {
                        new,
                        len,
                        written,
                        synced,
                        failed,
                    });
                    return;
                }
                let Some(new) = new.filter(|_| !failed) else {
                    return abandon("write", res);
                };
                let (Ok(from), Ok(to)) = (c_path(&tmp), c_path(&path)) else {
                    return abandon("path", 0);
                };
                io.rename_at(from, to, owner(p, RW_RENAME));
                f.in_flight += 1;
                f.rewrite = Some(Rewrite::Renaming { new, len });
            }
            (Rewrite::Renaming { new, len }, RW_RENAME) => {
                if res < 0 {
                    return abandon("rename", res);
                }
                let Ok(d) = c_path(&dir) else {
                    return abandon("path", 0);
                };
                io.open_at(
                    d,
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
                    0,
                    owner(p, RW_DIR_OPEN),
                );
                f.in_flight += 1;
                f.rewrite = Some(Rewrite::OpeningDir { new, len });
            }
            (Rewrite::OpeningDir { new, len }, RW_DIR_OPEN) => match c.into_file() {
                Some(dir) if res >= 0 => {
                    io.fsync(dir.as_raw_fd(), false, owner(p, RW_DIR_SYNC));
                    f.in_flight += 1;
                    f.rewrite = Some(Rewrite::SyncingDir { new, len, dir });
                }
                // The rename happened: the new file is the file either way.
                _ => switch(f, new, len, io),
            },
            (Rewrite::SyncingDir { new, len, dir }, RW_DIR_SYNC) => {
                io.close_file(dir, Owner::new(Kind::Ignore, 0, 0));
                switch(f, new, len, io);
            }
            (step, _) => f.rewrite = Some(step),
        }
    }
}

/// The renamed file takes over; the old handle closes on the ring.
fn switch<W>(f: &mut LogFile<W>, new: File, len: u64, io: &mut Io) {
    if let Some(old) = f.file.replace(new) {
        io.close_file(old, Owner::new(Kind::Ignore, 0, 0));
    }
    f.size = len;
}

/// The length of the longest run of whole records at the front of `b` within `max` bytes
/// (at least the first record, so a record larger than `max` still goes out alone).
fn record_prefix(b: &[u8], max: usize) -> usize {
    let mut pos = 0;
    while b.len() - pos >= HEADER {
        let len = u32::from_be_bytes([b[pos], b[pos + 1], b[pos + 2], b[pos + 3]]) as usize;
        let next = pos + HEADER + len;
        if next > b.len() || (next > max && pos > 0) {
            break;
        }
        pos = next;
    }
    pos.max(1).min(b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(g: &str, t: &str, p: i32, o: i64) -> Record {
        Record::Commit {
            group: g.into(),
            topic: t.into(),
            partition: p,
            offset: o,
            leader_epoch: -1,
            metadata: "m".into(),
            commit_ms: 7,
        }
    }

    #[test]
    fn records_round_trip_and_a_torn_tail_is_cut() {
        let recs = vec![
            commit("g", "t", 0, 5),
            Record::Tombstone {
                group: "g".into(),
                topic: "t".into(),
                partition: 1,
            },
            Record::GroupGone { group: "h".into() },
            commit("g", "ü", 3, i64::MAX),
        ];
        let mut b = Vec::new();
        for r in &recs {
            encode(r, &mut b);
        }
        assert_eq!(decode_all(&b), (recs.clone(), b.len()));
        // Every cut short of the end keeps exactly the whole records before it.
        let mut ends = Vec::new();
        let mut one = Vec::new();
        for r in &recs {
            encode(r, &mut one);
            ends.push(one.len());
        }
        for cut in 0..b.len() {
            let whole = ends.iter().filter(|&&e| e <= cut).count();
            let (got, len) = decode_all(&b[..cut]);
            assert_eq!(got, recs[..whole]);
            assert_eq!(len, if whole == 0 { 0 } else { ends[whole - 1] });
        }
        // A flipped byte anywhere stops the replay at the record it is in.
        for i in 0..b.len() {
            let mut m = b.clone();
            m[i] ^= 0x5a;
            let (got, _) = decode_all(&m);
            let hit = ends.iter().position(|&e| i < e).unwrap();
            assert_eq!(got, recs[..hit], "flip at {i}");
        }
    }

    #[test]
    fn writes_are_cut_at_record_boundaries() {
        let mut b = Vec::new();
        for i in 0..10 {
            encode(&commit("g", "t", i, 1), &mut b);
        }
        let one = b.len() / 10;
        assert_eq!(record_prefix(&b, one * 3 + 1), one * 3);
        assert_eq!(record_prefix(&b, 1), one);
        assert_eq!(record_prefix(&b, b.len()), b.len());
    }

    #[test]
    fn recovery_cuts_garbage_and_keeps_order() {
        let dir = std::env::temp_dir().join(format!("pinion-groups-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut b = Vec::new();
        encode(&commit("g", "t", 0, 1), &mut b);
        encode(&commit("g", "t", 0, 2), &mut b);
        let good = b.len();
        b.extend_from_slice(&[0, 0, 0, 40, 1, 2, 3]);
        std::fs::write(file_path(&dir, 3), &b).unwrap();
        std::fs::write(tmp_path(&dir, 3), b"leftover").unwrap();
        let (log, recs) = OffsetLog::<()>::recover(&dir, &[3, 4], true).unwrap();
        assert_eq!(recs, vec![commit("g", "t", 0, 1), commit("g", "t", 0, 2)]);
        assert_eq!(log.size(3), Some(good as u64));
        assert_eq!(log.size(4), Some(0));
        assert_eq!(
            std::fs::metadata(file_path(&dir, 3)).unwrap().len(),
            good as u64
        );
        assert!(!tmp_path(&dir, 3).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
