//! The group state machine driven as clients drive it, with a fake clock: joins, syncs,
//! heartbeats, leaves, timers; every waiting request answered exactly once.

use super::*;
use crate::kafka::groups::ops::{HeartbeatReq, JoinReq, LeaveReq, SyncReq};
use crate::txn::{FlightRef, PartRef};

fn d(n: u32) -> Dest {
    Dest {
        shard: 0,
        to: PartRef {
            flight: FlightRef { id: n, gen: 0 },
            part: 0,
        },
    }
}

fn settings(delay_ms: u64) -> Settings {
    Settings {
        min_session: Duration::from_millis(6000),
        max_session: Duration::from_millis(1_800_000),
        initial_delay: Duration::from_millis(delay_ms),
    }
}

fn join_req(member: &str, instance: Option<&str>, meta: &'static [u8]) -> JoinReq {
    JoinReq {
        group: "g".into(),
        member: member.into(),
        instance: instance.map(Into::into),
        client_id: "c".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: vec![Protocol {
            name: "range".into(),
            metadata: Bytes::from_static(meta),
        }],
        require_known_member: true,
        supports_skip: false,
    }
}

/// A group, a clock and the answers so far, by waiter.
struct T {
    g: Group,
    s: Settings,
    now: Instant,
    out: Out,
    next: u32,
    ids: u32,
}

impl T {
    fn new(delay_ms: u64) -> T {
        T {
            g: Group::new("g".into()),
            s: settings(delay_ms),
            now: Instant::now(),
            out: Vec::new(),
            next: 0,
            ids: 0,
        }
    }

    fn dest(&mut self) -> Dest {
        self.next += 1;
        d(self.next)
    }

    /// Send a join; returns its waiter.
    fn join(&mut self, req: JoinReq) -> Dest {
        let dest = self.dest();
        self.ids += 1;
        let fresh = format!("m{}", self.ids);
        self.g
            .join(req, fresh, dest, self.now, &self.s, &mut self.out);
        dest
    }

    fn sync(&mut self, member: &str, generation: i32, assignments: Vec<(String, Bytes)>) -> Dest {
        let dest = self.dest();
        let req = SyncReq {
            group: "g".into(),
            generation,
            member: member.into(),
            instance: None,
            protocol_type: None,
            protocol: None,
            assignments,
        };
        self.g.sync(req, dest, self.now, &mut self.out);
        dest
    }

    fn hb(&mut self, member: &str, generation: i32) -> i16 {
        let req = HeartbeatReq {
            group: "g".into(),
            generation,
            member: member.into(),
            instance: None,
        };
        self.g.heartbeat(&req, self.now)
    }

    fn advance(&mut self, ms_: u64) {
        self.now += Duration::from_millis(ms_);
        self.g.tick(self.now, &self.s, &mut self.out);
    }

    /// The answer to `dest`, which must have come exactly once.
    fn answer(&mut self, dest: Dest) -> GroupRes {
        let n = self.out.iter().filter(|(x, _)| *x == dest).count();
        assert_eq!(n, 1, "waiter {dest:?} answered {n} times: {:?}", self.out);
        let i = self.out.iter().position(|(x, _)| *x == dest).unwrap();
        self.out.remove(i).1
    }

    fn waiting(&self, dest: Dest) -> bool {
        !self.out.iter().any(|(x, _)| *x == dest)
    }

    fn joined(&mut self, dest: Dest) -> JoinRes {
        match self.answer(dest) {
            GroupRes::Join(j) => j,
            other => panic!("not a join answer: {other:?}"),
        }
    }

    fn synced(&mut self, dest: Dest) -> SyncRes {
        match self.answer(dest) {
            GroupRes::Sync(s) => s,
            other => panic!("not a sync answer: {other:?}"),
        }
    }

    /// A dynamic member through MEMBER_ID_REQUIRED: returns its id and its join waiter.
    fn enter(&mut self, meta: &'static [u8]) -> (String, Dest) {
        let first = self.join(join_req("", None, meta));
        let j = self.joined(first);
        assert_eq!(j.error, err::MEMBER_ID_REQUIRED);
        let id = j.member;
        let w = self.join(join_req(&id, None, meta));
        (id, w)
    }
}

#[test]
fn first_rebalance_waits_the_initial_delay_then_the_leader_assigns() {
    let mut t = T::new(3000);
    let (a, wa) = t.enter(b"a");
    assert_eq!(t.g.state(), State::PreparingRebalance);
    t.advance(1000);
    let (b, wb) = t.enter(b"b");
    t.advance(2000);
    // b arrived during the delay: it is extended once more.
    assert!(t.waiting(wa) && t.waiting(wb));
    t.advance(3000);
    let ja = t.joined(wa);
    let jb = t.joined(wb);
    assert_eq!((ja.error, ja.generation, jb.generation), (0, 1, 1));
    assert_eq!(ja.leader, a);
    assert_eq!(jb.leader, a);
    assert_eq!(ja.members.len(), 2, "the leader sees every member");
    assert!(jb.members.is_empty());
    assert_eq!(ja.protocol.as_deref(), Some("range"));
    assert_eq!(t.g.state(), State::CompletingRebalance);
    // The follower's sync waits for the leader's.
    let sb = t.sync(&b, 1, Vec::new());
    assert!(t.waiting(sb));
    let sa = t.sync(
        &a,
        1,
        vec![
            (a.clone(), Bytes::from_static(b"A")),
            (b.clone(), Bytes::from_static(b"B")),
        ],
    );
    assert_eq!(t.synced(sa).assignment, Bytes::from_static(b"A"));
    assert_eq!(t.synced(sb).assignment, Bytes::from_static(b"B"));
    assert_eq!(t.g.state(), State::Stable);
    assert_eq!(t.hb(&a, 1), err::NONE);
    assert_eq!(t.hb(&b, 0), err::ILLEGAL_GENERATION);
    assert_eq!(t.hb("nobody", 1), err::UNKNOWN_MEMBER_ID);
    assert!(t.out.is_empty());
}

/// A stable group of `n` members at generation 1, with no initial delay.
fn stable(n: usize) -> (T, Vec<String>) {
    let mut t = T::new(0);
    let mut ids: Vec<String> = Vec::new();
    for _ in 0..n {
        let (id, w) = t.enter(b"m");
        // With no delay, each arrival rebalances: the others rejoin.
        let mut ws = vec![w];
        for other in ids.clone() {
            ws.push(t.join(join_req(&other, None, b"m")));
        }
        for w in ws {
            assert_eq!(t.joined(w).error, 0);
        }
        ids.push(id);
    }
    assert_eq!(t.g.state(), State::CompletingRebalance);
    let gen = t.g.generation();
    let leader = ids
        .iter()
        .find(|id| t.g.leader.as_deref() == Some(id.as_str()))
        .unwrap()
        .clone();
    let others: Vec<Dest> = ids
        .iter()
        .filter(|id| **id != leader)
        .map(|id| t.sync(id, gen, Vec::new()))
        .collect();
    let l = t.sync(
        &leader,
        gen,
        ids.iter()
            .map(|id| (id.clone(), Bytes::from(id.clone())))
            .collect(),
    );
    assert_eq!(t.synced(l).error, 0);
    for w in others {
        assert_eq!(t.synced(w).error, 0);
    }
    assert_eq!(t.g.state(), State::Stable);
    assert!(t.out.is_empty(), "{:?}", t.out);
    (t, ids)
}

#[test]
fn a_new_member_rebalances_a_stable_group() {
    let (mut t, ids) = stable(2);
    let gen = t.g.generation();
    let (c, wc) = t.enter(b"m");
    assert_eq!(t.g.state(), State::PreparingRebalance);
    assert!(t.waiting(wc));
    assert_eq!(t.hb(&ids[0], gen), err::REBALANCE_IN_PROGRESS);
    // Commits of the old generation still go through while the group prepares.
    assert_eq!(t.g.check_commit(gen, &ids[0], None, t.now), Ok(()));
    let w0 = t.join(join_req(&ids[0], None, b"m"));
    assert!(t.waiting(w0), "still waiting for the other old member");
    let w1 = t.join(join_req(&ids[1], None, b"m"));
    let (j0, j1, jc) = (t.joined(w0), t.joined(w1), t.joined(wc));
    assert_eq!(
        (j0.generation, j1.generation, jc.generation),
        (gen + 1, gen + 1, gen + 1)
    );
    assert_eq!(
        [&j0, &j1, &jc]
            .iter()
            .filter(|j| !j.members.is_empty())
            .count(),
        1
    );
    assert_eq!(
        t.g.check_commit(gen + 1, &c, None, t.now),
        Err(err::REBALANCE_IN_PROGRESS)
    );
}

#[test]
fn a_silent_member_is_removed_after_its_session_and_the_rest_rebalance() {
    let (mut t, ids) = stable(2);
    let gen = t.g.generation();
    for _ in 0..4 {
        t.advance(2000);
        assert_eq!(t.hb(&ids[0], gen), err::NONE);
    }
    t.advance(2000);
    // ids[1] never heartbeat: its 10 s session is over.
    assert_eq!(t.g.state(), State::PreparingRebalance);
    assert!(!t.g.has_member(&ids[1]));
    assert_eq!(t.hb(&ids[0], gen), err::REBALANCE_IN_PROGRESS);
    let w = t.join(join_req(&ids[0], None, b"m"));
    let j = t.joined(w);
    assert_eq!(
        (j.generation, j.leader.as_str()),
        (gen + 1, ids[0].as_str())
    );
}

#[test]
fn a_member_that_does_not_rejoin_is_dropped_at_the_rebalance_timeout() {
    let (mut t, ids) = stable(2);
    let gen = t.g.generation();
    let w0 = t.join(join_req(&ids[0], None, b"changed"));
    assert_eq!(t.g.state(), State::PreparingRebalance);
    // ids[1] keeps heartbeating but never rejoins within the 30 s rebalance timeout.
    for _ in 0..14 {
        t.advance(2000);
        assert_eq!(t.hb(&ids[1], gen), err::REBALANCE_IN_PROGRESS);
        assert!(t.waiting(w0));
    }
    t.advance(2500);
    let j = t.joined(w0);
    assert_eq!(j.error, 0);
    assert_eq!(j.members.len(), 1);
    assert!(!t.g.has_member(&ids[1]));
}

#[test]
fn leaving_rebalances_and_the_last_leave_empties_the_group() {
    let (mut t, ids) = stable(2);
    let res = t.g.leave(
        &LeaveReq {
            group: "g".into(),
            members: vec![(ids[1].clone(), None), ("ghost".into(), None)],
        },
        t.now,
        &t.s,
        &mut t.out,
    );
    assert_eq!(res.members, vec![err::NONE, err::UNKNOWN_MEMBER_ID]);
    assert_eq!(t.g.state(), State::PreparingRebalance);
    let w = t.join(join_req(&ids[0], None, b"m"));
    assert_eq!(t.joined(w).members.len(), 1);
    let res = t.g.leave(
        &LeaveReq {
            group: "g".into(),
            members: vec![(ids[0].clone(), None)],
        },
        t.now,
        &t.s,
        &mut t.out,
    );
    assert_eq!(res.members, vec![err::NONE]);
    assert_eq!(t.g.state(), State::Empty);
    assert!(t.g.is_empty());
    // An empty group takes commits without a generation (assign()), and none with one.
    assert_eq!(t.g.check_commit(-1, "", None, t.now), Ok(()));
    assert_eq!(
        t.g.check_commit(3, &ids[0], None, t.now),
        Err(err::UNKNOWN_MEMBER_ID)
    );
}

#[test]
fn a_static_member_that_restarts_keeps_its_assignment_without_a_rebalance() {
    let mut t = T::new(0);
    let w = t.join(join_req("", Some("i1"), b"s"));
    let j = t.joined(w);
    assert_eq!(j.generation, 1);
    let s = t.sync(
        &j.member,
        1,
        vec![(j.member.clone(), Bytes::from_static(b"P"))],
    );
    assert_eq!(t.synced(s).assignment, Bytes::from_static(b"P"));
    let old = j.member;
    // The process restarts: same instance id, no member id.
    let w2 = t.join(join_req("", Some("i1"), b"s"));
    let j2 = t.joined(w2);
    assert_eq!((j2.error, j2.generation), (0, 1), "no new generation");
    assert_ne!(j2.member, old);
    assert_eq!(t.g.state(), State::Stable);
    let s2 = t.sync(&j2.member, 1, Vec::new());
    assert_eq!(t.synced(s2).assignment, Bytes::from_static(b"P"));
    // The old incarnation is fenced.
    let req = HeartbeatReq {
        group: "g".into(),
        generation: 1,
        member: old,
        instance: Some("i1".into()),
    };
    assert_eq!(t.g.heartbeat(&req, t.now), err::FENCED_INSTANCE_ID);
}

#[test]
fn a_static_member_is_kept_through_a_rebalance_until_its_session_ends() {
    let mut t = T::new(0);
    let w = t.join(join_req("", Some("i1"), b"s"));
    let a = t.joined(w).member;
    t.sync(&a, 1, vec![]);
    t.out.clear();
    let (b, wb) = t.enter(b"s");
    // a is static and does not rejoin: after the rebalance timeout the join completes
    // with b, and a stays a member until its session ends.
    t.advance(31_000);
    // a's session (10 s) ran out first: it is removed and the join completes for b.
    let jb = t.joined(wb);
    assert_eq!(jb.error, 0);
    assert!(!t.g.has_member(&a));
    assert!(t.g.has_member(&b));
}

#[test]
fn errors_for_unknown_members_bad_generations_and_protocols() {
    let (mut t, ids) = stable(1);
    let w = t.join(join_req("ghost", None, b"m"));
    assert_eq!(t.joined(w).error, err::UNKNOWN_MEMBER_ID);
    let mut bad = join_req("", None, b"m");
    bad.protocol_type = "connect".into();
    let w = t.join(bad);
    assert_eq!(t.joined(w).error, err::INCONSISTENT_GROUP_PROTOCOL);
    let s = t.sync(&ids[0], 7, vec![]);
    assert_eq!(t.synced(s).error, err::ILLEGAL_GENERATION);
    assert_eq!(
        t.g.check_commit(7, &ids[0], None, t.now),
        Err(err::ILLEGAL_GENERATION)
    );
    assert_eq!(
        t.g.check_commit(-1, "", None, t.now),
        Err(err::UNKNOWN_MEMBER_ID)
    );
    // A follower rejoining a stable group with the same metadata gets the generation back.
    let (mut t, ids) = stable(2);
    let leader = t.g.leader.clone().unwrap();
    let follower = ids.iter().find(|i| **i != leader).unwrap().clone();
    let w = t.join(join_req(&follower, None, b"m"));
    let j = t.joined(w);
    assert_eq!((j.error, j.generation), (0, t.g.generation()));
    assert_eq!(t.g.state(), State::Stable);
}

#[test]
fn a_second_join_from_the_same_member_answers_the_first() {
    let (mut t, ids) = stable(2);
    let w1 = t.join(join_req(&ids[0], None, b"x"));
    let w2 = t.join(join_req(&ids[0], None, b"x"));
    assert_eq!(t.joined(w1).error, err::REBALANCE_IN_PROGRESS);
    assert!(t.waiting(w2));
    let w3 = t.join(join_req(&ids[1], None, b"m"));
    assert_eq!(t.joined(w2).error, 0);
    assert_eq!(t.joined(w3).error, 0);
}

#[test]
fn pending_members_lapse_and_unload_answers_every_waiter() {
    let mut t = T::new(3000);
    let first = t.join(join_req("", None, b"m"));
    assert_eq!(t.joined(first).error, err::MEMBER_ID_REQUIRED);
    t.advance(11_000);
    assert!(t.g.is_empty(), "the pending id lapsed with its session");
    let (_, w) = t.enter(b"m");
    let (_, w2) = t.enter(b"m");
    t.g.unload(&mut t.out);
    assert_eq!(t.joined(w).error, err::NOT_COORDINATOR);
    assert_eq!(t.joined(w2).error, err::NOT_COORDINATOR);
    assert!(t.out.is_empty());
}

#[test]
fn a_member_that_never_syncs_is_removed_after_the_rebalance_timeout() {
    let mut t = T::new(0);
    let (a, wa) = t.enter(b"m");
    t.joined(wa);
    let (b, wb) = t.enter(b"m");
    let wa = t.join(join_req(&a, None, b"m"));
    t.joined(wa);
    t.joined(wb);
    let gen = t.g.generation();
    let leader = t.g.leader.clone().unwrap();
    let other = if leader == a { b.clone() } else { a.clone() };
    let s = t.sync(&leader, gen, vec![]);
    assert_eq!(t.synced(s).error, 0);
    // `other` never sends SyncGroup (but heartbeats).
    for _ in 0..16 {
        t.advance(2000);
        t.hb(&other, gen);
        t.hb(&leader, gen);
    }
    assert!(!t.g.has_member(&other));
    assert_eq!(t.g.state(), State::PreparingRebalance);
}
