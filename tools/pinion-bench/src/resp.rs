//! RESP load: SET and GET in a chosen ratio over a keyspace, keys drawn uniformly or by a
//! Zipf law. Keys look like redis-benchmark's (`key:` and 12 digits), so the two tools put
//! the same bytes on the wire.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};

use crate::engine::{Driver, Reply};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyDist {
    Uniform,
    Zipf(f64),
}

pub fn parse_key_dist(s: &str) -> Result<KeyDist, String> {
    if s == "uniform" {
        return Ok(KeyDist::Uniform);
    }
    match s.strip_prefix("zipf:").map(str::parse::<f64>) {
        Some(Ok(x)) if x > 0.0 && x.is_finite() => Ok(KeyDist::Zipf(x)),
        _ => Err(format!(
            "'{s}': expected uniform or zipf:<s> with s > 0 (zipf:0.99)"
        )),
    }
}

/// `SET:GET`, e.g. `1:10`; `1:0` is SET only, `0:1` GET only.
pub fn parse_ratio(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("'{s}': expected SET:GET weights such as 1:1 or 1:10");
    let (a, b) = s.split_once(':').ok_or_else(bad)?;
    let (a, b) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    if a == 0 && b == 0 {
        return Err(bad());
    }
    Ok((a, b))
}

pub struct Resp {
    set: u32,
    get: u32,
    keyspace: u64,
    zipf: Option<Zipf<f64>>,
    /// The SET value as a bulk string, built once.
    value: Vec<u8>,
    rng: SmallRng,
}

impl Resp {
    pub fn new(
        ratio: (u32, u32),
        keyspace: u64,
        dist: KeyDist,
        value_bytes: usize,
        seed: u64,
    ) -> Resp {
        let keyspace = keyspace.max(1);
        let zipf = match dist {
            KeyDist::Uniform => None,
            KeyDist::Zipf(s) => Zipf::new(keyspace, s).ok(),
        };
        Resp {
            set: ratio.0,
            get: ratio.1,
            keyspace,
            zipf,
            value: {
                let mut v = Vec::new();
                bulk(&mut v, &vec![b'x'; value_bytes]);
                v
            },
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    fn key(&mut self) -> u64 {
        match &self.zipf {
            // Zipf samples lie in [1, n]; rank 1 is the hottest key.
            Some(z) => (z.sample(&mut self.rng) as u64).clamp(1, self.keyspace) - 1,
            None => self.rng.gen_range(0..self.keyspace),
        }
    }
}

fn bulk(out: &mut Vec<u8>, b: &[u8]) {
    out.push(b'$');
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

/// `$16\r\nkey:<12 digits>\r\n`, without allocating (this runs once per operation).
fn key_bulk(out: &mut Vec<u8>, k: u64) {
    out.extend_from_slice(b"$16\r\nkey:");
    let mut digits = [b'0'; 12];
    let mut k = k % 1_000_000_000_000;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (k % 10) as u8;
        k /= 10;
    }
    out.extend_from_slice(&digits);
    out.extend_from_slice(b"\r\n");
}

impl Driver for Resp {
    fn request(&mut self, out: &mut Vec<u8>, ops: u32) {
        for _ in 0..ops {
            let k = self.key();
            let is_set = self.get == 0
                || (self.set > 0 && self.rng.gen_range(0..self.set + self.get) < self.set);
            if is_set {
                out.extend_from_slice(b"*3\r\n$3\r\nSET\r\n");
                key_bulk(out, k);
                out.extend_from_slice(&self.value);
            } else {
                out.extend_from_slice(b"*2\r\n$3\r\nGET\r\n");
                key_bulk(out, k);
            }
        }
    }

    fn reply(&mut self, inp: &[u8]) -> Result<Option<Reply>, String> {
        Ok(parse_reply(inp, 0, 0)?.map(|(end, failed)| Reply {
            len: end,
            failed,
            ..Reply::default()
        }))
    }
}

/// Nesting deeper than this is not a reply to SET or GET.
const MAX_DEPTH: usize = 32;

/// One RESP2/RESP3 value starting at `pos`: where it ends, and the error text when it is
/// an error. None when incomplete.
pub fn parse_reply(
    inp: &[u8],
    pos: usize,
    depth: usize,
) -> Result<Option<(usize, Option<String>)>, String> {
    if depth > MAX_DEPTH {
        return Err("reply nested too deeply".into());
    }
    let Some(&kind) = inp.get(pos) else {
        return Ok(None);
    };
    let Some(nl) = inp[pos..].windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    let line = &inp[pos + 1..pos + nl];
    let after = pos + nl + 2;
    let num = || -> Result<i64, String> {
        std::str::from_utf8(line)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad length {:?}", String::from_utf8_lossy(line)))
    };
    match kind {
        b'+' | b':' | b',' | b'#' | b'_' | b'(' => Ok(Some((after, None))),
        b'-' => Ok(Some((
            after,
            Some(String::from_utf8_lossy(line).into_owned()),
        ))),
        b'$' | b'!' | b'=' => {
            let n = num()?;
            if n < 0 {
                return Ok(Some((after, None)));
            }
            let end = after + n as usize + 2;
            if inp.len() < end {
                return Ok(None);
            }
            let failed =
                (kind == b'!').then(|| String::from_utf8_lossy(&inp[after..end - 2]).into_owned());
            Ok(Some((end, failed)))
        }
        b'*' | b'~' | b'>' | b'%' => {
            let n = num()?;
            let n = if kind == b'%' { n.saturating_mul(2) } else { n };
            let mut p = after;
            let mut failed = None;
            for _ in 0..n.max(0) {
                match parse_reply(inp, p, depth + 1)? {
                    Some((end, f)) => {
                        p = end;
                        failed = failed.or(f);
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((p, failed)))
        }
        other => Err(format!("unexpected reply type byte 0x{other:02x}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_recognised_whole_or_not_at_all() {
        let cases: [(&[u8], Option<usize>); 8] = [
            (b"+OK\r\n", Some(5)),
            (b"$3\r\nabc\r\n+OK\r\n", Some(9)),
            (b"$-1\r\n", Some(5)),
            (b"$3\r\nab", None),
            (b"*2\r\n$1\r\na\r\n:5\r\n", Some(15)),
            (b"*2\r\n$1\r\na\r\n", None),
            (b"-ERR wrong\r\n", Some(12)),
            (b"", None),
        ];
        for (inp, want) in cases {
            let got = parse_reply(inp, 0, 0).unwrap().map(|r| r.0);
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(inp));
        }
        let err = parse_reply(b"-ERR wrong\r\n", 0, 0).unwrap().unwrap().1;
        assert_eq!(err.as_deref(), Some("ERR wrong"));
        assert!(parse_reply(b"?x\r\n", 0, 0).is_err());
        assert!(parse_reply(b"$zz\r\n", 0, 0).is_err());
    }

    #[test]
    fn requests_have_the_ratio_and_key_shape_asked_for() {
        let mut r = Resp::new((1, 3), 1000, KeyDist::Zipf(0.99), 8, 7);
        let mut out = Vec::new();
        r.request(&mut out, 4000);
        let text = String::from_utf8(out).unwrap();
        let sets = text.matches("SET\r\n").count();
        let gets = text.matches("GET\r\n").count();
        assert_eq!(sets + gets, 4000);
        assert!(
            (800..1200).contains(&sets),
            "about a quarter SETs, got {sets}"
        );
        assert!(
            text.contains("$16\r\nkey:000000000000\r\n"),
            "hottest key present"
        );
        assert!(parse_ratio("0:0").is_err() && parse_ratio("3").is_err());
        assert_eq!(parse_key_dist("zipf:0.99"), Ok(KeyDist::Zipf(0.99)));
        assert!(parse_key_dist("zipf:-1").is_err());
    }
}
