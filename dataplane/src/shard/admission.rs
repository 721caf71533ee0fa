//! Admission control: the shard's side of its memory budget (`crate::budget`).
//!
//! Every connection's buffers are charged as they change ([`Shard::account`]). Under
//! pressure (the transient bytes at their limit) the shard takes on no more: a connection
//! holding a partial frame of at least `BUDGET_INPUT_ALLOWANCE_BYTES` stops being read, and
//! one whose replies waiting for its client reach `BUDGET_OUTPUT_ALLOWANCE_BYTES` has no
//! further request run. Connections below both allowances go on, so small requests are
//! always served. Paused connections go on once the shard is relieved (a gap below the
//! limit), or, for output, as soon as their client reads.
//!
//! Two checks run every `BUDGET_CHECK_INTERVAL`:
//! - *No progress*: under pressure, when `BUDGET_STUCK_CHECKS` checks in a row saw less
//!   than `BUDGET_PROGRESS_BYTES` released or sent, and connections are paused on partial
//!   frames, those frames cannot all complete: the connection with the largest one is
//!   closed (a RESP client first reads `budget_exhausted`), which frees the most.
//! - *Stalled readers*: a client whose queued replies passed --output-buffer-limit-bytes
//!   runs nothing more until it reads; if it takes nothing for `OUTPUT_STALL`, it has
//!   stopped reading and is closed. A client that keeps reading is never closed for the
//!   size of a reply.

use super::conn::Conn;
use super::Shard;
use crate::budget::Purpose;
use crate::limits::{
    BUDGET_CHECK_INTERVAL, BUDGET_INPUT_ALLOWANCE_BYTES, BUDGET_OUTPUT_ALLOWANCE_BYTES,
    BUDGET_PROGRESS_BYTES, BUDGET_STUCK_CHECKS, OUTPUT_STALL,
};
use crate::proto::resp::errors::budget_exhausted;

impl Shard {
    /// The shard's transient bytes are at their limit.
    pub(super) fn pressed(&self) -> bool {
        self.budget.pressed(self.store.used_memory())
    }

    /// Charge connection `slot`'s buffers as they are now.
    pub(super) fn account(&mut self, slot: u32) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        let now = (c.input_bytes(), c.output_bytes());
        if now != c.charged {
            let g = &self.budget.gauges;
            g.set(Purpose::Input, c.charged.0, now.0);
            g.set(Purpose::Output, c.charged.1, now.1);
            c.charged = now;
        }
    }

    /// A connection is gone: nothing of it is charged any more.
    pub(super) fn discharge(&mut self, slot: u32, c: &Conn) {
        let g = &self.budget.gauges;
        g.sub(Purpose::Input, c.charged.0);
        g.sub(Purpose::Output, c.charged.1);
        if c.budget_paused {
            self.budget.paused.retain(|&s| s != slot);
        }
        if c.over_limit.is_some() {
            self.budget.over_limit.retain(|&s| s != slot);
        }
    }

    /// Put `slot` on the paused list (once).
    fn pause(&mut self, slot: u32) {
        if let Some(c) = self.conns.get_mut(slot) {
            if !c.budget_paused {
                c.budget_paused = true;
                self.budget.paused.push(slot);
                self.metrics.counters.budget_pauses += 1;
            }
        }
    }

    /// Should the requests of `slot` wait for its client to read? Yes past
    /// --output-buffer-limit-bytes, and under pressure past the output allowance.
    pub(super) fn holds_requests(&mut self, slot: u32) -> bool {
        let limit = self.shared.cfg.output_buffer_limit_bytes;
        let Some(c) = self.conns.get(slot) else {
            return false;
        };
        let queued = c.queued_replies();
        if queued > limit {
            return true;
        }
        // Replies this connection made since it was last accounted count too: a pipeline
        // run in one go must not pass the limit by its own replies.
        let unaccounted = c.output_bytes().saturating_sub(c.charged.1);
        let cache = self.store.used_memory();
        if queued >= BUDGET_OUTPUT_ALLOWANCE_BYTES && self.budget.pressed_with(cache, unaccounted) {
            self.pause(slot);
            return true;
        }
        false
    }

    /// Should `c` stop being read for the budget (a partial frame past the allowance, under
    /// pressure)? Pauses it when so.
    pub(super) fn holds_input(&mut self, slot: u32) -> bool {
        let Some(c) = self.conns.get(slot) else {
            return false;
        };
        let held = c.is_open() && c.partial_len() >= BUDGET_INPUT_ALLOWANCE_BYTES && self.pressed();
        if held {
            self.pause(slot);
        }
        held
    }

    /// Once per loop turn: let paused connections go on when the shard is relieved, and run
    /// the periodic checks when due.
    pub(super) fn check_budget(&mut self) {
        let cache = self.store.used_memory();
        if !self.budget.paused.is_empty() && self.budget.relieved(cache) {
            for slot in std::mem::take(&mut self.budget.paused) {
                if let Some(c) = self.conns.get_mut(slot) {
                    if c.budget_paused {
                        c.budget_paused = false;
                        self.process(slot);
                        self.mark_dirty(slot);
                    }
                }
            }
        }
        if self.budget.next_check.is_some_and(|t| self.now < t) {
            return;
        }
        self.budget.next_check = Some(self.now + BUDGET_CHECK_INTERVAL);
        self.check_progress(cache);
        self.check_stalled_readers();
        self.metrics.memory = self.budget.snapshot(self.store.used_memory());
        self.metrics.memory_budget = self.budget.share as u64;
    }

    /// Under pressure with nothing released or sent, close the connection holding the
    /// largest partial frame (see the module's header).
    fn check_progress(&mut self, cache: usize) {
        let progress = self.budget.gauges.released() + self.metrics.counters.bytes_out;
        let moved = progress.saturating_sub(self.budget.progress_mark);
        self.budget.progress_mark = progress;
        if !self.budget.pressed(cache) || moved >= BUDGET_PROGRESS_BYTES {
            self.budget.stuck = 0;
            return;
        }
        // Connections waiting for memory to finish a frame (not the ones waiting for their
        // client to read).
        let victim = self
            .conns
            .slots()
            .filter_map(|s| self.conns.get(s).map(|c| (s, c)))
            .filter(|(_, c)| {
                c.is_open()
                    && c.budget_paused
                    && c.partial_len() >= BUDGET_INPUT_ALLOWANCE_BYTES
                    && c.queued_replies() < BUDGET_OUTPUT_ALLOWANCE_BYTES
            })
            .max_by_key(|(_, c)| c.partial_len())
            .map(|(s, c)| (s, c.partial_len(), c.id));
        let Some((slot, partial, client)) = victim else {
            self.budget.stuck = 0;
            return;
        };
        self.budget.stuck += 1;
        if self.budget.stuck < BUDGET_STUCK_CHECKS {
            return;
        }
        self.budget.stuck = 0;
        self.metrics.counters.budget_closed += 1;
        tracing::warn!(
            shard = self.id,
            client,
            partial_bytes = partial,
            transient = self.budget.gauges.transient(),
            limit = self.budget.transient_limit(cache),
            "memory budget exhausted and nothing released: closing the connection with the largest partial request"
        );
        if let Some(c) = self.conns.get_mut(slot) {
            if matches!(c.proto, super::conn::Proto::Resp(_)) {
                c.reply(|o| o.error(&budget_exhausted(partial)));
            }
            let cap = c.query.capacity();
            crate::budget::free_elsewhere(std::mem::take(&mut c.query), cap);
        }
        self.close_conn(slot, false);
        self.account(slot);
    }

    /// Close clients over their output limit that took nothing for `OUTPUT_STALL`.
    fn check_stalled_readers(&mut self) {
        if self.budget.over_limit.is_empty() {
            return;
        }
        let limit = self.shared.cfg.output_buffer_limit_bytes;
        let now = self.now;
        let mut still = Vec::new();
        for slot in std::mem::take(&mut self.budget.over_limit) {
            let Some(c) = self.conns.get_mut(slot) else {
                continue;
            };
            let Some((since, mark)) = c.over_limit else {
                continue;
            };
            if !c.is_open() || c.queued_replies() <= limit {
                // Back under the limit: its requests go on.
                c.over_limit = None;
                self.process(slot);
                self.mark_dirty(slot);
                continue;
            }
            if c.sent_total != mark {
                c.over_limit = Some((now, c.sent_total));
                still.push(slot);
                continue;
            }
            if now.saturating_duration_since(since) < OUTPUT_STALL {
                still.push(slot);
                continue;
            }
            c.over_limit = None;
            self.metrics.counters.closed_output_limit += 1;
            tracing::warn!(
                shard = self.id,
                client = c.id,
                queued = c.queued_replies(),
                "closing a client that stopped reading past --output-buffer-limit-bytes"
            );
            self.close_conn(slot, true);
        }
        self.budget.over_limit.append(&mut still);
    }
}
