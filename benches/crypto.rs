//! Micro-benchmarks of the per-message crypto: NaCl box seal/open by payload size (with a
//! cached shared key and with a fresh key exchange), E2E padding, and the callback MAC.
//!
//! ```sh
//! cargo bench --bench crypto
//! ```

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tocsin_sdk::crypto::{open, seal, SharedKey};
use tocsin_sdk::protocol::{
    callback_mac, decode_container, encode_container, ApiSecret, CallbackFields, KeyPair, Nonce,
};

const SIZES: [usize; 3] = [64, 1024, 4096];

fn boxes(c: &mut Criterion) {
    let (alice, bob) = (KeyPair::generate(), KeyPair::generate());
    let shared = SharedKey::new(&alice.secret, &bob.public).unwrap();
    let nonce = Nonce::random();
    let mut group = c.benchmark_group("box");
    for size in SIZES {
        let plaintext = vec![0x42u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(
            BenchmarkId::new("seal_cached_key", size),
            &plaintext,
            |b, p| {
                b.iter(|| shared.seal(&nonce, black_box(p)));
            },
        );
        group.bench_with_input(
            BenchmarkId::new("seal_with_key_exchange", size),
            &plaintext,
            |b, p| {
                b.iter(|| seal(&alice.secret, &bob.public, &nonce, black_box(p)).unwrap());
            },
        );
        let sealed = shared.seal(&nonce, &plaintext);
        group.bench_with_input(
            BenchmarkId::new("open_cached_key", size),
            &sealed,
            |b, s| {
                b.iter(|| shared.open(&nonce, black_box(s)).unwrap());
            },
        );
        group.bench_with_input(
            BenchmarkId::new("open_with_key_exchange", size),
            &sealed,
            |b, s| {
                b.iter(|| open(&bob.secret, &alice.public, &nonce, black_box(s)).unwrap());
            },
        );
    }
    group.finish();
}

fn padding(c: &mut Criterion) {
    let body = vec![b'x'; 200];
    c.bench_function("container/encode_200B", |b| {
        b.iter(|| encode_container(1, black_box(&body)))
    });
    let container = encode_container(1, &body);
    c.bench_function("container/decode_200B", |b| {
        b.iter(|| decode_container(black_box(&container)).unwrap());
    });
}

fn mac(c: &mut Criterion) {
    let secret = ApiSecret::parse("nevergonnagiveyouup").unwrap();
    let box_hex = "ab".repeat(200);
    let nonce = "ff".repeat(24);
    let fields = CallbackFields {
        from: "ECHOECHO",
        to: "*TESTTST",
        message_id: "0102030405060708",
        date: "1616950936",
        nonce: &nonce,
        box_hex: &box_hex,
    };
    c.bench_function("callback_mac/200B_box", |b| {
        b.iter(|| callback_mac(&secret, black_box(&fields)))
    });
}

criterion_group!(benches, boxes, padding, mac);
criterion_main!(benches);
