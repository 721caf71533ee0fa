//! The cluster view: who serves each of the 16384 slots and each log partition, as one node
//! sees it at one epoch. Immutable; a new map makes a new view (`super::Cluster::install`).
//!
//! A slot's owner is a node from the map and, inside that node, the shard whose fixed
//! range holds the slot (`mesh::SlotTable`: shard `i` of `n` owns `[i*16384/n,
//! (i+1)*16384/n)`), since a shard's keyspace is built for its range. Every node computes
//! the same shard for any node from its shard count, so MOVED and CLUSTER SLOTS agree
//! everywhere. A log partition's owner is the map's node for it when the map lists it,
//! else the node owning the slot of `"<topic>-<partition>"`, the rule a single node uses.
//!
//! Standalone (no `--control`), the view is one node owning every slot, its shards
//! listed as their own masters when `--shard-ports` is set.

use std::collections::{BTreeMap, HashMap};

use pinion_control::map::{ClusterMap, NodeId, NodeState, TopicSpec};

use crate::cache::slot::{key_slot, SLOTS};
use crate::mesh::SlotTable;

/// No node owns the slot (a cluster still forming, or a map that leaves it out).
const UNOWNED: u16 = u16::MAX;

/// One node of the view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewNode {
    pub id: NodeId,
    pub host: String,
    pub port: u16,
    pub kafka_host: String,
    pub kafka_port: u16,
    pub shards: u16,
    /// Per-shard RESP endpoints (`--shard-ports`), or empty.
    pub shard_endpoints: Vec<(String, u16)>,
}

impl ViewNode {
    /// Where a client reaches `shard` of this node: its own port when it has one.
    pub fn endpoint(&self, shard: usize) -> (&str, u16) {
        match self.shard_endpoints.get(shard) {
            Some((h, p)) => (h, *p),
            None => (&self.host, self.port),
        }
    }

    /// The 40-hex-digit name CLUSTER NODES and MYID show for this node (`shard: None`) or
    /// one of its shards listed as its own master.
    pub fn name(&self, shard: Option<usize>) -> String {
        let text = match shard {
            Some(s) => format!("pinion-node-{}-shard-{s}", self.id),
            None => format!("pinion-node-{}", self.id),
        };
        sha1_smol::Sha1::from(text).digest().to_string()
    }
}

#[derive(Debug)]
pub struct View {
    pub epoch: u64,
    /// This node's index in `nodes`, if the map names it.
    pub me: Option<usize>,
    pub nodes: Vec<ViewNode>,
    /// Per slot: (node index, shard), node `UNOWNED` when nobody serves it.
    slots: Box<[(u16, u16)]>,
    /// Partitions the map places explicitly: node index.
    partitions: HashMap<(String, u32), u16>,
    /// The cluster's topics (`cluster/topics.rs`); none standalone.
    pub topics: BTreeMap<String, TopicSpec>,
}

/// Splits `host:port`; a bare host or a bad port gives port 0.
pub fn split_addr(addr: &str) -> (String, u16) {
    match addr.rsplit_once(':') {
        Some((h, p)) => (
            h.trim_start_matches('[').trim_end_matches(']').to_string(),
            p.parse().unwrap_or(0),
        ),
        None => (addr.to_string(), 0),
    }
}

impl View {
    /// One node owning every slot: this node standalone. `shard_ports` lists each shard's
    /// own endpoint (empty without `--shard-ports`).
    pub fn standalone(node: ViewNode) -> View {
        let n = usize::from(node.shards).max(1);
        let table = SlotTable::new(n);
        let slots = (0..SLOTS)
            .map(|s| (0u16, table.shard(s as u16) as u16))
            .collect();
        View {
            epoch: 0,
            me: Some(0),
            nodes: vec![node],
            slots,
            partitions: HashMap::new(),
            topics: BTreeMap::new(),
        }
    }

    /// The view of a committed map, seen from node `me`.
    pub fn from_map(map: &ClusterMap, me: NodeId) -> View {
        let nodes: Vec<ViewNode> = map
            .nodes
            .iter()
            .filter(|n| n.state != NodeState::Removed)
            .map(|n| {
                let (host, port) = split_addr(&n.resp_addr);
                let (kafka_host, kafka_port) = split_addr(&n.kafka_addr);
                ViewNode {
                    id: n.id,
                    host,
                    port,
                    kafka_host,
                    kafka_port,
                    shards: n.shards,
                    shard_endpoints: n.shard_endpoints.iter().map(|e| split_addr(e)).collect(),
                }
            })
            .collect();
        let index: HashMap<NodeId, u16> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id, i as u16))
            .collect();
        let mut tables: HashMap<u16, SlotTable> = HashMap::new();
        let slots = map
            .slots()
            .iter()
            .enumerate()
            .map(|(slot, owner)| {
                let Some(idx) = owner.and_then(|o| index.get(&o.node).copied()) else {
                    return (UNOWNED, 0);
                };
                let n = nodes[usize::from(idx)].shards.max(1);
                let t = tables
                    .entry(n)
                    .or_insert_with(|| SlotTable::new(usize::from(n)));
                (idx, t.shard(slot as u16) as u16)
            })
            .collect();
        let partitions = map
            .partitions
            .iter()
            .filter_map(|(tp, o)| Some(((tp.topic.clone(), tp.partition), *index.get(&o.node)?)))
            .collect();
        View {
            epoch: map.epoch,
            me: index.get(&me).map(|&i| usize::from(i)),
            nodes,
            slots,
            partitions,
            topics: map.topics.clone(),
        }
    }

    /// The (node index, shard) serving `slot`, if any.
    #[inline]
    pub fn owner(&self, slot: u16) -> Option<(usize, usize)> {
        let (n, s) = self.slots[usize::from(slot) & (SLOTS - 1)];
        (n != UNOWNED).then_some((usize::from(n), usize::from(s)))
    }

    /// The node index serving a log partition.
    pub fn partition_owner(&self, topic: &str, partition: u32) -> Option<usize> {
        if let Some(&n) = self.partitions.get(&(topic.to_string(), partition)) {
            return Some(usize::from(n));
        }
        let name = format!("{topic}-{partition}");
        self.owner(key_slot(name.as_bytes())).map(|(n, _)| n)
    }

    /// Whether `node` is this node.
    pub fn is_me(&self, node: usize) -> bool {
        self.me == Some(node)
    }

    /// Slots as runs of one (node, shard): (first, last, node index, shard).
    pub fn runs(&self) -> Vec<(u16, u16, usize, usize)> {
        let mut runs: Vec<(u16, u16, usize, usize)> = Vec::new();
        for slot in 0..SLOTS as u16 {
            let Some((n, s)) = self.owner(slot) else {
                continue;
            };
            match runs.last_mut() {
                Some((_, last, rn, rs)) if *rn == n && *rs == s && *last + 1 == slot => {
                    *last = slot
                }
                _ => runs.push((slot, slot, n, s)),
            }
        }
        runs
    }

    /// Runs merged by what a client sees: a node without shard endpoints is one master, so
    /// its shards' adjacent runs are one.
    pub fn client_runs(&self) -> Vec<(u16, u16, usize, Option<usize>)> {
        let mut out: Vec<(u16, u16, usize, Option<usize>)> = Vec::new();
        for (first, last, n, s) in self.runs() {
            let shard = (!self.nodes[n].shard_endpoints.is_empty()).then_some(s);
            match out.last_mut() {
                Some((_, l, on, os)) if *on == n && *os == shard && *l + 1 == first => *l = last,
                _ => out.push((first, last, n, shard)),
            }
        }
        out
    }

    /// Slots assigned to anyone.
    pub fn slots_assigned(&self) -> usize {
        self.slots.iter().filter(|(n, _)| *n != UNOWNED).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pinion_control::map::{Node, Owner};

    fn node(id: NodeId, port: u16, shards: u16, endpoints: bool) -> ViewNode {
        ViewNode {
            id,
            host: "127.0.0.1".into(),
            port,
            kafka_host: "127.0.0.1".into(),
            kafka_port: port + 1000,
            shards,
            shard_endpoints: if endpoints {
                (0..shards)
                    .map(|i| ("127.0.0.1".to_string(), port + 1 + i))
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    #[test]
    fn standalone_lists_its_shards_ranges_as_masters_only_with_shard_ports() {
        let v = View::standalone(node(1, 7000, 2, true));
        assert_eq!(
            v.client_runs(),
            vec![(0, 8191, 0, Some(0)), (8192, 16383, 0, Some(1))]
        );
        assert_eq!(v.nodes[0].endpoint(1), ("127.0.0.1", 7002));
        let v = View::standalone(node(1, 7000, 2, false));
        assert_eq!(v.client_runs(), vec![(0, 16383, 0, None)]);
        assert_eq!(v.nodes[0].endpoint(1), ("127.0.0.1", 7000));
        assert_eq!(v.slots_assigned(), SLOTS);
        assert_ne!(v.nodes[0].name(None), v.nodes[0].name(Some(0)));
        assert_eq!(v.nodes[0].name(None).len(), 40);
    }

    #[test]
    fn a_map_gives_nodes_and_each_node_its_fixed_shard_ranges() {
        let mut m = ClusterMap::empty();
        for (id, shards) in [(1, 2), (2, 4)] {
            m.upsert_node(Node {
                id,
                resp_addr: format!("127.0.0.1:{}", 7000 + id),
                kafka_addr: format!("127.0.0.1:{}", 9000 + id),
                shard_endpoints: Vec::new(),
                shards,
                weight: 1,
                state: NodeState::Active,
            });
        }
        m.set_slots(0..10000, Some(Owner { node: 1, shard: 1 }));
        m.set_slots(10000..16383, Some(Owner { node: 2, shard: 0 }));
        m.epoch = 7;
        let v = View::from_map(&m, 2);
        assert_eq!(v.me, Some(1));
        assert_eq!(v.epoch, 7);
        // Node 1 has 2 shards: slot 100 is its shard 0 whatever the map's shard says.
        assert_eq!(v.owner(100), Some((0, 0)));
        assert_eq!(v.owner(9000), Some((0, 1)));
        // Node 2 has 4 shards: slot 12500 is in its range 12288..16384, shard 3.
        assert_eq!(v.owner(12500), Some((1, 3)));
        assert_eq!(v.owner(16383), None);
        assert_eq!(v.slots_assigned(), SLOTS - 1);
        assert_eq!(v.nodes[1].endpoint(0), ("127.0.0.1", 7002));
        // A partition the map does not list goes with the slot of its name.
        let slot = key_slot(b"t-0");
        assert_eq!(
            v.partition_owner("t", 0),
            v.owner(slot).map(|(n, _)| n),
            "slot {slot}"
        );
    }

    #[test]
    fn addresses_split_into_host_and_port() {
        assert_eq!(split_addr("10.0.0.1:6379"), ("10.0.0.1".into(), 6379));
        assert_eq!(split_addr("[::1]:6379"), ("::1".into(), 6379));
        assert_eq!(split_addr("host"), ("host".into(), 0));
    }
}
