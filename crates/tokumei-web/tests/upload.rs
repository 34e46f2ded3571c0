//! A provider's upload through the API the upload page's script uses: declared, sent in pieces
//! (a wrong offset answered with the right one, a piece past the declared size refused and cut
//! off), resumed, and received by a technician with its per-file counts; a package naming
//! another provider than its uploader, or a hash other than declared, is refused.

mod common;

use axum::http::StatusCode;
use common::*;
use sha2::{Digest, Sha256};
use tokumei_vault::access::Role;
use tokumei_vault::catalog::Provider;
use tokumei_vault::Home;

const DEATHS: &str =
    "municipality_code,record_kind,name_kanji,name_kana,birth_date,sex,last_address,\
postal_code,removal_reason,removal_date,death_date,notified_date,resident_number\r\n\
022012,除票,試験　花子,シケン　ハナコ,1940-04-12,2,青森県青森市新町１丁目２－３,030-0801,死亡,\
2024-02-03,2024-02-03,2024-02-05,0000000001\r\n";

/// A package of one deaths file, signed by `seed`'s key in the name of `provider`.
fn package(home: &Home, dir: &std::path::Path, provider: &str, seed: u8) -> Vec<u8> {
    let extract = dir.join(format!("extract-{provider}"));
    std::fs::create_dir_all(extract.join("death")).expect("mkdir");
    std::fs::write(extract.join("death/deaths.csv"), DEATHS).expect("write");
    let out = dir.join(format!("{provider}.tkm"));
    tokumei_vault::package::package(
        &ed25519_dalek::SigningKey::from_bytes(&[seed; 32]),
        provider,
        &home.recipient().expect("recipient"),
        &extract,
        &out,
        &Default::default(),
    )
    .expect("package");
    std::fs::read(&out).expect("read")
}

async fn declare(
    app: &axum::Router,
    who: &str,
    csrf: &str,
    bytes: &[u8],
    sha: Option<String>,
) -> String {
    let body = serde_json::json!({ "size": bytes.len(), "sha256": sha }).to_string();
    let (status, _, json) = raw(
        app,
        "POST",
        "/api/v1/uploads",
        &[
            ("cookie", who),
            ("x-csrf-token", csrf),
            ("content-type", "application/json"),
        ],
        body.into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    v["id"].as_str().expect("id").to_string()
}

async fn piece(
    app: &axum::Router,
    who: &str,
    csrf: &str,
    id: &str,
    offset: usize,
    bytes: &[u8],
) -> (StatusCode, String) {
    let offset = offset.to_string();
    let (status, headers, _) = raw(
        app,
        "PATCH",
        &format!("/api/v1/uploads/{id}"),
        &[
            ("cookie", who),
            ("x-csrf-token", csrf),
            ("upload-offset", &offset),
        ],
        bytes.to_vec(),
    )
    .await;
    (status, header(&headers, "upload-offset").to_string())
}

#[tokio::test]
async fn a_provider_uploads_in_resumable_pieces_and_a_technician_receives_it() {
    let (dir, home) = setup();
    let (tech, tech2) = (technician(&home), user(&home, "tech2", Role::Technician));
    let app = tokumei_web::router(state(&home, 10_000)).expect("router");
    let prov = signed_in(
        &app,
        &home,
        (&tech, &tech2),
        "h01-staff",
        Role::ProviderAdmin,
    )
    .await;
    let t = signed_in(&app, &home, (&tech, &tech2), "tech3", Role::Technician).await;
    let (status, _, page) = get(&app, "/uploads?lang=en", &[("cookie", &prov)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("src=\"/static/upload.js\"") && !page.contains('⟦'));
    let csrf = page
        .split("data-csrf=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("token")
        .to_string();

    let bytes = package(&home, dir.path(), "H01", 7);
    let sha = hex::encode(Sha256::digest(&bytes));
    let id = declare(&app, &prov, &csrf, &bytes, Some(sha)).await;
    let half = bytes.len() / 2;
    assert_eq!(
        piece(&app, &prov, &csrf, &id, 0, &bytes[..half]).await,
        (StatusCode::NO_CONTENT, half.to_string())
    );
    // A piece sent again from the start is told where the upload stands.
    assert_eq!(
        piece(&app, &prov, &csrf, &id, 0, &bytes[..half]).await,
        (StatusCode::CONFLICT, half.to_string())
    );
    // A piece past the declared size is refused and cut off.
    let mut long = bytes[half..].to_vec();
    long.push(0);
    assert_eq!(
        piece(&app, &prov, &csrf, &id, half, &long).await,
        (StatusCode::PAYLOAD_TOO_LARGE, half.to_string())
    );
    // Without the CSRF token, or from a technician, nothing is written.
    let (status, _) = piece(&app, &prov, "forged", &id, half, &bytes[half..]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = piece(&app, &t, &csrf, &id, half, &bytes[half..]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, _, json) = get(&app, &format!("/api/v1/uploads/{id}"), &[("cookie", &prov)]).await;
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["offset"].as_u64(), Some(half as u64), "resumes from here");
    let done = (StatusCode::NO_CONTENT, bytes.len().to_string());
    assert_eq!(
        piece(&app, &prov, &csrf, &id, half, &bytes[half..]).await,
        done
    );

    let (_, _, page) = get(&app, "/uploads?lang=en", &[("cookie", &t)]).await;
    let action = format!("/uploads/H01/{id}/receive");
    assert!(page.contains(&action), "{page}");
    let fields = form(&[("csrf", &common::csrf(&page))]);
    let en = [("cookie", t.as_str()), ("accept-language", "en")];
    let (status, _, page) = send(&app, "POST", &action, &en, &fields).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("Received") && page.contains("death/deaths.csv"),
        "{page}"
    );
    assert!(
        !page.contains("試験") && !page.contains("シケン"),
        "no record's value is shown"
    );
    assert_eq!(
        home.catalog()
            .expect("catalog")
            .receipts_of("H01")
            .expect("count"),
        1
    );
    assert!(!page.contains(&action), "the upload is gone once received");
    let (status, _, _) = get(&app, &format!("/api/v1/uploads/{id}"), &[("cookie", &prov)]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_package_in_another_providers_name_or_with_another_hash_is_refused() {
    let (dir, home) = setup();
    let (tech, tech2) = (technician(&home), user(&home, "tech2", Role::Technician));
    let h02 = ed25519_dalek::SigningKey::from_bytes(&[8; 32]);
    let provider = Provider {
        id: "H02".into(),
        public_key: hex::encode(h02.verifying_key().to_bytes()),
        name: "別の病院".into(),
        address: "東京都".into(),
        representative: "院長".into(),
        acquisition: "診療".into(),
        notice_filing: None,
        notice_start: Some("2026-01-05".into()),
    };
    tokumei_vault::provider::register(&home, &tech, &provider).expect("provider");
    let app = tokumei_web::router(state(&home, 10_000)).expect("router");
    let prov = signed_in(
        &app,
        &home,
        (&tech, &tech2),
        "h01-staff",
        Role::ProviderAdmin,
    )
    .await;
    let t = signed_in(&app, &home, (&tech, &tech2), "tech3", Role::Technician).await;
    let (_, _, page) = get(&app, "/uploads", &[("cookie", &prov)]).await;
    let csrf = page
        .split("data-csrf=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("token")
        .to_string();

    // H01's user holds H02's signing key and uploads in H02's name.
    let forged = package(&home, dir.path(), "H02", 8);
    let id = declare(&app, &prov, &csrf, &forged, None).await;
    assert_eq!(
        piece(&app, &prov, &csrf, &id, 0, &forged).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, _, page) = get(&app, "/uploads?lang=en", &[("cookie", &t)]).await;
    let fields = form(&[("csrf", &common::csrf(&page))]);
    let (status, _, page) = send(
        &app,
        "POST",
        &format!("/uploads/H01/{id}/receive"),
        &[("cookie", &t)],
        &fields,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("names provider H02"), "{page}");
    assert_eq!(
        home.catalog()
            .expect("catalog")
            .receipts_of("H02")
            .expect("count"),
        0
    );

    // A hash other than declared.
    let bytes = package(&home, dir.path(), "H01", 7);
    let id = declare(&app, &prov, &csrf, &bytes, Some("0".repeat(64))).await;
    assert_eq!(
        piece(&app, &prov, &csrf, &id, 0, &bytes).await.0,
        StatusCode::NO_CONTENT
    );
    let (status, _, page) = send(
        &app,
        "POST",
        &format!("/uploads/H01/{id}/receive"),
        &[("cookie", &t)],
        &fields,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("SHA-256"), "{page}");
    // Outside identifiers never name a path.
    for uri in [
        "/uploads/..%2F..%2Fkeys/0123456789abcdef0123456789abcdef/receive",
        "/uploads/H01/..%2Fx/receive",
    ] {
        let (status, _, _) = send(&app, "POST", uri, &[("cookie", &t)], &fields).await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND,
            "{uri}: {status}"
        );
    }
    // A declared size over the limit is refused.
    let body = serde_json::json!({ "size": tokumei_web::upload::MAX_SIZE + 1 }).to_string();
    let (status, _, _) = raw(
        &app,
        "POST",
        "/api/v1/uploads",
        &[
            ("cookie", &prov),
            ("x-csrf-token", &csrf),
            ("content-type", "application/json"),
        ],
        body.into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn receipts_with_their_quarantine_counted_and_the_providers_own_audit_export() {
    let (dir, home) = setup();
    let (tech, tech2) = (technician(&home), user(&home, "tech2", Role::Technician));
    let bytes = package(&home, dir.path(), "H01", 7);
    let pkg = dir.path().join("received.tkm");
    std::fs::write(&pkg, &bytes).expect("write");
    let key = home.unlock_data_key(PASS).expect("key");
    tokumei_vault::receive::receive(&home, &pkg, &tech.user, &key).expect("received");
    let app = tokumei_web::router(state(&home, 10_000)).expect("router");
    let prov = signed_in(
        &app,
        &home,
        (&tech, &tech2),
        "h01-staff",
        Role::ProviderAdmin,
    )
    .await;
    let (status, _, page) = get(&app, "/receipts?lang=en", &[("cookie", &prov)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("<td>H01</td>") && !page.contains('⟦'),
        "{page}"
    );
    assert!(page.contains("/audit/export?provider=H01"));
    let (status, headers, json) =
        get(&app, "/audit/export?provider=H01", &[("cookie", &prov)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(header(&headers, "content-disposition").contains("audit-export.json"));
    let export: tokumei_audit::ProviderExport = serde_json::from_str(&json).expect("an export");
    let operator = home.audit_public_key().expect("key");
    assert!(tokumei_audit::verify_export(&export, &operator).expect("verifies") > 0);
    let (status, _, _) = get(&app, "/audit/export?provider=H02", &[("cookie", &prov)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "another provider's entries");
    let denied = tokumei_audit::last_of(&home.audit_dir(), "audit.export")
        .expect("read")
        .expect("entry");
    assert_eq!(denied.outcome, "denied");
    let (status, _, _) = get(
        &app,
        "/audit/export?provider=..%2Fkeys",
        &[("cookie", &prov)],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The link page: identified data, for technicians only.
    let t = signed_in(&app, &home, (&tech, &tech2), "tech3", Role::Technician).await;
    let (status, _, _) = get(&app, "/link", &[("cookie", &prov)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, page) = get(&app, "/link?lang=en", &[("cookie", &t)]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Run the linkage") && !page.contains('⟦'));
}

#[tokio::test]
async fn an_export_needs_a_second_technician_and_runs_once() {
    let (dir, home) = setup();
    let (tech, tech2) = (technician(&home), user(&home, "tech2", Role::Technician));
    let bytes = package(&home, dir.path(), "H01", 7);
    let pkg = dir.path().join("received.tkm");
    std::fs::write(&pkg, &bytes).expect("write");
    let key = home.unlock_data_key(PASS).expect("key");
    let tokumei_vault::receive::Outcome::Received { manifest, .. } =
        tokumei_vault::receive::receive(&home, &pkg, &tech.user, &key).expect("received")
    else {
        panic!("not received");
    };
    let app = tokumei_web::router(state(&home, 10_000)).expect("router");
    let a = signed_in(&app, &home, (&tech, &tech2), "tech-a", Role::Technician).await;
    let b = signed_in(&app, &home, (&tech, &tech2), "tech-b", Role::Technician).await;
    let c = signed_in(&app, &home, (&tech, &tech2), "tech-c", Role::Technician).await;
    let (status, _, page) = get(&app, "/exports?lang=en", &[("cookie", &a)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(&manifest.package_id) && !page.contains('⟦'));
    let recipient = age::x25519::Identity::generate().to_public().to_string();
    let ask = form(&[
        ("csrf", &common::csrf(&page)),
        ("kind", "identities"),
        ("package", &manifest.package_id),
        ("recipient", &recipient),
        ("purpose", "provider's correction query"),
    ]);
    let (status, _, _) = send(&app, "POST", "/exports", &[("cookie", &a)], &ask).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, page) = get(&app, "/exports", &[("cookie", &a)]).await;
    assert!(
        !page.contains("/exports/1/approve"),
        "the requester is not offered the approval"
    );
    let token = form(&[("csrf", &common::csrf(&page))]);
    let (status, _, page) = send(
        &app,
        "POST",
        "/exports/1/approve",
        &[("cookie", &a)],
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("two-person rule"), "{page}");
    let (status, _, _) = send(&app, "POST", "/exports/1/run", &[("cookie", &a)], &token).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not approved yet");
    let (_, _, page) = get(&app, "/exports", &[("cookie", &b)]).await;
    assert!(page.contains("/exports/1/approve"));
    let token_b = form(&[("csrf", &common::csrf(&page))]);
    let (status, _, _) = send(
        &app,
        "POST",
        "/exports/1/approve",
        &[("cookie", &b)],
        &token_b,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = send(&app, "POST", "/exports/1/run", &[("cookie", &a)], &token).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = send(&app, "POST", "/exports/1/run", &[("cookie", &a)], &token).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "once");
    let (status, _, body) = raw_bytes(&app, "/exports/1/file", &a).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with(b"age-encryption.org/v1"));
    let (status, _, _) = raw_bytes(&app, "/exports/1/file", &c).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "neither requester nor approver"
    );
}
