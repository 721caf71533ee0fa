//! Users, ACLs and credentials, shared by the RESP and Kafka front ends of every shard.
//!
//! The node has one [`Users`]: an immutable table of users behind a lock that is only taken
//! to swap it. A change (ACL SETUSER, DELUSER, LOAD) builds a new table and bumps a
//! generation number; a connection keeps the `Arc<User>` it authenticated as and looks its
//! user up again only when the generation has moved (one atomic load per command), so a
//! change made on one connection applies to all others from their next command. A user
//! deleted (or gone after ACL LOAD) closes the connections authenticated as it, as Redis
//! does.
//!
//! The users file (`--users`) holds one line per user in ACL LIST's form, with salted SCRAM
//! credentials (`scram$...`, `scram.rs`) instead of passwords. ACL SAVE writes it whole to a
//! temporary file, fsyncs it, renames it over the old one and fsyncs the folder. These are
//! blocking file calls on the shard that runs the command, a rare administrative act (as
//! in Redis, where ACL SAVE and LOAD are synchronous too).
//!
//! `--requirepass` is the default user's password (applied over the file's default user).

pub mod acl;
pub mod categories;
pub mod guard;
pub mod sasl;
pub mod scram;

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use acl::User;

use crate::limits::{ACL_LOG_MAX, ACL_USERS_MAX, USERS_FILE_BYTES_MAX};

pub type Table = BTreeMap<String, Arc<User>>;

#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("reading users file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("users file {path} is larger than {max} bytes")]
    TooLarge { path: PathBuf, max: usize },
    #[error("{path}:{line}: {msg}")]
    Parse {
        path: PathBuf,
        line: usize,
        msg: String,
    },
    #[error("writing users file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no randomness for a salt")]
    Random,
}

/// Why an ACL LOG entry was made (Redis's reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Command,
    Key,
    Auth,
}

impl Reason {
    pub fn name(self) -> &'static str {
        match self {
            Reason::Command => "command",
            Reason::Key => "key",
            Reason::Auth => "auth",
        }
    }
}

#[derive(Debug, Clone)]
pub struct LogEntry {
    pub count: u64,
    pub reason: Reason,
    /// `toplevel`, `multi`, `lua`, or pinion's `kafka`.
    pub context: &'static str,
    pub object: String,
    pub username: String,
    pub created: Instant,
    pub client_info: String,
}

/// Who runs a script, carried with a script command (EVAL, EVALSHA, FCALL and their _RO
/// forms) to the shard that runs it, so that `redis.call` checks that user's commands and
/// key patterns as Redis's `scriptVerifyACL` does. Only a restricted user's script carries
/// one: no caller means an unrestricted user, whose calls are not checked.
#[derive(Clone)]
pub struct Caller {
    pub user: Arc<User>,
    /// Where a denied call is logged (ACL LOG, context `lua`).
    pub users: Arc<Users>,
    /// The calling connection, as ACL LOG shows it (`id=.. name=.. user=..`).
    pub client_info: String,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Caller({})", self.user.name)
    }
}

/// A script command's caller, boxed to keep the messages that carry it small.
pub type ScriptCaller = Option<Box<Caller>>;

/// Entries this close together with the same reason, context, object and user are one
/// entry with a count (Redis groups them within 60 s too).
const LOG_GROUP_S: u64 = 60;

pub struct Users {
    gen: AtomicU64,
    table: RwLock<Arc<Table>>,
    /// Serialises writers (read, change, swap).
    write: Mutex<()>,
    pub file: Option<PathBuf>,
    requirepass: Option<String>,
    log: Mutex<VecDeque<LogEntry>>,
    /// Kafka clients must authenticate with SASL.
    pub kafka_sasl: bool,
    /// Failed authentications per client address (`guard.rs`).
    pub guard: guard::Guard,
}

impl Users {
    /// The node's users: the file's (when given), a default user if it has none, and
    /// `requirepass` as the default user's password.
    pub fn start(
        file: Option<PathBuf>,
        requirepass: Option<String>,
        kafka_sasl: bool,
    ) -> Result<Users, UsersError> {
        let table = match &file {
            Some(p) if p.exists() => parse_file(p)?,
            _ => Table::new(),
        };
        let table = with_defaults(table, requirepass.as_deref())?;
        Ok(Users {
            gen: AtomicU64::new(1),
            table: RwLock::new(Arc::new(table)),
            write: Mutex::new(()),
            file,
            requirepass,
            log: Mutex::new(VecDeque::new()),
            kafka_sasl,
            guard: guard::Guard::new(guard::AuthLimits::default(), 1),
        })
    }

    /// The node's failed-authentication limits, refusals counted for `shards` shards.
    pub fn with_auth_limits(mut self, limits: guard::AuthLimits, shards: usize) -> Users {
        self.guard = guard::Guard::new(limits, shards);
        self
    }

    /// Users for tests and tools: the default user only.
    pub fn open() -> Users {
        Users::start(None, None, false).expect("no file to read")
    }

    pub fn generation(&self) -> u64 {
        self.gen.load(Ordering::Acquire)
    }

    pub fn table(&self) -> Arc<Table> {
        self.table.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn get(&self, name: &str) -> Option<Arc<User>> {
        self.table().get(name).cloned()
    }

    /// Do new RESP connections start authenticated as the default user?
    pub fn default_open(&self) -> bool {
        self.get("default").is_some_and(|u| u.enabled && u.nopass)
    }

    /// Change the table: `f` edits a copy, which replaces the table if `f` succeeds.
    pub fn update<T, E>(&self, f: impl FnOnce(&mut Table) -> Result<T, E>) -> Result<T, E> {
        let _w = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let mut copy: Table = (*self.table()).clone();
        let r = f(&mut copy)?;
        *self.table.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(copy);
        self.gen.fetch_add(1, Ordering::AcqRel);
        Ok(r)
    }

    /// The user `name` if `password` is its password (and it is on).
    pub fn authenticate(&self, name: &str, password: &[u8]) -> Option<Arc<User>> {
        let u = self.get(name)?;
        u.authenticates(password).then_some(u)
    }

    /// ACL LOAD: replace every user with the file's.
    pub fn load(&self) -> Result<(), UsersError> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let fresh = with_defaults(parse_file(path)?, self.requirepass.as_deref())?;
        self.update(|t| {
            *t = fresh;
            Ok::<(), UsersError>(())
        })
    }

    /// ACL SAVE: write every user to the file, atomically.
    pub fn save(&self) -> Result<(), UsersError> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        write_file(path, &self.table())
    }

    pub fn log(&self, mut e: LogEntry) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = log.iter_mut().find(|o| {
            o.reason == e.reason
                && o.context == e.context
                && o.object == e.object
                && o.username == e.username
                && e.created.saturating_duration_since(o.created).as_secs() < LOG_GROUP_S
        }) {
            old.count += 1;
            old.created = e.created;
            old.client_info = std::mem::take(&mut e.client_info);
            return;
        }
        log.push_front(e);
        log.truncate(ACL_LOG_MAX);
    }

    /// The newest `n` entries, newest first.
    pub fn log_entries(&self, n: usize) -> Vec<LogEntry> {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.iter().take(n).cloned().collect()
    }

    pub fn log_reset(&self) {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// Add the default user when the file has none, and apply `requirepass` to it.
fn with_defaults(mut t: Table, requirepass: Option<&str>) -> Result<Table, UsersError> {
    if !t.contains_key("default") {
        t.insert("default".into(), Arc::new(User::default_user()));
    }
    if let Some(p) = requirepass {
        let mut d = (*t["default"]).clone();
        d.apply(b"resetpass").map_err(|_| UsersError::Random)?;
        let rule = [b">".as_slice(), p.as_bytes()].concat();
        d.apply(&rule).map_err(|_| UsersError::Random)?;
        t.insert("default".into(), Arc::new(d));
    }
    Ok(t)
}

/// Parse a users file: `user NAME RULE ...` per line; `#` comments and blank lines skipped.
pub fn parse_file(path: &Path) -> Result<Table, UsersError> {
    let meta = std::fs::metadata(path).map_err(|e| UsersError::Read {
        path: path.into(),
        source: e,
    })?;
    if meta.len() > USERS_FILE_BYTES_MAX as u64 {
        return Err(UsersError::TooLarge {
            path: path.into(),
            max: USERS_FILE_BYTES_MAX,
        });
    }
    let text = std::fs::read_to_string(path).map_err(|e| UsersError::Read {
        path: path.into(),
        source: e,
    })?;
    parse_text(&text).map_err(|(line, msg)| UsersError::Parse {
        path: path.into(),
        line,
        msg,
    })
}

pub fn parse_text(text: &str) -> Result<Table, (usize, String)> {
    let mut t = Table::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut w = line.split_whitespace();
        if w.next() != Some("user") {
            return Err((n, "a line must start with 'user'".into()));
        }
        let Some(name) = w.next().filter(|s| acl::valid_name(s.as_bytes())) else {
            return Err((n, "a user name is missing".into()));
        };
        if t.contains_key(name) {
            return Err((
                n,
                "Duplicate user found. A user can only be defined once in config files".into(),
            ));
        }
        if t.len() >= ACL_USERS_MAX {
            return Err((n, format!("more than {ACL_USERS_MAX} users")));
        }
        let mut u = User::new(name);
        for r in w {
            u.apply(r.as_bytes())
                .map_err(|e| (n, format!("Error in user declaration '{r}': {e}")))?;
        }
        t.insert(name.to_string(), Arc::new(u));
    }
    Ok(t)
}

pub fn render(t: &Table) -> String {
    let mut s = String::from("# pinion users file: ACL rules with salted SCRAM credentials.\n");
    for u in t.values() {
        s.push_str(&u.describe());
        s.push('\n');
    }
    s
}

/// Write `t` to `path`: a temporary file in the same folder, fsync, rename, fsync the folder.
pub fn write_file(path: &Path, t: &Table) -> Result<(), UsersError> {
    let err = |e| UsersError::Write {
        path: path.into(),
        source: e,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(err)?;
        // Credentials are salted, but still only the node's business.
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(err)?;
        f.write_all(render(t).as_bytes()).map_err(err)?;
        f.sync_all().map_err(err)?;
    }
    std::fs::rename(&tmp, path).map_err(err)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(err)?;
    Ok(())
}

/// `pinion users add NAME [RULE ...] --password-stdin --file F`: add (or replace the
/// password of) a user in a users file, with a salted credential. Returns what to print.
pub fn users_tool(args: &[String], stdin: &mut dyn std::io::Read) -> Result<String, String> {
    let usage = "usage: pinion users add NAME [RULE ...] --password-stdin --file FILE\n       pinion users list --file FILE";
    let mut file = None;
    let mut from_stdin = false;
    let mut rest = Vec::new();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--file" => {
                file = args.get(i + 1).cloned();
                i += 2;
                continue;
            }
            "--password-stdin" => from_stdin = true,
            other => rest.push(other.to_string()),
        }
        i += 1;
    }
    let file = PathBuf::from(file.ok_or(usage)?);
    let mut table = if file.exists() {
        parse_file(&file).map_err(|e| e.to_string())?
    } else {
        Table::new()
    };
    match rest.first().map(String::as_str) {
        Some("list") => Ok(render(&table)),
        Some("add") => {
            let name = rest.get(1).ok_or(usage)?;
            if !acl::valid_name(name.as_bytes()) {
                return Err(format!("invalid user name '{name}'"));
            }
            if !from_stdin {
                return Err(format!(
                    "{usage}\n(the password is read from stdin, never from the command line)"
                ));
            }
            let mut pw = String::new();
            stdin
                .read_to_string(&mut pw)
                .map_err(|e| format!("reading the password: {e}"))?;
            let pw = pw.trim_end_matches(['\n', '\r']);
            if pw.is_empty() {
                return Err("empty password".into());
            }
            let mut u = match table.get(name.as_str()) {
                Some(u) => (**u).clone(),
                None => {
                    let mut u = User::new(name);
                    u.apply(b"on").map_err(|e| e.to_string())?;
                    u
                }
            };
            u.apply(b"resetpass").map_err(|e| e.to_string())?;
            u.apply(&[b">".as_slice(), pw.as_bytes()].concat())
                .map_err(|e| e.to_string())?;
            for r in &rest[2..] {
                u.apply(r.as_bytes())
                    .map_err(|e| format!("rule '{r}': {e}"))?;
            }
            table.insert(name.clone(), Arc::new(u));
            write_file(&file, &table).map_err(|e| e.to_string())?;
            Ok(format!("user {name} written to {}\n", file.display()))
        }
        _ => Err(usage.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_round_trips_and_requirepass_sets_default() {
        let dir = std::env::temp_dir().join(format!("pinion-users-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("users.acl");
        let mut input = "s3cret\n".as_bytes();
        let args: Vec<String> = [
            "add",
            "alice",
            "+@read",
            "~a:*",
            "topic:read:t*",
            "--password-stdin",
            "--file",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([path.display().to_string()])
        .collect();
        users_tool(&args, &mut input).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("s3cret"));
        let users = Users::start(Some(path.clone()), Some("pw".into()), true).unwrap();
        assert!(users.authenticate("alice", b"s3cret").is_some());
        assert!(users.authenticate("alice", b"nope").is_none());
        assert!(users.authenticate("default", b"pw").is_some());
        assert!(!users.default_open());
        let g = users.generation();
        users
            .update(|t| {
                t.remove("alice");
                Ok::<(), ()>(())
            })
            .unwrap();
        assert!(users.generation() > g);
        assert!(users.get("alice").is_none());
        users.load().unwrap();
        assert!(users.get("alice").is_some());
        users.save().unwrap();
        assert_eq!(parse_file(&path).unwrap().len(), 2);
        assert!(parse_text("user a on\nuser a off").is_err());
        assert!(parse_text("usr a").is_err());
        assert!(parse_text("user a +nosuch").is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
