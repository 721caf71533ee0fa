//! The cache: a shard's slots of the keyspace and the command semantics over them.
//!
//! Owned by one shard each; a shard's [`store::Store`] is never touched by another thread.
//! Lifecycle: created at shard start-up for the shard's slot range, dropped at shutdown.
//!
//! - [`store`]: the keyspace with TTLs, eviction and WATCH bookkeeping ([`watch`]);
//! - [`entry`]: one key's packed allocation; [`slot`]: key → slot; [`evict`]: eviction
//!   policies; [`glob`]: pattern matching;
//! - [`types`]: collection values (hash, list, set, sorted set) and their byte form;
//! - [`dump`]: a key as bytes, to carry it between shards;
//! - [`cmd`]: command semantics by family; [`op`]: what other shards and transactions ask a
//!   store to run.

pub mod cmd;
pub mod dump;
pub mod entry;
pub mod evict;
pub mod glob;
pub mod lazy_free;
pub mod migrate;
pub mod op;
pub mod slot;
pub mod store;
pub mod types;
pub mod watch;
