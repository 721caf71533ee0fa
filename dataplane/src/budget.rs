//! The memory budget: what a shard's memory is spent on, by purpose, and whether the shard
//! may take on more.
//!
//! `--memory-budget` is node-wide and split evenly over the shards, as `--maxmemory` is.
//! A shard's share covers five purposes:
//!
//! - **input**: request bytes received and not yet run (connection query buffers, partial
//!   frames, Kafka requests other than Produce between decoding and their answer) and the
//!   provided receive buffers;
//! - **output**: replies built and not yet sent (output buffers, replies waiting behind
//!   earlier ones, the buffer of a send in flight);
//! - **produce**: Produce requests from the moment their frame is whole until their last
//!   batch is committed (the request bytes are charged to the shard that received them,
//!   wherever the batches are written), and commit buffers being written;
//! - **fetch**: log reads in flight and the records they read, until the response is
//!   built (then it is output);
//! - **cache**: the keyspace (`Store::used_memory`), bounded by `--maxmemory` when set.
//!
//! The first four are *transient*: they come and go with requests. Their limit is what the
//! cache leaves of the share, but never less than a floor (1/8 of the share), so a full cache
//! cannot stall the node: `transient_limit = max(share - cache, share / 8)`. When the
//! transient bytes reach that limit the shard is *under pressure* and stops taking on more
//! (`shard/io.rs`, `shard/frames.rs`): it stops reading from connections that hold a partial
//! frame larger than a small allowance, and stops running requests of connections whose
//! output is larger than one; everyone under the allowance goes on, so a client with small
//! requests is always served. When nothing is released for a while under pressure, the
//! connection with the largest partial frame is closed (see `shard/io.rs`).
//!
//! Accounting: a shard's own connections are charged from the shard's thread as their
//! buffers change (`Shard::account`). Memory that travels (a Produce request's bytes go to
//! the partition's owner and are freed there after the commit) is wrapped in [`Tracked`],
//! which charges the shard that made it and releases from whichever thread drops it; the
//! gauges are therefore atomics. Code outside the shard (the log) charges through
//! [`charge`] and [`release`], which use the budget of the shard running on this thread.

use std::cell::RefCell;
use std::sync::atomic::{AtomicIsize, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, OnceLock};

use crate::config::Config;
use crate::limits::{
    BUDGET_AUTO_RAM_DENOMINATOR, BUDGET_AUTO_RAM_NUMERATOR, BUDGET_RESUME_DIVISOR,
    BUDGET_TRANSIENT_FLOOR_DIVISOR, FREE_ELSEWHERE_MIN_BYTES,
};

/// What memory is spent on (the cache is read from the store, not charged here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Input = 0,
    Output = 1,
    Produce = 2,
    Fetch = 3,
}

impl Purpose {
    pub const ALL: [Purpose; 4] = [
        Purpose::Input,
        Purpose::Output,
        Purpose::Produce,
        Purpose::Fetch,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Purpose::Input => "input",
            Purpose::Output => "output",
            Purpose::Produce => "produce",
            Purpose::Fetch => "fetch",
        }
    }
}

/// One shard's transient bytes by purpose. Shared: memory charged here may be released by
/// another shard's thread ([`Tracked`]).
#[derive(Debug, Default)]
pub struct Gauges {
    bytes: [AtomicIsize; 4],
    /// Bytes released since start (progress, for the stuck check).
    released: AtomicU64,
}

impl Gauges {
    #[inline]
    pub fn add(&self, p: Purpose, n: usize) {
        if n > 0 {
            self.bytes[p as usize].fetch_add(n as isize, Ordering::Relaxed);
        }
    }

    #[inline]
    pub fn sub(&self, p: Purpose, n: usize) {
        if n > 0 {
            self.bytes[p as usize].fetch_sub(n as isize, Ordering::Relaxed);
            self.released.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// Move a charge from `old` to `new` bytes.
    #[inline]
    pub fn set(&self, p: Purpose, old: usize, new: usize) {
        if new > old {
            self.add(p, new - old);
        } else {
            self.sub(p, old - new);
        }
    }

    pub fn get(&self, p: Purpose) -> usize {
        self.bytes[p as usize].load(Ordering::Relaxed).max(0) as usize
    }

    /// All transient bytes.
    pub fn transient(&self) -> usize {
        Purpose::ALL.iter().map(|&p| self.get(p)).sum()
    }

    pub fn released(&self) -> u64 {
        self.released.load(Ordering::Relaxed)
    }
}

thread_local! {
    /// The gauges of the shard that runs on this thread (none on other threads: charges
    /// made there are not counted).
    static CURRENT: RefCell<Option<Arc<Gauges>>> = const { RefCell::new(None) };
}

/// Make `g` the budget that [`charge`], [`release`] and [`Tracked::new`] use on this thread.
pub fn install(g: Arc<Gauges>) {
    CURRENT.with(|c| *c.borrow_mut() = Some(g));
}

fn current() -> Option<Arc<Gauges>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Charge `n` bytes for `p` to this thread's shard.
pub fn charge(p: Purpose, n: usize) {
    CURRENT.with(|c| {
        if let Some(g) = &*c.borrow() {
            g.add(p, n)
        }
    });
}

/// Release `n` bytes of `p` charged to this thread's shard with [`charge`].
pub fn release(p: Purpose, n: usize) {
    CURRENT.with(|c| {
        if let Some(g) = &*c.borrow() {
            g.sub(p, n)
        }
    });
}

/// Something large to drop.
type Garbage = Box<dyn Send>;

fn dropper() -> &'static mpsc::Sender<Garbage> {
    static DROPPER: OnceLock<mpsc::Sender<Garbage>> = OnceLock::new();
    DROPPER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Garbage>();
        let spawned = std::thread::Builder::new()
            .name("free".into())
            .spawn(move || rx.into_iter().for_each(drop));
        if let Err(e) = spawned {
            // The receiver is gone with the closure: `free_elsewhere` then drops in place.
            tracing::warn!(error = %e, "the thread that frees large buffers did not start");
        }
        tx
    })
}

/// Drop `v` on a helper thread when it holds `bytes` of at least `FREE_ELSEWHERE_MIN_BYTES`:
/// giving back hundreds of MB of touched pages takes the kernel tens of milliseconds, which
/// a shard must not spend between two requests. Smaller values are dropped here.
pub fn free_elsewhere<T: Send + 'static>(v: T, bytes: usize) {
    if bytes >= FREE_ELSEWHERE_MIN_BYTES {
        // A send fails only if the thread is gone; the value then comes back and drops here.
        let _ = dropper().send(Box::new(v));
    }
}

/// Bytes charged to the shard that made them for as long as they live, wherever they are
/// dropped: the owner of a `Bytes` (`Bytes::from_owner(Tracked::new(..))`), so every slice
/// of a request keeps it charged until the last one goes. Large ones are freed on the
/// helper thread ([`free_elsewhere`]).
pub struct Tracked<T: Default + Send + 'static> {
    inner: T,
    charged: usize,
    purpose: Purpose,
    gauges: Option<Arc<Gauges>>,
}

impl<T: AsRef<[u8]> + Default + Send + 'static> Tracked<T> {
    /// Charge `inner`'s `charged` bytes (its capacity, usually) to this thread's shard.
    pub fn new(inner: T, charged: usize, purpose: Purpose) -> Tracked<T> {
        let gauges = current();
        if let Some(g) = &gauges {
            g.add(purpose, charged);
        }
        Tracked {
            inner,
            charged,
            purpose,
            gauges,
        }
    }
}

impl<T: AsRef<[u8]> + Default + Send + 'static> AsRef<[u8]> for Tracked<T> {
    fn as_ref(&self) -> &[u8] {
        self.inner.as_ref()
    }
}

impl<T: Default + Send + 'static> Drop for Tracked<T> {
    fn drop(&mut self) {
        if let Some(g) = &self.gauges {
            g.sub(self.purpose, self.charged);
        }
        free_elsewhere(std::mem::take(&mut self.inner), self.charged);
    }
}

/// The node-wide budget in bytes: `--memory-budget`, or by default three quarters of the
/// memory this process may use (the smaller of RAM and its cgroup's limit), raised when
/// needed so that `--maxmemory` fits (see [`Config::validate`]).
pub fn node_bytes(cfg: &Config) -> usize {
    if let Some(b) = cfg.memory_budget {
        return b;
    }
    let auto = *AUTO.get_or_init(|| {
        let avail = available_memory_bytes().unwrap_or(8 << 30);
        avail / BUDGET_AUTO_RAM_DENOMINATOR * BUDGET_AUTO_RAM_NUMERATOR
    });
    auto.max(cache_fits(cfg.maxmemory))
}

/// The default budget, from the memory available; read once.
static AUTO: OnceLock<usize> = OnceLock::new();

/// Settle the node-wide budget at start-up, before any shard starts: the default reads
/// `/proc/meminfo` and the cgroup's limit, blocking file calls that a shard thread must not
/// make (each shard's [`Budget::new`] then finds the value read).
pub fn measure_at_start_up(cfg: &Config) -> usize {
    node_bytes(cfg)
}

/// The smallest budget that leaves the transient floor beside a cache of `maxmemory`.
pub fn cache_fits(maxmemory: usize) -> usize {
    let d = BUDGET_TRANSIENT_FLOOR_DIVISOR;
    maxmemory.saturating_mul(d) / (d - 1)
}

/// RAM, or the cgroup (v2 `memory.max`, v1 `memory.limit_in_bytes`) limit when lower.
fn available_memory_bytes() -> Option<usize> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let total_kb: usize = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let mut total = total_kb * 1024;
    for path in [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ] {
        if let Some(limit) = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
        {
            total = total.min(limit);
        }
    }
    Some(total)
}

/// One shard's budget: its share, its gauges, and whether it is under pressure; and the
/// shard's bookkeeping of what it paused (`shard/admission.rs` acts on it).
pub struct Budget {
    /// This shard's share of `--memory-budget`.
    pub share: usize,
    pub gauges: Arc<Gauges>,
    /// Fixed memory charged as input for good (the provided receive buffers).
    fixed_input: usize,
    /// Connections paused by the budget (slots; each also flagged on the connection).
    pub paused: Vec<u32>,
    /// Connections over --output-buffer-limit-bytes, watched for having stopped reading.
    pub over_limit: Vec<u32>,
    /// When the budget is next checked for progress, and the released and sent bytes then.
    pub next_check: Option<std::time::Instant>,
    pub progress_mark: u64,
    /// Checks in a row under pressure without progress.
    pub stuck: u32,
}

impl Budget {
    /// The budget of shard `id` of `nshards`; installs its gauges for this thread.
    pub fn new(cfg: &Config, nshards: usize) -> Budget {
        let node = node_bytes(cfg);
        let share = node.div_ceil(nshards.max(1));
        static LOGGED: std::sync::Once = std::sync::Once::new();
        LOGGED.call_once(|| {
            tracing::info!(
                budget = node,
                per_shard = share,
                cache = cfg.maxmemory,
                given = cfg.memory_budget.is_some(),
                "memory budget (--memory-budget; by default 3/4 of the memory available)"
            )
        });
        let gauges = Arc::new(Gauges::default());
        install(gauges.clone());
        dropper(); // started now, not by a shard's first large free
        let fixed_input = cfg.recv_buffers as usize * cfg.recv_buffer_bytes as usize;
        gauges.add(Purpose::Input, fixed_input);
        if fixed_input >= share / BUDGET_TRANSIENT_FLOOR_DIVISOR {
            tracing::warn!(
                receive_buffers = fixed_input,
                per_shard = share,
                "the receive buffers take much of a shard's memory budget: raise --memory-budget or lower --recv-buffers"
            );
        }
        Budget {
            share,
            gauges,
            fixed_input,
            paused: Vec::new(),
            over_limit: Vec::new(),
            next_check: None,
            progress_mark: 0,
            stuck: 0,
        }
    }

    /// What the transient purposes may use with `cache` bytes cached.
    pub fn transient_limit(&self, cache: usize) -> usize {
        self.share
            .saturating_sub(cache)
            .max(self.share / BUDGET_TRANSIENT_FLOOR_DIVISOR)
    }

    /// At or over the limit: take on nothing more.
    pub fn pressed(&self, cache: usize) -> bool {
        self.pressed_with(cache, 0)
    }

    /// Would be at or over the limit with `extra` bytes not yet charged.
    pub fn pressed_with(&self, cache: usize, extra: usize) -> bool {
        self.gauges.transient() + extra >= self.transient_limit(cache)
    }

    /// Far enough under the limit for paused connections to go on (a gap, so that they do
    /// not flap at the limit).
    pub fn relieved(&self, cache: usize) -> bool {
        let limit = self.transient_limit(cache);
        self.gauges.transient() < limit - limit / BUDGET_RESUME_DIVISOR
    }

    /// Bytes of every purpose, the cache last (for metrics).
    pub fn snapshot(&self, cache: usize) -> [u64; 5] {
        let g = &self.gauges;
        [
            g.get(Purpose::Input) as u64,
            g.get(Purpose::Output) as u64,
            g.get(Purpose::Produce) as u64,
            g.get(Purpose::Fetch) as u64,
            cache as u64,
        ]
    }

    /// The fixed input bytes (receive buffers) charged at start.
    pub fn fixed_input(&self) -> usize {
        self.fixed_input
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn cfg(args: &[&str]) -> Config {
        Config::parse_from(std::iter::once("pinion").chain(args.iter().copied()))
    }

    #[test]
    fn tracked_bytes_are_released_on_any_thread() {
        let b = Budget::new(&cfg(&["--memory-budget", "64mb"]), 2);
        let base = b.gauges.get(Purpose::Input);
        assert_eq!(base, b.fixed_input());
        let t = bytes::Bytes::from_owner(Tracked::new(vec![7u8; 1000], 1000, Purpose::Produce));
        let part = t.slice(10..20);
        drop(t);
        assert_eq!(
            b.gauges.get(Purpose::Produce),
            1000,
            "a slice keeps it charged"
        );
        std::thread::spawn(move || drop(part)).join().unwrap();
        assert_eq!(b.gauges.get(Purpose::Produce), 0);
        assert!(b.gauges.released() >= 1000);
    }

    #[test]
    fn large_values_are_freed_elsewhere_and_small_ones_here() {
        struct Flag(Arc<std::sync::Mutex<Option<std::thread::ThreadId>>>);
        impl Drop for Flag {
            fn drop(&mut self) {
                *self.0.lock().unwrap() = Some(std::thread::current().id());
            }
        }
        let here = std::thread::current().id();
        let small = Arc::new(std::sync::Mutex::new(None));
        free_elsewhere(Flag(small.clone()), 10);
        assert_eq!(*small.lock().unwrap(), Some(here));
        let big = Arc::new(std::sync::Mutex::new(None));
        free_elsewhere(Flag(big.clone()), FREE_ELSEWHERE_MIN_BYTES);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while big.lock().unwrap().is_none() {
            assert!(std::time::Instant::now() < deadline);
            std::thread::yield_now();
        }
        assert_ne!(*big.lock().unwrap(), Some(here));
    }

    #[test]
    fn the_cache_leaves_the_transient_purposes_at_least_a_floor() {
        let b = Budget::new(&cfg(&["--memory-budget", "64mb"]), 2);
        assert_eq!(b.share, 32 << 20);
        assert_eq!(b.transient_limit(0), 32 << 20);
        assert_eq!(b.transient_limit(30 << 20), 4 << 20);
        assert_eq!(b.transient_limit(16 << 20), 16 << 20);
        b.gauges.add(Purpose::Output, (32 << 20) - b.fixed_input());
        assert!(b.pressed(0));
        assert!(!b.relieved(0));
        b.gauges.sub(Purpose::Output, 4 << 20);
        assert!(!b.pressed(0));
        assert!(b.relieved(0));
    }

    #[test]
    fn the_default_budget_fits_maxmemory() {
        let small = node_bytes(&cfg(&[]));
        assert!(small > 0);
        let big = node_bytes(&cfg(&["--maxmemory", "1000gb"]));
        assert!(big >= cache_fits(1000 << 30) && big > 1000 << 30);
    }
}
