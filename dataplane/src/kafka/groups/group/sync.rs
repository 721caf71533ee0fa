//! SyncGroup on one group: the leader's assignments end the rebalance (every waiting
//! SyncGroup is answered with its member's share); in a stable group a member gets its
//! assignment again.

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;

use super::{err, Group, Out, State};
use crate::kafka::groups::ops::{GroupRes, SyncReq, SyncRes};
use crate::txn::Dest;

impl Group {
    pub fn sync(&mut self, req: SyncReq, dest: Dest, now: Instant, out: &mut Out) {
        let reply = |out: &mut Out, e| out.push((dest, GroupRes::Sync(SyncRes::error(e))));
        if self.state == State::Dead {
            return reply(out, err::COORDINATOR_NOT_AVAILABLE);
        }
        if let Err(e) = self.check_member(&req.member, req.instance.as_deref()) {
            return reply(out, e);
        }
        if req.generation != self.generation {
            return reply(out, err::ILLEGAL_GENERATION);
        }
        if req
            .protocol_type
            .as_ref()
            .is_some_and(|t| Some(t) != self.protocol_type.as_ref())
            || req
                .protocol
                .as_ref()
                .is_some_and(|p| Some(p) != self.protocol.as_ref())
        {
            return reply(out, err::INCONSISTENT_GROUP_PROTOCOL);
        }
        let id = req.member;
        match self.state {
            State::Empty => reply(out, err::UNKNOWN_MEMBER_ID),
            State::PreparingRebalance => reply(out, err::REBALANCE_IN_PROGRESS),
            State::CompletingRebalance => {
                if let Some(m) = self.members.get_mut(&id) {
                    if let Some(old) = m.sync.replace(dest) {
                        out.push((
                            old,
                            GroupRes::Sync(SyncRes::error(err::REBALANCE_IN_PROGRESS)),
                        ));
                    }
                }
                self.pending_sync.remove(&id);
                if self.leader.as_deref() == Some(id.as_str()) {
                    let mut given: HashMap<String, Bytes> = req.assignments.into_iter().collect();
                    let ids: Vec<String> = self.members.keys().cloned().collect();
                    for mid in ids {
                        let a = given.remove(&mid).unwrap_or_default();
                        if let Some(m) = self.members.get_mut(&mid) {
                            m.assignment = a;
                        }
                    }
                    self.state = State::Stable;
                    tracing::debug!(group = %self.id, generation = self.generation, "rebalance: stable");
                    for mid in self.members.keys().cloned().collect::<Vec<_>>() {
                        let res = self.sync_ok(&mid);
                        if self.answer_sync(&mid, res, out) {
                            if let Some(m) = self.members.get_mut(&mid) {
                                m.touch(now);
                            }
                        }
                    }
                }
            }
            State::Stable => {
                self.pending_sync.remove(&id);
                let res = self.sync_ok(&id);
                out.push((dest, GroupRes::Sync(res)));
                if let Some(m) = self.members.get_mut(&id) {
                    m.touch(now);
                }
            }
            State::Dead => reply(out, err::COORDINATOR_NOT_AVAILABLE),
        }
    }

    fn sync_ok(&self, id: &str) -> SyncRes {
        SyncRes {
            error: err::NONE,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            assignment: self
                .members
                .get(id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default(),
        }
    }
}
