//! A member's session outside the rebalance: Heartbeat (which keeps it alive), LeaveGroup
//! (which takes it out, and the group rebalances without it), and the check that lets it
//! commit offsets (a commit counts as a heartbeat).

use std::time::Instant;

use super::{err, Group, Out, Settings, State};
use crate::kafka::groups::ops::{HeartbeatReq, LeaveReq, LeaveRes};

impl Group {
    pub fn heartbeat(&mut self, req: &HeartbeatReq, now: Instant) -> i16 {
        if self.state == State::Dead {
            return err::COORDINATOR_NOT_AVAILABLE;
        }
        if let Err(e) = self.check_member(&req.member, req.instance.as_deref()) {
            return e;
        }
        if req.generation != self.generation {
            return err::ILLEGAL_GENERATION;
        }
        let state = self.state;
        let Some(m) = self.members.get_mut(&req.member) else {
            return err::UNKNOWN_MEMBER_ID;
        };
        match state {
            State::Empty | State::Dead => err::UNKNOWN_MEMBER_ID,
            State::CompletingRebalance | State::Stable => {
                m.touch(now);
                err::NONE
            }
            State::PreparingRebalance => {
                m.touch(now);
                err::REBALANCE_IN_PROGRESS
            }
        }
    }

    pub fn leave(&mut self, req: &LeaveReq, now: Instant, s: &Settings, out: &mut Out) -> LeaveRes {
        if self.state == State::Dead {
            return LeaveRes {
                error: err::COORDINATOR_NOT_AVAILABLE,
                members: Vec::new(),
            };
        }
        let mut errors = Vec::with_capacity(req.members.len());
        for (member, instance) in &req.members {
            let e = if member.is_empty() {
                match instance.as_ref().and_then(|i| self.statics.get(i)).cloned() {
                    Some(cur) => {
                        self.remove_and_update(&cur, now, s, out);
                        err::NONE
                    }
                    None => err::UNKNOWN_MEMBER_ID,
                }
            } else if self.pending.remove(member).is_some() {
                self.try_complete_join(now, out);
                err::NONE
            } else {
                match self.check_member(member, instance.as_deref()) {
                    Ok(()) => {
                        self.remove_and_update(member, now, s, out);
                        err::NONE
                    }
                    Err(e) => e,
                }
            };
            tracing::debug!(group = %self.id, member = %member, error = e, "member leaves");
            errors.push(e);
        }
        LeaveRes {
            error: err::NONE,
            members: errors,
        }
    }

    /// May this member commit offsets (Kafka's validateOffsetCommit, and the state rules
    /// of doCommitOffsets)? A commit counts as a heartbeat.
    pub fn check_commit(
        &mut self,
        generation: i32,
        member: &str,
        instance: Option<&str>,
        now: Instant,
    ) -> Result<(), i16> {
        if self.state == State::Dead {
            return Err(err::COORDINATOR_NOT_AVAILABLE);
        }
        if generation >= 0 || !member.is_empty() || instance.is_some() {
            self.check_member(member, instance)?;
            if generation != self.generation {
                return Err(err::ILLEGAL_GENERATION);
            }
        } else if self.state != State::Empty {
            // Only members commit into a group that has members.
            return Err(err::UNKNOWN_MEMBER_ID);
        }
        match self.state {
            State::CompletingRebalance => Err(err::REBALANCE_IN_PROGRESS),
            State::Stable | State::PreparingRebalance => {
                if let Some(m) = self.members.get_mut(member) {
                    m.touch(now);
                }
                Ok(())
            }
            State::Empty => Ok(()),
            State::Dead => Err(err::COORDINATOR_NOT_AVAILABLE),
        }
    }
}
