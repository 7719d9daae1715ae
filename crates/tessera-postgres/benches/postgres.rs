//! Median of a check of a valid token and of a renewal on PostgreSQL (a fresh
//! schema, dropped afterwards). SKIPPED when the server is unreachable.
//! Run with `cargo xtask bench`.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use tessera_core::bench_bed;
use tessera_core::testkit::{bench_runtime, BenchBed};
use tessera_postgres::{PostgresConfig, PostgresStore};
use tessera_testsupport::postgres::PgSchema;

fn bench(c: &mut Criterion) {
    let rt = bench_runtime();
    // Measures nothing, but fails nothing, without a server: xtask's table
    // then shows n/a.
    let Some((bed, schema)) = rt.block_on(async {
        let schema = match PgSchema::try_create("bench").await {
            Ok(s) => s,
            Err(e) => {
                println!("SKIPPED: {e}");
                return None;
            }
        };
        let config = PostgresConfig {
            schema: Some(schema.name().to_string()),
            ..PostgresConfig::new(schema.base_url())
        };
        match PostgresStore::open(&config).await {
            Ok(store) => Some((BenchBed::new(Arc::new(store)).await, schema)),
            Err(e) => {
                println!(
                    "SKIPPED: PostgreSQL at {} unreachable: {e}",
                    schema.base_url()
                );
                None
            }
        }
    }) else {
        return;
    };
    bench_bed!(c, "postgres", &rt, &bed);
    drop(bed);
    // Dropped with everything in it.
    drop(schema);
}

criterion_group!(benches, bench);
criterion_main!(benches);
