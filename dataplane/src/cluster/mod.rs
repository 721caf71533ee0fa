//! Cluster mode (issue 12): the node's view of who owns each slot and partition, the RESP
//! commands that show it (`resp.rs`), the check that answers MOVED for keys owned
//! elsewhere, and (with `--control`) the node's membership thread (`member.rs`).
//!
//! Owner: the view is node-wide. It is written by the main thread at start-up and then only
//! by the member thread when a map is committed ([`Cluster::install`]); shards read it. A
//! shard keeps its own `Arc` of the current view and compares one generation counter per
//! check, so serving takes no lock; a lock is taken only on the first check after an
//! install.
//!
//! Invariant: a view replaces another only with a higher epoch (the 2PC participant
//! installs only committed maps, and never an older one).

pub mod crashpoint;
pub mod kafka;
pub mod kafka_ports;
pub mod member;
pub mod mover;
pub mod moving;
pub mod pmove;
pub mod resp;
pub mod state;
pub mod topics;
pub mod view;

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

pub use moving::Moves;
pub use view::{View, ViewNode};

use std::net::SocketAddr;

use anyhow::Context;
use socket2::{Domain, Protocol, Socket, Type};

use crate::cache::slot::{key_slot, SLOTS};
use crate::config::Config;
use crate::limits::LISTEN_BACKLOG;
use crate::proto::resp::command::Spec;
use crate::proto::resp::Args;

pub struct Cluster {
    /// A node run by a control plane: every connection's keys are checked against the map.
    /// Standalone, only connections on shard ports are.
    pub managed: bool,
    /// This node's id in the map (1 standalone).
    pub node_id: u32,
    /// Unique per `Cluster` made in this process: names it in the threads' caches.
    instance: u64,
    generation: AtomicU64,
    view: RwLock<Arc<View>>,
    /// Slots on the move (`moving.rs`).
    moves: RwLock<Arc<Moves>>,
    /// Topic requests for the control plane (`topics.rs`).
    pub topics: topics::Requests,
}

/// A thread's copy: (cluster instance, generation, view, moves).
type Cached = (u64, u64, Arc<View>, Arc<Moves>);

thread_local! {
    /// This thread's copy of a cluster's view and moves.
    static CACHED: RefCell<Option<Cached>> = const { RefCell::new(None) };
}

/// Instances of [`Cluster`] made so far.
static INSTANCES: AtomicU64 = AtomicU64::new(0);

impl Cluster {
    pub fn new(view: View, managed: bool, node_id: u32) -> Cluster {
        Cluster {
            managed,
            node_id,
            instance: INSTANCES.fetch_add(1, Ordering::Relaxed),
            generation: AtomicU64::new(1),
            view: RwLock::new(Arc::new(view)),
            moves: RwLock::new(Arc::new(Moves::default())),
            topics: topics::Requests::default(),
        }
    }

    /// Changes the node-wide move state (the membership and mover threads).
    pub fn edit_moves(&self, f: impl FnOnce(&mut Moves)) {
        let mut cur = match self.moves.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let mut next = (**cur).clone();
        f(&mut next);
        next.refresh();
        *cur = Arc::new(next);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The current move state (takes the lock; for threads other than shards, and tests).
    pub fn moves(&self) -> Arc<Moves> {
        match self.moves.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// After a new view: forgets what it settles. A slot this node now owns is no longer
    /// imported; a slot another node now owns is no longer this node's to redirect.
    pub fn settle_moves(&self) {
        let view = self.current();
        let m = self.moves();
        if m.is_quiet() {
            return;
        }
        let mine = |slot: u16| view.owner(slot).is_some_and(|(n, _)| view.is_me(n));
        let stale_import = (0..SLOTS as u16).any(|s| m.importing.has(s) && mine(s));
        let stale_gone = m.gone_slots().any(|s| !mine(s));
        if !stale_import && !stale_gone {
            return;
        }
        self.edit_moves(|m| {
            for s in 0..SLOTS as u16 {
                if m.importing.has(s) && mine(s) {
                    m.importing.set(s, false);
                }
            }
            let stale: Vec<u16> = m.gone_slots().filter(|&s| !mine(s)).collect();
            for s in stale {
                m.set_gone(s, None);
            }
        });
    }

    /// Serve `view` from now on (an older epoch than the current one is ignored).
    pub fn install(&self, view: View) -> bool {
        let mut cur = match self.view.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if view.epoch < cur.epoch {
            return false;
        }
        *cur = Arc::new(view);
        self.generation.fetch_add(1, Ordering::Release);
        true
    }

    /// The current view (takes the lock; for threads other than shards, and tests).
    pub fn current(&self) -> Arc<View> {
        match self.view.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Runs `f` on the current view through this thread's copy.
    pub fn with<R>(&self, f: impl FnOnce(&View) -> R) -> R {
        self.with_moves(|v, _| f(v))
    }

    /// Runs `f` on the current view and move state through this thread's copy.
    pub fn with_moves<R>(&self, f: impl FnOnce(&View, &Moves) -> R) -> R {
        let me = self.instance;
        let generation = self.generation.load(Ordering::Acquire);
        CACHED.with(|c| {
            let mut c = c.borrow_mut();
            let fresh = matches!(&*c, Some((at, g, _, _)) if *at == me && *g == generation);
            if !fresh {
                *c = Some((me, generation, self.current(), self.moves()));
            }
            let (_, _, v, m) = c.as_ref().expect("filled above");
            f(v, m)
        })
    }
}

/// The host clients are told to use for an address this node listens on.
fn announced(ip: std::net::IpAddr) -> String {
    if ip.is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        ip.to_string()
    }
}

/// This node as the view lists it.
pub fn this_node(cfg: &Config, nshards: usize, resp: SocketAddr, kafka: SocketAddr) -> ViewNode {
    let host = announced(resp.ip());
    let (kafka_host, kafka_port) = cfg.advertised(kafka.port());
    let shard_endpoints = match cfg.shard_ports {
        Some(base) => (0..nshards)
            .map(|i| (host.clone(), base.saturating_add(i as u16)))
            .collect(),
        None => Vec::new(),
    };
    ViewNode {
        id: cfg.node_id.unwrap_or(1),
        host,
        port: resp.port(),
        kafka_host,
        kafka_port,
        shards: nshards as u16,
        shard_endpoints,
    }
}

/// The view a node starts with: standalone, every slot its own; under a control plane,
/// the committed map it persisted last, else nothing owned until the first map arrives.
pub fn initial(cfg: &Config, nshards: usize, resp: SocketAddr, kafka: SocketAddr) -> Cluster {
    let me = this_node(cfg, nshards, resp, kafka);
    let id = me.id;
    match cfg.control {
        None => Cluster::new(View::standalone(me), false, id),
        Some(_) => {
            let map = state::load_committed(&cfg.data_dir).unwrap_or_default();
            Cluster::new(View::from_map(&map, id), true, id)
        }
    }
}

/// One listener per shard on `--shard-ports BASE` (BASE+i, the RESP listen host), or none.
pub fn bind_shard_ports(
    cfg: &Config,
    resp: SocketAddr,
    nshards: usize,
) -> anyhow::Result<Vec<Socket>> {
    let Some(base) = cfg.shard_ports else {
        return Ok(Vec::new());
    };
    if usize::from(base) + nshards > usize::from(u16::MAX) + 1 || base == 0 {
        anyhow::bail!("--shard-ports {base}: {nshards} ports from there do not fit below 65536");
    }
    let mut out = Vec::with_capacity(nshards);
    for i in 0..nshards {
        let addr = SocketAddr::new(resp.ip(), base + i as u16);
        let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        s.set_reuse_address(true)?;
        s.set_nodelay(true)?;
        s.bind(&addr.into())
            .with_context(|| format!("--shard-ports: binding {addr} for shard {i}"))?;
        s.listen(LISTEN_BACKLOG)?;
        out.push(s);
    }
    Ok(out)
}

/// What the cluster check decided about a keyed command.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Serve,
    /// `-MOVED slot host:port`.
    Moved {
        slot: u16,
        host: String,
        port: u16,
    },
    /// Keys of several slots, not all on this node.
    CrossSlot,
    /// A key's slot has no owner.
    Down,
    /// `-ASK slot host:port`: the slot's keys were handed over while it moves.
    Ask {
        slot: u16,
        host: String,
        port: u16,
    },
    /// The slot is being streamed right now, or the keys span moved and unmoved slots.
    TryAgain,
}

/// Checks a command's keys against the view, for a connection on shard `me_shard` (on its
/// own port when `shard_port`). Serves when every key is on this node (and, on a shard
/// port, on this shard, or spread over this node's shards in several slots: those take
/// the mesh hop as on the plain port). Else MOVED to the owner of the keys' one slot.
pub fn check(view: &View, me_shard: usize, shard_port: bool, spec: &Spec, a: &Args) -> Verdict {
    check_moving(
        view,
        &Moves::default(),
        me_shard,
        shard_port,
        false,
        spec,
        a,
    )
}

/// [`check`] with slots on the move (`moving.rs`): on the old owner, a key of a slot being
/// streamed gets TRYAGAIN and one of a slot already handed over `-ASK` (several slots
/// touching one: TRYAGAIN, as Redis answers keys split by a migration); on the new owner,
/// a slot it imports is served right after ASKING (`asking`).
pub fn check_moving(
    view: &View,
    moves: &Moves,
    me_shard: usize,
    shard_port: bool,
    asking: bool,
    spec: &Spec,
    a: &Args,
) -> Verdict {
    let mut first: Option<(u16, usize, usize)> = None;
    let quiet = moves.is_quiet();
    let mut frozen = false;
    let mut gone: Option<(u16, &(String, u16))> = None;
    let mut same_slot = true;
    let mut all_here = true;
    let mut all_this_shard = true;
    let mut down = false;
    spec.for_each_key(a, |k| {
        let slot = key_slot(k);
        let Some((node, shard)) = view.owner(slot) else {
            down = true;
            return;
        };
        match first {
            None => first = Some((slot, node, shard)),
            Some((s, _, _)) if s != slot => same_slot = false,
            Some(_) => {}
        }
        if !view.is_me(node) {
            all_here = false;
        } else if !quiet {
            frozen |= moves.frozen.has(slot);
            if let Some(to) = moves.gone(slot) {
                gone = Some((slot, to));
            }
        }
        if shard != me_shard {
            all_this_shard = false;
        }
    });
    if down {
        return Verdict::Down;
    }
    let Some((slot, node, shard)) = first else {
        return Verdict::Serve;
    };
    if all_here && (frozen || gone.is_some()) {
        return match gone {
            Some((slot, (host, port))) if same_slot && !frozen => Verdict::Ask {
                slot,
                host: host.clone(),
                port: *port,
            },
            _ => Verdict::TryAgain,
        };
    }
    if all_here && (!shard_port || all_this_shard || !same_slot) {
        return Verdict::Serve;
    }
    if !all_here && same_slot && asking && moves.importing.has(slot) {
        return Verdict::Serve;
    }
    if !same_slot {
        return Verdict::CrossSlot;
    }
    let (host, port) = view.nodes[node].endpoint(shard);
    Verdict::Moved {
        slot,
        host: host.to_string(),
        port,
    }
}

impl Verdict {
    /// The error reply, or None to serve.
    pub fn error(&self) -> Option<String> {
        match self {
            Verdict::Serve => None,
            Verdict::Moved { slot, host, port } => Some(format!("MOVED {slot} {host}:{port}")),
            Verdict::CrossSlot => Some(crate::proto::resp::errors::CROSSSLOT.to_string()),
            Verdict::Down => Some(crate::proto::resp::errors::CLUSTERDOWN.to_string()),
            Verdict::Ask { slot, host, port } => Some(format!("ASK {slot} {host}:{port}")),
            Verdict::TryAgain => Some(crate::proto::resp::errors::TRYAGAIN.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::resp::command::lookup;

    fn args(line: &str) -> (Vec<u8>, Vec<(usize, usize)>) {
        crate::proto::resp::args::split_words(line)
    }

    fn verdict(v: &View, me: usize, shard_port: bool, line: &str) -> Verdict {
        let (src, ranges) = args(line);
        let a = Args {
            src: &src,
            ranges: &ranges,
        };
        let spec = lookup(a.get(0)).unwrap();
        check(v, me, shard_port, spec, &a)
    }

    fn two_shards(endpoints: bool) -> View {
        View::standalone(ViewNode {
            id: 1,
            host: "127.0.0.1".into(),
            port: 7000,
            kafka_host: "127.0.0.1".into(),
            kafka_port: 9092,
            shards: 2,
            shard_endpoints: if endpoints {
                vec![("127.0.0.1".into(), 7100), ("127.0.0.1".into(), 7101)]
            } else {
                Vec::new()
            },
        })
    }

    #[test]
    fn a_shard_port_moves_single_slot_keys_of_the_other_shard() {
        let v = two_shards(true);
        // "a" is slot 15495 (shard 1), "b" slot 3300 (shard 0).
        assert_eq!(verdict(&v, 1, true, "get a"), Verdict::Serve);
        assert_eq!(
            verdict(&v, 0, true, "get a"),
            Verdict::Moved {
                slot: 15495,
                host: "127.0.0.1".into(),
                port: 7101
            }
        );
        assert_eq!(
            verdict(&v, 0, true, "get a").error().unwrap(),
            "MOVED 15495 127.0.0.1:7101"
        );
        // The plain port hops as before.
        assert_eq!(verdict(&v, 0, false, "get a"), Verdict::Serve);
        // Keys of several slots on this node are served (through the mesh).
        assert_eq!(verdict(&v, 0, true, "mget a b"), Verdict::Serve);
        assert_eq!(verdict(&v, 0, true, "ping"), Verdict::Serve);
        assert_eq!(
            verdict(&v, 1, true, "mget {b}1 {b}2"),
            Verdict::Moved {
                slot: 3300,
                host: "127.0.0.1".into(),
                port: 7100
            }
        );
    }

    #[test]
    fn keys_on_another_node_move_or_are_cross_slot() {
        let mut v = two_shards(false);
        v.me = None; // as a node the map does not name
        assert!(matches!(
            verdict(&v, 0, false, "set a 1"),
            Verdict::Moved { port: 7000, .. }
        ));
        assert_eq!(verdict(&v, 0, false, "mget a b"), Verdict::CrossSlot);
    }

    fn moving(v: &View, m: &Moves, asking: bool, line: &str) -> Verdict {
        let (src, ranges) = args(line);
        let a = Args {
            src: &src,
            ranges: &ranges,
        };
        let spec = lookup(a.get(0)).unwrap();
        check_moving(v, m, 0, false, asking, spec, &a)
    }

    #[test]
    fn slots_on_the_move_answer_tryagain_ask_or_serve_after_asking() {
        // "a" is slot 15495, "b" slot 3300; {a}x shares a's slot.
        let here = two_shards(false);
        let mut m = Moves::default();
        m.frozen.set(15495, true);
        m.refresh();
        assert_eq!(moving(&here, &m, false, "get a"), Verdict::TryAgain);
        assert_eq!(moving(&here, &m, false, "get b"), Verdict::Serve);
        m.frozen.set(15495, false);
        m.set_gone(15495, Some(("10.0.0.9".into(), 7009)));
        m.refresh();
        let ask = moving(&here, &m, false, "mget a {a}x");
        assert_eq!(ask.error().unwrap(), "ASK 15495 10.0.0.9:7009");
        // Keys of a handed-over slot and of one still here: TRYAGAIN, as Redis does.
        assert_eq!(moving(&here, &m, false, "mget a b"), Verdict::TryAgain);
        // The new owner: the map still names the old one; ASKING lets one command in.
        let mut there = two_shards(false);
        there.me = None;
        let mut m = Moves::default();
        m.importing.set(15495, true);
        m.refresh();
        assert_eq!(moving(&there, &m, true, "set a 1"), Verdict::Serve);
        assert!(matches!(
            moving(&there, &m, false, "set a 1"),
            Verdict::Moved { slot: 15495, .. }
        ));
        assert!(matches!(
            moving(&there, &m, true, "get b"),
            Verdict::Moved { slot: 3300, .. }
        ));
    }

    #[test]
    fn installs_never_go_back_and_threads_see_the_new_view() {
        let c = Cluster::new(two_shards(false), false, 1);
        assert_eq!(c.with(|v| v.epoch), 0);
        let mut newer = two_shards(true);
        newer.epoch = 5;
        assert!(c.install(newer));
        assert_eq!(
            c.with(|v| (v.epoch, v.nodes[0].shard_endpoints.len())),
            (5, 2)
        );
        let mut older = two_shards(false);
        older.epoch = 4;
        assert!(!c.install(older));
        assert_eq!(c.with(|v| v.epoch), 5);
    }
}
