//! A group request on its coordinator: [`Groups::exec`] dispatches each `GroupOp`, and runs
//! the membership requests here against the group's state machine (`group/`): JoinGroup
//! (the group is created, the session timeout checked, a member id handed out), SyncGroup,
//! Heartbeat, LeaveGroup, DescribeGroups and ListGroups. Also the shard's periodic tick and
//! the unload at shutdown.

use std::time::{Duration, Instant};

use super::group::State;
use super::ops::{Described, GroupOp, GroupRes, JoinReq, JoinRes, LeaveRes, Listed, SyncRes};
use super::{err, GroupCtx, Groups};
use crate::limits::GROUPS_PER_SHARD_MAX;
use crate::txn::Dest;

impl Groups {
    /// Answers ready for their flights.
    pub fn take_replies(&mut self) -> Vec<(Dest, GroupRes)> {
        std::mem::take(&mut self.replies)
    }

    /// No offsets write in flight (the shard may exit).
    pub fn io_done(&self) -> bool {
        self.log.io_done()
    }

    /// Groups this shard coordinates (tests, metrics).
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    fn fresh_member_id(&mut self, prefix: &str) -> String {
        self.next_member += 1;
        format!(
            "{prefix}-{:x}-{:x}-{:x}",
            self.me, self.started_ms, self.next_member
        )
    }

    /// Run a group request on this, its coordinator shard.
    pub fn exec(&mut self, op: GroupOp, dest: Dest, ctx: &mut GroupCtx) {
        let now = ctx.now;
        let s = self.settings;
        let mut out = std::mem::take(&mut self.replies);
        match op {
            GroupOp::Join(req) => self.join(req, dest, now, &mut out),
            GroupOp::Sync(req) => match self.groups.get_mut(&req.group) {
                _ if req.group.is_empty() => {
                    out.push((dest, GroupRes::Sync(SyncRes::error(err::INVALID_GROUP_ID))))
                }
                _ if self.draining => {
                    out.push((dest, GroupRes::Sync(SyncRes::error(err::NOT_COORDINATOR))))
                }
                Some(e) => e.group.sync(req, dest, now, &mut out),
                None => out.push((dest, GroupRes::Sync(SyncRes::error(err::UNKNOWN_MEMBER_ID)))),
            },
            GroupOp::Heartbeat(req) => {
                let e = match self.groups.get_mut(&req.group) {
                    _ if req.group.is_empty() => err::INVALID_GROUP_ID,
                    Some(e) => e.group.heartbeat(&req, now),
                    None => err::UNKNOWN_MEMBER_ID,
                };
                out.push((dest, GroupRes::Error(e)));
            }
            GroupOp::Leave(req) => {
                let res = match self.groups.get_mut(&req.group) {
                    _ if req.group.is_empty() => LeaveRes {
                        error: err::INVALID_GROUP_ID,
                        members: Vec::new(),
                    },
                    Some(e) => e.group.leave(&req, now, &s, &mut out),
                    None => LeaveRes {
                        error: err::NONE,
                        members: vec![err::UNKNOWN_MEMBER_ID; req.members.len()],
                    },
                };
                out.push((dest, GroupRes::Leave(res)));
            }
            GroupOp::Commit(req) => self.commit(req, dest, ctx, &mut out),
            GroupOp::Fetch(reqs) => {
                let res = reqs.iter().map(|r| self.fetch(r)).collect();
                out.push((dest, GroupRes::Fetch(res)));
            }
            GroupOp::Describe(ids) => {
                let d = ids
                    .iter()
                    .map(|id| match self.groups.get(id) {
                        Some(e) => e.group.describe(),
                        None => Described {
                            state: State::Dead.name(),
                            ..Described::default()
                        },
                    })
                    .collect();
                out.push((dest, GroupRes::Describe(d)));
            }
            GroupOp::List(states) => {
                let mut listed: Vec<Listed> = self
                    .groups
                    .iter()
                    .filter(|(_, e)| {
                        let name = e.group.state().name();
                        states.is_empty() || states.iter().any(|s| s.eq_ignore_ascii_case(name))
                    })
                    .map(|(id, e)| Listed {
                        group: id.clone(),
                        protocol_type: e.group.protocol_type().to_string(),
                        state: e.group.state().name(),
                    })
                    .collect();
                listed.sort_by(|a, b| a.group.cmp(&b.group));
                out.push((dest, GroupRes::List(listed)));
            }
            GroupOp::Delete(ids) => self.delete(ids, dest, &mut out),
            GroupOp::OffsetDelete(req) => self.offset_delete(req, dest, &mut out),
            // Transactions (`txn_offsets.rs`).
            GroupOp::Txn(op) => self.txn_exec(*op, dest, ctx, &mut out),
            GroupOp::TxnCommit(req) => self.txn_commit(req, dest, ctx, &mut out),
            GroupOp::TxnMarker { group, pid, commit } => {
                self.txn_marker(group, pid, commit, dest, &mut out)
            }
        }
        self.replies = out;
    }

    fn join(&mut self, req: JoinReq, dest: Dest, now: Instant, out: &mut Vec<(Dest, GroupRes)>) {
        let s = self.settings;
        let fail = |out: &mut Vec<(Dest, GroupRes)>, e| {
            out.push((dest, GroupRes::Join(JoinRes::error(&req.member, e))))
        };
        if req.group.is_empty() {
            return fail(out, err::INVALID_GROUP_ID);
        }
        if self.draining {
            return fail(out, err::NOT_COORDINATOR);
        }
        let session = Duration::from_millis(req.session_timeout_ms.max(0) as u64);
        if req.session_timeout_ms < 0 || session < s.min_session || session > s.max_session {
            return fail(out, err::INVALID_SESSION_TIMEOUT);
        }
        if !self.groups.contains_key(&req.group) {
            // A group is created by a member without an id only.
            if !req.member.is_empty() {
                return fail(out, err::UNKNOWN_MEMBER_ID);
            }
            if self.groups.len() >= GROUPS_PER_SHARD_MAX {
                return fail(out, err::COORDINATOR_NOT_AVAILABLE);
            }
            self.entry(&req.group);
        }
        let prefix = req
            .instance
            .clone()
            .unwrap_or_else(|| req.client_id.clone());
        let fresh = self.fresh_member_id(&prefix);
        if let Some(e) = self.groups.get_mut(&req.group) {
            e.group.join(req, fresh, dest, now, &s, out);
        }
    }

    /// The periodic tick: group timers, dropping groups with nothing left, and rewriting
    /// offsets files that grew.
    pub fn tick(&mut self, ctx: &mut GroupCtx) {
        let s = self.settings;
        let mut out = std::mem::take(&mut self.replies);
        for e in self.groups.values_mut() {
            e.group.tick(ctx.now, &s, &mut out);
        }
        self.groups.retain(|_, e| {
            !(e.offsets.is_empty() && e.group.is_empty() && e.group.state() == State::Empty)
        });
        self.txn_tick(ctx.now_ms, &mut out);
        self.replies = out;
        self.rewrite_due(ctx.io);
    }

    /// Shutdown: waiting joins and syncs are answered NOT_COORDINATOR, and no new ones wait.
    pub fn unload(&mut self) {
        self.draining = true;
        let mut out = std::mem::take(&mut self.replies);
        for e in self.groups.values_mut() {
            e.group.unload(&mut out);
        }
        self.replies = out;
    }
}
