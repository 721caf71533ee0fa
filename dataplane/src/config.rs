//! The node's CLI: every flag, its default and its validation, in one place.
//!
//! Every bound on the data path is a flag here, with its unit in its name. `Config::validate`
//! checks the derived limits at start-up, so a node never starts with bounds that contradict
//! each other.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use crate::cache::store::Policy;
use crate::limits::{
    EVICTION_SAMPLES_MAX, OUTPUT_LIMIT_FLOOR_BYTES, RECV_MEMORY_MAX_BYTES, RING_CAPACITY_MAX,
    RING_CAPACITY_MIN, TOPIC_PARTITIONS_MAX,
};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "pinion",
    version,
    about = "pinion node: thread-per-core io_uring cache (RESP) and log"
)]
pub struct Config {
    /// CPUs to run shards on, one shard pinned per CPU: `all`, or a list such as `0,2-5`.
    #[arg(long, default_value = "all")]
    pub cores: String,

    /// Address the RESP (Redis protocol) listener binds; every shard listens with SO_REUSEPORT.
    #[arg(long, default_value = "0.0.0.0:6379")]
    pub resp_listen: SocketAddr,

    /// Address the Kafka protocol listener binds; every shard listens with SO_REUSEPORT.
    #[arg(long, default_value = "0.0.0.0:9092")]
    pub kafka_listen: SocketAddr,

    /// host:port that Kafka clients are told to connect to (Metadata); defaults to the
    /// Kafka listen address, with 127.0.0.1 standing in for an unspecified host.
    #[arg(long)]
    pub advertise: Option<String>,

    /// Largest Kafka request; a larger size prefix closes the connection.
    #[arg(long, default_value = "100mb", value_parser = parse_bytes)]
    pub max_request_bytes: usize,

    /// When produced data is made durable: `always` (fdatasync per group commit, before the
    /// produce is acknowledged), `interval:<ms>`, or `never`. docs/operations.md says what
    /// each risks.
    #[arg(long, default_value = "always", value_parser = crate::log::commit::parse_fsync)]
    pub fsync: crate::log::commit::Fsync,

    /// Write log segments with O_DIRECT (from 4 KiB-aligned buffers, bypassing the page
    /// cache). Falls back to buffered writes, with a log line, where the filesystem refuses
    /// it (tmpfs). `false` always writes through the page cache.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub direct_io: bool,

    /// Sends of at least this many bytes (large fetch responses) use zero-copy SEND_ZC:
    /// the NIC reads the reply from our buffer, which is held until the kernel says it is
    /// done. 0 turns it off. Over loopback the kernel copies anyway (see
    /// docs/operations.md), so it pays off only for clients on other hosts.
    #[arg(long, default_value = "0", value_parser = parse_bytes)]
    pub send_zc_min_bytes: usize,

    /// Largest record batch a producer may send (Kafka's message.max.bytes).
    #[arg(long, default_value = "1mb", value_parser = parse_bytes)]
    pub max_message_bytes: usize,

    /// Roll a partition's active segment when it would pass this size.
    #[arg(long, default_value = "1gb", value_parser = parse_bytes)]
    pub segment_bytes: usize,

    /// Roll a partition's active segment when it is older than this (ms).
    #[arg(long, default_value_t = 7 * 24 * 3600 * 1000)]
    pub segment_ms: u64,

    /// Delete a partition's oldest segments while it is larger than this (default: no limit).
    #[arg(long, value_parser = parse_bytes)]
    pub retention_bytes: Option<usize>,

    /// Delete segments whose newest record is older than this (ms; default 7 days).
    #[arg(long, default_value_t = 7 * 24 * 3600 * 1000)]
    pub retention_ms: u64,

    /// Create a topic when a client asks for one that does not exist (Metadata, Produce).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub auto_create_topics: bool,

    /// Partitions of an auto-created topic, and of CreateTopics with -1.
    #[arg(long, default_value_t = 1)]
    pub default_partitions: i32,

    /// Address of the admin HTTP endpoint (`/metrics`, `/histograms`).
    #[arg(long, default_value = "127.0.0.1:9644")]
    pub admin_listen: SocketAddr,

    /// Folder for the node's data.
    #[arg(long, default_value = "./pinion-data")]
    pub data_dir: PathBuf,

    /// Log filter (`error`, `warn`, `info`, `debug`, `trace`, or a tracing directive).
    #[arg(long, default_value = "info")]
    pub log_level: String,

    /// Submission queue entries per shard ring (the completion queue gets 4x).
    #[arg(long, default_value_t = 4096)]
    pub sq_entries: u32,

    /// Run each ring with a kernel SQ polling thread that idles after this many ms.
    /// Costs a kernel thread per shard; off by default.
    #[arg(long)]
    pub sqpoll_idle_ms: Option<u32>,

    /// Provided receive buffers per shard (a power of two, at most 32768).
    #[arg(long, default_value_t = 256)]
    pub recv_buffers: u16,

    /// Size of each provided receive buffer.
    #[arg(long, default_value_t = 16384)]
    pub recv_buffer_bytes: u32,

    /// Messages each inter-shard lane holds before the sender applies backpressure.
    #[arg(long, default_value_t = 4096)]
    pub ring_capacity: usize,

    /// Client connections across the node; further ones get an error and are closed.
    #[arg(long, default_value_t = 10_000)]
    pub max_connections: usize,

    /// Largest bulk string a request may carry (Redis's proto-max-bulk-len).
    #[arg(long, default_value = "512mb", value_parser = parse_bytes)]
    pub max_bulk_bytes: usize,

    /// Largest unparsed input a connection may hold (Redis's client-query-buffer-limit).
    #[arg(long, default_value = "1gb", value_parser = parse_bytes)]
    pub max_query_buffer_bytes: usize,

    /// Replies queued for a client beyond this are a client that does not read: it is closed.
    #[arg(long, default_value = "256mb", value_parser = parse_bytes)]
    pub output_buffer_limit_bytes: usize,

    /// Requests of one connection in flight (not yet answered) before it stops being read.
    #[arg(long, default_value_t = 1024)]
    pub max_inflight_per_conn: usize,

    /// Memory limit for cached data across the node, split evenly over shards (0 = none).
    #[arg(long, default_value = "0", value_parser = parse_bytes)]
    pub maxmemory: usize,

    /// What to do at the memory limit.
    #[arg(long, value_enum, default_value_t = Policy::Noeviction)]
    pub eviction: Policy,

    /// Keys sampled per eviction (Redis's maxmemory-samples).
    #[arg(long, default_value_t = 5)]
    pub eviction_samples: usize,

    /// Entries active expiry examines per shard per 100 ms tick.
    #[arg(long, default_value_t = 2000)]
    pub expire_keys_per_tick: usize,

    /// Require clients to AUTH with this password.
    #[arg(long)]
    pub requirepass: Option<String>,

    /// Write merged and per-shard HDR histograms here on SIGUSR1 and at shutdown.
    #[arg(long)]
    pub hist_dump: Option<PathBuf>,

    /// Seconds to finish in-flight requests at shutdown before closing connections anyway.
    #[arg(long, default_value_t = 5)]
    pub shutdown_grace_s: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--cores: {0}")]
    Cores(String),
    #[error("--recv-buffers must be a power of two between 1 and 32768, got {0}")]
    RecvBuffers(u16),
    #[error("--recv-buffer-bytes must be between 512 and 1048576, got {0}")]
    RecvBufferBytes(u32),
    #[error("--sq-entries must be a power of two between 8 and 32768, got {0}")]
    SqEntries(u32),
    #[error("--ring-capacity must be between {min} and {max}, got {got}")]
    RingCapacity { got: usize, min: usize, max: usize },
    #[error("--max-query-buffer-bytes ({query}) must exceed --max-bulk-bytes ({bulk}) and be below 4 GiB")]
    QueryBuffer { query: usize, bulk: usize },
    #[error("--max-inflight-per-conn must be at least 1")]
    Inflight,
    #[error("--max-connections must be at least 1")]
    Connections,
    #[error("--max-message-bytes ({message}) must fit in --max-request-bytes ({request})")]
    MessageBytes { message: usize, request: usize },
    #[error("--default-partitions must be between 1 and {max}, got {got}")]
    DefaultPartitions { got: i32, max: i32 },
    #[error("--eviction-samples must be between 1 and {max}, got {got}")]
    EvictionSamples { got: usize, max: usize },
    #[error("--expire-keys-per-tick must be at least 1")]
    ExpireKeys,
    #[error("--recv-buffers x --recv-buffer-bytes ({0} bytes) must stay below 1 GiB per shard")]
    RecvMemory(usize),
    #[error("--output-buffer-limit-bytes must be at least {need}: the largest reply a bulk can make (--max-bulk-bytes), or 1 MiB if that is smaller")]
    OutputLimit { need: usize },
}

impl Config {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.recv_buffers.is_power_of_two() || self.recv_buffers > 32768 {
            return Err(ConfigError::RecvBuffers(self.recv_buffers));
        }
        if !(512..=1 << 20).contains(&self.recv_buffer_bytes) {
            return Err(ConfigError::RecvBufferBytes(self.recv_buffer_bytes));
        }
        if !self.sq_entries.is_power_of_two() || !(8..=32768).contains(&self.sq_entries) {
            return Err(ConfigError::SqEntries(self.sq_entries));
        }
        if !(RING_CAPACITY_MIN..=RING_CAPACITY_MAX).contains(&self.ring_capacity) {
            return Err(ConfigError::RingCapacity {
                got: self.ring_capacity,
                min: RING_CAPACITY_MIN,
                max: RING_CAPACITY_MAX,
            });
        }
        if self.max_query_buffer_bytes <= self.max_bulk_bytes
            || self.max_query_buffer_bytes >= 1 << 32
        {
            return Err(ConfigError::QueryBuffer {
                query: self.max_query_buffer_bytes,
                bulk: self.max_bulk_bytes,
            });
        }
        if self.max_inflight_per_conn == 0 {
            return Err(ConfigError::Inflight);
        }
        if self.max_connections == 0 {
            return Err(ConfigError::Connections);
        }
        let recv = self.recv_buffers as usize * self.recv_buffer_bytes as usize;
        if recv >= RECV_MEMORY_MAX_BYTES {
            return Err(ConfigError::RecvMemory(recv));
        }
        if self.max_message_bytes > self.max_request_bytes {
            return Err(ConfigError::MessageBytes {
                message: self.max_message_bytes,
                request: self.max_request_bytes,
            });
        }
        if !(1..=TOPIC_PARTITIONS_MAX).contains(&self.default_partitions) {
            return Err(ConfigError::DefaultPartitions {
                got: self.default_partitions,
                max: TOPIC_PARTITIONS_MAX,
            });
        }
        if !(1..=EVICTION_SAMPLES_MAX).contains(&self.eviction_samples) {
            return Err(ConfigError::EvictionSamples {
                got: self.eviction_samples,
                max: EVICTION_SAMPLES_MAX,
            });
        }
        if self.expire_keys_per_tick == 0 {
            return Err(ConfigError::ExpireKeys);
        }
        // A client may GET the largest value it may SET; the limit is for clients that stop
        // reading, not for large replies.
        let need = self.max_bulk_bytes.min(OUTPUT_LIMIT_FLOOR_BYTES);
        if self.output_buffer_limit_bytes < need {
            return Err(ConfigError::OutputLimit { need });
        }
        Ok(())
    }

    /// The CPUs named by `--cores`, checked against the CPUs this process may run on.
    pub fn cpu_list(&self, available: &[usize]) -> Result<Vec<usize>, ConfigError> {
        parse_cpu_list(&self.cores, available)
    }
}

/// Parse `all` or `0,2-5` into CPU ids, each of which must be available.
pub fn parse_cpu_list(spec: &str, available: &[usize]) -> Result<Vec<usize>, ConfigError> {
    if spec.trim().eq_ignore_ascii_case("all") {
        if available.is_empty() {
            return Err(ConfigError::Cores(
                "no CPU is available to this process".into(),
            ));
        }
        return Ok(available.to_vec());
    }
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let lo: usize = lo
            .parse()
            .map_err(|_| ConfigError::Cores(format!("'{part}' is not a CPU number or range")))?;
        let hi: usize = hi
            .parse()
            .map_err(|_| ConfigError::Cores(format!("'{part}' is not a CPU number or range")))?;
        if lo > hi {
            return Err(ConfigError::Cores(format!("range '{part}' is backwards")));
        }
        for cpu in lo..=hi {
            if !available.contains(&cpu) {
                return Err(ConfigError::Cores(format!(
                    "CPU {cpu} is not available to this process (available: {available:?})"
                )));
            }
            if !out.contains(&cpu) {
                out.push(cpu);
            }
        }
    }
    if out.is_empty() {
        return Err(ConfigError::Cores("empty CPU list".into()));
    }
    Ok(out)
}

/// Parse a byte size the way Redis's config does: `1000`, `64kb`, `100mb`, `1gb` (powers of
/// 1024; `k`, `m`, `g` are powers of 1000).
pub fn parse_bytes(s: &str) -> Result<usize, String> {
    let t = s.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a size (try 1048576, 64kb, 100mb, 1gb)"))?;
    let mult: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return Err(format!("'{s}': unknown unit '{unit}' (use b, kb, mb, gb)")),
    };
    n.checked_mul(mult)
        .and_then(|v| usize::try_from(v).ok())
        .ok_or_else(|| format!("'{s}' is too large"))
}

impl Config {
    /// Topic configs for a topic that names none.
    pub fn topic_defaults(&self) -> crate::log::topics::TopicConfig {
        crate::log::topics::TopicConfig {
            segment_bytes: self.segment_bytes as u64,
            segment_ms: self.segment_ms,
            retention_bytes: self.retention_bytes.map(|b| b as u64),
            retention_ms: Some(self.retention_ms),
        }
    }

    /// The host and port Kafka clients should use to reach this node.
    pub fn advertised(&self, kafka_port: u16) -> (String, u16) {
        if let Some(a) = &self.advertise {
            if let Some((h, p)) = a.rsplit_once(':') {
                if let Ok(p) = p.parse() {
                    return (h.to_string(), p);
                }
            }
            return (a.clone(), kafka_port);
        }
        let ip = self.kafka_listen.ip();
        let host = if ip.is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            ip.to_string()
        };
        (host, kafka_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        let avail = [0, 1, 2, 3, 4, 5];
        assert_eq!(parse_cpu_list("all", &avail).unwrap(), avail.to_vec());
        assert_eq!(parse_cpu_list("0,2-4", &avail).unwrap(), vec![0, 2, 3, 4]);
        assert!(parse_cpu_list("7", &avail).is_err());
        assert!(parse_cpu_list("3-1", &avail).is_err());
        assert!(parse_cpu_list("x", &avail).is_err());
        assert!(parse_cpu_list("", &avail).is_err());
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("100"), Ok(100));
        assert_eq!(parse_bytes("64kb"), Ok(65536));
        assert_eq!(parse_bytes("1GB"), Ok(1 << 30));
        assert_eq!(parse_bytes("2m"), Ok(2_000_000));
        assert!(parse_bytes("ten").is_err());
        assert!(parse_bytes("1tb").is_err());
    }

    #[test]
    fn defaults_validate() {
        let c = Config::parse_from(["pinion"]);
        c.validate().unwrap();
        for bad in [
            &["--recv-buffers", "100"][..],
            &["--max-message-bytes", "200mb"],
            &["--default-partitions", "0"],
            &["--eviction-samples", "65"],
            &["--expire-keys-per-tick", "0"],
            &["--recv-buffers", "32768", "--recv-buffer-bytes", "1048576"],
            &["--ring-capacity", "2000000"],
            &["--output-buffer-limit-bytes", "1000"],
        ] {
            let c = Config::parse_from(std::iter::once("pinion").chain(bad.iter().copied()));
            assert!(c.validate().is_err(), "{bad:?} should be refused");
        }
    }
}
