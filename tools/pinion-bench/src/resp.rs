//! RESP load: SET and GET in a chosen ratio over a keyspace, keys drawn uniformly or by a
//! Zipf law. Keys look like redis-benchmark's (`key:` and 12 digits), so the two tools put
//! the same bytes on the wire.
//!
//! Placement: on a pinion node a connection sits on one shard, and a key owned by another
//! shard costs a trip over the mesh. `--placement local|remote` makes each connection ask
//! `CLIENT ID` (id % shards is its shard) and then draw only keys its own shard owns, or only
//! keys other shards own, so the two runs differ in the mesh hop and nothing else.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use pinion::cache::slot::key_slot;
use pinion::mesh::SlotTable;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};

use crate::engine::{Driver, Reply};

/// Which keyspace keys a connection draws from, by the shard that owns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Placement {
    /// Every key, wherever it lives.
    Any,
    /// Only keys owned by the shard the connection sits on: no mesh hop.
    Local,
    /// Only keys owned by other shards: every operation crosses the mesh.
    Remote,
}

impl Placement {
    pub fn name(self) -> &'static str {
        match self {
            Placement::Any => "any",
            Placement::Local => "local",
            Placement::Remote => "remote",
        }
    }
}

/// The most keys `--placement` lists: 8 bytes each, and one CRC16 per key at start-up
/// (about a second and 400 MB at this bound).
pub const PLACED_KEYS_MAX: u64 = 50_000_000;

/// A bound on the `CLIENT ID` reply (`:` and at most 20 digits); more is not that reply.
const CLIENT_ID_REPLY_BYTES_MAX: usize = 64;

/// The keyspace grouped by owning shard, built once and shared by every connection:
/// `keys[start[s]..start[s + 1]]` are shard `s`'s keys, ascending. Slots and ownership are
/// the node's own functions (`cache::slot`, `mesh::route`), so the lists cannot drift from
/// how the node routes.
#[derive(Debug)]
pub struct ShardKeys {
    keys: Vec<u64>,
    start: Vec<usize>,
    /// Connections that found themselves on each shard, for the report: SO_REUSEPORT
    /// spreads them by a hash, not evenly.
    landed: Vec<AtomicU64>,
}

impl ShardKeys {
    pub fn new(keyspace: u64, nshards: usize) -> anyhow::Result<ShardKeys> {
        if nshards == 0 || nshards > pinion::cache::slot::SLOTS {
            bail!(
                "--shards must be between 1 and {}",
                pinion::cache::slot::SLOTS
            );
        }
        if keyspace > PLACED_KEYS_MAX {
            bail!("--keyspace {keyspace}: placement lists at most {PLACED_KEYS_MAX} keys");
        }
        let table = SlotTable::new(nshards);
        let owner: Vec<u16> = (0..keyspace)
            .map(|k| table.shard(key_slot(&key_name(k))) as u16)
            .collect();
        // A counting sort keeps each shard's keys in ascending order.
        let mut start = vec![0usize; nshards + 1];
        for &o in &owner {
            start[o as usize + 1] += 1;
        }
        for s in 0..nshards {
            start[s + 1] += start[s];
        }
        let mut next = start.clone();
        let mut keys = vec![0u64; keyspace as usize];
        for (k, &o) in owner.iter().enumerate() {
            keys[next[o as usize]] = k as u64;
            next[o as usize] += 1;
        }
        Ok(ShardKeys {
            keys,
            start,
            landed: (0..nshards).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    /// Connections per shard so far.
    pub fn landed(&self) -> Vec<u64> {
        self.landed
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .collect()
    }

    pub fn shards(&self) -> usize {
        self.start.len() - 1
    }

    /// Shard `s`'s keys, ascending.
    pub fn owned(&self, s: usize) -> &[u64] {
        &self.keys[self.start[s]..self.start[s + 1]]
    }

    /// How many keys a connection on shard `s` may draw.
    pub fn allowed(&self, p: Placement, s: usize) -> u64 {
        let mine = self.owned(s).len();
        (match p {
            Placement::Any => self.keys.len(),
            Placement::Local => mine,
            Placement::Remote => self.keys.len() - mine,
        }) as u64
    }

    /// The key at `rank` (below `allowed(p, s)`) among those a connection on shard `s` may
    /// draw. Remote ranks run over the other shards' keys in shard order, skipping `s`'s.
    #[inline]
    pub fn at(&self, p: Placement, s: usize, rank: u64) -> u64 {
        let r = rank as usize;
        match p {
            Placement::Any => r as u64,
            Placement::Local => self.keys[self.start[s] + r],
            Placement::Remote if r < self.start[s] => self.keys[r],
            Placement::Remote => self.keys[r + self.owned(s).len()],
        }
    }
}

/// Ask `CLIENT ID` on a connection that has nothing else in flight; blocking.
pub fn client_id(stream: &mut TcpStream) -> anyhow::Result<u64> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(b"*2\r\n$6\r\nCLIENT\r\n$2\r\nID\r\n")?;
    let mut buf = [0u8; CLIENT_ID_REPLY_BYTES_MAX];
    let mut n = 0;
    let end = loop {
        if let Some((end, failed)) = parse_reply(&buf[..n], 0, 0).map_err(anyhow::Error::msg)? {
            if let Some(e) = failed {
                bail!("CLIENT ID answered {e}");
            }
            break end;
        }
        if n == buf.len() {
            bail!("CLIENT ID: no reply within {CLIENT_ID_REPLY_BYTES_MAX} bytes");
        }
        let r = stream
            .read(&mut buf[n..])
            .context("reading the CLIENT ID reply")?;
        if r == 0 {
            bail!("the server closed the connection after CLIENT ID");
        }
        n += r;
    };
    // Set-up asked one question; a second reply would be read as the first load reply.
    if end != n || buf[0] != b':' {
        bail!(
            "CLIENT ID: expected one integer reply, got {:?}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
    stream.set_read_timeout(None)?;
    std::str::from_utf8(&buf[1..end - 2])
        .ok()
        .and_then(|t| t.parse().ok())
        .context("CLIENT ID: reply is not a number")
}

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
    dist: KeyDist,
    /// Ranks are drawn below this: the keyspace, or the keys placement allows.
    allowed: u64,
    zipf: Option<Zipf<f64>>,
    placement: Placement,
    /// With a placement: the lists, and the shard this connection sits on (known once
    /// connected).
    placed: Option<(Arc<ShardKeys>, usize)>,
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
        Resp {
            set: ratio.0,
            get: ratio.1,
            keyspace,
            dist,
            allowed: keyspace,
            zipf: zipf(keyspace, dist),
            placement: Placement::Any,
            placed: None,
            value: {
                let mut v = Vec::new();
                bulk(&mut v, &vec![b'x'; value_bytes]);
                v
            },
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// Draw keys only among those `keys` places for this connection: `connected` asks the
    /// server which shard that is. `keys` must cover this keyspace.
    pub fn placed(mut self, placement: Placement, keys: Arc<ShardKeys>) -> Resp {
        self.placement = placement;
        self.placed = Some((keys, 0));
        self
    }

    /// Draw among the keys shard `shard` is allowed.
    fn sit_on(&mut self, shard: usize) -> anyhow::Result<()> {
        let Some((keys, s)) = self.placed.as_mut() else {
            return Ok(());
        };
        let n = keys.allowed(self.placement, shard);
        if n == 0 {
            bail!(
                "--placement {}: none of the {} keys of --keyspace is allowed on shard {shard} of {}",
                self.placement.name(),
                self.keyspace,
                keys.shards()
            );
        }
        *s = shard;
        keys.landed[shard].fetch_add(1, Ordering::Relaxed);
        self.allowed = n;
        self.zipf = zipf(n, self.dist);
        Ok(())
    }

    fn key(&mut self) -> u64 {
        let rank = match &self.zipf {
            // Zipf samples lie in [1, n]; rank 1 is the hottest key.
            Some(z) => (z.sample(&mut self.rng) as u64).clamp(1, self.allowed) - 1,
            None => self.rng.gen_range(0..self.allowed),
        };
        match &self.placed {
            Some((keys, s)) => keys.at(self.placement, *s, rank),
            None => rank,
        }
    }
}

fn zipf(n: u64, dist: KeyDist) -> Option<Zipf<f64>> {
    match dist {
        KeyDist::Uniform => None,
        KeyDist::Zipf(s) => Zipf::new(n, s).ok(),
    }
}

fn bulk(out: &mut Vec<u8>, b: &[u8]) {
    out.push(b'$');
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

/// Key number `k`'s name, `key:<12 digits>`, without allocating (this runs once per
/// operation).
fn key_name(k: u64) -> [u8; 16] {
    let mut name = *b"key:000000000000";
    let mut k = k % 1_000_000_000_000;
    for d in name[4..].iter_mut().rev() {
        *d = b'0' + (k % 10) as u8;
        k /= 10;
    }
    name
}

/// `$16\r\nkey:<12 digits>\r\n`.
fn key_bulk(out: &mut Vec<u8>, k: u64) {
    out.extend_from_slice(b"$16\r\n");
    out.extend_from_slice(&key_name(k));
    out.extend_from_slice(b"\r\n");
}

impl Driver for Resp {
    fn connected(&mut self, stream: &mut TcpStream) -> anyhow::Result<()> {
        if let Some((keys, _)) = &self.placed {
            let shard = (client_id(stream)? % keys.shards() as u64) as usize;
            self.sit_on(shard)?;
        }
        Ok(())
    }

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

    #[test]
    fn key_names_are_what_redis_benchmark_uses() {
        // The slots themselves are the node's `key_slot`, tested against Redis Cluster's
        // values in `cache/slot.rs`.
        assert_eq!(&key_name(42), b"key:000000000042");
    }

    #[test]
    fn shard_key_lists_partition_the_keyspace() {
        for n in [1, 2, 3, 7] {
            let keys = ShardKeys::new(10_000, n).unwrap();
            let mut seen = vec![0u8; 10_000];
            for s in 0..n {
                let mine = keys.owned(s);
                assert!(!mine.is_empty() && mine.windows(2).all(|w| w[0] < w[1]));
                for &k in mine {
                    let slot = key_slot(&key_name(k)) as usize;
                    assert!(
                        SlotTable::range_of(s, n).contains(&slot),
                        "key {k} on {s}/{n}"
                    );
                    seen[k as usize] += 1;
                }
                // Local and remote ranks name exactly the shard's keys and everyone else's.
                let local: Vec<u64> = (0..keys.allowed(Placement::Local, s))
                    .map(|r| keys.at(Placement::Local, s, r))
                    .collect();
                assert_eq!(local, mine);
                let mut remote: Vec<u64> = (0..keys.allowed(Placement::Remote, s))
                    .map(|r| keys.at(Placement::Remote, s, r))
                    .collect();
                remote.extend_from_slice(mine);
                remote.sort_unstable();
                assert_eq!(remote, (0..10_000).collect::<Vec<u64>>());
            }
            assert!(
                seen.iter().all(|&c| c == 1),
                "every key on exactly one shard"
            );
        }
        assert!(ShardKeys::new(10, 0).is_err());
        assert!(ShardKeys::new(PLACED_KEYS_MAX + 1, 2).is_err());
    }

    #[test]
    fn placed_connections_draw_only_allowed_keys() {
        let keys = Arc::new(ShardKeys::new(1000, 2).unwrap());
        for (p, dist) in [
            (Placement::Local, KeyDist::Uniform),
            (Placement::Remote, KeyDist::Zipf(0.99)),
        ] {
            for shard in 0..2 {
                let mut r = Resp::new((1, 1), 1000, dist, 8, 3).placed(p, keys.clone());
                r.sit_on(shard).unwrap();
                let mut out = Vec::new();
                r.request(&mut out, 2000);
                let text = String::from_utf8(out).unwrap();
                let mut n = 0;
                for name in text.split("\r\n").filter(|t| t.starts_with("key:")) {
                    let owner = SlotTable::new(2).shard(key_slot(name.as_bytes()));
                    assert_eq!(owner == shard, p == Placement::Local, "{name}");
                    n += 1;
                }
                assert_eq!(n, 2000);
            }
        }
        // A single shard has nobody to be remote from.
        let one = Arc::new(ShardKeys::new(1000, 1).unwrap());
        let mut r = Resp::new((1, 1), 1000, KeyDist::Uniform, 8, 3).placed(Placement::Remote, one);
        assert!(r.sit_on(0).is_err());
    }
}
