//! RESP parse and write: the cost per request before any cache work.
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use pinion::proto::resp::parse::{parse, Limits};
use pinion::proto::resp::write::Out;

fn parse_bench(c: &mut Criterion) {
    let set = b"*3\r\n$3\r\nSET\r\n$16\r\nkey:000000012345\r\n$32\r\n01234567890123456789012345678901\r\n";
    let pipeline: Vec<u8> = set.iter().copied().cycle().take(set.len() * 16).collect();
    let limits = Limits::default();
    let mut args = Vec::new();
    let mut scratch = Vec::new();
    let mut g = c.benchmark_group("resp_parse");
    g.throughput(Throughput::Elements(1));
    g.bench_function("set_16b_key_32b_value", |b| {
        b.iter(|| parse(black_box(set), &limits, &mut args, &mut scratch).ok())
    });
    g.throughput(Throughput::Elements(16));
    g.bench_function("pipeline_of_16_sets", |b| {
        b.iter(|| {
            let mut pos = 0;
            while pos < pipeline.len() {
                match parse(
                    black_box(&pipeline[pos..]),
                    &limits,
                    &mut args,
                    &mut scratch,
                ) {
                    Ok(pinion::proto::resp::parse::Frame::Multibulk { consumed }) => {
                        pos += consumed
                    }
                    _ => break,
                }
            }
            pos
        })
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("inline_ping", |b| {
        b.iter(|| parse(black_box(b"PING\r\n"), &limits, &mut args, &mut scratch).ok())
    });
    g.finish();
}

fn write_bench(c: &mut Criterion) {
    let value = [b'x'; 32];
    let mut buf = Vec::with_capacity(1 << 16);
    let mut g = c.benchmark_group("resp_write");
    g.throughput(Throughput::Elements(1));
    g.bench_function("bulk_32b", |b| {
        b.iter(|| {
            buf.clear();
            Out::new(&mut buf, false).bulk(black_box(&value));
            buf.len()
        })
    });
    g.bench_function("integer", |b| {
        b.iter(|| {
            buf.clear();
            Out::new(&mut buf, false).int(black_box(1234567));
            buf.len()
        })
    });
    g.finish();
}

criterion_group!(benches, parse_bench, write_bench);
criterion_main!(benches);
