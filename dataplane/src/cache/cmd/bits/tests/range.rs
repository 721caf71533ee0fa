//! GETRANGE, SUBSTR and SETRANGE.

use super::*;
use crate::proto::resp::errors::{NOT_INT, OFFSET_OUT_OF_RANGE, STRING_TOO_LONG, WRONGTYPE};

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
