//! LCS: the common subsequence, LEN, IDX and its match ranges.

use super::*;
use crate::proto::resp::errors::{
    LCS_LEN_AND_IDX, LCS_NOT_STRINGS, LCS_TABLE_TOO_BIG, NOT_INT, SYNTAX,
};

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
