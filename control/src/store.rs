//! Where the coordinator's log lives: the [`Store`] trait, and the default store, the
//! control plane's own write-ahead file.
//!
//! Owned by the server's core thread, used only between state machine steps: each
//! `Persist` output is appended (and fsynced) before the outputs after it are carried out,
//! so before any reply or message that depends on it.
//!
//! The file, `<data-dir>/control.wal`: an 8-byte header `PCWAL001`, then frames of
//! `length u32 | CRC-32C u32 of the payload | payload` (the record as JSON), big-endian.
//! Recovery reads frames in order. A last frame that is incomplete or fails its checksum is
//! a torn append: it is cut off (it was never acknowledged, since an append returns only
//! after its fsync). A bad frame with more bytes after it is corruption, and opening fails
//! with the offset rather than dropping committed history. Compaction writes one snapshot
//! record to a new file, fsyncs it, and renames it over the old one.
//!
//! The etcd store (`etcd/`, for a control plane with standbys) implements the same trait.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::limits::FRAME_BYTES_MAX;
use crate::twopc::Record;

const HEADER: &[u8; 8] = b"PCWAL001";
const FRAME_HEAD: usize = 8;
pub const WAL_FILE: &str = "control.wal";
const LOCK_FILE: &str = "control.lock";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is corrupt at byte {offset}: {why}; it is not a torn tail, so it was not truncated. Restore the data directory from a backup, or move the file away to start a new cluster")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        why: String,
    },
    #[error("{0} is locked by another pinion-control process; each needs its own --data-dir")]
    Locked(PathBuf),
    /// An etcd request failed or timed out (an append's outcome is then unknown).
    #[error("etcd: {0}")]
    Etcd(String),
    /// An append was refused because this process no longer holds the leader key: another
    /// control plane leads (or will), and this one must stop coordinating.
    #[error("not the leader any more: the etcd leader key is gone or another control plane's")]
    NotLeader,
    #[error("etcd key {key} does not hold a pinion-control record: {why}")]
    BadRecord { key: String, why: String },
    #[error("a record of {bytes} bytes exceeds ETCD_RECORD_BYTES_MAX ({max}); raise etcd's --max-request-bytes and the bound")]
    TooLarge { bytes: usize, max: usize },
}

/// A durable, ordered log of coordinator records.
pub trait Store {
    /// Every record, in order, as recovery left them.
    fn records(&self) -> &[Record];
    /// Appends a record; it is durable when this returns.
    fn append(&mut self, rec: Record) -> Result<(), StoreError>;
    /// Replaces the whole log with one snapshot record, atomically.
    fn compact(&mut self, snapshot: Record) -> Result<(), StoreError>;
    /// Where the log lives, for status output.
    fn describe(&self) -> String;
}

/// The write-ahead file store.
pub struct FileStore {
    dir: PathBuf,
    path: PathBuf,
    file: File,
    records: Vec<Record>,
    /// Bytes cut from a torn tail at open, for the log line.
    pub truncated_bytes: u64,
    /// Held for the store's life: one control plane per data directory.
    _lock: File,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn frame(rec: &Record) -> Vec<u8> {
    let payload = serde_json::to_vec(rec).expect("records always serialise");
    let mut b = Vec::with_capacity(FRAME_HEAD + payload.len());
    b.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    b.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
    b.extend_from_slice(&payload);
    b
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

impl FileStore {
    /// Opens (or creates) the store in `dir`, recovering its records.
    pub fn open(dir: &Path) -> Result<FileStore, StoreError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(StoreError::Locked(dir.into())),
            Err(fs::TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
        }
        let path = dir.join(WAL_FILE);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let mut buf = Vec::new();
        file.read_to_end(&mut buf).map_err(io_err(&path))?;
        // A new file, or a creation torn before its header was whole.
        let fresh = buf.len() < HEADER.len() && HEADER.starts_with(&buf);
        let (records, valid_len) = if fresh {
            use std::io::Seek;
            file.set_len(0).map_err(io_err(&path))?;
            file.seek(io::SeekFrom::Start(0)).map_err(io_err(&path))?;
            file.write_all(HEADER).map_err(io_err(&path))?;
            file.sync_all().map_err(io_err(&path))?;
            sync_dir(dir)?;
            (Vec::new(), HEADER.len() as u64)
        } else {
            recover(&path, &buf)?
        };
        let truncated_bytes = if fresh {
            0
        } else {
            buf.len() as u64 - valid_len
        };
        if truncated_bytes > 0 {
            file.set_len(valid_len).map_err(io_err(&path))?;
            file.sync_all().map_err(io_err(&path))?;
        }
        // Appends go at the end (read_to_end left the cursor there, or past a torn tail).
        use std::io::Seek;
        file.seek(io::SeekFrom::Start(valid_len))
            .map_err(io_err(&path))?;
        Ok(FileStore {
            dir: dir.to_path_buf(),
            path,
            file,
            records,
            truncated_bytes,
            _lock: lock,
        })
    }
}

/// Parses the file: the records and the length of its valid prefix.
fn recover(path: &Path, buf: &[u8]) -> Result<(Vec<Record>, u64), StoreError> {
    let corrupt = |offset: usize, why: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        why,
    };
    if buf.len() < HEADER.len() || &buf[..HEADER.len()] != HEADER {
        return Err(corrupt(
            0,
            "not a pinion-control write-ahead file (or another version)".into(),
        ));
    }
    let mut records = Vec::new();
    let mut pos = HEADER.len();
    while pos < buf.len() {
        let rest = &buf[pos..];
        if rest.len() < FRAME_HEAD {
            break; // torn frame head
        }
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let crc = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]);
        if rest.len() < FRAME_HEAD + len {
            if len > FRAME_BYTES_MAX {
                return Err(corrupt(
                    pos,
                    format!("frame length {len} exceeds the bound"),
                ));
            }
            break; // torn payload
        }
        let payload = &rest[FRAME_HEAD..FRAME_HEAD + len];
        let last = rest.len() == FRAME_HEAD + len;
        if crc32c::crc32c(payload) != crc {
            if last {
                break; // a torn append that reached its full length
            }
            return Err(corrupt(
                pos,
                "checksum mismatch before the last frame".into(),
            ));
        }
        match serde_json::from_slice::<Record>(payload) {
            Ok(r) => records.push(r),
            Err(e) => return Err(corrupt(pos, format!("undecodable record: {e}"))),
        }
        pos += FRAME_HEAD + len;
    }
    Ok((records, pos as u64))
}

impl Store for FileStore {
    fn records(&self) -> &[Record] {
        &self.records
    }

    fn append(&mut self, rec: Record) -> Result<(), StoreError> {
        let b = frame(&rec);
        self.file.write_all(&b).map_err(io_err(&self.path))?;
        self.file.sync_data().map_err(io_err(&self.path))?;
        self.records.push(rec);
        Ok(())
    }

    fn compact(&mut self, snapshot: Record) -> Result<(), StoreError> {
        let tmp = self.dir.join(format!("{WAL_FILE}.tmp"));
        let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(HEADER).map_err(io_err(&tmp))?;
        f.write_all(&frame(&snapshot)).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
        drop(f);
        fs::rename(&tmp, &self.path).map_err(io_err(&self.path))?;
        sync_dir(&self.dir)?;
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&self.path)
            .map_err(io_err(&self.path))?;
        file.flush().map_err(io_err(&self.path))?;
        self.file = file;
        self.records = vec![snapshot];
        Ok(())
    }

    fn describe(&self) -> String {
        format!("file {}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::ClusterMap;
    use crate::twopc::SignedMap;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("pinion-control-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn records() -> Vec<Record> {
        let mut m = ClusterMap::empty();
        m.epoch = 1;
        let m = SignedMap::new(m);
        vec![
            Record::Begin {
                epoch: 1,
                map: m.clone(),
            },
            Record::Decide {
                epoch: 1,
                commit: true,
            },
            Record::End { epoch: 1 },
        ]
    }

    #[test]
    fn appends_survive_reopen_and_the_directory_is_locked() {
        let d = tmpdir("reopen");
        {
            let mut s = FileStore::open(&d).unwrap();
            assert!(s.records().is_empty());
            for r in records() {
                s.append(r).unwrap();
            }
            assert!(matches!(FileStore::open(&d), Err(StoreError::Locked(_))));
        }
        let s = FileStore::open(&d).unwrap();
        assert_eq!(s.records(), records().as_slice());
        assert_eq!(s.truncated_bytes, 0);
        drop(s);
        // A creation torn inside the header starts over.
        fs::write(d.join(WAL_FILE), &HEADER[..3]).unwrap();
        let mut s = FileStore::open(&d).unwrap();
        assert!(s.records().is_empty());
        s.append(Record::End { epoch: 1 }).unwrap();
        drop(s);
        assert_eq!(FileStore::open(&d).unwrap().records().len(), 1);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_torn_tail_at_every_length_is_cut_and_earlier_records_survive() {
        let d = tmpdir("torn");
        {
            let mut s = FileStore::open(&d).unwrap();
            for r in records() {
                s.append(r).unwrap();
            }
        }
        let full = fs::read(d.join(WAL_FILE)).unwrap();
        let last = frame(&records()[2]).len();
        for cut in 1..last {
            fs::write(d.join(WAL_FILE), &full[..full.len() - cut]).unwrap();
            let mut s = FileStore::open(&d).unwrap();
            assert_eq!(s.records(), &records()[..2], "cut {cut}");
            assert_eq!(s.truncated_bytes as usize, last - cut);
            // Appending after the cut works and survives.
            s.append(Record::End { epoch: 1 }).unwrap();
            drop(s);
            assert_eq!(FileStore::open(&d).unwrap().records(), records().as_slice());
        }
        // A torn last frame of full length (garbage payload) is cut too.
        let mut bad = full.clone();
        let n = bad.len();
        bad[n - 2] ^= 0xff;
        fs::write(d.join(WAL_FILE), &bad).unwrap();
        assert_eq!(FileStore::open(&d).unwrap().records(), &records()[..2]);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn corruption_before_the_tail_refuses_to_open() {
        let d = tmpdir("corrupt");
        {
            let mut s = FileStore::open(&d).unwrap();
            for r in records() {
                s.append(r).unwrap();
            }
        }
        let mut full = fs::read(d.join(WAL_FILE)).unwrap();
        full[HEADER.len() + FRAME_HEAD + 3] ^= 0x01;
        fs::write(d.join(WAL_FILE), &full).unwrap();
        let err = FileStore::open(&d).err().expect("corruption must not open");
        assert!(
            matches!(err, StoreError::Corrupt { offset: 8, .. }),
            "{err}"
        );
        fs::write(d.join(WAL_FILE), b"something else entirely").unwrap();
        assert!(matches!(
            FileStore::open(&d),
            Err(StoreError::Corrupt { offset: 0, .. })
        ));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn compaction_replaces_the_log_with_one_snapshot() {
        let d = tmpdir("compact");
        let snap = Record::Snapshot {
            committed: SignedMap::empty(),
            last_epoch: 9,
        };
        {
            let mut s = FileStore::open(&d).unwrap();
            for r in records() {
                s.append(r).unwrap();
            }
            s.compact(snap.clone()).unwrap();
            s.append(Record::End { epoch: 9 }).unwrap();
        }
        let s = FileStore::open(&d).unwrap();
        assert_eq!(s.records(), &[snap, Record::End { epoch: 9 }]);
        assert!(!d.join(format!("{WAL_FILE}.tmp")).exists());
        fs::remove_dir_all(&d).unwrap();
    }
}
