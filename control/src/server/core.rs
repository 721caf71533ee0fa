//! The control plane's core thread: the only owner of the coordinator, the store, the load
//! tracker and the node sessions. Everything reaches it as an [`Event`] on one channel;
//! every coordinator output is carried out in order, each `Persist` appended and fsynced
//! before the next output, so before any message or reply that depends on it.
//!
//! Operator changes queue (bounded) and run one at a time: each builds the next map from
//! the committed one (the edit, then placement), proposes it, and is answered when the
//! coordinator reports the change done (committed or aborted).

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::json;
use tracing::{info, warn};

use super::changes::Change;
use super::msg::{error_reply, ok_reply, ClientMsg, Op, ShardLoad};
use super::topics;
use super::{OutMsg, Outbox};
use crate::limits::{PARTITIONS_REPORTED_MAX, PENDING_OPS_MAX, WAL_RECORDS_MAX};
use crate::map::{ClusterMap, Epoch, Node, NodeId, NodeState, Owner, TopicPartition};
use crate::moves::{self, MovePhase};
use crate::placement::{LoadTracker, Moves};
use crate::store::{Store, StoreError};
use crate::twopc::coordinator::{Input, Output};
use crate::twopc::{Coordinator, Millis, Timing, ToMember};

/// How often the coordinator gets a tick.
const TICK_MS: u64 = 50;

pub enum Event {
    Register {
        id: NodeId,
        shards: Option<u16>,
        /// It carries out move orders.
        moves: bool,
        join: Option<super::msg::Join>,
        conn: u64,
        peer: SocketAddr,
        out: Outbox,
    },
    NodeDown {
        id: NodeId,
        conn: u64,
    },
    FromNode {
        id: NodeId,
        conn: u64,
        msg: ClientMsg,
    },
    Op {
        op: Op,
        out: Outbox,
    },
    /// SIGTERM or SIGINT: stop between events (everything acknowledged is already durable).
    Shutdown,
}

pub(super) struct Session {
    conn: u64,
    pub(super) out: Outbox,
    peer: SocketAddr,
    /// It carries out move orders (`moves.rs`).
    moves: bool,
}

pub(super) struct Inflight {
    pub(super) epoch: Epoch,
    pub(super) what: String,
    pub(super) moves: Moves,
    pub(super) reply: Option<Outbox>,
    /// A node's topic request: answered `topic_reply` with this id instead of `reply`.
    pub(super) topic: Option<u64>,
}

/// A change whose moving slots are streaming (`moves.rs`); proposed when that is done.
struct Moving {
    phase: MovePhase,
    map: ClusterMap,
    what: String,
    moves: Moves,
    reply: Option<Outbox>,
    /// Only a first round moves now: placement runs again after the commit.
    again: bool,
}

pub struct Core {
    pub(super) coord: Coordinator,
    moving: Option<Moving>,
    /// The id the next move phase's orders start from.
    next_order: u64,
    store: Box<dyn Store>,
    pub(super) load: LoadTracker,
    last_loads: BTreeMap<NodeId, Vec<ShardLoad>>,
    /// The log partitions each node reported holding last (placed in the map).
    pub(super) known_partitions: BTreeMap<NodeId, Vec<TopicPartition>>,
    started: Instant,
    pub(super) sessions: BTreeMap<NodeId, Session>,
    pub(super) queue: VecDeque<(Change, Option<Outbox>)>,
    pub(super) inflight: Option<Inflight>,
    /// Topics deleted lately, and when: their partitions, which nodes may still report
    /// until they install the map without them, are not placed again.
    pub(super) deleted_topics: BTreeMap<String, Millis>,
}

impl Core {
    /// Recovers the coordinator from the store and carries out what recovery asks (an
    /// abort of an undecided change, or re-sending a decision).
    pub fn start(store: Box<dyn Store>) -> Result<Core, StoreError> {
        let (coord, outs) = Coordinator::recover(store.records(), Timing::default(), 0);
        let mut core = Core {
            coord,
            moving: None,
            next_order: 1,
            store,
            load: LoadTracker::default(),
            last_loads: BTreeMap::new(),
            known_partitions: BTreeMap::new(),
            started: Instant::now(),
            sessions: BTreeMap::new(),
            queue: VecDeque::new(),
            inflight: None,
            deleted_topics: BTreeMap::new(),
        };
        if let Some(e) = core.coord.open_epoch() {
            info!(epoch = e, "recovered a change in progress; finishing it");
            core.inflight = Some(Inflight {
                epoch: e,
                what: "recovered".into(),
                moves: Moves::default(),
                reply: None,
                topic: None,
            });
        }
        core.carry_out(outs)?;
        Ok(core)
    }

    pub fn epoch(&self) -> Epoch {
        self.coord.committed().epoch()
    }

    pub fn store_name(&self) -> String {
        self.store.describe()
    }

    pub(super) fn now(&self) -> Millis {
        self.started.elapsed().as_millis() as Millis
    }

    pub fn run(&mut self, rx: Receiver<Event>) -> Result<(), StoreError> {
        let tick = Duration::from_millis(TICK_MS);
        let mut next_tick = Instant::now() + tick;
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(Event::Shutdown) => {
                    info!(epoch = self.epoch(), "stopping");
                    return Ok(());
                }
                Ok(ev) => self.handle(ev)?,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
            if Instant::now() >= next_tick {
                next_tick = Instant::now() + tick;
                let outs = self.coord.step(Input::Tick, self.now());
                self.carry_out(outs)?;
                self.move_step(moves::Input::Tick)?;
            }
            self.run_queue()?;
        }
    }

    fn handle(&mut self, ev: Event) -> Result<(), StoreError> {
        match ev {
            Event::Register {
                id,
                shards,
                moves,
                join,
                conn,
                peer,
                out,
            } => self.register(id, shards, join, conn, peer, out, moves),
            Event::NodeDown { id, conn } => {
                if self.sessions.get(&id).is_some_and(|s| s.conn == conn) {
                    let s = self.sessions.remove(&id).expect("checked above");
                    info!(node = id, peer = %s.peer, "node disconnected");
                }
                Ok(())
            }
            Event::FromNode { id, conn, msg } => {
                if self.sessions.get(&id).is_none_or(|s| s.conn != conn) {
                    return Ok(()); // a superseded session
                }
                if let ClientMsg::Fence { id: order, units } = msg {
                    self.forward(
                        order,
                        id,
                        false,
                        json!({"type": "fence", "id": order, "units": units}),
                    );
                    return Ok(());
                }
                if let ClientMsg::Fenced {
                    id: order,
                    ends,
                    failed,
                } = msg
                {
                    self.forward(
                        order,
                        id,
                        true,
                        json!({"type": "fenced", "id": order, "ends": ends, "failed": failed}),
                    );
                    return Ok(());
                }
                if let ClientMsg::Heartbeat {
                    mut shards,
                    mut partitions,
                } = msg
                {
                    partitions.truncate(PARTITIONS_REPORTED_MAX);
                    self.forget_deleted(&mut partitions);
                    self.known_partitions.insert(id, partitions);
                    // Only the shards the map gives this node count.
                    let n = self.coord.committed().map.node(id).map_or(0, |n| n.shards);
                    shards.truncate(usize::from(n));
                    for (i, l) in shards.iter().enumerate() {
                        self.load.observe(
                            Owner {
                                node: id,
                                shard: i as u16,
                            },
                            l.busy,
                        );
                    }
                    self.last_loads.insert(id, shards);
                    return Ok(());
                }
                if let ClientMsg::Moved {
                    id: order,
                    done,
                    failed,
                    last,
                } = msg
                {
                    return self.move_step(moves::Input::Report {
                        from: id,
                        id: order,
                        done,
                        failed,
                        last,
                    });
                }
                if let ClientMsg::Topic { id: req, change } = msg {
                    self.topic_request(id, req, change);
                    return Ok(());
                }
                if let Some(m) = msg.to_coordinator() {
                    let outs = self
                        .coord
                        .step(Input::Recv { from: id, msg: m }, self.now());
                    self.carry_out(outs)?;
                }
                Ok(())
            }
            Event::Op { op, out } => {
                self.op(op, out);
                Ok(())
            }
            Event::Shutdown => Ok(()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn register(
        &mut self,
        id: NodeId,
        shards: Option<u16>,
        join: Option<super::msg::Join>,
        conn: u64,
        peer: SocketAddr,
        out: Outbox,
        moves: bool,
    ) -> Result<(), StoreError> {
        let committed = self.coord.committed().clone();
        let refusal = match committed.map.node(id) {
            Some(n) if n.state == NodeState::Removed => Some(format!("node {id} was removed")),
            _ if join.is_some() => match shards {
                Some(s) if s > 0 && s <= crate::limits::SHARDS_PER_NODE_MAX => None,
                _ => Some(format!(
                    "node {id}: a joining node must say its shard count (1..=1024)"
                )),
            },
            None => Some(format!(
                "node {id} is not in the map (add it with add-node first)"
            )),
            Some(n) if n.state == NodeState::Removed => Some(format!("node {id} was removed")),
            Some(n) if shards.is_some_and(|s| s != n.shards) => Some(format!(
                "node {id} has {} shards in the map, not {}",
                n.shards,
                shards.unwrap_or(0)
            )),
            Some(_) => None,
        };
        if let Some(why) = refusal {
            warn!(node = id, %peer, "refused node: {why}");
            let _ = out.try_send(OutMsg::Payload(error_reply(&why)));
            let _ = out.try_send(OutMsg::Close);
            return Ok(());
        }
        info!(node = id, %peer, "node registered");
        let hello = serde_json::to_vec(&json!({"type": "registered", "epoch": committed.epoch()}))
            .expect("JSON values serialise");
        let _ = out.try_send(OutMsg::Payload(hello));
        self.send(
            &out,
            &ToMember::Catchup {
                map: committed.clone(),
            },
        );
        if self.moving.is_none() && self.coord.open_epoch().is_none() {
            // Nothing this node fenced can still be flipped (a restarted control plane
            // forgot its move phase): its fences settle by the map.
            let settle =
                serde_json::to_vec(&json!({"type": "settle"})).expect("JSON values serialise");
            let _ = out.try_send(OutMsg::Payload(settle));
        }
        self.sessions.insert(
            id,
            Session {
                conn,
                out,
                peer,
                moves,
            },
        );
        if let (Some(j), Some(shards)) = (join, shards) {
            let node = Node {
                id,
                resp_addr: j.resp_addr,
                kafka_addr: j.kafka_addr,
                shard_endpoints: j.shard_endpoints,
                shards,
                weight: j.weight,
                state: NodeState::Active,
            };
            let queued = self
                .queue
                .iter()
                .any(|(c, _)| matches!(c, Change::Join(n) if *n == node));
            if !queued {
                self.enqueue(Change::Join(node), None);
            }
            return Ok(());
        }
        let joining = committed
            .map
            .node(id)
            .is_some_and(|n| n.state == NodeState::Joining);
        let queued = self
            .queue
            .iter()
            .any(|(c, _)| matches!(c, Change::Activate(n) if *n == id));
        if joining && !queued {
            self.enqueue(Change::Activate(id), None);
        }
        Ok(())
    }

    fn send(&self, out: &Outbox, msg: &ToMember) {
        let payload = serde_json::to_vec(msg).expect("2PC messages serialise");
        // A full outbox means a peer that does not read: the 2PC messages are re-sent, so
        // dropping one is safe, and the idle timeout closes a peer that never reads.
        let _ = out.try_send(OutMsg::Payload(payload));
    }

    fn enqueue(&mut self, change: Change, reply: Option<Outbox>) {
        if self.queue.len() >= PENDING_OPS_MAX {
            if let Some(out) = reply {
                let _ = out.try_send(OutMsg::Payload(error_reply(&format!(
                    "{PENDING_OPS_MAX} changes are already queued; try again later"
                ))));
            }
            return;
        }
        self.queue.push_back((change, reply));
    }

    fn op(&mut self, op: Op, out: Outbox) {
        let reply = |v| {
            let _ = out.try_send(OutMsg::Payload(ok_reply(v)));
        };
        match op {
            Op::Status => reply(self.status()),
            Op::Nodes => reply(self.nodes()),
            Op::Map => {
                reply(serde_json::to_value(&*self.coord.committed().map).expect("maps serialise"))
            }
            Op::AddNode {
                id,
                resp_addr,
                kafka_addr,
                shard_endpoints,
                shards,
                weight,
            } => self.enqueue(
                Change::Add(Node {
                    id,
                    resp_addr,
                    kafka_addr,
                    shard_endpoints,
                    shards,
                    weight,
                    state: NodeState::Joining,
                }),
                Some(out),
            ),
            Op::RemoveNode { id } => self.enqueue(Change::Remove(id), Some(out)),
            Op::Drain { id } => self.enqueue(Change::Drain(id), Some(out)),
            Op::SetWeight { id, weight } => self.enqueue(Change::SetWeight(id, weight), Some(out)),
            Op::Rebalance => self.enqueue(Change::Rebalance, Some(out)),
            Op::SetConnWeight {
                node,
                shard,
                weight,
            } => self.enqueue(
                Change::SetConnWeight {
                    node,
                    shard,
                    weight,
                },
                Some(out),
            ),
        }
    }

    /// Starts queued changes while the coordinator is free.
    fn run_queue(&mut self) -> Result<(), StoreError> {
        while self.inflight.is_none() && self.moving.is_none() && self.coord.open_epoch().is_none()
        {
            let Some((change, reply)) = self.queue.pop_front() else {
                return Ok(());
            };
            if let Change::Topic { id, op } = change {
                self.run_topic(id, op, reply)?;
                continue;
            }
            let what = format!("{change:?}");
            let (map, moves) = match self.build(&change) {
                Ok(Some(x)) => x,
                Ok(None) => {
                    if let Some(out) = reply {
                        let _ = out.try_send(OutMsg::Payload(ok_reply(json!({
                            "epoch": self.epoch(), "committed": false, "changed": false,
                            "note": "nothing to change"
                        }))));
                    }
                    continue;
                }
                Err(why) => {
                    if let Some(out) = reply {
                        let _ = out.try_send(OutMsg::Payload(error_reply(&why)));
                    }
                    continue;
                }
            };
            // Slots changing node stream their keys first (`moves.rs`).
            let committed = self.coord.committed().map.clone();
            let sessions = &self.sessions;
            let reachable = |n: NodeId| sessions.get(&n).is_some_and(|s| s.moves);
            let mut phase = MovePhase::plan(&committed, &map, &reachable, self.next_order);
            let again = phase.first_round(&committed);
            if !phase.is_empty() {
                info!(change = %what, units = phase.remaining(), "moving data before the change");
                let outs = phase.start(self.now());
                self.moving = Some(Moving {
                    phase,
                    map,
                    what,
                    moves,
                    reply,
                    again,
                });
                self.move_outputs(outs)?;
                continue;
            }
            self.propose(map, what, moves, reply)?;
        }
        Ok(())
    }

    /// Proposes `map` (the 2PC begins).
    fn propose(
        &mut self,
        map: ClusterMap,
        what: String,
        moves: Moves,
        reply: Option<Outbox>,
    ) -> Result<(), StoreError> {
        let outs = self.coord.step(Input::Propose(map), self.now());
        if let Some(Output::Refused(r)) = outs.first() {
            self.settle_all();
            if let Some(out) = reply {
                let _ = out.try_send(OutMsg::Payload(error_reply(&r.to_string())));
            }
            return Ok(());
        }
        let epoch = self.coord.last_epoch();
        info!(epoch, change = %what, slots_moved = moves.slots, "proposing");
        self.inflight = Some(Inflight {
            epoch,
            what,
            moves,
            reply,
            topic: None,
        });
        self.carry_out(outs)
    }

    /// Forwards a partition move's `fence` (from the order's new owner to its old one) or
    /// `fenced` (back, `from_old`), for an order of the running move phase.
    fn forward(&self, order: u64, sender: NodeId, from_old: bool, v: serde_json::Value) {
        let Some(o) = self.moving.as_ref().and_then(|m| m.phase.order(order)) else {
            warn!(
                order,
                node = sender,
                "a fence for no running move order; ignored"
            );
            return;
        };
        let (expected, to) = if from_old {
            (o.from, o.to.node)
        } else {
            (o.to.node, o.from)
        };
        if expected != sender || !o.partitions() {
            warn!(
                order,
                node = sender,
                "a fence from a node that is not the order's; ignored"
            );
            return;
        }
        let mut v = v;
        v["epoch"] = json!(o.epoch);
        if let Some(s) = self.sessions.get(&to) {
            let payload = serde_json::to_vec(&v).expect("JSON values serialise");
            let _ = s.out.try_send(OutMsg::Payload(payload));
        }
    }

    /// Tells every node that no change is moving data or in doubt any more: partitions
    /// a node fenced for a move settle by the map it serves (`cluster/pmove.rs`).
    fn settle_all(&self) {
        let payload =
            serde_json::to_vec(&json!({"type": "settle"})).expect("JSON values serialise");
        for s in self.sessions.values() {
            let _ = s.out.try_send(OutMsg::Payload(payload.clone()));
        }
    }

    fn move_step(&mut self, input: moves::Input) -> Result<(), StoreError> {
        let now = self.now();
        let Some(m) = self.moving.as_mut() else {
            return Ok(());
        };
        let outs = m.phase.step(input, now);
        self.move_outputs(outs)
    }

    /// Carries out the move phase's outputs: orders go to both owners; when it is done,
    /// the map that flips what moved is proposed.
    fn move_outputs(&mut self, outs: Vec<moves::Output>) -> Result<(), StoreError> {
        for o in outs {
            match o {
                moves::Output::Send { to, order } => {
                    if let Some(s) = self.sessions.get(&to) {
                        let mut v = serde_json::to_value(&order).expect("orders serialise");
                        v["type"] = json!("move");
                        let payload = serde_json::to_vec(&v).expect("JSON values serialise");
                        let _ = s.out.try_send(OutMsg::Payload(payload));
                    }
                }
                moves::Output::Done {
                    moved,
                    failed,
                    deferred,
                } => {
                    let Some(mut m) = self.moving.take() else {
                        continue;
                    };
                    self.next_order = m.phase.next_id();
                    if failed.is_empty() {
                        info!(units = moved.len(), "data moved");
                    } else {
                        warn!(
                            moved = moved.len(),
                            failed = failed.len(),
                            "some units did not move; they stay with their owners"
                        );
                    }
                    let committed = self.coord.committed().map.clone();
                    MovePhase::settle(&committed, &mut m.map, &failed);
                    MovePhase::settle(&committed, &mut m.map, &deferred);
                    // (Only after progress: a first round where nothing moved ends here.)
                    if m.again && !moved.is_empty() {
                        // The rest after this round commits; the operator hears then.
                        info!(
                            units = deferred.len(),
                            "a first round to a new node; the rest follows"
                        );
                        self.queue.push_front((Change::Place, m.reply.take()));
                    }
                    if m.map.validate().is_err() || m.map == *committed {
                        self.settle_all();
                        if let Some(out) = m.reply {
                            let _ = out.try_send(OutMsg::Payload(error_reply(&format!(
                                "no data could be moved ({} units failed); nothing changed",
                                failed.len()
                            ))));
                        }
                        continue;
                    }
                    self.propose(m.map, m.what, m.moves, m.reply)?;
                }
            }
        }
        Ok(())
    }

    pub(super) fn carry_out(&mut self, outs: Vec<Output>) -> Result<(), StoreError> {
        let steps = crate::crashpoint::before(&outs); // test-only crash points
        for (i, o) in outs.into_iter().enumerate() {
            match o {
                Output::Persist(r) => self.store.append(r)?,
                Output::Send { to, msg } => {
                    if let Some(s) = self.sessions.get(&to) {
                        self.send(&s.out, &msg);
                    }
                }
                Output::Done {
                    epoch,
                    committed,
                    unacked,
                } => {
                    self.settle_all();
                    if unacked.is_empty() {
                        info!(epoch, committed, "change done");
                    } else {
                        warn!(epoch, committed, ?unacked, "change done without every ack");
                    }
                    if let Some(f) = self.inflight.take_if(|f| f.epoch == epoch) {
                        if let (Some(id), Some(out)) = (f.topic, &f.reply) {
                            let r = if committed {
                                Ok(())
                            } else {
                                Err(topics::TopicRefusal {
                                    code: topics::REQUEST_TIMED_OUT,
                                    message: format!("epoch {epoch} aborted: a voter voted no or did not answer in time"),
                                })
                            };
                            topics::reply(out, id, epoch, r);
                        } else if let Some(out) = f.reply {
                            let v = if committed {
                                ok_reply(json!({
                                    "epoch": epoch, "committed": true, "changed": true,
                                    "change": f.what,
                                    "moved": {"slots": f.moves.slots,
                                              "partitions": f.moves.partitions,
                                              "deferred": f.moves.deferred},
                                }))
                            } else {
                                error_reply(&format!(
                                    "epoch {epoch} aborted: a voter voted no or did not answer in time (is every active node connected?)"
                                ))
                            };
                            let _ = out.try_send(OutMsg::Payload(v));
                        }
                    }
                    if self.store.records().len() > WAL_RECORDS_MAX {
                        if let Some(snap) = self.coord.snapshot() {
                            self.store.compact(snap)?;
                            info!(epoch, "compacted the write-ahead file");
                        }
                    }
                }
                Output::Refused(r) => warn!("refused: {r}"),
            }
            crate::crashpoint::after(&steps, i);
        }
        Ok(())
    }

    fn status(&self) -> serde_json::Value {
        let m = &self.coord.committed().map;
        json!({
            "epoch": m.epoch,
            "last_epoch": self.coord.last_epoch(),
            "phase": self.coord.phase_name(),
            "open_epoch": self.coord.open_epoch(),
            "moving": self.moving.as_ref().map(|m| m.phase.remaining()),
            "queued": self.queue.len(),
            "store": self.store.describe(),
            "nodes": m.nodes.iter().filter(|n| n.state != NodeState::Removed).count(),
            "connected": self.sessions.keys().collect::<Vec<_>>(),
            "slots_owned": m.slots().iter().flatten().count(),
            "partitions": m.partitions.len(),
            "topics": m.topics.len(),
            "known_partitions": self.known_partitions.values().flatten().collect::<std::collections::BTreeSet<_>>().len(),
        })
    }

    fn nodes(&self) -> serde_json::Value {
        let m = &self.coord.committed().map;
        let slots = m.slot_counts();
        let parts = m.partition_counts();
        let nodes: Vec<serde_json::Value> = m
            .nodes
            .iter()
            .map(|n| {
                let factors: Vec<f64> = (0..n.shards)
                    .map(|s| {
                        self.load.factor(Owner {
                            node: n.id,
                            shard: s,
                        })
                    })
                    .collect();
                json!({
                    "id": n.id,
                    "state": n.state,
                    "weight": n.weight,
                    "shards": n.shards,
                    "resp_addr": n.resp_addr,
                    "kafka_addr": n.kafka_addr,
                    "shard_endpoints": n.shard_endpoints,
                    "slots": slots.get(&n.id).copied().unwrap_or(0),
                    "partitions": parts.get(&n.id).copied().unwrap_or(0),
                    "connected": self.sessions.contains_key(&n.id),
                    "load_factors": factors,
                    "conn_weights": m.conn_weights_of(n.id),
                    "conn_pinned": m.conn_weights.get(&n.id).map(|c| c.pinned.clone()).unwrap_or_default(),
                    "load": self.last_loads.get(&n.id),
                })
            })
            .collect();
        json!({"epoch": m.epoch, "nodes": nodes})
    }
}
