//! A RESP connection's state: protocol version, authentication, name, the commands queued
//! by MULTI, and the keys it WATCHes (and on which shard each lives).

/// Commands queued between MULTI and EXEC.
#[derive(Default)]
pub struct Queued {
    /// Each command's frame, as the client sent it (multibulk; inline ones rewritten).
    pub frames: Vec<Box<[u8]>>,
    pub bytes: usize,
    /// A command was refused while queueing: EXEC answers EXECABORT.
    pub failed: bool,
}

pub struct Session {
    pub resp3: bool,
    pub authed: bool,
    pub name: Option<Vec<u8>>,
    pub multi: Option<Queued>,
    /// Watched keys and the shards that own them.
    pub watching: Vec<(Box<[u8]>, usize)>,
    /// Shards where a blocking command of this connection may be parked (told when it
    /// closes).
    pub blocked_on: Vec<usize>,
    /// The user this connection is authenticated as (None: not yet looked up, the default
    /// user when `authed`), and the users table generation it was looked up in (`auth/`).
    pub user: Option<std::sync::Arc<crate::auth::acl::User>>,
    pub user_gen: u64,
    /// Accepted on the shard's own port (`--shard-ports`): keys of other shards get MOVED.
    pub shard_port: bool,
    /// The client's address, where failed AUTHs are counted (`auth/guard.rs`).
    pub peer: Option<std::net::IpAddr>,

    /// ASKING was the last command (cluster mode): the next one may run for a slot this
    /// node imports (issue 12, moving data).
    pub asking: bool,
}

impl Session {
    pub fn new(authed: bool) -> Session {
        Session {
            resp3: false,
            authed,
            name: None,
            multi: None,
            watching: Vec::new(),
            blocked_on: Vec::new(),
            user: None,
            user_gen: 0,
            shard_port: false,
            peer: None,

            asking: false,
        }
    }

    /// A command failed before it could be queued: the transaction will abort.
    pub fn flag_multi(&mut self) {
        if let Some(q) = self.multi.as_mut() {
            q.failed = true;
        }
    }

    /// The name of the user this connection runs as.
    pub fn username(&self) -> &str {
        self.user.as_ref().map_or("default", |u| u.name.as_str())
    }

    /// Shards with watches of this connection, each once.
    pub fn watch_shards(&self) -> Vec<usize> {
        let mut s: Vec<usize> = self.watching.iter().map(|(_, s)| *s).collect();
        s.sort_unstable();
        s.dedup();
        s
    }
}
