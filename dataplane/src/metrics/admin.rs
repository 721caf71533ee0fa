//! The admin HTTP endpoint: `GET /metrics` (Prometheus text) and `GET /histograms` (the same
//! text `--hist-dump` writes). Plain blocking threads outside the shards: one accepts, and
//! each connection gets a short-lived thread with read and write timeouts (at most
//! `ADMIN_CONNECTIONS_MAX` at once; more are closed at once), so idle or slow connections
//! cannot keep `/metrics` from others. Metrics are copied from the shards through their
//! control channels, so serving them never blocks a shard.
//!
//! Partition moves (issue 12, f-pull; `log/pull/`), answered in JSON:
//! - `GET /partitions/pull`: every pull this node ran and how it stands;
//! - `POST /partitions/pull?topic=T&partition=P&from=HOST:PORT`: start pulling T-P from the
//!   node whose Kafka port is HOST:PORT (or resume one a restart interrupted);
//! - `POST /partitions/pull/finish?topic=T&partition=P&end=N`: copy up to N (the source's
//!   end once fenced) and serve T-P here; answers when it is served;
//! - `POST /partitions/pull/stop?topic=T&partition=P`: stop a pull (T-P stays importing);
//! - `POST /partitions/release?topic=T&partition=P&state=fenced|retired|serving`: on the
//!   source, fence T-P (produce refused; answers its settled end offset), retire it
//!   (nothing served), or serve it again.
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
use crate::log::pull::{Move, MoveError, PullError, Pulls};

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
    pulls: Arc<Pulls>,
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
                let pulls = pulls.clone();
                let spawned = std::thread::Builder::new()
                    .name("admin-conn".into())
                    .stack_size(ADMIN_THREAD_STACK_BYTES)
                    .spawn(move || {
                        if let Err(e) = handle(s, &snapshot, token.as_deref(), &pulls) {
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

fn handle(
    mut s: TcpStream,
    snapshot: &Snapshot,
    token: Option<&str>,
    pulls: &Pulls,
) -> std::io::Result<()> {
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
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let denied = path != "/metrics" && token.is_some_and(|t| !authorized(&req, t));
    let mut content_type = "text/plain; version=0.0.4";
    let (status, body) = match (method, path) {
        _ if denied => ("401 Unauthorized", "bearer token required\n".to_string()),
        (_, p) if p.starts_with("/partitions/") => {
            content_type = "application/json";
            partitions(method, p, query, pulls)
        }
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
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{challenge}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body.as_bytes())?;
    Ok(())
}

/// A query string's value for `name`, percent-decoded.
fn param(query: &str, name: &str) -> Option<String> {
    let raw = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)?
        .1;
    let b = raw.as_bytes();
    let hex = |c: Option<&u8>| c.and_then(|&c| (c as char).to_digit(16));
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], hex(b.get(i + 1)), hex(b.get(i + 2))) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
            (b'+', _, _) => out.push(b' '),
            (c, _, _) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The HTTP status a pull error answers with.
fn pull_status(e: &PullError) -> &'static str {
    match e {
        PullError::BadRequest(_) => "400 Bad Request",
        PullError::NotRunning(..)
        | PullError::Move(MoveError::NoTopic(_) | MoveError::NoPartition(..)) => "404 Not Found",
        PullError::Running(..) | PullError::Move(_) | PullError::NotSettled { .. } => {
            "409 Conflict"
        }
        PullError::TooMany => "429 Too Many Requests",
        PullError::Source(_) => "502 Bad Gateway",
        PullError::ShardSilent(_) => "503 Service Unavailable",
        PullError::Slow(_) => "504 Gateway Timeout",
        PullError::Copy(_) | PullError::Io { .. } | PullError::Failed(_) => {
            "500 Internal Server Error"
        }
    }
}

/// `/partitions/...`: partition moves (see the module's header). Answers JSON.
fn partitions(method: &str, path: &str, query: &str, pulls: &Pulls) -> (&'static str, String) {
    let err = |status: &'static str, e: String| {
        (status, serde_json::json!({ "error": e }).to_string() + "\n")
    };
    let failed = |e: PullError| err(pull_status(&e), e.to_string());
    let ok = |v: serde_json::Value| ("200 OK", v.to_string() + "\n");
    let named = || -> Result<(String, i32), PullError> {
        let topic = param(query, "topic")
            .ok_or_else(|| PullError::BadRequest("topic= is required".into()))?;
        let partition = param(query, "partition")
            .and_then(|p| p.parse::<i32>().ok())
            .ok_or_else(|| PullError::BadRequest("partition= (a number) is required".into()))?;
        Ok((topic, partition))
    };
    match (method, path) {
        ("GET", "/partitions/pull") => ok(serde_json::Value::Array(
            pulls.progress().iter().map(|p| p.to_json()).collect(),
        )),
        ("POST", "/partitions/pull") => {
            let r = named().and_then(|(t, p)| {
                let from = param(query, "from").ok_or_else(|| {
                    PullError::BadRequest(
                        "from=HOST:PORT (the source's Kafka port) is required".into(),
                    )
                })?;
                pulls.start(&t, p, &from)
            });
            match r {
                Ok(pull) => ("202 Accepted", pull.progress().to_json().to_string() + "\n"),
                Err(e) => failed(e),
            }
        }
        ("POST", "/partitions/pull/finish") => {
            let r = named().and_then(|(t, p)| {
                let end = param(query, "end")
                    .and_then(|e| e.parse::<i64>().ok())
                    .ok_or_else(|| {
                        PullError::BadRequest(
                            "end= (the source's end offset, from its release) is required".into(),
                        )
                    })?;
                pulls.finish(&t, p, end)
            });
            match r {
                Ok(p) => ok(p.to_json()),
                Err(e) => failed(e),
            }
        }
        ("POST", "/partitions/pull/stop") => match named().and_then(|(t, p)| pulls.stop(&t, p)) {
            Ok(()) => ok(serde_json::json!({ "stopped": true })),
            Err(e) => failed(e),
        },
        ("POST", "/partitions/release") => {
            let r = named().and_then(|(t, p)| {
                let to = match param(query, "state").as_deref() {
                    None | Some("fenced") => Some(Move::Fenced),
                    Some("retired") => Some(Move::Retired),
                    Some("serving") => None,
                    Some(other) => {
                        return Err(PullError::BadRequest(format!(
                            "state={other}: fenced, retired or serving"
                        )))
                    }
                };
                let f = pulls.release(&t, p, to)?;
                Ok(serde_json::json!({
                    "topic": t,
                    "partition": p,
                    "state": to.map_or("serving", Move::as_str),
                    "end_offset": f.end,
                    "log_start_offset": f.log_start,
                    "settled": f.settled,
                }))
            });
            match r {
                Ok(v) => ok(v),
                Err(e) => failed(e),
            }
        }
        ("GET" | "POST", _) => err("404 Not Found", format!("no endpoint {method} {path}")),
        _ => err(
            "405 Method Not Allowed",
            format!("{method} is not served here"),
        ),
    }
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

    #[test]
    fn query_values_are_found_and_percent_decoded() {
        let q = "topic=t.1&partition=3&from=127.0.0.1%3A9092&bad=%zz%4";
        assert_eq!(param(q, "topic").as_deref(), Some("t.1"));
        assert_eq!(param(q, "partition").as_deref(), Some("3"));
        assert_eq!(param(q, "from").as_deref(), Some("127.0.0.1:9092"));
        assert_eq!(param(q, "bad").as_deref(), Some("%zz%4"));
        assert_eq!(param(q, "end"), None);
    }
}
