//! Applications and the committee through the pages: a researcher's form checked by the library
//! (every problem shown, every value escaped), a researcher sees only their own applications, a
//! technician's preview, the committee's meeting, conflict, votes and decision, and a wrong role
//! refused and audited.

mod common;

use axum::http::StatusCode;
use common::*;
use tokumei_review::{Field, Figure, Member, Preview, Review};
use tokumei_vault::access::Role;

fn application_form(csrf: &str, title: &str, recipient: &str) -> String {
    form(&[
        ("csrf", csrf),
        ("title", title),
        ("kind", "anonymized"),
        ("purpose", "処方実態の記述"),
        ("period_from", "2021-04-01"),
        ("period_to", "2024-03-31"),
        ("contract_expiry", "2030-03-31"),
        ("recipient_key", recipient),
        ("security_plan", "isolated workstation"),
        ("organisation", "架空大学"),
        ("certification", "none"),
        ("responsible_researcher", "研究 責任者"),
        ("icd10", "E11、I10"),
        ("item", "persons.sex"),
        ("item", "diagnoses.icd10"),
    ])
}

#[tokio::test]
async fn a_researcher_applies_and_sees_only_their_own_applications() {
    let (_dir, home) = setup();
    let (tech, tech2) = (technician(&home), user(&home, "tech2", Role::Technician));
    let app = tokumei_web::router(state(&home, 10_000)).expect("router");
    let res = signed_in(&app, &home, (&tech, &tech2), "res-tanaka", Role::Researcher).await;
    let other = signed_in(&app, &home, (&tech, &tech2), "res-suzuki", Role::Researcher).await;
    let (status, _, page) = get(&app, "/applications/new?lang=en", &[("cookie", &res)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains('⟦') && page.contains("persons.sex"));
    let token = csrf(&page);

    // Every problem at once, the values typed shown back escaped.
    let bad = form(&[
        ("csrf", &token),
        ("title", HOSTILE_NAME),
        ("kind", "anonymized"),
        ("age_min", "<b>x"),
    ]);
    let (status, _, page) = send(&app, "POST", "/applications", &[("cookie", &res)], &bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !page.contains("<script>"));
    assert!(!page.contains("<b>x"));
    for field in ["age_min", "recipient_key", "purpose", "items"] {
        assert!(page.contains(&format!("<code>{field}</code>")), "{field}");
    }
    // Without the session's CSRF token, nothing is submitted.
    let key = age::x25519::Identity::generate().to_public().to_string();
    let forged = application_form("forged", "t", &key);
    let (status, _, _) = send(&app, "POST", "/applications", &[("cookie", &res)], &forged).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let good = application_form(&token, HOSTILE_NAME, &key);
    let (status, headers, _) =
        send(&app, "POST", "/applications", &[("cookie", &res)], &good).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(header(&headers, "location"), "/applications/A-0001");
    let st = Review::open(&home)
        .expect("review")
        .status("A-0001")
        .expect("read")
        .expect("stored");
    assert_eq!(st.submitted_by, "res-tanaka");
    assert_eq!(st.application.cohort.icd10, ["E11", "I10"]);
    assert_eq!(
        st.application.item_names(),
        ["persons.sex", "diagnoses.icd10"]
    );

    let (status, _, page) = get(&app, "/applications/A-0001?lang=en", &[("cookie", &res)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Submitted") && !page.contains("<script>") && !page.contains('⟦'));
    assert!(!page.contains("Preview"), "previews are the committee's");
    let (status, _, _) = get(&app, "/applications/A-0001", &[("cookie", &other)]).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another researcher's application"
    );
    let (_, _, list) = get(&app, "/applications", &[("cookie", &other)]).await;
    assert!(!list.contains("A-0001"));
    let (_, _, json) = get(&app, "/api/v1/applications", &[("cookie", &res)]).await;
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v[0]["id"], "A-0001");
    let (_, _, json) = get(&app, "/api/v1/applications", &[("cookie", &other)]).await;
    assert_eq!(json, "[]");
    images_on_the_form(&app, &home, &res, &key).await;
}

/// The form asks for images: the `images` items and which ones; a bad date is named.
async fn images_on_the_form(app: &axum::Router, home: &tokumei_vault::Home, res: &str, key: &str) {
    let (_, _, page) = get(app, "/applications/new?lang=en", &[("cookie", res)]).await;
    assert!(page.contains("images.file") && page.contains("image_modalities"));
    let token = csrf(&page);
    let base = application_form(&token, "images", key);
    let with = |extra: &[(&str, &str)]| format!("{base}&{}", form(extra));
    let bad = with(&[("item", "images.file"), ("image_from", "2022-13-01")]);
    let (status, _, page) = send(app, "POST", "/applications", &[("cookie", res)], &bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("<code>images.from</code>"), "{page}");
    let good = with(&[
        ("item", "images.modality"),
        ("item", "images.file"),
        ("image_modalities", "CT, MR"),
        ("image_body_parts", "CHEST"),
        ("image_from", "2022-04-01"),
    ]);
    let (status, headers, _) = send(app, "POST", "/applications", &[("cookie", res)], &good).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let id = header(&headers, "location")
        .trim_start_matches("/applications/")
        .to_string();
    let st = Review::open(home)
        .expect("review")
        .status(&id)
        .expect("read")
        .expect("stored");
    let images = st.application.images.clone().expect("images asked for");
    assert_eq!(
        (images.modalities, images.body_parts),
        (
            vec!["CT".to_string(), "MR".into()],
            vec!["CHEST".to_string()]
        )
    );
    assert_eq!(
        (images.from.as_deref(), images.to),
        (Some("2022-04-01"), None)
    );
    assert!(st
        .application
        .item_names()
        .contains(&"images.file".to_string()));
}

fn member(user: &str, chair: bool, external: bool) -> Member {
    Member {
        user: user.into(),
        display_name: format!("委員 {user}"),
        chair,
        affiliation: "架空大学".into(),
        field: Field::Medical,
        external,
        joined_at: String::new(),
        left_at: None,
    }
}

fn preview() -> Preview {
    Preview {
        application_id: "A-0001".into(),
        prepared_by: "tech".into(),
        prepared_at: "2026-12-06T10:00:00Z".into(),
        preset: "jp-anonymized".into(),
        cohort: 5822,
        opted_out: 12,
        suppressed: 40,
        persons: 5770,
        rows: Default::default(),
        transformation: Default::default(),
        figures: vec![Figure {
            name: "utility.rows_kept".into(),
            value: 0.947,
            target: Some(0.9),
            met: Some(true),
        }],
        refusals: vec![],
        warnings: vec![],
    }
}

#[tokio::test]
async fn the_committee_meets_declares_votes_and_decides_through_the_pages() {
    let (_dir, home) = setup();
    let (tech, tech2) = (technician(&home), user(&home, "tech2", Role::Technician));
    let st = state(&home, 10_000);
    let app = tokumei_web::router(st.clone()).expect("router");
    let res = signed_in(&app, &home, (&tech, &tech2), "res-tanaka", Role::Researcher).await;
    let mut cookies = Vec::new();
    for name in ["chair", "m2", "m3"] {
        cookies.push(signed_in(&app, &home, (&tech, &tech2), name, Role::Committee).await);
    }
    let review = Review::open(&home).expect("review");
    for (name, chair, external) in [
        ("chair", true, false),
        ("m2", false, true),
        ("m3", false, false),
    ] {
        review
            .add_member(&tech, &member(name, chair, external))
            .expect("roster");
    }
    let key = age::x25519::Identity::generate().to_public().to_string();
    let (_, _, page) = get(&app, "/applications/new", &[("cookie", &res)]).await;
    let filed = application_form(&csrf(&page), "糖尿病の処方", &key);
    send(&app, "POST", "/applications", &[("cookie", &res)], &filed).await;

    // The chair opens a meeting with everyone present.
    let chair = &cookies[0];
    let (status, _, page) = get(&app, "/committee?lang=en", &[("cookie", chair)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("委員 m2") && !page.contains('⟦'));
    let token = csrf(&page);
    let open = form(&[
        ("csrf", &token),
        ("date", "2026-12-06"),
        ("present", "chair"),
        ("present", "m2"),
        ("present", "m3"),
    ]);
    let (status, headers, _) = send(&app, "POST", "/committee", &[("cookie", chair)], &open).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(header(&headers, "location"), "/committee/M-0001");

    // The docket: no preview yet; a technician's recorded preview is shown with its chart.
    let (_, _, page) = get(&app, "/committee/M-0001?lang=en", &[("cookie", chair)]).await;
    assert!(page.contains("A-0001") && page.contains("No preview has been prepared"));
    review.record_preview(&tech, &preview()).expect("preview");
    let (_, _, page) = get(&app, "/committee/M-0001?lang=en", &[("cookie", chair)]).await;
    assert!(page.contains("<svg") && page.contains("utility.rows_kept") && page.contains("5770"));
    assert!(!page.contains('⟦'));

    // m3 declares a conflict and then may not vote; the refusal is shown with its reason.
    let m3 = &cookies[2];
    let (_, _, p3) = get(&app, "/committee/M-0001", &[("cookie", m3)]).await;
    let t3 = csrf(&p3);
    let conflict = form(&[
        ("csrf", &t3),
        ("application", "A-0001"),
        ("reason", "共同研究者"),
    ]);
    let (status, _, _) = send(
        &app,
        "POST",
        "/committee/M-0001/conflict",
        &[("cookie", m3)],
        &conflict,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let vote3 = form(&[
        ("csrf", &t3),
        ("application", "A-0001"),
        ("vote", "approve"),
    ]);
    let (status, _, page) = send(
        &app,
        "POST",
        "/committee/M-0001/vote",
        &[("cookie", m3)],
        &vote3,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("conflict of interest"), "{page}");

    for who in &cookies[..2] {
        let (_, _, p) = get(&app, "/committee/M-0001", &[("cookie", who)]).await;
        let v = form(&[
            ("csrf", &csrf(&p)),
            ("application", "A-0001"),
            ("vote", "approve"),
        ]);
        let (status, _, _) = send(
            &app,
            "POST",
            "/committee/M-0001/vote",
            &[("cookie", who)],
            &v,
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
    }
    // A researcher cannot vote: refused, and the refusal audited.
    let v = form(&[
        ("csrf", "x"),
        ("application", "A-0001"),
        ("vote", "approve"),
    ]);
    let (status, _, _) = send(
        &app,
        "POST",
        "/committee/M-0001/vote",
        &[("cookie", &res)],
        &v,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let denied = tokumei_audit::last_of(&home.audit_dir(), "web.denied")
        .expect("read")
        .expect("entry");
    assert_eq!(
        (denied.actor.as_str(), denied.object.as_str()),
        ("res-tanaka", "POST /committee/{meeting}/vote")
    );

    let (_, _, p) = get(&app, "/committee/M-0001", &[("cookie", chair)]).await;
    let decide = form(&[
        ("csrf", &csrf(&p)),
        ("application", "A-0001"),
        ("outcome", "approve"),
        ("reasons", "目的が明確"),
        ("drop_item", "diagnoses.icd10"),
    ]);
    let (status, _, _) = send(
        &app,
        "POST",
        "/committee/M-0001/decide",
        &[("cookie", chair)],
        &decide,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let d = review.decision("A-0001").expect("read").expect("decided");
    assert_eq!(
        (d.tally, d.approved_items.clone()),
        ((2, 0, 0), vec!["persons.sex".to_string()])
    );
    assert_eq!(d.recused, ["m3"]);
    let (_, _, page) = get(&app, "/applications/A-0001?lang=en", &[("cookie", &res)]).await;
    assert!(page.contains("Approved") && page.contains("目的が明確"));
}

#[tokio::test]
async fn a_technician_prepares_a_preview_in_the_background_and_sees_why_it_failed() {
    let (_dir, home) = setup();
    let (tech, tech2) = (technician(&home), user(&home, "tech2", Role::Technician));
    let st = state(&home, 10_000);
    let app = tokumei_web::router(st.clone()).expect("router");
    let res = signed_in(&app, &home, (&tech, &tech2), "res-tanaka", Role::Researcher).await;
    let t = signed_in(&app, &home, (&tech, &tech2), "tech3", Role::Technician).await;
    let key = age::x25519::Identity::generate().to_public().to_string();
    let (_, _, page) = get(&app, "/applications/new", &[("cookie", &res)]).await;
    let filed = application_form(&csrf(&page), "糖尿病の処方", &key);
    send(&app, "POST", "/applications", &[("cookie", &res)], &filed).await;
    let (_, _, page) = get(&app, "/applications/A-0001?lang=en", &[("cookie", &t)]).await;
    assert!(page.contains("Prepare a preview"));
    let go = form(&[("csrf", &csrf(&page))]);
    let (status, _, _) = send(
        &app,
        "POST",
        "/applications/A-0001/preview",
        &[("cookie", &t)],
        &go,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // The home has no linked persons: the dry run fails, and the page says so once it has.
    let mut waited = 0;
    while st.jobs.running("A-0001") && waited < 6000 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        waited += 1;
    }
    let (_, _, page) = get(&app, "/applications/A-0001?lang=en", &[("cookie", &t)]).await;
    assert!(page.contains("The preview failed"), "{page}");
    // A researcher cannot start one.
    let (status, _, _) = send(
        &app,
        "POST",
        "/applications/A-0001/preview",
        &[("cookie", &res)],
        &go,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// A-0001 submitted by `res-tanaka` and approved by a committee of two (one external).
async fn approved(app: &axum::Router, home: &tokumei_vault::Home, res: &str) {
    let tech = technician(home);
    let key = age::x25519::Identity::generate().to_public().to_string();
    let (_, _, page) = get(app, "/applications/new", &[("cookie", res)]).await;
    let filed = application_form(&csrf(&page), "糖尿病の処方", &key);
    send(app, "POST", "/applications", &[("cookie", res)], &filed).await;
    let review = Review::open(home).expect("review");
    let chair = user(home, "chair", Role::Committee);
    let ext = user(home, "ext", Role::Committee);
    review
        .add_member(&tech, &member("chair", true, false))
        .expect("chair");
    review
        .add_member(&tech, &member("ext", false, true))
        .expect("ext");
    let m = review
        .open_meeting(&chair, "2026-12-06", &["chair".into(), "ext".into()])
        .expect("meeting");
    for s in [&chair, &ext] {
        review
            .vote(s, &m, "A-0001", tokumei_review::Vote::Approve)
            .expect("vote");
    }
    review
        .decide(
            &chair,
            &m,
            "A-0001",
            tokumei_review::Outcome::Approve,
            "ok",
            &[],
            &[],
        )
        .expect("decided");
}

#[tokio::test]
async fn a_technician_builds_and_the_researcher_downloads_the_encrypted_package() {
    let (_dir, home) = setup();
    let (tech, tech2) = (technician(&home), user(&home, "tech2", Role::Technician));
    let st = state(&home, 10_000);
    let app = tokumei_web::router(st.clone()).expect("router");
    let res = signed_in(&app, &home, (&tech, &tech2), "res-tanaka", Role::Researcher).await;
    let other = signed_in(&app, &home, (&tech, &tech2), "res-suzuki", Role::Researcher).await;
    let t = signed_in(&app, &home, (&tech, &tech2), "tech3", Role::Technician).await;
    approved(&app, &home, &res).await;
    let (_, _, page) = get(&app, "/applications/A-0001?lang=en", &[("cookie", &t)]).await;
    assert!(page.contains("Build the release"), "{page}");
    let go = form(&[("csrf", &csrf(&page))]);
    let (status, _, _) = send(
        &app,
        "POST",
        "/applications/A-0001/build",
        &[("cookie", &res)],
        &go,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a researcher does not build");
    let (status, _, _) = send(
        &app,
        "POST",
        "/applications/A-0001/build",
        &[("cookie", &t)],
        &go,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let mut waited = 0;
    while st.jobs.running("build A-0001") && waited < 6000 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        waited += 1;
    }
    // The home has no linked persons: the build fails, and the page says why.
    let (_, _, page) = get(&app, "/applications/A-0001?lang=en", &[("cookie", &t)]).await;
    assert!(page.contains("The build failed"), "{page}");
    let (status, _, _) = get(&app, "/applications/A-0001/package", &[("cookie", &res)]).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing built yet");

    // A package in place (as a build leaves it) is streamed to the researcher, whole.
    let dir = home.root.join("web/releases/A-0001/20261206T101010000Z");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("R-0123456789ab.tar.age"), &bytes).expect("package");
    let (_, _, page) = get(&app, "/applications/A-0001?lang=en", &[("cookie", &res)]).await;
    assert!(page.contains("R-0123456789ab") && page.contains("/applications/A-0001/package"));
    let (status, headers, body) = raw_bytes(&app, "/applications/A-0001/package", &res).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, bytes);
    assert!(header(&headers, "content-disposition").contains("R-0123456789ab.tar.age"));
    let (status, _, _) = get(&app, "/applications/A-0001/package", &[("cookie", &other)]).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another researcher's application"
    );
    let (status, _, _) = get(
        &app,
        "/applications/..%2F..%2Fkeys/package",
        &[("cookie", &res)],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
