//! Sorted-set scores: printed as Redis 7.0 prints them (`%.17g`, [`ScoreText`], the
//! [`score`] reply) and read as Redis reads them (`string2d` for scores, increments,
//! weights and timeouts; `strtod` for range bounds, hexadecimal included).

use std::fmt::Write as _;

use crate::proto::resp::write::Out;
/// A score as Redis 7.0 prints it (`%.17g`; `inf`, `-inf`, `-0`).
pub(crate) struct ScoreText {
    b: [u8; 40],
    n: usize,
}

impl std::fmt::Write for ScoreText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.n + s.len();
        if end > self.b.len() {
            return Err(std::fmt::Error);
        }
        self.b[self.n..end].copy_from_slice(s.as_bytes());
        self.n = end;
        Ok(())
    }
}

impl ScoreText {
    pub(crate) fn new(f: f64) -> ScoreText {
        let mut t = ScoreText { b: [0; 40], n: 0 };
        if f.is_infinite() {
            let _ = t.write_str(if f > 0.0 { "inf" } else { "-inf" });
        } else if f == 0.0 {
            let _ = t.write_str(if f.is_sign_negative() { "-0" } else { "0" });
        } else if f.fract() == 0.0 && f.abs() < 1e17 {
            let _ = t.write_str(itoa::Buffer::new().format(f as i64));
        } else {
            t.g17(f);
        }
        t
    }

    /// `%.17g` of a finite, non-zero value.
    fn g17(&mut self, f: f64) {
        let mut e = ScoreText { b: [0; 40], n: 0 };
        let _ = write!(e, "{:.16e}", f.abs());
        let text = &e.b[..e.n];
        // "d.dddddddddddddddde<exp>": 17 significant digits and a decimal exponent.
        let Some(epos) = text.iter().position(|&c| c == b'e') else {
            return;
        };
        let mut digits = [0u8; 17];
        let mut nd = 0;
        for &c in &text[..epos] {
            if c.is_ascii_digit() && nd < 17 {
                digits[nd] = c;
                nd += 1;
            }
        }
        let exp: i32 = std::str::from_utf8(&text[epos + 1..])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        // Trailing zeros of the significand are not printed (%g).
        while nd > 1 && digits[nd - 1] == b'0' {
            nd -= 1;
        }
        let digits = &digits[..nd];
        if f < 0.0 {
            self.push(b'-');
        }
        if !(-4..17).contains(&exp) {
            self.push(digits[0]);
            if nd > 1 {
                self.push(b'.');
                digits[1..].iter().for_each(|&d| self.push(d));
            }
            self.push(b'e');
            self.push(if exp < 0 { b'-' } else { b'+' });
            let a = exp.unsigned_abs();
            if a < 10 {
                self.push(b'0');
            }
            let _ = self.write_str(itoa::Buffer::new().format(a));
        } else if exp >= 0 {
            let int = exp as usize + 1;
            for i in 0..int {
                self.push(digits.get(i).copied().unwrap_or(b'0'));
            }
            if nd > int {
                self.push(b'.');
                digits[int..].iter().for_each(|&d| self.push(d));
            }
        } else {
            self.push(b'0');
            self.push(b'.');
            for _ in 0..(-exp - 1) {
                self.push(b'0');
            }
            digits.iter().for_each(|&d| self.push(d));
        }
    }

    fn push(&mut self, c: u8) {
        if self.n < self.b.len() {
            self.b[self.n] = c;
            self.n += 1;
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.b[..self.n]
    }
}

/// A score reply: a RESP3 double, a bulk string in RESP2.
pub(super) fn score(out: &mut Out, f: f64) {
    let t = ScoreText::new(f);
    if out.resp3 {
        out.buf.push(b',');
        out.buf.extend_from_slice(t.as_bytes());
        out.buf.extend_from_slice(b"\r\n");
    } else {
        out.bulk(t.as_bytes());
    }
}

/// C's isspace.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// A float as Redis's `string2d` reads one (scores, increments, weights, timeouts): the
/// whole argument, no leading space, no NaN, no overflow to infinity or underflow to zero.
pub(super) fn parse_float(b: &[u8]) -> Option<f64> {
    if b.first().is_none_or(|&c| is_space(c)) {
        return None;
    }
    let s = std::str::from_utf8(b).ok()?;
    let v = strtod(s)?;
    if v.is_nan() {
        return None;
    }
    let body = s.trim_start_matches(['+', '-']);
    if is_hex(body) {
        return v.is_finite().then_some(v);
    }
    if v.is_infinite()
        && !body.eq_ignore_ascii_case("inf")
        && !body.eq_ignore_ascii_case("infinity")
    {
        return None;
    }
    if v == 0.0 {
        let mantissa = body.split(['e', 'E']).next().unwrap_or("");
        if mantissa.bytes().any(|c| (b'1'..=b'9').contains(&c)) {
            return None;
        }
    }
    Some(v)
}

/// A range bound's number as `strtod` reads it in `zslParseRange`: leading space allowed,
/// the rest whole, no NaN; an empty string reads as 0.
pub(super) fn parse_bound(b: &[u8]) -> Option<f64> {
    if b.is_empty() {
        return Some(0.0);
    }
    let start = b.iter().position(|&c| !is_space(c))?;
    let v = strtod(std::str::from_utf8(&b[start..]).ok()?)?;
    (!v.is_nan()).then_some(v)
}

fn is_hex(body: &str) -> bool {
    body.len() > 2 && body[..2].eq_ignore_ascii_case("0x")
}

/// The whole of `s` as C's `strtod` reads a number: decimal (Rust's grammar is the same,
/// `inf`, `infinity` and `nan` included) or hexadecimal (`0x1.8p3`).
fn strtod(s: &str) -> Option<f64> {
    if let Ok(v) = s.parse::<f64>() {
        return Some(v);
    }
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if !is_hex(body) {
        return None;
    }
    let body = &body[2..];
    let (mant, exp) = match body.find(['p', 'P']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = match mant.find('.') {
        Some(i) => (&mant[..i], &mant[i + 1..]),
        None => (mant, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    // Up to 16 significant hex digits are kept (64 bits); later ones only scale.
    let mut m: u64 = 0;
    let mut shift: i64 = 0;
    let mut kept = 0;
    for (i, c) in int.chars().chain(frac.chars()).enumerate() {
        let d = c.to_digit(16)? as u64;
        let in_frac = i >= int.len();
        if kept < 16 {
            if m != 0 || d != 0 {
                kept += 1;
            }
            m = m * 16 + d;
            if in_frac {
                shift -= 4;
            }
        } else if !in_frac {
            shift += 4;
        }
    }
    let e: i64 = match exp {
        Some(e) => e.parse().ok()?,
        None => 0,
    };
    let v = m as f64 * 2f64.powi((shift + e).clamp(-2000, 2000) as i32);
    Some(if neg { -v } else { v })
}

/// `getPositiveLongFromObjectOrReply`-style parsing: an integer within `min..=max`, else
/// `err` (a non-integer gets `err` too when one is given, as in Redis).
pub(super) fn parse_long(b: &[u8], min: i64, max: i64) -> Option<i64> {
    crate::proto::resp::parse::parse_i64(b).filter(|v| (min..=max).contains(v))
}
