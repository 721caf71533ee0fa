//! The libraries Redis gives scripts besides Lua's own: `bit` (LuaBitOp) and `cjson`
//! (lua-cjson), written here in Rust with the behaviour scripts rely on. `struct` and
//! `cmsgpack` are not provided.
//!
//! Each Lua state has its own copies (cjson's settings, such as its depth limits, belong to
//! the state, as in Redis where every script shares one interpreter).

use std::cell::Cell;
use std::rc::Rc;

use mlua::{LightUserData, Lua, MultiValue, Table, Value, Variadic};

use super::convert::fmt_g;
use crate::limits::SCRIPT_JSON_DEPTH_MAX;

/// A number as LuaBitOp sees it: rounded, then taken modulo 2^32 as a signed 32-bit value.
fn tobit(x: f64) -> i32 {
    if !x.is_finite() {
        return 0;
    }
    let r = x.round_ties_even().rem_euclid(4_294_967_296.0);
    r as u32 as i32
}

fn num(v: &Value) -> mlua::Result<f64> {
    match v {
        Value::Integer(i) => Ok(*i as f64),
        Value::Number(n) => Ok(*n),
        Value::String(s) => std::str::from_utf8(&s.as_bytes())
            .ok()
            .and_then(|t| t.trim().parse::<f64>().ok())
            .ok_or_else(|| mlua::Error::runtime("bad argument to bit operation (number expected)")),
        _ => Err(mlua::Error::runtime(
            "bad argument to bit operation (number expected)",
        )),
    }
}

/// The `bit` table.
pub fn bit(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let fold = |lua: &Lua, f: fn(i32, i32) -> i32| {
        lua.create_function(move |_, args: Variadic<Value>| {
            let mut it = args.iter();
            let first = it
                .next()
                .ok_or_else(|| mlua::Error::runtime("bad argument #1 (number expected)"))?;
            let mut acc = tobit(num(first)?);
            for v in it {
                acc = f(acc, tobit(num(v)?));
            }
            Ok(acc as f64)
        })
    };
    t.raw_set("band", fold(lua, |a, b| a & b)?)?;
    t.raw_set("bor", fold(lua, |a, b| a | b)?)?;
    t.raw_set("bxor", fold(lua, |a, b| a ^ b)?)?;
    let unary = |lua: &Lua, f: fn(i32) -> i32| {
        lua.create_function(move |_, v: Value| Ok(f(tobit(num(&v)?)) as f64))
    };
    t.raw_set("tobit", unary(lua, |a| a)?)?;
    t.raw_set("bnot", unary(lua, |a| !a)?)?;
    t.raw_set("bswap", unary(lua, |a| a.swap_bytes())?)?;
    let shift = |lua: &Lua, f: fn(i32, u32) -> i32| {
        lua.create_function(move |_, (v, n): (Value, Value)| {
            Ok(f(tobit(num(&v)?), (tobit(num(&n)?) & 31) as u32) as f64)
        })
    };
    t.raw_set("lshift", shift(lua, |a, n| ((a as u32) << n) as i32)?)?;
    t.raw_set("rshift", shift(lua, |a, n| ((a as u32) >> n) as i32)?)?;
    t.raw_set("arshift", shift(lua, |a, n| a >> n)?)?;
    t.raw_set("rol", shift(lua, |a, n| (a as u32).rotate_left(n) as i32)?)?;
    t.raw_set("ror", shift(lua, |a, n| (a as u32).rotate_right(n) as i32)?)?;
    t.raw_set(
        "tohex",
        lua.create_function(|_, (v, n): (Value, Option<Value>)| {
            let x = tobit(num(&v)?) as u32;
            let mut n = match n {
                Some(n) => tobit(num(&n)?),
                None => 8,
            };
            let upper = n < 0;
            if upper {
                n = -n;
            }
            let n = n.clamp(1, 8) as usize;
            let full = if upper {
                format!("{x:08X}")
            } else {
                format!("{x:08x}")
            };
            Ok(full[8 - n..].to_string())
        })?,
    )?;
    Ok(t)
}

fn depth(v: &Value) -> Option<usize> {
    match v {
        Value::Integer(i) if *i >= 1 => Some((*i as usize).min(SCRIPT_JSON_DEPTH_MAX)),
        Value::Number(n) if *n >= 1.0 => Some((*n as usize).min(SCRIPT_JSON_DEPTH_MAX)),
        _ => None,
    }
}

fn truthy(v: &Value) -> bool {
    !matches!(v, Value::Nil | Value::Boolean(false))
}

/// cjson's settings, per Lua state.
struct JsonConfig {
    encode_depth: Cell<usize>,
    decode_depth: Cell<usize>,
    encode_invalid: Cell<bool>,
    decode_invalid: Cell<bool>,
}

/// `cjson.null`: the light userdata lua-cjson decodes JSON null to.
fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

fn is_null(v: &Value) -> bool {
    matches!(v, Value::LightUserData(p) if p.0.is_null())
}

/// The raw `cjson` functions: `encode` answers (text) or (nil, error) and `decode` answers
/// (true, value) or (false, error); the prelude turns the failures into Lua errors.
pub fn cjson(lua: &Lua) -> mlua::Result<Table> {
    let cfg = Rc::new(JsonConfig {
        encode_depth: Cell::new(SCRIPT_JSON_DEPTH_MAX),
        decode_depth: Cell::new(SCRIPT_JSON_DEPTH_MAX),
        encode_invalid: Cell::new(false),
        decode_invalid: Cell::new(false),
    });
    let t = lua.create_table()?;
    let c = cfg.clone();
    t.raw_set(
        "encode",
        lua.create_function(move |lua, v: Value| {
            let mut out = Vec::new();
            match encode(&v, &c, 0, &mut out) {
                Ok(()) => Ok((Some(lua.create_string(&out)?), None)),
                Err(e) => Ok((None, Some(e))),
            }
        })?,
    )?;
    let c = cfg.clone();
    t.raw_set(
        "decode",
        lua.create_function(move |lua, s: mlua::String| {
            let bytes = s.as_bytes();
            let mut p = Parser {
                b: &bytes,
                pos: 0,
                depth_max: c.decode_depth.get(),
                invalid: c.decode_invalid.get(),
            };
            match p.document(lua) {
                Ok(v) => Ok((true, v)),
                Err(JsonError::Lua(e)) => Err(e),
                Err(JsonError::Text(e)) => Ok((false, Value::String(lua.create_string(&e)?))),
            }
        })?,
    )?;
    t.raw_set("null", null())?;
    let setting = |lua: &Lua, f: fn(&JsonConfig, &Value)| {
        let c = cfg.clone();
        lua.create_function(move |_, args: MultiValue| {
            if let Some(v) = args.front() {
                f(&c, v);
            }
            Ok(())
        })
    };
    t.raw_set(
        "encode_max_depth",
        setting(lua, |c, v| {
            if let Some(d) = depth(v) {
                c.encode_depth.set(d)
            }
        })?,
    )?;
    t.raw_set(
        "decode_max_depth",
        setting(lua, |c, v| {
            if let Some(d) = depth(v) {
                c.decode_depth.set(d)
            }
        })?,
    )?;
    t.raw_set(
        "encode_invalid_numbers",
        setting(lua, |c, v| c.encode_invalid.set(truthy(v)))?,
    )?;
    t.raw_set(
        "decode_invalid_numbers",
        setting(lua, |c, v| c.decode_invalid.set(truthy(v)))?,
    )?;
    // Settings pinion's encoder has no use for: accepted, no effect.
    for name in [
        "encode_keep_buffer",
        "encode_sparse_array",
        "encode_number_precision",
    ] {
        t.raw_set(name, setting(lua, |_, _| {})?)?;
    }
    t.raw_set("_NAME", "cjson")?;
    t.raw_set("_VERSION", "2.1.0")?;
    Ok(t)
}

fn encode_number(x: f64, cfg: &JsonConfig, out: &mut Vec<u8>) -> Result<(), String> {
    if x.is_finite() {
        out.extend_from_slice(fmt_g(x, 14).as_bytes());
        Ok(())
    } else if cfg.encode_invalid.get() {
        let s = if x.is_nan() {
            "nan"
        } else if x > 0.0 {
            "inf"
        } else {
            "-inf"
        };
        out.extend_from_slice(s.as_bytes());
        Ok(())
    } else {
        Err("Cannot serialise number: must not be NaN or Inf".into())
    }
}

fn encode_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            c if c < 0x20 || c == 0x7f => {
                out.extend_from_slice(format!("\\u{c:04x}").as_bytes());
            }
            c => out.push(c),
        }
    }
    out.push(b'"');
}

fn encode(v: &Value, cfg: &JsonConfig, depth: usize, out: &mut Vec<u8>) -> Result<(), String> {
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(i) => encode_number(*i as f64, cfg, out)?,
        Value::Number(n) => encode_number(*n, cfg, out)?,
        Value::String(s) => encode_string(&s.as_bytes(), out),
        v if is_null(v) => out.extend_from_slice(b"null"),
        Value::Table(t) => {
            let depth = depth + 1;
            if depth > cfg.encode_depth.get() {
                return Err(format!("Cannot serialise, excessive nesting ({depth})"));
            }
            encode_table(t, cfg, depth, out)?;
        }
        other => {
            return Err(format!(
                "Cannot serialise {}: type not supported",
                other.type_name()
            ))
        }
    }
    Ok(())
}

/// lua-cjson's array test: every key a positive integer, and not excessively sparse.
fn array_length(t: &Table) -> Result<Option<usize>, String> {
    let (mut max, mut items) = (0usize, 0usize);
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair.map_err(|e| e.to_string())?;
        let idx = match k {
            Value::Integer(i) if i >= 1 => i as usize,
            Value::Number(n) if n >= 1.0 && n.fract() == 0.0 && n < 1e15 => n as usize,
            _ => return Ok(None),
        };
        max = max.max(idx);
        items += 1;
    }
    if items == 0 {
        return Ok(None);
    }
    if max > items * 2 && max > 10 {
        return Err("Cannot serialise table: excessively sparse array".into());
    }
    Ok(Some(max))
}

fn encode_table(
    t: &Table,
    cfg: &JsonConfig,
    depth: usize,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    if let Some(n) = array_length(t)? {
        out.push(b'[');
        for i in 1..=n {
            if i > 1 {
                out.push(b',');
            }
            let v: Value = t.raw_get(i).map_err(|e| e.to_string())?;
            encode(&v, cfg, depth, out)?;
        }
        out.push(b']');
        return Ok(());
    }
    out.push(b'{');
    let mut first = true;
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair.map_err(|e| e.to_string())?;
        if !first {
            out.push(b',');
        }
        first = false;
        match &k {
            Value::String(s) => encode_string(&s.as_bytes(), out),
            Value::Integer(i) => encode_string(fmt_g(*i as f64, 14).as_bytes(), out),
            Value::Number(n) => encode_string(fmt_g(*n, 14).as_bytes(), out),
            _ => return Err("Cannot serialise table: table key must be a number or string".into()),
        }
        out.push(b':');
        encode(&v, cfg, depth, out)?;
    }
    out.push(b'}');
    Ok(())
}

enum JsonError {
    /// Lua itself failed (out of memory ...).
    Lua(mlua::Error),
    /// The text is not JSON: lua-cjson's message.
    Text(String),
}

impl From<mlua::Error> for JsonError {
    fn from(e: mlua::Error) -> Self {
        JsonError::Lua(e)
    }
}

struct Parser<'a> {
    b: &'a [u8],
    pos: usize,
    depth_max: usize,
    invalid: bool,
}

impl Parser<'_> {
    fn fail<T>(&self, what: &str) -> Result<T, JsonError> {
        Err(JsonError::Text(format!(
            "Expected {what} but found invalid token at character {}",
            self.pos + 1
        )))
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.b.get(self.pos) {
            if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn document(&mut self, lua: &Lua) -> Result<Value, JsonError> {
        let v = self.value(lua, 0)?;
        self.skip_ws();
        if self.pos < self.b.len() {
            return self.fail("the end");
        }
        Ok(v)
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        if self.b[self.pos..].starts_with(word) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, lua: &Lua, depth: usize) -> Result<Value, JsonError> {
        self.skip_ws();
        let Some(&c) = self.b.get(self.pos) else {
            return self.fail("value");
        };
        match c {
            b'{' | b'[' => {
                let depth = depth + 1;
                if depth > self.depth_max {
                    return Err(JsonError::Text(format!(
                        "Found too many nested data structures ({depth}) at character {}",
                        self.pos + 1
                    )));
                }
                if c == b'{' {
                    self.object(lua, depth)
                } else {
                    self.array(lua, depth)
                }
            }
            b'"' => Ok(Value::String(lua.create_string(self.string()?)?)),
            b't' if self.literal(b"true") => Ok(Value::Boolean(true)),
            b'f' if self.literal(b"false") => Ok(Value::Boolean(false)),
            b'n' if self.literal(b"null") => Ok(null()),
            _ => self.number(),
        }
    }

    fn object(&mut self, lua: &Lua, depth: usize) -> Result<Value, JsonError> {
        self.pos += 1;
        let t = lua.create_table()?;
        self.skip_ws();
        if self.b.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            return Ok(Value::Table(t));
        }
        loop {
            self.skip_ws();
            if self.b.get(self.pos) != Some(&b'"') {
                return self.fail("object key string");
            }
            let k = self.string()?;
            self.skip_ws();
            if self.b.get(self.pos) != Some(&b':') {
                return self.fail("colon");
            }
            self.pos += 1;
            let v = self.value(lua, depth)?;
            t.raw_set(lua.create_string(&k)?, v)?;
            self.skip_ws();
            match self.b.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Table(t));
                }
                _ => return self.fail("comma or object end"),
            }
        }
    }

    fn array(&mut self, lua: &Lua, depth: usize) -> Result<Value, JsonError> {
        self.pos += 1;
        let t = lua.create_table()?;
        self.skip_ws();
        if self.b.get(self.pos) == Some(&b']') {
            self.pos += 1;
            return Ok(Value::Table(t));
        }
        let mut i = 1;
        loop {
            let v = self.value(lua, depth)?;
            t.raw_set(i, v)?;
            i += 1;
            self.skip_ws();
            match self.b.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Table(t));
                }
                _ => return self.fail("comma or array end"),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let Some(h) = self.b.get(self.pos..self.pos + 4) else {
            return self.fail("unicode escape");
        };
        let v = std::str::from_utf8(h)
            .ok()
            .and_then(|s| u32::from_str_radix(s, 16).ok());
        match v {
            Some(v) => {
                self.pos += 4;
                Ok(v)
            }
            None => self.fail("unicode escape"),
        }
    }

    fn string(&mut self) -> Result<Vec<u8>, JsonError> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.b.get(self.pos) else {
                return self.fail("string end");
            };
            self.pos += 1;
            match c {
                b'"' => return Ok(out),
                b'\\' => {
                    let Some(&e) = self.b.get(self.pos) else {
                        return self.fail("escape");
                    };
                    self.pos += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let mut cp = self.hex4()?;
                            if (0xd800..0xdc00).contains(&cp) && self.literal(b"\\u") {
                                let lo = self.hex4()?;
                                if (0xdc00..0xe000).contains(&lo) {
                                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                                }
                            }
                            let ch = char::from_u32(cp).unwrap_or('\u{fffd}');
                            let mut b = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                        }
                        _ => return self.fail("escape"),
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn number(&mut self) -> Result<Value, JsonError> {
        let start = self.pos;
        while let Some(c) = self.b.get(self.pos) {
            if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.') {
                self.pos += 1;
            } else {
                break;
            }
        }
        let text = std::str::from_utf8(&self.b[start..self.pos]).unwrap_or("");
        let lower = text.to_ascii_lowercase();
        let special = matches!(
            lower.as_str(),
            "nan" | "-nan" | "inf" | "-inf" | "infinity" | "-infinity"
        );
        let parsed = if special && !self.invalid {
            None
        } else if special {
            lower.parse::<f64>().ok()
        } else {
            let digits_ok = !text.is_empty()
                && text
                    .bytes()
                    .all(|c| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E'));
            if digits_ok {
                text.parse::<f64>().ok()
            } else {
                None
            }
        };
        match parsed {
            Some(n) => Ok(Value::Number(n)),
            None => {
                self.pos = start;
                self.fail("value")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tobit_wraps_like_luabitop() {
        assert_eq!(tobit(1.0), 1);
        assert_eq!(tobit(4_294_967_295.0), -1);
        assert_eq!(tobit(4_294_967_296.0), 0);
        assert_eq!(tobit(-1.0), -1);
        assert_eq!(tobit(2.5), 2);
        assert_eq!(tobit(f64::NAN), 0);
    }

    fn eval(lua: &Lua, code: &str) -> Value {
        lua.load(code).eval().unwrap()
    }

    #[test]
    fn bit_operations() {
        let lua = Lua::new();
        lua.globals().set("bit", bit(&lua).unwrap()).unwrap();
        let n = |c: &str| match eval(&lua, c) {
            Value::Integer(i) => i as f64,
            Value::Number(n) => n,
            v => panic!("{c}: {v:?}"),
        };
        assert_eq!(n("return bit.bor(1,2,4,8,16,32,64,128)"), 255.0);
        assert_eq!(n("return bit.bxor(1,2)"), 3.0);
        assert_eq!(n("return bit.band(1)"), 1.0);
        assert_eq!(n("return bit.lshift(1, 31)"), -2147483648.0);
        assert_eq!(n("return bit.rshift(-1, 28)"), 15.0);
        assert_eq!(n("return bit.arshift(-256, 4)"), -16.0);
        assert_eq!(n("return bit.bnot(0)"), -1.0);
        let s: String = lua.load("return bit.tohex(255, -4)").eval().unwrap();
        assert_eq!(s, "00FF");
        let s: String = lua.load("return bit.tohex(-1)").eval().unwrap();
        assert_eq!(s, "ffffffff");
    }

    #[test]
    fn json_round_trip() {
        let lua = Lua::new();
        lua.globals().set("cjson", cjson(&lua).unwrap()).unwrap();
        let s: String = lua
            .load(r#"return (cjson.encode({1, "a/b", true, {x = 1.5}}))"#)
            .eval()
            .unwrap();
        assert_eq!(s, r#"[1,"a\/b",true,{"x":1.5}]"#);
        let s: String = lua
            .load(r#"local ok, t = cjson.decode('[0.0, -5e3, -1, 0.3e-3, 1023.2, 0e10]') return table.concat(t, ' ')"#)
            .eval()
            .unwrap();
        assert_eq!(s, "0 -5000 -1 0.0003 1023.2 0");
        let s: String = lua
            .load(r#"local ok, t = cjson.decode([[{"a": "\u00e9\n", "b": null}]]) return t.a .. tostring(t.b == cjson.null)"#)
            .eval()
            .unwrap();
        assert_eq!(s, "é\ntrue");
        let (ok, e): (bool, String) = lua.load("return cjson.decode('[1,')").eval().unwrap();
        assert!(!ok && e.contains("at character"), "{e}");
        let (s, e): (Option<String>, String) = lua
            .load("return cjson.encode({[false] = 1})")
            .eval()
            .unwrap();
        assert!(s.is_none() && e.contains("table key"), "{e}");
        let (s, _): (Option<String>, Option<String>) =
            lua.load("return cjson.encode(0/0)").eval().unwrap();
        assert!(s.is_none());
        let s: String = lua.load("return (cjson.encode({}))").eval().unwrap();
        assert_eq!(s, "{}");
    }
}
