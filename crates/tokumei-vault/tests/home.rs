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
    for secret in [
        "keys/operator.identity",
        "keys/audit.key",
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
    assert!(matches!(
        home.unlock_data_key("wrong passphrase!!"),
        Err(VaultError::Key(_))
    ));
    let v = tokumei_audit::verify(&home.audit_dir(), &home.audit_public_key().expect("pub"))
        .expect("verify");
    // home.init and the first technician's registration.
    assert_eq!(v.entries, 2);
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
    assert_eq!(v.entries, 3);
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
