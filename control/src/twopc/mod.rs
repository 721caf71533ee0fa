//! Map changes by two-phase commit, as two pure state machines.
//!
//! The coordinator (the control plane) and each participant (a node) are plain types with
//! `step(input, now) -> Vec<Output>`. They read no clock and do no I/O: the driver (the
//! server, or the simulation) delivers messages and ticks, and carries out the outputs
//! **in order**. An output `Persist(..)` must be durable before the driver carries out any
//! output after it; a crash may stop the driver between any two outputs, and the machine is
//! then rebuilt from what was persisted (`recover`). That is how the simulation crashes a
//! process at every step.
//!
//! The protocol, for a change to epoch `e` (always above every epoch begun before, so an
//! aborted epoch is never reused):
//! 1. coordinator persists `Begin(e, map)`, sends `Prepare(e, map)` to every voter of the
//!    new map (its active and draining nodes);
//! 2. a participant validates, persists `prepared = map`, and votes yes (or votes no);
//! 3. all yes: the coordinator persists `Decide(e, commit)`; a no or the prepare timeout:
//!    `Decide(e, abort)`. Then it sends the decision to every voter;
//! 4. a participant applies a commit (persists `committed = map`, installs it) or drops its
//!    prepared map on an abort, and acks; when all have acked a commit, or the ack wait
//!    ends, the coordinator persists `End(e)` and may begin the next change. An abort ends
//!    at once (presumed abort: an epoch neither open nor committed is answered abort).
//!
//! Recovery: a restarted coordinator with a begun but undecided change aborts it; with a
//! decided one it re-sends the decision. A participant in doubt (prepared, no decision)
//! asks the coordinator, and keeps asking; every participant also asks now and then with
//! its committed epoch, and one that is behind gets the latest committed map (`Catchup`).
//!
//! Invariant: two different maps are never served at one epoch, and a served map is one the
//! coordinator durably decided to commit. It holds because the coordinator persists exactly
//! one `Begin` per epoch before any `Prepare` for it, persists a decision before sending
//! it, and a participant installs only a map it prepared from that epoch's `Prepare` (with
//! the digest the commit names) or the coordinator's committed map.

pub mod coordinator;
pub mod participant;

use std::fmt;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use crate::map::{ClusterMap, Epoch, MapDigest};

pub use coordinator::{Coordinator, Record};
pub use participant::{Durable, Participant};

/// Milliseconds on the driver's clock (the simulation's virtual one, or since start).
pub type Millis = u64;

/// A map and its digest, computed once when the map is made or decoded.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedMap {
    pub map: Arc<ClusterMap>,
    pub digest: MapDigest,
}

impl SignedMap {
    pub fn new(map: ClusterMap) -> SignedMap {
        let digest = map.digest();
        SignedMap {
            map: Arc::new(map),
            digest,
        }
    }

    /// The empty map at epoch 0, where every cluster and node starts (made once).
    pub fn empty() -> SignedMap {
        static EMPTY: OnceLock<SignedMap> = OnceLock::new();
        EMPTY
            .get_or_init(|| SignedMap::new(ClusterMap::empty()))
            .clone()
    }

    pub fn epoch(&self) -> Epoch {
        self.map.epoch
    }
}

impl fmt::Debug for SignedMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "map(e{} {:?})", self.map.epoch, self.digest)
    }
}

impl Serialize for SignedMap {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.map.serialize(s)
    }
}

impl<'de> Deserialize<'de> for SignedMap {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Decoding the map validates it and checks its checksum.
        Ok(SignedMap::new(ClusterMap::deserialize(d)?))
    }
}

/// Coordinator → participant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToMember {
    Prepare {
        epoch: Epoch,
        map: SignedMap,
    },
    Decide {
        epoch: Epoch,
        commit: bool,
        /// The committed map's digest; on an abort, the aborted one's (or none after a
        /// presumed abort).
        digest: Option<MapDigest>,
    },
    /// The latest committed map, for a participant that is behind or in doubt about an
    /// epoch the coordinator has finished.
    Catchup {
        map: SignedMap,
    },
}

/// Participant → coordinator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToCoordinator {
    Vote {
        epoch: Epoch,
        yes: bool,
    },
    Ack {
        epoch: Epoch,
    },
    /// "What became of my prepared epoch, and am I behind?"
    Ask {
        prepared: Option<Epoch>,
        committed: Epoch,
    },
}

/// The protocol's clocks, in milliseconds.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Re-send a prepare or decision that got no answer after this long.
    pub resend_ms: Millis,
    /// Abort a change whose votes are not all in after this long.
    pub prepare_timeout_ms: Millis,
    /// End a decided change whose acks are not all in after this long; stragglers learn
    /// the outcome by asking.
    pub ack_wait_ms: Millis,
    /// A participant in doubt asks this often.
    pub ask_ms: Millis,
    /// A participant not in doubt reports its epoch this often (and catches up if behind).
    pub report_ms: Millis,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            resend_ms: 200,
            prepare_timeout_ms: 3_000,
            ack_wait_ms: 10_000,
            ask_ms: 300,
            report_ms: 2_000,
        }
    }
}
