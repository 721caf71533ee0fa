//! The load engine: one pinned thread per `--cores` CPU, each with its own io_uring and its
//! share of the connections. A thread does nothing but build requests, hand them to the
//! kernel, and time replies, so what it measures is the server plus the loopback stack.
//!
//! Closed loop: each connection keeps `pipeline` requests in flight and sends the next one
//! when a reply arrives; latency runs from when a request is queued.
//!
//! Open loop (`rate`): each connection has a fixed schedule (one operation every
//! `connections / rate` seconds, staggered between connections). Operations are sent when
//! due whether or not earlier replies came back, and each one's latency runs from its
//! *intended* send time, so a stalled server is charged for every operation it delayed
//! (coordinated omission corrected, as wrk2 does).
//!
//! A request may carry several operations (a Kafka batch of records): the open loop gathers
//! due operations until the request is full or the oldest has waited `linger`.

use std::collections::VecDeque;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use hdrhistogram::Histogram;
use io_uring::{opcode, types, IoUring};

/// One complete reply found at the start of the receive buffer.
#[derive(Debug, Default)]
pub struct Reply {
    /// Bytes it took.
    pub len: usize,
    /// The server's error, when it answered with one.
    pub failed: Option<String>,
    /// Records and payload bytes it delivered (Kafka fetch).
    pub records: u64,
    pub bytes: u64,
}

/// A protocol: builds requests and recognises replies. One per connection.
pub trait Driver: Send {
    /// Append one request carrying `ops` operations to `out`.
    fn request(&mut self, out: &mut Vec<u8>, ops: u32);
    /// The reply at the start of `inp`, or None when it is not all there yet.
    fn reply(&mut self, inp: &[u8]) -> Result<Option<Reply>, String>;
    /// The most operations one request may carry.
    fn max_ops(&self) -> u32 {
        1
    }
    /// False when the server sends no reply (Kafka acks=0): a request completes when the
    /// kernel has taken all its bytes.
    fn replies(&self) -> bool {
        true
    }
    /// Requests in flight at once on one connection, whatever `--pipeline` says (a Kafka
    /// consumer's next fetch depends on the last reply).
    fn max_in_flight(&self) -> usize {
        usize::MAX
    }
    /// Set-up on the freshly connected socket, before any load and before the clock starts
    /// (blocking I/O is fine here): RESP asks `CLIENT ID` to learn which shard it landed on.
    fn connected(&mut self, _stream: &mut TcpStream) -> anyhow::Result<()> {
        Ok(())
    }
}

pub type MakeDriver = dyn Fn(usize) -> Box<dyn Driver> + Send + Sync;

/// A connection set up and ready for load: its index, socket and driver.
type Connected = (usize, TcpStream, Box<dyn Driver>);

#[derive(Debug, Clone)]
pub struct Plan {
    pub addr: SocketAddr,
    pub cores: Vec<usize>,
    pub connections: usize,
    pub pipeline: usize,
    pub duration: Duration,
    /// Stop after this many measured operations (closed loop), instead of `duration`.
    pub requests: Option<u64>,
    pub warmup: Duration,
    /// Operations per second across all connections: open loop.
    pub rate: Option<f64>,
    pub linger: Duration,
    pub progress: bool,
}

/// What a run measured (after warm-up).
pub struct Outcome {
    pub ops: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub records: u64,
    pub bytes: u64,
    pub seconds: f64,
    /// Latency in nanoseconds.
    pub hist: Histogram<u64>,
}

#[derive(Default)]
struct Totals {
    ops: AtomicU64,
    errors: AtomicU64,
    records: AtomicU64,
    bytes: AtomicU64,
}

struct Shared {
    totals: Totals,
    hist: Mutex<Histogram<u64>>,
    first_error: Mutex<Option<String>>,
    failure: Mutex<Option<String>>,
    stop: AtomicBool,
    done_threads: AtomicU64,
}

pub fn new_hist() -> Histogram<u64> {
    // Auto-resizing, 3 significant digits: any latency, 0.1% resolution.
    Histogram::new(3).expect("3 significant figures is a valid precision")
}

/// Run the plan and return what it measured; a connection refused, reset or closed by the
/// server ends the run with an error that says which.
pub fn run(plan: &Plan, make: Arc<MakeDriver>) -> anyhow::Result<Outcome> {
    if plan.cores.is_empty() || plan.connections == 0 {
        bail!("need at least one core and one connection");
    }
    let threads = plan.cores.len().min(plan.connections);
    // Connect everything and set every connection up before the clock starts, so set-up
    // is not measured.
    let mut per_thread: Vec<Vec<Connected>> = (0..threads).map(|_| Vec::new()).collect();
    for c in 0..plan.connections {
        let mut s = TcpStream::connect(plan.addr).with_context(|| {
            format!("connecting to {} (is the server running there?)", plan.addr)
        })?;
        s.set_nodelay(true)?;
        let mut driver = make(c);
        driver
            .connected(&mut s)
            .with_context(|| format!("setting up connection {c} to {}", plan.addr))?;
        per_thread[c % threads].push((c, s, driver));
    }
    let shared = Arc::new(Shared {
        totals: Totals::default(),
        hist: Mutex::new(new_hist()),
        first_error: Mutex::new(None),
        failure: Mutex::new(None),
        stop: AtomicBool::new(false),
        done_threads: AtomicU64::new(0),
    });
    let start = Instant::now();
    let mut handles = Vec::new();
    for (t, conns) in per_thread.into_iter().enumerate() {
        let plan = plan.clone();
        let shared = shared.clone();
        let core = plan.cores[t];
        handles.push(std::thread::spawn(move || {
            core_affinity::set_for_current(core_affinity::CoreId { id: core });
            let r = worker(&plan, conns, &shared, start);
            if let Err(e) = r {
                let mut f = shared.failure.lock().unwrap_or_else(|p| p.into_inner());
                f.get_or_insert(format!("{e:#}"));
                shared.stop.store(true, Ordering::Relaxed);
            }
            shared.done_threads.fetch_add(1, Ordering::Relaxed);
        }));
    }
    // Progress, once a second, until every worker is done.
    let mut last_ops = 0;
    let mut last_t = start;
    while shared.done_threads.load(Ordering::Relaxed) < handles.len() as u64 {
        std::thread::sleep(Duration::from_millis(50));
        if plan.progress && last_t.elapsed() >= Duration::from_secs(1) {
            let ops = shared.totals.ops.load(Ordering::Relaxed);
            let dt = last_t.elapsed().as_secs_f64();
            let p99 = shared
                .hist
                .lock()
                .map(|h| h.value_at_quantile(0.99))
                .unwrap_or(0);
            eprintln!(
                "{:>6.1} s  {:>12.0} ops/s  p99 so far {:>10.1} µs  errors {}",
                start.elapsed().as_secs_f64(),
                (ops - last_ops) as f64 / dt,
                p99 as f64 / 1000.0,
                shared.totals.errors.load(Ordering::Relaxed)
            );
            last_ops = ops;
            last_t = Instant::now();
        }
    }
    for h in handles {
        h.join().map_err(|_| anyhow!("a load thread panicked"))?;
    }
    let end = start.elapsed();
    if let Some(f) = shared
        .failure
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    {
        bail!("{f}");
    }
    let hist = shared
        .hist
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let measured = end.saturating_sub(plan.warmup).as_secs_f64().max(1e-9);
    let t = &shared.totals;
    let first_error = shared
        .first_error
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    Ok(Outcome {
        ops: t.ops.load(Ordering::Relaxed),
        errors: t.errors.load(Ordering::Relaxed),
        first_error,
        records: t.records.load(Ordering::Relaxed),
        bytes: t.bytes.load(Ordering::Relaxed),
        seconds: measured,
        hist,
    })
}

/// A request awaiting its reply: `ops` operations intended at `first`, `first + step`, ...
struct Pending {
    first: u64,
    step: u64,
    ops: u32,
    /// For drivers without replies: the request is done when this many bytes were sent.
    end: u64,
}

struct Conn {
    stream: TcpStream,
    driver: Box<dyn Driver>,
    /// Bytes queued but not yet handed to the kernel.
    out: Vec<u8>,
    /// Bytes the kernel is sending (one send in flight at a time).
    sending: Vec<u8>,
    sent: usize,
    send_busy: bool,
    queued_total: u64,
    sent_total: u64,
    inbuf: Vec<u8>,
    filled: usize,
    recv_busy: bool,
    inflight: VecDeque<Pending>,
    /// With `requests`: operations this connection may still start (unbounded during the
    /// warm-up, whose operations are not counted; `measured` then takes over).
    quota: u64,
    measured: Option<u64>,
    // Open loop.
    next_due: u64,
    step: u64,
    gathered: u32,
    gathered_first: u64,
}

const SEND: u64 = 0;
const RECV: u64 = 1;

fn token(conn: usize, kind: u64) -> u64 {
    ((conn as u64) << 1) | kind
}

struct Local {
    hist: Histogram<u64>,
    ops: u64,
    errors: u64,
    records: u64,
    bytes: u64,
}

fn worker(
    plan: &Plan,
    conns: Vec<Connected>,
    shared: &Shared,
    start: Instant,
) -> anyhow::Result<()> {
    let n_total = plan.connections as u64;
    let mut ring = IoUring::new((conns.len() * 2 + 8).next_power_of_two() as u32)
        .context("creating an io_uring (kernel 5.19 or newer is needed)")?;
    let step = plan
        .rate
        .map_or(0, |r| (1e9 * n_total as f64 / r.max(1e-3)) as u64);
    let warm = plan.warmup.as_nanos() as u64;
    let mut conns: Vec<Conn> = conns
        .into_iter()
        .map(|(c, stream, driver)| {
            let share = plan
                .requests
                .map(|r| r / n_total + u64::from((c as u64) < r % n_total));
            let (quota, measured) = match share {
                Some(s) if warm > 0 => (u64::MAX, Some(s)),
                Some(s) => (s, None),
                None => (u64::MAX, None),
            };
            Conn {
                stream,
                driver,
                out: Vec::new(),
                sending: Vec::new(),
                sent: 0,
                send_busy: false,
                queued_total: 0,
                sent_total: 0,
                inbuf: vec![0; 64 * 1024],
                filled: 0,
                recv_busy: false,
                inflight: VecDeque::new(),
                quota,
                measured,
                // Stagger the schedules so connections do not fire together.
                next_due: step * c as u64 / n_total.max(1),
                step,
                gathered: 0,
                gathered_first: 0,
            }
        })
        .collect();
    let mut local = Local {
        hist: new_hist(),
        ops: 0,
        errors: 0,
        records: 0,
        bytes: 0,
    };
    let mut first_error: Option<String> = None;
    let deadline = (plan.duration + plan.warmup).as_nanos() as u64;
    let mut last_flush = 0u64;
    // Whatever ends the run, every operation in flight is finished before the buffers
    // it names are freed.
    let mut cqes: Vec<(u64, i32)> = Vec::new();
    let result = (|| -> anyhow::Result<()> {
        loop {
            let now = start.elapsed().as_nanos() as u64;
            if shared.stop.load(Ordering::Relaxed) {
                break;
            }
            if plan.requests.is_none() && now >= deadline {
                break;
            }
            let measuring = now >= warm;
            let mut all_done = true;
            let mut next_wake = now + 50_000_000;
            for (i, c) in conns.iter_mut().enumerate() {
                if measuring {
                    if let Some(q) = c.measured.take() {
                        c.quota = q;
                    }
                }
                let max_ops = c.driver.max_ops().max(1);
                let cap = c.driver.max_in_flight().min(if plan.rate.is_some() {
                    usize::MAX
                } else {
                    plan.pipeline.max(1)
                });
                if plan.rate.is_none() {
                    while c.inflight.len() < cap && c.quota > 0 {
                        let ops = (max_ops as u64).min(c.quota) as u32;
                        c.quota -= ops as u64;
                        queue(c, now, 0, ops);
                    }
                } else {
                    while c.next_due <= now && c.quota > 0 {
                        if c.gathered == 0 {
                            c.gathered_first = c.next_due;
                        }
                        c.gathered += 1;
                        c.quota -= 1;
                        c.next_due += c.step;
                        if c.gathered >= max_ops && c.inflight.len() < cap {
                            let (first, ops) = (c.gathered_first, c.gathered);
                            c.gathered = 0;
                            queue(c, first, c.step, ops);
                        }
                    }
                    let lingered =
                        now.saturating_sub(c.gathered_first) >= plan.linger.as_nanos() as u64;
                    if c.gathered > 0 && (lingered || max_ops == 1) && c.inflight.len() < cap {
                        let (first, ops) = (c.gathered_first, c.gathered);
                        c.gathered = 0;
                        queue(c, first, c.step, ops);
                    }
                    next_wake = next_wake.min(c.next_due);
                    if c.gathered > 0 {
                        next_wake = next_wake.min(c.gathered_first + plan.linger.as_nanos() as u64);
                    }
                }
                if c.quota > 0 || !c.inflight.is_empty() || c.gathered > 0 {
                    all_done = false;
                }
                start_io(&mut ring, c, i)?;
            }
            if plan.requests.is_some() && all_done {
                break;
            }
            if now.saturating_sub(last_flush) >= 200_000_000 {
                flush(&mut local, shared, &mut first_error);
                last_flush = now;
            }
            let wait =
                Duration::from_nanos(next_wake.saturating_sub(now).clamp(20_000, 50_000_000));
            let ts = types::Timespec::from(wait);
            let args = types::SubmitArgs::new().timespec(&ts);
            match ring.submitter().submit_with_args(1, &args) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                    ) => {}
                Err(e) => return Err(e).context("io_uring_enter"),
            }
            cqes.clear();
            cqes.extend(ring.completion().map(|e| (e.user_data(), e.result())));
            let now = start.elapsed().as_nanos() as u64;
            // Mark every reaped operation finished before handling any: an error below
            // ends the run, and drain() must not wait for completions already taken.
            for &(ud, _) in &cqes {
                reaped(&mut conns, ud);
            }
            for &(ud, res) in &cqes {
                let i = (ud >> 1) as usize;
                let Some(c) = conns.get_mut(i) else { continue };
                if ud & 1 == SEND {
                    if res < 0 {
                        bail!(
                            "sending to {}: {}",
                            plan.addr,
                            std::io::Error::from_raw_os_error(-res)
                        );
                    }
                    c.sent += res as usize;
                    c.sent_total += res as u64;
                    if !c.driver.replies() {
                        while c.inflight.front().is_some_and(|p| p.end <= c.sent_total) {
                            if let Some(p) = c.inflight.pop_front() {
                                complete(&mut local, &p, now, warm, None);
                            }
                        }
                    }
                } else {
                    if res == 0 {
                        bail!("the server at {} closed a connection", plan.addr);
                    }
                    if res < 0 {
                        bail!(
                            "receiving from {}: {}",
                            plan.addr,
                            std::io::Error::from_raw_os_error(-res)
                        );
                    }
                    c.filled += res as usize;
                    let mut used = 0;
                    loop {
                        let r = c
                            .driver
                            .reply(&c.inbuf[used..c.filled])
                            .map_err(|e| anyhow!("unreadable reply from {}: {e}", plan.addr))?;
                        let Some(r) = r else { break };
                        used += r.len;
                        let Some(p) = c.inflight.pop_front() else {
                            bail!("the server at {} sent a reply nobody asked for", plan.addr);
                        };
                        if let Some(e) = &r.failed {
                            if first_error.is_none() {
                                first_error = Some(e.clone());
                            }
                        }
                        complete(&mut local, &p, now, warm, Some(&r));
                    }
                    c.inbuf.copy_within(used..c.filled, 0);
                    c.filled -= used;
                    if c.filled == c.inbuf.len() {
                        // A reply bigger than the buffer (a large fetch): grow.
                        let n = c.inbuf.len() * 2;
                        c.inbuf.resize(n, 0);
                    }
                }
            }
        }
        Ok(())
    })();
    drain(&mut ring, &mut conns);
    flush(&mut local, shared, &mut first_error);
    result
}

/// Shut every socket down, so receives and sends in flight complete, and reap them all:
/// only then may the buffers they name be freed.
fn drain(ring: &mut IoUring, conns: &mut [Conn]) {
    for c in conns.iter() {
        if c.send_busy || c.recv_busy {
            // SAFETY: a plain syscall on a socket we own; no memory is passed.
            unsafe { libc::shutdown(c.stream.as_raw_fd(), libc::SHUT_RDWR) };
        }
    }
    while conns.iter().any(|c| c.send_busy || c.recv_busy) {
        if ring.submit_and_wait(1).is_err() {
            // The ring itself failed; nothing more will complete. Leak the buffers rather
            // than free memory the kernel may still write.
            for c in conns.iter_mut() {
                if c.send_busy || c.recv_busy {
                    std::mem::forget(std::mem::take(&mut c.inbuf));
                    std::mem::forget(std::mem::take(&mut c.sending));
                }
            }
            return;
        }
        for e in ring.completion() {
            reaped(conns, e.user_data());
        }
    }
}

/// The operation `user_data` names has completed: its connection may start another.
fn reaped(conns: &mut [Conn], user_data: u64) {
    if let Some(c) = conns.get_mut((user_data >> 1) as usize) {
        if user_data & 1 == SEND {
            c.send_busy = false;
        } else {
            c.recv_busy = false;
        }
    }
}

/// Queue a request of `ops` operations intended at `first`, `first + step`, ...
fn queue(c: &mut Conn, first: u64, step: u64, ops: u32) {
    let before = c.out.len();
    c.driver.request(&mut c.out, ops);
    c.queued_total += (c.out.len() - before) as u64;
    c.inflight.push_back(Pending {
        first,
        step,
        ops,
        end: c.queued_total,
    });
}

fn start_io(ring: &mut IoUring, c: &mut Conn, i: usize) -> anyhow::Result<()> {
    let fd = types::Fd(c.stream.as_raw_fd());
    if !c.send_busy {
        if c.sent == c.sending.len() && !c.out.is_empty() {
            c.sending.clear();
            std::mem::swap(&mut c.sending, &mut c.out);
            c.sent = 0;
        }
        if c.sent < c.sending.len() {
            let rest = &c.sending[c.sent..];
            let e = opcode::Send::new(fd, rest.as_ptr(), rest.len().min(u32::MAX as usize) as u32)
                .build()
                .user_data(token(i, SEND));
            // SAFETY: `sending` is neither touched nor reallocated while a send is in
            // flight (send_busy), so the pointer stays valid until its completion.
            unsafe { push(ring, &e)? };
            c.send_busy = true;
        }
    }
    if !c.recv_busy && c.driver.replies() {
        let spare = &mut c.inbuf[c.filled..];
        let e = opcode::Recv::new(
            fd,
            spare.as_mut_ptr(),
            spare.len().min(u32::MAX as usize) as u32,
        )
        .build()
        .user_data(token(i, RECV));
        // SAFETY: `inbuf` is only resized or read after this receive completes
        // (recv_busy), so the kernel writes into memory we own and do not move.
        unsafe { push(ring, &e)? };
        c.recv_busy = true;
    }
    Ok(())
}

/// # Safety
/// The buffers the entry names must stay valid until its completion is reaped.
unsafe fn push(ring: &mut IoUring, e: &io_uring::squeue::Entry) -> anyhow::Result<()> {
    if ring.submission().is_full() {
        ring.submit().context("io_uring_enter")?;
    }
    // SAFETY: forwarded to the caller's contract.
    unsafe { ring.submission().push(e) }.map_err(|_| anyhow!("submission queue full"))
}

fn complete(local: &mut Local, p: &Pending, now: u64, warm: u64, r: Option<&Reply>) {
    if p.first < warm {
        return;
    }
    if p.step == 0 {
        let _ = local
            .hist
            .record_n(now.saturating_sub(p.first).max(1), p.ops as u64);
    } else {
        for j in 0..p.ops as u64 {
            let _ = local
                .hist
                .record(now.saturating_sub(p.first + j * p.step).max(1));
        }
    }
    local.ops += p.ops as u64;
    if let Some(r) = r {
        if r.failed.is_some() {
            local.errors += p.ops as u64;
        }
        local.records += r.records;
        local.bytes += r.bytes;
    }
}

fn flush(local: &mut Local, shared: &Shared, first_error: &mut Option<String>) {
    let t = &shared.totals;
    t.ops
        .fetch_add(std::mem::take(&mut local.ops), Ordering::Relaxed);
    t.errors
        .fetch_add(std::mem::take(&mut local.errors), Ordering::Relaxed);
    t.records
        .fetch_add(std::mem::take(&mut local.records), Ordering::Relaxed);
    t.bytes
        .fetch_add(std::mem::take(&mut local.bytes), Ordering::Relaxed);
    if let Ok(mut h) = shared.hist.lock() {
        let _ = h.add(&local.hist);
    }
    local.hist.reset();
    if let Some(e) = first_error.take() {
        if let Ok(mut f) = shared.first_error.lock() {
            f.get_or_insert(e);
        }
    }
}
