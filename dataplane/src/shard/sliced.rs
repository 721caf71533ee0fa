//! Long commands run in slices (issue 13, stall detection): a KEYS part does not walk the
//! shard's whole keyspace inside one command, which took 137 ms at 2M keys (473 ms with four
//! at once) while every other client of the shard waited. It becomes a job here, and the
//! loop runs `KEYS_SLICE_ENTRIES` entries of this shard's jobs per turn, slot by slot, in
//! the order they came; the part's result goes to its flight when the last slot is done.
//!
//! The part leaves the scheduler when its job starts, so commands between slices run as
//! usual, writes included. A slot is examined once, in one slice: a key that exists for the
//! whole command is listed exactly once; one added or removed while it runs may or may not
//! be (docs/compatibility.md). Inside MULTI/EXEC (a transaction's hop) and in scripts KEYS
//! still runs whole, atomically.
//!
//! HGETALL, HKEYS and HVALS of a hash past `HASH_REPLY_SLICE_PAIRS` pairs are [`ReplyJob`]s:
//! the command takes a frozen view of the hash when it runs (`cache/cmd/hashes/sliced.rs`), so its
//! answer is the hash at that moment, as Redis's; the loop encodes `HASH_REPLY_SLICE_PAIRS`
//! pairs of it per turn and sends the reply when it is whole. They run like this outside
//! MULTI/EXEC and scripts (a single-key command on its own), whole inside them.
//!
//! HSET and HMSET of more than `HASH_WRITE_SLICE_PAIRS` pairs are applied the same way,
//! `HASH_WRITE_SLICE_PAIRS` pairs a turn, while the command's scheduler entry holds the key
//! (`Scheduler::occupy`, or the ticket it ran under): every other command on the key waits
//! for the whole write, so it stays atomic to other clients.

use super::Shard;
use crate::cache::cmd::hashes::{SlicedReply, SlicedWrite};
use crate::cache::op as cache;
use crate::limits::{HASH_REPLY_SLICE_PAIRS, HASH_WRITE_SLICE_PAIRS, KEYS_SLICE_ENTRIES};
use crate::mesh::Reply;
use crate::metrics::stall::What;
use crate::proto::resp::write::Out;
use crate::txn::{Access, ConnId, Mode, Ticket};
use crate::txn::{PartRef, Res};

/// One shard's part of a KEYS, part-way through.
pub(super) struct KeysJob {
    /// The coordinating shard and the part.
    from: u16,
    to: PartRef,
    pattern: Vec<u8>,
    /// The next slot table (local index) to examine.
    next: usize,
    /// The keys found so far, as RESP bulk strings (the same in RESP2 and RESP3), and how
    /// many.
    bulks: Vec<u8>,
    n: usize,
}

/// A reply over a big hash, part-way through; it goes to `to` on shard `from` (a
/// single-key command's flight) when whole.
pub(super) struct ReplyJob {
    from: u16,
    to: PartRef,
    work: Sliced,
}

pub(super) enum Sliced {
    /// HGETALL, HKEYS, HVALS: from a frozen view, nothing held.
    Read(SlicedReply),
    /// HSET, HMSET: the key held in the scheduler under this ticket until the last slice.
    Write(SlicedWrite, Ticket),
}

impl Shard {
    /// Start a reply built in slices; its first slice runs in this turn's tail.
    pub(super) fn start_reply(&mut self, from: u16, to: PartRef, reply: SlicedReply) {
        self.reply_jobs.push_back(ReplyJob {
            from,
            to,
            work: Sliced::Read(reply),
        });
    }

    /// Start a big HSET in slices under `ticket` (the one its work ran under), or, admitted
    /// at once, under a scheduler entry that holds its key from now.
    pub(super) fn start_write(
        &mut self,
        from: u16,
        to: PartRef,
        write: SlicedWrite,
        ticket: Option<Ticket>,
    ) {
        let ticket = ticket.unwrap_or_else(|| {
            let holder = ConnId {
                shard: self.id as u16,
                slot: u32::MAX,
                gen: 0,
            };
            let access = Access::new(holder).key(write.key(), Mode::Write);
            self.sched.occupy(access)
        });
        self.reply_jobs.push_back(ReplyJob {
            from,
            to,
            work: Sliced::Write(write, ticket),
        });
    }

    /// Start a KEYS part as a sliced job; its first slice runs in this turn's tail.
    pub(super) fn start_keys(&mut self, from: u16, to: PartRef, pattern: Vec<u8>) {
        self.keys_jobs.push_back(KeysJob {
            from,
            to,
            pattern,
            next: 0,
            bulks: Vec::new(),
            n: 0,
        });
    }

    /// Whether sliced work is waiting (the loop does not sleep in the ring while it is).
    pub(super) fn sliced_pending(&self) -> bool {
        !self.keys_jobs.is_empty() || !self.reply_jobs.is_empty()
    }

    /// Run one turn's slice of the waiting jobs, oldest first; answer those that finish.
    pub(super) fn run_slices(&mut self) {
        self.run_reply_slices();
        if self.keys_jobs.is_empty() {
            return;
        }
        self.stall_mark(What::Named("KEYS slice"));
        let mut budget = KEYS_SLICE_ENTRIES;
        while budget > 0 {
            let Some(job) = self.keys_jobs.front_mut() else {
                break;
            };
            let (bulks, n) = (&mut job.bulks, &mut job.n);
            let (next, examined) =
                self.store
                    .keys_slice(&job.pattern, self.now_ms, job.next, budget, |k| {
                        Out::new(bulks, false).bulk(k);
                        *n += 1;
                    });
            budget = budget.saturating_sub(examined);
            if let Some(n) = next {
                job.next = n;
                continue;
            }
            let Some(job) = self.keys_jobs.pop_front() else {
                break;
            };
            self.reply(
                job.from as usize,
                Reply::Part {
                    to: job.to,
                    res: Res::Cache(cache::Res::KeysEncoded {
                        n: job.n,
                        bulks: job.bulks,
                    }),
                },
            );
        }
    }
}

impl Shard {
    /// One turn's slice of the replies over big hashes, oldest first.
    fn run_reply_slices(&mut self) {
        if self.reply_jobs.is_empty() {
            return;
        }
        self.stall_mark(What::Named("big hash slice (HGETALL/HKEYS/HVALS/HSET)"));
        // Budgets in reads' pairs; a written pair costs about as much as two read ones.
        let ratio = (HASH_REPLY_SLICE_PAIRS / HASH_WRITE_SLICE_PAIRS).max(1);
        let mut budget = HASH_REPLY_SLICE_PAIRS;
        while let Some(job) = self.reply_jobs.front_mut() {
            let (spent, done) = match &mut job.work {
                Sliced::Read(r) => r.step(budget),
                Sliced::Write(w, _) => {
                    let (n, done) = w.step(&mut self.store, budget / ratio, self.now_ms);
                    (n * ratio, done)
                }
            };
            budget = budget.saturating_sub(spent.max(1));
            let Some(bytes) = done else {
                break;
            };
            let Some(job) = self.reply_jobs.pop_front() else {
                break;
            };
            self.reply(
                job.from as usize,
                Reply::Part {
                    to: job.to,
                    res: Res::Cache(cache::Res::Encoded(bytes)),
                },
            );
            if let Sliced::Write(_, ticket) = job.work {
                // The key is free: what waited for it runs.
                self.sched.ran(ticket);
                self.run_scheduled();
            }
            if budget == 0 {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cache::entry::Entry;
    use crate::cache::slot::{key_slot, SLOTS};
    use crate::cache::store::Store;

    #[test]
    fn slices_list_every_live_matching_key_once_and_stay_bounded() {
        let mut s = Store::new(0, SLOTS, 3);
        for i in 0..20_000 {
            let k = format!("{}:{i}", if i % 2 == 0 { "a" } else { "b" });
            let ttl = (i % 10 == 0).then_some(5);
            s.put(
                key_slot(k.as_bytes()),
                Entry::string(k.as_bytes(), b"v", ttl, 0),
                0,
            );
        }
        let (mut got, mut from, mut slices) = (Vec::new(), 0, 0);
        loop {
            let (next, examined) = s.keys_slice(b"a:*", 10, from, 1000, |k| got.push(k.to_vec()));
            slices += 1;
            // Whole slots: a slice stops at the first slot boundary past its budget.
            assert!(examined < 1000 + 100, "{examined}");
            match next {
                Some(n) => from = n,
                None => break,
            }
        }
        assert!(slices > 20, "{slices}");
        got.sort();
        let mut want: Vec<Vec<u8>> = (0..20_000)
            .filter(|i| i % 2 == 0 && i % 10 != 0)
            .map(|i| format!("a:{i}").into_bytes())
            .collect();
        want.sort();
        assert_eq!(got, want);
    }
}
