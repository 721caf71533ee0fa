//! Topic changes on the core thread (`core.rs`): a node's forwarded topic request is
//! queued with the other changes (bounded apart from them), built by `topics::edit` and
//! proposed without a move phase; deleted topics' partitions are not placed again while
//! nodes may still report them.

use tracing::info;

use super::changes::Change;
use super::core::{Core, Inflight};
use super::topics;
use super::Outbox;
use crate::limits::{DELETED_TOPIC_FORGET_MS, TOPIC_CHANGES_QUEUED_MAX};
use crate::map::{NodeId, TopicPartition};
use crate::placement::Moves;
use crate::store::StoreError;
use crate::twopc::coordinator::{Input, Output};

impl Core {
    /// A node's topic request: queued with the other changes (bounded apart from them, so
    /// a burst of creates cannot starve the operator), answered `topic_reply`.
    pub(super) fn topic_request(&mut self, node: NodeId, id: u64, op: topics::TopicOp) {
        let Some(out) = self.sessions.get(&node).map(|s| s.out.clone()) else {
            return;
        };
        let queued = self
            .queue
            .iter()
            .filter(|(c, _)| matches!(c, Change::Topic { .. }))
            .count();
        if queued >= TOPIC_CHANGES_QUEUED_MAX {
            let why = format!(
                "{TOPIC_CHANGES_QUEUED_MAX} topic changes are already queued; try again later"
            );
            topics::reply(
                &out,
                id,
                self.epoch(),
                Err(topics::TopicRefusal {
                    code: topics::REQUEST_TIMED_OUT,
                    message: why,
                }),
            );
            return;
        }
        self.queue.push_back((Change::Topic { id, op }, Some(out)));
    }

    /// Builds and proposes a topic change (no move phase: its partitions are new or gone).
    pub(super) fn run_topic(
        &mut self,
        id: u64,
        op: topics::TopicOp,
        reply: Option<Outbox>,
    ) -> Result<(), StoreError> {
        let Some(out) = reply else { return Ok(()) };
        let name = op.name().to_string();
        let held = self
            .known_partitions
            .values()
            .flatten()
            .any(|tp| tp.topic == name);
        let committed = self.coord.committed().map.clone();
        let mut map = match topics::edit(&committed, &self.load, &op, held) {
            Ok(m) => m,
            Err(e) => {
                topics::reply(&out, id, self.epoch(), Err(e));
                return Ok(());
            }
        };
        map.epoch = self.epoch();
        if let topics::TopicOp::Delete { .. } = op {
            let now = self.now();
            self.deleted_topics.insert(name.clone(), now);
            for parts in self.known_partitions.values_mut() {
                parts.retain(|tp| tp.topic != name);
            }
        }
        let outs = self.coord.step(Input::Propose(map), self.now());
        if let Some(Output::Refused(r)) = outs.first() {
            let e = topics::TopicRefusal {
                code: topics::REQUEST_TIMED_OUT,
                message: r.to_string(),
            };
            topics::reply(&out, id, self.epoch(), Err(e));
            return Ok(());
        }
        let epoch = self.coord.last_epoch();
        info!(epoch, change = ?op, "proposing a topic change");
        self.inflight = Some(Inflight {
            epoch,
            what: format!("{op:?}"),
            moves: Moves::default(),
            reply: Some(out),
            topic: Some(id),
        });
        self.carry_out(outs)
    }

    /// Drops reported partitions of topics deleted lately (see `deleted_topics`).
    pub(super) fn forget_deleted(&mut self, parts: &mut Vec<TopicPartition>) {
        let now = self.now();
        self.deleted_topics
            .retain(|_, at| now.saturating_sub(*at) < DELETED_TOPIC_FORGET_MS);
        if self.deleted_topics.is_empty() {
            return;
        }
        let map = &self.coord.committed().map;
        parts.retain(|tp| {
            map.topics.contains_key(&tp.topic) || !self.deleted_topics.contains_key(&tp.topic)
        });
    }
}
