//! pinion: a thread-per-core io_uring data plane. `docs/architecture.md` is the map; the
//! folders are the architecture:
//!
//! - [`runtime`]: the io_uring layer, the only code that is not safe Rust;
//! - [`shard`]: the reactor (loop, connections, mesh drain, start-up, shutdown);
//! - [`mesh`]: lanes and batches between shards, and slot ownership;
//! - [`txn`]: the transaction framework every multi-shard operation runs through;
//! - [`redis`] and [`kafka`]: the front ends (what a request means);
//! - [`cache`] and [`log`]: the stores (a shard's keyspace; its log partitions and their
//!   I/O);
//! - [`script`]: Lua scripting (EVAL, FUNCTION) over a shard's keyspace;
//! - [`proto`]: the codecs; [`metrics`]; [`config`], [`limits`] and [`clock`]; [`datadir`]:
//!   one node per data directory; [`budget`]: what memory is spent on, and the limit;
//!   [`tls`]: rustls between a TLS connection's socket bytes and its protocol buffers.
//!   [`cluster`]: the cluster view, CLUSTER commands, MOVED, and membership (issue 12).

pub mod auth;
pub mod budget;
pub mod cache;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod datadir;
pub mod kafka;
pub mod limits;
pub mod log;
pub mod mesh;
pub mod metrics;
pub mod proto;
pub mod redis;
pub mod runtime;
pub mod script;
pub mod shard;
pub mod tls;
pub mod txn;
