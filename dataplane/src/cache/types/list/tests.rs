use super::*;
use std::collections::VecDeque as Model;

fn all(l: &List) -> Vec<Vec<u8>> {
    l.iter_from(0).map(|e| e.to_vec()).collect()
}

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

/// Elements of every encoding: small and large integers, short, medium and long strings.
fn element(r: u64) -> Vec<u8> {
    match r % 9 {
        0 => (r % 128).to_string().into_bytes(),
        1 => ((r >> 8) as i64 - (1 << 40)).to_string().into_bytes(),
        2 => i64::MIN.to_string().into_bytes(),
        3 => format!("0{}", r % 100).into_bytes(),
        4 => vec![b'a' + (r % 26) as u8; (r % 70) as usize],
        5 => vec![b'm'; 64 + (r % 300) as usize],
        6 => vec![b'z'; 9000 + (r % 20) as usize],
        7 => b"-0".to_vec(),
        _ => format!("e{}", r % 7).into_bytes(),
    }
}

#[test]
fn encodings_round_trip_exact_bytes() {
    for s in [
        "0",
        "127",
        "128",
        "-1",
        "-128",
        "-129",
        "32767",
        "-32768",
        "8388607",
        "2147483648",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "+1",
        "01",
        "-0",
        "",
        "1.5",
        " 1",
    ] {
        let mut l = List::default();
        l.push(End::Tail, s.as_bytes());
        l.push(End::Head, s.as_bytes());
        assert_eq!(all(&l), vec![s.as_bytes().to_vec(); 2], "{s:?}");
        l.check();
    }
    for len in [0, 63, 64, 8191, 8192, 70_000] {
        let v = vec![7u8; len];
        let mut l = List::default();
        l.push(End::Tail, b"x");
        l.push(End::Tail, &v);
        l.push(End::Head, &v);
        assert_eq!(l.get(1).map(|e| e.to_vec()), Some(b"x".to_vec()));
        assert_eq!(l.get(2).map(|e| e.to_vec()), Some(v.clone()));
        assert_eq!(
            l.iter_rev().map(|e| e.to_vec()).collect::<Vec<_>>(),
            vec![v.clone(), b"x".to_vec(), v.clone()]
        );
        l.check();
    }
    // Integers are stored compactly.
    assert_eq!(Enc::new(b"5").total(), 2);
    assert_eq!(Enc::new(b"123456").total(), 5);
    assert_eq!(Enc::new(b"abc").total(), 5);
}

#[test]
fn operations_match_a_model() {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for round in 0..40 {
        let mut l = List::default();
        let mut m: Model<Vec<u8>> = Model::new();
        // Odd rounds use small elements only, so that full nodes of many entries are
        // split and joined; even rounds mix in elements larger than a node.
        let ops = if round % 2 == 1 { 3000 } else { 600 };
        for _ in 0..ops {
            let r = xorshift(&mut seed);
            let mut e = element(xorshift(&mut seed) >> 3);
            if round % 2 == 1 {
                e.truncate(40);
            }
            // Lean on pushes so lists get long enough to span several nodes.
            match r % 16 {
                0..=3 => {
                    l.push(End::Tail, &e);
                    m.push_back(e);
                }
                4 => {
                    // Several at once, at either end.
                    let more = [e.clone(), b"x".to_vec(), e.repeat(2)];
                    let end = if r & 1 << 40 != 0 {
                        End::Head
                    } else {
                        End::Tail
                    };
                    l.push_all(end, more.iter().map(|v| v.as_slice()));
                    for v in more {
                        match end {
                            End::Head => m.push_front(v),
                            End::Tail => m.push_back(v),
                        }
                    }
                }
                5..=8 => {
                    l.push(End::Head, &e);
                    m.push_front(e);
                }
                9 => {
                    let got = l.pop(End::Head, |x| x.to_vec());
                    assert_eq!(got, m.pop_front());
                }
                10 => {
                    let got = l.pop(End::Tail, |x| x.to_vec());
                    assert_eq!(got, m.pop_back());
                }
                11 if !m.is_empty() => {
                    let i = (r >> 8) as usize % m.len();
                    assert!(l.set(i, &e));
                    m[i] = e;
                }
                12 if !m.is_empty() => {
                    let i = (r >> 8) as usize % m.len();
                    let pivot = m[i].clone();
                    let first = m.iter().position(|x| *x == pivot).unwrap();
                    let after = r & 1 << 20 != 0;
                    assert!(l.insert(&pivot, after, &e));
                    m.insert(first + after as usize, e);
                }
                13 if !m.is_empty() => {
                    let i = (r >> 8) as usize % m.len();
                    let x = m[i].clone();
                    // Odd rounds remove few at a time, so their lists grow long.
                    let limit = (r >> 30) as usize % 3 + (round % 2);
                    let from = if r & 1 << 40 != 0 {
                        End::Head
                    } else {
                        End::Tail
                    };
                    let n = l.remove_matching(&x, limit, from);
                    let hits: Vec<usize> = (0..m.len()).filter(|&j| m[j] == x).collect();
                    let take = if limit == 0 {
                        hits.len()
                    } else {
                        limit.min(hits.len())
                    };
                    let gone: Vec<usize> = match from {
                        End::Head => hits[..take].to_vec(),
                        End::Tail => hits[hits.len() - take..].to_vec(),
                    };
                    assert_eq!(n, take);
                    for j in gone.into_iter().rev() {
                        m.remove(j);
                    }
                }
                14 => {
                    let k = (r >> 8) as usize % 5;
                    let end = if r & 1 << 40 != 0 {
                        End::Head
                    } else {
                        End::Tail
                    };
                    l.drop_end(end, k);
                    for _ in 0..k.min(m.len()) {
                        match end {
                            End::Head => m.pop_front(),
                            End::Tail => m.pop_back(),
                        };
                    }
                }
                _ => {
                    let i = (r >> 8) as usize % (m.len() + 1);
                    assert_eq!(l.get(i).map(|x| x.to_vec()), m.get(i).cloned());
                }
            }
            l.check();
            assert_eq!(l.len(), m.len());
        }
        assert_eq!(
            all(&l),
            m.iter().cloned().collect::<Vec<_>>(),
            "round {round}"
        );
        if round % 2 == 1 {
            assert!(
                l.node_count() >= 3,
                "round {round}: {} nodes, {} long",
                l.node_count(),
                l.len()
            );
        }
        let rev: Vec<Vec<u8>> = l.iter_rev().map(|e| e.to_vec()).collect();
        assert_eq!(rev, m.iter().rev().cloned().collect::<Vec<_>>());
        for i in 0..m.len() {
            let tail: Vec<Vec<u8>> = l.iter_from(i).map(|e| e.to_vec()).collect();
            assert_eq!(tail, m.iter().skip(i).cloned().collect::<Vec<_>>());
        }
    }
}

#[test]
fn long_lists_span_nodes_and_pay_for_them() {
    let mut l = List::default();
    for i in 0..100_000 {
        l.push(End::Tail, format!("element:{i}").as_bytes());
    }
    l.check();
    assert!(l.node_count() > 100);
    assert_eq!(
        l.get(54_321).map(|e| e.to_vec()),
        Some(b"element:54321".to_vec())
    );
    // About the bytes of the entries: 14 bytes each, and little else.
    let per = l.cost() as f64 / 100_000.0;
    assert!((14.0..16.0).contains(&per), "{per} bytes per element");
    l.drop_end(End::Head, 99_990);
    l.check();
    assert_eq!(l.len(), 10);
    assert!(l.cost() < 1024, "{}", l.cost());
    // A small list costs about its bytes.
    let mut s = List::default();
    for i in 0..10 {
        s.push(End::Tail, format!("v{i}").as_bytes());
    }
    assert!(s.cost() < 160, "{}", s.cost());
    // Pushed at once, they get a node of just their size.
    let mut s = List::default();
    let words: Vec<String> = (0..10).map(|i| format!("value:{i}")).collect();
    s.push_all(End::Tail, words.iter().map(|w| w.as_bytes()));
    s.push_all(End::Head, words.iter().map(|w| w.as_bytes()));
    s.check();
    assert_eq!(s.nodes[0].cap(), s.nodes[0].data_len());
    let mut want: Vec<&String> = words.iter().rev().collect();
    want.extend(words.iter());
    assert_eq!(
        all(&s),
        want.iter()
            .map(|w| w.as_bytes().to_vec())
            .collect::<Vec<_>>()
    );
    s.push_all(End::Tail, std::iter::empty());
    s.check();
}

#[test]
fn positions_follow_rank_and_maxlen() {
    let mut l = List::default();
    for e in ["a", "b", "c", "1", "2", "3", "c", "c"] {
        l.push(End::Tail, e.as_bytes());
    }
    let pos = |from, rank, maxlen, count: usize| {
        let mut v = Vec::new();
        l.positions(b"c", from, rank, maxlen, |i| {
            v.push(i);
            v.len() < count
        });
        v
    };
    assert_eq!(pos(End::Head, 1, 0, 9), [2, 6, 7]);
    assert_eq!(pos(End::Head, 2, 0, 9), [6, 7]);
    assert_eq!(pos(End::Tail, 1, 0, 2), [7, 6]);
    assert_eq!(pos(End::Head, 1, 3, 9), [2]);
    assert_eq!(pos(End::Tail, 1, 3, 9), [7, 6]);
    assert_eq!(pos(End::Head, 4, 0, 9), Vec::<usize>::new());
}

#[test]
fn dump_load_round_trip_and_malformed_input() {
    let mut l = List::default();
    for i in 0..3000 {
        l.push(End::Head, format!("{}", i * 7919 - 5000).as_bytes());
        l.push(End::Tail, format!("s{i}").as_bytes());
    }
    l.push(End::Tail, &vec![b'q'; 20_000]);
    let mut b = Vec::new();
    l.dump(&mut b);
    let back = List::load(&mut Reader(&b)).unwrap();
    back.check();
    assert_eq!(all(&back), all(&l));
    // Truncated or lying input is refused, not trusted.
    for cut in [0, 3, 4, 10, b.len() - 1] {
        let mut r = Reader(&b[..cut]);
        assert!(List::load(&mut r).is_none(), "cut at {cut}");
    }
    let mut huge = Vec::new();
    put_u32(&mut huge, u32::MAX);
    assert!(List::load(&mut Reader(&huge)).is_none());
    // Random bytes: refused or read, never a panic, and what is read is well formed.
    let mut seed = 42u64;
    for _ in 0..2000 {
        let n = (xorshift(&mut seed) % 40) as usize;
        let junk: Vec<u8> = (0..n).map(|_| (xorshift(&mut seed) % 7) as u8).collect();
        if let Some(l) = List::load(&mut Reader(&junk)) {
            l.check();
        }
    }
    let mut e = Vec::new();
    List::default().dump(&mut e);
    assert!(List::load(&mut Reader(&e)).unwrap().is_empty());
}
