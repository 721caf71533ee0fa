//! A Kafka connection's SASL state machine (KIP-43 and KIP-152): SaslHandshake picks a
//! mechanism, then SaslAuthenticate carries its messages. PLAIN is one message
//! (`authzid NUL user NUL password`), verified against the user's SCRAM-SHA-256 credential;
//! SCRAM-SHA-256 and SCRAM-SHA-512 are two (client-first, client-final), answered with
//! server-first and server-final (`scram.rs`). Pure: [`SaslConn::step`] takes a message and
//! says what to answer; the Kafka handlers (`kafka/handlers/sasl_*.rs`) encode it.
//!
//! Until a connection has authenticated, it may call only ApiVersions and the two SASL
//! APIs ([`allowed_before_auth`]); anything else closes it, as a Kafka broker does. A
//! failed authentication is answered and the connection closed. Unknown users, users that
//! are off and wrong passwords all get the same answer. A user needs a password to
//! authenticate here: `nopass` (the default user's, unless the users file says otherwise)
//! opens RESP only.

use std::sync::Arc;

use kafka_protocol::messages::ApiKey;

use super::acl::User;
use super::scram::{parse_client_first, Mech, ScramServer};
use super::Users;
use crate::limits::SASL_MESSAGE_BYTES_MAX;

/// Kafka's error codes for SASL and authorisation.
pub const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
pub const ILLEGAL_SASL_STATE: i16 = 34;
pub const SASL_AUTHENTICATION_FAILED: i16 = 58;

/// The mechanisms a handshake may name, in the order SaslHandshake lists them.
pub const MECHANISMS: [&str; 3] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Scram(Mech),
}

impl Mechanism {
    pub fn parse(name: &str) -> Option<Mechanism> {
        match name {
            "PLAIN" => Some(Mechanism::Plain),
            "SCRAM-SHA-256" => Some(Mechanism::Scram(Mech::Sha256)),
            "SCRAM-SHA-512" => Some(Mechanism::Scram(Mech::Sha512)),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Scram(m) => m.name(),
        }
    }
}

#[derive(Debug, Default)]
enum State {
    #[default]
    Start,
    Handshaken(Mechanism),
    /// Server-first sent; waiting for client-final.
    ScramFinal(Box<ScramServer>),
    Done,
}

/// A Kafka connection's authentication.
#[derive(Debug, Default)]
pub struct SaslConn {
    state: State,
    /// The principal, once authenticated, and the users table generation it is from.
    pub user: Option<Arc<User>>,
    pub gen: u64,
    /// The user name the last failed step tried (for ACL LOG), when it got that far.
    pub failed_user: Option<String>,
}

/// What to answer a SASL request with.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// Success: these bytes (empty for PLAIN, server-first or server-final for SCRAM).
    Ok(Vec<u8>),
    /// Fail with this code and message; the connection is closed after the answer.
    Fail(i16, String),
}

/// APIs an unauthenticated connection may call when SASL is required.
pub fn allowed_before_auth(key: ApiKey) -> bool {
    matches!(
        key,
        ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
    )
}

fn failed(m: Mechanism) -> Answer {
    Answer::Fail(
        SASL_AUTHENTICATION_FAILED,
        match m {
            Mechanism::Plain => "Authentication failed: Invalid username or password".into(),
            Mechanism::Scram(s) => format!(
                "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
                s.name()
            ),
        },
    )
}

impl SaslConn {
    pub fn authenticated(&self) -> bool {
        self.user.is_some()
    }

    /// SaslHandshake naming `mechanism`: Ok, or the error code.
    pub fn handshake(&mut self, mechanism: &str) -> Result<(), i16> {
        if !matches!(self.state, State::Start) {
            return Err(ILLEGAL_SASL_STATE);
        }
        let m = Mechanism::parse(mechanism).ok_or(UNSUPPORTED_SASL_MECHANISM)?;
        self.state = State::Handshaken(m);
        Ok(())
    }

    /// One SaslAuthenticate message.
    pub fn step(&mut self, users: &Users, msg: &[u8]) -> Answer {
        if msg.len() > SASL_MESSAGE_BYTES_MAX {
            return Answer::Fail(SASL_AUTHENTICATION_FAILED, "SASL message too large".into());
        }
        let gen = users.generation();
        match std::mem::take(&mut self.state) {
            State::Handshaken(Mechanism::Plain) => {
                let mut f = msg.split(|&b| b == 0);
                let (Some(_authzid), Some(user), Some(pass), None) =
                    (f.next(), f.next(), f.next(), f.next())
                else {
                    return Answer::Fail(
                        SASL_AUTHENTICATION_FAILED,
                        "Invalid SASL/PLAIN response: expected 3 tokens".into(),
                    );
                };
                let name = String::from_utf8_lossy(user);
                match users.get(&name).filter(|u| u.has_password(pass)) {
                    Some(u) => {
                        self.done(u, gen);
                        Answer::Ok(Vec::new())
                    }
                    None => {
                        self.failed_user = Some(name.into_owned());
                        failed(Mechanism::Plain)
                    }
                }
            }
            State::Handshaken(Mechanism::Scram(mech)) => {
                let Ok(text) = std::str::from_utf8(msg) else {
                    return failed(Mechanism::Scram(mech));
                };
                let first = match parse_client_first(text) {
                    Ok(f) => f,
                    Err(e) => {
                        return Answer::Fail(
                            SASL_AUTHENTICATION_FAILED,
                            format!("Authentication failed: {e}"),
                        )
                    }
                };
                self.failed_user = Some(first.user.clone());
                let Some(u) = users.get(&first.user).filter(|u| u.enabled) else {
                    return failed(Mechanism::Scram(mech));
                };
                let Some(cred) = u.creds.first() else {
                    return failed(Mechanism::Scram(mech));
                };
                match ScramServer::start(mech, &first, cred, None) {
                    Ok(s) => {
                        let out = s.server_first().as_bytes().to_vec();
                        self.state = State::ScramFinal(Box::new(s));
                        Answer::Ok(out)
                    }
                    Err(_) => failed(Mechanism::Scram(mech)),
                }
            }
            State::ScramFinal(s) => {
                self.failed_user = Some(s.user.clone());
                let text = std::str::from_utf8(msg).unwrap_or("");
                match s.finish(text) {
                    // Looked up again: the user may have changed between the two messages.
                    Ok(fin) => match users.get(&s.user).filter(|u| u.enabled) {
                        Some(u) => {
                            self.done(u, gen);
                            Answer::Ok(fin.into_bytes())
                        }
                        None => failed(Mechanism::Scram(s.mech)),
                    },
                    Err(_) => failed(Mechanism::Scram(s.mech)),
                }
            }
            State::Start | State::Done => Answer::Fail(
                ILLEGAL_SASL_STATE,
                "SaslAuthenticate before a SaslHandshake, or after authentication".into(),
            ),
        }
    }

    fn done(&mut self, u: Arc<User>, gen: u64) {
        self.failed_user = None;
        self.state = State::Done;
        self.user = Some(u);
        self.gen = gen;
    }

    /// The principal, looked up again when the users table changed (None: deleted).
    pub fn principal(&mut self, users: &Users) -> Option<Arc<User>> {
        let u = self.user.as_ref()?;
        let g = users.generation();
        if g != self.gen {
            self.user = users.get(&u.name.clone());
            self.gen = g;
        }
        self.user.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn users() -> Users {
        let u = Users::open();
        u.update(|t| {
            let mut a = User::new("alice");
            for r in ["on", ">pw", "topic:read:t*"] {
                a.apply(r.as_bytes()).unwrap();
            }
            t.insert("alice".into(), Arc::new(a));
            Ok::<(), ()>(())
        })
        .unwrap();
        u
    }

    #[test]
    fn plain_accepts_the_password_only() {
        let users = users();
        let mut c = SaslConn::default();
        assert_eq!(c.handshake("GSSAPI"), Err(UNSUPPORTED_SASL_MECHANISM));
        c.handshake("PLAIN").unwrap();
        assert!(matches!(
            c.step(&users, b"\0alice\0nope"),
            Answer::Fail(SASL_AUTHENTICATION_FAILED, _)
        ));
        // The default user is `nopass`: that opens RESP, never SASL.
        let mut c = SaslConn::default();
        c.handshake("PLAIN").unwrap();
        assert!(matches!(
            c.step(&users, b"\0default\0anything"),
            Answer::Fail(SASL_AUTHENTICATION_FAILED, _)
        ));
        let mut c = SaslConn::default();
        c.handshake("PLAIN").unwrap();
        assert_eq!(c.step(&users, b"\0alice\0pw"), Answer::Ok(Vec::new()));
        assert!(c.authenticated());
        assert_eq!(c.handshake("PLAIN"), Err(ILLEGAL_SASL_STATE));
    }

    #[test]
    fn scram_runs_both_messages() {
        use base64::engine::general_purpose::STANDARD as B64;
        use base64::Engine;
        let users = users();
        let cred = users.get("alice").unwrap().creds[0].clone();
        let mut c = SaslConn::default();
        c.handshake("SCRAM-SHA-512").unwrap();
        let Answer::Ok(sf) = c.step(&users, b"n,,n=alice,r=abc") else {
            panic!("no server-first");
        };
        let sf = String::from_utf8(sf).unwrap();
        let nonce = sf.split(',').next().unwrap().strip_prefix("r=").unwrap();
        // The client's side, as RFC 5802 computes it.
        let m = Mech::Sha512;
        let salted = m.pbkdf2(b"pw", &cred.salt, cred.iterations);
        let ck = m.hmac(&salted, &[b"Client Key"]);
        let without = format!("c=biws,r={nonce}");
        let am = format!("n=alice,r=abc,{sf},{without}");
        let sig = m.hmac(&m.hash(&ck), &[am.as_bytes()]);
        let proof: Vec<u8> = ck.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        let fin = format!("{without},p={}", B64.encode(proof));
        assert!(matches!(c.step(&users, fin.as_bytes()), Answer::Ok(v) if v.starts_with(b"v=")));
        assert_eq!(c.principal(&users).unwrap().name, "alice");
        // Unknown user and a forged proof both fail the same way.
        let mut c = SaslConn::default();
        c.handshake("SCRAM-SHA-256").unwrap();
        assert!(matches!(
            c.step(&users, b"n,,n=mallory,r=abc"),
            Answer::Fail(SASL_AUTHENTICATION_FAILED, _)
        ));
        let mut c = SaslConn::default();
        assert!(matches!(
            c.step(&users, b"n,,n=alice,r=abc"),
            Answer::Fail(ILLEGAL_SASL_STATE, _)
        ));
    }
}
