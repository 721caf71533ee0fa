//! RESP reply writing into a connection's output buffer.
//!
//! [`Out`] knows whether the connection speaks RESP2 or RESP3 (after `HELLO 3`) and picks the
//! encoding of nulls, maps, sets and doubles accordingly; everything else is shared.

/// Append `*<n>\r\n`.
#[inline]
pub fn array_len(buf: &mut Vec<u8>, n: usize) {
    header(buf, b'*', n as i64);
}

#[inline]
fn header(buf: &mut Vec<u8>, tag: u8, n: i64) {
    buf.push(tag);
    buf.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    buf.extend_from_slice(b"\r\n");
}

/// Writes replies for one connection.
pub struct Out<'a> {
    pub buf: &'a mut Vec<u8>,
    pub resp3: bool,
}

impl<'a> Out<'a> {
    pub fn new(buf: &'a mut Vec<u8>, resp3: bool) -> Self {
        Out { buf, resp3 }
    }

    #[inline]
    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }

    #[inline]
    pub fn simple(&mut self, s: &str) {
        self.buf.push(b'+');
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    /// An error reply; `msg` starts with its code word (`ERR`, `WRONGTYPE`, `OOM` ...).
    #[inline]
    pub fn error(&mut self, msg: &str) {
        self.buf.push(b'-');
        // An error line must not contain CR or LF; client-supplied text can reach here.
        self.buf.extend(
            msg.bytes()
                .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
        self.buf.extend_from_slice(b"\r\n");
    }

    #[inline]
    pub fn int(&mut self, n: i64) {
        header(self.buf, b':', n);
    }

    #[inline]
    pub fn bulk(&mut self, b: &[u8]) {
        // Room for all of it at once: a large value is copied once, not grown into (a
        // 500 MB value would otherwise end in a 1 GB buffer).
        self.buf.reserve(b.len() + 24);
        header(self.buf, b'$', b.len() as i64);
        self.buf.extend_from_slice(b);
        self.buf.extend_from_slice(b"\r\n");
    }

    #[inline]
    pub fn bulk_opt(&mut self, b: Option<&[u8]>) {
        match b {
            Some(b) => self.bulk(b),
            None => self.null(),
        }
    }

    /// A null: RESP3 has one, `_`; RESP2 spells it `resp2`.
    #[inline]
    fn nil(&mut self, resp2: &[u8]) {
        let b: &[u8] = if self.resp3 { b"_\r\n" } else { resp2 };
        self.buf.extend_from_slice(b);
    }

    /// The null bulk string (RESP2 `$-1`, RESP3 `_`).
    #[inline]
    pub fn null(&mut self) {
        self.nil(b"$-1\r\n");
    }

    /// The null array (RESP2 `*-1`, RESP3 `_`).
    #[inline]
    pub fn null_array(&mut self) {
        self.nil(b"*-1\r\n");
    }

    #[inline]
    pub fn array(&mut self, n: usize) {
        array_len(self.buf, n);
    }

    /// A map of `n` pairs: RESP3 `%n`, RESP2 a flat array of `2n` elements.
    #[inline]
    pub fn map(&mut self, n: usize) {
        if self.resp3 {
            header(self.buf, b'%', n as i64);
        } else {
            array_len(self.buf, 2 * n);
        }
    }

    /// A set of `n` elements: RESP3 `~n`, RESP2 an array.
    #[inline]
    pub fn set(&mut self, n: usize) {
        if self.resp3 {
            header(self.buf, b'~', n as i64);
        } else {
            array_len(self.buf, n);
        }
    }

    /// A boolean: RESP3 `#t`/`#f`, RESP2 the integer 1 or 0.
    pub fn boolean(&mut self, b: bool) {
        if self.resp3 {
            self.buf
                .extend_from_slice(if b { b"#t\r\n" } else { b"#f\r\n" });
        } else {
            self.int(b as i64);
        }
    }

    /// A double: RESP3 `,<f>`, RESP2 a bulk string with the same text.
    pub fn double(&mut self, f: f64) {
        let text = format_double(f);
        if self.resp3 {
            self.buf.push(b',');
            self.buf.extend_from_slice(text.as_bytes());
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(text.as_bytes());
        }
    }

    /// A verbatim text (INFO): RESP3 `=<len>\r\ntxt:...`, RESP2 a bulk string.
    pub fn verbatim(&mut self, text: &str) {
        if self.resp3 {
            header(self.buf, b'=', text.len() as i64 + 4);
            self.buf.extend_from_slice(b"txt:");
            self.buf.extend_from_slice(text.as_bytes());
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(text.as_bytes());
        }
    }
}

/// Format a double the way Redis prints INCRBYFLOAT results: shortest round-trip text, no
/// exponent for ordinary magnitudes, no trailing `.0`.
pub fn format_double(f: f64) -> String {
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f == f.trunc() && f.abs() < 1e17 {
        return format!("{}", f as i64);
    }
    let mut s = ryu::Buffer::new().format(f).to_string();
    if s.contains('e') {
        // Expand exponent notation into plain digits, as Redis's %.17Lg-then-trim does for
        // values in the usual range.
        s = format!("{f}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(resp3: bool, f: impl FnOnce(&mut Out)) -> Vec<u8> {
        let mut buf = Vec::new();
        f(&mut Out::new(&mut buf, resp3));
        buf
    }

    #[test]
    fn resp2_and_resp3_differ_only_where_the_spec_says() {
        assert_eq!(w(false, |o| o.null()), b"$-1\r\n");
        assert_eq!(w(true, |o| o.null()), b"_\r\n");
        assert_eq!(w(false, |o| o.null_array()), b"*-1\r\n");
        assert_eq!(w(false, |o| o.map(2)), b"*4\r\n");
        assert_eq!(w(true, |o| o.map(2)), b"%2\r\n");
        assert_eq!(w(false, |o| o.double(1.5)), b"$3\r\n1.5\r\n");
        assert_eq!(w(true, |o| o.double(1.5)), b",1.5\r\n");
        assert_eq!(w(true, |o| o.int(-7)), b":-7\r\n");
        assert_eq!(w(false, |o| o.bulk(b"hi")), b"$2\r\nhi\r\n");
        assert_eq!(w(true, |o| o.verbatim("ab")), b"=6\r\ntxt:ab\r\n");
    }

    #[test]
    fn error_lines_cannot_be_split_by_client_text() {
        assert_eq!(
            w(false, |o| o.error("ERR bad\r\n+OK")),
            b"-ERR bad  +OK\r\n"
        );
    }

    #[test]
    fn doubles_print_like_redis() {
        assert_eq!(format_double(10.5), "10.5");
        assert_eq!(format_double(3.0), "3");
        assert_eq!(format_double(5.0e3), "5000");
        assert_eq!(format_double(0.1 + 0.2), "0.30000000000000004");
    }
}
