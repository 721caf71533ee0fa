//! The 2PC participant: a node's side of a map change.
//!
//! Owned by the node (later, the dataplane's `cluster` module; today the simulation and
//! tests). Lifecycle: `recover(durable)` at start (a new node starts from the empty map),
//! then `step` for messages from the coordinator and ticks.
//!
//! Durable state is [`Durable`]: the committed map it serves and the map it prepared, if
//! any. Invariants: the committed epoch never goes down; a map is installed only from a
//! commit of the map this participant prepared for that epoch (same digest) or from the
//! coordinator's catch-up, which carries a committed map; a vote yes is sent only after the
//! prepared map is durable, and an ack of a commit only after the committed map is.

use super::{Millis, SignedMap, Timing, ToCoordinator, ToMember};
use crate::map::{Epoch, NodeId};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Durable {
    pub committed: SignedMap,
    pub prepared: Option<SignedMap>,
}

impl Durable {
    pub fn new() -> Durable {
        Durable {
            committed: SignedMap::empty(),
            prepared: None,
        }
    }
}

impl Default for Durable {
    fn default() -> Self {
        Durable::new()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Recv(ToMember),
    Tick,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Make this the durable state before carrying out the outputs after it.
    Persist(Durable),
    /// Serve this map from now on.
    Install(SignedMap),
    Send(ToCoordinator),
}

#[derive(Debug)]
pub struct Participant {
    id: NodeId,
    timing: Timing,
    durable: Durable,
    next_ask: Millis,
}

impl Participant {
    /// Rebuilds the participant from its durable state: it installs its committed map, and
    /// asks at once (in doubt or not, it may have missed a decision while down).
    pub fn recover(
        id: NodeId,
        durable: Durable,
        timing: Timing,
        now: Millis,
    ) -> (Participant, Vec<Output>) {
        let mut p = Participant {
            id,
            timing,
            durable,
            next_ask: now,
        };
        let mut out = vec![Output::Install(p.durable.committed.clone())];
        p.ask(now, &mut out);
        (p, out)
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn committed(&self) -> &SignedMap {
        &self.durable.committed
    }

    pub fn prepared(&self) -> Option<&SignedMap> {
        self.durable.prepared.as_ref()
    }

    pub fn step(&mut self, input: Input, now: Millis) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Recv(msg) => self.recv(msg, now, &mut out),
            Input::Tick => {
                if now >= self.next_ask {
                    self.ask(now, &mut out);
                }
            }
        }
        out
    }

    fn ask(&mut self, now: Millis, out: &mut Vec<Output>) {
        let prepared = self.durable.prepared.as_ref().map(SignedMap::epoch);
        out.push(Output::Send(ToCoordinator::Ask {
            prepared,
            committed: self.durable.committed.epoch(),
        }));
        self.next_ask = now
            + if prepared.is_some() {
                self.timing.ask_ms
            } else {
                self.timing.report_ms
            };
    }

    fn recv(&mut self, msg: ToMember, now: Millis, out: &mut Vec<Output>) {
        match msg {
            ToMember::Prepare { epoch, map } => {
                let yes = self.prepare(epoch, map, out);
                out.push(Output::Send(ToCoordinator::Vote { epoch, yes }));
            }
            ToMember::Decide {
                epoch,
                commit: true,
                digest,
            } => {
                let matches = self
                    .durable
                    .prepared
                    .as_ref()
                    .is_some_and(|p| p.epoch() == epoch && Some(p.digest) == digest);
                if matches {
                    let map = self.durable.prepared.take().expect("checked above");
                    self.durable.committed = map.clone();
                    out.push(Output::Persist(self.durable.clone()));
                    out.push(Output::Install(map));
                    out.push(Output::Send(ToCoordinator::Ack { epoch }));
                } else if self.durable.committed.epoch() >= epoch {
                    out.push(Output::Send(ToCoordinator::Ack { epoch }));
                } else {
                    // A commit for a map we do not hold: ask for the committed map.
                    self.ask(now, out);
                }
            }
            ToMember::Decide {
                epoch,
                commit: false,
                ..
            } => {
                if self
                    .durable
                    .prepared
                    .as_ref()
                    .is_some_and(|p| p.epoch() == epoch)
                {
                    self.durable.prepared = None;
                    out.push(Output::Persist(self.durable.clone()));
                }
                out.push(Output::Send(ToCoordinator::Ack { epoch }));
            }
            ToMember::Catchup { map } => {
                if map.epoch() > self.durable.committed.epoch() {
                    if self
                        .durable
                        .prepared
                        .as_ref()
                        .is_some_and(|p| p.epoch() <= map.epoch())
                    {
                        self.durable.prepared = None;
                    }
                    self.durable.committed = map.clone();
                    out.push(Output::Persist(self.durable.clone()));
                    out.push(Output::Install(map));
                }
            }
        }
    }

    /// Validates a prepare and makes it durable; returns the vote.
    fn prepare(&mut self, epoch: Epoch, map: SignedMap, out: &mut Vec<Output>) -> bool {
        if map.epoch() != epoch {
            return false;
        }
        let committed = &self.durable.committed;
        if epoch <= committed.epoch() {
            // A duplicate of a change already committed here votes yes again; anything
            // older is stale.
            return epoch == committed.epoch() && map.digest == committed.digest;
        }
        if let Some(p) = &self.durable.prepared {
            if p.epoch() == epoch {
                return p.digest == map.digest;
            }
            if p.epoch() > epoch {
                return false;
            }
            // p < epoch: the coordinator begins an epoch only after ending the one before,
            // so our older prepared epoch is decided and this complete map supersedes it.
        }
        let serving_node = map.map.node(self.id).is_some_and(|n| n.state.votes());
        if !serving_node {
            return false;
        }
        self.durable.prepared = Some(map);
        out.push(Output::Persist(self.durable.clone()));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::NodeState;
    use crate::twopc::coordinator::tests::map_with;

    fn signed(epoch: Epoch) -> SignedMap {
        let mut m = map_with(&[(1, NodeState::Active), (2, NodeState::Active)]);
        m.epoch = epoch;
        m.node_mut(2).unwrap().weight = epoch as u32;
        SignedMap::new(m)
    }

    fn prepare(m: &SignedMap) -> Input {
        Input::Recv(ToMember::Prepare {
            epoch: m.epoch(),
            map: m.clone(),
        })
    }

    fn commit(m: &SignedMap) -> Input {
        Input::Recv(ToMember::Decide {
            epoch: m.epoch(),
            commit: true,
            digest: Some(m.digest),
        })
    }

    #[test]
    fn prepare_persists_before_the_vote_and_commit_before_the_ack() {
        let (mut p, out) = Participant::recover(1, Durable::new(), Timing::default(), 0);
        assert_eq!(out.len(), 2);
        let m = signed(1);
        let out = p.step(prepare(&m), 1);
        assert!(matches!(&out[0], Output::Persist(d) if d.prepared.as_ref() == Some(&m)));
        assert_eq!(
            out[1],
            Output::Send(ToCoordinator::Vote {
                epoch: 1,
                yes: true
            })
        );
        // A duplicate prepare votes again without persisting.
        assert_eq!(p.step(prepare(&m), 2).len(), 1);
        let out = p.step(commit(&m), 3);
        assert!(matches!(&out[0], Output::Persist(d) if d.committed == m && d.prepared.is_none()));
        assert_eq!(out[1], Output::Install(m.clone()));
        assert_eq!(out[2], Output::Send(ToCoordinator::Ack { epoch: 1 }));
        // A duplicate commit is acked, nothing else.
        assert_eq!(
            p.step(commit(&m), 4),
            vec![Output::Send(ToCoordinator::Ack { epoch: 1 })]
        );
    }

    #[test]
    fn a_commit_of_another_map_is_not_installed() {
        let (mut p, _) = Participant::recover(1, Durable::new(), Timing::default(), 0);
        let m = signed(1);
        p.step(prepare(&m), 1);
        // Same epoch, different digest (cannot happen with an honest coordinator).
        let mut forged = (*signed(2).map).clone();
        forged.epoch = 1;
        let forged = SignedMap::new(forged);
        let out = p.step(commit(&forged), 2);
        assert!(matches!(out[..], [Output::Send(ToCoordinator::Ask { .. })]));
        assert_eq!(p.committed().epoch(), 0);
    }

    #[test]
    fn stale_and_conflicting_prepares_vote_no() {
        let (mut p, _) = Participant::recover(1, Durable::new(), Timing::default(), 0);
        let m2 = signed(2);
        p.step(prepare(&m2), 1);
        p.step(commit(&m2), 1);
        let out = p.step(prepare(&signed(1)), 2);
        assert_eq!(
            out,
            vec![Output::Send(ToCoordinator::Vote {
                epoch: 1,
                yes: false
            })]
        );
        // A prepare that leaves this node out of the voters is refused.
        let mut m = map_with(&[(2, NodeState::Active)]);
        m.epoch = 3;
        let out = p.step(prepare(&SignedMap::new(m)), 3);
        assert_eq!(
            out,
            vec![Output::Send(ToCoordinator::Vote {
                epoch: 3,
                yes: false
            })]
        );
    }

    #[test]
    fn in_doubt_asks_until_answered_and_catches_up() {
        let t = Timing::default();
        let (mut p, _) = Participant::recover(1, Durable::new(), t, 0);
        let m = signed(1);
        p.step(prepare(&m), 1);
        // Crash: the durable state survives, the restarted one asks at once.
        let durable = Durable {
            committed: p.committed().clone(),
            prepared: p.prepared().cloned(),
        };
        let (mut p, out) = Participant::recover(1, durable, t, 100);
        assert_eq!(
            out[1],
            Output::Send(ToCoordinator::Ask {
                prepared: Some(1),
                committed: 0
            })
        );
        assert!(p.step(Input::Tick, 100 + t.ask_ms - 1).is_empty());
        assert_eq!(p.step(Input::Tick, 100 + t.ask_ms).len(), 1);
        // The coordinator answers with a later committed map: it supersedes the doubt.
        let m3 = signed(3);
        let out = p.step(Input::Recv(ToMember::Catchup { map: m3.clone() }), 500);
        assert_eq!(out[1], Output::Install(m3.clone()));
        assert!(p.prepared().is_none());
        // An older catch-up changes nothing.
        assert!(p
            .step(Input::Recv(ToMember::Catchup { map: m }), 501)
            .is_empty());
    }
}
