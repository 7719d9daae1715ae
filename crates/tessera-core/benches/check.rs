//! The check on `MemoryStore`: a valid token, a malformed one (refused with
//! no store access), and a well-formed unknown one. Targets (issue 2): valid
//! ≤ 1 µs median, malformed ≤ 100 ns median. Run with `cargo xtask bench`.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use tessera_core::clock::{Clock, ManualClock};
use tessera_core::memory::MemoryStore;
use tessera_core::model::{Role, TokenId};
use tessera_core::policy::{Credential, Policy, PolicyConfig, TokenRequest};
use tessera_core::secret::{self, SecretKind};
use tessera_core::service::{Caller, Tessera};
use tessera_core::store::Store;

fn bench_check(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let clock = Arc::new(ManualClock::new(1_767_225_600));
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let svc = Tessera::new(
        store,
        Policy::new(PolicyConfig::default()).expect("policy"),
        clock as Arc<dyn Clock>,
    );
    let (valid, custom) = rt.block_on(async {
        let admin = svc
            .add_user("admin", "pw", Role::Admin)
            .await
            .expect("user");
        let caller = Caller {
            user: admin,
            credential: Credential::Session,
            address: None,
        };
        // Some other tokens, so the look-up is not in a one-entry map.
        for i in 0..1000 {
            svc.create_token(&caller, None, &TokenRequest::named(&format!("filler {i}")))
                .await
                .expect("token");
        }
        let valid = svc
            .create_token(&caller, None, &TokenRequest::named("bench"))
            .await
            .expect("token");
        let custom = TokenRequest {
            token_type: Some(3),
            api_endpoints: Some(
                (0..10)
                    .map(|i| format!("GET /Endpoint{i}"))
                    .chain(["/Client".into()])
                    .collect(),
            ),
            allowed_ips: Some(vec!["10.0.0.0/8".into(), "127.0.0.0/8".into()]),
            ..TokenRequest::named("custom")
        };
        let custom = svc
            .create_token(&caller, None, &custom)
            .await
            .expect("token");
        (
            valid.access.expose().to_string(),
            custom.access.expose().to_string(),
        )
    });
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut malformed = valid.clone();
    malformed.pop();
    malformed.push(if valid.ends_with('A') { 'B' } else { 'A' });
    let unknown = secret::generate(SecretKind::Access, Some(TokenId(5))).expect("secret");
    let unknown = unknown.expose().to_string();
    let checker = svc.checker();

    let mut g = c.benchmark_group("check");
    g.bench_function("valid_all", |b| {
        b.to_async(&rt).iter(|| async {
            let r = checker
                .check(
                    black_box(&valid),
                    "GET",
                    black_box("/commandcenter/api/Client/5?x=1"),
                    ip,
                )
                .await;
            assert!(r.is_ok());
        })
    });
    g.bench_function("valid_custom_11_rules_2_ips", |b| {
        b.to_async(&rt).iter(|| async {
            let r = checker
                .check(black_box(&custom), "GET", black_box("/Client/5"), ip)
                .await;
            assert!(r.is_ok());
        })
    });
    g.bench_function("malformed", |b| {
        b.to_async(&rt).iter(|| async {
            let r = checker
                .check(black_box(&malformed), "GET", black_box("/Client/5"), ip)
                .await;
            assert!(r.is_err());
        })
    });
    g.bench_function("unknown", |b| {
        b.to_async(&rt).iter(|| async {
            let r = checker
                .check(black_box(&unknown), "GET", black_box("/Client/5"), ip)
                .await;
            assert!(r.is_err());
        })
    });
    g.finish();

    // The check's parts, to see where the time goes.
    let mut g = c.benchmark_group("parts");
    g.bench_function("parse_and_digest", |b| {
        b.iter(|| secret::parse(black_box(&valid), SecretKind::Access).is_ok())
    });
    g.bench_function("parse_malformed", |b| {
        b.iter(|| secret::parse(black_box(&malformed), SecretKind::Access).is_err())
    });
    g.bench_function("sha256_of_secret", |b| {
        b.iter(|| tessera_core::secret::Digest::of(black_box(&valid)))
    });
    let normaliser = svc.policy().normaliser();
    g.bench_function("normalise_path", |b| {
        b.iter(|| {
            normaliser
                .normalise(black_box("/commandcenter/api/Client/5?x=1"))
                .is_ok()
        })
    });
    let key = secret::parse(&valid, SecretKind::Access).expect("key");
    let store = svc.store().clone();
    g.bench_function("store_lookup", |b| {
        b.to_async(&rt)
            .iter(|| async { store.token_by_access(black_box(&key)).await.is_ok() })
    });
    g.finish();
}

criterion_group!(benches, bench_check);
criterion_main!(benches);
