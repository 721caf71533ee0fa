//! Test-only crash points of the 2PC participant (the membership thread).
//!
//! **For tests only.** With `PINION_MEMBER_CRASH_AT=STEP` in its environment, a node
//! started with `--control` aborts (SIGABRT: no clean-up, like `kill -9`) the first time
//! it reaches that step of a map change; `tests/test_cluster_2pc_kill.py` restarts it
//! without the variable and checks that every member converges on one map. Unset, each
//! hook is one load of a cached value. The steps, in the order the participant's outputs
//! are carried out (`member.rs`, `carry_out`):
//! - `prepared`: the prepared map is durable, the vote not sent;
//! - `voted`: the yes vote is sent;
//! - `committed`: the committed map is durable, neither installed nor acked;
//! - `acked`: the commit is installed and acked.
//!
//! The coordinator's points, and [`fire`], are in `pinion_control::crashpoint`.

use std::sync::OnceLock;

use pinion_control::crashpoint::{armed, fire, FLUSH_GRACE_MS};
use pinion_control::twopc::participant::Output;
use pinion_control::twopc::ToCoordinator;

/// The node's variable.
pub const MEMBER_VAR: &str = "PINION_MEMBER_CRASH_AT";

/// What one participant output is, as far as the crash points care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Other,
    Prepared,
    Voted,
    Committed,
    Acked,
}

/// The steps of a batch of participant outputs, by index. A commit is the batch that
/// installs and acks (a catch-up installs without an ack, an abort acks without an install).
pub fn steps(outs: &[Output]) -> Vec<Step> {
    let installs = outs.iter().any(|o| matches!(o, Output::Install(_)));
    let acks = outs
        .iter()
        .any(|o| matches!(o, Output::Send(ToCoordinator::Ack { .. })));
    let commit = installs && acks;
    outs.iter()
        .map(|o| match o {
            Output::Persist(d) if d.prepared.is_some() => Step::Prepared,
            Output::Persist(_) if commit => Step::Committed,
            Output::Send(ToCoordinator::Vote { yes: true, .. }) => Step::Voted,
            Output::Send(ToCoordinator::Ack { .. }) if commit => Step::Acked,
            _ => Step::Other,
        })
        .collect()
}

static MEMBER: OnceLock<Option<String>> = OnceLock::new();

/// Called before a batch is carried out; classifies it only when a point is armed.
pub fn before(outs: &[Output]) -> Vec<Step> {
    match armed(MEMBER_VAR, &MEMBER) {
        Some(_) => steps(outs),
        None => Vec::new(),
    }
}

/// Called after output `i` of the batch `before` classified was carried out.
pub fn after(steps: &[Step], i: usize) {
    let Some(at) = armed(MEMBER_VAR, &MEMBER) else {
        return;
    };
    match (at, steps.get(i)) {
        ("prepared", Some(Step::Prepared)) | ("committed", Some(Step::Committed)) => {
            fire(MEMBER_VAR, at, 0)
        }
        ("voted", Some(Step::Voted)) | ("acked", Some(Step::Acked)) => {
            fire(MEMBER_VAR, at, FLUSH_GRACE_MS)
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pinion_control::twopc::participant::Durable;
    use pinion_control::twopc::SignedMap;

    #[test]
    fn a_commit_batch_is_told_from_a_catchup_and_an_abort() {
        let m = SignedMap::empty();
        let durable = |prepared: Option<SignedMap>| Durable {
            committed: m.clone(),
            prepared,
        };
        let ack = || Output::Send(ToCoordinator::Ack { epoch: 1 });
        let prepare = [
            Output::Persist(durable(Some(m.clone()))),
            Output::Send(ToCoordinator::Vote {
                epoch: 1,
                yes: true,
            }),
        ];
        assert_eq!(steps(&prepare), [Step::Prepared, Step::Voted]);
        let commit = [
            Output::Persist(durable(None)),
            Output::Install(m.clone()),
            ack(),
        ];
        assert_eq!(steps(&commit), [Step::Committed, Step::Other, Step::Acked]);
        let catchup = [Output::Persist(durable(None)), Output::Install(m.clone())];
        assert_eq!(steps(&catchup), [Step::Other, Step::Other]);
        let abort = [Output::Persist(durable(None)), ack()];
        assert_eq!(steps(&abort), [Step::Other, Step::Other]);
    }
}
