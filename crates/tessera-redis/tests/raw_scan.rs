//! A raw dump of everything the store wrote holds no secret in clear.

mod common;

use std::sync::Arc;

use redis::Value;
use tessera_core::store::Store;
use tessera_core::testkit::{assert_no_secrets, plant_secrets};

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
    // The prefix's keys are deleted when it is dropped, pass or fail.
    let Some((store, prefix)) = common::open().await else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(store);
    let secrets = plant_secrets(&store).await;
    let mut conn = common::raw(prefix.url()).await;
    let keys = prefix.keys(&mut conn).await;
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
