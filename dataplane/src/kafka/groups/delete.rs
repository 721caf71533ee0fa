//! DeleteGroups on the coordinator: each empty group of a request's part gets a durable
//! record that its offsets are gone; the part is answered when the last of its groups'
//! records is written (a group that gained members meanwhile keeps them).

use super::group::State;
use super::ops::GroupRes;
use super::store::{self, Record};
use super::{err, Groups, Waiter};
use crate::txn::Dest;

/// A DeleteGroups part waiting for its groups' records.
pub(super) struct Deletes {
    dest: Dest,
    errors: Vec<i16>,
    left: usize,
}

impl Groups {
    /// DeleteGroups for this shard's groups of a request: each empty one gets a durable
    /// record; the part is answered when the last of them is written.
    pub(super) fn delete(&mut self, ids: Vec<String>, dest: Dest, out: &mut Vec<(Dest, GroupRes)>) {
        self.next_batch += 1;
        let batch = self.next_batch;
        let mut errors = Vec::with_capacity(ids.len());
        let mut writes = Vec::new();
        for (i, id) in ids.into_iter().enumerate() {
            let e = match self.groups.get(&id).map(|e| (e.group.state(), e.part)) {
                None | Some((State::Dead, _)) => err::GROUP_ID_NOT_FOUND,
                Some((State::Empty, part)) => {
                    writes.push((i, id, part));
                    err::NONE
                }
                Some(_) => err::NON_EMPTY_GROUP,
            };
            errors.push(e);
        }
        self.deletes.insert(
            batch,
            Deletes {
                dest,
                errors,
                left: writes.len(),
            },
        );
        for (index, group, part) in writes {
            let rec = Record::GroupGone {
                group: group.clone(),
            };
            let w = Waiter::Delete {
                batch,
                index,
                group,
            };
            self.append(part, |b| store::encode(&rec, b), w, out);
        }
        self.deletes_done(batch, out);
    }

    /// One group's record of a DeleteGroups part is durable (`ok`) or could not be written.
    pub(super) fn deleted(
        &mut self,
        batch: u64,
        index: usize,
        group: &str,
        ok: bool,
        out: &mut Vec<(Dest, GroupRes)>,
    ) {
        if ok {
            // The record is durable: the offsets are gone; a group that gained
            // members meanwhile keeps them.
            if let Some(e) = self.groups.get_mut(group) {
                e.offsets.clear();
                if e.group.is_empty() {
                    self.groups.remove(group);
                }
            }
        }
        if let Some(d) = self.deletes.get_mut(&batch) {
            if !ok {
                d.errors[index] = err::COORDINATOR_NOT_AVAILABLE;
            }
            d.left -= 1;
        }
        self.deletes_done(batch, out);
    }

    /// Answer a DeleteGroups part once none of its writes is outstanding.
    fn deletes_done(&mut self, batch: u64, out: &mut Vec<(Dest, GroupRes)>) {
        if self.deletes.get(&batch).is_some_and(|d| d.left == 0) {
            if let Some(d) = self.deletes.remove(&batch) {
                out.push((d.dest, GroupRes::Deleted(d.errors)));
            }
        }
    }
}
