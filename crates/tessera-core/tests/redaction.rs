//! `Debug` of every type that holds a secret, a digest or a password hash
//! shows none of them (CONTRACT §6: no secret, password or hash in a log line).

use std::sync::Arc;

use tessera_core::clock::{Clock, ManualClock};
use tessera_core::memory::MemoryStore;
use tessera_core::model::{
    NewUser, RefreshLookup, Role, RotateOutcome, Rotation, SessionRecord, UserKind,
};
use tessera_core::policy::{Credential, Policy, PolicyConfig, TokenRequest};
use tessera_core::secret::{self, password, Digest, Secret, SecretKind};
use tessera_core::service::{Caller, LegacyImport, LegacySecret, Tessera};
use tessera_core::store::Store;

/// Fails if `shown` contains any of the secrets or digests, in any form a log could carry.
fn assert_clean(shown: &str, secrets: &[&str], digests: &[Digest]) {
    for s in secrets {
        // The random tail alone is the secret's substance.
        let tail = &s[s.len().saturating_sub(49)..];
        assert!(!shown.contains(tail), "secret shown in {shown}");
    }
    for d in digests {
        assert!(
            !shown.contains(&d.to_hex()),
            "digest (hex) shown in {shown}"
        );
        let bytes = format!("{:?}", d.as_bytes());
        assert!(
            !shown.contains(&bytes[1..bytes.len() - 1]),
            "digest (bytes) shown in {shown}"
        );
    }
}

#[tokio::test]
async fn debug_of_every_secret_holding_type_shows_no_secret() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(1_767_225_600));
    let svc = Tessera::new(
        store.clone(),
        Policy::new(PolicyConfig::default()).unwrap(),
        clock as Arc<dyn Clock>,
    );
    let admin = svc
        .add_user("admin", "correct horse battery", Role::Admin)
        .await
        .unwrap();
    let caller = Caller {
        user: admin.clone(),
        credential: Credential::Session,
        address: None,
    };
    let issued = svc
        .create_token(&caller, None, &TokenRequest::named("t"))
        .await
        .unwrap();
    let access = issued.access.expose().to_string();
    let refresh = issued.refresh.as_ref().unwrap().expose().to_string();
    let (session, _) = svc.login("admin", "correct horse battery").await.unwrap();
    let session_text = session.expose().to_string();
    let secrets = [access.as_str(), refresh.as_str(), session_text.as_str()];
    let digests = [
        issued.access.digest(),
        issued.refresh.as_ref().unwrap().digest(),
        session.digest(),
    ];
    let phc = admin.password.as_ref().unwrap().as_phc().to_string();

    let key = secret::parse(&access, SecretKind::Access).unwrap();
    let renewed = svc.renew(&access, &refresh).await.unwrap();
    let new_secrets = [
        renewed.access.expose(),
        renewed.refresh.as_ref().unwrap().expose(),
    ];
    let rotation = Rotation {
        id: issued.token.id,
        presented_refresh: digests[1],
        at: 0,
        new_access: digests[0],
        new_refresh: digests[2],
        access_expires_at: 0,
        ends_at: 0,
    };
    let legacy = LegacyImport {
        line: 1,
        user_name: "admin".into(),
        token_name: "old".into(),
        token_type: 2,
        api_endpoints: vec![],
        allowed_ips: vec![],
        expires_at: 0,
        secret: LegacySecret::Clear(Secret::from_presented(access.clone())),
    };
    let shown = [
        format!("{:?}", issued),
        format!("{:?}", renewed),
        format!("{:?}", issued.token),
        format!("{:?}", issued.access),
        format!("{}", issued.access),
        format!("{:?}", session),
        format!("{:?}", key),
        format!("{:?}", digests),
        format!("{:?}", admin),
        format!("{:?}", caller),
        format!("{:?}", rotation),
        format!("{:?}", legacy),
        format!("{:?}", LegacySecret::Sha256(digests[0])),
        format!(
            "{:?}",
            RefreshLookup::Current(Box::new(issued.token.clone()))
        ),
        format!(
            "{:?}",
            RotateOutcome::Rotated(Box::new(renewed.token.clone()))
        ),
        format!("{:?}", store.session(&digests[2]).await.unwrap()),
        format!(
            "{:?}",
            SessionRecord {
                digest: digests[2],
                user_id: admin.id,
                created_at: 0,
                last_seen_at: 0
            }
        ),
        format!(
            "{:?}",
            NewUser {
                name: "x".into(),
                role: Role::User,
                kind: UserKind::Person,
                owner: None,
                password: Some(password::hash("another secret").unwrap()),
                created_at: 0
            }
        ),
        format!("{:?}", store.list_users().await.unwrap()),
        format!("{:?}", store.tokens_of_user(admin.id).await.unwrap()),
        format!("{:?}", svc),
    ];
    for s in &shown {
        assert_clean(s, &secrets, &digests);
        assert_clean(
            s,
            &new_secrets,
            &[
                renewed.access.digest(),
                renewed.refresh.as_ref().unwrap().digest(),
            ],
        );
        assert!(
            !s.contains(&phc) && !s.contains("$argon2"),
            "password hash shown in {s}"
        );
        assert!(
            !s.contains("correct horse") && !s.contains("another secret"),
            "password shown in {s}"
        );
    }
}
