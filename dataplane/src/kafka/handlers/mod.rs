//! One file per Kafka API. Each handler takes the decoded request and answers at once
//! (metadata kept on every shard) or returns the log parts to run and how to build the
//! response from their results.

pub mod api_versions;
pub mod create_topics;
pub mod delete_topics;
pub mod describe_configs;
pub mod fetch;
pub mod find_coordinator;
pub mod init_producer_id;
pub mod list_offsets;
pub mod metadata;
pub mod produce;
// Consumer groups (`kafka/groups/`).
pub mod delete_groups;
pub mod describe_groups;
pub mod heartbeat;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod sync_group;
// Admin.
pub mod alter_configs;
pub mod create_partitions;
pub mod delete_records;
pub mod incremental_alter_configs;

// Transactions (`kafka/txn/`).
pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod describe_transactions;
pub mod end_txn;
pub mod list_transactions;
pub mod txn_offset_commit;

// SASL (issue 13, f-sec; `auth/sasl.rs`).
pub mod sasl_authenticate;
pub mod sasl_handshake;

use kafka_protocol::messages::{ApiKey, ResponseKind};

use super::rounds::Done;

/// The request's API, version and correlation id: what its response is encoded with.
#[derive(Debug, Clone, Copy)]
pub struct Req {
    pub key: ApiKey,
    pub version: i16,
    pub cid: i32,
    /// From the node itself (`cluster/topics.rs`): topic requests are served locally.
    pub internal: bool,
}

impl Req {
    /// The response to this request, encoded.
    pub fn answer(&self, body: ResponseKind) -> Done {
        super::encode_in_flight(self.key, self.version, self.cid, &body)
    }
}
