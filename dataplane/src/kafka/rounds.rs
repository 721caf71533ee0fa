//! The rounds of a Kafka request that runs log parts on the partitions' owners: one hop
//! (Produce, Fetch, ListOffsets, CreateTopics, Metadata's auto-creates), a first hop that
//! must be done before the second starts and decides it (DeleteTopics: `topic.meta` goes
//! before the partitions, and a topic whose `topic.meta` could not be removed keeps them;
//! the answer is built from both hops' results), and a long poll (a
//! Fetch with too little data runs its parts again until `max_wait_ms`).

use std::time::Instant;

use crate::limits::FETCH_POLL;
use crate::log::ops::{LogOp, LogResult};
use crate::txn::{Op, Res, Rounds, Step};

/// What a request's closure decides once its parts answered.
pub enum Done {
    Reply(Vec<u8>),
    /// Nothing to answer yet: run the parts again after a short wait.
    Wait,
}

pub type Finish = Box<dyn FnMut(&[LogResult], Instant) -> Done + Send>;

/// A two-stage request's second hop, chosen from the first hop's results.
pub type Then = Box<dyn FnOnce(&[LogResult]) -> Vec<(usize, LogOp)> + Send>;

pub struct LogRounds {
    first: Option<Vec<(usize, LogOp)>>,
    /// A two-stage request's second hop, and (once it ran) the first hop's results, which
    /// `finish` gets ahead of the second's.
    then: Option<Then>,
    first_results: Vec<LogResult>,
    parts: Option<Vec<(usize, LogOp)>>,
    /// The parts, kept when the request may have to run them again.
    again: Option<Vec<(usize, LogOp)>>,
    finish: Finish,
}

fn ops(parts: Vec<(usize, LogOp)>) -> Vec<(usize, Op)> {
    parts.into_iter().map(|(s, o)| (s, Op::Log(o))).collect()
}

impl LogRounds {
    /// Run `parts`, then answer with `finish`.
    pub fn new(parts: Vec<(usize, LogOp)>, finish: Finish) -> LogRounds {
        LogRounds {
            first: None,
            then: None,
            first_results: Vec::new(),
            parts: Some(parts),
            again: None,
            finish,
        }
    }

    /// Run `first`, then the parts `then` picks from its results (none: answer at once),
    /// then answer: `finish` gets the first hop's results followed by the second's.
    pub fn two_stage(first: Vec<(usize, LogOp)>, then: Then, finish: Finish) -> LogRounds {
        LogRounds {
            first: Some(first),
            then: Some(then),
            parts: None,
            ..LogRounds::new(Vec::new(), finish)
        }
    }

    /// Run `parts` until `finish` answers (a long poll).
    pub fn polling(parts: Vec<(usize, LogOp)>, finish: Finish) -> LogRounds {
        LogRounds {
            again: Some(parts.clone()),
            ..LogRounds::new(parts, finish)
        }
    }
}

impl LogRounds {
    /// The shards of the first hop's parts, one entry per part (what it needs room for).
    pub fn first_shards(&self) -> impl Iterator<Item = usize> + '_ {
        let first = self.first.as_ref().or(self.parts.as_ref());
        first.into_iter().flatten().map(|(s, _)| *s)
    }
}

impl Rounds for LogRounds {
    fn next(&mut self, results: Vec<Res>, now: Instant) -> Step {
        if let Some(first) = self.first.take() {
            return Step::Hop {
                parts: ops(first),
                last: false,
            };
        }
        let mut results: Vec<LogResult> = results.into_iter().map(Res::log).collect();
        if let Some(then) = self.then.take() {
            let parts = then(&results);
            self.first_results = std::mem::take(&mut results);
            if !parts.is_empty() {
                return Step::Hop {
                    parts: ops(parts),
                    last: false,
                };
            }
        }
        if let Some(parts) = self.parts.take() {
            return Step::Hop {
                parts: ops(parts),
                last: false,
            };
        }
        if !self.first_results.is_empty() {
            let mut all = std::mem::take(&mut self.first_results);
            all.append(&mut results);
            results = all;
        }
        match (self.finish)(&results, now) {
            Done::Reply(b) => Step::Reply(b),
            Done::Wait => Step::Again {
                parts: ops(self.again.clone().unwrap_or_default()),
                after: FETCH_POLL,
            },
        }
    }
}
