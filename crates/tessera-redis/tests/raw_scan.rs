//! A raw dump of everything the store wrote holds no secret in clear.

mod common;

use std::sync::Arc;

use redis::Value;
use tessera_core::store::Store;
use tessera_core::testkit::{assert_no_secrets, plant_secrets, skip};

/// A value as text, whatever its shape.
fn show(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::Array(items) | Value::Set(items) => {
            items.iter().map(show).collect::<Vec<_>>().join(" | ")
        }
        Value::Map(pairs) => pairs
            .iter()
            .map(|(k, v)| format!("{} => {}", show(k), show(v)))
            .collect::<Vec<_>>()
            .join(" | "),
        other => format!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_any_key_or_value() {
    let url = common::redis_url();
    let prefix = common::fresh_prefix();
    let store = match common::connect(&url, &prefix).await {
        Ok(s) => s,
        Err(e) => {
            skip(&format!("Redis at {url} unreachable: {e}"));
            return;
        }
    };
    let store: Arc<dyn Store> = Arc::new(store);
    let outcome = tokio::spawn({
        let (store, url, prefix) = (store.clone(), url.clone(), prefix.clone());
        async move {
            let secrets = plant_secrets(&store).await;
            let mut conn = common::raw(&url).await;
            let keys = common::keys_under(&mut conn, &prefix).await;
            let mut dump = String::new();
            let mut types = std::collections::BTreeSet::new();
            for key in &keys {
                let kind: String = redis::cmd("TYPE")
                    .arg(key)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                let mut cmd = match kind.as_str() {
                    "string" => redis::cmd("GET"),
                    "hash" => redis::cmd("HGETALL"),
                    "set" => redis::cmd("SMEMBERS"),
                    "zset" => redis::cmd("ZRANGE"),
                    "list" => redis::cmd("LRANGE"),
                    other => panic!("unexpected key type {other} at {key}"),
                };
                cmd.arg(key);
                match kind.as_str() {
                    "zset" => {
                        cmd.arg(0).arg(-1).arg("WITHSCORES");
                    }
                    "list" => {
                        cmd.arg(0).arg(-1);
                    }
                    _ => {}
                }
                let v: Value = cmd.query_async(&mut conn).await.unwrap();
                dump.push_str(&format!("{key} ({kind}): {}\n", show(&v)));
                types.insert(kind);
            }
            // The dump covers every kind of record: users, sessions, tokens
            // (with spent digests), legacy tokens, indexes and events.
            for part in [
                "{users}:u:",
                "}:session",
                "}:rec",
                "}:spent",
                "}:ptr",
                "{l",
                "{u",
                "legacy-horizon",
            ] {
                assert!(dump.contains(part), "no {part} key in the dump:\n{dump}");
            }
            assert!(types.len() >= 4, "{types:?}");
            assert_no_secrets(&dump, &secrets);
        }
    })
    .await;
    drop(store);
    common::delete_prefix(&url, &prefix).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
