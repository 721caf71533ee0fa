//! BITOP, and its four operations against a byte-by-byte model.

use super::*;
use crate::proto::resp::errors::{BITOP_NOT_ONE_KEY, SYNTAX, WRONGTYPE};

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
