//! Cache get and set on one shard's store, 100k keys of 16 bytes with 32-byte values.
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use pinion::cache::entry::Entry;
use pinion::cache::slot::{key_slot, SLOTS};
use pinion::cache::store::{Found, Store};

fn cache(c: &mut Criterion) {
    let mut store = Store::new(0, SLOTS, 1);
    let keys: Vec<Vec<u8>> = (0..100_000)
        .map(|i| format!("key:{i:012}").into_bytes())
        .collect();
    let slots: Vec<u16> = keys.iter().map(|k| key_slot(k)).collect();
    let value = [b'v'; 32];
    for (k, &s) in keys.iter().zip(&slots) {
        store.put(s, Entry::string(k, &value, None, 0), 0);
    }
    let mut g = c.benchmark_group("cache");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("get_hit", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            matches!(store.read(slots[i], black_box(&keys[i]), 0), Found::Str(_))
        })
    });
    g.bench_function("set_overwrite", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            store.put(
                slots[i],
                Entry::string(&keys[i], black_box(&value), None, 0),
                0,
            )
        })
    });
    g.bench_function("key_slot_crc16", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            key_slot(black_box(&keys[i]))
        })
    });
    g.finish();
}

criterion_group!(benches, cache);
criterion_main!(benches);
