//! The compact byte form of a map: slots as runs of one owner, CRC-32C last.

use super::*;

impl ClusterMap {
    /// The compact byte form, checksum last.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(64 + self.nodes.len() * 64 + self.partitions.len() * 32);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        b.extend_from_slice(&self.epoch.to_be_bytes());
        b.extend_from_slice(&(self.nodes.len() as u32).to_be_bytes());
        for n in &self.nodes {
            b.extend_from_slice(&n.id.to_be_bytes());
            b.push(n.state.code());
            b.extend_from_slice(&n.shards.to_be_bytes());
            b.extend_from_slice(&n.weight.to_be_bytes());
            put_str(&mut b, &n.resp_addr);
            put_str(&mut b, &n.kafka_addr);
            b.extend_from_slice(&(n.shard_endpoints.len() as u16).to_be_bytes());
            for e in &n.shard_endpoints {
                put_str(&mut b, e);
            }
        }
        let runs = self.slot_runs();
        b.extend_from_slice(&(runs.len() as u32).to_be_bytes());
        for (start, count, o) in runs {
            b.extend_from_slice(&start.to_be_bytes());
            b.extend_from_slice(&count.to_be_bytes());
            b.extend_from_slice(&o.node.to_be_bytes());
            b.extend_from_slice(&o.shard.to_be_bytes());
        }
        b.extend_from_slice(&(self.partitions.len() as u32).to_be_bytes());
        for (tp, o) in &self.partitions {
            put_str(&mut b, &tp.topic);
            b.extend_from_slice(&tp.partition.to_be_bytes());
            b.extend_from_slice(&o.node.to_be_bytes());
            b.extend_from_slice(&o.shard.to_be_bytes());
        }
        self.encode_conn_weights(&mut b);
        self.encode_topics(&mut b);
        let crc = crc32c::crc32c(&b);
        b.extend_from_slice(&crc.to_be_bytes());
        b
    }

    /// Decodes and validates the byte form. The whole input must be one map.
    pub fn decode(buf: &[u8]) -> Result<ClusterMap, MapError> {
        if buf.len() < MAGIC.len() + 2 + 4 {
            return Err(MapError::Truncated);
        }
        if &buf[..4] != MAGIC {
            return Err(MapError::BadMagic);
        }
        let version = u16::from_be_bytes([buf[4], buf[5]]);
        if version != FORMAT_VERSION {
            return Err(MapError::Version(version));
        }
        let (body, tail) = buf.split_at(buf.len() - 4);
        let stored = u32::from_be_bytes([tail[0], tail[1], tail[2], tail[3]]);
        let computed = crc32c::crc32c(body);
        if stored != computed {
            return Err(MapError::Checksum { stored, computed });
        }
        let mut r = Reader { buf: body, pos: 6 };
        let mut map = ClusterMap::empty();
        map.epoch = r.u64()?;
        let nodes = r.count(NODES_MAX, "node count")?;
        for _ in 0..nodes {
            let id = r.u32()?;
            let state = NodeState::from_code(r.u8()?).ok_or(MapError::BadNode {
                node: id,
                why: "unknown state",
            })?;
            let shards = r.u16()?;
            let weight = r.u32()?;
            let resp_addr = r.str(ADDR_BYTES_MAX, "address length")?;
            let kafka_addr = r.str(ADDR_BYTES_MAX, "address length")?;
            let endpoints = r.u16()?;
            let mut shard_endpoints = Vec::with_capacity(usize::from(endpoints.min(shards)));
            for _ in 0..endpoints {
                shard_endpoints.push(r.str(ADDR_BYTES_MAX, "address length")?);
            }
            map.nodes.push(Node {
                id,
                resp_addr,
                kafka_addr,
                shard_endpoints,
                shards,
                weight,
                state,
            });
        }
        let runs = r.count(SLOTS, "slot run count")?;
        for _ in 0..runs {
            let start = u32::from(r.u16()?);
            let count = u32::from(r.u16()?);
            let owner = Owner {
                node: r.u32()?,
                shard: r.u16()?,
            };
            map.fill_slots(start, count, owner)?;
        }
        let parts = r.count(PARTITIONS_MAX, "partition count")?;
        for _ in 0..parts {
            let topic = r.str(TOPIC_BYTES_MAX, "topic name length")?;
            let partition = r.u32()?;
            let owner = Owner {
                node: r.u32()?,
                shard: r.u16()?,
            };
            let tp = TopicPartition { topic, partition };
            if map.partitions.insert(tp.clone(), owner).is_some() {
                return Err(MapError::DuplicatePartition(tp));
            }
        }
        map.decode_sections(&mut r)?;
        if r.pos != body.len() {
            return Err(MapError::Trailing(body.len() - r.pos));
        }
        map.validate()?;
        Ok(map)
    }

    pub(super) fn fill_slots(
        &mut self,
        start: u32,
        count: u32,
        owner: Owner,
    ) -> Result<(), MapError> {
        let end = start + count;
        if count == 0 || end as usize > SLOTS {
            return Err(MapError::BadSlots(start, end.saturating_sub(1)));
        }
        for s in start..end {
            let slot = &mut self.slots[s as usize];
            if slot.is_some() {
                return Err(MapError::BadSlots(start, end - 1));
            }
            *slot = Some(owner);
        }
        Ok(())
    }
}

// The optional sections after the partitions (before the CRC): `tag u8 | length u32 |
// body`, in this order: connection weights, topics. A map with neither writes none, so its
// bytes (and digest) are those of format 1 before sections existed, and a map written
// before them still decodes.

/// The connection-weights section (`conn.rs`), written only when a node has an entry:
/// `entries u32 | per entry: node u32 | weights u16 | weight u32 ... | pinned u16 | shard
/// u16 ...`.
const SECTION_CONN_WEIGHTS: u8 = b'W';

/// The topic section: `count u32`, then per topic `name | partitions u32 | configs u16 |
/// (name, value) strings`.
const SECTION_TOPICS: u8 = b'T';

impl ClusterMap {
    fn encode_conn_weights(&self, out: &mut Vec<u8>) {
        if self.conn_weights.is_empty() {
            return;
        }
        let mut body = Vec::with_capacity(self.conn_weights.len() * 16);
        let b = &mut body;
        b.extend_from_slice(&(self.conn_weights.len() as u32).to_be_bytes());
        for (id, c) in &self.conn_weights {
            b.extend_from_slice(&id.to_be_bytes());
            // Both lengths are bounded by the shard count (<= 1024) by `validate`.
            b.extend_from_slice(&(c.weights.len() as u16).to_be_bytes());
            for w in &c.weights {
                b.extend_from_slice(&w.to_be_bytes());
            }
            b.extend_from_slice(&(c.pinned.len() as u16).to_be_bytes());
            for s in &c.pinned {
                b.extend_from_slice(&s.to_be_bytes());
            }
        }
        out.push(SECTION_CONN_WEIGHTS);
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
    }

    /// Reads the section's body (the nodes are read already; `validate` checks each entry
    /// against them).
    fn decode_conn_weights(&mut self, r: &mut Reader<'_>) -> Result<(), MapError> {
        let entries = r.count(NODES_MAX, "connection weight entries")?;
        for _ in 0..entries {
            let id = r.u32()?;
            let n = usize::from(r.u16()?);
            if n > usize::from(SHARDS_PER_NODE_MAX) {
                return Err(MapError::Bound {
                    what: "connection weights of a node",
                    max: usize::from(SHARDS_PER_NODE_MAX),
                });
            }
            let weights = (0..n).map(|_| r.u32()).collect::<Result<Vec<_>, _>>()?;
            let p = usize::from(r.u16()?);
            if p > n {
                return Err(MapError::BadNode {
                    node: id,
                    why: "more pinned shards than connection weights",
                });
            }
            let pinned = (0..p).map(|_| r.u16()).collect::<Result<Vec<_>, _>>()?;
            let c = ConnWeights { weights, pinned };
            if self.conn_weights.insert(id, c).is_some() {
                return Err(MapError::BadNode {
                    node: id,
                    why: "has two connection weight entries",
                });
            }
        }
        Ok(())
    }

    fn encode_topics(&self, b: &mut Vec<u8>) {
        if self.topics.is_empty() {
            return;
        }
        let mut body = Vec::with_capacity(self.topics.len() * 32);
        body.extend_from_slice(&(self.topics.len() as u32).to_be_bytes());
        for (name, t) in &self.topics {
            put_str(&mut body, name);
            body.extend_from_slice(&t.partitions.to_be_bytes());
            // At most TOPIC_CONFIGS_MAX, checked by `validate`.
            body.extend_from_slice(&(t.configs.len() as u16).to_be_bytes());
            for (k, v) in &t.configs {
                put_str(&mut body, k);
                put_str(&mut body, v);
            }
        }
        b.push(SECTION_TOPICS);
        b.extend_from_slice(&(body.len() as u32).to_be_bytes());
        b.extend_from_slice(&body);
    }

    fn decode_sections(&mut self, r: &mut Reader<'_>) -> Result<(), MapError> {
        while r.pos < r.buf.len() {
            let tag = r.u8()?;
            let len = r.u32()? as usize;
            let body = r.take(len)?;
            let mut s = Reader { buf: body, pos: 0 };
            match tag {
                SECTION_CONN_WEIGHTS if self.conn_weights.is_empty() && self.topics.is_empty() => {
                    self.decode_conn_weights(&mut s)?
                }
                SECTION_CONN_WEIGHTS => {
                    return Err(MapError::Text(
                        "the connection-weight section is out of place",
                    ))
                }
                SECTION_TOPICS if self.topics.is_empty() => self.decode_topics(&mut s)?,
                SECTION_TOPICS => return Err(MapError::Text("the topic section appears twice")),
                t => return Err(MapError::UnknownSection(t)),
            }
            if s.pos != body.len() {
                return Err(MapError::Trailing(body.len() - s.pos));
            }
        }
        Ok(())
    }

    fn decode_topics(&mut self, r: &mut Reader<'_>) -> Result<(), MapError> {
        let n = r.count(TOPICS_MAX, "topic count")?;
        for _ in 0..n {
            let name = r.str(TOPIC_BYTES_MAX, "topic name length")?;
            let partitions = r.u32()?;
            let configs = usize::from(r.u16()?);
            if configs > TOPIC_CONFIGS_MAX {
                return Err(MapError::Bound {
                    what: "configs of a topic",
                    max: TOPIC_CONFIGS_MAX,
                });
            }
            let mut spec = TopicSpec {
                partitions,
                configs: BTreeMap::new(),
            };
            for _ in 0..configs {
                let k = r.str(TOPIC_CONFIG_BYTES_MAX, "topic config length")?;
                let v = r.str(TOPIC_CONFIG_BYTES_MAX, "topic config length")?;
                spec.configs.insert(k, v);
            }
            if self.topics.insert(name.clone(), spec).is_some() {
                return Err(MapError::BadTopic(name, "appears twice"));
            }
        }
        Ok(())
    }
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    // Lengths are bounded (<= 4096) by `validate` before any map is encoded for others.
    b.extend_from_slice(&(s.len() as u16).to_be_bytes());
    b.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], MapError> {
        let end = self.pos.checked_add(n).ok_or(MapError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(MapError::Truncated)?;
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, MapError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, MapError> {
        let s = self.take(2)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Result<u32, MapError> {
        let s = self.take(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&mut self) -> Result<u64, MapError> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_be_bytes(a))
    }
    fn count(&mut self, max: usize, what: &'static str) -> Result<usize, MapError> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(MapError::Bound { what, max });
        }
        Ok(n)
    }
    fn str(&mut self, max: usize, what: &'static str) -> Result<String, MapError> {
        let n = usize::from(self.u16()?);
        if n > max {
            return Err(MapError::Bound { what, max });
        }
        let s = self.take(n)?;
        String::from_utf8(s.to_vec()).map_err(|_| MapError::Text("a string is not UTF-8"))
    }
}
