//! Test-only crash points: a process that dies at a chosen step of a map change.
//!
//! **For tests only.** With `PINION_CONTROL_CRASH_AT=STEP` in its environment,
//! `pinion-control serve` aborts (SIGABRT: no clean-up, nothing flushed, like `kill -9`)
//! the first time its core reaches that step of a change; `tests/test_cluster_2pc_kill.py`
//! restarts it without the variable and checks that every member converges on one map.
//! Unset (always, outside that test), each hook is one relaxed load of a cached value.
//!
//! The coordinator's steps, in the order the core carries out its outputs:
//! - `prepare_sent`: `Begin(e)` is logged and `Prepare(e)` handed to every voter's
//!   connection; no vote counted;
//! - `votes_in`: every vote is in, the decision is not logged;
//! - `decision_logged`: `Decide(e)` is durable, sent to nobody;
//! - `decision_half_sent`: the decision went to the first voter only.
//!
//! A step that ends in sends waits `FLUSH_GRACE_MS` before aborting, so the connection
//! writers put on the wire what was handed to them (as a process that died just after its
//! `write` calls); the core does nothing else meanwhile. The node's side has its own
//! points (`dataplane/src/cluster/crashpoint.rs`) and uses [`fire`].

use std::sync::OnceLock;
use std::time::Duration;

use crate::twopc::coordinator::Output;
use crate::twopc::{Record, ToMember};

/// The coordinator's variable.
pub const CONTROL_VAR: &str = "PINION_CONTROL_CRASH_AT";
/// How long a step that ends in sends lets the writers run before the abort.
pub const FLUSH_GRACE_MS: u64 = 200;

/// The coordinator's steps (see the module header).
pub const CONTROL_STEPS: [&str; 4] = [
    "prepare_sent",
    "votes_in",
    "decision_logged",
    "decision_half_sent",
];

/// The step named by `var`, read once; `None` when unset (the normal case).
pub fn armed(var: &'static str, cache: &'static OnceLock<Option<String>>) -> Option<&'static str> {
    cache
        .get_or_init(|| std::env::var(var).ok().filter(|s| !s.is_empty()))
        .as_deref()
}

/// Dies at `step`: logs it, lets the writers run for `grace_ms` when the step ended in
/// sends, then aborts the process.
pub fn fire(var: &str, step: &str, grace_ms: u64) -> ! {
    tracing::error!("{var}={step}: test crash point reached; aborting");
    if grace_ms > 0 {
        std::thread::sleep(Duration::from_millis(grace_ms));
    }
    std::process::abort();
}

/// What one coordinator output is, as far as the crash points care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Other,
    /// A `Prepare` to one voter; `last` when it is the last of its batch.
    Prepare {
        last: bool,
    },
    DecisionLogged,
    /// A decision to one voter; `first` when it is the first of its batch.
    Decision {
        first: bool,
    },
}

/// The steps of a batch of coordinator outputs, by index.
pub fn steps(outs: &[Output]) -> Vec<Step> {
    let prepares = outs
        .iter()
        .filter(|o| {
            matches!(
                o,
                Output::Send {
                    msg: ToMember::Prepare { .. },
                    ..
                }
            )
        })
        .count();
    let (mut p, mut d) = (0, 0);
    outs.iter()
        .map(|o| match o {
            Output::Send {
                msg: ToMember::Prepare { .. },
                ..
            } => {
                p += 1;
                Step::Prepare {
                    last: p == prepares,
                }
            }
            Output::Send {
                msg: ToMember::Decide { .. },
                ..
            } => {
                d += 1;
                Step::Decision { first: d == 1 }
            }
            Output::Persist(Record::Decide { .. }) => Step::DecisionLogged,
            _ => Step::Other,
        })
        .collect()
}

static CONTROL: OnceLock<Option<String>> = OnceLock::new();

/// Called by the core before it carries out a batch's outputs: `votes_in` fires before a
/// decision is logged.
pub fn before(outs: &[Output]) -> Vec<Step> {
    let Some(at) = armed(CONTROL_VAR, &CONTROL) else {
        return Vec::new();
    };
    let steps = steps(outs);
    if at == "votes_in" && steps.contains(&Step::DecisionLogged) {
        fire(CONTROL_VAR, at, 0);
    }
    steps
}

/// Called by the core after it carried out output `i` of the batch `before` classified.
pub fn after(steps: &[Step], i: usize) {
    let Some(at) = armed(CONTROL_VAR, &CONTROL) else {
        return;
    };
    match (at, steps.get(i)) {
        ("prepare_sent", Some(Step::Prepare { last: true })) => {
            fire(CONTROL_VAR, at, FLUSH_GRACE_MS)
        }
        ("decision_logged", Some(Step::DecisionLogged)) => fire(CONTROL_VAR, at, 0),
        ("decision_half_sent", Some(Step::Decision { first: true })) => {
            fire(CONTROL_VAR, at, FLUSH_GRACE_MS)
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::twopc::SignedMap;

    #[test]
    fn a_batch_is_classified_by_step() {
        let m = SignedMap::empty();
        let outs = vec![
            Output::Persist(Record::Begin {
                epoch: 1,
                map: m.clone(),
            }),
            Output::Send {
                to: 1,
                msg: ToMember::Prepare {
                    epoch: 1,
                    map: m.clone(),
                },
            },
            Output::Send {
                to: 2,
                msg: ToMember::Prepare { epoch: 1, map: m },
            },
        ];
        assert_eq!(
            steps(&outs),
            [
                Step::Other,
                Step::Prepare { last: false },
                Step::Prepare { last: true }
            ]
        );
        let decide = |to| Output::Send {
            to,
            msg: ToMember::Decide {
                epoch: 1,
                commit: true,
                digest: None,
            },
        };
        let outs = vec![
            Output::Persist(Record::Decide {
                epoch: 1,
                commit: true,
            }),
            decide(1),
            decide(2),
        ];
        assert_eq!(
            steps(&outs),
            [
                Step::DecisionLogged,
                Step::Decision { first: true },
                Step::Decision { first: false }
            ]
        );
    }
}
