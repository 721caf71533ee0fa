//! The Kafka front end: one request frame in, an [`Act`] out. The codec is
//! `proto::kafka`; each API's handler is a file in [`handlers`], declaring what it serves.
//! Requests that name partitions become log parts on the partitions' owner shards, run as a
//! plain flight of the transaction framework ([`rounds`]) and answered in request order
//! ([`partitions`]).
//!
//! Served: ApiVersions (with the downgrade answer for unknown versions), Metadata (this node
//! as the only broker and leader of every partition; auto-creates topics), FindCoordinator,
//! InitProducerId, CreateTopics, DeleteTopics, DescribeConfigs, CreatePartitions,
//! AlterConfigs, IncrementalAlterConfigs, DeleteRecords, Produce (acks 0, 1, -1),
//! Fetch (long poll up to max_wait_ms; fetch sessions declined) and ListOffsets. A frame
//! that cannot be decoded, or a size over `--max-request-bytes`, closes that connection
//! only.

pub mod authz;
pub mod encode;
pub mod groups;
pub mod handlers;
pub mod partitions;
pub mod rounds;
pub mod txn;

use std::collections::BTreeMap;
use std::time::Instant;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};

use crate::log::topics::TopicMeta;
use crate::mesh::{Endpoint, SlotTable};
use crate::proto::kafka::{self as wire, ErrorCode, FrameError};
use crate::proto::resp::command::Family;
use crate::shard::conn::Conn;
use crate::shard::{Act, Launch, NodeShared};
use crate::txn::Rounds;
use rounds::{Done, Finish, LogRounds};

/// The node id pinion reports as the broker (a single-node cluster until the control plane).
pub const NODE_ID: i32 = 0;

/// What the Kafka front end may see and touch of its shard.
pub struct Ctx<'a> {
    pub node: &'a NodeShared,
    pub me: usize,
    pub owner: &'a SlotTable,
    /// This shard's copy of the topic table.
    pub topics: &'a BTreeMap<String, TopicMeta>,
    pub mesh: &'a Endpoint,
    pub now: Instant,
    pub now_ms: u64,
    /// A per-shard counter for producer ids.
    pub next_producer: &'a mut u64,
    /// The request came over TLS (Metadata then advertises the TLS port: `Ctx::advertised`
    /// in `tls/mod.rs`).
    pub tls: bool,

    /// The SASL principal (issue 13, f-sec), set by [`dispatch`]; None when SASL is off.
    pub principal: Option<std::sync::Arc<crate::auth::acl::User>>,
}

impl Ctx<'_> {
    /// May the connection's principal do `op` to `topic`? (Always, with SASL off.)
    pub fn may(&self, op: crate::auth::acl::TopicOp, topic: &str) -> bool {
        self.principal
            .as_ref()
            .is_none_or(|u| u.topic_allowed(op, topic))
    }

    /// Start a request's log parts; their results become the reply.
    fn launch(&self, rounds: LogRounds) -> Act {
        if !self.mesh.room_for(self.me, rounds.first_shards()) {
            return Act::Blocked;
        }
        launched(Box::new(rounds))
    }

    /// Start a request as a plain flight of `rounds`, whose first hop sends a part to each
    /// shard of `first` (what it needs room for).
    fn launch_rounds(
        &self,
        rounds: Box<dyn Rounds>,
        first: impl IntoIterator<Item = usize>,
    ) -> Act {
        if !self.mesh.room_for(self.me, first) {
            return Act::Blocked;
        }
        launched(rounds)
    }
}

fn launched(rounds: Box<dyn Rounds>) -> Act {
    Act::Launch(Launch {
        rounds,
        atomic: None,
        family: Family::Server,
    })
}

/// Answer with `body` now; a body that cannot be encoded is answered with an error
/// (`encode.rs`), and only when not even that encodes is the connection closed.
fn reply(conn: &mut Conn, key: ApiKey, version: i16, cid: i32, body: ResponseKind) -> Act {
    match encode::encode_or_error(key, version, cid, &body) {
        Some(frame) => {
            conn.reply(|o| o.buf.extend_from_slice(&frame));
            Act::Done
        }
        None => Act::Close,
    }
}

/// Encode a response inside a flight; a body that cannot be encoded is answered with an
/// error (`encode.rs`). A flight cannot close its connection: when not even the error
/// encodes (no served API and version gets there), the reply is left empty, logged.
fn encode_in_flight(key: ApiKey, version: i16, cid: i32, body: &ResponseKind) -> Done {
    Done::Reply(encode::encode_or_error(key, version, cid, body).unwrap_or_default())
}

fn finish(
    f: impl FnMut(&[crate::log::ops::LogResult], Instant) -> Done + Send + 'static,
) -> Finish {
    Box::new(f)
}

/// Answer one request frame (without its size prefix).
pub fn dispatch(ctx: &mut Ctx, conn: &mut Conn, payload: Bytes) -> Act {
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
            return reply(conn, ApiKey::ApiVersions, 0, cid, body);
        }
        Err(e) => {
            tracing::debug!(shard = ctx.me, error = %e, "undecodable Kafka request; closing");
            return Act::Reject;
        }
    };
    let (key, version, cid) = (req.key, req.version, req.header.correlation_id);
    let r = handlers::Req {
        key,
        version,
        cid,
        internal: crate::cluster::topics::internal_client(req.header.client_id.as_deref()),
    };
    // SASL (issue 13, f-sec): before authenticating, only ApiVersions and Sasl*; anything
    // else closes the connection, as Kafka does. After, topic rules apply (`ctx.may`).
    if ctx.node.users.kafka_sasl {
        let principal = conn
            .sasl
            .as_mut()
            .and_then(|s| s.principal(&ctx.node.users));
        if principal.is_none() && !crate::auth::sasl::allowed_before_auth(key) {
            tracing::debug!(
                shard = ctx.me,
                ?key,
                "Kafka request before SASL authentication; closing"
            );
            return Act::Close;
        }
        ctx.principal = principal;
    }
    match req.body {
        RequestKind::ApiVersions(_) => handlers::api_versions::handle(conn, r),
        RequestKind::Metadata(m) => handlers::metadata::handle(ctx, r, m),
        RequestKind::FindCoordinator(f) => handlers::find_coordinator::handle(ctx, conn, r, f),
        RequestKind::InitProducerId(i) => handlers::init_producer_id::handle(ctx, conn, r, i),
        RequestKind::CreateTopics(c) => handlers::create_topics::handle(ctx, r, c),
        RequestKind::DeleteTopics(d) => handlers::delete_topics::handle(ctx, r, d),
        RequestKind::DescribeConfigs(d) => handlers::describe_configs::handle(ctx, conn, r, d),
        RequestKind::Produce(p) => handlers::produce::handle(ctx, r, p),
        RequestKind::Fetch(f) => handlers::fetch::handle(ctx, r, f),
        RequestKind::ListOffsets(l) => handlers::list_offsets::handle(ctx, r, l),
        // Consumer groups (`groups/`).
        RequestKind::JoinGroup(j) => {
            let client = req.header.client_id.as_deref().unwrap_or("");
            handlers::join_group::handle(ctx, r, j, client)
        }
        RequestKind::SyncGroup(s) => handlers::sync_group::handle(ctx, r, s),
        RequestKind::Heartbeat(h) => handlers::heartbeat::handle(ctx, r, h),
        RequestKind::LeaveGroup(l) => handlers::leave_group::handle(ctx, r, l),
        RequestKind::OffsetCommit(c) => handlers::offset_commit::handle(ctx, r, c),
        RequestKind::OffsetFetch(f) => handlers::offset_fetch::handle(ctx, r, f),
        RequestKind::ListGroups(l) => handlers::list_groups::handle(ctx, r, l),
        RequestKind::DescribeGroups(d) => handlers::describe_groups::handle(ctx, r, d),
        RequestKind::DeleteGroups(d) => handlers::delete_groups::handle(ctx, r, d),
        RequestKind::OffsetDelete(d) => handlers::offset_delete::handle(ctx, r, d),
        // Admin
        RequestKind::CreatePartitions(c) => handlers::create_partitions::handle(ctx, r, c),
        RequestKind::AlterConfigs(a) => handlers::alter_configs::handle(ctx, r, a),
        RequestKind::IncrementalAlterConfigs(a) => {
            handlers::incremental_alter_configs::handle(ctx, r, a)
        }
        RequestKind::DeleteRecords(d) => handlers::delete_records::handle(ctx, r, d),

        // Transactions (`txn/`).
        RequestKind::AddPartitionsToTxn(a) => handlers::add_partitions_to_txn::handle(ctx, r, a),
        RequestKind::AddOffsetsToTxn(a) => handlers::add_offsets_to_txn::handle(ctx, r, a),
        RequestKind::TxnOffsetCommit(c) => handlers::txn_offset_commit::handle(ctx, r, c),
        RequestKind::EndTxn(e) => handlers::end_txn::handle(ctx, r, e),
        RequestKind::DescribeTransactions(d) => handlers::describe_transactions::handle(ctx, r, d),
        RequestKind::ListTransactions(l) => handlers::list_transactions::handle(ctx, r, l),

        // SASL (issue 13, f-sec).
        RequestKind::SaslHandshake(h) => handlers::sasl_handshake::handle(ctx, conn, r, h),
        RequestKind::SaslAuthenticate(a) => handlers::sasl_authenticate::handle(ctx, conn, r, a),
        _ => {
            tracing::debug!(shard = ctx.me, ?key, "Kafka API not served yet; closing");
            Act::Close
        }
    }
}
