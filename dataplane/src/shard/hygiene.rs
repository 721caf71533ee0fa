//! Connection hygiene (issue 13): who may connect, and which connections are closed for
//! holding resources while doing nothing useful.
//!
//! At accept ([`Shard::admit`]): the per-source-address limit (`--max-connections-per-ip`,
//! counted node-wide in [`Peers`], RESP and Kafka together) and Redis's protected mode (no
//! `--requirepass`: RESP clients from other than loopback get `-DENIED`). A refused RESP
//! client reads the error before the close; a Kafka client is closed, as a broker does.
//!
//! On every tick ([`Shard::check_hygiene`], 100 ms; no timer or thread per connection):
//! - idle connections: a RESP one quiet for Redis's `timeout` seconds (`--client-idle-timeout-s`,
//!   changed by `CONFIG SET timeout`), a Kafka one for `--kafka-idle-timeout-ms` (Kafka's
//!   connections.max.idle.ms). Quiet means no byte received and no reply sent; a connection
//!   that is owed a reply (a parked BLPOP, a long-polling Fetch, any request in flight) or
//!   has output still going out is never idle, as Redis exempts blocked clients.
//! - slowloris: a request still incomplete `--partial-frame-timeout-s` after its first byte
//!   was seen must have arrived at an average of at least `PARTIAL_FRAME_MIN_BYTES_PER_S`
//!   since then, else the connection is closed (with a log line at most once a second per
//!   shard). A rate rather than a plain deadline: a plain deadline either lets a client
//!   that sends one byte every few seconds hold a connection for ever (if it resets on
//!   progress) or cuts a 500 MB value on a slow link (if it does not); a minimum average
//!   rate does neither, as Apache's mod_reqtimeout does.
//!
//! State: each connection's [`ConnClock`] (its last activity, bytes received, and the
//! incomplete frame at the front of its query buffer), stamped by the receive and send
//! completions; the shard's [`Hygiene`] (the log's rate limit, a reused list).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::conn::{Conn, Life, Proto, SendState};
use super::{Shard, LISTENER_RESP};
use crate::limits::{HYGIENE_LOG_INTERVAL, PARTIAL_FRAME_MIN_BYTES_PER_S};
use crate::proto::resp::errors::{DENIED_PROTECTED, MAX_CLIENTS_PER_IP};

/// Connections open per source address across the node (touched at accept and close only).
#[derive(Default)]
pub struct Peers {
    counts: Mutex<HashMap<IpAddr, usize>>,
}

impl Peers {
    /// Count one more connection from `ip`, unless it already has `limit`.
    pub fn acquire(&self, ip: IpAddr, limit: usize) -> bool {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= limit {
            if *n == 0 {
                counts.remove(&ip);
            }
            return false;
        }
        *n += 1;
        true
    }

    pub fn release(&self, ip: IpAddr) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&ip);
            }
        }
    }
}

/// A connection's clock for the idle and slowloris checks.
#[derive(Debug, Default, Clone)]
pub struct ConnClock {
    /// The last byte received or reply sent (set at accept).
    last_active: Option<Instant>,
    /// Bytes received over the connection's life.
    rx: u64,
    /// The incomplete frame at the front of the query buffer: when a tick first saw it, and
    /// `rx` at its first byte (which tells one frame from the next).
    partial: Option<(Instant, u64)>,
    /// The source address, when counted in [`Peers`].
    pub peer: Option<IpAddr>,
}

impl ConnClock {
    /// `n` bytes arrived.
    pub fn input(&mut self, n: usize, now: Instant) {
        self.rx += n as u64;
        self.last_active = Some(now);
    }

    /// A reply went out.
    pub fn output(&mut self, now: Instant) {
        self.last_active = Some(now);
    }
}

/// What a tick sees of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    /// Owed a reply or sending one: never idle.
    pub busy: bool,
    /// Bytes of an incomplete request at the front of the query buffer (0: none).
    pub partial_bytes: usize,
    /// This connection's idle timeout (None: off).
    pub idle: Option<Duration>,
    /// --partial-frame-timeout-s (None: off).
    pub partial: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    Idle,
    /// A slowloris: the request's bytes so far, and for how long it has been arriving.
    Slow {
        bytes: usize,
        held: Duration,
    },
}

/// Decide about one connection at `now`; updates its clock.
pub fn judge(clock: &mut ConnClock, seen: Seen, now: Instant) -> Verdict {
    let last = *clock.last_active.get_or_insert(now);
    if seen.partial_bytes == 0 {
        clock.partial = None;
    } else {
        let first_byte = clock.rx.saturating_sub(seen.partial_bytes as u64);
        match clock.partial {
            Some((since, at)) if at == first_byte => {
                let held = now.saturating_duration_since(since);
                let floor = PARTIAL_FRAME_MIN_BYTES_PER_S as f64 * held.as_secs_f64();
                if seen.partial.is_some_and(|t| held > t) && (seen.partial_bytes as f64) < floor {
                    return Verdict::Slow {
                        bytes: seen.partial_bytes,
                        held,
                    };
                }
            }
            _ => clock.partial = Some((now, first_byte)),
        }
    }
    let quiet = now.saturating_duration_since(last);
    if !seen.busy && seen.idle.is_some_and(|t| quiet > t) {
        return Verdict::Idle;
    }
    Verdict::Keep
}

/// A shard's hygiene state.
#[derive(Default)]
pub struct Hygiene {
    logged: Option<Instant>,
    unlogged: u64,
    closing: Vec<(u32, Verdict)>,
    /// Index of Redis's `timeout` among `config::INERT_SETTINGS`.
    timeout_index: Option<usize>,
}

/// Index of the `timeout` setting CONFIG SET changes.
fn timeout_index() -> Option<usize> {
    crate::config::INERT_SETTINGS
        .iter()
        .position(|s| s.name == "timeout")
}

/// Make CONFIG GET timeout report `--client-idle-timeout-s` until CONFIG SET changes it.
pub fn seed_timeout(store: &mut crate::cache::store::Store, seconds: u64) {
    if let (Some(index), true) = (timeout_index(), seconds > 0) {
        crate::cache::cmd::server::configure(
            store,
            &crate::cache::cmd::server::Setting::Inert {
                index,
                value: seconds.to_string().into(),
            },
        );
    }
}

impl Shard {
    /// Admit an accepted connection, or say what to refuse it with (RESP reads the text; a
    /// Kafka client is closed). Counts it in [`Peers`] when admitted under a per-address limit.
    pub(super) fn admit(&mut self, conn: &mut Conn, kind: u32) -> Result<(), &'static str> {
        let cfg = &self.shared.cfg;
        conn.hyg.last_active = Some(self.now);
        let protect =
            kind == LISTENER_RESP && cfg.protected_mode && self.shared.users.default_open();
        let per_ip = cfg.max_connections_per_ip;
        if !protect && per_ip == 0 {
            return Ok(());
        }
        // A socket whose peer is already gone has no address; it fails its first receive.
        let ip = crate::runtime::sys::peer_ip(conn.fd).ok();
        if protect && !ip.is_some_and(|ip| ip.is_loopback()) {
            return Err(DENIED_PROTECTED);
        }
        if let (Some(ip), true) = (ip, per_ip > 0) {
            if !self.shared.peers.acquire(ip, per_ip) {
                return Err(MAX_CLIENTS_PER_IP);
            }
            conn.hyg.peer = Some(ip);
        }
        Ok(())
    }

    /// A connection's slot is freed: it no longer counts against its address.
    pub(super) fn forget_peer(&self, conn: &Conn) {
        if let Some(ip) = conn.hyg.peer {
            self.shared.peers.release(ip);
        }
    }

    /// Close idle connections and slowloris ones (called from the tick).
    pub(super) fn check_hygiene(&mut self) {
        let cfg = &self.shared.cfg;
        let secs = |s: u64| (s > 0).then(|| Duration::from_secs(s));
        let index = *self
            .hygiene
            .timeout_index
            .get_or_insert_with(|| timeout_index().unwrap_or(usize::MAX));
        let resp_idle = secs(
            self.store
                .inert
                .get(index)
                .and_then(|v| v.parse().ok())
                .unwrap_or(cfg.client_idle_timeout_s),
        );
        let kafka_idle = (cfg.kafka_idle_timeout_ms > 0)
            .then(|| Duration::from_millis(cfg.kafka_idle_timeout_ms));
        let partial = secs(cfg.partial_frame_timeout_s);
        if resp_idle.is_none() && kafka_idle.is_none() && partial.is_none() {
            return;
        }
        let max_inflight = cfg.max_inflight_per_conn;
        let mut closing = std::mem::take(&mut self.hygiene.closing);
        let slots: Vec<u32> = self.conns.slots().collect();
        for slot in slots {
            let Some(c) = self.conns.get_mut(slot) else {
                continue;
            };
            if c.life != Life::Open {
                continue;
            }
            // Every whole frame is taken off the buffer unless the connection is paused
            // (a full mesh lane, too many requests in flight, the memory budget): then what
            // is left may be whole requests waiting their turn, not a slow one.
            let paused = c.blocked || c.budget_paused || !c.may_launch(max_inflight);
            let seen = Seen {
                busy: !c.pending.is_empty()
                    || !c.out.is_empty()
                    || c.send != SendState::Idle
                    || matches!(&c.proto, Proto::Resp(s) if !s.blocked_on.is_empty()),
                partial_bytes: if paused { 0 } else { c.query.len() },
                idle: match c.proto {
                    Proto::Resp(_) => resp_idle,
                    Proto::Kafka => kafka_idle,
                },
                partial,
            };
            let verdict = judge(&mut c.hyg, seen, self.now);
            if verdict != Verdict::Keep {
                closing.push((slot, verdict));
            }
        }
        for (slot, verdict) in closing.drain(..) {
            let client = self.conns.get(slot).map_or(0, |c| c.id);
            match verdict {
                Verdict::Idle => {
                    tracing::debug!(shard = self.id, client, "closing idle client");
                    self.close_conn(slot, false);
                }
                Verdict::Slow { bytes, held } => {
                    self.log_slow(client, bytes, held);
                    self.close_conn(slot, true);
                }
                Verdict::Keep => {}
            }
        }
        self.hygiene.closing = closing;
    }

    /// One line a second at most, with how many were not logged since.
    fn log_slow(&mut self, client: u64, bytes: usize, held: Duration) {
        let h = &mut self.hygiene;
        if h.logged
            .is_some_and(|at| self.now.saturating_duration_since(at) < HYGIENE_LOG_INTERVAL)
        {
            h.unlogged += 1;
            return;
        }
        h.logged = Some(self.now);
        let more = std::mem::take(&mut h.unlogged);
        tracing::warn!(
            shard = self.id,
            client,
            bytes,
            held_ms = held.as_millis() as u64,
            more_since_last_line = more,
            "closing a client whose request arrives too slowly (--partial-frame-timeout-s)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn seen(busy: bool, partial_bytes: usize) -> Seen {
        Seen {
            busy,
            partial_bytes,
            idle: Some(S),
            partial: Some(S),
        }
    }

    #[test]
    fn idle_only_when_quiet_and_owed_nothing() {
        let t0 = Instant::now();
        let mut c = ConnClock::default();
        c.output(t0);
        assert_eq!(judge(&mut c, seen(false, 0), t0 + S / 2), Verdict::Keep);
        assert_eq!(judge(&mut c, seen(true, 0), t0 + 5 * S), Verdict::Keep);
        assert_eq!(judge(&mut c, seen(false, 0), t0 + 2 * S), Verdict::Idle);
        c.input(10, t0 + 2 * S);
        assert_eq!(
            judge(&mut c, seen(false, 0), t0 + 2 * S + S / 2),
            Verdict::Keep
        );
        let off = Seen {
            idle: None,
            ..seen(false, 0)
        };
        assert_eq!(judge(&mut c, off, t0 + 100 * S), Verdict::Keep);
    }

    #[test]
    fn a_stalled_partial_frame_is_slow_a_steady_one_is_not() {
        let t0 = Instant::now();
        let mut c = ConnClock::default();
        c.input(20, t0);
        // First seen now; held a second and a half with 20 bytes: below 1 KiB/s.
        assert_eq!(judge(&mut c, seen(true, 20), t0), Verdict::Keep);
        assert_eq!(judge(&mut c, seen(true, 20), t0 + S / 2), Verdict::Keep);
        let v = judge(&mut c, seen(true, 20), t0 + 3 * S / 2);
        assert!(matches!(v, Verdict::Slow { bytes: 20, .. }), "{v:?}");

        // A large value arriving at 100 KB/s is kept past the deadline.
        let mut c = ConnClock::default();
        for tick in 0..50u32 {
            c.input(10_000, t0 + tick * S / 10);
            let held = (tick + 1) as usize * 10_000;
            assert_eq!(
                judge(&mut c, seen(false, held), t0 + tick * S / 10),
                Verdict::Keep
            );
        }

        // Frames that complete reset the clock, however long the connection streams.
        let mut c = ConnClock::default();
        for tick in 0..100u32 {
            c.input(1000, t0 + tick * S / 10);
            // The buffer always ends in a fresh 100-byte partial frame.
            assert_eq!(
                judge(&mut c, seen(false, 100), t0 + tick * S / 10),
                Verdict::Keep
            );
        }
        let off = Seen {
            partial: None,
            ..seen(true, 100)
        };
        assert_eq!(judge(&mut c, off, t0 + 100 * S), Verdict::Keep);
    }

    #[test]
    fn peers_count_per_address() {
        let p = Peers::default();
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(p.acquire(a, 2) && p.acquire(a, 2));
        assert!(!p.acquire(a, 2));
        assert!(p.acquire(b, 2));
        p.release(a);
        assert!(p.acquire(a, 2));
        p.release(a);
        p.release(a);
        p.release(b);
        assert!(p.counts.lock().unwrap().is_empty());
    }
}
