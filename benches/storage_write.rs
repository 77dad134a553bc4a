//! The storage write path: SET through the keyspace (read-before-write, batch, counters) on a
//! real RocksDB in a temporary directory.

use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rockslot::keyspace::{Entry, Keyspace, Update};
use rockslot::storage::{Engine, EngineOptions};

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::open(&EngineOptions {
        dir: dir.path().to_path_buf(),
        block_cache_bytes: 64 << 20,
        write_buffer_bytes: 64 << 20,
        slots_per_family: 128,
        serving: (0..16384).collect(),
    })
    .expect("open");
    let ks = Keyspace::open(Arc::new(engine), 16).expect("keyspace");
    let value = Bytes::from(vec![b'x'; 100]);
    let mut g = c.benchmark_group("storage_write");
    g.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    g.bench_function("set_100b", |b| {
        b.iter(|| {
            i += 1;
            let key = format!("key:{}", i % 100_000);
            ks.update(key.as_bytes(), |_| {
                (Update::Put(Entry::string(value.clone())), ())
            })
            .expect("set");
        })
    });
    g.bench_function("get_hit", |b| {
        b.iter(|| {
            i += 1;
            let key = format!("key:{}", i % 100_000);
            ks.lookup(key.as_bytes()).expect("get");
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
