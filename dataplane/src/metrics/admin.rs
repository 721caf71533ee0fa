//! The admin HTTP endpoint: `GET /metrics` (Prometheus text) and `GET /histograms` (the same
//! text `--hist-dump` writes). A plain blocking thread outside the shards; it asks the
//! shards for copies of their metrics through their control channels, so serving it never
//! blocks a shard.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::ShardMetrics;

/// Collects every shard's metrics (None if a shard did not answer in time).
pub type Snapshot = Arc<dyn Fn() -> Option<Vec<ShardMetrics>> + Send + Sync>;

/// Serve until `stop` is set. Each request is handled in turn; requests are tiny.
pub fn serve(listener: TcpListener, snapshot: Snapshot, stop: Arc<AtomicBool>) {
    for stream in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        match stream {
            Ok(s) => {
                if let Err(e) = handle(s, &snapshot) {
                    tracing::debug!(error = %e, "admin request failed");
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
