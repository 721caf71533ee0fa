//! Failed authentications per client address: the bound on password guessing (issue 13).
//!
//! One [`Guard`] per node, in [`super::Users`], shared by every shard's RESP (AUTH, HELLO
//! AUTH) and Kafka (SaslAuthenticate) front ends. An address that fails `failures_max`
//! times within `window` (counted from its first failure) is refused for `block`: every
//! attempt from it is answered with an error before any password is looked at, a right
//! password included (checking it would tell the guesser when it is right). A refused
//! attempt does not lengthen the cool-down, so a client that keeps retrying gets in once
//! it ends. A success does not clear the count: a guesser that holds one account could
//! otherwise interleave its own logins to guess another's without limit.
//!
//! The table is behind a lock taken only by authentication attempts, at most
//! `AUTH_TRACKED_ADDRESSES_MAX` addresses. Refusals are counted per shard
//! (`pinion_auth_refused_total`) and logged at warn, once a second at most for the node.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::limits::{
    AUTH_BLOCK_MS, AUTH_FAILURES_MAX, AUTH_FAILURE_WINDOW_MS, AUTH_TRACKED_ADDRESSES_MAX,
};

/// The limits (`--auth-failures-max`, `--auth-failure-window-ms`, `--auth-block-ms`).
#[derive(Debug, Clone, Copy)]
pub struct AuthLimits {
    /// 0: no limit.
    pub failures_max: u32,
    pub window: Duration,
    pub block: Duration,
}

impl Default for AuthLimits {
    fn default() -> AuthLimits {
        AuthLimits {
            failures_max: AUTH_FAILURES_MAX,
            window: Duration::from_millis(AUTH_FAILURE_WINDOW_MS),
            block: Duration::from_millis(AUTH_BLOCK_MS),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The first failure of the window.
    since: Instant,
    failures: u32,
    /// Refused until then.
    until: Option<Instant>,
}

impl Entry {
    /// Nothing left to remember at `now`: no cool-down running, the window over.
    fn stale(&self, now: Instant, window: Duration) -> bool {
        match self.until {
            Some(u) => u <= now,
            None => now.saturating_duration_since(self.since) >= window,
        }
    }
}

/// Warn lines, once a second at most, with the count of refusals not logged.
#[derive(Default)]
struct Warned {
    last: Option<Instant>,
    unlogged: u64,
}

pub struct Guard {
    limits: AuthLimits,
    table: Mutex<HashMap<IpAddr, Entry>>,
    /// Attempts refused, per shard (the shard that answered them).
    refused: Vec<AtomicU64>,
    warned: Mutex<Warned>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Guard {
    pub fn new(limits: AuthLimits, shards: usize) -> Guard {
        Guard {
            limits,
            table: Mutex::new(HashMap::new()),
            refused: (0..shards.max(1)).map(|_| AtomicU64::new(0)).collect(),
            warned: Mutex::new(Warned::default()),
        }
    }

    /// May `ip` try a password now (answered on `shard`)? Err: refused, with the time the
    /// cool-down has left; counted and logged. An unknown address (a socket whose peer is
    /// gone) is not limited.
    pub fn admit(&self, ip: Option<IpAddr>, shard: usize, now: Instant) -> Result<(), Duration> {
        let Some(ip) = ip.filter(|_| self.limits.failures_max > 0) else {
            return Ok(());
        };
        let left = {
            let mut t = lock(&self.table);
            match t.get(&ip).and_then(|e| e.until) {
                Some(until) if until > now => until - now,
                Some(_) => {
                    // The cool-down is over: a fresh start.
                    t.remove(&ip);
                    return Ok(());
                }
                None => return Ok(()),
            }
        };
        if let Some(c) = self.refused.get(shard) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.warn(now, |unlogged| {
            tracing::warn!(
                %ip,
                left_ms = left.as_millis() as u64,
                unlogged,
                "authentication refused: too many failed attempts from this address (--auth-failures-max)"
            )
        });
        Err(left)
    }

    /// A failed authentication from `ip`: counted; the one that reaches the limit starts
    /// the address's cool-down.
    pub fn failed(&self, ip: Option<IpAddr>, now: Instant) {
        let Some(ip) = ip.filter(|_| self.limits.failures_max > 0) else {
            return;
        };
        let AuthLimits {
            failures_max,
            window,
            block,
        } = self.limits;
        let mut t = lock(&self.table);
        if !t.contains_key(&ip) && t.len() >= AUTH_TRACKED_ADDRESSES_MAX {
            make_room(&mut t, now, window);
            if t.len() >= AUTH_TRACKED_ADDRESSES_MAX {
                return;
            }
        }
        let e = t.entry(ip).or_insert(Entry {
            since: now,
            failures: 0,
            until: None,
        });
        if e.stale(now, window) {
            *e = Entry {
                since: now,
                failures: 0,
                until: None,
            };
        }
        if e.until.is_some() {
            return;
        }
        e.failures += 1;
        if e.failures >= failures_max {
            e.until = Some(now + block);
            let failures = e.failures;
            drop(t);
            self.warn(now, |unlogged| {
                tracing::warn!(
                    %ip,
                    failures,
                    block_ms = block.as_millis() as u64,
                    unlogged,
                    "authentication from this address refused for a cool-down: too many failed attempts"
                )
            });
        }
    }

    /// Attempts `shard` refused.
    pub fn refused(&self, shard: usize) -> u64 {
        self.refused
            .get(shard)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    fn warn(&self, now: Instant, line: impl FnOnce(u64)) {
        let mut w = lock(&self.warned);
        if w.last
            .is_some_and(|l| now.saturating_duration_since(l) < Duration::from_secs(1))
        {
            w.unlogged += 1;
            return;
        }
        w.last = Some(now);
        line(std::mem::take(&mut w.unlogged));
    }
}

/// The table is full: drop what is stale, then (if still full) the oldest address that is
/// not refused. One pass each, only when full.
fn make_room(t: &mut HashMap<IpAddr, Entry>, now: Instant, window: Duration) {
    t.retain(|_, e| !e.stale(now, window));
    if t.len() < AUTH_TRACKED_ADDRESSES_MAX {
        return;
    }
    let oldest = t
        .iter()
        .filter(|(_, e)| e.until.is_none())
        .min_by_key(|(_, e)| e.since)
        .map(|(ip, _)| *ip);
    if let Some(ip) = oldest {
        t.remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
    }

    fn guard(max: u32) -> Guard {
        Guard::new(
            AuthLimits {
                failures_max: max,
                window: Duration::from_secs(10),
                block: Duration::from_secs(5),
            },
            2,
        )
    }

    #[test]
    fn blocks_after_the_limit_and_only_that_address() {
        let g = guard(3);
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(g.admit(ip(1), 0, t0).is_ok(), "attempt {i}");
            g.failed(ip(1), t0);
        }
        assert_eq!(g.admit(ip(1), 1, t0), Err(Duration::from_secs(5)));
        assert!(g.admit(ip(2), 0, t0).is_ok());
        assert_eq!((g.refused(0), g.refused(1)), (0, 1));
        // Refusals do not lengthen the cool-down; it ends on time and the count starts over.
        let later = t0 + Duration::from_secs(4);
        assert!(g.admit(ip(1), 0, later).is_err());
        let after = t0 + Duration::from_secs(5);
        assert!(g.admit(ip(1), 0, after).is_ok());
        g.failed(ip(1), after);
        assert!(g.admit(ip(1), 0, after).is_ok());
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let g = guard(2);
        let t0 = Instant::now();
        g.failed(ip(1), t0);
        g.failed(ip(1), t0 + Duration::from_secs(11));
        assert!(g.admit(ip(1), 0, t0 + Duration::from_secs(11)).is_ok());
        g.failed(ip(1), t0 + Duration::from_secs(12));
        assert!(g.admit(ip(1), 0, t0 + Duration::from_secs(12)).is_err());
    }

    #[test]
    fn off_and_unknown_addresses_are_not_limited() {
        let g = guard(0);
        let t0 = Instant::now();
        for _ in 0..100 {
            g.failed(ip(1), t0);
        }
        assert!(g.admit(ip(1), 0, t0).is_ok());
        let g = guard(1);
        g.failed(None, t0);
        assert!(g.admit(None, 0, t0).is_ok());
    }

    #[test]
    fn a_full_table_keeps_the_refused_addresses() {
        let g = guard(1);
        let t0 = Instant::now();
        g.failed(ip(1), t0);
        let mut t = lock(&g.table);
        for i in 0..AUTH_TRACKED_ADDRESSES_MAX as u32 - 1 {
            let a = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            t.insert(
                a,
                Entry {
                    since: t0 + Duration::from_millis(1 + i as u64 % 1000),
                    failures: 0,
                    until: None,
                },
            );
        }
        drop(t);
        g.failed(ip(9), t0 + Duration::from_secs(2));
        assert!(g.admit(ip(9), 0, t0 + Duration::from_secs(2)).is_err());
        assert!(g.admit(ip(1), 0, t0 + Duration::from_secs(2)).is_err());
        assert_eq!(lock(&g.table).len(), AUTH_TRACKED_ADDRESSES_MAX);
    }
}
