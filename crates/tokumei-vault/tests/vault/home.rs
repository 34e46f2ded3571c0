//! The operator home: layout, key files, passphrase, audit.

use tokumei_vault::home::{init, open, VaultError, MIN_PASSPHRASE};

const PASS: &str = "correct horse battery staple";

#[test]
fn init_creates_keys_owner_only_and_an_audit_log_that_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("home");
    let s = init(&root, PASS, Some(10)).expect("init");
    assert!(s.recipient.starts_with("age1"));
    assert_eq!(
        std::fs::read_to_string(root.join("operator.recipient"))
            .expect("recipient")
            .trim(),
        s.recipient
    );
    // The receiving identity and the operator's signing key exist only sealed under the data key.
    assert!(!root.join("keys/operator.identity").exists());
    assert!(!root.join("keys/audit.key").exists());
    for secret in [
        "keys/operator.identity.enc",
        "keys/audit.key.enc",
        "keys/data.key.age",
        "keys/users/operator.key",
    ] {
        let meta = std::fs::metadata(root.join(secret)).expect(secret);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{secret}");
        }
        let _ = meta;
    }
    let home = open(&root).expect("open");
    assert_eq!(home.config.notice_wait_days, 30);
    let key = home.unlock_data_key(PASS).expect("unlock");
    assert_eq!(key.bytes().len(), 32);
    assert_eq!(
        home.operator_identity(&key)
            .expect("identity")
            .to_public()
            .to_string(),
        s.recipient
    );
    assert!(matches!(
        home.unlock_data_key("wrong passphrase!!"),
        Err(VaultError::Key(_))
    ));
    let v = tokumei_audit::verify(&home.audit_dir(), &home.audit_public_key().expect("pub"))
        .expect("verify");
    // home.init, the signed authorization head the first technician's registration made, and
    // the registration.
    assert_eq!(v.entries, 3);
    // The first technician opens a session with the home passphrase.
    let user_key =
        tokumei_vault::access::open_user_key(&home.default_user_key().expect("default user"), PASS)
            .expect("user key");
    let session = tokumei_vault::access::authenticate(&home, &user_key).expect("session");
    assert_eq!(session.user, "operator");
    assert_eq!(session.role, tokumei_vault::access::Role::Technician);
    // A key nobody registered opens nothing, and the refusal is audited.
    let stranger = tokumei_audit::generate_key().expect("key");
    assert!(matches!(
        tokumei_vault::access::authenticate(&home, &stranger),
        Err(VaultError::Denied(_))
    ));
    let v = tokumei_audit::verify(&home.audit_dir(), &home.audit_public_key().expect("pub"))
        .expect("verify");
    assert_eq!(v.entries, 4);
    // No staging folder is left beside the home.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains("tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn init_refuses_a_short_passphrase_and_a_non_empty_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("home");
    let short: String = "x".repeat(MIN_PASSPHRASE - 1);
    assert!(matches!(
        init(&root, &short, Some(10)),
        Err(VaultError::Passphrase(_))
    ));
    assert!(!root.exists());
    std::fs::create_dir_all(&root).expect("mkdir");
    std::fs::write(root.join("x"), b"x").expect("write");
    assert!(matches!(
        init(&root, PASS, Some(10)),
        Err(VaultError::Exists(_))
    ));
    assert!(matches!(open(dir.path()), Err(VaultError::NotAHome(_))));
}

#[test]
fn two_homes_have_different_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = init(&dir.path().join("a"), PASS, Some(10)).expect("a");
    let b = init(&dir.path().join("b"), PASS, Some(10)).expect("b");
    assert_ne!(a.recipient, b.recipient);
    assert_ne!(a.audit_public_key, b.audit_public_key);
}

/// A home of layout 1 (its receiving identity in plain text) is upgraded in place; a home of a
/// newer layout is refused.
#[test]
fn an_older_home_is_migrated_in_place_and_a_newer_one_refused() {
    use age::secrecy::ExposeSecret;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("home");
    let s = init(&root, PASS, Some(10)).expect("init");
    let key = s.home.unlock_data_key(PASS).expect("unlock");
    // Make it a layout-1 home, as the first releases wrote it.
    let identity = s.home.operator_identity(&key).expect("identity");
    std::fs::write(
        root.join("keys/operator.identity"),
        format!("{}\n", identity.to_string().expose_secret()),
    )
    .expect("plain");
    std::fs::remove_file(root.join("keys/operator.identity.enc")).expect("rm");
    let operator = s.home.audit_signing_key().expect("operator key");
    std::fs::write(
        root.join("keys/audit.key"),
        format!("{}\n", tokumei_audit::key_to_hex(&operator)),
    )
    .expect("plain");
    std::fs::remove_file(root.join("keys/audit.key.enc")).expect("rm");
    let config = std::fs::read_to_string(root.join("config.toml")).expect("config");
    std::fs::write(
        root.join("config.toml"),
        config.replace("version = 4", "version = 1"),
    )
    .expect("write");
    let db = rusqlite::Connection::open(root.join("catalog/catalog.sqlite")).expect("db");
    db.execute_batch("UPDATE users SET sig = NULL; DELETE FROM authz_head;")
        .expect("unsigned");
    drop(db);
    let old = open(&root).expect("a layout-1 home opens");
    assert_eq!(old.config.version, 1);
    let Err(e) = old.operator_identity(&key) else {
        panic!("a layout-1 home needs migration first");
    };
    assert!(e.to_string().contains("home migrate"), "{e}");
    // Its users were never signed: no session opens until it is migrated.
    let user_key =
        tokumei_vault::access::open_user_key(&old.default_user_key().expect("user"), PASS)
            .expect("user key");
    assert!(matches!(
        tokumei_vault::access::authenticate(&old, &user_key),
        Err(VaultError::Tampered(_))
    ));
    let (new, steps) = tokumei_vault::home::migrate(&old, &key).expect("migrate");
    assert_eq!(steps.len(), 3, "{steps:?}");
    assert!(!root.join("keys/audit.key").exists());
    tokumei_vault::access::authenticate(&new, &user_key).expect("a session opens");
    assert_eq!(new.config.version, tokumei_vault::home::LAYOUT_VERSION);
    assert!(!root.join("keys/operator.identity").exists());
    assert_eq!(
        new.operator_identity(&key)
            .expect("identity")
            .to_public()
            .to_string(),
        s.recipient
    );
    // Again: nothing to do.
    let (_, steps) = tokumei_vault::home::migrate(&new, &key).expect("migrate");
    assert!(steps.is_empty());
    new.verify_audit(None).expect("audit verifies");
    // A newer layout is not opened.
    let config = std::fs::read_to_string(root.join("config.toml")).expect("config");
    std::fs::write(
        root.join("config.toml"),
        config.replace("version = 4", "version = 5"),
    )
    .expect("write");
    assert!(matches!(open(&root), Err(VaultError::Config(_))));
}

/// The data key is unlocked once per process; a wrong passphrase is refused before and after.
#[test]
fn the_unlocked_key_is_kept_for_its_passphrase_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("home");
    init(&root, PASS, Some(10)).expect("init");
    let home = tokumei_vault::open(&root).expect("open");
    let wrong = format!("{PASS}!");
    assert!(home.unlock_data_key(&wrong).is_err());
    let first = home.unlock_data_key(PASS).expect("unlock");
    assert!(
        home.unlock_data_key(&wrong).is_err(),
        "the kept key needs its passphrase"
    );
    let again = home.unlock_data_key(PASS).expect("kept");
    assert_eq!(first.bytes(), again.bytes());
    // The key kept is the home's: a copy of the handle shares it, a fresh open does not need it.
    let other = tokumei_vault::open(&root).expect("open");
    assert_eq!(
        other.unlock_data_key(PASS).expect("unlock").bytes(),
        first.bytes()
    );
}
