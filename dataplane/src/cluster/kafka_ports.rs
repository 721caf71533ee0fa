//! `--kafka-shard-ports BASE`: each shard its own Kafka broker.
//!
//! Shard `i` also listens for Kafka on BASE+`i` (the `--kafka-listen` host; no
//! `SO_REUSEPORT`, so only that shard accepts there, whatever `--conn-balance` says), and
//! Metadata lists each shard as a broker instead of the node: broker id
//! **`node_id × 1000 + i`** (`KAFKA_SHARD_BROKERS_PER_NODE`; the node id is `--node-id`,
//! 1 by default), the advertised host, port BASE+`i`. Each partition's leader is the shard
//! that owns it (the owner of the slot of `"<topic>-<partition>"`, as inside any node), and
//! FindCoordinator names the shard that coordinates the group or transactional id
//! (`groups::coordinator`), so a client's Produce, Fetch, ListOffsets and group requests
//! land on the shard that runs them, with no mesh hop. Any request is still served on any
//! port (a part for another shard takes the mesh, as on the node's port); the node's own
//! Kafka port stays open, as a bootstrap address.
//!
//! The ids are unique across a cluster whose node ids are below 1000 (node ids are brokers
//! there, and shard brokers start at 1000). For now the flag is for standalone nodes: the
//! cluster map carries per-shard RESP endpoints but not Kafka ones, so nodes could not list
//! each other's shard brokers, and a node under `--control` refuses it at start. A request
//! that came over TLS is answered with the node broker as before (the shard ports are
//! plain TCP).
//!
//! The trade-off (docs/operations.md): a client then holds a connection, and in
//! librdkafka a thread, per shard broker it talks to, instead of one per node.

use std::net::SocketAddr;

use anyhow::Context;
use socket2::{Domain, Protocol, Socket, Type};

use super::kafka::Broker;
use crate::config::Config;
use crate::limits::{KAFKA_SHARD_BROKERS_PER_NODE, LISTEN_BACKLOG};
use crate::log::topics::partition_slot;
use crate::mesh::SlotTable;
use crate::shard::NodeShared;

/// The broker id of shard `shard` of node `node`.
pub fn broker_id(node: u32, shard: usize) -> i32 {
    node as i32 * KAFKA_SHARD_BROKERS_PER_NODE + shard as i32
}

/// The node id the broker ids are made from.
fn node_id(cfg: &Config) -> u32 {
    cfg.node_id.unwrap_or(1)
}

/// One Kafka listener per shard on `--kafka-shard-ports BASE`, or none; refuses what the
/// broker ids cannot express and `--control` (see the module header).
pub fn bind(cfg: &Config, kafka: SocketAddr, nshards: usize) -> anyhow::Result<Vec<Socket>> {
    let Some(base) = cfg.kafka_shard_ports else {
        return Ok(Vec::new());
    };
    if cfg.control.is_some() {
        anyhow::bail!(
            "--kafka-shard-ports is for standalone nodes for now (the cluster map has no per-shard Kafka endpoints); drop it or --control"
        );
    }
    let per_node = KAFKA_SHARD_BROKERS_PER_NODE as usize;
    if nshards > per_node {
        anyhow::bail!("--kafka-shard-ports: at most {per_node} shards (broker id = node id x {per_node} + shard), got {nshards}");
    }
    let max_node = (i32::MAX / KAFKA_SHARD_BROKERS_PER_NODE - 1) as u32;
    if node_id(cfg) > max_node {
        anyhow::bail!("--kafka-shard-ports: --node-id must be at most {max_node} (broker id = node id x {per_node} + shard)");
    }
    if usize::from(base) + nshards > usize::from(u16::MAX) + 1 || base == 0 {
        anyhow::bail!(
            "--kafka-shard-ports {base}: {nshards} ports from there do not fit below 65536"
        );
    }
    let mut out = Vec::with_capacity(nshards);
    for i in 0..nshards {
        let addr = SocketAddr::new(kafka.ip(), base + i as u16);
        let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        s.set_reuse_address(true)?;
        s.set_nodelay(true)?;
        s.bind(&addr.into())
            .with_context(|| format!("--kafka-shard-ports: binding {addr} for shard {i}"))?;
        s.listen(LISTEN_BACKLOG)?;
        out.push(s);
    }
    Ok(out)
}

/// The shards of this node as brokers, for one Metadata or FindCoordinator answer.
pub struct ShardBrokers {
    pub brokers: Vec<Broker>,
}

impl ShardBrokers {
    /// The broker leading `topic`-`partition`: its owner shard's (shard `i` of `n` owns
    /// the slots `SlotTable::range_of(i, n)`).
    pub fn leader(&self, topic: &str, partition: i32) -> i32 {
        let n = self.brokers.len();
        let slot = usize::from(partition_slot(topic, partition));
        let shard = (0..n)
            .find(|&i| SlotTable::range_of(i, n).contains(&slot))
            .unwrap_or(0);
        self.brokers[shard].0
    }

    /// The broker coordinating a group or a transactional id: the shard that runs it.
    pub fn coordinator(&self, owner: &SlotTable, key: &str) -> Broker {
        let shard = crate::kafka::groups::coordinator(owner, key);
        self.brokers.get(shard).unwrap_or(&self.brokers[0]).clone()
    }

    /// The controller Metadata names: shard 0.
    pub fn controller(&self) -> i32 {
        self.brokers[0].0
    }
}

/// With `--kafka-shard-ports`, standalone, and not over TLS: the shard brokers, with
/// `host` (the advertised one) and BASE+`i`. Else `None`: the node is the broker.
pub fn shard_brokers(node: &NodeShared, host: &str, tls: bool) -> Option<ShardBrokers> {
    let base = node.cfg.kafka_shard_ports?;
    if tls || node.cluster.managed || node.nshards == 0 {
        return None;
    }
    let id = node_id(&node.cfg);
    let brokers = (0..node.nshards)
        .map(|i| (broker_id(id, i), host.to_string(), base + i as u16))
        .collect();
    Some(ShardBrokers { brokers })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_ids_are_node_times_1000_plus_shard() {
        assert_eq!(broker_id(1, 0), 1000);
        assert_eq!(broker_id(1, 7), 1007);
        assert_eq!(broker_id(42, 999), 42_999);
        let max_node = (i32::MAX / KAFKA_SHARD_BROKERS_PER_NODE - 1) as u32;
        assert!(broker_id(max_node, 999) > 0);
    }

    #[test]
    fn leaders_and_coordinators_are_the_owning_shards() {
        let owner = SlotTable::new(2);
        let b = ShardBrokers {
            brokers: vec![(1000, "h".into(), 9100), (1001, "h".into(), 9101)],
        };
        for p in 0..32 {
            let shard = owner.shard(partition_slot("t", p));
            assert_eq!(b.leader("t", p), 1000 + shard as i32);
        }
        let shard = crate::kafka::groups::coordinator(&owner, "g");
        assert_eq!(b.coordinator(&owner, "g"), b.brokers[shard]);
        assert_eq!(b.controller(), 1000);
    }
}
