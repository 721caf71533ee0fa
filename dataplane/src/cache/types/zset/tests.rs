use super::*;
use std::collections::{BTreeSet, HashMap};

/// The reference model: a BTreeSet of (ordered score bits, member) plus a map.
#[derive(Default)]
struct Model {
    order: BTreeSet<(OrdF64, Vec<u8>)>,
    scores: HashMap<Vec<u8>, f64>,
}

#[derive(Clone, Copy, PartialEq)]
struct OrdF64(f64);
impl Eq for OrdF64 {}
impl PartialOrd for OrdF64 {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for OrdF64 {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.partial_cmp(&o.0).unwrap_or(Ordering::Equal)
    }
}

impl Model {
    fn set(&mut self, score: f64, m: &[u8]) {
        if let Some(old) = self.scores.insert(m.to_vec(), score) {
            self.order.remove(&(OrdF64(old), m.to_vec()));
        }
        self.order.insert((OrdF64(score), m.to_vec()));
    }
    fn remove(&mut self, m: &[u8]) -> Option<f64> {
        let s = self.scores.remove(m)?;
        self.order.remove(&(OrdF64(s), m.to_vec()));
        Some(s)
    }
    fn entries(&self) -> Vec<(f64, Vec<u8>)> {
        self.order.iter().map(|(s, m)| (s.0, m.clone())).collect()
    }
}

fn rng(state: &mut u64) -> u64 {
    crate::cache::store::xorshift64(state)
}

fn entries(z: &Zset) -> Vec<(f64, Vec<u8>)> {
    z.iter().map(|(s, m)| (s, m.to_vec())).collect()
}

fn set(z: &mut Zset, score: f64, m: &[u8]) {
    match z.score(m) {
        Some(old) => z.rescore(m, old, score),
        None => z.insert_new(score, m),
    }
}

#[test]
fn scores_round_trip_through_entries() {
    for s in [
        0.0,
        -0.0,
        1.0,
        -1.0,
        255.0,
        -256.0,
        1.5,
        1e300,
        -1e-300,
        f64::INFINITY,
        f64::NEG_INFINITY,
        9_007_199_254_740_991.0,
        9_007_199_254_740_992.0,
        -9_007_199_254_740_991.0,
        1_700_000_000.0,
        -123.0,
        -124.0,
        122.0,
        123.0,
    ] {
        let mut l = Leaf::default();
        l.push(s, b"m");
        let (got, m) = l.first().unwrap();
        assert_eq!(got.to_bits(), s.to_bits(), "{s}");
        assert_eq!(m, b"m");
    }
    // Small integers live in the tag; others take the bytes they need.
    let mut l = Leaf::default();
    l.push(5.0, b"");
    assert_eq!(l.buf.len(), 2);
    l.push(1000.0, b"");
    assert_eq!(l.buf.len(), 2 + 4);
}

#[test]
fn random_operations_match_a_reference_model() {
    for (seed, members, ops) in [
        (1u64, 40u64, 3000),
        (7, 300, 20000),
        (99, 5000, 60000),
        (5, 40000, 120000),
    ] {
        let mut st = seed;
        let mut z = Zset::default();
        let mut model = Model::default();
        for op in 0..ops {
            let r = rng(&mut st);
            let m = format!("m{}", r % members).into_bytes();
            // Few distinct scores, so equal scores order by member often.
            let score = match (r >> 20) % 4 {
                0 => ((r >> 24) % 10) as f64,
                1 => ((r >> 24) % 1000) as f64 / 7.0,
                2 => -(((r >> 24) % 50) as f64),
                _ => ((r >> 24) % 3) as f64 * 1e18,
            };
            match (r >> 8) % 20 {
                0..=13 => {
                    set(&mut z, score, &m);
                    model.set(score, &m);
                }
                14..=16 => assert_eq!(z.remove(&m), model.remove(&m)),
                17 => {
                    let want = model.entries();
                    let lo = (r >> 30) as usize % (want.len() + 1);
                    let hi = (lo + (r >> 40) as usize % 8).min(want.len());
                    assert_eq!(z.remove_ranks(lo, hi), hi - lo);
                    for (_, m) in &want[lo..hi] {
                        model.remove(m);
                    }
                }
                _ => {
                    let max = (r >> 33) & 1 == 1;
                    let first = if max {
                        model.order.iter().next_back().cloned()
                    } else {
                        model.order.iter().next().cloned()
                    };
                    let got = z.pop(max);
                    assert_eq!(got, first.clone().map(|(s, m)| (s.0, m)));
                    if let Some((_, m)) = first {
                        model.remove(&m);
                    }
                }
            }
            if op % (997 * (1 + members as usize / 5000)) == 0 || op + 1 == ops {
                z.check();
                let want = model.entries();
                assert_eq!(entries(&z), want);
                for (i, (s, m)) in want.iter().enumerate() {
                    assert_eq!(z.rank(m), Some(i));
                    assert_eq!(z.score(m), Some(*s));
                    assert_eq!(
                        z.get(i).map(|(s, m)| (s, m.to_vec())),
                        Some((*s, m.clone()))
                    );
                    assert_eq!(z.partition(|s2, m2| cmp_key(s2, m2, *s, m).is_lt()), i);
                }
                assert_eq!(z.rank(b"absent"), None);
                assert_eq!(z.score(b"absent"), None);
                let k = want.len() / 3;
                let from: Vec<_> = z.iter_from(k).map(|(s, m)| (s, m.to_vec())).collect();
                assert_eq!(from, want[k..]);
            }
        }
        if members > 1000 {
            assert_eq!(z.encoding(), "skiplist");
        }
    }
}

#[test]
fn encodings_follow_redis_thresholds() {
    let mut z = Zset::default();
    for i in 0..128 {
        z.insert_new(i as f64, format!("{i}").as_bytes());
    }
    assert_eq!(z.encoding(), "listpack");
    z.insert_new(128.0, b"128");
    assert_eq!(z.encoding(), "skiplist");
    z.check();
    // Shrinking does not go back.
    z.remove_ranks(0, 120);
    assert_eq!(z.encoding(), "skiplist");
    z.check();

    let mut z = Zset::default();
    z.insert_new(1.0, &[b'x'; 64]);
    assert_eq!(z.encoding(), "listpack");
    z.insert_new(1.0, &[b'y'; 65]);
    assert_eq!(z.encoding(), "skiplist");
    z.check();

    let small: Vec<(f64, Vec<u8>)> = (0..128).map(|i| (i as f64, vec![b'a'; 64])).collect();
    let small: Vec<(f64, Vec<u8>)> = small
        .into_iter()
        .enumerate()
        .map(|(i, (s, mut m))| {
            m[0..3].copy_from_slice(format!("{i:03}").as_bytes());
            (s, m)
        })
        .collect();
    assert_eq!(Zset::from_sorted(&small).encoding(), "listpack");
    let big: Vec<(f64, Vec<u8>)> = (0..129)
        .map(|i| (1.0, format!("{i:03}").into_bytes()))
        .collect();
    let z = Zset::from_sorted(&big);
    assert_eq!(z.encoding(), "skiplist");
    z.check();
}

#[test]
fn large_sets_rank_and_range_in_a_tree() {
    let entries: Vec<(f64, Vec<u8>)> = (0..100_000)
        .map(|i| ((i / 3) as f64, format!("member:{i:06}").into_bytes()))
        .collect();
    let mut z = Zset::from_sorted(&entries);
    z.check();
    assert_eq!(z.len(), 100_000);
    assert_eq!(z.rank(b"member:054321"), Some(54321));
    assert_eq!(z.get(99_999).map(|(s, _)| s), Some(33333.0));
    assert_eq!(z.partition(|s, _| s < 1000.0), 3000);
    // Inserting into a built tree splits where it must.
    for i in 0..20_000 {
        z.insert_new(0.5, format!("x{i:05}").as_bytes());
    }
    z.check();
    assert_eq!(z.rank(b"x00000"), Some(3));
    assert_eq!(z.remove_ranks(0, 60_000), 60_000);
    z.check();
    for (s, m) in entries.iter().skip(50_000).take(1000) {
        assert_eq!(z.remove(m), Some(*s));
    }
    z.check();
    while z.pop(false).is_some() {}
    assert!(z.is_empty());
}

#[test]
fn cost_follows_the_heap_and_stays_compact() {
    let mut z = Zset::default();
    let mut last = z.cost();
    for i in 0..10_000u32 {
        z.insert_new(i as f64, format!("element:{i}").as_bytes());
        let c = z.cost();
        assert!(c > 0);
        last = c;
    }
    z.check();
    // Well under Redis's ~110 bytes per such element.
    assert!(last / 10_000 < 64, "{} bytes per element", last / 10_000);
    for i in 0..10_000u32 {
        z.remove(format!("element:{i}").as_bytes());
    }
    assert!(z.cost() < 4096, "{}", z.cost());
}

#[test]
fn dump_and_load_round_trip_and_refuse_garbage() {
    for n in [0usize, 1, 5, 128, 129, 3000] {
        let entries: Vec<(f64, Vec<u8>)> = (0..n)
            .map(|i| (i as f64 * 0.5 - 10.0, format!("m{i:05}").into_bytes()))
            .collect();
        let z = Zset::from_sorted(&entries);
        let mut b = Vec::new();
        z.dump(&mut b);
        let back = Zset::load(&mut Reader(&b)).unwrap();
        back.check();
        assert_eq!(entries_of(&back), entries);
        assert_eq!(back.encoding(), z.encoding());
        // Every truncation and a flipped byte anywhere: refused or well-formed, never a
        // panic.
        for cut in 0..b.len().min(300) {
            if let Some(z) = Zset::load(&mut Reader(&b[..cut])) {
                z.check();
            }
        }
        let mut st = 3;
        for _ in 0..200 {
            let mut bad = b.clone();
            if bad.is_empty() {
                break;
            }
            let i = rng(&mut st) as usize % bad.len();
            bad[i] ^= 1 << (rng(&mut st) % 8);
            if let Some(z) = Zset::load(&mut Reader(&bad)) {
                z.check();
            }
        }
    }
    // Duplicates, disorder and NaN are refused.
    let mut b = Vec::new();
    put_u32(&mut b, 2);
    for (s, m) in [(1.0f64, b"a"), (2.0, b"a")] {
        b.extend_from_slice(&s.to_bits().to_le_bytes());
        put_bytes(&mut b, m);
    }
    assert!(Zset::load(&mut Reader(&b)).is_none());
    let mut b = Vec::new();
    put_u32(&mut b, 1);
    b.extend_from_slice(&f64::NAN.to_bits().to_le_bytes());
    put_bytes(&mut b, b"a");
    assert!(Zset::load(&mut Reader(&b)).is_none());
    // A count larger than the bytes can hold allocates nothing.
    let mut b = Vec::new();
    put_u32(&mut b, u32::MAX);
    assert!(Zset::load(&mut Reader(&b)).is_none());
}

fn entries_of(z: &Zset) -> Vec<(f64, Vec<u8>)> {
    entries(z)
}

#[test]
fn separators_are_short() {
    assert_eq!(&*separator((1.0, b"zzz"), (2.0, b"aaa")).member, b"");
    assert_eq!(&*separator((1.0, b"abc"), (1.0, b"abd")).member, b"abd");
    assert_eq!(&*separator((1.0, b"ab"), (1.0, b"abcdef")).member, b"abc");
    assert_eq!(&*separator((1.0, b"a"), (1.0, b"b")).member, b"b");
}
