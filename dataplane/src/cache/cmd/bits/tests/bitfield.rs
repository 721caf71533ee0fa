//! BITFIELD and BITFIELD_RO: the subcommands, their errors, and overflow against i128.

use super::*;
use crate::proto::resp::errors::{
    BITFIELD_OVERFLOW, BITFIELD_RO_GET_ONLY, BITFIELD_TYPE, BIT_OFFSET, NOT_INT, SYNTAX, WRONGTYPE,
};

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
