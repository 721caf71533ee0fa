//! The data directory's lock: one node per `--data-dir`. Two nodes on one directory would
//! both append to the same segments and acknowledge the same offsets, and one's records
//! would be gone after a restart; so a node takes an exclusive lock on `<data-dir>/LOCK` at
//! start-up and holds it until it exits (the kernel drops it with the process, even after
//! kill -9). The file also names the holder's pid, for the error a second node reports.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::runtime::sys;

pub const LOCK_FILE: &str = "LOCK";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("--data-dir {dir} is in use by another pinion (pid {holder}); each node needs its own data directory")]
    Held { dir: String, holder: String },
    #[error("locking --data-dir {dir}: {source}")]
    Io {
        dir: String,
        #[source]
        source: std::io::Error,
    },
}

/// The held lock; dropping it releases the directory.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Lock `dir` for this process.
pub fn lock(dir: &Path) -> Result<DataDirLock, LockError> {
    let io = |source| LockError::Io {
        dir: dir.display().to_string(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(LOCK_FILE))
        .map_err(io)?;
    if !sys::try_lock_exclusive(&file).map_err(io)? {
        let mut holder = String::new();
        // The pid is informative only: a read that fails leaves it unknown.
        let _ = file.read_to_string(&mut holder);
        let holder = holder.trim();
        return Err(LockError::Held {
            dir: dir.display().to_string(),
            holder: if holder.is_empty() { "unknown" } else { holder }.to_string(),
        });
    }
    file.set_len(0).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    writeln!(file, "{}", std::process::id()).map_err(io)?;
    Ok(DataDirLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_directory_is_refused_until_the_first_is_dropped() {
        let dir = std::env::temp_dir().join(format!("pinion-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = lock(&dir).expect("first lock");
        match lock(&dir) {
            Err(LockError::Held { holder, .. }) => {
                assert_eq!(holder, std::process::id().to_string())
            }
            other => panic!("second lock: {other:?}"),
        }
        drop(first);
        lock(&dir).expect("lock after release");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
