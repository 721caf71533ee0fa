//! The coordinator side of the transaction framework: a [`Flight`] is one operation that
//! runs parts on one or more shards, in one or more hops, on the shard whose connection
//! asked. It is a pure state machine: [`Flight::step`] takes an [`Input`] (start, a
//! shard's proposal, a part's result, a timer) and returns [`Output`]s (messages to shards,
//! the reply, a timer to arm); the shard carries them out. Unit-tested without I/O.
//!
//! What a flight does between hops is decided by its [`Rounds`]: given the last hop's
//! results it answers with the next hop, the reply, or (for a long-polling fetch) the same
//! parts again after a wait. MGET is one hop; MSETNX across shards two (count existing,
//! then set or abort); EXEC with WATCH two (check, then run); DeleteTopics two (the
//! metadata, then the partitions). Cross-shard RENAME, COPY, SMOVE and LMOVE are two hops
//! with data carried from the first results into the second parts; a Kafka transaction's
//! markers and a group's offset commit are one atomic hop over partition keys.
//!
//! A *plain* flight sends its parts as they are: each part is admitted on its shard like
//! any single-shard work. An *atomic* flight (a transaction over several shards) first
//! proposes on every shard it touches, with the keys it will read and write, takes the
//! largest proposal as its final position (`sched.rs`), sends it with the first hop to
//! every participant, and ends with a hop marked `conclude` (or a conclude alone, when it
//! stops early: an aborted MSETNX, a failed WATCH, a part that failed). Between propose and
//! conclude its keys are held on every participant, so no client sees half of it.

use std::time::{Duration, Instant};

use super::access::{Access, ConnId};
use super::op::{FlightRef, Op, PartRef, Res};
use super::sched::{Pos, TxId};
use crate::mesh::Msg;

/// What a flight does next, decided by its owner's logic from the previous hop's results.
pub enum Step {
    /// Run these parts (shard, op) as the next hop; `last`: an atomic flight concludes on
    /// every participant with it.
    Hop { parts: Vec<(usize, Op)>, last: bool },
    /// The operation's reply is ready (an atomic flight concludes everywhere first).
    Reply(Vec<u8>),
    /// Run these parts again after `after` (a fetch long-polling for data; plain only).
    Again {
        parts: Vec<(usize, Op)>,
        after: Duration,
    },
}

/// The logic of one kind of operation: what to run, round after round.
pub trait Rounds: Send {
    /// The results of the last hop, in part order (empty on the first call); `now` is the
    /// shard's clock.
    fn next(&mut self, results: Vec<Res>, now: Instant) -> Step;

    /// A shard refused the transaction when it was proposed (over the memory limit, for
    /// a transaction that writes): what to do instead (the reply, or a last hop that tidies
    /// up first).
    fn refused(&mut self) -> Step {
        Step::Reply(Vec::new())
    }
}

pub enum Input {
    Start,
    /// A participant's proposal (and whether it refused: `oom`).
    Proposed {
        pos: Pos,
        oom: bool,
    },
    /// A part's result.
    Done {
        part: u32,
        res: Res,
    },
    /// The wait asked for by [`Step::Again`] is over.
    Timer,
}

pub enum Output {
    /// A message for a shard (possibly this one).
    Send(usize, Msg),
    /// The reply; the flight is over.
    Reply(Vec<u8>),
    /// Step me with [`Input::Timer`] after this long.
    After(Duration),
}

/// A participant of an atomic flight, as it is proposed to.
pub struct Participant {
    pub shard: usize,
    pub access: Access,
    /// A write that may grow memory: the shard refuses it when over the limit.
    pub denyoom: bool,
}

struct Tx {
    id: TxId,
    shards: Vec<usize>,
    to_propose: Vec<Participant>,
    proposals_left: usize,
    fin: Pos,
    refused: bool,
    fin_sent: bool,
    concluded: bool,
}

pub struct Flight {
    me: FlightRef,
    origin: ConnId,
    rounds: Box<dyn Rounds>,
    tx: Option<Tx>,
    results: Vec<Option<Res>>,
    left: usize,
    again: Vec<(usize, Op)>,
    done: bool,
}

impl Flight {
    /// A flight whose parts run as plain single-shard work.
    pub fn plain(me: FlightRef, origin: ConnId, rounds: Box<dyn Rounds>) -> Flight {
        Flight {
            me,
            origin,
            rounds,
            tx: None,
            results: Vec::new(),
            left: 0,
            again: Vec::new(),
            done: false,
        }
    }

    /// A transaction over `participants` (at least one; every part it runs goes to one of
    /// them).
    pub fn atomic(
        me: FlightRef,
        origin: ConnId,
        id: TxId,
        participants: Vec<Participant>,
        rounds: Box<dyn Rounds>,
    ) -> Flight {
        assert!(!participants.is_empty(), "a transaction with no shard");
        let mut f = Flight::plain(me, origin, rounds);
        f.tx = Some(Tx {
            id,
            shards: participants.iter().map(|p| p.shard).collect(),
            proposals_left: participants.len(),
            to_propose: participants,
            fin: Pos { clock: 0, shard: 0 },
            refused: false,
            fin_sent: false,
            concluded: false,
        });
        f
    }

    pub fn step(&mut self, input: Input, now: Instant, out: &mut Vec<Output>) {
        assert!(!self.done, "a flight stepped after its reply");
        match input {
            Input::Start => match self.tx.as_mut() {
                Some(tx) => {
                    for p in std::mem::take(&mut tx.to_propose) {
                        let msg = Msg::Propose {
                            tx: tx.id,
                            to: self.me,
                            access: p.access,
                            denyoom: p.denyoom,
                        };
                        out.push(Output::Send(p.shard, msg));
                    }
                }
                None => {
                    let s = self.rounds.next(Vec::new(), now);
                    self.apply(s, now, out);
                }
            },
            Input::Proposed { pos, oom } => {
                let tx = self.tx.as_mut().expect("a proposal for a plain flight");
                assert!(tx.proposals_left > 0, "more proposals than participants");
                tx.fin = tx.fin.max(pos);
                tx.refused |= oom;
                tx.proposals_left -= 1;
                if tx.proposals_left == 0 {
                    let s = if tx.refused {
                        self.rounds.refused()
                    } else {
                        self.rounds.next(Vec::new(), now)
                    };
                    self.apply(s, now, out);
                }
            }
            Input::Done { part, res } => {
                let slot = self
                    .results
                    .get_mut(part as usize)
                    .expect("a result for a part that was not sent");
                assert!(slot.is_none(), "two results for part {part}");
                *slot = Some(res);
                self.left -= 1;
                if self.left == 0 {
                    let results = std::mem::take(&mut self.results)
                        .into_iter()
                        .map(|r| r.expect("every part answered"))
                        .collect();
                    let s = self.rounds.next(results, now);
                    self.apply(s, now, out);
                }
            }
            Input::Timer => {
                let parts = std::mem::take(&mut self.again);
                let s = Step::Hop { parts, last: false };
                self.apply(s, now, out);
            }
        }
    }

    fn apply(&mut self, mut step: Step, now: Instant, out: &mut Vec<Output>) {
        loop {
            match step {
                Step::Reply(bytes) => {
                    self.conclude_all(out);
                    self.done = true;
                    out.push(Output::Reply(bytes));
                    return;
                }
                Step::Again { parts, after } => {
                    assert!(self.tx.is_none(), "a transaction cannot wait between hops");
                    self.again = parts;
                    out.push(Output::After(after));
                    return;
                }
                Step::Hop { parts, last } => {
                    if self.send_hop(parts, last, out) {
                        return;
                    }
                    // Nothing to wait for: decide again at once.
                    step = self.rounds.next(Vec::new(), now);
                }
            }
        }
    }

    /// Send one hop; false when it has no parts (nothing will answer).
    fn send_hop(&mut self, parts: Vec<(usize, Op)>, last: bool, out: &mut Vec<Output>) -> bool {
        let n = parts.len();
        self.results = (0..n).map(|_| None).collect();
        self.left = n;
        let me = self.me;
        let part_ref = |i: usize| PartRef {
            flight: me,
            part: i as u32,
        };
        let Some(tx) = self.tx.as_mut() else {
            for (i, (shard, op)) in parts.into_iter().enumerate() {
                let msg = Msg::Part {
                    to: Some(part_ref(i)),
                    op,
                    origin: self.origin,
                };
                out.push(Output::Send(shard, msg));
            }
            return n > 0;
        };
        assert!(!tx.concluded, "a hop after the transaction concluded");
        let mut by_shard: Vec<Vec<(PartRef, Op)>> = tx.shards.iter().map(|_| Vec::new()).collect();
        for (i, (shard, op)) in parts.into_iter().enumerate() {
            let k = tx
                .shards
                .iter()
                .position(|&s| s == shard)
                .expect("a transaction's part on a shard it did not propose on");
            by_shard[k].push((part_ref(i), op));
        }
        let fin = (!tx.fin_sent).then_some(tx.fin);
        for (k, ops) in by_shard.into_iter().enumerate() {
            if ops.is_empty() && fin.is_none() && !last {
                continue;
            }
            let msg = Msg::Hop {
                tx: tx.id,
                fin,
                ops,
                conclude: last,
            };
            out.push(Output::Send(tx.shards[k], msg));
        }
        tx.fin_sent = true;
        tx.concluded = last;
        n > 0
    }

    /// Release an atomic flight's hold on every participant that it still has: a last hop
    /// with no parts.
    fn conclude_all(&mut self, out: &mut Vec<Output>) {
        if self.tx.as_ref().is_some_and(|tx| !tx.concluded) {
            self.send_hop(Vec::new(), true, out);
        }
    }
}
