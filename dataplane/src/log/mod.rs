//! The durable log: Kafka `RecordBatch` v2 validation ([`batch`]), partitions of segment
//! files with recovery and retention ([`partition`]), topics ([`topics`]) and the operations
//! a partition's owner shard runs ([`ops`]). The shard's `logs` module carries out their
//! I/O through its io_uring.

pub mod batch;
pub mod ops;
pub mod partition;
pub mod topics;
