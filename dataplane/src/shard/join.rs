//! Joining the parts of a command that ran on several shards back into one reply.
//!
//! A split command gets one reply slot; each part's result lands in `results[part]`; when the
//! last one arrives, [`Join::finish`] encodes the reply the client would get from Redis.

use std::time::Instant;

use crate::cache::exec::{PartOp, PartResult, ShardInfo};
use crate::proto::resp::command::Family;
use crate::proto::resp::write::Out;

pub enum Outcome {
    Encoded(Vec<u8>),
    Part(PartResult),
    Log(crate::log::ops::LogResult),
}

pub enum JoinKind {
    /// A single-key command run on another shard: its reply arrives encoded.
    Single,
    /// MGET: for each part, where its keys stand in the request.
    Mget {
        positions: Vec<Vec<u32>>,
        n: usize,
    },
    /// DEL, UNLINK, EXISTS, DBSIZE: the sum of counts.
    Sum,
    /// MSET, FLUSHDB/ALL, CONFIG SET: +OK once all parts are done (or -OOM from any).
    Ok,
    Keys,
    Scan,
    /// INFO: the text is rendered by the connection's shard from the summed parts.
    Info {
        render: Box<dyn Fn(&ShardInfo) -> String + Send>,
    },
    /// MSETNX first round (do any of the keys exist?): the second round's parts wait here.
    MsetNx {
        stage2: Vec<(usize, PartOp)>,
    },
    /// MSETNX second round: +:1 once every part is set.
    MsetNxSet,
    /// A Kafka request split over partitions: the closure builds the response frame from
    /// the parts' log results, in part order (an empty frame sends nothing: acks=0), or
    /// asks to run the same parts again a little later (a fetch long-polling for data).
    Kafka {
        finish: KafkaFinish,
        again: Vec<(usize, crate::log::ops::LogOp)>,
    },
    /// The first round of a Kafka request in two (DeleteTopics: `topic.meta` goes before
    /// the partitions): its results are not used; `stage2` runs next and `finish` answers.
    KafkaFirst {
        stage2: Vec<(usize, crate::log::ops::LogOp)>,
        finish: KafkaFinish,
    },
}

/// What a Kafka join's closure decides.
pub enum KafkaDone {
    Reply(Vec<u8>),
    /// Nothing to answer yet: run the parts again after a short wait.
    Wait,
}

pub type KafkaFinish = Box<dyn Fn(&[crate::log::ops::LogResult]) -> KafkaDone + Send>;

pub struct Join {
    pub kind: JoinKind,
    pub results: Vec<Option<Outcome>>,
    pub left: usize,
    pub family: Family,
    pub started: Instant,
}

/// What a finished join asks for.
pub enum Finished {
    Reply(Vec<u8>),
    /// Run these parts next, in a new round of the same reply slot.
    NextRound(Vec<(usize, PartOp)>, JoinKind),
    /// Run these log parts next, in a new round of the same reply slot.
    NextLogRound(Vec<(usize, crate::log::ops::LogOp)>, JoinKind),
    /// Run these log parts again after a short wait, in the same reply slot.
    Later(Vec<(usize, crate::log::ops::LogOp)>, JoinKind),
}

impl Join {
    pub fn new(kind: JoinKind, parts: usize, family: Family, started: Instant) -> Join {
        Join {
            kind,
            results: (0..parts).map(|_| None).collect(),
            left: parts,
            family,
            started,
        }
    }

    /// Record part `part`'s outcome; true when every part has arrived.
    pub fn accept(&mut self, part: u32, o: Outcome) -> bool {
        if let Some(slot) = self.results.get_mut(part as usize) {
            if slot.is_none() {
                *slot = Some(o);
                self.left -= 1;
            }
        }
        self.left == 0
    }

    pub fn finish(self, resp3: bool) -> Finished {
        let mut buf = Vec::new();
        let mut out = Out::new(&mut buf, resp3);
        let parts = self.results.into_iter().flatten();
        let oom = |r: &Outcome| matches!(r, Outcome::Part(PartResult::Oom));
        match self.kind {
            JoinKind::Single => {
                for p in parts {
                    if let Outcome::Encoded(b) = p {
                        return Finished::Reply(b);
                    }
                }
                out.error("ERR internal: missing reply");
            }
            JoinKind::Mget { positions, n } => {
                let mut vals: Vec<Option<Vec<u8>>> = vec![None; n];
                for (p, r) in parts.enumerate() {
                    if let Outcome::Part(PartResult::Values(v)) = r {
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
            JoinKind::Sum => {
                let total: i64 = parts
                    .map(|r| match r {
                        Outcome::Part(PartResult::Count(c)) => c,
                        _ => 0,
                    })
                    .sum();
                out.int(total);
            }
            JoinKind::Ok => {
                let all: Vec<Outcome> = parts.collect();
                if all.iter().any(oom) {
                    out.error(crate::cache::exec::OOM);
                } else {
                    out.ok();
                }
            }
            JoinKind::MsetNxSet => {
                let all: Vec<Outcome> = parts.collect();
                if all.iter().any(oom) {
                    out.error(crate::cache::exec::OOM);
                } else {
                    out.int(1);
                }
            }
            JoinKind::Keys => {
                let mut keys = Vec::new();
                for r in parts {
                    if let Outcome::Part(PartResult::Keys(k)) = r {
                        keys.extend(k);
                    }
                }
                out.array(keys.len());
                for k in &keys {
                    out.bulk(k);
                }
            }
            JoinKind::Scan => {
                for r in parts {
                    if let Outcome::Part(PartResult::Scan { next, keys }) = r {
                        out.array(2);
                        out.bulk(next.to_string().as_bytes());
                        out.array(keys.len());
                        for k in &keys {
                            out.bulk(k);
                        }
                    }
                }
            }
            JoinKind::Info { render } => {
                let mut sum = ShardInfo::default();
                for r in parts {
                    if let Outcome::Part(PartResult::Info(i)) = r {
                        sum.add(&i);
                    }
                }
                out.verbatim(&render(&sum));
            }
            JoinKind::Kafka { finish, again } => {
                let results: Vec<_> = parts
                    .map(|r| match r {
                        Outcome::Log(l) => l,
                        _ => crate::log::ops::LogResult::Created { error: -1 },
                    })
                    .collect();
                return match finish(&results) {
                    KafkaDone::Reply(b) => Finished::Reply(b),
                    KafkaDone::Wait => {
                        Finished::Later(again.clone(), JoinKind::Kafka { finish, again })
                    }
                };
            }
            JoinKind::KafkaFirst { stage2, finish } => {
                let again = Vec::new();
                return Finished::NextLogRound(stage2, JoinKind::Kafka { finish, again });
            }
            JoinKind::MsetNx { stage2 } => {
                let existing: i64 = parts
                    .map(|r| match r {
                        Outcome::Part(PartResult::Count(c)) => c,
                        _ => 0,
                    })
                    .sum();
                if existing > 0 {
                    out.int(0);
                } else {
                    return Finished::NextRound(stage2, JoinKind::MsetNxSet);
                }
            }
        }
        Finished::Reply(buf)
    }
}
