//! Median of a check of a valid token and of a renewal on PostgreSQL (a fresh
//! schema, dropped afterwards). SKIPPED when the server is unreachable.
//! Run with `cargo xtask bench`.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use sqlx::Connection;
use tessera_core::testkit::{unique_suffix, BenchBed};
use tessera_postgres::{quote_ident, PostgresConfig, PostgresStore};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let url = std::env::var("TESSERA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("tessera_bench_{}", unique_suffix());
    let config = PostgresConfig {
        schema: Some(schema.clone()),
        ..PostgresConfig::new(&url)
    };
    let Some(bed) = rt.block_on(async {
        match PostgresStore::open(&config).await {
            Ok(store) => Some(BenchBed::new(Arc::new(store)).await),
            Err(e) => {
                println!("SKIPPED: PostgreSQL at {url} unreachable: {e}");
                None
            }
        }
    }) else {
        return;
    };
    let mut g = c.benchmark_group("postgres");
    g.bench_function("check_valid", |b| {
        b.to_async(&rt).iter(|| bed.check_valid())
    });
    g.bench_function("renew", |b| b.to_async(&rt).iter(|| bed.renew()));
    g.finish();
    rt.block_on(async {
        if let Ok(mut conn) = sqlx::PgConnection::connect(&url).await {
            let sql = sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {} CASCADE",
                quote_ident(&schema)
            ));
            let _ = sqlx::query(sql).execute(&mut conn).await;
        }
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
