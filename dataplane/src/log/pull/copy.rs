//! The copy: record batches fetched from the source written as they are into the
//! importing partition's folder, in segments named by their first batch's base offset,
//! exactly as the log keeps them (`partition.rs`), so that recovery reads the folder as
//! any other partition's and rebuilds the index, producers' state and the transaction
//! index from it. Plain blocking file calls on the pull's thread: no shard holds the
//! folder while it imports.
//!
//! Invariants: batches are written in offset order, each whole and CRC-checked, never one
//! below the offset after the last written (the source's holes, left by compaction, stay
//! holes); a copy resumed after a crash starts from what recovery keeps of the folder.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::super::batch;
use super::super::partition::{segment_path, Offsets, Partition, COMPACTED_FILE, LOG_START_FILE};

/// Why a copy stopped.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("writing {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the source sent a batch at offset {base} that does not check ({why})")]
    Corrupt { base: i64, why: batch::BatchError },
    #[error("the source sent a batch at offset {base}, below {next}, the next offset copied")]
    Overlap { base: i64, next: i64 },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> CopyError + '_ {
    move |source| CopyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub struct Copy {
    dir: PathBuf,
    segment_bytes: u64,
    /// The segment being written: handle, base offset, size.
    active: Option<(File, i64, u64)>,
    /// The offset after the last batch written; None before the first.
    next: Option<i64>,
    /// Bytes written by this copy (not counting what a resumed copy found).
    pub bytes: u64,
}

/// The segment files in `dir`, by base offset.
fn segments(dir: &Path) -> io::Result<Vec<i64>> {
    let mut bases = Vec::new();
    for e in fs::read_dir(dir)? {
        let name = e?.file_name();
        if let Some(b) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|s| s.parse::<i64>().ok())
        {
            bases.push(b);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Copy {
    /// A copy into `dir`: resumed from what the folder holds when it holds records (after
    /// recovery cut any torn tail), else empty.
    pub fn open(dir: &Path, segment_bytes: u64, now_ms: u64) -> Result<Copy, CopyError> {
        fs::create_dir_all(dir).map_err(io_at(dir))?;
        let mut c = Copy {
            dir: dir.to_path_buf(),
            segment_bytes: segment_bytes.max(1),
            active: None,
            next: None,
            bytes: 0,
        };
        let bases = segments(dir).map_err(io_at(dir))?;
        let holds = bases
            .iter()
            .any(|&b| fs::metadata(segment_path(dir, b)).is_ok_and(|m| m.len() > 0));
        if !holds {
            c.wipe()?;
            return Ok(c);
        }
        // The copy holds the source's batches as they were, holes included (a compacted
        // source): recovery only finds where it ends and cuts a torn tail.
        let (log, _) = Partition::recover(dir, segment_bytes, u64::MAX, now_ms, Offsets::Holes)
            .map_err(io_at(dir))?;
        if let Some(last) = log.segments.last() {
            let mut f = OpenOptions::new()
                .write(true)
                .open(&last.path)
                .map_err(io_at(&last.path))?;
            // Writes go on where recovery says the segment ends (not at the file's start).
            f.seek(SeekFrom::Start(last.size))
                .map_err(io_at(&last.path))?;
            c.active = Some((f, last.base, last.size));
            c.next = Some(last.end);
        }
        Ok(c)
    }

    /// Remove every segment, the log start file and the holes marker: the copy starts over.
    pub fn wipe(&mut self) -> Result<(), CopyError> {
        self.active = None;
        self.next = None;
        for b in segments(&self.dir).map_err(io_at(&self.dir))? {
            let p = segment_path(&self.dir, b);
            fs::remove_file(&p).map_err(io_at(&p))?;
        }
        for name in [LOG_START_FILE, COMPACTED_FILE] {
            let p = self.dir.join(name);
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_at(&p)(e)),
            }
        }
        fsync_dir(&self.dir).map_err(io_at(&self.dir))
    }

    /// The offset the copy wants next; None when it holds nothing yet.
    pub fn next_offset(&self) -> Option<i64> {
        self.next
    }

    /// Append the whole batches of `records` (a Fetch answer's) that end at or after the
    /// next offset; a partial batch at the end (the answer's size bound cut it) is left for
    /// the next fetch. Batches going to one segment are written with one call. Returns how
    /// many batches were appended.
    pub fn append(&mut self, records: &[u8]) -> Result<usize, CopyError> {
        let mut pos = 0;
        let mut n = 0;
        // The bytes of `records` checked and not yet written, all for the active segment.
        let mut run = pos..pos;
        while pos < records.len() {
            let rest = &records[pos..];
            let Ok(h) = batch::peek(rest) else {
                break; // a partial header
            };
            if h.size > rest.len() {
                break; // a partial batch
            }
            let h = batch::validate(&rest[..h.size]).map_err(|why| CopyError::Corrupt {
                base: h.base_offset,
                why,
            })?;
            if let Some(next) = self.next {
                if h.last_offset() < next {
                    // Before where the copy is (a fetch answers from a batch's start).
                    self.write(&records[run])?;
                    pos += h.size;
                    run = pos..pos;
                    continue;
                }
                if h.base_offset < next {
                    return Err(CopyError::Overlap {
                        base: h.base_offset,
                        next,
                    });
                }
                if h.base_offset > next {
                    self.mark_holes()?;
                }
            }
            let size = self.active.as_ref().map(|a| a.2 + run.len() as u64);
            let roll = match size {
                None => true,
                Some(size) => size > 0 && size + h.size as u64 > self.segment_bytes,
            };
            if roll {
                self.write(&records[run])?;
                run = pos..pos;
                self.roll(h.base_offset)?;
            }
            pos += h.size;
            run.end = pos;
            self.next = Some(h.last_offset() + 1);
            n += 1;
        }
        self.write(&records[run])?;
        Ok(n)
    }

    /// Write `bytes` (whole batches) at the end of the active segment.
    fn write(&mut self, bytes: &[u8]) -> Result<(), CopyError> {
        if bytes.is_empty() {
            return Ok(());
        }
        let Some((f, base, size)) = self.active.as_mut() else {
            unreachable!("batches are written after a segment was opened for them");
        };
        f.write_all(bytes)
            .map_err(io_at(&segment_path(&self.dir, *base)))?;
        *size += bytes.len() as u64;
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    /// The copy has a hole (the source was compacted): the folder gets the
    /// [`COMPACTED_FILE`] marker, durable before any batch past the hole, so recovery on
    /// this node allows holes whatever the topic's policy says now, as it does on the
    /// source.
    fn mark_holes(&mut self) -> Result<(), CopyError> {
        let path = self.dir.join(COMPACTED_FILE);
        if !path.exists() {
            File::create(&path).map_err(io_at(&path))?;
            fsync_dir(&self.dir).map_err(io_at(&self.dir))?;
        }
        Ok(())
    }

    /// Close the active segment (synced) and start one at `base`.
    fn roll(&mut self, base: i64) -> Result<(), CopyError> {
        if let Some((f, b, _)) = self.active.take() {
            f.sync_data().map_err(io_at(&segment_path(&self.dir, b)))?;
        }
        let path = segment_path(&self.dir, base);
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(io_at(&path))?;
        fsync_dir(&self.dir).map_err(io_at(&self.dir))?;
        self.active = Some((f, base, 0));
        Ok(())
    }

    /// The copy is complete up to `end` (the source's end offset): make its log end there
    /// (an empty segment at `end` when the source's last records were compacted away, or it
    /// holds none) and start at `log_start`, and make everything durable.
    pub fn seal(&mut self, end: i64, log_start: i64) -> Result<(), CopyError> {
        if self.next.is_none_or(|n| n < end) {
            if self.next.is_some() {
                self.mark_holes()?;
            }
            self.roll(end)?;
            self.next = Some(end);
        }
        let first = segments(&self.dir)
            .map_err(io_at(&self.dir))?
            .first()
            .copied()
            .unwrap_or(end);
        if log_start > first {
            let path = self.dir.join(LOG_START_FILE);
            let tmp = self.dir.join(format!("{LOG_START_FILE}.tmp"));
            let mut f = File::create(&tmp).map_err(io_at(&tmp))?;
            f.write_all(log_start.to_string().as_bytes())
                .and_then(|_| f.sync_all())
                .map_err(io_at(&tmp))?;
            fs::rename(&tmp, &path).map_err(io_at(&path))?;
        }
        if let Some((f, b, _)) = &self.active {
            f.sync_data().map_err(io_at(&segment_path(&self.dir, *b)))?;
        }
        fsync_dir(&self.dir).map_err(io_at(&self.dir))
    }
}

/// The CRC-32C field of the batch at the front of `b` (its header is whole).
pub fn crc_of(b: &[u8]) -> u32 {
    b.get(17..21)
        .map_or(0, |c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
}

/// The last whole, CRC-checked batch of the copy in `dir` (its header and CRC), if any: in
/// the last segment that holds one; a torn tail is passed over as recovery cuts it.
pub fn last_batch(dir: &Path) -> io::Result<Option<(batch::BatchHeader, u32)>> {
    use std::os::unix::fs::FileExt;
    for base in segments(dir)?.into_iter().rev() {
        let path = segment_path(dir, base);
        let f = File::open(&path)?;
        let len = f.metadata()?.len();
        // Where each batch whose declared size fits in the file starts.
        let mut starts = Vec::new();
        let mut pos = 0u64;
        let mut head = [0u8; batch::HEADER_BYTES];
        while pos + batch::HEADER_BYTES as u64 <= len {
            f.read_exact_at(&mut head, pos)?;
            let Ok(h) = batch::peek(&head) else {
                break;
            };
            if pos + h.size as u64 > len {
                break;
            }
            starts.push((pos, h.size));
            pos += h.size as u64;
        }
        for (at, size) in starts.into_iter().rev() {
            let mut b = vec![0u8; size];
            f.read_exact_at(&mut b, at)?;
            if let Ok(h) = batch::validate(&b) {
                return Ok(Some((h, crc_of(&b))));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("pinion-pull-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn batches(offsets: &[i64]) -> Vec<u8> {
        let mut out = Vec::new();
        for &o in offsets {
            out.extend(batch::build(o, 1000 + o, &[b"a", b"b"]));
        }
        out
    }

    #[test]
    fn the_last_batch_is_the_last_whole_one_a_torn_tail_passed_over() {
        let dir = tmp("last");
        let mut c = Copy::open(&dir, 200, 0).unwrap();
        assert_eq!(last_batch(&dir).unwrap(), None);
        let data = batches(&[0, 2, 4, 6, 8]);
        c.append(&data).unwrap();
        let (h, crc) = last_batch(&dir).unwrap().unwrap();
        assert_eq!((h.base_offset, h.last_offset()), (8, 9));
        let want = batch::build(8, 1008, &[b"a", b"b"]);
        assert_eq!(crc, crc_of(&want));
        assert_ne!(crc, crc_of(&batch::build(8, 1008, &[b"a", b"c"])));
        // A torn batch at the end (a crash mid-write) is not the last batch.
        let next = batch::build(10, 1010, &[b"a", b"b"]);
        let seg = segments(&dir).unwrap().into_iter().last().unwrap();
        let mut f = OpenOptions::new()
            .append(true)
            .open(segment_path(&dir, seg))
            .unwrap();
        f.write_all(&next[..next.len() - 3]).unwrap();
        assert_eq!(last_batch(&dir).unwrap().unwrap().0.base_offset, 8);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn batches_keep_their_offsets_and_recovery_reads_them() {
        let dir = tmp("keep");
        let mut c = Copy::open(&dir, 200, 0).unwrap();
        let data = batches(&[10, 12, 14, 20]); // 16..19: a hole compaction left
                                               // A partial batch at the end waits for the next fetch.
        let cut = data.len() - 5;
        assert_eq!(c.append(&data[..cut]).unwrap(), 3);
        assert_eq!(c.next_offset(), Some(16));
        // The next fetch answers from the batch holding 16 onwards (the one at 14 again).
        assert_eq!(c.append(&data).unwrap(), 1);
        assert_eq!(c.next_offset(), Some(22));
        c.seal(22, 11).unwrap();
        let (log, rep) = Partition::recover(&dir, 200, u64::MAX, 0, Offsets::Dense).unwrap();
        assert_eq!(rep.truncated_bytes, 0);
        assert!(log.segments.len() > 1, "rolled at segment_bytes");
        assert_eq!(log.segments[0].base, 10);
        assert_eq!(log.next_offset(), 22);
        assert_eq!(log.log_start(), 11);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_resumed_copy_continues_after_a_torn_tail() {
        let dir = tmp("resume");
        let mut c = Copy::open(&dir, 1 << 20, 0).unwrap();
        c.append(&batches(&[0, 2, 4])).unwrap();
        drop(c);
        // A crash tore the last batch.
        let p = segment_path(&dir, 0);
        let len = fs::metadata(&p).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let mut c = Copy::open(&dir, 1 << 20, 0).unwrap();
        assert_eq!(c.next_offset(), Some(4));
        assert_eq!(c.append(&batches(&[4, 6])).unwrap(), 2);
        c.seal(8, 0).unwrap();
        let (log, _) = Partition::recover(&dir, 1 << 20, u64::MAX, 0, Offsets::Dense).unwrap();
        assert_eq!(log.next_offset(), 8);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_batches_are_refused() {
        let dir = tmp("bad");
        let mut c = Copy::open(&dir, 1 << 20, 0).unwrap();
        c.append(&batches(&[0, 2])).unwrap();
        assert!(matches!(
            c.append(&batches(&[3])),
            Err(CopyError::Overlap { base: 3, next: 4 })
        ));
        let mut b = batches(&[4]);
        let last = b.len() - 1;
        b[last] ^= 1;
        assert!(matches!(c.append(&b), Err(CopyError::Corrupt { .. })));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_empty_source_leaves_an_empty_log_at_its_end() {
        let dir = tmp("empty");
        let mut c = Copy::open(&dir, 1 << 20, 0).unwrap();
        c.seal(500, 500).unwrap();
        let (log, _) = Partition::recover(&dir, 1 << 20, u64::MAX, 0, Offsets::Dense).unwrap();
        assert_eq!(log.next_offset(), 500);
        assert_eq!(log.log_start(), 500);
        fs::remove_dir_all(&dir).unwrap();
    }
}
