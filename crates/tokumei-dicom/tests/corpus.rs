//! The public test files of pydicom and deid-data (fetched from PyPI by `scripts/test-deps.sh`
//! into `target/dicom-corpus/`): every file that reads writes back to the same data set; every
//! file de-identified under the Basic Profile holds none of its person's names, ids or birth date
//! anywhere and no Table E.1-1 attribute unchanged; the files known to be broken are refused
//! with a reason.

use std::path::{Path, PathBuf};

use dicom_core::Tag;
use tokumei_dicom::batch::files_under;
use tokumei_dicom::charset::Repertoire;
use tokumei_dicom::check::{identifiers, unchanged, Identifier};
use tokumei_dicom::deid::{deidentify, Settings};
use tokumei_dicom::profile::Profile;
use tokumei_dicom::write::to_bytes;
use tokumei_dicom::{parse, DicomFile, Limits};

fn corpus() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/dicom-corpus");
    assert!(
        dir.join(".complete").exists(),
        "{} is missing: run scripts/test-deps.sh",
        dir.display()
    );
    dir
}

/// The person's identifying values a file holds at its top level.
fn person(f: &DicomFile) -> Vec<Identifier> {
    let rep = f
        .body
        .repertoire(&Repertoire::default())
        .unwrap_or_default();
    let mut ids = Vec::new();
    for (tag, kind) in [
        (Tag(0x0010, 0x0010), "name"),
        (Tag(0x0010, 0x0020), "id"),
        (Tag(0x0010, 0x0030), "birth date"),
        (Tag(0x0010, 0x1040), "address"),
    ] {
        if let Some(Ok(v)) = f.body.text(tag, &rep) {
            // Each name group and component on its own, as a careless tool might leave one.
            // (Files already anonymized by their makers name their person "Anonymized", which is
            // also the de-identifier's dummy, or "Test", which test-SR.dcm's coding scheme is:
            // placeholders, not identifiers.)
            let placeholder = |p: &str| {
                let p = p.to_lowercase();
                p.starts_with("anonym") || p == "test"
            };
            for part in v
                .split(['=', '^'])
                .map(str::trim)
                .filter(|p| p.len() >= 4 && !placeholder(p))
            {
                ids.push(Identifier {
                    kind: kind.into(),
                    value: part.to_string(),
                });
            }
        }
    }
    ids
}

#[test]
fn the_public_test_files_read_round_trip_and_de_identify_clean() {
    let files = files_under(&corpus()).expect("corpus");
    let profile = Profile::new(&[]).expect("basic");
    let (mut read, mut with_person, mut refused) = (0, 0, Vec::new());
    for path in &files {
        let bytes = std::fs::read(path).expect("file");
        let file = match parse(&bytes, &Limits::default()) {
            Ok(f) => f,
            Err(e) => {
                refused.push(path.file_name().map(|n| n.to_string_lossy().into_owned()));
                assert!(!e.to_string().is_empty());
                continue;
            }
        };
        read += 1;
        let again = parse(&to_bytes(&file).expect("write"), &Limits::default()).expect("re-read");
        assert_eq!(again.body, file.body, "{}", path.display());
        let ids = person(&file);
        with_person += usize::from(!ids.is_empty());
        let mut out = file.clone();
        let s = Settings {
            profile: profile.clone(),
            uid_key: [7; 32],
            pseudonym: Some("P-7F3A9C21".into()),
            date_offset_days: -30,
            date_granularity: tokumei_dicom::deid::Granularity::Day,
            safe_private: Vec::new(),
            pixel_rules: Vec::new(),
            ocr: None,
        };
        deidentify(&mut out, &s);
        let out = parse(&to_bytes(&out).expect("write"), &Limits::default()).expect("output");
        assert_eq!(identifiers(&out, &ids), vec![], "{}", path.display());
        assert_eq!(
            unchanged(&file, &out, &profile),
            vec![],
            "{}",
            path.display()
        );
    }
    assert!(read >= 150, "{read} of {} files read", files.len());
    assert!(with_person >= 100, "{with_person} files name their person");
    for broken in ["MR_truncated.dcm", "rtplan_truncated.dcm", "README.txt"] {
        assert!(
            refused.iter().flatten().any(|n| n == broken),
            "{broken} is refused"
        );
    }
}
