//! Topic configs: `log::topic_config::apply` over the name/value pairs a CreateTopics
//! request carries, and `log::topics::load_all` over a `topic.meta` file written from the
//! input (the text a shard reads back at start-up), in a private folder.
//!
//! Input: text; each line is `name=value`, or a bare `name` for a null value.
//!
//! Checked: no panic; a config `apply` accepts reads back as given (`value`); a `topic.meta`
//! that loads is written back by `to_text` and loads again to the same topic.
#![no_main]

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use pinion::log::topic_config::{apply, find, value};
use pinion::log::topics::{load_all, Cleanup, TopicConfig};

fn defaults() -> TopicConfig {
    TopicConfig {
        segment_bytes: 1 << 30,
        segment_ms: 7 * 24 * 3600 * 1000,
        retention_bytes: None,
        retention_ms: Some(7 * 24 * 3600 * 1000),
        max_message_bytes: 1 << 20,
        cleanup: Cleanup::Delete,
    }
}

fn folder() -> PathBuf {
    let root = if fs::metadata("/dev/shm").is_ok_and(|m| m.is_dir()) {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    root.join(format!("pinion-fuzz-topics-{}", std::process::id()))
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    let mut config = defaults();
    let mut set = BTreeMap::new();
    for line in text.lines() {
        let (name, v) = match line.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (line, None),
        };
        if apply(&mut config, &mut set, name, v).is_ok() {
            let d = find(name).expect("an applied config is known");
            assert_eq!(Some(value(d, &config, &set).as_str()), v, "{name}");
        }
    }

    let dir = folder();
    let _ = fs::remove_dir_all(&dir);
    let topic = dir.join("log").join("fuzzed-topic");
    fs::create_dir_all(&topic).expect("a scratch folder");
    fs::write(topic.join("topic.meta"), data).expect("writing topic.meta");
    let loaded = load_all(&dir, defaults()).expect("load_all reads a damaged file");
    assert!(loaded.len() <= 1);
    if let Some(m) = loaded.first() {
        assert!(m.partitions > 0);
        fs::write(topic.join("topic.meta"), m.to_text()).expect("writing topic.meta");
        let again = load_all(&dir, defaults()).expect("load_all");
        let a = again.first().expect("its own text loads");
        assert_eq!(
            (a.partitions, a.config, &a.set),
            (m.partitions, m.config, &m.set)
        );
    }
    let _ = fs::remove_dir_all(&dir);
});
