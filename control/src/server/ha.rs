//! `serve --store etcd://...`: a control plane that leads or stands by.
//!
//! The process listens at once, then campaigns for the etcd leader key (`etcd/`). While it
//! stands by it answers from etcd, read-only: `status` (its role and the leader's address)
//! and `map` (the committed map, recovered from the log as etcd holds it); every other
//! request, and a node registering, gets an error that names the leader, so the CLI and
//! nodes can go there. Once elected it loads the log from etcd and runs the core exactly as
//! a restarted coordinator: an undecided change is aborted, a logged decision re-sent.
//!
//! A leader that loses its lease stops coordinating at once: the election stops the core
//! (as a signal would), and the process then replaces itself with a fresh copy of itself
//! (`exec`, same arguments), which starts as a standby with no state but what etcd holds.
//! Its appends would fail anyway, since each is conditioned on its leader key (the fence),
//! so nothing it does after its lease is gone reaches the log. An etcd error in the core
//! (an append whose outcome is unknown) restarts it the same way. On SIGTERM or SIGINT it
//! revokes its lease, so a standby takes over without waiting for the lease to expire.

use std::ffi::OsString;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tracing::{debug, info, warn};

use super::core::{Core, Event};
use super::msg::{error_reply, ok_reply, Op};
use super::{accept_loop, OutMsg, Outbox, ServeArgs};
use crate::etcd::client::{Election, Etcd, Fence, Role};
use crate::etcd::log::{decode, LogStore};
use crate::etcd::EtcdConfig;
use crate::store::StoreError;
use crate::twopc::{Coordinator, Timing};
use crate::wire;

/// How often a standby looks whether it has been elected, between requests.
const STANDBY_POLL_MS: u64 = 50;

pub(super) fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let cfg = EtcdConfig::parse(args.store).map_err(anyhow::Error::msg)?;
    let secret = Arc::new(wire::read_secret(args.secret_file).map_err(anyhow::Error::msg)?);
    let listener = TcpListener::bind(args.listen)
        .map_err(|e| anyhow::anyhow!("--listen {}: {e}", args.listen))?;
    let addr = listener.local_addr()?;
    if addr.ip().is_unspecified() {
        warn!(%addr, "the leader key names this address, which others cannot reach; listen on a routable one");
    }
    let etcd = Etcd::connect(cfg)?;
    let (tx, rx) = mpsc::channel::<Event>();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])?;
    let stop = tx.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if signals.forever().next().is_some() {
                let _ = stop.send(Event::Shutdown);
            }
        })?;
    let accept_tx = tx.clone();
    std::thread::Builder::new()
        .name("accept".into())
        .spawn(move || accept_loop(listener, secret, accept_tx))?;
    let deposed = Arc::new(AtomicBool::new(false));
    let el = {
        let deposed = deposed.clone();
        etcd.campaign(
            addr.to_string(),
            Box::new(move || {
                deposed.store(true, Ordering::SeqCst);
                let _ = tx.send(Event::Shutdown);
            }),
        )
    };
    info!(%addr, store = %etcd.cfg.describe(), "pinion-control listening; campaigning for leadership");

    let Some(fence) = stand_by(&etcd, &el, &rx) else {
        etcd.resign(&el);
        info!("stopping");
        return Ok(());
    };
    let led = lead(&etcd, fence, rx);
    let lost = deposed.load(Ordering::SeqCst)
        || matches!(led, Err(StoreError::NotLeader | StoreError::Etcd(_)));
    if lost {
        if let Err(e) = &led {
            warn!("stopped coordinating: {e}");
        }
        return restart_as_standby();
    }
    etcd.resign(&el);
    led?;
    Ok(())
}

/// Answers read-only until elected. `None`: asked to stop first.
fn stand_by(etcd: &Etcd, el: &Election, rx: &Receiver<Event>) -> Option<Fence> {
    loop {
        if let Role::Leader(f) = el.role() {
            return Some(f);
        }
        match rx.recv_timeout(Duration::from_millis(STANDBY_POLL_MS)) {
            Ok(Event::Shutdown) | Err(RecvTimeoutError::Disconnected) => return None,
            Ok(ev) => answer(ev, etcd, el),
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

fn lead(etcd: &Etcd, fence: Fence, rx: Receiver<Event>) -> Result<(), StoreError> {
    let store = LogStore::open(etcd.kv(fence), &etcd.cfg.prefix)?;
    let mut core = Core::start(Box::new(store))?;
    info!(
        epoch = core.epoch(),
        store = %core.store_name(),
        "leading: loaded the log from etcd"
    );
    core.run(rx)
}

/// Replaces this process with a fresh copy of itself, which starts as a standby.
fn restart_as_standby() -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe()?;
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    warn!("restarting as a standby");
    let err = std::process::Command::new(exe).args(args).exec();
    Err(anyhow::anyhow!("could not restart as a standby: {err}"))
}

/// A standby's answer to a request or a node.
fn answer(ev: Event, etcd: &Etcd, el: &Election) {
    let leader = match el.role() {
        Role::Standby { leader } => leader,
        Role::Leader(_) => None,
    };
    let refuse = |out: &Outbox| {
        let why = match &leader {
            Some(l) => format!("this control plane is a standby; the leader is {l}"),
            None => "this control plane is a standby and no leader is known yet (is etcd up?)"
                .to_string(),
        };
        let v = json!({"type": "reply", "ok": false, "error": why, "leader": leader});
        let _ = out.try_send(OutMsg::Payload(
            serde_json::to_vec(&v).expect("JSON values serialise"),
        ));
    };
    match ev {
        Event::Op {
            op: op @ (Op::Status | Op::Map),
            out,
        } => {
            let log = etcd.load().and_then(|kvs| decode(&etcd.cfg.prefix, &kvs));
            let log = match log {
                Ok(l) => l,
                Err(e) => {
                    let _ = out.try_send(OutMsg::Payload(error_reply(&e.to_string())));
                    return;
                }
            };
            let records: Vec<_> = log.into_iter().map(|(_, r)| r).collect();
            let (coord, _) = Coordinator::recover(&records, Timing::default(), 0);
            let m = &coord.committed().map;
            let v = if matches!(op, Op::Map) {
                serde_json::to_value(&**m).expect("maps serialise")
            } else {
                json!({
                    "role": "standby",
                    "leader": leader,
                    "epoch": m.epoch,
                    "last_epoch": coord.last_epoch(),
                    "open_epoch": coord.open_epoch(),
                    "store": etcd.cfg.describe(),
                })
            };
            let _ = out.try_send(OutMsg::Payload(ok_reply(v)));
        }
        Event::Op { out, .. } => refuse(&out),
        Event::Register { id, peer, out, .. } => {
            // Expected while a node looks for the leader: not worth more than a debug line.
            debug!(node = id, %peer, "refused node: standing by");
            refuse(&out);
            let _ = out.try_send(OutMsg::Close);
        }
        // A node's other messages: it registered with the leader, not here.
        _ => {}
    }
}
