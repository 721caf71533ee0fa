//! SaslHandshake (v0-v1): the client names a mechanism; we answer with the ones we serve
//! (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) and UNSUPPORTED_SASL_MECHANISM for any other.
//! v1 is followed by SaslAuthenticate requests; the raw tokens that follow a v0 handshake
//! are not served (clients that list v1 use it). With SASL off (no `--users`, or
//! `--kafka-sasl no`) there is nothing to authenticate against: ILLEGAL_SASL_STATE.

use kafka_protocol::messages::{ResponseKind, SaslHandshakeRequest, SaslHandshakeResponse};
use kafka_protocol::protocol::StrBytes;

use super::Req;
use crate::auth::sasl::{ILLEGAL_SASL_STATE, MECHANISMS};
use crate::kafka::{reply, Ctx};
use crate::shard::conn::Conn;
use crate::shard::Act;

pub fn handle(ctx: &Ctx, conn: &mut Conn, r: Req, h: SaslHandshakeRequest) -> Act {
    let error = if !ctx.node.users.kafka_sasl {
        ILLEGAL_SASL_STATE
    } else {
        let sasl = conn.sasl.get_or_insert_with(Default::default);
        match sasl.handshake(h.mechanism.as_str()) {
            Ok(()) => 0,
            Err(e) => e,
        }
    };
    let body = SaslHandshakeResponse::default()
        .with_error_code(error)
        .with_mechanisms(
            MECHANISMS
                .iter()
                .map(|m| StrBytes::from_static_str(m))
                .collect(),
        );
    match reply(
        conn,
        r.key,
        r.version,
        r.cid,
        ResponseKind::SaslHandshake(body),
    ) {
        // Kafka closes the connection after a failed handshake.
        Act::Done if error != 0 => Act::Close,
        act => act,
    }
}
