//! Median of a check of a valid token (`redis/check_valid`, one round trip)
//! and of a renewal (`redis/renew`) on Redis, through the same `BenchBed` as
//! the other stores. Needs a Redis at `TESSERA_TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379`); prints `SKIPPED` and measures nothing without
//! one. Writes under a fresh prefix and deletes it afterwards.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use tessera_core::bench_bed;
use tessera_core::testkit::{bench_runtime, BenchBed};
use tessera_redis::RedisStore;

fn bench(c: &mut Criterion) {
    let rt = bench_runtime();
    // Measures nothing, but fails nothing, without a server: xtask's table
    // then shows n/a.
    let Some((bed, prefix)) = rt.block_on(async {
        let prefix = match common::RedisPrefix::try_reserve("bench").await {
            Ok(p) => p,
            Err(e) => {
                println!("SKIPPED: {e}");
                return None;
            }
        };
        match RedisStore::connect(common::config(&prefix)).await {
            Ok(store) => Some((BenchBed::new(Arc::new(store)).await, prefix)),
            Err(e) => {
                println!("SKIPPED: Redis at {} unreachable: {e}", prefix.url());
                None
            }
        }
    }) else {
        return;
    };
    bench_bed!(c, "redis", &rt, &bed);
    drop(bed);
    // Its keys go with it.
    drop(prefix);
}

criterion_group!(benches, bench);
criterion_main!(benches);
