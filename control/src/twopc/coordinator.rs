//! The 2PC coordinator: one change at a time, each under a fresh epoch.
//!
//! Owned by the control plane's core loop. Lifecycle: `recover(log)` at start (an empty log
//! is the empty map at epoch 0), then `step` for proposals, messages and ticks. Its durable
//! state is its log of [`Record`]s; everything else is rebuilt from it.
//!
//! Invariants: at most one change is open; a `Begin(e)` is persisted before any `Prepare(e)`
//! and `e` is above every epoch in the log; a decision is persisted before it is sent and
//! never changes; `committed` is the map of the last persisted commit.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{Millis, SignedMap, Timing, ToCoordinator, ToMember};
use crate::map::{ClusterMap, Epoch, MapError, NodeId};

/// One entry of the coordinator's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// The state at a point: written by compaction, replaces everything before it.
    Snapshot {
        committed: SignedMap,
        last_epoch: Epoch,
    },
    Begin {
        epoch: Epoch,
        map: SignedMap,
    },
    Decide {
        epoch: Epoch,
        commit: bool,
    },
    End {
        epoch: Epoch,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Commit this map as the next epoch (its `epoch` field is overwritten).
    Propose(ClusterMap),
    Recv {
        from: NodeId,
        msg: ToCoordinator,
    },
    Tick,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Make this record durable before carrying out the outputs after it.
    Persist(Record),
    Send {
        to: NodeId,
        msg: ToMember,
    },
    /// A change ended. `unacked`: voters that had not acked when the ack wait ran out.
    Done {
        epoch: Epoch,
        committed: bool,
        unacked: Vec<NodeId>,
    },
    /// A proposal was not started.
    Refused(Refusal),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("a change to epoch {0} is in progress")]
    Busy(Epoch),
    #[error("invalid map: {0}")]
    Invalid(MapError),
}

#[derive(Debug)]
enum Phase {
    Idle,
    Preparing {
        map: SignedMap,
        voters: BTreeSet<NodeId>,
        yes: BTreeSet<NodeId>,
        deadline: Millis,
        resend_at: Millis,
    },
    Deciding {
        map: SignedMap,
        commit: bool,
        voters: BTreeSet<NodeId>,
        acked: BTreeSet<NodeId>,
        give_up_at: Millis,
        resend_at: Millis,
    },
}

#[derive(Debug)]
pub struct Coordinator {
    timing: Timing,
    /// The last committed map (epoch 0: the empty map).
    committed: SignedMap,
    /// The highest epoch ever begun: the next change gets one above it.
    last_epoch: Epoch,
    phase: Phase,
}

impl Coordinator {
    /// Rebuilds the coordinator from its log. An open change without a decision is aborted;
    /// one with a decision has it re-sent.
    pub fn recover(log: &[Record], timing: Timing, now: Millis) -> (Coordinator, Vec<Output>) {
        let mut committed = SignedMap::empty();
        let mut last_epoch = 0;
        let mut open: Option<(SignedMap, Option<bool>)> = None;
        for rec in log {
            match rec {
                Record::Snapshot {
                    committed: c,
                    last_epoch: l,
                } => {
                    committed = c.clone();
                    last_epoch = *l;
                    open = None;
                }
                Record::Begin { epoch, map } => {
                    last_epoch = last_epoch.max(*epoch);
                    open = Some((map.clone(), None));
                }
                Record::Decide { epoch, commit } => {
                    if let Some((map, decision)) = &mut open {
                        if map.epoch() == *epoch && decision.is_none() {
                            *decision = Some(*commit);
                            if *commit {
                                committed = map.clone();
                            }
                        }
                    }
                }
                Record::End { epoch } => {
                    if open.as_ref().is_some_and(|(m, _)| m.epoch() == *epoch) {
                        open = None;
                    }
                }
            }
        }
        let mut c = Coordinator {
            timing,
            committed,
            last_epoch,
            phase: Phase::Idle,
        };
        let mut out = Vec::new();
        if let Some((map, decision)) = open {
            let voters: BTreeSet<NodeId> = map.map.voters().collect();
            match decision {
                None => c.decide(map, voters, false, now, &mut out),
                Some(commit) => {
                    for &v in &voters {
                        out.push(Output::Send {
                            to: v,
                            msg: decision_msg(&map, commit),
                        });
                    }
                    c.phase = Phase::Deciding {
                        map,
                        commit,
                        voters,
                        acked: BTreeSet::new(),
                        give_up_at: now + c.timing.ack_wait_ms,
                        resend_at: now + c.timing.resend_ms,
                    };
                    c.finish_if_acked(&mut out);
                }
            }
        }
        (c, out)
    }

    pub fn committed(&self) -> &SignedMap {
        &self.committed
    }

    pub fn last_epoch(&self) -> Epoch {
        self.last_epoch
    }

    /// The epoch of the change in progress, if any.
    pub fn open_epoch(&self) -> Option<Epoch> {
        match &self.phase {
            Phase::Idle => None,
            Phase::Preparing { map, .. } | Phase::Deciding { map, .. } => Some(map.epoch()),
        }
    }

    /// A phase name for status output.
    pub fn phase_name(&self) -> &'static str {
        match &self.phase {
            Phase::Idle => "idle",
            Phase::Preparing { .. } => "preparing",
            Phase::Deciding { commit: true, .. } => "committing",
            Phase::Deciding { commit: false, .. } => "aborting",
        }
    }

    /// The one record that can replace the whole log, when no change is open.
    pub fn snapshot(&self) -> Option<Record> {
        matches!(self.phase, Phase::Idle).then(|| Record::Snapshot {
            committed: self.committed.clone(),
            last_epoch: self.last_epoch,
        })
    }

    pub fn step(&mut self, input: Input, now: Millis) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Propose(map) => self.propose(map, now, &mut out),
            Input::Recv { from, msg } => self.recv(from, msg, now, &mut out),
            Input::Tick => self.tick(now, &mut out),
        }
        out
    }

    fn propose(&mut self, mut map: ClusterMap, now: Millis, out: &mut Vec<Output>) {
        if let Some(e) = self.open_epoch() {
            out.push(Output::Refused(Refusal::Busy(e)));
            return;
        }
        let epoch = self.last_epoch + 1;
        map.epoch = epoch;
        if let Err(e) = map.validate() {
            out.push(Output::Refused(Refusal::Invalid(e)));
            return;
        }
        let map = SignedMap::new(map);
        self.last_epoch = epoch;
        out.push(Output::Persist(Record::Begin {
            epoch,
            map: map.clone(),
        }));
        let voters: BTreeSet<NodeId> = map.map.voters().collect();
        for &v in &voters {
            out.push(Output::Send {
                to: v,
                msg: ToMember::Prepare {
                    epoch,
                    map: map.clone(),
                },
            });
        }
        self.phase = Phase::Preparing {
            map,
            voters,
            yes: BTreeSet::new(),
            deadline: now + self.timing.prepare_timeout_ms,
            resend_at: now + self.timing.resend_ms,
        };
        self.decide_if_all_voted(now, out);
    }

    fn recv(&mut self, from: NodeId, msg: ToCoordinator, now: Millis, out: &mut Vec<Output>) {
        match msg {
            ToCoordinator::Vote { epoch, yes } => match &mut self.phase {
                Phase::Preparing {
                    map,
                    voters,
                    yes: yeses,
                    ..
                } if map.epoch() == epoch && voters.contains(&from) => {
                    if yes {
                        yeses.insert(from);
                        self.decide_if_all_voted(now, out);
                    } else {
                        let (map, voters) = (map.clone(), voters.clone());
                        self.decide(map, voters, false, now, out);
                    }
                }
                Phase::Deciding {
                    map, commit, acked, ..
                } if map.epoch() == epoch && !acked.contains(&from) => {
                    out.push(Output::Send {
                        to: from,
                        msg: decision_msg(map, *commit),
                    });
                }
                // A vote for an epoch that is over: the voter learns the outcome by asking.
                _ => {}
            },
            ToCoordinator::Ack { epoch } => {
                if let Phase::Deciding { map, acked, .. } = &mut self.phase {
                    if map.epoch() == epoch {
                        acked.insert(from);
                        self.finish_if_acked(out);
                    }
                }
            }
            ToCoordinator::Ask {
                prepared,
                committed,
            } => self.answer(from, prepared, committed, out),
        }
    }

    /// Answers a participant that asks about its prepared epoch and reports its committed one.
    fn answer(
        &self,
        from: NodeId,
        prepared: Option<Epoch>,
        committed: Epoch,
        out: &mut Vec<Output>,
    ) {
        let latest = self.committed.epoch();
        if let Some(pe) = prepared {
            match &self.phase {
                Phase::Preparing { map, .. } if map.epoch() == pe => {
                    // Still collecting votes: send the prepare again so it votes again.
                    out.push(Output::Send {
                        to: from,
                        msg: ToMember::Prepare {
                            epoch: pe,
                            map: map.clone(),
                        },
                    });
                }
                Phase::Deciding { map, commit, .. } if map.epoch() == pe => {
                    out.push(Output::Send {
                        to: from,
                        msg: decision_msg(map, *commit),
                    });
                }
                // Not open and above the last commit: never committed, so aborted
                // (presumed abort). At or below the last commit, the catch-up below
                // supersedes it.
                _ if pe > latest => out.push(Output::Send {
                    to: from,
                    msg: ToMember::Decide {
                        epoch: pe,
                        commit: false,
                        digest: None,
                    },
                }),
                _ => {}
            }
        }
        if committed < latest || prepared.is_some_and(|pe| pe <= latest) {
            out.push(Output::Send {
                to: from,
                msg: ToMember::Catchup {
                    map: self.committed.clone(),
                },
            });
        }
    }

    fn tick(&mut self, now: Millis, out: &mut Vec<Output>) {
        match &mut self.phase {
            Phase::Idle => {}
            Phase::Preparing {
                map,
                voters,
                yes,
                deadline,
                resend_at,
            } => {
                if now >= *deadline {
                    let (map, voters) = (map.clone(), voters.clone());
                    self.decide(map, voters, false, now, out);
                } else if now >= *resend_at {
                    *resend_at = now + self.timing.resend_ms;
                    for v in voters.difference(yes) {
                        out.push(Output::Send {
                            to: *v,
                            msg: ToMember::Prepare {
                                epoch: map.epoch(),
                                map: map.clone(),
                            },
                        });
                    }
                }
            }
            Phase::Deciding {
                map,
                commit,
                voters,
                acked,
                give_up_at,
                resend_at,
            } => {
                if now >= *give_up_at {
                    let unacked = voters.difference(acked).copied().collect();
                    let (epoch, committed) = (map.epoch(), *commit);
                    self.end(epoch, committed, unacked, out);
                } else if now >= *resend_at {
                    *resend_at = now + self.timing.resend_ms;
                    for v in voters.difference(acked) {
                        out.push(Output::Send {
                            to: *v,
                            msg: decision_msg(map, *commit),
                        });
                    }
                }
            }
        }
    }

    fn decide_if_all_voted(&mut self, now: Millis, out: &mut Vec<Output>) {
        if let Phase::Preparing {
            map, voters, yes, ..
        } = &self.phase
        {
            if voters.is_subset(yes) {
                let (map, voters) = (map.clone(), voters.clone());
                self.decide(map, voters, true, now, out);
            }
        }
    }

    /// Persists the decision, then sends it to every voter.
    fn decide(
        &mut self,
        map: SignedMap,
        voters: BTreeSet<NodeId>,
        commit: bool,
        now: Millis,
        out: &mut Vec<Output>,
    ) {
        out.push(Output::Persist(Record::Decide {
            epoch: map.epoch(),
            commit,
        }));
        if commit {
            self.committed = map.clone();
        }
        for &v in &voters {
            out.push(Output::Send {
                to: v,
                msg: decision_msg(&map, commit),
            });
        }
        self.phase = Phase::Deciding {
            map,
            commit,
            voters,
            acked: BTreeSet::new(),
            give_up_at: now + self.timing.ack_wait_ms,
            resend_at: now + self.timing.resend_ms,
        };
        self.finish_if_acked(out);
    }

    /// Ends a decided change once every voter acked. An abort ends at once (presumed
    /// abort): a participant that missed it and asks about an epoch that is neither open
    /// nor committed is told abort, so no ack is needed.
    fn finish_if_acked(&mut self, out: &mut Vec<Output>) {
        if let Phase::Deciding {
            map,
            commit,
            voters,
            acked,
            ..
        } = &self.phase
        {
            if !*commit || voters.is_subset(acked) {
                let (epoch, commit) = (map.epoch(), *commit);
                self.end(epoch, commit, Vec::new(), out);
            }
        }
    }

    fn end(&mut self, epoch: Epoch, committed: bool, unacked: Vec<NodeId>, out: &mut Vec<Output>) {
        out.push(Output::Persist(Record::End { epoch }));
        out.push(Output::Done {
            epoch,
            committed,
            unacked,
        });
        self.phase = Phase::Idle;
    }
}

fn decision_msg(map: &SignedMap, commit: bool) -> ToMember {
    ToMember::Decide {
        epoch: map.epoch(),
        commit,
        digest: Some(map.digest),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::map::{Node, NodeState};

    pub(crate) fn map_with(nodes: &[(NodeId, NodeState)]) -> ClusterMap {
        let mut m = ClusterMap::empty();
        for &(id, state) in nodes {
            m.upsert_node(Node {
                id,
                resp_addr: format!("127.0.0.1:{}", 7000 + id),
                kafka_addr: format!("127.0.0.1:{}", 9000 + id),
                shard_endpoints: vec![],
                shards: 1,
                weight: 1,
                state,
            });
        }
        m
    }

    fn sends(out: &[Output]) -> Vec<(NodeId, ToMember)> {
        out.iter()
            .filter_map(|o| match o {
                Output::Send { to, msg } => Some((*to, msg.clone())),
                _ => None,
            })
            .collect()
    }

    fn persisted(out: &[Output]) -> Vec<Record> {
        out.iter()
            .filter_map(|o| match o {
                Output::Persist(r) => Some(r.clone()),
                _ => None,
            })
            .collect()
    }

    fn vote(c: &mut Coordinator, from: NodeId, epoch: Epoch, yes: bool) -> Vec<Output> {
        c.step(
            Input::Recv {
                from,
                msg: ToCoordinator::Vote { epoch, yes },
            },
            10,
        )
    }

    #[test]
    fn commit_path_persists_before_sending() {
        let (mut c, out) = Coordinator::recover(&[], Timing::default(), 0);
        assert!(out.is_empty());
        let m = map_with(&[(1, NodeState::Active), (2, NodeState::Active)]);
        let out = c.step(Input::Propose(m), 0);
        assert!(matches!(
            out[0],
            Output::Persist(Record::Begin { epoch: 1, .. })
        ));
        assert_eq!(sends(&out).len(), 2);
        assert!(vote(&mut c, 1, 1, true).is_empty());
        let out = vote(&mut c, 2, 1, true);
        assert_eq!(
            out[0],
            Output::Persist(Record::Decide {
                epoch: 1,
                commit: true
            })
        );
        assert_eq!(sends(&out).len(), 2);
        assert_eq!(c.committed().epoch(), 1);
        // A second proposal waits for the acks.
        let out = c.step(Input::Propose(ClusterMap::empty()), 11);
        assert_eq!(out, vec![Output::Refused(Refusal::Busy(1))]);
        let ack = |from| Input::Recv {
            from,
            msg: ToCoordinator::Ack { epoch: 1 },
        };
        assert!(c.step(ack(1), 12).is_empty());
        let out = c.step(ack(2), 12);
        assert_eq!(out[0], Output::Persist(Record::End { epoch: 1 }));
        assert!(matches!(
            out[1],
            Output::Done {
                epoch: 1,
                committed: true,
                ..
            }
        ));
        assert_eq!(c.open_epoch(), None);
    }

    #[test]
    fn a_no_vote_or_the_timeout_aborts_and_the_epoch_is_not_reused() {
        let t = Timing::default();
        let (mut c, _) = Coordinator::recover(&[], t, 0);
        let m = map_with(&[(1, NodeState::Active), (2, NodeState::Active)]);
        c.step(Input::Propose(m.clone()), 0);
        let out = vote(&mut c, 1, 1, false);
        assert_eq!(
            out[0],
            Output::Persist(Record::Decide {
                epoch: 1,
                commit: false
            })
        );
        assert_eq!(c.committed().epoch(), 0);
        // An abort needs no acks: it ends at once.
        assert!(matches!(
            out.last(),
            Some(Output::Done {
                epoch: 1,
                committed: false,
                ..
            })
        ));
        assert_eq!(c.open_epoch(), None);

        let out = c.step(Input::Propose(m), 20_000);
        assert!(matches!(
            out[0],
            Output::Persist(Record::Begin { epoch: 2, .. })
        ));
        // Prepares are re-sent to those that did not vote, then the timeout aborts.
        let out = c.step(Input::Tick, 20_000 + t.resend_ms);
        assert_eq!(sends(&out).len(), 2);
        let out = c.step(Input::Tick, 20_000 + t.prepare_timeout_ms);
        assert_eq!(
            persisted(&out),
            vec![
                Record::Decide {
                    epoch: 2,
                    commit: false
                },
                Record::End { epoch: 2 }
            ]
        );
    }

    #[test]
    fn recovery_aborts_the_undecided_and_resends_the_decided() {
        let m = SignedMap::new({
            let mut m = map_with(&[(1, NodeState::Active)]);
            m.epoch = 1;
            m
        });
        let begun = vec![Record::Begin {
            epoch: 1,
            map: m.clone(),
        }];
        let (c, out) = Coordinator::recover(&begun, Timing::default(), 0);
        assert_eq!(
            persisted(&out),
            vec![
                Record::Decide {
                    epoch: 1,
                    commit: false
                },
                Record::End { epoch: 1 }
            ]
        );
        assert_eq!(c.committed().epoch(), 0);
        assert_eq!(c.last_epoch(), 1);

        let mut decided = begun.clone();
        decided.push(Record::Decide {
            epoch: 1,
            commit: true,
        });
        let (c, out) = Coordinator::recover(&decided, Timing::default(), 0);
        assert!(persisted(&out).is_empty());
        assert_eq!(
            sends(&out),
            vec![(
                1,
                ToMember::Decide {
                    epoch: 1,
                    commit: true,
                    digest: Some(m.digest)
                }
            )]
        );
        assert_eq!(c.committed(), &m);
    }

    #[test]
    fn asks_get_the_decision_a_presumed_abort_or_a_catchup() {
        let (mut c, _) = Coordinator::recover(&[], Timing::default(), 0);
        c.step(Input::Propose(map_with(&[(1, NodeState::Active)])), 0);
        vote(&mut c, 1, 1, true);
        let ask = |prepared, committed| Input::Recv {
            from: 1,
            msg: ToCoordinator::Ask {
                prepared,
                committed,
            },
        };
        // In doubt about the open epoch: the decision again.
        let out = c.step(ask(Some(1), 0), 1);
        assert!(matches!(
            sends(&out)[0].1,
            ToMember::Decide {
                epoch: 1,
                commit: true,
                ..
            }
        ));
        // In doubt about an epoch never begun: presumed abort.
        let out = c.step(ask(Some(5), 1), 1);
        assert!(matches!(
            sends(&out)[0].1,
            ToMember::Decide {
                epoch: 5,
                commit: false,
                digest: None
            }
        ));
        // Behind: the committed map.
        let out = c.step(ask(None, 0), 1);
        assert!(matches!(&sends(&out)[0].1, ToMember::Catchup { map } if map.epoch() == 1));
        // Up to date and not in doubt: nothing.
        assert!(c.step(ask(None, 1), 1).is_empty());
    }

    #[test]
    fn a_map_without_voters_commits_at_once() {
        let (mut c, _) = Coordinator::recover(&[], Timing::default(), 0);
        let out = c.step(Input::Propose(map_with(&[(4, NodeState::Joining)])), 0);
        let recs = persisted(&out);
        assert_eq!(recs.len(), 3, "{recs:?}");
        assert!(matches!(
            out.last(),
            Some(Output::Done {
                committed: true,
                ..
            })
        ));
        assert_eq!(c.committed().epoch(), 1);
    }
}
