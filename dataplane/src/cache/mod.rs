//! The cache: a shard's slots of the keyspace and the command semantics over them.
//!
//! Owned by one shard each; a shard's [`store::Store`] is never touched by another thread.
//! Lifecycle: created at shard start-up for the shard's slot range, dropped at shutdown.

pub mod entry;
pub mod exec;
pub mod slot;
pub mod store;
