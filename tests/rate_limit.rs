//! Per-token rate limits (issue 14) through HTTP, on every backend: the
//! field on create and edit (clear 400s), the 429 with `Retry-After` and
//! `RateLimit-*` at the boundary, the headers of allowed checks, a limit
//! that holds across two nodes over one store (exactly: every node counts
//! in the store, one atomic call per check of a limited token), and an
//! access token used as an API credential.

mod common;

use common::{all_stores, launch, Answer, Server, Token};
use serde_json::json;

/// A day's window: a test crossing midnight (UTC) sees the count start
/// again, which [`within_one_window`] notices and retries.
const DAY: u64 = 86_400;

fn header(a: &Answer, name: &str) -> Option<u64> {
    a.headers
        .get(name)
        .map(|v| v.to_str().unwrap().parse().unwrap())
}

/// Runs `case` until one run stayed within one window (at most twice).
async fn within_one_window<F, Fut>(mut case: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..2 {
        if case().await {
            return;
        }
    }
    panic!("two runs crossed a window's end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_answers_429_at_its_boundary_and_holds_across_two_nodes() {
    for store in all_stores().await {
        let name = store.name;
        let a = launch(&store).start().unwrap();
        let b = launch(&store.again()).start().unwrap();
        let admin = a.admin().await;

        // The field: shown, validated, kept by an edit without it, removed by null.
        for (limit, field) in [
            (
                json!({"requests": 0, "perSeconds": 60}),
                "rateLimit.requests",
            ),
            (
                json!({"requests": 5, "perSeconds": 86_401}),
                "rateLimit.perSeconds",
            ),
            (json!({"perSeconds": 60}), "rateLimit.requests"),
            (
                json!({"requests": "x", "perSeconds": 60}),
                "rateLimit.requests",
            ),
            (json!("5/min"), "rateLimit"),
        ] {
            let r = a
                .create_token(&admin, json!({"tokenName": "bad", "rateLimit": limit}))
                .await;
            assert_eq!(r.status, 400, "{name}: {limit}: {}", r.json);
            assert_eq!(r.json["field"], field, "{name}: {limit}: {}", r.json);
        }
        let limited = json!({"requests": 4, "perSeconds": DAY});
        let t = a
            .token(
                &admin,
                json!({"tokenName": "metered", "rateLimit": limited}),
            )
            .await;
        assert_eq!(t.info["rateLimit"], limited, "{name}: {}", t.info);
        let r = a
            .edit_token(&admin, t.id, json!({"tokenName": "metered 2"}))
            .await;
        assert_eq!(r.json["tokenInfo"]["rateLimit"], limited, "{name}: kept");
        let free = a.token(&admin, json!({"tokenName": "free"})).await;
        assert!(free.info.get("rateLimit").is_none());

        // Four checks a day, counted by both nodes together.
        within_one_window(|| four_a_day(&a, &b, &admin, name)).await;

        // An unlimited token says nothing of limits.
        let r = a
            .try_check_answer(&free.access, "GET", "/Client")
            .await
            .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(header(&r, "ratelimit-limit"), None);
        // `null` removes the limit: the spent token works again at once, on both nodes.
        let r = a.edit_token(&admin, t.id, json!({"rateLimit": null})).await;
        assert_eq!(r.status, 200, "{name}: {}", r.json);
        assert!(r.json["tokenInfo"].get("rateLimit").is_none(), "{}", r.json);
        for node in [&a, &b] {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                let st = node.check(&t.access, "GET", "/Client").await;
                if st == 200 {
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "{name}: still {st}");
            }
        }
    }
}

/// One run of the four-a-day case on fresh tokens; false when the window
/// ended during it (the counts started again).
async fn four_a_day(a: &Server, b: &Server, admin: &str, name: &str) -> bool {
    let limited = json!({"requests": 4, "perSeconds": DAY});
    let t: Token = a
        .token(
            admin,
            json!({"tokenName": "four a day", "rateLimit": limited}),
        )
        .await;
    let mut resets = Vec::new();
    // Alternating nodes: allowed, allowed, allowed, allowed, then refused.
    for (i, node) in [a, b, a, b].into_iter().enumerate() {
        let r = node
            .try_check_answer(&t.access, "GET", "/Client")
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{name}: check {i}");
        assert_eq!(header(&r, "ratelimit-limit"), Some(4));
        assert_eq!(
            header(&r, "ratelimit-remaining"),
            Some(3 - i as u64),
            "{name}: {i}"
        );
        resets.push(header(&r, "ratelimit-reset").unwrap());
    }
    for node in [b, a] {
        let r = node
            .try_check_answer(&t.access, "GET", "/Client")
            .await
            .unwrap();
        if r.status == 200 {
            return false; // a new window began
        }
        assert_eq!(r.status, 429, "{name}: over the limit");
        let retry = header(&r, "retry-after").unwrap();
        assert!((1..=DAY).contains(&retry), "{retry}");
        assert_eq!(header(&r, "ratelimit-limit"), Some(4));
        assert_eq!(header(&r, "ratelimit-remaining"), Some(0));
        assert_eq!(header(&r, "ratelimit-reset"), Some(retry));
        assert!(r.text.is_empty(), "a check's refusal has no body");
    }
    // As an API credential: /WhoAmI with the spent token is a 429 too.
    let bearer = format!("Bearer {}", t.access);
    let r = a
        .call("GET", "/WhoAmI", &[("Authorization", &bearer)], None)
        .await;
    assert_eq!(r.status, 429, "{name}: {}", r.json);
    assert!(header(&r, "retry-after").is_some());
    let metrics = a.metrics_text().await;
    assert!(
        metrics.contains("outcome=\"rate_limited\""),
        "{name}: counted"
    );
    resets.windows(2).all(|w| w[1] <= w[0])
}
