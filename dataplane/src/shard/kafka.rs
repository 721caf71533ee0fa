//! The Kafka front end of a shard: frames from a Kafka connection are decoded and answered
//! in order through the same reply queue RESP connections use.
//!
//! Served: ApiVersions (with the downgrade answer for unknown versions), Metadata (this node
//! as the only broker and leader of every partition; auto-creates topics), FindCoordinator,
//! CreateTopics, Produce (acks 0, 1, -1), Fetch (long poll up to max_wait_ms; fetch
//! sessions declined) and ListOffsets. Requests that name several partitions are split by
//! owner shard and joined in request order. A frame that
//! cannot be decoded, or a size over `--max-request-bytes`, closes that connection only.

use bytes::Bytes;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreateTopicsRequest, CreateTopicsResponse, FetchRequest, FetchResponse,
    FindCoordinatorResponse, ListOffsetsRequest, ListOffsetsResponse, MetadataResponse,
    ProduceRequest, ProduceResponse, RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::join::{JoinKind, KafkaDone};
use super::Shard;
use crate::log::ops::{LogOp, LogResult};
use crate::log::topics::{self, TopicMeta};
use crate::proto::kafka::{self as wire, ErrorCode, FrameError};

/// The node id pinion reports as the broker (a single-node cluster until the control plane).
pub const NODE_ID: i32 = 0;

impl Shard {
    pub(super) fn process_kafka(&mut self, slot: u32) {
        let max = self.shared.cfg.max_request_bytes;
        let max_inflight = self.shared.cfg.max_inflight_per_conn;
        let Some(c) = self.conns[slot as usize].as_mut() else {
            return;
        };
        let query = std::mem::take(&mut c.query);
        let mut pos = 0;
        while let Some(c) = self.conns[slot as usize].as_mut() {
            if c.closing || pos >= query.len() {
                break;
            }
            if c.pending.len() >= max_inflight {
                self.metrics.counters.inflight_backpressure += 1;
                break;
            }
            match wire::frame_len(&query[pos..], max) {
                Ok(None) => break,
                Ok(Some(n)) => {
                    let payload = Bytes::copy_from_slice(&query[pos + 4..pos + n]);
                    if !self.handle_kafka(slot, payload) {
                        break; // a mesh lane is full: retried later, frame not consumed
                    }
                    pos += n;
                }
                Err(e) => {
                    self.metrics.counters.protocol_errors += 1;
                    tracing::debug!(shard = self.id, error = %e, "bad Kafka frame; closing");
                    self.close_conn(slot, false);
                    break;
                }
            }
        }
        if let Some(c) = self.conns[slot as usize].as_mut() {
            if !c.closing {
                let mut query = query;
                query.drain(..pos);
                c.query = query;
            }
        }
    }

    fn kafka_reply(
        &mut self,
        slot: u32,
        key: ApiKey,
        version: i16,
        correlation_id: i32,
        body: ResponseKind,
    ) {
        match wire::encode_response(key, version, correlation_id, &body) {
            Ok(frame) => self.reply_now(slot, |o| o.buf.extend_from_slice(&frame)),
            Err(e) => {
                tracing::error!(shard = self.id, ?key, version, error = %e, "encoding a Kafka response failed");
                self.close_conn(slot, false);
            }
        }
    }

    /// Answer one request. Returns false when it could not be taken now (a mesh lane is full).
    fn handle_kafka(&mut self, slot: u32, payload: Bytes) -> bool {
        let started = std::time::Instant::now();
        let req = match wire::decode_request(payload.clone()) {
            Ok(r) => r,
            Err(FrameError::Unsupported {
                key: ApiKey::ApiVersions,
                ..
            }) => {
                // A client newer than us: answer in v0 with UNSUPPORTED_VERSION and our
                // versions; the client retries with one we list.
                let cid = wire::peek_header(&payload)
                    .map(|h| h.correlation_id)
                    .unwrap_or(0);
                let body = ResponseKind::ApiVersions(wire::api_versions_response(
                    ErrorCode::UnsupportedVersion,
                ));
                self.kafka_reply(slot, ApiKey::ApiVersions, 0, cid, body);
                return true;
            }
            Err(e) => {
                self.metrics.counters.protocol_errors += 1;
                tracing::debug!(shard = self.id, error = %e, "undecodable Kafka request; closing");
                self.close_conn(slot, false);
                return true;
            }
        };
        let (key, version, cid) = (req.key, req.version, req.header.correlation_id);
        let taken = match req.body {
            RequestKind::ApiVersions(_) => {
                let body = ResponseKind::ApiVersions(wire::api_versions_response(ErrorCode::None));
                self.kafka_reply(slot, key, version, cid, body);
                true
            }
            RequestKind::Metadata(m) => {
                let names: Option<Vec<String>> = m.topics.map(|ts| {
                    ts.into_iter()
                        .filter_map(|t| t.name.map(|n| n.0.to_string()))
                        .collect()
                });
                let auto = self.shared.cfg.auto_create_topics
                    && (version < 4 || m.allow_auto_topic_creation);
                self.metadata(slot, version, cid, names, auto, started)
            }
            RequestKind::FindCoordinator(_) => {
                let (host, port) = self.shared.cfg.advertised(self.shared.kafka_port);
                let r = FindCoordinatorResponse::default()
                    .with_node_id(BrokerId(NODE_ID))
                    .with_host(StrBytes::from_string(host))
                    .with_port(port as i32);
                self.kafka_reply(slot, key, version, cid, ResponseKind::FindCoordinator(r));
                true
            }
            RequestKind::InitProducerId(_) => {
                // Unique per node and across restarts: the clock in ms, times the shard count,
                // plus this shard, plus a per-shard counter in the low bits.
                self.next_producer = self.next_producer.wrapping_add(1);
                let id = ((self.now_ms as i64) << 12 | (self.next_producer & 0xff) as i64)
                    * self.shared.nshards as i64
                    + self.id as i64;
                let r = kafka_protocol::messages::InitProducerIdResponse::default()
                    .with_producer_id(kafka_protocol::messages::ProducerId(id & i64::MAX))
                    .with_producer_epoch(0);
                self.kafka_reply(slot, key, version, cid, ResponseKind::InitProducerId(r));
                true
            }
            RequestKind::CreateTopics(c) => self.create_topics(slot, version, cid, c, started),
            RequestKind::DeleteTopics(d) => self.delete_topics(slot, version, cid, d, started),
            RequestKind::DescribeConfigs(d) => {
                let body = ResponseKind::DescribeConfigs(self.describe_configs(d));
                self.kafka_reply(slot, key, version, cid, body);
                true
            }
            RequestKind::Produce(p) => self.produce_request(slot, version, cid, p, started),
            RequestKind::Fetch(f) => self.fetch_request(slot, version, cid, f, started),
            RequestKind::ListOffsets(l) => self.list_offsets(slot, version, cid, l, started),
            other => {
                tracing::debug!(shard = self.id, ?key, "Kafka API not served yet; closing");
                let _ = other;
                self.close_conn(slot, false);
                true
            }
        };
        if taken {
            self.metrics.counters.commands += 1;
        }
        taken
    }

    /// Build a topic's metadata from a CreateTopics entry or our defaults; errors as Kafka's.
    fn topic_meta(
        &self,
        name: &str,
        partitions: i32,
        replication: i16,
        configs: &[(String, Option<String>)],
    ) -> Result<TopicMeta, ErrorCode> {
        if !topics::valid_name(name) {
            return Err(ErrorCode::InvalidTopicException);
        }
        let partitions = if partitions == -1 {
            self.shared.cfg.default_partitions
        } else {
            partitions
        };
        if !(1..=100_000).contains(&partitions) {
            return Err(ErrorCode::InvalidPartitions);
        }
        if replication != -1 && replication != 1 {
            return Err(ErrorCode::InvalidReplicationFactor);
        }
        let mut config = self.shared.cfg.topic_defaults();
        for (k, v) in configs {
            let Some(v) = v else { continue };
            let n: i64 = v.parse().map_err(|_| ErrorCode::InvalidRequest)?;
            let opt = |n: i64| (n >= 0).then_some(n as u64);
            match k.as_str() {
                "retention.ms" => config.retention_ms = opt(n),
                "retention.bytes" => config.retention_bytes = opt(n),
                "segment.bytes" if n > 0 => config.segment_bytes = n as u64,
                "segment.ms" if n > 0 => config.segment_ms = n as u64,
                _ => {} // other topic configs are accepted and have no effect here
            }
        }
        Ok(TopicMeta {
            name: name.to_string(),
            partitions,
            config,
        })
    }

    /// Per topic: persist it here, and have every shard add it (owners create partitions);
    /// 1 + shards parts each, in that order.
    fn create_parts(&self, metas: &[TopicMeta]) -> Vec<(usize, LogOp)> {
        let mut parts = Vec::new();
        for m in metas {
            parts.push((self.id, LogOp::PersistTopic(m.clone())));
            for s in 0..self.shared.nshards {
                parts.push((s, LogOp::CreateTopic(m.clone())));
            }
        }
        parts
    }

    fn create_topics(
        &mut self,
        slot: u32,
        version: i16,
        cid: i32,
        c: CreateTopicsRequest,
        started: std::time::Instant,
    ) -> bool {
        let n = self.shared.nshards;
        // For each requested topic: Ok(meta) to create, or the error to report.
        let mut plan: Vec<(TopicName, Result<TopicMeta, ErrorCode>)> = Vec::new();
        for t in &c.topics {
            let name = t.name.0.to_string();
            let configs: Vec<(String, Option<String>)> = t
                .configs
                .iter()
                .map(|cf| {
                    (
                        cf.name.to_string(),
                        cf.value.as_ref().map(|v| v.to_string()),
                    )
                })
                .collect();
            let r = if self.logs.topics.contains_key(&name)
                || plan.iter().any(|(n, _)| n.0.as_str() == name)
            {
                Err(ErrorCode::TopicAlreadyExists)
            } else {
                self.topic_meta(&name, t.num_partitions, t.replication_factor, &configs)
            };
            plan.push((t.name.clone(), r));
        }
        let to_create: Vec<TopicMeta> = if c.validate_only {
            Vec::new()
        } else {
            plan.iter()
                .filter_map(|(_, r)| r.as_ref().ok().cloned())
                .collect()
        };
        let parts = self.create_parts(&to_create);
        let finish = move |results: &[LogResult]| {
            let mut k = 0;
            let topics = plan
                .iter()
                .map(|(name, r)| {
                    let (error, partitions) = match r {
                        Err(e) => (e.code(), -1),
                        Ok(m) if c.validate_only => (0, m.partitions),
                        Ok(m) => {
                            let errs = &results[k..k + n + 1];
                            k += n + 1;
                            (
                                errs.iter()
                                    .map(|r| r.error())
                                    .find(|&e| e != 0)
                                    .unwrap_or(0),
                                m.partitions,
                            )
                        }
                    };
                    CreatableTopicResult::default()
                        .with_name(name.clone())
                        .with_error_code(error)
                        .with_num_partitions(partitions)
                        .with_replication_factor(1)
                })
                .collect();
            let body =
                ResponseKind::CreateTopics(CreateTopicsResponse::default().with_topics(topics));
            encode_or_empty(ApiKey::CreateTopics, version, cid, &body)
        };
        self.launch_kafka(slot, parts, finish, Vec::new(), started)
    }

    fn delete_topics(
        &mut self,
        slot: u32,
        version: i16,
        cid: i32,
        d: kafka_protocol::messages::DeleteTopicsRequest,
        started: std::time::Instant,
    ) -> bool {
        let n = self.shared.nshards;
        let names: Vec<TopicName> = if version >= 6 {
            d.topics.into_iter().filter_map(|t| t.name).collect()
        } else {
            d.topic_names
        };
        // Two rounds: each topic.meta goes first, so a crash mid-delete does not resurrect
        // the topic; then every shard drops it and deletes the partitions it owns.
        let mut first = Vec::new();
        let mut parts = Vec::new();
        let mut plan = Vec::new();
        for name in names {
            let known = self.logs.topics.contains_key(name.0.as_str());
            if known {
                first.push((self.id, LogOp::RemoveTopicMeta(name.0.to_string())));
                for s in 0..n {
                    parts.push((s, LogOp::DeleteTopic(name.0.to_string())));
                }
            }
            plan.push((name, known));
        }
        let finish = move |results: &[LogResult]| {
            let mut k = 0;
            let responses = plan
                .iter()
                .map(|(name, known)| {
                    let error = if *known {
                        let e = results[k..k + n]
                            .iter()
                            .map(|r| r.error())
                            .find(|&e| e != 0)
                            .unwrap_or(0);
                        k += n;
                        e
                    } else {
                        ErrorCode::UnknownTopicOrPartition.code()
                    };
                    kafka_protocol::messages::delete_topics_response::DeletableTopicResult::default(
                    )
                    .with_name(Some(name.clone()))
                    .with_error_code(error)
                })
                .collect();
            let body = ResponseKind::DeleteTopics(
                kafka_protocol::messages::DeleteTopicsResponse::default().with_responses(responses),
            );
            encode_or_empty(ApiKey::DeleteTopics, version, cid, &body)
        };
        if first.is_empty() {
            return self.launch_kafka(slot, parts, finish, Vec::new(), started);
        }
        let kind = JoinKind::KafkaFirst {
            stage2: parts,
            finish: Box::new(finish),
        };
        self.launch_log(slot, first, kind, started)
    }

    /// Topic configs from this shard's copy of the topic table; the broker has none to show.
    fn describe_configs(
        &self,
        d: kafka_protocol::messages::DescribeConfigsRequest,
    ) -> kafka_protocol::messages::DescribeConfigsResponse {
        use kafka_protocol::messages::describe_configs_response::{
            DescribeConfigsResourceResult, DescribeConfigsResult,
        };
        const TOPIC: i8 = 2;
        let results = d
            .resources
            .into_iter()
            .map(|r| {
                let base = DescribeConfigsResult::default()
                    .with_resource_type(r.resource_type)
                    .with_resource_name(r.resource_name.clone());
                if r.resource_type != TOPIC {
                    return base;
                }
                let Some(m) = self.logs.topics.get(r.resource_name.as_str()) else {
                    return base.with_error_code(ErrorCode::UnknownTopicOrPartition.code());
                };
                let opt = |v: Option<u64>| v.map_or("-1".to_string(), |x| x.to_string());
                let all = [
                    ("retention.ms", opt(m.config.retention_ms)),
                    ("retention.bytes", opt(m.config.retention_bytes)),
                    ("segment.bytes", m.config.segment_bytes.to_string()),
                    ("segment.ms", m.config.segment_ms.to_string()),
                    ("cleanup.policy", "delete".to_string()),
                    (
                        "max.message.bytes",
                        self.shared.cfg.max_message_bytes.to_string(),
                    ),
                ];
                let wanted = |name: &str| {
                    r.configuration_keys
                        .as_ref()
                        .is_none_or(|ks| ks.iter().any(|k| k.as_str() == name))
                };
                base.with_configs(
                    all.into_iter()
                        .filter(|(k, _)| wanted(k))
                        .map(|(k, v)| {
                            DescribeConfigsResourceResult::default()
                                .with_name(StrBytes::from_static_str(k))
                                .with_value(Some(StrBytes::from_string(v)))
                                .with_config_source(1)
                        })
                        .collect(),
                )
            })
            .collect();
        kafka_protocol::messages::DescribeConfigsResponse::default().with_results(results)
    }

    /// Start a Kafka request whose answer `finish` builds from its parts' log results.
    fn launch_kafka(
        &mut self,
        slot: u32,
        parts: Vec<(usize, LogOp)>,
        finish: impl Fn(&[LogResult]) -> KafkaDone + Send + 'static,
        again: Vec<(usize, LogOp)>,
        started: std::time::Instant,
    ) -> bool {
        self.launch_log(
            slot,
            parts,
            JoinKind::Kafka {
                finish: Box::new(finish),
                again,
            },
            started,
        )
    }

    /// Split a request's partitions by owner shard, one log part each, in request order;
    /// also returns the request's layout (topics and their partitions) to answer in.
    fn split_partitions<T>(
        &self,
        topics: Vec<(TopicName, Vec<T>)>,
        op: impl Fn(&str, T) -> (i32, LogOp),
    ) -> (Vec<(usize, LogOp)>, Layout) {
        let mut parts = Vec::new();
        let mut layout = Vec::new();
        for (name, partitions) in topics {
            let mut idx = Vec::new();
            for p in partitions {
                let (partition, op) = op(name.0.as_str(), p);
                parts.push((
                    self.owner
                        .shard(topics::partition_slot(name.0.as_str(), partition)),
                    op,
                ));
                idx.push(partition);
            }
            layout.push((name, idx));
        }
        (parts, layout)
    }

    fn produce_request(
        &mut self,
        slot: u32,
        version: i16,
        cid: i32,
        p: ProduceRequest,
        started: std::time::Instant,
    ) -> bool {
        let acks = p.acks;
        let topics = p
            .topic_data
            .into_iter()
            .map(|t| (t.name, t.partition_data))
            .collect();
        let (parts, layout) = self.split_partitions(topics, |name, pd| {
            let records = pd.records.unwrap_or_default();
            (
                pd.index,
                LogOp::Produce {
                    topic: name.to_string(),
                    partition: pd.index,
                    records,
                },
            )
        });
        let finish = move |results: &[LogResult]| {
            if acks == 0 {
                return KafkaDone::Reply(Vec::new()); // acks=0: Kafka sends no response
            }
            let responses = by_layout(&layout, results, |index, r| {
                let (error, base, start) = match r {
                    LogResult::Produced {
                        error,
                        base_offset,
                        log_start,
                    } => (*error, *base_offset, *log_start),
                    other => (other.error(), -1, -1),
                };
                PartitionProduceResponse::default()
                    .with_index(index)
                    .with_error_code(error)
                    .with_base_offset(base)
                    .with_log_append_time_ms(-1)
                    .with_log_start_offset(start)
            })
            .map(|(name, ps)| {
                TopicProduceResponse::default()
                    .with_name(name)
                    .with_partition_responses(ps)
            })
            .collect();
            let body = ResponseKind::Produce(ProduceResponse::default().with_responses(responses));
            encode_or_empty(ApiKey::Produce, version, cid, &body)
        };
        self.launch_kafka(slot, parts, finish, Vec::new(), started)
    }

    fn fetch_request(
        &mut self,
        slot: u32,
        version: i16,
        cid: i32,
        f: FetchRequest,
        started: std::time::Instant,
    ) -> bool {
        let deadline =
            started + std::time::Duration::from_millis(f.max_wait_ms.clamp(0, 60_000) as u64);
        let min_bytes = f.min_bytes.max(1) as usize;
        let topics = f
            .topics
            .into_iter()
            .map(|t| (t.topic, t.partitions))
            .collect();
        let (parts, layout) = self.split_partitions(topics, |name, p| {
            let op = LogOp::Fetch {
                topic: name.to_string(),
                partition: p.partition,
                offset: p.fetch_offset,
                max_bytes: p.partition_max_bytes,
            };
            (p.partition, op)
        });
        let finish = move |results: &[LogResult]| {
            let bytes: usize = results
                .iter()
                .map(|r| match r {
                    LogResult::Fetched {
                        records: Some(b), ..
                    } => b.len(),
                    _ => 0,
                })
                .sum();
            let errors = results.iter().any(|r| r.error() != 0);
            if bytes < min_bytes && !errors && std::time::Instant::now() < deadline {
                return KafkaDone::Wait;
            }
            let responses = by_layout(&layout, results, |index, r| {
                let d = PartitionData::default()
                    .with_partition_index(index)
                    .with_preferred_read_replica(BrokerId(-1));
                match r {
                    LogResult::Fetched {
                        error,
                        high_watermark,
                        log_start,
                        records,
                    } => d
                        .with_error_code(*error)
                        .with_high_watermark(*high_watermark)
                        .with_last_stable_offset(*high_watermark)
                        .with_log_start_offset(*log_start)
                        .with_aborted_transactions(Some(Vec::new()))
                        .with_records(Some(records.clone().unwrap_or_default())),
                    other => d.with_error_code(other.error()).with_high_watermark(-1),
                }
            })
            .map(|(name, ps)| {
                FetchableTopicResponse::default()
                    .with_topic(name)
                    .with_partitions(ps)
            })
            .collect();
            let body = ResponseKind::Fetch(FetchResponse::default().with_responses(responses));
            encode_or_empty(ApiKey::Fetch, version, cid, &body)
        };
        let again = parts.clone();
        self.launch_kafka(slot, parts, finish, again, started)
    }

    fn list_offsets(
        &mut self,
        slot: u32,
        version: i16,
        cid: i32,
        l: ListOffsetsRequest,
        started: std::time::Instant,
    ) -> bool {
        let topics = l
            .topics
            .into_iter()
            .map(|t| (t.name, t.partitions))
            .collect();
        let (parts, layout) = self.split_partitions(topics, |name, p| {
            let op = LogOp::ListOffsets {
                topic: name.to_string(),
                partition: p.partition_index,
                timestamp: p.timestamp,
            };
            (p.partition_index, op)
        });
        let finish = move |results: &[LogResult]| {
            let topics = by_layout(&layout, results, |index, r| {
                let (error, offset, timestamp) = match r {
                    LogResult::Offset {
                        error,
                        offset,
                        timestamp,
                    } => (*error, *offset, *timestamp),
                    other => (other.error(), -1, -1),
                };
                ListOffsetsPartitionResponse::default()
                    .with_partition_index(index)
                    .with_error_code(error)
                    .with_offset(offset)
                    .with_timestamp(timestamp)
                    .with_leader_epoch(-1)
            })
            .map(|(name, ps)| {
                ListOffsetsTopicResponse::default()
                    .with_name(name)
                    .with_partitions(ps)
            })
            .collect();
            let body =
                ResponseKind::ListOffsets(ListOffsetsResponse::default().with_topics(topics));
            encode_or_empty(ApiKey::ListOffsets, version, cid, &body)
        };
        self.launch_kafka(slot, parts, finish, Vec::new(), started)
    }

    /// Metadata for `topics` (None: every topic). Unknown topics are created when `auto`
    /// allows (and their names are valid); otherwise listed with UNKNOWN_TOPIC_OR_PARTITION.
    fn metadata(
        &mut self,
        slot: u32,
        version: i16,
        cid: i32,
        names: Option<Vec<String>>,
        auto: bool,
        started: std::time::Instant,
    ) -> bool {
        let (host, port) = self.shared.cfg.advertised(self.shared.kafka_port);
        let names: Vec<String> =
            names.unwrap_or_else(|| self.logs.topics.keys().cloned().collect());
        let mut create = Vec::new();
        let mut listed: Vec<(String, Result<i32, ErrorCode>)> = Vec::new();
        for n in names {
            let r = match self.logs.topics.get(&n) {
                Some(m) => Ok(m.partitions),
                None if auto && !create.iter().any(|m: &TopicMeta| m.name == n) => {
                    match self.topic_meta(&n, -1, -1, &[]) {
                        Ok(m) => {
                            let p = m.partitions;
                            create.push(m);
                            Ok(p)
                        }
                        Err(e) => Err(e),
                    }
                }
                None => Err(ErrorCode::UnknownTopicOrPartition),
            };
            listed.push((n, r));
        }
        let parts = self.create_parts(&create);
        let finish = move |_: &[LogResult]| {
            let broker = MetadataResponseBroker::default()
                .with_node_id(BrokerId(NODE_ID))
                .with_host(StrBytes::from_string(host.clone()))
                .with_port(port as i32);
            let topics = listed
                .iter()
                .map(|(n, r)| {
                    let t = MetadataResponseTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string(n.clone()))));
                    match r {
                        Err(e) => t.with_error_code(e.code()),
                        Ok(count) => t.with_partitions(
                            (0..*count)
                                .map(|p| {
                                    MetadataResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_leader_id(BrokerId(NODE_ID))
                                        .with_replica_nodes(vec![BrokerId(NODE_ID)])
                                        .with_isr_nodes(vec![BrokerId(NODE_ID)])
                                })
                                .collect(),
                        ),
                    }
                })
                .collect();
            let body = ResponseKind::Metadata(
                MetadataResponse::default()
                    .with_brokers(vec![broker])
                    .with_cluster_id(Some(StrBytes::from_static_str("pinion")))
                    .with_controller_id(BrokerId(NODE_ID))
                    .with_topics(topics),
            );
            encode_or_empty(ApiKey::Metadata, version, cid, &body)
        };
        self.launch_kafka(slot, parts, finish, Vec::new(), started)
    }
}

/// A request's topics and their partitions, in request order.
type Layout = Vec<(TopicName, Vec<i32>)>;

/// Pair each partition of `layout` with its result (results are in the same order) and
/// build its answer with `f`; yields (topic, answers) per topic.
fn by_layout<'a, R>(
    layout: &'a Layout,
    results: &'a [LogResult],
    mut f: impl FnMut(i32, &LogResult) -> R + 'a,
) -> impl Iterator<Item = (TopicName, Vec<R>)> + 'a {
    let mut k = 0;
    layout.iter().map(move |(name, idx)| {
        let answers = idx
            .iter()
            .map(|&index| {
                let r = f(index, &results[k]);
                k += 1;
                r
            })
            .collect();
        (name.clone(), answers)
    })
}

/// Encode a response; an encoding failure (a bug) is logged and answered with nothing.
fn encode_or_empty(key: ApiKey, version: i16, cid: i32, body: &ResponseKind) -> KafkaDone {
    match wire::encode_response(key, version, cid, body) {
        Ok(f) => KafkaDone::Reply(f),
        Err(e) => {
            tracing::error!(?key, version, error = %e, "encoding a Kafka response failed");
            KafkaDone::Reply(Vec::new())
        }
    }
}
