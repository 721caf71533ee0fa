//! A partition folder's move state on disk: its `moved` file (written durably by the
//! thread that asks for the state, read at start-up and by the control plane's moves), the
//! crash-safe wipe of a retired copy before an import, the start-up sweep of what a wipe a
//! crash cut short left, and the pull's test crash points. The pull (`mod.rs`) and its
//! shard side (`shard.rs`) keep their state through here.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::Move;

/// The file in a partition's folder that keeps its move state across restarts.
pub const MARKER_FILE: &str = "moved";

/// The move state kept in `dir`, if any.
pub fn marker(dir: &Path) -> Option<Move> {
    fs::read_to_string(dir.join(MARKER_FILE))
        .ok()
        .and_then(|s| Move::parse(&s))
}

/// The map epoch a `copied` file names: the epoch the move that finished the copy started
/// from (None once the copy is known never to have been given here).
pub fn marker_epoch(dir: &Path) -> Option<u64> {
    let s = fs::read_to_string(dir.join(MARKER_FILE)).ok()?;
    let mut words = s.split_whitespace();
    (Move::parse(words.next()?)? == Move::Copied)
        .then(|| words.next()?.parse().ok())
        .flatten()
}

/// Keep `state` in `dir` durably (temporary file, fsync, rename, folder fsync).
pub(super) fn write_marker(dir: &Path, state: Move) -> io::Result<()> {
    write_marker_text(dir, state.as_str())
}

/// Keep `copied` in `dir` durably, with the epoch its move started from, if any.
pub(super) fn write_copied(dir: &Path, epoch: Option<u64>) -> io::Result<()> {
    match epoch {
        Some(e) => write_marker_text(dir, &format!("{} {e}", Move::Copied.as_str())),
        None => write_marker(dir, Move::Copied),
    }
}

fn write_marker_text(dir: &Path, text: &str) -> io::Result<()> {
    let tmp = dir.join(format!("{MARKER_FILE}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, dir.join(MARKER_FILE))?;
    File::open(dir)?.sync_all()
}

/// Fault injection for the tests: with `PINION_PULL_CRASH_AT=STEP` in its environment,
/// the node aborts (SIGABRT: no clean-up, like `kill -9`) the first time a pull reaches
/// that step: `wipe-renamed` (a wipe moved a retired copy out of its partition folder; the
/// empty import folder does not exist yet) or `copied` (a pull wrote its first fetched
/// batches, mid-copy).
pub const CRASH_ENV: &str = "PINION_PULL_CRASH_AT";

pub(super) fn crash_point(step: &str) {
    if std::env::var(CRASH_ENV).is_ok_and(|v| v == step) {
        tracing::error!("{CRASH_ENV}={step}: test crash point reached");
        std::process::abort();
    }
}

/// Where a retired copy goes while it is deleted: beside the partition folder, under a
/// name no partition has (`.<partition>.wiping`), so nothing reads it.
pub fn trash_dir(dir: &Path) -> PathBuf {
    let name = dir
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().to_string());
    dir.with_file_name(format!(".{name}.wiping"))
}

/// Empty a retired partition's folder for an import, crash-safely: the folder is renamed
/// away whole (one atomic rename, the topic folder fsynced), then made again holding only
/// `moved` = `importing`, and only then is the old copy deleted. A crash at any point
/// leaves the retired copy (not served), no folder (start-up makes an empty partition), an
/// empty folder (the same), or an empty import; never part of the old copy.
pub fn wipe_retired(dir: &Path) -> io::Result<()> {
    let parent = dir
        .parent()
        .ok_or_else(|| io::Error::other("a partition folder has a topic folder"))?;
    let trash = trash_dir(dir);
    if trash.exists() {
        // Left by a wipe a crash cut short.
        fs::remove_dir_all(&trash)?;
    }
    fs::rename(dir, &trash)?;
    File::open(parent)?.sync_all()?;
    crash_point("wipe-renamed");
    fs::create_dir(dir)?;
    write_marker(dir, Move::Importing)?;
    File::open(parent)?.sync_all()?;
    if let Err(e) = fs::remove_dir_all(&trash) {
        tracing::warn!(dir = %trash.display(), error = %e, "deleting a wiped retired copy failed; start-up deletes it");
    }
    Ok(())
}

/// Delete what wipes a crash cut short left (`trash_dir`) under `data_dir`.
pub(super) fn sweep_trash(data_dir: &Path) {
    let Ok(topics) = fs::read_dir(data_dir.join("log")) else {
        return;
    };
    for t in topics.flatten() {
        let Ok(parts) = fs::read_dir(t.path()) else {
            continue;
        };
        for p in parts.flatten() {
            let name = p.file_name().to_string_lossy().to_string();
            if name.starts_with('.') && name.ends_with(".wiping") {
                match fs::remove_dir_all(p.path()) {
                    Ok(()) => {
                        tracing::info!(dir = %p.path().display(), "deleted a retired copy a wipe left")
                    }
                    Err(e) => {
                        tracing::warn!(dir = %p.path().display(), error = %e, "deleting a retired copy a wipe left failed")
                    }
                }
            }
        }
    }
}

pub(super) fn remove_marker(dir: &Path) -> io::Result<()> {
    match fs::remove_file(dir.join(MARKER_FILE)) {
        Ok(()) => File::open(dir)?.sync_all(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wipe_leaves_only_an_import_marker_and_deletes_the_retired_copy() {
        let root = std::env::temp_dir().join(format!("pinion-wipe-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let dir = root.join("log").join("t").join("3");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("00000000000000000000.log"), b"old records").unwrap();
        fs::write(dir.join("log-start-offset"), b"5").unwrap();
        write_marker(&dir, Move::Retired).unwrap();
        // A trash folder an earlier wipe left goes too.
        fs::create_dir_all(trash_dir(&dir).join("x")).unwrap();
        assert_eq!(
            trash_dir(&dir),
            root.join("log").join("t").join(".3.wiping")
        );
        wipe_retired(&dir).unwrap();
        let mut names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        names.sort();
        assert_eq!(names, vec![MARKER_FILE.to_string()]);
        assert_eq!(marker(&dir), Some(Move::Importing));
        assert!(!trash_dir(&dir).exists());
        // What a crash after the rename leaves is swept at start-up.
        fs::create_dir_all(trash_dir(&dir)).unwrap();
        fs::write(trash_dir(&dir).join("00000000000000000000.log"), b"x").unwrap();
        sweep_trash(&root);
        assert!(!trash_dir(&dir).exists());
        assert_eq!(marker(&dir), Some(Move::Importing));
        fs::remove_dir_all(&root).unwrap();
    }
}
