//! Measurements: per-shard HDR histograms per command family and for mesh hops, counters,
//! and their dumps (HdrHistogram percentile-distribution text, Prometheus text).
//!
//! Each shard owns its [`ShardMetrics`] and records without synchronisation. The main thread
//! asks for copies through the shard's control channel (SIGUSR1, the admin endpoint, exit),
//! merges them and writes them out.

pub mod admin;
pub mod hist;
pub mod stall;

use hdrhistogram::Histogram;

use crate::proto::resp::command::{self, Family, Spec};

/// Recorded values are nanoseconds; dumps print microseconds.
pub use crate::limits::HIST_MAX_NS;
pub const HIST_SIGFIG: u8 = 3;

pub fn new_hist() -> Histogram<u64> {
    // Bounds are constants that hdrhistogram accepts; a failure here is a programming error
    // caught by the unit test below.
    Histogram::new_with_bounds(1, HIST_MAX_NS, HIST_SIGFIG).expect("valid histogram bounds")
}

/// Counters a shard keeps; all monotonic except the gauges noted.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    pub commands: u64,
    pub connections_accepted: u64,
    pub connections_rejected: u64,
    /// Gauge: connections open now.
    pub connections_open: u64,
    pub closed_output_limit: u64,
    pub closed_query_limit: u64,
    pub protocol_errors: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Sends that went out with SEND_ZC (--send-zc-min-bytes).
    pub sends_zc: u64,
    /// Read-aheads of a partition's next range started, and fetches answered from one.
    pub log_read_aheads: u64,
    pub log_read_ahead_hits: u64,
    pub mesh_requests_sent: u64,
    pub mesh_requests_served: u64,
    /// Times a connection stopped being read because a mesh lane was full.
    pub mesh_backpressure: u64,
    /// Times a connection stopped being read because it had too many requests in flight.
    pub inflight_backpressure: u64,
    pub recv_nobufs: u64,
    /// Submissions that found the submission queue full and waited a turn.
    pub io_backlogged: u64,
    /// Gauges: log partitions a shard holds, and partition slots it has allocated (slots of
    /// deleted partitions are reused, so this stays near the most held at once).
    pub log_partitions: u64,
    pub log_partition_slots: u64,
    /// Gauge: blocking commands (BLPOP ...) parked on this shard's keys.
    pub blocked_clients: u64,
    /// Accepts that failed (EMFILE and the like).
    pub accept_errors: u64,
    /// Times the memory budget paused a connection (its input, or its requests until its
    /// client reads).
    pub budget_pauses: u64,
    /// Connections closed because the budget was spent and nothing was released (the one
    /// with the largest partial request each time).
    pub budget_closed: u64,
    // ----- stall detection (issue 13, f-stall) -----
    /// Loop turns that ran past --stall-warn-ms.
    pub loop_stalls: u64,
    /// Gauge: items (slot tables, collections) a flush dropped that are not freed yet.
    pub lazy_free_pending: u64,
    // TLS (issue 13)
    /// TLS connections closed because their TLS failed (handshake, certificate, plaintext).
    pub tls_failures: u64,

    // ----- log compaction (issue 11, f-compact) -----
    /// Compaction passes completed, and the segment bytes they freed.
    pub log_compaction_passes: u64,
    pub log_compaction_reclaimed_bytes: u64,

    // ----- failed authentications per address (issue 13, f-harden) -----
    /// Authentication attempts refused because their address failed too often.
    pub auth_refused: u64,
}

/// `add(&mut self, other)`: every field of `other` added into `self`, for structs of
/// counters that are summed over shards. The list must name every field: one left out is a
/// compile error, not a counter that silently reads 0 after the merge.
macro_rules! summed {
    ($t:ty { $($f:ident),* $(,)? }) => {
        impl $t {
            pub fn add(&mut self, o: &Self) {
                let Self { $($f: _),* } = o;
                $(self.$f += o.$f;)*
            }
        }
    };
}

summed!(Counters {
    commands,
    connections_accepted,
    connections_rejected,
    connections_open,
    closed_output_limit,
    closed_query_limit,
    protocol_errors,
    bytes_in,
    bytes_out,
    sends_zc,
    log_read_aheads,
    log_read_ahead_hits,
    mesh_requests_sent,
    mesh_requests_served,
    mesh_backpressure,
    inflight_backpressure,
    recv_nobufs,
    io_backlogged,
    log_partitions,
    log_partition_slots,
    blocked_clients,
    accept_errors,
    budget_pauses,
    budget_closed,
    loop_stalls,
    lazy_free_pending,
    tls_failures,

    log_compaction_passes,
    log_compaction_reclaimed_bytes,
    auth_refused,
});

impl Counters {
    /// (name, help, value, is_gauge) for the Prometheus dump.
    pub fn rows(&self) -> Vec<(&'static str, &'static str, u64, bool)> {
        vec![
            (
                "pinion_commands_total",
                "Commands processed",
                self.commands,
                false,
            ),
            (
                "pinion_connections_accepted_total",
                "Connections accepted",
                self.connections_accepted,
                false,
            ),
            (
                "pinion_connections_rejected_total",
                "Connections refused at --max-connections",
                self.connections_rejected,
                false,
            ),
            (
                "pinion_connections_open",
                "Connections open",
                self.connections_open,
                true,
            ),
            (
                "pinion_closed_output_limit_total",
                "Clients closed at --output-buffer-limit-bytes",
                self.closed_output_limit,
                false,
            ),
            (
                "pinion_closed_query_limit_total",
                "Clients closed at --max-query-buffer-bytes",
                self.closed_query_limit,
                false,
            ),
            (
                "pinion_protocol_errors_total",
                "Connections closed for malformed requests",
                self.protocol_errors,
                false,
            ),
            (
                "pinion_bytes_in_total",
                "Bytes received from clients",
                self.bytes_in,
                false,
            ),
            (
                "pinion_bytes_out_total",
                "Bytes sent to clients",
                self.bytes_out,
                false,
            ),
            (
                "pinion_sends_zc_total",
                "Sends that went out zero-copy (SEND_ZC)",
                self.sends_zc,
                false,
            ),
            (
                "pinion_log_read_aheads_total",
                "Reads of a partition's next range started after a large fetch (O_DIRECT reads)",
                self.log_read_aheads,
                false,
            ),
            (
                "pinion_log_read_ahead_hits_total",
                "Fetches answered from a read-ahead",
                self.log_read_ahead_hits,
                false,
            ),
            (
                "pinion_log_compaction_passes_total",
                "Log compaction passes completed",
                self.log_compaction_passes,
                false,
            ),
            (
                "pinion_log_compaction_reclaimed_bytes_total",
                "Segment bytes log compaction freed",
                self.log_compaction_reclaimed_bytes,
                false,
            ),
            (
                "pinion_mesh_requests_sent_total",
                "Requests sent to other shards",
                self.mesh_requests_sent,
                false,
            ),
            (
                "pinion_mesh_requests_served_total",
                "Requests served for other shards",
                self.mesh_requests_served,
                false,
            ),
            (
                "pinion_mesh_backpressure_total",
                "Times a full mesh lane paused a connection",
                self.mesh_backpressure,
                false,
            ),
            (
                "pinion_inflight_backpressure_total",
                "Times --max-inflight-per-conn paused a connection",
                self.inflight_backpressure,
                false,
            ),
            (
                "pinion_tls_failures_total",
                "TLS connections closed because their TLS failed (handshake, certificate, plaintext)",
                self.tls_failures,
                false,
            ),
            (
                "pinion_recv_nobufs_total",
                "Receives that found no provided buffer",
                self.recv_nobufs,
                false,
            ),
            (
                "pinion_io_backlogged_total",
                "Submissions that found the io_uring submission queue full and waited a turn",
                self.io_backlogged,
                false,
            ),
            (
                "pinion_log_partitions",
                "Log partitions held",
                self.log_partitions,
                true,
            ),
            (
                "pinion_log_partition_slots",
                "Log partition slots allocated (deleted partitions' slots are reused)",
                self.log_partition_slots,
                true,
            ),
            (
                "pinion_blocked_clients",
                "Blocking commands (BLPOP ...) parked on the shard's keys",
                self.blocked_clients,
                true,
            ),
            (
                "pinion_accept_errors",
                "Accepts that failed (out of descriptors or memory: retried every tick)",
                self.accept_errors,
                false,
            ),
            (
                "pinion_budget_pauses_total",
                "Times the memory budget paused a connection",
                self.budget_pauses,
                false,
            ),
            (
                "pinion_budget_closed_total",
                "Connections closed because the memory budget was spent and nothing was released (largest partial request)",
                self.budget_closed,
                false,
            ),
            (
                "pinion_loop_stalls_total",
                "Shard loop turns that ran past --stall-warn-ms",
                self.loop_stalls,
                false,
            ),
            (
                "pinion_lazy_free_pending",
                "Items a FLUSHALL/FLUSHDB dropped, still to be freed (a few per loop turn)",
                self.lazy_free_pending,
                true,
            ),
            (
                "pinion_auth_refused_total",
                "Authentication attempts (AUTH, HELLO AUTH, Kafka SASL) refused because their address failed too often (--auth-failures-max)",
                self.auth_refused,
                false,
            ),
        ]
    }
}

/// One command's figures for INFO commandstats (Redis's cmdstat_* lines).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CmdStat {
    /// Times the command was run (dispatched past its checks).
    pub calls: u64,
    /// Time spent running it on the connection's shard, in ns (a command forwarded to
    /// another shard counts only its dispatch here).
    pub ns: u64,
    /// Times it was refused before running (arity, authentication).
    pub rejected: u64,
}

summed!(CmdStat {
    calls,
    ns,
    rejected
});

/// Every command's [`CmdStat`], indexed by the command's place in the table
/// (`command::index`).
#[derive(Debug, Clone)]
pub struct CmdStats {
    pub by_command: Vec<CmdStat>,
    /// The command being dispatched now, whose run time [`CmdStats::ran`] adds.
    current: Option<usize>,
}

impl Default for CmdStats {
    fn default() -> Self {
        CmdStats {
            by_command: vec![CmdStat::default(); command::all().count()],
            current: None,
        }
    }
}

impl CmdStats {
    /// `spec` starts running on this shard.
    #[inline]
    pub fn call(&mut self, spec: &Spec) {
        let i = command::index(spec);
        if let Some(s) = self.by_command.get_mut(i) {
            s.calls += 1;
            self.current = Some(i);
        }
    }

    /// The command being dispatched ran for `ns` here.
    #[inline]
    pub fn ran(&mut self, ns: u64) {
        if let Some(s) = self.current.and_then(|i| self.by_command.get_mut(i)) {
            s.ns += ns;
        }
    }

    /// Its dispatch is over (what runs later belongs to no command here).
    #[inline]
    pub fn done(&mut self) {
        self.current = None;
    }

    /// `spec` was refused before it ran.
    pub fn rejected(&mut self, spec: &Spec) {
        if let Some(s) = self.by_command.get_mut(command::index(spec)) {
            s.rejected += 1;
        }
    }

    pub fn add(&mut self, o: &CmdStats) {
        for (a, b) in self.by_command.iter_mut().zip(&o.by_command) {
            a.add(b);
        }
    }

    /// CONFIG RESETSTAT.
    pub fn reset(&mut self) {
        self.by_command
            .iter_mut()
            .for_each(|s| *s = CmdStat::default());
    }
}

/// One shard's histograms and counters.
#[derive(Clone)]
pub struct ShardMetrics {
    pub shard: usize,
    pub families: Vec<Histogram<u64>>,
    pub mesh_hop: Histogram<u64>,
    /// Length of each loop turn: from the ring's wait returning to the next wait.
    pub loop_turn: Histogram<u64>,
    pub counters: Counters,
    pub commands: CmdStats,
    /// The counters at the last CONFIG RESETSTAT: INFO reports what was counted since.
    stats_base: Counters,
    /// Gauges: memory by purpose ([`MEMORY_PURPOSES`]) and the shard's share of
    /// --memory-budget, as of the shard's last budget check.
    pub memory: [u64; 5],
    pub memory_budget: u64,
    /// The shard's connection weight for `--conn-balance weighted` (issue 12), as of the
    /// snapshot.
    pub conn_weight: u32,
}

/// The purposes of [`ShardMetrics::memory`], in order (`crate::budget`).
pub const MEMORY_PURPOSES: [&str; 5] = ["input", "output", "produce", "fetch", "cache"];

impl ShardMetrics {
    pub fn new(shard: usize) -> ShardMetrics {
        ShardMetrics {
            shard,
            families: Family::ALL.iter().map(|_| new_hist()).collect(),
            mesh_hop: new_hist(),
            loop_turn: new_hist(),
            counters: Counters::default(),
            commands: CmdStats::default(),
            stats_base: Counters::default(),
            memory: [0; 5],
            memory_budget: 0,
            conn_weight: 0,
        }
    }

    /// The counters INFO reports, counted since the last CONFIG RESETSTAT (the Prometheus
    /// dump keeps the totals, which only grow).
    pub fn since_reset(&self) -> Counters {
        let (c, b) = (&self.counters, &self.stats_base);
        Counters {
            commands: c.commands - b.commands,
            connections_accepted: c.connections_accepted - b.connections_accepted,
            connections_rejected: c.connections_rejected - b.connections_rejected,
            bytes_in: c.bytes_in - b.bytes_in,
            bytes_out: c.bytes_out - b.bytes_out,
            ..*c
        }
    }

    /// CONFIG RESETSTAT: INFO's counters and command statistics start again.
    pub fn reset_stats(&mut self) {
        self.stats_base = self.counters;
        self.commands.reset();
    }

    #[inline]
    pub fn record(&mut self, family: Family, ns: u64) {
        // saturating_record clamps to the highest trackable value instead of failing.
        self.families[family.index()].saturating_record(ns.max(1));
    }

    /// Every histogram with its name.
    pub fn named(&self) -> Vec<(String, &Histogram<u64>)> {
        let mut v: Vec<(String, &Histogram<u64>)> = Family::ALL
            .iter()
            .map(|f| (f.name().to_string(), &self.families[f.index()]))
            .collect();
        v.push(("mesh_hop".to_string(), &self.mesh_hop));
        v.push((LOOP_TURN.to_string(), &self.loop_turn));
        v
    }
}

/// Merge shards' metrics into one (shard id `usize::MAX` means "all").
pub fn merge(shards: &[ShardMetrics]) -> ShardMetrics {
    let mut all = ShardMetrics::new(usize::MAX);
    for s in shards {
        for (a, b) in all.families.iter_mut().zip(&s.families) {
            // Same bounds everywhere, so add cannot fail; ignore the impossible error.
            let _ = a.add(b);
        }
        let _ = all.mesh_hop.add(&s.mesh_hop);
        let _ = all.loop_turn.add(&s.loop_turn);
        all.counters.add(&s.counters);
        all.commands.add(&s.commands);
        for (a, b) in all.memory.iter_mut().zip(&s.memory) {
            *a += b;
        }
        all.memory_budget += s.memory_budget;
    }
    all
}

/// The `--hist-dump` file: merged histograms first, then each shard's.
pub fn dump_text(shards: &[ShardMetrics]) -> String {
    let mut out = String::new();
    let all = merge(shards);
    let mut sections = vec![("all".to_string(), &all)];
    for s in shards {
        sections.push((s.shard.to_string(), s));
    }
    for (label, m) in sections {
        for (name, h) in m.named() {
            out.push_str(&format!(
                "# pinion histogram shard={label} op={name} unit=us\n"
            ));
            hist::percentile_distribution(h, 1000.0, &mut out);
            out.push('\n');
        }
    }
    out
}

/// Prometheus text exposition of counters and latency summaries.
pub fn prometheus(shards: &[ShardMetrics], extra: &[(&str, &str, u64, bool)]) -> String {
    let all = merge(shards);
    let mut out = String::new();
    for (name, help, v, gauge) in all.counters.rows().into_iter().chain(extra.iter().copied()) {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {}\n{name} {v}\n",
            if gauge { "gauge" } else { "counter" }
        ));
    }
    memory_gauges(shards, &mut out);
    shard_connections(shards, &mut out);
    out.push_str("# HELP pinion_latency_seconds Server-side latency by command family\n# TYPE pinion_latency_seconds summary\n");
    for (name, h) in all.named().into_iter().filter(|(n, _)| n != LOOP_TURN) {
        for q in [0.5, 0.9, 0.99, 0.999] {
            out.push_str(&format!(
                "pinion_latency_seconds{{op=\"{name}\",quantile=\"{q}\"}} {:.9}\n",
                h.value_at_quantile(q) as f64 / 1e9
            ));
        }
        out.push_str(&format!(
            "pinion_latency_seconds_count{{op=\"{name}\"}} {}\n",
            h.len()
        ));
    }
    loop_turns(shards, &mut out);
    compaction(shards, &mut out);
    out
}

/// Log compaction per shard (the totals are among the counters).
fn compaction(shards: &[ShardMetrics], out: &mut String) {
    for (name, help, get) in [
        (
            "pinion_shard_log_compaction_passes",
            "Log compaction passes a shard completed",
            (|c: &Counters| c.log_compaction_passes) as fn(&Counters) -> u64,
        ),
        (
            "pinion_shard_log_compaction_reclaimed_bytes",
            "Segment bytes a shard's log compaction freed",
            |c: &Counters| c.log_compaction_reclaimed_bytes,
        ),
    ] {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
        for s in shards {
            out.push_str(&format!(
                "{name}{{shard=\"{}\"}} {}\n",
                s.shard,
                get(&s.counters)
            ));
        }
    }
}

/// Memory per shard and per purpose, and each shard's share of the budget.
fn memory_gauges(shards: &[ShardMetrics], out: &mut String) {
    out.push_str("# HELP pinion_memory_bytes Memory a shard spends, by purpose (--memory-budget)\n# TYPE pinion_memory_bytes gauge\n");
    for s in shards {
        for (purpose, v) in MEMORY_PURPOSES.iter().zip(&s.memory) {
            out.push_str(&format!(
                "pinion_memory_bytes{{shard=\"{}\",purpose=\"{purpose}\"}} {v}\n",
                s.shard
            ));
        }
    }
    out.push_str("# HELP pinion_memory_budget_bytes A shard's share of --memory-budget\n# TYPE pinion_memory_budget_bytes gauge\n");
    for s in shards {
        out.push_str(&format!(
            "pinion_memory_budget_bytes{{shard=\"{}\"}} {}\n",
            s.shard, s.memory_budget
        ));
    }
}

/// Open connections per shard (how `--conn-balance` spread them; issue 12).
fn shard_connections(shards: &[ShardMetrics], out: &mut String) {
    out.push_str("# HELP pinion_shard_connections_open Connections a shard serves\n# TYPE pinion_shard_connections_open gauge\n");
    for s in shards {
        out.push_str(&format!(
            "pinion_shard_connections_open{{shard=\"{}\"}} {}\n",
            s.shard, s.counters.connections_open
        ));
    }
    out.push_str("# HELP pinion_conn_weight A shard's weight for --conn-balance weighted (--shard-weights, or the control plane's map)\n# TYPE pinion_conn_weight gauge\n");
    for s in shards {
        out.push_str(&format!(
            "pinion_conn_weight{{shard=\"{}\"}} {}\n",
            s.shard, s.conn_weight
        ));
    }
}

/// The loop-turn histogram's name in dumps.
const LOOP_TURN: &str = "loop_turn";

/// Per-shard loop-turn summaries, maxima and stall counts.
fn loop_turns(shards: &[ShardMetrics], out: &mut String) {
    use std::fmt::Write;
    out.push_str("# HELP pinion_loop_turn_seconds Length of a shard's loop turns (the longest a client of the shard waits on other work)\n# TYPE pinion_loop_turn_seconds summary\n");
    for s in shards {
        let (id, h) = (s.shard, &s.loop_turn);
        for q in [0.5, 0.99] {
            let v = h.value_at_quantile(q) as f64 / 1e9;
            let _ = writeln!(
                out,
                "pinion_loop_turn_seconds{{shard=\"{id}\",quantile=\"{q}\"}} {v:.9}"
            );
        }
        let _ = writeln!(
            out,
            "pinion_loop_turn_seconds_count{{shard=\"{id}\"}} {}",
            h.len()
        );
    }
    out.push_str("# HELP pinion_loop_turn_max_seconds Longest loop turn per shard\n# TYPE pinion_loop_turn_max_seconds gauge\n");
    for s in shards {
        let max = s.loop_turn.max() as f64 / 1e9;
        let _ = writeln!(
            out,
            "pinion_loop_turn_max_seconds{{shard=\"{}\"}} {max:.9}",
            s.shard
        );
    }
    out.push_str("# HELP pinion_shard_loop_stalls_total Loop turns past --stall-warn-ms per shard\n# TYPE pinion_shard_loop_stalls_total counter\n");
    for s in shards {
        let _ = writeln!(
            out,
            "pinion_shard_loop_stalls_total{{shard=\"{}\"}} {}",
            s.shard, s.counters.loop_stalls
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_counts_and_dump_names_every_histogram() {
        let mut a = ShardMetrics::new(0);
        let mut b = ShardMetrics::new(1);
        a.record(Family::Read, 1_000);
        b.record(Family::Read, 3_000);
        b.counters.commands = 2;
        let all = merge(&[a.clone(), b.clone()]);
        assert_eq!(all.families[Family::Read.index()].len(), 2);
        assert_eq!(all.counters.commands, 2);
        let text = dump_text(&[a, b]);
        assert!(text.contains("# pinion histogram shard=all op=string_read unit=us"));
        assert!(text.contains("# pinion histogram shard=1 op=mesh_hop unit=us"));
        assert!(text.contains(", Total count    =            2]"));
    }
}
