//! Stall detection for one shard's loop (owned by that shard, no synchronisation).
//!
//! A loop turn runs from the moment the ring's wait returns until the next wait: everything
//! a shard does between two waits keeps every other client of the shard waiting, so its
//! length is the shard's stall. [`StallWatch`] records every turn's length in the shard's
//! `loop_turn` histogram and, when a turn runs past `--stall-warn-ms`, counts a stall and
//! logs (at most once per `STALL_WARN_INTERVAL`) a warning that names the longest piece of
//! work in that turn.
//!
//! Pieces are delimited by *marks*: each mark closes the piece before it and names the one
//! that starts. Marks reuse clock readings the shard takes anyway (a command's start time),
//! so the cost is a comparison and a small copy per command; the loop adds a few marks per
//! turn (mesh drain, log flush, the turn's tail) only while warnings are on.

use std::fmt;
use std::time::Instant;

use crate::limits::{STALL_NAME_BYTES, STALL_WARN_INTERVAL};

use super::ShardMetrics;

/// The piece of work a mark starts.
#[derive(Clone, Copy, Debug)]
pub enum What {
    /// Waiting in the ring: never a stall.
    Idle,
    /// A named part of the loop or a named operation ("log flush", "expire", ...).
    Named(&'static str),
    /// A RESP command: its name as the client sent it (cut at `STALL_NAME_BYTES`) and its
    /// argument count, name excluded.
    Command {
        name: [u8; STALL_NAME_BYTES],
        len: u8,
        args: u32,
    },
    /// Work this shard runs as a part of a flight (its own or another shard's).
    Part(&'static str),
    /// A Kafka request, by API key.
    Kafka(i16),
}

impl What {
    /// A RESP command from its name and its argument count (name included).
    #[inline]
    pub fn command(name: &[u8], argc: usize) -> What {
        let mut buf = [0u8; STALL_NAME_BYTES];
        let len = name.len().min(STALL_NAME_BYTES);
        buf[..len].copy_from_slice(&name[..len]);
        What::Command {
            name: buf,
            len: len as u8,
            args: argc.saturating_sub(1) as u32,
        }
    }

    /// A RESP command from its multibulk frame (`*N\r\n$L\r\nNAME\r\n...`), as forwarded
    /// between shards; a frame that does not read so is named "command".
    pub fn from_frame(frame: &[u8]) -> What {
        fn header(b: &[u8], lead: u8) -> Option<(usize, &[u8])> {
            let rest = b.strip_prefix(&[lead])?;
            let end = rest.iter().position(|&c| c == b'\r')?;
            let n = std::str::from_utf8(&rest[..end]).ok()?.parse().ok()?;
            Some((n, rest.get(end + 2..)?))
        }
        let parsed = header(frame, b'*').and_then(|(argc, rest)| {
            let (len, rest) = header(rest, b'$')?;
            Some(What::command(rest.get(..len)?, argc))
        });
        parsed.unwrap_or(What::Named("command"))
    }
}

impl fmt::Display for What {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            What::Idle => f.write_str("idle"),
            What::Named(s) => f.write_str(s),
            What::Command { name, len, args } => {
                let name = String::from_utf8_lossy(&name[..*len as usize]).to_uppercase();
                write!(f, "command {name} with {args} arguments")
            }
            What::Part(s) => write!(f, "{s} (a part of a flight)"),
            What::Kafka(key) => {
                match kafka_protocol::messages::ApiKey::try_from(*key) {
                    Ok(api) => write!(f, "Kafka {api:?}")?,
                    Err(_) => write!(f, "Kafka API {key}")?,
                }
                f.write_str(" request")
            }
        }
    }
}

/// One shard's turn clock and stall warnings.
pub struct StallWatch {
    shard: usize,
    /// `--stall-warn-ms` in ns; 0: off.
    warn_ns: u64,
    turn_started: Instant,
    /// The open piece: when it started and what it is.
    mark: Instant,
    what: What,
    /// The longest piece closed this turn.
    worst_ns: u64,
    worst: What,
    last_warned: Option<Instant>,
    unlogged: u64,
}

impl StallWatch {
    pub fn new(shard: usize, warn_ms: u64, now: Instant) -> StallWatch {
        StallWatch {
            shard,
            warn_ns: warn_ms.saturating_mul(1_000_000),
            turn_started: now,
            mark: now,
            what: What::Idle,
            worst_ns: 0,
            worst: What::Idle,
            last_warned: None,
            unlogged: 0,
        }
    }

    /// Are warnings on (and so the loop's own marks worth a clock reading)?
    #[inline]
    pub fn on(&self) -> bool {
        self.warn_ns > 0
    }

    /// The ring's wait returned at `now`: a turn starts, handling completions.
    #[inline]
    pub fn wake(&mut self, now: Instant) {
        self.turn_started = now;
        self.mark = now;
        self.what = What::Named("I/O completions");
        self.worst_ns = 0;
    }

    /// The open piece ends at `now`; `next` starts.
    #[inline]
    pub fn mark(&mut self, now: Instant, next: What) {
        let ns = now.saturating_duration_since(self.mark).as_nanos() as u64;
        if ns > self.worst_ns && !matches!(self.what, What::Idle) {
            self.worst_ns = ns;
            self.worst = self.what;
        }
        self.mark = now;
        self.what = next;
    }

    /// The turn ends at `now` (the shard is about to wait): record it, and count and report
    /// a stall.
    pub fn end_turn(&mut self, now: Instant, m: &mut ShardMetrics) {
        self.mark(now, What::Idle);
        let turn_ns = now.saturating_duration_since(self.turn_started).as_nanos() as u64;
        m.loop_turn.saturating_record(turn_ns.max(1));
        if self.warn_ns == 0 || turn_ns < self.warn_ns {
            return;
        }
        m.counters.loop_stalls += 1;
        if self
            .last_warned
            .is_some_and(|t| now.saturating_duration_since(t) < STALL_WARN_INTERVAL)
        {
            self.unlogged += 1;
            return;
        }
        self.last_warned = Some(now);
        tracing::warn!(
            shard = self.shard,
            turn_ms = turn_ns / 1_000_000,
            op_ms = self.worst_ns / 1_000_000,
            unlogged_since_last = self.unlogged,
            "shard stalled: a loop turn ran past --stall-warn-ms; longest piece: {}",
            self.worst
        );
        self.unlogged = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn names_the_longest_piece_and_counts_the_stall() {
        let t0 = Instant::now();
        let mut w = StallWatch::new(0, 50, t0);
        let mut m = ShardMetrics::new(0);
        w.wake(t0);
        w.mark(t0 + Duration::from_millis(1), What::command(b"eval", 3));
        w.mark(t0 + Duration::from_millis(201), What::Named("log flush"));
        w.end_turn(t0 + Duration::from_millis(202), &mut m);
        assert_eq!(m.counters.loop_stalls, 1);
        assert_eq!(w.worst.to_string(), "command EVAL with 2 arguments");
        assert_eq!(w.worst_ns, 200_000_000);
        assert!(m.loop_turn.max() >= 202_000_000);
        // A short turn is recorded, not counted.
        let t1 = t0 + Duration::from_secs(1);
        w.wake(t1);
        w.end_turn(t1 + Duration::from_millis(2), &mut m);
        assert_eq!((m.counters.loop_stalls, m.loop_turn.len()), (1, 2));
    }

    #[test]
    fn off_records_turns_only() {
        let t0 = Instant::now();
        let mut w = StallWatch::new(0, 0, t0);
        let mut m = ShardMetrics::new(0);
        assert!(!w.on());
        w.wake(t0);
        w.end_turn(t0 + Duration::from_secs(1), &mut m);
        assert_eq!((m.counters.loop_stalls, m.loop_turn.len()), (0, 1));
    }

    #[test]
    fn names_forwarded_frames_and_kafka_apis() {
        let w = What::from_frame(b"*3\r\n$3\r\nDEL\r\n$1\r\na\r\n$1\r\nb\r\n");
        assert_eq!(w.to_string(), "command DEL with 2 arguments");
        assert_eq!(What::from_frame(b"garbage").to_string(), "command");
        assert_eq!(What::Kafka(0).to_string(), "Kafka Produce request");
        assert_eq!(What::Kafka(-7).to_string(), "Kafka API -7 request");
        let long = What::command(&[b'x'; 100], 1);
        assert!(long.to_string().contains(&"X".repeat(STALL_NAME_BYTES)));
    }
}
