//! A shard's side of TLS connections (`crate::tls` holds the rustls glue): attaching TLS
//! to a connection accepted on a TLS listener, what a receive's decryption found, and the
//! send path, which seals the connection's plaintext output into the buffer it sends.
//!
//! A TLS connection is a normal connection otherwise: the same receive state, frame loop,
//! reply order, budget and close. It never uses direct receives (its bytes must pass
//! through rustls). Its send buffer holds ciphertext, at most `TLS_SEAL_PLAIN_BYTES_MAX` of
//! plaintext sealed per send; the plaintext not yet sealed stays in `out`.

use std::time::Duration;

use super::conn::{Conn, Life, SendState};
use super::Shard;
use crate::limits::TLS_SEAL_PLAIN_BYTES_MAX;
use crate::tls::Received;

impl Shard {
    /// Give a connection accepted on a TLS listener its TLS state; false when rustls
    /// refused to start one (the connection is then closed).
    pub(super) fn attach_tls(&mut self, conn_slot: u32, conn: &mut Conn) -> bool {
        let Some(tls) = &self.shared.tls else {
            return false;
        };
        match tls.accept() {
            Ok(t) => {
                conn.tls = Some(t);
                let timeout = self.shared.cfg.tls_handshake_timeout_ms;
                if timeout > 0 {
                    let deadline = self.now + Duration::from_millis(timeout);
                    self.tls
                        .handshakes
                        .push_back((conn_slot, conn.gen, deadline));
                }
                true
            }
            Err(e) => {
                tracing::warn!(shard = self.id, error = %e, "could not start TLS; closing");
                false
            }
        }
    }

    /// A receive's ciphertext did more than bring plaintext: TLS failed (a bad handshake,
    /// plaintext on a TLS port, a refused client certificate), or the peer sent
    /// close_notify. Either way the connection closes after what it has to send (the alert
    /// rustls queued, or the replies to what it sent before closing).
    pub(super) fn tls_received(&mut self, slot: u32, fed: Result<Received, rustls::Error>) {
        match fed {
            Ok(Received::Open) => self.process(slot),
            Ok(Received::PeerClosed) => {
                self.process(slot);
                self.close_conn(slot, false);
            }
            Err(e) => {
                self.metrics.counters.tls_failures += 1;
                if let Some(more) = self.tls.warn.due(self.now) {
                    let c = self.conns.get(slot);
                    let peer = c.and_then(|c| crate::runtime::sys::peer_ip(c.fd).ok());
                    tracing::warn!(
                        shard = self.id,
                        client = c.map_or(0, |c| c.id),
                        peer = ?peer,
                        error = %e,
                        more_since_last_line = more,
                        "TLS failed; closing the connection"
                    );
                }
                self.close_conn(slot, false);
            }
        }
    }

    /// On the tick: close connections whose handshake is not done by its deadline
    /// (--tls-handshake-timeout-ms), so a client that connects and says nothing, or stops
    /// halfway, does not hold a descriptor and 48 KiB of budget for ever. The deadlines are
    /// in accept order, so only the expired ones at the front are looked at.
    pub(super) fn check_tls_handshakes(&mut self) {
        while let Some(&(slot, gen, deadline)) = self.tls.handshakes.front() {
            if deadline > self.now {
                break;
            }
            self.tls.handshakes.pop_front();
            let Some(c) = self.conns.live(slot, gen) else {
                continue;
            };
            let late = c.is_open() && c.tls.as_ref().is_some_and(|t| t.handshaking());
            if !late {
                continue;
            }
            self.metrics.counters.tls_failures += 1;
            if let Some(more) = self.tls.warn.due(self.now) {
                let c = self.conns.get(slot);
                tracing::warn!(
                    shard = self.id,
                    client = c.map_or(0, |c| c.id),
                    peer = ?c.and_then(|c| crate::runtime::sys::peer_ip(c.fd).ok()),
                    more_since_last_line = more,
                    "TLS handshake not done within --tls-handshake-timeout-ms; closing the connection"
                );
            }
            self.close_conn(slot, true);
        }
    }

    /// The send path of a TLS connection: seal what is queued (handshake messages and
    /// alerts first, then replies) and send it; close once nothing is left.
    pub(super) fn flush_tls(&mut self, slot: u32) {
        let zc_min = self.shared.cfg.send_zc_min_bytes;
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        let (idle, open) = (c.send == SendState::Idle && !c.aborting(), c.is_open());
        let Some(tls) = c.tls.as_deref_mut() else {
            return;
        };
        if idle {
            if !open {
                let done = c.pending.is_empty() && tls.unsealed(&c.out) == 0;
                tls.closing(&mut c.out, done);
            }
            let mut buf = std::mem::take(&mut c.spare);
            buf.clear();
            tls.seal(&mut c.out, &mut buf, TLS_SEAL_PLAIN_BYTES_MAX);
            if !buf.is_empty() {
                let zc = zc_min > 0 && buf.len() >= zc_min;
                return self.send(slot, buf, 0, zc);
            }
            c.spare = buf;
        }
        if c.life != Life::CloseSent && !c.is_open() && c.quiescent() {
            self.finish_close(slot);
        }
    }
}
