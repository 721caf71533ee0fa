//! Per-shard connection weights: how a node running `--conn-balance weighted` spreads new
//! connections over its shards (issue 12, "connections inside a node").
//!
//! A node with no entry in [`ClusterMap::conn_weights`] weighs its shards equally. An entry
//! holds one weight per shard and the shards whose weight the operator pinned
//! (`pinion-control set-weight --node N --shard S W`); the others follow the load
//! (`placement::derive_conn_weights`). The control plane keeps entries canonical (none for
//! a node whose shards are all equal and unpinned), so a map that weighs nothing encodes
//! exactly as it did before connection weights existed.
//!
//! Invariants, checked by [`ClusterMap::validate`]: an entry names a node of the map that is
//! not removed, has exactly one weight per shard, each at most [`CONN_WEIGHT_MAX`], not all
//! zero; its pinned shards are sorted, distinct, and below the shard count.

use serde::{Deserialize, Serialize};

use super::{ClusterMap, MapError, NodeId, NodeState};
use crate::limits::CONN_WEIGHT_MAX;

/// One node's connection weights.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnWeights {
    /// One per shard.
    pub weights: Vec<u32>,
    /// Shards whose weight the operator set; sorted, distinct.
    #[serde(default)]
    pub pinned: Vec<u16>,
}

impl ConnWeights {
    pub fn is_pinned(&self, shard: u16) -> bool {
        self.pinned.binary_search(&shard).is_ok()
    }

    /// Pins `shard` at `w`, or unpins it (`None`), keeping `pinned` sorted.
    pub fn pin(&mut self, shard: u16, w: Option<u32>) {
        match (self.pinned.binary_search(&shard), w) {
            (Ok(_), Some(w)) => self.weights[usize::from(shard)] = w,
            (Err(i), Some(w)) => {
                self.pinned.insert(i, shard);
                self.weights[usize::from(shard)] = w;
            }
            (Ok(i), None) => {
                self.pinned.remove(i);
            }
            (Err(_), None) => {}
        }
    }
}

impl ClusterMap {
    /// The weights node `id` applies, one per shard (all 1 without an entry); empty for a
    /// node the map does not have.
    pub fn conn_weights_of(&self, id: NodeId) -> Vec<u32> {
        let Some(n) = self.node(id) else {
            return Vec::new();
        };
        match self.conn_weights.get(&id) {
            Some(c) if c.weights.len() == usize::from(n.shards) => c.weights.clone(),
            _ => vec![1; usize::from(n.shards)],
        }
    }

    pub(super) fn validate_conn_weights(&self) -> Result<(), MapError> {
        for (&id, c) in &self.conn_weights {
            let bad = |why| MapError::BadNode { node: id, why };
            let n = match self.node(id) {
                Some(n) if n.state != NodeState::Removed => n,
                _ => return Err(bad("has connection weights but is not a serving node")),
            };
            if c.weights.len() != usize::from(n.shards) {
                return Err(bad("connection weights must be one per shard"));
            }
            if c.weights.iter().any(|&w| w > CONN_WEIGHT_MAX) {
                return Err(bad("a connection weight exceeds 1000"));
            }
            if c.weights.iter().all(|&w| w == 0) {
                return Err(bad("connection weights must not all be zero"));
            }
            if c.pinned.windows(2).any(|p| p[0] >= p[1]) || c.pinned.iter().any(|&s| s >= n.shards)
            {
                return Err(bad(
                    "pinned shards must be sorted, distinct and below the shard count",
                ));
            }
        }
        Ok(())
    }
}
