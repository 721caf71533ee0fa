//! Eviction policies and the access stamps they keep per entry: LRU's logical clock,
//! FIFO's insertion stamp, and Redis's logarithmic LFU counter with one-minute decay.

/// LFU's counter for a new key (Redis: LFU_INIT_VAL), and how slowly it climbs
/// (lfu-log-factor).
pub const LFU_INIT: u32 = 5;
const LFU_LOG_FACTOR: f64 = 10.0;

/// Eviction policy, Redis's `maxmemory-policy` limited to the all-keys family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Policy {
    Lru,
    Lfu,
    Fifo,
    Noeviction,
}

impl Policy {
    /// The names CONFIG SET maxmemory-policy takes, for its error text.
    pub const NAMES: &'static str =
        "allkeys-lru, allkeys-lfu, volatile-lru, volatile-lfu, fifo, noeviction";

    pub fn redis_name(self) -> &'static str {
        match self {
            Policy::Lru => "allkeys-lru",
            Policy::Lfu => "allkeys-lfu",
            Policy::Fifo => "fifo",
            Policy::Noeviction => "noeviction",
        }
    }

    pub fn from_redis_name(s: &str) -> Option<Policy> {
        match s.to_ascii_lowercase().as_str() {
            "allkeys-lru" | "volatile-lru" | "lru" => Some(Policy::Lru),
            "allkeys-lfu" | "volatile-lfu" | "lfu" => Some(Policy::Lfu),
            "fifo" => Some(Policy::Fifo),
            "noeviction" => Some(Policy::Noeviction),
            _ => None,
        }
    }
}

/// Marsaglia's xorshift64: the cheap, seeded randomness eviction sampling, the LFU counter
/// and the codec mutation tests use. `state` must not be 0.
pub fn xorshift64(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// The access stamp after a read: LRU takes the next tick of the shard's logical clock,
/// FIFO keeps the insertion stamp, LFU bumps Redis's logarithmic counter.
pub fn touch(policy: Policy, clock: &mut u32, rng: &mut u64, current: u32, now_ms: u64) -> u32 {
    match policy {
        Policy::Lru | Policy::Noeviction => {
            *clock = clock.wrapping_add(1);
            *clock
        }
        Policy::Fifo => current,
        Policy::Lfu => {
            let mut counter = lfu_decayed(current, now_ms);
            if counter < 255 {
                let base = counter.saturating_sub(LFU_INIT) as f64;
                let p = 1.0 / (base * LFU_LOG_FACTOR + 1.0);
                let r = (xorshift64(rng) % 1_000_000) as f64 / 1_000_000.0;
                if r < p {
                    counter += 1;
                }
            }
            lfu_pack(counter, now_ms)
        }
    }
}

pub fn lfu_pack(counter: u32, now_ms: u64) -> u32 {
    let minutes = ((now_ms / 60_000) & 0xffff) as u32;
    (minutes << 8) | counter.min(255)
}

/// Redis's LFU decay: the counter drops by one per idle minute (lfu-decay-time 1).
pub fn lfu_decayed(v: u32, now_ms: u64) -> u32 {
    let counter = v & 0xff;
    let last = v >> 8;
    let now = ((now_ms / 60_000) & 0xffff) as u32;
    let idle = if now >= last {
        now - last
    } else {
        0x10000 - last + now
    };
    counter.saturating_sub(idle)
}
