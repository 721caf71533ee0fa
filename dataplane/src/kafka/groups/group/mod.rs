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
//! ([`GROUP_NEW_MEMBER_JOIN_TIMEOUT_MS`](crate::limits::GROUP_NEW_MEMBER_JOIN_TIMEOUT_MS)),
//! and the sync phase (members that never sent SyncGroup within the rebalance timeout are
//! removed).
//!
//! Invariant: every waiting JoinGroup or SyncGroup (a [`Dest`]) is answered exactly once:
//! by the rebalance, by an error when its member is removed or replaced, or at unload.
//!
//! One file per concern: this file holds the group's state, its read-only views
//! (DescribeGroups, the members' subscriptions) and the helpers the others share;
//! `join.rs` JoinGroup (new, known, pending and static members); `rebalance.rs` the
//! rebalance itself (preparing it, ending the join phase, electing a leader, removing
//! members); `sync.rs` SyncGroup; `session.rs` Heartbeat, LeaveGroup and the offset commit
//! check; `timers.rs` the deadlines `tick` runs, and unload at shutdown.

mod join;
mod rebalance;
mod session;
mod sync;
#[cfg(test)]
mod tests;
mod timers;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::err;
use super::ops::{Described, DescribedMember, GroupRes, JoinRes, JoinedMember, Protocol, SyncRes};
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
}

fn ms(v: i32) -> Duration {
    Duration::from_millis(v.max(0) as u64)
}
