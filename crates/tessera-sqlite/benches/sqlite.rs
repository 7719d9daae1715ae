//! Median of a check of a valid token and of a renewal on a SQLite file.
//! Run with `cargo xtask bench`.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use tessera_core::bench_bed;
use tessera_core::testkit::{bench_runtime, unique_suffix, BenchBed};
use tessera_sqlite::{SqliteConfig, SqliteStore};

fn bench(c: &mut Criterion) {
    let rt = bench_runtime();
    let dir = std::env::temp_dir().join(format!("tessera-sqlite-bench-{}", unique_suffix()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}", dir.join("tessera.db").display());
    let bed = rt.block_on(async {
        let store = SqliteStore::open(&SqliteConfig::new(url))
            .await
            .expect("open");
        BenchBed::new(Arc::new(store)).await
    });
    bench_bed!(c, "sqlite", &rt, &bed);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
