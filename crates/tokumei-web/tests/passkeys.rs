//! The passkey calls through the router: each needs its CSRF token (the sign-in form's before
//! sign-in, the session's after), a ceremony's id works once, a response that does not verify
//! signs nobody in, and without a domain name the pages say passkeys are off. (The ceremonies
//! themselves are tested in the vault, and in Chromium by the browser walk.)

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::Value;
use tokumei_vault::access;
use tokumei_vault::passkey::RelyingParty;
use tokumei_web::router;

/// A JSON POST with these headers.
async fn post_json(
    app: &axum::Router,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, Value) {
    let mut all = headers.to_vec();
    all.push(("content-type", "application/json"));
    let (status, _, text) = raw(app, "POST", uri, &all, body.as_bytes().to_vec()).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn passkey_calls_need_their_token_and_a_ceremony_works_once() {
    let (_dir, home) = setup();
    let tech = technician(&home);
    let tech2 = user(&home, "tech2", access::Role::Technician);
    let st = state(&home, 10_000);
    let rp = RelyingParty::for_origin("https://localhost:8443").expect("relying party");
    assert!(st.party.set(rp).is_ok());
    let app = router(st).expect("router");

    // Before sign-in: the sign-in form's token, with its cookie.
    let (_, headers, body) = get(&app, "/signin", &[]).await;
    assert!(body.contains("id=\"passkey-signin\""), "{body}");
    let form_cookie = cookie_value(&set_cookie(&headers, "__Host-form").expect("form cookie"));
    let token = csrf(&body);
    let begin = "/signin/passkey/begin";
    let (status, _) = post_json(&app, begin, &[("cookie", &form_cookie)], "{}").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = post_json(&app, begin, &[("x-csrf-token", &token)], "{}").await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the token without its cookie"
    );
    let with_form = [("cookie", form_cookie.as_str()), ("x-csrf-token", &token)];
    let (status, begun) = post_json(&app, begin, &with_form, "{}").await;
    assert_eq!(status, StatusCode::OK, "{begun}");
    let o = &begun["options"]["publicKey"];
    assert_eq!(o["rpId"], "localhost");
    assert_eq!(o["userVerification"], "required");
    assert!(o["allowCredentials"].as_array().is_none_or(Vec::is_empty));
    let id = begun["id"].as_str().expect("id");

    let finish = "/signin/passkey/finish";
    // An assertion by a credential nobody registered.
    let forged = format!(
        r#"{{"id":"{id}","credential":{{"id":"AAAA","rawId":"AAAA","type":"public-key",
        "response":{{"authenticatorData":"AAAA","clientDataJSON":"e30","signature":"AAAA",
        "userHandle":"AAAAAAAAAAAAAAAAAAAAAA"}}}}}}"#
    );
    let (status, answer) = post_json(&app, finish, &with_form, &forged).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    let (status, _) = post_json(&app, finish, &with_form, &forged).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a ceremony works once");

    // After sign-in: the session's token.
    let session = signed_in(
        &app,
        &home,
        (&tech, &tech2),
        "chair",
        access::Role::Committee,
    )
    .await;
    let (status, _, page) = get(&app, "/passkeys", &[("cookie", &session)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("id=\"passkey-add\""), "{page}");
    let session_token = page
        .split("data-csrf=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the form's token")
        .to_string();
    let add = "/passkeys/begin";
    let (status, _) = post_json(&app, add, &[("cookie", &session)], "{}").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let with_session = [
        ("cookie", session.as_str()),
        ("x-csrf-token", &session_token),
    ];
    let (status, begun) = post_json(&app, add, &with_session, "{}").await;
    assert_eq!(status, StatusCode::OK, "{begun}");
    let o = &begun["options"]["publicKey"];
    assert_eq!(o["user"]["name"], "chair");
    assert_ne!(o["user"]["id"], "chair", "the user handle is not the name");
    assert_eq!(o["authenticatorSelection"]["residentKey"], "required");
    // A sign-in ceremony's id does not finish a registration.
    let (_, signin_begun) = post_json(&app, begin, &with_form, "{}").await;
    let crossed = format!(
        r#"{{"id":"{}","label":"x","credential":{{}}}}"#,
        signin_begun["id"].as_str().expect("id")
    );
    let (status, _) = post_json(&app, "/passkeys/finish", &with_session, &crossed).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Removing a passkey that is not the user's.
    let fields = form(&[("csrf", &session_token), ("id", "0123456789abcdef")]);
    let (status, _, _) = send(
        &app,
        "POST",
        "/passkeys/remove",
        &[("cookie", &session)],
        &fields,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let log = tokumei_audit::entries_of(&home.audit_dir(), &["web.signin"], false).expect("log");
    assert!(log
        .iter()
        .any(|e| e.object == "an unknown passkey" && e.outcome == "refused"));
}

#[tokio::test]
async fn without_a_domain_name_passkeys_are_off() {
    let (_dir, home) = setup();
    let tech = technician(&home);
    let tech2 = user(&home, "tech2", access::Role::Technician);
    let app = router(state(&home, 10_000)).expect("router");
    let session = signed_in(
        &app,
        &home,
        (&tech, &tech2),
        "chair",
        access::Role::Committee,
    )
    .await;
    let (status, _, page) = get(&app, "/passkeys?lang=en", &[("cookie", &session)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Passkeys are off"), "{page}");
    assert!(!page.contains("passkey-add"));
}
