//! RESP decoder throughput: pipelined SET requests, as redis-benchmark sends them.

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rockslot::resp::{Decoder, Limits};

fn pipeline(n: usize, value: usize) -> Vec<u8> {
    let v = "x".repeat(value);
    let mut out = Vec::new();
    for i in 0..n {
        let k = format!("key:{i:012}");
        out.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n${}\r\n{v}\r\n",
                k.len(),
                v.len()
            )
            .as_bytes(),
        );
    }
    out
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("resp_decode");
    for value in [3usize, 1024] {
        let input = pipeline(1000, value);
        g.throughput(Throughput::Elements(1000));
        g.bench_function(format!("set_pipeline_1000_value_{value}"), |b| {
            b.iter(|| {
                let mut d = Decoder::new(Limits::default());
                let mut buf = BytesMut::from(&input[..]);
                let mut n = 0;
                while let Ok(Some(args)) = d.decode(&mut buf, true) {
                    n += args.len();
                }
                assert_eq!(n, 3000);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
