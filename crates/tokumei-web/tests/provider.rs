//! Requests to stop recorded by a provider's user (one by the form, many as CSV; another
//! provider's patient refused and audited; nothing typed shown back), CSV downloads with every
//! formula made inert, and the feasibility page's refusals.

mod common;

use axum::http::StatusCode;
use common::*;
use tokumei_review::{Provision, Review};
use tokumei_vault::access::Role;

#[tokio::test]
async fn a_provider_records_requests_to_stop_for_its_own_patients_only() {
    let (_dir, home) = setup();
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
    let en = [("cookie", prov.as_str()), ("accept-language", "en")];
    let (status, _, page) = get(&app, "/stop-requests?lang=en", &en).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !page.contains('⟦') && !page.contains("name=\"provider\""),
        "the provider is the user's"
    );
    let token = csrf(&page);
    let one = form(&[
        ("csrf", &token),
        ("patient_id", "P-SECRET-0001"),
        ("requester", "self"),
        ("received_on", "2026-12-01"),
    ]);
    let (status, _, page) = send(&app, "POST", "/stop-requests", &en, &one).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("Requests recorded: 1") && !page.contains("P-SECRET-0001"),
        "{page}"
    );
    let optouts = || home.catalog().expect("catalog").optouts().expect("count");
    assert_eq!(optouts(), 1);

    let header = "provider_id,local_patient_id,insurer_number,symbol,number,branch,requester,received_on,confirmed_on\n";
    let csv =
        format!("{header}H01,P-0002,,,,,guardian,2026-12-02,\nH02,P-9999,,,,,self,2026-12-02,\n");
    let (status, _, page) = send(
        &app,
        "POST",
        "/stop-requests/csv",
        &en,
        &form(&[("csrf", &token), ("csv", &csv)]),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        page.contains("request 2 names another provider") && !page.contains("P-9999"),
        "{page}"
    );
    assert_eq!(optouts(), 1, "nothing of a refused CSV is recorded");
    let refused = tokumei_audit::last_of(&home.audit_dir(), "optout.add")
        .expect("read")
        .expect("entry");
    assert!(refused.outcome.starts_with("refused") && refused.actor == "h01-staff");
    let bad = format!("{header}H01,P-0003,,,,,nobody,2026-12-02,\n");
    let (status, _, page) = send(
        &app,
        "POST",
        "/stop-requests/csv",
        &en,
        &form(&[("csrf", &token), ("csv", &bad)]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("line 2") && !page.contains("P-0003"),
        "{page}"
    );
    let csv = format!("{header}H01,P-0002,,,,,guardian,2026-12-02,\nH01,P-0004,,,,,bereaved,2026-12-03,2026-12-04\n");
    let (status, _, page) = send(
        &app,
        "POST",
        "/stop-requests/csv",
        &en,
        &form(&[("csrf", &token), ("csv", &csv)]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(optouts(), 3);
    // Without the session's token, nothing.
    let (status, _, _) = send(
        &app,
        "POST",
        "/stop-requests",
        &en,
        &one.replace(&token, "forged"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A researcher may not.
    let res = signed_in(&app, &home, (&tech, &tech2), "res", Role::Researcher).await;
    let (status, _, _) = get(&app, "/stop-requests", &[("cookie", &res)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn csv_downloads_make_every_formula_inert() {
    let (_dir, home) = setup();
    let (tech, tech2) = (technician(&home), user(&home, "tech2", Role::Technician));
    let hostile = Provision {
        release_id: "R-0002".into(),
        application_id: "A-0002".into(),
        decision_sha256: "1".repeat(64),
        recipient: "=HYPERLINK(\"http://x\",\"y\")".into(),
        kind: "anonymized".into(),
        package_sha256: "1".repeat(64),
        provided_at: "2026-12-01T10:00:00Z".into(),
        contract_expiry: "2099-03-31".into(),
        destroyed_at: None,
        destruction_certificate_sha256: None,
    };
    Review::open(&home)
        .expect("review")
        .record_provision(&tech, &hostile)
        .expect("provision");
    let app = tokumei_web::router(state(&home, 10_000)).expect("router");
    let auditor = signed_in(&app, &home, (&tech, &tech2), "auditor", Role::Auditor).await;
    let (status, headers, body) = get(&app, "/ledger.csv", &[("cookie", &auditor)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "content-type"), "text/csv; charset=utf-8");
    assert!(header(&headers, "content-disposition").contains("ledger.csv"));
    assert!(body.starts_with('\u{feff}') && body.contains("架空製薬株式会社"));
    assert!(
        body.contains("\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""),
        "{body}"
    );
    for line in body.lines().skip(1) {
        for cell in line.split(',') {
            let c = cell.trim_start_matches('"');
            assert!(!c.starts_with(['=', '+', '-', '@']), "{line}");
        }
    }
    // The audit log's entries: a user name beginning with a formula character is made inert too.
    let (status, _, body) = get(
        &app,
        "/audit.csv?action=web.signin",
        &[("cookie", &auditor)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("web.signin") && body.contains("auditor"));
    let (status, _, _) = get(&app, "/audit.csv?from=not-a-date", &[("cookie", &auditor)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let prov = signed_in(
        &app,
        &home,
        (&tech, &tech2),
        "h01-staff",
        Role::ProviderAdmin,
    )
    .await;
    let (status, _, _) = get(&app, "/ledger.csv", &[("cookie", &prov)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_researcher_asks_only_under_an_approved_feasibility_application() {
    let (_dir, home) = setup();
    let (tech, tech2) = (technician(&home), user(&home, "tech2", Role::Technician));
    let app = tokumei_web::router(state(&home, 10_000)).expect("router");
    let res = signed_in(&app, &home, (&tech, &tech2), "res", Role::Researcher).await;
    let en = [("cookie", res.as_str()), ("accept-language", "en")];
    let (status, _, page) = get(&app, "/feasibility?lang=en", &en).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains('⟦'));
    let token = csrf(&page);
    let bad = form(&[
        ("csrf", &token),
        ("definition", "name = \"x\"\nnot toml at all ["),
    ]);
    let (status, _, page) = send(&app, "POST", "/feasibility", &en, &bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(
        page.contains("Not answered") && page.contains("not toml at all"),
        "the definition is kept in its field"
    );
    let def = "name = \"2型糖尿病\"\n[[criteria]]\nkind = \"diagnosis\"\ncodes = [\"E11\"]\n";
    let (status, _, page) = send(
        &app,
        "POST",
        "/feasibility",
        &en,
        &form(&[("csrf", &token), ("definition", def)]),
    )
    .await;
    assert!(status.is_client_error(), "{status}: {page}");
    assert!(page.contains("Not answered"), "{page}");
}
