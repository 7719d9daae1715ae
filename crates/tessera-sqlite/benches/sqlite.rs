//! Median of a check of a valid token and of a renewal on a SQLite file.
//! Run with `cargo xtask bench`.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use tessera_core::testkit::{unique_suffix, BenchBed};
use tessera_sqlite::{SqliteConfig, SqliteStore};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = std::env::temp_dir().join(format!("tessera-sqlite-bench-{}", unique_suffix()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}", dir.join("tessera.db").display());
    let bed = rt.block_on(async {
        let store = SqliteStore::open(&SqliteConfig::new(url))
            .await
            .expect("open");
        BenchBed::new(Arc::new(store)).await
    });
    let mut g = c.benchmark_group("sqlite");
    g.bench_function("check_valid", |b| {
        b.to_async(&rt).iter(|| bed.check_valid())
    });
    g.bench_function("renew", |b| b.to_async(&rt).iter(|| bed.renew()));
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
