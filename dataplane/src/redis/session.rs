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
        }
    }

    /// A command failed before it could be queued: the transaction will abort.
    pub fn flag_multi(&mut self) {
        if let Some(q) = self.multi.as_mut() {
            q.failed = true;
        }
    }

    /// Shards with watches of this connection, each once.
    pub fn watch_shards(&self) -> Vec<usize> {
        let mut s: Vec<usize> = self.watching.iter().map(|(_, s)| *s).collect();
        s.sort_unstable();
        s.dedup();
        s
    }
}
