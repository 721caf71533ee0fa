use super::*;
use crate::cache::types::Obj;

fn set_of(members: &[&str]) -> Set {
    let mut s = Set::default();
    for m in members {
        s.insert(m.as_bytes());
    }
    s
}

fn sorted(s: &Set) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = s.iter().map(Member::to_vec).collect();
    v.sort();
    v
}

#[test]
fn ints_pack_and_widths() {
    let mut s = Set::default();
    assert!(s.insert(b"5"));
    assert!(!s.insert(b"5"));
    assert!(s.insert(b"-3"));
    assert_eq!(s.encoding(), "intset");
    // Widening keeps every member and the order.
    assert!(s.insert(b"100000"));
    assert!(s.insert(b"-9223372036854775808"));
    assert!(s.contains(b"100000") && s.contains(b"-3") && !s.contains(b"4"));
    assert_eq!(
        s.iter().collect::<Vec<_>>(),
        [
            Member::Int(i64::MIN),
            Member::Int(-3),
            Member::Int(5),
            Member::Int(100000)
        ]
    );
    s.check();
    // Not canonical integers: a table of strings from then on, even when removed.
    assert!(!s.contains(b"05") && !s.contains(b"+5") && !s.contains(b"-0"));
    assert!(s.insert(b"05"));
    assert_eq!(s.encoding(), "hashtable");
    assert!(s.contains(b"5") && s.contains(b"05"));
    assert!(s.remove(b"05"));
    assert_eq!(s.encoding(), "hashtable");
    assert_eq!(s.len(), 4);
    s.check();
}

#[test]
fn conversions_follow_redis_thresholds() {
    let mut s = Set::default();
    for i in 0..SET_INTSET_ENTRIES_MAX {
        assert!(s.insert(i.to_string().as_bytes()));
    }
    assert_eq!(s.encoding(), "intset");
    assert!(!s.insert(b"7"));
    assert_eq!(s.encoding(), "intset");
    assert!(s.insert(b"512"));
    assert_eq!(s.encoding(), "hashtable");
    assert!(matches!(s.0, Repr::Table(_)));
    assert_eq!(s.len(), 513);
    s.check();

    let mut p = set_of(&["a", "b"]);
    assert!(matches!(p.0, Repr::Pack(_)));
    for i in 0..SET_PACK_ENTRIES_MAX - 2 {
        p.insert(format!("m{i}").as_bytes());
    }
    assert!(matches!(p.0, Repr::Pack(_)));
    p.insert(b"one more");
    assert!(matches!(p.0, Repr::Table(_)));
    assert_eq!(p.len(), SET_PACK_ENTRIES_MAX + 1);
    p.check();

    let mut long = set_of(&["a"]);
    long.insert(&[b'x'; SET_PACK_MEMBER_BYTES_MAX + 1]);
    assert!(matches!(long.0, Repr::Table(_)));
    assert!(long.contains(b"a"));
    long.check();
}

#[test]
fn table_grows_shrinks_and_compacts_keeping_its_invariants() {
    let mut s = Set::default();
    let n = 20_000;
    for i in 0..n {
        assert!(s.insert(format!("member:{i}").as_bytes()));
        if i % 997 == 0 {
            s.check();
        }
    }
    s.check();
    assert_eq!(s.len(), n);
    for i in 0..n {
        assert!(s.contains(format!("member:{i}").as_bytes()));
    }
    assert!(!s.contains(b"member:x"));
    for i in (0..n).filter(|i| i % 10 != 0) {
        assert!(s.remove(format!("member:{i}").as_bytes()));
        if i % 1001 == 0 {
            s.check();
        }
    }
    s.check();
    assert_eq!(s.len(), n / 10);
    let Repr::Table(t) = &s.0 else {
        panic!("still a table")
    };
    assert!(t.bits <= 13, "shrank from 15 bits: {} bits", t.bits);
    assert!(t.garbage * 2 <= t.arena.len());
    for i in 0..n {
        assert_eq!(s.contains(format!("member:{i}").as_bytes()), i % 10 == 0);
    }
}

#[test]
fn cost_follows_real_blocks() {
    let empty = Set::default().cost();
    let mut s = Set::default();
    for i in 0..100_000 {
        s.insert(format!("element:{i}").as_bytes());
    }
    let per_member = (s.cost() - empty) / 100_000;
    // ~12-byte slots at 3/8..3/4 load, plus ~14 arena bytes with up to half slack.
    assert!(per_member < 60, "{per_member} bytes per member");
    let small = set_of(&["a", "bb", "ccc"]);
    assert!(small.cost() - empty < 64, "{}", small.cost());
}

#[test]
fn dump_and_load_round_trip() {
    let mut big = Set::default();
    for i in 0..1000 {
        big.insert(format!("m{i}").as_bytes());
    }
    let cases = [
        Set::default(),
        set_of(&["1", "-70000", "9223372036854775807"]),
        set_of(&["a", "", "ccc"]),
        set_of(&["1", "a"]),
        big,
    ];
    for s in cases {
        let mut b = Vec::new();
        Obj::Set(s.clone()).dump(&mut b);
        let Some(Obj::Set(back)) = Obj::load(&b) else {
            panic!("load failed")
        };
        assert_eq!(sorted(&back), sorted(&s));
        assert_eq!(back.encoding(), s.encoding());
        back.check();
        // Every truncation is refused, never a panic.
        for cut in 0..b.len() {
            assert!(Obj::load(&b[..cut]).is_none());
        }
    }
    // A set that travels and comes back unchanged has the same byte form (a gathered
    // cross-shard command writes back only what changed), tables included.
    let mut t = Set::default();
    for i in 0..3000 {
        t.insert(format!("m{i}").as_bytes());
    }
    for i in 0..2500 {
        t.remove(format!("m{i}").as_bytes());
    }
    for s in [t, set_of(&["b", "a", "c"])] {
        let mut once = Vec::new();
        Obj::Set(s).dump(&mut once);
        let mut twice = Vec::new();
        Obj::load(&once).expect("loads").dump(&mut twice);
        assert_eq!(once, twice);
    }
    // A table of integer-looking strings stays a table.
    let mut s = set_of(&["1", "x"]);
    s.remove(b"x");
    let mut b = Vec::new();
    Obj::Set(s).dump(&mut b);
    assert_eq!(Obj::load(&b).map(|o| o.encoding()), Some("hashtable"));
}

#[test]
fn load_refuses_malformed_forms() {
    let kind = crate::cache::entry::KIND_SET;
    let form = |tag: u32, n: u32, body: &[u8]| {
        let mut b = vec![kind];
        b.extend_from_slice(&tag.to_le_bytes());
        b.extend_from_slice(&n.to_le_bytes());
        b.extend_from_slice(body);
        b
    };
    // Unsorted and repeated integers.
    let mut body = Vec::new();
    body.extend_from_slice(&2i64.to_le_bytes());
    body.extend_from_slice(&1i64.to_le_bytes());
    assert!(Obj::load(&form(0, 2, &body)).is_none());
    // A count larger than the bytes could hold.
    assert!(Obj::load(&form(1, u32::MAX, b"")).is_none());
    // A repeated string.
    let mut body = Vec::new();
    put_bytes(&mut body, b"a");
    put_bytes(&mut body, b"a");
    assert!(Obj::load(&form(1, 2, &body)).is_none());
    // An unknown tag.
    assert!(Obj::load(&form(7, 0, b"")).is_none());
}

#[test]
fn random_picks_are_uniform_in_every_encoding() {
    let ints: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    let strs: Vec<String> = (0..10).map(|i| format!("s{i}")).collect();
    let mut table = Set::default();
    for i in 0..1000 {
        table.insert(format!("t{i}").as_bytes());
    }
    for i in 10..1000 {
        table.remove(format!("t{i}").as_bytes());
    }
    assert!(matches!(table.0, Repr::Table(_)));
    let ints = set_of(&ints.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    let strs = set_of(&strs.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    let mut rng = 0x9e3779b97f4a7c15u64;
    for s in [&ints, &strs, &table] {
        let mut hits = std::collections::HashMap::new();
        for _ in 0..10_000 {
            let p = s.random_pos(&mut rng);
            *hits.entry(s.at(p).to_vec()).or_insert(0u32) += 1;
        }
        assert_eq!(hits.len(), 10);
        // Chi-square with 9 degrees of freedom: 40 is a one in 100k failure.
        let chi: f64 = hits
            .values()
            .map(|&h| (h as f64 - 1000.0).powi(2) / 1000.0)
            .sum();
        assert!(chi < 40.0, "{} chi-square {chi}", s.encoding());
        let mut seen = Vec::new();
        s.sample_distinct(4, &mut rng, |m| seen.push(m.to_vec()));
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 4);
    }
}

#[test]
fn scan_returns_every_member_present_throughout_once() {
    let mut s = Set::default();
    for i in 0..5000 {
        s.insert(format!("keep:{i}").as_bytes());
    }
    let mut got = Vec::new();
    let mut cursor = 0;
    let mut round = 0;
    loop {
        let mut batch = Vec::new();
        cursor = s.scan(cursor, 10, |m| batch.push(m.to_vec()));
        assert!(batch.len() <= 20);
        got.extend(batch);
        round += 1;
        // Churn between calls: grow past a resize, then shrink past another, compact.
        match round {
            50 => (0..20_000).for_each(|i| {
                s.insert(format!("tmp:{i}").as_bytes());
            }),
            200 => (0..20_000).for_each(|i| {
                s.remove(format!("tmp:{i}").as_bytes());
            }),
            _ => {}
        }
        if cursor == 0 {
            break;
        }
    }
    s.check();
    let keep: Vec<Vec<u8>> = got
        .iter()
        .filter(|m| m.starts_with(b"keep:"))
        .cloned()
        .collect();
    let mut unique = keep.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 5000, "every member present throughout");
    assert_eq!(keep.len(), 5000, "and each once");
}
