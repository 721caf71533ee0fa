//! pinion: a thread-per-core io_uring data plane. See `docs/architecture.md`.

pub mod cache;

/// Huge requests get lazily committed mappings: see `runtime::alloc` for why.
#[global_allocator]
static ALLOC: runtime::alloc::NodeAlloc = runtime::alloc::NodeAlloc;

pub mod config;
pub mod log;
pub mod mesh;
pub mod metrics;
pub mod proto;
pub mod runtime;
pub mod shard;
