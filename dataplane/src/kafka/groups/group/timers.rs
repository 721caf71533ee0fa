//! One group's deadlines, run by the shard's tick: pending member ids that lapsed, member
//! sessions, the join phase's timer (the initial delay, extended while new members keep
//! arriving) and the sync phase's; and unload, when the coordinator stops serving the group.

use std::time::Instant;

use super::{err, Group, JoinTimer, Out, Settings, State};
use crate::kafka::groups::ops::{JoinRes, SyncRes};

impl Group {
    /// Run the timers that are due.
    pub fn tick(&mut self, now: Instant, s: &Settings, out: &mut Out) {
        if self.state == State::Dead {
            return;
        }
        let lapsed: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, &at)| at <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in lapsed {
            self.pending.remove(&id);
            self.try_complete_join(now, out);
        }
        // Sessions: a member waiting in JoinGroup or SyncGroup is alive (new members only
        // until their first-join limit).
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.heartbeat_due <= now && (m.is_new || (m.join.is_none() && m.sync.is_none()))
            })
            .map(|m| m.id.clone())
            .collect();
        for id in expired {
            tracing::info!(group = %self.id, member = %id, "member's session expired; removing it");
            self.remove_and_update(&id, now, s, out);
        }
        match self.join_timer {
            Some(JoinTimer::Initial { at, remaining }) if at <= now => {
                if self.new_member_added && !remaining.is_zero() {
                    self.new_member_added = false;
                    let delay = s.initial_delay.min(remaining);
                    self.join_timer = Some(JoinTimer::Initial {
                        at: now + delay,
                        remaining: remaining - delay,
                    });
                } else {
                    self.complete_join(now, out);
                }
            }
            Some(JoinTimer::Delayed { at }) if at <= now => self.complete_join(now, out),
            _ => {}
        }
        if let Some((at, generation)) = self.sync_timer {
            if at <= now {
                self.sync_timer = None;
                let live = matches!(self.state, State::CompletingRebalance | State::Stable);
                if generation == self.generation && live && !self.pending_sync.is_empty() {
                    let late: Vec<String> = self.pending_sync.drain().collect();
                    for id in late {
                        tracing::info!(group = %self.id, member = %id, "member sent no SyncGroup in time; removing it");
                        self.remove(&id, out);
                    }
                    self.prepare_rebalance(now, s, out);
                }
            }
        }
    }

    /// The coordinator stops serving the group (shutdown): waiting requests are answered
    /// NOT_COORDINATOR, so clients look for the coordinator again.
    pub fn unload(&mut self, out: &mut Out) {
        self.state = State::Dead;
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            self.answer_join(&id, JoinRes::error(&id, err::NOT_COORDINATOR), out);
            self.answer_sync(&id, SyncRes::error(err::NOT_COORDINATOR), out);
        }
    }
}
