//! SaslAuthenticate (v0-v2): one message of the mechanism the handshake chose
//! (`auth/sasl.rs`). A failure is answered with SASL_AUTHENTICATION_FAILED (or
//! ILLEGAL_SASL_STATE out of turn) and its message, and the connection is closed, as Kafka
//! does, and logged in ACL LOG (context `kafka`). Sessions do not expire
//! (session_lifetime_ms 0).
//!
//! Failed authentications are counted per client address (`auth/guard.rs`): past
//! `--auth-failures-max` every SaslAuthenticate from that address is answered
//! SASL_AUTHENTICATION_FAILED without looking at the credentials, until its cool-down ends.

use bytes::Bytes;
use kafka_protocol::messages::{ResponseKind, SaslAuthenticateRequest, SaslAuthenticateResponse};
use kafka_protocol::protocol::StrBytes;

use super::Req;
use crate::auth::sasl::{Answer, ILLEGAL_SASL_STATE, SASL_AUTHENTICATION_FAILED};
use crate::auth::{LogEntry, Reason};
use crate::kafka::{reply, Ctx};
use crate::shard::conn::Conn;
use crate::shard::Act;

/// The answer to an address in its cool-down.
const REFUSED: &str = "Authentication failed: too many failed authentication attempts from this address, refused until its cool-down ends (--auth-block-ms)";

pub fn handle(ctx: &Ctx, conn: &mut Conn, r: Req, a: SaslAuthenticateRequest) -> Act {
    let users = &ctx.node.users;
    let peer = crate::runtime::sys::peer_ip(conn.fd).ok();
    let answer = match conn.sasl.as_mut() {
        Some(_) if users.kafka_sasl && users.guard.admit(peer, ctx.me, ctx.now).is_err() => {
            Answer::Fail(SASL_AUTHENTICATION_FAILED, REFUSED.into())
        }
        Some(s) if users.kafka_sasl => {
            let answer = s.step(users, &a.auth_bytes);
            if matches!(answer, Answer::Fail(SASL_AUTHENTICATION_FAILED, _)) {
                users.guard.failed(peer, ctx.now);
            }
            answer
        }
        _ => Answer::Fail(ILLEGAL_SASL_STATE, "no SaslHandshake".into()),
    };
    let (body, close) = match answer {
        Answer::Ok(bytes) => (
            SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(bytes)),
            false,
        ),
        Answer::Fail(code, msg) => {
            tracing::debug!(shard = ctx.me, code, %msg, "Kafka SASL authentication failed");
            // In ACL LOG with RESP's failures (context `kafka`), grouped with a count.
            if let Some(user) = conn.sasl.as_mut().and_then(|s| s.failed_user.take()) {
                ctx.node.users.log(LogEntry {
                    count: 1,
                    reason: Reason::Auth,
                    context: "kafka",
                    object: "SaslAuthenticate".into(),
                    username: user,
                    created: ctx.now,
                    client_info: format!("id={}", conn.id),
                });
            }
            (
                SaslAuthenticateResponse::default()
                    .with_error_code(code)
                    .with_error_message(Some(StrBytes::from_string(msg))),
                true,
            )
        }
    };
    match reply(
        conn,
        r.key,
        r.version,
        r.cid,
        ResponseKind::SaslAuthenticate(body),
    ) {
        Act::Done if close => Act::Close,
        act => act,
    }
}
