//! The Kafka front end of a shard: frames from a Kafka connection are decoded and answered
//! in order through the same reply queue RESP connections use.
//!
//! Served now: ApiVersions (with the downgrade answer for unknown versions), Metadata (this
//! node as the only broker and leader of every partition) and FindCoordinator. A frame that
//! cannot be decoded, or a size over `--max-request-bytes`, closes that connection only.

use bytes::Bytes;
use kafka_protocol::messages::metadata_response::{MetadataResponseBroker, MetadataResponseTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FindCoordinatorResponse, MetadataResponse, RequestKind, ResponseKind,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::Shard;
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
                    pos += n;
                    self.handle_kafka(slot, payload);
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

    fn handle_kafka(&mut self, slot: u32, payload: Bytes) {
        let started = std::time::Instant::now();
        self.metrics.counters.commands += 1;
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
                return self.kafka_reply(slot, ApiKey::ApiVersions, 0, cid, body);
            }
            Err(e) => {
                self.metrics.counters.protocol_errors += 1;
                tracing::debug!(shard = self.id, error = %e, "undecodable Kafka request; closing");
                return self.close_conn(slot, false);
            }
        };
        let (key, version, cid) = (req.key, req.version, req.header.correlation_id);
        let body = match req.body {
            RequestKind::ApiVersions(_) => {
                ResponseKind::ApiVersions(wire::api_versions_response(ErrorCode::None))
            }
            RequestKind::Metadata(m) => ResponseKind::Metadata(self.metadata(m.topics.map(|ts| {
                ts.into_iter()
                    .filter_map(|t| t.name.map(|n| n.0.to_string()))
                    .collect()
            }))),
            RequestKind::FindCoordinator(_) => {
                let (host, port) = self.shared.cfg.advertised(self.shared.kafka_port);
                let mut r = FindCoordinatorResponse::default()
                    .with_node_id(BrokerId(NODE_ID))
                    .with_host(StrBytes::from_string(host.clone()))
                    .with_port(port as i32);
                if version >= 4 {
                    r.coordinators = Vec::new();
                    r.error_code = ErrorCode::None.code();
                }
                ResponseKind::FindCoordinator(r)
            }
            other => {
                tracing::debug!(shard = self.id, ?key, "Kafka API not served yet; closing");
                let _ = other;
                return self.close_conn(slot, false);
            }
        };
        self.kafka_reply(slot, key, version, cid, body);
        self.metrics.record(
            crate::proto::resp::command::Family::Server,
            started.elapsed().as_nanos() as u64,
        );
    }

    /// Metadata for `topics` (None: every topic). Topics we do not have are listed with
    /// UNKNOWN_TOPIC_OR_PARTITION, as Kafka does.
    fn metadata(&self, topics: Option<Vec<String>>) -> MetadataResponse {
        let (host, port) = self.shared.cfg.advertised(self.shared.kafka_port);
        let broker = MetadataResponseBroker::default()
            .with_node_id(BrokerId(NODE_ID))
            .with_host(StrBytes::from_string(host))
            .with_port(port as i32);
        let names = topics.unwrap_or_default();
        MetadataResponse::default()
            .with_brokers(vec![broker])
            .with_cluster_id(Some(StrBytes::from_static_str("pinion")))
            .with_controller_id(BrokerId(NODE_ID))
            .with_topics(
                names
                    .into_iter()
                    .map(|n| {
                        MetadataResponseTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(n))))
                            .with_error_code(ErrorCode::UnknownTopicOrPartition.code())
                    })
                    .collect(),
            )
    }
}
