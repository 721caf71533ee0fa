#!/usr/bin/env python3
"""The report of tools/redis-compat.sh: reads the runner's logs in a results folder and writes
summary.md (the table per unit, hangs, crashes, aborts, top failure causes) and
failures/<unit>.txt (every test redis-server passes and pinion does not, with its error).

    tools/redis_compat_report.py RESULTS_DIR [UNIT ...]

A test counts as passed when the runner printed `[ok]: NAME`. Test names repeat inside a unit
(one block per encoding), so "pinion among redis's passes" is a multiset intersection. Tests a
unit never reached (an abort, an error in a block's set-up, a hang) count as not passed and are
listed as "not run", after the error that stopped them where there was one.
"""

import asyncio
import re
import sys
from collections import Counter
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;]*m")
STATUS = re.compile(r"^\[(ok|err|exception|skip|ignore|TIMEOUT)\]: ?(.*)$")
OK_TIME = re.compile(r"^(.*) \(\d+ ms\)$")
TEST_IN = re.compile(r"^(.*) in tests/unit/\S+\.tcl$")
# Commands whose first argument names what they do (reported as "OBJECT ENCODING").
CONTAINERS = {"OBJECT", "MEMORY", "DEBUG", "CLIENT", "CONFIG", "FUNCTION", "SCRIPT", "COMMAND",
              "XINFO", "XGROUP", "CLUSTER", "ACL", "PUBSUB", "SLOWLOG", "LATENCY", "MODULE"}


class Run:
    """One unit on one server: what the runner reported."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.present = (folder / "runtest.log").exists()
        self.passed: list[str] = []
        self.failed: list[tuple[str, str]] = []  # (test name, error)
        self.block_errors: list[str] = []  # errors outside any test: the rest of the block was skipped
        self.skipped = 0
        self.ignored = 0
        self.abort = ""  # the [exception] line
        self.timeout_report = ""
        self.events: list[tuple[str, str]] = []  # ("ok"|"err"|"block", name or reason) in order
        self.status = {}
        if not self.present:
            return
        for line in (folder / "status.txt").read_text().splitlines():
            k, _, v = line.partition("=")
            self.status[k] = v
        self.parse((folder / "runtest.log").read_text(errors="replace"))

    def parse(self, text: str):
        lines = [ANSI.sub("", l) for l in text.splitlines()]
        i = 0
        while i < len(lines):
            m = STATUS.match(lines[i])
            i += 1
            if not m:
                continue
            kind, rest = m.groups()
            # The lines after a status line, up to the next one, are its details.
            details = []
            while i < len(lines) and not STATUS.match(lines[i]) and not lines[i].startswith("[") :
                details.append(lines[i])
                i += 1
            if kind == "ok":
                t = OK_TIME.match(rest)
                name = t.group(1) if t else rest
                self.passed.append(name)
                self.events.append(("ok", name))
            elif kind == "err":
                t = TEST_IN.match(rest)
                if t:
                    self.failed.append((t.group(1), reason(details)))
                    self.events.append(("err", t.group(1)))
                else:
                    why = reason([rest] + details)
                    self.block_errors.append(why)
                    self.events.append(("block", why))
            elif kind == "exception":
                self.abort = rest.strip()
            elif kind == "skip":
                self.skipped += 1
            elif kind == "ignore":
                self.ignored += 1
            elif kind == "TIMEOUT":
                self.timeout_report = " ".join(d.strip() for d in details if "IN PROGRESS" in d)

    @property
    def hang(self) -> bool:
        return self.status.get("hang") == "1"

    @property
    def crash(self) -> str:
        s = self.status.get("server", "ok")
        return "" if s == "ok" else s

    def state(self) -> str:
        parts = []
        if self.hang:
            last = self.events[-1][1] if self.events else "its start"
            parts.append(f"HANG (after {trim(last, 50)})")
        if self.crash:
            parts.append("server " + self.crash)
        if self.abort:
            parts.append("aborted")
        elif not self.hang and self.status.get("exit", "0") not in ("0", "1"):
            parts.append("runner exit " + self.status["exit"])
        elif not self.hang and not self.events and self.status.get("exit", "0") != "0":
            parts.append("RUNNER FAILED (see runtest.log)")
        return ", ".join(parts) or "completed"


def reason(details: list[str]) -> str:
    """The error of a failed test. An assertion is one line; any other error comes as the
    message with its first 10 characters cut (the runner strips "assertion:") followed by
    Tcl's errorInfo, whose first line is the whole message."""
    d = [x.strip() for x in details if x.strip()]
    if not d:
        return "?"
    if len(d) >= 2 and d[0] and d[1].endswith(d[0]):
        return d[1]
    return d[0]


def trim(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def missing_command(m) -> str:
    name = m.group(1).upper()
    if name in CONTAINERS and m.group(2):
        name += " " + m.group(2).upper()
    return f"missing command {name}"


CAUSES = [
    (re.compile(r"unknown command '([^']*)'(?:, with args beginning with: '([^']*)')?", re.I), missing_command),
    (re.compile(r"unknown subcommand '([^']*)'\. Try (\S+) HELP", re.I),
     lambda m: f"missing subcommand {m.group(2).upper()} {m.group(1).upper()}"),
    (re.compile(r"unknown subcommand or wrong number of arguments for '([^']*)'\. Try (\S+) HELP", re.I),
     lambda m: f"missing subcommand {m.group(2).upper()} {m.group(1).upper()}"),
    (re.compile(r"Unknown option or number of arguments for CONFIG SET - '([^']*)'", re.I),
     lambda m: f"CONFIG SET {m.group(1)} refused"),
    (re.compile(r"Unsupported CONFIG parameter: (\S+)", re.I), lambda m: f"CONFIG SET {m.group(1)} refused"),
    (re.compile(r"ERR syntax error", re.I), lambda m: "ERR syntax error (an option not served)"),
    (re.compile(r"wrong number of arguments for '([^']*)'", re.I),
     lambda m: f"arity refused: {m.group(1).upper()}"),
    (re.compile(r"CROSSSLOT", re.I), lambda m: "CROSSSLOT"),
    (re.compile(r"I/O error|connection reset|broken pipe|connection refused", re.I),
     lambda m: "connection lost"),
    (re.compile(r"^hang$"), lambda m: "hang"),
    (re.compile(r"^never reported"), lambda m: "never reported (skipped by the unit, or not reached)"),
    (re.compile(r"^server (.*)$"), lambda m: m.string),
    (re.compile(r"^(assertion:)?Expected", re.I), lambda m: "wrong reply: " + trim(m.string, 60)),
]


def cause(err: str) -> str:
    for rx, name in CAUSES:
        m = rx.search(err)
        if m:
            return name(m)
    if err.startswith("aborted: "):
        return "aborted: " + cause(err[len("aborted: "):])
    return "other: " + trim(err, 70)


def compare(red: Run, pin: Run):
    """(pinion passes among redis's, the tests redis passes and pinion does not with why)."""
    pin_pass = Counter(pin.passed)
    both = Counter(red.passed) & pin_pass
    pin_err = {}
    for name, err in pin.failed:
        pin_err.setdefault(name, err)
    # For a test pinion never ran: the block error or abort that came before the point it stopped.
    last_block = next((e[1] for e in reversed(pin.events) if e[0] == "block"), "")
    stopper = (pin.abort and "aborted: " + pin.abort) or ("hang" if pin.hang else "") or (f"server {pin.crash}" if pin.crash else "")
    missing = []
    left = Counter(both)
    for name in red.passed:
        if left[name] > 0:
            left[name] -= 1
            continue
        if name in pin_err:
            missing.append((name, pin_err[name], cause(pin_err[name])))
        else:
            why = stopper or last_block or "never reported (the unit skipped it by a condition of its own, or stopped before it)"
            label = "not run (unit aborted): " if pin.abort else "not run: "
            missing.append((name, label + why, label + cause(why)))
    return sum(both.values()), missing


# --- command tracing ---------------------------------------------------------------------------
# TRACE=1 runs each unit once more against redis-server through this proxy, which records the
# commands every test sends (the runner marks a test's start with `DEBUG LOG "### Starting test
# NAME ..."`, which MONITOR does not show: it hides admin commands). That names, for each test
# redis-server passes, the commands it needs, and so the tests that need a command issue 10
# does not plan. Commands a Lua script calls are not seen.

SNIFF_MAX_BULK = 16 << 20


class Sniffer:
    """The commands in a copy of a client's byte stream. Gives up quietly on what is not
    well-formed RESP: the protocol tests send garbage on purpose."""

    def __init__(self):
        self.buf = b""
        self.dead = False

    def feed(self, data: bytes) -> list[list[bytes]]:
        if self.dead:
            return []
        self.buf += data
        out = []
        try:
            while self.buf:
                c = self.one()
                if c is None:
                    break
                out.append(c)
        except ValueError:
            self.dead, self.buf = True, b""
        return out

    def one(self):
        b = self.buf
        if b[:1] != b"*":
            e = b.find(b"\n")
            if e < 0:
                if len(b) > 65536:
                    raise ValueError
                return None
            self.buf = b[e + 1:]
            return b[:e].rstrip(b"\r").split()
        e = b.find(b"\r\n")
        if e < 0:
            return None
        n = int(b[1:e])
        if n > 1 << 20:
            raise ValueError
        pos, args = e + 2, []
        for _ in range(max(n, 0)):
            if pos >= len(b):
                return None
            if b[pos:pos + 1] != b"$":
                raise ValueError
            e = b.find(b"\r\n", pos)
            if e < 0:
                return None
            ln = int(b[pos + 1:e])
            if not 0 <= ln <= SNIFF_MAX_BULK:
                raise ValueError
            if e + 2 + ln + 2 > len(b):
                return None
            args.append(b[e + 2:e + 2 + ln])
            pos = e + 2 + ln + 2
        self.buf = b[pos:]
        return args


def command_name(args: list[bytes]) -> str:
    name = args[0].decode(errors="replace").upper()
    if name in CONTAINERS and len(args) > 1:
        name += " " + args[1].decode(errors="replace").upper()
    return name


async def proxy(listen: int, target: int, log_path: str):
    log = open(log_path, "w", buffering=1)
    marker = re.compile(rb"^### Starting test (.*) in tests/\S+$", re.S)

    def record(args):
        if not args:
            return
        if len(args) >= 3 and args[0].lower() == b"debug" and args[1].lower() == b"log":
            m = marker.match(args[2])
            if m:
                log.write("TEST\t" + m.group(1).decode(errors="replace").replace("\n", " ") + "\n")
                return
        log.write("CMD\t" + command_name(args) + "\n")

    async def pipe(reader, writer, sniffer=None):
        try:
            while data := await reader.read(65536):
                if sniffer:
                    for args in sniffer.feed(data):
                        record(args)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def handle(cr, cw):
        try:
            sr, sw = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            cw.close()
            return
        await asyncio.gather(pipe(cr, sw, Sniffer()), pipe(sr, cw), return_exceptions=True)

    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    async with server:
        await server.serve_forever()


def read_trace(path: Path) -> list[tuple[str, set[str]]]:
    """(test name, the commands sent while it ran), in order."""
    out: list[tuple[str, set[str]]] = []
    for line in path.read_text(errors="replace").splitlines():
        kind, _, rest = line.partition("\t")
        if kind == "TEST":
            out.append((rest, set()))
        elif kind == "CMD" and out:
            out[-1][1].add(rest)
    return out


# What pinion serves today beyond `COMMAND LIST` (subcommands), and what issue 10 plans to add.
# A command outside both is one no helper is building: the tests that need it bound the ratio.
SERVED_SUBCOMMANDS = {"CLIENT SETNAME", "CLIENT GETNAME", "CLIENT ID", "CLIENT SETINFO",
                      "COMMAND LIST", "COMMAND COUNT", "COMMAND INFO", "COMMAND DOCS",
                      "CONFIG GET", "CONFIG SET", "CONFIG RESETSTAT"}
ISSUE10_PLANNED = set("""
LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LLEN LRANGE LINDEX LSET LINSERT LREM LTRIM LPOS LMOVE
RPOPLPUSH LMPOP BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP
SADD SREM SMEMBERS SISMEMBER SMISMEMBER SCARD SPOP SRANDMEMBER SMOVE SINTER SUNION SDIFF
SINTERSTORE SUNIONSTORE SDIFFSTORE SINTERCARD SSCAN
ZADD ZINCRBY ZREM ZCARD ZSCORE ZMSCORE ZRANK ZREVRANK ZCOUNT ZLEXCOUNT ZRANDMEMBER ZSCAN ZRANGE
ZRANGESTORE ZRANGEBYSCORE ZREVRANGEBYSCORE ZRANGEBYLEX ZREVRANGEBYLEX ZREMRANGEBYSCORE
ZREMRANGEBYRANK ZREMRANGEBYLEX ZPOPMIN ZPOPMAX ZMPOP BZPOPMIN BZPOPMAX BZMPOP ZUNION ZINTER
ZDIFF ZUNIONSTORE ZINTERSTORE ZDIFFSTORE
SETBIT GETBIT BITCOUNT BITPOS BITOP BITFIELD BITFIELD_RO GETRANGE SETRANGE SUBSTR LCS
HSETNX HINCRBYFLOAT HSTRLEN HKEYS HVALS HRANDFIELD HSCAN RENAME RENAMENX COPY RANDOMKEY TYPE
EXPIRETIME PEXPIRETIME TIME KEYS SCAN DBSIZE INFO
EVAL EVALSHA EVAL_RO FCALL
""".split()) | {
    "OBJECT ENCODING", "OBJECT FREQ", "OBJECT IDLETIME", "OBJECT REFCOUNT", "MEMORY USAGE",
    "SCRIPT LOAD", "SCRIPT EXISTS", "SCRIPT FLUSH", "SCRIPT KILL",
    "FUNCTION LOAD", "FUNCTION LIST", "FUNCTION DELETE", "FUNCTION FLUSH",
}


def unplanned(cmds: set[str], served: set[str], known: set[str]) -> set[str]:
    out = set()
    for c in cmds:
        if known and c not in known:
            continue  # redis-server does not know it either: sent to get an error
        top = c.split(" ")[0]
        if c in ISSUE10_PLANNED or c in SERVED_SUBCOMMANDS:
            continue
        if top not in CONTAINERS and (top in served or top in ISSUE10_PLANNED):
            continue
        if top in CONTAINERS and c == top and top in served:
            continue
        out.add(c)
    return out


def need_section(rows, tot) -> list[str]:
    if not rows:
        return []
    ceiling = f"{100 * (tot['redis'] - tot['needs']) / tot['redis']:.1f}%" if tot["redis"] else "-"
    return [
        "## Tests that need a command neither served nor planned by issue 10", "",
        "| unit | redis-server passed | need one | ceiling | commands (tests) |",
        "| --- | ---: | ---: | ---: | --- |", *rows,
        f"| **total** | {tot['redis']} | {tot['needs']} | {ceiling} | |", ""]


def main():
    if sys.argv[1:2] == ["proxy"]:
        listen, target, log_path = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
        asyncio.run(proxy(listen, target, log_path))
        return
    out = Path(sys.argv[1])
    units = sys.argv[2:] or sorted(
        {p.name.replace("_", "/", 1) if p.name.startswith("type_") else p.name
         for side in ("pinion", "redis") for p in (out / side).glob("*") if p.is_dir()})
    meta = (out / "meta.txt").read_text() if (out / "meta.txt").exists() else ""
    served_file = out / "pinion" / "commands.txt"
    served = {l.strip().upper() for l in served_file.read_text().splitlines()} if served_file.exists() else set()
    known_file = out / "redis-commands.txt"
    known = set(known_file.read_text().splitlines()) if known_file.exists() else set()
    need_md = []
    ntot = Counter()
    (out / "failures").mkdir(exist_ok=True)
    rows, causes_md, notes = [], [], []
    tot = Counter()
    for unit in units:
        name = unit.replace("/", "_")
        red, pin = Run(out / "redis" / name), Run(out / "pinion" / name)
        r_ok, p_ok = len(red.passed), len(pin.passed)
        among, missing = compare(red, pin) if red.present and pin.present else (0, [])
        ratio = f"{100 * among / r_ok:.1f}%" if red.present and pin.present and r_ok else "-"
        rows.append(
            f"| {unit} | {r_ok if red.present else '-'} | {p_ok if pin.present else '-'} "
            f"| {among if red.present and pin.present else '-'} | {ratio} "
            f"| {red.state() if red.present else '-'} | {pin.state() if pin.present else '-'} |"
        )
        tot.update(redis=r_ok, pinion=p_ok, among=among)
        for side, run in (("redis-server", red), ("pinion", pin)):
            if run.abort:
                notes.append(f"- {unit} on {side}: aborted: `{trim(run.abort, 200)}`")
            if run.hang:
                notes.append(f"- {unit} on {side}: hang, stopped at the wall-clock limit "
                             f"({run.status.get('seconds')} s); last reported test: "
                             f"`{run.events[-1][1] if run.events else '-'}` {run.timeout_report}")
            if run.crash:
                notes.append(f"- {unit} on {side}: server {run.crash}")
            for b in dict.fromkeys(run.block_errors):
                notes.append(f"- {unit} on {side}: error outside a test (rest of its block skipped): "
                             f"`{trim(b, 200)}`")
        needs = {}  # test index in red.passed -> commands no one is building
        trace = out / "trace" / name / "trace.log"
        if red.present and trace.exists():
            seen, by_name = Counter(), {}
            for t, cmds in read_trace(trace):
                by_name.setdefault(t, []).append(cmds)
            for i, t in enumerate(red.passed):
                k = seen[t]
                seen[t] += 1
                runs = by_name.get(t, [])
                if k < len(runs) and (u := unplanned(runs[k], served, known)):
                    needs[i] = u
            c = Counter(x for u in needs.values() for x in u)
            ceiling = f"{100 * (r_ok - len(needs)) / r_ok:.1f}%" if r_ok else "-"
            need_md.append(f"| {unit} | {r_ok} | {len(needs)} | {ceiling} | "
                           + ", ".join(f"{k} ×{n}" for k, n in c.most_common(10)) + " |")
            ntot.update(redis=r_ok, needs=len(needs))
        if red.present and pin.present:
            need_of = {}
            for i, t in enumerate(red.passed):
                if i in needs:
                    need_of.setdefault(t, needs[i])
            c = Counter(k for _, _, k in missing)
            if c:
                causes_md.append(f"- **{unit}** ({len(missing)} missing): " + "; ".join(
                    f"{k} ×{n}" for k, n in c.most_common(8)))
            with open(out / "failures" / f"{name}.txt", "w") as f:
                f.write(f"# unit/{unit}: {len(missing)} tests redis-server passes and pinion does not\n")
                for test, err, k in missing:
                    f.write(f"{test}\n    cause: {k}\n    error: {trim(err, 400)}\n")
                    if test in need_of:
                        f.write(f"    needs (not planned): {' '.join(sorted(need_of[test]))}\n")
                extra = Counter(pin.passed) - Counter(red.passed)
                if extra:
                    f.write("\n# pinion passes, redis-server does not:\n")
                    for t in extra.elements():
                        f.write(f"{t}\n")
    ratio = f"{100 * tot['among'] / tot['redis']:.1f}%" if tot["redis"] else "-"
    table = [
        "| unit | redis-server passed | pinion passed | pinion passed among redis-server's | ratio | redis-server run | pinion run |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
        *rows,
        f"| **total** | {tot['redis']} | {tot['pinion']} | {tot['among']} | {ratio} | | |",
    ]
    text = "\n".join(
        ["# Redis 7.0.15 test suite: pinion and redis-server", "", "```", meta.strip(), "```", "",
         *(["**DIAGNOSE run: the runner's external-server set-up was patched to ignore "
             "FUNCTION FLUSH and CONFIG SET errors; these are not the measured figures.**", ""]
           if "modified=diagnose" in meta else []),
         *table, "", "## Hangs, crashes, aborts, errors outside tests", "", *(notes or ["none"]),
         "", "## Top causes of the tests pinion misses (per unit)", "", *(causes_md or ["none"]), "",
         *need_section(need_md, ntot)])
    (out / "summary.md").write_text(text)
    print("\n".join(table))
    if need_md:
        print("\n" + "\n".join(need_section(need_md, ntot)[2:]))
    if notes:
        print("\n" + "\n".join(notes))


if __name__ == "__main__":
    main()
