//! Unit tests of the bitmap and string-range commands, run through `cache::cmd::exec_key`
//! against a store, several against naive bit-by-bit models.

use super::super::testing::{run, store};
use super::super::{exec_key, OomCheck};
use super::scan::{count_bits, find_bit, popcount};
use super::*;
use crate::cache::slot::key_slot;
use crate::proto::resp::command::lookup;
use crate::proto::resp::errors::{
    BITFIELD_OVERFLOW, BITFIELD_RO_GET_ONLY, BITFIELD_TYPE, BITOP_NOT_ONE_KEY, BITPOS_BIT,
    BIT_OFFSET, BIT_VALUE, LCS_LEN_AND_IDX, LCS_NOT_STRINGS, LCS_TABLE_TOO_BIG, NOT_INT,
    OFFSET_OUT_OF_RANGE, STRING_TOO_LONG, SYNTAX, WRONGTYPE,
};

/// Run a command whose arguments may hold any bytes, in RESP2 or RESP3.
fn call(s: &mut Store, words: &[&[u8]], resp3: bool) -> Vec<u8> {
    let mut src = Vec::new();
    let mut ranges = Vec::new();
    for w in words {
        let at = src.len();
        src.extend_from_slice(w);
        ranges.push((at, src.len()));
    }
    let a = Args {
        src: &src,
        ranges: &ranges,
    };
    let spec = lookup(a.get(0)).expect("known command");
    assert!(spec.arity_ok(a.len()));
    let mut buf = Vec::new();
    let mut out = Out::new(&mut buf, resp3);
    exec_key(
        s,
        spec,
        &a,
        key_slot(a.get(1)),
        0,
        OomCheck::Refuse,
        &mut out,
    );
    buf
}

fn set(s: &mut Store, key: &str, v: &[u8]) {
    assert_eq!(call(s, &[b"SET", key.as_bytes(), v], false), b"+OK\r\n");
}

fn get(s: &mut Store, key: &str) -> Vec<u8> {
    let r = call(s, &[b"GET", key.as_bytes()], false);
    if r == b"$-1\r\n" {
        return Vec::new();
    }
    let body = r.splitn(2, |&b| b == b'\n').nth(1).unwrap().to_vec();
    body[..body.len() - 2].to_vec()
}

fn int(n: i64) -> String {
    format!(":{n}\r\n")
}

fn err(e: &str) -> String {
    format!("-{e}\r\n")
}

/// A naive model of every bit of a string, for fuzzing.
fn bits_of(v: &[u8]) -> Vec<bool> {
    v.iter()
        .flat_map(|b| (0..8).map(move |i| b & (0x80 >> i) != 0))
        .collect()
}

fn rand(seed: &mut u64) -> u64 {
    crate::cache::store::xorshift64(seed)
}

#[test]
fn setbit_and_getbit() {
    let mut s = store();
    assert_eq!(run(&mut s, 0, "SETBIT k 1 1"), int(0));
    assert_eq!(get(&mut s, "k"), [0b0100_0000]);
    assert_eq!(run(&mut s, 0, "SETBIT k 1 1"), int(1));
    assert_eq!(run(&mut s, 0, "SETBIT k 1 0"), int(1));
    assert_eq!(get(&mut s, "k"), [0]);
    // "@" is 01000000; "1" is 00110001.
    assert_eq!(run(&mut s, 0, "SET k @"), "+OK\r\n");
    assert_eq!(run(&mut s, 0, "SETBIT k 2 1"), int(0));
    assert_eq!(get(&mut s, "k"), [0b0110_0000]);
    assert_eq!(run(&mut s, 0, "SET k 1"), "+OK\r\n");
    assert_eq!(run(&mut s, 0, "SETBIT k 6 1"), int(0));
    assert_eq!(get(&mut s, "k"), [0b0011_0011]);
    assert_eq!(run(&mut s, 0, "SETBIT k 23 1"), int(0));
    assert_eq!(get(&mut s, "k"), [0b0011_0011, 0, 1]);
    assert_eq!(run(&mut s, 0, "GETBIT k 23"), int(1));
    assert_eq!(run(&mut s, 0, "GETBIT k 2"), int(1));
    assert_eq!(run(&mut s, 0, "GETBIT k 0"), int(0));
    assert_eq!(run(&mut s, 0, "GETBIT k 10000"), int(0));
    assert_eq!(run(&mut s, 0, "GETBIT nokey 0"), int(0));
    for bad in ["-1", "4294967296", "x", "#1"] {
        assert_eq!(
            run(&mut s, 0, &format!("SETBIT k {bad} 1")),
            err(BIT_OFFSET)
        );
        assert_eq!(run(&mut s, 0, &format!("GETBIT k {bad}")), err(BIT_OFFSET));
    }
    for bad in ["-1", "2", "10", "x"] {
        assert_eq!(run(&mut s, 0, &format!("SETBIT k 0 {bad}")), err(BIT_VALUE));
    }
    // The last bit proto-max-bulk-len allows, and the first it does not.
    let last = STRING_BYTES_MAX as u64 * 8 - 1;
    assert_eq!(run(&mut s, 0, &format!("GETBIT k {last}")), int(0));
    assert_eq!(
        run(&mut s, 0, &format!("GETBIT k {}", last + 1)),
        err(BIT_OFFSET)
    );
    run(&mut s, 0, "HSET l a b");
    assert_eq!(run(&mut s, 0, "SETBIT l 0 1"), err(WRONGTYPE));
    assert_eq!(run(&mut s, 0, "GETBIT l 0"), err(WRONGTYPE));
    s.check();
}

#[test]
fn setbit_keeps_the_ttl_and_the_books() {
    let mut s = store();
    run(&mut s, 0, "SET k v EX 100");
    run(&mut s, 0, "SETBIT k 100000 1");
    assert_eq!(run(&mut s, 0, "STRLEN k"), int(12501));
    assert_eq!(run(&mut s, 0, "TTL k"), int(100));
    s.check();
    // An expired key is a missing key.
    assert_eq!(run(&mut s, 200_000, "SETBIT k 0 1"), int(0));
    assert_eq!(run(&mut s, 200_000, "STRLEN k"), int(1));
    assert_eq!(run(&mut s, 200_000, "TTL k"), int(-1));
    s.check();
}

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
fn setbit_fuzzing_against_a_model() {
    let mut s = store();
    let mut model = vec![false; 0];
    let mut seed = 9;
    for _ in 0..2000 {
        let bit = (rand(&mut seed) % 2048) as usize;
        let on = rand(&mut seed) % 2 == 1;
        let r = run(&mut s, 0, &format!("SETBIT k {bit} {}", on as u8));
        if model.len() <= bit {
            model.resize((bit / 8 + 1) * 8, false);
        }
        assert_eq!(r, int(model[bit] as i64));
        model[bit] = on;
        assert_eq!(bits_of(&get(&mut s, "k")), model);
    }
    s.check();
}

#[test]
fn bitcount() {
    let mut s = store();
    assert_eq!(run(&mut s, 0, "BITCOUNT nokey"), int(0));
    assert_eq!(run(&mut s, 0, "BITCOUNT nokey 0 1000 bit"), int(0));
    // Redis 7.0 answers a missing key before it reads the range.
    assert_eq!(run(&mut s, 0, "BITCOUNT nokey 0"), int(0));
    run(&mut s, 0, "SET str xxxx");
    assert_eq!(run(&mut s, 0, "BITCOUNT str 4 10"), int(0));
    assert_eq!(run(&mut s, 0, "BITCOUNT str 32 87 bit"), int(0));
    assert_eq!(run(&mut s, 0, "BITCOUNT str -6 -7"), int(0));
    assert_eq!(run(&mut s, 0, "BITCOUNT str -6 -15 bit"), int(0));
    run(&mut s, 0, "SET s foobar");
    let count = |t: &str| bits_of(t.as_bytes()).iter().filter(|b| **b).count() as i64;
    assert_eq!(run(&mut s, 0, "BITCOUNT s"), int(count("foobar")));
    assert_eq!(run(&mut s, 0, "BITCOUNT s 0 -1"), int(count("foobar")));
    assert_eq!(run(&mut s, 0, "BITCOUNT s 1 -2"), int(count("ooba")));
    assert_eq!(run(&mut s, 0, "BITCOUNT s -2 1"), int(0));
    assert_eq!(run(&mut s, 0, "BITCOUNT s 0 1000"), int(count("foobar")));
    assert_eq!(run(&mut s, 0, "BITCOUNT s 0 -1 bit"), int(count("foobar")));
    let bits = bits_of(b"foobar");
    let in_range = |a: usize, b: usize| bits[a..=b].iter().filter(|x| **x).count() as i64;
    assert_eq!(
        run(&mut s, 0, "BITCOUNT s 10 14 bit"),
        int(in_range(10, 14))
    );
    assert_eq!(run(&mut s, 0, "BITCOUNT s 3 14 BIT"), int(in_range(3, 14)));
    assert_eq!(run(&mut s, 0, "BITCOUNT s 3 29 bit"), int(in_range(3, 29)));
    assert_eq!(
        run(&mut s, 0, "BITCOUNT s 10 -34 bit"),
        int(in_range(10, 14))
    );
    assert_eq!(run(&mut s, 0, "BITCOUNT s 3 -19 bit"), int(in_range(3, 29)));
    assert_eq!(run(&mut s, 0, "BITCOUNT s -2 1 bit"), int(0));
    assert_eq!(run(&mut s, 0, "BITCOUNT s 1 1 byte"), int(count("o")));
    assert_eq!(run(&mut s, 0, "BITCOUNT s 0"), err(SYNTAX));
    assert_eq!(run(&mut s, 0, "BITCOUNT s 0 1 hello"), err(SYNTAX));
    assert_eq!(run(&mut s, 0, "BITCOUNT s 0 1 bit x"), err(SYNTAX));
    assert_eq!(run(&mut s, 0, "BITCOUNT s a 1"), err(NOT_INT));
    assert_eq!(
        run(&mut s, 0, "BITCOUNT s 0 4294967296"),
        int(count("foobar"))
    );
    run(&mut s, 0, "SET str ab");
    assert_eq!(run(&mut s, 0, "BITCOUNT str 1 -1"), int(3));
    run(&mut s, 0, "SET str __PPxxxxxxxxxxxxxxxxRR__");
    assert_eq!(run(&mut s, 0, "BITCOUNT str 2 -3"), int(74));
    run(&mut s, 0, "SET e x");
    run(&mut s, 0, "GETDEL e");
    set(&mut s, "e", b"");
    assert_eq!(run(&mut s, 0, "BITCOUNT e"), int(0));
    assert_eq!(run(&mut s, 0, "BITCOUNT e 0 -1 bit"), int(0));
    run(&mut s, 0, "HSET l a b");
    assert_eq!(run(&mut s, 0, "BITCOUNT l"), err(WRONGTYPE));
}

#[test]
fn bitcount_and_bitpos_fuzzing_against_a_model() {
    let mut s = store();
    let mut seed = 77;
    for round in 0..300 {
        let len = (rand(&mut seed) % 100) as usize;
        // Runs of zeros and ones, so that whole words are skipped too.
        let v: Vec<u8> = (0..len)
            .map(|i| match (round + i / 9) % 3 {
                0 => 0,
                1 => 0xFF,
                _ => rand(&mut seed) as u8,
            })
            .collect();
        set(&mut s, "k", &v);
        let bits = bits_of(&v);
        let total = bits.iter().filter(|b| **b).count() as i64;
        assert_eq!(
            call(&mut s, &[b"BITCOUNT", b"k"], false),
            int(total).as_bytes()
        );
        if bits.is_empty() {
            continue;
        }
        let n = bits.len() as u64;
        let (mut a, mut b) = (rand(&mut seed) % n, rand(&mut seed) % n);
        if a > b {
            std::mem::swap(&mut a, &mut b);
        }
        let (a, b) = (a as usize, b as usize);
        let want = bits[a..=b].iter().filter(|x| **x).count();
        let line = format!("BITCOUNT k {a} {b} BIT");
        let words: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        assert_eq!(call(&mut s, &words, false), int(want as i64).as_bytes());
        for bit in [false, true] {
            let first = bits[a..=b].iter().position(|x| *x == bit);
            let want = first.map_or(-1, |p| (p + a) as i64);
            let line = format!("BITPOS k {} {a} {b} BIT", bit as u8);
            let words: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
            assert_eq!(call(&mut s, &words, false), int(want).as_bytes(), "{line}");
            // Byte ranges, no end: the right is zero-padded.
            let (ba, bb) = (a / 8, len - 1);
            let first = bits[ba * 8..=bb * 8 + 7].iter().position(|x| *x == bit);
            let want = match first {
                Some(p) => (p + ba * 8) as i64,
                None if !bit => (len * 8) as i64,
                None => -1,
            };
            let line = format!("BITPOS k {} {ba}", bit as u8);
            let words: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
            assert_eq!(call(&mut s, &words, false), int(want).as_bytes(), "{line}");
        }
    }
}

#[test]
fn bitpos() {
    let mut s = store();
    assert_eq!(run(&mut s, 0, "BITPOS str 0"), int(0));
    assert_eq!(run(&mut s, 0, "BITPOS str 0 0 -1 bit"), int(0));
    assert_eq!(run(&mut s, 0, "BITPOS str 1"), int(-1));
    assert_eq!(run(&mut s, 0, "BITPOS str 1 0 -1"), int(-1));
    set(&mut s, "str", b"\xff\xf0\x00");
    assert_eq!(run(&mut s, 0, "BITPOS str 0"), int(12));
    assert_eq!(run(&mut s, 0, "BITPOS str 0 0 -1 bit"), int(12));
    assert_eq!(run(&mut s, 0, "BITPOS str 0 1"), int(12));
    assert_eq!(run(&mut s, 0, "BITPOS str 0 1 -1 bit"), int(12));
    set(&mut s, "str", b"\x00\x0f\x00");
    assert_eq!(run(&mut s, 0, "BITPOS str 1"), int(12));
    let mut v = vec![0xFFu8; 27];
    v.push(0x0F);
    set(&mut s, "str", &v);
    for start in 0..=8 {
        assert_eq!(run(&mut s, 0, &format!("BITPOS str 0 {start}")), int(216));
        let bit = start * 8 + 1;
        assert_eq!(
            run(&mut s, 0, &format!("BITPOS str 0 {bit} -1 bit")),
            int(216)
        );
    }
    set(&mut s, "str", b"\x00\xff\x00");
    assert_eq!(run(&mut s, 0, "BITPOS str 0 0 -1"), int(0));
    assert_eq!(run(&mut s, 0, "BITPOS str 0 1 -1"), int(16));
    assert_eq!(run(&mut s, 0, "BITPOS str 0 2 200"), int(16));
    assert_eq!(run(&mut s, 0, "BITPOS str 0 1 1"), int(-1));
    assert_eq!(run(&mut s, 0, "BITPOS str 0 8 8 bit"), int(-1));
    assert_eq!(run(&mut s, 0, "BITPOS str 1 0 -1"), int(8));
    assert_eq!(run(&mut s, 0, "BITPOS str 1 2 -1"), int(-1));
    assert_eq!(run(&mut s, 0, "BITPOS str 1 16 200 bit"), int(-1));
    assert_eq!(run(&mut s, 0, "BITPOS str 1 8 8 bit"), int(8));
    // bit=0 without an end counts the zero padding on the right.
    set(&mut s, "str", b"\xff\xff\xff");
    assert_eq!(run(&mut s, 0, "BITPOS str 0"), int(24));
    assert_eq!(run(&mut s, 0, "BITPOS str 0 0"), int(24));
    assert_eq!(run(&mut s, 0, "BITPOS str 0 0 -1"), int(-1));
    assert_eq!(run(&mut s, 0, "BITPOS str 0 0 -1 bit"), int(-1));
    set(&mut s, "str", b"");
    assert_eq!(run(&mut s, 0, "BITPOS str 1"), int(-1));
    assert_eq!(run(&mut s, 0, "BITPOS str 0"), int(-1));
    assert_eq!(run(&mut s, 0, "BITPOS str 2"), err(BITPOS_BIT));
    assert_eq!(run(&mut s, 0, "BITPOS str x"), err(NOT_INT));
    assert_eq!(run(&mut s, 0, "BITPOS str 1 x"), err(NOT_INT));
    assert_eq!(run(&mut s, 0, "BITPOS str 1 0 x"), err(NOT_INT));
    assert_eq!(run(&mut s, 0, "BITPOS str 1 0 x bits"), err(SYNTAX));
    assert_eq!(run(&mut s, 0, "BITPOS str 1 0 1 bit x"), err(SYNTAX));
    run(&mut s, 0, "HSET l a b");
    assert_eq!(run(&mut s, 0, "BITPOS l 1"), err(WRONGTYPE));
}

#[test]
fn bitop() {
    let mut s = store();
    set(&mut s, "s{t}", b"");
    assert_eq!(run(&mut s, 0, "BITOP NOT dest{t} s{t}"), int(0));
    assert_eq!(run(&mut s, 0, "EXISTS dest{t}"), int(0));
    set(&mut s, "s{t}", b"\xaa\x00\xff\x55");
    assert_eq!(run(&mut s, 0, "BITOP not dest{t} s{t}"), int(4));
    assert_eq!(get(&mut s, "dest{t}"), b"\x55\xff\x00\xaa");
    assert_eq!(run(&mut s, 0, "BITOP NOT s{t} s{t}"), int(4));
    assert_eq!(get(&mut s, "s{t}"), b"\x55\xff\x00\xaa");
    set(&mut s, "a{t}", b"\x01\x02\xff\xff");
    set(&mut s, "b{t}", b"\x01\x02\xff");
    run(&mut s, 0, "BITOP AND r1{t} a{t} b{t}");
    run(&mut s, 0, "BITOP OR r2{t} a{t} b{t}");
    run(&mut s, 0, "BITOP XOR r3{t} a{t} b{t}");
    assert_eq!(get(&mut s, "r1{t}"), b"\x01\x02\xff\x00");
    assert_eq!(get(&mut s, "r2{t}"), b"\x01\x02\xff\xff");
    assert_eq!(get(&mut s, "r3{t}"), b"\x00\x00\x00\xff");
    assert_eq!(run(&mut s, 0, "BITOP AND r1{t} nokey{t} b{t}"), int(3));
    assert_eq!(get(&mut s, "r1{t}"), b"\x00\x00\x00");
    run(&mut s, 0, "SET a{t} 1");
    run(&mut s, 0, "SET b{t} 2");
    run(&mut s, 0, "BITOP XOR dest{t} a{t} b{t} a{t}");
    assert_eq!(get(&mut s, "dest{t}"), b"2");
    // The destination is replaced whatever it held, TTL and all; an empty result
    // deletes it.
    run(&mut s, 0, "HSET d{t} x y");
    run(&mut s, 0, "EXPIRE d{t} 100");
    assert_eq!(run(&mut s, 0, "BITOP OR d{t} a{t}"), int(1));
    assert_eq!(run(&mut s, 0, "TTL d{t}"), int(-1));
    assert_eq!(run(&mut s, 0, "BITOP OR d{t} none{t}"), int(0));
    assert_eq!(run(&mut s, 0, "EXISTS d{t}"), int(0));
    run(&mut s, 0, "HSET c{t} foo bar");
    assert_eq!(
        run(&mut s, 0, "BITOP XOR dest{t} a{t} b{t} c{t} d{t}"),
        err(WRONGTYPE)
    );
    assert_eq!(
        run(&mut s, 0, "BITOP NOT dest{t} a{t} b{t}"),
        err(BITOP_NOT_ONE_KEY)
    );
    assert_eq!(run(&mut s, 0, "BITOP NAND dest{t} a{t}"), err(SYNTAX));
    s.check();
}

#[test]
fn bitop_fuzzing_against_a_model() {
    let mut s = store();
    let mut seed = 3;
    for op in ["AND", "OR", "XOR", "NOT"] {
        for _ in 0..20 {
            let n = if op == "NOT" {
                1
            } else {
                1 + rand(&mut seed) % 10
            };
            let vecs: Vec<Vec<u8>> = (0..n)
                .map(|_| {
                    let len = rand(&mut seed) % 100;
                    (0..len).map(|_| rand(&mut seed) as u8).collect()
                })
                .collect();
            let mut words: Vec<Vec<u8>> = vec![b"BITOP".to_vec(), op.into(), b"t{x}".to_vec()];
            for (i, v) in vecs.iter().enumerate() {
                let k = format!("v{i}{{x}}");
                set(&mut s, &k, v);
                words.push(k.into_bytes());
            }
            let max = vecs.iter().map(Vec::len).max().unwrap_or(0);
            let at = |v: &Vec<u8>, i: usize| v.get(i).copied().unwrap_or(0);
            let want: Vec<u8> = (0..max)
                .map(|i| {
                    let mut b = at(&vecs[0], i);
                    for v in &vecs[1..] {
                        match op {
                            "AND" => b &= at(v, i),
                            "OR" => b |= at(v, i),
                            _ => b ^= at(v, i),
                        }
                    }
                    if op == "NOT" {
                        !b
                    } else {
                        b
                    }
                })
                .collect();
            let refs: Vec<&[u8]> = words.iter().map(Vec::as_slice).collect();
            assert_eq!(call(&mut s, &refs, false), int(max as i64).as_bytes());
            assert_eq!(get(&mut s, "t{x}"), want);
        }
    }
    s.check();
}

fn bitfield(s: &mut Store, line: &str) -> String {
    run(s, 0, line)
}

#[test]
fn bitfield_basics() {
    let mut s = store();
    let arr = |xs: &[&str]| {
        let mut r = format!("*{}\r\n", xs.len());
        for x in xs {
            if *x == "nil" {
                r.push_str("$-1\r\n");
            } else {
                r.push_str(&format!(":{x}\r\n"));
            }
        }
        r
    };
    assert_eq!(bitfield(&mut s, "BITFIELD bits set i8 0 -100"), arr(&["0"]));
    assert_eq!(
        bitfield(&mut s, "BITFIELD bits set i8 0 101"),
        arr(&["-100"])
    );
    assert_eq!(bitfield(&mut s, "BITFIELD bits get i8 0"), arr(&["101"]));
    run(&mut s, 0, "DEL bits");
    assert_eq!(
        bitfield(&mut s, "BITFIELD bits set i8 0 255 set i8 0 100 get i8 0"),
        arr(&["0", "-1", "100"])
    );
    run(&mut s, 0, "DEL bits");
    assert_eq!(
        bitfield(
            &mut s,
            "BITFIELD bits set u8 0 255 incrby u8 0 100 get u8 0"
        ),
        arr(&["0", "99", "99"])
    );
    run(&mut s, 0, "DEL bits");
    assert_eq!(bitfield(&mut s, "BITFIELD bits"), "*0\r\n");
    assert_eq!(run(&mut s, 0, "EXISTS bits"), int(0));
    assert_eq!(bitfield(&mut s, "BITFIELD bits get u8 0"), arr(&["0"]));
    assert_eq!(run(&mut s, 0, "EXISTS bits"), int(0));
    run(&mut s, 0, "BITFIELD bits set u8 #0 65");
    run(&mut s, 0, "BITFIELD bits set u8 #1 66");
    run(&mut s, 0, "BITFIELD bits set u8 #2 67");
    assert_eq!(get(&mut s, "bits"), b"ABC");
    run(&mut s, 0, "SET bits 1");
    assert_eq!(bitfield(&mut s, "BITFIELD bits get u1 0"), arr(&["0"]));
    run(&mut s, 0, "DEL m");
    assert_eq!(
        bitfield(
            &mut s,
            "BITFIELD m SET i8 0 10 SET i8 64 10 INCRBY i8 10 99900"
        ),
        arr(&["0", "0", "60"])
    );
    // Overflow modes.
    run(&mut s, 0, "BITFIELD b set u8 #0 100");
    assert_eq!(
        bitfield(&mut s, "BITFIELD b overflow wrap incrby u8 #0 257"),
        arr(&["101"])
    );
    assert_eq!(
        bitfield(&mut s, "BITFIELD b overflow wrap incrby u8 #0 255"),
        arr(&["100"])
    );
    assert_eq!(
        bitfield(&mut s, "BITFIELD b overflow sat incrby u8 #0 257"),
        arr(&["255"])
    );
    assert_eq!(
        bitfield(&mut s, "BITFIELD b overflow sat incrby u8 #0 -256"),
        arr(&["0"])
    );
    run(&mut s, 0, "BITFIELD b set u8 #0 100");
    assert_eq!(
        bitfield(&mut s, "BITFIELD b overflow sat incrby i8 #0 257"),
        arr(&["127"])
    );
    assert_eq!(
        bitfield(&mut s, "BITFIELD b overflow sat incrby i8 #0 -255"),
        arr(&["-128"])
    );
    assert_eq!(
        bitfield(&mut s, "BITFIELD b overflow fail incrby i8 #0 -1 get i8 #0"),
        arr(&["nil", "-128"])
    );
    // An unsigned SET reads a negative value as its 64 bits unsigned.
    assert_eq!(
        bitfield(&mut s, "BITFIELD b overflow sat set u8 0 -1 get u8 0"),
        arr(&["128", "255"])
    );
    assert_eq!(
        bitfield(&mut s, "BITFIELD b overflow wrap set u8 0 -2 get u8 0"),
        arr(&["255", "254"])
    );
    // 64-bit signed and 63-bit unsigned fields at unaligned offsets.
    assert_eq!(
        bitfield(
            &mut s,
            "BITFIELD w set i64 3 -9223372036854775808 get i64 3 incrby i64 3 -1"
        ),
        arr(&["0", "-9223372036854775808", "9223372036854775807"])
    );
    assert_eq!(
        bitfield(&mut s, "BITFIELD w overflow fail incrby i64 3 1 get u63 3"),
        arr(&["nil", "4611686018427387903"])
    );
    assert_eq!(
        bitfield(&mut s, "BITFIELD w set u63 5 9223372036854775807 get u63 5"),
        arr(&["9223372036854775806", "9223372036854775807"])
    );
    s.check();
}

#[test]
fn bitfield_errors() {
    let mut s = store();
    for t in ["u64", "i65", "i0", "x8", "i", "u08", "i-1"] {
        assert_eq!(
            run(&mut s, 0, &format!("BITFIELD k get {t} 0")),
            err(BITFIELD_TYPE),
            "{t}"
        );
    }
    assert_eq!(run(&mut s, 0, "BITFIELD k get u8 -1"), err(BIT_OFFSET));
    assert_eq!(run(&mut s, 0, "BITFIELD k get u8 #-1"), err(BIT_OFFSET));
    assert_eq!(
        run(&mut s, 0, "BITFIELD k get u8 4294967296"),
        err(BIT_OFFSET)
    );
    assert_eq!(
        run(&mut s, 0, "BITFIELD k get u8 #2305843009213693952"),
        err(BIT_OFFSET)
    );
    assert_eq!(run(&mut s, 0, "BITFIELD k set u8 0 x"), err(NOT_INT));
    assert_eq!(run(&mut s, 0, "BITFIELD k set u8 0"), err(SYNTAX));
    assert_eq!(run(&mut s, 0, "BITFIELD k foo u8 0"), err(SYNTAX));
    assert_eq!(
        run(&mut s, 0, "BITFIELD k overflow what"),
        err(BITFIELD_OVERFLOW)
    );
    assert_eq!(run(&mut s, 0, "BITFIELD k overflow"), err(SYNTAX));
    assert_eq!(run(&mut s, 0, "EXISTS k"), int(0));
    assert_eq!(
        run(&mut s, 0, "BITFIELD_RO k set u8 0 100 get u8 0"),
        err(BITFIELD_RO_GET_ONLY)
    );
    assert_eq!(run(&mut s, 0, "BITFIELD_RO k"), "*0\r\n");
    run(&mut s, 0, "BITFIELD k set u8 0 100");
    assert_eq!(
        run(&mut s, 0, "BITFIELD_RO k get u8 0 get u4 0"),
        "*2\r\n:100\r\n:6\r\n"
    );
    run(&mut s, 0, "HSET l a b");
    assert_eq!(run(&mut s, 0, "BITFIELD l get u8 0"), err(WRONGTYPE));
    assert_eq!(run(&mut s, 0, "BITFIELD l set u8 0 1"), err(WRONGTYPE));
    assert_eq!(run(&mut s, 0, "BITFIELD_RO l get u8 0"), err(WRONGTYPE));
    assert_eq!(run(&mut s, 0, "BITFIELD l"), err(WRONGTYPE));
    s.check();
}

#[test]
fn bitfield_overflow_fuzzing_against_i128() {
    let mut s = store();
    let mut seed = 11;
    for _ in 0..2000 {
        let bits = 1 + (rand(&mut seed) % 64) as u32;
        let signed = bits == 64 || rand(&mut seed) % 2 == 1;
        let range = 1i128 << bits;
        let min = if signed { -(range / 2) } else { 0 };
        let max = min + range - 1;
        let pick = |seed: &mut u64| {
            let r = (rand(seed) as i128).rem_euclid(range * 2) + min * 2;
            r.clamp(i64::MIN as i128, i64::MAX as i128)
        };
        let (value, incr) = (pick(&mut seed), pick(&mut seed));
        let ty = format!("{}{bits}", if signed { "i" } else { "u" });
        run(&mut s, 0, "DEL f");
        let set = run(
            &mut s,
            0,
            &format!("BITFIELD f overflow fail set {ty} 0 {value}"),
        );
        let inc = run(
            &mut s,
            0,
            &format!("BITFIELD f overflow fail incrby {ty} 0 {incr}"),
        );
        let overflow = value > max || value < min || value + incr > max || value + incr < min;
        let failed = set.contains("$-1") || inc.contains("$-1");
        assert_eq!(overflow, failed, "{ty} {value} {incr}");
        // WRAP: the sum modulo 2^bits in the type's range.
        run(&mut s, 0, "DEL f");
        run(
            &mut s,
            0,
            &format!("BITFIELD f overflow wrap set {ty} 0 {value}"),
        );
        run(
            &mut s,
            0,
            &format!("BITFIELD f overflow wrap incrby {ty} 0 {incr}"),
        );
        let got = run(&mut s, 0, &format!("BITFIELD f get {ty} 0"));
        let mut want = (value + incr - min).rem_euclid(range) + min;
        if !signed {
            // An unsigned SET of a negative value wraps its 64-bit pattern first.
            let v = if value < 0 {
                value + (1i128 << 64)
            } else {
                value
            };
            want = (v + incr).rem_euclid(range);
        }
        assert_eq!(got, format!("*1\r\n:{want}\r\n"), "{ty} {value} {incr}");
    }
    s.check();
}

#[test]
fn getrange_and_substr() {
    let mut s = store();
    assert_eq!(run(&mut s, 0, "GETRANGE k 0 -1"), "$0\r\n\r\n");
    run(&mut s, 0, "SET k Hello_World");
    let bulk = |t: &str| format!("${}\r\n{t}\r\n", t.len());
    assert_eq!(run(&mut s, 0, "GETRANGE k 0 3"), bulk("Hell"));
    assert_eq!(run(&mut s, 0, "GETRANGE k 0 -1"), bulk("Hello_World"));
    assert_eq!(run(&mut s, 0, "GETRANGE k -4 -1"), bulk("orld"));
    assert_eq!(run(&mut s, 0, "GETRANGE k 5 3"), bulk(""));
    assert_eq!(run(&mut s, 0, "GETRANGE k 5 5000"), bulk("_World"));
    assert_eq!(
        run(&mut s, 0, "GETRANGE k -5000 10000"),
        bulk("Hello_World")
    );
    assert_eq!(run(&mut s, 0, "GETRANGE k -1 -5"), bulk(""));
    assert_eq!(run(&mut s, 0, "SUBSTR k 0 4294967297"), bulk("Hello_World"));
    assert_eq!(run(&mut s, 0, "SUBSTR k 1 1"), bulk("e"));
    assert_eq!(run(&mut s, 0, "GETRANGE k x 1"), err(NOT_INT));
    assert_eq!(run(&mut s, 0, "GETRANGE nokey 0 x"), err(NOT_INT));
    run(&mut s, 0, "HSET l a b");
    assert_eq!(run(&mut s, 0, "GETRANGE l 0 1"), err(WRONGTYPE));
    // Against a model: Tcl's `string range` with Redis's negative indexes.
    let mut seed = 5;
    for _ in 0..500 {
        let len = (rand(&mut seed) % 40) as i64;
        let v: Vec<u8> = (0..len).map(|_| rand(&mut seed) as u8).collect();
        set(&mut s, "b", &v);
        let (a, b) = (
            (rand(&mut seed) % 100) as i64 - 50,
            (rand(&mut seed) % 100) as i64 - 50,
        );
        let got = call(
            &mut s,
            &[
                b"GETRANGE",
                b"b",
                a.to_string().as_bytes(),
                b.to_string().as_bytes(),
            ],
            false,
        );
        let want: &[u8] = if a < 0 && b < 0 && a > b {
            b""
        } else {
            let ra = if a < 0 { (a + len).max(0) } else { a };
            let rb = if b < 0 { (b + len).max(0) } else { b }.min(len - 1);
            if ra > rb || len == 0 {
                b""
            } else {
                &v[ra as usize..=rb as usize]
            }
        };
        let mut w = format!("${}\r\n", want.len()).into_bytes();
        w.extend_from_slice(want);
        w.extend_from_slice(b"\r\n");
        assert_eq!(got, w, "{a} {b} of {len}");
    }
}

#[test]
fn setrange() {
    let mut s = store();
    assert_eq!(run(&mut s, 0, "SETRANGE k 0 foo"), int(3));
    assert_eq!(get(&mut s, "k"), b"foo");
    run(&mut s, 0, "DEL k");
    assert_eq!(
        call(&mut s, &[b"SETRANGE", b"k", b"0", b""], false),
        b":0\r\n"
    );
    assert_eq!(run(&mut s, 0, "EXISTS k"), int(0));
    assert_eq!(run(&mut s, 0, "SETRANGE k 1 foo"), int(4));
    assert_eq!(get(&mut s, "k"), b"\0foo");
    run(&mut s, 0, "SET k foo");
    assert_eq!(run(&mut s, 0, "SETRANGE k 0 b"), int(3));
    assert_eq!(get(&mut s, "k"), b"boo");
    assert_eq!(
        call(&mut s, &[b"SETRANGE", b"k", b"99999999999", b""], false),
        b":3\r\n"
    );
    assert_eq!(run(&mut s, 0, "SETRANGE k 1 b"), int(3));
    assert_eq!(get(&mut s, "k"), b"bbo");
    assert_eq!(run(&mut s, 0, "SETRANGE k 4 bar"), int(7));
    assert_eq!(get(&mut s, "k"), b"bbo\0bar");
    run(&mut s, 0, "SET n 1234");
    assert_eq!(run(&mut s, 0, "SETRANGE n 5 2"), int(6));
    assert_eq!(get(&mut s, "n"), b"1234\x002");
    run(&mut s, 0, "HSET l a b");
    assert_eq!(run(&mut s, 0, "SETRANGE l 0 bar"), err(WRONGTYPE));
    assert_eq!(
        run(&mut s, 0, "SETRANGE k -1 world"),
        err(OFFSET_OUT_OF_RANGE)
    );
    assert_eq!(run(&mut s, 0, "SETRANGE k x world"), err(NOT_INT));
    let max = STRING_BYTES_MAX;
    for k in ["k", "new"] {
        assert_eq!(
            run(&mut s, 0, &format!("SETRANGE {k} {} world", max - 4)),
            err(STRING_TOO_LONG)
        );
        for huge in ["9223372036854775807", "2147483647"] {
            let r = run(&mut s, 0, &format!("SETRANGE {k} {huge} A"));
            assert_eq!(r, err(STRING_TOO_LONG));
        }
    }
    assert_eq!(run(&mut s, 0, "EXISTS new"), int(0));
    run(&mut s, 0, "SET t v PX 5000");
    run(&mut s, 0, "SETRANGE t 3 x");
    assert_eq!(run(&mut s, 0, "PTTL t"), int(5000));
    s.check();
}

const RNA1: &str = "CACCTTCCCAGGTAACAAACCAACCAACTTTCGATCTCTTGTAGATCTGTTCTCTAAACGAACTTTAAAATCTGTGTGGCTGTCACTCGGCTGCATGCTTAGTGCACTCACGCAGTATAATTAATAACTAATTACTGTCGTTGACAGGACACGAGTAACTCGTCTATCTTCTGCAGGCTGCTTACGGTTTCGTCCGTGTTGCAGCCGATCATCAGCACATCTAGGTTTCGTCCGGGTGTG";
const RNA2: &str = "ATTAAAGGTTTATACCTTCCCAGGTAACAAACCAACCAACTTTCGATCTCTTGTAGATCTGTTCTCTAAACGAACTTTAAAATCTGTGTGGCTGTCACTCGGCTGCATGCTTAGTGCACTCACGCAGTATAATTAATAACTAATTACTGTCGTTGACAGGACACGAGTAACTCGTCTATCTTCTGCAGGCTGCTTACGGTTTCGTCCGTGTTGCAGCCGATCATCAGCACATCTAGGTTT";
const RNALCS: &str = "ACCTTCCCAGGTAACAAACCAACCAACTTTCGATCTCTTGTAGATCTGTTCTCTAAACGAACTTTAAAATCTGTGTGGCTGTCACTCGGCTGCATGCTTAGTGCACTCACGCAGTATAATTAATAACTAATTACTGTCGTTGACAGGACACGAGTAACTCGTCTATCTTCTGCAGGCTGCTTACGGTTTCGTCCGTGTTGCAGCCGATCATCAGCACATCTAGGTTT";

/// The expected IDX matches as RESP, each `((a0 a1) (b0 b1) [len])`.
fn matches(ms: &[(u32, u32, u32, u32)], with_len: bool) -> String {
    let mut r = format!("*{}\r\n", ms.len());
    for &(a0, a1, b0, b1) in ms {
        r.push_str(&format!(
            "*{}\r\n*2\r\n:{a0}\r\n:{a1}\r\n*2\r\n:{b0}\r\n:{b1}\r\n",
            2 + with_len as u8
        ));
        if with_len {
            r.push_str(&format!(":{}\r\n", a1 - a0 + 1));
        }
    }
    r
}

#[test]
fn lcs() {
    let mut s = store();
    run(&mut s, 0, &format!("SET virus1{{t}} {RNA1}"));
    run(&mut s, 0, &format!("SET virus2{{t}} {RNA2}"));
    assert_eq!(
        run(&mut s, 0, "LCS virus1{t} virus2{t}"),
        format!("${}\r\n{RNALCS}\r\n", RNALCS.len())
    );
    assert_eq!(
        run(&mut s, 0, "LCS virus1{t} virus2{t} LEN"),
        int(RNALCS.len() as i64)
    );
    let all = [
        (238, 238, 239, 239),
        (236, 236, 238, 238),
        (229, 230, 236, 237),
        (224, 224, 235, 235),
        (1, 222, 13, 234),
    ];
    let len = format!("$3\r\nlen\r\n:{}\r\n", RNALCS.len());
    assert_eq!(
        run(&mut s, 0, "LCS virus1{t} virus2{t} IDX"),
        format!("*4\r\n$7\r\nmatches\r\n{}{len}", matches(&all, false))
    );
    assert_eq!(
        run(&mut s, 0, "LCS virus1{t} virus2{t} IDX WITHMATCHLEN"),
        format!("*4\r\n$7\r\nmatches\r\n{}{len}", matches(&all, true))
    );
    assert_eq!(
        run(
            &mut s,
            0,
            "LCS virus1{t} virus2{t} IDX WITHMATCHLEN MINMATCHLEN 5"
        ),
        format!("*4\r\n$7\r\nmatches\r\n{}{len}", matches(&all[4..], true))
    );
    // RESP3: a map.
    let r3 = call(
        &mut s,
        &[
            b"LCS",
            b"virus1{t}",
            b"virus2{t}",
            b"IDX",
            b"MINMATCHLEN",
            b"5",
        ],
        true,
    );
    assert_eq!(
        String::from_utf8(r3).unwrap(),
        format!("%2\r\n$7\r\nmatches\r\n{}{len}", matches(&all[4..], false))
    );
    assert_eq!(run(&mut s, 0, "LCS a{t} b{t}"), "$0\r\n\r\n");
    assert_eq!(run(&mut s, 0, "LCS a{t} b{t} LEN"), int(0));
    assert_eq!(
        run(&mut s, 0, "LCS a{t} virus1{t} IDX"),
        "*4\r\n$7\r\nmatches\r\n*0\r\n$3\r\nlen\r\n:0\r\n"
    );
    run(&mut s, 0, "SET x{t} ohmytext");
    run(&mut s, 0, "SET y{t} mynewtext");
    assert_eq!(run(&mut s, 0, "LCS x{t} y{t}"), "$6\r\nmytext\r\n");
    assert_eq!(
        run(&mut s, 0, "LCS x{t} y{t} IDX MINMATCHLEN -3 WITHMATCHLEN"),
        format!(
            "*4\r\n$7\r\nmatches\r\n{}$3\r\nlen\r\n:6\r\n",
            matches(&[(4, 7, 5, 8), (2, 3, 0, 1)], true)
        )
    );
    assert_eq!(
        run(&mut s, 0, "LCS x{t} y{t} LEN IDX"),
        err(LCS_LEN_AND_IDX)
    );
    assert_eq!(run(&mut s, 0, "LCS x{t} y{t} MINMATCHLEN"), err(SYNTAX));
    assert_eq!(run(&mut s, 0, "LCS x{t} y{t} MINMATCHLEN x"), err(NOT_INT));
    assert_eq!(run(&mut s, 0, "LCS x{t} y{t} FOO"), err(SYNTAX));
    run(&mut s, 0, "HSET l{t} a b");
    assert_eq!(run(&mut s, 0, "LCS x{t} l{t}"), err(LCS_NOT_STRINGS));
    assert_eq!(run(&mut s, 0, "LCS l{t} x{t} FOO"), err(LCS_NOT_STRINGS));
    // The table Redis would build is bounded by proto-max-bulk-len.
    let big = vec![b'a'; 12_000];
    set(&mut s, "big{t}", &big);
    assert_eq!(
        run(&mut s, 0, "LCS big{t} big{t} LEN"),
        err(LCS_TABLE_TOO_BIG)
    );
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
fn word_scans_match_a_bit_by_bit_scan() {
    let mut seed = 1;
    for _ in 0..500 {
        // Long runs of one value, a few other bytes: the jumps over runs are exercised.
        let len = 1 + (rand(&mut seed) % 300) as usize;
        let fill = if rand(&mut seed) % 2 == 0 { 0 } else { 0xFF };
        let v: Vec<u8> = (0..len)
            .map(|_| {
                if rand(&mut seed) % 97 == 0 {
                    rand(&mut seed) as u8
                } else {
                    fill
                }
            })
            .collect();
        let bits = bits_of(&v);
        let n = bits.len() as u64;
        let (mut a, mut b) = (rand(&mut seed) % n, rand(&mut seed) % n);
        if a > b {
            std::mem::swap(&mut a, &mut b);
        }
        let slice = &bits[a as usize..=b as usize];
        assert_eq!(
            count_bits(&v, a, b),
            slice.iter().filter(|x| **x).count() as u64
        );
        for bit in [false, true] {
            let want = slice.iter().position(|x| *x == bit).map(|p| p as u64 + a);
            assert_eq!(find_bit(&v, bit, a, b), want);
        }
    }
    assert_eq!(popcount(&[0xFF; 1001]), 8008);
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
