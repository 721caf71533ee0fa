//! Joining the parts of a RESP command that ran on several shards back into the reply Redis
//! would give, and the [`Rounds`] of the commands that need them: one hop for most, two for
//! MSETNX across shards.

use crate::cache::cmd::server::ShardInfo;
use crate::cache::op::{Op as CacheOp, Res as CacheRes};
use crate::proto::resp::errors::OOM;
use crate::proto::resp::write::Out;
use crate::txn::{Op, Res, Rounds, Step};

use super::encode;

/// How a command's part results become its reply.
pub enum Join {
    /// A single-key command: its one part's encoded reply is the reply.
    Encoded,
    /// MGET: for each part, where its keys stand in the request.
    Mget {
        positions: Vec<Vec<u32>>,
        n: usize,
    },
    /// DEL, UNLINK, EXISTS, TOUCH, DBSIZE, single-shard MSETNX: the sum of counts.
    Sum,
    /// MSET, FLUSHDB/ALL, CONFIG SET, WATCH: +OK once all parts are done (or -OOM).
    Ok,
    Keys,
    /// RANDOMKEY: one shard's key, shards weighed by their key counts; `seed` picks.
    RandomKey {
        seed: u64,
    },
    Scan,
    /// INFO: the text is rendered by the connection's shard from the summed parts.
    Info(Box<dyn Fn(&ShardInfo) -> String + Send>),
}

impl Join {
    /// Write the reply for `results` (this command's parts, in part order).
    pub fn finish(self, results: Vec<CacheRes>, out: &mut Out) {
        let oom = results.iter().any(|r| matches!(r, CacheRes::Oom));
        match self {
            Join::Encoded => match results.into_iter().next() {
                Some(CacheRes::Encoded(b)) => out.buf.extend_from_slice(&b),
                other => panic!("a single-key command answered {other:?}"),
            },
            Join::Mget { positions, n } => {
                let mut vals: Vec<Option<Vec<u8>>> = vec![None; n];
                for (p, r) in results.into_iter().enumerate() {
                    if let CacheRes::Values(v) = r {
                        for (pos, val) in positions[p].iter().zip(v) {
                            vals[*pos as usize] = val;
                        }
                    }
                }
                out.array(n);
                for v in &vals {
                    out.bulk_opt(v.as_deref());
                }
            }
            Join::Sum => {
                let total: i64 = results
                    .iter()
                    .map(|r| match r {
                        CacheRes::Count(c) => *c,
                        _ => 0,
                    })
                    .sum();
                if oom {
                    out.error(OOM);
                } else {
                    out.int(total);
                }
            }
            Join::Ok if oom => out.error(OOM),
            Join::Ok => out.ok(),
            Join::Keys => {
                // Parts answer encoded (sliced KEYS) or as keys (inside MULTI/EXEC).
                let n: usize = results
                    .iter()
                    .map(|r| match r {
                        CacheRes::Keys(k) => k.len(),
                        CacheRes::KeysEncoded { n, .. } => *n,
                        _ => 0,
                    })
                    .sum();
                out.array(n);
                for r in &results {
                    match r {
                        CacheRes::Keys(keys) => keys.iter().for_each(|k| out.bulk(k)),
                        CacheRes::KeysEncoded { bulks, .. } => out.buf.extend_from_slice(bulks),
                        _ => {}
                    }
                }
            }
            Join::RandomKey { seed } => {
                let picks: Vec<(Vec<u8>, u64)> = results
                    .into_iter()
                    .filter_map(|r| match r {
                        CacheRes::RandomKey {
                            key: Some(k),
                            weight,
                        } => Some((k, weight.max(1))),
                        _ => None,
                    })
                    .collect();
                let total: u64 = picks.iter().map(|(_, w)| w).sum();
                let mut at = if total > 0 { seed % total } else { 0 };
                let mut chosen = None;
                for (k, w) in &picks {
                    if at < *w {
                        chosen = Some(&k[..]);
                        break;
                    }
                    at -= w;
                }
                out.bulk_opt(chosen);
            }
            Join::Scan => {
                for r in results {
                    if let CacheRes::Scan { next, keys } = r {
                        out.array(2);
                        out.bulk(next.to_string().as_bytes());
                        out.array(keys.len());
                        for k in &keys {
                            out.bulk(k);
                        }
                    }
                }
            }
            Join::Info(render) => {
                let mut sum = ShardInfo::default();
                for r in &results {
                    if let CacheRes::Info(i) = r {
                        sum.add(i);
                    }
                }
                out.verbatim(&render(&sum));
            }
        }
    }
}

/// A command's parts and how to join them.
pub struct Plan {
    pub parts: Vec<(usize, CacheOp)>,
    pub join: Join,
}

fn ops(parts: Vec<(usize, CacheOp)>) -> Vec<(usize, Op)> {
    parts.into_iter().map(|(s, o)| (s, Op::Cache(o))).collect()
}

fn cache_results(results: Vec<Res>) -> Vec<CacheRes> {
    results.into_iter().map(Res::cache).collect()
}

/// One hop: run the parts, join the results.
pub struct OneHop {
    plan: Option<Plan>,
    join: Option<Join>,
    resp3: bool,
}

impl OneHop {
    pub fn new(plan: Plan, resp3: bool) -> OneHop {
        OneHop {
            plan: Some(plan),
            join: None,
            resp3,
        }
    }
}

impl Rounds for OneHop {
    fn next(&mut self, results: Vec<Res>, _now: std::time::Instant) -> Step {
        if let Some(plan) = self.plan.take() {
            self.join = Some(plan.join);
            return Step::Hop {
                parts: ops(plan.parts),
                last: true,
            };
        }
        let join = self.join.take().expect("one hop, one join");
        Step::Reply(encode(self.resp3, |o| {
            join.finish(cache_results(results), o)
        }))
    }

    fn refused(&mut self) -> Step {
        Step::Reply(encode(self.resp3, |o| o.error(OOM)))
    }
}

/// MSETNX across shards: count the keys that exist on every shard, then set all of them or
/// none, while the transaction holds every key.
pub struct Msetnx {
    counts: Option<Vec<(usize, CacheOp)>>,
    sets: Option<Vec<(usize, CacheOp)>>,
    resp3: bool,
}

impl Msetnx {
    pub fn new(counts: Vec<(usize, CacheOp)>, sets: Vec<(usize, CacheOp)>, resp3: bool) -> Msetnx {
        Msetnx {
            counts: Some(counts),
            sets: Some(sets),
            resp3,
        }
    }
}

impl Rounds for Msetnx {
    fn next(&mut self, results: Vec<Res>, _now: std::time::Instant) -> Step {
        if let Some(counts) = self.counts.take() {
            return Step::Hop {
                parts: ops(counts),
                last: false,
            };
        }
        let Some(sets) = self.sets.take() else {
            // The sets ran (memory was checked when the transaction was proposed).
            return Step::Reply(encode(self.resp3, |o| o.int(1)));
        };
        let existing: i64 = cache_results(results)
            .iter()
            .map(|r| match r {
                CacheRes::Count(c) => *c,
                _ => 0,
            })
            .sum();
        if existing > 0 {
            return Step::Reply(encode(self.resp3, |o| o.int(0)));
        }
        Step::Hop {
            parts: ops(sets),
            last: true,
        }
    }

    fn refused(&mut self) -> Step {
        Step::Reply(encode(self.resp3, |o| o.error(OOM)))
    }
}
