//! pinion-control: the cluster map, its placement, and map changes by two-phase commit.
//!
//! The state machines (`twopc/`) and placement are pure: no I/O, no clock reads. The server
//! (`server/`) drives them with sockets, a store (a write-ahead file, or etcd with standby
//! control planes: `etcd/`) and the wall clock; the seeded simulation (`sim.rs`) drives the
//! same code with a faulty network and crashes.

pub mod crashpoint;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod limits;
pub mod map;
pub mod moves;
pub mod placement;
pub mod server;
#[cfg(test)]
mod sim;
pub mod store;
pub mod twopc;
pub mod wire;
