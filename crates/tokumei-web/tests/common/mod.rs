//! What the server's tests share: a home with a provider and a provision, requests through the
//! router, users and their web sign-in.
#![allow(dead_code)]

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use tokumei_review::{Provision, Review};
use tokumei_vault::access;
use tokumei_vault::catalog::Provider;
use tokumei_vault::webauth::{current_code, WebAuth};
use tokumei_vault::Home;
use tokumei_web::AppState;
use tower::ServiceExt;

pub const PASS: &str = "correct horse battery staple";

pub const HOSTILE_NAME: &str = "<script>alert(1)</script>架空総合病院";

pub fn setup() -> (tempfile::TempDir, Home) {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = tokumei_vault::home::init(&dir.path().join("home"), PASS, Some(2))
        .expect("init")
        .home;
    home.unlock_data_key(PASS).expect("unlock");
    let tech = technician(&home);
    let provider_key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let provider = Provider {
        id: "H01".into(),
        public_key: hex::encode(provider_key.verifying_key().to_bytes()),
        name: HOSTILE_NAME.into(),
        address: "東京都千代田区架空町1-1".into(),
        representative: "院長 架空".into(),
        acquisition: "診療の過程で取得".into(),
        notice_filing: None,
        notice_start: Some("2026-01-05".into()),
    };
    tokumei_vault::provider::register(&home, &tech, &provider).expect("provider");
    let provision = Provision {
        release_id: "R-0001".into(),
        application_id: "A-0001".into(),
        decision_sha256: "0".repeat(64),
        recipient: "架空製薬株式会社".into(),
        kind: "anonymized".into(),
        package_sha256: "0".repeat(64),
        provided_at: "2026-11-30T10:00:00Z".into(),
        contract_expiry: "2099-03-31".into(),
        destroyed_at: None,
        destruction_certificate_sha256: None,
    };
    Review::open(&home)
        .expect("review")
        .record_provision(&tech, &provision)
        .expect("provision");
    (dir, home)
}

pub fn state(home: &Home, limit: u32) -> AppState {
    AppState::new(
        home.clone(),
        home.unlock_data_key(PASS).expect("key"),
        limit,
    )
}

pub async fn get(
    app: &axum::Router,
    uri: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, axum::http::HeaderMap, String) {
    send(app, "GET", uri, headers, "").await
}

pub fn header<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// A request from one address; a POST body is a form.
pub async fn send(
    app: &axum::Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    form: &str,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let mut all = headers.to_vec();
    if method == "POST" {
        all.push(("content-type", "application/x-www-form-urlencoded"));
    }
    raw(app, method, uri, &all, form.as_bytes().to_vec()).await
}

/// A request with these headers and body, from one address.
pub async fn raw(
    app: &axum::Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut req = req.body(Body::from(body)).expect("request");
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
    let resp = app.clone().oneshot(req).await.expect("response");
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.expect("body");
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

/// A user with a key wrapped by [`PASS`]; their command-line session.
pub fn user(home: &Home, name: &str, role: access::Role) -> access::Session {
    let (wrapped, public) = access::new_user_key(PASS, Some(2)).expect("key");
    home.catalog()
        .expect("catalog")
        .add_user(&access::User {
            name: name.into(),
            role,
            // A provider's user belongs to the home's provider.
            provider_id: (role == access::Role::ProviderAdmin).then(|| "H01".to_string()),
            public_key: public,
            requested_by: "総務部".into(),
            approved_by: "部長".into(),
            granted_at: "2026-01-01T00:00:00Z".into(),
            reviewed_at: "2026-01-01T00:00:00Z".into(),
            revoked_at: None,
        })
        .expect("user");
    let path = home.root.join(format!("{name}.key"));
    std::fs::write(&path, wrapped).expect("write");
    access::authenticate(home, &access::open_user_key(&path, PASS).expect("open")).expect("session")
}

/// The session of the home's first technician.
pub fn technician(home: &Home) -> access::Session {
    let key = home.default_user_key().expect("tech");
    access::authenticate(home, &access::open_user_key(&key, PASS).expect("key")).expect("session")
}

/// The value of a cookie a response sets.
pub fn set_cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

pub fn cookie_value(set: &str) -> String {
    set.split(';').next().unwrap_or("").to_string()
}

/// The CSRF token of a page's form.
pub fn csrf(body: &str) -> String {
    let at = body.find("name=\"csrf\" value=\"").expect("a form") + 19;
    body[at..].split('"').next().unwrap_or("").to_string()
}

pub fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            let v: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Registers `name` with `role`, enrols them (invited by `issuer`, approved by `approver`) and
/// signs them in through the pages; their session cookie.
pub async fn signed_in(
    app: &axum::Router,
    home: &Home,
    (issuer, approver): (&access::Session, &access::Session),
    name: &str,
    role: access::Role,
) -> String {
    user(home, name, role);
    let web = WebAuth::open(home).expect("store");
    let inv = web.invite(issuer, name, 24).expect("invite");
    web.approve(approver, &inv.id).expect("approve");
    let key = home.unlock_data_key(PASS).expect("key");
    let password = "a long web password";
    let e = web.enrol(&key, &inv.token, password).expect("enrol");
    let (_, headers, body) = get(app, "/signin", &[]).await;
    let form_cookie = cookie_value(&set_cookie(&headers, "__Host-form").expect("form cookie"));
    let code = current_code(&e.secret_base32, chrono::Utc::now().timestamp()).expect("code");
    let fields = form(&[
        ("user", name),
        ("password", password),
        ("code", &code),
        ("csrf", &csrf(&body)),
    ]);
    let (status, headers, _) =
        send(app, "POST", "/signin", &[("cookie", &form_cookie)], &fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{name} signs in");
    cookie_value(&set_cookie(&headers, "__Host-session").expect("session"))
}

/// A GET whose body is kept as bytes (downloads).
pub async fn raw_bytes(
    app: &axum::Router,
    uri: &str,
    cookie: &str,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let mut req = Request::builder()
        .method("GET")
        .uri(uri)
        .header("cookie", cookie)
        .body(Body::empty())
        .expect("request");
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
    let resp = app.clone().oneshot(req).await.expect("response");
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 26).await.expect("body");
    (parts.status, parts.headers, bytes.to_vec())
}
