//! Web sign-in on a real home: an invitation needs a second technician, enrols once, before it
//! expires; a sign-in needs the password and a current TOTP code, used once; failures lock the
//! user out; a revoked grant signs nobody in; a credential moved to another user is caught; every
//! step is in the audit log.

use tokumei_vault::access::{self, Role, Session, User};
use tokumei_vault::webauth::{current_code, WebAuth, LOCKOUT_SECONDS, MAX_FAILURES};
use tokumei_vault::Home;

const PASS: &str = "correct horse battery staple";
pub(crate) const WEB_PASSWORD: &str = "長い合言葉 long enough";

pub(crate) fn user(home: &Home, name: &str, role: Role) -> Session {
    let (wrapped, public) = access::new_user_key(PASS, Some(2)).expect("key");
    home.catalog()
        .expect("catalog")
        .add_user(&User {
            name: name.into(),
            role,
            provider_id: None,
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

pub(crate) struct Lab {
    _dir: tempfile::TempDir,
    pub(crate) home: Home,
    pub(crate) key: tokumei_vault::home::DataKey,
    pub(crate) tech: Session,
    pub(crate) tech2: Session,
}

pub(crate) fn lab() -> Lab {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = tokumei_vault::home::init(&dir.path().join("home"), PASS, Some(2))
        .expect("init")
        .home;
    let key = home.unlock_data_key(PASS).expect("unlock");
    let tech = access::authenticate(
        &home,
        &access::open_user_key(&home.default_user_key().expect("default"), PASS).expect("key"),
    )
    .expect("session");
    let tech2 = user(&home, "tech2", Role::Technician);
    user(&home, "chair", Role::Committee);
    Lab {
        _dir: dir,
        home,
        key,
        tech,
        tech2,
    }
}

/// Enrols `chair`; its TOTP secret.
pub(crate) fn enrolled(lab: &Lab) -> String {
    let web = WebAuth::open(&lab.home).expect("store");
    let inv = web.invite(&lab.tech, "chair", 24).expect("invite");
    web.approve(&lab.tech2, &inv.id).expect("approve");
    web.enrol(&lab.key, &inv.token, WEB_PASSWORD)
        .expect("enrol")
        .secret_base32
}

#[test]
fn an_invitation_needs_a_second_technician_and_enrols_once() {
    let lab = lab();
    let web = WebAuth::open(&lab.home).expect("store");
    assert!(
        web.invite(&lab.tech, "nobody", 24).is_err(),
        "only registered users"
    );
    let inv = web.invite(&lab.tech, "chair", 24).expect("invite");
    assert!(
        web.enrol(&lab.key, &inv.token, WEB_PASSWORD).is_err(),
        "not yet approved"
    );
    assert!(
        web.approve(&lab.tech, &inv.id).is_err(),
        "the issuer cannot approve"
    );
    web.approve(&lab.tech2, &inv.id)
        .expect("a second technician approves");
    assert!(
        web.enrol(&lab.key, &inv.token, "short").is_err(),
        "a password has 12 characters"
    );
    assert!(web.enrol(&lab.key, "not the token", WEB_PASSWORD).is_err());
    let e = web
        .enrol(&lab.key, &inv.token, WEB_PASSWORD)
        .expect("enrol");
    assert_eq!(e.user, "chair");
    assert_eq!(e.secret_base32.len(), 32);
    assert!(e
        .otpauth_uri
        .starts_with("otpauth://totp/Tokumei:chair?secret="));
    assert!(
        web.enrol(&lab.key, &inv.token, WEB_PASSWORD).is_err(),
        "used up"
    );
    let log = tokumei_audit::entries_of(
        &lab.home.audit_dir(),
        &["web.invite", "web.invite.approve", "web.enrol"],
        false,
    )
    .expect("log");
    let outcomes: Vec<(String, String)> = log
        .iter()
        .map(|e| (e.action.clone(), e.outcome.clone()))
        .collect();
    assert!(outcomes.contains(&(
        "web.invite.approve".into(),
        "refused: the issuer or the invited user cannot approve it".into()
    )));
    let own = web.invite(&lab.tech, "tech2", 24).expect("invite");
    assert!(
        web.approve(&lab.tech2, &own.id).is_err(),
        "nobody approves their own"
    );
    assert!(
        outcomes
            .iter()
            .filter(|(a, o)| a == "web.enrol" && o == "ok")
            .count()
            == 1
    );
    assert!(
        !log.iter().any(|e| e.object.contains(&inv.token)),
        "the token is never logged"
    );
    lab.home.verify_audit(None).expect("verifies");
}

#[test]
fn a_sign_in_needs_the_password_and_a_fresh_code_and_failures_lock_out() {
    let lab = lab();
    let secret = enrolled(&lab);
    let web = WebAuth::open(&lab.home).expect("store");
    let now = 1_800_000_000;
    let code = current_code(&secret, now).expect("code");
    assert!(web
        .sign_in(&lab.key, "chair", "wrong password!!", &code, now)
        .is_err());
    let s = web
        .sign_in(&lab.key, "chair", WEB_PASSWORD, &code, now)
        .expect("signed in");
    assert_eq!((s.user.as_str(), s.role), ("chair", Role::Committee));
    assert!(
        web.sign_in(&lab.key, "chair", WEB_PASSWORD, &code, now)
            .is_err(),
        "a code is used once"
    );
    let later = now + 60;
    let next = current_code(&secret, later).expect("code");
    assert!(web
        .sign_in(&lab.key, "chair", WEB_PASSWORD, &next, later)
        .is_ok());
    // Failures in a row lock the user out, even with the right credentials, for a while.
    let t = later + 60;
    for _ in 0..MAX_FAILURES {
        assert!(web
            .sign_in(&lab.key, "chair", WEB_PASSWORD, "000000", t)
            .is_err());
    }
    let good = current_code(&secret, t + 30).expect("code");
    assert!(
        web.sign_in(&lab.key, "chair", WEB_PASSWORD, &good, t + 30)
            .is_err(),
        "locked out"
    );
    let after = t + LOCKOUT_SECONDS + 30;
    let good = current_code(&secret, after).expect("code");
    assert!(web
        .sign_in(&lab.key, "chair", WEB_PASSWORD, &good, after)
        .is_ok());
    // A revoked grant signs nobody in.
    lab.home
        .catalog()
        .expect("catalog")
        .revoke_user("chair")
        .expect("revoke");
    let end = after + 60;
    let good = current_code(&secret, end).expect("code");
    assert!(web
        .sign_in(&lab.key, "chair", WEB_PASSWORD, &good, end)
        .is_err());
    let refusals =
        tokumei_audit::entries_of(&lab.home.audit_dir(), &["web.signin"], false).expect("log");
    assert!(refusals.iter().any(|e| e.outcome == "refused: locked out"));
    assert!(refusals
        .iter()
        .any(|e| e.outcome == "refused: no current grant"));
    assert!(!refusals
        .iter()
        .any(|e| e.object.contains(WEB_PASSWORD) || e.outcome.contains(WEB_PASSWORD)));
}

#[test]
fn a_credential_copied_to_another_user_signs_nobody_in() {
    let lab = lab();
    let secret = enrolled(&lab);
    // Someone who can write the home but not open it copies chair's sealed credential to tech2.
    let conn = rusqlite::Connection::open(lab.home.root.join("catalog/web.sqlite")).expect("db");
    conn.execute(
        "INSERT INTO credentials (user, sealed, enrolled_at)
         SELECT 'tech2', sealed, enrolled_at FROM credentials WHERE user = 'chair'",
        [],
    )
    .expect("copy");
    let web = WebAuth::open(&lab.home).expect("store");
    let now = 1_800_000_000;
    let code = current_code(&secret, now).expect("code");
    let err = web
        .sign_in(&lab.key, "tech2", WEB_PASSWORD, &code, now)
        .expect_err("moved");
    assert!(err.to_string().contains("moved"), "{err}");
    assert!(web
        .sign_in(&lab.key, "chair", WEB_PASSWORD, &code, now)
        .is_ok());
}
