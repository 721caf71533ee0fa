//! The Redis settings CONFIG SET accepts and CONFIG GET reports but that change nothing in
//! pinion: their names, aliases, Redis 7.0 defaults and how a new value is checked.

use super::values::parse_bytes;

/// How CONFIG SET checks a value of a Redis setting that pinion only stores.
#[derive(Debug, Clone, Copy)]
pub enum InertKind {
    /// `yes` or `no`.
    Bool,
    Int {
        min: i64,
        max: i64,
    },
    /// A byte size (`64`, `1kb`, `1mb`), reported back in bytes.
    Memory,
    Enum(&'static [&'static str]),
    /// Free text, reported back as given (save's "3600 1 300 100", notify-keyspace-events ...).
    Text,
}

/// A Redis setting CONFIG SET accepts and CONFIG GET reports, but that changes nothing in
/// pinion (docs/compatibility.md lists them): Redis's own tests and tools set these, and
/// refusing them would stop them before they start.
#[derive(Debug, Clone, Copy)]
pub struct InertSetting {
    pub name: &'static str,
    /// Redis's older name for the same setting (`hash-max-ziplist-entries` ...).
    pub alias: Option<&'static str>,
    /// Redis 7.0's default, as CONFIG GET reports it.
    pub default: &'static str,
    pub kind: InertKind,
}

impl InertSetting {
    /// The value CONFIG GET will report for `v`, or why CONFIG SET refuses it (in Redis's
    /// words).
    pub fn check(&self, v: &str) -> Result<String, String> {
        match self.kind {
            InertKind::Bool => match v.to_ascii_lowercase().as_str() {
                b @ ("yes" | "no") => Ok(b.to_string()),
                _ => Err("argument must be 'yes' or 'no'".into()),
            },
            InertKind::Int { min, max } => {
                let n: i64 = v
                    .parse()
                    .map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
                if n < min || n > max {
                    return Err(format!(
                        "argument must be between {min} and {max} inclusive"
                    ));
                }
                Ok(n.to_string())
            }
            InertKind::Memory => parse_bytes(v)
                .map(|b| b.to_string())
                .map_err(|_| "argument must be a memory value".into()),
            InertKind::Enum(names) => {
                let lower = v.to_ascii_lowercase();
                match names.iter().find(|n| **n == lower) {
                    Some(n) => Ok(n.to_string()),
                    None => Err(format!(
                        "argument(s) must be one of the following: {}",
                        names.join(", ")
                    )),
                }
            }
            InertKind::Text => Ok(v.to_string()),
        }
    }

    /// Does `name` (lower case) name this setting?
    pub fn named(&self, name: &str) -> bool {
        self.name == name || self.alias == Some(name)
    }
}

const fn inert(
    name: &'static str,
    alias: Option<&'static str>,
    default: &'static str,
    kind: InertKind,
) -> InertSetting {
    InertSetting {
        name,
        alias,
        default,
        kind,
    }
}

const I32: InertKind = InertKind::Int {
    min: i32::MIN as i64,
    max: i32::MAX as i64,
};
const NAT: InertKind = InertKind::Int {
    min: 0,
    max: i64::MAX,
};
const BOOL: InertKind = InertKind::Bool;
const MEM: InertKind = InertKind::Memory;
const TEXT: InertKind = InertKind::Text;

/// Every Redis setting pinion accepts without effect (Redis 7.0's names, aliases and
/// defaults; pinion saves nothing, so `save` is empty).
pub const INERT_SETTINGS: &[InertSetting] = &[
    // Encodings: pinion picks its own representations.
    inert(
        "list-max-listpack-size",
        Some("list-max-ziplist-size"),
        "-2",
        I32,
    ),
    inert("list-compress-depth", None, "0", NAT),
    inert(
        "hash-max-listpack-entries",
        Some("hash-max-ziplist-entries"),
        "512",
        NAT,
    ),
    inert(
        "hash-max-listpack-value",
        Some("hash-max-ziplist-value"),
        "64",
        MEM,
    ),
    inert("set-max-intset-entries", None, "512", NAT),
    inert(
        "zset-max-listpack-entries",
        Some("zset-max-ziplist-entries"),
        "128",
        NAT,
    ),
    inert(
        "zset-max-listpack-value",
        Some("zset-max-ziplist-value"),
        "64",
        MEM,
    ),
    inert("stream-node-max-bytes", None, "4096", MEM),
    inert("stream-node-max-entries", None, "100", NAT),
    inert("hll-sparse-max-bytes", None, "3000", MEM),
    inert("activerehashing", None, "yes", BOOL),
    inert("activedefrag", None, "no", BOOL),
    inert("jemalloc-bg-thread", None, "yes", BOOL),
    // Persistence: the cache keeps nothing on disk.
    inert("save", None, "", TEXT),
    inert("appendonly", None, "no", BOOL),
    inert(
        "appendfsync",
        None,
        "everysec",
        InertKind::Enum(&["always", "everysec", "no"]),
    ),
    inert("appendfilename", None, "appendonly.aof", TEXT),
    inert("dbfilename", None, "dump.rdb", TEXT),
    inert("rdbcompression", None, "yes", BOOL),
    inert("rdbchecksum", None, "yes", BOOL),
    inert("stop-writes-on-bgsave-error", None, "yes", BOOL),
    inert("aof-use-rdb-preamble", None, "yes", BOOL),
    inert("no-appendfsync-on-rewrite", None, "no", BOOL),
    inert("auto-aof-rewrite-percentage", None, "100", NAT),
    inert("auto-aof-rewrite-min-size", None, "67108864", MEM),
    inert("rdb-key-save-delay", None, "0", I32),
    inert(
        "sanitize-dump-payload",
        None,
        "no",
        InertKind::Enum(&["no", "yes", "clients"]),
    ),
    // Deletion is never lazy or background here.
    inert("lazyfree-lazy-eviction", None, "no", BOOL),
    inert("lazyfree-lazy-expire", None, "no", BOOL),
    inert("lazyfree-lazy-server-del", None, "no", BOOL),
    inert("lazyfree-lazy-user-del", None, "no", BOOL),
    inert("lazyfree-lazy-user-flush", None, "no", BOOL),
    inert("replica-lazy-flush", Some("slave-lazy-flush"), "no", BOOL),
    // Replication: pinion has none.
    inert(
        "min-replicas-to-write",
        Some("min-slaves-to-write"),
        "0",
        NAT,
    ),
    inert(
        "min-replicas-max-lag",
        Some("min-slaves-max-lag"),
        "10",
        NAT,
    ),
    inert(
        "replica-serve-stale-data",
        Some("slave-serve-stale-data"),
        "yes",
        BOOL,
    ),
    inert("replica-read-only", Some("slave-read-only"), "yes", BOOL),
    inert(
        "repl-ping-replica-period",
        Some("repl-ping-slave-period"),
        "10",
        InertKind::Int {
            min: 1,
            max: i32::MAX as i64,
        },
    ),
    inert("repl-diskless-sync", None, "yes", BOOL),
    // Scripts, latency and slow-log tracking, timers.
    inert("busy-reply-threshold", Some("lua-time-limit"), "5000", NAT),
    inert("latency-tracking", None, "yes", BOOL),
    inert(
        "latency-tracking-info-percentiles",
        None,
        "50 99 99.9",
        TEXT,
    ),
    inert("latency-monitor-threshold", None, "0", NAT),
    inert(
        "slowlog-log-slower-than",
        None,
        "10000",
        InertKind::Int {
            min: -1,
            max: i64::MAX,
        },
    ),
    inert("slowlog-max-len", None, "128", NAT),
    inert("hz", None, "10", NAT),
    inert("dynamic-hz", None, "yes", BOOL),
    inert(
        "active-expire-effort",
        None,
        "1",
        InertKind::Int { min: 1, max: 10 },
    ),
    // Eviction tuning beyond the policy and samples (LFU's counter is fixed at Redis's
    // defaults).
    inert("lfu-log-factor", None, "10", NAT),
    inert("lfu-decay-time", None, "1", NAT),
    inert(
        "maxmemory-eviction-tenacity",
        None,
        "10",
        InertKind::Int { min: 0, max: 100 },
    ),
    // Connections and events.
    inert("timeout", None, "0", NAT),
    inert("tcp-keepalive", None, "300", NAT),
    inert("notify-keyspace-events", None, "", TEXT),
    inert("tracking-table-max-keys", None, "1000000", NAT),
    inert(
        "client-output-buffer-limit",
        None,
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
        TEXT,
    ),
    inert(
        "loglevel",
        None,
        "notice",
        InertKind::Enum(&["debug", "verbose", "notice", "warning"]),
    ),
    inert(
        "oom-score-adj",
        None,
        "no",
        InertKind::Enum(&["no", "yes", "relative", "absolute"]),
    ),
];
