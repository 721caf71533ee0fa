//! etcd itself, through the `etcd-client` crate: the connection and its runtime, the log's
//! operations ([`EtcdKv`], the [`LogKv`] seam), and the election ([`Election`]).
//!
//! The election, one *term* at a time: grant a lease (`LEADER_LEASE_TTL_S`) and renew it
//! every `LEADER_KEEPALIVE_MS` from its own task; then, in one transaction, create the
//! leader key attached to the lease if it does not exist, else read who holds it. A standby
//! watches the key until it is deleted (and looks again every TTL in any case). The
//! leader holds the key until its lease runs out: it counts the lease alive until the
//! send time of its last answered renewal plus the TTL etcd granted, which is never later
//! than etcd's own expiry, and when that passes it is deposed (`on_deposed`). An etcd error
//! ends a standby's term, which starts again after `ETCD_RETRY_MS`.
//!
//! Every request is bounded by `ETCD_REQUEST_TIMEOUT_MS`.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType, GetOptions, PutOptions,
    Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::log::{log_prefix, record_key, LogKv};
use super::EtcdConfig;
use crate::limits::{
    ETCD_REQUEST_TIMEOUT_MS, ETCD_RETRY_MS, LEADER_KEEPALIVE_MS, LEADER_LEASE_TTL_S,
};
use crate::store::StoreError;

fn request_timeout() -> Duration {
    Duration::from_millis(ETCD_REQUEST_TIMEOUT_MS)
}

fn lease_ttl() -> Duration {
    Duration::from_secs(LEADER_LEASE_TTL_S as u64)
}

/// Runs one etcd request with the request bound.
async fn bounded<T>(
    what: &str,
    f: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(request_timeout(), f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(StoreError::Etcd(format!("{what}: {e}"))),
        Err(_) => Err(StoreError::Etcd(format!(
            "{what}: no answer in {ETCD_REQUEST_TIMEOUT_MS} ms"
        ))),
    }
}

/// Loads every key under `prefix` with its value, in key order: the keys first, then each
/// value on its own at the same revision (a whole log in one answer could pass gRPC's
/// message bound; one record cannot, `ETCD_RECORD_BYTES_MAX`).
async fn load_prefix(
    client: &mut Client,
    prefix: &str,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let keys = bounded(
        "load the log",
        client.get(
            prefix,
            Some(GetOptions::new().with_prefix().with_keys_only()),
        ),
    )
    .await?;
    let rev = keys.header().map_or(0, |h| h.revision());
    let mut out = Vec::with_capacity(keys.kvs().len());
    for kv in keys.kvs() {
        let key = String::from_utf8_lossy(kv.key()).into_owned();
        let got = bounded(
            "load a record",
            client.get(kv.key(), Some(GetOptions::new().with_revision(rev))),
        )
        .await?;
        let value = got.kvs().first().map(|kv| kv.value().to_vec());
        out.push((key, value.unwrap_or_default()));
    }
    Ok(out)
}

/// The connection to etcd and the runtime its client runs on.
pub struct Etcd {
    rt: Runtime,
    client: Client,
    pub cfg: EtcdConfig,
}

impl Etcd {
    /// Starts the runtime and the client. etcd need not be up yet: requests fail (and are
    /// retried by the election) until it is.
    pub fn connect(cfg: EtcdConfig) -> anyhow::Result<Etcd> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("etcd")
            .enable_all()
            .build()?;
        let opts = ConnectOptions::new()
            .with_connect_timeout(request_timeout())
            .with_timeout(request_timeout())
            .with_keep_alive(
                Duration::from_millis(LEADER_KEEPALIVE_MS),
                request_timeout(),
            );
        let client = rt
            .block_on(Client::connect(cfg.endpoints.clone(), Some(opts)))
            .map_err(|e| anyhow::anyhow!("{}: {e}", cfg.describe()))?;
        Ok(Etcd { rt, client, cfg })
    }

    /// The log as etcd has it now, for a standby's read-only answers.
    pub fn load(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut client = self.client.clone();
        self.rt
            .block_on(load_prefix(&mut client, &log_prefix(&self.cfg.prefix)))
    }

    /// The log's operations for the leader that holds `fence`.
    pub fn kv(&self, fence: Fence) -> EtcdKv {
        EtcdKv {
            rt: self.rt.handle().clone(),
            client: self.client.clone(),
            cfg: self.cfg.clone(),
            fence,
        }
    }

    /// Starts campaigning for the leader key under the address `me`. `on_deposed` runs
    /// once, when this process led and its lease ran out.
    pub fn campaign(&self, me: String, on_deposed: Box<dyn FnOnce() + Send>) -> Arc<Election> {
        let el = Arc::new(Election {
            state: Mutex::new(State {
                role: Role::Standby { leader: None },
                lease: None,
            }),
        });
        let task = campaign(
            self.client.clone(),
            self.cfg.clone(),
            me,
            el.clone(),
            on_deposed,
        );
        self.rt.spawn(task);
        el
    }

    /// Revokes this process's lease (so a standby need not wait for it to expire), on a
    /// clean stop. Best effort: an error leaves the lease to expire.
    pub fn resign(&self, el: &Election) {
        let Some(lease) = el.state.lock().expect("not poisoned").lease.take() else {
            return;
        };
        let mut client = self.client.clone();
        match self
            .rt
            .block_on(bounded("revoke the lease", client.lease_revoke(lease)))
        {
            Ok(_) => info!("revoked the etcd lease"),
            Err(e) => warn!("{e}; the lease expires in {LEADER_LEASE_TTL_S} s"),
        }
    }
}

/// What this process is in the election.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Another process leads (`leader`: its address, once known).
    Standby {
        leader: Option<String>,
    },
    Leader(Fence),
}

/// The proof of leadership that every write is conditioned on: the leader key's create
/// revision. The key exists with it only while this process's lease lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fence {
    pub lease: i64,
    pub revision: i64,
}

struct State {
    role: Role,
    lease: Option<i64>,
}

/// The election's state, shared by its task and the serving thread.
pub struct Election {
    state: Mutex<State>,
}

impl Election {
    pub fn role(&self) -> Role {
        self.state.lock().expect("not poisoned").role.clone()
    }

    fn set(&self, role: Role) -> bool {
        let mut s = self.state.lock().expect("not poisoned");
        let changed = s.role != role;
        s.role = role;
        changed
    }
}

/// Aborts a task when dropped (a term's renewals end with the term).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn campaign(
    mut client: Client,
    cfg: EtcdConfig,
    me: String,
    el: Arc<Election>,
    on_deposed: Box<dyn FnOnce() + Send>,
) {
    loop {
        match term(&mut client, &cfg, &me, &el).await {
            Ok(()) => {
                on_deposed();
                return;
            }
            Err(e) => {
                warn!("{e}; trying again in {ETCD_RETRY_MS} ms");
                el.set(Role::Standby { leader: None });
                tokio::time::sleep(Duration::from_millis(ETCD_RETRY_MS)).await;
            }
        }
    }
}

/// One lease's life. `Ok`: this process led and its lease ran out. `Err`: an etcd error
/// while standing by (a new term starts).
async fn term(
    client: &mut Client,
    cfg: &EtcdConfig,
    me: &str,
    el: &Election,
) -> Result<(), StoreError> {
    // The lease runs from when etcd grants it, which is after this.
    let asked = Instant::now();
    let granted = bounded(
        "grant a lease",
        client.lease_grant(LEADER_LEASE_TTL_S, None),
    )
    .await?;
    let lease = granted.id();
    el.state.lock().expect("not poisoned").lease = Some(lease);
    let ttl = Duration::from_secs(granted.ttl().max(0) as u64);
    let alive_until = Arc::new(Mutex::new(asked + ttl));
    let _renewer = AbortOnDrop(tokio::spawn(renew(
        client.clone(),
        lease,
        alive_until.clone(),
    )));
    let expired = || Instant::now() >= *alive_until.lock().expect("not poisoned");
    let key = cfg.leader_key();
    let fence = loop {
        if expired() {
            return Err(StoreError::Etcd(format!(
                "lease {lease:x} could not be renewed"
            )));
        }
        let txn = Txn::new()
            .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key.as_str(),
                me,
                Some(PutOptions::new().with_lease(lease)),
            )])
            .or_else([TxnOp::get(key.as_str(), None)]);
        let r = bounded("create the leader key", client.txn(txn)).await?;
        let rev = r.header().map_or(0, |h| h.revision());
        if r.succeeded() {
            break Fence {
                lease,
                revision: rev,
            };
        }
        let holder = r.op_responses().into_iter().find_map(|o| match o {
            TxnOpResponse::Get(g) => g
                .kvs()
                .first()
                .map(|kv| String::from_utf8_lossy(kv.value()).into_owned()),
            _ => None,
        });
        if el.set(Role::Standby {
            leader: holder.clone(),
        }) {
            info!(
                leader = holder.as_deref().unwrap_or("?"),
                "standing by: another control plane leads"
            );
        }
        // Wait for the key to go; look again after a TTL whatever the watch says.
        let mut watch = bounded(
            "watch the leader key",
            client.watch(
                key.as_str(),
                Some(WatchOptions::new().with_start_revision(rev + 1)),
            ),
        )
        .await?;
        let until = tokio::time::Instant::now() + lease_ttl();
        loop {
            match tokio::time::timeout_at(until, watch.message()).await {
                Err(_) | Ok(Ok(None)) => break,
                Ok(Err(e)) => return Err(StoreError::Etcd(format!("watch: {e}"))),
                Ok(Ok(Some(w))) => {
                    if w.canceled()
                        || w.events()
                            .iter()
                            .any(|e| e.event_type() == EventType::Delete)
                    {
                        break;
                    }
                }
            }
        }
    };
    el.set(Role::Leader(fence));
    info!(
        lease = format_args!("{lease:x}"),
        revision = fence.revision,
        "elected: this control plane holds the leader key"
    );
    let check = Duration::from_millis(LEADER_KEEPALIVE_MS / 10);
    while !expired() {
        tokio::time::sleep(check).await;
    }
    warn!("lost the etcd lease: stopping coordination");
    Ok(())
}

/// Renews the lease until it is gone, moving `alive_until` forward on each answer.
async fn renew(mut client: Client, lease: i64, alive_until: Arc<Mutex<Instant>>) {
    let every = Duration::from_millis(LEADER_KEEPALIVE_MS);
    loop {
        let (mut keeper, mut stream) =
            match bounded("renew the lease", client.lease_keep_alive(lease)).await {
                Ok(s) => s,
                Err(e) => {
                    warn!("{e}");
                    tokio::time::sleep(every).await;
                    continue;
                }
            };
        loop {
            let sent = Instant::now();
            let answer = tokio::time::timeout(request_timeout(), async {
                keeper.keep_alive().await?;
                stream.message().await
            })
            .await;
            match answer {
                Ok(Ok(Some(r))) if r.ttl() > 0 => {
                    *alive_until.lock().expect("not poisoned") =
                        sent + Duration::from_secs(r.ttl() as u64);
                }
                Ok(Ok(Some(_))) => {
                    // etcd says the lease is gone.
                    *alive_until.lock().expect("not poisoned") = sent;
                    return;
                }
                // The stream broke or is slow: open a new one.
                Ok(Ok(None)) | Ok(Err(_)) | Err(_) => break,
            }
            tokio::time::sleep(every).await;
        }
        tokio::time::sleep(every).await;
    }
}

/// The log's operations against etcd, each fenced by the leader key.
pub struct EtcdKv {
    rt: tokio::runtime::Handle,
    client: Client,
    cfg: EtcdConfig,
    fence: Fence,
}

impl EtcdKv {
    fn fenced_txn(&mut self, what: &str, seq: u64, ops: Vec<TxnOp>) -> Result<bool, StoreError> {
        let key = record_key(&self.cfg.prefix, seq);
        let txn = Txn::new()
            .when([
                Compare::create_revision(
                    self.cfg.leader_key(),
                    CompareOp::Equal,
                    self.fence.revision,
                ),
                Compare::create_revision(key, CompareOp::Equal, 0),
            ])
            .and_then(ops);
        let mut client = self.client.clone();
        let r = self.rt.block_on(bounded(what, client.txn(txn)))?;
        Ok(r.succeeded())
    }
}

impl LogKv for EtcdKv {
    fn load(&mut self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut client = self.client.clone();
        self.rt
            .block_on(load_prefix(&mut client, &log_prefix(&self.cfg.prefix)))
    }

    fn append(&mut self, seq: u64, value: Vec<u8>) -> Result<bool, StoreError> {
        let key = record_key(&self.cfg.prefix, seq);
        self.fenced_txn("append", seq, vec![TxnOp::put(key, value, None)])
    }

    fn replace(&mut self, seq: u64, value: Vec<u8>) -> Result<bool, StoreError> {
        let key = record_key(&self.cfg.prefix, seq);
        let older = DeleteOptions::new().with_range(key.as_str());
        let ops = vec![
            TxnOp::delete(log_prefix(&self.cfg.prefix), Some(older)),
            TxnOp::put(key, value, None),
        ];
        self.fenced_txn("compact", seq, ops)
    }

    fn describe(&self) -> String {
        format!("{}, leading", self.cfg.describe())
    }
}
