//! Sealed receipt: packages from registered providers are received once; everything else is refused
//! with a clear message and an audit entry.

use std::path::{Path, PathBuf};

use tokumei_vault::catalog::Provider;
use tokumei_vault::home::{init, Home};
use tokumei_vault::package::{package, provider_init, PackageOptions};
use tokumei_vault::receive::{receive as receive_with, Outcome};
use tokumei_vault::VaultError;

const PASS: &str = "correct horse battery staple";
/// A surname that must never appear in plain text under the home.
const SURNAME: &str = "試験";

fn receive(home: &Home, package: &Path, actor: &str) -> Result<Outcome, VaultError> {
    let key = home.unlock_data_key(PASS).expect("unlock");
    receive_with(home, package, actor, &key)
}

struct Setup {
    dir: tempfile::TempDir,
    home: Home,
    key: PathBuf,
    source: PathBuf,
}

fn extract(dir: &Path) -> PathBuf {
    let source = dir.join("extract");
    std::fs::create_dir_all(source.join("death")).expect("mkdir");
    let csv = format!(
        "municipality_code,record_kind,name_kanji,name_kana,birth_date,sex,last_address,postal_code,removal_reason,removal_date,death_date,notified_date,resident_number\r\n\
         022012,除票,{SURNAME}　花子,シケン　ハナコ,1940-04-12,2,青森県青森市新町１丁目２－３,030-0801,死亡,2024-02-03,2024-02-03,2024-02-05,0000000001\r\n\
         022012,除票,{SURNAME}　太郎,シケン　タロウ,1938-01-02,1,青森県青森市新町１丁目２－３,030-0801,死亡,2024-03-01,2024-03-01,2024-03-04,0000000002\r\n\
         022012,除票,{SURNAME}　次郎,シケン　ジロウ,1938-13-02,1,青森県青森市新町１丁目２－３,030-0801,死亡,2024-03-01,2024-03-01,2024-03-04,0000000003\r\n"
    );
    std::fs::write(source.join("death/deaths.csv"), csv).expect("write");
    source
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = init(&dir.path().join("home"), PASS, Some(10))
        .expect("init")
        .home;
    let (key, public) = provider_init("M022012", &dir.path().join("provider")).expect("keys");
    register(&home, "M022012", &public);
    let source = extract(dir.path());
    Setup {
        dir,
        home,
        key,
        source,
    }
}

fn register(home: &Home, id: &str, public: &Path) {
    let catalog = home.catalog().expect("catalog");
    catalog
        .add_provider(&Provider {
            id: id.into(),
            public_key: std::fs::read_to_string(public).expect("pub").trim().into(),
            name: "青森市".into(),
            address: "青森県青森市中央一丁目22番5号".into(),
            representative: "市長".into(),
            acquisition: "住民基本台帳事務".into(),
            notice_filing: Some("F-2025-001".into()),
            notice_start: Some("2025-01-06".into()),
        })
        .expect("add");
}

fn signing_key(path: &Path) -> ed25519_dalek::SigningKey {
    tokumei_audit::key_from_hex(&std::fs::read_to_string(path).expect("key")).expect("parse")
}

fn make(s: &Setup, key: &Path, recipient: &str, name: &str, opts: &PackageOptions) -> PathBuf {
    let out = s.dir.path().join(name);
    package(
        &signing_key(key),
        "M022012",
        recipient,
        &s.source,
        &out,
        opts,
    )
    .expect("package");
    out
}

fn last_outcome(home: &Home) -> String {
    let text = std::fs::read_to_string(home.root.join("audit/entries.jsonl")).expect("log");
    let last = text.lines().last().expect("entry").to_string();
    let v: serde_json::Value = serde_json::from_str(&last).expect("json");
    v["outcome"].as_str().unwrap_or_default().to_string()
}

fn refused(r: Result<Outcome, VaultError>) -> String {
    match r {
        Err(VaultError::Refused(m)) => m,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn grep_home(root: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir").filter_map(Result::ok) {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    hits.push(p);
                }
            }
        }
    }
    hits
}

#[test]
fn a_package_is_received_once_and_kept() {
    let s = setup();
    let recipient = s.home.recipient().expect("recipient");
    let pkg = make(&s, &s.key, &recipient, "p1.tkm", &PackageOptions::default());
    let Outcome::Received {
        manifest,
        kept,
        report,
    } = receive(&s.home, &pkg, "tech-1").expect("receive")
    else {
        panic!("not received");
    };
    assert_eq!(manifest.provider_id, "M022012");
    assert_eq!(manifest.files.len(), 1);
    // Three rows: two read and stored, one quarantined with its line.
    assert_eq!(manifest.records(), 3);
    assert_eq!((report.read, report.stored, report.quarantined), (2, 2, 1));
    let key = s.home.unlock_data_key(PASS).expect("unlock");
    let q = tokumei_vault::store::read_quarantine(&s.home, &key, &manifest.package_id)
        .expect("quarantine");
    let originals =
        tokumei_vault::store::read_quarantine_files(&s.home, &key, &manifest.package_id)
            .expect("originals");
    assert_eq!(originals.len(), 1);
    assert_eq!(originals[0].0, "death/deaths.csv");
    assert_eq!(report.files.len(), 1);
    assert_eq!((report.files[0].read, report.files[0].quarantined), (2, 1));
    assert!(report.mismatched.is_empty());
    assert_eq!(
        (q[0].file.as_str(), q[0].first_line),
        ("death/deaths.csv", 4)
    );
    // The identity vault decrypts with the data key only, and its records join the clinical store.
    let sealed = std::fs::read(s.home.root.join(format!(
        "vault/identity/{}.parquet.enc",
        manifest.package_id
    )))
    .expect("vault");
    let ids: Vec<tokumei_model::identity::IdentityRecord> = tokumei_vault::store::read_parquet(
        tokumei_vault::store::open_sealed(&key, &sealed).expect("open"),
    )
    .expect("identities");
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0].surname_kanji.as_deref(), Some(SURNAME));
    let deaths: Vec<tokumei_model::events::Death> = tokumei_vault::store::read_parquet(
        std::fs::read(s.home.root.join(format!(
            "vault/clinical/{}/deaths.parquet",
            manifest.package_id
        )))
        .expect("deaths"),
    )
    .expect("deaths");
    assert_eq!(deaths.len(), 2);
    assert!(deaths
        .iter()
        .all(|d| ids.iter().any(|i| i.record_id == d.record_id)));
    assert_eq!(
        std::fs::read(&kept).expect("kept"),
        std::fs::read(&pkg).expect("pkg")
    );
    let catalog = s.home.catalog().expect("catalog");
    let r = catalog
        .receipt(&manifest.package_id)
        .expect("q")
        .expect("receipt");
    assert_eq!(r.records, 2);
    assert!(r.confirmed.contains("住民基本台帳事務"));
    // Again: a no-op that says so.
    assert!(matches!(
        receive(&s.home, &pkg, "tech-1").expect("again"),
        Outcome::AlreadyReceived { .. }
    ));
    assert!(last_outcome(&s.home).starts_with("already received"));
    assert_eq!(catalog.receipts().expect("n"), 1);
    // Nothing identifying in plain text under the home, and the log verifies.
    assert!(grep_home(&s.home.root, SURNAME.as_bytes()).is_empty());
    assert!(grep_home(&s.home.root, b"1940-04-12").is_empty());
    assert!(grep_home(&s.home.root, b"0000000002").is_empty());
    tokumei_audit::verify(
        &s.home.audit_dir(),
        &s.home.audit_public_key().expect("pub"),
    )
    .expect("audit verifies");
}

#[test]
fn foreign_damaged_unsigned_and_replayed_packages_are_refused_and_audited() {
    let s = setup();
    let recipient = s.home.recipient().expect("recipient");

    // Signed by a key that is not registered for the provider.
    let (other_key, _) = provider_init("M022012", &s.dir.path().join("impostor")).expect("keys");
    let pkg = make(
        &s,
        &other_key,
        &recipient,
        "forged.tkm",
        &PackageOptions::default(),
    );
    assert!(refused(receive(&s.home, &pkg, "tech-1")).contains("not signed by the registered key"));
    assert!(last_outcome(&s.home).starts_with("refused"));

    // An unregistered provider.
    let (p2_key, _) = provider_init("H99", &s.dir.path().join("p2")).expect("keys");
    let out = s.dir.path().join("p2.tkm");
    package(
        &signing_key(&p2_key),
        "H99",
        &recipient,
        &s.source,
        &out,
        &PackageOptions::default(),
    )
    .expect("package");
    assert!(refused(receive(&s.home, &out, "tech-1")).contains("not registered"));

    // One byte flipped anywhere in the ciphertext.
    let good = make(
        &s,
        &s.key,
        &recipient,
        "good.tkm",
        &PackageOptions::default(),
    );
    let mut bytes = std::fs::read(&good).expect("read");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    let bad = s.dir.path().join("tampered.tkm");
    std::fs::write(&bad, bytes).expect("write");
    assert!(refused(receive(&s.home, &bad, "tech-1")).contains("damaged"));

    // Encrypted to another operator.
    let other = init(&s.dir.path().join("other-home"), PASS, Some(10)).expect("init");
    let theirs = make(
        &s,
        &s.key,
        &other.recipient,
        "theirs.tkm",
        &PackageOptions::default(),
    );
    assert!(refused(receive(&s.home, &theirs, "tech-1")).contains("another operator"));

    // A different package under an id already received.
    let opts = PackageOptions {
        package_id: Some("0123456789abcdef0123456789abcdef".into()),
        ..PackageOptions::default()
    };
    let first = make(&s, &s.key, &recipient, "first.tkm", &opts);
    receive(&s.home, &first, "tech-1").expect("first");
    let second = make(&s, &s.key, &recipient, "second.tkm", &opts);
    assert!(refused(receive(&s.home, &second, "tech-1")).contains("replay"));
    assert!(last_outcome(&s.home).contains("replay"));

    // Every refusal is in the log, and the log verifies.
    let text = std::fs::read_to_string(s.home.root.join("audit/entries.jsonl")).expect("log");
    assert_eq!(text.matches("refused:").count(), 5);
    tokumei_audit::verify(
        &s.home.audit_dir(),
        &s.home.audit_public_key().expect("pub"),
    )
    .expect("audit verifies");
}

/// The bereaved family of patient 0000000002 (試験 太郎) asks to stop.
fn opt_out_taro(home: &Home) {
    let key = home.unlock_data_key(PASS).expect("unlock");
    let index = tokumei_vault::optout::IndexKey::derive(&key);
    home.catalog()
        .expect("catalog")
        .add_optout(
            &index,
            &tokumei_vault::optout::Request {
                subject: tokumei_vault::optout::Subject::Patient {
                    provider_id: "M022012".into(),
                    local_patient_id: "0000000002".into(),
                },
                requester: tokumei_vault::optout::Requester::Bereaved,
                received_on: "2025-06-01".into(),
                confirmed_on: None,
            },
        )
        .expect("optout");
}

#[test]
fn opted_out_and_too_early_patients_are_refused_at_receipt() {
    let s = setup();
    let recipient = s.home.recipient().expect("recipient");
    opt_out_taro(&s.home);
    let pkg = make(&s, &s.key, &recipient, "p.tkm", &PackageOptions::default());
    let Outcome::Received { report, .. } = receive(&s.home, &pkg, "tech-1").expect("receive")
    else {
        panic!("not received");
    };
    assert_eq!((report.stored, report.refusals.opted_out), (1, 1));
    // Extracted before the notice start (2025-01-06) + 30 days: every record refused.
    let early = PackageOptions {
        extracted_on: Some("2025-01-20".into()),
        ..PackageOptions::default()
    };
    let pkg = make(&s, &s.key, &recipient, "early.tkm", &early);
    let Outcome::Received { report, .. } = receive(&s.home, &pkg, "tech-1").expect("receive")
    else {
        panic!("not received");
    };
    // The opted-out patient is refused as such; the other is too early.
    assert_eq!(
        (
            report.stored,
            report.refusals.too_early,
            report.refusals.opted_out
        ),
        (0, 1, 1)
    );
}

#[test]
fn files_left_by_an_interrupted_receipt_are_removed() {
    let s = setup();
    let recipient = s.home.recipient().expect("recipient");
    // Leftovers of a package whose receipt was never recorded.
    let orphan = "ffffffffffffffffffffffffffffffff";
    std::fs::write(
        s.home
            .root
            .join(format!("vault/identity/{orphan}.parquet.enc")),
        b"x",
    )
    .expect("write");
    std::fs::create_dir_all(
        s.home
            .root
            .join(format!("vault/clinical/.staging-{orphan}")),
    )
    .expect("mkdir");
    let pkg = make(&s, &s.key, &recipient, "p.tkm", &PackageOptions::default());
    receive(&s.home, &pkg, "tech-1").expect("receive");
    assert!(!s
        .home
        .root
        .join(format!("vault/identity/{orphan}.parquet.enc"))
        .exists());
    assert!(!s
        .home
        .root
        .join(format!("vault/clinical/.staging-{orphan}"))
        .exists());
    let log = std::fs::read_to_string(s.home.root.join("audit/entries.jsonl")).expect("log");
    assert!(log.contains("receive.recover"));
}

/// One explicit-VR little-endian element.
fn element(out: &mut Vec<u8>, (group, elem): (u16, u16), vr: &[u8; 2], value: &[u8]) {
    let mut v = value.to_vec();
    if v.len() % 2 == 1 {
        v.push(if vr == b"UI" { 0 } else { b' ' });
    }
    out.extend(group.to_le_bytes());
    out.extend(elem.to_le_bytes());
    out.extend(vr);
    out.extend((v.len() as u16).to_le_bytes());
    out.extend(v);
}

/// A small CT file of a patient (ASCII name `marker`), with its study.
fn dicom(patient: &str, birth: &str, study_uid: &str, marker: &str) -> Vec<u8> {
    let mut meta = Vec::new();
    element(&mut meta, (2, 0x10), b"UI", b"1.2.840.10008.1.2.1");
    let mut out = vec![0u8; 128];
    out.extend(b"DICM");
    element(&mut out, (2, 0), b"UL", &[0; 4]);
    let len = (meta.len() as u32).to_le_bytes();
    out[132 + 8..132 + 12].copy_from_slice(&len);
    out.extend(meta);
    element(&mut out, (8, 0x16), b"UI", b"1.2.840.10008.5.1.4.1.1.2");
    element(&mut out, (8, 0x20), b"DA", b"20250301");
    element(&mut out, (8, 0x60), b"CS", b"CT");
    element(&mut out, (0x10, 0x10), b"PN", marker.as_bytes());
    element(&mut out, (0x10, 0x20), b"LO", patient.as_bytes());
    element(&mut out, (0x10, 0x30), b"DA", birth.as_bytes());
    element(&mut out, (0x18, 0x15), b"CS", b"chest");
    element(&mut out, (0x20, 0x0d), b"UI", study_uid.as_bytes());
    out
}

#[test]
fn images_are_tied_to_their_records_sealed_indexed_and_purged() {
    let s = setup();
    let recipient = s.home.recipient().expect("recipient");
    let key = s.home.unlock_data_key(PASS).expect("unlock");
    opt_out_taro(&s.home);
    let dir = s.source.join("dicom/000001");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let files = [
        (
            "1.dcm",
            dicom("0000000001", "19400412", "1.2.3.1", "SHIKEN^HANAKO"),
        ),
        (
            "2.dcm",
            dicom("0000000001", "19400412", "1.2.3.1", "SHIKEN^HANAKO"),
        ),
        (
            "3.dcm",
            dicom("0000000001", "19400413", "1.2.3.2", "SHIKEN^HANAKO"),
        ),
        (
            "4.dcm",
            dicom("0000000002", "19380102", "1.2.3.3", "SHIKEN^TARO"),
        ),
        (
            "5.dcm",
            dicom("0000000009", "19500101", "1.2.3.4", "SHIKEN^SABURO"),
        ),
        ("6.dcm", b"DICM but not really".to_vec()),
    ];
    for (name, bytes) in &files {
        std::fs::write(dir.join(name), bytes).expect("write");
    }
    let pkg = make(
        &s,
        &s.key,
        &recipient,
        "img.tkm",
        &PackageOptions::default(),
    );
    let Outcome::Received {
        manifest, report, ..
    } = receive(&s.home, &pkg, "tech-1").expect("receive")
    else {
        panic!("not received");
    };
    // Two images of the kept patient land (one study); the wrong birth date, the unknown patient
    // and the unreadable file are quarantined; the opted-out patient's image is refused.
    assert_eq!((report.images, report.images_refused), (2, 1));
    assert_eq!(report.quarantined, 1 + 3, "the bad record and three images");
    assert!(report.mismatched.is_empty(), "{:?}", report.mismatched);
    let q = tokumei_vault::store::read_quarantine(&s.home, &key, &manifest.package_id)
        .expect("quarantine");
    let reasons: Vec<&str> = q.iter().map(|q| q.reason.as_str()).collect();
    assert!(
        reasons.iter().any(|r| r.contains("birth date differs")),
        "{reasons:?}"
    );
    assert!(reasons
        .iter()
        .any(|r| r.contains("no record of the package")));
    assert!(
        reasons.iter().any(
            |r| r.starts_with("DICOM:") && r.contains("malformed") || r.contains("not a DICOM")
        ),
        "{reasons:?}"
    );
    // Indexed in the clinical zone under the patient's record, sealed in the identified zone.
    let paths = tokumei_vault::store::PackagePaths::of(&s.home, &manifest.package_id);
    let rows: Vec<tokumei_model::events::Image> = tokumei_vault::store::read_parquet(
        std::fs::read(paths.clinical.join("images.parquet")).expect("index"),
    )
    .expect("rows");
    let ids =
        tokumei_vault::store::read_identities(&s.home, &key, &manifest.package_id).expect("ids");
    let record = ids
        .iter()
        .find(|r| r.local_patient_id.as_deref() == Some("0000000001"))
        .expect("record");
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.record_id == record.record_id));
    assert!(rows
        .iter()
        .all(|r| r.study_id == format!("{}-s1", manifest.package_id)));
    assert_eq!(rows[0].modality.as_deref(), Some("CT"));
    assert_eq!(rows[0].body_part.as_deref(), Some("CHEST"));
    let back = tokumei_vault::images::read(&s.home, &key, &manifest.package_id, &rows[0].blob)
        .expect("image");
    assert_eq!(back, files[0].1);
    // No name or patient id of an image in the clear anywhere under the home.
    for marker in ["SHIKEN^", "0000000009"] {
        assert!(
            grep_home(&s.home.root, marker.as_bytes()).is_empty(),
            "{marker}"
        );
    }
    // A purge of the record removes its images too.
    let gone = std::collections::HashSet::from([record.record_id.clone()]);
    let purged = tokumei_vault::purge::purge_records(&s.home, &key, &gone).expect("purge");
    assert!(purged.events >= 2);
    let rows: Vec<tokumei_model::events::Image> = tokumei_vault::store::read_parquet(
        std::fs::read(paths.clinical.join("images.parquet")).expect("index"),
    )
    .expect("rows");
    assert!(rows.is_empty());
    assert_eq!(std::fs::read_dir(&paths.images).expect("dir").count(), 0);
}
