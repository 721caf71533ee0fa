//! The durable state of a node's cluster membership (`--control`).
//!
//! Durable state (`<data-dir>/cluster/member.state`): the committed map the node serves and
//! the map it prepared, if any, as the 2PC participant's `Durable`. Written to a temporary
//! file, fsynced, renamed over the old one, and the directory fsynced, before the vote or
//! ack that depends on it is sent.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use pinion_control::map::ClusterMap;
use pinion_control::twopc::{Durable, SignedMap};

const MAGIC: &[u8; 4] = b"PNMB";

fn state_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("cluster")
}

fn state_path(data_dir: &Path) -> PathBuf {
    state_dir(data_dir).join("member.state")
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}: not a member state file, or damaged (checksum)")]
    Corrupt(PathBuf),
    #[error("{path}: {source}")]
    Map {
        path: PathBuf,
        source: pinion_control::map::MapError,
    },
}

fn put(b: &mut Vec<u8>, bytes: &[u8]) {
    b.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    b.extend_from_slice(bytes);
}

/// The byte form: magic | committed map | prepared flag | prepared map | CRC-32C.
pub fn encode(d: &Durable) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(MAGIC);
    put(&mut b, &d.committed.map.encode());
    match &d.prepared {
        Some(p) => {
            b.push(1);
            put(&mut b, &p.map.encode());
        }
        None => b.push(0),
    }
    let crc = crc32c::crc32c(&b);
    b.extend_from_slice(&crc.to_be_bytes());
    b
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if b.len() < n {
        return None;
    }
    let (h, t) = b.split_at(n);
    *b = t;
    Some(h)
}

fn take_map(b: &mut &[u8]) -> Option<Result<ClusterMap, pinion_control::map::MapError>> {
    let len = take(b, 4)?;
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
    Some(ClusterMap::decode(take(b, len)?))
}

/// Decodes the byte form; `None` if it is not one (bad magic, checksum or length).
pub fn decode(buf: &[u8]) -> Option<Result<Durable, pinion_control::map::MapError>> {
    if buf.len() < MAGIC.len() + 4 || &buf[..4] != MAGIC {
        return None;
    }
    let (body, tail) = buf.split_at(buf.len() - 4);
    if crc32c::crc32c(body) != u32::from_be_bytes([tail[0], tail[1], tail[2], tail[3]]) {
        return None;
    }
    let mut b = &body[4..];
    let committed = match take_map(&mut b)? {
        Ok(m) => SignedMap::new(m),
        Err(e) => return Some(Err(e)),
    };
    let prepared = match take(&mut b, 1)?[0] {
        0 => None,
        1 => match take_map(&mut b)? {
            Ok(m) => Some(SignedMap::new(m)),
            Err(e) => return Some(Err(e)),
        },
        _ => return None,
    };
    if !b.is_empty() {
        return None;
    }
    Some(Ok(Durable {
        committed,
        prepared,
    }))
}

/// The durable state from the data directory; a node that never joined starts empty.
pub fn load(data_dir: &Path) -> Result<Durable, StateError> {
    let path = state_path(data_dir);
    let buf = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Durable::new()),
        Err(source) => return Err(StateError::Io { path, source }),
    };
    match decode(&buf) {
        None => Err(StateError::Corrupt(path)),
        Some(Err(source)) => Err(StateError::Map { path, source }),
        Some(Ok(d)) => Ok(d),
    }
}

/// The committed map persisted last, if any (start-up: the view to serve at once).
pub fn load_committed(data_dir: &Path) -> Option<ClusterMap> {
    load(data_dir)
        .ok()
        .map(|d| (*d.committed.map).clone())
        .filter(|m| m.epoch > 0)
}

/// Makes `d` the durable state: temporary file, fsync, rename, directory fsync.
pub fn save(data_dir: &Path, d: &Durable) -> Result<(), StateError> {
    let dir = state_dir(data_dir);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StateError::Io { path, source }
    };
    fs::create_dir_all(&dir).map_err(io(&dir))?;
    let path = state_path(data_dir);
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(&encode(d)).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    drop(f);
    fs::rename(&tmp, &path).map_err(io(&path))?;
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io(&dir))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_damage_is_detected() {
        let dir = std::env::temp_dir().join(format!("pinion-member-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        assert_eq!(load(&dir).unwrap(), Durable::new());
        let mut m = ClusterMap::empty();
        m.epoch = 3;
        let d = Durable {
            committed: SignedMap::new(m.clone()),
            prepared: Some(SignedMap::new({
                let mut p = m.clone();
                p.epoch = 4;
                p
            })),
        };
        save(&dir, &d).unwrap();
        assert_eq!(load(&dir).unwrap(), d);
        assert_eq!(load_committed(&dir).map(|m| m.epoch), Some(3));
        let mut b = fs::read(state_path(&dir)).unwrap();
        let n = b.len();
        b[n / 2] ^= 1;
        fs::write(state_path(&dir), &b).unwrap();
        assert!(matches!(load(&dir), Err(StateError::Corrupt(_))));
        let _ = fs::remove_dir_all(&dir);
    }
}
