//! Every topic config Kafka documents (3.x), in one table: its type, Kafka's default, and
//! whether pinion honours it. CreateTopics accepts each of them (an unknown name or a value
//! of the wrong type answers INVALID_CONFIG); those pinion honours change how the topic's
//! partitions are kept ([`TopicConfig`]); the rest are kept in `topic.meta` and described
//! as set. docs/compatibility.md lists the same table.
//!
//! Pure: no I/O. The topic table on every shard holds what this parses.

use std::collections::BTreeMap;

use super::topics::{Cleanup, TopicConfig};
use crate::limits::TOPIC_SEGMENT_BYTES_MIN;

/// A config's type as Kafka declares it (DescribeConfigs v3+ reports it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Bool,
    /// A string; when `one_of` is not empty, one of those.
    Str {
        one_of: &'static [&'static str],
    },
    Int {
        min: i64,
    },
    Long {
        min: i64,
    },
    Double {
        min: f64,
        max: f64,
    },
    /// A comma-separated list; when `one_of` is not empty, each item one of those.
    List {
        one_of: &'static [&'static str],
    },
}

impl Kind {
    /// Kafka's `ConfigType` code (DescribeConfigs `config_type`).
    pub fn code(self) -> i8 {
        match self {
            Kind::Bool => 1,
            Kind::Str { .. } => 2,
            Kind::Int { .. } => 3,
            Kind::Long { .. } => 5,
            Kind::Double { .. } => 6,
            Kind::List { .. } => 7,
        }
    }
}

/// What pinion does with a config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// It takes effect.
    Honoured,
    /// Kept and described; no effect (replication, compaction tuning, tiered storage ...).
    Stored,
}

pub struct Def {
    pub name: &'static str,
    pub kind: Kind,
    /// Kafka's default; for the configs the node's flags set, the flag decides instead
    /// ([`TopicConfig`] holds the value).
    pub default: &'static str,
    pub used: Use,
}

const fn def(name: &'static str, kind: Kind, default: &'static str, used: Use) -> Def {
    Def {
        name,
        kind,
        default,
        used,
    }
}

const NEVER: &str = "9223372036854775807";
use Kind::*;
use Use::*;

/// Kafka 3.x's topic configs (`TopicConfig`), by name.
pub const TOPIC_CONFIGS: &[Def] = &[
    def(
        "cleanup.policy",
        List {
            one_of: &["compact", "delete"],
        },
        "delete",
        Honoured,
    ),
    def(
        "compression.type",
        Str {
            one_of: &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"],
        },
        "producer",
        Stored,
    ),
    def("compression.gzip.level", Int { min: -1 }, "-1", Stored),
    def("compression.lz4.level", Int { min: 1 }, "9", Stored),
    def("compression.zstd.level", Int { min: -131072 }, "3", Stored),
    def("delete.retention.ms", Long { min: 0 }, "86400000", Honoured),
    def("file.delete.delay.ms", Long { min: 0 }, "60000", Stored),
    def("flush.messages", Long { min: 1 }, NEVER, Stored),
    def("flush.ms", Long { min: 0 }, NEVER, Stored),
    def(
        "follower.replication.throttled.replicas",
        List { one_of: &[] },
        "",
        Stored,
    ),
    def("index.interval.bytes", Int { min: 0 }, "4096", Stored),
    def(
        "leader.replication.throttled.replicas",
        List { one_of: &[] },
        "",
        Stored,
    ),
    def("local.retention.bytes", Long { min: -2 }, "-2", Stored),
    def("local.retention.ms", Long { min: -2 }, "-2", Stored),
    def("max.compaction.lag.ms", Long { min: 1 }, NEVER, Stored),
    def("max.message.bytes", Int { min: 0 }, "1048588", Honoured),
    def("message.downconversion.enable", Bool, "true", Stored),
    def(
        "message.format.version",
        Str { one_of: &[] },
        "3.0-IV1",
        Stored,
    ),
    def(
        "message.timestamp.after.max.ms",
        Long { min: 0 },
        NEVER,
        Stored,
    ),
    def(
        "message.timestamp.before.max.ms",
        Long { min: 0 },
        NEVER,
        Stored,
    ),
    def(
        "message.timestamp.difference.max.ms",
        Long { min: 0 },
        NEVER,
        Stored,
    ),
    def(
        "message.timestamp.type",
        Str {
            one_of: &["CreateTime", "LogAppendTime"],
        },
        "CreateTime",
        Stored,
    ),
    def(
        "min.cleanable.dirty.ratio",
        Double { min: 0.0, max: 1.0 },
        "0.5",
        Honoured,
    ),
    def("min.compaction.lag.ms", Long { min: 0 }, "0", Stored),
    def("min.insync.replicas", Int { min: 1 }, "1", Stored),
    def("preallocate", Bool, "false", Stored),
    def("remote.log.copy.disable", Bool, "false", Stored),
    def("remote.log.delete.on.disable", Bool, "false", Stored),
    def("remote.storage.enable", Bool, "false", Stored),
    def("retention.bytes", Long { min: i64::MIN }, "-1", Honoured),
    def("retention.ms", Long { min: -1 }, "604800000", Honoured),
    def(
        "segment.bytes",
        Int {
            min: TOPIC_SEGMENT_BYTES_MIN as i64,
        },
        "1073741824",
        Honoured,
    ),
    def("segment.index.bytes", Int { min: 4 }, "10485760", Stored),
    def("segment.jitter.ms", Long { min: 0 }, "0", Stored),
    def("segment.ms", Long { min: 1 }, "604800000", Honoured),
    def("unclean.leader.election.enable", Bool, "false", Stored),
];

pub fn find(name: &str) -> Option<&'static Def> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Why a topic config was refused (Kafka: INVALID_CONFIG, with this as the message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("Unknown topic config name: {0}")]
    Unknown(String),
    #[error("Null value not supported for topic configs: {0}")]
    Null(String),
    #[error("Invalid value {value} for configuration {name}: {why}")]
    Invalid {
        name: String,
        value: String,
        why: String,
    },
}

/// Check `value` against `d`'s type; the number it holds, for the numeric ones.
fn check(d: &Def, value: &str) -> Result<Option<i64>, String> {
    if value.contains(['\n', '\r']) {
        return Err("values are one line".into());
    }
    let v = value.trim();
    match d.kind {
        Bool => match v.to_ascii_lowercase().as_str() {
            "true" | "false" => Ok(None),
            _ => Err("Expected value to be either true or false".into()),
        },
        Str { one_of } => {
            if one_of.is_empty() || one_of.contains(&v) {
                Ok(None)
            } else {
                Err(format!("String must be one of: {}", one_of.join(", ")))
            }
        }
        Int { min } | Long { min } => {
            let n: i64 = v.parse().map_err(|_| "Not a number of the right type")?;
            let max = if matches!(d.kind, Int { .. }) {
                i32::MAX as i64
            } else {
                i64::MAX
            };
            if n < min || n > max {
                return Err(format!("Value must be in [{min}, {max}]"));
            }
            Ok(Some(n))
        }
        Double { min, max } => match v.parse::<f64>() {
            Ok(x) if (min..=max).contains(&x) => Ok(None),
            _ => Err(format!("Value must be a number in [{min}, {max}]")),
        },
        List { one_of } => {
            let items: Vec<&str> = v.split(',').map(str::trim).collect();
            if one_of.is_empty() {
                return Ok(None);
            }
            if items.iter().all(|i| one_of.contains(i)) {
                Ok(None)
            } else {
                Err(format!("Items must be among: {}", one_of.join(", ")))
            }
        }
    }
}

/// Apply one topic config to `config` (the honoured ones) and `set` (every one given).
pub fn apply(
    config: &mut TopicConfig,
    set: &mut BTreeMap<String, String>,
    name: &str,
    value: Option<&str>,
) -> Result<(), ConfigError> {
    let d = find(name).ok_or_else(|| ConfigError::Unknown(name.to_string()))?;
    let value = value.ok_or_else(|| ConfigError::Null(name.to_string()))?;
    let invalid = |why: String| ConfigError::Invalid {
        name: name.to_string(),
        value: value.to_string(),
        why,
    };
    let n = check(d, value).map_err(invalid)?;
    let opt = |n: i64| u64::try_from(n).ok();
    match (name, n) {
        ("retention.ms", Some(n)) => config.retention_ms = opt(n),
        ("retention.bytes", Some(n)) => config.retention_bytes = opt(n),
        ("segment.bytes", Some(n)) => config.segment_bytes = n as u64,
        ("segment.ms", Some(n)) => config.segment_ms = n as u64,
        ("max.message.bytes", Some(n)) => config.max_message_bytes = n as u64,
        ("cleanup.policy", _) => {
            let has = |p: &str| value.split(',').any(|i| i.trim() == p);
            config.cleanup = match (has("compact"), has("delete")) {
                (true, true) => Cleanup::CompactDelete,
                (true, false) => Cleanup::Compact,
                _ => Cleanup::Delete,
            };
        }
        _ => {}
    }
    set.insert(name.to_string(), value.to_string());
    Ok(())
}

/// A topic's value for config `d`: what it set, else what the node gives it (for the
/// honoured ones) or Kafka's default.
pub fn value(d: &Def, config: &TopicConfig, set: &BTreeMap<String, String>) -> String {
    if let Some(v) = set.get(d.name) {
        return v.clone();
    }
    let opt = |v: Option<u64>| v.map_or("-1".to_string(), |x| x.to_string());
    match d.name {
        "retention.ms" => opt(config.retention_ms),
        "retention.bytes" => opt(config.retention_bytes),
        "segment.bytes" => config.segment_bytes.to_string(),
        "segment.ms" => config.segment_ms.to_string(),
        "max.message.bytes" => config.max_message_bytes.to_string(),
        "cleanup.policy" => config.cleanup.as_str().to_string(),
        _ => d.default.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> TopicConfig {
        TopicConfig {
            segment_bytes: 1 << 30,
            segment_ms: 1000,
            retention_bytes: None,
            retention_ms: Some(5),
            max_message_bytes: 1 << 20,
            cleanup: Cleanup::Delete,
        }
    }

    #[test]
    fn every_default_passes_its_own_check_and_names_are_unique() {
        for d in TOPIC_CONFIGS {
            assert!(check(d, d.default).is_ok(), "{}", d.name);
            assert_eq!(TOPIC_CONFIGS.iter().filter(|e| e.name == d.name).count(), 1);
        }
    }

    #[test]
    fn honoured_configs_take_effect_and_bad_ones_are_refused() {
        let (mut c, mut set) = (base(), BTreeMap::new());
        for (k, v) in [
            ("retention.ms", "-1"),
            ("retention.bytes", "4096"),
            ("segment.bytes", "2097152"),
            ("max.message.bytes", "5000"),
            ("cleanup.policy", "delete,compact"),
            ("compression.type", "lz4"),
            ("min.cleanable.dirty.ratio", "0.25"),
            ("preallocate", "TRUE"),
        ] {
            apply(&mut c, &mut set, k, Some(v)).unwrap();
        }
        assert_eq!(c.retention_ms, None);
        assert_eq!(c.retention_bytes, Some(4096));
        assert_eq!(c.segment_bytes, 2 << 20);
        assert_eq!(c.max_message_bytes, 5000);
        assert_eq!(c.cleanup, Cleanup::CompactDelete);
        assert_eq!(set.len(), 8);
        assert_eq!(value(find("compression.type").unwrap(), &c, &set), "lz4");
        assert_eq!(value(find("flush.ms").unwrap(), &c, &set), NEVER);
        for (k, v) in [
            ("retention.ms", "soon"),
            ("retention.ms", "-2"),
            ("segment.bytes", "1000"),
            ("segment.bytes", "4294967296"),
            ("cleanup.policy", "forever"),
            ("compression.type", "brotli"),
            ("preallocate", "yes"),
            ("min.cleanable.dirty.ratio", "2"),
            ("message.format.version", "a\nb"),
        ] {
            assert!(
                matches!(
                    apply(&mut c, &mut set, k, Some(v)),
                    Err(ConfigError::Invalid { .. })
                ),
                "{k}={v}"
            );
        }
        assert_eq!(
            apply(&mut c, &mut set, "retention.forever", Some("1")),
            Err(ConfigError::Unknown("retention.forever".into()))
        );
        assert!(matches!(
            apply(&mut c, &mut set, "retention.ms", None),
            Err(ConfigError::Null(_))
        ));
    }
}
