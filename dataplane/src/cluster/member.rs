//! The node's membership thread (`--control`): a plain thread, not a shard (like the admin
//! thread), that registers with the control plane, sends heartbeats with each shard's load,
//! and drives the 2PC participant (`pinion_control::twopc::Participant`): it persists the
//! prepared and committed maps (`state.rs`, fsynced before the vote or ack that depends on
//! them) and installs each committed map into the cluster view, which shards read.
//!
//! Lifecycle: started by `main` after the shards; runs until `stop` is set. The connection
//! is re-made (after `RECONNECT_MS`) whenever it drops; the participant and its durable
//! state survive reconnects. A control plane that refuses the node (wrong secret: it
//! closes the connection; a removed node: an error reply) is logged and retried.
//!
//! Threads: this one writes; one reader per connection decodes the control plane's frames
//! (checking each MAC) and hands them over a channel.

use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use pinion_control::moves::{Order, Unit};
use pinion_control::server::msg::ShardLoad;
use pinion_control::twopc::participant::{Input, Output};
use pinion_control::twopc::{Participant, Timing, ToMember};
use pinion_control::wire::{self, Sealer, Side, WireError, NONCE_BYTES};
use serde_json::json;

use super::mover::{MoverArgs, Report};
use super::pmove::{self, PartMoves};
use super::view::{View, ViewNode};
use super::{state, Cluster};
use crate::metrics::admin::Snapshot;
use crate::metrics::ShardMetrics;

/// Between connection attempts.
const RECONNECT_MS: u64 = 500;
/// How often the participant gets a tick (asks, re-sends).
const TICK_MS: u64 = 100;
/// Clock ticks per second in /proc/*/stat (USER_HZ: 100 in Linux's ABI on every
/// architecture pinion runs on).
const USER_HZ: f64 = 100.0;
/// Connecting to the control plane gives up after this.
const CONNECT_TIMEOUT_MS: u64 = 2_000;
/// How often the mover's reports are looked for.
const MOVE_POLL_MS: u64 = 20;

pub struct MemberArgs {
    pub control: String,
    pub secret: Vec<u8>,
    pub data_dir: PathBuf,
    pub weight: u32,
    pub heartbeat: Duration,
    pub me: ViewNode,
    pub cluster: Arc<Cluster>,
    pub snapshot: Snapshot,
    pub stop: Arc<AtomicBool>,
    /// Move orders for the mover thread (this node sends), and its reports.
    pub orders: Sender<Order>,
    pub reports: Receiver<Report>,
    /// Partition moves (`pmove.rs`), and what their threads send to the control plane.
    pub pmoves: Arc<PartMoves>,
    pub pmove_out: Receiver<serde_json::Value>,
    /// The node's shared state: each committed map's connection weights for this node's
    /// shards go to its `balance` ([`apply_conn_weights`]).
    pub node: Arc<crate::shard::NodeShared>,
}

/// What the reader thread hands over.
enum FromControl {
    Msg(serde_json::Value),
    Closed(String),
}

struct Link {
    stream: TcpStream,
    out: Sealer,
    rx: Receiver<FromControl>,
}

impl Link {
    fn send(&mut self, v: &serde_json::Value) -> Result<(), WireError> {
        use std::io::Write;
        let payload = serde_json::to_vec(v)?;
        let f = self.out.seal(&payload);
        self.stream.write_all(&f)?;
        Ok(())
    }
}

fn connect(addr: &str, secret: &[u8]) -> Result<Link, WireError> {
    let sa = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{addr}: no address")))?;
    let mut stream = TcpStream::connect_timeout(&sa, Duration::from_millis(CONNECT_TIMEOUT_MS))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_millis(CONNECT_TIMEOUT_MS)))?;
    let mut nonce = [0u8; NONCE_BYTES];
    stream.read_exact(&mut nonce)?;
    stream.set_read_timeout(None)?;
    let (tx, rx) = mpsc::channel();
    let reader = stream.try_clone()?;
    let inb = Sealer::new(secret, nonce, Side::Server);
    std::thread::Builder::new()
        .name("control-read".into())
        .spawn(move || read_loop(reader, inb, tx))?;
    Ok(Link {
        stream,
        out: Sealer::new(secret, nonce, Side::Client),
        rx,
    })
}

fn read_loop(mut stream: TcpStream, mut inb: Sealer, tx: Sender<FromControl>) {
    loop {
        let msg = wire::read_frame(&mut stream).and_then(|body| {
            let payload = inb.open(&body)?;
            Ok(serde_json::from_slice::<serde_json::Value>(payload)?)
        });
        match msg {
            Ok(v) => {
                if tx.send(FromControl::Msg(v)).is_err() {
                    return;
                }
            }
            Err(e) => {
                let why = match e {
                    WireError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        "the control plane closed the connection (a wrong --control-secret-file is refused this way; see its log)".to_string()
                    }
                    e => e.to_string(),
                };
                let _ = tx.send(FromControl::Closed(why));
                return;
            }
        }
    }
}

/// Per-shard load between two heartbeats.
struct LoadMeter {
    at: Instant,
    cpu: Vec<(String, u64)>,
    commands: Vec<u64>,
    bytes: Vec<u64>,
    hist: Vec<Option<Histogram<u64>>>,
}

/// CPU ticks (utime + stime) of this process's threads named `shard-*`, by name.
fn shard_cpu_ticks() -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for e in dir.flatten() {
        let p = e.path();
        let Ok(comm) = std::fs::read_to_string(p.join("comm")) else {
            continue;
        };
        let comm = comm.trim().to_string();
        if !comm.starts_with("shard-") {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(p.join("stat")) else {
            continue;
        };
        // Fields after the command's closing parenthesis; utime and stime are 14 and 15.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let t = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        out.push((comm, t(11) + t(12)));
    }
    out
}

fn merged(m: &ShardMetrics) -> Option<Histogram<u64>> {
    let mut h = m.families.first()?.clone();
    for f in &m.families[1..] {
        h.add(f).ok()?;
    }
    Some(h)
}

impl LoadMeter {
    fn new(shards: &[ShardMetrics]) -> LoadMeter {
        LoadMeter {
            at: Instant::now(),
            cpu: shard_cpu_ticks(),
            commands: shards.iter().map(|m| m.counters.commands).collect(),
            bytes: shards
                .iter()
                .map(|m| m.counters.bytes_in + m.counters.bytes_out)
                .collect(),
            hist: shards.iter().map(merged).collect(),
        }
    }

    /// The load since the last reading, and the new reading.
    fn report(&self, shards: &[ShardMetrics]) -> (Vec<ShardLoad>, LoadMeter) {
        let now = LoadMeter::new(shards);
        let secs = now.at.duration_since(self.at).as_secs_f64().max(1e-3);
        let hz = USER_HZ;
        let loads = shards
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let name = format!("shard-{i}");
                let ticks =
                    |v: &[(String, u64)]| v.iter().find(|(n, _)| *n == name).map_or(0, |(_, t)| *t);
                let busy = ticks(&now.cpu).saturating_sub(ticks(&self.cpu)) as f64 / hz / secs;
                let d = |a: &[u64], b: &[u64]| {
                    a.get(i)
                        .copied()
                        .unwrap_or(0)
                        .saturating_sub(b.get(i).copied().unwrap_or(0))
                };
                let p99_us = match (now.hist.get(i), self.hist.get(i)) {
                    (Some(Some(cur)), Some(Some(prev))) => {
                        let mut w = cur.clone();
                        match w.subtract(prev) {
                            Ok(()) if !w.is_empty() => w.value_at_quantile(0.99) / 1000,
                            _ => 0,
                        }
                    }
                    _ => 0,
                };
                ShardLoad {
                    busy: busy.clamp(0.0, 1.0),
                    ops_per_s: d(&now.commands, &self.commands) as f64 / secs,
                    bytes_per_s: d(&now.bytes, &self.bytes) as f64 / secs,
                    connections: m.counters.connections_open,
                    p99_us,
                    memory_bytes: m.memory.iter().sum(),
                }
            })
            .collect();
        (loads, now)
    }
}

/// The shared secret, read and checked before the node starts (`--control-secret-file`).
pub fn secret(cfg: &crate::config::Config) -> anyhow::Result<Option<Vec<u8>>> {
    match (&cfg.control, &cfg.control_secret_file) {
        (Some(_), Some(f)) => {
            Ok(Some(wire::read_secret(f).map_err(|e| {
                anyhow::anyhow!("--control-secret-file {e}")
            })?))
        }
        _ => Ok(None),
    }
}

/// Starts the membership thread for a node started with `--control`.
pub fn spawn(
    node: &crate::shard::node::Node,
    secret: Vec<u8>,
    stop: Arc<AtomicBool>,
    pulls: Arc<crate::log::pull::Pulls>,
) -> anyhow::Result<()> {
    let cfg = &node.shared.cfg;
    let Some(control) = cfg.control.clone() else {
        return Ok(());
    };
    let me = super::this_node(cfg, node.shared.nshards, node.resp_addr, node.kafka_addr);
    // The weights of the map this node served last, before anything else runs here: under
    // --control they replace --shard-weights once a map has them.
    if let Some(map) = state::load_committed(&cfg.data_dir) {
        apply_conn_weights(&node.shared, &map, me.id);
    }
    let (orders, orders_rx) = mpsc::channel();
    let (reports_tx, reports) = mpsc::channel();
    let mover = MoverArgs {
        own: format!("{}:{}", me.host, me.port),
        password: cfg.requirepass.clone(),
        cluster: node.shared.cluster.clone(),
        stop: stop.clone(),
    };
    std::thread::Builder::new()
        .name("cluster-mover".into())
        .spawn(move || super::mover::run(mover, orders_rx, reports_tx))?;
    let (pmove_tx, pmove_out) = mpsc::channel();
    let pmoves = PartMoves::new(pulls, &cfg.data_dir, pmove_tx);
    let args = MemberArgs {
        control,
        secret,
        data_dir: cfg.data_dir.clone(),
        weight: cfg.weight,
        heartbeat: Duration::from_millis(cfg.heartbeat_ms),
        me,
        cluster: node.shared.cluster.clone(),
        snapshot: node.snapshotter(),
        stop,
        orders,
        reports,
        pmoves,
        pmove_out,
        node: node.shared.clone(),
    };
    std::thread::Builder::new()
        .name("cluster".into())
        .spawn(move || run(args))?;
    Ok(())
}

/// Runs the membership loop until `stop`.
pub fn run(args: MemberArgs) {
    let id = args.me.id;
    let durable = match state::load(&args.data_dir) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!("cluster membership cannot start: {e}");
            return;
        }
    };
    let started = Instant::now();
    let now = || started.elapsed().as_millis() as u64;
    let (mut part, outs) = Participant::recover(id, durable, Timing::default(), now());
    // Recovery's outputs: install the committed map (the view already holds it) and an ask
    // that goes out once connected.
    drop(outs);
    let mut logged_down = false;
    // Log a failing registration once until one succeeds (a wrong secret retries forever).
    let mut quiet = false;
    // `--control A,B,...`: control planes sharing an etcd store. A standby refuses the node
    // and names the leader, which is tried next; an unreachable one passes to the next.
    let addrs: Vec<String> = args
        .control
        .split(',')
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .collect();
    let mut at = 0;
    let mut target = addrs.first().cloned().unwrap_or_default();
    while !args.stop.load(Ordering::Relaxed) {
        let mut link = match connect(&target, &args.secret) {
            Ok(l) => l,
            Err(e) => {
                if !logged_down {
                    tracing::warn!(control = %target, "cannot reach the control plane: {e}; retrying");
                    logged_down = true;
                }
                at = (at + 1) % addrs.len().max(1);
                target = addrs.get(at).cloned().unwrap_or_default();
                std::thread::sleep(Duration::from_millis(RECONNECT_MS));
                continue;
            }
        };
        logged_down = false;
        let mut leader = None;
        let (why, registered) = serve(
            &args,
            &target,
            &mut link,
            &mut part,
            &now,
            quiet,
            &mut leader,
        );
        let _ = link.stream.shutdown(std::net::Shutdown::Both);
        if let Some(l) = leader {
            tracing::debug!(standby = %target, leader = %l, "the control plane is a standby; going to the leader");
            target = l;
            continue;
        }
        if !args.stop.load(Ordering::Relaxed) {
            if registered {
                tracing::warn!(control = %target, "control plane connection ended: {why}; reconnecting");
            }
            quiet = !registered;
            std::thread::sleep(Duration::from_millis(RECONNECT_MS));
        }
    }
}

fn register_msg(args: &MemberArgs) -> serde_json::Value {
    let me = &args.me;
    json!({
        "type": "register",
        "node": me.id,
        "shards": me.shards,
        "resp_addr": format!("{}:{}", me.host, me.port),
        "kafka_addr": format!("{}:{}", me.kafka_host, me.kafka_port),
        "shard_endpoints": me.shard_endpoints.iter().map(|(h, p)| format!("{h}:{p}")).collect::<Vec<_>>(),
        "weight": args.weight,
        "moves": true,
    })
}

/// One connection's life; returns why it ended and whether the node had registered. A
/// refusal is logged unless `quiet` (the last attempt was refused too).
/// A standby's refusal names the leader: it lands in `leader`.
fn serve(
    args: &MemberArgs,
    target: &str,
    link: &mut Link,
    part: &mut Participant,
    now: &dyn Fn() -> u64,
    quiet: bool,
    leader: &mut Option<String>,
) -> (String, bool) {
    let mut registered = false;
    let why = serve_link(
        args,
        target,
        link,
        part,
        now,
        quiet,
        &mut registered,
        leader,
    );
    args.cluster.topics.connection_lost();
    (why, registered)
}

#[allow(clippy::too_many_arguments)]
fn serve_link(
    args: &MemberArgs,
    target: &str,
    link: &mut Link,
    part: &mut Participant,
    now: &dyn Fn() -> u64,
    quiet: bool,
    registered: &mut bool,
    leader: &mut Option<String>,
) -> String {
    if let Err(e) = link.send(&register_msg(args)) {
        return e.to_string();
    }
    let mut meter = (args.snapshot)().map(|m| LoadMeter::new(&m));
    let mut next_heartbeat = Instant::now() + args.heartbeat;
    let mut next_tick = Instant::now();
    // When the control plane last said no change can flip a fenced partition.
    let mut settle_asked: Option<Instant> = None;
    let mut last_reconcile = Instant::now();
    loop {
        if args.stop.load(Ordering::Relaxed) {
            return "stopping".into();
        }
        let wait = next_tick
            .min(next_heartbeat)
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(MOVE_POLL_MS));
        let outs = match link.rx.recv_timeout(wait) {
            Ok(FromControl::Msg(v)) => match v.get("type").and_then(|t| t.as_str()) {
                Some("registered") => {
                    *registered = true;
                    tracing::info!(control = %target, node = args.me.id, "registered with the control plane");
                    Vec::new()
                }
                Some("reply") => {
                    let err = v.get("error").and_then(|e| e.as_str()).unwrap_or("?");
                    if let Some(l) = v.get("leader").and_then(|l| l.as_str()) {
                        *leader = Some(l.to_string());
                        return format!("a standby: {err}");
                    }
                    if !quiet {
                        tracing::error!(control = %target, "the control plane refused this node: {err} (retrying quietly)");
                    }
                    return format!("refused: {err}");
                }
                Some("fence") => {
                    let id = v.get("id").and_then(|i| i.as_u64());
                    let epoch = v.get("epoch").and_then(|e| e.as_u64());
                    let units = v
                        .get("units")
                        .cloned()
                        .and_then(|u| serde_json::from_value::<Vec<Unit>>(u).ok());
                    match (id, epoch, units) {
                        (Some(id), Some(epoch), Some(units)) => args.pmoves.fence(id, epoch, units),
                        _ => return "bad fence order from the control plane".into(),
                    }
                    Vec::new()
                }
                Some("settle") => {
                    settle_asked = Some(Instant::now());
                    Vec::new()
                }
                Some("topic_reply") => {
                    args.cluster.topics.answer(&v);
                    Vec::new()
                }
                Some("fenced") => {
                    match pmove::decode_fenced(&v) {
                        Some((id, f)) => args.pmoves.answer(id, f),
                        None => return "bad fence answer from the control plane".into(),
                    }
                    Vec::new()
                }
                Some("move") => {
                    match serde_json::from_value::<Order>(v) {
                        Ok(o) => take_order(args, o),
                        Err(e) => return format!("bad move order from the control plane: {e}"),
                    }
                    Vec::new()
                }
                _ => match serde_json::from_value::<ToMember>(v) {
                    Ok(m) => part.step(Input::Recv(m), now()),
                    Err(e) => return format!("bad message from the control plane: {e}"),
                },
            },
            Ok(FromControl::Closed(why)) => {
                if !*registered && !quiet {
                    tracing::error!(control = %target, "not registered: {why} (retrying quietly)");
                }
                return why;
            }
            Err(RecvTimeoutError::Timeout) => Vec::new(),
            Err(RecvTimeoutError::Disconnected) => return "reader stopped".into(),
        };
        if let Err(e) = carry_out(args, link, outs) {
            return e;
        }
        while let Ok(r) = args.reports.try_recv() {
            let msg = json!({"type": "moved", "id": r.id, "done": r.done, "failed": r.failed, "last": r.last});
            if let Err(e) = link.send(&msg) {
                return e.to_string();
            }
        }
        while let Ok(msg) = args.pmove_out.try_recv() {
            if let Err(e) = link.send(&msg) {
                return e.to_string();
            }
        }
        if *registered {
            for msg in args.cluster.topics.take_unsent() {
                if let Err(e) = link.send(&msg) {
                    return e.to_string();
                }
            }
        }
        if last_reconcile.elapsed() >= Duration::from_millis(crate::limits::TOPIC_RECONCILE_MS) {
            last_reconcile = Instant::now();
            let topics = &args.cluster.current().topics;
            super::topics::reconcile(&args.data_dir, &kafka_addr(args), topics);
        }
        if args.pmoves.holds_fences() {
            // The control plane's word that nothing can flip them counts once this node
            // is not in doubt (a prepared map may still commit).
            let ended = settle_asked.filter(|_| part.prepared().is_none());
            args.pmoves.settle(&args.cluster.current(), ended);
            if ended.is_some() {
                settle_asked = None;
            }
        }
        if Instant::now() >= next_tick {
            next_tick = Instant::now() + Duration::from_millis(TICK_MS);
            let outs = part.step(Input::Tick, now());
            if let Err(e) = carry_out(args, link, outs) {
                return e;
            }
        }
        if Instant::now() >= next_heartbeat {
            next_heartbeat = Instant::now() + args.heartbeat;
            if let Some(shards) = (args.snapshot)() {
                let loads = match &meter {
                    Some(m) => {
                        let (loads, next) = m.report(&shards);
                        meter = Some(next);
                        loads
                    }
                    None => {
                        meter = Some(LoadMeter::new(&shards));
                        Vec::new()
                    }
                };
                if *registered && !loads.is_empty() {
                    let hb = json!({"type": "heartbeat", "shards": loads,
                        "partitions": pmove::reported(&args.data_dir)});
                    if let Err(e) = link.send(&hb) {
                        return e.to_string();
                    }
                }
            }
        }
    }
}

/// Carries out the participant's outputs in order: a `Persist` is durable before anything
/// after it is sent or installed.
fn carry_out(args: &MemberArgs, link: &mut Link, outs: Vec<Output>) -> Result<(), String> {
    let steps = super::crashpoint::before(&outs); // test-only crash points
    for (i, o) in outs.into_iter().enumerate() {
        match o {
            Output::Persist(d) => {
                if let Err(e) = state::save(&args.data_dir, &d) {
                    // A node that cannot persist must not vote or ack: drop the connection
                    // (the coordinator times the change out and aborts it).
                    tracing::error!("persisting the cluster map failed: {e}");
                    return Err(format!("persisting failed: {e}"));
                }
            }
            Output::Install(m) => {
                let view = View::from_map(&m.map, args.me.id);
                let epoch = view.epoch;
                let owned = m.map.slot_counts().get(&args.me.id).copied().unwrap_or(0);
                let old = args.cluster.current();
                if args.cluster.install(view) {
                    tracing::info!(epoch, slots = owned, "installed cluster map");
                    args.cluster.settle_moves();
                    apply_conn_weights(&args.node, &m.map, args.me.id);

                    // This node's topics follow the map's (`topics.rs`).
                    let kafka = kafka_addr(args);
                    super::topics::installed(&args.data_dir, &kafka, &old.topics, &m.map.topics);
                }
            }
            Output::Send(msg) => {
                let v = serde_json::to_value(&msg).map_err(|e| e.to_string())?;
                link.send(&v).map_err(|e| e.to_string())?;
            }
        }
        super::crashpoint::after(&steps, i);
    }
    Ok(())
}

/// Applies a committed map's connection weights for this node's shards to the picker
/// (`shard/balance.rs`). A map that does not list this node changes nothing.
pub fn apply_conn_weights(
    node: &crate::shard::NodeShared,
    map: &pinion_control::map::ClusterMap,
    me: u32,
) {
    let weights = map.conn_weights_of(me);
    if weights.is_empty() {
        return;
    }
    if node.balance.set_weights(&weights) {
        tracing::info!(
            epoch = map.epoch,
            ?weights,
            "connection weights from the map"
        );
    }
}

/// This node's own Kafka address, for applying the map's topics (`topics.rs`).
fn kafka_addr(args: &MemberArgs) -> String {
    format!("{}:{}", args.me.kafka_host, args.me.kafka_port)
}

/// A move order (`pinion_control::moves`): as its new owner, accept ASKING for its slots
/// or pull its partitions; as a slot order's old owner, hand it to the mover.
fn take_order(args: &MemberArgs, o: Order) {
    let me = args.me.id;
    if o.partitions() {
        // The new owner pulls a partition order's partitions (`pmove.rs`).
        if o.to.node == me {
            let from = pmove::kafka_addr(&args.cluster.current(), o.from);
            args.pmoves.take(o, from);
        }
        return;
    }
    if o.to.node == me {
        args.cluster.edit_moves(|m| {
            for u in &o.units {
                if let Unit::Slot(s) = u {
                    m.importing.set(*s, true);
                }
            }
        });
    }
    if o.from == me && args.orders.send(o).is_err() {
        tracing::error!("the mover thread has stopped");
    }
}
