//! Key escrow: k of n custodians recover the home's keys; fewer, a wrong passphrase, shares of
//! different splits, an altered share or the shares of another home do not.

use std::path::{Path, PathBuf};

use tokumei_backup::escrow::{self, Custodian};
use tokumei_backup::BackupError;
use tokumei_vault::access::{open_session, Role};
use tokumei_vault::users::{register, NewUser};
use tokumei_vault::Home;

const PASS: &str = "home-passphrase-for-escrow";

fn custody(name: &str) -> String {
    format!("custody-of-{name}-passphrase")
}

/// A home with three more users; returns it, its data key's owner session and the share files of
/// a 2-of-3 split among them.
fn home_with_split(dir: &Path, name: &str) -> (Home, Vec<PathBuf>) {
    let root = dir.join(name);
    let summary =
        tokumei_vault::home::init_with_user(&root, PASS, Some(10), "first").expect("init");
    let home = summary.home;
    let key_file = root.join("keys/users/first.key");
    let s = open_session(&home, &key_file, PASS, "test", &[Role::Technician]).expect("session");
    for who in ["ann", "ben", "cho"] {
        let new = NewUser {
            name: who.into(),
            role: Role::Technician,
            provider_id: None,
            requested_by: "office".into(),
            approved_by: "director".into(),
            passphrase: format!("key-passphrase-of-{who}"),
            scrypt_log_n: Some(10),
            out: dir.join(format!("{name}-keys")),
        };
        register(&home, &s, &new).expect("register");
    }
    let key = home.unlock_data_key(PASS).expect("key");
    let custodians: Vec<Custodian> = ["ann", "ben", "cho"]
        .iter()
        .map(|n| Custodian {
            name: n.to_string(),
            passphrase: custody(n),
        })
        .collect();
    let split = escrow::split(
        &home,
        &s,
        &key,
        2,
        &custodians,
        &dir.join(format!("{name}-shares")),
        Some(10),
    )
    .expect("split");
    assert_eq!(split.custodians, ["ann", "ben", "cho"]);
    (home, split.files)
}

fn given(files: &[PathBuf], who: &[(usize, &str)]) -> Vec<(PathBuf, String)> {
    who.iter()
        .map(|(i, n)| (files[*i].clone(), custody(n)))
        .collect()
}

fn escrow_err(r: Result<escrow::Recovered, BackupError>) -> String {
    match r {
        Err(BackupError::Escrow(why)) => why,
        Err(e) => panic!("expected an escrow error, got {e}"),
        Ok(_) => panic!("expected an escrow error, got the keys"),
    }
}

#[test]
fn any_two_of_three_recover_the_keys_and_rekey_the_home() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, files) = home_with_split(dir.path(), "h");
    for pair in [
        [(0, "ann"), (1, "ben")],
        [(1, "ben"), (2, "cho")],
        [(2, "cho"), (0, "ann")],
    ] {
        let r = escrow::recover(&given(&files, &pair)).expect("recover");
        assert_eq!(r.custodians.len(), 2);
        home.unlock_with_key(&r.bundle.data_key().expect("key"))
            .expect("the key opens the home");
    }
    let all =
        escrow::recover(&given(&files, &[(0, "ann"), (1, "ben"), (2, "cho")])).expect("three");
    let dropped = escrow::rekey(&home, &all, "a-new-home-passphrase", Some(10)).expect("rekey");
    assert_eq!(
        dropped.as_deref(),
        Some("first"),
        "its key is under the old passphrase"
    );
    let reopened = tokumei_vault::open(&home.root).expect("open");
    assert!(
        reopened.unlock_data_key(PASS).is_err(),
        "the old passphrase no longer opens it"
    );
    reopened
        .unlock_data_key("a-new-home-passphrase")
        .expect("the new one does");
    assert_eq!(reopened.config.default_user, None);
    let last = tokumei_audit::last_of(&home.audit_dir(), "escrow.recover").expect("log");
    assert!(last
        .expect("entry")
        .object
        .contains("custodians=ann,ben,cho"));
    reopened.verify_audit(None).expect("the log verifies");
}

#[test]
fn fewer_than_k_wrong_passphrases_mixed_or_altered_shares_recover_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, files) = home_with_split(dir.path(), "h");
    let one = escrow_err(escrow::recover(&given(&files, &[(0, "ann")])));
    assert!(one.contains("needed"), "{one}");
    let twice = escrow_err(escrow::recover(&given(&files, &[(0, "ann"), (0, "ann")])));
    assert!(twice.contains("needed"), "{twice}");
    let wrong = escrow_err(escrow::recover(&[
        (files[0].clone(), custody("ann")),
        (files[1].clone(), custody("ann")),
    ]));
    assert!(wrong.contains("does not open"), "{wrong}");
    // A second split: its shares do not combine with the first's.
    let (_, other) = home_with_split(dir.path(), "g");
    let mixed = escrow_err(escrow::recover(&[
        (files[0].clone(), custody("ann")),
        (other[1].clone(), custody("ben")),
    ]));
    assert!(mixed.contains("different splits"), "{mixed}");
    // The other home's shares recover keys that do not open this home.
    let theirs = escrow::recover(&given(&other, &[(0, "ann"), (1, "ben")])).expect("theirs");
    assert!(home
        .unlock_with_key(&theirs.bundle.data_key().expect("key"))
        .is_err());
    assert!(escrow::rekey(&home, &theirs, "a-new-home-passphrase", Some(10)).is_err());
    // A header edited in the clear (claiming another custodian) is found.
    let text = std::fs::read_to_string(&files[2]).expect("share");
    let edited = dir.path().join("edited.share");
    std::fs::write(&edited, text.replace("\"cho\"", "\"ann\"")).expect("write");
    let altered = escrow_err(escrow::recover(&[
        (files[1].clone(), custody("ben")),
        (edited, custody("cho")),
    ]));
    assert!(altered.contains("altered"), "{altered}");
}

#[test]
fn a_split_names_registered_custodians_with_long_passphrases() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, _) = home_with_split(dir.path(), "h");
    let key = home.unlock_data_key(PASS).expect("key");
    let s = open_session(
        &home,
        &home.root.join("keys/users/first.key"),
        PASS,
        "test",
        &[Role::Technician],
    )
    .expect("session");
    let c = |n: &str, p: &str| Custodian {
        name: n.into(),
        passphrase: p.into(),
    };
    let out = dir.path().join("out");
    let unknown = [c("ann", &custody("ann")), c("nobody", &custody("x"))];
    assert!(escrow::split(&home, &s, &key, 2, &unknown, &out, Some(10)).is_err());
    let short = [c("ann", &custody("ann")), c("ben", "short")];
    assert!(escrow::split(&home, &s, &key, 2, &short, &out, Some(10)).is_err());
    let one = [c("ann", &custody("ann")), c("ben", &custody("ben"))];
    assert!(escrow::split(&home, &s, &key, 1, &one, &out, Some(10)).is_err());
    assert!(escrow::split(&home, &s, &key, 3, &one, &out, Some(10)).is_err());
    assert!(!out.exists() || std::fs::read_dir(&out).expect("dir").next().is_none());
}
