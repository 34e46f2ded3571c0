//! The server on a real home: every route of the table answers with the security headers, values
//! are escaped and never echoed from URLs, the language switch, the register and its API, the
//! public rate limit audited as counts, and HTTPS end to end with a generated certificate.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokumei_vault::access;
use tokumei_vault::webauth::{current_code, WebAuth};
use tokumei_web::routes::{Access, SECURITY_HEADERS};
use tokumei_web::{router, ServeOptions, ROUTES};

fn concrete(path: &str) -> String {
    path.replace("{provider}", "H01")
        .replace("{id}", "A-0001")
        .replace("{meeting}", "M-0001")
}

#[tokio::test]
async fn every_route_answers_with_the_security_headers_and_signed_in_routes_need_a_session() {
    let (_dir, home) = setup();
    let st = state(&home, 10_000);
    let app = router(st.clone()).expect("router");
    let mut signed_in = 0;
    for route in ROUTES {
        let uri = concrete(route.path);
        let (status, headers, body) = send(&app, route.method, &uri, &[], "").await;
        for (name, value) in SECURITY_HEADERS {
            assert_eq!(
                headers.get(*name).and_then(|v| v.to_str().ok()),
                Some(*value),
                "{uri} {name}"
            );
        }
        match (route.access, route.method) {
            (Access::SignedIn(_), "GET") => {
                signed_in += 1;
                assert_eq!(status, StatusCode::SEE_OTHER, "{uri}");
                assert_eq!(header(&headers, "location"), "/signin");
            }
            (Access::SignedIn(_), _) => {
                signed_in += 1;
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}");
            }
            // A public form without its form token is refused.
            (Access::Public, "POST") => assert!(status.is_client_error(), "{uri}: {status}"),
            (Access::Public, _) => {
                for lang in ["ja", "en"] {
                    let uri = format!("{uri}?lang={lang}");
                    let (status, headers, body) = get(&app, &uri, &[]).await;
                    assert_eq!(status, StatusCode::OK, "{uri}");
                    if header(&headers, "content-type") == "text/html; charset=utf-8" {
                        assert!(body.contains(&format!("<html lang=\"{lang}\">")), "{uri}");
                        assert!(!body.contains('⟦'), "{uri}: a message key without text");
                    }
                }
            }
        }
        assert!(!body.contains('⟦'), "{uri}");
    }
    assert!(signed_in >= 2);
    // Requests without a session are counted in the interval's one entry, not one by one.
    let counts = st.meter.close().expect("counts");
    assert_eq!(counts.denied, signed_in);
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
    let mut documented: Vec<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, ops)| {
            let methods: Vec<String> = ops.as_object().expect("ops").keys().cloned().collect();
            methods.into_iter().map(move |m| (path.clone(), m))
        })
        .collect();
    documented.sort();
    let mut api: Vec<(String, String)> = ROUTES
        .iter()
        .filter(|r| r.path.starts_with("/api/"))
        .map(|r| (r.path.to_string(), r.method.to_lowercase()))
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
    let server_state = state(&home, 600);
    let server = tokio::spawn(async move {
        tokumei_web::run(
            listener,
            server_state,
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

#[tokio::test]
async fn enrol_sign_in_see_who_and_sign_out_through_the_pages() {
    let (_dir, home) = setup();
    let tech = technician(&home);
    let tech2 = user(&home, "tech2", access::Role::Technician);
    user(&home, "chair", access::Role::Committee);
    let web = WebAuth::open(&home).expect("store");
    let inv = web.invite(&tech, "chair", 24).expect("invite");
    web.approve(&tech2, &inv.id).expect("approve");
    let app = router(state(&home, 10_000)).expect("router");
    let password = "a long web password";

    // Enrolment: the form's token must come back with its cookie.
    let (_, headers, body) = get(&app, "/enrol", &[]).await;
    let form_cookie = cookie_value(&set_cookie(&headers, "__Host-form").expect("form cookie"));
    let fields = [
        ("token", inv.token.as_str()),
        ("password", password),
        ("again", password),
    ];
    let (status, _, _) = send(
        &app,
        "POST",
        "/enrol",
        &[],
        &form(&[&fields[..], &[("csrf", &csrf(&body))]].concat()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no form cookie");
    let (status, _, page) = send(
        &app,
        "POST",
        "/enrol",
        &[("cookie", &form_cookie)],
        &form(&[&fields[..], &[("csrf", &csrf(&body))]].concat()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let at = page.find("<code>").expect("secret") + 6;
    let secret = page[at..].split('<').next().unwrap_or("").to_string();
    assert_eq!(secret.len(), 32);

    // Sign-in: a wrong code is refused without echoing anything typed; the right one starts a
    // session in a strict cookie.
    let now = chrono::Utc::now().timestamp();
    let (_, headers, body) = get(&app, "/signin", &[]).await;
    let form_cookie = cookie_value(&set_cookie(&headers, "__Host-form").expect("form cookie"));
    let wrong = form(&[
        ("user", "chair"),
        ("password", password),
        ("code", "000000"),
        ("csrf", &csrf(&body)),
    ]);
    let (status, _, page) =
        send(&app, "POST", "/signin", &[("cookie", &form_cookie)], &wrong).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!page.contains(password) && !page.contains("chair"));
    let (_, headers, body) = get(&app, "/signin", &[]).await;
    let form_cookie = cookie_value(&set_cookie(&headers, "__Host-form").expect("form cookie"));
    let code = current_code(&secret, now).expect("code");
    let right = form(&[
        ("user", "chair"),
        ("password", password),
        ("code", &code),
        ("csrf", &csrf(&body)),
    ]);
    let (status, headers, _) =
        send(&app, "POST", "/signin", &[("cookie", &form_cookie)], &right).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(header(&headers, "location"), "/me");
    let set = set_cookie(&headers, "__Host-session").expect("session cookie");
    for part in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(part), "{set}");
    }
    let session = cookie_value(&set);

    // The signed-in page, audited as the user with the route's pattern.
    let (status, _, me) = get(&app, "/me?lang=en", &[("cookie", &session)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(me.contains("chair") && me.contains("committee"));
    let last = tokumei_audit::last_of(&home.audit_dir(), "web.request")
        .expect("read")
        .expect("entry");
    assert_eq!(
        (
            last.actor.as_str(),
            last.role.as_str(),
            last.object.as_str(),
            last.outcome.as_str()
        ),
        ("chair", "committee", "GET /me", "200")
    );

    // Sign-out needs the session's CSRF token; then the session is gone.
    let (status, _, _) = send(
        &app,
        "POST",
        "/signout",
        &[("cookie", &session)],
        "csrf=forged",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let out = form(&[("csrf", &csrf(&me))]);
    let (status, headers, _) = send(&app, "POST", "/signout", &[("cookie", &session)], &out).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(set_cookie(&headers, "__Host-session").is_some_and(|c| c.contains("Max-Age=0")));
    let (status, headers, _) = get(&app, "/me", &[("cookie", &session)]).await;
    assert_eq!(
        (status, header(&headers, "location")),
        (StatusCode::SEE_OTHER, "/signin")
    );
    home.verify_audit(None).expect("the log verifies");
}

#[tokio::test]
async fn the_audit_log_is_searched_by_auditors_and_a_wrong_role_is_refused_and_audited() {
    let (_dir, home) = setup();
    let tech = technician(&home);
    let tech2 = user(&home, "tech2", access::Role::Technician);
    let app = router(state(&home, 10_000)).expect("router");
    let chair = signed_in(
        &app,
        &home,
        (&tech, &tech2),
        "chair",
        access::Role::Committee,
    )
    .await;
    let (status, _, _) = get(&app, "/audit", &[("cookie", &chair)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let denied = tokumei_audit::last_of(&home.audit_dir(), "web.denied")
        .expect("read")
        .expect("entry");
    assert_eq!(
        (denied.actor.as_str(), denied.object.as_str()),
        ("chair", "GET /audit")
    );

    let auditor = signed_in(
        &app,
        &home,
        (&tech, &tech2),
        "auditor",
        access::Role::Auditor,
    )
    .await;
    let (_, _, me) = get(&app, "/me?lang=en", &[("cookie", &auditor)]).await;
    assert!(me.contains("href=\"/audit\"") && !me.contains('⟦'));
    let (status, _, page) = get(
        &app,
        "/audit?action=web.signin&actor=chair&lang=en",
        &[("cookie", &auditor)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("The whole log verifies"), "{page}");
    assert!(page.contains("web.signin") && !page.contains("web.invite"));
    assert!(!page.contains('⟦'));
    let searched = tokumei_audit::last_of(&home.audit_dir(), "audit.search")
        .expect("read")
        .expect("entry");
    assert_eq!(searched.actor, "auditor");
    let (status, _, _) = get(&app, "/audit?from=2026-13-45", &[("cookie", &auditor)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, page) = get(&app, "/audit?actor=%3Cscript%3E", &[("cookie", &auditor)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!page.contains("<script>"));

    // The grants with their reviews, for auditors and technicians; the ledger, for the committee
    // too.
    let (status, _, page) = get(&app, "/users?lang=en", &[("cookie", &auditor)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("tech2") && page.contains("Grants due for review") && !page.contains('⟦')
    );
    let (status, _, _) = get(&app, "/users", &[("cookie", &chair)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for who in [&auditor, &chair] {
        let (status, _, page) = get(&app, "/ledger?lang=en", &[("cookie", who)]).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("R-0001") && page.contains(&"0".repeat(64)) && !page.contains('⟦'));
    }
    let (_, _, me) = get(&app, "/me", &[("cookie", &chair)]).await;
    assert!(me.contains("href=\"/ledger\"") && !me.contains("href=\"/audit\""));
}

#[tokio::test]
async fn an_auditor_proves_the_log_extends_a_head_kept_elsewhere() {
    let (_dir, home) = setup();
    let tech = technician(&home);
    let tech2 = user(&home, "tech2", access::Role::Technician);
    let app = router(state(&home, 10_000)).expect("router");
    let auditor = signed_in(
        &app,
        &home,
        (&tech, &tech2),
        "auditor",
        access::Role::Auditor,
    )
    .await;
    let en = [("cookie", auditor.as_str()), ("accept-language", "en")];
    let (status, _, page) = get(&app, "/audit/consistency?lang=en", &en).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains('⟦'));
    let kept = page
        .split("<pre><code>")
        .nth(1)
        .and_then(|r| r.split("</code></pre>").next())
        .expect("the head")
        .replace("&quot;", "\"");
    let old: tokumei_audit::SignedHead = serde_json::from_str(&kept).expect("a signed head");
    // The log grows, with an entry signed by a user's own key (a command run without the home
    // passphrase); the earlier head is still extended by the operator's new one.
    let _ = signed_in(
        &app,
        &home,
        (&tech, &tech2),
        "chair",
        access::Role::Committee,
    )
    .await;
    let own = tokumei_vault::open(&home.root).expect("the home, without its passphrase");
    let key = own.root.join("tech2.key");
    let s = access::authenticate(&own, &access::open_user_key(&key, PASS).expect("key"))
        .expect("session");
    s.audit(&own, "test.user-signed", "an entry", "ok", None)
        .expect("signed by tech2");
    let log = std::fs::read_to_string(home.audit_dir().join("entries.jsonl")).expect("log");
    assert!(
        log.lines().last().is_some_and(|l| l.contains("\"signer\"")),
        "user-signed"
    );
    let _ = signed_in(
        &app,
        &home,
        (&tech, &tech2),
        "member",
        access::Role::Committee,
    )
    .await;
    let token = csrf(&page);
    let (status, _, page) = send(
        &app,
        "POST",
        "/audit/consistency",
        &en,
        &form(&[("csrf", &token), ("head", &kept)]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("extends the earlier one"), "{page}");
    let new_size: u64 = page
        .split(" → ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("size");
    assert!(new_size > old.size);
    let entry = tokumei_audit::last_of(&home.audit_dir(), "audit.consistency")
        .expect("read")
        .expect("entry");
    assert!(entry.outcome.starts_with("extended") && entry.actor == "auditor");
    // A head with another root (a rewritten past), or no head at all, is refused.
    let forged = kept.replace(&old.root, &"0".repeat(64));
    let (status, _, page) = send(
        &app,
        "POST",
        "/audit/consistency",
        &en,
        &form(&[("csrf", &token), ("head", &forged)]),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(page.contains("Not consistent"), "{page}");
    let (status, _, _) = send(
        &app,
        "POST",
        "/audit/consistency",
        &en,
        &form(&[("csrf", &token), ("head", "<script>")]),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_provider_prints_a_poster_whose_qr_code_leads_to_its_notice() {
    let (_dir, home) = setup();
    let st = state(&home, 10_000);
    let _ = st.public_url.set("https://tokumei.example.jp".into());
    let app = router(st).expect("router");
    let (status, _, page) = get(&app, "/notices/H01?lang=en", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("href=\"/notices/H01/poster\""));
    let (status, _, page) = get(&app, "/notices/H01/poster?lang=ja", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<svg") && page.contains("<path"), "{page}");
    assert!(page.contains("https://tokumei.example.jp/notices/H01"));
    assert!(page.contains("&lt;script&gt;") && !page.contains("<script>"));
    let (status, _, _) = get(&app, "/notices/H99/poster", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
