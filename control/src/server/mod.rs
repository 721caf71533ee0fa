//! `pinion-control serve`: the control plane's process.
//!
//! Threads: one core thread (`core.rs`) owns the coordinator, the store, placement and
//! every session, and is the only one that changes state; an acceptor thread; and per
//! connection a reader (here: handshake, MAC check, decode, forward to the core) and a
//! writer (seals and writes what the core or the reader queued). Connections are bounded
//! (`CONNECTIONS_MAX`), reads and writes have timeouts, and a peer that fails
//! authentication, sends a bad message, or registers as a node the map does not know is
//! logged and disconnected.

mod changes;
mod core;
#[cfg(feature = "etcd")]
mod ha;
pub mod msg;
mod topic_changes;
pub mod topics;

use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info, warn};

use crate::limits::{
    CONNECTIONS_MAX, HANDSHAKE_TIMEOUT_MS, IDLE_TIMEOUT_MS, OUTBOX_FRAMES_MAX, WRITE_TIMEOUT_MS,
};
use crate::store::{FileStore, Store};
use crate::wire::{self, Sealer, Side, WireError, NONCE_BYTES};
use msg::ClientMsg;

pub use self::core::Event;

/// What a connection's writer is asked to do.
pub enum OutMsg {
    /// A JSON payload to seal and send.
    Payload(Vec<u8>),
    /// Close the connection (after what was queued before).
    Close,
}

pub type Outbox = SyncSender<OutMsg>;

pub struct ServeArgs<'a> {
    pub listen: &'a str,
    pub data_dir: &'a Path,
    pub secret_file: &'a Path,
    pub store: &'a str,
}

/// Runs the control plane until its core fails (a store error stops it: a control plane
/// that cannot persist must not answer).
pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    if args.store.starts_with("etcd://") {
        #[cfg(feature = "etcd")]
        return ha::serve(args);
        #[cfg(not(feature = "etcd"))]
        anyhow::bail!(
            "--store {}: this pinion-control was built without the etcd feature",
            args.store
        );
    }
    if args.store != "file" {
        anyhow::bail!(
            "--store {}: expected file or etcd://HOST:PORT[,HOST:PORT...][/PREFIX]",
            args.store
        );
    }
    let secret = Arc::new(wire::read_secret(args.secret_file).map_err(anyhow::Error::msg)?);
    let store = FileStore::open(args.data_dir)?;
    if store.truncated_bytes > 0 {
        warn!(
            bytes = store.truncated_bytes,
            "cut a torn tail off the write-ahead file (an append that was never acknowledged)"
        );
    }
    let listener = TcpListener::bind(args.listen)
        .map_err(|e| anyhow::anyhow!("--listen {}: {e}", args.listen))?;
    let addr = listener.local_addr()?;
    let (tx, rx) = mpsc::channel::<Event>();
    let mut core = core::Core::start(Box::new(store) as Box<dyn Store>)?;
    info!(
        %addr,
        epoch = core.epoch(),
        store = %core.store_name(),
        "pinion-control listening"
    );
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
    std::thread::Builder::new()
        .name("accept".into())
        .spawn(move || accept_loop(listener, secret, tx))?;
    core.run(rx)?;
    Ok(())
}

fn accept_loop(listener: TcpListener, secret: Arc<Vec<u8>>, core: mpsc::Sender<Event>) {
    let open = Arc::new(AtomicUsize::new(0));
    let next_conn = AtomicU64::new(1);
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                warn!("accept: {e}");
                continue;
            }
        };
        let peer = stream
            .peer_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        if open.load(Ordering::Relaxed) >= CONNECTIONS_MAX {
            warn!(%peer, "refused: {CONNECTIONS_MAX} connections already open");
            continue;
        }
        open.fetch_add(1, Ordering::Relaxed);
        let conn = next_conn.fetch_add(1, Ordering::Relaxed);
        let (secret, core, open) = (secret.clone(), core.clone(), open.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("conn-{conn}"))
            .spawn(move || {
                if let Err(e) = serve_conn(stream, &secret, &core, conn, peer) {
                    debug!(%peer, "connection ended: {e}");
                }
                open.fetch_sub(1, Ordering::Relaxed);
            });
        if let Err(e) = spawned {
            warn!(%peer, "could not start a connection thread: {e}");
        }
    }
}

fn nonce() -> std::io::Result<[u8; NONCE_BYTES]> {
    let mut n = [0u8; NONCE_BYTES];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut n)?;
    Ok(n)
}

fn serve_conn(
    mut stream: TcpStream,
    secret: &[u8],
    core: &mpsc::Sender<Event>,
    conn: u64,
    peer: SocketAddr,
) -> Result<(), WireError> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_millis(HANDSHAKE_TIMEOUT_MS)))?;
    stream.set_write_timeout(Some(Duration::from_millis(WRITE_TIMEOUT_MS)))?;
    let nonce = nonce()?;
    stream.write_all(&nonce)?;
    let (out, out_rx) = mpsc::sync_channel::<OutMsg>(OUTBOX_FRAMES_MAX);
    let writer_stream = stream.try_clone()?;
    let sealer = Sealer::new(secret, nonce, Side::Server);
    std::thread::Builder::new()
        .name(format!("conn-{conn}-w"))
        .spawn(move || write_loop(writer_stream, sealer, out_rx))?;
    let mut inb = Sealer::new(secret, nonce, Side::Client);
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut node = None;
    let mut first = true;
    let result = loop {
        let body = match wire::read_frame(&mut reader) {
            Ok(b) => b,
            Err(WireError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break Ok(()),
            Err(e) => {
                warn!(%peer, "closing: {e}");
                break Err(e);
            }
        };
        let payload = match inb.open(&body) {
            Ok(p) => p,
            Err(e) => {
                warn!(%peer, "refused unauthenticated peer: {e}");
                break Err(e);
            }
        };
        if first {
            first = false;
            stream.set_read_timeout(Some(Duration::from_millis(IDLE_TIMEOUT_MS)))?;
        }
        let msg: ClientMsg = match serde_json::from_slice(payload) {
            Ok(m) => m,
            Err(e) => {
                warn!(%peer, "closing: bad message: {e}");
                let _ = out.try_send(OutMsg::Payload(msg::error_reply(&format!(
                    "bad message: {e}"
                ))));
                let _ = out.try_send(OutMsg::Close);
                // Let the writer send the error before the socket closes.
                drop(out);
                return Err(e.into());
            }
        };
        let ev = match msg {
            ClientMsg::Register {
                node: id,
                shards,
                resp_addr,
                kafka_addr,
                shard_endpoints,
                weight,
                moves,
            } => {
                node = Some(id);
                let join = resp_addr.map(|resp_addr| msg::Join {
                    kafka_addr: kafka_addr.unwrap_or_else(|| resp_addr.clone()),
                    resp_addr,
                    shard_endpoints,
                    weight: weight.unwrap_or(1),
                });
                Event::Register {
                    id,
                    shards,
                    moves,
                    join,
                    conn,
                    peer,
                    out: out.clone(),
                }
            }
            ClientMsg::Op { op } => Event::Op {
                op,
                out: out.clone(),
            },
            other => match node {
                Some(id) => Event::FromNode {
                    id,
                    conn,
                    msg: other,
                },
                None => {
                    warn!(%peer, "closing: a node message before register");
                    let _ = out.try_send(OutMsg::Payload(msg::error_reply("register first")));
                    let _ = out.try_send(OutMsg::Close);
                    drop(out);
                    return Ok(());
                }
            },
        };
        if core.send(ev).is_err() {
            break Ok(()); // the core has stopped
        }
    };
    if let Some(id) = node {
        let _ = core.send(Event::NodeDown { id, conn });
    }
    if result.is_err() {
        let _ = stream.shutdown(Shutdown::Both);
    }
    result
}

fn write_loop(mut stream: TcpStream, mut sealer: Sealer, rx: Receiver<OutMsg>) {
    for m in rx {
        match m {
            OutMsg::Payload(p) => {
                let f = sealer.seal(&p);
                if stream.write_all(&f).is_err() {
                    break;
                }
            }
            OutMsg::Close => break,
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}
