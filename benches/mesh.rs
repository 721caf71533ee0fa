//! The mesh lane: a message's round trip between two threads (ping-pong through a pair of
//! `ArrayQueue` lanes, both sides spinning), and push+pop cost on one thread. This is the
//! bench the runtime issue asks to keep: it decides whether a hand-written SPSC ring is
//! worth having over crossbeam's queue used single-producer/single-consumer.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use crossbeam_queue::ArrayQueue;

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

criterion_group!(benches, hop);
criterion_main!(benches);
