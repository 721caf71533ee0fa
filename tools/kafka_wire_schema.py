#!/usr/bin/env python3
"""Generate dataplane/src/proto/kafka/schema/tables.rs: the wire layout of Kafka requests, as
the kafka-protocol crate decodes them, for proto::kafka::schema's pre-decode length check.

The crate is generated from Kafka's JSON message specs, but publishes only Rust. This reads
the decode functions of the crate's `src/messages/*_request.rs` (the copy cargo downloaded),
resolves their `version` conditions for each version, and writes one field list per struct
with each field's version range. Run it after changing the crate's version, or to add an API
to APIS:

    python3 tools/kafka_wire_schema.py

The unit tests in schema/tests.rs then check every table against the crate (generated requests
must decode and consume exactly their bytes), so a wrong table cannot pass unnoticed.
"""

import glob
import os
import re
import sys

CRATE_VERSION = "0.18.0"
TARGET = "dataplane/src/proto/kafka/schema/tables.rs"

# The APIs with a table: those pinion serves and those its open issues plan to serve. A
# request of an API without a table is refused before decoding (see schema.rs).
APIS = [
    # served
    "Produce", "Fetch", "ListOffsets", "Metadata", "FindCoordinator", "ApiVersions",
    "CreateTopics", "DeleteTopics", "InitProducerId", "DescribeConfigs",
    # consumer groups, transactions, admin, SASL (planned)
    "OffsetCommit", "OffsetFetch", "JoinGroup", "Heartbeat", "LeaveGroup", "SyncGroup",
    "DescribeGroups", "ListGroups", "DeleteGroups", "OffsetDelete", "SaslHandshake",
    "SaslAuthenticate", "CreatePartitions", "DeleteRecords", "AddPartitionsToTxn",
    "AddOffsetsToTxn", "EndTxn", "TxnOffsetCommit", "AlterConfigs",
    "IncrementalAlterConfigs", "DescribeCluster", "DescribeProducers",
    "DescribeTransactions", "ListTransactions", "DescribeAcls", "CreateAcls", "DeleteAcls",
]

FIXED = {"Int8": 1, "Int16": 2, "UInt16": 2, "Int32": 4, "UInt32": 4, "Int64": 8,
         "Float64": 8, "Boolean": 1, "Uuid": 16}


def snake(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def crate_dir():
    home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
    hits = glob.glob(f"{home}/registry/src/*/kafka-protocol-{CRATE_VERSION}")
    if not hits:
        sys.exit(f"kafka-protocol {CRATE_VERSION} not found under {home}/registry/src "
                 "(run `cargo fetch` first)")
    return hits[0]


def block_end(text, open_idx):
    """Index just past the brace that closes the one at open_idx."""
    depth = 0
    for i in range(open_idx, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    raise ValueError("unbalanced braces")


COND = re.compile(r"if ((?:version [<>=!]=? -?\d+(?: (?:&&|\|\|) )?)+) \{")


def resolve(text, v):
    """The text with every `if <version condition> {..} [else ..]` replaced by the branch
    version v takes."""
    while True:
        m = COND.search(text)
        if not m:
            return text
        cond = m.group(1).replace("&&", "and").replace("||", "or").replace("version", str(v))
        body_open = m.end() - 1
        body_end = block_end(text, body_open)
        then = text[body_open + 1:body_end - 1]
        rest = text[body_end:]
        other, after = "", rest
        em = re.match(r"\s*else\s*", rest)
        if em:
            tail = rest[em.end():]
            if tail.startswith("if "):
                # else if: the remainder of the chain is itself one if-expression.
                im = COND.match(tail)
                assert im, tail[:80]
                end = block_end(tail, im.end() - 1)
                while True:
                    em2 = re.match(r"\s*else\s*", tail[end:])
                    if not em2:
                        break
                    nxt = end + em2.end()
                    if tail[nxt:].startswith("if "):
                        im2 = COND.match(tail[nxt:])
                        end = block_end(tail, nxt + im2.end() - 1)
                    else:
                        end = block_end(tail, nxt)
                        break
                other, after = tail[:end], tail[end:]
            else:
                assert tail.startswith("{"), tail[:80]
                end = block_end(tail, 0)
                other, after = tail[1:end - 1], tail[end:]
        chosen = then if eval(cond) else other
        text = text[:m.start()] + chosen + after


def parse_file(path):
    src = open(path).read()
    structs = {}
    for m in re.finditer(r"pub struct (\w+) \{", src):
        body = src[m.end():block_end(src, m.end() - 1)]
        fields = dict(re.findall(r"pub (\w+): ([^\n]+),\n", body))
        structs[m.group(1)] = fields
    decoders = {}
    for m in re.finditer(r"impl Decodable for (\w+) \{", src):
        end = block_end(src, m.end() - 1)
        decoders[m.group(1)] = src[m.end():end]
    return structs, decoders


def elem_struct(rust_ty):
    t = rust_ty.strip()
    for _ in range(3):
        t = re.sub(r"^(Option|Vec)<(.*)>$", r"\2", t)
    return t.split("::")[-1]


TYPE = re.compile(r"types::(CompactArray|Array)\(types::(\w+)(?: \{ version \})?\)|types::(\w+)(?: \{ version \})?")


def wire(expr, struct_fields, field):
    """(kind, compact, inner) of a `types::...` decoder expression."""
    m = TYPE.match(expr)
    assert m, expr
    if m.group(1):
        compact = m.group(1) == "CompactArray"
        inner = m.group(2)
        if inner == "Struct":
            return ("array", compact, ("struct", elem_struct(struct_fields[field])))
        base = inner.replace("Compact", "")
        flag = (inner.startswith("Compact"),) if base in ("String", "Bytes") else ()
        return ("array", compact, prim(base) + flag)
    name = m.group(3)
    if name == "Struct":
        return ("struct", elem_struct(struct_fields[field]))
    compact = name.startswith("Compact")
    base = name.replace("Compact", "")
    return prim(base) + ((compact,) if base in ("String", "Bytes") else ())


def prim(base):
    if base in FIXED:
        return ("fixed", FIXED[base])
    if base == "String":
        return ("str",)
    if base == "Bytes":
        return ("bytes",)
    raise ValueError(f"unknown wire type {base}")


def versions(decoder):
    """The versions a decoder accepts (its opening check)."""
    rng = re.search(r"if version < (-?\d+) \|\| version > (-?\d+) \{", decoder)
    if rng:
        return int(rng.group(1)), int(rng.group(2))
    one = re.search(r"if version != (-?\d+) \{", decoder)
    return int(one.group(1)), int(one.group(1))


def layout(decoder, v, fields_of):
    """(fields, tagged, flexible) of one struct's decode at version v, or None outside its
    versions."""
    lo, hi = versions(decoder)
    if not lo <= v <= hi:
        return None
    text = resolve(decoder, v)
    flexible = "num_tagged_fields" in text
    head, _, tags = text.partition("num_tagged_fields")
    fields = []
    for m in re.finditer(r"let (?:mut )?(\w+)(?::[^=]*)? =\s*(types::[^\n;]*?)\.decode\(buf\)\?", head):
        fields.append((m.group(1), wire(m.group(2), fields_of, m.group(1))))
    tagged = []
    for m in re.finditer(r"(\d+) => \{\s*(\w+) = (types::[^\n;]*?)\.decode\(buf\)\?;", tags):
        tagged.append((int(m.group(1)), m.group(2), wire(m.group(3), fields_of, m.group(2))))
    return fields, tagged, flexible


def check_compact(ty, flexible, where):
    if ty[0] in ("str", "bytes"):
        assert ty[1] == flexible, f"{where}: compact != flexible"
    if ty[0] == "array":
        assert ty[1] == flexible, f"{where}: compact != flexible"
        check_compact(ty[2], flexible, where)


def strip_compact(ty):
    if ty[0] in ("str", "bytes"):
        return (ty[0],)
    if ty[0] == "array":
        return ("array", strip_compact(ty[2]))
    return ty


def gen_api(api, out, names):
    d = crate_dir()
    path = f"{d}/src/messages/{snake(api)}_request.rs"
    structs, decoders = parse_file(path)
    top = f"{api}Request"
    lo, hi = versions(decoders[top])
    flex = [v for v in range(lo, hi + 1) if layout(decoders[top], v, structs[top])[2]]
    flexible = min(flex) if flex else None
    assert flex == list(range(flexible, hi + 1)) if flex else True
    # Per struct, per version: an ordered field list; merge into (name, lo, hi, tag, ty).
    emitted = {}
    order = []

    def visit(sname):
        if sname in emitted:
            return
        emitted[sname] = None
        rows = []  # (name, tag, ty, versions)
        for v in range(lo, hi + 1):
            lay = layout(decoders[sname], v, structs[sname])
            if lay is None:
                continue
            fields, tagged, fl = lay
            assert fl == (flexible is not None and v >= flexible), f"{sname} v{v} flexible"
            seq = [(n, None, t) for n, t in fields] + [(n, tag, t) for tag, n, t in tagged]
            prev = -1  # index in rows of the row this version's previous field extended
            for n, tag, t in seq:
                check_compact(t, fl, f"{sname}.{n} v{v}")
                t = strip_compact(t)
                for i, r in enumerate(rows):
                    if r[0] == n and r[1] == tag and r[2] == t and r[3][-1] == v - 1:
                        r[3].append(v)
                        prev = i
                        break
                else:
                    # A field new in this version goes right after this version's previous
                    # field, so that every version's order survives the merge.
                    prev += 1
                    rows.insert(prev, [n, tag, t, [v]])
        for r in rows:
            for sub in struct_refs(r[2]):
                visit(sub)
        emitted[sname] = rows
        order.append(sname)

    visit(top)
    # Keep the struct order of the request's own fields: check that merging kept each
    # version's order (fields sorted by first appearance must match every version's order).
    for sname in order:
        for v in range(lo, hi + 1):
            lay = layout(decoders[sname], v, structs[sname])
            if lay is None:
                continue
            want = [n for n, _ in lay[0]]
            got = [r[0] for r in emitted[sname] if r[1] is None and v in r[3]]
            assert want == got, f"{sname} v{v}: {want} vs {got}"
    def const(s):
        # A struct named after its API keeps its name (FetchTopic: FETCH_TOPIC); others get
        # the API's name in front (CreatableTopic: CREATE_TOPICS_CREATABLE_TOPIC).
        name = snake(s).upper() if s.startswith(api) else f"{snake(api).upper()}_{snake(s).upper()}"
        assert names.setdefault(name, (api, s)) == (api, s), f"{name} names two structs"
        return name

    out.append(f"/// {api} v{lo}-{hi}, flexible from {'v' + str(flexible) if flexible is not None else 'never'}.")
    fl = flexible if flexible is not None else "NEVER"
    line = f"pub const {snake(api).upper()}: Schema = schema(ApiKey::{api}, {lo}, {hi}, {fl}, {const(top)});"
    if len(line) > 100:
        line = line.replace(" = ", " =\n    ", 1)
    out.append(line)
    for sname in reversed(order):
        out.append(f"const {const(sname)}: &[Field] = &[")
        for n, tag, t, vs in emitted[sname]:
            assert vs == list(range(vs[0], vs[-1] + 1))
            ty = render(t, const)
            if tag is None:
                out.append(f"    f(\"{n}\", {vs[0]}, {vs[-1]}, {ty}),")
            else:
                out.append(f"    tagged({tag}, \"{n}\", {vs[0]}, {vs[-1]}, {ty}),")
        out.append("];")
    out.append("")


def struct_refs(t):
    if t[0] == "struct":
        return [t[1]]
    if t[0] == "array":
        return struct_refs(t[1])
    return []


def render(t, const):
    if t[0] == "fixed":
        return f"Fixed({t[1]})"
    if t[0] == "str":
        return "Str"
    if t[0] == "bytes":
        return "Bytes"
    if t[0] == "struct":
        return f"Struct({const(t[1])})"
    if t[0] == "array":
        return f"Array(&{render(t[1], const)})"
    raise ValueError(t)


def main():
    out = [
        f"//! Generated by `tools/kafka_wire_schema.py` from kafka-protocol {CRATE_VERSION}'s request",
        "//! decoders; do not edit by hand (rerun the tool; rustfmt skips this file). One field list",
        "//! per struct, each field with the versions it is on the wire in; `tagged` fields sit in",
        "//! the struct's tagged section. `schema(key, lo, hi, flexible, fields)`: the versions the",
        "//! crate decodes and the first flexible one.",
        "",
        "use kafka_protocol::messages::ApiKey;",
        "",
        "use super::{f, schema, tagged, Field, Schema, Ty::*, NEVER};",
        "",
        f"/// The crate these tables were generated from (checked against Cargo.lock by a test).",
        f"pub const CRATE_VERSION: &str = \"{CRATE_VERSION}\";",
        "",
        "/// Every table, one per API.",
        "pub const ALL: &[&Schema] = &[",
    ]
    out += [f"    &{snake(a).upper()}," for a in APIS]
    out += ["];", ""]
    names = {}
    for api in APIS:
        gen_api(api, out, names)
    target = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", TARGET)
    with open(target, "w") as f:
        f.write("\n".join(out).rstrip() + "\n")
    print(f"wrote {os.path.normpath(target)}")


if __name__ == "__main__":
    main()
