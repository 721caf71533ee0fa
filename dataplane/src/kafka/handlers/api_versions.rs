//! ApiVersions (v0-v3): the APIs and versions this node serves (`proto::kafka::SUPPORTED`).

use kafka_protocol::messages::ResponseKind;

use super::Req;
use crate::kafka::reply;
use crate::proto::kafka::{self as wire, ErrorCode};
use crate::shard::conn::Conn;
use crate::shard::Act;

pub fn handle(conn: &mut Conn, r: Req) -> Act {
    let body = ResponseKind::ApiVersions(wire::api_versions_response(ErrorCode::None));
    reply(conn, r.key, r.version, r.cid, body)
}
