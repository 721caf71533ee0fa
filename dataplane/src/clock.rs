//! The clock seam: every reading of time in the node goes through a [`Clock`], so the
//! pieces that depend on time (expiry, long polls, group commit, latency histograms) can be
//! driven by a test's clock, and nothing in a handler calls `Instant::now()` itself.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync {
    /// Monotonic time, for durations and deadlines.
    fn now(&self) -> Instant;
    /// Wall-clock milliseconds since the epoch, for TTLs and record timestamps.
    fn unix_ms(&self) -> u64;
}

/// The operating system's clocks (`clock_gettime` through the vDSO: no system call).
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn unix_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// A clock that moves only when told to (tests).
pub struct ManualClock {
    base: Instant,
    offset_ms: AtomicU64,
    unix_base_ms: u64,
}

impl ManualClock {
    pub fn new(unix_ms: u64) -> ManualClock {
        ManualClock {
            base: Instant::now(),
            offset_ms: AtomicU64::new(0),
            unix_base_ms: unix_ms,
        }
    }

    pub fn advance(&self, by: Duration) {
        self.offset_ms
            .fetch_add(by.as_millis() as u64, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.base + Duration::from_millis(self.offset_ms.load(Ordering::Relaxed))
    }

    fn unix_ms(&self) -> u64 {
        self.unix_base_ms + self.offset_ms.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_both_readings_together() {
        let c = ManualClock::new(1_000);
        let t0 = c.now();
        c.advance(Duration::from_millis(250));
        assert_eq!(c.now() - t0, Duration::from_millis(250));
        assert_eq!(c.unix_ms(), 1_250);
    }
}
