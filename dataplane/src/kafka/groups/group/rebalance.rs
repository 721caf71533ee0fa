//! The rebalance of one group: preparing it (the join phase and its timer), ending the
//! join phase (the next generation, its protocol and leader, every waiting JoinGroup
//! answered), and taking members out (whatever of them still waits is answered).

use std::time::Instant;

use bytes::Bytes;

use super::{err, join_ok, Group, JoinTimer, Out, Settings, State};
use crate::kafka::groups::ops::{JoinRes, SyncRes};

impl Group {
    pub(super) fn maybe_prepare_rebalance(&mut self, now: Instant, s: &Settings, out: &mut Out) {
        if matches!(
            self.state,
            State::Stable | State::CompletingRebalance | State::Empty
        ) {
            self.prepare_rebalance(now, s, out);
        }
    }

    pub(super) fn prepare_rebalance(&mut self, now: Instant, s: &Settings, out: &mut Out) {
        if self.state == State::CompletingRebalance {
            // Members waiting for the assignment rejoin instead.
            let ids: Vec<String> = self.members.keys().cloned().collect();
            for id in ids {
                if let Some(m) = self.members.get_mut(&id) {
                    m.assignment = Bytes::new();
                }
                self.answer_sync(&id, SyncRes::error(err::REBALANCE_IN_PROGRESS), out);
            }
        }
        self.pending_sync.clear();
        self.sync_timer = None;
        let timeout = self.rebalance_timeout();
        self.join_timer = Some(
            if self.state == State::Empty && !s.initial_delay.is_zero() {
                self.new_member_added = false;
                JoinTimer::Initial {
                    at: now + s.initial_delay,
                    remaining: timeout.saturating_sub(s.initial_delay),
                }
            } else {
                JoinTimer::Delayed { at: now + timeout }
            },
        );
        tracing::debug!(group = %self.id, generation = self.generation, "preparing to rebalance");
        self.state = State::PreparingRebalance;
        self.try_complete_join(now, out);
    }

    pub(super) fn try_complete_join(&mut self, now: Instant, out: &mut Out) {
        if self.state == State::PreparingRebalance
            && matches!(self.join_timer, Some(JoinTimer::Delayed { .. }))
            && self.all_joined()
        {
            self.complete_join(now, out);
        }
    }

    /// The join phase ends: members that did not rejoin leave (static ones stay until
    /// their session ends), the next generation starts and every waiting JoinGroup is
    /// answered, the leader's with every member's metadata.
    pub(super) fn complete_join(&mut self, now: Instant, out: &mut Out) {
        self.join_timer = None;
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join.is_none() && m.instance.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            self.remove(&id, out);
        }
        if self.state == State::Dead {
            return;
        }
        if !self.elect_joined_leader() && !self.members.is_empty() {
            // Only static members that have not rejoined are left: wait another round
            // for them (or for their sessions to end).
            self.join_timer = Some(JoinTimer::Delayed {
                at: now + self.rebalance_timeout(),
            });
            return;
        }
        self.generation += 1;
        self.pending_sync.clear();
        if self.members.is_empty() {
            self.protocol = None;
            self.state = State::Empty;
            return;
        }
        self.protocol = self.select_protocol();
        self.state = State::CompletingRebalance;
        tracing::debug!(group = %self.id, generation = self.generation, members = self.members.len(), "rebalance: joins complete");
        let leader = self.leader.clone().unwrap_or_default();
        let all = self.current_members();
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let members = if id == leader {
                all.clone()
            } else {
                Vec::new()
            };
            let res = join_ok(self, &id, members, leader.clone());
            self.answer_join(&id, res, out);
            if let Some(m) = self.members.get_mut(&id) {
                m.touch(now);
                m.is_new = false;
            }
            self.pending_sync.insert(id);
        }
        self.sync_timer = Some((now + self.rebalance_timeout(), self.generation));
    }

    /// A leader that has not rejoined hands over to one that has; false when none has.
    fn elect_joined_leader(&mut self) -> bool {
        let Some(cur) = self.leader.clone() else {
            return false;
        };
        if self.members.get(&cur).is_some_and(|m| m.join.is_some()) {
            return true;
        }
        match self.members.values().find(|m| m.join.is_some()) {
            Some(m) => {
                self.leader = Some(m.id.clone());
                true
            }
            None => false,
        }
    }

    /// Take a member out; whatever of it still waits is answered UNKNOWN_MEMBER_ID.
    pub(super) fn remove(&mut self, id: &str, out: &mut Out) {
        self.answer_join(id, JoinRes::error("", err::UNKNOWN_MEMBER_ID), out);
        self.answer_sync(id, SyncRes::error(err::UNKNOWN_MEMBER_ID), out);
        let Some(m) = self.members.remove(id) else {
            return;
        };
        if let Some(i) = &m.instance {
            if self.statics.get(i).map(String::as_str) == Some(id) {
                self.statics.remove(i);
            }
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = self.members.keys().next().cloned();
        }
        self.pending_sync.remove(id);
    }

    /// Kafka's removeMemberAndUpdateGroup: out, and the group rebalances without it.
    pub(super) fn remove_and_update(
        &mut self,
        id: &str,
        now: Instant,
        s: &Settings,
        out: &mut Out,
    ) {
        self.remove(id, out);
        match self.state {
            State::Stable | State::CompletingRebalance => self.maybe_prepare_rebalance(now, s, out),
            State::PreparingRebalance => self.try_complete_join(now, out),
            State::Empty | State::Dead => {}
        }
    }
}
