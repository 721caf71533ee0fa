//! The admin HTTP endpoint: `GET /metrics` (Prometheus text) and `GET /histograms` (the same
//! text `--hist-dump` writes). Plain blocking threads outside the shards: one accepts, and
//! each connection gets a short-lived thread with read and write timeouts (at most
//! `ADMIN_CONNECTIONS_MAX` at once; more are closed at once), so idle or slow connections
//! cannot keep `/metrics` from others. Metrics are copied from the shards through their
//! control channels, so serving them never blocks a shard.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::ShardMetrics;
use crate::limits::{ADMIN_CONNECTIONS_MAX, ADMIN_THREAD_STACK_BYTES};

/// Collects every shard's metrics (None if a shard did not answer in time).
pub type Snapshot = Arc<dyn Fn() -> Option<Vec<ShardMetrics>> + Send + Sync>;

/// Serve until `stop` is set.
pub fn serve(listener: TcpListener, snapshot: Snapshot, stop: Arc<AtomicBool>) {
    let open = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        match stream {
            Ok(s) => {
                if open.load(Ordering::Relaxed) >= ADMIN_CONNECTIONS_MAX {
                    drop(s); // over the bound: closed at once
                    continue;
                }
                open.fetch_add(1, Ordering::Relaxed);
                let (snapshot, done) = (snapshot.clone(), open.clone());
                let spawned = std::thread::Builder::new()
                    .name("admin-conn".into())
                    .stack_size(ADMIN_THREAD_STACK_BYTES)
                    .spawn(move || {
                        if let Err(e) = handle(s, &snapshot) {
                            tracing::debug!(error = %e, "admin request failed");
                        }
                        done.fetch_sub(1, Ordering::Relaxed);
                    });
                if let Err(e) = spawned {
                    open.fetch_sub(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "admin connection thread failed to start");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn handle(mut s: TcpStream, snapshot: &Snapshot) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = [0u8; 4096];
    let mut n = 0;
    while n < buf.len() {
        let r = s.read(&mut buf[n..])?;
        if r == 0 {
            break;
        }
        n += r;
        if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let req = String::from_utf8_lossy(&buf[..n]);
    let mut parts = req.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, body) = match (method, path) {
        ("GET", "/metrics") => match snapshot() {
            Some(m) => ("200 OK", super::prometheus(&m, &[])),
            None => (
                "503 Service Unavailable",
                "shards did not answer\n".to_string(),
            ),
        },
        ("GET", "/histograms") => match snapshot() {
            Some(m) => ("200 OK", super::dump_text(&m)),
            None => (
                "503 Service Unavailable",
                "shards did not answer\n".to_string(),
            ),
        },
        ("GET", "/") => ("200 OK", "pinion admin: /metrics /histograms\n".to_string()),
        ("GET", _) => ("404 Not Found", "not found\n".to_string()),
        _ => ("405 Method Not Allowed", "only GET\n".to_string()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body.as_bytes())?;
    Ok(())
}
