//! RESP request parsing: pure functions over bytes.
//!
//! A request is either a multibulk array of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`),
//! which is what every real client sends, or an inline line (`PING\r\n`), which telnet users
//! and redis-benchmark's `PING_INLINE` send. The parser never allocates for multibulk
//! requests: it records where each argument lies in the caller's buffer. Inline requests are
//! rewritten into a multibulk frame in a scratch buffer, so the rest of the node sees one
//! shape.
//!
//! A multibulk frame of many arguments can be parsed over several calls ([`parse_sliced`]):
//! the arguments found so far stay in the caller's `args` and a [`Resume`] says where the
//! next one starts, so a request of a million arguments arriving over hundreds of receives
//! is read once, not once a receive, and a call stops after a budget of arguments so no
//! loop turn parses more than that.
//!
//! Invariants: the parser never reads past `buf`, never trusts a length before checking it
//! against [`Limits`], and either consumes a whole frame or nothing.

use super::WireError;
use crate::limits;

/// Bounds on what one request may declare. Values mirror Redis's own
/// (`proto-max-bulk-len`, the 1M-element multibulk cap, the 64 KiB inline cap).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub bulk_bytes_max: usize,
    pub multibulk_len_max: usize,
    pub inline_bytes_max: usize,
    /// The limits of a connection that has not authenticated yet (their breach is worded
    /// as Redis words it).
    pub unauthenticated: bool,
}

impl Limits {
    /// What a connection may send before AUTH succeeds: as Redis, 10 arguments of at most
    /// 16 KiB each, so no client that has not authenticated makes the node hold much.
    pub fn unauthenticated(&self) -> Limits {
        Limits {
            bulk_bytes_max: self
                .bulk_bytes_max
                .min(limits::UNAUTHENTICATED_BULK_BYTES_MAX),
            multibulk_len_max: self
                .multibulk_len_max
                .min(limits::UNAUTHENTICATED_MULTIBULK_LEN_MAX),
            inline_bytes_max: self.inline_bytes_max,
            unauthenticated: true,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            bulk_bytes_max: limits::BULK_BYTES_DEFAULT,
            multibulk_len_max: limits::MULTIBULK_LEN_MAX,
            inline_bytes_max: limits::INLINE_BYTES_MAX,
            unauthenticated: false,
        }
    }
}

/// What one call to [`parse`] found at the front of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// Not a whole frame yet; nothing consumed.
    Incomplete,
    /// A frame that carries no command (an empty inline line or `*0`/`*-1`); skip `consumed` bytes.
    Empty { consumed: usize },
    /// A multibulk request; its arguments were written to `args` as ranges into the buffer.
    Multibulk { consumed: usize },
    /// An inline request, rewritten as a multibulk frame into `scratch`; `args` index `scratch`.
    Inline { consumed: usize },
    /// The call's budget of arguments ran out with bytes left to parse: nothing consumed;
    /// call again (on a later loop turn) with the same `args` and [`Resume`]. Only
    /// [`parse_sliced`] answers this.
    Paused,
}

/// Where the parse of a multibulk frame stopped (on [`Frame::Incomplete`] or
/// [`Frame::Paused`]), with the arguments found so far in the caller's `args`. Offsets are
/// from the frame's first byte: the frame must stay at the front of the buffer, unchanged,
/// until the call that completes it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    /// Arguments the frame declares (0: no frame begun).
    count: usize,
    /// Where the next argument's `$` header starts.
    pos: usize,
}

impl Resume {
    /// A frame is partly parsed: `args` holds its arguments so far.
    pub fn is_begun(&self) -> bool {
        self.count > 0
    }
}

/// Find `\r\n` starting at `from`; returns the index of `\r`.
#[inline]
fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 1 < buf.len() {
        match memchr_r(&buf[i..]) {
            Some(off) => {
                let at = i + off;
                if at + 1 < buf.len() {
                    if buf[at + 1] == b'\n' {
                        return Some(at);
                    }
                    i = at + 1;
                } else {
                    return None;
                }
            }
            None => return None,
        }
    }
    None
}

#[inline]
fn memchr_r(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b == b'\r')
}

/// Parse a strictly formatted decimal integer (Redis's `string2ll` rules: no spaces, no `+`,
/// no leading zeros except "0" itself).
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let digit = (d - b'0') as i64;
        v = v.checked_mul(10)?;
        v = if neg {
            v.checked_sub(digit)?
        } else {
            v.checked_add(digit)?
        };
    }
    if neg && v == 0 {
        return None;
    }
    Some(v)
}

/// Parse one request from the front of `buf`.
///
/// On `Multibulk`, `args` holds `(start, end)` ranges into `buf`; on `Inline`, ranges into
/// `scratch`. A `WireError` means the connection must get the error and be closed.
#[inline]
pub fn parse(
    buf: &[u8],
    limits: &Limits,
    args: &mut Vec<(usize, usize)>,
    scratch: &mut Vec<u8>,
) -> Result<Frame, WireError> {
    parse_sliced(
        buf,
        limits,
        args,
        scratch,
        &mut Resume::default(),
        usize::MAX,
    )
}

/// [`parse`], going on from `resume` (the frame's arguments so far in `args`) and parsing
/// at most `budget` arguments before it answers [`Frame::Paused`]. `resume` is kept on
/// `Incomplete` and `Paused` and cleared on every other answer.
pub fn parse_sliced(
    buf: &[u8],
    limits: &Limits,
    args: &mut Vec<(usize, usize)>,
    scratch: &mut Vec<u8>,
    resume: &mut Resume,
    budget: usize,
) -> Result<Frame, WireError> {
    let (count, mut pos) = if resume.is_begun() {
        (resume.count, resume.pos)
    } else {
        args.clear();
        if buf.is_empty() {
            return Ok(Frame::Incomplete);
        }
        if buf[0] != b'*' {
            return parse_inline(buf, limits, args, scratch);
        }
        let Some(eol) = find_crlf(buf, 1) else {
            if buf.len() > limits.inline_bytes_max {
                return Err(WireError::BigCount);
            }
            return Ok(Frame::Incomplete);
        };
        let count = parse_i64(&buf[1..eol]).ok_or(WireError::MultibulkLength)?;
        let pos = eol + 2;
        if count <= 0 {
            return Ok(Frame::Empty { consumed: pos });
        }
        if count as u64 > limits.multibulk_len_max as u64 {
            return Err(if limits.unauthenticated {
                WireError::UnauthenticatedMultibulkLength
            } else {
                WireError::MultibulkLength
            });
        }
        let count = count as usize;
        // Reserve at most what the buffer could hold, so a hostile count cannot make us allocate.
        args.reserve(count.min(buf.len() / 4 + 1));
        (count, pos)
    };
    let mut left = budget;
    while args.len() < count {
        if pos >= buf.len() {
            *resume = Resume { count, pos };
            return Ok(Frame::Incomplete);
        }
        if left == 0 {
            *resume = Resume { count, pos };
            return Ok(Frame::Paused);
        }
        left -= 1;
        if buf[pos] != b'$' {
            *resume = Resume::default();
            return Err(WireError::ExpectedDollar(buf[pos]));
        }
        let Some(eol) = find_crlf(buf, pos + 1) else {
            if buf.len() - pos > limits.inline_bytes_max {
                *resume = Resume::default();
                return Err(WireError::BigBulkCount);
            }
            *resume = Resume { count, pos };
            return Ok(Frame::Incomplete);
        };
        let Some(len) = parse_i64(&buf[pos + 1..eol]).filter(|&l| l >= 0) else {
            *resume = Resume::default();
            return Err(WireError::BulkLength);
        };
        if len as u64 > limits.bulk_bytes_max as u64 {
            *resume = Resume::default();
            return Err(if limits.unauthenticated {
                WireError::UnauthenticatedBulkLength
            } else {
                WireError::BulkLength
            });
        }
        let start = eol + 2;
        let end = start + len as usize;
        if end + 2 > buf.len() {
            *resume = Resume { count, pos };
            return Ok(Frame::Incomplete);
        }
        if &buf[end..end + 2] != b"\r\n" {
            *resume = Resume::default();
            return Err(WireError::MissingCrlf);
        }
        args.push((start, end));
        pos = end + 2;
    }
    *resume = Resume::default();
    Ok(Frame::Multibulk { consumed: pos })
}

/// How many more bytes the frame at the front of `buf` needs at least, when a bulk header is
/// already readable. Used to size the query buffer once instead of growing it step by step.
pub fn bytes_wanted(buf: &[u8]) -> Option<usize> {
    // Walk the same way as `parse` but only to learn the declared size of the pending bulk.
    if buf.first() != Some(&b'*') {
        return None;
    }
    let eol = find_crlf(buf, 1)?;
    let count = parse_i64(&buf[1..eol])?;
    let mut pos = eol + 2;
    for _ in 0..count.max(0) {
        if pos >= buf.len() || buf[pos] != b'$' {
            return None;
        }
        let eol = find_crlf(buf, pos + 1)?;
        let len = parse_i64(&buf[pos + 1..eol])?;
        let end = eol + 2 + usize::try_from(len).ok()? + 2;
        if end > buf.len() {
            return Some(end);
        }
        pos = end;
    }
    None
}

/// An escape at the start of `rest` inside a quoted inline argument, as Redis's
/// `sdssplitargs` reads it: the byte it stands for and how many bytes it takes. Double
/// quotes know `\xHH`, `\n`, `\r`, `\t`, `\b`, `\a` and `\<any>`; single quotes only `\'`.
fn unescape(quote: u8, rest: &[u8]) -> Option<(u8, usize)> {
    if rest.first() != Some(&b'\\') || rest.len() < 2 {
        return None;
    }
    let e = rest[1];
    if quote == b'\'' {
        return (e == b'\'').then_some((b'\'', 2));
    }
    if e == b'x' && rest.len() >= 4 && rest[2].is_ascii_hexdigit() && rest[3].is_ascii_hexdigit() {
        let hex = std::str::from_utf8(&rest[2..4]).ok()?;
        return Some((u8::from_str_radix(hex, 16).ok()?, 4));
    }
    let byte = match e {
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'b' => 8,
        b'a' => 7,
        other => other,
    };
    Some((byte, 2))
}

fn parse_inline(
    buf: &[u8],
    limits: &Limits,
    args: &mut Vec<(usize, usize)>,
    scratch: &mut Vec<u8>,
) -> Result<Frame, WireError> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > limits.inline_bytes_max {
            return Err(WireError::BigInline);
        }
        return Ok(Frame::Incomplete);
    };
    if nl > limits.inline_bytes_max {
        return Err(WireError::BigInline);
    }
    let mut line = &buf[..nl];
    if line.last() == Some(&b'\r') {
        line = &line[..line.len() - 1];
    }
    let words = split_args(line).ok_or(WireError::UnbalancedQuotes)?;
    if words.is_empty() {
        return Ok(Frame::Empty { consumed: nl + 1 });
    }
    scratch.clear();
    super::write::array_len(scratch, words.len());
    for w in &words {
        scratch.push(b'$');
        scratch.extend_from_slice(itoa::Buffer::new().format(w.len()).as_bytes());
        scratch.extend_from_slice(b"\r\n");
        let start = scratch.len();
        scratch.extend_from_slice(w);
        args.push((start, scratch.len()));
        scratch.extend_from_slice(b"\r\n");
    }
    Ok(Frame::Inline { consumed: nl + 1 })
}

/// Split an inline line into words the way `redis-cli` and Redis's `sdssplitargs` do:
/// spaces separate, `"..."` allows `\n \r \t \\ \" \xHH` escapes, `'...'` allows `\'`.
/// Returns `None` on unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < line.len() {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= line.len() {
            break;
        }
        let mut word = Vec::new();
        match line[i] {
            quote @ (b'"' | b'\'') => {
                i += 1;
                loop {
                    let c = *line.get(i)?;
                    if c == quote {
                        i += 1;
                        // A closing quote must be followed by a space or the end.
                        if i < line.len() && !line[i].is_ascii_whitespace() {
                            return None;
                        }
                        break;
                    }
                    match unescape(quote, &line[i..]) {
                        Some((byte, used)) => {
                            word.push(byte);
                            i += used;
                        }
                        None => {
                            word.push(c);
                            i += 1;
                        }
                    }
                }
            }
            _ => {
                while i < line.len() && !line[i].is_ascii_whitespace() {
                    word.push(line[i]);
                    i += 1;
                }
            }
        }
        out.push(word);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(buf: &[u8]) -> Result<(Frame, Vec<Vec<u8>>), WireError> {
        let mut args = Vec::new();
        let mut scratch = Vec::new();
        let f = parse(buf, &Limits::default(), &mut args, &mut scratch)?;
        let src: &[u8] = match f {
            Frame::Inline { .. } => &scratch,
            _ => buf,
        };
        let words = args.iter().map(|&(s, e)| src[s..e].to_vec()).collect();
        Ok((f, words))
    }

    #[test]
    fn multibulk_as_redis_cli_sends_it() {
        // Captured from `redis-cli SET foo bar` with tcpdump.
        let req = b"*3\r\n$3\r\nSET\r\n$3\r\nfoo\r\n$3\r\nbar\r\n";
        let (f, w) = parse_all(req).unwrap();
        assert_eq!(
            f,
            Frame::Multibulk {
                consumed: req.len()
            }
        );
        assert_eq!(w, vec![b"SET".to_vec(), b"foo".to_vec(), b"bar".to_vec()]);
    }

    #[test]
    fn every_prefix_is_incomplete_and_never_an_error() {
        let req = b"*3\r\n$3\r\nSET\r\n$3\r\nfoo\r\n$10\r\n0123456789\r\n";
        for cut in 0..req.len() {
            let (f, _) = parse_all(&req[..cut]).unwrap();
            assert_eq!(f, Frame::Incomplete, "prefix of {cut} bytes");
        }
        assert!(matches!(parse_all(req).unwrap().0, Frame::Multibulk { .. }));
    }

    #[test]
    fn pipelined_frames_are_taken_one_at_a_time() {
        let req = b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
        let (f, _) = parse_all(req).unwrap();
        assert_eq!(f, Frame::Multibulk { consumed: 14 });
        let (f, w) = parse_all(&req[14..]).unwrap();
        assert_eq!(
            f,
            Frame::Multibulk {
                consumed: req.len() - 14
            }
        );
        assert_eq!(w[1], b"k");
    }

    #[test]
    fn inline_commands_with_quotes() {
        let (f, w) = parse_all(b"PING\r\n").unwrap();
        assert_eq!(f, Frame::Inline { consumed: 6 });
        assert_eq!(w, vec![b"PING".to_vec()]);
        let (_, w) = parse_all(b"set \"a b\" 'c\\'d' \"\\x41\\n\"\n").unwrap();
        assert_eq!(
            w,
            vec![
                b"set".to_vec(),
                b"a b".to_vec(),
                b"c'd".to_vec(),
                b"A\n".to_vec()
            ]
        );
        assert_eq!(
            parse_all(b"set \"abc\r\n"),
            Err(WireError::UnbalancedQuotes)
        );
        assert_eq!(
            parse_all(b"   \r\n").unwrap().0,
            Frame::Empty { consumed: 5 }
        );
    }

    #[test]
    fn hostile_lengths_are_rejected_before_allocation() {
        assert_eq!(
            parse_all(b"*-1\r\n").unwrap().0,
            Frame::Empty { consumed: 5 }
        );
        assert_eq!(parse_all(b"*abc\r\n"), Err(WireError::MultibulkLength));
        assert_eq!(
            parse_all(b"*99999999999\r\n"),
            Err(WireError::MultibulkLength)
        );
        assert_eq!(parse_all(b"*1\r\n$-5\r\n"), Err(WireError::BulkLength));
        assert_eq!(
            parse_all(b"*1\r\n$999999999999\r\n"),
            Err(WireError::BulkLength)
        );
        assert_eq!(
            parse_all(b"*1\r\n:5\r\n"),
            Err(WireError::ExpectedDollar(b':'))
        );
        assert_eq!(
            parse_all(b"*1\r\n$1\r\nab\r\n"),
            Err(WireError::MissingCrlf)
        );
        let big = vec![b'a'; 70 * 1024];
        assert_eq!(parse_all(&big), Err(WireError::BigInline));
    }

    #[test]
    fn integers_follow_redis_rules() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        for bad in [&b""[..], b"01", b"+1", b" 1", b"-", b"-0", b"1a"] {
            assert_eq!(parse_i64(bad), None, "{:?}", bad);
        }
    }

    #[test]
    fn bytes_wanted_reports_the_pending_bulk_end() {
        assert_eq!(
            bytes_wanted(b"*2\r\n$3\r\nSET\r\n$100\r\nab"),
            Some(13 + 6 + 102)
        );
        assert_eq!(bytes_wanted(b"PING"), None);
    }

    /// A request of `n` arguments, and its arguments.
    fn many(n: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
        let words: Vec<Vec<u8>> = (0..n).map(|i| format!("w{i}").into_bytes()).collect();
        let mut buf = format!("*{n}\r\n").into_bytes();
        for w in &words {
            buf.extend_from_slice(format!("${}\r\n", w.len()).as_bytes());
            buf.extend_from_slice(w);
            buf.extend_from_slice(b"\r\n");
        }
        (buf, words)
    }

    #[test]
    fn a_request_arriving_in_pieces_is_parsed_once_going_on_where_it_stopped() {
        let (req, words) = many(5_000);
        let limits = Limits::default();
        let (mut args, mut scratch, mut resume) = (Vec::new(), Vec::new(), Resume::default());
        // Arriving 7 bytes at a time: every call but the last is Incomplete and keeps its
        // place, and the arguments found so far never shrink.
        let mut last_len = 0;
        for cut in (0..req.len()).step_by(7) {
            let f = parse_sliced(
                &req[..cut],
                &limits,
                &mut args,
                &mut scratch,
                &mut resume,
                usize::MAX,
            )
            .unwrap();
            assert_eq!(f, Frame::Incomplete, "prefix of {cut}");
            assert!(args.len() >= last_len);
            last_len = args.len();
        }
        let f = parse_sliced(
            &req,
            &limits,
            &mut args,
            &mut scratch,
            &mut resume,
            usize::MAX,
        )
        .unwrap();
        assert_eq!(
            f,
            Frame::Multibulk {
                consumed: req.len()
            }
        );
        assert!(!resume.is_begun());
        let got: Vec<Vec<u8>> = args.iter().map(|&(s, e)| req[s..e].to_vec()).collect();
        assert_eq!(got, words);
    }

    #[test]
    fn a_budget_pauses_the_parse_and_it_goes_on_from_there() {
        let (mut req, words) = many(1_000);
        req.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
        let limits = Limits::default();
        let (mut args, mut scratch, mut resume) = (Vec::new(), Vec::new(), Resume::default());
        let mut calls = 0;
        let consumed = loop {
            calls += 1;
            match parse_sliced(&req, &limits, &mut args, &mut scratch, &mut resume, 300).unwrap() {
                Frame::Paused => assert_eq!(args.len(), 300 * calls),
                Frame::Multibulk { consumed } => break consumed,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(calls, 4);
        let got: Vec<Vec<u8>> = args.iter().map(|&(s, e)| req[s..e].to_vec()).collect();
        assert_eq!(got, words);
        // The frame after it starts afresh.
        let f = parse_sliced(
            &req[consumed..],
            &limits,
            &mut args,
            &mut scratch,
            &mut resume,
            300,
        );
        assert_eq!(f.unwrap(), Frame::Multibulk { consumed: 14 });
        assert_eq!(args, vec![(8, 12)]);
        // A plain `parse` never pauses.
        assert!(matches!(
            parse_all(&req).unwrap().0,
            Frame::Multibulk { .. }
        ));
    }

    #[test]
    fn an_error_after_a_pause_is_the_same_error_and_forgets_the_frame() {
        let (mut req, _) = many(100);
        req[3] = b'1'; // "*101": the 101st argument is the bad byte below
        req.extend_from_slice(b":5\r\n");
        let limits = Limits::default();
        let (mut args, mut scratch, mut resume) = (Vec::new(), Vec::new(), Resume::default());
        assert_eq!(&req[..6], b"*101\r\n");
        let mut r = Ok(Frame::Paused);
        while r == Ok(Frame::Paused) {
            r = parse_sliced(&req, &limits, &mut args, &mut scratch, &mut resume, 7);
        }
        assert_eq!(r, Err(WireError::ExpectedDollar(b':')));
        assert!(!resume.is_begun());
        assert_eq!(parse_all(&req), Err(WireError::ExpectedDollar(b':')));
    }

    #[test]
    fn more_than_a_million_arguments_are_accepted_as_redis_7_does() {
        let (req, _) = many(1_100_000);
        let (f, w) = parse_all(&req).unwrap();
        assert_eq!(
            f,
            Frame::Multibulk {
                consumed: req.len()
            }
        );
        assert_eq!(w.len(), 1_100_000);
        assert_eq!(
            parse_all(b"*2147483648\r\n"),
            Err(WireError::MultibulkLength)
        );
        // Before AUTH: still 10.
        let mut args = Vec::new();
        let r = parse(
            &req,
            &Limits::default().unauthenticated(),
            &mut args,
            &mut Vec::new(),
        );
        assert_eq!(r, Err(WireError::UnauthenticatedMultibulkLength));
    }

    /// A small deterministic fuzz loop: random bytes and random mutations of valid frames
    /// must never panic, and a frame is either consumed whole or not at all.
    #[test]
    fn random_input_never_panics() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || crate::cache::store::xorshift64(&mut seed);
        let base = b"*3\r\n$3\r\nSET\r\n$3\r\nfoo\r\n$3\r\nbar\r\n".to_vec();
        for _ in 0..20_000 {
            let mut buf = base.clone();
            let muts = next() % 4;
            for _ in 0..muts {
                let i = (next() as usize) % buf.len();
                buf[i] = next() as u8;
            }
            let cut = (next() as usize) % (buf.len() + 1);
            if let Ok(Frame::Multibulk { consumed } | Frame::Inline { consumed }) =
                parse_all(&buf[..cut]).map(|x| x.0)
            {
                assert!(consumed <= cut);
            }
        }
    }
}
