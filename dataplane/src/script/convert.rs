//! Conversions between Redis replies and Lua values, with Redis's rules (script_lua.c).
//!
//! A command a script calls writes its reply as RESP, as it would for a client; [`reply_to_lua`]
//! reads it back: integer -> number, bulk -> string, null bulk or null array -> false,
//! array -> table, status -> `{ok=...}`, error -> `{err=...}`, and in RESP3 map ->
//! `{map=...}`, set -> `{set=...}`, null -> nil, boolean, double -> `{double=...}`, big
//! number -> `{big_number=...}`, verbatim -> `{verbatim_string={format=, string=}}`.
//!
//! A script's result goes the other way in [`lua_to_reply`]: number -> integer (truncated),
//! string -> bulk, true -> 1 (RESP3: true), false and nil -> null, a table with `err` ->
//! error, `ok` -> status, `double`, `big_number`, `verbatim_string`, `map`, `set`, else an
//! array of its elements 1, 2, ... up to the first nil.

use mlua::{Lua, Table, Value};

use crate::limits::SCRIPT_REPLY_DEPTH_MAX;
use crate::proto::resp::write::Out;

/// C's `%.<precision>g`: Redis passes a Lua number to a command as `%.17g` and cjson
/// encodes with `%.14g`.
pub fn fmt_g(x: f64, precision: usize) -> String {
    if x.is_nan() {
        return if x.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let p = precision.max(1);
    let sci = format!("{:.*e}", p - 1, x);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        let m = trim_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        trim_zeros(&format!("{x:.decimals$}")).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// The error table Redis's `luaPushErrorBuff` makes: "-CODE msg" keeps its code, any other
/// text gets `ERR`; the message is trimmed of CR/LF.
pub fn error_text(s: &[u8]) -> Vec<u8> {
    let (code, msg): (&[u8], &[u8]) = match s.strip_prefix(b"-") {
        Some(rest) => match rest.iter().position(|&c| c == b' ') {
            Some(sp) => (&rest[..sp], &rest[sp + 1..]),
            None => (b"ERR", rest),
        },
        None => (b"ERR", s),
    };
    let crlf = |c: &u8| *c == b'\r' || *c == b'\n';
    let start = msg.iter().position(|c| !crlf(c)).unwrap_or(msg.len());
    let end = msg.iter().rposition(|c| !crlf(c)).map_or(start, |e| e + 1);
    let mut out = Vec::with_capacity(code.len() + 1 + end - start);
    out.extend_from_slice(code);
    out.push(b' ');
    out.extend_from_slice(&msg[start..end]);
    out
}

pub fn error_table(lua: &Lua, s: &[u8]) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, 1)?;
    t.raw_set("err", lua.create_string(error_text(s))?)?;
    Ok(t)
}

/// A command reply read back into Lua, and whether it was an error.
pub fn reply_to_lua(lua: &Lua, reply: &[u8]) -> mlua::Result<(Value, bool)> {
    let failed = reply.first() == Some(&b'-');
    let mut r = Reader { b: reply, pos: 0 };
    Ok((r.value(lua, 0)?, failed))
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

fn malformed() -> mlua::Error {
    mlua::Error::runtime("a command reply that does not parse")
}

impl<'a> Reader<'a> {
    fn line(&mut self) -> mlua::Result<&'a [u8]> {
        let rest = self.b.get(self.pos..).ok_or_else(malformed)?;
        let end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(malformed)?;
        self.pos += end + 2;
        Ok(&rest[..end])
    }

    fn int(line: &[u8]) -> mlua::Result<i64> {
        std::str::from_utf8(line)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(malformed)
    }

    fn bytes(&mut self, n: usize) -> mlua::Result<&'a [u8]> {
        let b = self.b.get(self.pos..self.pos + n).ok_or_else(malformed)?;
        self.pos += n + 2;
        Ok(b)
    }

    fn value(&mut self, lua: &Lua, depth: usize) -> mlua::Result<Value> {
        if depth > SCRIPT_REPLY_DEPTH_MAX {
            return Err(mlua::Error::runtime("reached lua stack limit"));
        }
        let line = self.line()?;
        let (&tag, rest) = line.split_first().ok_or_else(malformed)?;
        let tagged = |key: &str, v: Value| -> mlua::Result<Value> {
            let t = lua.create_table_with_capacity(0, 1)?;
            t.raw_set(key, v)?;
            Ok(Value::Table(t))
        };
        Ok(match tag {
            b'+' => tagged("ok", Value::String(lua.create_string(rest)?))?,
            b'-' => {
                let mut e = Vec::with_capacity(rest.len() + 1);
                e.push(b'-');
                e.extend_from_slice(rest);
                Value::Table(error_table(lua, &e)?)
            }
            b':' => Value::Number(Self::int(rest)? as f64),
            b'$' => match Self::int(rest)? {
                n if n < 0 => Value::Boolean(false),
                n => Value::String(lua.create_string(self.bytes(n as usize)?)?),
            },
            b'*' => match Self::int(rest)? {
                n if n < 0 => Value::Boolean(false),
                n => {
                    let t = lua.create_table_with_capacity(n.min(1024) as usize, 0)?;
                    for i in 1..=n {
                        t.raw_set(i, self.value(lua, depth + 1)?)?;
                    }
                    Value::Table(t)
                }
            },
            b'%' => {
                let n = Self::int(rest)?;
                let m = lua.create_table()?;
                for _ in 0..n {
                    let k = self.value(lua, depth + 1)?;
                    let v = self.value(lua, depth + 1)?;
                    if !k.is_nil() {
                        m.raw_set(k, v)?;
                    }
                }
                tagged("map", Value::Table(m))?
            }
            b'~' => {
                let n = Self::int(rest)?;
                let s = lua.create_table()?;
                for _ in 0..n {
                    let k = self.value(lua, depth + 1)?;
                    if !k.is_nil() {
                        s.raw_set(k, true)?;
                    }
                }
                tagged("set", Value::Table(s))?
            }
            b'_' => Value::Nil,
            b'#' => Value::Boolean(rest == b"t"),
            b',' => {
                let s = std::str::from_utf8(rest).map_err(|_| malformed())?;
                let d = match s {
                    "inf" => f64::INFINITY,
                    "-inf" => f64::NEG_INFINITY,
                    _ => s.parse().map_err(|_| malformed())?,
                };
                tagged("double", Value::Number(d))?
            }
            b'(' => tagged("big_number", Value::String(lua.create_string(rest)?))?,
            b'=' => {
                let n = Self::int(rest)?;
                let body = self.bytes(usize::try_from(n).map_err(|_| malformed())?)?;
                let (format, text) = if body.len() >= 4 {
                    (&body[..3], &body[4..])
                } else {
                    (&b"txt"[..], body)
                };
                let v = lua.create_table_with_capacity(0, 2)?;
                v.raw_set("format", lua.create_string(format)?)?;
                v.raw_set("string", lua.create_string(text)?)?;
                tagged("verbatim_string", Value::Table(v))?
            }
            _ => return Err(malformed()),
        })
    }
}

/// A string field of a table, as Lua's `lua_isstring` sees it (numbers count).
pub fn string_field(t: &Table, key: &str) -> Option<Vec<u8>> {
    match t.raw_get::<Value>(key).ok()? {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Integer(i) => Some(fmt_g(i as f64, 14).into_bytes()),
        Value::Number(n) => Some(fmt_g(n, 14).into_bytes()),
        _ => None,
    }
}

/// `\r` and `\n` become spaces, as Redis maps them in a status line.
fn line_bytes(b: &[u8]) -> Vec<u8> {
    b.iter()
        .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c })
        .collect()
}

/// Write a script's result (or an element of it) as the reply. `resp3` is the protocol the
/// script chose with `redis.setresp` (it decides how booleans come back).
pub fn lua_to_reply(v: &Value, resp3: bool, out: &mut Out, depth: usize) {
    if depth > SCRIPT_REPLY_DEPTH_MAX {
        out.error("ERR reached lua stack limit");
        return;
    }
    match v {
        Value::String(s) => out.bulk(&s.as_bytes()),
        Value::Boolean(b) => {
            if resp3 {
                out.boolean(*b)
            } else if *b {
                out.int(1)
            } else {
                out.null()
            }
        }
        Value::Integer(i) => out.int(*i),
        Value::Number(n) => out.int(*n as i64),
        Value::Table(t) => table_to_reply(t, resp3, out, depth),
        _ => out.null(),
    }
}

fn table_to_reply(t: &Table, resp3: bool, out: &mut Out, depth: usize) {
    if let Ok(Value::String(_)) = t.raw_get::<Value>("err") {
        let msg = string_field(t, "err").unwrap_or_default();
        out.error(&String::from_utf8_lossy(&msg));
        return;
    }
    if let Ok(Value::String(s)) = t.raw_get::<Value>("ok") {
        out.buf.push(b'+');
        out.buf.extend_from_slice(&line_bytes(&s.as_bytes()));
        out.buf.extend_from_slice(b"\r\n");
        return;
    }
    match t.raw_get::<Value>("double") {
        Ok(Value::Number(d)) => return out.double(d),
        Ok(Value::Integer(i)) => return out.double(i as f64),
        _ => {}
    }
    if let Ok(Value::String(s)) = t.raw_get::<Value>("big_number") {
        let n = line_bytes(&s.as_bytes());
        if out.resp3 {
            out.buf.push(b'(');
            out.buf.extend_from_slice(&n);
            out.buf.extend_from_slice(b"\r\n");
        } else {
            out.bulk(&n);
        }
        return;
    }
    if let Ok(Value::Table(v)) = t.raw_get::<Value>("verbatim_string") {
        if let (Ok(Value::String(f)), Ok(Value::String(s))) =
            (v.raw_get::<Value>("format"), v.raw_get::<Value>("string"))
        {
            let (f, s) = (f.as_bytes(), s.as_bytes());
            if out.resp3 && f.len() == 3 {
                let mut body = f.to_vec();
                body.push(b':');
                body.extend_from_slice(&s);
                out.buf.push(b'=');
                out.buf
                    .extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
                out.buf.extend_from_slice(b"\r\n");
                out.buf.extend_from_slice(&body);
                out.buf.extend_from_slice(b"\r\n");
            } else {
                out.bulk(&s);
            }
            return;
        }
    }
    // Each collection is walked twice (count, then write), holding one element at a time:
    // a Lua reference per element held at once would exhaust mlua's reference stack (about
    // 8000 slots) on a large reply, and that is a panic, not an error.
    if let Ok(Value::Table(m)) = t.raw_get::<Value>("map") {
        let n = m.pairs::<Value, Value>().filter(Result::is_ok).count();
        out.map(n);
        for (k, v) in m.pairs::<Value, Value>().filter_map(Result::ok).take(n) {
            lua_to_reply(&k, resp3, out, depth + 1);
            lua_to_reply(&v, resp3, out, depth + 1);
        }
        return;
    }
    if let Ok(Value::Table(s)) = t.raw_get::<Value>("set") {
        let n = s.pairs::<Value, Value>().filter(Result::is_ok).count();
        out.set(n);
        for (k, _) in s.pairs::<Value, Value>().filter_map(Result::ok).take(n) {
            lua_to_reply(&k, resp3, out, depth + 1);
        }
        return;
    }
    let mut n = 0;
    while !matches!(t.raw_get::<Value>(n + 1), Ok(Value::Nil) | Err(_)) {
        n += 1;
    }
    out.array(n);
    for i in 1..=n {
        match t.raw_get::<Value>(i) {
            Ok(v) => lua_to_reply(&v, resp3, out, depth + 1),
            Err(_) => out.null(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_format_matches_c() {
        assert_eq!(fmt_g(1.0, 17), "1");
        assert_eq!(fmt_g(0.1, 17), "0.10000000000000001");
        assert_eq!(fmt_g(100.5, 17), "100.5");
        assert_eq!(fmt_g(-3.0, 17), "-3");
        assert_eq!(fmt_g(1e20, 17), "1e+20");
        assert_eq!(fmt_g(123456789012345678.0, 17), "1.2345678901234568e+17");
        assert_eq!(fmt_g(0.0001, 14), "0.0001");
        assert_eq!(fmt_g(0.00001, 14), "1e-05");
        assert_eq!(fmt_g(1023.2, 14), "1023.2");
        assert_eq!(fmt_g(1.23456, 3), "1.23");
    }

    #[test]
    fn error_text_keeps_or_adds_the_code() {
        assert_eq!(error_text(b"-WRONGTYPE Operation"), b"WRONGTYPE Operation");
        assert_eq!(error_text(b"-My Error"), b"My Error");
        assert_eq!(error_text(b"-Oops"), b"ERR Oops");
        assert_eq!(error_text(b"plain text\r\n"), b"ERR plain text");
    }

    fn to_reply(lua: &Lua, code: &str, resp3_out: bool, resp3_script: bool) -> String {
        let v: Value = lua.load(code).eval().unwrap();
        let mut buf = Vec::new();
        lua_to_reply(&v, resp3_script, &mut Out::new(&mut buf, resp3_out), 0);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn lua_values_become_redis_replies() {
        let lua = Lua::new();
        assert_eq!(to_reply(&lua, "return 100.5", false, false), ":100\r\n");
        assert_eq!(to_reply(&lua, "return 'hi'", false, false), "$2\r\nhi\r\n");
        assert_eq!(to_reply(&lua, "return true", false, false), ":1\r\n");
        assert_eq!(to_reply(&lua, "return false", false, false), "$-1\r\n");
        assert_eq!(to_reply(&lua, "return false", true, true), "#f\r\n");
        assert_eq!(to_reply(&lua, "return nil", false, false), "$-1\r\n");
        assert_eq!(
            to_reply(&lua, "return {ok='fine'}", false, false),
            "+fine\r\n"
        );
        assert_eq!(
            to_reply(&lua, "return {err='ERR bad'}", false, false),
            "-ERR bad\r\n"
        );
        assert_eq!(
            to_reply(&lua, "return {1,2,3,'ciao',{1,2}}", false, false),
            "*5\r\n:1\r\n:2\r\n:3\r\n$4\r\nciao\r\n*2\r\n:1\r\n:2\r\n"
        );
        // An array stops at its first nil.
        assert_eq!(
            to_reply(&lua, "return {1,nil,3}", false, false),
            "*1\r\n:1\r\n"
        );
        assert_eq!(
            to_reply(&lua, "return {double=3.5}", false, false),
            "$3\r\n3.5\r\n"
        );
        assert_eq!(
            to_reply(&lua, "return {map={a=1}}", true, true),
            "%1\r\n$1\r\na\r\n:1\r\n"
        );
        assert_eq!(
            to_reply(&lua, "return {set={a=true}}", false, false),
            "*1\r\n$1\r\na\r\n"
        );
        // A table that contains itself ends in an error instead of recursing forever.
        let r = to_reply(&lua, "local a = {}; a[1] = a; return a", false, false);
        assert!(r.ends_with("-ERR reached lua stack limit\r\n"));
    }

    #[test]
    fn redis_replies_become_lua_values() {
        let lua = Lua::new();
        let check = |reply: &str, code: &str| {
            let (v, _) = reply_to_lua(&lua, reply.as_bytes()).unwrap();
            let f: mlua::Function = lua.load(code).eval().unwrap();
            let ok: bool = f.call(v).unwrap();
            assert!(ok, "{reply:?} failed {code}");
        };
        check(":5\r\n", "return function(v) return v == 5 end");
        check("$3\r\nabc\r\n", "return function(v) return v == 'abc' end");
        check("$-1\r\n", "return function(v) return v == false end");
        check("*-1\r\n", "return function(v) return v == false end");
        check("+OK\r\n", "return function(v) return v.ok == 'OK' end");
        check(
            "-ERR no\r\n",
            "return function(v) return v.err == 'ERR no' end",
        );
        check(
            "*2\r\n$1\r\na\r\n:1\r\n",
            "return function(v) return v[1] == 'a' and v[2] == 1 and #v == 2 end",
        );
        check(
            "%1\r\n$1\r\nk\r\n$1\r\nv\r\n",
            "return function(v) return v.map.k == 'v' end",
        );
        check(
            "~1\r\n$1\r\nm\r\n",
            "return function(v) return v.set.m == true end",
        );
        check("_\r\n", "return function(v) return v == nil end");
        check("#t\r\n", "return function(v) return v == true end");
        check(",1.5\r\n", "return function(v) return v.double == 1.5 end");
        let (_, failed) = reply_to_lua(&lua, b"-WRONGTYPE x\r\n").unwrap();
        assert!(failed);
    }
}
