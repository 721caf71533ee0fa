//! Unit tests of the list commands, run through `cache::cmd::exec_key` and
//! `try_blocking` against a store, RESP2 and RESP3.

use super::super::testing::{run, store};
use super::super::{exec_key, try_blocking, Attempt, OomCheck};
use crate::cache::slot::key_slot;
use crate::cache::store::{Found, Store};
use crate::proto::resp::args::split_words;
use crate::proto::resp::command::lookup;
use crate::proto::resp::errors::*;
use crate::proto::resp::write::Out;
use crate::proto::resp::Args;

/// Run a command line with the reply in RESP3.
fn run3(s: &mut Store, line: &str) -> String {
    let (src, ranges) = split_words(line);
    let a = Args {
        src: &src,
        ranges: &ranges,
    };
    let spec = lookup(a.get(0)).expect("known command");
    let mut buf = Vec::new();
    let mut out = Out::new(&mut buf, true);
    let slot = key_slot(a.get(1));
    exec_key(s, spec, &a, slot, 0, OomCheck::Refuse, &mut out);
    String::from_utf8(buf).unwrap()
}

/// One attempt of a blocking command, at `now` ms.
fn attempt(s: &mut Store, now: u64, line: &str) -> (Attempt, String) {
    let (src, ranges) = split_words(line);
    let a = Args {
        src: &src,
        ranges: &ranges,
    };
    let spec = lookup(a.get(0)).expect("known command");
    assert!(spec.arity_ok(a.len()), "arity for {line}");
    let mut buf = Vec::new();
    let mut out = Out::new(&mut buf, false);
    let r = try_blocking(s, spec, &a, now, &mut out);
    (r, String::from_utf8(buf).unwrap())
}

fn err(e: &str) -> String {
    format!("-{e}\r\n")
}

/// A bulk-string array reply of these words.
fn arr(words: &[&str]) -> String {
    let mut s = format!("*{}\r\n", words.len());
    for w in words {
        s.push_str(&format!("${}\r\n{w}\r\n", w.len()));
    }
    s
}

fn bulk(w: &str) -> String {
    format!("${}\r\n{w}\r\n", w.len())
}

fn lrange(s: &mut Store, key: &str) -> String {
    run(s, 0, &format!("LRANGE {key} 0 -1"))
}

#[test]
fn push_pop_len_and_wrongtype() {
    let mut s = store();
    assert_eq!(run(&mut s, 0, "LPUSH l a b c d"), ":4\r\n");
    assert_eq!(run(&mut s, 0, "RPUSH l 0 1 2 3"), ":8\r\n");
    assert_eq!(
        lrange(&mut s, "l"),
        arr(&["d", "c", "b", "a", "0", "1", "2", "3"])
    );
    assert_eq!(run(&mut s, 0, "LLEN l"), ":8\r\n");
    assert_eq!(run(&mut s, 0, "LPOP l"), bulk("d"));
    assert_eq!(run(&mut s, 0, "RPOP l"), bulk("3"));
    assert_eq!(run(&mut s, 0, "TYPE l"), "+list\r\n");
    assert_eq!(run(&mut s, 0, "LPUSHX nope a"), ":0\r\n");
    assert_eq!(run(&mut s, 0, "EXISTS nope"), ":0\r\n");
    assert_eq!(run(&mut s, 0, "LPUSHX l x y"), ":8\r\n");
    assert_eq!(run(&mut s, 0, "RPUSHX l z"), ":9\r\n");
    assert_eq!(
        lrange(&mut s, "l"),
        arr(&["y", "x", "c", "b", "a", "0", "1", "2", "z"])
    );
    s.check();
    assert_eq!(run(&mut s, 0, "SET str v"), "+OK\r\n");
    let wrong = err(WRONGTYPE);
    for line in [
        "LPUSH str a",
        "RPUSH str a",
        "LPUSHX str a",
        "RPUSHX str a",
        "LPOP str",
        "RPOP str 2",
        "LLEN str",
        "LRANGE str 0 -1",
        "LINDEX str 0",
        "LSET str 0 a",
        "LINSERT str BEFORE a b",
        "LREM str 0 a",
        "LTRIM str 0 1",
        "LPOS str a",
        "LMOVE str l LEFT LEFT",
        "LMOVE l str LEFT LEFT",
        "RPOPLPUSH str l",
        "LMPOP 1 str LEFT",
        "BLPOP str 0",
        "BRPOP nope str 0",
        "BLMOVE str l LEFT LEFT 0",
        "BRPOPLPUSH l str 0",
        "BLMPOP 0 2 nope str RIGHT",
    ] {
        assert_eq!(run(&mut s, 0, line), wrong, "{line}");
    }
    assert_eq!(run(&mut s, 0, "GET l"), wrong);
    // Nothing moved on the refused LMOVE/BRPOPLPUSH into a string.
    assert_eq!(run(&mut s, 0, "LLEN l"), ":9\r\n");
    assert_eq!(run(&mut s, 0, "GET str"), bulk("v"));
    s.check();
}

#[test]
fn pops_with_count() {
    let mut s = store();
    assert_eq!(run(&mut s, 0, "LPUSH c aa bb cc dd ee ff gg"), ":7\r\n");
    assert_eq!(run(&mut s, 0, "LPOP c 1"), arr(&["gg"]));
    assert_eq!(run(&mut s, 0, "LPOP c 2"), arr(&["ff", "ee"]));
    assert_eq!(run(&mut s, 0, "RPOP c 2"), arr(&["aa", "bb"]));
    assert_eq!(run(&mut s, 0, "RPOP c 1"), arr(&["cc"]));
    assert_eq!(run(&mut s, 0, "LPOP c 0"), "*0\r\n");
    assert_eq!(run(&mut s, 0, "RPOP c 123"), arr(&["dd"]));
    assert_eq!(run(&mut s, 0, "EXISTS c"), ":0\r\n");
    assert_eq!(run(&mut s, 0, "LPOP c"), "$-1\r\n");
    assert_eq!(run(&mut s, 0, "LPOP c 0"), "*-1\r\n");
    assert_eq!(run(&mut s, 0, "RPOP c 1"), "*-1\r\n");
    assert_eq!(run(&mut s, 0, "LPOP c -123"), err(MUST_BE_POSITIVE));
    assert_eq!(run(&mut s, 0, "LPOP c x"), err(MUST_BE_POSITIVE));
    assert_eq!(run(&mut s, 0, "LPOP c 1 1"), err(&wrong_args("lpop")));
    assert_eq!(run(&mut s, 0, "RPOP c 2 2"), err(&wrong_args("rpop")));
    // RESP3: nulls are `_`, an empty array stays an array.
    assert_eq!(run3(&mut s, "LPOP c"), "_\r\n");
    assert_eq!(run3(&mut s, "RPOP c 3"), "_\r\n");
    assert_eq!(run(&mut s, 0, "RPUSH c zero"), ":1\r\n");
    assert_eq!(run3(&mut s, "LPOP c 0"), "*0\r\n");
    assert_eq!(run3(&mut s, "RPOP c 5"), arr(&["zero"]));
    s.check();
}

#[test]
fn lrange_lindex_and_negative_indexes() {
    let mut s = store();
    let big = "x".repeat(9000);
    run(&mut s, 0, &format!("RPUSH l {big} 1 2 3 4 5 6 7 8 9"));
    assert_eq!(
        run(&mut s, 0, "LRANGE l 1 -2"),
        arr(&["1", "2", "3", "4", "5", "6", "7", "8"])
    );
    assert_eq!(run(&mut s, 0, "LRANGE l -3 -1"), arr(&["7", "8", "9"]));
    assert_eq!(run(&mut s, 0, "LRANGE l 4 4"), arr(&["4"]));
    assert_eq!(run(&mut s, 0, "LRANGE l 6 2"), "*0\r\n");
    assert_eq!(run(&mut s, 0, "LRANGE l -1 -2"), "*0\r\n");
    assert_eq!(run(&mut s, 0, "LRANGE l 0 -10"), arr(&[&big]));
    assert_eq!(run(&mut s, 0, "LRANGE l 0 -11"), "*0\r\n");
    assert_eq!(run(&mut s, 0, "LRANGE l 10 20"), "*0\r\n");
    assert_eq!(
        run(
            &mut s,
            0,
            "LRANGE l -9223372036854775808 9223372036854775807"
        ),
        run(&mut s, 0, "LRANGE l 0 -1")
    );
    assert_eq!(run(&mut s, 0, "LRANGE nosuch 0 1"), "*0\r\n");
    assert_eq!(run(&mut s, 0, "LRANGE l a 1"), err(NOT_INT));
    assert_eq!(run(&mut s, 0, "LRANGE nosuch 0 b"), err(NOT_INT));
    assert_eq!(run(&mut s, 0, "LINDEX l 0"), bulk(&big));
    assert_eq!(run(&mut s, 0, "LINDEX l 3"), bulk("3"));
    assert_eq!(run(&mut s, 0, "LINDEX l -1"), bulk("9"));
    assert_eq!(run(&mut s, 0, "LINDEX l -10"), bulk(&big));
    assert_eq!(run(&mut s, 0, "LINDEX l -11"), "$-1\r\n");
    assert_eq!(run(&mut s, 0, "LINDEX l 10"), "$-1\r\n");
    assert_eq!(run(&mut s, 0, "LINDEX l x"), err(NOT_INT));
    // The key is looked up first: a missing key answers null whatever the index.
    assert_eq!(run(&mut s, 0, "LINDEX nosuch x"), "$-1\r\n");
    assert_eq!(run3(&mut s, "LINDEX nosuch 0"), "_\r\n");
    // A numbered list, read back by position from both ends.
    let nums: Vec<String> = (0..500).map(|i| i.to_string()).collect();
    run(&mut s, 0, &format!("RPUSH n {}", nums.join(" ")));
    for i in 0..500 {
        assert_eq!(run(&mut s, 0, &format!("LINDEX n {i}")), bulk(&nums[i]));
        let neg = format!("LINDEX n {}", -(i as i64) - 1);
        assert_eq!(run(&mut s, 0, &neg), bulk(&nums[499 - i]));
    }
    s.check();
}

#[test]
fn lset_linsert() {
    let mut s = store();
    let big = "y".repeat(9000);
    run(&mut s, 0, &format!("RPUSH l 99 98 {big} 96 95"));
    assert_eq!(run(&mut s, 0, "LSET l 1 foo"), "+OK\r\n");
    assert_eq!(run(&mut s, 0, "LSET l -1 bar"), "+OK\r\n");
    assert_eq!(lrange(&mut s, "l"), arr(&["99", "foo", &big, "96", "bar"]));
    assert_eq!(run(&mut s, 0, "LSET l 10 foo"), err(INDEX_OUT_OF_RANGE));
    assert_eq!(run(&mut s, 0, "LSET l -6 foo"), err(INDEX_OUT_OF_RANGE));
    assert_eq!(run(&mut s, 0, "LSET l x foo"), err(NOT_INT));
    assert_eq!(run(&mut s, 0, "LSET nosuch 10 foo"), err(NO_SUCH_KEY));
    assert_eq!(run(&mut s, 0, "LSET nosuch x foo"), err(NO_SUCH_KEY));
    s.check();

    run(&mut s, 0, &format!("RPUSH x a {big} c d"));
    assert_eq!(run(&mut s, 0, "LINSERT x before c zz"), ":5\r\n");
    assert_eq!(lrange(&mut s, "x"), arr(&["a", &big, "zz", "c", "d"]));
    assert_eq!(run(&mut s, 0, "LINSERT x after c yy"), ":6\r\n");
    assert_eq!(run(&mut s, 0, "LINSERT x AFTER d dd"), ":7\r\n");
    assert_eq!(run(&mut s, 0, "LINSERT x after bad ddd"), ":-1\r\n");
    assert_eq!(run(&mut s, 0, "LINSERT x BEFORE a aa"), ":8\r\n");
    assert_eq!(run(&mut s, 0, "LINSERT x before bad aaa"), ":-1\r\n");
    assert_eq!(
        lrange(&mut s, "x"),
        arr(&["aa", "a", &big, "zz", "c", "yy", "d", "dd"])
    );
    assert_eq!(run(&mut s, 0, "LINSERT x before aa 42"), ":9\r\n");
    assert_eq!(run(&mut s, 0, "LRANGE x 0 0"), arr(&["42"]));
    assert_eq!(run(&mut s, 0, "LINSERT x aft3r aa 42"), err(SYNTAX));
    assert_eq!(run(&mut s, 0, "LINSERT nosuch aft3r aa 42"), err(SYNTAX));
    assert_eq!(run(&mut s, 0, "LINSERT nosuch after aa 42"), ":0\r\n");
    assert_eq!(run(&mut s, 0, "EXISTS nosuch"), ":0\r\n");
    // Integers match their text: the pivot 42 finds the element pushed as "42".
    assert_eq!(run(&mut s, 0, "LINSERT x after 42 43"), ":10\r\n");
    assert_eq!(run(&mut s, 0, "LRANGE x 0 1"), arr(&["42", "43"]));
    s.check();
}

#[test]
fn lrem_and_ltrim() {
    let mut s = store();
    let e = "z".repeat(9000);
    run(
        &mut s,
        0,
        &format!("RPUSH l {e} foo bar foobar foobared zap bar test foo"),
    );
    assert_eq!(run(&mut s, 0, "LREM l 0 bar"), ":2\r\n");
    assert_eq!(
        lrange(&mut s, "l"),
        arr(&[&e, "foo", "foobar", "foobared", "zap", "test", "foo"])
    );
    assert_eq!(run(&mut s, 0, "LREM l 1 foo"), ":1\r\n");
    assert_eq!(run(&mut s, 0, "LREM l 1 nosuchelement"), ":0\r\n");
    assert_eq!(
        lrange(&mut s, "l"),
        arr(&[&e, "foobar", "foobared", "zap", "test", "foo"])
    );
    run(&mut s, 0, "DEL l");
    run(
        &mut s,
        0,
        &format!("RPUSH l {e} foo bar foobar foobared zap bar test foo foo"),
    );
    assert_eq!(run(&mut s, 0, "LREM l -1 bar"), ":1\r\n");
    assert_eq!(
        lrange(&mut s, "l"),
        arr(&[&e, "foo", "bar", "foobar", "foobared", "zap", "test", "foo", "foo"])
    );
    assert_eq!(run(&mut s, 0, "LREM l -2 foo"), ":2\r\n");
    assert_eq!(
        lrange(&mut s, "l"),
        arr(&[&e, "foo", "bar", "foobar", "foobared", "zap", "test"])
    );
    run(&mut s, 0, &format!("RPUSH o {e} 1 2 3"));
    assert_eq!(run(&mut s, 0, "LREM o 1 2"), ":1\r\n");
    assert_eq!(run(&mut s, 0, "LLEN o"), ":3\r\n");
    assert_eq!(run(&mut s, 0, "LREM o x 2"), err(NOT_INT));
    assert_eq!(run(&mut s, 0, "LREM nosuch 0 a"), ":0\r\n");
    assert_eq!(run(&mut s, 0, "LREM o -9223372036854775808 1"), ":1\r\n");
    // Removing everything removes the key.
    run(&mut s, 0, "RPUSH all a a a");
    assert_eq!(run(&mut s, 0, "LREM all 0 a"), ":3\r\n");
    assert_eq!(run(&mut s, 0, "EXISTS all"), ":0\r\n");
    s.check();

    let trim = |s: &mut Store, min: &str, max: &str| {
        run(s, 0, "DEL t");
        run(s, 0, &format!("RPUSH t 1 2 3 4 {e}"));
        assert_eq!(run(s, 0, &format!("LTRIM t {min} {max}")), "+OK\r\n");
        let r = lrange(s, "t");
        s.check();
        r
    };
    assert_eq!(trim(&mut s, "0", "0"), arr(&["1"]));
    assert_eq!(trim(&mut s, "0", "1"), arr(&["1", "2"]));
    assert_eq!(trim(&mut s, "1", "2"), arr(&["2", "3"]));
    assert_eq!(trim(&mut s, "1", "-1"), arr(&["2", "3", "4", &e]));
    assert_eq!(trim(&mut s, "1", "-2"), arr(&["2", "3", "4"]));
    assert_eq!(trim(&mut s, "-2", "-1"), arr(&["4", &e]));
    assert_eq!(trim(&mut s, "-1", "-1"), arr(&[&e]));
    assert_eq!(trim(&mut s, "-5", "-1"), arr(&["1", "2", "3", "4", &e]));
    assert_eq!(trim(&mut s, "-10", "10"), arr(&["1", "2", "3", "4", &e]));
    assert_eq!(trim(&mut s, "0", "-5"), arr(&["1"]));
    assert_eq!(trim(&mut s, "0", "-6"), "*0\r\n");
    assert_eq!(run(&mut s, 0, "EXISTS t"), ":0\r\n");
    assert_eq!(run(&mut s, 0, "LTRIM nosuch 0 1"), "+OK\r\n");
    assert_eq!(run(&mut s, 0, "LTRIM nosuch 0 x"), err(NOT_INT));
    s.check();
}

#[test]
fn lpos_options() {
    let mut s = store();
    run(&mut s, 0, "RPUSH l a b c 1 2 3 c c");
    assert_eq!(run(&mut s, 0, "LPOS l a"), ":0\r\n");
    assert_eq!(run(&mut s, 0, "LPOS l c"), ":2\r\n");
    assert_eq!(run(&mut s, 0, "LPOS l 2"), ":4\r\n");
    assert_eq!(run(&mut s, 0, "LPOS l c RANK 1"), ":2\r\n");
    assert_eq!(run(&mut s, 0, "LPOS l c RANK 2"), ":6\r\n");
    assert_eq!(run(&mut s, 0, "LPOS l c RANK 4"), "$-1\r\n");
    assert_eq!(run(&mut s, 0, "LPOS l c RANK -1"), ":7\r\n");
    assert_eq!(run(&mut s, 0, "LPOS l c RANK -2"), ":6\r\n");
    assert_eq!(run(&mut s, 0, "LPOS l c RANK 0"), err(LPOS_RANK_ZERO));
    assert_eq!(run(&mut s, 0, "LPOS l c RANK x"), err(NOT_INT));
    assert_eq!(
        run(&mut s, 0, "LPOS l c COUNT 0"),
        "*3\r\n:2\r\n:6\r\n:7\r\n"
    );
    assert_eq!(run(&mut s, 0, "LPOS l c COUNT 1"), "*1\r\n:2\r\n");
    assert_eq!(run(&mut s, 0, "LPOS l c COUNT 2"), "*2\r\n:2\r\n:6\r\n");
    assert_eq!(
        run(&mut s, 0, "LPOS l c COUNT 100"),
        "*3\r\n:2\r\n:6\r\n:7\r\n"
    );
    assert_eq!(
        run(&mut s, 0, "LPOS l c COUNT 0 RANK 2"),
        "*2\r\n:6\r\n:7\r\n"
    );
    assert_eq!(
        run(&mut s, 0, "LPOS l c COUNT 2 RANK -1"),
        "*2\r\n:7\r\n:6\r\n"
    );
    assert_eq!(run(&mut s, 0, "LPOS nosuch c COUNT 0 RANK 2"), "*0\r\n");
    assert_eq!(run(&mut s, 0, "LPOS nosuch c"), "$-1\r\n");
    assert_eq!(run(&mut s, 0, "LPOS l x COUNT 2 RANK -1"), "*0\r\n");
    assert_eq!(run(&mut s, 0, "LPOS l x RANK -1"), "$-1\r\n");
    assert_eq!(run(&mut s, 0, "LPOS l a COUNT 0 MAXLEN 1"), "*1\r\n:0\r\n");
    assert_eq!(run(&mut s, 0, "LPOS l c COUNT 0 MAXLEN 1"), "*0\r\n");
    assert_eq!(run(&mut s, 0, "LPOS l c COUNT 0 MAXLEN 3"), "*1\r\n:2\r\n");
    assert_eq!(
        run(&mut s, 0, "LPOS l c COUNT 0 MAXLEN 3 RANK -1"),
        "*2\r\n:7\r\n:6\r\n"
    );
    assert_eq!(
        run(&mut s, 0, "LPOS l c COUNT 0 MAXLEN 7 RANK 2"),
        "*1\r\n:6\r\n"
    );
    assert_eq!(run(&mut s, 0, "LPOS l c MAXLEN 2"), "$-1\r\n");
    assert_eq!(
        run(&mut s, 0, "LPOS l c COUNT -1"),
        err(LPOS_COUNT_NEGATIVE)
    );
    assert_eq!(run(&mut s, 0, "LPOS l c COUNT x"), err(LPOS_COUNT_NEGATIVE));
    assert_eq!(
        run(&mut s, 0, "LPOS l c MAXLEN -1"),
        err(LPOS_MAXLEN_NEGATIVE)
    );
    assert_eq!(run(&mut s, 0, "LPOS l c COUNT"), err(SYNTAX));
    assert_eq!(run(&mut s, 0, "LPOS l c FOO 1"), err(SYNTAX));
    // Options are checked before the key.
    run(&mut s, 0, "SET str v");
    assert_eq!(run(&mut s, 0, "LPOS str c RANK 0"), err(LPOS_RANK_ZERO));
    run(&mut s, 0, "DEL l");
    run(&mut s, 0, "LPUSH l a");
    assert_eq!(run(&mut s, 0, "LPOS l b COUNT 10 RANK 5"), "*0\r\n");
    assert_eq!(run3(&mut s, "LPOS l b"), "_\r\n");
    s.check();
}

#[test]
fn lmove_and_rpoplpush() {
    let mut s = store();
    let big = "w".repeat(9000);
    run(&mut s, 0, &format!("RPUSH s{{t}} a {big} c d"));
    assert_eq!(run(&mut s, 0, "RPOPLPUSH s{t} d{t}"), bulk("d"));
    assert_eq!(run(&mut s, 0, "RPOPLPUSH s{t} d{t}"), bulk("c"));
    assert_eq!(lrange(&mut s, "s{t}"), arr(&["a", &big]));
    assert_eq!(lrange(&mut s, "d{t}"), arr(&["c", "d"]));
    for (from, to) in [
        ("left", "left"),
        ("left", "right"),
        ("right", "left"),
        ("right", "right"),
    ] {
        run(&mut s, 0, "DEL s{t} d{t}");
        if from == "right" {
            run(&mut s, 0, &format!("RPUSH s{{t}} c d {big} a"));
        } else {
            run(&mut s, 0, &format!("RPUSH s{{t}} a {big} c d"));
        }
        let mv = format!("LMOVE s{{t}} d{{t}} {from} {to}");
        assert_eq!(run(&mut s, 0, &mv), bulk("a"));
        assert_eq!(run(&mut s, 0, &mv), bulk(&big));
        assert_eq!(lrange(&mut s, "s{t}"), arr(&["c", "d"]));
        let want = if to == "right" {
            ["a", &big]
        } else {
            [&big, "a"]
        };
        assert_eq!(lrange(&mut s, "d{t}"), arr(&want));
        s.check();
    }
    // The same list as source and destination: a rotation.
    run(&mut s, 0, "DEL m");
    run(&mut s, 0, "RPUSH m a b c");
    assert_eq!(run(&mut s, 0, "RPOPLPUSH m m"), bulk("c"));
    assert_eq!(lrange(&mut s, "m"), arr(&["c", "a", "b"]));
    assert_eq!(run(&mut s, 0, "LMOVE m m LEFT RIGHT"), bulk("c"));
    assert_eq!(lrange(&mut s, "m"), arr(&["a", "b", "c"]));
    // A one-element list rotated onto itself keeps its key and its TTL.
    run(&mut s, 0, "DEL m");
    run(&mut s, 0, "RPUSH m only");
    run(&mut s, 0, "EXPIRE m 100");
    assert_eq!(run(&mut s, 0, "LMOVE m m RIGHT LEFT"), bulk("only"));
    assert_eq!(run(&mut s, 0, "TTL m"), ":100\r\n");
    // Moving the last element deletes the source.
    assert_eq!(run(&mut s, 0, "LMOVE m n RIGHT LEFT"), bulk("only"));
    assert_eq!(run(&mut s, 0, "EXISTS m"), ":0\r\n");
    assert_eq!(lrange(&mut s, "n"), arr(&["only"]));
    // Missing source: null, and no destination appears.
    assert_eq!(run(&mut s, 0, "RPOPLPUSH nosuch{t} new{t}"), "$-1\r\n");
    assert_eq!(run(&mut s, 0, "EXISTS new{t}"), ":0\r\n");
    assert_eq!(run3(&mut s, "LMOVE nosuch{t} new{t} LEFT LEFT"), "_\r\n");
    // Destination of another type: nothing moves.
    run(&mut s, 0, "SET str{t} x");
    assert_eq!(run(&mut s, 0, "RPOPLPUSH s{t} str{t}"), err(WRONGTYPE));
    assert_eq!(lrange(&mut s, "s{t}"), arr(&["c", "d"]));
    assert_eq!(run(&mut s, 0, "LMOVE s{t} d{t} up LEFT"), err(SYNTAX));
    assert_eq!(run(&mut s, 0, "LMOVE s{t} d{t} LEFT down"), err(SYNTAX));
    s.check();
}

#[test]
fn lmpop() {
    let mut s = store();
    assert_eq!(run(&mut s, 0, "LMPOP 0 l{t} LEFT"), err(NUMKEYS_POSITIVE));
    assert_eq!(run(&mut s, 0, "LMPOP a l{t} LEFT"), err(NUMKEYS_POSITIVE));
    assert_eq!(run(&mut s, 0, "LMPOP -1 l{t} RIGHT"), err(NUMKEYS_POSITIVE));
    for line in [
        "LMPOP 1 l{t} bad_where",
        "LMPOP 1 l{t} LEFT bar_arg",
        "LMPOP 1 l{t} RIGHT LEFT",
        "LMPOP 1 l{t} COUNT",
        "LMPOP 1 l{t} LEFT COUNT 1 COUNT 2",
        "LMPOP 2 l{t} l2{t} bad_arg",
        "LMPOP 5 l{t} LEFT",
        "LMPOP 9223372036854775807 l{t} LEFT",
    ] {
        assert_eq!(run(&mut s, 0, line), err(SYNTAX), "{line}");
    }
    for line in [
        "LMPOP 1 l{t} LEFT COUNT 0",
        "LMPOP 1 l{t} RIGHT COUNT a",
        "LMPOP 1 l{t} LEFT COUNT -1",
        "LMPOP 2 l{t} l2{t} RIGHT COUNT -1",
    ] {
        assert_eq!(run(&mut s, 0, line), err(COUNT_POSITIVE), "{line}");
    }
    assert_eq!(run(&mut s, 0, "LMPOP 1 l{t} LEFT COUNT 1"), "*-1\r\n");
    assert_eq!(run3(&mut s, "LMPOP 2 l{t} l2{t} RIGHT COUNT 10"), "_\r\n");
    run(&mut s, 0, "RPUSH l{t} a b c d e f");
    assert_eq!(
        run(&mut s, 0, "LMPOP 2 l{t} l{t} LEFT COUNT 2"),
        "*2\r\n$4\r\nl{t}\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n"
    );
    assert_eq!(
        run(&mut s, 0, "LMPOP 2 l{t} l{t} RIGHT COUNT 2"),
        "*2\r\n$4\r\nl{t}\r\n*2\r\n$1\r\nf\r\n$1\r\ne\r\n"
    );
    assert_eq!(
        run(&mut s, 0, "LMPOP 1 l{t} left"),
        "*2\r\n$4\r\nl{t}\r\n*1\r\n$1\r\nc\r\n"
    );
    run(&mut s, 0, "RPUSH l2{t} 1 2 3 4 5");
    assert_eq!(
        run(&mut s, 0, "LMPOP 2 nosuch{t} l2{t} RIGHT COUNT 10"),
        "*2\r\n$5\r\nl2{t}\r\n*5\r\n$1\r\n5\r\n$1\r\n4\r\n$1\r\n3\r\n$1\r\n2\r\n$1\r\n1\r\n"
    );
    assert_eq!(run(&mut s, 0, "EXISTS l2{t}"), ":0\r\n");
    // A key of another type before a list is an error; after it, never looked at.
    run(&mut s, 0, "SET str{t} x");
    assert_eq!(run(&mut s, 0, "LMPOP 2 str{t} l{t} LEFT"), err(WRONGTYPE));
    assert_eq!(
        run(&mut s, 0, "LMPOP 2 l{t} str{t} LEFT"),
        "*2\r\n$4\r\nl{t}\r\n*1\r\n$1\r\nd\r\n"
    );
    s.check();
}

#[test]
fn blocking_attempts() {
    let mut s = store();
    // Nothing to serve: no reply written, the wait in ms (None: forever).
    for (line, wait) in [
        ("BLPOP a b 0", None),
        ("BRPOP a 1", Some(1000)),
        ("BLPOP a 0.001", Some(1)),
        ("BLPOP a 0.0001", Some(1)),
        ("BLPOP a 1.5", Some(1500)),
        ("BLPOP a -0.0001", None),
        ("BLMOVE a b LEFT RIGHT 2", Some(2000)),
        ("BRPOPLPUSH a b 0", None),
        ("BLMPOP 0.1 2 a b LEFT COUNT 3", Some(100)),
    ] {
        let (r, reply) = attempt(&mut s, 1_000, line);
        assert_eq!(r, Attempt::WouldBlock { timeout_ms: wait }, "{line}");
        assert_eq!(reply, "", "{line}");
    }
    // Bad timeouts are answers.
    for (line, e) in [
        ("BLPOP a -1", TIMEOUT_NEGATIVE),
        ("BLPOP a x", TIMEOUT_NOT_FLOAT),
        ("BLPOP a nan", TIMEOUT_NOT_FLOAT),
        ("BLPOP a 1x", TIMEOUT_NOT_FLOAT),
        ("BLPOP a inf", TIMEOUT_OUT_OF_RANGE),
        ("BLPOP a 1e300", TIMEOUT_OUT_OF_RANGE),
        ("BLPOP a 9223372036854775", TIMEOUT_OUT_OF_RANGE),
        ("BRPOP a b -0.5", TIMEOUT_NEGATIVE),
        ("BLMOVE a b LEFT RIGHT -1", TIMEOUT_NEGATIVE),
        ("BLMOVE a b UP RIGHT -1", SYNTAX),
        ("BRPOPLPUSH a b x", TIMEOUT_NOT_FLOAT),
        ("BLMPOP -1 1 a LEFT", TIMEOUT_NEGATIVE),
        ("BLMPOP x 0 a LEFT", NUMKEYS_POSITIVE),
        ("BLMPOP x 1 a UP", SYNTAX),
        ("BLMPOP x 1 a LEFT COUNT 0", COUNT_POSITIVE),
    ] {
        let (r, reply) = attempt(&mut s, 1_000, line);
        assert_eq!((r, reply), (Attempt::Answered, err(e)), "{line}");
    }
    // With data: served at once, the first key with data first.
    run(&mut s, 0, "RPUSH b 1 2 3");
    assert_eq!(
        attempt(&mut s, 0, "BLPOP a b 0"),
        (Attempt::Answered, arr(&["b", "1"]))
    );
    assert_eq!(
        attempt(&mut s, 0, "BRPOP a b 5"),
        (Attempt::Answered, arr(&["b", "3"]))
    );
    assert_eq!(
        attempt(&mut s, 0, "BLMPOP 0 2 a b RIGHT COUNT 5"),
        (
            Attempt::Answered,
            "*2\r\n$1\r\nb\r\n*1\r\n$1\r\n2\r\n".into()
        )
    );
    assert_eq!(run(&mut s, 0, "EXISTS b"), ":0\r\n");
    run(&mut s, 0, "RPUSH a x y");
    assert_eq!(
        attempt(&mut s, 0, "BLMOVE a c RIGHT LEFT 0"),
        (Attempt::Answered, bulk("y"))
    );
    assert_eq!(
        attempt(&mut s, 0, "BRPOPLPUSH a c 0"),
        (Attempt::Answered, bulk("x"))
    );
    assert_eq!(lrange(&mut s, "c"), arr(&["x", "y"]));
    assert_eq!(run(&mut s, 0, "EXISTS a"), ":0\r\n");
    // A missing source blocks BLMOVE even when the destination has another type.
    run(&mut s, 0, "SET str v");
    let (r, _) = attempt(&mut s, 0, "BLMOVE nosuch str LEFT LEFT 0");
    assert_eq!(r, Attempt::WouldBlock { timeout_ms: None });
    assert_eq!(
        attempt(&mut s, 0, "BLMOVE c str LEFT LEFT 0"),
        (Attempt::Answered, err(WRONGTYPE))
    );
    // Where it cannot wait (MULTI, scripts) it answers its timeout's reply at once.
    assert_eq!(run(&mut s, 0, "BLPOP nosuch 0"), "*-1\r\n");
    assert_eq!(run(&mut s, 0, "BLMPOP 0 1 nosuch LEFT"), "*-1\r\n");
    assert_eq!(run(&mut s, 0, "BLMOVE nosuch x LEFT LEFT 0"), "$-1\r\n");
    assert_eq!(run(&mut s, 0, "BRPOPLPUSH nosuch x 0"), "$-1\r\n");
    assert_eq!(run3(&mut s, "BRPOP nosuch 1"), "_\r\n");
    assert_eq!(run(&mut s, 0, "BLPOP c 1"), arr(&["c", "x"]));
    s.check();
}

#[test]
fn large_list_and_memory_books() {
    let mut s = store();
    let used0 = s.used_bytes;
    for chunk in 0..100 {
        let words: Vec<String> = (0..1000)
            .map(|i| format!("v{}", chunk * 1000 + i))
            .collect();
        run(&mut s, 0, &format!("RPUSH big {}", words.join(" ")));
    }
    s.check();
    assert_eq!(run(&mut s, 0, "LLEN big"), ":100000\r\n");
    assert_eq!(run(&mut s, 0, "LINDEX big 54321"), bulk("v54321"));
    assert_eq!(run(&mut s, 0, "LINDEX big -1"), bulk("v99999"));
    let want: Vec<String> = (70_000..70_100).map(|i| format!("v{i}")).collect();
    let want: Vec<&str> = want.iter().map(|w| w.as_str()).collect();
    assert_eq!(run(&mut s, 0, "LRANGE big 70000 70099"), arr(&want));
    // The charge is about the bytes of the entries.
    let per = (s.used_bytes - used0) as f64 / 100_000.0;
    assert!((7.0..10.0).contains(&per), "{per} bytes per element");
    assert_eq!(run(&mut s, 0, "LTRIM big 10 -11"), "+OK\r\n");
    assert_eq!(run(&mut s, 0, "LINDEX big 0"), bulk("v10"));
    assert_eq!(run(&mut s, 0, "LREM big 0 v500"), ":1\r\n");
    assert_eq!(run(&mut s, 0, "LSET big 1000 changed"), "+OK\r\n");
    assert_eq!(
        run(&mut s, 0, "LINSERT big before changed new"),
        ":99980\r\n"
    );
    s.check();
    match s.read(key_slot(b"big"), b"big", 0) {
        Found::List(l) => l.check(),
        _ => panic!("not a list"),
    }
    assert_eq!(run(&mut s, 0, "DEL big"), ":1\r\n");
    assert_eq!(s.used_bytes, used0);
    s.check();
}
