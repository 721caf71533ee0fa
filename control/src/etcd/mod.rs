//! The etcd store and leadership, for a control plane with standbys
//! (`serve --store etcd://H:P[,H:P...][/PREFIX]`).
//!
//! Several `pinion-control` processes run against one etcd cluster. Each keeps an etcd
//! lease alive (`LEADER_LEASE_TTL_S`) and tries to create the leader key, `PREFIX/leader`,
//! attached to its lease, holding its address; whoever creates it leads, the others are
//! standbys that watch the key. When the leader dies its lease expires, etcd deletes the
//! key, and a standby creates it, loads the log and starts the coordinator exactly as a
//! restarted one would: an undecided change is aborted, a logged decision re-sent.
//!
//! The log: record `n` (the JSON of a [`crate::twopc::Record`]) is the key
//! `PREFIX/log/NNNNNNNNNNNNNNNNNNNN` (`n`, 20 digits, so etcd's key order is log order).
//! An append is one etcd transaction: *if the leader key's create revision is still mine
//! and record `n` does not exist, put record `n`*. So it is fenced: a leader whose lease
//! expired (its key deleted, or another's created) can append nothing, and two processes
//! can never both append record `n`. The append returns when etcd has acknowledged the
//! transaction (committed by its quorum, on disk), so the coordinator's rule holds as with
//! the write-ahead file: each `Persist` is durable before the next output is carried out.
//! Compaction is one transaction too: delete the records before `n`, put the snapshot as
//! record `n`.
//!
//! Files: `log.rs` the [`Store`](crate::store::Store) over a small key-value seam
//! ([`log::LogKv`]), pure and unit-tested with an in-memory etcd; `client.rs` that seam over
//! the `etcd-client` crate, and the election (lease, leader key, watch).
//!
//! Threads: `etcd-client` is asynchronous, so the process runs a small tokio runtime (one
//! worker) for the lease's renewals and the election; the core thread calls into it with
//! `block_on`, and waits for each append.

pub mod client;
pub mod log;

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "/pinion-control/";

/// Where the etcd store lives: its endpoints and its key prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdConfig {
    /// `http://host:port`, one per etcd member given.
    pub endpoints: Vec<String>,
    /// Ends with `/`.
    pub prefix: String,
}

impl EtcdConfig {
    /// Parses `etcd://H:P[,H:P...][/PREFIX]`.
    pub fn parse(store: &str) -> Result<EtcdConfig, String> {
        let bad = |why: &str| {
            format!("--store {store}: {why} (expected etcd://HOST:PORT[,HOST:PORT...][/PREFIX])")
        };
        let rest = store
            .strip_prefix("etcd://")
            .ok_or_else(|| bad("not an etcd URL"))?;
        let (hosts, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, DEFAULT_PREFIX),
        };
        let mut endpoints = Vec::new();
        for h in hosts.split(',') {
            let (host, port) = h
                .rsplit_once(':')
                .ok_or_else(|| bad(&format!("{h:?} has no port")))?;
            if host.is_empty() || port.parse::<u16>().is_err() {
                return Err(bad(&format!("{h:?} is not HOST:PORT")));
            }
            endpoints.push(format!("http://{h}"));
        }
        let prefix = if prefix.ends_with('/') {
            prefix.to_string()
        } else {
            format!("{prefix}/")
        };
        if prefix == "/" {
            return Err(bad("the prefix may not be empty"));
        }
        Ok(EtcdConfig { endpoints, prefix })
    }

    pub fn leader_key(&self) -> String {
        format!("{}leader", self.prefix)
    }

    /// For status output and logs.
    pub fn describe(&self) -> String {
        format!("etcd {} prefix {}", self.endpoints.join(","), self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_parse_and_bad_ones_say_why() {
        let c = EtcdConfig::parse("etcd://127.0.0.1:2379").unwrap();
        assert_eq!(c.endpoints, ["http://127.0.0.1:2379"]);
        assert_eq!(c.prefix, DEFAULT_PREFIX);
        assert_eq!(c.leader_key(), "/pinion-control/leader");
        let c = EtcdConfig::parse("etcd://a:1,b:2,[::1]:3/prod/ctl").unwrap();
        assert_eq!(c.endpoints, ["http://a:1", "http://b:2", "http://[::1]:3"]);
        assert_eq!(c.prefix, "/prod/ctl/");
        for bad in [
            "file",
            "etcd://",
            "etcd://a",
            "etcd://a:x",
            "etcd://:1",
            "etcd://a:1,",
            "etcd://a:1/",
        ] {
            let e = EtcdConfig::parse(bad).unwrap_err();
            assert!(e.contains("expected etcd://"), "{bad}: {e}");
        }
    }
}
