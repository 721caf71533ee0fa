//! Moving log partitions when the map changes: the node's side of a partition order
//! (`pinion_control::moves`), over the `log/pull/` primitive.
//!
//! The **new owner** gets the order. A thread per order starts a pull of each partition
//! from the old owner's Kafka address (sealed segments, then the active one, tailing it),
//! waits until every pull has caught up, and asks the old owner, through the control plane,
//! to fence them (`fence`). The old owner fences each (`Pulls::release(.., Fenced)`:
//! produce answers NOT_LEADER_OR_FOLLOWER, which clients retry) and answers the end
//! offsets (`fenced`), which no longer move; the new owner finishes each pull at its end
//! (the copy then holds every acknowledged record, at the same offsets, and is served here
//! once the map says so) and reports the order (`moved`). The control plane then commits
//! the map that flips what moved. A partition whose pull failed or timed out is reported
//! failed and stays with its old owner.
//!
//! The new owner holds each finished copy `Copied` (complete, recovered, not served) until
//! a map newer than the order's epoch is installed: one that names this node serves it (the
//! flip committed); one that does not, or the control plane's `settle` while the map is
//! still the order's (the flip aborted: the old owner died before its vote, say), leaves it
//! never served here, its `moved` file forgetting the epoch. A later pull of it resumes it
//! from its end when it is a prefix of the source's log, else wipes it (`log/pull/`).
//!
//! The **old owner** keeps the partitions it fenced and settles them when a newer map is
//! installed: one it no longer owns is retired, one it still owns (the move failed) is
//! served again. When the control plane says no change is moving data or in doubt any
//! more (`settle`: a change ended, committed or not, or was not proposed; or the node
//! registered while nothing runs), the fences made before that settle by the map served,
//! once this node is not in doubt itself. A restart finds its fences in the partitions'
//! `moved` files.
//!
//! Threads: an order's own thread on the new owner; fences and settling on short threads
//! of their own, so the membership thread never waits on a shard or a file.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pinion_control::map::{NodeId, TopicPartition};
use pinion_control::moves::{Order, Unit};
use serde_json::json;

use super::view::View;
use crate::limits::{
    PMOVE_CATCHUP_WAIT_MS, PMOVE_FENCE_ANSWER_WAIT_MS, PMOVE_KEEPALIVE_MS,
    PMOVE_REPORTED_PARTITIONS_MAX,
};
use crate::log::pull::{self, Move, Phase, Pull, Pulls};

/// How often an order's thread looks at its pulls.
const POLL_MS: u64 = 20;

/// **For tests only.** With `PINION_PMOVE_FENCED_DELAY_MS=N` in its environment, the old
/// owner waits N ms after fencing an order's partitions before it answers `fenced`: a
/// window in which `tests/test_cluster_partition_move_faults.py` kills -9 the old owner, or
/// the control plane, while a partition is fenced and its move is not finished.
pub const FENCED_DELAY_VAR: &str = "PINION_PMOVE_FENCED_DELAY_MS";

/// The old owner's answer to a fence.
pub struct Fenced {
    pub ends: Vec<(Unit, i64)>,
    pub failed: Vec<Unit>,
}

/// A partition fenced here: the map epoch it was fenced under, and when.
struct Held {
    epoch: u64,
    since: Instant,
}

/// The node's partition moves, shared by the membership thread and the threads it starts.
pub struct PartMoves {
    pulls: Arc<Pulls>,
    /// Messages for the control plane (the membership thread sends them).
    out: Sender<serde_json::Value>,
    /// New owner: orders waiting for their `fenced` answer.
    answers: Mutex<HashMap<u64, Sender<Fenced>>>,
    /// Old owner: the partitions fenced here.
    fenced: Mutex<BTreeMap<(String, i32), Held>>,
    /// New owner: complete copies waiting for the map (the epoch their move started from).
    copied: Mutex<BTreeMap<(String, i32), Held>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn name(tp: &TopicPartition) -> Option<(String, i32)> {
    Some((tp.topic.clone(), i32::try_from(tp.partition).ok()?))
}

impl PartMoves {
    /// `data_dir`: partitions a crash left fenced are found there and settled later.
    pub fn new(
        pulls: Arc<Pulls>,
        data_dir: &Path,
        out: Sender<serde_json::Value>,
    ) -> Arc<PartMoves> {
        let copied = held_partitions(data_dir)
            .into_iter()
            .filter_map(|(t, p, dir)| {
                let epoch = pull::marker_epoch(&dir)?;
                Some((
                    (t, p),
                    Held {
                        epoch,
                        since: Instant::now(),
                    },
                ))
            })
            .collect();
        let fenced = held_partitions(data_dir)
            .into_iter()
            .filter(|(_, _, dir)| pull::marker(dir) == Some(Move::Fenced))
            .map(|(t, p, _)| {
                (
                    (t, p),
                    Held {
                        // The order's epoch is not known after a restart, and the map this
                        // node serves may be the one the move started from (its `fenced`
                        // answer may have gone out, the flip may still commit): only a
                        // `settle` from the control plane decides it, never the first map
                        // installed (which would serve it again while the new owner may
                        // be finishing the copy at the fenced end).
                        epoch: u64::MAX,
                        since: Instant::now(),
                    },
                )
            })
            .collect();
        Arc::new(PartMoves {
            pulls,
            out,
            answers: Mutex::new(HashMap::new()),
            fenced: Mutex::new(fenced),
            copied: Mutex::new(copied),
        })
    }

    fn send(&self, v: serde_json::Value) {
        let _ = self.out.send(v);
    }

    fn report(&self, id: u64, done: Vec<Unit>, failed: Vec<Unit>, last: bool) {
        self.send(json!({"type": "moved", "id": id, "done": done, "failed": failed, "last": last}));
    }

    /// New owner: carry out a partition order, pulling from `from` (the old owner's Kafka
    /// address), on a thread of its own.
    pub fn take(self: &Arc<Self>, order: Order, from: Option<String>) {
        let me = self.clone();
        let id = order.id;
        let spawned = std::thread::Builder::new()
            .name(format!("pmove-{id}"))
            .spawn(move || me.run(order, from));
        if let Err(e) = spawned {
            tracing::error!(order = id, "starting a partition move's thread failed: {e}");
        }
    }

    fn run(&self, order: Order, from: Option<String>) {
        let id = order.id;
        let Some(from) = from else {
            tracing::warn!(
                order = id,
                node = order.from,
                "the old owner's Kafka address is unknown here; the partitions stay"
            );
            return self.report(id, Vec::new(), order.units, true);
        };
        let mut failed = Vec::new();
        let mut running: Vec<(Unit, String, i32, Arc<Pull>)> = Vec::new();
        for u in order.units {
            let Unit::Partition(tp) = &u else {
                failed.push(u);
                continue;
            };
            let Some((topic, partition)) = name(tp) else {
                failed.push(u);
                continue;
            };
            match self.pulls.start(&topic, partition, &from) {
                Ok(p) => running.push((u, topic, partition, p)),
                Err(e) => {
                    tracing::warn!(order = id, topic, partition, %from, "the partition cannot be pulled: {e}; it stays with its owner");
                    failed.push(u);
                }
            }
        }
        // Until every pull has caught up (or failed, or the wait ends).
        let started = Instant::now();
        let mut keepalive = Instant::now();
        loop {
            let mut waiting = false;
            running.retain(|(u, topic, partition, p)| match p.progress().phase {
                Phase::Failed => {
                    tracing::warn!(order = id, topic, partition, error = ?p.progress().error, "the partition's pull failed; it stays with its owner");
                    failed.push(u.clone());
                    false
                }
                Phase::CaughtUp => true,
                _ => {
                    waiting = true;
                    true
                }
            });
            if !waiting {
                break;
            }
            if started.elapsed() >= Duration::from_millis(PMOVE_CATCHUP_WAIT_MS) {
                running.retain(|(u, topic, partition, p)| {
                    if p.progress().phase == Phase::CaughtUp {
                        return true;
                    }
                    tracing::warn!(
                        order = id,
                        topic,
                        partition,
                        "the partition's pull did not catch up in time; it stays with its owner"
                    );
                    let _ = self.pulls.stop(topic, *partition);
                    failed.push(u.clone());
                    false
                });
                break;
            }
            if keepalive.elapsed() >= Duration::from_millis(PMOVE_KEEPALIVE_MS) {
                keepalive = Instant::now();
                self.report(id, Vec::new(), std::mem::take(&mut failed), false);
            }
            std::thread::sleep(Duration::from_millis(POLL_MS));
        }
        if running.is_empty() {
            return self.report(id, Vec::new(), failed, true);
        }
        // Caught up: the old owner fences, and answers the ends.
        let (tx, rx) = mpsc::channel();
        lock(&self.answers).insert(id, tx);
        let units: Vec<Unit> = running.iter().map(|(u, ..)| u.clone()).collect();
        self.send(json!({"type": "fence", "id": id, "units": units}));
        let answer = rx.recv_timeout(Duration::from_millis(PMOVE_FENCE_ANSWER_WAIT_MS));
        lock(&self.answers).remove(&id);
        let Ok(fenced) = answer else {
            tracing::warn!(
                order = id,
                "the old owner did not answer the fence in time; the partitions stay with it"
            );
            for (u, topic, partition, _) in running {
                let _ = self.pulls.stop(&topic, partition);
                failed.push(u);
            }
            return self.report(id, Vec::new(), failed, true);
        };
        let ends: HashMap<Unit, i64> = fenced.ends.into_iter().collect();
        let mut done = Vec::new();
        for (u, topic, partition, _) in running {
            let Some(&end) = ends.get(&u) else {
                tracing::warn!(
                    order = id,
                    topic,
                    partition,
                    "the old owner could not fence the partition; it stays with it"
                );
                let _ = self.pulls.stop(&topic, partition);
                failed.push(u);
                continue;
            };
            // Noted before the copy is held, so the map that flips it always finds it.
            lock(&self.copied).insert(
                (topic.clone(), partition),
                Held {
                    epoch: order.epoch,
                    since: Instant::now(),
                },
            );
            match self
                .pulls
                .finish_held(&topic, partition, end, Some(order.epoch))
            {
                Ok(_) => {
                    tracing::info!(
                        order = id,
                        topic,
                        partition,
                        end,
                        "partition copied to its fenced end"
                    );
                    done.push(u);
                }
                Err(e) => {
                    tracing::warn!(
                        order = id,
                        topic,
                        partition,
                        end,
                        "finishing the partition's pull failed: {e}; it stays with its owner"
                    );
                    lock(&self.copied).remove(&(topic.clone(), partition));
                    let _ = self.pulls.stop(&topic, partition);
                    failed.push(u);
                }
            }
        }
        self.report(id, done, failed, true);
    }

    /// New owner: the old owner's `fenced` answer for order `id`.
    pub fn answer(&self, id: u64, fenced: Fenced) {
        match lock(&self.answers).get(&id) {
            Some(tx) => {
                let _ = tx.send(fenced);
            }
            None => tracing::warn!(order = id, "a fence answer for no waiting order; ignored"),
        }
    }

    /// Old owner: fence `units` (map epoch `epoch`) and answer their ends, on a thread.
    pub fn fence(self: &Arc<Self>, id: u64, epoch: u64, units: Vec<Unit>) {
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("pfence-{id}"))
            .spawn(move || {
                let mut ends = Vec::new();
                let mut failed = Vec::new();
                for u in units {
                    let tp = match &u {
                        Unit::Partition(tp) => name(tp),
                        Unit::Slot(_) => None,
                    };
                    let Some((topic, partition)) = tp else {
                        failed.push(u);
                        continue;
                    };
                    // Noted first: a fence that fails half-way is settled like one that held.
                    lock(&me.fenced).insert(
                        (topic.clone(), partition),
                        Held {
                            epoch,
                            since: Instant::now(),
                        },
                    );
                    match me.pulls.release(&topic, partition, Some(Move::Fenced)) {
                        Ok(f) => {
                            tracing::info!(
                                order = id,
                                topic,
                                partition,
                                end = f.end,
                                "partition fenced for its move"
                            );
                            ends.push((u, f.end));
                        }
                        Err(e) => {
                            tracing::warn!(
                                order = id,
                                topic,
                                partition,
                                "fencing the partition failed: {e}"
                            );
                            failed.push(u);
                        }
                    }
                }
                if let Some(ms) = std::env::var(FENCED_DELAY_VAR)
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    tracing::warn!(
                        order = id,
                        "{FENCED_DELAY_VAR}={ms}: the fenced answer waits"
                    );
                    std::thread::sleep(Duration::from_millis(ms));
                }
                me.send(json!({"type": "fenced", "id": id, "ends": ends, "failed": failed}));
            });
        if let Err(e) = spawned {
            tracing::error!(order = id, "starting a fence's thread failed: {e}");
        }
    }

    /// Old owner: settle the fenced partitions `view` decides (its epoch is past theirs, or
    /// they were fenced before `ended`, when the control plane said no change could still
    /// flip them): retire the ones another node now owns, serve again the ones still owned
    /// here. The caller passes `ended` only while this node is not in doubt.
    pub fn settle(self: &Arc<Self>, view: &View, ended: Option<Instant>) {
        self.settle_copies(view, ended);
        let mut due = Vec::new();
        {
            let mut fenced = lock(&self.fenced);
            fenced.retain(|(topic, partition), h| {
                let decided = view.epoch > h.epoch || ended.is_some_and(|t| h.since < t);
                if !decided {
                    return true;
                }
                // A partition the map names no owner for stays here.
                let mine = owner_is_me(view, topic, *partition).unwrap_or(true);
                due.push((topic.clone(), *partition, mine));
                false
            });
        }
        self.release_due(
            "pmove-settle",
            "settling",
            due,
            |me, topic, partition, mine| {
                let to = if mine { None } else { Some(Move::Retired) };
                match me.pulls.release(topic, partition, to) {
                    Ok(_) => tracing::info!(
                        topic,
                        partition,
                        state = if mine { "serving" } else { "retired" },
                        "a fenced partition settled by the map"
                    ),
                    Err(e) => {
                        tracing::warn!(topic, partition, "settling a fenced partition failed: {e}")
                    }
                }
            },
        );
    }

    /// New owner: the complete copies `view` decides. A map newer than the copy's order
    /// that names this node serves it (the flip committed); a newer one that does not, or
    /// the control plane's word that the change ended while the map is still the order's
    /// (the flip aborted), leaves it never served here.
    fn settle_copies(self: &Arc<Self>, view: &View, ended: Option<Instant>) {
        let mut due = Vec::new();
        lock(&self.copied).retain(|(topic, partition), h| {
            let newer = view.epoch > h.epoch;
            // Undecided: no newer map, and no `settle` since the copy was noted.
            let aborted = ended.is_some_and(|t| h.since < t);
            if !newer && !aborted {
                return true;
            }
            // A copy is served only where a newer map names this node.
            let mine = newer && owner_is_me(view, topic, *partition).unwrap_or(false);
            due.push((topic.clone(), *partition, mine));
            false
        });
        self.release_due("pmove-copies", "copies' settling", due, |me, topic, partition, mine| {
            let r = if mine {
                me.pulls.release(topic, partition, None).map(|_| ())
            } else {
                me.pulls.forget_copy(topic, partition)
            };
            match r {
                Ok(()) if mine => {
                    tracing::info!(topic, partition, "a copied partition served: the map gives it here")
                }
                Ok(()) => tracing::warn!(
                    topic,
                    partition,
                    "a copied partition the map did not give here: never served; a later move resumes or wipes it"
                ),
                Err(e) => tracing::warn!(topic, partition, "settling a copied partition failed: {e}"),
            }
        });
    }

    /// Runs `act` on each settled (topic, partition, mine) of `due` on a short thread of its
    /// own, named `thread`, so the membership thread never waits on a shard or a file;
    /// `what` names the thread in the log line should it fail to start.
    fn release_due(
        self: &Arc<Self>,
        thread: &str,
        what: &str,
        due: Vec<(String, i32, bool)>,
        act: impl Fn(&Self, &str, i32, bool) + Send + 'static,
    ) {
        if due.is_empty() {
            return;
        }
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name(thread.into())
            .spawn(move || {
                for (topic, partition, mine) in due {
                    act(&me, &topic, partition, mine);
                }
            });
        if let Err(e) = spawned {
            tracing::error!("starting the {what} thread failed: {e}");
        }
    }

    /// Whether anything is fenced or copied here (settling needs a look).
    pub fn holds_fences(&self) -> bool {
        !lock(&self.fenced).is_empty() || !lock(&self.copied).is_empty()
    }
}

/// Whether `view` gives (topic, partition) to this node; `None` where the map names no
/// owner for it (or the partition is no map index). Each caller states its default.
fn owner_is_me(view: &View, topic: &str, partition: i32) -> Option<bool> {
    let p = u32::try_from(partition).ok()?;
    view.partition_owner(topic, p).map(|n| view.is_me(n))
}

/// Every partition folder of the node's topics (internal topics, `__*`, left out):
/// (topic, partition, folder).
fn held_partitions(data_dir: &Path) -> Vec<(String, i32, PathBuf)> {
    let mut out = Vec::new();
    let Ok(topics) = std::fs::read_dir(data_dir.join("log")) else {
        return out;
    };
    for t in topics.flatten() {
        let topic = t.file_name().to_string_lossy().to_string();
        if topic.starts_with("__") || !t.path().join("topic.meta").is_file() {
            continue;
        }
        let Ok(parts) = std::fs::read_dir(t.path()) else {
            continue;
        };
        for p in parts.flatten() {
            let Ok(partition) = p.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if p.path().is_dir() {
                out.push((topic.clone(), partition, p.path()));
            }
            if out.len() >= PMOVE_REPORTED_PARTITIONS_MAX {
                return out;
            }
        }
    }
    out
}

/// The log partitions this node holds, for its heartbeat (the control plane places them).
pub fn reported(data_dir: &Path) -> Vec<TopicPartition> {
    held_partitions(data_dir)
        .into_iter()
        .filter_map(|(topic, p, _)| {
            Some(TopicPartition {
                topic,
                partition: u32::try_from(p).ok()?,
            })
        })
        .collect()
}

/// The old owner's Kafka address as the view knows it.
pub fn kafka_addr(view: &View, node: NodeId) -> Option<String> {
    view.nodes
        .iter()
        .find(|n| n.id == node)
        .map(|n| format!("{}:{}", n.kafka_host, n.kafka_port))
}

/// Decodes a `fenced` message's payload.
pub fn decode_fenced(v: &serde_json::Value) -> Option<(u64, Fenced)> {
    let id = v.get("id")?.as_u64()?;
    let ends = serde_json::from_value(v.get("ends")?.clone()).ok()?;
    let failed = serde_json::from_value(v.get("failed")?.clone()).ok()?;
    Some((id, Fenced { ends, failed }))
}
