//! Lazy freeing (one per shard, inside its [`Store`](super::store::Store)): what a FLUSHALL
//! or FLUSHDB drops is not freed inside the command, which would stall the shard for as long
//! as freeing millions of allocations takes (over 0.5 s for 2M keys), but handed here and
//! freed a bounded number of items per loop turn (`LAZY_FREE_ITEMS_PER_TURN`), as Redis's
//! lazyfree frees in a background thread. The store's accounting forgets the data at once:
//! the keys are gone for every command from the moment the flush runs.
//!
//! Items are what the dropped containers hold: one slot's table (a few hundred entries at
//! 2M keys) or one collection object. A single huge collection is still one item; freeing
//! one in pieces needs its type's help (`cache/types/`), not done yet.

use std::collections::VecDeque;

/// Something freed a few items at a time.
trait Release {
    /// Drop up to `n` items; returns how many were dropped (fewer than `n`: done).
    fn release(&mut self, n: usize) -> usize;
}

impl<T> Release for std::vec::IntoIter<T> {
    fn release(&mut self, n: usize) -> usize {
        self.by_ref().take(n).count()
    }
}

#[derive(Default)]
pub struct LazyFree {
    queue: VecDeque<Box<dyn Release>>,
    /// Items waiting to be freed (a gauge for /metrics).
    pub pending: usize,
}

impl LazyFree {
    /// Free `items` later, a few per turn.
    pub fn defer<T: 'static>(&mut self, items: Vec<T>) {
        if items.is_empty() {
            return;
        }
        self.pending += items.len();
        self.queue.push_back(Box::new(items.into_iter()));
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Free up to `budget` items; the loop calls it once per turn.
    pub fn release(&mut self, mut budget: usize) {
        while budget > 0 {
            let Some(front) = self.queue.front_mut() else {
                return;
            };
            let n = front.release(budget);
            self.pending -= n;
            if n < budget {
                self.queue.pop_front();
            }
            budget -= n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn frees_a_bounded_number_per_call_in_order() {
        let alive = Rc::new(());
        let mut lf = LazyFree::default();
        lf.defer((0..10).map(|_| alive.clone()).collect::<Vec<_>>());
        lf.defer((0..5).map(|_| alive.clone()).collect::<Vec<_>>());
        lf.defer(Vec::<u8>::new());
        assert_eq!((lf.pending, Rc::strong_count(&alive)), (15, 16));
        lf.release(4);
        assert_eq!((lf.pending, Rc::strong_count(&alive)), (11, 12));
        lf.release(8); // the rest of the first container, then 2 of the second
        assert_eq!((lf.pending, Rc::strong_count(&alive)), (3, 4));
        assert!(!lf.is_empty());
        lf.release(100);
        assert_eq!((lf.pending, Rc::strong_count(&alive)), (0, 1));
        assert!(lf.is_empty());
    }
}
