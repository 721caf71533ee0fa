//! The move phase: before a change that gives slots to new owners is proposed, the data of
//! each moving slot is streamed from its old owner to its new one. A pure state machine,
//! driven like the 2PC machines (`step(input, now) -> outputs`), so it needs no clock and
//! no sockets and is tested on its own.
//!
//! A move is a set of [`Unit`]s. Each goes from one node (`from`, its owner in the
//! committed map) to another (`to`, its owner in the wanted map). Orders are sent to the
//! old owner (it pushes) and to the new one (it accepts ASKING for the units while they
//! move); at most [`MOVE_ORDER_UNITS_MAX`] units per order, one order in flight per
//! (from, to) pair and [`MOVE_UNITS_IN_FLIGHT_MAX`] units in flight in all. The old owner
//! reports each unit done or failed; an order with no report for [`MOVE_ORDER_TIMEOUT_MS`]
//! fails its remaining units. When nothing is left, the phase is done and says which units
//! moved: the map the coordinator then proposes flips exactly those ([`MovePhase::settle`]),
//! and a unit that did not move stays with its old owner (a later change moves it).
//!
//! Units: a cache slot, or a log partition ([`Unit::Partition`]). An order holds one kind.
//! A partition's order goes to its new owner only, which pulls the partition by offset
//! from the old one and reports it: when its copy has caught up it asks (through the
//! control plane, which forwards: `fence`, `fenced`) the old owner to fence the partition,
//! finishes the copy at the fenced end offset, and reports the unit done. A partition the
//! map does not list yet moves from the owner of its name's slot
//! ([`ClusterMap::partition_owner`]).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::limits::{
    MOVE_FIRST_ROUND_UNITS, MOVE_ORDER_TIMEOUT_MS, MOVE_ORDER_UNITS_MAX, MOVE_UNITS_IN_FLIGHT_MAX,
};
use crate::map::{ClusterMap, Epoch, NodeId, NodeState, TopicPartition};
use crate::twopc::Millis;

/// What moves: a cache slot, or a log partition.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Slot(u16),
    Partition(TopicPartition),
}

/// Where the new owner is reached (it may not be in the committed map yet).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Target {
    pub node: NodeId,
    pub resp_addr: String,
    pub kafka_addr: String,
    #[serde(default)]
    pub shard_endpoints: Vec<String>,
    pub shards: u16,
}

/// One order: move `units` from node `from` to `to`. Sent to both.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Order {
    pub id: u64,
    /// The committed epoch the move starts from.
    pub epoch: Epoch,
    pub from: NodeId,
    pub to: Target,
    pub units: Vec<Unit>,
}

impl Order {
    /// A partition order (the new owner carries it out and reports it); else a slot order
    /// (the old owner streams and reports).
    pub fn partitions(&self) -> bool {
        matches!(self.units.first(), Some(Unit::Partition(_)))
    }

    /// The node that reports on the order.
    pub fn reporter(&self) -> NodeId {
        if self.partitions() {
            self.to.node
        } else {
            self.from
        }
    }
}

/// What the phase is told.
#[derive(Clone, Debug)]
pub enum Input {
    /// The reporting node's report for order `id` (the old owner's for slots, the new
    /// owner's for partitions): units done, units failed. `last`: the order
    /// is over (units not named failed).
    Report {
        from: NodeId,
        id: u64,
        done: Vec<Unit>,
        failed: Vec<Unit>,
        last: bool,
    },
    Tick,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Send `order` to `to` (a slot order to its new owner and then its old one; a
    /// partition order to its new owner).
    Send { to: NodeId, order: Order },
    /// Nothing is left: `moved` units moved, `failed` did not, `deferred` were left for
    /// a later round ([`MovePhase::first_round`]).
    Done {
        moved: BTreeSet<Unit>,
        failed: BTreeSet<Unit>,
        deferred: BTreeSet<Unit>,
    },
}

struct Flight {
    order: Order,
    /// Units of the order not reported yet.
    left: BTreeSet<Unit>,
    last_heard: Millis,
}

/// Orders are kept apart per (from, to, partitions?).
type Pair = (NodeId, NodeId, bool);

/// The move phase of one change.
pub struct MovePhase {
    epoch: Epoch,
    /// Per (from, to, kind): units still to send, and where `to` is reached.
    waiting: BTreeMap<Pair, (Target, Vec<Unit>)>,
    flights: BTreeMap<u64, Flight>,
    next_id: u64,
    moved: BTreeSet<Unit>,
    failed: BTreeSet<Unit>,
    deferred: BTreeSet<Unit>,
    done: bool,
}

impl MovePhase {
    /// The units whose owner node changes from `committed` to `next`, where the old owner
    /// can send them (`reachable`: connected, and not removed in `next`) and the new one is
    /// reachable. Units of an unreachable old owner flip without their data (it is gone
    /// with the node); `ids_from` numbers the orders (unique per control plane run).
    pub fn plan(
        committed: &ClusterMap,
        next: &ClusterMap,
        reachable: &dyn Fn(NodeId) -> bool,
        ids_from: u64,
    ) -> MovePhase {
        let mut waiting: BTreeMap<Pair, (Target, Vec<Unit>)> = BTreeMap::new();
        let mut add = |from: NodeId, to: NodeId, unit: Unit| {
            if !reachable(from) || !reachable(to) {
                return;
            }
            let Some(t) = next.node(to) else { return };
            let kind = matches!(unit, Unit::Partition(_));
            waiting
                .entry((from, to, kind))
                .or_insert_with(|| {
                    (
                        Target {
                            node: to,
                            resp_addr: t.resp_addr.clone(),
                            kafka_addr: t.kafka_addr.clone(),
                            shard_endpoints: t.shard_endpoints.clone(),
                            shards: t.shards,
                        },
                        Vec::new(),
                    )
                })
                .1
                .push(unit);
        };
        for (slot, (old, new)) in committed.slots().iter().zip(next.slots()).enumerate() {
            if let (Some(o), Some(n)) = (old, new) {
                if o.node != n.node {
                    add(o.node, n.node, Unit::Slot(slot as u16));
                }
            }
        }
        for (tp, n) in &next.partitions {
            if let Some(o) = committed.partition_owner(tp) {
                if o.node != n.node {
                    add(o.node, n.node, Unit::Partition(tp.clone()));
                }
            }
        }
        MovePhase {
            epoch: committed.epoch,
            waiting,
            flights: BTreeMap::new(),
            next_id: ids_from,
            moved: BTreeSet::new(),
            failed: BTreeSet::new(),
            deferred: BTreeSet::new(),
            done: false,
        }
    }

    /// A new owner that owns no slot in `committed` gets only its first
    /// [`MOVE_FIRST_ROUND_UNITS`] units from each old owner in this phase; the rest is
    /// deferred (it stays put, and the caller runs placement again once this map is
    /// committed). Cluster clients learn a node from CLUSTER SLOTS, which lists only nodes
    /// that own slots, and some (redis-py) cannot follow an ASK to a node they do not know:
    /// a first small round makes the new node known before most of its slots move. True
    /// when something was deferred.
    pub fn first_round(&mut self, committed: &ClusterMap) -> bool {
        let owners = committed.slot_counts();
        for (&(_, to, partitions), (_, units)) in self.waiting.iter_mut() {
            if !partitions
                && owners.get(&to).copied().unwrap_or(0) == 0
                && units.len() > MOVE_FIRST_ROUND_UNITS
            {
                self.deferred.extend(units.drain(MOVE_FIRST_ROUND_UNITS..));
            }
        }
        !self.deferred.is_empty()
    }

    /// Nothing to move.
    pub fn is_empty(&self) -> bool {
        self.waiting.values().all(|(_, u)| u.is_empty()) && self.flights.is_empty()
    }

    /// Units not yet reported.
    pub fn remaining(&self) -> usize {
        self.waiting.values().map(|(_, u)| u.len()).sum::<usize>()
            + self.flights.values().map(|f| f.left.len()).sum::<usize>()
    }

    /// An order in flight (the control plane forwards a partition move's fence by it).
    pub fn order(&self, id: u64) -> Option<&Order> {
        self.flights.get(&id).map(|f| &f.order)
    }

    /// The id the next phase's orders may start from.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    pub fn step(&mut self, input: Input, now: Millis) -> Vec<Output> {
        if self.done {
            return Vec::new();
        }
        match input {
            Input::Report {
                from,
                id,
                done,
                failed,
                last,
            } => {
                if let Some(f) = self
                    .flights
                    .get_mut(&id)
                    .filter(|f| f.order.reporter() == from)
                {
                    f.last_heard = now;
                    for u in done {
                        if f.left.remove(&u) {
                            self.moved.insert(u);
                        }
                    }
                    for u in failed {
                        if f.left.remove(&u) {
                            self.failed.insert(u);
                        }
                    }
                    if last || f.left.is_empty() {
                        let f = self.flights.remove(&id).expect("found above");
                        self.failed.extend(f.left);
                    }
                }
            }
            Input::Tick => {
                let late: Vec<u64> = self
                    .flights
                    .iter()
                    .filter(|(_, f)| now.saturating_sub(f.last_heard) >= MOVE_ORDER_TIMEOUT_MS)
                    .map(|(id, _)| *id)
                    .collect();
                for id in late {
                    let f = self.flights.remove(&id).expect("listed above");
                    self.failed.extend(f.left);
                }
            }
        }
        self.launch(now)
    }

    /// Sends what fits, or reports the phase done.
    fn launch(&mut self, now: Millis) -> Vec<Output> {
        let mut outs = Vec::new();
        let mut in_flight: usize = self.flights.values().map(|f| f.left.len()).sum();
        let busy: BTreeSet<Pair> = self
            .flights
            .values()
            .map(|f| (f.order.from, f.order.to.node, f.order.partitions()))
            .collect();
        for (&(from, to, partitions), (target, units)) in self.waiting.iter_mut() {
            if units.is_empty() || busy.contains(&(from, to, partitions)) {
                continue;
            }
            let room = MOVE_UNITS_IN_FLIGHT_MAX.saturating_sub(in_flight);
            let n = units.len().min(MOVE_ORDER_UNITS_MAX).min(room);
            if n == 0 {
                break;
            }
            let batch: Vec<Unit> = units.drain(..n).collect();
            in_flight += n;
            let order = Order {
                id: self.next_id,
                epoch: self.epoch,
                from,
                to: target.clone(),
                units: batch.clone(),
            };
            self.next_id += 1;
            self.flights.insert(
                order.id,
                Flight {
                    order: order.clone(),
                    left: batch.into_iter().collect(),
                    last_heard: now,
                },
            );
            // The new owner first: it accepts ASKING for the units before the old owner
            // starts redirecting to it.
            outs.push(Output::Send {
                to,
                order: order.clone(),
            });
            if !partitions {
                outs.push(Output::Send { to: from, order });
            }
        }
        if self.is_empty() {
            self.done = true;
            outs.push(Output::Done {
                moved: std::mem::take(&mut self.moved),
                failed: std::mem::take(&mut self.failed),
                deferred: std::mem::take(&mut self.deferred),
            });
        }
        outs
    }

    /// Starts the phase: the first orders (or Done at once when nothing moves).
    pub fn start(&mut self, now: Millis) -> Vec<Output> {
        self.launch(now)
    }

    /// The map to propose after the phase: `next`, except that a slot or partition that
    /// should have moved and did not stays with its committed owner (when that owner may
    /// still own in `next`).
    pub fn settle(committed: &ClusterMap, next: &mut ClusterMap, failed: &BTreeSet<Unit>) {
        for u in failed {
            match u {
                Unit::Slot(s) => {
                    let i = usize::from(*s);
                    let Some(old) = committed.slots().get(i).copied().flatten() else {
                        continue;
                    };
                    let may_own = next.node(old.node).is_some_and(|n| {
                        matches!(n.state, NodeState::Active | NodeState::Draining)
                    });
                    if may_own {
                        next.set_slots(i..i + 1, Some(old));
                    }
                }
                Unit::Partition(tp) => {
                    let Some(old) = committed.partition_owner(tp) else {
                        continue;
                    };
                    let may_own = next.node(old.node).is_some_and(|n| {
                        matches!(n.state, NodeState::Active | NodeState::Draining)
                            && old.shard < n.shards
                    });
                    if may_own {
                        next.partitions.insert(tp.clone(), old);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::{Node, Owner};

    fn node(id: NodeId) -> Node {
        Node {
            id,
            resp_addr: format!("127.0.0.1:{}", 7000 + id),
            kafka_addr: format!("127.0.0.1:{}", 9000 + id),
            shard_endpoints: Vec::new(),
            shards: 2,
            weight: 1,
            state: NodeState::Active,
        }
    }

    fn maps() -> (ClusterMap, ClusterMap) {
        let mut a = ClusterMap::empty();
        a.upsert_node(node(1));
        a.upsert_node(node(2));
        a.set_slots(0..16384, Some(Owner { node: 1, shard: 0 }));
        a.epoch = 3;
        let mut b = a.clone();
        b.set_slots(10000..16384, Some(Owner { node: 2, shard: 0 }));
        (a, b)
    }

    fn sent(outs: &[Output]) -> Vec<(NodeId, Order)> {
        outs.iter()
            .filter_map(|o| match o {
                Output::Send { to, order } => Some((*to, order.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn orders_are_bounded_go_to_both_owners_and_end_in_done() {
        let (a, b) = maps();
        let mut p = MovePhase::plan(&a, &b, &|_| true, 1);
        assert_eq!(p.remaining(), 6384);
        let outs = p.start(0);
        let s = sent(&outs);
        assert_eq!(s.len(), 2, "one pair, one order in flight, to both");
        assert_eq!((s[0].0, s[1].0), (2, 1), "the new owner hears first");
        let order = s[0].1.clone();
        assert_eq!(order.units.len(), MOVE_ORDER_UNITS_MAX);
        assert_eq!(order.epoch, 3);
        assert_eq!(order.to.resp_addr, "127.0.0.1:7002");
        // A report from someone else is ignored.
        let outs = p.step(
            Input::Report {
                from: 2,
                id: order.id,
                done: order.units.clone(),
                failed: vec![],
                last: true,
            },
            1,
        );
        assert!(outs.is_empty());
        let mut moved = 0;
        let mut order = order;
        loop {
            moved += order.units.len();
            let outs = p.step(
                Input::Report {
                    from: 1,
                    id: order.id,
                    done: order.units.clone(),
                    failed: vec![],
                    last: true,
                },
                2,
            );
            if let Some(Output::Done {
                moved: m, failed, ..
            }) = outs.last()
            {
                assert_eq!(m.len(), 6384);
                assert!(failed.is_empty());
                break;
            }
            order = sent(&outs)[0].1.clone();
        }
        assert_eq!(moved, 6384);
    }

    #[test]
    fn a_silent_order_times_out_and_its_slots_stay_with_the_old_owner() {
        let (a, b) = maps();
        let mut p = MovePhase::plan(&a, &b, &|_| true, 1);
        let first = sent(&p.start(0))[0].1.clone();
        // Half reported done, then silence.
        let half: Vec<Unit> = first.units[..10].to_vec();
        let outs = p.step(
            Input::Report {
                from: 1,
                id: first.id,
                done: half.clone(),
                failed: vec![],
                last: false,
            },
            10,
        );
        assert!(outs.is_empty());
        assert!(p.step(Input::Tick, MOVE_ORDER_TIMEOUT_MS).is_empty());
        let outs = p.step(Input::Tick, 10 + MOVE_ORDER_TIMEOUT_MS);
        let next = sent(&outs);
        assert_eq!(next.len(), 2, "the pair is free again: the next order goes");
        // Fail everything else.
        let mut outs = outs;
        let (moved, failed) = loop {
            if let Some(Output::Done { moved, failed, .. }) = outs.last() {
                break (moved.clone(), failed.clone());
            }
            let o = sent(&outs)[0].1.clone();
            outs = p.step(
                Input::Report {
                    from: 1,
                    id: o.id,
                    done: vec![],
                    failed: vec![],
                    last: true,
                },
                20,
            );
        };
        assert_eq!(moved.len(), 10);
        assert_eq!(failed.len(), 6384 - 10);
        let mut m = b.clone();
        MovePhase::settle(&a, &mut m, &failed);
        let counts = m.slot_counts();
        assert_eq!(counts.get(&2).copied(), Some(10));
        for u in &half {
            let Unit::Slot(s) = u else { unreachable!() };
            assert_eq!(m.slots()[usize::from(*s)].unwrap().node, 2);
        }
    }

    #[test]
    fn an_unreachable_old_owner_moves_nothing() {
        let (a, b) = maps();
        let mut p = MovePhase::plan(&a, &b, &|n| n != 1, 1);
        assert!(p.is_empty());
        let outs = p.start(0);
        assert!(
            matches!(outs.as_slice(), [Output::Done { moved, failed, .. }] if moved.is_empty() && failed.is_empty())
        );
    }

    #[test]
    fn a_new_owner_without_slots_gets_a_small_first_round() {
        let (mut a, b) = maps();
        let mut p = MovePhase::plan(&a, &b, &|_| true, 1);
        assert!(p.first_round(&a), "node 2 owns nothing yet");
        assert_eq!(p.remaining(), MOVE_FIRST_ROUND_UNITS);
        let order = sent(&p.start(0))[0].1.clone();
        assert_eq!(order.units.len(), MOVE_FIRST_ROUND_UNITS);
        let outs = p.step(
            Input::Report {
                from: 1,
                id: order.id,
                done: order.units.clone(),
                failed: vec![],
                last: true,
            },
            1,
        );
        let Some(Output::Done {
            moved,
            failed,
            deferred,
        }) = outs.last()
        else {
            panic!("{outs:?}")
        };
        assert_eq!(moved.len(), MOVE_FIRST_ROUND_UNITS);
        assert!(failed.is_empty());
        assert_eq!(deferred.len(), 6384 - MOVE_FIRST_ROUND_UNITS);
        // A node that owns slots already gets everything at once.
        a.set_slots(16383..16384, Some(Owner { node: 2, shard: 0 }));
        let mut p = MovePhase::plan(&a, &b, &|_| true, 1);
        assert!(!p.first_round(&a));
        assert_eq!(p.remaining(), 6383);
    }

    #[test]
    fn a_partition_order_goes_to_its_new_owner_which_reports_it() {
        let (a, mut b) = maps();
        // Two partitions: one the committed map lists on node 1, one it does not (it is
        // served by its name's slot's owner, node 1 too).
        let listed = TopicPartition {
            topic: "t".into(),
            partition: 0,
        };
        let by_slot = TopicPartition {
            topic: "t".into(),
            partition: 1,
        };
        let mut a = a;
        a.partitions
            .insert(listed.clone(), Owner { node: 1, shard: 0 });
        b.partitions
            .insert(listed.clone(), Owner { node: 2, shard: 1 });
        b.partitions
            .insert(by_slot.clone(), Owner { node: 2, shard: 0 });
        b.set_slots(0..16384, Some(Owner { node: 1, shard: 0 }));
        let mut p = MovePhase::plan(&a, &b, &|_| true, 1);
        assert_eq!(p.remaining(), 2);
        let s = sent(&p.start(0));
        assert_eq!(s.len(), 1, "to the new owner only");
        let (to, order) = s[0].clone();
        assert_eq!(to, 2);
        assert!(order.partitions() && order.reporter() == 2);
        assert_eq!(p.order(order.id), Some(&order));
        // The old owner's report on a partition order is not the one that counts.
        let report = |from, done: Vec<Unit>, failed: Vec<Unit>| Input::Report {
            from,
            id: order.id,
            done,
            failed,
            last: true,
        };
        assert!(p.step(report(1, order.units.clone(), vec![]), 1).is_empty());
        let outs = p.step(
            report(
                2,
                vec![Unit::Partition(listed.clone())],
                vec![Unit::Partition(by_slot.clone())],
            ),
            2,
        );
        let Some(Output::Done { moved, failed, .. }) = outs.last() else {
            panic!("{outs:?}")
        };
        assert_eq!(moved.len(), 1);
        let mut m = b.clone();
        MovePhase::settle(&a, &mut m, failed);
        assert_eq!(m.partitions[&listed].node, 2, "it moved");
        assert_eq!(
            m.partitions[&by_slot],
            Owner { node: 1, shard: 0 },
            "it stays where it was served"
        );
    }
}
