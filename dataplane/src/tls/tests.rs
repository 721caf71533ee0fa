//! The rustls glue against a real rustls client, bytes moved in memory.
//!
//! `testdata/` holds a CA, a server certificate for localhost and 127.0.0.1 (serial 1001)
//! and a client certificate (serial 2001), P-256, valid for 100 years, made with the
//! openssl CLI (`openssl req -x509 ... -days 36500` for the CA, `openssl x509 -req -CA ...`
//! for the others); the CA's key was not kept.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use super::*;

fn data(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/src/tls/testdata")).join(name)
}

fn files(ca: bool) -> TlsFiles {
    TlsFiles {
        cert: data("server.pem"),
        key: data("server.key"),
        ca: ca.then(|| data("ca.pem")),
    }
}

fn client(with_cert: bool) -> ClientConnection {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(data("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let b = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = if with_cert {
        let chain = CertificateDer::pem_file_iter(data("client.pem"))
            .unwrap()
            .map(|c| c.unwrap())
            .collect();
        let key = PrivateKeyDer::from_pem_file(data("client.key")).unwrap();
        b.with_client_auth_cert(chain, key).unwrap()
    } else {
        b.with_no_client_auth()
    };
    let name = ServerName::try_from("localhost").unwrap();
    ClientConnection::new(Arc::new(config), name).unwrap()
}

fn grow(q: &mut Vec<u8>, more: usize) {
    q.reserve(more);
}

/// The server's connection, its query buffer (plaintext in) and output (plaintext out).
struct Server {
    tls: Box<TlsConn>,
    query: Vec<u8>,
    out: Vec<u8>,
}

impl Server {
    fn new(ca: bool) -> Server {
        Server {
            tls: Tls::load(files(ca)).unwrap().accept().unwrap(),
            query: Vec::new(),
            out: Vec::new(),
        }
    }
}

/// Move bytes both ways until neither side has anything to send. Returns the server's
/// error, if its TLS failed.
fn pump(c: &mut ClientConnection, s: &mut Server) -> Result<(), rustls::Error> {
    let mut failed = Ok(());
    loop {
        let mut up = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut up).unwrap();
        }
        if !up.is_empty() {
            if let Err(e) = s.tls.receive(&up, &mut s.query, grow) {
                failed = Err(e);
            }
        }
        let mut down = Vec::new();
        s.tls.seal(&mut s.out, &mut down, 256 << 10);
        if !down.is_empty() {
            let mut rd = &down[..];
            while !rd.is_empty() {
                c.read_tls(&mut rd).unwrap();
                if c.process_new_packets().is_err() {
                    break;
                }
            }
        }
        if up.is_empty() && down.is_empty() {
            return failed;
        }
    }
}

fn read_all(c: &mut ClientConnection) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    while let Ok(n) = c.reader().read(&mut buf) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    got
}

#[test]
fn plaintext_flows_both_ways_after_the_handshake() {
    let mut s = Server::new(false);
    let mut c = client(false);
    c.writer().write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
    pump(&mut c, &mut s).unwrap();
    assert!(!c.is_handshaking());
    assert_eq!(s.query, b"*1\r\n$4\r\nPING\r\n");
    s.out.extend_from_slice(b"+PONG\r\n");
    pump(&mut c, &mut s).unwrap();
    assert!(s.out.is_empty());
    assert_eq!(read_all(&mut c), b"+PONG\r\n");
}

#[test]
fn a_large_reply_is_sealed_a_bounded_piece_per_send() {
    let mut s = Server::new(false);
    let mut c = client(false);
    pump(&mut c, &mut s).unwrap();
    let reply: Vec<u8> = (0..(1usize << 20) + 123).map(|i| i as u8).collect();
    s.out = reply.clone();
    let mut got = Vec::new();
    let mut sends = 0;
    while !s.out.is_empty() {
        let mut down = Vec::new();
        s.tls.seal(&mut s.out, &mut down, 256 << 10);
        sends += 1;
        // The ciphertext of one send stays near the piece, not the reply.
        assert!(down.len() <= (256 << 10) + 4096, "{}", down.len());
        // The output keeps what is sealed until all of it is.
        assert!(s.out.is_empty() || s.out.len() == reply.len());
        let mut rd = &down[..];
        while !rd.is_empty() {
            c.read_tls(&mut rd).unwrap();
            c.process_new_packets().unwrap();
            got.extend(read_all(&mut c));
        }
    }
    assert_eq!(sends, 5);
    assert_eq!(got, reply);
}

#[test]
fn plaintext_on_a_tls_port_fails_with_an_alert() {
    let mut s = Server::new(false);
    s.out.extend_from_slice(b"-ERR never sent\r\n");
    let e = s
        .tls
        .receive(b"*1\r\n$4\r\nPING\r\n", &mut s.query, grow)
        .unwrap_err();
    assert!(s.tls.failed(), "{e}");
    assert!(s.query.is_empty());
    let mut down = Vec::new();
    s.tls.closing(&mut s.out, false);
    s.tls.seal(&mut s.out, &mut down, 256 << 10);
    // An alert record (content type 21), and nothing of the plaintext.
    assert_eq!(down.first(), Some(&21), "{down:?}");
    assert!(s.out.is_empty());
    // Further bytes are ignored, not decrypted.
    assert_eq!(
        s.tls.receive(b"more", &mut s.query, grow),
        Ok(Received::Open)
    );
    assert!(s.query.is_empty());
}

#[test]
fn with_a_ca_a_client_certificate_is_required() {
    let mut s = Server::new(true);
    let mut c = client(false);
    let e = pump(&mut c, &mut s).unwrap_err();
    assert!(matches!(e, rustls::Error::NoCertificatesPresented), "{e:?}");

    let mut s = Server::new(true);
    let mut c = client(true);
    c.writer().write_all(b"PING").unwrap();
    pump(&mut c, &mut s).unwrap();
    assert_eq!(s.query, b"PING");
}

#[test]
fn a_closing_connection_says_close_notify_once_its_replies_are_out() {
    let mut s = Server::new(false);
    let mut c = client(false);
    pump(&mut c, &mut s).unwrap();
    s.out.extend_from_slice(b"+OK\r\n");
    let done = s.tls.unsealed(&s.out) == 0;
    s.tls.closing(&mut s.out, done);
    pump(&mut c, &mut s).unwrap();
    assert_eq!(read_all(&mut c), b"+OK\r\n");
    s.tls.closing(&mut s.out, true);
    assert!(s.tls.wants_write());
    pump(&mut c, &mut s).unwrap();
    let state = c.process_new_packets().unwrap();
    assert!(state.peer_has_closed());
    // A handshake that never finished delivers nothing (a refusal's RESP error).
    let mut s = Server::new(false);
    s.out
        .extend_from_slice(b"-ERR max number of clients reached\r\n");
    s.tls.closing(&mut s.out, false);
    assert!(s.out.is_empty() && !s.tls.wants_write());
}

#[test]
fn a_peer_close_notify_is_reported() {
    let mut s = Server::new(false);
    let mut c = client(false);
    pump(&mut c, &mut s).unwrap();
    c.send_close_notify();
    let mut up = Vec::new();
    c.write_tls(&mut up).unwrap();
    assert_eq!(
        s.tls.receive(&up, &mut s.query, grow),
        Ok(Received::PeerClosed)
    );
}

#[test]
fn a_reload_that_fails_keeps_the_configuration_in_use() {
    let dir = std::env::temp_dir().join(format!("pinion-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::copy(data("server.pem"), &cert).unwrap();
    std::fs::copy(data("server.key"), &key).unwrap();
    let tls = Tls::load(TlsFiles {
        cert: cert.clone(),
        key: key.clone(),
        ca: None,
    })
    .unwrap();
    tls.reload().unwrap();
    std::fs::write(&key, "not a key").unwrap();
    let e = tls.reload().unwrap_err();
    assert!(e.to_string().contains("--tls-key"), "{e}");
    // New connections still get the old certificate.
    let mut s = Server {
        tls: tls.accept().unwrap(),
        query: Vec::new(),
        out: Vec::new(),
    };
    let mut c = client(false);
    c.writer().write_all(b"x").unwrap();
    pump(&mut c, &mut s).unwrap();
    assert_eq!(s.query, b"x");
    std::fs::remove_file(&cert).unwrap();
    assert!(tls.reload().unwrap_err().to_string().contains("--tls-cert"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_key_that_does_not_match_the_certificate_is_refused() {
    let e = server_config(&TlsFiles {
        cert: data("server.pem"),
        key: data("client.key"),
        ca: None,
    })
    .unwrap_err();
    assert!(e.to_string().contains("--tls-key"), "{e}");
}
