//! pinion: a thread-per-core io_uring data plane. See `docs/architecture.md`.

pub mod cache;
pub mod config;
pub mod log;
pub mod mesh;
pub mod metrics;
pub mod proto;
pub mod runtime;
pub mod shard;
