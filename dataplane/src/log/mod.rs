//! The durable log: Kafka `RecordBatch` v2 validation ([`batch`]) and partitions of
//! segment files with recovery and retention ([`partition`]). Each partition is owned by
//! one shard. The Kafka protocol front end and the io_uring append path build on this.

pub mod batch;
pub mod partition;
