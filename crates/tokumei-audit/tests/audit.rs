//! The audit log: tamper evidence, provider exports, crash tails, consistency.

use proptest::prelude::*;
use tokumei_audit::{
    consistency, export_provider, generate_key, read_checkpoint, verify, verify_consistency,
    verify_export, verify_extends, verify_with, AuditError, AuditLog, Entry, ENTRIES,
};

fn entry(i: usize) -> Entry {
    Entry::now(
        "tech-1",
        "technician",
        if i.is_multiple_of(3) {
            "receive"
        } else {
            "vault.read"
        },
        &format!("package-{i}"),
        "ok",
        Some(if i.is_multiple_of(2) {
            "H01"
        } else {
            "M022012"
        }),
    )
}

fn log_with(n: usize) -> (tempfile::TempDir, ed25519_dalek::SigningKey) {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = generate_key().expect("key");
    let mut log = AuditLog::open(dir.path(), key.clone()).expect("open");
    for i in 0..n {
        log.append(entry(i)).expect("append");
    }
    (dir, key)
}

fn lines(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(dir.join(ENTRIES))
        .expect("read")
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_lines(dir: &std::path::Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(dir.join(ENTRIES), text).expect("write");
}

fn first_bad(dir: &std::path::Path, key: &ed25519_dalek::SigningKey) -> Option<u64> {
    match verify(dir, &key.verifying_key()) {
        Ok(_) => None,
        Err(AuditError::Tampered { seq, .. }) => Some(seq),
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[test]
fn an_intact_log_verifies_and_reopening_continues_the_tree() {
    let (dir, key) = log_with(10);
    let v = verify(dir.path(), &key.verifying_key()).expect("verify");
    assert_eq!(v.entries, 10);
    let mut log = AuditLog::open(dir.path(), key.clone()).expect("reopen");
    assert_eq!(log.size(), 10);
    log.append(entry(10)).expect("append");
    assert_eq!(
        verify(dir.path(), &key.verifying_key())
            .expect("verify")
            .entries,
        11
    );
    // Another operator's key does not verify it.
    let other = generate_key().expect("key");
    assert_eq!(first_bad(dir.path(), &other), Some(0));
}

#[test]
fn deleting_swapping_or_inserting_an_entry_names_the_first_bad_one() {
    let (dir, key) = log_with(12);
    let original = lines(dir.path());

    let mut deleted = original.clone();
    deleted.remove(5);
    write_lines(dir.path(), &deleted);
    assert_eq!(first_bad(dir.path(), &key), Some(5));

    let mut swapped = original.clone();
    swapped.swap(3, 8);
    write_lines(dir.path(), &swapped);
    assert_eq!(first_bad(dir.path(), &key), Some(3));

    let mut inserted = original.clone();
    inserted.insert(7, original[2].clone());
    write_lines(dir.path(), &inserted);
    assert_eq!(first_bad(dir.path(), &key), Some(7));

    // Removing the last entries is only visible against a head the verifier kept (see the
    // consistency test); the rest still verifies.
    write_lines(dir.path(), &original[..9]);
    assert_eq!(first_bad(dir.path(), &key), None);

    write_lines(dir.path(), &original);
    assert_eq!(first_bad(dir.path(), &key), None);
}

#[test]
fn a_line_cut_short_fails_verification_and_is_kept_aside_as_evidence() {
    let (dir, key) = log_with(4);
    let path = dir.path().join(ENTRIES);
    let mut bytes = std::fs::read(&path).expect("read");
    let cut = br#"{"seq":4,"time":"2026-"#;
    bytes.extend_from_slice(cut);
    std::fs::write(&path, &bytes).expect("write");
    // A cut line is never taken for intact: whether a crash or a hand made it, it is reported.
    assert_eq!(first_bad(dir.path(), &key), Some(4));
    // Opening does not touch it; the next append keeps it aside and records that it did.
    let mut log = AuditLog::open(dir.path(), key.clone()).expect("open");
    assert_eq!(std::fs::read(&path).expect("read"), bytes);
    log.append(entry(4)).expect("append");
    let v = verify(dir.path(), &key.verifying_key()).expect("verify");
    assert_eq!(v.entries, 6);
    assert_eq!(
        std::fs::read(dir.path().join("cut-4.line")).expect("kept"),
        cut.to_vec()
    );
    let text = std::fs::read_to_string(&path).expect("read");
    let recorded: Vec<&str> = text.lines().collect();
    assert!(
        recorded[4].contains("\"action\":\"audit.cut\""),
        "{}",
        recorded[4]
    );
}

#[test]
fn concurrent_writers_never_share_a_sequence_number() {
    let (dir, key) = log_with(1);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let dir = dir.path().to_path_buf();
            let key = key.clone();
            std::thread::spawn(move || {
                // Each thread its own handle, opened before the others write: as two processes.
                let mut log = AuditLog::open(&dir, key).expect("open");
                for i in 0..25 {
                    log.append(entry(t * 100 + i)).expect("append");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    let v = verify(dir.path(), &key.verifying_key()).expect("intact");
    assert_eq!(v.entries, 101);
}

#[test]
fn a_provider_export_verifies_standalone_and_fails_when_altered() {
    let (dir, key) = log_with(9);
    let public = key.verifying_key();
    let export = export_provider(dir.path(), &public, "H01").expect("export");
    assert_eq!(export.entries.len(), 5);
    assert!(export
        .entries
        .iter()
        .all(|e| e.entry.provider.as_deref() == Some("H01")));
    // Through JSON, as a provider receives it.
    let json = serde_json::to_string(&export).expect("json");
    let back: tokumei_audit::ProviderExport = serde_json::from_str(&json).expect("parse");
    assert_eq!(verify_export(&back, &public).expect("verifies"), 5);

    let mut altered = back.clone();
    altered.entries[2].entry.outcome = "refused".into();
    assert!(matches!(
        verify_export(&altered, &public),
        Err(AuditError::Tampered { seq, .. }) if seq == altered.entries[2].seq
    ));
    let mut altered = back.clone();
    altered.head.size += 1;
    assert!(verify_export(&altered, &public).is_err());
    let mut altered = back.clone();
    altered.entries[0].seq += 2;
    assert!(verify_export(&altered, &public).is_err());
    let other = generate_key().expect("key").verifying_key();
    assert!(verify_export(&back, &other).is_err());
}

#[test]
fn a_later_log_proves_it_extends_an_earlier_head() {
    let (dir, key) = log_with(6);
    let public = key.verifying_key();
    let old = verify(dir.path(), &public).expect("v").head.expect("head");
    let mut log = AuditLog::open(dir.path(), key.clone()).expect("open");
    for i in 6..17 {
        log.append(entry(i)).expect("append");
    }
    let (new, proof) = consistency(dir.path(), &public, old.size).expect("proof");
    assert!(verify_consistency(&old, &new, &proof, &public));
    // A log rewritten from entry 3 on (re-signed with the same key) cannot prove it extends the old
    // head.
    let dir2 = tempfile::tempdir().expect("tempdir");
    let mut forged = AuditLog::open(dir2.path(), key.clone()).expect("open");
    for i in 0..17 {
        let mut e = entry(i);
        if i == 3 {
            e.outcome = "refused".into();
        }
        forged.append(e).expect("append");
    }
    let (forged_head, forged_proof) = consistency(dir2.path(), &public, old.size).expect("proof");
    assert!(!verify_consistency(
        &old,
        &forged_head,
        &forged_proof,
        &public
    ));
}

#[test]
fn a_hex_letter_written_in_upper_case_is_a_change_found() {
    // Hex decodes either case; the file holds one spelling, so the other is a change. The
    // signature of a middle entry and the root of another have a letter turned upper case.
    let (dir, key) = log_with(6);
    let original = lines(dir.path());
    for (line, field) in [(2usize, "\"signature\":\""), (4, "\"root\":\"")] {
        let at = original[line].find(field).expect("field") + field.len();
        let hex = &original[line][at..at + 128.min(original[line].len() - at)];
        let letter = at
            + hex
                .find(|c: char| c.is_ascii_lowercase())
                .expect("a letter");
        let mut changed = original.clone();
        let mut bytes = changed[line].clone().into_bytes();
        bytes[letter] = bytes[letter].to_ascii_uppercase();
        changed[line] = String::from_utf8(bytes).expect("ascii");
        write_lines(dir.path(), &changed);
        assert_eq!(first_bad(dir.path(), &key), Some(line as u64), "{field}");
    }
    write_lines(dir.path(), &original);
    assert_eq!(first_bad(dir.path(), &key), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any single changed byte is found, and in the line where it was changed.
    #[test]
    fn flipping_any_byte_is_found_at_its_entry(n in 1usize..20, pick in any::<prop::sample::Index>(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let (dir, key) = log_with(n);
        let original = lines(dir.path());
        let line = pick.index(n);
        let mut bytes = original[line].clone().into_bytes();
        let pos = at.index(bytes.len());
        prop_assume!(bytes[pos] != byte);
        bytes[pos] = byte;
        let mut changed = original.clone();
        changed[line] = String::from_utf8_lossy(&bytes).into_owned();
        write_lines(dir.path(), &changed);
        prop_assert_eq!(first_bad(dir.path(), &key), Some(line as u64));
    }
}

#[test]
fn a_checkpoint_held_elsewhere_catches_truncation_and_rewriting() {
    let (dir, key) = log_with(12);
    let public = key.verifying_key();
    let checkpoint = AuditLog::open(dir.path(), key.clone())
        .expect("open")
        .head();
    let kept = serde_json::to_vec(&checkpoint).expect("json");
    let checkpoint = read_checkpoint(&kept).expect("reads back");
    assert_eq!(checkpoint.size, 12);
    let original = lines(dir.path());
    // The log goes on: it still extends the checkpoint.
    let mut log = AuditLog::open(dir.path(), key.clone()).expect("open");
    log.append(entry(12)).expect("append");
    assert_eq!(
        verify_extends(dir.path(), &public, &checkpoint, &|_, _| false)
            .expect("extends")
            .entries,
        13
    );
    // Cut to its first 8 entries, or emptied: each verifies alone, not against the checkpoint.
    write_lines(dir.path(), &original[..8]);
    assert!(verify(dir.path(), &public).is_ok());
    assert!(matches!(
        verify_extends(dir.path(), &public, &checkpoint, &|_, _| false),
        Err(AuditError::Tampered { seq: 8, .. })
    ));
    write_lines(dir.path(), &[]);
    assert!(verify_extends(dir.path(), &public, &checkpoint, &|_, _| false).is_err());
    // Entries 3..5 removed and the rest re-signed with the operator's own key (an insider with the
    // key): intact alone, caught against the checkpoint.
    let dir2 = tempfile::tempdir().expect("tempdir");
    let mut forged = AuditLog::open(dir2.path(), key.clone()).expect("open");
    for i in (0..14).filter(|i| !(3..5).contains(i)) {
        forged.append(entry(i)).expect("append");
    }
    assert!(verify(dir2.path(), &public).is_ok());
    assert!(matches!(
        verify_extends(dir2.path(), &public, &checkpoint, &|_, _| false),
        Err(AuditError::Tampered { .. })
    ));
    // A checkpoint not signed by the operator proves nothing.
    let other = generate_key().expect("key");
    let foreign = AuditLog::open(dir2.path(), other).expect("open").head();
    assert!(matches!(
        verify_extends(dir2.path(), &public, &foreign, &|_, _| false),
        Err(AuditError::Export(_))
    ));
}

#[test]
fn entries_signed_by_a_registered_users_key_verify_and_others_do_not() {
    let (dir, operator) = log_with(3);
    let user = generate_key().expect("key");
    let mut log = AuditLog::open_as_user(dir.path(), user.clone()).expect("open");
    log.append(entry(3)).expect("append");
    log.append(entry(4)).expect("append");
    let public = operator.verifying_key();
    // The operator's key alone does not vouch for the user's heads; the user's registered key does.
    assert!(matches!(
        verify(dir.path(), &public),
        Err(AuditError::Tampered { seq: 3, .. })
    ));
    let registered = user.verifying_key();
    let v = verify_with(dir.path(), &public, &|k, _| *k == registered).expect("verifies");
    assert_eq!(v.entries, 5);
    assert_eq!(v.operator_head.expect("operator head").size, 3);
    // A stranger's key signing heads is refused even with the user registered.
    let stranger = generate_key().expect("key");
    AuditLog::open_as_user(dir.path(), stranger)
        .expect("open")
        .append(entry(5))
        .expect("append");
    assert!(matches!(
        verify_with(dir.path(), &public, &|k, _| *k == registered),
        Err(AuditError::Tampered { seq: 5, .. })
    ));
    // Exports rest on the operator's last head: the entries up to it.
    let export = export_provider(dir.path(), &public, "H01").expect("export");
    assert_eq!(export.head.size, 3);
    assert_eq!(verify_export(&export, &public).expect("verifies"), 2);
}
