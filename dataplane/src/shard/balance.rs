//! Connection balancing inside a node (`--conn-balance`, issue 12).
//!
//! With `reuseport` every shard has its own `SO_REUSEPORT` listener and the kernel picks the
//! shard by a hash of the connection's addresses. With the other policies shard 0 alone has
//! the listeners: it accepts, picks a shard here ([`Picker`]) and hands the socket to it as a
//! [`crate::mesh::Msg::Adopt`] (descriptors are process-wide). The chosen shard registers it
//! exactly as if it had accepted it (connection limits, per-address limit, TLS): a shard at
//! its limit refuses it like any over-limit connection.
//!
//! Shared state ([`Balance`], in `NodeShared`): the open connections per shard (taken when a
//! shard is picked, given back when the connection's socket is closed) and the per-shard
//! weights. The weights are atomics so that whoever sets them later (the control plane)
//! only stores a new value ([`Balance::set_weight`]); the next pick uses it. Under
//! `--control` the membership thread sets them from each committed map
//! ([`Balance::set_weights`], `cluster/member.rs`); a change of weights also restarts the
//! pickers' smooth weighted round robin, so the new weights hold exactly from the next pick.
//!
//! Invariant: a picked shard's count is taken exactly once per accepted socket and given
//! back exactly once, when that socket is closed (by the ring, or at drain); the socket is
//! an `OwnedFd` while it travels, so a message dropped undelivered closes it.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::mesh::Msg;

/// How a node spreads new connections over its shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConnBalance {
    /// Each shard listens with SO_REUSEPORT; the kernel picks by a hash of the addresses.
    Reuseport,
    /// One listener; shards in turn.
    RoundRobin,
    /// One listener; smooth weighted round robin over `--shard-weights`.
    Weighted,
    /// One listener; the shard with the fewest open connections, ties in turn.
    LeastConn,
}

/// The node-wide balancing state.
pub struct Balance {
    pub policy: ConnBalance,
    /// Per-shard weights of the `weighted` policy (the control plane's hook).
    weights: Vec<AtomicU32>,
    /// Open connections per shard, RESP and Kafka, plain and TLS together.
    conns: Vec<AtomicUsize>,
    /// Bumped after the weights change ([`Balance::set_weights`]): pickers start over.
    generation: AtomicU64,
}

impl Balance {
    /// `weights` is empty (all 1) or one per shard, not all 0.
    pub fn new(policy: ConnBalance, n: usize, weights: &[u32]) -> Result<Balance, String> {
        if !weights.is_empty() && weights.len() != n {
            return Err(format!(
                "--shard-weights has {} weights for {n} shards",
                weights.len()
            ));
        }
        if !weights.is_empty() && weights.iter().all(|&w| w == 0) {
            return Err("--shard-weights: at least one weight must be positive".into());
        }
        Ok(Balance {
            policy,
            weights: (0..n)
                .map(|i| AtomicU32::new(weights.get(i).copied().unwrap_or(1)))
                .collect(),
            conns: (0..n).map(|_| AtomicUsize::new(0)).collect(),
            generation: AtomicU64::new(0),
        })
    }

    /// One listener on shard 0 that hands sockets out, rather than one per shard.
    pub fn handed_off(&self) -> bool {
        self.policy != ConnBalance::Reuseport
    }

    /// Set a shard's weight; the next pick uses it (for the control plane).
    pub fn set_weight(&self, shard: usize, w: u32) {
        if let Some(a) = self.weights.get(shard) {
            a.store(w, Ordering::Relaxed);
        }
    }

    /// Sets every shard's weight (`weights[i]` for shard `i`; shards past its end keep
    /// theirs) and, if any changed, restarts the pickers' rounds. Returns whether any did.
    pub fn set_weights(&self, weights: &[u32]) -> bool {
        let mut changed = false;
        for (a, &w) in self.weights.iter().zip(weights) {
            changed |= a.swap(w, Ordering::Relaxed) != w;
        }
        if changed {
            self.generation.fetch_add(1, Ordering::Release);
        }
        changed
    }

    pub fn weight(&self, shard: usize) -> u32 {
        self.weights
            .get(shard)
            .map_or(0, |a| a.load(Ordering::Relaxed))
    }

    /// A connection was given to `shard`.
    pub fn opened(&self, shard: usize) {
        self.conns[shard].fetch_add(1, Ordering::Relaxed);
    }

    /// A connection of `shard` closed.
    pub fn closed(&self, shard: usize) {
        self.conns[shard].fetch_sub(1, Ordering::Relaxed);
    }

    pub fn open(&self, shard: usize) -> usize {
        self.conns[shard].load(Ordering::Relaxed)
    }

    pub fn shards(&self) -> usize {
        self.conns.len()
    }
}

/// The accepting shard's choice state, one per protocol (RESP and Kafka connections are
/// spread independently, so alternating clients of both do not land one protocol on one
/// shard).
#[derive(Debug, Default, Clone)]
pub struct Picker {
    /// Round robin's next shard (and least-conn's tie break).
    next: usize,
    /// Smooth weighted round robin's current weights.
    current: Vec<i64>,
    /// The weights' generation `current` was built on.
    generation: u64,
}

impl Picker {
    /// The shard the next connection goes to.
    pub fn pick(&mut self, b: &Balance) -> usize {
        let n = b.shards();
        match b.policy {
            ConnBalance::Reuseport | ConnBalance::RoundRobin => self.round_robin(n),
            ConnBalance::Weighted => self.weighted(b),
            ConnBalance::LeastConn => {
                // Scan from the round-robin position: the first shard with the fewest wins.
                let mut best = self.next % n;
                let mut least = b.open(best);
                for k in 1..n {
                    let s = (self.next + k) % n;
                    let open = b.open(s);
                    if open < least {
                        (best, least) = (s, open);
                    }
                }
                self.next = best + 1;
                best
            }
        }
    }

    fn round_robin(&mut self, n: usize) -> usize {
        let s = self.next % n;
        self.next = s + 1;
        s
    }

    /// nginx's smooth weighted round robin: every shard gains its weight, the one with the
    /// most goes and loses the total. Over any run of `total` picks each shard gets exactly
    /// its weight, interleaved rather than in bursts. All weights 0 (set so by hand): turns.
    fn weighted(&mut self, b: &Balance) -> usize {
        let n = b.shards();
        let generation = b.generation.load(Ordering::Acquire);
        if generation != self.generation {
            self.generation = generation;
            self.current.clear();
        }
        self.current.resize(n, 0);
        let mut total = 0i64;
        let mut best: Option<usize> = None;
        for s in 0..n {
            let w = i64::from(b.weight(s));
            if w == 0 {
                self.current[s] = 0;
                continue;
            }
            self.current[s] += w;
            total += w;
            if best.is_none_or(|x| self.current[s] > self.current[x]) {
                best = Some(s);
            }
        }
        match best {
            Some(s) => {
                self.current[s] -= total;
                s
            }
            None => self.round_robin(n),
        }
    }
}

impl super::Shard {
    /// An accepted socket goes to the shard the policy picks: served here, or handed over
    /// the mesh in this turn's batch for that shard.
    pub(super) fn route_accepted(&mut self, fd: OwnedFd, kind: u32, tls: bool) {
        let b = &self.shared.balance;
        let to = if b.handed_off() {
            self.pickers[kind as usize & 1].pick(b)
        } else {
            self.id
        };
        b.opened(to);
        if to == self.id {
            self.adopt(fd, kind, tls, false);
        } else {
            tracing::trace!(shard = self.id, to, kind, "handing a connection over");
            self.send_to(to, Msg::Adopt { fd, kind, tls });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(b: &Balance, picks: usize) -> Vec<usize> {
        let mut p = Picker::default();
        let mut c = vec![0; b.shards()];
        for _ in 0..picks {
            c[p.pick(b)] += 1;
        }
        c
    }

    #[test]
    fn round_robin_takes_turns() {
        let b = Balance::new(ConnBalance::RoundRobin, 3, &[]).unwrap();
        let mut p = Picker::default();
        let got: Vec<usize> = (0..7).map(|_| p.pick(&b)).collect();
        assert_eq!(got, [0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn smooth_weighted_round_robin_interleaves_by_weight() {
        let b = Balance::new(ConnBalance::Weighted, 3, &[5, 1, 1]).unwrap();
        let mut p = Picker::default();
        let got: Vec<usize> = (0..7).map(|_| p.pick(&b)).collect();
        // nginx's example sequence for weights 5, 1, 1.
        assert_eq!(got, [0, 0, 1, 0, 2, 0, 0]);
        let b = Balance::new(ConnBalance::Weighted, 2, &[3, 1]).unwrap();
        assert_eq!(counts(&b, 400), [300, 100]);
    }

    #[test]
    fn a_weight_set_later_is_used_and_zero_gets_nothing() {
        let b = Balance::new(ConnBalance::Weighted, 2, &[]).unwrap();
        assert_eq!(counts(&b, 10), [5, 5]);
        b.set_weight(1, 0);
        assert_eq!(counts(&b, 10), [10, 0]);
        b.set_weight(0, 0);
        assert_eq!(counts(&b, 10), [5, 5], "all zero: in turn");
    }

    #[test]
    fn new_weights_restart_the_round_and_hold_exactly() {
        let b = Balance::new(ConnBalance::Weighted, 2, &[]).unwrap();
        let mut p = Picker::default();
        // Leave the round mid-way, then change the weights.
        p.pick(&b);
        assert!(b.set_weights(&[3, 1]));
        let got: Vec<usize> = (0..8).map(|_| p.pick(&b)).collect();
        assert_eq!(got, [0, 0, 1, 0, 0, 0, 1, 0]);
        assert!(!b.set_weights(&[3, 1]), "the same weights change nothing");
        assert_eq!((b.weight(0), b.weight(1)), (3, 1));
    }

    #[test]
    fn least_conn_fills_the_emptiest_and_breaks_ties_in_turn() {
        let b = Balance::new(ConnBalance::LeastConn, 3, &[]).unwrap();
        let mut p = Picker::default();
        let mut got = Vec::new();
        for _ in 0..6 {
            let s = p.pick(&b);
            b.opened(s);
            got.push(s);
        }
        assert_eq!(got, [0, 1, 2, 0, 1, 2]);
        b.closed(1);
        b.closed(1);
        assert_eq!(p.pick(&b), 1);
        b.opened(1);
        assert_eq!(p.pick(&b), 1);
    }

    #[test]
    fn bad_weights_are_refused() {
        assert!(Balance::new(ConnBalance::Weighted, 2, &[1]).is_err());
        assert!(Balance::new(ConnBalance::Weighted, 2, &[0, 0]).is_err());
        assert!(Balance::new(ConnBalance::Weighted, 2, &[0, 2]).is_ok());
    }
}
