//! The behavioural suite every `Store` implementation passes: memory, SQLite files and a
//! real PostgreSQL server (see `tests/common` for how PostgreSQL is found).
#![cfg(all(feature = "sqlite", feature = "postgres"))]

mod common;

use std::sync::Arc;

use tower_oauth_toolkit::crypto::token_checksum;
use tower_oauth_toolkit::model::*;
use tower_oauth_toolkit::store::{CleanupStep, IssueTokens, Store, StoreError};

const NOW: Timestamp = Timestamp(1_800_000_000);

async fn user<S: Store>(s: &S, name: &str) -> User {
    s.create_user(NewUser {
        username: name.into(),
        email: format!("{name}@example.com"),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".into(),
        is_active: true,
        date_joined: NOW,
    })
    .await
    .unwrap()
}

async fn app<S: Store>(s: &S, client_id: &str) -> Application {
    let mut a = NewApplication::new(
        client_id,
        ClientType::Confidential,
        GrantType::AuthorizationCode,
    );
    a.redirect_uris = "https://app.example.com/cb http://127.0.0.1/cb".into();
    a.client_secret = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into();
    a.name = "Test app".into();
    a.created = NOW;
    a.pkce_required = Some(false);
    a.algorithm = Algorithm::Rs256;
    s.create_application(a).await.unwrap()
}

fn at(value: &str, app: &Application, user: Option<&User>, expires: Timestamp) -> NewAccessToken {
    NewAccessToken {
        resource: String::new(),
        token_checksum: token_checksum(value),
        application_id: Some(app.id),
        user_id: user.map(|u| u.id),
        source_refresh_token_id: None,
        id_token_id: None,
        grant_id: None,
        expires,
        scope: "read write".into(),
        created: NOW,
    }
}

fn rt(value: &str, app: &Application, user: Option<&User>, family: &str) -> NewRefreshToken {
    NewRefreshToken {
        resource: String::new(),
        token_checksum: token_checksum(value),
        application_id: app.id,
        user_id: user.map(|u| u.id),
        access_token_id: None,
        token_family: Some(family.into()),
        created: NOW,
    }
}

fn pair(
    a: &str,
    r: &str,
    app: &Application,
    user: Option<&User>,
    expires: Timestamp,
    family: &str,
) -> IssueTokens {
    IssueTokens {
        access: at(a, app, user, expires),
        refresh: Some(rt(r, app, user, family)),
        id_token: None,
    }
}

// ---------------------------------------------------------------- the suite

async fn users_are_unique_and_found<S: Store>(s: &S) {
    let u = user(s, "alice").await;
    assert_eq!(s.find_user(u.id).await.unwrap().unwrap().username, "alice");
    assert_eq!(
        s.find_user_by_username("alice").await.unwrap().unwrap().id,
        u.id
    );
    assert!(s.find_user_by_username("Alice").await.unwrap().is_none());
    let dup = s
        .create_user(NewUser {
            username: "alice".into(),
            email: String::new(),
            password_hash: "x".into(),
            is_active: true,
            date_joined: NOW,
        })
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    s.set_last_login(u.id, NOW.add_secs(5)).await.unwrap();
    assert_eq!(
        s.find_user(u.id).await.unwrap().unwrap().last_login,
        Some(NOW.add_secs(5))
    );
    assert_eq!(s.count_users().await.unwrap(), 1);
}

async fn applications_round_trip<S: Store>(s: &S) {
    let owner = user(s, "owner").await;
    let mut new = NewApplication::new("client-1", ClientType::Public, GrantType::DeviceCode);
    new.user_id = Some(owner.id);
    new.allowed_origins = "https://a.example https://b.example".into();
    new.post_logout_redirect_uris = "https://a.example/bye".into();
    new.skip_authorization = true;
    new.hash_client_secret = false;
    new.created = NOW;
    let a = s.create_application(new).await.unwrap();
    let by_id = s.find_application(a.id).await.unwrap().unwrap();
    let by_client = s
        .find_application_by_client_id("client-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_id, a);
    assert_eq!(by_client, a);
    assert_eq!(a.authorization_grant_type, GrantType::DeviceCode);
    assert_eq!(a.client_type, ClientType::Public);
    assert!(a.skip_authorization && !a.hash_client_secret);
    assert_eq!(a.allowed_origin_list().count(), 2);
    assert!(s
        .find_application_by_client_id("client-2")
        .await
        .unwrap()
        .is_none());

    let dup = s
        .create_application(NewApplication::new(
            "client-1",
            ClientType::Public,
            GrantType::Password,
        ))
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    let other = app(s, "client-0").await;
    let ids: Vec<i64> = s
        .list_applications()
        .await
        .unwrap()
        .iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(ids, vec![a.id, other.id]);
}

async fn deleting_an_application_deletes_its_tokens<S: Store>(s: &S) {
    let u = user(s, "u").await;
    let a = app(s, "doomed").await;
    let keep = app(s, "kept").await;
    s.issue_tokens(pair("at1", "rt1", &a, Some(&u), NOW.add_secs(60), "f1"))
        .await
        .unwrap();
    s.issue_tokens(pair("at2", "rt2", &keep, Some(&u), NOW.add_secs(60), "f2"))
        .await
        .unwrap();
    assert!(s.delete_application(a.id).await.unwrap());
    assert!(!s.delete_application(a.id).await.unwrap());
    assert!(s
        .find_access_token(&token_checksum("at1"))
        .await
        .unwrap()
        .is_none());
    assert!(s
        .find_refresh_token(&token_checksum("rt1"))
        .await
        .unwrap()
        .is_none());
    assert!(s
        .find_access_token(&token_checksum("at2"))
        .await
        .unwrap()
        .is_some());
    assert!(s
        .find_refresh_token(&token_checksum("rt2"))
        .await
        .unwrap()
        .is_some());
}

async fn access_token_lookup_by_checksum<S: Store>(s: &S) {
    let u = user(s, "bob").await;
    let a = app(s, "c").await;
    let issued = s
        .issue_tokens(IssueTokens {
            access: at("opaque-value", &a, Some(&u), NOW.add_secs(3600)),
            refresh: None,
            id_token: None,
        })
        .await
        .unwrap();
    let found = s
        .find_access_token(&token_checksum("opaque-value"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.token, issued.access);
    assert_eq!(found.client_id.as_deref(), Some("c"));
    assert_eq!(found.username.as_deref(), Some("bob"));
    assert!(!found.token.is_expired(NOW));
    assert!(
        found.token.is_expired(NOW.add_secs(3600)),
        "expired at exactly `expires`"
    );
    assert!(s
        .find_access_token(&token_checksum("other"))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        s.find_access_token_by_id(issued.access.id)
            .await
            .unwrap()
            .unwrap(),
        issued.access
    );
    // A client-credentials token has no user.
    s.issue_tokens(IssueTokens {
        access: at("cc", &a, None, NOW.add_secs(10)),
        refresh: None,
        id_token: None,
    })
    .await
    .unwrap();
    let cc = s
        .find_access_token(&token_checksum("cc"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cc.username, None);
    assert_eq!(cc.client_id.as_deref(), Some("c"));
    // The same checksum twice is a conflict and writes nothing.
    let dup = s
        .issue_tokens(pair("cc", "fresh-rt", &a, None, NOW.add_secs(10), "f"))
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    assert!(s
        .find_refresh_token(&token_checksum("fresh-rt"))
        .await
        .unwrap()
        .is_none());
}

async fn issue_links_access_refresh_and_id_token<S: Store>(s: &S) {
    let u = user(s, "carol").await;
    let a = app(s, "oidc").await;
    let mut tokens = pair("a", "r", &a, Some(&u), NOW.add_secs(60), "fam");
    tokens.id_token = Some(NewIdToken {
        user_id: Some(u.id),
        jti: "jti-1".into(),
        application_id: Some(a.id),
        expires: NOW.add_secs(60),
        scope: "openid".into(),
        created: NOW,
    });
    let issued = s.issue_tokens(tokens).await.unwrap();
    let refresh = issued.refresh.unwrap();
    let id_token = issued.id_token.unwrap();
    assert_eq!(refresh.access_token_id, Some(issued.access.id));
    assert_eq!(issued.access.id_token_id, Some(id_token.id));
    assert_eq!(s.find_id_token("jti-1").await.unwrap().unwrap(), id_token);
    let stored = s
        .find_refresh_token(&token_checksum("r"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, refresh);
    assert_eq!(stored.revoked, None);
    assert_eq!(
        s.find_refresh_token_for_access_token(issued.access.id)
            .await
            .unwrap()
            .unwrap(),
        refresh
    );
}

async fn rotation_revokes_the_old_pair_once<S: Store>(s: &S) {
    let u = user(s, "dave").await;
    let a = app(s, "rot").await;
    let g = s
        .create_grant(NewGrant {
            resource: String::new(),
            user_id: u.id,
            code_checksum: token_checksum("code"),
            application_id: a.id,
            expires: NOW.add_secs(60),
            redirect_uri: "https://app.example.com/cb".into(),
            scope: "read".into(),
            pkce: None,
            nonce: String::new(),
            claims: String::new(),
            auth_time: Some(NOW),
            created: NOW,
        })
        .await
        .unwrap();
    let mut first = pair("a0", "r0", &a, Some(&u), NOW.add_secs(60), "fam");
    first.access.grant_id = Some(g.id);
    let first = s.issue_tokens(first).await.unwrap();
    let old_rt = first.refresh.unwrap();

    let second = s
        .rotate_refresh_token(
            old_rt.id,
            NOW.add_secs(1),
            pair("a1", "r1", &a, Some(&u), NOW.add_secs(61), "fam"),
        )
        .await
        .unwrap();
    assert_eq!(second.access.source_refresh_token_id, Some(old_rt.id));
    assert_eq!(
        second.access.grant_id,
        Some(g.id),
        "lineage to the code is kept"
    );
    let old = s
        .find_refresh_token(&token_checksum("r0"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.revoked, Some(NOW.add_secs(1)));
    assert_eq!(old.access_token_id, None);
    assert!(s
        .find_access_token(&token_checksum("a0"))
        .await
        .unwrap()
        .is_none());

    let again = s
        .rotate_refresh_token(
            old_rt.id,
            NOW.add_secs(2),
            pair("a2", "r2", &a, Some(&u), NOW.add_secs(62), "fam"),
        )
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert!(s
        .find_access_token(&token_checksum("a2"))
        .await
        .unwrap()
        .is_none());

    let (succ_at, succ_rt) = s.find_successor(old_rt.id).await.unwrap().unwrap();
    assert_eq!(succ_at, second.access);
    assert_eq!(succ_rt, second.refresh);
    assert!(s
        .find_successor(second.refresh.as_ref().unwrap().id)
        .await
        .unwrap()
        .is_none());
}

async fn concurrent_rotations_have_one_winner<S: Store>(s: Arc<S>) {
    let u = user(&*s, "erin").await;
    let a = app(&*s, "race").await;
    for round in 0..10 {
        let first = s
            .issue_tokens(pair(
                &format!("a{round}"),
                &format!("r{round}"),
                &a,
                Some(&u),
                NOW.add_secs(60),
                "fam",
            ))
            .await
            .unwrap();
        let old = first.refresh.unwrap().id;
        let mut tasks = Vec::new();
        for t in 0..8 {
            let s = s.clone();
            let tokens = pair(
                &format!("a{round}-{t}"),
                &format!("r{round}-{t}"),
                &a,
                Some(&u),
                NOW.add_secs(60),
                "fam",
            );
            tasks.push(tokio::spawn(async move {
                s.rotate_refresh_token(old, NOW, tokens).await
            }));
        }
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => ok += 1,
                Err(StoreError::Conflict(_)) => {}
                Err(e) => panic!("unexpected error {e}"),
            }
        }
        assert_eq!(ok, 1, "round {round}: exactly one rotation wins");
    }
}

/// A family revocation (reuse detected) racing a rotation of the family's live token must
/// leave no live token behind, whichever commits first.
async fn family_revocation_races_rotation<S: Store>(s: Arc<S>) {
    let u = user(&*s, "olga").await;
    let a = app(&*s, "famrace").await;
    for round in 0..20 {
        let family = format!("F{round}");
        let first = s
            .issue_tokens(pair(
                &format!("a{round}"),
                &format!("r{round}"),
                &a,
                Some(&u),
                NOW.add_secs(60),
                &family,
            ))
            .await
            .unwrap();
        let rt = first.refresh.unwrap().id;
        let rotate = {
            let (s, family) = (s.clone(), family.clone());
            let tokens = pair(
                &format!("a{round}-new"),
                &format!("r{round}-new"),
                &a,
                Some(&u),
                NOW.add_secs(60),
                &family,
            );
            tokio::spawn(async move { s.rotate_refresh_token(rt, NOW, tokens).await })
        };
        let revoke = {
            let (s, family) = (s.clone(), family.clone());
            tokio::spawn(async move { s.revoke_refresh_token_family(&family, NOW).await })
        };
        let rotated = rotate.await.unwrap();
        revoke.await.unwrap().unwrap();
        if let Err(e) = &rotated {
            assert!(matches!(e, StoreError::Conflict(_)), "round {round}: {e}");
        }
        // Every order leaves nothing usable: a rotation that commits first has its new pair
        // revoked by the family revocation; one that comes second finds its token revoked.
        for name in [format!("a{round}"), format!("a{round}-new")] {
            assert!(
                s.find_access_token(&token_checksum(&name))
                    .await
                    .unwrap()
                    .is_none(),
                "round {round}: {name} alive"
            );
        }
        for name in [format!("r{round}"), format!("r{round}-new")] {
            if let Some(r) = s.find_refresh_token(&token_checksum(&name)).await.unwrap() {
                assert!(r.revoked.is_some(), "round {round}: {name} live");
                assert_eq!(r.access_token_id, None);
            }
        }
    }
}

/// Replacing a refresh token's access token (no rotation) racing its revocation must not
/// leave a usable access token bound to a revoked refresh token.
async fn replace_races_revoke<S: Store>(s: Arc<S>) {
    let u = user(&*s, "pia").await;
    let a = app(&*s, "reprace").await;
    for round in 0..20 {
        let first = s
            .issue_tokens(pair(
                &format!("a{round}"),
                &format!("r{round}"),
                &a,
                Some(&u),
                NOW.add_secs(60),
                "R",
            ))
            .await
            .unwrap();
        let rt = first.refresh.unwrap().id;
        let replace = {
            let s = s.clone();
            let new = at(&format!("a{round}-new"), &a, Some(&u), NOW.add_secs(120));
            tokio::spawn(async move { s.replace_access_token(rt, new).await })
        };
        let revoke = {
            let s = s.clone();
            tokio::spawn(async move { s.revoke_refresh_token(rt, NOW).await })
        };
        let replaced = replace.await.unwrap();
        assert!(
            revoke.await.unwrap().unwrap(),
            "round {round}: the revocation revoked"
        );
        if let Err(e) = &replaced {
            assert!(matches!(e, StoreError::Conflict(_)), "round {round}: {e}");
        }
        for name in [format!("a{round}"), format!("a{round}-new")] {
            assert!(
                s.find_access_token(&token_checksum(&name))
                    .await
                    .unwrap()
                    .is_none(),
                "round {round}: {name} survived the revocation"
            );
        }
    }
}

async fn revoking_access_revokes_refresh_and_back<S: Store>(s: &S) {
    let u = user(s, "frank").await;
    let a = app(s, "rev").await;
    let one = s
        .issue_tokens(pair("a1", "r1", &a, Some(&u), NOW.add_secs(60), "f1"))
        .await
        .unwrap();
    assert!(s.revoke_access_token(one.access.id, NOW).await.unwrap());
    assert!(!s.revoke_access_token(one.access.id, NOW).await.unwrap());
    let r1 = s
        .find_refresh_token(&token_checksum("r1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r1.revoked, Some(NOW));
    assert!(s
        .find_access_token(&token_checksum("a1"))
        .await
        .unwrap()
        .is_none());

    let two = s
        .issue_tokens(pair("a2", "r2", &a, Some(&u), NOW.add_secs(60), "f2"))
        .await
        .unwrap();
    assert!(s
        .revoke_refresh_token(two.refresh.unwrap().id, NOW)
        .await
        .unwrap());
    assert!(s
        .find_access_token(&token_checksum("a2"))
        .await
        .unwrap()
        .is_none());
    let r2 = s
        .find_refresh_token(&token_checksum("r2"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        !s.revoke_refresh_token(r2.id, NOW).await.unwrap(),
        "already revoked"
    );
    assert!(
        !s.revoke_refresh_token(9_999_999, NOW).await.unwrap(),
        "unknown"
    );
}

async fn family_revocation_covers_every_generation<S: Store>(s: &S) {
    let u = user(s, "gina").await;
    let a = app(s, "fam").await;
    let g0 = s
        .issue_tokens(pair("a0", "r0", &a, Some(&u), NOW.add_secs(60), "F"))
        .await
        .unwrap();
    let g1 = s
        .rotate_refresh_token(
            g0.refresh.unwrap().id,
            NOW,
            pair("a1", "r1", &a, Some(&u), NOW.add_secs(60), "F"),
        )
        .await
        .unwrap();
    s.rotate_refresh_token(
        g1.refresh.unwrap().id,
        NOW,
        pair("a2", "r2", &a, Some(&u), NOW.add_secs(60), "F"),
    )
    .await
    .unwrap();
    let bystander = s
        .issue_tokens(pair("b", "rb", &a, Some(&u), NOW.add_secs(60), "OTHER"))
        .await
        .unwrap();

    assert_eq!(
        s.revoke_refresh_token_family("F", NOW.add_secs(9))
            .await
            .unwrap(),
        1,
        "one live member"
    );
    for r in ["r0", "r1", "r2"] {
        let rt = s
            .find_refresh_token(&token_checksum(r))
            .await
            .unwrap()
            .unwrap();
        assert!(rt.revoked.is_some(), "{r} revoked");
    }
    assert!(s
        .find_access_token(&token_checksum("a2"))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        s.find_access_token(&token_checksum("b"))
            .await
            .unwrap()
            .unwrap()
            .token,
        bystander.access
    );
}

async fn grants_are_single_use_and_replay_revokes<S: Store>(s: &S) {
    let u = user(s, "hank").await;
    let a = app(s, "code").await;
    let g = s
        .create_grant(NewGrant {
            resource: String::new(),
            user_id: u.id,
            code_checksum: token_checksum("the-code"),
            application_id: a.id,
            expires: NOW.add_secs(60),
            redirect_uri: "https://app.example.com/cb".into(),
            scope: "read write".into(),
            pkce: Some(PkceChallenge {
                challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
                method: CodeChallengeMethod::S256,
            }),
            nonce: "n-0S6_WzA2Mj".into(),
            claims: "{}".into(),
            auth_time: Some(NOW),
            created: NOW,
        })
        .await
        .unwrap();
    let found = s
        .find_grant(&token_checksum("the-code"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, g);
    assert!(s
        .find_grant(&token_checksum("other"))
        .await
        .unwrap()
        .is_none());
    assert!(s.mark_grant_used(g.id, NOW).await.unwrap());
    assert!(
        !s.mark_grant_used(g.id, NOW).await.unwrap(),
        "second use refused"
    );
    assert_eq!(
        s.find_grant(&token_checksum("the-code"))
            .await
            .unwrap()
            .unwrap()
            .used_at,
        Some(NOW)
    );

    let mut first = pair("a0", "r0", &a, Some(&u), NOW.add_secs(60), "G");
    first.access.grant_id = Some(g.id);
    let first = s.issue_tokens(first).await.unwrap();
    // The client refreshes once; the replay must still reach the successor.
    s.rotate_refresh_token(
        first.refresh.unwrap().id,
        NOW,
        pair("a1", "r1", &a, Some(&u), NOW.add_secs(60), "G"),
    )
    .await
    .unwrap();
    let other = s
        .issue_tokens(pair("x", "rx", &a, Some(&u), NOW.add_secs(60), "X"))
        .await
        .unwrap();

    assert_eq!(s.revoke_grant_tokens(g.id, NOW).await.unwrap(), 1);
    assert!(s
        .find_access_token(&token_checksum("a1"))
        .await
        .unwrap()
        .is_none());
    assert!(s
        .find_refresh_token(&token_checksum("r1"))
        .await
        .unwrap()
        .unwrap()
        .revoked
        .is_some());
    assert_eq!(
        s.find_access_token(&token_checksum("x"))
            .await
            .unwrap()
            .unwrap()
            .token,
        other.access
    );
}

async fn replacing_the_access_token_keeps_the_refresh_token<S: Store>(s: &S) {
    let u = user(s, "ivy").await;
    let a = app(s, "norot").await;
    let first = s
        .issue_tokens(pair("a0", "r0", &a, Some(&u), NOW.add_secs(60), "N"))
        .await
        .unwrap();
    let r = first.refresh.unwrap();
    let new = s
        .replace_access_token(r.id, at("a1", &a, Some(&u), NOW.add_secs(120)))
        .await
        .unwrap();
    assert!(s
        .find_access_token(&token_checksum("a0"))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        s.find_access_token(&token_checksum("a1"))
            .await
            .unwrap()
            .unwrap()
            .token,
        new
    );
    let r_now = s
        .find_refresh_token(&token_checksum("r0"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r_now.access_token_id, Some(new.id));
    assert_eq!(r_now.revoked, None);
}

async fn live_tokens_and_user_logout<S: Store>(s: &S) {
    let u = user(s, "jack").await;
    let v = user(s, "kate").await;
    let a = app(s, "one").await;
    let b = app(s, "two").await;
    s.issue_tokens(pair("live", "rl", &a, Some(&u), NOW.add_secs(60), "L"))
        .await
        .unwrap();
    s.issue_tokens(pair("dead", "rd", &a, Some(&u), NOW, "D"))
        .await
        .unwrap();
    s.issue_tokens(pair("b", "rb", &b, Some(&u), NOW.add_secs(60), "B"))
        .await
        .unwrap();
    s.issue_tokens(pair("v", "rv", &a, Some(&v), NOW.add_secs(60), "V"))
        .await
        .unwrap();
    let live = s.find_live_access_tokens(u.id, a.id, NOW).await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].token_checksum, token_checksum("live"));

    assert_eq!(
        s.delete_user_tokens(u.id, Some(&[a.id]), NOW)
            .await
            .unwrap(),
        2
    );
    assert!(s
        .find_access_token(&token_checksum("b"))
        .await
        .unwrap()
        .is_some());
    assert!(s
        .find_refresh_token(&token_checksum("rl"))
        .await
        .unwrap()
        .unwrap()
        .revoked
        .is_some());
    assert_eq!(s.delete_user_tokens(u.id, None, NOW).await.unwrap(), 1);
    assert!(s
        .find_access_token(&token_checksum("b"))
        .await
        .unwrap()
        .is_none());
    assert!(
        s.find_access_token(&token_checksum("v"))
            .await
            .unwrap()
            .is_some(),
        "other user kept"
    );
}

async fn device_grants<S: Store>(s: &S) {
    let u = user(s, "lee").await;
    let d = s
        .create_device_grant(NewDeviceGrant {
            device_code_checksum: token_checksum("device"),
            user_code_checksum: token_checksum("ABCD1234"),
            scope: "read".into(),
            interval: 5,
            expires: NOW.add_secs(1800),
            client_id: "tv".into(),
            created: NOW,
        })
        .await
        .unwrap();
    assert_eq!(d.status, DeviceGrantStatus::AuthorizationPending);
    assert_eq!(
        s.find_device_grant(&token_checksum("device"))
            .await
            .unwrap()
            .unwrap(),
        d
    );
    assert_eq!(
        s.find_device_grant_by_user_code(&token_checksum("ABCD1234"))
            .await
            .unwrap()
            .unwrap(),
        d
    );
    use DeviceGrantStatus::*;
    assert!(s
        .update_device_grant_status(d.id, AuthorizationPending, Authorized, Some(u.id))
        .await
        .unwrap());
    assert!(!s
        .update_device_grant_status(d.id, AuthorizationPending, Denied, None)
        .await
        .unwrap());
    let now = s
        .find_device_grant(&token_checksum("device"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((now.status, now.user_id), (Authorized, Some(u.id)));
    // Until the first poll, the last one is one interval before creation.
    assert_eq!(d.last_checked, NOW.add_secs(-5));
    assert_eq!(
        s.touch_device_grant(d.id, NOW.add_secs(7)).await.unwrap(),
        Some(NOW.add_secs(-5))
    );
    assert_eq!(
        s.touch_device_grant(d.id, NOW.add_secs(9)).await.unwrap(),
        Some(NOW.add_secs(7))
    );
    assert_eq!(s.touch_device_grant(424242, NOW).await.unwrap(), None);
    // slow_down grows the interval, for good.
    assert_eq!(s.slow_down_device_grant(d.id, 5).await.unwrap(), Some(10));
    assert_eq!(s.slow_down_device_grant(d.id, 5).await.unwrap(), Some(15));
    assert_eq!(s.slow_down_device_grant(424242, 5).await.unwrap(), None);
    let grown = s
        .find_device_grant(&token_checksum("device"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(grown.interval, 15);

    // Redemption: once, with the tokens, and only while authorized.
    let a = app(s, "tv-app").await;
    let issued = s
        .redeem_device_grant(
            d.id,
            pair("dev-at", "dev-rt", &a, Some(&u), NOW.add_secs(60), "fd"),
        )
        .await
        .unwrap()
        .expect("redeemed");
    assert_eq!(issued.access.user_id, Some(u.id));
    assert!(s
        .find_access_token(&token_checksum("dev-at"))
        .await
        .unwrap()
        .is_some());
    assert!(s
        .find_device_grant(&token_checksum("device"))
        .await
        .unwrap()
        .is_none());
    assert!(s
        .redeem_device_grant(
            d.id,
            pair("dev-at2", "dev-rt2", &a, Some(&u), NOW.add_secs(60), "fd2")
        )
        .await
        .unwrap()
        .is_none());
    assert!(
        s.find_access_token(&token_checksum("dev-at2"))
            .await
            .unwrap()
            .is_none(),
        "nothing written for a lost redemption"
    );
    let pending = s
        .create_device_grant(NewDeviceGrant {
            device_code_checksum: token_checksum("device-2"),
            user_code_checksum: token_checksum("EFGH5678"),
            scope: "read".into(),
            interval: 5,
            expires: NOW.add_secs(1800),
            client_id: "tv".into(),
            created: NOW,
        })
        .await
        .unwrap();
    assert!(
        s.redeem_device_grant(
            pending.id,
            pair("dev-at3", "dev-rt3", &a, Some(&u), NOW.add_secs(60), "fd3")
        )
        .await
        .unwrap()
        .is_none(),
        "a pending grant is not redeemed"
    );
}

/// Seeds one row of each cleanup category (orphans have their own test, as they need an
/// out-of-band deletion) and runs the steps in DOT's order with the
/// given batch size; returns which of the named tokens survive.
async fn cleanup_with_batch<S: Store>(s: &S, batch: u64) -> Vec<&'static str> {
    let u = user(s, "mia").await;
    let a = app(s, "clean").await;
    let expired = NOW.sub_secs(3600 * 48);
    // Live pair.
    s.issue_tokens(pair(
        "live-a",
        "live-r",
        &a,
        Some(&u),
        NOW.add_secs(3600),
        "1",
    ))
    .await
    .unwrap();
    // Expired access token kept alive by its live refresh token (idle expiry not reached).
    s.issue_tokens(pair(
        "kept-a",
        "kept-r",
        &a,
        Some(&u),
        NOW.sub_secs(60),
        "2",
    ))
    .await
    .unwrap();
    // Expired pair past the idle expiry (1 day after the access token's expiry).
    s.issue_tokens(pair("idle-a", "idle-r", &a, Some(&u), expired, "3"))
        .await
        .unwrap();
    // Expired access token with no refresh token.
    s.issue_tokens(IssueTokens {
        access: at("lone-a", &a, None, NOW.sub_secs(1)),
        refresh: None,
        id_token: None,
    })
    .await
    .unwrap();
    // Revoked long ago, revoked just now (inside the grace period).
    let old = s
        .issue_tokens(pair(
            "x1",
            "revoked-old",
            &a,
            Some(&u),
            NOW.add_secs(60),
            "4",
        ))
        .await
        .unwrap();
    s.revoke_refresh_token(old.refresh.unwrap().id, NOW.sub_secs(600))
        .await
        .unwrap();
    let recent = s
        .issue_tokens(pair(
            "x2",
            "revoked-new",
            &a,
            Some(&u),
            NOW.add_secs(60),
            "5",
        ))
        .await
        .unwrap();
    s.revoke_refresh_token(recent.refresh.unwrap().id, NOW.sub_secs(5))
        .await
        .unwrap();
    // ID tokens: expired with an expired lone access token (both go), expired but bound to
    // a live access token (kept), and unexpired without access token (kept).
    for (jti, at_name, at_expires, id_expires) in [
        (
            "id-gone",
            Some("id-gone-a"),
            NOW.sub_secs(10),
            NOW.sub_secs(10),
        ),
        (
            "id-bound",
            Some("id-bound-a"),
            NOW.add_secs(600),
            NOW.sub_secs(10),
        ),
        ("id-fresh", None, NOW, NOW.add_secs(600)),
    ] {
        let id_token = Some(NewIdToken {
            user_id: Some(u.id),
            jti: jti.into(),
            application_id: Some(a.id),
            expires: id_expires,
            scope: "openid".into(),
            created: NOW,
        });
        match at_name {
            Some(name) => {
                s.issue_tokens(IssueTokens {
                    access: at(name, &a, Some(&u), at_expires),
                    refresh: None,
                    id_token,
                })
                .await
                .unwrap();
            }
            None => {
                // An ID token whose access token is already gone: issue both, then revoke
                // the access token (the ID token stays until it expires).
                let t = s
                    .issue_tokens(IssueTokens {
                        access: at("id-fresh-a", &a, Some(&u), at_expires),
                        refresh: None,
                        id_token,
                    })
                    .await
                    .unwrap();
                s.revoke_access_token(t.access.id, NOW).await.unwrap();
            }
        }
    }
    // Expired grant and device grant.
    s.create_grant(NewGrant {
        resource: String::new(),
        user_id: u.id,
        code_checksum: token_checksum("old-code"),
        application_id: a.id,
        expires: NOW.sub_secs(1),
        redirect_uri: String::new(),
        scope: String::new(),
        pkce: None,
        nonce: String::new(),
        claims: String::new(),
        auth_time: None,
        created: NOW.sub_secs(61),
    })
    .await
    .unwrap();
    s.create_device_grant(NewDeviceGrant {
        device_code_checksum: token_checksum("old-device"),
        user_code_checksum: token_checksum("OLD"),
        scope: String::new(),
        interval: 5,
        expires: NOW.sub_secs(1),
        client_id: "clean".into(),
        created: NOW.sub_secs(1801),
    })
    .await
    .unwrap();

    let grace_cutoff = NOW.sub_secs(60); // REFRESH_TOKEN_GRACE_PERIOD_SECONDS = 60
    let idle_cutoff = NOW.sub_secs(86400); // REFRESH_TOKEN_EXPIRE_SECONDS = 1 day
    for step in CleanupStep::ALL {
        let cutoff = match step {
            CleanupStep::RevokedRefreshTokens => grace_cutoff,
            CleanupStep::ExpiredRefreshTokens => idle_cutoff,
            _ => NOW,
        };
        let expected = s.count_expired(step, cutoff).await.unwrap();
        let mut deleted = 0;
        loop {
            let n = s.delete_expired_batch(step, cutoff, batch).await.unwrap();
            assert!(n <= batch, "{step:?}: a batch deletes at most {batch}");
            if n == 0 {
                break;
            }
            deleted += n;
        }
        assert_eq!(
            deleted, expected,
            "{step:?}: count_expired predicted the deletions"
        );
    }

    let mut alive = Vec::new();
    for jti in ["id-gone", "id-bound", "id-fresh"] {
        if s.find_id_token(jti).await.unwrap().is_some() {
            alive.push(jti);
        }
    }
    for name in [
        "live-a",
        "kept-a",
        "idle-a",
        "lone-a",
        "id-gone-a",
        "id-bound-a",
    ] {
        if s.find_access_token(&token_checksum(name))
            .await
            .unwrap()
            .is_some()
        {
            alive.push(name);
        }
    }
    for name in ["live-r", "kept-r", "idle-r", "revoked-old", "revoked-new"] {
        if s.find_refresh_token(&token_checksum(name))
            .await
            .unwrap()
            .is_some()
        {
            alive.push(name);
        }
    }
    if s.find_grant(&token_checksum("old-code"))
        .await
        .unwrap()
        .is_some()
    {
        alive.push("old-code");
    }
    if s.find_device_grant(&token_checksum("old-device"))
        .await
        .unwrap()
        .is_some()
    {
        alive.push("old-device");
    }
    alive
}

async fn cleanup_deletes_exactly_dot_rows<S: Store>(make: impl AsyncFnMut() -> S) {
    let mut make = make;
    let expected = vec![
        "id-bound",
        "id-fresh",
        "live-a",
        "kept-a",
        "id-bound-a",
        "live-r",
        "kept-r",
        "revoked-new",
    ];
    for batch in [1, 7, 10_000] {
        let s = make().await;
        assert_eq!(
            cleanup_with_batch(&s, batch).await,
            expected,
            "batch size {batch}"
        );
    }
}

/// An orphan (a live refresh token whose access token row is gone) only arises when an
/// access token is deleted out of band — by an operator, or in data imported from DOT.
/// `delete_access_row` deletes the row behind the store's back.
async fn orphaned_refresh_tokens_are_deleted<S: Store, F: AsyncFnOnce(i64)>(
    s: &S,
    delete_access_row: F,
) {
    let u = user(s, "ned").await;
    let a = app(s, "orph").await;
    let issued = s
        .issue_tokens(pair("a", "r", &a, Some(&u), NOW.add_secs(60), "O"))
        .await
        .unwrap();
    s.issue_tokens(pair("b", "rb", &a, Some(&u), NOW.add_secs(60), "P"))
        .await
        .unwrap();
    assert_eq!(
        s.count_expired(CleanupStep::OrphanedRefreshTokens, NOW)
            .await
            .unwrap(),
        0
    );
    delete_access_row(issued.access.id).await;
    let orphan = s
        .find_refresh_token(&token_checksum("r"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (orphan.access_token_id, orphan.revoked),
        (None, None),
        "ON DELETE SET NULL"
    );
    assert_eq!(
        s.count_expired(CleanupStep::OrphanedRefreshTokens, NOW)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.delete_expired_batch(CleanupStep::OrphanedRefreshTokens, NOW, 10)
            .await
            .unwrap(),
        1
    );
    assert!(s
        .find_refresh_token(&token_checksum("r"))
        .await
        .unwrap()
        .is_none());
    assert!(s
        .find_refresh_token(&token_checksum("rb"))
        .await
        .unwrap()
        .is_some());
}

async fn concurrent_inserts_lose_nothing<S: Store>(s: Arc<S>) {
    let a = app(&*s, "load").await;
    let mut tasks = Vec::new();
    for t in 0..16 {
        let s = s.clone();
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..1000 {
                s.issue_tokens(IssueTokens {
                    access: at(&format!("tok-{t}-{i}"), &a, None, NOW.add_secs(3600)),
                    refresh: None,
                    id_token: None,
                })
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for t in 0..16 {
        for i in 0..1000 {
            let found = s
                .find_access_token(&token_checksum(&format!("tok-{t}-{i}")))
                .await
                .unwrap();
            assert!(found.is_some(), "token {t}-{i} lost");
        }
    }
}

// ---------------------------------------------------------------- instantiation

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod memory {
            use tower_oauth_toolkit::store::memory::MemoryStore;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn family_revocation_races_rotation() { super::family_revocation_races_rotation(std::sync::Arc::new(MemoryStore::new())).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn replace_races_revoke() { super::replace_races_revoke(std::sync::Arc::new(MemoryStore::new())).await }
            $( #[tokio::test] async fn $name() { super::$name(&MemoryStore::new()).await } )*
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_rotations_have_one_winner() {
                super::concurrent_rotations_have_one_winner(std::sync::Arc::new(MemoryStore::new())).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_inserts_lose_nothing() {
                super::concurrent_inserts_lose_nothing(std::sync::Arc::new(MemoryStore::new())).await
            }
            #[tokio::test]
            async fn cleanup_deletes_exactly_dot_rows() {
                super::cleanup_deletes_exactly_dot_rows(async || MemoryStore::new()).await
            }
        }
        mod sqlite {
            use crate::common::sqlite_store;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn family_revocation_races_rotation() { let (s, _d) = sqlite_store().await; super::family_revocation_races_rotation(std::sync::Arc::new(s)).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn replace_races_revoke() { let (s, _d) = sqlite_store().await; super::replace_races_revoke(std::sync::Arc::new(s)).await }
            #[tokio::test]
            async fn orphaned_refresh_tokens_are_deleted() {
                let (s, dir) = sqlite_store().await;
                super::orphaned_refresh_tokens_are_deleted(&s, async |id| {
                    use sqlx::Connection;
                    let url = format!("sqlite://{}", dir.path().join("test.db").display());
                    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
                    sqlx::query("PRAGMA foreign_keys = ON").execute(&mut c).await.unwrap();
                    sqlx::query("DELETE FROM oauth2_access_token WHERE id = $1")
                        .bind(id).execute(&mut c).await.unwrap();
                }).await
            }
            $( #[tokio::test] async fn $name() { let (s, _dir) = sqlite_store().await; super::$name(&s).await } )*
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_rotations_have_one_winner() {
                let (s, _dir) = sqlite_store().await;
                super::concurrent_rotations_have_one_winner(std::sync::Arc::new(s)).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_inserts_lose_nothing() {
                let (s, _dir) = sqlite_store().await;
                super::concurrent_inserts_lose_nothing(std::sync::Arc::new(s)).await
            }
            #[tokio::test]
            async fn cleanup_deletes_exactly_dot_rows() {
                let mut dirs = Vec::new();
                super::cleanup_deletes_exactly_dot_rows(async || {
                    let (s, dir) = sqlite_store().await;
                    dirs.push(dir);
                    s
                }).await
            }
        }
        mod postgres {
            use crate::common::{postgres_store, postgres_store_in_schema};
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn family_revocation_races_rotation() { let Some(s) = postgres_store().await else { return }; super::family_revocation_races_rotation(std::sync::Arc::new(s)).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn replace_races_revoke() { let Some(s) = postgres_store().await else { return }; super::replace_races_revoke(std::sync::Arc::new(s)).await }
            #[tokio::test]
            async fn orphaned_refresh_tokens_are_deleted() {
                let Some((s, url, schema)) = postgres_store_in_schema().await else { return };
                super::orphaned_refresh_tokens_are_deleted(&s, async |id| {
                    use sqlx::Connection;
                    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
                    sqlx::query(&format!("DELETE FROM {schema}.oauth2_access_token WHERE id = $1"))
                        .bind(id).execute(&mut c).await.unwrap();
                }).await
            }
            $( #[tokio::test] async fn $name() {
                let Some(s) = postgres_store().await else { return };
                super::$name(&s).await
            } )*
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_rotations_have_one_winner() {
                let Some(s) = postgres_store().await else { return };
                super::concurrent_rotations_have_one_winner(std::sync::Arc::new(s)).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_inserts_lose_nothing() {
                let Some(s) = postgres_store().await else { return };
                super::concurrent_inserts_lose_nothing(std::sync::Arc::new(s)).await
            }
            #[tokio::test]
            async fn cleanup_deletes_exactly_dot_rows() {
                if crate::common::postgres_url().is_none() { return }
                super::cleanup_deletes_exactly_dot_rows(async || postgres_store().await.unwrap()).await
            }
        }
    };
}

suite!(
    users_are_unique_and_found,
    applications_round_trip,
    deleting_an_application_deletes_its_tokens,
    access_token_lookup_by_checksum,
    issue_links_access_refresh_and_id_token,
    rotation_revokes_the_old_pair_once,
    revoking_access_revokes_refresh_and_back,
    family_revocation_covers_every_generation,
    grants_are_single_use_and_replay_revokes,
    replacing_the_access_token_keeps_the_refresh_token,
    live_tokens_and_user_logout,
    device_grants,
);
