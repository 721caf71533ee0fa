//! Kafka wire protocol framing on top of the `kafka-protocol` crate's codecs.
//!
//! A request is `[size: i32][header][body]`; the header's version follows from the API key
//! and version (flexible versions carry tagged fields). This module finds frames, decodes
//! headers and bodies for the APIs and versions pinion serves ([`SUPPORTED`]), encodes
//! responses, and maps pinion's domain errors to Kafka error codes in one function
//! ([`ErrorCode::of`]). Pure over bytes; the shard's Kafka front end drives it.
//!
//! No request reaches the crate's decoder before [`schema::check`] has checked each of its
//! lengths against the bytes that follow: the decoder sizes arrays from the wire before
//! reading them, so an unchecked frame could make it ask for any amount of memory.

pub mod schema;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};

/// The APIs pinion serves and the versions it advertises in ApiVersions. Versions are those
/// kafka-python 3.x, librdkafka 2.x and kafka-protocol all speak; Fetch and Produce stop
/// before the versions that replace topic names with topic ids.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 9),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::DescribeConfigs, 1, 4),
    // Consumer groups (`kafka/groups/`), the versions Kafka 3.x serves for the classic
    // protocol (OffsetCommit and OffsetFetch from the lowest the codec still has).
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 8),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    // Admin (`kafka/handlers/`: create_partitions, alter_configs, incremental_alter_configs,
    // delete_records): every version the schema tables check.
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DeleteRecords, 0, 2),
    // Transactions (`kafka/txn/`): the versions before KIP-890's batched
    // AddPartitionsToTxn (v4, broker to broker).
    (ApiKey::AddPartitionsToTxn, 0, 3),
    (ApiKey::AddOffsetsToTxn, 0, 3),
    (ApiKey::EndTxn, 0, 3),
    (ApiKey::TxnOffsetCommit, 0, 3),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 0),
    // SASL (issue 13, f-sec): `kafka/handlers/sasl_*.rs`.
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
];

pub fn supported(key: ApiKey, version: i16) -> bool {
    SUPPORTED
        .iter()
        .any(|&(k, lo, hi)| k == key && (lo..=hi).contains(&version))
}

/// Kafka's error codes that pinion answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i16)]
pub enum ErrorCode {
    None = 0,
    OffsetOutOfRange = 1,
    CorruptMessage = 2,
    UnknownTopicOrPartition = 3,
    MessageTooLarge = 10,
    NotCoordinator = 16,
    InvalidTopicException = 17,
    RecordListTooLarge = 18,
    TopicAlreadyExists = 36,
    InvalidPartitions = 37,
    InvalidReplicationFactor = 38,
    UnsupportedVersion = 35,
    InvalidRequest = 42,
    OutOfOrderSequenceNumber = 45,
    DuplicateSequenceNumber = 46,
    InvalidProducerEpoch = 47,
    /// Transactions: a transactional batch for a partition its transaction did not add.
    InvalidTxnState = 48,
    KafkaStorageError = 56,
    UnknownProducerId = 59,
    InvalidRecord = 87,
}

impl ErrorCode {
    pub fn code(self) -> i16 {
        self as i16
    }

    /// The one place a storage error becomes a Kafka error code.
    pub fn of(e: &crate::log::batch::BatchError) -> ErrorCode {
        use crate::log::batch::BatchError as B;
        match e {
            B::Crc { .. } | B::Short | B::Length(_) | B::Truncated { .. } => {
                ErrorCode::CorruptMessage
            }
            B::Magic(_) => ErrorCode::UnsupportedVersion,
            B::Count { .. } => ErrorCode::InvalidRecord,
            B::Records(crate::log::records::RecordsError::Invalid { .. }) => {
                ErrorCode::InvalidRecord
            }
            B::Records(crate::log::records::RecordsError::Inflate(_)) => ErrorCode::CorruptMessage,
        }
    }
}

/// A frame that cannot be served: the connection is closed (Kafka has no error reply for an
/// unparseable request).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("request size {0} is negative")]
    NegativeSize(i32),
    #[error("request of {size} bytes exceeds --max-request-bytes ({max})")]
    TooLarge { size: usize, max: usize },
    #[error("request too short for a header")]
    Short,
    #[error("unknown API key {0}")]
    UnknownApi(i16),
    #[error("API {key:?} version {version} is not supported")]
    Unsupported { key: ApiKey, version: i16 },
    #[error("malformed {key:?} v{version} request: {why}")]
    Malformed {
        key: ApiKey,
        version: i16,
        why: String,
    },
    #[error("{key:?} v{version} request refused before decoding: {why}")]
    Length {
        key: ApiKey,
        version: i16,
        why: schema::LengthError,
    },
}

/// Size of the whole frame at the front of `buf` (length prefix included) once complete;
/// `Ok(None)` while incomplete.
pub fn frame_len(buf: &[u8], max_request_bytes: usize) -> Result<Option<usize>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if size < 0 {
        return Err(FrameError::NegativeSize(size));
    }
    let size = size as usize;
    if size > max_request_bytes {
        return Err(FrameError::TooLarge {
            size,
            max: max_request_bytes,
        });
    }
    Ok((buf.len() >= 4 + size).then_some(4 + size))
}

/// A decoded request.
#[derive(Debug)]
pub struct Request {
    pub key: ApiKey,
    pub version: i16,
    pub header: RequestHeader,
    pub body: RequestKind,
}

/// The parts of a header needed to answer even when the body cannot be served (an
/// ApiVersions request of a version we do not know must still get an answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderPeek {
    pub key: i16,
    pub version: i16,
    pub correlation_id: i32,
}

/// Read api key, version and correlation id (bytes 0..8 of every header version).
pub fn peek_header(payload: &[u8]) -> Result<HeaderPeek, FrameError> {
    if payload.len() < 8 {
        return Err(FrameError::Short);
    }
    Ok(HeaderPeek {
        key: i16::from_be_bytes([payload[0], payload[1]]),
        version: i16::from_be_bytes([payload[2], payload[3]]),
        correlation_id: i32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]),
    })
}

/// Decode a request payload (the frame without its size prefix).
pub fn decode_request(payload: Bytes) -> Result<Request, FrameError> {
    let peek = peek_header(&payload)?;
    let key = ApiKey::try_from(peek.key).map_err(|_| FrameError::UnknownApi(peek.key))?;
    if !supported(key, peek.version) {
        return Err(FrameError::Unsupported {
            key,
            version: peek.version,
        });
    }
    // Before the crate's decoder sizes anything from the wire (see `schema`).
    schema::check(key, peek.version, &payload).map_err(|why| FrameError::Length {
        key,
        version: peek.version,
        why,
    })?;
    let malformed = |e: anyhow::Error| FrameError::Malformed {
        key,
        version: peek.version,
        why: e.to_string(),
    };
    let mut buf = payload;
    let header = RequestHeader::decode(&mut buf, key.request_header_version(peek.version))
        .map_err(malformed)?;
    let body = RequestKind::decode(key, &mut buf, peek.version).map_err(malformed)?;
    if buf.has_remaining() {
        // Kafka's own brokers ignore bytes after a body, and some clients send them
        // (librdkafka 2.16's Metadata v12 carries 3); rejecting them would cut clients off.
        tracing::trace!(
            ?key,
            version = peek.version,
            extra = buf.remaining(),
            "bytes after a Kafka request body"
        );
    }
    Ok(Request {
        key,
        version: peek.version,
        header,
        body,
    })
}

/// Encode a response frame: size prefix, response header (flexible or not, as the API
/// version says), body.
pub fn encode_response(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Result<Vec<u8>, anyhow::Error> {
    let mut buf = BytesMut::with_capacity(64);
    buf.extend_from_slice(&[0; 4]);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    header.encode(&mut buf, key.response_header_version(version))?;
    body.encode(&mut buf, version)?;
    let size = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.to_vec())
}

/// The ApiVersions answer: what [`SUPPORTED`] lists, with `error` set when the client asked
/// for a version we lack (clients then retry with v0, as the protocol prescribes).
pub fn api_versions_response(error: ErrorCode) -> kafka_protocol::messages::ApiVersionsResponse {
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    kafka_protocol::messages::ApiVersionsResponse::default()
        .with_error_code(error.code())
        .with_api_keys(
            SUPPORTED
                .iter()
                .map(|&(k, lo, hi)| {
                    ApiVersion::default()
                        .with_api_key(k as i16)
                        .with_min_version(lo)
                        .with_max_version(hi)
                })
                .collect(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    const KCAT: &[u8] = include_bytes!("golden/kcat-1.7.1-apiversions-v3.bin");
    const CONFLUENT: &[u8] = include_bytes!("golden/confluent-kafka-2.16.1-apiversions.bin");

    #[test]
    fn decodes_apiversions_captured_from_real_clients() {
        for (bytes, software) in [(KCAT, "librdkafka"), (CONFLUENT, "confluent-kafka-python")] {
            let n = frame_len(bytes, 1 << 20).unwrap().unwrap();
            assert_eq!(n, bytes.len());
            let req = decode_request(Bytes::copy_from_slice(&bytes[4..])).unwrap();
            assert_eq!(
                (req.key, req.version, req.header.correlation_id),
                (ApiKey::ApiVersions, 3, 1)
            );
            assert_eq!(req.header.client_id.as_deref(), Some("rdkafka"));
            let RequestKind::ApiVersions(body) = req.body else {
                panic!("not ApiVersions")
            };
            assert_eq!(&*body.client_software_name, software);
        }
    }

    const KCAT_PRODUCE: &[u8] = include_bytes!("golden/kcat-1.7.1-produce.bin");

    #[test]
    fn decodes_a_produce_captured_from_kcat_and_its_batch_validates() {
        let req = decode_request(Bytes::copy_from_slice(&KCAT_PRODUCE[4..])).unwrap();
        assert_eq!((req.key, req.version), (ApiKey::Produce, 7));
        let RequestKind::Produce(p) = req.body else {
            panic!("not Produce")
        };
        assert_eq!(p.acks, -1);
        assert_eq!(p.topic_data.len(), 1);
        assert_eq!(p.topic_data[0].name.0.as_str(), "golden");
        let records = p.topic_data[0].partition_data[0].records.clone().unwrap();
        let h = crate::log::batch::validate(&records).unwrap();
        assert_eq!((h.record_count, h.size), (3, records.len()));
    }

    /// Seeded mutations and truncations of real requests: decoding and batch validation
    /// return errors, never panic (the deterministic stand-in for a fuzz target).
    #[test]
    fn mutated_real_requests_never_panic() {
        let mut seed: u64 = 0x5eed_1234_abcd_0001;
        let mut next = || crate::cache::store::xorshift64(&mut seed);
        for base in [KCAT, CONFLUENT, KCAT_PRODUCE] {
            for _ in 0..5000 {
                let mut b = base[4..].to_vec();
                for _ in 0..(next() % 4 + 1) {
                    let i = (next() as usize) % b.len();
                    b[i] = next() as u8;
                }
                let cut = (next() as usize) % (b.len() + 1);
                if let Ok(Request {
                    body: RequestKind::Produce(p),
                    ..
                }) = decode_request(Bytes::copy_from_slice(&b[..cut]))
                {
                    for t in p.topic_data {
                        for pd in t.partition_data {
                            if let Some(r) = pd.records {
                                let _ = crate::log::batch::validate(&r);
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_prefix_is_incomplete_and_limits_hold() {
        for cut in 0..KCAT.len() {
            assert_eq!(frame_len(&KCAT[..cut], 1 << 20), Ok(None));
        }
        assert_eq!(
            frame_len(&[0xff, 0xff, 0xff, 0xff], 100),
            Err(FrameError::NegativeSize(-1))
        );
        assert_eq!(
            frame_len(&[0, 0, 1, 0], 100),
            Err(FrameError::TooLarge {
                size: 256,
                max: 100
            })
        );
    }

    #[test]
    fn bad_headers_and_bodies_are_errors_not_panics() {
        assert_eq!(
            decode_request(Bytes::from_static(&[0, 18])).unwrap_err(),
            FrameError::Short
        );
        assert_eq!(
            decode_request(Bytes::from_static(&[0x7f, 0, 0, 0, 0, 0, 0, 1])).unwrap_err(),
            FrameError::UnknownApi(0x7f00)
        );
        // ApiVersions v9 does not exist: unsupported (answered with an error by the shard).
        let mut v9 = KCAT[4..].to_vec();
        v9[3] = 9;
        assert!(matches!(
            decode_request(Bytes::from(v9)),
            Err(FrameError::Unsupported { version: 9, .. })
        ));
        // Every truncation and a stream of byte flips of a real request: no panic.
        for cut in 0..KCAT.len() - 4 {
            let _ = decode_request(Bytes::copy_from_slice(&KCAT[4..4 + cut]));
        }
        for i in 4..KCAT.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut b = KCAT[4..].to_vec();
                b[i - 4] ^= flip;
                let _ = decode_request(Bytes::from(b));
            }
        }
    }

    #[test]
    fn apiversions_response_round_trips_with_correct_framing() {
        let body = ResponseKind::ApiVersions(api_versions_response(ErrorCode::None));
        let frame = encode_response(ApiKey::ApiVersions, 3, 42, &body).unwrap();
        let size = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
        assert_eq!(size, frame.len() - 4);
        // ApiVersions responses always use header v0 (no tagged fields): correlation id only.
        assert_eq!(&frame[4..8], &42i32.to_be_bytes());
        let mut rest = Bytes::copy_from_slice(&frame[8..]);
        let decoded = kafka_protocol::messages::ApiVersionsResponse::decode(&mut rest, 3).unwrap();
        assert_eq!(decoded.api_keys.len(), SUPPORTED.len());
        assert!(decoded
            .api_keys
            .iter()
            .any(|k| k.api_key == ApiKey::Produce as i16 && k.max_version == 9));
    }
}
