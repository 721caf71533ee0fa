//! Kafka load: a producer that sends RecordBatch v2 batches of `--record-bytes` records
//! (one partition per request, partitions taken in turn), and a consumer that fetches
//! partitions from earliest or latest.
//!
//! Versions are the non-flexible ones every broker since Kafka 2.1 and pinion speak:
//! Produce v7, Fetch v11, ListOffsets v2, Metadata v4, CreateTopics v2. The produce frame
//! is written by hand (one copy of the batch); set-up and replies go through the
//! kafka-protocol codecs.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{
    create_topics_request::CreatableTopic, fetch_request::FetchPartition,
    fetch_request::FetchTopic, list_offsets_request::ListOffsetsPartition,
    list_offsets_request::ListOffsetsTopic, metadata_request::MetadataRequestTopic, ApiKey,
    BrokerId, CreateTopicsRequest, CreateTopicsResponse, FetchRequest, FetchResponse,
    ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse, ProduceResponse,
    RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use kafka_protocol::ResponseError;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::engine::{Driver, Reply};

const CLIENT_ID: &str = "pinion-bench";
const PRODUCE_VERSION: i16 = 7;
const FETCH_VERSION: i16 = 11;
/// Replies larger than this are not believed.
const MAX_REPLY: usize = 1 << 30;

pub fn parse_compression(s: &str) -> Result<Compression, String> {
    Ok(match s {
        "none" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        _ => return Err(format!("'{s}': expected none, gzip, snappy, lz4 or zstd")),
    })
}

fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        Some(e) => format!("{e:?} ({code})"),
        None => format!("error code {code}"),
    }
}

/// Send one request and read its reply, blocking (set-up only).
fn call<Req: Encodable, Resp: Decodable>(
    s: &mut TcpStream,
    key: ApiKey,
    version: i16,
    req: &Req,
) -> anyhow::Result<Resp> {
    let mut buf = BytesMut::new();
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
    header.encode(&mut buf, key.request_header_version(version))?;
    req.encode(&mut buf, version)?;
    s.write_all(&(buf.len() as i32).to_be_bytes())?;
    s.write_all(&buf)?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len).context("reading a reply")?;
    let len = i32::from_be_bytes(len);
    if len < 0 || len as usize > MAX_REPLY {
        bail!("reply claims {len} bytes");
    }
    let mut body = vec![0u8; len as usize];
    s.read_exact(&mut body)?;
    let mut body = Bytes::from(body);
    ResponseHeader::decode(&mut body, key.response_header_version(version))?;
    Resp::decode(&mut body, version)
}

fn connect(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let s = TcpStream::connect(addr)
        .with_context(|| format!("connecting to {addr} (is the broker running there?)"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    Ok(s)
}

/// Create the topic with `partitions` unless it exists; return its partition count.
pub fn ensure_topic(addr: SocketAddr, topic: &str, partitions: i32) -> anyhow::Result<i32> {
    let mut s = connect(addr)?;
    let name = TopicName(StrBytes::from_string(topic.to_string()));
    let req = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(name.clone())
            .with_num_partitions(partitions)
            .with_replication_factor(1)])
        .with_timeout_ms(30_000);
    let r: CreateTopicsResponse = call(&mut s, ApiKey::CreateTopics, 2, &req)?;
    for t in &r.topics {
        // 36: TOPIC_ALREADY_EXISTS, which is fine.
        if t.error_code != 0 && t.error_code != 36 {
            bail!("creating topic {topic}: {}", error_name(t.error_code));
        }
    }
    let req = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(name))
    ]));
    let r: MetadataResponse = call(&mut s, ApiKey::Metadata, 4, &req)?;
    let Some(t) = r.topics.first() else {
        bail!("metadata for {topic} came back empty");
    };
    if t.error_code != 0 {
        bail!("metadata for {topic}: {}", error_name(t.error_code));
    }
    Ok(t.partitions.len() as i32)
}

/// Each partition's earliest (`-2`) or latest (`-1`) offset.
pub fn start_offsets(
    addr: SocketAddr,
    topic: &str,
    partitions: i32,
    which: i64,
) -> anyhow::Result<Vec<i64>> {
    let mut s = connect(addr)?;
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(
                (0..partitions)
                    .map(|p| {
                        ListOffsetsPartition::default()
                            .with_partition_index(p)
                            .with_timestamp(which)
                    })
                    .collect(),
            )]);
    let r: ListOffsetsResponse = call(&mut s, ApiKey::ListOffsets, 2, &req)?;
    let mut out = vec![0; partitions as usize];
    for t in r.topics {
        for p in t.partitions {
            if p.error_code != 0 {
                bail!(
                    "offsets of {topic}/{}: {}",
                    p.partition_index,
                    error_name(p.error_code)
                );
            }
            if let Some(o) = out.get_mut(p.partition_index as usize) {
                *o = p.offset;
            }
        }
    }
    Ok(out)
}

/// A size-prefixed reply at the start of `inp`: its length in all, or None if incomplete.
fn framed(inp: &[u8]) -> Result<Option<usize>, String> {
    if inp.len() < 4 {
        return Ok(None);
    }
    let len = i32::from_be_bytes([inp[0], inp[1], inp[2], inp[3]]);
    if len < 4 || len as usize > MAX_REPLY {
        return Err(format!("reply claims {len} bytes"));
    }
    let total = 4 + len as usize;
    Ok((inp.len() >= total).then_some(total))
}

pub struct ProduceOpts {
    pub topic: String,
    pub partitions: i32,
    pub record_bytes: usize,
    pub batch_records: u32,
    pub acks: i16,
    pub compression: Compression,
}

/// Random printable bytes the records' values are cut from (so codecs see realistic,
/// not degenerate, input).
fn value_pool(seed: u64, len: usize) -> Bytes {
    let mut rng = SmallRng::seed_from_u64(seed);
    let alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ";
    (0..len)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
        .collect::<Vec<u8>>()
        .into()
}

/// An encoded RecordBatch v2 of `n` records (base offset 0: the broker assigns it).
pub fn encode_batch(
    pool: &Bytes,
    record_bytes: usize,
    n: u32,
    compression: Compression,
) -> anyhow::Result<Bytes> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let span = pool.len().saturating_sub(record_bytes).max(1);
    let records: Vec<Record> = (0..n)
        .map(|i| {
            let at = (i as usize * 7919 * 13) % span;
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // No producer id, so the batch's base sequence must be -1; the encoder keeps
                // records in one batch only while offset - sequence stays the same.
                sequence: (i as i32).wrapping_sub(1),
                timestamp: now,
                key: None,
                value: Some(pool.slice(at..(at + record_bytes).min(pool.len()))),
                headers: Default::default(),
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )?;
    Ok(buf.freeze())
}

pub struct Producer {
    topic: String,
    partitions: Vec<i32>,
    next: usize,
    acks: i16,
    record_bytes: usize,
    batch_records: u32,
    compression: Compression,
    pool: Bytes,
    batches: HashMap<u32, Bytes>,
    correlation: i32,
}

impl Producer {
    /// Connection `conn` of `conns` sends to every partition in turn, starting at its own.
    pub fn new(o: &ProduceOpts, conn: usize) -> Producer {
        let n = o.partitions.max(1);
        let first = (conn as i32) % n;
        Producer {
            topic: o.topic.clone(),
            partitions: (0..n).map(|k| (first + k) % n).collect(),
            next: 0,
            acks: o.acks,
            record_bytes: o.record_bytes,
            batch_records: o.batch_records.max(1),
            compression: o.compression,
            pool: value_pool(conn as u64 + 1, (o.record_bytes * 64).max(1 << 20)),
            batches: HashMap::new(),
            correlation: 0,
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as i16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl Driver for Producer {
    fn request(&mut self, out: &mut Vec<u8>, ops: u32) {
        let batch = match self.batches.get(&ops) {
            Some(b) => b.clone(),
            None => {
                // Encoding in memory cannot fail for these inputs; an empty batch would be
                // answered with an error by the broker and counted, not hidden.
                let b = encode_batch(&self.pool, self.record_bytes, ops, self.compression)
                    .unwrap_or_default();
                self.batches.insert(ops, b.clone());
                b
            }
        };
        let partition = self.partitions[self.next % self.partitions.len()];
        self.next += 1;
        self.correlation = self.correlation.wrapping_add(1);
        let start = out.len();
        out.extend_from_slice(&[0; 4]);
        // Request header v1.
        out.extend_from_slice(&(ApiKey::Produce as i16).to_be_bytes());
        out.extend_from_slice(&PRODUCE_VERSION.to_be_bytes());
        out.extend_from_slice(&self.correlation.to_be_bytes());
        put_str(out, CLIENT_ID);
        // ProduceRequest v7: transactional_id (null), acks, timeout, one topic, one partition.
        out.extend_from_slice(&(-1i16).to_be_bytes());
        out.extend_from_slice(&self.acks.to_be_bytes());
        out.extend_from_slice(&30_000i32.to_be_bytes());
        out.extend_from_slice(&1i32.to_be_bytes());
        put_str(out, &self.topic);
        out.extend_from_slice(&1i32.to_be_bytes());
        out.extend_from_slice(&partition.to_be_bytes());
        out.extend_from_slice(&(batch.len() as i32).to_be_bytes());
        out.extend_from_slice(&batch);
        let len = (out.len() - start - 4) as i32;
        out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    }

    fn reply(&mut self, inp: &[u8]) -> Result<Option<Reply>, String> {
        let Some(total) = framed(inp)? else {
            return Ok(None);
        };
        let mut body = Bytes::copy_from_slice(&inp[4..total]);
        body.advance(4); // response header v0: correlation id
        let r = ProduceResponse::decode(&mut body, PRODUCE_VERSION).map_err(|e| e.to_string())?;
        let failed = r
            .responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .find(|p| p.error_code != 0)
            .map(|p| error_name(p.error_code));
        Ok(Some(Reply {
            len: total,
            failed,
            ..Reply::default()
        }))
    }

    fn max_ops(&self) -> u32 {
        self.batch_records
    }

    fn replies(&self) -> bool {
        self.acks != 0
    }
}

pub struct Consumer {
    topic: TopicName,
    /// (partition, next offset to fetch)
    offsets: Vec<(i32, i64)>,
    max_wait_ms: i32,
    partition_max_bytes: i32,
}

impl Consumer {
    pub fn new(topic: &str, offsets: Vec<(i32, i64)>, partition_max_bytes: i32) -> Consumer {
        Consumer {
            topic: TopicName(StrBytes::from_string(topic.to_string())),
            offsets,
            max_wait_ms: 100,
            partition_max_bytes,
        }
    }
}

/// Records and bytes in whole batches of `records` at or after `from`, and the next offset.
pub fn count_batches(records: &[u8], from: i64) -> (u64, u64, i64) {
    let (mut n, mut bytes, mut next) = (0u64, 0u64, from);
    let mut pos = 0;
    while pos + 61 <= records.len() {
        let b = &records[pos..];
        let base = i64::from_be_bytes(b[0..8].try_into().unwrap_or_default());
        let len = i32::from_be_bytes(b[8..12].try_into().unwrap_or_default());
        let last_delta = i32::from_be_bytes(b[23..27].try_into().unwrap_or_default());
        let count = i32::from_be_bytes(b[57..61].try_into().unwrap_or_default());
        let size = 12 + len.max(0) as usize;
        if len < 49 || pos + size > records.len() {
            break;
        }
        let last = base + last_delta as i64;
        if last >= next {
            n += count.max(0) as u64;
            bytes += size as u64;
            next = last + 1;
        }
        pos += size;
    }
    (n, bytes, next)
}

impl Driver for Consumer {
    fn request(&mut self, out: &mut Vec<u8>, _ops: u32) {
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(self.max_wait_ms)
            .with_min_bytes(1)
            .with_max_bytes(64 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(self.topic.clone())
                .with_partitions(
                    self.offsets
                        .iter()
                        .map(|&(p, o)| {
                            FetchPartition::default()
                                .with_partition(p)
                                .with_fetch_offset(o)
                                .with_current_leader_epoch(-1)
                                .with_log_start_offset(-1)
                                .with_partition_max_bytes(self.partition_max_bytes)
                        })
                        .collect(),
                )]);
        let mut buf = BytesMut::new();
        let header = RequestHeader::default()
            .with_request_api_key(ApiKey::Fetch as i16)
            .with_request_api_version(FETCH_VERSION)
            .with_correlation_id(1)
            .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
        // Encoding plain structs into memory does not fail at these versions.
        let _ = header.encode(
            &mut buf,
            ApiKey::Fetch.request_header_version(FETCH_VERSION),
        );
        let _ = req.encode(&mut buf, FETCH_VERSION);
        out.extend_from_slice(&(buf.len() as i32).to_be_bytes());
        out.extend_from_slice(&buf);
    }

    fn reply(&mut self, inp: &[u8]) -> Result<Option<Reply>, String> {
        let Some(total) = framed(inp)? else {
            return Ok(None);
        };
        let mut body = Bytes::copy_from_slice(&inp[4..total]);
        body.advance(4);
        let r = FetchResponse::decode(&mut body, FETCH_VERSION).map_err(|e| e.to_string())?;
        let mut reply = Reply {
            len: total,
            ..Reply::default()
        };
        if r.error_code != 0 {
            reply.failed = Some(error_name(r.error_code));
        }
        for t in r.responses {
            for p in t.partitions {
                if p.error_code != 0 {
                    reply.failed.get_or_insert(error_name(p.error_code));
                    continue;
                }
                let Some(slot) = self.offsets.iter_mut().find(|o| o.0 == p.partition_index) else {
                    continue;
                };
                if let Some(recs) = &p.records {
                    let (n, bytes, next) = count_batches(recs, slot.1);
                    reply.records += n;
                    reply.bytes += bytes;
                    slot.1 = next;
                }
            }
        }
        Ok(Some(reply))
    }

    fn max_in_flight(&self) -> usize {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ProduceRequest, RequestHeader};
    use kafka_protocol::records::RecordBatchDecoder;

    #[test]
    fn hand_written_produce_frame_decodes_as_kafka_would() {
        let o = ProduceOpts {
            topic: "t".into(),
            partitions: 3,
            record_bytes: 100,
            batch_records: 10,
            acks: -1,
            compression: Compression::Lz4,
        };
        let mut p = Producer::new(&o, 1);
        let mut out = Vec::new();
        p.request(&mut out, 7);
        let len = i32::from_be_bytes(out[0..4].try_into().unwrap()) as usize;
        assert_eq!(len + 4, out.len());
        let mut body = Bytes::copy_from_slice(&out[4..]);
        let h = RequestHeader::decode(&mut body, 1).unwrap();
        assert_eq!((h.request_api_key, h.request_api_version), (0, 7));
        let r = ProduceRequest::decode(&mut body, 7).unwrap();
        assert_eq!(r.acks, -1);
        let part = &r.topic_data[0].partition_data[0];
        assert_eq!(part.index, 1, "connection 1 starts at partition 1");
        let mut records = part.records.clone().unwrap();
        let set = RecordBatchDecoder::decode(&mut records).unwrap();
        assert_eq!(set.records.len(), 7);
        assert!(set
            .records
            .iter()
            .all(|r| r.value.as_ref().unwrap().len() == 100));
        let (n, bytes, next) = count_batches(part.records.as_ref().unwrap(), 0);
        assert_eq!((n, next), (7, 7));
        assert_eq!(bytes as usize, part.records.as_ref().unwrap().len());
        let raw = part.records.as_ref().unwrap();
        assert_eq!(
            i32::from_be_bytes(raw[53..57].try_into().unwrap()),
            -1,
            "base sequence"
        );
    }

    #[test]
    fn torn_and_hostile_replies_are_waited_for_or_refused() {
        assert_eq!(framed(&[0, 0, 0]), Ok(None));
        assert_eq!(framed(&[0, 0, 0, 8, 1, 2]), Ok(None));
        assert!(framed(&[0x7f, 0xff, 0xff, 0xff]).is_err());
        assert!(framed(&[0xff, 0xff, 0xff, 0xff]).is_err());
        let mut c = Consumer::new("t", vec![(0, 0)], 1 << 20);
        // A body that is not a FetchResponse is an error, not a panic.
        let bad = [0, 0, 0, 6, 0, 0, 0, 1, 0xff, 0xff];
        assert!(c.reply(&bad).is_err());
        // Batches cut short are not counted.
        assert_eq!(count_batches(&[0u8; 40], 0), (0, 0, 0));
    }
}
