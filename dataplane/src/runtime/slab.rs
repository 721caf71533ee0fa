//! Values by slot, with generations: the one table behind in-flight io_uring operations,
//! connections, flights, log partitions, log reads and file jobs. A slot is reused after its value is removed,
//! and its generation moves on, so a key (slot and generation) that outlived its value
//! (a late completion, a reply for a closed connection) finds nothing instead of the
//! value that took the slot over. Generations wrap inside [`GEN_MASK`] so that they fit
//! in a user_data word beside the slot.

use super::next_gen;

/// A place in a [`Slab`]: the slot and the generation it had when the value went in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SlabKey {
    pub slot: u32,
    pub gen: u32,
}

#[derive(Debug)]
pub struct Slab<T> {
    slots: Vec<Option<T>>,
    gens: Vec<u32>,
    free: Vec<u32>,
    /// Slots handed out (filled or reserved) and not removed.
    taken: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            slots: Vec::new(),
            gens: Vec::new(),
            free: Vec::new(),
            taken: 0,
        }
    }
}

impl<T> Slab<T> {
    /// Hand out a slot that stays empty until [`Slab::fill`] (a connection's slot is
    /// known before the connection is built, so its first operations can name it).
    pub fn reserve(&mut self) -> SlabKey {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                self.gens.push(0);
                (self.slots.len() - 1) as u32
            }
        };
        self.taken += 1;
        SlabKey {
            slot,
            gen: self.gens[slot as usize],
        }
    }

    /// Put `value` into a reserved slot; false (and `value` dropped) when the key is not
    /// the slot's current generation.
    pub fn fill(&mut self, key: SlabKey, value: T) -> bool {
        if !self.is_current(key) {
            return false;
        }
        self.slots[key.slot as usize] = Some(value);
        true
    }

    pub fn insert(&mut self, value: T) -> SlabKey {
        let key = self.reserve();
        self.slots[key.slot as usize] = Some(value);
        key
    }

    /// Whether `key` names its slot's current generation (filled or only reserved).
    pub fn is_current(&self, key: SlabKey) -> bool {
        self.gens.get(key.slot as usize) == Some(&key.gen)
    }

    pub fn get(&self, key: SlabKey) -> Option<&T> {
        self.at(key.slot).filter(|_| self.is_current(key))
    }

    pub fn get_mut(&mut self, key: SlabKey) -> Option<&mut T> {
        if !self.is_current(key) {
            return None;
        }
        self.at_mut(key.slot)
    }

    /// The value in `slot`, whatever its generation.
    pub fn at(&self, slot: u32) -> Option<&T> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }

    pub fn at_mut(&mut self, slot: u32) -> Option<&mut T> {
        self.slots.get_mut(slot as usize).and_then(Option::as_mut)
    }

    /// The current generation of `slot`.
    pub fn gen(&self, slot: u32) -> Option<u32> {
        self.gens.get(slot as usize).copied()
    }

    /// Take the value out of `key`'s slot (or release the slot if it was only reserved);
    /// the slot is free for reuse under the next generation.
    pub fn remove(&mut self, key: SlabKey) -> Option<T> {
        if !self.is_current(key) {
            return None;
        }
        let i = key.slot as usize;
        let value = self.slots[i].take();
        self.gens[i] = next_gen(key.gen);
        self.free.push(key.slot);
        self.taken -= 1;
        value
    }

    /// Slots handed out and not removed.
    pub fn len(&self) -> usize {
        self.taken
    }

    pub fn is_empty(&self) -> bool {
        self.taken == 0
    }

    /// Slots ever allocated (they are reused after removal).
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The filled slots with their values, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.as_ref().map(|v| (i as u32, v)))
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.slots.iter_mut().flatten()
    }

    /// Forget every value without dropping it (memory the kernel may still write).
    pub fn leak(&mut self) {
        std::mem::forget(std::mem::take(&mut self.slots));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_slot_does_not_answer_an_old_key() {
        let mut s = Slab::default();
        let a = s.insert("a");
        assert_eq!(s.remove(a), Some("a"));
        let b = s.insert("b");
        assert_eq!(b.slot, a.slot);
        assert_ne!(b.gen, a.gen);
        assert_eq!(s.get(a), None);
        assert_eq!(s.remove(a), None);
        assert_eq!(s.get(b), Some(&"b"));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn a_reserved_slot_counts_until_filled_or_released() {
        let mut s = Slab::default();
        let r = s.reserve();
        assert_eq!((s.len(), s.get(r)), (1, None));
        assert!(s.fill(r, 7));
        assert_eq!(s.get(r), Some(&7));
        let q = s.reserve();
        assert_eq!(s.remove(q), None);
        assert!(!s.fill(q, 8), "a released reservation takes nothing");
        assert_eq!(s.len(), 1);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![(r.slot, &7)]);
        assert_eq!(s.capacity(), 2);
    }
}
