//! pinion: a thread-per-core io_uring data plane. See `docs/architecture.md`.

pub mod cache;
pub mod proto;
