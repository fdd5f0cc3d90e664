//! Credentials, `/credits`, `/pubkeys`, `/capabilities` and the four lookups, over raw HTTP.

use tocsin::store::GatewayMode;

use crate::helpers::{spawn_app, urlencode};

#[tokio::test]
async fn credits_answers_the_balance_with_query_or_form_credentials() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 42).await;
    assert_eq!(app.get_as(&gw, "/credits").await, (200, "42".into()));
    // The same credentials in a form body are accepted too.
    let res = app
        .client
        .get(app.url("/credits"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(gw.credentials())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "42");
}

#[tokio::test]
async fn unknown_id_and_wrong_secret_get_the_same_401() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 1).await;
    let wrong_secret = app
        .client
        .get(app.url(&format!(
            "/credits?from={}&secret=WRONGsecret1",
            urlencode(gw.id.as_str())
        )))
        .send()
        .await
        .unwrap();
    let unknown_id = app
        .client
        .get(app.url(&format!("/credits?from=%2ANOSUCH1&secret={}", gw.secret)))
        .send()
        .await
        .unwrap();
    let missing = app.client.get(app.url("/credits")).send().await.unwrap();
    let user_id = app
        .client
        .get(app.url(&format!("/credits?from=ECHOECHO&secret={}", gw.secret)))
        .send()
        .await
        .unwrap();
    let mut answers = Vec::new();
    for res in [wrong_secret, unknown_id, missing, user_id] {
        answers.push((res.status().as_u16(), res.text().await.unwrap()));
    }
    assert!(
        answers
            .iter()
            .all(|a| *a == (401, "invalid credentials".to_owned())),
        "{answers:?}"
    );
}

#[tokio::test]
async fn pubkeys_serve_identities_and_gateway_ids_in_lowercase_hex() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 0).await;
    let alice = app.identity("ALICE123", None, None).await;
    assert_eq!(
        app.get_as(&gw, "/pubkeys/ALICE123").await,
        (200, alice.public.to_string())
    );
    // A gateway ID's own key, with '*' raw in the path as SDKs send it.
    assert_eq!(
        app.get_as(&gw, &format!("/pubkeys/{}", gw.id)).await,
        (200, gw.keys.public.to_string())
    );
    assert_eq!(app.get_as(&gw, "/pubkeys/NOSUCHID").await.0, 404);
    assert_eq!(app.get_as(&gw, "/pubkeys/TEST").await.0, 404);
    app.state
        .store
        .revoke_identity(&"ALICE123".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(app.get_as(&gw, "/pubkeys/ALICE123").await.0, 404);
}

#[tokio::test]
async fn capabilities_are_comma_separated_without_spaces() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 0).await;
    app.identity("BOB45678", None, None).await;
    assert_eq!(
        app.get_as(&gw, "/capabilities/BOB45678").await,
        (200, "text,image,file".into())
    );
    assert_eq!(app.get_as(&gw, "/capabilities/NOSUCHID").await.0, 404);
    assert_eq!(app.get_as(&gw, "/capabilities/X").await.0, 404);
}

#[tokio::test]
async fn lookups_resolve_phone_and_email_in_plain_and_hashed_form() {
    let app = spawn_app().await;
    let gw = app.gateway(GatewayMode::E2e, 0).await;
    app.identity("CAROL123", Some("41791234567"), Some("test@threema.ch"))
        .await;
    let found = (200, "CAROL123".to_owned());
    assert_eq!(app.get_as(&gw, "/lookup/phone/41791234567").await, found);
    assert_eq!(
        app.get_as(&gw, "/lookup/phone/+41791234567").await,
        found,
        "raw '+' in the path"
    );
    assert_eq!(
        app.get_as(&gw, "/lookup/email/Test@Threema.ch").await,
        found
    );
    assert_eq!(
        app.get_as(
            &gw,
            "/lookup/phone_hash/ad398f4d7ebe63c6550a486cc6e07f9baa09bd9d8b3d8cb9d9be106d35a7fdbc"
        )
        .await,
        found
    );
    assert_eq!(
        app.get_as(
            &gw,
            "/lookup/email_hash/1EA093239CC5F0E1B6EC81B866265B921F26DC4033025410063309F4D1A8EE2C"
        )
        .await,
        found,
        "upper-case hex is accepted"
    );
    assert_eq!(app.get_as(&gw, "/lookup/phone/-12537825318").await.0, 404);
    assert_eq!(app.get_as(&gw, "/lookup/phone/44123456789").await.0, 404);
    assert_eq!(app.get_as(&gw, "/lookup/email/invalid").await.0, 404);
    assert_eq!(app.get_as(&gw, "/lookup/phone_hash/abcd").await.0, 400);
    assert_eq!(
        app.get_as(&gw, &format!("/lookup/email_hash/{}", "0".repeat(64)))
            .await
            .0,
        404
    );
    // Lookups are free by default.
    assert_eq!(app.balance(&gw).await, 0);
}

#[tokio::test]
async fn priced_lookups_are_charged_and_refused_with_402_when_unpaid() {
    let app = crate::helpers::spawn_app_with(&[("TOCSIN__PRICES__LOOKUP", "2".into())]).await;
    let gw = app.gateway(GatewayMode::E2e, 3).await;
    app.identity("DAVE1234", None, None).await;
    assert_eq!(app.get_as(&gw, "/pubkeys/DAVE1234").await.0, 200);
    assert_eq!(app.balance(&gw).await, 1);
    assert_eq!(
        app.get_as(&gw, "/pubkeys/DAVE1234").await,
        (402, "not enough credits".into())
    );
    // A miss is not charged.
    assert_eq!(app.get_as(&gw, "/pubkeys/NOSUCHID").await.0, 404);
    assert_eq!(app.balance(&gw).await, 1);
    let ledger = app.state.store.ledger(gw.account, 10).await.unwrap();
    assert_eq!(
        (ledger[0].delta, ledger[0].reason.as_str()),
        (-2, "pubkey lookup")
    );
}
