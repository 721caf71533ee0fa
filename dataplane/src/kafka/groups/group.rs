//! One consumer group's membership and rebalance, as a Kafka 3.x broker's classic group
//! coordinator keeps it (`GroupCoordinator.scala`, `GroupMetadata.scala`): a pure state
//! machine over plain values, owned by the group's coordinator shard, stepped by requests
//! and by [`Group::tick`] with the shard's clock, unit-tested without sockets or disks.
//!
//! States: `Empty` (no members; offsets may remain), `PreparingRebalance` (the join phase:
//! JoinGroup requests wait until every known member has joined, or the rebalance timeout),
//! `CompletingRebalance` (joins answered; waiting for the leader's SyncGroup), `Stable`
//! (assignment handed out), `Dead` (deleted, or the shard is shutting down).
//!
//! Timers, each a deadline checked by `tick`: a member's session (reset by heartbeats,
//! commits, joins and syncs; not counted while its JoinGroup or SyncGroup waits, as in
//! Kafka), a pending member's session (an id handed out with MEMBER_ID_REQUIRED that never
//! came back), the join phase (the group's rebalance timeout, the largest of its members';
//! or, for the first rebalance of an empty group, the initial delay, extended while new
//! members keep arriving), a new member's first-join limit
//! ([`GROUP_NEW_MEMBER_JOIN_TIMEOUT_MS`]), and the sync phase (members that never sent
//! SyncGroup within the rebalance timeout are removed).
//!
//! Invariant: every waiting JoinGroup or SyncGroup (a [`Dest`]) is answered exactly once:
//! by the rebalance, by an error when its member is removed or replaced, or at unload.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::err;
use super::ops::{
    Described, DescribedMember, GroupRes, HeartbeatReq, JoinReq, JoinRes, JoinedMember, LeaveReq,
    LeaveRes, Protocol, SyncReq, SyncRes,
};
use crate::limits::{GROUP_MEMBERS_MAX, GROUP_NEW_MEMBER_JOIN_TIMEOUT_MS};
use crate::txn::Dest;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl State {
    /// The name Kafka reports (DescribeGroups, ListGroups).
    pub fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
            State::Dead => "Dead",
        }
    }
}

/// Node-wide group settings (flags).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub min_session: Duration,
    pub max_session: Duration,
    pub initial_delay: Duration,
}

/// Answers ready to go to the flights that wait for them.
pub type Out = Vec<(Dest, GroupRes)>;

struct Member {
    id: String,
    instance: Option<String>,
    client_id: String,
    session: Duration,
    rebalance: Duration,
    protocols: Vec<Protocol>,
    assignment: Bytes,
    /// Its JoinGroup, waiting for the join phase to end.
    join: Option<Dest>,
    /// Its SyncGroup, waiting for the leader's assignment.
    sync: Option<Dest>,
    /// When its session ends without a heartbeat.
    heartbeat_due: Instant,
    /// Joined and not yet through a rebalance: only the new-member limit keeps it.
    is_new: bool,
}

impl Member {
    fn matches(&self, protocols: &[Protocol]) -> bool {
        self.protocols == protocols
    }

    fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|p| p.name == protocol)
            .map(|p| p.metadata.clone())
            .unwrap_or_default()
    }

    fn touch(&mut self, now: Instant) {
        self.heartbeat_due = now + self.session;
    }
}

enum JoinTimer {
    /// The first rebalance of an empty group: it waits at least the initial delay, and
    /// each new member that arrives meanwhile extends it by up to that much again, while
    /// `remaining` (rebalance timeout less the delay) lasts. It does not end early.
    Initial { at: Instant, remaining: Duration },
    /// Ends when every known member has joined, or at `at`.
    Delayed { at: Instant },
}

pub struct Group {
    pub id: String,
    state: State,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    /// Members by id (ordered, so leader election and listings are deterministic).
    members: BTreeMap<String, Member>,
    /// Static members: instance id to member id.
    statics: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, and when they lapse.
    pending: HashMap<String, Instant>,
    /// Members that have not sent SyncGroup for this generation.
    pending_sync: HashSet<String>,
    join_timer: Option<JoinTimer>,
    new_member_added: bool,
    /// The sync phase's deadline and its generation.
    sync_timer: Option<(Instant, i32)>,
}

fn join_ok(g: &Group, member: &str, members: Vec<JoinedMember>, leader: String) -> JoinRes {
    JoinRes {
        error: err::NONE,
        generation: g.generation,
        protocol_type: g.protocol_type.clone(),
        protocol: g.protocol.clone(),
        leader,
        skip_assignment: false,
        member: member.to_string(),
        members,
    }
}

impl Group {
    pub fn new(id: String) -> Group {
        Group {
            id,
            state: State::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            statics: HashMap::new(),
            pending: HashMap::new(),
            pending_sync: HashSet::new(),
            join_timer: None,
            new_member_added: false,
            sync_timer: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn generation(&self) -> i32 {
        self.generation
    }

    pub fn protocol_type(&self) -> &str {
        self.protocol_type.as_deref().unwrap_or("")
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.pending.is_empty()
    }

    pub fn has_member(&self, id: &str) -> bool {
        self.members.contains_key(id)
    }

    /// Metadata of every member for the group's protocol, as the consumer protocol's
    /// subscriptions (to tell which topics the group consumes).
    pub fn subscriptions(&self) -> impl Iterator<Item = Bytes> + '_ {
        let p = self.protocol.clone().unwrap_or_default();
        self.members.values().map(move |m| m.metadata(&p))
    }

    fn rebalance_timeout(&self) -> Duration {
        self.members
            .values()
            .map(|m| m.rebalance)
            .max()
            .unwrap_or_default()
    }

    fn all_joined(&self) -> bool {
        self.pending.is_empty() && self.members.values().all(|m| m.join.is_some())
    }

    fn supports(&self, protocol_type: &str, protocols: &[Protocol]) -> bool {
        if self.state == State::Empty {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|p| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|q| q.name == p.name))
            })
    }

    /// The protocol every member supports that most members prefer (Kafka's vote).
    fn select_protocol(&self) -> Option<String> {
        let candidate = |name: &str| {
            self.members
                .values()
                .all(|m| m.protocols.iter().any(|q| q.name == name))
        };
        let mut votes: Vec<(String, usize)> = Vec::new();
        for m in self.members.values() {
            let Some(p) = m.protocols.iter().find(|p| candidate(&p.name)) else {
                continue;
            };
            match votes.iter_mut().find(|(n, _)| *n == p.name) {
                Some((_, v)) => *v += 1,
                None => votes.push((p.name.clone(), 1)),
            }
        }
        let best = votes.iter().map(|(_, v)| *v).max()?;
        votes.into_iter().find(|(_, v)| *v == best).map(|(n, _)| n)
    }

    /// A member's JoinGroup is answered (a replaced, still waiting one first, with `stale`).
    fn set_join_waiter(&mut self, id: &str, dest: Option<Dest>, stale: i16, out: &mut Out) {
        if let Some(m) = self.members.get_mut(id) {
            if let Some(old) = std::mem::replace(&mut m.join, dest) {
                if Some(old) != dest {
                    out.push((old, GroupRes::Join(JoinRes::error(id, stale))));
                }
            }
        }
    }

    fn answer_join(&mut self, id: &str, res: JoinRes, out: &mut Out) {
        if let Some(d) = self.members.get_mut(id).and_then(|m| m.join.take()) {
            out.push((d, GroupRes::Join(res)));
        }
    }

    fn answer_sync(&mut self, id: &str, res: SyncRes, out: &mut Out) -> bool {
        match self.members.get_mut(id).and_then(|m| m.sync.take()) {
            Some(d) => {
                out.push((d, GroupRes::Sync(res)));
                true
            }
            None => false,
        }
    }

    // ----- JoinGroup --------------------------------------------------------------------

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

    /// Is `member` who it says: a static member's instance id maps to it, and it is in
    /// the group (Kafka's validateCurrentMember).
    fn check_member(&self, member: &str, instance: Option<&str>) -> Result<(), i16> {
        if let Some(i) = instance {
            return match self.statics.get(i) {
                Some(cur) if cur != member => Err(err::FENCED_INSTANCE_ID),
                Some(_) => Ok(()),
                None => Err(err::UNKNOWN_MEMBER_ID),
            };
        }
        if self.members.contains_key(member) {
            Ok(())
        } else {
            Err(err::UNKNOWN_MEMBER_ID)
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

    fn current_members(&self) -> Vec<JoinedMember> {
        let p = self.protocol.clone().unwrap_or_default();
        self.members
            .values()
            .map(|m| JoinedMember {
                id: m.id.clone(),
                instance: m.instance.clone(),
                metadata: m.metadata(&p),
            })
            .collect()
    }

    // ----- the rebalance ----------------------------------------------------------------

    fn maybe_prepare_rebalance(&mut self, now: Instant, s: &Settings, out: &mut Out) {
        if matches!(
            self.state,
            State::Stable | State::CompletingRebalance | State::Empty
        ) {
            self.prepare_rebalance(now, s, out);
        }
    }

    fn prepare_rebalance(&mut self, now: Instant, s: &Settings, out: &mut Out) {
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

    fn try_complete_join(&mut self, now: Instant, out: &mut Out) {
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
    fn complete_join(&mut self, now: Instant, out: &mut Out) {
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
    fn remove(&mut self, id: &str, out: &mut Out) {
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
    fn remove_and_update(&mut self, id: &str, now: Instant, s: &Settings, out: &mut Out) {
        self.remove(id, out);
        match self.state {
            State::Stable | State::CompletingRebalance => self.maybe_prepare_rebalance(now, s, out),
            State::PreparingRebalance => self.try_complete_join(now, out),
            State::Empty | State::Dead => {}
        }
    }

    // ----- SyncGroup, Heartbeat, LeaveGroup ------------------------------------------------

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

    pub fn describe(&self) -> Described {
        let stable = self.state == State::Stable;
        let protocol = self.protocol.clone().unwrap_or_default();
        Described {
            error: err::NONE,
            state: self.state.name(),
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol: if stable {
                protocol.clone()
            } else {
                String::new()
            },
            members: self
                .members
                .values()
                .map(|m| DescribedMember {
                    id: m.id.clone(),
                    instance: m.instance.clone(),
                    client_id: m.client_id.clone(),
                    client_host: String::new(),
                    metadata: if stable {
                        m.metadata(&protocol)
                    } else {
                        Bytes::new()
                    },
                    assignment: if stable {
                        m.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                })
                .collect(),
        }
    }

    // ----- timers ---------------------------------------------------------------------

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

fn ms(v: i32) -> Duration {
    Duration::from_millis(v.max(0) as u64)
}

#[cfg(test)]
#[path = "group_tests.rs"]
mod tests;
