//! The keyspace: EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT, TTL, PTTL, PERSIST, TYPE; and a
//! shard's part of DEL, UNLINK, EXISTS and TOUCH.

use crate::cache::entry::kind_name;
use crate::cache::op::Res;
use crate::cache::slot::key_slot;
use crate::cache::store::Store;
use crate::proto::resp::command::{Cmd, Spec};
use crate::proto::resp::errors::{
    invalid_expire, unsupported_option, wrong_args, GT_LT, NOT_INT, NX_XX_GT_LT,
};
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;

pub fn exec(store: &mut Store, spec: &Spec, a: &Args, slot: u16, now: u64, out: &mut Out) {
    let key = a.get(1);
    match spec.cmd {
        Cmd::Expire | Cmd::Pexpire | Cmd::Expireat | Cmd::Pexpireat => {
            expire(store, spec, a, slot, now, out)
        }
        Cmd::Ttl | Cmd::Pttl => match store.peek(slot, key, now) {
            None => out.int(-2),
            Some(e) => match e.expire_ms() {
                None => out.int(-1),
                Some(at) => {
                    let ms = at.saturating_sub(now) as i64;
                    out.int(if spec.cmd == Cmd::Ttl {
                        (ms + 500) / 1000
                    } else {
                        ms
                    });
                }
            },
        },
        Cmd::Persist => match store.peek(slot, key, now) {
            Some(e) if e.expire_ms().is_some() => {
                let e = e.with_expire(None);
                store.replace(slot, e);
                out.int(1);
            }
            _ => out.int(0),
        },
        Cmd::Type => match store.peek(slot, key, now) {
            None => out.simple("none"),
            Some(e) => out.simple(kind_name(e.kind())),
        },
        _ => out.error(&wrong_args(spec.name)),
    }
}

fn expire(store: &mut Store, spec: &Spec, a: &Args, slot: u16, now: u64, out: &mut Out) {
    let key = a.get(1);
    let Some(v) = a.int(2) else {
        return out.error(NOT_INT);
    };
    let (unit, abs) = match spec.cmd {
        Cmd::Expire => (1000, false),
        Cmd::Pexpire => (1, false),
        Cmd::Expireat => (1000, true),
        _ => (1, true),
    };
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for i in 3..a.len() {
        if a.eq(i, "NX") {
            nx = true;
        } else if a.eq(i, "XX") {
            xx = true;
        } else if a.eq(i, "GT") {
            gt = true;
        } else if a.eq(i, "LT") {
            lt = true;
        } else {
            return out.error(&unsupported_option(a.get(i)));
        }
    }
    if nx && (xx || gt || lt) {
        return out.error(NX_XX_GT_LT);
    }
    if gt && lt {
        return out.error(GT_LT);
    }
    // A deadline before the epoch is "already expired".
    let at = match v.checked_mul(unit).and_then(|ms| {
        if abs {
            Some(ms)
        } else {
            ms.checked_add(now as i64)
        }
    }) {
        Some(at) => at,
        None => return out.error(&invalid_expire(spec.name)),
    };
    let Some(e) = store.peek(slot, key, now) else {
        return out.int(0);
    };
    let cur = e.expire_ms();
    let allowed = match cur {
        None => !xx && !gt,
        Some(c) => !nx && (!gt || at > c as i64) && (!lt || at < c as i64),
    };
    if !allowed {
        return out.int(0);
    }
    if at <= now as i64 {
        store.remove(slot, key);
        return out.int(1);
    }
    let e = e.with_expire(Some(at as u64));
    store.replace(slot, e);
    out.int(1);
}

/// DEL's and UNLINK's part: how many of `keys` existed (and are now gone).
pub fn del(store: &mut Store, keys: &[Box<[u8]>], now: u64) -> Res {
    Res::Count(
        keys.iter()
            .filter(|k| store.remove_live(key_slot(k), k, now))
            .count() as i64,
    )
}

/// EXISTS' part (a key named twice counts twice, as in Redis).
pub fn count_existing(store: &mut Store, keys: &[Box<[u8]>], now: u64) -> Res {
    Res::Count(
        keys.iter()
            .filter(|k| store.peek(key_slot(k), k, now).is_some())
            .count() as i64,
    )
}

/// TOUCH's part: refresh the access stamp of the keys that exist; how many did.
pub fn touch(store: &mut Store, keys: &[Box<[u8]>], now: u64) -> Res {
    Res::Count(
        keys.iter()
            .filter(|k| {
                !matches!(
                    store.read(key_slot(k), k, now),
                    crate::cache::store::Found::Missing
                )
            })
            .count() as i64,
    )
}

impl Store {
    /// Delete a key unless it already expired (an expired key counts as absent for DEL).
    pub fn remove_live(&mut self, slot: u16, key: &[u8], now: u64) -> bool {
        self.peek(slot, key, now).is_some() && self.remove(slot, key)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, store};
    use crate::txn::ConnId;

    #[test]
    fn ttls() {
        let mut s = store();
        assert_eq!(run(&mut s, 1000, "SET k v PX 1500"), "+OK\r\n");
        assert_eq!(run(&mut s, 1000, "PTTL k"), ":1500\r\n");
        assert_eq!(run(&mut s, 1000, "TTL k"), ":2\r\n");
        assert_eq!(run(&mut s, 1000, "SET k v2 KEEPTTL"), "+OK\r\n");
        assert_eq!(run(&mut s, 1000, "PTTL k"), ":1500\r\n");
        assert_eq!(run(&mut s, 2499, "GET k"), "$2\r\nv2\r\n");
        assert_eq!(run(&mut s, 2500, "GET k"), "$-1\r\n");
        assert_eq!(run(&mut s, 2500, "TTL k"), ":-2\r\n");
        assert_eq!(run(&mut s, 0, "SET p v"), "+OK\r\n");
        assert_eq!(run(&mut s, 0, "TTL p"), ":-1\r\n");
        assert_eq!(run(&mut s, 0, "EXPIRE p 10 XX"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "EXPIRE p 10"), ":1\r\n");
        assert_eq!(run(&mut s, 0, "EXPIRE p 5 GT"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "EXPIRE p 5 LT"), ":1\r\n");
        assert_eq!(run(&mut s, 0, "PERSIST p"), ":1\r\n");
        assert_eq!(run(&mut s, 0, "PERSIST p"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "PEXPIREAT p 1"), ":1\r\n");
        assert_eq!(run(&mut s, 2, "EXISTS p"), ":0\r\n");
        assert_eq!(run(&mut s, 0, "SETEX e 10 v"), "+OK\r\n");
        assert_eq!(run(&mut s, 0, "PTTL e"), ":10000\r\n");
        assert_eq!(run(&mut s, 0, "GETEX e PERSIST"), "$1\r\nv\r\n");
        assert_eq!(run(&mut s, 0, "TTL e"), ":-1\r\n");
        assert_eq!(run(&mut s, 0, "GETEX e PX 50"), "$1\r\nv\r\n");
        assert_eq!(run(&mut s, 0, "PTTL e"), ":50\r\n");
        assert_eq!(
            run(&mut s, 0, "EXPIRE e 1 NX XX"),
            "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"
        );
        s.check();
    }

    fn conn(n: u32) -> ConnId {
        ConnId {
            shard: 0,
            slot: n,
            gen: 0,
        }
    }

    /// Redis 7's WATCH rules (tests/unit/multi.tcl): writes, deletes, FLUSHALL of a key
    /// that exists and expiry of a key that was live all count; stale keys do not.
    #[test]
    fn watch_follows_redis_rules() {
        let mut s = store();
        run(&mut s, 0, "SET x 1");
        s.watch(conn(1), b"x", 0);
        assert!(!s.watch_changed(conn(1), 0), "nothing happened");
        s.watch(conn(1), b"x", 0);
        run(&mut s, 0, "SET x 2");
        assert!(s.watch_changed(conn(1), 0), "a write");
        assert_eq!(s.watchers(), 0, "EXEC forgets the watches");
        s.watch(conn(1), b"x", 0);
        run(&mut s, 0, "EXPIRE x 10");
        assert!(s.watch_changed(conn(1), 0), "EXPIRE touches");
        // A key that was live when watched and expired since.
        run(&mut s, 0, "SET t v PX 100");
        s.watch(conn(2), b"t", 50);
        assert!(s.watch_changed(conn(2), 150), "expired after WATCH");
        // A key already stale when watched, removed by lazy expiry: no change.
        run(&mut s, 0, "SET st v PX 10");
        s.watch(conn(3), b"st", 20);
        assert_eq!(run(&mut s, 30, "EXISTS st"), ":0\r\n");
        assert!(!s.watch_changed(conn(3), 30), "stale key deleted");
        // FLUSHALL touches keys that exist, not missing ones.
        s.watch(conn(4), b"x", 0);
        s.watch(conn(5), b"missing", 0);
        s.flush(0);
        assert!(s.watch_changed(conn(4), 0));
        assert!(!s.watch_changed(conn(5), 0));
        // UNWATCH forgets.
        s.watch(conn(6), b"y", 0);
        s.unwatch(conn(6));
        run(&mut s, 0, "SET y 1");
        assert!(!s.watch_changed(conn(6), 0));
        assert_eq!(s.watchers(), 0);
    }
}
