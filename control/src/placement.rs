//! Placement: which (node, shard) owns each slot and partition, by weighted rendezvous
//! hashing, with weights that follow measured load slowly enough never to flap.
//!
//! Owned by the control plane's core loop; pure (no clock, no I/O).
//!
//! The formula (also in docs/architecture.md, "Control plane"):
//! - candidates are the shards of active nodes; a shard's weight is
//!   `w(n,s) = operator_weight(n) × f(n,s)`, so a node's effective weight is
//!   `operator weight × shards × load factor` (its shards' mean factor);
//! - a key k (a slot, or a topic-partition) goes to the candidate with the highest score
//!   `w / -ln(u(k, n, s))`, where `u` is a hash of (k, n, s) mapped into (0, 1). Each
//!   candidate wins a share of keys proportional to its weight, and a change of one
//!   candidate's weight moves keys only to or from that candidate;
//! - the load factor `f` starts at 1. Heartbeats report each shard's CPU busy fraction `b`,
//!   smoothed as `ū ← ū + α(b − ū)` (α = 0.2). In a rebalance round, a shard's expected
//!   load is its operator weight's share of the total load, `e = U × w_op(n) / Σ w_op`
//!   over all candidate shards (`U = Σ ū`); its ratio is `r = ū / e`. Only
//!   when `|r − 1| > H` (H = 0.25, the hysteresis band) does `f` change, by half a step in
//!   log space, `f ← f × r^(-1/2)`, clamped to [1/4, 4] and rounded to 1/16. An idle
//!   cluster (U below 0.05 per shard) changes nothing. Moves that only follow load are
//!   bounded per round (`limits.rs`); moves that must happen are not.
//!
//! Connection weights inside a node (`--conn-balance weighted`) follow the same factor: a
//! shard's derived weight is `cw(n,s) = round(16 × f(n,s))`, in [4, 64] (16 at factor 1), so
//! a hot shard, whose factor the rounds above lower, also gets fewer new connections. A
//! shard the operator pinned keeps its weight. They are derived whenever a change is built,
//! so every committed map carries them; they never start a change by themselves (factors
//! only move in a `rebalance` round, under the hysteresis above).

use std::collections::BTreeMap;

use crate::limits::{PARTITION_MOVES_PER_ROUND_MAX, SLOTS, SLOT_MOVES_PER_ROUND_MAX};
use crate::map::{ClusterMap, ConnWeights, NodeState, Owner, TopicPartition};

/// EWMA weight of a new load sample.
pub const LOAD_EWMA_ALPHA: f64 = 0.2;
/// A shard's load must be this far from its expected load (relative) before it moves.
pub const LOAD_HYSTERESIS: f64 = 0.25;
pub const LOAD_FACTOR_MIN: f64 = 0.25;
pub const LOAD_FACTOR_MAX: f64 = 4.0;
/// Factors are rounded to this step, so that tiny corrections do not change the map.
pub const LOAD_FACTOR_STEP: f64 = 1.0 / 16.0;
/// Below this mean busy fraction per shard, load is noise and factors stay as they are.
pub const LOAD_IDLE_BELOW: f64 = 0.05;

/// A stable 64-bit mixer (splitmix64's finaliser). Placement must give the same answer on
/// every build, so no std hasher.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub fn slot_key(slot: usize) -> u64 {
    mix(slot as u64 ^ 0x736c_6f74_0000_0000)
}

pub fn partition_key(tp: &TopicPartition) -> u64 {
    // FNV-1a over the topic, then the partition.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in tp.topic.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    mix(h ^ mix(u64::from(tp.partition) ^ 0x7061_7274_0000_0000))
}

/// A shard that may own keys, with its weight.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    pub owner: Owner,
    pub weight: f64,
}

fn score(key: u64, c: &Candidate) -> f64 {
    let h = mix(key ^ mix((u64::from(c.owner.node) << 16) | u64::from(c.owner.shard)));
    // u in (0, 1): never 0 or 1, so ln(u) is finite and negative.
    let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    c.weight / -u.ln()
}

/// The candidate with the highest score; ties go to the lower owner.
pub fn owner_of(key: u64, cands: &[Candidate]) -> Option<Owner> {
    let mut best: Option<(f64, Owner)> = None;
    for c in cands {
        let s = score(key, c);
        if best.is_none_or(|(bs, bo)| s > bs || (s == bs && c.owner < bo)) {
            best = Some((s, c.owner));
        }
    }
    best.map(|(_, o)| o)
}

/// Per-shard load factors, from heartbeats.
#[derive(Clone, Debug, Default)]
pub struct LoadTracker {
    shards: BTreeMap<Owner, ShardLoad>,
}

#[derive(Clone, Copy, Debug)]
struct ShardLoad {
    /// Smoothed busy fraction.
    ewma: f64,
    /// The factor placement uses now.
    factor: f64,
}

impl LoadTracker {
    /// Feeds one heartbeat sample: the shard's CPU busy fraction (clamped to 0..=1).
    pub fn observe(&mut self, owner: Owner, busy: f64) {
        let busy = if busy.is_finite() {
            busy.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.shards
            .entry(owner)
            .and_modify(|s| s.ewma += LOAD_EWMA_ALPHA * (busy - s.ewma))
            .or_insert(ShardLoad {
                ewma: busy,
                factor: 1.0,
            });
    }

    pub fn factor(&self, owner: Owner) -> f64 {
        self.shards.get(&owner).map_or(1.0, |s| s.factor)
    }

    pub fn smoothed(&self, owner: Owner) -> Option<f64> {
        self.shards.get(&owner).map(|s| s.ewma)
    }

    /// Forgets a node's shards (it was removed).
    pub fn forget(&mut self, node: u32) {
        self.shards.retain(|o, _| o.node != node);
    }

    /// One rebalance round's factor update, per the module header. Returns whether any
    /// factor changed.
    pub fn update_factors(&mut self, map: &ClusterMap) -> bool {
        let cands = candidates(map, self);
        let reported: Vec<(Candidate, f64)> = cands
            .iter()
            .filter_map(|c| self.smoothed(c.owner).map(|u| (*c, u)))
            .collect();
        if reported.is_empty() {
            return false;
        }
        // Load should follow the operator's weights (capacity), not the factors.
        let op_weight = |o: Owner| map.node(o.node).map_or(0.0, |n| f64::from(n.weight));
        let total_load: f64 = reported.iter().map(|(_, u)| u).sum();
        let total_weight: f64 = reported.iter().map(|(c, _)| op_weight(c.owner)).sum();
        if total_load < LOAD_IDLE_BELOW * reported.len() as f64 || total_weight <= 0.0 {
            return false;
        }
        let mut changed = false;
        for (c, u) in reported {
            let expected = total_load * op_weight(c.owner) / total_weight;
            let r = (u / expected).max(1e-3);
            if (r - 1.0).abs() <= LOAD_HYSTERESIS {
                continue;
            }
            let s = self.shards.get_mut(&c.owner).expect("reported above");
            let f = (s.factor / r.sqrt()).clamp(LOAD_FACTOR_MIN, LOAD_FACTOR_MAX);
            let f = (f / LOAD_FACTOR_STEP).round() * LOAD_FACTOR_STEP;
            if f != s.factor {
                s.factor = f;
                changed = true;
            }
        }
        changed
    }
}

/// The shards that may own keys: those of active nodes with a weight above zero.
pub fn candidates(map: &ClusterMap, load: &LoadTracker) -> Vec<Candidate> {
    let mut out = Vec::new();
    for n in &map.nodes {
        if n.state != NodeState::Active || n.weight == 0 {
            continue;
        }
        for shard in 0..n.shards {
            let owner = Owner { node: n.id, shard };
            out.push(Candidate {
                owner,
                weight: f64::from(n.weight) * load.factor(owner),
            });
        }
    }
    out
}

/// A shard's derived connection weight at load factor 1.
pub const CONN_WEIGHT_UNIT: f64 = 16.0;

/// A shard's derived connection weight: `round(CONN_WEIGHT_UNIT × f)`.
pub fn conn_weight(factor: f64) -> u32 {
    // f is within [1/4, 4], so this is within [4, 64].
    (CONN_WEIGHT_UNIT * factor).round() as u32
}

/// Sets every node's connection weights from the load factors (module header): pinned
/// shards keep the operator's weight, removed nodes lose their entry, and a node whose
/// shards all weigh the same with none pinned has none (all equal).
pub fn derive_conn_weights(map: &mut ClusterMap, load: &LoadTracker) {
    let mut next = BTreeMap::new();
    for n in &map.nodes {
        if n.state == NodeState::Removed {
            continue;
        }
        let old = map.conn_weights.get(&n.id);
        let pinned: Vec<u16> = old
            .map(|c| c.pinned.iter().copied().filter(|&s| s < n.shards).collect())
            .unwrap_or_default();
        let weights: Vec<u32> = (0..n.shards)
            .map(|shard| {
                let kept = old
                    .filter(|c| c.is_pinned(shard))
                    .and_then(|c| c.weights.get(usize::from(shard)).copied());
                kept.unwrap_or_else(|| conn_weight(load.factor(Owner { node: n.id, shard })))
            })
            .collect();
        if pinned.is_empty() && weights.windows(2).all(|w| w[0] == w[1]) {
            continue;
        }
        next.insert(n.id, ConnWeights { weights, pinned });
    }
    map.conn_weights = next;
}

/// What a placement round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Moves {
    pub slots: usize,
    pub partitions: usize,
    /// Moves rendezvous wanted but the per-round bound held back.
    pub deferred: usize,
}

/// Places every slot, and the given partitions, over the nodes of `map` (their states and
/// weights as they are in it), in place, and says what moved. Partitions of the map not in
/// `partitions` leave it; a partition with no candidate stays out of the map until there
/// is one. `bounded`: a load-driven round, whose optional moves are capped per round.
pub fn place(
    map: &mut ClusterMap,
    load: &LoadTracker,
    partitions: &[TopicPartition],
    bounded: bool,
) -> Moves {
    let cands = candidates(map, load);
    let is_cand = |o: &Owner| cands.iter().any(|c| c.owner == *o);
    let mut moves = Moves::default();
    let (slot_cap, part_cap) = if bounded {
        (SLOT_MOVES_PER_ROUND_MAX, PARTITION_MOVES_PER_ROUND_MAX)
    } else {
        (usize::MAX, usize::MAX)
    };
    let mut optional = 0;
    for slot in 0..SLOTS {
        let want = owner_of(slot_key(slot), &cands);
        let have = map.slot(slot);
        if want == have {
            continue;
        }
        let forced = have.is_none_or(|o| !is_cand(&o));
        if !forced {
            if optional >= slot_cap {
                moves.deferred += 1;
                continue;
            }
            optional += 1;
        }
        map.set_slot(slot, want);
        moves.slots += 1;
    }
    let mut optional = 0;
    let wanted: std::collections::BTreeSet<&TopicPartition> = partitions.iter().collect();
    let before = map.partitions.len();
    map.partitions.retain(|tp, _| wanted.contains(tp));
    moves.partitions += before - map.partitions.len();
    for tp in partitions {
        let want = owner_of(partition_key(tp), &cands);
        let have = map.partitions.get(tp).copied();
        if want == have {
            continue;
        }
        let forced = have.is_none_or(|o| !is_cand(&o));
        if !forced {
            if optional >= part_cap {
                moves.deferred += 1;
                continue;
            }
            optional += 1;
        }
        match want {
            Some(o) => {
                map.partitions.insert(tp.clone(), o);
            }
            // No candidate at all: the map holds only owned partitions, so this one waits
            // outside it for a node.
            None => {
                map.partitions.remove(tp);
            }
        }
        moves.partitions += 1;
    }
    moves
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::{Node, NodeId};

    fn node(id: NodeId, weight: u32, shards: u16) -> Node {
        Node {
            id,
            resp_addr: format!("127.0.0.1:{}", 7000 + id),
            kafka_addr: format!("127.0.0.1:{}", 9000 + id),
            shard_endpoints: vec![],
            shards,
            weight,
            state: NodeState::Active,
        }
    }

    fn topics(n: u32) -> Vec<TopicPartition> {
        (0..n)
            .map(|p| TopicPartition {
                topic: format!("topic{}", p % 7),
                partition: p,
            })
            .collect()
    }

    fn share(counts: &BTreeMap<NodeId, usize>, id: NodeId, total: usize) -> f64 {
        counts[&id] as f64 / total as f64
    }

    #[test]
    fn a_node_of_weight_two_gets_two_fifths_and_only_what_must_move_moves() {
        let load = LoadTracker::default();
        let parts = topics(1000);
        let mut m = ClusterMap::empty();
        for id in 1..=3 {
            m.upsert_node(node(id, 1, 2));
        }
        place(&mut m, &load, &parts, false);
        m.validate().unwrap();
        assert_eq!(m.partitions.len(), 1000);
        let c = m.slot_counts();
        for id in 1..=3 {
            let s = share(&c, id, SLOTS);
            assert!((s - 1.0 / 3.0).abs() < 0.1 / 3.0, "node {id} has {s}");
        }
        let before = m.clone();
        m.upsert_node(node(4, 2, 2));
        let moves = place(&mut m, &load, &parts, false);
        m.validate().unwrap();
        let s = share(&m.slot_counts(), 4, SLOTS);
        assert!((s - 0.4).abs() <= 0.04, "new node has {s} of slots");
        let p = share(&m.partition_counts(), 4, 1000);
        assert!((p - 0.4).abs() <= 0.04, "new node has {p} of partitions");
        // Every slot that moved went to the new node: nothing moved between the old ones.
        for slot in 0..SLOTS {
            if before.slot(slot) != m.slot(slot) {
                assert_eq!(m.slot(slot).unwrap().node, 4, "slot {slot}");
            }
        }
        for (tp, o) in &m.partitions {
            if before.partitions[tp] != *o {
                assert_eq!(o.node, 4, "{tp}");
            }
        }
        assert_eq!(moves.slots, m.slot_counts()[&4]);
        assert_eq!(moves.partitions, m.partition_counts()[&4]);
        assert_eq!(moves.deferred, 0);
        // Placing again with nothing changed moves nothing.
        assert_eq!(place(&mut m, &load, &parts, false), Moves::default());
    }

    #[test]
    fn shards_count_in_the_weight_and_a_drained_node_empties() {
        let load = LoadTracker::default();
        let mut m = ClusterMap::empty();
        m.upsert_node(node(1, 1, 1));
        m.upsert_node(node(2, 1, 3));
        place(&mut m, &load, &[], false);
        let s = share(&m.slot_counts(), 2, SLOTS);
        assert!((s - 0.75).abs() < 0.075, "3 shards of 4: {s}");
        let before = m.clone();
        m.node_mut(2).unwrap().state = NodeState::Draining;
        // Forced moves ignore the per-round bound.
        let moves = place(&mut m, &load, &[], true);
        assert_eq!(m.slot_counts()[&2], 0);
        assert_eq!(moves.slots, before.slot_counts()[&2]);
        m.validate().unwrap();
    }

    #[test]
    fn a_small_load_wobble_moves_nothing() {
        let mut load = LoadTracker::default();
        let mut m = ClusterMap::empty();
        for id in 1..=3 {
            m.upsert_node(node(id, 1, 2));
        }
        place(&mut m, &load, &[], false);
        let mut rng = 42u64;
        for _round in 0..50 {
            for n in 1..=3 {
                for shard in 0..2 {
                    rng = mix(rng.wrapping_add(1));
                    // 0.5 ± 0.1: within the hysteresis band.
                    let busy = 0.4 + (rng % 1000) as f64 / 5000.0;
                    load.observe(Owner { node: n, shard }, busy);
                }
            }
            assert!(!load.update_factors(&m));
            assert_eq!(place(&mut m, &load, &[], true), Moves::default());
        }
    }

    #[test]
    fn a_hot_shard_sheds_load_in_bounded_rounds_and_settles_without_flapping() {
        let mut load = LoadTracker::default();
        let mut m = ClusterMap::empty();
        for id in 1..=4 {
            m.upsert_node(node(id, 1, 1));
        }
        place(&mut m, &load, &[], false);
        let hot = Owner { node: 1, shard: 0 };
        let mut factors = Vec::new();
        let mut last_change = 0;
        let mut deferred = 0;
        for round in 0..40 {
            // Keys on node 1 are three times as busy per key as elsewhere.
            let counts = m.slot_counts();
            for id in 1..=4u32 {
                let heat = if id == 1 { 3.0 } else { 1.0 };
                let busy = heat * counts[&id] as f64 / SLOTS as f64;
                for _ in 0..10 {
                    load.observe(Owner { node: id, shard: 0 }, busy);
                }
            }
            if load.update_factors(&m) {
                last_change = round;
            }
            let moves = place(&mut m, &load, &[], true);
            assert!(moves.slots <= SLOT_MOVES_PER_ROUND_MAX);
            deferred += moves.deferred;
            factors.push(load.factor(hot));
        }
        // The hot shard's factor only goes down (no flapping), and it settles.
        for w in factors.windows(2) {
            assert!(w[1] <= w[0], "{factors:?}");
        }
        assert!(factors[39] < 0.75, "{factors:?}");
        assert!(deferred > 0, "the per-round bound never held a move back");
        // And it ends with the hot node's load within the band of the others'.
        let counts = m.slot_counts();
        let hot_load = 3.0 * counts[&1] as f64;
        let cold_load = counts[&2] as f64;
        assert!(
            hot_load / cold_load < 1.0 + 2.0 * LOAD_HYSTERESIS,
            "{counts:?}"
        );
        assert!(
            last_change < 30,
            "still changing at round {last_change}: {factors:?}"
        );
        m.validate().unwrap();
    }

    #[test]
    fn a_hot_shard_gets_a_lower_conn_weight_and_a_wobble_changes_none() {
        let mut load = LoadTracker::default();
        let mut m = ClusterMap::empty();
        m.upsert_node(node(1, 1, 2));
        m.upsert_node(node(2, 1, 2));
        // Equal factors: every node weighs its shards equally, so no entry at all.
        derive_conn_weights(&mut m, &load);
        assert!(m.conn_weights.is_empty());
        assert_eq!(m.conn_weights_of(1), [1, 1]);
        // Shard 0 of node 1 runs at 0.9, the others at 0.3: one round lowers its factor,
        // and with it its connection weight, by the formula.
        let hot = Owner { node: 1, shard: 0 };
        let busy = |o: Owner| if o == hot { 0.9 } else { 0.3 };
        for _ in 0..10 {
            for n in 1..=2 {
                for shard in 0..2 {
                    let o = Owner { node: n, shard };
                    load.observe(o, busy(o));
                }
            }
        }
        assert!(load.update_factors(&m));
        derive_conn_weights(&mut m, &load);
        let f = load.factor(hot);
        assert!(f < 1.0, "{f}");
        let w = m.conn_weights_of(1);
        assert_eq!(w[0], (CONN_WEIGHT_UNIT * f).round() as u32);
        assert!(w[0] < w[1], "{w:?}");
        assert_eq!(w[1], conn_weight(load.factor(Owner { node: 1, shard: 1 })));
        let settled = m.clone();
        // Then the load evens out to 0.5 ± 0.05 on every shard (within the hysteresis band):
        // once the averages have followed, no rebalance round changes a factor, so no weight.
        let mut rng = 7u64;
        let mut wobble = |load: &mut LoadTracker| {
            for n in 1..=2 {
                for shard in 0..2 {
                    rng = mix(rng.wrapping_add(1));
                    load.observe(
                        Owner { node: n, shard },
                        0.45 + (rng % 1000) as f64 / 10_000.0,
                    );
                }
            }
        };
        for _ in 0..40 {
            wobble(&mut load);
        }
        for _ in 0..50 {
            wobble(&mut load);
            assert!(!load.update_factors(&m));
            derive_conn_weights(&mut m, &load);
            assert_eq!(m.conn_weights, settled.conn_weights);
        }
    }

    #[test]
    fn pinned_conn_weights_stay_and_removed_nodes_lose_theirs() {
        let load = LoadTracker::default();
        let mut m = ClusterMap::empty();
        m.upsert_node(node(1, 1, 2));
        m.upsert_node(node(2, 1, 3));
        let mut c = ConnWeights {
            weights: m.conn_weights_of(1),
            pinned: vec![],
        };
        c.pin(0, Some(3));
        m.conn_weights.insert(1, c);
        derive_conn_weights(&mut m, &load);
        // The pinned shard keeps 3; the other follows its factor (1: the unit).
        assert_eq!(m.conn_weights_of(1), [3, 16]);
        m.conn_weights.get_mut(&1).unwrap().pin(1, Some(1));
        derive_conn_weights(&mut m, &load);
        assert_eq!(m.conn_weights_of(1), [3, 1]);
        m.validate().unwrap();
        // Unpinned again, both follow the load: equal, so the entry goes.
        m.conn_weights.get_mut(&1).unwrap().pin(0, None);
        m.conn_weights.get_mut(&1).unwrap().pin(1, None);
        derive_conn_weights(&mut m, &load);
        assert!(m.conn_weights.is_empty());
        // A removed node's entry goes with it.
        m.conn_weights.insert(
            2,
            ConnWeights {
                weights: vec![5, 1, 1],
                pinned: vec![0],
            },
        );
        m.node_mut(2).unwrap().state = NodeState::Removed;
        derive_conn_weights(&mut m, &load);
        assert!(m.conn_weights.is_empty());
    }

    #[test]
    fn placement_is_deterministic_and_spreads_over_shards() {
        let load = LoadTracker::default();
        let mut a = ClusterMap::empty();
        a.upsert_node(node(1, 1, 4));
        let mut b = a.clone();
        place(&mut a, &load, &[], false);
        place(&mut b, &load, &[], false);
        assert_eq!(a, b);
        let mut per_shard = [0usize; 4];
        for o in a.slots().iter().flatten() {
            per_shard[usize::from(o.shard)] += 1;
        }
        for n in per_shard {
            assert!((n as f64 - 4096.0).abs() < 410.0, "{per_shard:?}");
        }
    }
}
