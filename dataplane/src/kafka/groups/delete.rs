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
    pub(super) dest: Dest,
    pub(super) errors: Vec<i16>,
    pub(super) left: usize,
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
            if let Err(w) = self.log.append(part, |b| store::encode(&rec, b), w) {
                self.finish(w, false, out);
            }
        }
        self.deletes_done(batch, out);
    }

    /// Answer a DeleteGroups part once none of its writes is outstanding.
    pub(super) fn deletes_done(&mut self, batch: u64, out: &mut Vec<(Dest, GroupRes)>) {
        if self.deletes.get(&batch).is_some_and(|d| d.left == 0) {
            if let Some(d) = self.deletes.remove(&batch) {
                out.push((d.dest, GroupRes::Deleted(d.errors)));
            }
        }
    }
}
