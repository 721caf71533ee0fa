//! The control protocol on TCP: authenticated, length-prefixed frames of JSON.
//!
//! On connect the server sends 16 random bytes, the connection's nonce (not a frame). Then
//! each side sends frames: `length u32 BE | HMAC-SHA256 (32 bytes) | payload (JSON)`, where
//! `length` counts the MAC and the payload, and the MAC is computed with the shared secret
//! over `direction | nonce | sequence u64 BE | payload`: direction `C` from client to server
//! and `S` back, the sequence counting that direction's frames from 0. So a frame cannot be
//! forged without the secret, nor replayed on another connection, in another order or in
//! the other direction. A frame whose MAC fails closes the connection.
//!
//! Pure codec plus a blocking [`Conn`] over any `Read + Write`; the server and the CLI use
//! it, and tests/test_control.py speaks the same bytes from Python.

use std::io::{self, Read, Write};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::limits::{FRAME_BYTES_MAX, SECRET_BYTES_MAX, SECRET_BYTES_MIN};

pub const NONCE_BYTES: usize = 16;
const MAC_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("connection: {0}")]
    Io(#[from] io::Error),
    #[error("frame of {0} bytes exceeds the bound")]
    TooLong(usize),
    #[error("frame of {0} bytes is shorter than its MAC")]
    TooShort(usize),
    #[error("authentication failed (wrong shared secret?)")]
    BadMac,
    #[error("bad message: {0}")]
    Json(#[from] serde_json::Error),
}

/// Who is speaking: the MAC covers it, so a frame cannot be reflected back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

impl Side {
    fn byte(self) -> u8 {
        match self {
            Side::Client => b'C',
            Side::Server => b'S',
        }
    }
}

/// Reads and checks a shared secret file: its bytes, with trailing whitespace trimmed.
pub fn read_secret(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > SECRET_BYTES_MAX as u64 {
        return Err(format!(
            "{}: a secret of {} bytes exceeds {SECRET_BYTES_MAX}",
            path.display(),
            meta.len()
        ));
    }
    let mut s = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    while s.last().is_some_and(|b| b.is_ascii_whitespace()) {
        s.pop();
    }
    if s.len() < SECRET_BYTES_MIN {
        return Err(format!(
            "{}: the secret must be at least {SECRET_BYTES_MIN} bytes (e.g. `head -c 32 /dev/urandom | base64 > {}`)",
            path.display(),
            path.display()
        ));
    }
    Ok(s)
}

/// A connection's MAC state for one direction.
#[derive(Clone)]
pub struct Sealer {
    secret: Vec<u8>,
    nonce: [u8; NONCE_BYTES],
    side: Side,
    seq: u64,
}

impl Sealer {
    pub fn new(secret: &[u8], nonce: [u8; NONCE_BYTES], side: Side) -> Sealer {
        Sealer {
            secret: secret.to_vec(),
            nonce,
            side,
            seq: 0,
        }
    }

    fn mac(&self, payload: &[u8]) -> Hmac<Sha256> {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .expect("HMAC takes a key of any length");
        m.update(&[self.side.byte()]);
        m.update(&self.nonce);
        m.update(&self.seq.to_be_bytes());
        m.update(payload);
        m
    }

    /// The whole frame for `payload`, and the sequence moves on.
    pub fn seal(&mut self, payload: &[u8]) -> Vec<u8> {
        let tag = self.mac(payload).finalize().into_bytes();
        self.seq += 1;
        let mut f = Vec::with_capacity(4 + MAC_BYTES + payload.len());
        f.extend_from_slice(&((MAC_BYTES + payload.len()) as u32).to_be_bytes());
        f.extend_from_slice(&tag);
        f.extend_from_slice(payload);
        f
    }

    /// Checks a frame body (`mac | payload`), in constant time; the sequence moves on.
    pub fn open<'a>(&mut self, body: &'a [u8]) -> Result<&'a [u8], WireError> {
        if body.len() < MAC_BYTES {
            return Err(WireError::TooShort(body.len()));
        }
        let (tag, payload) = body.split_at(MAC_BYTES);
        self.mac(payload)
            .verify_slice(tag)
            .map_err(|_| WireError::BadMac)?;
        self.seq += 1;
        Ok(payload)
    }
}

/// Reads one frame body (`mac | payload`).
pub fn read_frame(r: &mut impl Read) -> Result<Vec<u8>, WireError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > FRAME_BYTES_MAX {
        return Err(WireError::TooLong(len));
    }
    if len < MAC_BYTES {
        return Err(WireError::TooShort(len));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(body)
}

/// A client's end of a connection: sends `C` frames, checks `S` frames.
pub struct Conn<S> {
    stream: S,
    out: Sealer,
    inb: Sealer,
}

impl<S: Read + Write> Conn<S> {
    /// Reads the server's nonce and sets up both directions.
    pub fn client(mut stream: S, secret: &[u8]) -> Result<Conn<S>, WireError> {
        let mut nonce = [0u8; NONCE_BYTES];
        stream.read_exact(&mut nonce)?;
        Ok(Conn {
            stream,
            out: Sealer::new(secret, nonce, Side::Client),
            inb: Sealer::new(secret, nonce, Side::Server),
        })
    }

    pub fn send(&mut self, msg: &serde_json::Value) -> Result<(), WireError> {
        let payload = serde_json::to_vec(msg)?;
        let f = self.out.seal(&payload);
        self.stream.write_all(&f)?;
        self.stream.flush()?;
        Ok(())
    }

    pub fn recv(&mut self) -> Result<serde_json::Value, WireError> {
        let body = read_frame(&mut self.stream)?;
        let payload = self.inb.open(&body)?;
        Ok(serde_json::from_slice(payload)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_open_only_with_the_secret_nonce_order_and_direction() {
        let nonce = [7u8; NONCE_BYTES];
        let mut tx = Sealer::new(b"0123456789abcdef", nonce, Side::Client);
        let f1 = tx.seal(b"{\"a\":1}");
        let f2 = tx.seal(b"{\"a\":2}");
        let body = |f: &[u8]| read_frame(&mut &f[..]).unwrap();

        let mut rx = Sealer::new(b"0123456789abcdef", nonce, Side::Client);
        assert_eq!(rx.open(&body(&f1)).unwrap(), b"{\"a\":1}");
        assert_eq!(rx.open(&body(&f2)).unwrap(), b"{\"a\":2}");

        // Wrong secret, wrong nonce, replay out of order, the other direction: refused.
        let mut wrong = Sealer::new(b"0123456789abcdeX", nonce, Side::Client);
        assert!(matches!(wrong.open(&body(&f1)), Err(WireError::BadMac)));
        let mut other = Sealer::new(b"0123456789abcdef", [8; NONCE_BYTES], Side::Client);
        assert!(matches!(other.open(&body(&f1)), Err(WireError::BadMac)));
        let mut replay = Sealer::new(b"0123456789abcdef", nonce, Side::Client);
        assert!(matches!(replay.open(&body(&f2)), Err(WireError::BadMac)));
        let mut reflect = Sealer::new(b"0123456789abcdef", nonce, Side::Server);
        assert!(matches!(reflect.open(&body(&f1)), Err(WireError::BadMac)));

        // A flipped payload byte.
        let mut bad = body(&f1);
        let n = bad.len();
        bad[n - 2] ^= 1;
        let mut rx = Sealer::new(b"0123456789abcdef", nonce, Side::Client);
        assert!(matches!(rx.open(&bad), Err(WireError::BadMac)));
    }

    #[test]
    fn oversized_and_short_frames_are_refused_before_reading_them() {
        let huge = ((FRAME_BYTES_MAX + 1) as u32).to_be_bytes();
        assert!(matches!(
            read_frame(&mut &huge[..]),
            Err(WireError::TooLong(_))
        ));
        let short = 3u32.to_be_bytes();
        assert!(matches!(
            read_frame(&mut &short[..]),
            Err(WireError::TooShort(3))
        ));
    }
}
