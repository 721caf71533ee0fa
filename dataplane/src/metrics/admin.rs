//! The admin HTTP endpoint: `GET /metrics` (Prometheus text) and `GET /histograms` (the same
//! text `--hist-dump` writes). Plain blocking threads outside the shards: one accepts, and
//! each connection gets a short-lived thread with read and write timeouts (at most
//! `ADMIN_CONNECTIONS_MAX` at once; more are closed at once), so idle or slow connections
//! cannot keep `/metrics` from others. Metrics are copied from the shards through their
//! control channels, so serving them never blocks a shard.
//!
//! It binds to loopback by default (`--admin-listen 127.0.0.1:9644`). With `--admin-token`,
//! every path but `/metrics` (which Prometheus scrapes) needs `Authorization: Bearer
//! <token>`, compared in constant time; without it, 401.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::ShardMetrics;
use crate::limits::{ADMIN_CONNECTIONS_MAX, ADMIN_THREAD_STACK_BYTES};

/// Collects every shard's metrics (None if a shard did not answer in time).
pub type Snapshot = Arc<dyn Fn() -> Option<Vec<ShardMetrics>> + Send + Sync>;

/// `--admin-token`: the token itself, or `@PATH` to read it from a file's first line.
pub fn resolve_token(arg: Option<&str>) -> std::io::Result<Option<Arc<str>>> {
    let Some(arg) = arg else {
        return Ok(None);
    };
    let token = match arg.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)?
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string(),
        None => arg.to_string(),
    };
    if token.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "--admin-token is empty",
        ));
    }
    Ok(Some(token.into()))
}

/// Does the request carry `Authorization: Bearer <token>`?
fn authorized(req: &str, token: &str) -> bool {
    req.lines().skip(1).any(|line| {
        let Some((name, value)) = line.split_once(':') else {
            return false;
        };
        if !name.trim().eq_ignore_ascii_case("authorization") {
            return false;
        }
        let mut v = value.trim().splitn(2, ' ');
        let scheme = v.next().unwrap_or("");
        let given = v.next().unwrap_or("").trim();
        scheme.eq_ignore_ascii_case("bearer")
            && crate::auth::scram::ct_eq(given.as_bytes(), token.as_bytes())
    })
}

/// Serve until `stop` is set.
pub fn serve(
    listener: TcpListener,
    snapshot: Snapshot,
    stop: Arc<AtomicBool>,
    token: Option<Arc<str>>,
) {
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
                let (snapshot, done, token) = (snapshot.clone(), open.clone(), token.clone());
                let spawned = std::thread::Builder::new()
                    .name("admin-conn".into())
                    .stack_size(ADMIN_THREAD_STACK_BYTES)
                    .spawn(move || {
                        if let Err(e) = handle(s, &snapshot, token.as_deref()) {
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

fn handle(mut s: TcpStream, snapshot: &Snapshot, token: Option<&str>) -> std::io::Result<()> {
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
    let denied = path != "/metrics" && token.is_some_and(|t| !authorized(&req, t));
    let (status, body) = match (method, path) {
        _ if denied => ("401 Unauthorized", "bearer token required\n".to_string()),
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
    let challenge = if denied {
        "WWW-Authenticate: Bearer realm=\"pinion\"\r\n"
    } else {
        ""
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\n{challenge}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_checked() {
        let req = |h: &str| format!("GET /histograms HTTP/1.1\r\nHost: x\r\n{h}\r\n\r\n");
        assert!(authorized(&req("Authorization: Bearer s3cret"), "s3cret"));
        assert!(authorized(
            &req("authorization:   bearer s3cret "),
            "s3cret"
        ));
        assert!(!authorized(&req("Authorization: Bearer s3cre"), "s3cret"));
        assert!(!authorized(&req("Authorization: Basic s3cret"), "s3cret"));
        assert!(!authorized(&req("X-Token: s3cret"), "s3cret"));
        assert!(!authorized("GET / HTTP/1.1\r\n\r\n", "s3cret"));
    }
}
