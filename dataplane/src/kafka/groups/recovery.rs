//! The coordinator's start-up: this shard's offsets files are read (blocking I/O, before
//! the shard serves) and their records replayed into `Groups`: each group comes back
//! `Empty` with its committed offsets, and what open transactions staged is held again.

use std::collections::HashMap;
use std::time::Duration;

use super::group::Settings;
use super::store::{OffsetLog, Record};
use super::{dir, partitions_of, Committed, Groups, RecoverError, Waiter};
use crate::config::Config;
use crate::mesh::SlotTable;

impl Groups {
    /// Open this shard's offsets files and rebuild the groups' offsets from them
    /// (start-up: blocking I/O is fine).
    pub fn recover(
        cfg: &Config,
        me: usize,
        owner: &SlotTable,
        now_ms: u64,
    ) -> Result<Groups, RecoverError> {
        let dir = dir(&cfg.data_dir);
        let parts = partitions_of(owner, me);
        let sync = cfg.fsync != crate::log::commit::Fsync::Never;
        let (log, records) =
            OffsetLog::recover(&dir, &parts, sync).map_err(|source| RecoverError {
                shard: me,
                dir: dir.display().to_string(),
                source,
            })?;
        let mut g = Groups::new(cfg, me, log, now_ms);
        for r in records {
            g.replay(r);
        }
        if !g.groups.is_empty() {
            tracing::info!(
                shard = me,
                groups = g.groups.len(),
                "recovered consumer group offsets"
            );
        }
        Ok(g)
    }

    fn new(cfg: &Config, me: usize, log: OffsetLog<Waiter>, now_ms: u64) -> Groups {
        Groups {
            me,
            groups: HashMap::new(),
            log,
            settings: settings(cfg),
            next_member: 0,
            started_ms: now_ms,
            draining: false,
            replies: Vec::new(),
            deletes: HashMap::new(),
            next_batch: 0,
            txns: crate::kafka::txn::Txns::new(me),
            staged: HashMap::new(),
        }
    }

    pub(super) fn replay(&mut self, r: Record) {
        match r {
            Record::Commit {
                group,
                topic,
                partition,
                offset,
                leader_epoch,
                metadata,
                commit_ms,
            } => {
                self.entry(&group).offsets.insert(
                    (topic, partition),
                    Committed {
                        offset,
                        leader_epoch,
                        metadata,
                        commit_ms,
                    },
                );
            }
            Record::Tombstone {
                group,
                topic,
                partition,
            } => {
                if let Some(e) = self.groups.get_mut(&group) {
                    e.offsets.remove(&(topic, partition));
                }
            }
            Record::GroupGone { group } => {
                if let Some(e) = self.groups.get_mut(&group) {
                    e.offsets.clear();
                }
            }
            Record::Txn(t) => self.replay_txn(t),
        }
        self.groups
            .retain(|_, e| !(e.offsets.is_empty() && e.group.is_empty()));
    }
}

fn settings(cfg: &Config) -> Settings {
    Settings {
        min_session: Duration::from_millis(cfg.group_min_session_timeout_ms),
        max_session: Duration::from_millis(cfg.group_max_session_timeout_ms),
        initial_delay: Duration::from_millis(cfg.group_initial_rebalance_delay_ms),
    }
}
