//! `cmsgpack` for scripts (lua-cmsgpack 0.4.0's behaviour, which Redis loads): `pack(...)`
//! writes each argument as MessagePack, one after another; `unpack(s)` reads every value
//! back; `unpack_one(s, offset)` and `unpack_limit(s, limit, offset)` read some and return the
//! offset to go on from (-1 at the end).
//!
//! Encoding as lua-cmsgpack does: a number that is an integer in i64 takes the smallest
//! integer form, another number a float32 when that is exact, else a float64; a table whose
//! keys are exactly 1..n is an array, any other a map; tables nested deeper than
//! [`SCRIPT_MSGPACK_DEPTH_MAX`] are written as nil (so a table that contains itself is
//! written as a bounded deep copy). Decoding reads every value kind but extensions.

use mlua::{Lua, MultiValue, Table, Value};

use crate::limits::{SCRIPT_MSGPACK_DEPTH_MAX, SCRIPT_MSGPACK_RETURNS_MAX};

pub fn cmsgpack(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "pack",
        lua.create_function(|lua, args: MultiValue| {
            if args.is_empty() {
                return Err(mlua::Error::runtime(
                    "MessagePack pack needs input. Expected at least one argument.",
                ));
            }
            let mut out = Vec::new();
            for v in args.iter() {
                encode(v, 0, &mut out)?;
            }
            lua.create_string(&out)
        })?,
    )?;
    t.raw_set(
        "unpack",
        lua.create_function(|lua, s: mlua::String| {
            let b = s.as_bytes();
            let mut r = Reader { b: &b, pos: 0 };
            let mut vals = Vec::new();
            while r.pos < r.b.len() {
                if vals.len() >= SCRIPT_MSGPACK_RETURNS_MAX {
                    return Err(too_many());
                }
                vals.push(r.value(lua)?);
            }
            Ok(MultiValue::from_iter(vals))
        })?,
    )?;
    t.raw_set(
        "unpack_one",
        lua.create_function(|lua, (s, offset): (mlua::String, Option<i64>)| {
            unpack_some(lua, &s.as_bytes(), 1, offset.unwrap_or(0))
        })?,
    )?;
    t.raw_set(
        "unpack_limit",
        lua.create_function(
            |lua, (s, limit, offset): (mlua::String, i64, Option<i64>)| {
                unpack_some(
                    lua,
                    &s.as_bytes(),
                    limit.max(0) as usize,
                    offset.unwrap_or(0),
                )
            },
        )?,
    )?;
    t.raw_set("_NAME", "cmsgpack")?;
    t.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    Ok(t)
}

/// Read up to `limit` values (0: all) from `offset`; the offset after them (-1 at the end)
/// first, then the values.
fn unpack_some(lua: &Lua, b: &[u8], limit: usize, offset: i64) -> mlua::Result<MultiValue> {
    let start = usize::try_from(offset)
        .ok()
        .filter(|&o| o <= b.len())
        .ok_or_else(|| mlua::Error::runtime("Start offset greater than input length."))?;
    let mut r = Reader { b, pos: start };
    let mut vals = Vec::new();
    while r.pos < b.len() && (limit == 0 || vals.len() < limit) {
        if vals.len() >= SCRIPT_MSGPACK_RETURNS_MAX {
            return Err(too_many());
        }
        vals.push(r.value(lua)?);
    }
    let next = if r.pos >= b.len() { -1 } else { r.pos as i64 };
    let mut out = vec![Value::Integer(next)];
    out.extend(vals);
    Ok(MultiValue::from_iter(out))
}

fn encode(v: &Value, depth: usize, out: &mut Vec<u8>) -> mlua::Result<()> {
    match v {
        Value::Nil => out.push(0xc0),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => int(*i, out),
        Value::Number(n) => number(*n, out),
        Value::String(s) => bytes(&s.as_bytes(), out),
        Value::Table(t) if depth >= SCRIPT_MSGPACK_DEPTH_MAX => {
            let _ = t;
            out.push(0xc0)
        }
        Value::Table(t) => table(t, depth, out)?,
        // Functions, userdata and threads have no MessagePack form: nil, as lua-cmsgpack.
        _ => out.push(0xc0),
    }
    Ok(())
}

fn number(n: f64, out: &mut Vec<u8>) {
    if n.fract() == 0.0 && n >= i64::MIN as f64 && n < i64::MAX as f64 {
        return int(n as i64, out);
    }
    let f = n as f32;
    if f64::from(f) == n {
        out.push(0xca);
        out.extend_from_slice(&f.to_bits().to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_bits().to_be_bytes());
    }
}

fn int(i: i64, out: &mut Vec<u8>) {
    if i >= 0 {
        let u = i as u64;
        if u <= 0x7f {
            out.push(u as u8);
        } else if u <= 0xff {
            out.extend_from_slice(&[0xcc, u as u8]);
        } else if u <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(u as u16).to_be_bytes());
        } else if u <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(u as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&u.to_be_bytes());
        }
    } else if i >= -32 {
        out.push(i as i8 as u8);
    } else if i >= i64::from(i8::MIN) {
        out.extend_from_slice(&[0xd0, i as i8 as u8]);
    } else if i >= i64::from(i16::MIN) {
        out.push(0xd1);
        out.extend_from_slice(&(i as i16).to_be_bytes());
    } else if i >= i64::from(i32::MIN) {
        out.push(0xd2);
        out.extend_from_slice(&(i as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

fn bytes(b: &[u8], out: &mut Vec<u8>) {
    let n = b.len();
    if n < 32 {
        out.push(0xa0 | n as u8);
    } else if n <= 0xff {
        out.extend_from_slice(&[0xd9, n as u8]);
    } else if n <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
    out.extend_from_slice(b);
}

/// Array when its keys are exactly 1..n (lua-cmsgpack's test): its length, else None.
fn array_len(t: &Table) -> mlua::Result<Option<usize>> {
    let (mut max, mut count) = (0f64, 0usize);
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, _) = pair?;
        let n = match k {
            Value::Integer(i) => i as f64,
            Value::Number(n) => n,
            _ => return Ok(None),
        };
        if n < 1.0 || n.fract() != 0.0 {
            return Ok(None);
        }
        max = max.max(n);
        count += 1;
    }
    Ok((max == count as f64).then_some(count))
}

fn header(n: usize, fix: u8, w16: u8, w32: u8, out: &mut Vec<u8>) {
    if n < 16 {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(w16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(w32);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn table(t: &Table, depth: usize, out: &mut Vec<u8>) -> mlua::Result<()> {
    if let Some(n) = array_len(t)? {
        header(n, 0x90, 0xdc, 0xdd, out);
        for i in 1..=n {
            let v: Value = t.raw_get(i)?;
            encode(&v, depth + 1, out)?;
        }
        return Ok(());
    }
    // Two passes, holding one pair at a time: a Lua reference per pair held at once would
    // exhaust mlua's reference stack on a large table.
    let mut n = 0usize;
    for pair in t.clone().pairs::<Value, Value>() {
        pair?;
        n += 1;
    }
    header(n, 0x80, 0xde, 0xdf, out);
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, v) = pair?;
        encode(&k, depth + 1, out)?;
        encode(&v, depth + 1, out)?;
    }
    Ok(())
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

/// More top-level values than a Lua call may return at once.
fn too_many() -> mlua::Error {
    mlua::Error::runtime("Too many values in input to return at once.")
}

fn missing() -> mlua::Error {
    mlua::Error::runtime("Missing bytes in input.")
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> mlua::Result<&[u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(missing)?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn uint(&mut self, n: usize) -> mlua::Result<u64> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |a, &x| (a << 8) | u64::from(x)))
    }

    fn value(&mut self, lua: &Lua) -> mlua::Result<Value> {
        self.value_at(lua, 0)
    }

    fn value_at(&mut self, lua: &Lua, depth: usize) -> mlua::Result<Value> {
        if depth > crate::limits::SCRIPT_MSGPACK_DECODE_DEPTH_MAX {
            return Err(mlua::Error::runtime("Bad data format in input."));
        }
        let tag = self.take(1)?[0];
        let num = |x: f64| Ok(Value::Number(x));
        match tag {
            0x00..=0x7f => num(f64::from(tag)),
            0x80..=0x8f => self.map(lua, usize::from(tag & 0x0f), depth),
            0x90..=0x9f => self.array(lua, usize::from(tag & 0x0f), depth),
            0xa0..=0xbf => self.string(lua, usize::from(tag & 0x1f)),
            0xc0 => Ok(Value::Nil),
            0xc2 => Ok(Value::Boolean(false)),
            0xc3 => Ok(Value::Boolean(true)),
            0xc4 | 0xd9 => {
                let n = self.uint(1)? as usize;
                self.string(lua, n)
            }
            0xc5 | 0xda => {
                let n = self.uint(2)? as usize;
                self.string(lua, n)
            }
            0xc6 | 0xdb => {
                let n = self.uint(4)? as usize;
                self.string(lua, n)
            }
            0xca => num(f64::from(f32::from_bits(self.uint(4)? as u32))),
            0xcb => num(f64::from_bits(self.uint(8)?)),
            0xcc => num(self.uint(1)? as f64),
            0xcd => num(self.uint(2)? as f64),
            0xce => num(self.uint(4)? as f64),
            0xcf => num(self.uint(8)? as f64),
            0xd0 => num(f64::from(self.uint(1)? as u8 as i8)),
            0xd1 => num(f64::from(self.uint(2)? as u16 as i16)),
            0xd2 => num(f64::from(self.uint(4)? as u32 as i32)),
            0xd3 => num(self.uint(8)? as i64 as f64),
            0xdc => {
                let n = self.uint(2)? as usize;
                self.array(lua, n, depth)
            }
            0xdd => {
                let n = self.uint(4)? as usize;
                self.array(lua, n, depth)
            }
            0xde => {
                let n = self.uint(2)? as usize;
                self.map(lua, n, depth)
            }
            0xdf => {
                let n = self.uint(4)? as usize;
                self.map(lua, n, depth)
            }
            0xe0..=0xff => num(f64::from(tag as i8)),
            _ => Err(mlua::Error::runtime("Bad data format in input.")),
        }
    }

    fn string(&mut self, lua: &Lua, n: usize) -> mlua::Result<Value> {
        let s = self.take(n)?;
        Ok(Value::String(lua.create_string(s)?))
    }

    fn array(&mut self, lua: &Lua, n: usize, depth: usize) -> mlua::Result<Value> {
        // Every element takes a byte at least: a count past the input is refused before any
        // table is sized by it.
        if n > self.b.len() - self.pos {
            return Err(missing());
        }
        let t = lua.create_table_with_capacity(n, 0)?;
        for i in 1..=n {
            let v = self.value_at(lua, depth + 1)?;
            t.raw_set(i, v)?;
        }
        Ok(Value::Table(t))
    }

    fn map(&mut self, lua: &Lua, n: usize, depth: usize) -> mlua::Result<Value> {
        if n.saturating_mul(2) > self.b.len() - self.pos {
            return Err(missing());
        }
        let t = lua.create_table_with_capacity(0, n)?;
        for _ in 0..n {
            let k = self.value_at(lua, depth + 1)?;
            let v = self.value_at(lua, depth + 1)?;
            if !matches!(k, Value::Nil) {
                t.raw_set(k, v)?;
            }
        }
        Ok(Value::Table(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(lua: &Lua, code: &str) -> String {
        lua.globals()
            .set("cmsgpack", cmsgpack(lua).unwrap())
            .unwrap();
        let s: mlua::String = lua.load(code).eval().unwrap();
        s.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn packs_as_lua_cmsgpack_and_reads_back() {
        let lua = Lua::new();
        assert_eq!(hex(&lua, "return cmsgpack.pack(0.1)"), "cb3fb999999999999a");
        assert_eq!(
            hex(&lua, "return cmsgpack.pack(-1099511627776)"),
            "d3ffffff0000000000"
        );
        assert_eq!(
            hex(&lua, "return cmsgpack.pack(1, -1, 300, 'ab', true, nil)"),
            "01ffcd012ca26162c3c0"
        );
        assert_eq!(hex(&lua, "return cmsgpack.pack({1, 2}, {})"), "92010290");
        let ok: bool = lua
            .load(
                r#"
                local t = {s = string.rep("x", 70000), a = {1, 2, 3}, m = {k = -5.5}, b = false}
                local r = cmsgpack.unpack(cmsgpack.pack(t))
                local off, one = cmsgpack.unpack_one(cmsgpack.pack(7, 8), 0)
                local off2, two = cmsgpack.unpack_limit(cmsgpack.pack(7, 8), 1, off)
                return #r.s == 70000 and r.a[3] == 3 and r.m.k == -5.5 and r.b == false
                    and one == 7 and off == 1 and two == 8 and off2 == -1
            "#,
            )
            .eval()
            .unwrap();
        assert!(ok);
        // Large tables pack and unpack without holding a Lua reference per element.
        let big: bool = lua
            .load(
                r#"
                local m = {}
                for i = 1, 100000 do m[tostring(i)] = i end
                local r = cmsgpack.unpack(cmsgpack.pack(m))
                return r["99999"] == 99999
            "#,
            )
            .eval()
            .unwrap();
        assert!(big);
        let many: mlua::Result<Value> = lua
            .load("return cmsgpack.unpack(string.rep('\\1', 100000))")
            .eval();
        assert!(many.is_err());
        // Truncated or hostile input is an error, never a panic or a huge table.
        for bad in [
            "'\\220\\255\\255'",
            "'\\223\\127\\255\\255\\255'",
            "'\\205'",
            "'\\193'",
        ] {
            let r: mlua::Result<Value> = lua.load(format!("return cmsgpack.unpack({bad})")).eval();
            assert!(r.is_err(), "{bad}");
        }
    }
}
