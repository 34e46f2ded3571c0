//! The server on a real home: every route of the table answers with the security headers, values
//! are escaped and never echoed from URLs, the language switch, the register and its API, the
//! public rate limit audited as counts, and HTTPS end to end with a generated certificate.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokumei_review::{Provision, Review};
use tokumei_vault::access;
use tokumei_vault::catalog::Provider;
use tokumei_vault::Home;
use tokumei_web::meter::Meter;
use tokumei_web::routes::{Access, SECURITY_HEADERS};
use tokumei_web::{router, AppState, ServeOptions, ROUTES};
use tower::ServiceExt;

const PASS: &str = "correct horse battery staple";
const HOSTILE_NAME: &str = "<script>alert(1)</script>架空総合病院";

fn setup() -> (tempfile::TempDir, Home) {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = tokumei_vault::home::init(&dir.path().join("home"), PASS, Some(2))
        .expect("init")
        .home;
    home.unlock_data_key(PASS).expect("unlock");
    let key = home.default_user_key().expect("technician");
    let tech = access::authenticate(&home, &access::open_user_key(&key, PASS).expect("key"))
        .expect("session");
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

fn state(home: &Home, limit: u32) -> AppState {
    AppState {
        home: home.clone(),
        meter: Arc::new(Meter::new(limit)),
    }
}

async fn get(
    app: &axum::Router,
    uri: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, axum::http::HeaderMap, String) {
    let mut req = Request::builder().uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut req = req.body(Body::empty()).expect("request");
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

fn concrete(path: &str) -> String {
    path.replace("{provider}", "H01")
}

#[tokio::test]
async fn every_route_answers_with_the_security_headers_in_both_languages() {
    let (_dir, home) = setup();
    let app = router(state(&home, 10_000)).expect("router");
    for route in ROUTES {
        // Every route is public so far; a route for signed-in users must be denied here without a
        // session (and the denial audited) before this test may accept it.
        assert_eq!(route.access, Access::Public, "{}", route.path);
        assert_eq!(route.method, "GET");
        for lang in ["ja", "en"] {
            let uri = format!("{}?lang={lang}", concrete(route.path));
            let (status, headers, body) = get(&app, &uri, &[]).await;
            assert_eq!(status, StatusCode::OK, "{uri}");
            for (name, value) in SECURITY_HEADERS {
                assert_eq!(
                    headers.get(*name).and_then(|v| v.to_str().ok()),
                    Some(*value),
                    "{uri} {name}"
                );
            }
            if headers.get("content-type").and_then(|v| v.to_str().ok())
                == Some("text/html; charset=utf-8")
            {
                assert!(body.contains(&format!("<html lang=\"{lang}\">")), "{uri}");
                assert!(!body.contains('⟦'), "{uri}: a message key without text");
            }
        }
    }
}

#[tokio::test]
async fn values_are_escaped_and_nothing_from_a_url_is_echoed() {
    let (_dir, home) = setup();
    let app = router(state(&home, 10_000)).expect("router");
    let (status, _, body) = get(&app, "/notices/H01", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("&lt;script&gt;alert(1)&lt;/script&gt;架空総合病院"));
    assert!(!body.contains("<script>"));
    assert!(body.contains("東京都千代田区架空町1-1") && body.contains("2026-01-05"));
    for uri in [
        "/notices/..%2F..%2Fetc%2Fpasswd",
        "/notices/%3Cb%3Eprobe",
        "/notices/H99",
        "/notices/H01/../../etc/passwd",
        "/no-such-page?q=%3Cscript%3Eprobe",
    ] {
        let (status, headers, body) = get(&app, uri, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert!(
            !body.contains("probe") && !body.contains("passwd") && !body.contains("H99"),
            "{uri}"
        );
        assert!(headers.contains_key("content-security-policy"), "{uri}");
    }
}

#[tokio::test]
async fn the_language_switch_is_kept_in_a_strict_cookie() {
    let (_dir, home) = setup();
    let app = router(state(&home, 10_000)).expect("router");
    let (_, headers, body) = get(&app, "/?lang=en", &[]).await;
    let cookie = headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    for part in ["lang=en", "Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(body.contains("Register of releases") && body.contains("href=\"/?lang=ja\""));
    let (_, headers, body) = get(&app, "/register", &[("cookie", "lang=en")]).await;
    assert!(headers.get("set-cookie").is_none());
    assert!(body.contains("<html lang=\"en\">"));
    let (_, _, body) = get(&app, "/register", &[("accept-language", "ja-JP,en;q=0.5")]).await;
    assert!(body.contains("<html lang=\"ja\">") && body.contains("匿名加工医療情報"));
}

#[tokio::test]
async fn the_register_and_the_notices_are_served_as_documented() {
    let (_dir, home) = setup();
    let app = router(state(&home, 10_000)).expect("router");
    let (_, _, body) = get(&app, "/api/v1/register", &[]).await;
    let rows: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(rows[0]["release_id"], "R-0001");
    assert_eq!(rows[0]["recipient"], "架空製薬株式会社");
    assert_eq!(rows[0]["date"], "2026-11-30");
    let (_, _, body) = get(&app, "/api/v1/notices", &[]).await;
    let notices: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(notices[0]["id"], "H01");
    assert_eq!(notices[0]["wait_days"], 30);
    let (_, _, body) = get(&app, "/openapi.json", &[]).await;
    let doc: serde_json::Value = serde_json::from_str(&body).expect("json");
    let mut documented: Vec<&String> = doc["paths"].as_object().expect("paths").keys().collect();
    documented.sort();
    let mut api: Vec<&str> = ROUTES
        .iter()
        .map(|r| r.path)
        .filter(|p| p.starts_with("/api/"))
        .collect();
    api.sort();
    assert_eq!(documented, api);
    let (_, _, page) = get(&app, "/register?lang=en", &[]).await;
    assert!(
        page.contains("R-0001") && page.contains("架空製薬株式会社") && page.contains("Anonymized")
    );
}

#[tokio::test]
async fn public_requests_over_the_limit_are_refused_and_audited_as_one_count() {
    let (_dir, home) = setup();
    let st = state(&home, 3);
    let app = router(st.clone()).expect("router");
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let (status, headers, _) = get(&app, "/", &[]).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(
                headers.get("retry-after").and_then(|v| v.to_str().ok()),
                Some("60")
            );
        }
        statuses.push(status);
    }
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    let before = home.audit().expect("audit").size();
    tokumei_web::close_interval(&st).await.expect("counted");
    tokumei_web::close_interval(&st)
        .await
        .expect("nothing to count");
    let log = home.audit().expect("audit");
    assert_eq!(
        log.size(),
        before + 1,
        "one entry per interval, none when idle"
    );
    let last = tokumei_audit::last_of(&home.audit_dir(), "web.public")
        .expect("read")
        .expect("entry");
    assert!(last
        .object
        .starts_with("4 public requests (1 refused over the rate limit) from 1 addresses"));
    assert!(!last.object.contains("192.0.2"));
    home.verify_audit(None).expect("the log verifies");
}

#[tokio::test]
async fn https_end_to_end_with_a_generated_certificate() {
    let (_dir, home) = setup();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let opts = ServeOptions::default();
    let server_home = home.clone();
    let server = tokio::spawn(async move {
        tokumei_web::run(
            listener,
            server_home,
            &opts,
            |r| {
                let _ = ready_tx.send(r.clone());
            },
            async {
                let _ = stopped.await;
            },
        )
        .await
    });
    let ready = ready_rx.await.expect("ready");
    let cert_path = ready
        .certificate
        .expect("a generated certificate is written");
    let pem = std::fs::read(&cert_path).expect("certificate");
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots.add(c.expect("pem")).expect("root");
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(ready.address)
        .await
        .expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut tls = connector
        .connect(name, tcp)
        .await
        .expect("the certificate is trusted");
    tls.write_all(b"GET /notices?lang=en HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut response = Vec::new();
    tls.read_to_end(&mut response).await.expect("read");
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("strict-transport-security: max-age=63072000"));
    assert!(text.contains("&lt;script&gt;"));
    // Plain HTTP on the same port gets no page.
    let mut plain = tokio::net::TcpStream::connect(ready.address)
        .await
        .expect("connect");
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    let mut got = Vec::new();
    let _ = plain.read_to_end(&mut got).await;
    assert!(!String::from_utf8_lossy(&got).contains("<html"));
    let _ = stop.send(());
    server
        .await
        .expect("joined")
        .expect("the server stops cleanly");
    let last = tokumei_audit::last_of(&home.audit_dir(), "web.public")
        .expect("read")
        .expect("counted at shutdown");
    assert!(
        last.object.starts_with("1 public requests"),
        "{}",
        last.object
    );
}
