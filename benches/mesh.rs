//! The mesh. `mesh_lane`: a lane's own cost (push+pop on one thread, and a round trip
//! between two threads, both spinning). `mesh_batch`: what moving k remote GETs to another
//! shard and their replies back costs *per part*, through the node's own batched
//! `mesh::Endpoint`: the frames go into one request batch (one lane push), the owner
//! encodes each reply into one reply batch (one push back). Criterion's
//! Throughput::Elements(k) reports the time per part for k = 1, 16 and 64. Doorbells are
//! left out: the node rings once per peer per loop turn either way.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use crossbeam_queue::ArrayQueue;
use pinion::mesh::{Endpoint, Mesh, Msg, Reply};
use pinion::txn::{ConnId, FlightRef, PartRef};

/// A GET of a 16-byte key, as redis-benchmark and pinion-bench send it.
const GET_FRAME: &[u8] = b"*2\r\n$3\r\nGET\r\n$16\r\nkey:000000012345\r\n";
/// Its reply: a 64-byte value.
const REPLY: &[u8] = b"$64\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n";
const LANE_CAPACITY: usize = 4096;
const BATCH_PARTS: [usize; 3] = [1, 16, 64];

fn hop(c: &mut Criterion) {
    let mut g = c.benchmark_group("mesh_lane");
    g.throughput(Throughput::Elements(1));
    let q: ArrayQueue<u64> = ArrayQueue::new(4096);
    g.bench_function("push_pop_same_thread", |b| {
        b.iter(|| {
            let _ = q.push(7);
            q.pop()
        })
    });
    let there = Arc::new(ArrayQueue::<u64>::new(4096));
    let back = Arc::new(ArrayQueue::<u64>::new(4096));
    let stop = Arc::new(AtomicBool::new(false));
    let echo = {
        let (there, back, stop) = (there.clone(), back.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(v) = there.pop() {
                    while back.push(v).is_err() {}
                } else {
                    std::hint::spin_loop();
                }
            }
        })
    };
    g.bench_function("round_trip_two_threads", |b| {
        b.iter(|| {
            while there.push(1).is_err() {}
            loop {
                if let Some(v) = back.pop() {
                    break v;
                }
                std::hint::spin_loop();
            }
        })
    });
    stop.store(true, Ordering::Relaxed);
    let _ = echo.join();
    g.finish();
}

/// The owner shard's side, as the node's mesh drain does for a forwarded command: take a
/// request batch when the reply lane back has room, encode each reply into the reply
/// batch, push it back once.
fn echo_owner(mut ep: Endpoint, from: usize, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let Some(mut batch) = ep.take_requests(from) else {
            std::hint::spin_loop();
            continue;
        };
        let sent = batch.sent;
        for m in batch.msgs.drain(..) {
            let Msg::Command { to, frame, .. } = m else {
                unreachable!("the bench sends commands only");
            };
            assert_eq!(&batch.bytes[frame], GET_FRAME);
            let replies = ep.replies(from, sent);
            let range = replies.add_bytes(REPLY);
            replies.msgs.push(Reply::Encoded { to, range });
        }
        ep.recycle_requests(batch);
        ep.flush(sent);
    }
}

fn batch(c: &mut Criterion) {
    let mut g = c.benchmark_group("mesh_batch");
    let now = Instant::now();
    let mesh = Mesh::new(2, LANE_CAPACITY);
    let mut origin = mesh.endpoint(0, now);
    let stop = Arc::new(AtomicBool::new(false));
    let owner = {
        let (ep, stop) = (mesh.endpoint(1, now), stop.clone());
        std::thread::spawn(move || echo_owner(ep, 0, &stop))
    };
    let conn = ConnId {
        shard: 0,
        slot: 7,
        gen: 1,
    };
    for k in BATCH_PARTS {
        // Per-element time is the cost per part: k requests out and k replies back.
        g.throughput(Throughput::Elements(k as u64));
        g.bench_with_input(BenchmarkId::new("parts", k), &k, |b, &k| {
            b.iter(|| {
                // One clock reading per loop turn, as the node does.
                let sent = Instant::now();
                let reqs = origin.requests(1, sent);
                for part in 0..k {
                    let frame = reqs.add_bytes(GET_FRAME);
                    let to = PartRef {
                        flight: FlightRef {
                            id: part as u32,
                            gen: 0,
                        },
                        part: 0,
                    };
                    reqs.msgs.push(Msg::Command {
                        to,
                        frame,
                        resp3: false,
                        origin: conn,
                        caller: None,
                    });
                }
                origin.flush(sent);
                let mut got = 0;
                let mut bytes = 0;
                while got < k {
                    match origin.take_replies(1) {
                        Some(mut batch) => {
                            for r in batch.msgs.drain(..) {
                                if let Reply::Encoded { range, .. } = r {
                                    bytes += batch.bytes[range].len();
                                }
                                got += 1;
                            }
                            origin.recycle_replies(batch);
                        }
                        None => std::hint::spin_loop(),
                    }
                }
                bytes
            })
        });
    }
    stop.store(true, Ordering::Relaxed);
    let _ = owner.join();
    g.finish();
}

criterion_group!(benches, hop, batch);
criterion_main!(benches);
