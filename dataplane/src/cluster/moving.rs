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

/// No target: the slot's keys are here.
const HERE: u16 = u16::MAX;

#[derive(Clone)]
pub struct Moves {
    pub importing: SlotSet,
    pub frozen: SlotSet,
    /// Per slot: the index in `targets` of where its keys went, or `HERE`. (A flat table:
    /// the mover edits this once or twice per slot, and an edit copies it.)
    gone: Box<[u16; SLOTS]>,
    gone_count: usize,
    targets: Vec<(String, u16)>,
    quiet: bool,
}

impl Default for Moves {
    fn default() -> Moves {
        Moves {
            importing: SlotSet::default(),
            frozen: SlotSet::default(),
            gone: Box::new([HERE; SLOTS]),
            gone_count: 0,
            targets: Vec::new(),
            quiet: true,
        }
    }
}

impl Moves {
    /// Nothing on the move: the check's fast path.
    #[inline]
    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    /// Recomputes the fast path's flag (after an edit).
    pub fn refresh(&mut self) {
        self.quiet = self.gone_count == 0 && self.frozen.is_empty() && self.importing.is_empty();
    }

    /// Where `slot`'s keys went, if they left.
    #[inline]
    pub fn gone(&self, slot: u16) -> Option<&(String, u16)> {
        match self.gone[usize::from(slot) & (SLOTS - 1)] {
            HERE => None,
            t => self.targets.get(usize::from(t)),
        }
    }

    /// Records that `slot`'s keys went to `to` (None: they are here again).
    pub fn set_gone(&mut self, slot: u16, to: Option<(String, u16)>) {
        let s = usize::from(slot) & (SLOTS - 1);
        let was = self.gone[s] != HERE;
        self.gone[s] = match to {
            None => HERE,
            Some(t) => match self.targets.iter().position(|x| *x == t) {
                Some(i) => i as u16,
                None => {
                    self.targets.push(t);
                    (self.targets.len() - 1) as u16
                }
            },
        };
        let now = self.gone[s] != HERE;
        match (was, now) {
            (false, true) => self.gone_count += 1,
            (true, false) => self.gone_count -= 1,
            _ => {}
        }
    }

    /// Slots handed over.
    pub fn gone_slots(&self) -> impl Iterator<Item = u16> + '_ {
        (0..SLOTS as u16).filter(|&s| self.gone[usize::from(s)] != HERE)
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

    #[test]
    fn gone_slots_name_their_target_and_quiet_follows_edits() {
        let mut m = Moves::default();
        assert!(m.is_quiet());
        m.set_gone(5, Some(("h".into(), 1)));
        m.set_gone(6, Some(("h".into(), 1)));
        m.set_gone(7, Some(("g".into(), 2)));
        m.refresh();
        assert!(!m.is_quiet());
        assert_eq!(m.gone(6), Some(&("h".to_string(), 1)));
        assert_eq!(m.gone(8), None);
        assert_eq!(m.gone_slots().collect::<Vec<_>>(), vec![5, 6, 7]);
        for s in [5, 6, 7] {
            m.set_gone(s, None);
        }
        m.refresh();
        assert!(m.is_quiet());
    }
}
