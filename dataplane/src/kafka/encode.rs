//! Encoding a response, and what the client gets when that fails.
//!
//! A response that cannot be encoded is a bug (a field set that the request's version does
//! not have, a null where the version wants a value). The client must still get an answer
//! with an error for its request, never silence: a client that hears nothing reconnects and
//! asks again, forever, without telling anyone. So a failed encoding is logged and answered,
//! in this order, with the first of these that encodes:
//!
//! 1. the same response cut down to what names its entries (topics, partitions, resources,
//!    coordinator keys), each with UNKNOWN_SERVER_ERROR;
//! 2. the API's empty response with UNKNOWN_SERVER_ERROR in its top-level error code, where
//!    it has one;
//! 3. the API's empty response.
//!
//! Only when none encodes (no API pinion serves gets there: `tests` encode 2 and 3 for every
//! served version) is the connection closed, or, inside a flight, which has no way to close
//! it, the reply left empty.

use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::*;
use kafka_protocol::ResponseError;

use crate::proto::kafka as wire;

/// The error every entry of a fallback answer carries.
fn code() -> i16 {
    ResponseError::UnknownServerError.code()
}

/// Encode `body`, or the first fallback that encodes; None when nothing does.
pub fn encode_or_error(
    key: ApiKey,
    version: i16,
    cid: i32,
    body: &ResponseKind,
) -> Option<Vec<u8>> {
    let e = match wire::encode_response(key, version, cid, body) {
        Ok(frame) => return Some(frame),
        Err(e) => e,
    };
    tracing::error!(?key, version, error = %e, "encoding a Kafka response failed; answering with an error");
    let fallbacks = [entries(body), bare(body, true), bare(body, false)];
    for f in fallbacks.into_iter().flatten() {
        if let Ok(frame) = wire::encode_response(key, version, cid, &f) {
            return Some(frame);
        }
    }
    tracing::error!(
        ?key,
        version,
        "no error response for this API and version encodes either"
    );
    None
}

/// Fallback 1: the response's entries by name, each with the error.
fn entries(body: &ResponseKind) -> Option<ResponseKind> {
    let e = code();
    Some(match body {
        ResponseKind::Produce(r) => ResponseKind::Produce(
            ProduceResponse::default().with_responses(
                r.responses
                    .iter()
                    .map(|t| {
                        TopicProduceResponse::default()
                            .with_name(t.name.clone())
                            .with_partition_responses(
                                t.partition_responses
                                    .iter()
                                    .map(|p| {
                                        PartitionProduceResponse::default()
                                            .with_index(p.index)
                                            .with_error_code(e)
                                            .with_base_offset(-1)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        ),
        ResponseKind::Fetch(r) => ResponseKind::Fetch(
            FetchResponse::default().with_responses(
                r.responses
                    .iter()
                    .map(|t| {
                        FetchableTopicResponse::default()
                            .with_topic(t.topic.clone())
                            .with_topic_id(t.topic_id)
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        PartitionData::default()
                                            .with_partition_index(p.partition_index)
                                            .with_error_code(e)
                                            .with_high_watermark(-1)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        ),
        ResponseKind::ListOffsets(r) => ResponseKind::ListOffsets(
            ListOffsetsResponse::default().with_topics(
                r.topics
                    .iter()
                    .map(|t| {
                        ListOffsetsTopicResponse::default()
                            .with_name(t.name.clone())
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        ListOffsetsPartitionResponse::default()
                                            .with_partition_index(p.partition_index)
                                            .with_error_code(e)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        ),
        ResponseKind::Metadata(r) => ResponseKind::Metadata(
            MetadataResponse::default()
                .with_brokers(r.brokers.clone())
                .with_topics(
                    r.topics
                        .iter()
                        .map(|t| {
                            MetadataResponseTopic::default()
                                .with_name(t.name.clone())
                                .with_error_code(e)
                        })
                        .collect(),
                ),
        ),
        ResponseKind::CreateTopics(r) => ResponseKind::CreateTopics(
            CreateTopicsResponse::default().with_topics(
                r.topics
                    .iter()
                    .map(|t| {
                        CreatableTopicResult::default()
                            .with_name(t.name.clone())
                            .with_error_code(e)
                    })
                    .collect(),
            ),
        ),
        ResponseKind::DeleteTopics(r) => ResponseKind::DeleteTopics(
            DeleteTopicsResponse::default().with_responses(
                r.responses
                    .iter()
                    .map(|t| {
                        DeletableTopicResult::default()
                            .with_name(t.name.clone())
                            .with_error_code(e)
                    })
                    .collect(),
            ),
        ),
        ResponseKind::DescribeConfigs(r) => ResponseKind::DescribeConfigs(
            DescribeConfigsResponse::default().with_results(
                r.results
                    .iter()
                    .map(|t| {
                        DescribeConfigsResult::default()
                            .with_resource_type(t.resource_type)
                            .with_resource_name(t.resource_name.clone())
                            .with_error_code(e)
                    })
                    .collect(),
            ),
        ),
        ResponseKind::FindCoordinator(r) if !r.coordinators.is_empty() => {
            ResponseKind::FindCoordinator(
                FindCoordinatorResponse::default().with_coordinators(
                    r.coordinators
                        .iter()
                        .map(|c| {
                            Coordinator::default()
                                .with_key(c.key.clone())
                                .with_node_id(BrokerId(-1))
                                .with_port(-1)
                                .with_error_code(e)
                        })
                        .collect(),
                ),
            )
        }
        _ => return None,
    })
}

/// For each listed API: its empty response, with top-level error code `$code` for the APIs
/// whose response has one, and (when `$plain`) plain for the others; None for an API not
/// listed.
macro_rules! per_api {
    ($body:expr, $code:expr, $plain:expr;
     error: $($e:ident: $et:ty),*;
     plain: $($n:ident: $nt:ty),*) => {
        match $body {
            $(ResponseKind::$e(_) => Some(ResponseKind::$e(<$et>::default().with_error_code($code))),)*
            $(ResponseKind::$n(_) => $plain.then(|| ResponseKind::$n(<$nt>::default())),)*
            _ => None,
        }
    };
}

/// Fallback 2 (`error`) and 3: the API's empty response, with the error at the top where
/// the response has one (fallback 2 is None for the others: 3 covers them).
fn bare(body: &ResponseKind, error: bool) -> Option<ResponseKind> {
    let e = if error { code() } else { 0 };
    per_api!(body, e, !error;
        error: Fetch: FetchResponse, FindCoordinator: FindCoordinatorResponse,
            ApiVersions: ApiVersionsResponse, InitProducerId: InitProducerIdResponse,
            JoinGroup: JoinGroupResponse, SyncGroup: SyncGroupResponse,
            Heartbeat: HeartbeatResponse, LeaveGroup: LeaveGroupResponse,
            OffsetFetch: OffsetFetchResponse, ListGroups: ListGroupsResponse,
            OffsetDelete: OffsetDeleteResponse, AddOffsetsToTxn: AddOffsetsToTxnResponse,
            EndTxn: EndTxnResponse, AddPartitionsToTxn: AddPartitionsToTxnResponse,
            ListTransactions: ListTransactionsResponse,
            DescribeCluster: DescribeClusterResponse,
            SaslHandshake: SaslHandshakeResponse,
            SaslAuthenticate: SaslAuthenticateResponse;
        plain: Produce: ProduceResponse, ListOffsets: ListOffsetsResponse,
            Metadata: MetadataResponse, CreateTopics: CreateTopicsResponse,
            DeleteTopics: DeleteTopicsResponse, DescribeConfigs: DescribeConfigsResponse,
            OffsetCommit: OffsetCommitResponse, DescribeGroups: DescribeGroupsResponse,
            DeleteGroups: DeleteGroupsResponse, TxnOffsetCommit: TxnOffsetCommitResponse,
            CreatePartitions: CreatePartitionsResponse, AlterConfigs: AlterConfigsResponse,
            IncrementalAlterConfigs: IncrementalAlterConfigsResponse,
            DeleteRecords: DeleteRecordsResponse,
            DescribeTransactions: DescribeTransactionsResponse,
            DescribeProducers: DescribeProducersResponse)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kafka_protocol::protocol::{Decodable, StrBytes};

    /// The empty response of a served API.
    fn empty_of(key: ApiKey) -> ResponseKind {
        match key {
            ApiKey::Produce => ResponseKind::Produce(Default::default()),
            ApiKey::Fetch => ResponseKind::Fetch(Default::default()),
            ApiKey::ListOffsets => ResponseKind::ListOffsets(Default::default()),
            ApiKey::Metadata => ResponseKind::Metadata(Default::default()),
            ApiKey::FindCoordinator => ResponseKind::FindCoordinator(Default::default()),
            ApiKey::ApiVersions => ResponseKind::ApiVersions(Default::default()),
            ApiKey::CreateTopics => ResponseKind::CreateTopics(Default::default()),
            ApiKey::DeleteTopics => ResponseKind::DeleteTopics(Default::default()),
            ApiKey::InitProducerId => ResponseKind::InitProducerId(Default::default()),
            ApiKey::DescribeConfigs => ResponseKind::DescribeConfigs(Default::default()),
            ApiKey::OffsetCommit => ResponseKind::OffsetCommit(Default::default()),
            ApiKey::OffsetFetch => ResponseKind::OffsetFetch(Default::default()),
            ApiKey::JoinGroup => ResponseKind::JoinGroup(Default::default()),
            ApiKey::Heartbeat => ResponseKind::Heartbeat(Default::default()),
            ApiKey::LeaveGroup => ResponseKind::LeaveGroup(Default::default()),
            ApiKey::SyncGroup => ResponseKind::SyncGroup(Default::default()),
            ApiKey::DescribeGroups => ResponseKind::DescribeGroups(Default::default()),
            ApiKey::ListGroups => ResponseKind::ListGroups(Default::default()),
            ApiKey::DeleteGroups => ResponseKind::DeleteGroups(Default::default()),
            ApiKey::OffsetDelete => ResponseKind::OffsetDelete(Default::default()),
            // Admin
            ApiKey::CreatePartitions => ResponseKind::CreatePartitions(Default::default()),
            ApiKey::AlterConfigs => ResponseKind::AlterConfigs(Default::default()),
            ApiKey::IncrementalAlterConfigs => {
                ResponseKind::IncrementalAlterConfigs(Default::default())
            }
            ApiKey::DeleteRecords => ResponseKind::DeleteRecords(Default::default()),

            // Transactions.
            ApiKey::AddPartitionsToTxn => ResponseKind::AddPartitionsToTxn(Default::default()),
            ApiKey::AddOffsetsToTxn => ResponseKind::AddOffsetsToTxn(Default::default()),
            ApiKey::EndTxn => ResponseKind::EndTxn(Default::default()),
            ApiKey::TxnOffsetCommit => ResponseKind::TxnOffsetCommit(Default::default()),
            ApiKey::DescribeTransactions => ResponseKind::DescribeTransactions(Default::default()),
            ApiKey::ListTransactions => ResponseKind::ListTransactions(Default::default()),

            ApiKey::SaslHandshake => ResponseKind::SaslHandshake(Default::default()),
            ApiKey::SaslAuthenticate => ResponseKind::SaslAuthenticate(Default::default()),
            other => panic!("add {other:?} here when it is served"),
        }
    }

    #[test]
    fn every_served_api_and_version_has_an_error_answer_that_encodes() {
        for &(key, lo, hi) in wire::SUPPORTED {
            for v in lo..=hi {
                let body = empty_of(key);
                let with_error =
                    bare(&body, true).filter(|b| wire::encode_response(key, v, 1, b).is_ok());
                let plain = bare(&body, false).expect("every served API is listed");
                assert!(
                    with_error.is_some() || wire::encode_response(key, v, 1, &plain).is_ok(),
                    "{key:?} v{v}"
                );
            }
        }
    }

    #[test]
    fn a_find_coordinator_v4_that_cannot_encode_answers_each_key_with_an_error() {
        // What the handler used to build for every version: v4 has no top-level node.
        let broken = FindCoordinatorResponse::default()
            .with_node_id(BrokerId(0))
            .with_host(StrBytes::from_static_str("h"))
            .with_port(9092)
            .with_coordinators(vec![
                Coordinator::default().with_key(StrBytes::from_static_str("g1")),
                Coordinator::default().with_key(StrBytes::from_static_str("g2")),
            ]);
        let body = ResponseKind::FindCoordinator(broken);
        assert!(wire::encode_response(ApiKey::FindCoordinator, 4, 7, &body).is_err());
        let frame = encode_or_error(ApiKey::FindCoordinator, 4, 7, &body).unwrap();
        // Size, correlation id, the flexible header's tag buffer, then the body.
        assert_eq!(&frame[4..8], &7i32.to_be_bytes());
        let mut rest = Bytes::copy_from_slice(&frame[9..]);
        let r = FindCoordinatorResponse::decode(&mut rest, 4).unwrap();
        let got: Vec<(&str, i16)> = r
            .coordinators
            .iter()
            .map(|c| (c.key.as_str(), c.error_code))
            .collect();
        assert_eq!(got, [("g1", -1), ("g2", -1)]);
        // A v1 answer with v4's list: the top-level error answers.
        let broken = FindCoordinatorResponse::default().with_coordinators(vec![
            Coordinator::default().with_key(StrBytes::from_static_str("only-in-v4")),
        ]);
        let body = ResponseKind::FindCoordinator(broken);
        let frame = encode_or_error(ApiKey::FindCoordinator, 1, 8, &body).unwrap();
        let mut rest = Bytes::copy_from_slice(&frame[8..]);
        let r = FindCoordinatorResponse::decode(&mut rest, 1).unwrap();
        assert_eq!(r.error_code, -1);
    }
}
