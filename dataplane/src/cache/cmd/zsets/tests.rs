//! Unit tests of the sorted-set commands, run through `cache::cmd::exec_key` (RESP2 and
//! RESP3) and `try_blocking` against a store.

use super::super::testing::{run, store};
use super::scores::{parse_bound, parse_float, ScoreText};
use super::*;
use crate::cache::cmd::scan::parse_cursor;
use crate::proto::resp::command::lookup;
use crate::proto::resp::errors::{
    COUNT_NOT_POSITIVE, INVALID_CURSOR, LIMIT_NEGATIVE, LIMIT_WITH_RANK, MUST_BE_POSITIVE,
    NOT_FLOAT, NOT_INT, NUMKEYS_NOT_POSITIVE, OUT_OF_RANGE, SCORE_NAN, SYNTAX, TIMEOUT_NEGATIVE,
    TIMEOUT_NOT_FLOAT, TIMEOUT_OUT_OF_RANGE, WEIGHT_NOT_FLOAT, WITHSCORES_WITH_BYLEX,
    ZADD_GT_LT_NX, ZADD_INCR_PAIR, ZADD_XX_NX, ZRANDMEMBER_TOO_LARGE,
};

fn bulk(s: &str) -> String {
    format!("${}\r\n{s}\r\n", s.len())
}

fn arr(items: &[&str]) -> String {
    let mut o = format!("*{}\r\n", items.len());
    for i in items {
        o.push_str(&bulk(i));
    }
    o
}

fn err(e: &str) -> String {
    format!("-{e}\r\n")
}

fn encoding(s: &mut Store, key: &str) -> &'static str {
    match s.read(key_slot(key.as_bytes()), key.as_bytes(), 0) {
        Found::Zset(z) => z.encoding(),
        _ => "none",
    }
}

/// Run in RESP3.
fn run3(s: &mut Store, line: &str) -> String {
    let words: Vec<&str> = line.split(' ').collect();
    let mut src = Vec::new();
    let mut ranges = Vec::new();
    for w in &words {
        let st = src.len();
        src.extend_from_slice(w.as_bytes());
        ranges.push((st, src.len()));
    }
    let a = Args {
        src: &src,
        ranges: &ranges,
    };
    let spec = lookup(a.get(0)).unwrap();
    let mut buf = Vec::new();
    let mut out = Out::new(&mut buf, true);
    super::super::exec_key(
        s,
        spec,
        &a,
        key_slot(a.get(1)),
        0,
        super::super::OomCheck::Refuse,
        &mut out,
    );
    String::from_utf8(buf).unwrap()
}

/// One blocking attempt in RESP2: the reply (empty when it would block) and the attempt.
fn attempt(s: &mut Store, line: &str) -> (String, Attempt) {
    let words: Vec<&str> = line.split(' ').collect();
    let mut src = Vec::new();
    let mut ranges = Vec::new();
    for w in &words {
        let st = src.len();
        src.extend_from_slice(w.as_bytes());
        ranges.push((st, src.len()));
    }
    let a = Args {
        src: &src,
        ranges: &ranges,
    };
    let spec = lookup(a.get(0)).unwrap();
    let mut buf = Vec::new();
    let mut out = Out::new(&mut buf, false);
    let r = try_blocking(s, spec, &a, 0, &mut out);
    (String::from_utf8(buf).unwrap(), r)
}

#[test]
fn scores_print_like_redis_7_0() {
    let t = |f: f64| String::from_utf8(ScoreText::new(f).as_bytes().to_vec()).unwrap();
    assert_eq!(t(1.5), "1.5");
    assert_eq!(t(3.0), "3");
    assert_eq!(t(-0.0), "-0");
    assert_eq!(t(0.1), "0.10000000000000001");
    assert_eq!(t(1e17), "1e+17");
    assert_eq!(t(1e16), "10000000000000000");
    assert_eq!(t(123456789.125), "123456789.125");
    assert_eq!(t(1e-5), "1.0000000000000001e-05");
    assert_eq!(t(0.0001), "0.0001");
    assert_eq!(t(-2.5e-300), "-2.5e-300");
    assert_eq!(t(1.23e-5), "1.2300000000000001e-05");
    assert_eq!(t(5e-324), "4.9406564584124654e-324");
    assert_eq!(t(1e22), "1e+22");
    assert_eq!(t(12345678901234567890.0), "1.2345678901234567e+19");
    assert_eq!(t(0.30000000000000004), "0.30000000000000004");
    assert_eq!(t(f64::INFINITY), "inf");
    assert_eq!(t(f64::NEG_INFINITY), "-inf");
    assert_eq!(t(1.1), "1.1000000000000001");
    assert_eq!(t(1.7976931348623157e308), "1.7976931348623157e+308");
}

#[test]
fn floats_parse_like_redis() {
    assert_eq!(parse_float(b"1.5"), Some(1.5));
    assert_eq!(parse_float(b"-inf"), Some(f64::NEG_INFINITY));
    assert_eq!(parse_float(b"+Infinity"), Some(f64::INFINITY));
    assert_eq!(parse_float(b"1e5"), Some(1e5));
    assert_eq!(parse_float(b"nan"), None);
    assert_eq!(parse_float(b""), None);
    assert_eq!(parse_float(b" 1"), None);
    assert_eq!(parse_float(b"1 "), None);
    assert_eq!(parse_float(b"1e400"), None);
    assert_eq!(parse_float(b"1e-400"), None);
    assert_eq!(parse_float(b"0e-400"), Some(0.0));
    assert_eq!(parse_float(b"abc"), None);
    assert_eq!(parse_bound(b" 2"), Some(2.0));
    assert_eq!(parse_bound(b""), Some(0.0));
    assert_eq!(parse_bound(b"1e400"), Some(f64::INFINITY));
    assert_eq!(parse_bound(b"NaN"), None);
    assert_eq!(parse_float(b"0x10"), Some(16.0));
    assert_eq!(parse_float(b"-0x1.8p1"), Some(-3.0));
    assert_eq!(parse_float(b"0x"), None);
    assert_eq!(parse_bound(b"0X.8"), Some(0.5));
    assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
    assert_eq!(parse_cursor(b"18446744073709551616"), None);
    assert_eq!(parse_cursor(b" 1"), None);
}

#[test]
fn zadd_options_and_errors() {
    let mut s = store();
    assert_eq!(run(&mut s, 0, "ZADD z 1 a 2 b 3 c"), ":3\r\n");
    assert_eq!(run(&mut s, 0, "ZADD z 1 a 5 b"), ":0\r\n");
    assert_eq!(run(&mut s, 0, "ZADD z CH 1 a 6 b 7 d"), ":2\r\n");
    assert_eq!(run(&mut s, 0, "ZADD z NX 100 a 4 e"), ":1\r\n");
    assert_eq!(run(&mut s, 0, "ZSCORE z a"), bulk("1"));
    assert_eq!(run(&mut s, 0, "ZADD z XX 10 a 10 nope"), ":0\r\n");
    assert_eq!(run(&mut s, 0, "ZSCORE z a"), bulk("10"));
    assert_eq!(run(&mut s, 0, "ZSCORE z nope"), "$-1\r\n");
    assert_eq!(run(&mut s, 0, "ZADD z GT CH 5 a 20 b"), ":1\r\n");
    assert_eq!(run(&mut s, 0, "ZADD z LT CH 5 a 30 b"), ":1\r\n");
    assert_eq!(
        run(&mut s, 0, "ZMSCORE z a b nope"),
        format!("*3\r\n{}{}$-1\r\n", bulk("5"), bulk("20"))
    );
    assert_eq!(run(&mut s, 0, "ZADD z INCR 2.5 a"), bulk("7.5"));
    assert_eq!(run(&mut s, 0, "ZADD z NX INCR 1 a"), "$-1\r\n");
    assert_eq!(run(&mut s, 0, "ZADD z GT INCR -1 a"), "$-1\r\n");
    assert_eq!(run(&mut s, 0, "ZINCRBY z 1 a"), bulk("8.5"));
    assert_eq!(run(&mut s, 0, "ZINCRBY z 1 new"), bulk("1"));
    assert_eq!(run(&mut s, 0, "ZADD z XX NX 1 a"), err(ZADD_XX_NX));
    assert_eq!(run(&mut s, 0, "ZADD z GT NX 1 a"), err(ZADD_GT_LT_NX));
    assert_eq!(run(&mut s, 0, "ZADD z LT GT 1 a"), err(ZADD_GT_LT_NX));
    assert_eq!(run(&mut s, 0, "ZADD z INCR 1 a 2 b"), err(ZADD_INCR_PAIR));
    assert_eq!(run(&mut s, 0, "ZADD z 1 a 2"), err(SYNTAX));
    assert_eq!(run(&mut s, 0, "ZADD z XX 1"), err(SYNTAX));
    assert_eq!(run(&mut s, 0, "ZADD z 1 a x b"), err(NOT_FLOAT));
    assert_eq!(run(&mut s, 0, "ZADD z nan a"), err(NOT_FLOAT));
    assert_eq!(run(&mut s, 0, "ZINCRBY z nx a"), err(SYNTAX));
    assert_eq!(run(&mut s, 0, "ZADD z inf x -inf y"), ":2\r\n");
    assert_eq!(run(&mut s, 0, "ZINCRBY z -inf x"), err(SCORE_NAN));
    assert_eq!(run(&mut s, 0, "ZSCORE z x"), bulk("inf"));
    // XX on a missing key creates nothing.
    assert_eq!(run(&mut s, 0, "ZADD nokey XX 1 a"), ":0\r\n");
    assert_eq!(run(&mut s, 0, "ZADD nokey XX INCR 1 a"), "$-1\r\n");
    assert_eq!(run(&mut s, 0, "EXISTS nokey"), ":0\r\n");
    assert_eq!(run(&mut s, 0, "SET str v"), "+OK\r\n");
    assert_eq!(run(&mut s, 0, "ZADD str 1 a"), err(WRONGTYPE));
    assert_eq!(run(&mut s, 0, "ZSCORE str a"), err(WRONGTYPE));
    assert_eq!(run(&mut s, 0, "TYPE z"), "+zset\r\n");
    s.check();
}

#[test]
fn zrem_card_rank_and_counts() {
    let mut s = store();
    run(&mut s, 0, "ZADD z 1 a 2 b 3 c 4 d");
    assert_eq!(run(&mut s, 0, "ZCARD z"), ":4\r\n");
    assert_eq!(run(&mut s, 0, "ZCARD nope"), ":0\r\n");
    assert_eq!(run(&mut s, 0, "ZRANK z c"), ":2\r\n");
    assert_eq!(run(&mut s, 0, "ZREVRANK z c"), ":1\r\n");
    assert_eq!(run(&mut s, 0, "ZRANK z x"), "$-1\r\n");
    assert_eq!(run(&mut s, 0, "ZRANK nope x"), "$-1\r\n");
    assert_eq!(run(&mut s, 0, "ZCOUNT z 2 3"), ":2\r\n");
    assert_eq!(run(&mut s, 0, "ZCOUNT z (2 3"), ":1\r\n");
    assert_eq!(run(&mut s, 0, "ZCOUNT z -inf +inf"), ":4\r\n");
    assert_eq!(run(&mut s, 0, "ZCOUNT z (3 (3"), ":0\r\n");
    assert_eq!(run(&mut s, 0, "ZCOUNT z 4 1"), ":0\r\n");
    assert_eq!(run(&mut s, 0, "ZCOUNT z x 1"), err(MIN_MAX_NOT_FLOAT));
    assert_eq!(run(&mut s, 0, "ZREM z a x b"), ":2\r\n");
    assert_eq!(run(&mut s, 0, "ZREM nope a"), ":0\r\n");
    assert_eq!(run(&mut s, 0, "ZREM z c d"), ":2\r\n");
    assert_eq!(run(&mut s, 0, "EXISTS z"), ":0\r\n");
    run(&mut s, 0, "ZADD l 0 a 0 b 0 c 0 d 0 e");
    assert_eq!(run(&mut s, 0, "ZLEXCOUNT l - +"), ":5\r\n");
    assert_eq!(run(&mut s, 0, "ZLEXCOUNT l [b (d"), ":2\r\n");
    assert_eq!(run(&mut s, 0, "ZLEXCOUNT l (b [d"), ":2\r\n");
    assert_eq!(run(&mut s, 0, "ZLEXCOUNT l + -"), ":0\r\n");
    assert_eq!(run(&mut s, 0, "ZLEXCOUNT l [a [a"), ":1\r\n");
    assert_eq!(run(&mut s, 0, "ZLEXCOUNT l (a [a"), ":0\r\n");
    assert_eq!(run(&mut s, 0, "ZLEXCOUNT l a b"), err(MIN_MAX_NOT_LEX));
    assert_eq!(run(&mut s, 0, "ZLEXCOUNT l +x [b"), err(MIN_MAX_NOT_LEX));
    s.check();
}

#[test]
fn ranges_by_rank_score_and_lex() {
    let mut s = store();
    run(&mut s, 0, "ZADD z 1 a 2 b 3 c 4 d 5 e");
    assert_eq!(
        run(&mut s, 0, "ZRANGE z 0 -1"),
        arr(&["a", "b", "c", "d", "e"])
    );
    assert_eq!(
        run(&mut s, 0, "ZRANGE z 1 2 WITHSCORES"),
        arr(&["b", "2", "c", "3"])
    );
    assert_eq!(run(&mut s, 0, "ZRANGE z -2 100"), arr(&["d", "e"]));
    assert_eq!(run(&mut s, 0, "ZRANGE z 3 1"), "*0\r\n");
    assert_eq!(run(&mut s, 0, "ZRANGE z 0 1 REV"), arr(&["e", "d"]));
    assert_eq!(
        run(&mut s, 0, "ZREVRANGE z 0 1 WITHSCORES"),
        arr(&["e", "5", "d", "4"])
    );
    assert_eq!(run(&mut s, 0, "ZRANGE z (1 3 BYSCORE"), arr(&["b", "c"]));
    assert_eq!(
        run(&mut s, 0, "ZRANGE z 5 (2 BYSCORE REV"),
        arr(&["e", "d", "c"])
    );
    assert_eq!(
        run(&mut s, 0, "ZRANGE z -inf +inf BYSCORE LIMIT 1 2"),
        arr(&["b", "c"])
    );
    assert_eq!(
        run(
            &mut s,
            0,
            "ZRANGE z +inf -inf BYSCORE REV LIMIT 1 2 WITHSCORES"
        ),
        arr(&["d", "4", "c", "3"])
    );
    assert_eq!(
        run(&mut s, 0, "ZRANGE z -inf +inf BYSCORE LIMIT 3 -1"),
        arr(&["d", "e"])
    );
    assert_eq!(
        run(&mut s, 0, "ZRANGE z -inf +inf BYSCORE LIMIT -1 2"),
        "*0\r\n"
    );
    assert_eq!(
        run(&mut s, 0, "ZRANGE z -inf +inf BYSCORE LIMIT 9 2"),
        "*0\r\n"
    );
    assert_eq!(run(&mut s, 0, "ZRANGEBYSCORE z 2 4"), arr(&["b", "c", "d"]));
    assert_eq!(
        run(&mut s, 0, "ZRANGEBYSCORE z 2 4 LIMIT 0 1 WITHSCORES"),
        arr(&["b", "2"])
    );
    assert_eq!(
        run(&mut s, 0, "ZREVRANGEBYSCORE z 4 2"),
        arr(&["d", "c", "b"])
    );
    assert_eq!(run(&mut s, 0, "ZREVRANGEBYSCORE z (4 (2"), arr(&["c"]));
    assert_eq!(
        run(&mut s, 0, "ZRANGEBYSCORE z str 1"),
        err(MIN_MAX_NOT_FLOAT)
    );
    assert_eq!(
        run(&mut s, 0, "ZRANGEBYSCORE z 1 NaN"),
        err(MIN_MAX_NOT_FLOAT)
    );
    assert_eq!(run(&mut s, 0, "ZRANGEBYSCORE z 0 -1 REV"), err(SYNTAX));
    assert_eq!(
        run(&mut s, 0, "ZRANGE z 0 -1 LIMIT 1 2"),
        err(LIMIT_WITH_RANK)
    );
    assert_eq!(
        run(&mut s, 0, "ZRANGE z - + BYLEX WITHSCORES"),
        err(WITHSCORES_WITH_BYLEX)
    );
    assert_eq!(run(&mut s, 0, "ZREVRANGE z 0 -1 BYSCORE"), err(SYNTAX));
    assert_eq!(run(&mut s, 0, "ZRANGE z 0 x"), err(NOT_INT));
    assert_eq!(
        run(&mut s, 0, "ZRANGE z 0 1 LIMIT x 1 BYSCORE"),
        err(NOT_INT)
    );
    assert_eq!(run(&mut s, 0, "ZRANGE nope 0 -1"), "*0\r\n");
    run(
        &mut s,
        0,
        "ZADD l 0 alpha 0 bar 0 cool 0 down 0 elephant 0 foo",
    );
    assert_eq!(
        run(&mut s, 0, "ZRANGEBYLEX l - [cool"),
        arr(&["alpha", "bar", "cool"])
    );
    assert_eq!(run(&mut s, 0, "ZRANGEBYLEX l (bar (down"), arr(&["cool"]));
    assert_eq!(
        run(&mut s, 0, "ZRANGEBYLEX l - + LIMIT 1 2"),
        arr(&["bar", "cool"])
    );
    assert_eq!(
        run(&mut s, 0, "ZREVRANGEBYLEX l + (d"),
        arr(&["foo", "elephant", "down"])
    );
    assert_eq!(
        run(&mut s, 0, "ZREVRANGEBYLEX l + - LIMIT 1 1"),
        arr(&["elephant"])
    );
    assert_eq!(
        run(&mut s, 0, "ZRANGE l [b [d BYLEX"),
        arr(&["bar", "cool"])
    );
    assert_eq!(
        run(&mut s, 0, "ZRANGEBYLEX l foo bar"),
        err(MIN_MAX_NOT_LEX)
    );
    assert_eq!(
        run(&mut s, 0, "ZRANGEBYLEX l -x [bar"),
        err(MIN_MAX_NOT_LEX)
    );
    assert_eq!(
        run(&mut s, 0, "ZRANGEBYLEX l - + WITHSCORES"),
        err(WITHSCORES_WITH_BYLEX)
    );
    assert_eq!(run(&mut s, 0, "SET str v"), "+OK\r\n");
    assert_eq!(run(&mut s, 0, "ZRANGE str 0 -1"), err(WRONGTYPE));
    // The range is checked before the key.
    assert_eq!(
        run(&mut s, 0, "ZRANGEBYSCORE str x 1"),
        err(MIN_MAX_NOT_FLOAT)
    );
}

#[test]
fn resp3_replies_nest_scores() {
    let mut s = store();
    run(&mut s, 0, "ZADD z 1 a 2.5 b");
    assert_eq!(
        run3(&mut s, "ZRANGE z 0 -1 WITHSCORES"),
        "*2\r\n*2\r\n$1\r\na\r\n,1\r\n*2\r\n$1\r\nb\r\n,2.5\r\n"
    );
    assert_eq!(
        run3(&mut s, "ZRANGE z 0 -1"),
        "*2\r\n$1\r\na\r\n$1\r\nb\r\n"
    );
    assert_eq!(run3(&mut s, "ZSCORE z b"), ",2.5\r\n");
    assert_eq!(run3(&mut s, "ZSCORE z x"), "_\r\n");
    assert_eq!(run3(&mut s, "ZINCRBY z 1 a"), ",2\r\n");
    assert_eq!(run3(&mut s, "ZPOPMIN z"), "*2\r\n$1\r\na\r\n,2\r\n");
    run(&mut s, 0, "ZADD z 1 a 3 c");
    assert_eq!(
        run3(&mut s, "ZPOPMIN z 2"),
        "*2\r\n*2\r\n$1\r\na\r\n,1\r\n*2\r\n$1\r\nb\r\n,2.5\r\n"
    );
    assert_eq!(
        run3(&mut s, "ZMPOP 1 z MAX"),
        "*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\nc\r\n,3\r\n"
    );
    assert_eq!(run3(&mut s, "ZMPOP 1 z MAX"), "_\r\n");
    run(&mut s, 0, "ZADD z 1 a 2 b");
    assert_eq!(
        run3(&mut s, "ZUNION 1 z WITHSCORES"),
        "*2\r\n*2\r\n$1\r\na\r\n,1\r\n*2\r\n$1\r\nb\r\n,2\r\n"
    );
    assert_eq!(
        run3(&mut s, "ZRANDMEMBER z 5 WITHSCORES"),
        "*2\r\n*2\r\n$1\r\nb\r\n,2\r\n*2\r\n$1\r\na\r\n,1\r\n"
    );
    // ZSCAN answers strings in RESP3 too.
    assert_eq!(
        run3(&mut s, "ZSCAN z 0"),
        format!("*2\r\n{}{}", bulk("0"), arr(&["a", "1", "b", "2"]))
    );
}

#[test]
fn zrangestore_writes_the_destination() {
    let mut s = store();
    run(&mut s, 0, "ZADD z1 1 a 2 b 3 c 4 d");
    assert_eq!(run(&mut s, 0, "ZRANGESTORE z2 z1 0 1"), ":2\r\n");
    assert_eq!(
        run(&mut s, 0, "ZRANGE z2 0 -1 WITHSCORES"),
        arr(&["a", "1", "b", "2"])
    );
    assert_eq!(
        run(&mut s, 0, "ZRANGESTORE z2 z1 5 0 BYSCORE REV LIMIT 0 2"),
        ":2\r\n"
    );
    assert_eq!(
        run(&mut s, 0, "ZRANGE z2 0 -1 WITHSCORES"),
        arr(&["c", "3", "d", "4"])
    );
    assert_eq!(run(&mut s, 0, "ZRANGESTORE z2 z1 [b [c BYLEX"), ":2\r\n");
    assert_eq!(
        run(&mut s, 0, "ZRANGESTORE z2 z1 0 -1 WITHSCORES"),
        err(SYNTAX)
    );
    assert_eq!(
        run(&mut s, 0, "ZRANGESTORE z2 z1 0 -1 LIMIT 1 2"),
        err(LIMIT_WITH_RANK)
    );
    // An empty result deletes the destination.
    assert_eq!(run(&mut s, 0, "ZRANGESTORE z2 z1 5 6"), ":0\r\n");
    assert_eq!(run(&mut s, 0, "EXISTS z2"), ":0\r\n");
    run(&mut s, 0, "ZADD z2 1 a");
    assert_eq!(run(&mut s, 0, "ZRANGESTORE z2 missing 0 -1"), ":0\r\n");
    assert_eq!(run(&mut s, 0, "EXISTS z2"), ":0\r\n");
    run(&mut s, 0, "ZADD z2 1 a");
    run(&mut s, 0, "SET str v");
    assert_eq!(run(&mut s, 0, "ZRANGESTORE z2 str 0 -1"), err(WRONGTYPE));
    assert_eq!(run(&mut s, 0, "ZRANGE z2 0 -1"), arr(&["a"]));
    // The destination may hold any type; it is replaced.
    assert_eq!(run(&mut s, 0, "ZRANGESTORE str z1 0 0"), ":1\r\n");
    assert_eq!(run(&mut s, 0, "TYPE str"), "+zset\r\n");
    s.check();
}

#[test]
fn zremrange_by_rank_score_lex() {
    let mut s = store();
    run(&mut s, 0, "ZADD z 1 a 2 b 3 c 4 d 5 e");
    assert_eq!(run(&mut s, 0, "ZREMRANGEBYRANK z 1 2"), ":2\r\n");
    assert_eq!(run(&mut s, 0, "ZRANGE z 0 -1"), arr(&["a", "d", "e"]));
    assert_eq!(run(&mut s, 0, "ZREMRANGEBYRANK z 5 10"), ":0\r\n");
    assert_eq!(run(&mut s, 0, "ZREMRANGEBYRANK z x 1"), err(NOT_INT));
    assert_eq!(run(&mut s, 0, "ZREMRANGEBYSCORE z (1 4"), ":1\r\n");
    assert_eq!(
        run(&mut s, 0, "ZREMRANGEBYSCORE z str 1"),
        err(MIN_MAX_NOT_FLOAT)
    );
    assert_eq!(run(&mut s, 0, "ZREMRANGEBYSCORE z -inf +inf"), ":2\r\n");
    assert_eq!(run(&mut s, 0, "EXISTS z"), ":0\r\n");
    run(&mut s, 0, "ZADD l 0 a 0 b 0 c 0 d");
    assert_eq!(run(&mut s, 0, "ZREMRANGEBYLEX l [b (d"), ":2\r\n");
    assert_eq!(run(&mut s, 0, "ZRANGE l 0 -1"), arr(&["a", "d"]));
    assert_eq!(run(&mut s, 0, "ZREMRANGEBYLEX l a b"), err(MIN_MAX_NOT_LEX));
    assert_eq!(run(&mut s, 0, "ZREMRANGEBYLEX nope - +"), ":0\r\n");
    s.check();
}

#[test]
fn pops_and_mpop() {
    let mut s = store();
    run(&mut s, 0, "ZADD z 1 a 2 b 3 c 4 d");
    assert_eq!(run(&mut s, 0, "ZPOPMIN z"), arr(&["a", "1"]));
    assert_eq!(run(&mut s, 0, "ZPOPMAX z 2"), arr(&["d", "4", "c", "3"]));
    assert_eq!(run(&mut s, 0, "ZPOPMIN z 0"), "*0\r\n");
    assert_eq!(run(&mut s, 0, "ZPOPMIN z -1"), err(MUST_BE_POSITIVE));
    assert_eq!(run(&mut s, 0, "ZPOPMIN z 1 2"), err(SYNTAX));
    assert_eq!(run(&mut s, 0, "ZPOPMIN z 10"), arr(&["b", "2"]));
    assert_eq!(run(&mut s, 0, "EXISTS z"), ":0\r\n");
    assert_eq!(run(&mut s, 0, "ZPOPMIN z"), "*0\r\n");
    run(&mut s, 0, "ZADD z2 1 a 2 b 3 c");
    assert_eq!(
        run(&mut s, 0, "ZMPOP 2 z z2 MIN COUNT 2"),
        "*2\r\n$2\r\nz2\r\n*2\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n"
    );
    assert_eq!(run(&mut s, 0, "ZMPOP 1 z MIN"), "*-1\r\n");
    assert_eq!(run(&mut s, 0, "ZMPOP 0 z MIN"), err(NUMKEYS_NOT_POSITIVE));
    assert_eq!(run(&mut s, 0, "ZMPOP a z MIN"), err(NUMKEYS_NOT_POSITIVE));
    assert_eq!(run(&mut s, 0, "ZMPOP 1 z bad"), err(SYNTAX));
    assert_eq!(run(&mut s, 0, "ZMPOP 1 z MAX MIN"), err(SYNTAX));
    assert_eq!(run(&mut s, 0, "ZMPOP 1 z COUNT"), err(SYNTAX));
    assert_eq!(run(&mut s, 0, "ZMPOP 1 z MIN COUNT 1 COUNT 2"), err(SYNTAX));
    assert_eq!(
        run(&mut s, 0, "ZMPOP 1 z MIN COUNT 0"),
        err(COUNT_NOT_POSITIVE)
    );
    assert_eq!(
        run(&mut s, 0, "ZMPOP 1 z MIN COUNT a"),
        err(COUNT_NOT_POSITIVE)
    );
    assert_eq!(run(&mut s, 0, "ZMPOP 5 z MIN"), err(SYNTAX));
    run(&mut s, 0, "SET str v");
    assert_eq!(run(&mut s, 0, "ZPOPMIN str"), err(WRONGTYPE));
    assert_eq!(run(&mut s, 0, "ZPOPMIN str 0"), err(WRONGTYPE));
    assert_eq!(run(&mut s, 0, "ZMPOP 2 nope str MIN"), err(WRONGTYPE));
    // The first key that exists answers; a wrong type after it is not looked at.
    assert_eq!(
        run(&mut s, 0, "ZMPOP 2 z2 str MAX"),
        "*2\r\n$2\r\nz2\r\n*1\r\n*2\r\n$1\r\nc\r\n$1\r\n3\r\n"
    );
    s.check();
}

#[test]
fn blocking_pops_answer_or_would_block() {
    let mut s = store();
    assert_eq!(
        attempt(&mut s, "BZPOPMIN a b 0"),
        (String::new(), Attempt::WouldBlock { timeout_ms: None })
    );
    assert_eq!(
        attempt(&mut s, "BZPOPMAX a 1.5"),
        (
            String::new(),
            Attempt::WouldBlock {
                timeout_ms: Some(1500)
            }
        )
    );
    assert_eq!(
        attempt(&mut s, "BZPOPMAX a 0.0001"),
        (
            String::new(),
            Attempt::WouldBlock {
                timeout_ms: Some(1)
            }
        )
    );
    assert_eq!(attempt(&mut s, "BZPOPMIN a -1").0, err(TIMEOUT_NEGATIVE));
    assert_eq!(attempt(&mut s, "BZPOPMIN a x").0, err(TIMEOUT_NOT_FLOAT));
    assert_eq!(
        attempt(&mut s, "BZPOPMIN a 1e300").0,
        err(TIMEOUT_OUT_OF_RANGE)
    );
    run(&mut s, 0, "ZADD b 1 x 2 y");
    assert_eq!(
        attempt(&mut s, "BZPOPMIN a b 0"),
        (arr(&["b", "x", "1"]), Attempt::Answered)
    );
    assert_eq!(
        attempt(&mut s, "BZPOPMAX a b 0"),
        (arr(&["b", "y", "2"]), Attempt::Answered)
    );
    assert_eq!(run(&mut s, 0, "EXISTS b"), ":0\r\n");
    run(&mut s, 0, "ZADD b 1 x 2 y 3 z");
    assert_eq!(
        attempt(&mut s, "BZMPOP 0 2 a b MAX COUNT 2"),
        (
            "*2\r\n$1\r\nb\r\n*2\r\n*2\r\n$1\r\nz\r\n$1\r\n3\r\n*2\r\n$1\r\ny\r\n$1\r\n2\r\n"
                .into(),
            Attempt::Answered
        )
    );
    assert_eq!(
        attempt(&mut s, "BZMPOP 2 1 a MIN"),
        (
            String::new(),
            Attempt::WouldBlock {
                timeout_ms: Some(2000)
            }
        )
    );
    assert_eq!(
        attempt(&mut s, "BZMPOP 1 0 a MIN").0,
        err(NUMKEYS_NOT_POSITIVE)
    );
    assert_eq!(
        attempt(&mut s, "BZMPOP 1 1 a MIN COUNT 0").0,
        err(COUNT_NOT_POSITIVE)
    );
    // Arguments are checked before the timeout.
    assert_eq!(attempt(&mut s, "BZMPOP x 1 a bad").0, err(SYNTAX));
    assert_eq!(
        attempt(&mut s, "BZMPOP -1 1 a MIN").0,
        err(TIMEOUT_NEGATIVE)
    );
    run(&mut s, 0, "SET str v");
    assert_eq!(attempt(&mut s, "BZPOPMIN str 0").0, err(WRONGTYPE));
    assert_eq!(attempt(&mut s, "BZMPOP 0 1 str MIN").0, err(WRONGTYPE));
    // Where it cannot wait (exec_key: MULTI, scripts), an empty attempt times out at once.
    assert_eq!(run(&mut s, 0, "BZPOPMIN a 0"), "*-1\r\n");
    assert_eq!(run(&mut s, 0, "BZMPOP 0 1 a MIN"), "*-1\r\n");
    assert_eq!(run(&mut s, 0, "BZPOPMIN b 0"), arr(&["b", "x", "1"]));
    s.check();
}

#[test]
fn set_operations() {
    let mut s = store();
    run(&mut s, 0, "ZADD a 1 x 2 y 3 z");
    run(&mut s, 0, "ZADD b 10 y 20 z 30 w");
    assert_eq!(run(&mut s, 0, "ZUNION 2 a b"), arr(&["x", "y", "z", "w"]));
    assert_eq!(
        run(&mut s, 0, "ZUNION 2 a b WITHSCORES"),
        arr(&["x", "1", "y", "12", "z", "23", "w", "30"])
    );
    assert_eq!(
        run(
            &mut s,
            0,
            "ZUNION 2 a b WEIGHTS 2 1 AGGREGATE MAX WITHSCORES"
        ),
        arr(&["x", "2", "y", "10", "z", "20", "w", "30"])
    );
    assert_eq!(
        run(&mut s, 0, "ZINTER 2 a b AGGREGATE MIN WITHSCORES"),
        arr(&["y", "2", "z", "3"])
    );
    assert_eq!(run(&mut s, 0, "ZINTER 2 a nope"), "*0\r\n");
    assert_eq!(run(&mut s, 0, "ZDIFF 2 a b WITHSCORES"), arr(&["x", "1"]));
    assert_eq!(run(&mut s, 0, "ZDIFF 1 a"), arr(&["x", "y", "z"]));
    assert_eq!(run(&mut s, 0, "ZINTERCARD 2 a b"), ":2\r\n");
    assert_eq!(run(&mut s, 0, "ZINTERCARD 2 a b LIMIT 1"), ":1\r\n");
    assert_eq!(
        run(&mut s, 0, "ZINTERCARD 2 a b LIMIT -1"),
        err(LIMIT_NEGATIVE)
    );
    assert_eq!(run(&mut s, 0, "ZINTERCARD 1 a a"), err(SYNTAX));
    assert_eq!(run(&mut s, 0, "ZINTERCARD 1 a WITHSCORES"), err(SYNTAX));
    assert_eq!(run(&mut s, 0, "ZUNIONSTORE d 2 a b"), ":4\r\n");
    assert_eq!(
        run(&mut s, 0, "ZRANGE d 0 -1 WITHSCORES"),
        arr(&["x", "1", "y", "12", "z", "23", "w", "30"])
    );
    assert_eq!(run(&mut s, 0, "ZINTERSTORE d 2 a b WEIGHTS 1 0"), ":2\r\n");
    assert_eq!(
        run(&mut s, 0, "ZRANGE d 0 -1 WITHSCORES"),
        arr(&["y", "2", "z", "3"])
    );
    assert_eq!(run(&mut s, 0, "ZDIFFSTORE d 2 b a"), ":1\r\n");
    assert_eq!(
        run(&mut s, 0, "ZRANGE d 0 -1 WITHSCORES"),
        arr(&["w", "30"])
    );
    assert_eq!(run(&mut s, 0, "ZDIFFSTORE d 2 a a"), ":0\r\n");
    assert_eq!(run(&mut s, 0, "EXISTS d"), ":0\r\n");
    assert_eq!(
        run(&mut s, 0, "ZUNIONSTORE d 2 a b WITHSCORES"),
        err(SYNTAX)
    );
    assert_eq!(run(&mut s, 0, "ZDIFF 2 a b WEIGHTS 1 2"), err(SYNTAX));
    assert_eq!(
        run(&mut s, 0, "ZUNION 2 a b WEIGHTS 1 x"),
        err(WEIGHT_NOT_FLOAT)
    );
    assert_eq!(run(&mut s, 0, "ZUNION 2 a b AGGREGATE AVG"), err(SYNTAX));
    assert_eq!(
        run(&mut s, 0, "ZUNION 0 a"),
        err("ERR at least 1 input key is needed for 'zunion' command")
    );
    assert_eq!(
        run(&mut s, 0, "ZUNIONSTORE d 0 a"),
        err("ERR at least 1 input key is needed for 'zunionstore' command")
    );
    assert_eq!(run(&mut s, 0, "ZUNION 3 a b"), err(SYNTAX));
    assert_eq!(run(&mut s, 0, "ZUNION x a"), err(NOT_INT));
    run(&mut s, 0, "SET str v");
    assert_eq!(run(&mut s, 0, "ZUNION 2 a str"), err(WRONGTYPE));
    // The keys are checked before the options.
    assert_eq!(run(&mut s, 0, "ZUNION 2 a str BAD"), err(WRONGTYPE));
    // +inf and -inf add up to 0; a weight of 0 times inf is 0.
    run(&mut s, 0, "ZADD pi inf m");
    run(&mut s, 0, "ZADD ni -inf m");
    assert_eq!(
        run(&mut s, 0, "ZUNION 2 pi ni WITHSCORES"),
        arr(&["m", "0"])
    );
    assert_eq!(
        run(&mut s, 0, "ZUNION 1 pi WEIGHTS 0 WITHSCORES"),
        arr(&["m", "0"])
    );
    s.check();
}

#[test]
fn zrandmember_and_zscan() {
    let mut s = store();
    assert_eq!(run(&mut s, 0, "ZRANDMEMBER nope"), "$-1\r\n");
    assert_eq!(run(&mut s, 0, "ZRANDMEMBER nope 5"), "*0\r\n");
    run(&mut s, 0, "ZADD z 1 a 2 b 3 c");
    assert!(["$1\r\na\r\n", "$1\r\nb\r\n", "$1\r\nc\r\n"]
        .contains(&run(&mut s, 0, "ZRANDMEMBER z").as_str()));
    assert_eq!(run(&mut s, 0, "ZRANDMEMBER z 0"), "*0\r\n");
    assert_eq!(
        run(&mut s, 0, "ZRANDMEMBER z 3 WITHSCORES"),
        arr(&["c", "3", "b", "2", "a", "1"])
    );
    assert_eq!(run(&mut s, 0, "ZRANDMEMBER z 2").matches('$').count(), 2);
    assert_eq!(run(&mut s, 0, "ZRANDMEMBER z -10").matches('$').count(), 10);
    assert_eq!(run(&mut s, 0, "ZRANDMEMBER z -9223372036854775808"), err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"));
    assert_eq!(
        run(&mut s, 0, "ZRANDMEMBER z -9223372036854770000 WITHSCORES"),
        err(OUT_OF_RANGE)
    );
    assert_eq!(run(&mut s, 0, "ZRANDMEMBER z 1 bad"), err(SYNTAX));
    assert_eq!(
        run(&mut s, 0, "ZRANDMEMBER z -999999999999"),
        err(ZRANDMEMBER_TOO_LARGE)
    );
    assert_eq!(
        run(&mut s, 0, "ZSCAN z 0"),
        format!(
            "*2\r\n{}{}",
            bulk("0"),
            arr(&["a", "1", "b", "2", "c", "3"])
        )
    );
    assert_eq!(
        run(&mut s, 0, "ZSCAN z 0 MATCH b*"),
        format!("*2\r\n{}{}", bulk("0"), arr(&["b", "2"]))
    );
    assert_eq!(run(&mut s, 0, "ZSCAN z x"), err(INVALID_CURSOR));
    assert_eq!(run(&mut s, 0, "ZSCAN z 0 COUNT 0"), err(SYNTAX));
    assert_eq!(run(&mut s, 0, "ZSCAN z 0 BAD 1"), err(SYNTAX));
    assert_eq!(
        run(&mut s, 0, "ZSCAN nope 0 BAD 1"),
        format!("*2\r\n{}*0\r\n", bulk("0"))
    );
    // A large set scans in pieces by score; every member comes back once per scan.
    for i in 0..1000 {
        run(&mut s, 0, &format!("ZADD big {} m{i}", i / 10));
    }
    assert_eq!(encoding(&mut s, "big"), "skiplist");
    let mut seen = std::collections::HashSet::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        let reply = run(&mut s, 0, &format!("ZSCAN big {cursor} COUNT 25"));
        let lines: Vec<&str> = reply.split("\r\n").collect();
        cursor = lines[2].to_string();
        for pair in lines[4..].chunks(4) {
            if pair.len() == 4 {
                assert!(seen.insert(pair[1].to_string()), "{} twice", pair[1]);
            }
        }
        calls += 1;
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 1000);
    assert!(calls >= 30, "{calls}");
}

#[test]
fn large_sets_behave_the_same() {
    let mut s = store();
    for i in 0..3000 {
        run(&mut s, 0, &format!("ZADD big {} m{i:04}", i % 100));
    }
    s.check();
    assert_eq!(run(&mut s, 0, "ZCARD big"), ":3000\r\n");
    assert_eq!(run(&mut s, 0, "ZCOUNT big 10 (20"), ":300\r\n");
    assert_eq!(run(&mut s, 0, "ZRANK big m0001"), ":30\r\n");
    assert_eq!(
        run(&mut s, 0, "ZRANGE big 0 2"),
        arr(&["m0000", "m0100", "m0200"])
    );
    assert_eq!(
        run(&mut s, 0, "ZRANGEBYSCORE big 99 99 LIMIT 28 5"),
        arr(&["m2899", "m2999"])
    );
    assert_eq!(run(&mut s, 0, "ZREMRANGEBYSCORE big 0 49"), ":1500\r\n");
    assert_eq!(run(&mut s, 0, "ZINCRBY big -100 m0099"), bulk("-1"));
    assert_eq!(run(&mut s, 0, "ZPOPMIN big"), arr(&["m0099", "-1"]));
    assert_eq!(run(&mut s, 0, "ZINTERCARD 2 big big"), ":1499\r\n");
    assert_eq!(run(&mut s, 0, "ZUNIONSTORE u 1 big WEIGHTS 2"), ":1499\r\n");
    assert_eq!(run(&mut s, 0, "ZSCORE u m0050"), bulk("100"));
    assert_eq!(run(&mut s, 0, "ZRANGESTORE small big 0 9"), ":10\r\n");
    assert_eq!(encoding(&mut s, "small"), "listpack");
    s.check();
    // Memory is charged and given back.
    let used = s.used_bytes;
    assert!(used > 1499 * 10);
    run(&mut s, 0, "DEL big u small");
    assert!(s.used_bytes < used / 10, "{}", s.used_bytes);
    s.check();
}

#[test]
fn plain_sets_are_inputs_with_score_one() {
    let mut s = store();
    run(&mut s, 0, "SADD st a b 7");
    run(&mut s, 0, "ZADD z 2 a 5 c");
    assert_eq!(
        run(&mut s, 0, "ZUNION 2 z st WITHSCORES"),
        "*8\r\n$1\r\n7\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n1\r\n$1\r\na\r\n$1\r\n3\r\n$1\r\nc\r\n$1\r\n5\r\n"
    );
    assert_eq!(
        run(&mut s, 0, "ZINTERSTORE d 2 z st WEIGHTS 1 10"),
        ":1\r\n"
    );
    assert_eq!(run(&mut s, 0, "ZSCORE d a"), "$2\r\n12\r\n");
    assert_eq!(
        run(&mut s, 0, "ZDIFF 2 st z"),
        "*2\r\n$1\r\n7\r\n$1\r\nb\r\n"
    );
    s.check();
}
