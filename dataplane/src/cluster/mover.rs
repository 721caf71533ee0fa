//! The mover: a plain thread (not a shard) that streams moving slots' keys from this node
//! to their new owner, one slot at a time, when the control plane orders it
//! (`pinion_control::moves`). It speaks RESP to this node and to the new owner, as
//! `redis-cli --cluster reshard` does, with the internal commands of `cache/migrate.rs`.
//!
//! Per slot (scheme: the slot is frozen while its keys stream, then redirected):
//! 1. mark the slot frozen node-wide (`moving.rs`), then `FREEZE` it on its shard: from
//!    here commands for it get TRYAGAIN (redis-py and other cluster clients retry);
//! 2. `BEGIN` on the new owner (drops what a failed earlier attempt left there);
//! 3. `TAKE` batches of keys and `MOVEIN` each batch to the new owner, pipelined;
//! 4. `GONE host:port`: the shard deletes the slot's keys and answers `-ASK` for it from
//!    now on; the node-wide bits follow. The new owner serves the slot after ASKING until
//!    the 2PC commit flips the map, and as its owner after.
//!
//! A write is never lost: before the freeze it lands here and is streamed; during it, it
//! is refused (TRYAGAIN); after it, it is redirected (ASK) to the new owner. On a failure
//! the slot is reopened (`OPEN`): its keys never left, and the control plane keeps it with
//! this node. Reports go back to the membership thread, which sends them on.
//!
//! Test hook: with `PINION_TEST_MOVE_HOLD=<file>` and `PINION_TEST_MOVE_HOLD_AFTER=<n>`,
//! once `n` slots have moved while `<file>` exists, the mover waits while it exists
//! (before freezing the next slot), so a test can look at a move half done.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

use pinion_control::moves::{Order, Unit};

use super::view::split_addr;
use super::Cluster;
use crate::cache::slot::{key_slot, SLOTS};
use crate::limits::{MOVE_IO_TIMEOUT_MS, MOVE_REPLY_BYTES_MAX, MOVE_TAKE_BYTES, MOVE_TAKE_KEYS};
use crate::mesh::SlotTable;

/// Reports after this many slots of an order (and at its end).
const REPORT_EVERY: usize = 32;

/// A report on an order, for the control plane.
#[derive(Debug)]
pub struct Report {
    pub id: u64,
    pub done: Vec<Unit>,
    pub failed: Vec<Unit>,
    pub last: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}: {1}")]
    Refused(String, String),
    #[error("a bad reply: {0}")]
    Protocol(String),
}

/// One RESP reply.
#[derive(Debug, PartialEq)]
enum Reply {
    Ok(Vec<u8>),
    Err(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

/// A blocking RESP client for the mover.
struct Client {
    addr: String,
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: &str, password: Option<&str>) -> Result<Client, MoveError> {
        let sa = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::other(format!("{addr}: no address")))?;
        let t = Duration::from_millis(MOVE_IO_TIMEOUT_MS);
        let w = TcpStream::connect_timeout(&sa, t)?;
        w.set_nodelay(true)?;
        w.set_read_timeout(Some(t))?;
        w.set_write_timeout(Some(t))?;
        let r = BufReader::new(w.try_clone()?);
        let mut c = Client {
            addr: addr.to_string(),
            w,
            r,
        };
        if let Some(p) = password {
            c.call(&[b"AUTH", p.as_bytes()])?;
        }
        Ok(c)
    }

    fn encode(buf: &mut Vec<u8>, args: &[&[u8]]) {
        buf.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            buf.extend_from_slice(a);
            buf.extend_from_slice(b"\r\n");
        }
    }

    /// Sends one command and reads its reply; an error reply is an error.
    fn call(&mut self, args: &[&[u8]]) -> Result<Reply, MoveError> {
        let mut buf = Vec::new();
        Self::encode(&mut buf, args);
        self.w.write_all(&buf)?;
        match self.read()? {
            Reply::Err(e) => Err(MoveError::Refused(self.addr.clone(), e)),
            r => Ok(r),
        }
    }

    fn line(&mut self) -> Result<Vec<u8>, MoveError> {
        let mut l = Vec::new();
        (&mut self.r)
            .take(MOVE_REPLY_BYTES_MAX as u64)
            .read_until(b'\n', &mut l)?;
        if !l.ends_with(b"\r\n") {
            return Err(MoveError::Protocol("a line without CRLF".into()));
        }
        l.truncate(l.len() - 2);
        Ok(l)
    }

    fn read(&mut self) -> Result<Reply, MoveError> {
        let l = self.line()?;
        let Some((&t, rest)) = l.split_first() else {
            return Err(MoveError::Protocol("an empty line".into()));
        };
        let num = |b: &[u8]| -> Result<i64, MoveError> {
            std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| MoveError::Protocol("a bad number".into()))
        };
        Ok(match t {
            b'+' => Reply::Ok(rest.to_vec()),
            b'-' => Reply::Err(String::from_utf8_lossy(rest).into_owned()),
            b':' => Reply::Int(num(rest)?),
            b'$' => {
                let n = num(rest)?;
                if n < 0 {
                    return Ok(Reply::Bulk(None));
                }
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                if n > MOVE_REPLY_BYTES_MAX {
                    return Err(MoveError::Protocol(format!("a bulk of {n} bytes")));
                }
                let mut b = vec![0u8; n + 2];
                self.r.read_exact(&mut b)?;
                b.truncate(n);
                Reply::Bulk(Some(b))
            }
            b'*' => {
                let n = num(rest)?;
                let n = usize::try_from(n).unwrap_or(0);
                if n > MOVE_REPLY_BYTES_MAX {
                    return Err(MoveError::Protocol(format!("an array of {n}")));
                }
                let mut v = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    v.push(self.read()?);
                }
                Reply::Array(v)
            }
            _ => return Err(MoveError::Protocol(format!("type byte {t}"))),
        })
    }
}

/// For each slot, a key of it (`{n}` for the smallest n whose slot it is).
fn slot_tags() -> Vec<String> {
    let mut tags = vec![String::new(); SLOTS];
    let mut left = SLOTS;
    let mut n: u64 = 0;
    while left > 0 {
        let t = format!("{{{n}}}");
        let s = usize::from(key_slot(t.as_bytes()));
        if tags[s].is_empty() {
            tags[s] = t;
            left -= 1;
        }
        n += 1;
    }
    tags
}

/// The mover's settings.
pub struct MoverArgs {
    /// This node's RESP address (where its own keys are taken).
    pub own: String,
    pub password: Option<String>,
    pub cluster: Arc<Cluster>,
    pub stop: Arc<AtomicBool>,
}

/// The test hook: (file, slots to move before holding).
fn hold_hook() -> Option<(std::path::PathBuf, usize)> {
    let f = std::env::var_os("PINION_TEST_MOVE_HOLD")?;
    let n = std::env::var("PINION_TEST_MOVE_HOLD_AFTER")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Some((f.into(), n))
}

/// Runs orders from `orders` until `stop` or the sender is gone; reports on `reports`.
pub fn run(args: MoverArgs, orders: Receiver<Order>, reports: Sender<Report>) {
    let tags = slot_tags();
    let hold = hold_hook();
    // Slots moved while the test hook's file exists.
    let mut held_moves = 0usize;
    let mut own: Option<Client> = None;
    let mut peer: Option<Client> = None;
    while !args.stop.load(Ordering::Relaxed) {
        let order = match orders.recv_timeout(Duration::from_millis(200)) {
            Ok(o) => o,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let table = SlotTable::new(usize::from(order.to.shards.max(1)));
        let mut done = Vec::new();
        let mut failed = Vec::new();
        let mut since_report = 0;
        tracing::info!(
            order = order.id,
            to = order.to.node,
            units = order.units.len(),
            "moving slots"
        );
        for unit in &order.units {
            let Unit::Slot(slot) = unit else {
                // Log partitions move by the new owner pulling them (`log/pull/`): not here.
                failed.push(unit.clone());
                continue;
            };
            if args.stop.load(Ordering::Relaxed) {
                failed.push(unit.clone());
                continue;
            }
            if let Some((file, after)) = &hold {
                if file.exists() && held_moves >= *after {
                    while file.exists() && !args.stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            }
            let holding = hold.as_ref().is_some_and(|(f, _)| f.exists());
            let shard = table.shard(*slot);
            let endpoint = order
                .to
                .shard_endpoints
                .get(shard)
                .cloned()
                .unwrap_or_else(|| order.to.resp_addr.clone());
            let r = move_slot(
                &args,
                &mut own,
                &mut peer,
                &tags[usize::from(*slot)],
                *slot,
                &endpoint,
            );
            match r {
                Ok(keys) => {
                    tracing::debug!(slot, keys, to = %endpoint, "slot moved");
                    if holding {
                        held_moves += 1;
                    }
                    done.push(unit.clone());
                }
                Err(e) => {
                    tracing::warn!(slot, to = %endpoint, "moving a slot failed: {e}; it stays here");
                    failed.push(unit.clone());
                    own = None;
                    peer = None;
                }
            }
            since_report += 1;
            if since_report >= REPORT_EVERY {
                since_report = 0;
                let r = Report {
                    id: order.id,
                    done: std::mem::take(&mut done),
                    failed: std::mem::take(&mut failed),
                    last: false,
                };
                if reports.send(r).is_err() {
                    return;
                }
            }
        }
        let r = Report {
            id: order.id,
            done,
            failed,
            last: true,
        };
        if reports.send(r).is_err() {
            return;
        }
    }
}

/// A client to `addr`, the one in `slot` when it is there and alive.
fn client<'a>(
    slot: &'a mut Option<Client>,
    addr: &str,
    password: Option<&str>,
) -> Result<&'a mut Client, MoveError> {
    if slot.as_ref().is_none_or(|c| c.addr != addr) {
        *slot = Some(Client::connect(addr, password)?);
    }
    Ok(slot.as_mut().expect("filled above"))
}

/// Moves one slot; the number of keys moved.
fn move_slot(
    args: &MoverArgs,
    own: &mut Option<Client>,
    peer: &mut Option<Client>,
    tag: &str,
    slot: u16,
    endpoint: &str,
) -> Result<usize, MoveError> {
    let pw = args.password.as_deref();
    let tag = tag.as_bytes();
    let cmd = b"PINION.MOVESLOT".as_slice();
    args.cluster.edit_moves(|m| m.frozen.set(slot, true));
    let frozen = client(own, &args.own, pw).and_then(|c| c.call(&[cmd, tag, b"FREEZE"]));
    match frozen {
        Ok(_) => {}
        Err(MoveError::Refused(_, e)) if e.strip_prefix("GONE ") == Some(endpoint) => {
            // Handed over already (an earlier attempt whose change did not commit).
            let (host, port) = split_addr(endpoint);
            args.cluster.edit_moves(|m| {
                m.frozen.set(slot, false);
                m.set_gone(slot, Some((host, port)));
            });
            return Ok(0);
        }
        Err(e) => {
            args.cluster.edit_moves(|m| m.frozen.set(slot, false));
            return Err(e);
        }
    }
    match stream(args, own, peer, tag, endpoint) {
        Ok(n) => {
            let (host, port) = split_addr(endpoint);
            args.cluster.edit_moves(|m| {
                m.frozen.set(slot, false);
                m.set_gone(slot, Some((host, port)));
            });
            Ok(n)
        }
        Err(e) => {
            // The keys never left: reopen the slot here (a fresh connection if need be).
            *own = None;
            if let Ok(c) = client(own, &args.own, pw) {
                if let Err(e) = c.call(&[cmd, tag, b"OPEN"]) {
                    tracing::error!(slot, "reopening a slot after a failed move: {e}");
                }
            }
            args.cluster.edit_moves(|m| m.frozen.set(slot, false));
            Err(e)
        }
    }
}

/// Steps 2–4 for a frozen slot.
fn stream(
    args: &MoverArgs,
    own: &mut Option<Client>,
    peer: &mut Option<Client>,
    tag: &[u8],
    endpoint: &str,
) -> Result<usize, MoveError> {
    let pw = args.password.as_deref();
    let cmd = b"PINION.MOVESLOT".as_slice();
    client(peer, endpoint, pw)?.call(&[cmd, tag, b"BEGIN"])?;
    let (keys, bytes) = (MOVE_TAKE_KEYS.to_string(), MOVE_TAKE_BYTES.to_string());
    let mut moved = 0;
    loop {
        let batch = client(own, &args.own, pw)?.call(&[
            cmd,
            tag,
            b"TAKE",
            keys.as_bytes(),
            bytes.as_bytes(),
        ])?;
        let Reply::Array(items) = batch else {
            return Err(MoveError::Protocol("TAKE did not answer an array".into()));
        };
        if items.is_empty() {
            break;
        }
        let mut buf = Vec::new();
        let mut n = 0;
        for t in items.chunks(3) {
            let [Reply::Bulk(Some(k)), Reply::Int(pttl), Reply::Bulk(Some(p))] = t else {
                return Err(MoveError::Protocol("TAKE gave a bad triple".into()));
            };
            let pttl = pttl.to_string();
            Client::encode(&mut buf, &[b"PINION.MOVEIN", k, pttl.as_bytes(), p]);
            n += 1;
        }
        let c = client(peer, endpoint, pw)?;
        c.w.write_all(&buf)?;
        for _ in 0..n {
            if let Reply::Err(e) = c.read()? {
                return Err(MoveError::Refused(endpoint.to_string(), e));
            }
        }
        moved += n;
    }
    let (host, port) = split_addr(endpoint);
    let port = port.to_string();
    client(own, &args.own, pw)?.call(&[cmd, tag, b"GONE", host.as_bytes(), port.as_bytes()])?;
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_slot_gets_a_tag_of_its_own() {
        let tags = slot_tags();
        for (s, t) in tags.iter().enumerate() {
            assert_eq!(usize::from(key_slot(t.as_bytes())), s, "{t}");
        }
    }
}
