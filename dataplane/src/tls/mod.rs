//! TLS for the RESP and Kafka listeners (rustls, with the ring provider).
//!
//! Node-wide: [`Tls`] holds the server configuration built from `--tls-cert`, `--tls-key`
//! and `--tls-ca`. Every shard reads it at accept (one uncontended read lock per TLS
//! connection, never per request); SIGHUP rebuilds it from the files ([`Tls::reload`]): new
//! connections get the new certificate, open ones keep theirs, and a configuration that
//! fails to load is logged and the old one kept.
//!
//! Per connection: [`TlsConn`] is a rustls `ServerConnection` between the socket's bytes
//! and the connection's protocol buffers. The shard's receive path hands it the ciphertext
//! it received ([`TlsConn::receive`]), which appends the plaintext to the query buffer the
//! frame loop reads, exactly as a plain connection's bytes are appended; its send path asks
//! it to seal the connection's output ([`TlsConn::seal`]), a bounded piece at a time, into
//! the buffer it then sends. Nothing here does I/O, and nothing here is `unsafe`.
//!
//! Invariants: rustls's own buffers stay bounded (`TLS_BUFFER_BYTES` for what it queues to
//! send; its received plaintext is drained after every record); the shard charges each TLS
//! connection `TLS_CONN_BYTES` of input for them; a connection whose TLS failed delivers
//! nothing more but the alert rustls queued.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};

use crate::limits::{TLS_BUFFER_BYTES, TLS_LOG_INTERVAL};

/// Why a TLS configuration could not be built, naming the file to fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {what} {path}: {error}")]
    Pem {
        what: &'static str,
        path: PathBuf,
        error: rustls::pki_types::pem::Error,
    },
    #[error("{what} {path} holds no certificate")]
    NoCertificate { what: &'static str, path: PathBuf },
    #[error("--tls-ca {path}: {error}")]
    Ca { path: PathBuf, error: String },
    #[error("--tls-cert {cert} with --tls-key {key}: {error}")]
    Config {
        cert: PathBuf,
        key: PathBuf,
        error: rustls::Error,
    },
}

/// The files a TLS configuration is built from.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Client certificates are required and verified against these roots when set.
    pub ca: Option<PathBuf>,
}

fn certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = |error| TlsError::Pem {
        what,
        path: path.to_owned(),
        error,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            what,
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// Build a server configuration from the files: TLS 1.2 and 1.3, rustls's safe defaults,
/// client certificates required when a CA is given.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certs("--tls-cert", &files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|error| TlsError::Pem {
        what: "--tls-key",
        path: files.key.clone(),
        error,
    })?;
    let config_error = |error| TlsError::Config {
        cert: files.cert.clone(),
        key: files.key.clone(),
        error,
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(config_error)?;
    let builder = match &files.ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in certs("--tls-ca", ca)? {
                roots.add(c).map_err(|e| TlsError::Ca {
                    path: ca.clone(),
                    error: e.to_string(),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::Ca {
                    path: ca.clone(),
                    error: e.to_string(),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder.with_single_cert(chain, key).map_err(config_error)?;
    Ok(Arc::new(config))
}

/// The node's TLS configuration, reloadable.
pub struct Tls {
    files: TlsFiles,
    current: RwLock<Arc<ServerConfig>>,
}

impl Tls {
    /// Load the files; start-up fails when they do not make a configuration.
    pub fn load(files: TlsFiles) -> Result<Tls, TlsError> {
        let config = server_config(&files)?;
        Ok(Tls {
            files,
            current: RwLock::new(config),
        })
    }

    /// Build the configuration again from the files (SIGHUP). On success new connections
    /// use it; on failure the one in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = server_config(&self.files)?;
        // A poisoned lock only means a reader panicked (which aborts the node in release);
        // the value inside is whole either way.
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        *current = config;
        Ok(())
    }

    /// [`Tls::reload`], with a log line either way.
    pub fn reload_logged(&self) {
        match self.reload() {
            Ok(()) => tracing::info!(
                cert = %self.files.cert.display(),
                "SIGHUP: TLS certificate reloaded; new connections use it"
            ),
            Err(e) => tracing::error!(
                error = %e,
                "SIGHUP: TLS certificate not reloaded; keeping the one in use"
            ),
        }
    }

    /// The TLS side of a new connection.
    pub fn accept(&self) -> Result<Box<TlsConn>, rustls::Error> {
        let config = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut conn = ServerConnection::new(config)?;
        conn.set_buffer_limit(Some(TLS_BUFFER_BYTES));
        Ok(Box::new(TlsConn {
            conn,
            sealed: 0,
            failed: false,
            notified: false,
        }))
    }
}

/// One connection's TLS state.
pub struct TlsConn {
    conn: ServerConnection,
    /// Bytes at the front of the connection's output already sealed (sent or being sent).
    sealed: usize,
    /// The connection's TLS failed: only the alert rustls queued is left to send.
    failed: bool,
    /// A close_notify was queued.
    notified: bool,
}

/// What [`TlsConn::receive`] found besides plaintext.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    Open,
    /// The peer sent close_notify: it will send nothing more.
    PeerClosed,
}

impl TlsConn {
    /// Ciphertext arrived: decrypt it, appending the plaintext to `query` (`grow` makes
    /// room as the plain path's query buffer grows). An error means the connection's TLS
    /// failed (a bad handshake, a client speaking plaintext, an untrusted or expired client
    /// certificate): rustls queued an alert for [`TlsConn::seal`] to send, and the
    /// connection should close once it is out.
    pub fn receive(
        &mut self,
        mut cipher: &[u8],
        query: &mut Vec<u8>,
        grow: fn(&mut Vec<u8>, usize),
    ) -> Result<Received, rustls::Error> {
        if self.failed {
            return Ok(Received::Open);
        }
        while !cipher.is_empty() {
            // Reading from a slice cannot fail; rustls refuses more only when its buffers
            // are full, which processing (and draining the plaintext) below empties.
            let n = match self.conn.read_tls(&mut cipher) {
                Ok(n) => n,
                Err(e) => return Err(self.fail(rustls::Error::General(e.to_string()))),
            };
            let state = match self.conn.process_new_packets() {
                Ok(state) => state,
                Err(e) => return Err(self.fail(e)),
            };
            let mut left = state.plaintext_bytes_to_read();
            while left > 0 {
                grow(query, left);
                let len = query.len();
                query.resize(len + left, 0);
                let got = self.conn.reader().read(&mut query[len..]).unwrap_or(0);
                query.truncate(len + got);
                if got == 0 {
                    break;
                }
                left -= got.min(left);
            }
            if state.peer_has_closed() {
                return Ok(Received::PeerClosed);
            }
            if n == 0 {
                break;
            }
        }
        Ok(Received::Open)
    }

    fn fail(&mut self, e: rustls::Error) -> rustls::Error {
        self.failed = true;
        e
    }

    /// Before sealing a closing connection: plaintext that can no longer be delivered (the
    /// handshake never finished, or TLS failed) is dropped; once everything else is out
    /// (`done`), a close_notify is queued.
    pub fn closing(&mut self, out: &mut Vec<u8>, done: bool) {
        if self.failed || self.conn.is_handshaking() {
            out.clear();
            self.sealed = 0;
        } else if done && !self.notified {
            self.notified = true;
            self.conn.send_close_notify();
        }
    }

    /// Append to `into` what should go out next: handshake messages and alerts first, then
    /// up to `max_plain` bytes of `out` sealed into records. What was sealed is taken off
    /// `out` once all of it is (until then `out` keeps it, so a large reply is not moved).
    pub fn seal(&mut self, out: &mut Vec<u8>, into: &mut Vec<u8>, max_plain: usize) {
        self.drain(into);
        if self.failed || self.conn.is_handshaking() {
            if self.failed {
                out.clear();
                self.sealed = 0;
            }
            return;
        }
        if self.sealed > out.len() {
            // The output was dropped (the connection aborts) since.
            self.sealed = 0;
        }
        let end = out.len().min(self.sealed.saturating_add(max_plain));
        while self.sealed < end {
            // rustls takes plaintext until what it has queued to send reaches its buffer
            // limit; draining the queue makes room.
            let n = self
                .conn
                .writer()
                .write(&out[self.sealed..end])
                .unwrap_or(0);
            self.sealed += n;
            let drained = self.drain(into);
            if n == 0 && drained == 0 {
                break;
            }
        }
        if self.sealed == out.len() {
            out.clear();
            self.sealed = 0;
        }
    }

    /// Move what rustls queued to send into `into`; returns how many bytes.
    fn drain(&mut self, into: &mut Vec<u8>) -> usize {
        let mut total = 0;
        while self.conn.wants_write() {
            // Writing to a Vec cannot fail or stop short.
            match self.conn.write_tls(into) {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
        total
    }

    /// Bytes queued inside rustls to send.
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// The handshake is not done yet.
    pub fn handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// The connection's TLS failed (the alert may still be going out).
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// The plaintext of `out` not yet sealed.
    pub fn unsealed(&self, out: &[u8]) -> usize {
        out.len().saturating_sub(self.sealed)
    }
}

/// A shard's TLS bookkeeping.
#[derive(Default)]
pub struct ShardTls {
    /// Connections accepted on a TLS listener, in accept order (so by deadline), with
    /// their generation and the instant their handshake must be done by.
    pub handshakes: VecDeque<(u32, u32, Instant)>,
    pub warn: WarnLimit,
}

/// A shard's rate limit for TLS warnings: one line per `TLS_LOG_INTERVAL`, with a count
/// of the rest.
#[derive(Default)]
pub struct WarnLimit {
    logged: Option<Instant>,
    unlogged: u64,
}

impl WarnLimit {
    /// Should a line be logged now? Returns how many were not logged since the last one.
    pub fn due(&mut self, now: Instant) -> Option<u64> {
        if self
            .logged
            .is_some_and(|at| now.saturating_duration_since(at) < TLS_LOG_INTERVAL)
        {
            self.unlogged += 1;
            return None;
        }
        self.logged = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }
}

impl crate::kafka::Ctx<'_> {
    /// The host and port a Kafka client should use to reach this node (Metadata,
    /// FindCoordinator): on the listener it came in on, so a client over TLS is sent to
    /// the TLS port.
    pub fn advertised(&self) -> (String, u16) {
        match (self.tls, self.node.kafka_tls_port) {
            (true, Some(port)) => (self.node.cfg.advertised(port).0, port),
            _ => self.node.cfg.advertised(self.node.kafka_port),
        }
    }
}

#[cfg(test)]
mod tests;
