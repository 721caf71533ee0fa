use super::*;
use crate::cache::slot::key_slot;

fn store() -> Store {
    Store::new(0, super::super::slot::SLOTS, 42)
}

#[test]
fn put_read_remove_keep_the_books() {
    let mut s = store();
    for i in 0..1000 {
        let k = format!("key:{i}");
        let ttl = if i % 3 == 0 { Some(10_000) } else { None };
        s.put(
            key_slot(k.as_bytes()),
            Entry::string(k.as_bytes(), b"v", ttl, 0),
            0,
        );
    }
    s.check();
    assert_eq!(s.keys, 1000);
    assert_eq!(s.ttl_keys, 334);
    // Overwrite keeps counts right.
    s.put(
        key_slot(b"key:0"),
        Entry::string(b"key:0", b"longer value", None, 0),
        0,
    );
    s.check();
    assert_eq!(s.ttl_keys, 333);
    assert!(
        matches!(s.read(key_slot(b"key:0"), b"key:0", 0), Found::Str(v) if v == b"longer value")
    );
    assert!(s.remove(key_slot(b"key:1"), b"key:1"));
    assert!(!s.remove(key_slot(b"key:1"), b"key:1"));
    s.check();
    let before = s.used_bytes;
    s.flush(0);
    assert!(before > 0);
    assert_eq!((s.keys, s.used_bytes), (0, 0));
    s.check();
}

#[test]
fn small_collections_live_inline_between_commands() {
    use crate::cache::entry::KIND_SET;
    let mut s = store();
    let (key, slot) = (&b"small"[..], key_slot(b"small"));
    let idx = s.obj_for_write(slot, key, KIND_SET, 0).unwrap();
    s.with_obj(slot, key, idx, |o| {
        let Obj::Set(set) = o else { unreachable!() };
        for m in [&b"1"[..], b"20", b"300"] {
            set.insert(m);
        }
        ((), true)
    });
    s.check();
    let (changes, used) = (s.changes, s.used_bytes);
    s.settle();
    s.check();
    let e = s.get(slot, key).unwrap();
    assert!(e.is_inline(), "a 3-member set lives in its entry");
    assert!(s.objects.is_empty(), "and holds no object slot");
    assert!(s.used_bytes < used, "which costs less");
    // A reader finds the object as before, and nothing counts as a write.
    let idx = s.obj_index_of(slot, key, KIND_SET, 0).unwrap().unwrap();
    assert!(matches!(s.obj_at(idx), Some(Obj::Set(set)) if set.len() == 3));
    s.check();
    s.settle();
    assert_eq!(s.changes, changes);
    assert!(s.get(slot, key).unwrap().is_inline());
    // A read decodes it without touching the entry.
    assert!(matches!(s.read(slot, key, 0), Found::Set(set) if set.len() == 3));
    assert!(s.get(slot, key).unwrap().is_inline() && s.objects.is_empty());
    s.check();
    // A collection too large for its entry keeps its slot.
    let idx = s.obj_index_of(slot, key, KIND_SET, 0).unwrap().unwrap();
    s.with_obj(slot, key, idx, |o| {
        let Obj::Set(set) = o else { unreachable!() };
        for i in 0..COLLECTION_INLINE_BYTES_MAX {
            set.insert(format!("member:{i}").as_bytes());
        }
        ((), true)
    });
    s.settle();
    s.check();
    assert!(s.get(slot, key).unwrap().names_object());
}

#[test]
fn lazy_and_active_expiry() {
    let mut s = store();
    for i in 0..100 {
        let k = format!("t{i}");
        s.put(
            key_slot(k.as_bytes()),
            Entry::string(k.as_bytes(), b"v", Some(100), 0),
            0,
        );
    }
    assert!(matches!(s.read(key_slot(b"t1"), b"t1", 50), Found::Str(_)));
    assert!(matches!(
        s.read(key_slot(b"t1"), b"t1", 100),
        Found::Missing
    ));
    assert_eq!(s.stats.expired, 1);
    let mut total = 0;
    for _ in 0..100 {
        total += s.active_expire(200, 10_000);
    }
    assert_eq!(total, 99);
    assert_eq!(s.keys, 0);
    s.check();
}

#[test]
fn lru_evicts_cold_keys_first() {
    let mut s = store();
    s.policy = Policy::Lru;
    s.samples = 10;
    for i in 0..200 {
        let k = format!("k{i}");
        s.put(
            key_slot(k.as_bytes()),
            Entry::string(k.as_bytes(), &[0; 32], None, 0),
            0,
        );
    }
    // Touch the second half so the first half is the cold one.
    for i in 100..200 {
        let k = format!("k{i}");
        let _ = s.read(key_slot(k.as_bytes()), k.as_bytes(), 0);
    }
    s.maxmemory_bytes = s.fixed_bytes + s.used_bytes / 2;
    assert!(s.make_room(0));
    s.check();
    let hot_left = (100..200).filter(|i| {
        let k = format!("k{i}");
        s.peek(key_slot(k.as_bytes()), k.as_bytes(), 0).is_some()
    });
    assert!(
        hot_left.count() >= 90,
        "hot keys should survive LRU eviction"
    );
    s.policy = Policy::Noeviction;
    s.maxmemory_bytes = 1;
    assert!(!s.make_room(0));
}

#[test]
fn scan_visits_every_key_once() {
    let mut s = Store::new(0, 8192, 1);
    let mut want = std::collections::BTreeSet::new();
    for i in 0..5000 {
        let k = format!("s{i}");
        let slot = key_slot(k.as_bytes());
        if (slot as usize) < 8192 {
            s.put(slot, Entry::string(k.as_bytes(), b"v", None, 0), 0);
            want.insert(k.into_bytes());
        }
    }
    let mut got = Vec::new();
    let mut cursor = 0;
    loop {
        let mut out = Vec::new();
        cursor = s.scan(cursor, 10, None, None, 0, &mut out);
        got.extend(out);
        if cursor == 0 || cursor >= 8192 {
            break;
        }
    }
    assert_eq!(got.len(), want.len());
    assert_eq!(
        got.into_iter().collect::<std::collections::BTreeSet<_>>(),
        want
    );
}
