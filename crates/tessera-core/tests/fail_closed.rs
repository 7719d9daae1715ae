//! With the store down, nothing is allowed and nothing succeeds: every call
//! says `Unavailable` (the server's 503), and refusals that need no store
//! still refuse.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use tessera_core::check::{CheckError, Refusal};
use tessera_core::clock::SystemClock;
use tessera_core::model::{Role, TokenId, User, UserId, UserKind};
use tessera_core::policy::{Credential, Policy, PolicyConfig, TokenRequest};
use tessera_core::secret::{self, SecretKind};
use tessera_core::service::{Caller, Tessera};
use tessera_core::testkit::DownStore;
use tessera_core::Error;

#[tokio::test]
async fn a_down_store_fails_closed() {
    let svc = Tessera::new(
        Arc::new(DownStore),
        Policy::new(PolicyConfig::default()).unwrap(),
        Arc::new(SystemClock),
    );
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let good = secret::generate(SecretKind::Access, Some(TokenId(1))).unwrap();
    let r = svc
        .checker()
        .check(good.expose(), "GET", "/Client", ip)
        .await;
    assert!(matches!(r, Err(CheckError::Unavailable(_))), "{r:?}");
    // No store needed to refuse these.
    let r = svc
        .checker()
        .check("tess_at_1_garbage", "GET", "/Client", ip)
        .await;
    assert_eq!(r, Err(CheckError::Refused(Refusal::Malformed)));
    assert!(svc.checker().refresh_legacy_horizon().await.is_err());

    let caller = Caller {
        user: User {
            id: UserId(1),
            name: "admin".into(),
            role: Role::Admin,
            kind: UserKind::Person,
            owner: None,
            password: None,
            created_at: 0,
        },
        credential: Credential::Session,
        address: None,
    };
    let refresh = secret::generate(SecretKind::Refresh, Some(TokenId(1))).unwrap();
    let session = secret::generate(SecretKind::Session, None).unwrap();
    let results = [
        svc.create_token(&caller, None, &TokenRequest::named("t"))
            .await
            .map(|_| ()),
        svc.list_tokens(&caller, None).await.map(|_| ()),
        svc.revoke_token(&caller, TokenId(1)).await,
        svc.renew(good.expose(), refresh.expose()).await.map(|_| ()),
        svc.login("admin", "pw").await.map(|_| ()),
        svc.session_user(session.expose()).await.map(|_| ()),
        svc.list_users(&caller).await.map(|_| ()),
        svc.revoke_by_secret(good.expose(), None).await,
    ];
    for r in results {
        assert!(matches!(r, Err(Error::Unavailable(_))), "{r:?}");
    }
}
