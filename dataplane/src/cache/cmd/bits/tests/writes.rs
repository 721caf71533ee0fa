//! What the bit commands' writes do to the store: edits in place, WATCH, the change count.

use super::*;

#[test]
fn edit_str_grows_in_place_and_skips_what_it_must_not_edit() {
    let mut s = store();
    run(&mut s, 0, "SET k ab PX 100");
    run(&mut s, 0, "HSET h f v");
    let slot = |k: &[u8]| key_slot(k);
    let r = s.edit_str(slot(b"k"), b"k", 4, 0, |v| {
        v[3] = b'!';
        (v.to_vec(), true)
    });
    assert_eq!(r.as_deref(), Some(&b"ab\0!"[..]));
    s.check();
    assert_eq!(s.edit_str(slot(b"h"), b"h", 1, 0, |_| ((), true)), None);
    assert_eq!(
        s.edit_str(slot(b"none"), b"none", 1, 0, |_| ((), true)),
        None
    );
    // An expired key is removed, not edited.
    assert_eq!(s.edit_str(slot(b"k"), b"k", 1, 100, |_| ((), true)), None);
    assert_eq!(run(&mut s, 100, "EXISTS k"), int(0));
    s.check();
}

#[test]
fn writes_break_watches_only_when_they_change_something() {
    use crate::txn::ConnId;
    let mut s = store();
    let conn = ConnId {
        shard: 0,
        slot: 1,
        gen: 1,
    };
    run(&mut s, 0, "SETBIT k 7 1");
    run(&mut s, 0, "BITFIELD f set u8 0 5");
    let quiet = [
        "SETBIT k 7 1",
        "SETBIT k 0 0",
        "BITFIELD f set u8 0 5",
        "BITFIELD f get u8 0",
        "GETBIT k 0",
        "BITCOUNT k",
    ];
    for line in quiet {
        s.watch(conn, b"k", 0);
        s.watch(conn, b"f", 0);
        run(&mut s, 0, line);
        assert!(!s.watch_changed(conn, 0), "{line}");
    }
    for line in [
        "SETBIT k 7 0",
        "SETBIT k 8 0",
        "BITFIELD f incrby u8 0 1",
        "BITFIELD f set u8 8 0",
    ] {
        s.watch(conn, b"k", 0);
        s.watch(conn, b"f", 0);
        run(&mut s, 0, line);
        assert!(s.watch_changed(conn, 0), "{line}");
    }
    s.check();
}

#[test]
fn a_write_that_creates_its_key_counts_once() {
    let mut s = store();
    let c0 = s.changes;
    run(&mut s, 0, "SETBIT a 0 0");
    run(&mut s, 0, "BITFIELD b SET i5 0 0");
    assert_eq!(s.changes, c0 + 2);
    run(&mut s, 0, "SETBIT a 0 0");
    run(&mut s, 0, "BITFIELD b SET i5 0 0");
    assert_eq!(s.changes, c0 + 2, "no change, no write");
    run(&mut s, 0, "SETBIT a 0 1");
    assert_eq!(s.changes, c0 + 3);
}
