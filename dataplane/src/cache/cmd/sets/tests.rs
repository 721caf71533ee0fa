//! Unit tests of the set commands, run through `cache::cmd::testing::run` against a store,
//! a few against models.

use super::super::testing::{run, store};
use crate::cache::slot::key_slot;
use crate::cache::store::Found;
use crate::proto::resp::errors::WRONGTYPE;

fn wrongtype() -> String {
    format!("-{WRONGTYPE}\r\n")
}

/// The members of a RESP2 array reply, sorted.
fn members(reply: &str) -> Vec<String> {
    let mut lines = reply.split("\r\n");
    let head = lines.next().unwrap_or_default();
    assert!(head.starts_with('*'), "not an array: {reply}");
    let mut v: Vec<String> = lines
        .filter(|l| !l.is_empty() && !l.starts_with('$'))
        .map(String::from)
        .collect();
    v.sort();
    v
}

/// A RESP2 SSCAN reply: its cursor and its members, sorted.
fn scan_reply(reply: &str) -> (String, Vec<String>) {
    let lines: Vec<&str> = reply.split("\r\n").collect();
    assert_eq!(lines[0], "*2", "{reply}");
    let mut v: Vec<String> = lines[4..]
        .iter()
        .filter(|l| !l.is_empty() && !l.starts_with('$'))
        .map(|l| l.to_string())
        .collect();
    v.sort();
    (lines[2].to_string(), v)
}

fn encoding(s: &mut crate::cache::store::Store, key: &str) -> &'static str {
    match s.read(key_slot(key.as_bytes()), key.as_bytes(), 0) {
        Found::Set(set) => set.encoding(),
        _ => "none",
    }
}

#[test]
fn sadd_srem_and_membership() {
    let mut s = store();
    assert_eq!(run(&mut s, 0, "SADD s foo"), ":1\r\n");
    assert_eq!(encoding(&mut s, "s"), "hashtable");
    assert_eq!(run(&mut s, 0, "SADD s bar bar foo"), ":1\r\n");
    assert_eq!(run(&mut s, 0, "SCARD s"), ":2\r\n");
    assert_eq!(run(&mut s, 0, "SISMEMBER s foo"), ":1\r\n");
    assert_eq!(run(&mut s, 0, "SISMEMBER s bla"), ":0\r\n");
    assert_eq!(run(&mut s, 0, "SMISMEMBER s bla foo"), "*2\r\n:0\r\n:1\r\n");
    assert_eq!(run(&mut s, 0, "SMISMEMBER nokey a b"), "*2\r\n:0\r\n:0\r\n");
    assert_eq!(members(&run(&mut s, 0, "SMEMBERS s")), ["bar", "foo"]);
    assert_eq!(run(&mut s, 0, "SMEMBERS nokey"), "*0\r\n");
    assert_eq!(run(&mut s, 0, "SCARD nokey"), ":0\r\n");
    assert_eq!(run(&mut s, 0, "SREM s qux"), ":0\r\n");
    assert_eq!(run(&mut s, 0, "SREM nokey qux"), ":0\r\n");
    assert_eq!(run(&mut s, 0, "SREM s foo bar x"), ":2\r\n");
    assert_eq!(run(&mut s, 0, "EXISTS s"), ":0\r\n");
    s.check();

    assert_eq!(run(&mut s, 0, "SADD i 17 16"), ":2\r\n");
    assert_eq!(encoding(&mut s, "i"), "intset");
    assert_eq!(run(&mut s, 0, "SISMEMBER i 16"), ":1\r\n");
    assert_eq!(run(&mut s, 0, "SISMEMBER i 016"), ":0\r\n");
    assert_eq!(members(&run(&mut s, 0, "SMEMBERS i")), ["16", "17"]);
    assert_eq!(run(&mut s, 0, "SADD i a"), ":1\r\n");
    assert_eq!(encoding(&mut s, "i"), "hashtable");
    assert_eq!(run(&mut s, 0, "SREM i a"), ":1\r\n");
    assert_eq!(encoding(&mut s, "i"), "hashtable");
    assert_eq!(
        run(&mut s, 0, "SADD big 213244124402402314402033402"),
        ":1\r\n"
    );
    assert_eq!(encoding(&mut s, "big"), "hashtable");
    assert_eq!(run(&mut s, 0, "TYPE big"), "+set\r\n");
    s.check();
}

#[test]
fn intset_becomes_a_table_past_512() {
    let mut s = store();
    for i in 0..512 {
        assert_eq!(run(&mut s, 0, &format!("SADD s {i}")), ":1\r\n");
    }
    assert_eq!(encoding(&mut s, "s"), "intset");
    assert_eq!(run(&mut s, 0, "SADD s 512"), ":1\r\n");
    assert_eq!(encoding(&mut s, "s"), "hashtable");
    assert_eq!(run(&mut s, 0, "SCARD s"), ":513\r\n");
    assert_eq!(run(&mut s, 0, "SISMEMBER s 300"), ":1\r\n");
    s.check();
}

#[test]
fn every_command_refuses_another_type() {
    let mut s = store();
    assert_eq!(run(&mut s, 0, "SET str x"), "+OK\r\n");
    assert_eq!(run(&mut s, 0, "SADD set a"), ":1\r\n");
    for cmd in [
        "SADD str a",
        "SREM str a",
        "SMEMBERS str",
        "SISMEMBER str a",
        "SMISMEMBER str a",
        "SCARD str",
        "SPOP str",
        "SPOP str 2",
        "SRANDMEMBER str",
        "SRANDMEMBER str -2",
        "SMOVE str set a",
        "SMOVE set str a",
        "SINTER set str",
        "SINTER nokey str",
        "SUNION str set",
        "SDIFF set str",
        "SDIFF nokey str",
        "SINTERSTORE d str set",
        "SUNIONSTORE d nokey str",
        "SDIFFSTORE d set str",
        "SINTERCARD 2 set str",
        "SSCAN str 0",
    ] {
        assert_eq!(run(&mut s, 0, cmd), wrongtype(), "{cmd}");
    }
    // Nothing was written by the refused STOREs, and the set is whole.
    assert_eq!(run(&mut s, 0, "EXISTS d"), ":0\r\n");
    assert_eq!(run(&mut s, 0, "SMEMBERS set"), "*1\r\n$1\r\na\r\n");
    // A set is refused by the other types' commands.
    assert_eq!(run(&mut s, 0, "GET set"), wrongtype());
    s.check();
}

#[test]
fn spop_with_and_without_count() {
    let mut s = store();
    assert_eq!(run(&mut s, 0, "SPOP nokey"), "$-1\r\n");
    assert_eq!(run(&mut s, 0, "SPOP nokey 5"), "*0\r\n");
    assert_eq!(
        run(&mut s, 0, "SPOP nokey -1"),
        "-ERR value is out of range, must be positive\r\n"
    );
    assert_eq!(
        run(&mut s, 0, "SPOP nokey x"),
        "-ERR value is out of range, must be positive\r\n"
    );
    assert_eq!(run(&mut s, 0, "SPOP k 1 2"), "-ERR syntax error\r\n");
    for (contents, enc) in [("a b c", "hashtable"), ("1 2 3", "intset")] {
        run(&mut s, 0, &format!("SADD s {contents}"));
        assert_eq!(encoding(&mut s, "s"), enc);
        let mut got: Vec<String> = (0..3)
            .flat_map(|_| members(&format!("*1\r\n{}", run(&mut s, 0, "SPOP s"))))
            .collect();
        got.sort();
        assert_eq!(got.join(" "), contents);
        assert_eq!(run(&mut s, 0, "EXISTS s"), ":0\r\n");
        s.check();
    }
    // Counts below, at and above the size, and zero.
    let all: Vec<String> = (1..=26).map(|i| i.to_string()).collect();
    run(&mut s, 0, &format!("SADD s {}", all.join(" ")));
    let mut got = Vec::new();
    for count in [11, 9, 0, 4, 1, 0, 1, 0] {
        let r = run(&mut s, 0, &format!("SPOP s {count}"));
        let m = members(&r);
        assert_eq!(m.len(), count, "{r}");
        got.extend(m);
        s.check();
    }
    got.sort();
    let mut want = all.clone();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(run(&mut s, 0, "SCARD s"), ":0\r\n");
    // A count at or above the size takes everything and deletes the key.
    run(&mut s, 0, "SADD s a b c");
    assert_eq!(members(&run(&mut s, 0, "SPOP s 30")), ["a", "b", "c"]);
    assert_eq!(run(&mut s, 0, "EXISTS s"), ":0\r\n");
    s.check();
}

#[test]
fn spop_drains_a_large_set_uniformly() {
    let mut s = store();
    for chunk in 0..20 {
        let ms: Vec<String> = (0..1000)
            .map(|i| format!("m{}", chunk * 1000 + i))
            .collect();
        run(&mut s, 0, &format!("SADD s {}", ms.join(" ")));
    }
    // The first 2000 pops come evenly from the four quarters of the members.
    let mut quarters = [0u32; 4];
    for _ in 0..2000 {
        let r = run(&mut s, 0, "SPOP s");
        let m: usize = r.split("\r\n").nth(1).unwrap()[1..].parse().unwrap();
        quarters[m / 5000] += 1;
    }
    assert!(
        quarters.iter().all(|&q| (400..600).contains(&q)),
        "{quarters:?}"
    );
    let r = run(&mut s, 0, "SPOP s 17000");
    assert_eq!(members(&r).len(), 17000);
    assert_eq!(run(&mut s, 0, "SCARD s"), ":1000\r\n");
    s.check();
    assert_eq!(members(&run(&mut s, 0, "SPOP s 5000")).len(), 1000);
    assert_eq!(run(&mut s, 0, "EXISTS s"), ":0\r\n");
    s.check();
}

#[test]
fn srandmember_counts_and_distribution() {
    let mut s = store();
    assert_eq!(run(&mut s, 0, "SRANDMEMBER nokey"), "$-1\r\n");
    assert_eq!(run(&mut s, 0, "SRANDMEMBER nokey 100"), "*0\r\n");
    assert_eq!(run(&mut s, 0, "SRANDMEMBER k 1 2"), "-ERR syntax error\r\n");
    assert_eq!(
        run(&mut s, 0, "SRANDMEMBER k x"),
        "-ERR value is not an integer or out of range\r\n"
    );
    run(&mut s, 0, "SADD s a");
    assert_eq!(
        run(&mut s, 0, "SRANDMEMBER s -9223372036854775808"),
        "-ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807\r\n"
    );
    assert_eq!(
        run(&mut s, 0, "SRANDMEMBER s -9223372036854775807"),
        "-ERR value is out of range\r\n"
    );
    assert_eq!(run(&mut s, 0, "SRANDMEMBER s 0"), "*0\r\n");
    for contents in [
        "1 5 10 50 125 MARY PATRICIA LINDA BARBARA ELIZABETH",
        "0 1 2 3 4 5 6 7 8 9",
    ] {
        run(&mut s, 0, "DEL s");
        run(&mut s, 0, &format!("SADD s {contents}"));
        let mut want: Vec<&str> = contents.split(' ').collect();
        want.sort();
        // Negative: repeats allowed, every member eventually, evenly.
        let r = members(&run(&mut s, 0, "SRANDMEMBER s -1000"));
        assert_eq!(r.len(), 1000);
        let mut distinct = r.clone();
        distinct.dedup();
        assert_eq!(distinct, want);
        let chi: f64 = want
            .iter()
            .map(|w| {
                let n = r.iter().filter(|x| x == w).count() as f64;
                (n - 100.0).powi(2) / 100.0
            })
            .sum();
        assert!(chi < 40.0, "chi-square {chi}");
        // Positive: distinct members; the whole set when asked for as many or more.
        for size in [10, 100] {
            assert_eq!(
                members(&run(&mut s, 0, &format!("SRANDMEMBER s {size}"))),
                want
            );
        }
        for size in [8, 2] {
            let mut hits = std::collections::HashMap::new();
            for _ in 0..1000 / size {
                let r = members(&run(&mut s, 0, &format!("SRANDMEMBER s {size}")));
                let mut d = r.clone();
                d.dedup();
                assert_eq!(d.len(), size);
                for m in r {
                    *hits.entry(m).or_insert(0u32) += 1;
                }
            }
            assert_eq!(hits.len(), 10);
            let exp = (1000 / size * size) as f64 / 10.0;
            let chi: f64 = hits.values().map(|&h| (h as f64 - exp).powi(2) / exp).sum();
            assert!(chi < 40.0, "size {size}: chi-square {chi}");
        }
        let one = run(&mut s, 0, "SRANDMEMBER s");
        assert!(want.contains(&members(&format!("*1\r\n{one}"))[0].as_str()));
    }
    s.check();
}

#[test]
fn smove_between_encodings() {
    let mut s = store();
    let setup = |s: &mut crate::cache::store::Store| {
        run(s, 0, "DEL a b c");
        run(s, 0, "SADD a 1 x y");
        run(s, 0, "SADD b 2 3 4");
    };
    setup(&mut s);
    assert_eq!(run(&mut s, 0, "SMOVE a b x"), ":1\r\n");
    assert_eq!(members(&run(&mut s, 0, "SMEMBERS a")), ["1", "y"]);
    assert_eq!(members(&run(&mut s, 0, "SMEMBERS b")), ["2", "3", "4", "x"]);
    assert_eq!(encoding(&mut s, "b"), "hashtable");
    setup(&mut s);
    assert_eq!(run(&mut s, 0, "SMOVE a b 1"), ":1\r\n");
    assert_eq!(encoding(&mut s, "b"), "intset");
    assert_eq!(run(&mut s, 0, "SMOVE b c 2"), ":1\r\n");
    assert_eq!(encoding(&mut s, "c"), "intset");
    assert_eq!(run(&mut s, 0, "SMOVE a c x"), ":1\r\n");
    assert_eq!(members(&run(&mut s, 0, "SMEMBERS c")), ["2", "x"]);
    // Missing member, missing source, same key.
    assert_eq!(run(&mut s, 0, "SMOVE a b nope"), ":0\r\n");
    assert_eq!(run(&mut s, 0, "SMOVE nokey b 3"), ":0\r\n");
    assert_eq!(run(&mut s, 0, "SMOVE a a y"), ":1\r\n");
    assert_eq!(run(&mut s, 0, "SMOVE a a nope"), ":0\r\n");
    assert_eq!(members(&run(&mut s, 0, "SMEMBERS a")), ["y"]);
    // The last member leaves: the source key goes.
    assert_eq!(run(&mut s, 0, "SMOVE a b y"), ":1\r\n");
    assert_eq!(run(&mut s, 0, "EXISTS a"), ":0\r\n");
    // A missing source answers 0 even when the destination is not a set.
    run(&mut s, 0, "SET str v");
    assert_eq!(run(&mut s, 0, "SMOVE nokey str x"), ":0\r\n");
    s.check();
}

#[test]
fn sinter_sunion_sdiff_and_stores() {
    let mut s = store();
    for (large, enc) in [("foo", "hashtable"), ("200", "intset")] {
        run(&mut s, 0, "DEL s1 s2 s3 s4 s5 res");
        let r: Vec<String> = (0..200).map(|i| i.to_string()).collect();
        run(&mut s, 0, &format!("SADD s1 {} {large}", r.join(" ")));
        let r: Vec<String> = (195..395).map(|i| i.to_string()).collect();
        run(&mut s, 0, &format!("SADD s2 {} {large}", r.join(" ")));
        run(&mut s, 0, &format!("SADD s3 199 195 1000 2000 {large}"));
        let r: Vec<String> = (5..200).map(|i| i.to_string()).collect();
        run(&mut s, 0, &format!("SADD s4 {} {large}", r.join(" ")));
        run(&mut s, 0, &format!("SADD s5 0 {large}"));
        for k in ["s1", "s2", "s3", "s4", "s5"] {
            assert_eq!(encoding(&mut s, k), enc, "{k}");
        }
        let mut want = vec!["195", "196", "197", "198", "199", large];
        want.sort();
        assert_eq!(members(&run(&mut s, 0, "SINTER s1 s2")), want);
        assert_eq!(run(&mut s, 0, "SINTERCARD 2 s1 s2"), ":6\r\n");
        assert_eq!(run(&mut s, 0, "SINTERCARD 2 s1 s2 LIMIT 0"), ":6\r\n");
        assert_eq!(run(&mut s, 0, "SINTERCARD 2 s1 s2 limit 3"), ":3\r\n");
        assert_eq!(run(&mut s, 0, "SINTERCARD 2 s1 s2 LIMIT 10"), ":6\r\n");
        assert_eq!(run(&mut s, 0, "SINTERSTORE res s1 s2"), ":6\r\n");
        assert_eq!(encoding(&mut s, "res"), enc);
        assert_eq!(members(&run(&mut s, 0, "SMEMBERS res")), want);
        let mut want3 = vec!["195", "199", large];
        want3.sort();
        assert_eq!(members(&run(&mut s, 0, "SINTER s1 s2 s3")), want3);
        assert_eq!(run(&mut s, 0, "SINTERCARD 3 s1 s2 s3 LIMIT 2"), ":2\r\n");
        // 0..=394, and "foo" when that is the large member.
        let n = if large == "foo" { 396 } else { 395 };
        let union = members(&run(&mut s, 0, "SUNION nokey s1 s2 nokey2"));
        assert_eq!(union.len(), n);
        assert_eq!(run(&mut s, 0, "SUNIONSTORE res s1 s2"), format!(":{n}\r\n"));
        assert_eq!(encoding(&mut s, "res"), enc);
        assert_eq!(
            members(&run(&mut s, 0, "SDIFF s1 s4")),
            ["0", "1", "2", "3", "4"]
        );
        assert_eq!(
            members(&run(&mut s, 0, "SDIFF s1 s4 s5")),
            ["1", "2", "3", "4"]
        );
        assert_eq!(run(&mut s, 0, "SDIFFSTORE res s1 s4 s5"), ":4\r\n");
        if enc == "intset" {
            assert_eq!(encoding(&mut s, "res"), "intset");
        }
        let s1 = members(&run(&mut s, 0, "SMEMBERS s1"));
        assert_eq!(members(&run(&mut s, 0, "SINTER s1 s1 s1")), s1);
        assert_eq!(members(&run(&mut s, 0, "SUNION s1 s1 s1")), s1);
        assert_eq!(run(&mut s, 0, "SDIFF s1 s1 s1"), "*0\r\n");
        s.check();
    }
    // A missing key is an empty set.
    run(&mut s, 0, "DEL s1 s2 s3");
    run(&mut s, 0, "SADD s1 a b c");
    run(&mut s, 0, "SADD s2 b c d");
    assert_eq!(run(&mut s, 0, "SINTER s1 s2 s3"), "*0\r\n");
    assert_eq!(run(&mut s, 0, "SINTERCARD 1 nokey"), ":0\r\n");
    assert_eq!(members(&run(&mut s, 0, "SDIFF s1 s2 s3")), ["a"]);
    assert_eq!(run(&mut s, 0, "SDIFF s3 s2 s1"), "*0\r\n");
    assert_eq!(
        members(&run(&mut s, 0, "SUNION s1 s2 s3")),
        ["a", "b", "c", "d"]
    );
    // Integers of different encodings intersect.
    run(&mut s, 0, "DEL s1 s2");
    run(&mut s, 0, "SADD s1 1 2 3");
    run(&mut s, 0, "SADD s2 1 2 3 a");
    run(&mut s, 0, "SREM s2 a");
    assert_eq!(members(&run(&mut s, 0, "SINTER s1 s2")), ["1", "2", "3"]);
    assert_eq!(members(&run(&mut s, 0, "SINTER s2 s1")), ["1", "2", "3"]);
    s.check();
}

#[test]
fn store_forms_replace_or_delete_the_destination() {
    let mut s = store();
    for cmd in ["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"] {
        run(&mut s, 0, "SET res xxx");
        assert_eq!(run(&mut s, 0, &format!("{cmd} res foo bar")), ":0\r\n");
        assert_eq!(run(&mut s, 0, "EXISTS res"), ":0\r\n");
        // A destination that is a set with a TTL is replaced whole, TTL and all.
        run(&mut s, 0, "SADD res e f");
        run(&mut s, 0, "EXPIRE res 100");
        run(&mut s, 0, "SADD a x y");
        assert_eq!(run(&mut s, 0, &format!("{cmd} res a")), ":2\r\n");
        assert_eq!(members(&run(&mut s, 0, "SMEMBERS res")), ["x", "y"]);
        assert_eq!(run(&mut s, 0, "TTL res"), ":-1\r\n");
        // The destination may be a source.
        assert_eq!(run(&mut s, 0, &format!("{cmd} a a")), ":2\r\n");
        s.check();
        run(&mut s, 0, "DEL a res");
    }
    // A refused STORE leaves the destination as it was.
    run(&mut s, 0, "SADD res e");
    run(&mut s, 0, "SET str x");
    assert_eq!(run(&mut s, 0, "SDIFFSTORE res str nokey"), wrongtype());
    assert_eq!(members(&run(&mut s, 0, "SMEMBERS res")), ["e"]);
    s.check();
}

#[test]
fn sintercard_argument_errors() {
    let mut s = store();
    let numkeys = "-ERR numkeys should be greater than 0\r\n";
    let too_many = "-ERR Number of keys can't be greater than number of args\r\n";
    let limit = "-ERR LIMIT can't be negative\r\n";
    for (cmd, want) in [
        ("SINTERCARD 0 s", numkeys),
        ("SINTERCARD a s", numkeys),
        ("SINTERCARD -1 s", numkeys),
        ("SINTERCARD 2 s", too_many),
        ("SINTERCARD 3 s t", too_many),
        ("SINTERCARD 1 s t", "-ERR syntax error\r\n"),
        ("SINTERCARD 1 s LIMIT", "-ERR syntax error\r\n"),
        ("SINTERCARD 1 s LIMIT -1", limit),
        ("SINTERCARD 1 s LIMIT a", limit),
    ] {
        assert_eq!(run(&mut s, 0, cmd), want, "{cmd}");
    }
    assert_eq!(run(&mut s, 0, "SINTERCARD 1 nokey LIMIT 10"), ":0\r\n");
}

#[test]
fn sdiff_fuzz_against_a_model() {
    let mut s = store();
    let mut rng = 0x2545f4914f6cdd1du64;
    let mut next = move |n: u64| crate::cache::store::xorshift64(&mut rng) % n;
    for _ in 0..200 {
        let sets = 1 + next(6) as usize;
        let mut model: Vec<std::collections::BTreeSet<String>> = Vec::new();
        for i in 0..sets {
            run(&mut s, 0, &format!("DEL f{i}"));
            let mut m = std::collections::BTreeSet::new();
            for _ in 0..next(150) {
                // Integers and strings, so every encoding meets every other.
                let v = match next(3) {
                    0 => next(300).to_string(),
                    1 => format!("s{}", next(300)),
                    _ => next(1 << 40).to_string(),
                };
                run(&mut s, 0, &format!("SADD f{i} {v}"));
                m.insert(v);
            }
            model.push(m);
        }
        let keys: Vec<String> = (0..sets).map(|i| format!("f{i}")).collect();
        let keys = keys.join(" ");
        let mut diff = model[0].clone();
        let mut union = model[0].clone();
        let mut inter = model[0].clone();
        for m in &model[1..] {
            diff.retain(|v| !m.contains(v));
            union.extend(m.iter().cloned());
            inter.retain(|v| m.contains(v));
        }
        let v = |set: &std::collections::BTreeSet<String>| set.iter().cloned().collect::<Vec<_>>();
        assert_eq!(members(&run(&mut s, 0, &format!("SDIFF {keys}"))), v(&diff));
        assert_eq!(
            members(&run(&mut s, 0, &format!("SUNION {keys}"))),
            v(&union)
        );
        assert_eq!(
            members(&run(&mut s, 0, &format!("SINTER {keys}"))),
            v(&inter)
        );
        assert_eq!(
            run(&mut s, 0, &format!("SDIFFSTORE out {keys}")),
            format!(":{}\r\n", diff.len())
        );
        s.check();
    }
}

#[test]
fn sscan_small_large_and_matching() {
    let mut s = store();
    assert_eq!(run(&mut s, 0, "SSCAN nokey 0"), "*2\r\n$1\r\n0\r\n*0\r\n");
    assert_eq!(run(&mut s, 0, "SSCAN nokey x"), "-ERR invalid cursor\r\n");
    run(&mut s, 0, "SADD small 1 a");
    let r = run(&mut s, 0, "SSCAN small 0 MATCH *a* COUNT 100");
    assert_eq!(scan_reply(&r), ("0".into(), vec!["a".into()]));
    let r = run(&mut s, 0, "SSCAN small 0 MATCH *1*");
    assert_eq!(scan_reply(&r), ("0".into(), vec!["1".into()]));
    assert_eq!(
        run(&mut s, 0, "SSCAN small 0 COUNT 0"),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        run(&mut s, 0, "SSCAN small 0 COUNT x"),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(
        run(&mut s, 0, "SSCAN small 0 MATCH"),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        run(&mut s, 0, "SSCAN small 0 TYPE set"),
        "-ERR syntax error\r\n"
    );
    run(&mut s, 0, "SADD pat foo fab fiz foobar 1 2 3 4");
    let r = run(&mut s, 0, "SSCAN pat 0 MATCH foo* COUNT 10000");
    assert_eq!(scan_reply(&r).1, ["foo", "foobar"]);

    // A table, scanned with a small COUNT while most of it is removed half-way (the
    // table shrinks and its arena is compacted under the cursor).
    let keep: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    let drop: Vec<String> = (100..3000).map(|i| i.to_string()).collect();
    run(
        &mut s,
        0,
        &format!("SADD big x {} {}", keep.join(" "), drop.join(" ")),
    );
    assert_eq!(encoding(&mut s, "big"), "hashtable");
    let mut cursor = "0".to_string();
    let mut found = std::collections::HashSet::new();
    let mut calls = 0;
    loop {
        let (next, batch) = scan_reply(&run(&mut s, 0, &format!("SSCAN big {cursor} COUNT 10")));
        for m in batch {
            assert!(found.insert(m.clone()), "{m} returned twice");
        }
        cursor = next;
        calls += 1;
        if calls == 5 {
            run(&mut s, 0, &format!("SREM big {}", drop.join(" ")));
        }
        if cursor == "0" {
            break;
        }
    }
    assert!(calls > 5);
    for k in &keep {
        assert!(found.contains(k), "{k} missing");
    }
    s.check();
}

#[test]
fn memory_books_follow_every_change() {
    let mut s = store();
    let before = s.used_bytes;
    let ms: Vec<String> = (0..5000).map(|i| format!("member:{i}")).collect();
    run(&mut s, 0, &format!("SADD s {}", ms.join(" ")));
    let full = s.used_bytes;
    assert!(full - before > 5000 * 20, "charged {}", full - before);
    s.check();
    run(&mut s, 0, &format!("SREM s {}", ms[..4500].join(" ")));
    s.check();
    assert!(s.used_bytes < full / 4, "{} of {full}", s.used_bytes);
    run(&mut s, 0, "SPOP s 500");
    s.check();
    assert_eq!(s.used_bytes, before);
}
