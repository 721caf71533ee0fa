"""Bitmaps and string ranges (SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD,
BITFIELD_RO, GETRANGE, SETRANGE, SUBSTR, LCS) through redis-py and redis-cli on a 2-shard
node. Expected replies and error texts are Redis 7.0's (tests/unit/bitops.tcl,
bitfield.tcl and type/string.tcl of the redis source). BITOP and LCS run their keys
together: `{tag}` keys put them on one shard, and tags are picked on both shards."""

import pytest
import redis

from conftest import Raw, keys_on, shard_of

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


def tags_on_both_shards():
    """One hash tag whose keys live on shard 0 and one on shard 1."""
    return [keys_on(s, 1, prefix="t")[0] for s in (0, 1)]


def bits_of(v: bytes) -> str:
    return "".join(f"{b:08b}" for b in v)


def test_setbit_and_getbit(r):
    for key in keys_on(0, 1, "sb") + keys_on(1, 1, "sb"):
        assert r.setbit(key, 1, 1) == 0
        assert r.get(key) == bytes([0b0100_0000])
        assert r.setbit(key, 1, 1) == 1
        assert r.setbit(key, 23, 1) == 0
        assert r.get(key) == b"\x40\x00\x01"
        assert r.getbit(key, 23) == 1
        assert r.getbit(key, 22) == 0
        assert r.getbit(key, 100000) == 0
    assert r.getbit("nokey", 5) == 0
    # "1" is 00110001.
    r.set("n", 1)
    assert r.setbit("n", 6, 1) == 0
    assert r.get("n") == bytes([0b0011_0011])
    # Growing keeps the value's TTL.
    r.set("t", "v", ex=100)
    assert r.setbit("t", 8 * 100_000, 1) == 0
    assert r.strlen("t") == 100_001
    assert 90 < r.ttl("t") <= 100
    for bad in (-1, 4 * 1024 * 1024 * 1024, "x"):
        with pytest.raises(redis.ResponseError, match="^bit offset is not an integer or out of range$"):
            r.setbit("k", bad, 1)
        with pytest.raises(redis.ResponseError, match="^bit offset is not an integer or out of range$"):
            r.getbit("k", bad)
    for bad in (-1, 2, 10):
        with pytest.raises(redis.ResponseError, match="^bit is not an integer or out of range$"):
            r.execute_command("SETBIT", "k", 0, bad)
    r.hset("h", "f", "v")
    with pytest.raises(redis.ResponseError, match=f"^{WRONGTYPE}$"):
        r.setbit("h", 0, 1)
    with pytest.raises(redis.ResponseError, match=f"^{WRONGTYPE}$"):
        r.getbit("h", 0)


def test_setbit_fuzzing_against_a_model(r):
    import random

    rnd = random.Random(7)
    model = []
    for _ in range(500):
        bit, val = rnd.randrange(2048), rnd.randrange(2)
        if len(model) <= bit:
            model += [0] * ((bit // 8 + 1) * 8 - len(model))
        assert r.setbit("fz", bit, val) == model[bit]
        model[bit] = val
    assert bits_of(r.get("fz")) == "".join(map(str, model))


def test_bitcount(r):
    assert r.bitcount("nokey") == 0
    assert r.bitcount("nokey", 0, 1000, "bit") == 0
    r.set("s", "foobar")
    assert r.bitcount("s") == 26
    assert r.bitcount("s", 1, 1) == 6
    assert r.bitcount("s", 1, -2) == bits_of(b"ooba").count("1")
    assert r.bitcount("s", -2, 1) == 0
    assert r.bitcount("s", 5, 30, "bit") == bits_of(b"foobar")[5:31].count("1")
    assert r.bitcount("s", 10, -34, "BIT") == bits_of(b"foobar")[10:15].count("1")
    assert r.bitcount("s", 0, -1, "byte") == 26
    r.set("str", "__PPxxxxxxxxxxxxxxxxRR__")
    assert r.bitcount("str", 2, -3) == 74
    big = bytes(range(256)) * 4096
    r.set("big", big)
    assert r.bitcount("big") == sum(bin(b).count("1") for b in big)
    with pytest.raises(redis.ResponseError, match="^syntax error$"):
        r.execute_command("BITCOUNT", "s", 0)
    with pytest.raises(redis.ResponseError, match="^syntax error$"):
        r.execute_command("BITCOUNT", "s", 0, 1, "hello")
    with pytest.raises(redis.ResponseError, match="^value is not an integer or out of range$"):
        r.execute_command("BITCOUNT", "s", "a", 1)
    r.hset("h", "f", "v")
    with pytest.raises(redis.ResponseError, match=f"^{WRONGTYPE}$"):
        r.bitcount("h")


def test_bitpos(r):
    assert r.bitpos("nokey", 0) == 0
    assert r.bitpos("nokey", 1) == -1
    r.set("s", b"\xff\xf0\x00")
    assert r.bitpos("s", 0) == 12
    assert r.bitpos("s", 0, 0, -1, "bit") == 12
    r.set("s", b"\x00\xff\x00")
    assert r.bitpos("s", 0, 1, -1) == 16
    assert r.bitpos("s", 0, 1, 1) == -1
    assert r.bitpos("s", 1, 2, -1) == -1
    assert r.bitpos("s", 1, 8, 8, "bit") == 8
    # bit=0 without an end counts the zero padding on the right; with an end it does not.
    r.set("s", b"\xff\xff\xff")
    assert r.bitpos("s", 0) == 24
    assert r.bitpos("s", 0, 0) == 24
    assert r.bitpos("s", 0, 0, -1) == -1
    # Whole words skipped.
    r.set("s", b"\x00" * 4096 + b"\x01")
    assert r.bitpos("s", 1) == 4096 * 8 + 7
    assert r.bitpos("s", 1, 1, -1) == 4096 * 8 + 7
    with pytest.raises(redis.ResponseError, match=r"^The bit argument must be 1 or 0\.$"):
        r.execute_command("BITPOS", "s", 2)
    with pytest.raises(redis.ResponseError, match="^syntax error$"):
        r.execute_command("BITPOS", "s", 1, 0, 1, "bits")
    r.hset("h", "f", "v")
    with pytest.raises(redis.ResponseError, match=f"^{WRONGTYPE}$"):
        r.bitpos("h", 1)


def test_bitop_on_each_shard(r):
    for tag in tags_on_both_shards():
        a, b, d, none = (f"{n}{{{tag}}}" for n in ("a", "b", "dest", "none"))
        assert shard_of(a) == shard_of(d)
        r.set(a, b"\x01\x02\xff\xff")
        r.set(b, b"\x01\x02\xff")
        assert r.bitop("AND", d, a, b) == 4
        assert r.get(d) == b"\x01\x02\xff\x00"
        assert r.bitop("or", d, a, b, none) == 4
        assert r.get(d) == b"\x01\x02\xff\xff"
        assert r.bitop("XOR", d, a, b) == 4
        assert r.get(d) == b"\x00\x00\x00\xff"
        assert r.bitop("NOT", d, a) == 4
        assert r.get(d) == b"\xfe\xfd\x00\x00"
        assert r.bitop("NOT", a, a) == 4
        assert r.get(a) == b"\xfe\xfd\x00\x00"
        # An empty result deletes the destination, whatever it held.
        r.expire(d, 100)
        assert r.bitop("OR", d, none) == 0
        assert r.exists(d) == 0
        r.delete(b)
        r.hset(b, "f", "v")
        with pytest.raises(redis.ResponseError, match=f"^{WRONGTYPE}$"):
            r.bitop("AND", d, a, b)
        with pytest.raises(redis.ResponseError, match=r"^BITOP NOT must be called with a single source key\.$"):
            r.bitop("NOT", d, a, a)
        with pytest.raises(redis.ResponseError, match="^syntax error$"):
            r.bitop("NAND", d, a)


def test_bitop_in_a_transaction(node):
    r = node.client()
    tag = tags_on_both_shards()[1]
    p = r.pipeline(transaction=True)
    p.setbit(f"x{{{tag}}}", 0, 1)
    p.setbit(f"y{{{tag}}}", 15, 1)
    p.bitop("OR", f"z{{{tag}}}", f"x{{{tag}}}", f"y{{{tag}}}")
    p.get(f"z{{{tag}}}")
    p.bitcount(f"z{{{tag}}}")
    assert p.execute() == [0, 0, 2, b"\x80\x01", 2]
    r.close()


def test_bitfield(r):
    bf = lambda *a: r.execute_command("BITFIELD", *a)  # noqa: E731
    assert bf("bits", "set", "i8", 0, -100) == [0]
    assert bf("bits", "set", "i8", 0, 101) == [-100]
    assert bf("bits", "get", "i8", 0) == [101]
    r.delete("bits")
    assert bf("bits", "set", "u8", 0, 255, "incrby", "u8", 0, 100, "get", "u8", 0) == [0, 99, 99]
    assert bf("none") == []
    assert bf("none", "get", "u8", 0) == [0]
    assert r.exists("none") == 0
    for i, c in enumerate(b"ABC"):
        bf("abc", "set", "u8", f"#{i}", c)
    assert r.get("abc") == b"ABC"
    # redis-py's builder, overflow modes.
    r.delete("b")
    assert r.bitfield("b").set("u8", "#0", 100).execute() == [0]
    assert r.bitfield("b", default_overflow="WRAP").incrby("u8", "#0", 257).execute() == [101]
    assert r.bitfield("b", default_overflow="SAT").incrby("u8", "#0", 257).execute() == [255]
    assert r.bitfield("b", default_overflow="FAIL").incrby("u8", "#0", 1).get("u8", "#0").execute() == [None, 255]
    assert bf("b", "overflow", "sat", "incrby", "i8", "#0", -300) == [-128]
    assert bf("m", "SET", "i8", 0, 10, "SET", "i8", 64, 10, "INCRBY", "i8", 10, 99900) == [0, 0, 60]
    assert bf("w", "set", "i64", 3, -(2**63), "get", "i64", 3, "incrby", "i64", 3, -1) == [0, -(2**63), 2**63 - 1]
    assert r.bitfield_ro("b", "u8", 0, items=[("u4", 0)]) == [128, 8]
    assert r.execute_command("BITFIELD_RO", "b") == []
    with pytest.raises(redis.ResponseError, match="^BITFIELD_RO only supports the GET subcommand$"):
        r.execute_command("BITFIELD_RO", "b", "set", "u8", 0, 100, "get", "u8", 0)
    with pytest.raises(redis.ResponseError, match=r"^Invalid bitfield type\. Use something like i16 u8\. Note that u64 is not supported but i64 is\.$"):
        bf("b", "get", "u64", 0)
    with pytest.raises(redis.ResponseError, match="^Invalid OVERFLOW type specified$"):
        bf("b", "overflow", "what", "get", "u8", 0)
    with pytest.raises(redis.ResponseError, match="^bit offset is not an integer or out of range$"):
        bf("b", "get", "u8", -1)
    with pytest.raises(redis.ResponseError, match="^syntax error$"):
        bf("b", "set", "u8", 0)
    r.hset("h", "f", "v")
    with pytest.raises(redis.ResponseError, match=f"^{WRONGTYPE}$"):
        bf("h", "set", "u8", 0, 1)


def test_getrange_setrange_substr(r):
    assert r.getrange("nokey", 0, -1) == b""
    r.set("k", "Hello World")
    assert r.getrange("k", 0, 3) == b"Hell"
    assert r.getrange("k", -4, -1) == b"orld"
    assert r.getrange("k", 5, 3) == b""
    assert r.getrange("k", -5000, 10000) == b"Hello World"
    assert r.getrange("k", 0, 4294967297) == b"Hello World"
    assert r.substr("k", 6, -1) == b"World"
    assert r.setrange("k", 6, "Redis") == 11
    assert r.get("k") == b"Hello Redis"
    assert r.setrange("k", 13, "!") == 14
    assert r.get("k") == b"Hello Redis\x00\x00!"
    assert r.setrange("k", 99999999999, "") == 14
    assert r.setrange("new", 0, "") == 0
    assert r.exists("new") == 0
    assert r.setrange("new", 2, "x") == 3
    assert r.get("new") == b"\x00\x00x"
    for key in ("k", "fresh"):
        for off in (512 * 1024 * 1024 - 4, 2**63 - 1, 2**31 - 1):
            with pytest.raises(redis.ResponseError, match=r"^string exceeds maximum allowed size \(proto-max-bulk-len\)$"):
                r.setrange(key, off, "world")
    with pytest.raises(redis.ResponseError, match="^offset is out of range$"):
        r.setrange("k", -1, "x")
    with pytest.raises(redis.ResponseError, match="^value is not an integer or out of range$"):
        r.getrange("k", "a", 1)
    r.hset("h", "f", "v")
    with pytest.raises(redis.ResponseError, match=f"^{WRONGTYPE}$"):
        r.setrange("h", 0, "x")
    with pytest.raises(redis.ResponseError, match=f"^{WRONGTYPE}$"):
        r.getrange("h", 0, 1)


RNA1 = "CACCTTCCCAGGTAACAAACCAACCAACTTTCGATCTCTTGTAGATCTGTTCTCTAAACGAACTTTAAAATCTGTGTGGCTGTCACTCGGCTGCATGCTTAGTGCACTCACGCAGTATAATTAATAACTAATTACTGTCGTTGACAGGACACGAGTAACTCGTCTATCTTCTGCAGGCTGCTTACGGTTTCGTCCGTGTTGCAGCCGATCATCAGCACATCTAGGTTTCGTCCGGGTGTG"
RNA2 = "ATTAAAGGTTTATACCTTCCCAGGTAACAAACCAACCAACTTTCGATCTCTTGTAGATCTGTTCTCTAAACGAACTTTAAAATCTGTGTGGCTGTCACTCGGCTGCATGCTTAGTGCACTCACGCAGTATAATTAATAACTAATTACTGTCGTTGACAGGACACGAGTAACTCGTCTATCTTCTGCAGGCTGCTTACGGTTTCGTCCGTGTTGCAGCCGATCATCAGCACATCTAGGTTT"
RNALCS = "ACCTTCCCAGGTAACAAACCAACCAACTTTCGATCTCTTGTAGATCTGTTCTCTAAACGAACTTTAAAATCTGTGTGGCTGTCACTCGGCTGCATGCTTAGTGCACTCACGCAGTATAATTAATAACTAATTACTGTCGTTGACAGGACACGAGTAACTCGTCTATCTTCTGCAGGCTGCTTACGGTTTCGTCCGTGTTGCAGCCGATCATCAGCACATCTAGGTTT"
MATCHES = [[[238, 238], [239, 239]], [[236, 236], [238, 238]], [[229, 230], [236, 237]], [[224, 224], [235, 235]], [[1, 222], [13, 234]]]


def test_lcs_resp2_and_resp3(node):
    r = node.client()
    for tag in tags_on_both_shards():
        a, b = f"v1{{{tag}}}", f"v2{{{tag}}}"
        r.set(a, RNA1)
        r.set(b, RNA2)
        assert r.lcs(a, b) == RNALCS.encode()
        assert r.lcs(a, b, len=True) == len(RNALCS)
        assert r.execute_command("LCS", a, b, "IDX") == [b"matches", MATCHES, b"len", len(RNALCS)]
        with_len = [m + [m[0][1] - m[0][0] + 1] for m in MATCHES]
        assert r.execute_command("LCS", a, b, "IDX", "WITHMATCHLEN") == [b"matches", with_len, b"len", len(RNALCS)]
        assert r.execute_command("LCS", a, b, "IDX", "WITHMATCHLEN", "MINMATCHLEN", 5) == [b"matches", with_len[4:], b"len", len(RNALCS)]
        assert r.lcs(a, f"none{{{tag}}}") == b""
        with pytest.raises(redis.ResponseError, match=r"^If you want both the length and indexes, please just use IDX\.$"):
            r.execute_command("LCS", a, b, "LEN", "IDX")
        r.hset(f"h{{{tag}}}", "f", "v")
        with pytest.raises(redis.ResponseError, match="^The specified keys must contain string values$"):
            r.lcs(a, f"h{{{tag}}}")
    r.close()
    # RESP3: IDX answers a map.
    r3 = node.client(protocol=3)
    tag = tags_on_both_shards()[0]
    reply = r3.execute_command("LCS", f"v1{{{tag}}}", f"v2{{{tag}}}", "IDX", "MINMATCHLEN", 5)
    assert reply == {b"matches": MATCHES[4:], b"len": len(RNALCS)}
    r3.close()
    raw = Raw(node.port)
    assert raw.cmd("HELLO", "3").startswith(b"%")
    got = raw.cmd("LCS", f"v1{{{tag}}}", f"v2{{{tag}}}", "IDX", "MINMATCHLEN", 200)
    assert got == b"%2\r\n$7\r\nmatches\r\n*1\r\n*2\r\n*2\r\n:1\r\n:222\r\n*2\r\n:13\r\n:234\r\n$3\r\nlen\r\n:227\r\n"
    raw.close()


def test_redis_cli(node):
    # redis-cli's plain (not a terminal) output, as it prints redis-server 7.0.15's replies.
    assert node.cli("SETBIT", "cli", "7", "1") == "0\n"
    assert node.cli("BITCOUNT", "cli") == "1\n"
    assert node.cli("BITPOS", "cli", "1") == "7\n"
    assert node.cli("SETRANGE", "cli", "1", "hi") == "3\n"
    assert node.cli("GETRANGE", "cli", "1", "-1") == "hi\n"
    assert node.cli("BITFIELD", "cli", "GET", "u8", "#1", "OVERFLOW", "FAIL", "INCRBY", "u8", "#1", "200") == "104\n\n"
    node.cli("SET", "a{c}", "ohmytext")
    node.cli("SET", "b{c}", "mynewtext")
    assert node.cli("LCS", "a{c}", "b{c}") == "mytext\n"
    out = node.cli("-3", "LCS", "a{c}", "b{c}", "IDX", "WITHMATCHLEN")
    assert out == "matches 4\n7\n5\n8\n4\n2\n3\n0\n1\n2\nlen 6\n"
    assert node.cli("SETBIT", "cli", "-1", "1") == "ERR bit offset is not an integer or out of range\n\n"


def test_watch_breaks_only_on_a_change(r):
    r.setbit("w", 3, 1)
    with r.pipeline() as p:
        p.watch("w")
        r.setbit("w", 3, 1)  # the bit is already set: no change
        p.multi()
        p.getbit("w", 3)
        assert p.execute() == [1]
    with r.pipeline() as p:
        p.watch("w")
        r.setbit("w", 3, 0)
        p.multi()
        p.getbit("w", 3)
        with pytest.raises(redis.WatchError):
            p.execute()


def test_growth_respects_maxmemory(start):
    node = start("--maxmemory", "1mb", "--eviction", "noeviction")
    r = node.client()
    key = keys_on(0, 1, "grow")[0]
    # Under the limit a write is admitted, however much it grows the string (as in Redis).
    assert r.setrange(key, 600_000, "x") == 600_001
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        r.setbit(key, 8 * 700_000, 1)
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        r.bitfield(key).set("u8", "#0", 1).execute()
    # Reads still work, and freeing memory lets writes in again.
    assert r.getbit(key, 8 * 600_000 + 1) == 1
    assert r.bitcount(key) == bin(ord("x")).count("1")
    assert r.delete(key) == 1
    assert r.setbit(key, 7, 1) == 0
    r.close()


def test_repeated_growth_is_fast(r):
    # 8 MB grown a few hundred bytes at a time: a reallocation per step, no quadratic copy
    # that would make this take minutes.
    import time

    t = time.time()
    p = r.pipeline(transaction=False)
    for i in range(20_000):
        p.setbit("g", i * 8 * 400 + 7, 1)
    p.execute()
    assert r.strlen("g") == 19_999 * 400 + 1
    assert r.bitcount("g") == 20_000
    assert r.bitpos("g", 1, 4000) == 10 * 8 * 400 + 7
    assert time.time() - t < 30
