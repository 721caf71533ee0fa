//! What this node knows about slots on the move (`docs/architecture.md`, "Moving data"),
//! node-wide, read by every shard's cluster check beside the view.
//!
//! - `importing`: slots this node is receiving (set by the membership thread when the
//!   control plane orders a move to this node). A command for such a slot that the view
//!   places elsewhere is served when the connection sent ASKING just before it.
//! - `frozen`: slots this node is streaming out right now (set by the mover before it
//!   freezes the slot on its shard): keyed commands get TRYAGAIN.
//! - `gone`: slots whose keys this node has handed over: keyed commands get
//!   `-ASK slot host:port` to the new owner until the map flips.
//!
//! The shard that holds a slot keeps the same facts in its store (`cache/migrate.rs`) and
//! checks them when it runs a command, so a command checked here before a freeze and run
//! after it is refused there. These node-wide bits only answer early (without the hop)
//! and cover the commands that do not run through `exec_key` (multi-key parts).
//!
//! Owner: written by the membership thread (importing) and the mover thread (frozen, gone)
//! through [`super::Cluster::edit_moves`]; read by shards through `Cluster::with`.

use std::collections::HashMap;

use crate::cache::slot::SLOTS;

const WORDS: usize = SLOTS / 64;

/// A set of slots.
#[derive(Clone)]
pub struct SlotSet(Box<[u64; WORDS]>);

impl Default for SlotSet {
    fn default() -> SlotSet {
        SlotSet(Box::new([0; WORDS]))
    }
}

impl SlotSet {
    #[inline]
    pub fn has(&self, slot: u16) -> bool {
        let s = usize::from(slot) & (SLOTS - 1);
        self.0[s / 64] & (1 << (s % 64)) != 0
    }

    pub fn set(&mut self, slot: u16, on: bool) {
        let s = usize::from(slot) & (SLOTS - 1);
        if on {
            self.0[s / 64] |= 1 << (s % 64);
        } else {
            self.0[s / 64] &= !(1 << (s % 64));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    pub fn count(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }
}

#[derive(Clone, Default)]
pub struct Moves {
    pub importing: SlotSet,
    pub frozen: SlotSet,
    /// Slot -> where its keys went (host, port).
    pub gone: HashMap<u16, (String, u16)>,
}

impl Moves {
    /// Nothing on the move: the check's fast path.
    pub fn is_quiet(&self) -> bool {
        self.gone.is_empty() && self.frozen.is_empty() && self.importing.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_sets_hold_what_is_set() {
        let mut s = SlotSet::default();
        assert!(s.is_empty());
        s.set(0, true);
        s.set(16383, true);
        s.set(64, true);
        assert!(s.has(0) && s.has(16383) && s.has(64) && !s.has(63));
        assert_eq!(s.count(), 3);
        s.set(64, false);
        assert!(!s.has(64));
        assert_eq!(s.count(), 2);
    }
}
