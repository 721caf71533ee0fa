//! The log append path without I/O: validating a produced batch (CRC-32C over ~16 KiB) and
//! planning its append (offset assignment, index, segment roll decisions).
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use pinion::log::batch;
use pinion::log::partition::{Offsets, Partition};

fn append(c: &mut Criterion) {
    let values: Vec<Vec<u8>> = (0..16).map(|i| vec![b'a' + (i % 26) as u8; 1024]).collect();
    let refs: Vec<&[u8]> = values.iter().map(|v| v.as_slice()).collect();
    let b = batch::build(0, 1_700_000_000_000, &refs);
    let mut g = c.benchmark_group("log_append");
    g.throughput(Throughput::Bytes(b.len() as u64));
    g.bench_function("validate_16x1KiB_batch", |bench| {
        bench.iter(|| batch::validate(black_box(&b)).map(|h| h.size))
    });
    let dir = std::env::temp_dir().join(format!("pinion-bench-log-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (mut p, _) =
        Partition::recover(&dir, 1 << 40, u64::MAX, 0, Offsets::Dense).expect("temp partition");
    let h = batch::validate(&b).expect("valid batch");
    let mut bytes = b.clone();
    g.bench_function("plan_append_16x1KiB_batch", |bench| {
        bench.iter(|| p.plan_append(black_box(&mut bytes), &h, 0).base_offset)
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, append);
criterion_main!(benches);
