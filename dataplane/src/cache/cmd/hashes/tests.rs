use super::super::testing::{run, store};
use super::SlicedWrite;
use crate::limits::HASH_WRITE_SLICE_PAIRS;
use crate::proto::resp::errors::WRONGTYPE;

fn hset_frame(cmd: &str, key: &str, n: usize) -> Vec<u8> {
    let mut f = format!(
        "*{}\r\n${}\r\n{cmd}\r\n${}\r\n{key}\r\n",
        2 + 2 * n,
        cmd.len(),
        key.len()
    );
    for i in 0..n {
        let (k, v) = (format!("f{i}"), format!("value-{i}"));
        f += &format!("${}\r\n{k}\r\n${}\r\n{v}\r\n", k.len(), v.len());
    }
    f.into_bytes()
}

#[test]
fn a_big_hset_reads_its_pairs_from_its_frame_slice_by_slice() {
    let mut s = store();
    let n = HASH_WRITE_SLICE_PAIRS * 2 + 3;
    // Small ones, and other commands, are not taken.
    assert!(SlicedWrite::from_frame(hset_frame("HSET", "h", 10), false).is_err());
    assert!(SlicedWrite::from_frame(hset_frame("HGET", "h", n), false).is_err());
    assert!(SlicedWrite::from_frame(b"*3\r\n$4\r\nHSET".to_vec(), false).is_err());
    assert!(SlicedWrite::wanted(&hset_frame("hset", "h", n)));
    let mut w = SlicedWrite::from_frame(hset_frame("hset", "h", n), false).unwrap();
    assert_eq!(w.key(), b"h");
    w.begin(&mut s, 0).unwrap();
    let mut slices = 0;
    let reply = loop {
        slices += 1;
        let (done, reply) = w.step(&mut s, HASH_WRITE_SLICE_PAIRS, 0);
        assert!(done <= HASH_WRITE_SLICE_PAIRS);
        if let Some(r) = reply {
            break r;
        }
    };
    assert_eq!(slices, 3);
    assert_eq!(reply, format!(":{n}\r\n").into_bytes());
    assert_eq!(run(&mut s, 0, "HLEN h"), format!(":{n}\r\n"));
    assert_eq!(
        run(&mut s, 0, &format!("HGET h f{}", n - 1)),
        format!("$11\r\nvalue-{}\r\n", n - 1)
    );
    // HMSET answers OK; a key of another type is refused before any pair is applied.
    let mut w = SlicedWrite::from_frame(hset_frame("HMSET", "h", n), true).unwrap();
    w.begin(&mut s, 0).unwrap();
    while w.step(&mut s, HASH_WRITE_SLICE_PAIRS, 0).1.is_none() {}
    assert_eq!(run(&mut s, 0, "SET str x"), "+OK\r\n");
    let mut w = SlicedWrite::from_frame(hset_frame("HSET", "str", n), false).unwrap();
    assert_eq!(
        w.begin(&mut s, 0).unwrap_err(),
        format!("-{WRONGTYPE}\r\n").into_bytes()
    );
}

#[test]
fn hashes_and_types() {
    let mut s = store();
    assert_eq!(run(&mut s, 0, "HSET h a 1 b 2"), ":2\r\n");
    assert_eq!(run(&mut s, 0, "HSET h a 3"), ":0\r\n");
    assert_eq!(run(&mut s, 0, "HGET h a"), "$1\r\n3\r\n");
    assert_eq!(run(&mut s, 0, "HMGET h a nope"), "*2\r\n$1\r\n3\r\n$-1\r\n");
    assert_eq!(run(&mut s, 0, "HLEN h"), ":2\r\n");
    assert_eq!(run(&mut s, 0, "HEXISTS h b"), ":1\r\n");
    assert_eq!(run(&mut s, 0, "HINCRBY h a 10"), ":13\r\n");
    assert_eq!(
        run(&mut s, 0, "HSET h a 1 b"),
        "-ERR wrong number of arguments for 'hset' command\r\n"
    );
    assert_eq!(run(&mut s, 0, "TYPE h"), "+hash\r\n");
    assert_eq!(run(&mut s, 0, "GET h"), format!("-{WRONGTYPE}\r\n"));
    assert_eq!(run(&mut s, 0, "SET str x"), "+OK\r\n");
    assert_eq!(run(&mut s, 0, "HGET str a"), format!("-{WRONGTYPE}\r\n"));
    assert_eq!(run(&mut s, 0, "TYPE str"), "+string\r\n");
    assert_eq!(run(&mut s, 0, "TYPE nope"), "+none\r\n");
    assert_eq!(run(&mut s, 0, "HDEL h a b c"), ":2\r\n");
    assert_eq!(run(&mut s, 0, "EXISTS h"), ":0\r\n");
    s.check();
    // Overwriting a hash with a string frees the hash.
    assert_eq!(run(&mut s, 0, "HSET h2 f v"), ":1\r\n");
    assert_eq!(run(&mut s, 0, "SET h2 v"), "+OK\r\n");
    s.check();
}

#[test]
fn setnx_strlen_keys_vals() {
    let mut s = store();
    assert_eq!(run(&mut s, 0, "HSETNX h f v"), ":1\r\n");
    assert_eq!(run(&mut s, 0, "HSETNX h f w"), ":0\r\n");
    assert_eq!(run(&mut s, 0, "HGET h f"), "$1\r\nv\r\n");
    assert_eq!(run(&mut s, 0, "HSTRLEN h f"), ":1\r\n");
    assert_eq!(run(&mut s, 0, "HSTRLEN h nope"), ":0\r\n");
    assert_eq!(run(&mut s, 0, "HSTRLEN nope f"), ":0\r\n");
    assert_eq!(run(&mut s, 0, "HSET h g ww"), ":1\r\n");
    assert_eq!(run(&mut s, 0, "HKEYS h"), "*2\r\n$1\r\nf\r\n$1\r\ng\r\n");
    assert_eq!(run(&mut s, 0, "HVALS h"), "*2\r\n$1\r\nv\r\n$2\r\nww\r\n");
    assert_eq!(run(&mut s, 0, "HKEYS nope"), "*0\r\n");
    run(&mut s, 0, "SET str x");
    for c in ["HSETNX str f v", "HSTRLEN str f", "HKEYS str", "HVALS str"] {
        assert_eq!(run(&mut s, 0, c), format!("-{WRONGTYPE}\r\n"), "{c}");
    }
    s.check();
}

#[test]
fn incrbyfloat() {
    let mut s = store();
    assert_eq!(run(&mut s, 0, "HINCRBYFLOAT h f 10.5"), "$4\r\n10.5\r\n");
    assert_eq!(run(&mut s, 0, "HINCRBYFLOAT h f 0.1"), "$4\r\n10.6\r\n");
    assert_eq!(run(&mut s, 0, "HINCRBYFLOAT h f -10.6"), "$1\r\n0\r\n");
    assert_eq!(run(&mut s, 0, "HSET h s hello"), ":1\r\n");
    assert_eq!(
        run(&mut s, 0, "HINCRBYFLOAT h s 1"),
        "-ERR hash value is not a float\r\n"
    );
    assert_eq!(
        run(&mut s, 0, "HINCRBYFLOAT h f x"),
        "-ERR value is not a valid float\r\n"
    );
    assert_eq!(
        run(&mut s, 0, "HINCRBYFLOAT h f +inf"),
        "-ERR value is NaN or Infinity\r\n"
    );
    assert_eq!(run(&mut s, 0, "HSET h big 1.5e308"), ":1\r\n");
    assert_eq!(
        run(&mut s, 0, "HINCRBYFLOAT h big 1.5e308"),
        "-ERR increment would produce NaN or Infinity\r\n"
    );
    // A failed increment of a new key leaves no key behind.
    run(&mut s, 0, "HINCRBY n f x");
    assert_eq!(run(&mut s, 0, "EXISTS n"), ":0\r\n");
    assert_eq!(run(&mut s, 0, "HSET n f notanumber"), ":1\r\n");
    assert_eq!(
        run(&mut s, 0, "HINCRBY n f 1"),
        "-ERR hash value is not an integer\r\n"
    );
    s.check();
}

fn count_items(reply: &str) -> usize {
    reply.lines().filter(|l| l.starts_with('$')).count()
}

#[test]
fn randfield() {
    let mut s = store();
    assert_eq!(run(&mut s, 0, "HRANDFIELD nope"), "$-1\r\n");
    assert_eq!(run(&mut s, 0, "HRANDFIELD nope 5"), "*0\r\n");
    run(&mut s, 0, "HSET h a 1 b 2 c 3");
    let one = run(&mut s, 0, "HRANDFIELD h");
    assert!(["$1\r\na\r\n", "$1\r\nb\r\n", "$1\r\nc\r\n"].contains(&one.as_str()));
    assert_eq!(run(&mut s, 0, "HRANDFIELD h 0"), "*0\r\n");
    assert_eq!(count_items(&run(&mut s, 0, "HRANDFIELD h 2")), 2);
    assert_eq!(count_items(&run(&mut s, 0, "HRANDFIELD h 10")), 3);
    assert_eq!(count_items(&run(&mut s, 0, "HRANDFIELD h -10")), 10);
    let wv = run(&mut s, 0, "HRANDFIELD h 10 WITHVALUES");
    assert!(wv.starts_with("*6\r\n"), "{wv}");
    assert_eq!(
        count_items(&run(&mut s, 0, "HRANDFIELD h -5 withvalues")),
        10
    );
    assert_eq!(run(&mut s, 0, "HRANDFIELD h 1 x"), "-ERR syntax error\r\n");
    assert_eq!(
        run(&mut s, 0, "HRANDFIELD h -9223372036854775808"),
        "-ERR value is out of range\r\n"
    );
    assert_eq!(
        run(&mut s, 0, "HRANDFIELD h -9223372036854775807 WITHVALUES"),
        "-ERR value is out of range\r\n"
    );
    // Repetitions past the bound are refused (the reply is built whole), but a missing
    // key is still an empty array.
    assert_eq!(
        run(&mut s, 0, "HRANDFIELD h -5000000"),
        "-ERR value is out of range\r\n"
    );
    assert_eq!(run(&mut s, 0, "HRANDFIELD nope -5000000"), "*0\r\n");
    // Distinct picks in a big (table) hash.
    for i in 0..500 {
        run(&mut s, 0, &format!("HSET big f{i} v"));
    }
    let r = run(&mut s, 0, "HRANDFIELD big 100");
    let fields: std::collections::HashSet<&str> =
        r.lines().filter(|l| l.starts_with('f')).collect();
    assert_eq!(fields.len(), 100);
    let r = run(&mut s, 0, "HRANDFIELD big 400");
    let fields: std::collections::HashSet<&str> =
        r.lines().filter(|l| l.starts_with('f')).collect();
    assert_eq!(fields.len(), 400);
}

#[test]
fn scan() {
    let mut s = store();
    assert_eq!(run(&mut s, 0, "HSCAN nope 0"), "*2\r\n$1\r\n0\r\n*0\r\n");
    assert_eq!(run(&mut s, 0, "HSCAN nope x"), "-ERR invalid cursor\r\n");
    run(&mut s, 0, "HSET small a 1 b 2 ab 3");
    assert_eq!(
        run(&mut s, 0, "HSCAN small 0 MATCH a*"),
        "*2\r\n$1\r\n0\r\n*4\r\n$1\r\na\r\n$1\r\n1\r\n$2\r\nab\r\n$1\r\n3\r\n"
    );
    assert_eq!(
        run(&mut s, 0, "HSCAN small 0 COUNT 0"),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        run(&mut s, 0, "HSCAN small 0 COUNT"),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        run(&mut s, 0, "HSCAN small 0 COUNT x"),
        "-ERR value is not an integer or out of range\r\n"
    );
    for i in 0..1000 {
        run(&mut s, 0, &format!("HSET big f{i} v{i}"));
    }
    let mut seen = std::collections::HashSet::new();
    let mut cursor = "0".to_string();
    loop {
        let r = run(&mut s, 0, &format!("HSCAN big {cursor} COUNT 50"));
        let lines: Vec<&str> = r.lines().collect();
        cursor = lines[2].to_string();
        for l in &lines[4..] {
            if l.starts_with('f') {
                seen.insert(l.to_string());
            }
        }
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 1000);
    run(&mut s, 0, "SET str x");
    assert_eq!(run(&mut s, 0, "HSCAN str 0"), format!("-{WRONGTYPE}\r\n"));
}

#[test]
fn memory_charge_follows_fields() {
    let mut s = store();
    for i in 0..300 {
        run(&mut s, 0, &format!("HSET h f{i} {}", "v".repeat(i % 90)));
        if i % 50 == 0 {
            s.check();
        }
    }
    let full = s.used_bytes;
    for i in 0..299 {
        run(&mut s, 0, &format!("HDEL h f{i}"));
    }
    s.check();
    assert!(s.used_bytes < full / 10, "{} of {full}", s.used_bytes);
    run(&mut s, 0, "HDEL h f299");
    assert_eq!((s.keys, s.used_bytes), (0, 0));
}
