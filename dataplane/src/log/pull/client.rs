//! A small blocking Kafka client for partition pulls: Metadata, DescribeConfigs,
//! CreateTopics and Fetch over one plain TCP connection, with the `kafka-protocol` crate's
//! codecs. It runs on a pull's own thread, never on a shard.
//!
//! It speaks PLAINTEXT without SASL: a source whose Kafka port needs authentication or TLS
//! refuses it, and the pull fails with what the source answered.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    CreateTopicsRequest, DescribeConfigsRequest, FetchRequest, MetadataRequest, RequestHeader,
    ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use crate::limits::{PULL_CONNECT_TIMEOUT_MS, PULL_IO_TIMEOUT_MS, PULL_RESPONSE_BYTES_MAX};

/// Kafka's TOPIC_ALREADY_EXISTS and OFFSET_OUT_OF_RANGE.
pub const TOPIC_ALREADY_EXISTS: i16 = 36;
pub const OFFSET_OUT_OF_RANGE: i16 = 1;
/// DescribeConfigs: the TOPIC resource type and the TOPIC_CONFIG source.
const RESOURCE_TOPIC: i8 = 2;
const SOURCE_TOPIC_CONFIG: i8 = 1;

/// Why talking to a Kafka port failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{addr}: cannot resolve the address")]
    Resolve { addr: String },
    #[error("{addr}: cannot connect: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{addr}: {what}: {source}")]
    Io {
        addr: String,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{addr}: answered a {what} that does not decode ({why}); is it a Kafka port without TLS or SASL?")]
    Decode {
        addr: String,
        what: &'static str,
        why: String,
    },
    #[error("{addr}: closed the connection instead of answering a {what}; is it a Kafka port without TLS or SASL?")]
    Closed { addr: String, what: &'static str },
    #[error("{addr}: {what} answered error code {code}{}", message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Kafka {
        addr: String,
        what: &'static str,
        code: i16,
        message: Option<String>,
    },
}

/// A topic as the source describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub partitions: i32,
    /// The configs the topic set (source TOPIC_CONFIG), to create it the same elsewhere.
    pub configs: Vec<(String, String)>,
}

/// One partition's part of a Fetch answer.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub error: i16,
    pub high_watermark: i64,
    pub log_start: i64,
    pub records: Bytes,
}

pub struct Client {
    addr: String,
    stream: TcpStream,
    correlation: i32,
}

impl Client {
    pub fn connect(addr: &str) -> Result<Client, ClientError> {
        let resolved: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|_| ClientError::Resolve {
                addr: addr.to_string(),
            })?
            .collect();
        let mut last = None;
        for a in resolved {
            match TcpStream::connect_timeout(&a, Duration::from_millis(PULL_CONNECT_TIMEOUT_MS)) {
                Ok(stream) => {
                    let io = |source| ClientError::Io {
                        addr: addr.to_string(),
                        what: "setting socket options",
                        source,
                    };
                    stream.set_nodelay(true).map_err(io)?;
                    let t = Some(Duration::from_millis(PULL_IO_TIMEOUT_MS));
                    stream.set_read_timeout(t).map_err(io)?;
                    stream.set_write_timeout(t).map_err(io)?;
                    return Ok(Client {
                        addr: addr.to_string(),
                        stream,
                        correlation: 0,
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(source) => ClientError::Connect {
                addr: addr.to_string(),
                source,
            },
            None => ClientError::Resolve {
                addr: addr.to_string(),
            },
        })
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Send `req` at `version` and read its answer.
    fn call<R: Request>(
        &mut self,
        req: &R,
        version: i16,
        what: &'static str,
    ) -> Result<R::Response, ClientError> {
        self.correlation = self.correlation.wrapping_add(1);
        let decode = |why: String| ClientError::Decode {
            addr: self.addr.clone(),
            what,
            why,
        };
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("pinion-pull")));
        let mut buf = BytesMut::with_capacity(256);
        buf.extend_from_slice(&[0; 4]);
        header
            .encode(&mut buf, R::header_version(version))
            .and_then(|_| req.encode(&mut buf, version))
            .map_err(|e| decode(format!("encoding the request: {e}")))?;
        let size = (buf.len() - 4) as i32;
        buf[0..4].copy_from_slice(&size.to_be_bytes());
        let io = |step, source: std::io::Error| {
            if source.kind() == std::io::ErrorKind::UnexpectedEof {
                ClientError::Closed {
                    addr: self.addr.clone(),
                    what,
                }
            } else {
                ClientError::Io {
                    addr: self.addr.clone(),
                    what: step,
                    source,
                }
            }
        };
        self.stream
            .write_all(&buf)
            .map_err(|e| io("sending a request", e))?;
        let mut len = [0u8; 4];
        self.stream
            .read_exact(&mut len)
            .map_err(|e| io("reading an answer", e))?;
        let len = i32::from_be_bytes(len);
        if len < 4 || len as usize > PULL_RESPONSE_BYTES_MAX {
            return Err(decode(format!("answer size {len}")));
        }
        let mut body = vec![0u8; len as usize];
        self.stream
            .read_exact(&mut body)
            .map_err(|e| io("reading an answer", e))?;
        let mut body = Bytes::from(body);
        let h = ResponseHeader::decode(&mut body, R::Response::header_version(version))
            .map_err(|e| decode(e.to_string()))?;
        if h.correlation_id != self.correlation {
            return Err(decode(format!(
                "correlation id {} where {} was sent",
                h.correlation_id, self.correlation
            )));
        }
        R::Response::decode(&mut body, version).map_err(|e| decode(e.to_string()))
    }

    fn kafka(&self, what: &'static str, code: i16, message: Option<String>) -> ClientError {
        ClientError::Kafka {
            addr: self.addr.clone(),
            what,
            code,
            message,
        }
    }

    /// The topic's partition count (Metadata v4, never creating it) and the configs it set
    /// (DescribeConfigs v1).
    pub fn describe_topic(&mut self, topic: &str) -> Result<TopicInfo, ClientError> {
        let name = TopicName(StrBytes::from_string(topic.to_string()));
        let req = MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(name.clone()))
            ]))
            .with_allow_auto_topic_creation(false);
        let what = "Metadata";
        let md = self.call(&req, 4, what)?;
        let Some(t) = md.topics.iter().find(|t| t.name.as_ref() == Some(&name)) else {
            return Err(self.kafka(what, 3, Some(format!("no topic {topic}"))));
        };
        if t.error_code != 0 {
            return Err(self.kafka(what, t.error_code, Some(format!("topic {topic}"))));
        }
        let partitions = t.partitions.len() as i32;
        let req = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(RESOURCE_TOPIC)
                .with_resource_name(StrBytes::from_string(topic.to_string()))
                .with_configuration_keys(None), // every config
        ]);
        let what = "DescribeConfigs";
        let dc = self.call(&req, 1, what)?;
        let mut configs = Vec::new();
        for r in &dc.results {
            if r.error_code != 0 {
                let m = r.error_message.as_ref().map(|m| m.to_string());
                return Err(self.kafka(what, r.error_code, m));
            }
            for c in &r.configs {
                if c.config_source == SOURCE_TOPIC_CONFIG {
                    if let Some(v) = &c.value {
                        configs.push((c.name.to_string(), v.to_string()));
                    }
                }
            }
        }
        Ok(TopicInfo {
            partitions,
            configs,
        })
    }

    /// Create `topic` as `info` describes it (CreateTopics v2). An existing topic is not an
    /// error: the caller looks at what is there.
    pub fn create_topic(&mut self, topic: &str, info: &TopicInfo) -> Result<(), ClientError> {
        let configs = info
            .configs
            .iter()
            .map(|(k, v)| {
                CreatableTopicConfig::default()
                    .with_name(StrBytes::from_string(k.clone()))
                    .with_value(Some(StrBytes::from_string(v.clone())))
            })
            .collect();
        let req = CreateTopicsRequest::default()
            .with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_num_partitions(info.partitions)
                .with_replication_factor(1)
                .with_configs(configs)])
            .with_timeout_ms(PULL_IO_TIMEOUT_MS as i32);
        let what = "CreateTopics";
        let r = self.call(&req, 2, what)?;
        for t in &r.topics {
            if t.error_code != 0 && t.error_code != TOPIC_ALREADY_EXISTS {
                let m = t.error_message.as_ref().map(|m| m.to_string());
                return Err(self.kafka(what, t.error_code, m));
            }
        }
        Ok(())
    }

    /// Fetch v11 of one partition from `offset`, read_uncommitted (every batch, aborted and
    /// control ones included), waiting up to `wait_ms` for something new.
    pub fn fetch(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: i32,
        wait_ms: i32,
    ) -> Result<Fetched, ClientError> {
        let name = TopicName(StrBytes::from_string(topic.to_string()));
        let req = FetchRequest::default()
            .with_replica_id((-1).into())
            .with_max_wait_ms(wait_ms)
            .with_min_bytes(1)
            .with_max_bytes(max_bytes)
            .with_isolation_level(0)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(name.clone())
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(partition)
                    .with_current_leader_epoch(-1)
                    .with_fetch_offset(offset)
                    .with_last_fetched_epoch(-1)
                    .with_log_start_offset(-1)
                    .with_partition_max_bytes(max_bytes)])]);
        let what = "Fetch";
        let r = self.call(&req, 11, what)?;
        if r.error_code != 0 {
            return Err(self.kafka(what, r.error_code, None));
        }
        let part = r
            .responses
            .into_iter()
            .filter(|t| t.topic == name)
            .flat_map(|t| t.partitions)
            .find(|p| p.partition_index == partition);
        let Some(p) = part else {
            return Err(ClientError::Decode {
                addr: self.addr.clone(),
                what,
                why: format!("no answer for {topic}-{partition}"),
            });
        };
        Ok(Fetched {
            error: p.error_code,
            high_watermark: p.high_watermark,
            log_start: p.log_start_offset,
            records: p.records.unwrap_or_default(),
        })
    }
}
