//! The legacy import on a Redis Cluster: all or nothing across slots, by
//! stages with a commit point.
//!
//! On one server the import is one script over every key (`IMPORT_LEGACY`).
//! A Cluster refuses that (`CROSSSLOT`), so there it runs in steps, each a
//! script on one slot:
//!
//! 1. **Stage.** The index entries first (a user's token index, the indexed
//!    users, the id counter: harmless if the import stops, readers check
//!    the records and the sweep prunes them). Then, for every token, its id
//!    is claimed (the legacy pointer `P{t<id>}:ptr`, which leads nowhere
//!    while there is no record) and its record is written under
//!    `P{l<hex>}:staged`, a key no reader looks at. A claim or a stage that
//!    meets an existing token is a conflict: every claim and staged record
//!    this import made is taken back, and nothing was ever visible. Staged
//!    records and claims expire by themselves if the importer dies here.
//! 2. **Commit.** One `SET` in the `{imports}` slot records the import
//!    (every token's id, digest and expiry) and lists it as pending. From
//!    here on the import will complete.
//! 3. **Publish.** Every staged record is renamed to its record (announced
//!    on the change stream, given its expiry, its pointer's expiry and its
//!    place in the legacy horizon), then the import's marker is removed. If
//!    the importer dies in this step, the next sweep (or import) finds the
//!    pending import and finishes it: publishing is idempotent.
//!
//! A conflicting batch therefore imports nothing, and a committed one ends
//! up complete; while step 3 runs, its tokens become valid one by one over
//! a few milliseconds.

use std::time::Duration;

use tessera_core::model::TokenRecord;
use tessera_core::store::StoreResult;
use tessera_core::StoreError;

use crate::codec::{self, corrupt, tagged, text};
use crate::conn::Order;
use crate::{Loc, RedisStore};

/// How long a staged record and a claim are kept when the importer dies
/// before its commit (at least this, or the retention if longer).
const STAGED_FOR: Duration = Duration::from_secs(86_400);

/// One token of a committed import, as its marker lists it.
struct Item {
    id: u64,
    hex: String,
    /// Access expiry, for the legacy horizon.
    exp: i64,
    /// Listed in the legacy horizon (unrevoked).
    listed: bool,
}

impl Item {
    fn encode(&self) -> String {
        format!(
            "{} {} {} {}",
            self.id,
            self.hex,
            self.exp,
            if self.listed { 1 } else { 0 }
        )
    }

    fn decode(line: &str) -> StoreResult<Item> {
        let bad = || corrupt("an import marker is malformed");
        let mut parts = line.split(' ');
        let mut next = || parts.next().ok_or_else(bad);
        let id = next()?.parse().map_err(|_| bad())?;
        let hex = codec::digest(next()?, "import marker digest")?.to_hex();
        let exp = next()?.parse().map_err(|_| bad())?;
        let listed = next()? == "1";
        Ok(Item {
            id,
            hex,
            exp,
            listed,
        })
    }

    fn loc(&self) -> Loc {
        Loc::Legacy(tessera_core::model::TokenId(self.id), self.hex.clone())
    }
}

impl RedisStore {
    /// Seconds a staged record or claim is kept (see [`STAGED_FOR`]).
    fn staged_secs(&self) -> u64 {
        self.retention_secs.max(STAGED_FOR.as_secs())
    }

    /// `import_legacy` on a Cluster (see the module docs). `tokens` are
    /// already checked for duplicates.
    pub(crate) async fn import_legacy_staged(&self, tokens: &[TokenRecord]) -> StoreResult<()> {
        // 1. Stage: index entries first.
        let mut index = Self::pipe_with(Order::InOrder, &[&self.scripts.bump_counter]);
        let highest = tokens.iter().map(|t| t.id.0).max().unwrap_or(0);
        for t in tokens {
            let loc = Loc::Legacy(t.id, t.access_digest.to_hex());
            index
                .cmd("ZADD", self.keys.user_tokens(t.user_id))
                .arg(t.id.0)
                .arg(loc.member())
                .ignore();
            index
                .cmd("ZADD", self.keys.users_indexed())
                .arg("NX")
                .arg(t.user_id.0)
                .arg(t.user_id.0)
                .ignore();
        }
        let mut bump = self.scripts.bump_counter.prepare_invoke();
        bump.key(self.keys.token_counter()).arg(highest);
        index.invoke(&self.scripts.bump_counter, &bump).ignore();
        self.pipe(&index).await?;

        // Claims and staged records, all at once.
        let staged_secs = self.staged_secs();
        let mut stage = Self::pipe_with(
            Order::Any,
            &[&self.scripts.claim_legacy_id, &self.scripts.stage_legacy],
        );
        for t in tokens {
            let hex = t.access_digest.to_hex();
            let by_id = Loc::Token(t.id);
            let mut claim = self.scripts.claim_legacy_id.prepare_invoke();
            claim
                .key(self.keys.rec(&by_id))
                .key(self.keys.ptr(&by_id))
                .arg(&hex)
                .arg(staged_secs);
            stage.invoke(&self.scripts.claim_legacy_id, &claim);
            let loc = Loc::Legacy(t.id, hex);
            let mut inv = self.scripts.stage_legacy.prepare_invoke();
            inv.key(self.keys.rec(&loc))
                .key(self.keys.staged(&loc))
                .arg(staged_secs);
            for (f, v) in codec::token_fields(t)? {
                inv.arg(f).arg(v);
            }
            stage.invoke(&self.scripts.stage_legacy, &inv);
        }
        let replies = match self.pipe(&stage).await {
            Ok(r) => r,
            Err(e) => {
                // Unknown how far it went: take back whatever it made.
                let _ = self
                    .unstage(tokens, &vec![(true, true); tokens.len()])
                    .await;
                return Err(e);
            }
        };
        let mut made = Vec::with_capacity(tokens.len());
        let mut conflict = None;
        let mut replies = replies.into_iter();
        for (i, _) in tokens.iter().enumerate() {
            let mut ok = || -> StoreResult<bool> {
                let (tag, _) = tagged(replies.next().unwrap_or_default())?;
                Ok(tag == "ok")
            };
            let (claimed, staged) = (ok()?, ok()?);
            if (!claimed || !staged) && conflict.is_none() {
                conflict = Some(i);
            }
            made.push((claimed, staged));
        }
        if let Some(i) = conflict {
            self.unstage(tokens, &made).await?;
            return Err(StoreError::Conflict(format!(
                "legacy token {:?} is already stored",
                tokens[i].name
            )));
        }

        // 2. Commit.
        let items: Vec<Item> = tokens
            .iter()
            .map(|t| Item {
                id: t.id.0,
                hex: t.access_digest.to_hex(),
                exp: t.access_expires_at,
                listed: t.legacy && t.revoked_at.is_none(),
            })
            .collect();
        let import_id = codec::required(
            self.cmd(redis::cmd("INCR").arg(self.keys.import_counter()))
                .await?,
            "import id",
        )?;
        let marker: Vec<String> = items.iter().map(Item::encode).collect();
        let mut commit = self.scripts.commit_import.prepare_invoke();
        commit
            .key(self.keys.import_marker(&import_id))
            .key(self.keys.imports_pending())
            .arg(&import_id)
            .arg(marker.join("\n"));
        // On an error the commit may or may not have happened: if it did,
        // the next sweep finishes it; if not, the staged records expire unseen.
        self.script(&commit).await?;

        // 3. Publish.
        self.publish_import(&import_id, &items).await
    }

    /// Takes back the claims and staged records an import made (`made`:
    /// per token, whether its claim and its stage succeeded).
    async fn unstage(&self, tokens: &[TokenRecord], made: &[(bool, bool)]) -> StoreResult<()> {
        let mut undo = Self::pipe_with(Order::Any, &[&self.scripts.unclaim_legacy_id]);
        for (t, (claimed, staged)) in tokens.iter().zip(made) {
            let hex = t.access_digest.to_hex();
            if *claimed {
                let by_id = Loc::Token(t.id);
                let mut inv = self.scripts.unclaim_legacy_id.prepare_invoke();
                inv.key(self.keys.rec(&by_id))
                    .key(self.keys.ptr(&by_id))
                    .arg(&hex);
                undo.invoke(&self.scripts.unclaim_legacy_id, &inv).ignore();
            }
            if *staged {
                undo.cmd("DEL", self.keys.staged(&Loc::Legacy(t.id, hex)))
                    .ignore();
            }
        }
        if undo.is_empty() {
            return Ok(());
        }
        self.pipe(&undo).await.map(drop)
    }

    /// Step 3 for a committed import (idempotent).
    async fn publish_import(&self, import_id: &str, items: &[Item]) -> StoreResult<()> {
        if !items.is_empty() {
            self.publish_items(items).await?;
        }
        let mut finish = self.scripts.finish_import.prepare_invoke();
        finish
            .key(self.keys.import_marker(import_id))
            .key(self.keys.imports_pending())
            .arg(import_id);
        self.script(&finish).await.map(drop)
    }

    /// Publishes the staged records of `items`, with their pointers' expiry
    /// and their place in the legacy horizon.
    async fn publish_items(&self, items: &[Item]) -> StoreResult<()> {
        let mut publish = Self::pipe_with(Order::Any, &[&self.scripts.publish_legacy]);
        for item in items {
            let loc = item.loc();
            let mut inv = self.scripts.publish_legacy.prepare_invoke();
            inv.key(self.keys.staged(&loc))
                .key(self.keys.rec(&loc))
                .arg(self.retention_secs);
            publish.invoke(&self.scripts.publish_legacy, &inv);
        }
        let replies = self.pipe(&publish).await?;
        let mut follow = Self::pipe_with(Order::Any, &[]);
        for (item, reply) in items.iter().zip(replies) {
            let (tag, rest) = tagged(reply)?;
            if tag != "ok" {
                // Neither staged nor published: it expired unpublished (no
                // sweep for a day after its importer stopped) or was swept
                // since. Nothing is left to publish.
                continue;
            }
            let by_id = Loc::Token(tessera_core::model::TokenId(item.id));
            if let Some(at) = rest.into_iter().next().map(text).transpose()?.flatten() {
                follow
                    .cmd("EXPIREAT", self.keys.ptr(&by_id))
                    .arg(at)
                    .ignore();
            }
            if item.listed {
                follow
                    .cmd("ZADD", self.keys.horizon())
                    .arg(item.exp)
                    .arg(item.id)
                    .ignore();
            }
        }
        if !follow.is_empty() {
            self.pipe(&follow).await?;
        }
        Ok(())
    }

    /// Finishes every import committed but not yet published (its importer
    /// stopped in step 3). Run by the sweep on a Cluster.
    pub(crate) async fn finish_imports(&self) -> StoreResult<()> {
        let pending = self
            .cmd(redis::cmd("SMEMBERS").arg(self.keys.imports_pending()))
            .await?;
        for import_id in codec::array(pending)? {
            let import_id = codec::required(import_id, "import id")?;
            let marker = text(
                self.cmd(redis::cmd("GET").arg(self.keys.import_marker(&import_id)))
                    .await?,
            )?;
            let items = match marker {
                Some(m) => m
                    .lines()
                    .map(Item::decode)
                    .collect::<StoreResult<Vec<_>>>()?,
                None => Vec::new(),
            };
            self.publish_import(&import_id, &items).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_lines_round_trip() {
        let hex = tessera_core::secret::Digest::of("x").to_hex();
        let item = Item {
            id: 42,
            hex: hex.clone(),
            exp: 1_700_000_000,
            listed: true,
        };
        let back = Item::decode(&item.encode()).unwrap();
        assert_eq!(
            (back.id, back.hex, back.exp, back.listed),
            (42, hex, 1_700_000_000, true)
        );
        assert!(Item::decode("42 zz 1 1").is_err());
        assert!(Item::decode("42").is_err());
    }
}
