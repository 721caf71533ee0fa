//! Start-up and shutdown of the shards. Start-up may block and share (it binds sockets,
//! builds rings, exchanges ring fds); serving does neither.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use socket2::{Domain, Protocol, Socket, Type};

use super::{build, Control, NodeShared, Shard};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::limits::{
    FDS_CONNECTION_SHARE_DIVISOR, FDS_NODE_RESERVED, FDS_PER_PARTITION, FDS_PER_SHARD_RESERVED,
    LISTEN_BACKLOG, NOFILE_WANTED, PORT_CLAIM_WAIT, SEGMENT_READERS_PER_SHARD,
};
use crate::mesh::Mesh;
use crate::metrics::ShardMetrics;
use crate::runtime::sys;

struct Handle {
    tx: mpsc::Sender<Control>,
    wake: Arc<OwnedFd>,
}

impl Handle {
    fn send(&self, c: Control) {
        if self.tx.send(c).is_ok() {
            if let Err(e) = sys::eventfd_signal(&self.wake) {
                tracing::warn!(error = %e, "waking a shard failed");
            }
        }
    }
}

/// A running node: its shard threads and the means to talk to them.
pub struct Node {
    handles: Vec<Handle>,
    threads: Vec<JoinHandle<ShardMetrics>>,
    pub shared: Arc<NodeShared>,
    pub resp_addr: SocketAddr,
    pub kafka_addr: SocketAddr,
    /// The TLS listeners' addresses, when on (issue 13).
    pub resp_tls_addr: Option<SocketAddr>,
    pub kafka_tls_addr: Option<SocketAddr>,
}

/// Bind `addr` alone (no SO_REUSEPORT), then let it go; returns the address bound.
///
/// A port can stay busy for a moment after a previous node exits: the kernel tears an
/// exited process's io_uring down asynchronously, and a pending multishot accept keeps its
/// listener alive until then. So "address in use" is retried for up to 2 s before it is
/// reported.
fn claim(addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    let deadline = Instant::now() + PORT_CLAIM_WAIT;
    loop {
        let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        s.set_reuse_address(true)?;
        match s.bind(&addr.into()) {
            Ok(()) => return s.local_addr()?.as_socket().context("listener address"),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                return Err(e).with_context(|| format!("{addr} is in use or cannot be bound"))
            }
        }
    }
}

fn listener(addr: SocketAddr) -> anyhow::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.set_nodelay(true)?;
    s.bind(&addr.into())
        .with_context(|| format!("binding {addr}"))?;
    s.listen(LISTEN_BACKLOG)?;
    Ok(s)
}

/// The partitions an fd limit of `nofile` holds for a node of `shards` shards: what is left
/// after the node's and the shards' reserves and the connections' share, at
/// `FDS_PER_PARTITION` each (limits.rs explains each term).
pub fn partition_budget(cfg: &Config, nofile: u64, shards: usize) -> u64 {
    let per_shard = FDS_PER_SHARD_RESERVED + SEGMENT_READERS_PER_SHARD as u64;
    let fixed = FDS_NODE_RESERVED + per_shard * shards as u64;
    let left = nofile.saturating_sub(fixed);
    let conns = (cfg.max_connections + cfg.max_kafka_connections) as u64;
    let conns = conns.min(left / FDS_CONNECTION_SHARE_DIVISOR);
    (left - conns) / FDS_PER_PARTITION
}

/// Raise the soft fd limit as far as allowed, and settle `--max-partitions`: derived from
/// the limit when 0, refused when the limit cannot hold it.
fn settle_fd_budget(cfg: &mut Config, shards: usize) -> anyhow::Result<()> {
    let nofile = match sys::raise_nofile(NOFILE_WANTED) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "raising the open-file limit failed");
            sys::nofile_limit().map(|l| l.0).unwrap_or(u64::MAX)
        }
    };
    // What the node and its shards hold before any connection or partition (19 for two
    // shards, measured): below the reserve a shard would fail to start somewhere, with a
    // less useful message.
    let least = FDS_NODE_RESERVED + FDS_PER_SHARD_RESERVED * shards as u64;
    if nofile < least {
        bail!(
            "`ulimit -n` is {nofile}; a node of {shards} shards needs at least {least} file descriptors (plus {FDS_PER_PARTITION} per partition and one per connection): raise the limit (ulimit -n, LimitNOFILE= under systemd)"
        );
    }
    let allowed = partition_budget(cfg, nofile, shards);
    if cfg.max_partitions > allowed {
        let need = cfg.max_partitions * FDS_PER_PARTITION + (nofile - allowed * FDS_PER_PARTITION);
        bail!(
            "--max-partitions {} needs about {need} file descriptors ({FDS_PER_PARTITION} per partition, plus connections and the node's own), but `ulimit -n` is {nofile} and allows {allowed} partitions: raise the limit (ulimit -n, LimitNOFILE= under systemd) or lower --max-partitions",
            cfg.max_partitions
        );
    }
    if cfg.max_partitions == 0 {
        cfg.max_partitions = allowed;
    }
    tracing::info!(
        nofile,
        max_partitions = cfg.max_partitions,
        "file descriptor budget"
    );
    Ok(())
}

impl Node {
    pub fn start(cfg: Config) -> anyhow::Result<Node> {
        Node::start_with_clock(cfg, Arc::new(SystemClock))
    }

    pub fn start_with_clock(mut cfg: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Node> {
        cfg.validate()?;
        let available: Vec<usize> = core_affinity::get_core_ids()
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.id)
            .collect();
        let cpus = cfg.cpu_list(&available)?;
        let n = cpus.len();
        if n > u16::MAX as usize {
            bail!("too many shards ({n})");
        }
        settle_fd_budget(&mut cfg, n)?;
        // Read the memory available here, not from a shard thread (`budget.rs`).
        crate::budget::measure_at_start_up(&cfg);

        // SO_REUSEPORT would let this node silently share a port with another process that
        // also set it (another pinion, say). Claim the address once without it first: that
        // fails with "address in use" as any server would, and resolves port 0.
        let resp_addr = claim(cfg.resp_listen)?;
        let kafka_addr = claim(cfg.kafka_listen)?;
        // Connection balancing (issue 12): unless the kernel picks (`reuseport`), shard 0
        // alone listens and hands each connection to the shard the policy picks.
        let balance = super::balance::Balance::new(cfg.conn_balance, n, &cfg.shard_weights)
            .map_err(anyhow::Error::msg)?;
        let listening = |i: usize| i == 0 || !balance.handed_off();
        let mut listeners = Vec::with_capacity(n);
        for i in 0..n {
            listeners.push(if listening(i) {
                vec![listener(resp_addr)?, listener(kafka_addr)?]
            } else {
                Vec::new()
            });
        }
        // TLS (issue 13): its files load before anything serves; its listeners are claimed
        // as the plain ones are, and given to every shard with their protocol.
        let tls = match cfg.tls_files() {
            Some(files) => Some(crate::tls::Tls::load(files)?),
            None => None,
        };
        let resp_tls_addr = cfg.resp_tls_listen.map(claim).transpose()?;
        let kafka_tls_addr = cfg.kafka_tls_listen.map(claim).transpose()?;
        let mut tls_listeners: Vec<Vec<(OwnedFd, u32)>> = Vec::with_capacity(n);
        for i in 0..n {
            let mut l = Vec::new();
            if !listening(i) {
                tls_listeners.push(l);
                continue;
            }
            if let Some(a) = resp_tls_addr {
                l.push((OwnedFd::from(listener(a)?), super::LISTENER_RESP));
            }
            if let Some(a) = kafka_tls_addr {
                l.push((OwnedFd::from(listener(a)?), super::LISTENER_KAFKA));
            }
            tls_listeners.push(l);
        }
        let mut tls_listeners = tls_listeners.into_iter();
        // Cluster (issue 12): each shard's own RESP port, and the node's cluster view.
        let mut shard_ports = crate::cluster::bind_shard_ports(&cfg, resp_addr, n)?.into_iter();
        let mut kafka_shard_ports =
            crate::cluster::kafka_ports::bind(&cfg, kafka_addr, n)?.into_iter();
        let cluster = Arc::new(crate::cluster::initial(&cfg, n, resp_addr, kafka_addr));

        let shared = Arc::new(NodeShared {
            cfg: cfg.clone(),
            nshards: n,
            started: clock.now(),
            resp_port: resp_addr.port(),
            kafka_port: kafka_addr.port(),
            clock: clock.clone(),
            connections: [AtomicUsize::new(0), AtomicUsize::new(0)],
            draining: AtomicUsize::new(n),
            refusing_writes: (0..n).map(|_| AtomicBool::new(false)).collect(),
            scripts: Arc::new(crate::script::Shared::new(n)),
            peers: Default::default(),
            tls,
            resp_tls_port: resp_tls_addr.map(|a| a.port()),
            kafka_tls_port: kafka_tls_addr.map(|a| a.port()),

            users: Arc::new(
                crate::auth::Users::start(
                    cfg.users.clone(),
                    cfg.requirepass.clone(),
                    cfg.kafka_sasl_enabled(),
                )
                .context("loading --users")?
                .with_auth_limits(cfg.auth_limits(), n),
            ),
            cluster,

            balance,
        });
        let mesh = Mesh::new(n, cfg.ring_capacity);
        let ring_fds: Arc<Vec<AtomicI32>> = Arc::new((0..n).map(|_| AtomicI32::new(-1)).collect());
        let barrier = Arc::new(Barrier::new(n + 1));
        let (ready_tx, ready_rx) = mpsc::channel::<Result<usize, String>>();
        let mut handles = Vec::new();
        let mut threads = Vec::new();

        for (i, (cpu, sock)) in cpus.iter().copied().zip(listeners).enumerate() {
            let wake = Arc::new(sys::eventfd().context("creating a control eventfd")?);
            let control_fd = wake
                .try_clone()
                .context("duplicating a control eventfd (raise `ulimit -n`)")?;
            let (tx, control_rx) = mpsc::channel();
            handles.push(Handle { tx, wake });
            let shared = shared.clone();
            let endpoint = mesh.endpoint(i, clock.now());
            let ring_fds = ring_fds.clone();
            let barrier = barrier.clone();
            let ready_tx = ready_tx.clone();
            let tls_listener_fds = tls_listeners.next().unwrap_or_default();
            let listener_fds: Vec<OwnedFd> = sock.into_iter().map(OwnedFd::from).collect();
            let shard_port_fd = shard_ports.next().map(OwnedFd::from);
            let kafka_shard_port_fd = kafka_shard_ports.next().map(OwnedFd::from);
            let t = std::thread::Builder::new()
                .name(format!("shard-{i}"))
                .spawn(move || {
                    if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
                        tracing::warn!(shard = i, cpu, "could not pin shard to its CPU");
                    }
                    let io = match build::make_io(&shared, i) {
                        Ok(io) => io,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            barrier.wait();
                            return ShardMetrics::new(i);
                        }
                    };
                    // Recovery blocks on files, which is fine before serving; a shard that
                    // cannot recover its log fails the node's start.
                    let owner = crate::mesh::SlotTable::new(shared.nshards);
                    let logs = match crate::log::Logs::recover(
                        &shared.cfg,
                        i,
                        &owner,
                        shared.clock.unix_ms(),
                    ) {
                        Ok(logs) => logs,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            barrier.wait();
                            return ShardMetrics::new(i);
                        }
                    };
                    let groups = match crate::kafka::groups::Groups::recover(
                        &shared.cfg,
                        i,
                        &owner,
                        shared.clock.unix_ms(),
                    ) {
                        Ok(g) => g,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            barrier.wait();
                            return ShardMetrics::new(i);
                        }
                    };
                    ring_fds[i].store(io.ring_fd(), Ordering::Release);
                    let _ = ready_tx.send(Ok(i));
                    barrier.wait();
                    let mut mesh = endpoint;
                    for (j, fd) in ring_fds.iter().enumerate() {
                        mesh.ring_fds[j] = fd.load(Ordering::Acquire);
                    }
                    if mesh.ring_fds.iter().any(|&fd| fd < 0) {
                        return ShardMetrics::new(i); // start-up failed elsewhere; main reports it
                    }
                    tracing::debug!(shard = i, cpu, "shard running");
                    let init = build::ShardInit {
                        id: i,
                        shared,
                        listeners: listener_fds,
                        tls_listeners: tls_listener_fds,
                        shard_port: shard_port_fd,
                        kafka_shard_port: kafka_shard_port_fd,
                        mesh,
                        control_rx,
                        control_fd,
                        logs,
                        groups,
                    };
                    Shard::build(io, init).run()
                })?;
            threads.push(t);
        }
        drop(ready_tx);
        let mut errors = Vec::new();
        for _ in 0..n {
            match ready_rx.recv() {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => errors.push(e),
                Err(_) => errors.push("a shard thread died during start-up".into()),
            }
        }
        barrier.wait();
        let node = Node {
            handles,
            threads,
            shared,
            resp_addr,
            kafka_addr,
            resp_tls_addr,
            kafka_tls_addr,
        };
        if !errors.is_empty() {
            node.shutdown();
            bail!("start-up failed: {}", errors.join("; "));
        }
        Ok(node)
    }

    /// Copies of every shard's metrics, or None if a shard did not answer within `wait`.
    pub fn metrics(&self, wait: Duration) -> Option<Vec<ShardMetrics>> {
        let (tx, rx) = mpsc::channel();
        for h in &self.handles {
            h.send(Control::Metrics(tx.clone()));
        }
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        for _ in 0..self.handles.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            out.push(rx.recv_timeout(left).ok()?);
        }
        out.sort_by_key(|m| m.shard);
        Some(out)
    }

    /// A closure the admin endpoint can call from its own thread.
    pub fn snapshotter(&self) -> crate::metrics::admin::Snapshot {
        let senders: Vec<(mpsc::Sender<Control>, Arc<OwnedFd>)> = self
            .handles
            .iter()
            .map(|h| (h.tx.clone(), h.wake.clone()))
            .collect();
        let senders = std::sync::Mutex::new(senders);
        Arc::new(move || {
            // The admin thread is the only caller; the Mutex only makes the closure Sync.
            let senders = senders.lock().ok()?;
            let (tx, rx) = mpsc::channel();
            for (s, wake) in senders.iter() {
                Handle {
                    tx: s.clone(),
                    wake: wake.clone(),
                }
                .send(Control::Metrics(tx.clone()));
            }
            let deadline = Instant::now() + Duration::from_secs(2);
            let mut out = Vec::new();
            for _ in 0..senders.len() {
                out.push(
                    rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
                        .ok()?,
                );
            }
            out.sort_by_key(|m| m.shard);
            Some(out)
        })
    }

    /// How partition pulls (`log/pull/`, plain threads) send a shard a command.
    pub fn pull_link(&self) -> crate::log::pull::Link {
        let senders: Vec<(mpsc::Sender<Control>, Arc<OwnedFd>)> = self
            .handles
            .iter()
            .map(|h| (h.tx.clone(), h.wake.clone()))
            .collect();
        Arc::new(move |i, cmd| {
            if let Some((tx, wake)) = senders.get(i) {
                Handle {
                    tx: tx.clone(),
                    wake: wake.clone(),
                }
                .send(Control::Pull(cmd));
            }
        })
    }

    /// Stop accepting, let in-flight requests finish, close connections, join the shards.
    pub fn shutdown(self) -> Vec<ShardMetrics> {
        for h in &self.handles {
            h.send(Control::Shutdown);
        }
        let mut out: Vec<ShardMetrics> = self
            .threads
            .into_iter()
            .enumerate()
            .map(|(i, t)| t.join().unwrap_or_else(|_| ShardMetrics::new(i)))
            .collect();
        out.sort_by_key(|m| m.shard);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn partition_budget_leaves_room_for_connections_and_the_node() {
        let cfg = Config::try_parse_from(["pinion"]).unwrap();
        // 512 fds, 2 shards: 64 + 2 x (32 + 64 cached segment readers) reserved, 1/8 of the
        // rest for connections, 2 per partition.
        assert_eq!(partition_budget(&cfg, 512, 2), (256 - 32) / 2);
        // Connections that ask for less than their share get what they ask.
        let few = Config::try_parse_from([
            "pinion",
            "--max-connections",
            "10",
            "--max-kafka-connections",
            "10",
        ])
        .unwrap();
        assert_eq!(partition_budget(&few, 512, 2), (256 - 20) / 2);
        assert_eq!(partition_budget(&cfg, 100, 2), 0);
        assert_eq!(partition_budget(&cfg, 20_000, 2), 8638);
    }
}
