//! Topics: names, partition counts and per-topic configs, and where they live on disk.
//!
//! Every shard keeps a copy of the topic table (Metadata is answered locally); each
//! partition is owned by one shard, chosen like a cache key's: the slot of
//! `"<topic>-<partition>"`. A topic's folder is `<data-dir>/log/<topic>/` with a
//! `topic.meta` file (one `key=value` per line) and a folder per partition.
//!
//! A topic is created by one shard, its *home* (the owner of its partition 0): that shard
//! writes `topic.meta` and refuses a second create of the name while one is under way, so
//! concurrent creates (several clients auto-creating a topic at once) agree on one winner.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::topic_config;

/// What `cleanup.policy` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleanup {
    Delete,
    /// Compaction only (`log/compact/`): retention deletes nothing.
    Compact,
    CompactDelete,
}

impl Cleanup {
    pub fn as_str(self) -> &'static str {
        match self {
            Cleanup::Delete => "delete",
            Cleanup::Compact => "compact",
            Cleanup::CompactDelete => "compact,delete",
        }
    }
}

/// The topic configs pinion honours, with the node's defaults filled in for those the
/// topic does not set (`topic_config.rs` lists every config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicConfig {
    pub segment_bytes: u64,
    pub segment_ms: u64,
    pub retention_bytes: Option<u64>,
    pub retention_ms: Option<u64>,
    /// Largest batch a producer may write to the topic.
    pub max_message_bytes: u64,
    pub cleanup: Cleanup,
}

impl TopicConfig {
    /// The retention that deletes segments: (bytes, ms); none for a compact-only topic.
    pub fn deletion(&self) -> (Option<u64>, Option<u64>) {
        match self.cleanup {
            Cleanup::Compact => (None, None),
            Cleanup::Delete | Cleanup::CompactDelete => (self.retention_bytes, self.retention_ms),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMeta {
    pub name: String,
    pub partitions: i32,
    pub config: TopicConfig,
    /// Every config the topic sets, as given: honoured or only stored.
    pub set: BTreeMap<String, String>,
    /// How many times the topic was changed since it was created (CreatePartitions,
    /// AlterConfigs, IncrementalAlterConfigs). Its home shard moves it on by one per change
    /// and writes it to `topic.meta`; a shard applies a change only to an older copy, so
    /// changes that reach it out of order cannot undo one another.
    pub epoch: u64,
}

/// Lines of `topic.meta` for a config the topic sets start with this.
const SET_PREFIX: &str = "set.";

/// Kafka's rules: 1..=249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

pub fn topic_dir(data_dir: &Path, topic: &str) -> PathBuf {
    data_dir.join("log").join(topic)
}

pub fn partition_dir(data_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    topic_dir(data_dir, topic).join(partition.to_string())
}

/// The slot a partition lives in (and so the shard that owns it).
pub fn partition_slot(topic: &str, partition: i32) -> u16 {
    crate::cache::slot::crc16(format!("{topic}-{partition}").as_bytes())
        % crate::cache::slot::SLOTS as u16
}

/// The slot of a topic's home shard (the owner of its partition 0), which writes its
/// `topic.meta` and decides between concurrent creates.
pub fn home_slot(topic: &str) -> u16 {
    partition_slot(topic, 0)
}

impl TopicMeta {
    /// `topic.meta`'s text: the partition count and the honoured configs' values (what
    /// the topic was created with, node defaults included), then one `set.<name>=<value>`
    /// line per config the topic set.
    pub fn to_text(&self) -> String {
        let opt = |v: Option<u64>| v.map_or("-1".to_string(), |x| x.to_string());
        let mut text = format!(
            "partitions={}\nsegment.bytes={}\nsegment.ms={}\nretention.bytes={}\nretention.ms={}\nmax.message.bytes={}\n",
            self.partitions,
            self.config.segment_bytes,
            self.config.segment_ms,
            opt(self.config.retention_bytes),
            opt(self.config.retention_ms),
            self.config.max_message_bytes,
        );
        if self.epoch > 0 {
            text.push_str(&format!("epoch={}\n", self.epoch));
        }
        for (k, v) in &self.set {
            text.push_str(&format!("{SET_PREFIX}{k}={v}\n"));
        }
        text
    }

    /// The topic with `set` as the configs it sets: its honoured configs recomputed from
    /// the node's `defaults` (a config no longer set goes back to the node's value), and
    /// its epoch moved on by one. Errors as CreateTopics answers them.
    pub fn changed(
        &self,
        defaults: TopicConfig,
        set: &BTreeMap<String, String>,
    ) -> Result<TopicMeta, topic_config::ConfigError> {
        let mut m = TopicMeta {
            config: defaults,
            set: BTreeMap::new(),
            epoch: self.epoch + 1,
            ..self.clone()
        };
        for (k, v) in set {
            topic_config::apply(&mut m.config, &mut m.set, k, Some(v))?;
        }
        Ok(m)
    }

    /// Parse `topic.meta` (files written before `set.` lines and `max.message.bytes`
    /// existed read the same, with the node's defaults for what they lack).
    fn from_text(name: &str, text: &str, defaults: TopicConfig) -> Option<TopicMeta> {
        let mut m = TopicMeta {
            name: name.to_string(),
            partitions: 0,
            config: defaults,
            set: BTreeMap::new(),
            epoch: 0,
        };
        let mut set = Vec::new();
        for line in text.lines() {
            let (k, v) = line.split_once('=')?;
            if let Some(k) = k.strip_prefix(SET_PREFIX) {
                set.push((k, v));
                continue;
            }
            let n: i64 = v.trim().parse().ok()?;
            let opt = |n: i64| (n >= 0).then_some(n as u64);
            match k.trim() {
                "partitions" => m.partitions = i32::try_from(n).ok()?,
                "segment.bytes" => m.config.segment_bytes = n.max(1) as u64,
                "segment.ms" => m.config.segment_ms = n.max(1) as u64,
                "retention.bytes" => m.config.retention_bytes = opt(n),
                "retention.ms" => m.config.retention_ms = opt(n),
                "max.message.bytes" => m.config.max_message_bytes = n.max(0) as u64,
                "epoch" => m.epoch = n.max(0) as u64,
                _ => {}
            }
        }
        // The configs set win over the lines above (they are the same values when the file
        // was written by this version); one that no longer checks is dropped, logged.
        for (k, v) in set {
            if let Err(e) = topic_config::apply(&mut m.config, &mut m.set, k, Some(v)) {
                tracing::warn!(topic = %name, error = %e, "ignoring a config in topic.meta");
            }
        }
        (m.partitions > 0).then_some(m)
    }

    /// Write `topic.meta` (temp file + rename, then fsync of the folder), blocking. The
    /// shard writes it through its ring instead (`LogOp::PersistTopic`); tests use this.
    #[cfg(test)]
    pub fn persist(&self, data_dir: &Path) -> io::Result<()> {
        let dir = topic_dir(data_dir, &self.name);
        fs::create_dir_all(&dir)?;
        let tmp = dir.join(meta_tmp_name(0));
        fs::write(&tmp, self.to_text())?;
        fs::File::open(&tmp)?.sync_all()?;
        fs::rename(&tmp, dir.join("topic.meta"))?;
        fs::File::open(&dir)?.sync_all()
    }
}

/// The temporary file shard `shard` writes `topic.meta` through. One per shard: only the
/// topic's home writes it, one write at a time, but a name of its own keeps any other
/// writer's rename from taking this one's file.
pub fn meta_tmp_name(shard: usize) -> String {
    format!("topic.meta.tmp.{shard}")
}

/// Every topic with a readable `topic.meta` under `<data-dir>/log`. A topic folder with
/// no `topic.meta` at all is what a crash leaves of a delete (the file goes first) or of a
/// create not yet acknowledged (it is written alongside the partitions): it is removed.
pub fn load_all(data_dir: &Path, defaults: TopicConfig) -> io::Result<Vec<TopicMeta>> {
    let root = data_dir.join("log");
    if !root.exists() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for e in fs::read_dir(root)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().to_string();
        if !e.file_type()?.is_dir() {
            continue;
        }
        let text = match fs::read_to_string(e.path().join("topic.meta")) {
            Ok(t) => t,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                tracing::warn!(topic = %name, "removing a topic folder without topic.meta (a delete or create cut short)");
                if let Err(err) = fs::remove_dir_all(e.path()) {
                    tracing::warn!(topic = %name, error = %err, "removing it failed");
                }
                continue;
            }
            Err(err) => {
                tracing::warn!(topic = %name, error = %err, "ignoring a topic folder whose topic.meta cannot be read");
                continue;
            }
        };
        match TopicMeta::from_text(&name, &text, defaults) {
            Some(m) if valid_name(&name) => out.push(m),
            _ => {
                tracing::warn!(topic = %name, "ignoring a topic folder with an unreadable topic.meta")
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_recomputes_the_honoured_configs_from_the_node_defaults() {
        let defaults = TopicConfig {
            segment_bytes: 1 << 30,
            segment_ms: 1000,
            retention_bytes: None,
            retention_ms: Some(5),
            max_message_bytes: 1 << 20,
            cleanup: Cleanup::Delete,
        };
        let mut m = TopicMeta {
            name: "t".into(),
            partitions: 1,
            config: defaults,
            set: BTreeMap::new(),
            epoch: 0,
        };
        topic_config::apply(&mut m.config, &mut m.set, "retention.ms", Some("9")).unwrap();
        let mut set = BTreeMap::new();
        set.insert("segment.bytes".to_string(), (2u64 << 20).to_string());
        let c = m.changed(defaults, &set).unwrap();
        assert_eq!(c.epoch, 1);
        assert_eq!(
            c.config.retention_ms,
            Some(5),
            "no longer set: the default again"
        );
        assert_eq!(c.config.segment_bytes, 2 << 20);
        set.insert("segment.bytes".to_string(), "1".to_string());
        assert!(m.changed(defaults, &set).is_err());
    }

    #[test]
    fn names_follow_kafka_rules() {
        for ok in ["orders", "a.b_c-d", "x", &"y".repeat(249)] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a b", "a/b", "é", &"y".repeat(250)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn meta_round_trips_through_disk() {
        let dir = std::env::temp_dir().join(format!("pinion-topics-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let defaults = TopicConfig {
            segment_bytes: 1 << 30,
            segment_ms: 1000,
            retention_bytes: None,
            retention_ms: Some(5),
            max_message_bytes: 1 << 20,
            cleanup: Cleanup::Delete,
        };
        let mut m = TopicMeta {
            name: "orders".into(),
            partitions: 6,
            config: defaults,
            set: BTreeMap::new(),
            epoch: 3,
        };
        for (k, v) in [
            ("retention.bytes", "1048576"),
            ("max.message.bytes", "5000"),
            ("cleanup.policy", "compact"),
            ("compression.type", "lz4"),
        ] {
            topic_config::apply(&mut m.config, &mut m.set, k, Some(v)).unwrap();
        }
        assert_eq!(m.config.deletion(), (None, None));
        m.persist(&dir).unwrap();
        // A topic.meta from before configs were kept: node defaults for what it lacks.
        let old = topic_dir(&dir, "old");
        fs::create_dir_all(&old).unwrap();
        fs::write(
            old.join("topic.meta"),
            "partitions=2\nsegment.bytes=4096\nsegment.ms=9\nretention.bytes=-1\nretention.ms=7\n",
        )
        .unwrap();
        let loaded = load_all(&dir, defaults).unwrap();
        assert_eq!(loaded[1], m);
        assert_eq!(loaded[0].config.max_message_bytes, 1 << 20);
        assert_eq!(
            (
                loaded[0].config.segment_bytes,
                loaded[0].config.retention_ms
            ),
            (4096, Some(7))
        );
        assert!(loaded[0].set.is_empty());
        // What a crash mid-delete leaves: partitions without topic.meta. Removed at load.
        let orphan = partition_dir(&dir, "gone", 0);
        fs::create_dir_all(&orphan).unwrap();
        fs::write(orphan.join("00000000000000000000.log"), b"x").unwrap();
        assert_eq!(load_all(&dir, defaults).unwrap().len(), 2);
        assert!(!topic_dir(&dir, "gone").exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
