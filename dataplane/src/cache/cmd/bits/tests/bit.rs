//! SETBIT, GETBIT, BITCOUNT and BITPOS, the last two also against a bit-by-bit model.

use super::*;
use crate::proto::resp::errors::{BITPOS_BIT, BIT_OFFSET, BIT_VALUE, NOT_INT, SYNTAX, WRONGTYPE};

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
