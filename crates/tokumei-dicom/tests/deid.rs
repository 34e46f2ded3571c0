//! De-identification of the test file under the Basic Profile and each option, then the check:
//! no identifying value anywhere (sequences and private elements included), no Table E.1-1
//! attribute left unchanged, UIDs consistent within a release and unrelated across releases,
//! well-known UIDs untouched, and the conformance attributes written.

mod common;

use common::*;
use dicom_core::{Tag, VR};
use tokumei_dicom::check::{identifiers, listed, unchanged, Identifier};
use tokumei_dicom::deid::{deidentify, map_uid, Settings};
use tokumei_dicom::profile::{Profile, ProfileOption};
use tokumei_dicom::write::to_bytes;
use tokumei_dicom::{parse, DataSet, DicomFile, Limits, Syntax, Value};

const STUDY_UID: &str = "1.2.392.200036.9116.2.6.1.48.1";
const CT_IMAGE: &str = "1.2.840.10008.5.1.4.1.1.2";

fn original() -> DicomFile {
    let mut f = sample("1.2.840.10008.1.2.1", Syntax::ExplicitLittle, native());
    let b = &mut f.body;
    b.put(Tag(0x0008, 0x0020), VR::DA, uid("20250314"));
    b.put(Tag(0x0008, 0x0030), VR::TM, uid("101500"));
    b.put(Tag(0x0008, 0x0080), VR::LO, uid("Aomori Central Hospital"));
    b.put(Tag(0x0018, 0x1000), VR::LO, uid("SN-778899"));
    b.put(Tag(0x0010, 0x0040), VR::CS, uid("F "));
    b.put(Tag(0x0020, 0x000d), VR::UI, uid(STUDY_UID));
    b.put(
        Tag(0x0020, 0x000e),
        VR::UI,
        uid("1.2.392.200036.9116.2.6.1.48.2"),
    );
    // The sample's sample is re-read, so that it is as a file gives it.
    parse(&to_bytes(&f).expect("write"), &Limits::default()).expect("read")
}

fn settings(options: &[ProfileOption], key: u8) -> Settings {
    Settings {
        profile: Profile::new(options).expect("profile"),
        uid_key: [key; 32],
        pseudonym: Some("R-0007-3F9A".into()),
        date_offset_days: -12,
        date_granularity: tokumei_dicom::deid::Granularity::Day,
        safe_private: Vec::new(),
        pixel_rules: Vec::new(),
        ocr: None,
    }
}

fn deidentified(options: &[ProfileOption]) -> DicomFile {
    let mut f = original();
    let outcome = deidentify(&mut f, &settings(options, 1));
    assert_eq!(outcome.withheld, None);
    parse(&to_bytes(&f).expect("write"), &Limits::default()).expect("read back")
}

fn person() -> Vec<Identifier> {
    let id = |kind: &str, value: &str| Identifier {
        kind: kind.into(),
        value: value.into(),
    };
    vec![
        id("name (alphabet)", "Mori^Ogai"),
        id("name (kanji)", "森^鷗外"),
        id("name (kana)", "もり^おうがい"),
        id("id", "P-000123"),
        id("birth date", "19620117"),
    ]
}

fn text(f: &DicomFile, tag: Tag) -> Option<String> {
    f.body.text_ascii(tag)
}

#[test]
fn the_basic_profile_leaves_nothing_identifying() {
    let before = original();
    assert!(
        !identifiers(&before, &person()).is_empty(),
        "the check finds the name"
    );
    let after = deidentified(&[]);
    assert_eq!(identifiers(&after, &person()), vec![]);
    let profile = Profile::new(&[]).expect("basic");
    assert_eq!(unchanged(&before, &after, &profile), vec![]);
    assert!(listed(&before.body, &profile) > 10);
    // Private elements are removed.
    assert!(after.body.get(Tag(0x0009, 0x1001)).is_none());
    assert!(after.body.get(Tag(0x0009, 0x0010)).is_none());
    // The pseudonym is the patient; the well-known UIDs stay.
    assert_eq!(
        text(&after, Tag(0x0010, 0x0020)).as_deref(),
        Some("R-0007-3F9A")
    );
    assert_eq!(text(&after, Tag(0x0008, 0x0016)).as_deref(), Some(CT_IMAGE));
    assert_eq!(
        after.meta.text_ascii(Tag(0x0002, 0x0002)).as_deref(),
        Some(CT_IMAGE)
    );
    // The conformance attributes.
    assert_eq!(text(&after, Tag(0x0012, 0x0062)).as_deref(), Some("YES"));
    assert_eq!(
        text(&after, Tag(0x0028, 0x0303)).as_deref(),
        Some("REMOVED")
    );
    let Some(Value::Items { items, .. }) = after.body.get(Tag(0x0012, 0x0064)).map(|e| &e.value)
    else {
        panic!("the method code sequence");
    };
    assert_eq!(
        items[0].text_ascii(Tag(0x0008, 0x0100)).as_deref(),
        Some("113100")
    );
    // dicom-rs reads the result.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("out.dcm");
    std::fs::write(&path, to_bytes(&after).expect("write")).expect("file");
    assert!(dicom_object::open_file(&path).is_ok());
}

#[test]
fn sequences_kept_are_cleaned_at_every_depth() {
    // Retain UIDs keeps the Referenced Study Sequence (X/Z otherwise): its items, three deep,
    // are de-identified all the same.
    let after = deidentified(&[ProfileOption::RetainUids]);
    assert_eq!(identifiers(&after, &person()), vec![]);
    let mut set = &after.body;
    for _ in 0..3 {
        let Some(Value::Items { items, .. }) = set.get(Tag(0x0008, 0x1110)).map(|e| &e.value)
        else {
            panic!("the sequence is kept");
        };
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].bytes(Tag(0x0010, 0x0010)), Some(&[][..]));
        set = &items[0];
    }
}

#[test]
fn uids_are_consistent_within_a_release_and_unrelated_across() {
    let after = deidentified(&[]);
    let sop = text(&after, Tag(0x0008, 0x0018)).expect("sop");
    assert!(sop.starts_with("2.25."), "{sop}");
    assert_eq!(
        after.meta.text_ascii(Tag(0x0002, 0x0003)),
        Some(sop.clone())
    );
    let study = text(&after, Tag(0x0020, 0x000d)).expect("study");
    assert_eq!(study, map_uid(&[1; 32], STUDY_UID));
    assert_ne!(study, map_uid(&[2; 32], STUDY_UID));
    // A second file of the same study in the same release: the same study UID.
    let mut other = original();
    other.body.put(
        Tag(0x0008, 0x0018),
        VR::UI,
        uid("1.2.392.200036.9116.2.6.1.49"),
    );
    deidentify(&mut other, &settings(&[], 1));
    assert_eq!(text(&other, Tag(0x0020, 0x000d)), Some(study));
    assert_ne!(text(&other, Tag(0x0008, 0x0018)), Some(sop));
}

#[test]
fn each_option_does_what_the_table_says() {
    let basic = deidentified(&[]);
    assert_eq!(text(&basic, Tag(0x0008, 0x0020)).as_deref(), Some(""));
    let full = deidentified(&[ProfileOption::RetainFullDates]);
    assert_eq!(
        text(&full, Tag(0x0008, 0x0020)).as_deref(),
        Some("20250314")
    );
    assert_eq!(
        text(&full, Tag(0x0028, 0x0303)).as_deref(),
        Some("UNMODIFIED")
    );
    let modified = deidentified(&[ProfileOption::RetainModifiedDates]);
    assert_eq!(
        text(&modified, Tag(0x0008, 0x0020)).as_deref(),
        Some("20250302")
    );
    assert_eq!(
        text(&modified, Tag(0x0028, 0x0303)).as_deref(),
        Some("MODIFIED")
    );
    // Ranges and date-times with their offsets shift whole; an empty UID stays empty.
    let mut f = original();
    f.body
        .put(Tag(0x0008, 0x0022), VR::DA, uid("20250301-20250310"));
    f.body
        .put(Tag(0x0008, 0x002a), VR::DT, uid("20250314101500-0500"));
    f.body.put(Tag(0x0020, 0x0052), VR::UI, Vec::new());
    deidentify(&mut f, &settings(&[ProfileOption::RetainModifiedDates], 1));
    assert_eq!(
        text(&f, Tag(0x0008, 0x0022)).as_deref(),
        Some("20250217-20250226")
    );
    assert_eq!(
        text(&f, Tag(0x0008, 0x002a)).as_deref(),
        Some("20250302101500-0500")
    );
    assert_eq!(f.body.bytes(Tag(0x0020, 0x0052)), Some(&[][..]));
    // The method: one value per part, each within LO's 64 characters.
    let all: Vec<ProfileOption> = ProfileOption::ALL
        .into_iter()
        .filter(|o| *o != ProfileOption::RetainFullDates)
        .collect();
    let mut g = original();
    deidentify(&mut g, &settings(&all, 1));
    let method = text(&g, Tag(0x0012, 0x0063)).expect("method");
    assert!(method.split('\\').all(|v| v.len() <= 64), "{method}");
    assert_eq!(method.split('\\').count(), 2 + all.len());
    let uids = deidentified(&[ProfileOption::RetainUids]);
    assert_eq!(text(&uids, Tag(0x0020, 0x000d)).as_deref(), Some(STUDY_UID));
    let device = deidentified(&[ProfileOption::RetainDeviceIdentity]);
    assert_eq!(
        text(&device, Tag(0x0018, 0x1000)).as_deref(),
        Some("SN-778899")
    );
    assert_ne!(
        text(&basic, Tag(0x0018, 0x1000)).as_deref(),
        Some("SN-778899")
    );
    let institution = deidentified(&[ProfileOption::RetainInstitutionIdentity]);
    assert_eq!(
        text(&institution, Tag(0x0008, 0x0080)).as_deref(),
        Some("Aomori Central Hospital")
    );
    assert_ne!(
        text(&basic, Tag(0x0008, 0x0080)).as_deref(),
        Some("Aomori Central Hospital")
    );
    let characteristics = deidentified(&[ProfileOption::RetainPatientCharacteristics]);
    assert_eq!(
        text(&characteristics, Tag(0x0010, 0x0040)).as_deref(),
        Some("F")
    );
    // Every chosen option is named in the method code sequence.
    let Some(Value::Items { items, .. }) = full.body.get(Tag(0x0012, 0x0064)).map(|e| &e.value)
    else {
        panic!("codes");
    };
    let codes: Vec<String> = items
        .iter()
        .filter_map(|i| i.text_ascii(Tag(0x0008, 0x0100)))
        .collect();
    assert_eq!(codes, ["113100", "113106"]);
}

#[test]
fn safe_private_elements_stay_only_when_listed() {
    let mut s = settings(&[ProfileOption::RetainSafePrivate], 1);
    s.safe_private = vec![("TOKUMEI TEST".into(), 0x01)];
    let mut f = original();
    deidentify(&mut f, &s);
    assert!(f.body.get(Tag(0x0009, 0x1001)).is_some());
    assert!(f.body.get(Tag(0x0009, 0x0010)).is_some());
    s.safe_private = vec![("ANOTHER".into(), 0x01)];
    let mut g = original();
    deidentify(&mut g, &s);
    assert!(g.body.get(Tag(0x0009, 0x1001)).is_none());
}

#[test]
fn burned_in_annotation_is_withheld() {
    let mut f = original();
    f.body.put(Tag(0x0028, 0x0301), VR::CS, uid("YES"));
    let outcome = deidentify(&mut f, &settings(&[], 1));
    assert!(outcome.withheld.is_some());
    let mut g = original();
    g.body.put(Tag(0x0028, 0x0301), VR::CS, uid("NO"));
    assert!(deidentify(&mut g, &settings(&[], 1)).withheld.is_none());
}

#[test]
fn under_113102_images_that_may_show_a_face_are_withheld() {
    let visual = [ProfileOption::CleanVisualFeatures];
    let with = |tags: &[(u16, u16, VR, &str)], options: &[ProfileOption]| {
        let mut f = original();
        for (g, e, vr, v) in tags {
            f.body.put(Tag(*g, *e), *vr, uid(v));
        }
        deidentify(&mut f, &settings(options, 1)).withheld
    };
    let head_ct = [
        (0x0008, 0x0060, VR::CS, "CT"),
        (0x0018, 0x0015, VR::CS, "HEAD"),
    ];
    let why = with(&head_ct, &visual).expect("a head CT is withheld");
    assert!(why.contains("113102"), "{why}");
    assert!(with(&head_ct, &[]).is_none(), "only under the option");
    let chest_ct = [
        (0x0008, 0x0060, VR::CS, "CT"),
        (0x0018, 0x0015, VR::CS, "CHEST"),
    ];
    assert!(with(&chest_ct, &visual).is_none());
    let flagged = [(0x0028, 0x0302, VR::CS, "YES")];
    assert!(with(&flagged, &visual).is_some());
    let photo = [(0x0008, 0x0060, VR::CS, "XC")];
    assert!(with(&photo, &visual).is_some());
}

#[test]
fn the_check_finds_what_a_careless_tool_leaves() {
    // A "de-identifier" that only blanks the top-level name: the check finds the rest.
    let before = original();
    let mut careless = before.clone();
    careless.body.put(Tag(0x0010, 0x0010), VR::PN, Vec::new());
    let found = identifiers(&careless, &person());
    assert!(found.iter().any(|f| f.path.starts_with("(0008,1110)[0]")));
    assert!(found.iter().any(|f| f.what == "identifier: id"));
    let unchanged = unchanged(&before, &careless, &Profile::new(&[]).expect("basic"));
    assert!(unchanged.iter().any(|f| f.path == "(0010,0020)"));
    let _ = DataSet::default();
}

#[test]
fn a_modified_date_may_come_out_as_it_went_in() {
    // The release's rule is the month: 2025-03-14 becomes 2025-03-01, and a study on the first of
    // a month keeps its date; the check does not take that for a date left unchanged.
    let options = [ProfileOption::RetainModifiedDates];
    for (date, expected) in [("20250314", "20250301"), ("20250301", "20250301")] {
        let mut before = original();
        before.body.put(Tag(0x0008, 0x0020), VR::DA, uid(date));
        let mut after = before.clone();
        let s = Settings {
            date_offset_days: 0,
            date_granularity: tokumei_dicom::deid::Granularity::Month,
            ..settings(&options, 1)
        };
        deidentify(&mut after, &s);
        assert_eq!(
            after.body.text_ascii(Tag(0x0008, 0x0020)).as_deref(),
            Some(expected)
        );
        let profile = Profile::new(&options).expect("profile");
        assert_eq!(unchanged(&before, &after, &profile), vec![], "{date}");
    }
    // Without Modified Dates the date is removed or emptied: one left as it was is a finding.
    let before = original();
    let basic = Profile::new(&[]).expect("basic");
    let found = unchanged(&before, &before.clone(), &basic);
    assert!(found.iter().any(|f| f.path == "(0008,0020)"), "{found:?}");
}
