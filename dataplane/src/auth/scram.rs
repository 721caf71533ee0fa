//! Salted credentials and the SCRAM exchange (RFC 5802, RFC 7677), pure over bytes.
//!
//! A password is never kept: a [`Cred`] holds a random salt, an iteration count and, for
//! SCRAM-SHA-256 and SCRAM-SHA-512, the StoredKey and ServerKey derived from
//! `PBKDF2(password, salt, iterations)`. RESP AUTH and SASL PLAIN verify a password by
//! deriving the SHA-256 StoredKey again and comparing in constant time; SCRAM verifies the
//! client's proof against the StoredKey of its mechanism without ever seeing the password.
//!
//! A password once verified is remembered per thread as `SHA-256(salt || password)` (in
//! memory only, bounded by `AUTH_VERIFIED_CACHE_MAX`) so that a client reconnecting with the
//! right password costs one hash rather than a PBKDF2; a wrong password always pays the
//! PBKDF2, which is what slows a guesser.

use std::cell::RefCell;
use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

use crate::limits::{
    AUTH_VERIFIED_CACHE_MAX, SCRAM_ITERATIONS, SCRAM_ITERATIONS_MAX, SCRAM_NONCE_BYTES,
    SCRAM_SALT_BYTES,
};

/// The hash of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mech {
    Sha256,
    Sha512,
}

impl Mech {
    pub fn name(self) -> &'static str {
        match self {
            Mech::Sha256 => "SCRAM-SHA-256",
            Mech::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub(crate) fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        match self {
            Mech::Sha256 => {
                // HMAC takes a key of any length.
                let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
                for p in parts {
                    m.update(p);
                }
                m.finalize().into_bytes().to_vec()
            }
            Mech::Sha512 => {
                let mut m = <Hmac<Sha512> as Mac>::new_from_slice(key).expect("any key length");
                for p in parts {
                    m.update(p);
                }
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    pub(crate) fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Mech::Sha256 => Sha256::digest(data).to_vec(),
            Mech::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// PBKDF2 with this hash as the PRF, one block (the hash's length), as SCRAM's Hi().
    pub fn pbkdf2(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        fn run<M: Mac + Clone>(prf: M, salt: &[u8], iterations: u32) -> Vec<u8> {
            let mut m = prf.clone();
            m.update(salt);
            m.update(&1u32.to_be_bytes());
            let mut u = m.finalize().into_bytes();
            let mut t = u.clone();
            for _ in 1..iterations {
                let mut m = prf.clone();
                m.update(&u);
                u = m.finalize().into_bytes();
                for (a, b) in t.iter_mut().zip(u.iter()) {
                    *a ^= b;
                }
            }
            t.to_vec()
        }
        match self {
            Mech::Sha256 => run(
                <Hmac<Sha256> as Mac>::new_from_slice(password).expect("any key length"),
                salt,
                iterations,
            ),
            Mech::Sha512 => run(
                <Hmac<Sha512> as Mac>::new_from_slice(password).expect("any key length"),
                salt,
                iterations,
            ),
        }
    }

    /// StoredKey and ServerKey for `password`.
    fn keys(self, password: &[u8], salt: &[u8], iterations: u32) -> Keys {
        let salted = self.pbkdf2(password, salt, iterations);
        let client_key = self.hmac(&salted, &[b"Client Key"]);
        Keys {
            stored: self.hash(&client_key),
            server: self.hmac(&salted, &[b"Server Key"]),
        }
    }
}

/// Compare in time that depends only on the lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Fill `buf` from the OS's random source.
pub fn random(buf: &mut [u8]) -> Result<(), getrandom::Error> {
    getrandom::getrandom(buf)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    pub stored: Vec<u8>,
    pub server: Vec<u8>,
}

/// One password's salted credential, for both SCRAM hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cred {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub sha256: Keys,
    pub sha512: Keys,
}

/// The textual prefix of a credential in a users file and in ACL LIST.
pub const CRED_PREFIX: &str = "scram$";

impl Cred {
    /// A new credential for `password`, with a fresh random salt.
    pub fn new(password: &[u8]) -> Result<Cred, getrandom::Error> {
        let mut salt = vec![0u8; SCRAM_SALT_BYTES];
        random(&mut salt)?;
        Ok(Cred::with_salt(password, salt, SCRAM_ITERATIONS))
    }

    pub fn with_salt(password: &[u8], salt: Vec<u8>, iterations: u32) -> Cred {
        Cred {
            iterations,
            sha256: Mech::Sha256.keys(password, &salt, iterations),
            sha512: Mech::Sha512.keys(password, &salt, iterations),
            salt,
        }
    }

    pub fn keys(&self, m: Mech) -> &Keys {
        match m {
            Mech::Sha256 => &self.sha256,
            Mech::Sha512 => &self.sha512,
        }
    }

    /// Is `password` this credential's password? (SHA-256 StoredKey, constant-time.)
    pub fn verify(&self, password: &[u8]) -> bool {
        let quick = Sha256::new()
            .chain_update(&self.salt)
            .chain_update(password)
            .finalize();
        let known = VERIFIED.with(|v| v.borrow().get(&self.sha256.stored).copied());
        if let Some(k) = known {
            if ct_eq(&k, &quick) {
                return true;
            }
        }
        let ok = ct_eq(
            &Mech::Sha256
                .keys(password, &self.salt, self.iterations)
                .stored,
            &self.sha256.stored,
        );
        if ok {
            VERIFIED.with(|v| {
                let mut v = v.borrow_mut();
                if v.len() >= AUTH_VERIFIED_CACHE_MAX {
                    v.clear();
                }
                v.insert(self.sha256.stored.clone(), quick.into());
            });
        }
        ok
    }

    /// `scram$<iterations>$<salt>$<stored256>$<server256>$<stored512>$<server512>`, base64.
    pub fn to_token(&self) -> String {
        format!(
            "{CRED_PREFIX}{}${}${}${}${}${}",
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(&self.sha256.stored),
            B64.encode(&self.sha256.server),
            B64.encode(&self.sha512.stored),
            B64.encode(&self.sha512.server),
        )
    }

    pub fn from_token(t: &str) -> Option<Cred> {
        let rest = t.strip_prefix(CRED_PREFIX)?;
        let f: Vec<&str> = rest.split('$').collect();
        let [it, salt, st2, sv2, st5, sv5] = f.as_slice() else {
            return None;
        };
        let iterations: u32 = it.parse().ok()?;
        if iterations == 0 || iterations > SCRAM_ITERATIONS_MAX {
            return None;
        }
        let d = |s: &str, n: usize| B64.decode(s).ok().filter(|v| v.len() == n);
        Some(Cred {
            iterations,
            salt: B64.decode(salt).ok().filter(|s| !s.is_empty())?,
            sha256: Keys {
                stored: d(st2, 32)?,
                server: d(sv2, 32)?,
            },
            sha512: Keys {
                stored: d(st5, 64)?,
                server: d(sv5, 64)?,
            },
        })
    }
}

thread_local! {
    /// StoredKey (SHA-256) -> SHA-256(salt || password) of a password verified on this thread.
    static VERIFIED: RefCell<HashMap<Vec<u8>, [u8; 32]>> = RefCell::new(HashMap::new());
}

/// Why a SCRAM exchange failed (answered as an authentication failure).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("malformed SCRAM message")]
    Malformed,
    #[error("channel binding is not supported")]
    ChannelBinding,
    #[error("unknown user or bad proof")]
    Invalid,
    #[error("no randomness for a nonce")]
    Random,
}

/// The server's side of one SCRAM exchange, after the client's first message.
#[derive(Debug, Clone)]
pub struct ScramServer {
    pub mech: Mech,
    pub user: String,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
    keys: Keys,
}

/// The username and the parts of a client-first message.
pub struct ClientFirst<'a> {
    pub user: String,
    gs2_header: &'a str,
    bare: &'a str,
    cnonce: &'a str,
}

/// Parse `gs2-header client-first-message-bare` (`n,,n=user,r=nonce`).
pub fn parse_client_first(msg: &str) -> Result<ClientFirst<'_>, ScramError> {
    let (cb, rest) = msg.split_once(',').ok_or(ScramError::Malformed)?;
    match cb {
        "n" | "y" => {}
        c if c.starts_with("p=") => return Err(ScramError::ChannelBinding),
        _ => return Err(ScramError::Malformed),
    }
    let (_authzid, bare) = rest.split_once(',').ok_or(ScramError::Malformed)?;
    let gs2_header = &msg[..msg.len() - bare.len()];
    let mut user = None;
    let mut cnonce = None;
    for attr in bare.split(',') {
        if let Some(u) = attr.strip_prefix("n=") {
            user = Some(saslname(u)?);
        } else if let Some(r) = attr.strip_prefix("r=") {
            cnonce = Some(r);
        } else if attr.starts_with("m=") {
            return Err(ScramError::Malformed);
        }
    }
    let (Some(user), Some(cnonce)) = (user, cnonce) else {
        return Err(ScramError::Malformed);
    };
    if cnonce.is_empty() {
        return Err(ScramError::Malformed);
    }
    Ok(ClientFirst {
        user,
        gs2_header,
        bare,
        cnonce,
    })
}

/// A SCRAM saslname: `=2C` is a comma, `=3D` an equals sign, no other `=`.
fn saslname(s: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let esc = rest.get(i..i + 3).ok_or(ScramError::Malformed)?;
        out.push(match esc {
            "=2C" => ',',
            "=3D" => '=',
            _ => return Err(ScramError::Malformed),
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

impl ScramServer {
    /// Answer the client's first message for `cred`: the server-first message.
    pub fn start(
        mech: Mech,
        first: &ClientFirst,
        cred: &Cred,
        server_nonce: Option<&str>,
    ) -> Result<ScramServer, ScramError> {
        let snonce = match server_nonce {
            Some(n) => n.to_string(),
            None => {
                let mut b = [0u8; SCRAM_NONCE_BYTES];
                random(&mut b).map_err(|_| ScramError::Random)?;
                B64.encode(b)
            }
        };
        let nonce = format!("{}{}", first.cnonce, snonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&cred.salt),
            cred.iterations
        );
        Ok(ScramServer {
            mech,
            user: first.user.clone(),
            gs2_header: first.gs2_header.to_string(),
            client_first_bare: first.bare.to_string(),
            server_first,
            nonce,
            keys: cred.keys(mech).clone(),
        })
    }

    pub fn server_first(&self) -> &str {
        &self.server_first
    }

    /// Check the client's final message (`c=...,r=...,p=proof`); on success the
    /// server-final message (`v=signature`).
    pub fn finish(&self, msg: &str) -> Result<String, ScramError> {
        let (without_proof, proof) = msg.rsplit_once(",p=").ok_or(ScramError::Malformed)?;
        let mut cbind = None;
        let mut nonce = None;
        for attr in without_proof.split(',') {
            if let Some(c) = attr.strip_prefix("c=") {
                cbind = Some(c);
            } else if let Some(r) = attr.strip_prefix("r=") {
                nonce = Some(r);
            }
        }
        let cbind = cbind.ok_or(ScramError::Malformed)?;
        let expect_c = B64.encode(self.gs2_header.as_bytes());
        // Kafka's rule: the nonce must end with ours. librdkafka before 2.1 sends the client
        // nonce twice (`cnonce + cnonce + snonce`), and its proof covers what it sent.
        if cbind != expect_c || !nonce.is_some_and(|n| n.ends_with(self.nonce.as_str())) {
            return Err(ScramError::Invalid);
        }
        let proof = B64.decode(proof).map_err(|_| ScramError::Malformed)?;
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, self.server_first, without_proof
        );
        let sig = self
            .mech
            .hmac(&self.keys.stored, &[auth_message.as_bytes()]);
        if proof.len() != sig.len() {
            return Err(ScramError::Invalid);
        }
        let client_key: Vec<u8> = proof.iter().zip(&sig).map(|(p, s)| p ^ s).collect();
        if !ct_eq(&self.mech.hash(&client_key), &self.keys.stored) {
            return Err(ScramError::Invalid);
        }
        let server_sig = self
            .mech
            .hmac(&self.keys.server, &[auth_message.as_bytes()]);
        Ok(format!("v={}", B64.encode(server_sig)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn pbkdf2_matches_rfc_vectors() {
        assert_eq!(
            hex(&Mech::Sha256.pbkdf2(b"password", b"salt", 1)),
            "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b"
        );
        assert_eq!(
            hex(&Mech::Sha256.pbkdf2(b"password", b"salt", 4096)),
            "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"
        );
    }

    /// RFC 7677's example exchange, byte for byte.
    #[test]
    fn scram_sha256_rfc7677_exchange() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let cred = Cred::with_salt(b"pencil", salt, 4096);
        let first = parse_client_first("n,,n=user,r=rOprNGfwEbeRWgbNEkqO").unwrap();
        assert_eq!(first.user, "user");
        let s = ScramServer::start(
            Mech::Sha256,
            &first,
            &cred,
            Some("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"),
        )
        .unwrap();
        assert_eq!(
            s.server_first(),
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let fin = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        assert_eq!(
            s.finish(fin).unwrap(),
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        let bad = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        assert_eq!(s.finish(bad), Err(ScramError::Invalid));
        assert_eq!(
            s.finish("c=biws,r=other,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="),
            Err(ScramError::Invalid)
        );
    }

    #[test]
    fn credentials_verify_and_round_trip_as_tokens() {
        let c = Cred::with_salt(b"secret", b"0123456789abcdef".to_vec(), 64);
        assert!(c.verify(b"secret"));
        assert!(c.verify(b"secret"), "again, from the verified cache");
        assert!(!c.verify(b"Secret"));
        assert!(!c.verify(b""));
        let t = c.to_token();
        assert!(!t.contains("secret") && !t.contains(' '));
        assert_eq!(Cred::from_token(&t), Some(c));
        assert_eq!(Cred::from_token("scram$0$AA==$$$$"), None);
        assert_eq!(Cred::from_token("scram$4096$AA=="), None);
        assert_eq!(
            Cred::from_token(&t.replace("scram$64", "scram$999999999")),
            None
        );
    }

    #[test]
    fn client_first_messages_are_checked() {
        assert_eq!(
            parse_client_first("n,,n=a=2Cb=3Dc,r=x").unwrap().user,
            "a,b=c"
        );
        assert!(matches!(
            parse_client_first("p=tls-unique,,n=a,r=x"),
            Err(ScramError::ChannelBinding)
        ));
        for bad in [
            "",
            "n",
            "n,,",
            "n,,n=a",
            "n,,r=x",
            "x,,n=a,r=x",
            "n,,n=a=,r=x",
        ] {
            assert!(parse_client_first(bad).is_err(), "{bad:?}");
        }
    }
}
