//! JoinGroup on one group: a member without an id (new, or a static member's instance
//! that replaces its old id), a known member (rejoining: a rebalance, or the current
//! generation's answer again), and a pending member coming back with the id that
//! MEMBER_ID_REQUIRED handed it.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{err, join_ok, ms, Group, Member, Out, Settings, State};
use crate::kafka::groups::ops::{GroupRes, JoinReq, JoinRes, Protocol, SyncRes};
use crate::limits::{GROUP_MEMBERS_MAX, GROUP_NEW_MEMBER_JOIN_TIMEOUT_MS};
use crate::txn::Dest;

impl Group {
    /// A JoinGroup (the session timeout is checked and the group exists). `fresh` is a new
    /// member id, used when the request has none.
    pub fn join(
        &mut self,
        req: JoinReq,
        fresh: String,
        dest: Dest,
        now: Instant,
        s: &Settings,
        out: &mut Out,
    ) {
        let reply = |out: &mut Out, member: &str, e| {
            out.push((dest, GroupRes::Join(JoinRes::error(member, e))));
        };
        let unknown = req.member.is_empty();
        let known =
            self.members.contains_key(&req.member) || self.pending.contains_key(&req.member);
        if !known && self.members.len() + self.pending.len() >= GROUP_MEMBERS_MAX {
            return reply(out, "", err::GROUP_MAX_SIZE_REACHED);
        }
        if self.state == State::Dead {
            return reply(out, &req.member, err::COORDINATOR_NOT_AVAILABLE);
        }
        if !self.supports(&req.protocol_type, &req.protocols) {
            return reply(out, &req.member, err::INCONSISTENT_GROUP_PROTOCOL);
        }
        if unknown {
            self.join_new(req, fresh, dest, now, s, out);
        } else {
            self.join_current(req, dest, now, s, out);
        }
        if self.state == State::PreparingRebalance {
            self.try_complete_join(now, out);
        }
    }

    fn join_new(
        &mut self,
        req: JoinReq,
        fresh: String,
        dest: Dest,
        now: Instant,
        s: &Settings,
        out: &mut Out,
    ) {
        if let Some(instance) = req.instance.clone() {
            match self.statics.get(&instance).cloned() {
                Some(old) => self.replace_static(old, fresh, instance, req, dest, now, s, out),
                None => self.add_member(fresh, req, dest, now, s, out),
            }
        } else if req.require_known_member {
            self.pending
                .insert(fresh.clone(), now + ms(req.session_timeout_ms));
            out.push((
                dest,
                GroupRes::Join(JoinRes::error(&fresh, err::MEMBER_ID_REQUIRED)),
            ));
        } else {
            self.add_member(fresh, req, dest, now, s, out);
        }
    }

    fn join_current(
        &mut self,
        req: JoinReq,
        dest: Dest,
        now: Instant,
        s: &Settings,
        out: &mut Out,
    ) {
        let id = req.member.clone();
        if self.pending.contains_key(&id) {
            if req.instance.is_some() {
                // A pending member is never static (statics are not asked to rejoin).
                return out.push((
                    dest,
                    GroupRes::Join(JoinRes::error(&id, err::INVALID_REQUEST)),
                ));
            }
            self.pending.remove(&id);
            return self.add_member(id, req, dest, now, s, out);
        }
        if let Err(e) = self.check_member(&id, req.instance.as_deref()) {
            return out.push((dest, GroupRes::Join(JoinRes::error(&id, e))));
        }
        match self.state {
            State::PreparingRebalance => {
                self.update_and_rebalance(&id, req.protocols, dest, now, s, out)
            }
            State::CompletingRebalance => {
                if self.members[&id].matches(&req.protocols) {
                    // The member missed its JoinGroup answer: answer again for this
                    // generation.
                    let members = if self.leader.as_deref() == Some(id.as_str()) {
                        self.current_members()
                    } else {
                        Vec::new()
                    };
                    let leader = self.leader.clone().unwrap_or_default();
                    out.push((dest, GroupRes::Join(join_ok(self, &id, members, leader))));
                } else {
                    self.update_and_rebalance(&id, req.protocols, dest, now, s, out);
                }
            }
            State::Stable => {
                let is_leader = self.leader.as_deref() == Some(id.as_str());
                if is_leader || !self.members[&id].matches(&req.protocols) {
                    // A leader's JoinGroup always rebalances: it may have seen metadata
                    // change (new partitions) that no member's subscription shows.
                    self.update_and_rebalance(&id, req.protocols, dest, now, s, out);
                } else {
                    let leader = self.leader.clone().unwrap_or_default();
                    out.push((dest, GroupRes::Join(join_ok(self, &id, Vec::new(), leader))));
                }
            }
            State::Empty | State::Dead => out.push((
                dest,
                GroupRes::Join(JoinRes::error(&id, err::UNKNOWN_MEMBER_ID)),
            )),
        }
    }

    fn add_member(
        &mut self,
        id: String,
        req: JoinReq,
        dest: Dest,
        now: Instant,
        s: &Settings,
        out: &mut Out,
    ) {
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if self.state == State::PreparingRebalance && self.generation == 0 {
            self.new_member_added = true;
        }
        if let Some(i) = &req.instance {
            self.statics.insert(i.clone(), id.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(id.clone());
        }
        let session = ms(req.session_timeout_ms);
        self.members.insert(
            id.clone(),
            Member {
                id: id.clone(),
                instance: req.instance,
                client_id: req.client_id,
                session,
                rebalance: ms(req.rebalance_timeout_ms),
                protocols: req.protocols,
                assignment: Bytes::new(),
                join: Some(dest),
                sync: None,
                // Until its first rebalance completes only the new-member limit holds.
                heartbeat_due: now + Duration::from_millis(GROUP_NEW_MEMBER_JOIN_TIMEOUT_MS),
                is_new: true,
            },
        );
        self.maybe_prepare_rebalance(now, s, out);
    }

    #[allow(clippy::too_many_arguments)]
    fn replace_static(
        &mut self,
        old: String,
        new: String,
        instance: String,
        req: JoinReq,
        dest: Dest,
        now: Instant,
        s: &Settings,
        out: &mut Out,
    ) {
        let old_leader = self.leader.clone().unwrap_or_default();
        let Some(mut m) = self.members.remove(&old) else {
            // The map said it was there; treat it as a new member.
            self.statics.remove(&instance);
            return self.add_member(new, req, dest, now, s, out);
        };
        // Fence whoever still waits under the old id (a zombie of this instance).
        if let Some(d) = m.join.take() {
            out.push((
                d,
                GroupRes::Join(JoinRes::error(&old, err::FENCED_INSTANCE_ID)),
            ));
        }
        if let Some(d) = m.sync.take() {
            out.push((d, GroupRes::Sync(SyncRes::error(err::FENCED_INSTANCE_ID))));
        }
        m.id = new.clone();
        m.touch(now);
        m.protocols = req.protocols;
        m.join = Some(dest);
        m.client_id = req.client_id;
        self.members.insert(new.clone(), m);
        if self.leader.as_deref() == Some(old.as_str()) {
            self.leader = Some(new.clone());
        }
        if self.pending_sync.remove(&old) {
            self.pending_sync.insert(new.clone());
        }
        self.statics.insert(instance, new.clone());
        match self.state {
            State::Stable => {
                if self.select_protocol() == self.protocol {
                    // Same protocol: no rebalance, the member keeps its assignment. A
                    // leader that can skip the assignor (v9) is told it leads; older
                    // clients get the old leader id so they do not run it at all.
                    let is_leader = self.leader.as_deref() == Some(new.as_str());
                    let skip = is_leader && req.supports_skip;
                    let (members, leader) = if skip {
                        (self.current_members(), new.clone())
                    } else {
                        (Vec::new(), old_leader)
                    };
                    let mut res = join_ok(self, &new, members, leader);
                    res.skip_assignment = skip;
                    self.answer_join(&new, res, out);
                } else {
                    self.maybe_prepare_rebalance(now, s, out);
                }
            }
            State::CompletingRebalance => self.prepare_rebalance(now, s, out),
            State::PreparingRebalance | State::Empty | State::Dead => {}
        }
    }

    fn update_and_rebalance(
        &mut self,
        id: &str,
        protocols: Vec<Protocol>,
        dest: Dest,
        now: Instant,
        s: &Settings,
        out: &mut Out,
    ) {
        self.set_join_waiter(id, Some(dest), err::REBALANCE_IN_PROGRESS, out);
        if let Some(m) = self.members.get_mut(id) {
            m.protocols = protocols;
        }
        self.maybe_prepare_rebalance(now, s, out);
    }
}
