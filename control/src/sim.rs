//! A seeded simulation of map changes by two-phase commit: the real coordinator and
//! participants (`twopc/`), a network that loses, delays (so reorders), duplicates and
//! partitions messages, and crashes of any process before any of its outputs (volatile
//! state lost, persisted state kept), then restarts.
//!
//! Each seed picks its fault rates, 2 to 5 members and an operator that keeps changing the
//! wanted map (weights, drains, removals, re-adds). After every output the checker
//! verifies the invariant: no two different maps are ever served at one epoch, a served map
//! was durably committed by the coordinator, a member's served epoch never goes down, and
//! the coordinator's log begins each epoch once, above all before it, with one decision.
//! After the faults stop (everyone restarted, no loss, no partitions), every member must
//! converge on the coordinator's committed map, which must be the operator's last one.
//!
//! `cargo test -p pinion-control sim` runs 10,000 seeds. Env: `PINION_SIM_SEED=N` replays
//! one seed and prints its trace; `PINION_SIM_SEEDS=N` and `PINION_SIM_FIRST_SEED=F` run
//! more seeds (the long mode).

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::limits::SLOTS;
use crate::map::{ClusterMap, Epoch, MapDigest, Node, NodeId, NodeState, Owner, TopicPartition};
use crate::twopc::coordinator::{self, Coordinator, Record};
use crate::twopc::participant::{self, Durable, Participant};
use crate::twopc::{Millis, SignedMap, Timing, ToCoordinator, ToMember};

const TICK_MS: Millis = 10;
/// Ticks with faults, then at most this many more to converge.
const FAULT_TICKS: u64 = 500;
const HEAL_TICKS_MAX: u64 = 2_000;
/// Members beyond the first map, added later by the operator.
const SPARE_MEMBERS: u32 = 1;

fn timing() -> Timing {
    Timing {
        resend_ms: 60,
        prepare_timeout_ms: 400,
        ack_wait_ms: 1_200,
        ask_ms: 100,
        report_ms: 400,
    }
}

/// Deliberate bugs, for showing that the checker catches them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bug {
    None,
    /// A participant serves a map as soon as it has prepared it.
    ApplyOnPrepare,
    /// The coordinator sends its decision before persisting it.
    SendBeforeLog,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 > 1.0 - p
    }
    fn frac(&mut self, max: f64) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 * max
    }
}

struct Faults {
    loss: f64,
    dup: f64,
    delay_ticks_max: u64,
    crash_per_output: f64,
    crash_per_tick: f64,
    down_ticks_max: u64,
    partition_per_tick: f64,
    change_per_tick: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Addr {
    Coord,
    Member(NodeId),
}

#[derive(Debug)]
enum Msg {
    ToMember(ToMember),
    ToCoord(NodeId, ToCoordinator),
}

struct Packet {
    at: Millis,
    to: Addr,
    msg: Msg,
}

struct Member {
    id: NodeId,
    p: Option<Participant>,
    durable: Durable,
    served: Option<SignedMap>,
    down_until: Millis,
    cut_until: Millis,
}

/// What the checker knows: everything persisted and served so far.
#[derive(Default)]
pub(crate) struct Checker {
    served_at: HashMap<Epoch, MapDigest>,
    begun: HashMap<Epoch, MapDigest>,
    decided: HashMap<Epoch, bool>,
    last_begun: Epoch,
    last_served: HashMap<NodeId, Epoch>,
}

impl Checker {
    pub(crate) fn persisted(&mut self, r: &Record) -> Result<(), String> {
        match r {
            Record::Begin { epoch, map } => {
                if *epoch <= self.last_begun {
                    return Err(format!(
                        "coordinator began epoch {epoch} after {}",
                        self.last_begun
                    ));
                }
                self.last_begun = *epoch;
                self.begun.insert(*epoch, map.digest);
            }
            Record::Decide { epoch, commit } => {
                if !self.begun.contains_key(epoch) {
                    return Err(format!("decision for epoch {epoch}, never begun"));
                }
                if let Some(prev) = self.decided.insert(*epoch, *commit) {
                    return Err(format!(
                        "epoch {epoch} decided twice ({prev} then {commit})"
                    ));
                }
            }
            Record::End { .. } | Record::Snapshot { .. } => {}
        }
        Ok(())
    }

    pub(crate) fn served(&mut self, node: NodeId, m: &SignedMap) -> Result<(), String> {
        let e = m.epoch();
        if e == 0 {
            if m.digest != SignedMap::empty().digest {
                return Err(format!("node {node} serves a non-empty map at epoch 0"));
            }
        } else {
            let durable =
                self.decided.get(&e) == Some(&true) && self.begun.get(&e) == Some(&m.digest);
            if !durable {
                return Err(format!(
                    "node {node} serves epoch {e} ({:?}), which the coordinator has not durably committed (decided: {:?})",
                    m.digest,
                    self.decided.get(&e)
                ));
            }
        }
        match self.served_at.get(&e) {
            Some(d) if *d != m.digest => {
                return Err(format!(
                    "two maps at epoch {e}: {d:?} and {:?} (node {node})",
                    m.digest
                ))
            }
            Some(_) => {}
            None => {
                self.served_at.insert(e, m.digest);
            }
        }
        let last = self.last_served.entry(node).or_default();
        if e < *last {
            return Err(format!("node {node} went back from epoch {last} to {e}"));
        }
        *last = e;
        Ok(())
    }
}

#[derive(Default, Debug, Clone, Copy)]
pub(crate) struct Stats {
    pub commits: u64,
    pub aborts: u64,
    pub crashes: u64,
    pub messages: u64,
    pub ticks: u64,
}

struct World {
    rng: Rng,
    now: Millis,
    faults: Faults,
    faulty: bool,
    bug: Bug,
    coord: Option<Coordinator>,
    log: Vec<Record>,
    coord_down_until: Millis,
    members: Vec<Member>,
    net: Vec<Packet>,
    /// The operator's wanted map (epoch 0) and a version bumped on every change.
    target: ClusterMap,
    target_version: u64,
    /// (committed epoch, target version) last found equal.
    matched: Option<(Epoch, u64)>,
    checker: Checker,
    stats: Stats,
    trace: Option<String>,
}

/// Slots in contiguous ranges by weight over the nodes that may own; four partitions
/// round-robin. Cheap, which is all the simulation needs of placement.
fn place(nodes: &[Node]) -> ClusterMap {
    let mut m = ClusterMap::empty();
    for n in nodes {
        m.upsert_node(n.clone());
    }
    let owners: Vec<&Node> = m
        .nodes
        .iter()
        .filter(|n| n.state == NodeState::Active)
        .collect();
    let total: u64 = owners.iter().map(|n| u64::from(n.weight)).sum();
    let mut ranges = Vec::new();
    {
        let (mut acc, mut start) = (0u64, 0usize);
        for n in &owners {
            acc += u64::from(n.weight);
            let end = (acc * SLOTS as u64).checked_div(total).unwrap_or(0) as usize;
            ranges.push((
                start..end,
                Owner {
                    node: n.id,
                    shard: 0,
                },
            ));
            start = end;
        }
    }
    let parts: Vec<(TopicPartition, Owner)> = (0..4u32)
        .filter(|_| !owners.is_empty())
        .map(|p| {
            let o = owners[p as usize % owners.len()];
            (
                TopicPartition {
                    topic: "t".into(),
                    partition: p,
                },
                Owner {
                    node: o.id,
                    shard: 0,
                },
            )
        })
        .collect();
    for (r, o) in ranges {
        m.set_slots(r, Some(o));
    }
    m.partitions.extend(parts);
    m
}

fn sim_node(id: NodeId, weight: u32, state: NodeState) -> Node {
    Node {
        id,
        resp_addr: format!("10.0.0.{id}:6379"),
        kafka_addr: format!("10.0.0.{id}:9092"),
        shard_endpoints: vec![],
        shards: 1,
        weight,
        state,
    }
}

impl World {
    fn new(seed: u64, bug: Bug, trace: bool) -> World {
        let mut rng = Rng(seed);
        let faults = Faults {
            loss: rng.frac(0.3),
            dup: rng.frac(0.2),
            delay_ticks_max: 1 + rng.below(10),
            crash_per_output: rng.frac(0.05),
            crash_per_tick: rng.frac(0.01),
            down_ticks_max: 1 + rng.below(60),
            partition_per_tick: rng.frac(0.01),
            change_per_tick: 0.005 + rng.frac(0.02),
        };
        let n = 2 + rng.below(4) as u32;
        let members = (1..=n + SPARE_MEMBERS)
            .map(|id| Member {
                id,
                p: None,
                durable: Durable::new(),
                served: None,
                down_until: 0,
                cut_until: 0,
            })
            .collect();
        let nodes: Vec<Node> = (1..=n)
            .map(|id| sim_node(id, 1 + rng.below(3) as u32, NodeState::Active))
            .collect();
        let mut w = World {
            rng,
            now: 0,
            faults,
            faulty: true,
            bug,
            coord: None,
            log: Vec::new(),
            coord_down_until: 0,
            members,
            net: Vec::new(),
            target: place(&nodes),
            target_version: 1,
            matched: None,
            checker: Checker::default(),
            stats: Stats::default(),
            trace: trace.then(String::new),
        };
        let f = &w.faults;
        let line = format!(
            "seed {seed}: {n} members, loss {:.2} dup {:.2} delay<={} crash/out {:.3} crash/tick {:.3} down<={} partition/tick {:.3}",
            f.loss,
            f.dup,
            f.delay_ticks_max,
            f.crash_per_output,
            f.crash_per_tick,
            f.down_ticks_max,
            f.partition_per_tick
        );
        w.trace(|| line);
        w
    }

    fn trace(&mut self, f: impl FnOnce() -> String) {
        if let Some(t) = &mut self.trace {
            let _ = writeln!(t, "[{:>6}] {}", self.now, f());
        }
    }

    fn send(&mut self, to: Addr, msg: Msg) {
        self.stats.messages += 1;
        if self.faulty && self.rng.chance(self.faults.loss) {
            return;
        }
        let copies = if self.faulty && self.rng.chance(self.faults.dup) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let at = self.now + TICK_MS * (1 + self.rng.below(self.faults.delay_ticks_max));
            let msg = match &msg {
                Msg::ToMember(m) => Msg::ToMember(m.clone()),
                Msg::ToCoord(from, m) => Msg::ToCoord(*from, m.clone()),
            };
            self.net.push(Packet { at, to, msg });
        }
    }

    fn crash_now(&mut self) -> bool {
        self.faulty && self.rng.chance(self.faults.crash_per_output)
    }

    fn down_for(&mut self) -> Millis {
        TICK_MS * (1 + self.rng.below(self.faults.down_ticks_max))
    }

    fn crash_coord(&mut self) {
        self.coord = None;
        self.coord_down_until = self.now + self.down_for();
        self.stats.crashes += 1;
        let until = self.coord_down_until;
        self.trace(|| format!("coordinator CRASH, down until {until}"));
    }

    fn crash_member(&mut self, i: usize) {
        let until = self.now + self.down_for();
        let m = &mut self.members[i];
        m.p = None;
        m.down_until = until;
        self.stats.crashes += 1;
        let id = m.id;
        self.trace(|| format!("node {id} CRASH, down until {until}"));
    }

    fn coord_outputs(&mut self, mut outs: Vec<coordinator::Output>) -> Result<(), String> {
        if self.bug == Bug::SendBeforeLog {
            // Move each persisted decision after the sends that follow it.
            if let Some(i) = outs
                .iter()
                .position(|o| matches!(o, coordinator::Output::Persist(Record::Decide { .. })))
            {
                let d = outs.remove(i);
                let mut j = i;
                while j < outs.len() && matches!(outs[j], coordinator::Output::Send { .. }) {
                    j += 1;
                }
                outs.insert(j, d);
            }
        }
        for o in outs {
            if self.crash_now() {
                self.crash_coord();
                return Ok(());
            }
            match o {
                coordinator::Output::Persist(r) => {
                    self.trace(|| format!("coordinator persists {r:?}"));
                    self.checker.persisted(&r)?;
                    self.log.push(r);
                }
                coordinator::Output::Send { to, msg } => {
                    self.trace(|| format!("coordinator -> {to}: {msg:?}"));
                    self.send(Addr::Member(to), Msg::ToMember(msg));
                }
                coordinator::Output::Done {
                    epoch, committed, ..
                } => {
                    if committed {
                        self.stats.commits += 1;
                    } else {
                        self.stats.aborts += 1;
                    }
                    self.trace(|| format!("coordinator done e{epoch} committed={committed}"));
                }
                coordinator::Output::Refused(r) => {
                    return Err(format!("the driver proposed while refused: {r}"));
                }
            }
        }
        Ok(())
    }

    fn member_outputs(&mut self, i: usize, outs: Vec<participant::Output>) -> Result<(), String> {
        for o in outs {
            if self.crash_now() {
                self.crash_member(i);
                return Ok(());
            }
            let id = self.members[i].id;
            match o {
                participant::Output::Persist(d) => {
                    self.trace(|| {
                        format!(
                            "node {id} persists committed {:?} prepared {:?}",
                            d.committed, d.prepared
                        )
                    });
                    if self.bug == Bug::ApplyOnPrepare {
                        if let Some(p) = &d.prepared {
                            self.install(i, p.clone())?;
                        }
                    }
                    self.members[i].durable = d;
                }
                participant::Output::Install(m) => self.install(i, m)?,
                participant::Output::Send(msg) => {
                    self.trace(|| format!("node {id} -> coordinator: {msg:?}"));
                    self.send(Addr::Coord, Msg::ToCoord(id, msg));
                }
            }
        }
        Ok(())
    }

    fn install(&mut self, i: usize, m: SignedMap) -> Result<(), String> {
        let id = self.members[i].id;
        self.trace(|| format!("node {id} serves {m:?}"));
        self.checker.served(id, &m)?;
        self.members[i].served = Some(m);
        Ok(())
    }

    fn restart_due(&mut self) -> Result<(), String> {
        if self.coord.is_none() && (!self.faulty || self.now >= self.coord_down_until) {
            self.trace(|| "coordinator restarts".into());
            let (c, outs) = Coordinator::recover(&self.log, timing(), self.now);
            self.coord = Some(c);
            self.coord_outputs(outs)?;
        }
        for i in 0..self.members.len() {
            let m = &self.members[i];
            if m.p.is_none() && (!self.faulty || self.now >= m.down_until) {
                let id = m.id;
                self.trace(|| format!("node {id} restarts"));
                let (p, outs) =
                    Participant::recover(id, self.members[i].durable.clone(), timing(), self.now);
                self.members[i].p = Some(p);
                self.member_outputs(i, outs)?;
            }
        }
        Ok(())
    }

    fn deliver(&mut self) -> Result<(), String> {
        let now = self.now;
        let mut due = Vec::new();
        let mut i = 0;
        while i < self.net.len() {
            if self.net[i].at <= now {
                due.push(self.net.swap_remove(i));
            } else {
                i += 1;
            }
        }
        // swap_remove already scrambles; shuffle for a seed-determined order.
        for k in (1..due.len()).rev() {
            let j = self.rng.below(k as u64 + 1) as usize;
            due.swap(k, j);
        }
        for pkt in due {
            match (pkt.to, pkt.msg) {
                (Addr::Coord, Msg::ToCoord(from, msg)) => {
                    if self.cut(from) {
                        continue;
                    }
                    let Some(c) = &mut self.coord else { continue };
                    let outs = c.step(coordinator::Input::Recv { from, msg }, now);
                    self.coord_outputs(outs)?;
                }
                (Addr::Member(id), Msg::ToMember(msg)) => {
                    if self.cut(id) {
                        continue;
                    }
                    let i = (id - 1) as usize;
                    let Some(p) = &mut self.members[i].p else {
                        continue;
                    };
                    let outs = p.step(participant::Input::Recv(msg), now);
                    self.member_outputs(i, outs)?;
                }
                _ => unreachable!("packets are addressed by their kind"),
            }
        }
        Ok(())
    }

    fn cut(&self, id: NodeId) -> bool {
        self.faulty && self.members[(id - 1) as usize].cut_until > self.now
    }

    fn operator_change(&mut self) {
        let ids = self.members.len() as u64;
        let id = 1 + self.rng.below(ids) as u32;
        let mut nodes = self.target.nodes.clone();
        let pick = self.rng.below(4);
        let weight = 1 + self.rng.below(3) as u32;
        match nodes.iter_mut().find(|n| n.id == id) {
            None => nodes.push(sim_node(id, weight, NodeState::Active)),
            Some(n) => match (n.state, pick) {
                (NodeState::Active, 0) => n.weight = weight,
                (NodeState::Active, 1) => n.state = NodeState::Draining,
                (NodeState::Active | NodeState::Draining, _) => n.state = NodeState::Removed,
                (NodeState::Removed | NodeState::Joining, _) => {
                    n.state = NodeState::Active;
                    n.weight = weight;
                }
            },
        }
        nodes.sort_by_key(|n| n.id);
        self.target = place(&nodes);
        self.target_version += 1;
        let v = self.target_version;
        let summary: Vec<String> = self
            .target
            .nodes
            .iter()
            .map(|n| format!("{}:{}w{}", n.id, n.state.as_str(), n.weight))
            .collect();
        self.trace(|| format!("operator wants v{v}: {}", summary.join(" ")));
    }

    /// Whether the coordinator's committed map is the operator's wanted one.
    fn committed_is_target(&mut self) -> bool {
        let Some(c) = &self.coord else { return false };
        let key = (c.committed().epoch(), self.target_version);
        if self.matched == Some(key) {
            return true;
        }
        let m = &c.committed().map;
        let same = m.nodes == self.target.nodes
            && m.slots() == self.target.slots()
            && m.partitions == self.target.partitions;
        if same {
            self.matched = Some(key);
        }
        same
    }

    fn tick(&mut self) -> Result<(), String> {
        if self.faulty {
            if self.rng.chance(self.faults.change_per_tick) {
                self.operator_change();
            }
            if self.coord.is_some() && self.rng.chance(self.faults.crash_per_tick) {
                self.crash_coord();
            }
            for i in 0..self.members.len() {
                if self.members[i].p.is_some() && self.rng.chance(self.faults.crash_per_tick) {
                    self.crash_member(i);
                }
                if self.rng.chance(self.faults.partition_per_tick) {
                    let until = self.now + TICK_MS * (1 + self.rng.below(100));
                    self.members[i].cut_until = until;
                    let id = self.members[i].id;
                    self.trace(|| format!("node {id} partitioned until {until}"));
                }
            }
        }
        self.restart_due()?;
        self.deliver()?;
        if let Some(c) = &mut self.coord {
            let outs = c.step(coordinator::Input::Tick, self.now);
            self.coord_outputs(outs)?;
        }
        for i in 0..self.members.len() {
            if let Some(p) = &mut self.members[i].p {
                let outs = p.step(participant::Input::Tick, self.now);
                self.member_outputs(i, outs)?;
            }
        }
        // The driver: propose the operator's map whenever the coordinator is free for it.
        let idle = self
            .coord
            .as_ref()
            .is_some_and(|c| c.open_epoch().is_none());
        if idle && !self.committed_is_target() {
            let v = self.target_version;
            self.trace(|| format!("driver proposes v{v}"));
            let target = self.target.clone();
            let c = self.coord.as_mut().expect("idle implies up");
            let outs = c.step(coordinator::Input::Propose(target), self.now);
            self.coord_outputs(outs)?;
        }
        // Compaction, now and then, to exercise recovery from a snapshot.
        if self.log.len() > 6 {
            if let Some(snap) = self.coord.as_ref().and_then(Coordinator::snapshot) {
                self.trace(|| "coordinator log compacted".into());
                self.log = vec![snap];
            }
        }
        Ok(())
    }

    fn converged(&mut self) -> bool {
        let Some(c) = &self.coord else { return false };
        if c.open_epoch().is_some() {
            return false;
        }
        let committed = c.committed().clone();
        self.committed_is_target()
            && self.members.iter().all(|m| {
                m.p.is_some()
                    && m.served
                        .as_ref()
                        .is_some_and(|s| s.digest == committed.digest)
            })
    }

    fn run(&mut self) -> Result<(), String> {
        for tick in 0..FAULT_TICKS + HEAL_TICKS_MAX {
            self.now = tick * TICK_MS;
            self.stats.ticks = tick;
            if tick == FAULT_TICKS {
                self.faulty = false;
                self.trace(|| "faults stop".into());
            }
            self.tick()?;
            if !self.faulty && self.converged() {
                return Ok(());
            }
        }
        let served: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}:{:?}", m.id, m.served))
            .collect();
        Err(format!(
            "no convergence {} ticks after the faults stopped: coordinator {:?} open {:?}, target v{}; served {}",
            HEAL_TICKS_MAX,
            self.coord.as_ref().map(|c| c.committed().clone()),
            self.coord.as_ref().and_then(|c| c.open_epoch()),
            self.target_version,
            served.join(" ")
        ))
    }
}

/// Runs one seed. On failure, the error holds the violation and, when tracing, the trace.
pub(crate) fn run(seed: u64, bug: Bug, trace: bool) -> Result<Stats, String> {
    let mut w = World::new(seed, bug, trace);
    let r = w.run();
    if let Some(t) = w.trace.take() {
        eprint!("{t}");
    }
    r.map(|()| w.stats)
        .map_err(|e| format!("seed {seed} at {} ms: {e}", w.now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn env_u64(name: &str) -> Option<u64> {
        std::env::var(name).ok().and_then(|v| v.parse().ok())
    }

    #[test]
    fn simulation() {
        if let Some(seed) = env_u64("PINION_SIM_SEED") {
            match run(seed, Bug::None, true) {
                Ok(s) => eprintln!("seed {seed} passed: {s:?}"),
                Err(e) => panic!("{e}"),
            }
            return;
        }
        let seeds = env_u64("PINION_SIM_SEEDS").unwrap_or(10_000);
        let first = env_u64("PINION_SIM_FIRST_SEED").unwrap_or(0);
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(16) as u64;
        let start = Instant::now();
        let results: Vec<(Stats, Vec<String>)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    s.spawn(move || {
                        let mut total = Stats::default();
                        let mut failures = Vec::new();
                        let mut seed = first + t;
                        while seed < first + seeds {
                            match run(seed, Bug::None, false) {
                                Ok(st) => {
                                    total.commits += st.commits;
                                    total.aborts += st.aborts;
                                    total.crashes += st.crashes;
                                    total.messages += st.messages;
                                    total.ticks += st.ticks;
                                }
                                Err(e) => failures.push(e),
                            }
                            seed += threads;
                        }
                        (total, failures)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a simulation thread panicked"))
                .collect()
        });
        let mut total = Stats::default();
        let mut failures = Vec::new();
        for (st, f) in results {
            total.commits += st.commits;
            total.aborts += st.aborts;
            total.crashes += st.crashes;
            total.messages += st.messages;
            total.ticks += st.ticks;
            failures.extend(f);
        }
        eprintln!(
            "2PC simulation: {seeds} seeds from {first} in {:.1?} on {threads} threads: {} commits, {} aborts, {} crashes, {} messages",
            start.elapsed(),
            total.commits,
            total.aborts,
            total.crashes,
            total.messages
        );
        assert!(
            failures.is_empty(),
            "{} seeds failed (replay one with PINION_SIM_SEED=N):\n{}",
            failures.len(),
            failures.join("\n")
        );
        assert!(total.commits > seeds, "the simulation commits too little");
    }

    /// The checker is worth something only if it catches broken protocols.
    fn caught(bug: Bug, expect: &str) {
        let caught: Vec<String> = (0..400)
            .filter_map(|seed| run(seed, bug, false).err())
            .collect();
        assert!(
            caught.iter().any(|e| e.contains(expect)),
            "{bug:?} was not caught as {expect:?}: {caught:?}"
        );
    }

    #[test]
    fn checker_catches_a_participant_that_applies_on_prepare() {
        caught(Bug::ApplyOnPrepare, "not durably committed");
    }

    #[test]
    fn checker_catches_a_coordinator_that_sends_before_logging() {
        caught(Bug::SendBeforeLog, "not durably committed");
    }

    #[test]
    fn checker_flags_two_maps_at_one_epoch_and_going_back() {
        let mut c = Checker::default();
        let mut a = place(&[sim_node(1, 1, NodeState::Active)]);
        a.epoch = 1;
        let mut b = place(&[sim_node(2, 1, NodeState::Active)]);
        b.epoch = 1;
        let (a, b) = (SignedMap::new(a), SignedMap::new(b));
        // Serving before the commit is durable is caught.
        assert!(c.served(1, &a).is_err());
        c.persisted(&Record::Begin {
            epoch: 1,
            map: a.clone(),
        })
        .unwrap();
        c.persisted(&Record::Decide {
            epoch: 1,
            commit: true,
        })
        .unwrap();
        c.served(1, &a).unwrap();
        // Another map at epoch 1 is not what was committed.
        assert!(c.served(2, &b).is_err());
        // A member going back to epoch 0.
        assert!(c
            .served(1, &SignedMap::new(ClusterMap::empty()))
            .unwrap_err()
            .contains("went back"));
        // The coordinator beginning an epoch twice, or deciding twice.
        assert!(c.persisted(&Record::Begin { epoch: 1, map: b }).is_err());
        assert!(c
            .persisted(&Record::Decide {
                epoch: 1,
                commit: false
            })
            .is_err());
    }
}
