//! A key's value and expiry as bytes, and back: how a value travels to the shard that runs a
//! command whose keys live on several shards (`redis/gather.rs`), and back to its owner.
//!
//! Form: a flags byte (bit 0: an expiry follows), the expiry as u64 LE unix ms, then the
//! kind byte and the value: a string's bytes, or the collection's byte form
//! (`types::Obj::dump`, which writes its own kind byte).

use super::entry::{Entry, KIND_STR};
use super::slot::key_slot;
use super::store::Store;
use super::types::Obj;

const FLAG_TTL: u8 = 1;

/// `key`'s value and expiry, or None when it does not exist (an expired key does not).
pub fn dump_key(store: &mut Store, key: &[u8], now_ms: u64) -> Option<Vec<u8>> {
    let slot = key_slot(key);
    store.peek(slot, key, now_ms)?;
    let e = store.get(slot, key)?;
    let mut out = Vec::with_capacity(e.value().len() + 10);
    match e.expire_ms() {
        Some(at) => {
            out.push(FLAG_TTL);
            out.extend_from_slice(&at.to_le_bytes());
        }
        None => out.push(0),
    }
    match store.obj(e) {
        Some(obj) => obj.dump(&mut out),
        None => {
            out.push(KIND_STR);
            out.extend_from_slice(e.value());
        }
    }
    Some(out)
}

/// Make `key` hold what [`dump_key`] produced, or delete it for None. False when the bytes
/// are not such a form (then the key is left as it was).
pub fn restore_key(store: &mut Store, key: &[u8], dumped: Option<&[u8]>, now_ms: u64) -> bool {
    let slot = key_slot(key);
    let Some(b) = dumped else {
        store.remove(slot, key);
        return true;
    };
    let Some((&flags, rest)) = b.split_first() else {
        return false;
    };
    let (expire_ms, rest) = if flags & FLAG_TTL != 0 {
        let Some((at, rest)) = rest.split_first_chunk::<8>() else {
            return false;
        };
        (Some(u64::from_le_bytes(*at)), rest)
    } else {
        (None, rest)
    };
    let entry = match rest.split_first() {
        Some((&KIND_STR, value)) => Entry::string(key, value, expire_ms, 0),
        Some(_) => {
            let Some(obj) = Obj::load(rest) else {
                return false;
            };
            let kind = obj.kind();
            let idx = store.new_obj(obj);
            Entry::object(kind, key, idx, expire_ms, 0)
        }
        None => return false,
    };
    store.put(slot, entry, now_ms);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::cmd::testing::{run, store};

    #[test]
    fn values_and_expiry_travel_whole() {
        let mut a = store();
        run(&mut a, 0, "SET s hello PX 5000");
        run(&mut a, 0, "HSET h f1 v1 f2 v2");
        let s = dump_key(&mut a, b"s", 0).unwrap();
        let h = dump_key(&mut a, b"h", 0).unwrap();
        assert_eq!(dump_key(&mut a, b"nope", 0), None);
        let mut b = store();
        assert!(restore_key(&mut b, b"s", Some(&s), 0));
        assert!(restore_key(&mut b, b"h", Some(&h), 0));
        assert_eq!(run(&mut b, 0, "GET s"), "$5\r\nhello\r\n");
        assert_eq!(run(&mut b, 0, "PTTL s"), ":5000\r\n");
        assert_eq!(run(&mut b, 0, "HGET h f2"), "$2\r\nv2\r\n");
        b.check();
        assert!(restore_key(&mut b, b"h", None, 0));
        assert_eq!(run(&mut b, 0, "EXISTS h"), ":0\r\n");
        // Malformed forms are refused and change nothing.
        for bad in [&b""[..], &[1, 0, 0], &[0, 9, 1], &[0, 1, 5, 0, 0, 0]] {
            assert!(!restore_key(&mut b, b"s", Some(bad), 0));
        }
        assert_eq!(run(&mut b, 0, "GET s"), "$5\r\nhello\r\n");
        b.check();
    }
}
