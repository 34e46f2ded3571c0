//! A DICOMDIR in the input is not copied but rebuilt from the output: PATIENT → STUDY → SERIES →
//! IMAGE records with the de-identified values of the files written (never the input's), each
//! record's offsets pointing at the item they name, the root's first and last records, the
//! Media Storage SOP Class of a DICOMDIR; a file whose path is not a File ID is left out and
//! reported. Read back by our reader, by dicom-object and, where it is installed, by pydicom's
//! `FileSet`; the pydicom corpus's DICOMDIR folders (nested) when `target/dicom-corpus/` is there.

use std::collections::BTreeMap;
use std::path::Path;

use dicom_core::{Tag, VR};
use tokumei_dicom::batch::{run, Batch};
use tokumei_dicom::profile::Profile;
use tokumei_dicom::write::to_bytes;
use tokumei_dicom::{parse, DataSet, DicomFile, Element, Limits, Value};

fn image(patient: &str, study: &str, series: &str, sop: &str) -> Vec<u8> {
    let mut b = DataSet::default();
    b.put_str(Tag(0x0008, 0x0016), VR::UI, "1.2.840.10008.5.1.4.1.1.2");
    b.put_str(Tag(0x0008, 0x0018), VR::UI, sop);
    b.put_str(Tag(0x0008, 0x0020), VR::DA, "20250314");
    b.put_str(Tag(0x0008, 0x0030), VR::TM, "101500");
    b.put_str(Tag(0x0008, 0x0050), VR::SH, "ACC-778899");
    b.put_str(Tag(0x0008, 0x0060), VR::CS, "CT");
    b.put_str(Tag(0x0010, 0x0010), VR::PN, "Yamada^Taro");
    b.put_str(Tag(0x0010, 0x0020), VR::LO, patient);
    b.put_str(Tag(0x0020, 0x000d), VR::UI, study);
    b.put_str(Tag(0x0020, 0x000e), VR::UI, series);
    b.put_str(Tag(0x0020, 0x0010), VR::SH, "S-5566");
    b.put_str(Tag(0x0020, 0x0011), VR::IS, "1");
    b.put_str(Tag(0x0020, 0x0013), VR::IS, "1");
    b.insert(Element {
        tag: Tag(0x7fe0, 0x0010),
        vr: VR::OW,
        value: Value::Bytes(vec![0; 32]),
    });
    to_bytes(&DicomFile::explicit_little(b, "2.25.99", "TEST")).expect("write")
}

/// An old DICOMDIR: its class is all that matters.
fn old_dicomdir() -> Vec<u8> {
    let mut m = DataSet::default();
    m.put(Tag(0x0002, 0x0001), VR::OB, vec![0, 1]);
    m.put_str(Tag(0x0002, 0x0002), VR::UI, "1.2.840.10008.1.3.10");
    m.put_str(Tag(0x0002, 0x0003), VR::UI, "1.2.392.555.1");
    m.put_str(Tag(0x0002, 0x0010), VR::UI, "1.2.840.10008.1.2.1");
    let mut b = DataSet::default();
    b.put_str(Tag(0x0004, 0x1130), VR::CS, "HOSPITAL_A");
    b.put_items(Tag(0x0004, 0x1220), Vec::new());
    to_bytes(&DicomFile {
        meta: m,
        syntax: tokumei_dicom::Syntax::ExplicitLittle,
        body: b,
    })
    .expect("write")
}

fn batch() -> Batch {
    Batch {
        profile: Profile::new(&[]).expect("profile"),
        key: [7; 32],
        safe_private: Vec::new(),
        limits: Limits::default(),
        pixel_rules: Vec::new(),
        ocr: None,
    }
}

fn u32_of(set: &DataSet, tag: Tag) -> usize {
    let b = set.bytes(tag).expect("offset");
    u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
}

/// The records by their offset in the file, walked from the bytes.
fn records(bytes: &[u8], file: &DicomFile) -> BTreeMap<usize, DataSet> {
    let Some(Element {
        value: Value::Items { items, .. },
        ..
    }) = file.body.get(Tag(0x0004, 0x1220))
    else {
        panic!("no records");
    };
    let mut at = u32_of(&file.body, Tag(0x0004, 0x1200));
    let mut out = BTreeMap::new();
    for item in items {
        assert_eq!(
            &bytes[at..at + 4],
            &[0xfe, 0xff, 0x00, 0xe0],
            "item at {at}"
        );
        let len = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]])
            as usize;
        out.insert(at, item.clone());
        at += 8 + len;
    }
    out
}

/// Each record's children in order, following the offsets from `first`.
fn chain(recs: &BTreeMap<usize, DataSet>, first: usize) -> Vec<DataSet> {
    let mut out = Vec::new();
    let mut at = first;
    while at != 0 {
        let r = recs.get(&at).expect("an offset names a record");
        out.push(r.clone());
        at = u32_of(r, Tag(0x0004, 0x1400));
    }
    out
}

fn kind(r: &DataSet) -> String {
    r.text_ascii(Tag(0x0004, 0x1430)).unwrap_or_default()
}

#[test]
fn a_dicomdir_is_rebuilt_from_the_de_identified_output() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = tmp.path().join("in");
    for (path, bytes) in [
        (
            "P1/ST1/SE1/IM1",
            image("KANJA01", "1.2.392.9.1", "1.2.392.9.1.1", "1.2.392.9.1.1.1"),
        ),
        (
            "P1/ST1/SE1/IM2",
            image("KANJA01", "1.2.392.9.1", "1.2.392.9.1.1", "1.2.392.9.1.1.2"),
        ),
        (
            "P1/ST1/SE2/IM1",
            image("KANJA01", "1.2.392.9.1", "1.2.392.9.1.2", "1.2.392.9.1.2.1"),
        ),
        (
            "P2/ST1/SE1/IM1",
            image("KANJA02", "1.2.392.9.2", "1.2.392.9.2.1", "1.2.392.9.2.1.1"),
        ),
        (
            "extra/ct_small.dcm",
            image("KANJA02", "1.2.392.9.2", "1.2.392.9.2.1", "1.2.392.9.2.1.2"),
        ),
        ("DICOMDIR", old_dicomdir()),
    ] {
        let p = input.join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("dirs");
        std::fs::write(p, bytes).expect("write");
    }
    let out = tmp.path().join("out");
    let report = run(&input, &out, &batch(), &|| {}).expect("run");
    assert_eq!((report.written, report.rebuilt), (5, 1));
    assert_eq!(report.dicomdirs.len(), 1);
    let d = &report.dicomdirs[0];
    assert_eq!((d.path.as_str(), d.indexed), ("DICOMDIR", 4));
    assert_eq!(d.not_indexed.len(), 1);
    assert!(d.not_indexed[0].0.contains("ct_small.dcm"));

    let bytes = std::fs::read(out.join("DICOMDIR")).expect("DICOMDIR written");
    for leak in [
        "KANJA0",
        "S-5566",
        "Yamada",
        "1.2.392.9",
        "ACC-778899",
        "HOSPITAL_A",
        "20250314",
    ] {
        assert!(
            !bytes.windows(leak.len()).any(|w| w == leak.as_bytes()),
            "{leak} in the DICOMDIR"
        );
    }
    let dir = parse(&bytes, &Limits::default()).expect("our reader");
    assert_eq!(
        dir.meta.text_ascii(Tag(0x0002, 0x0002)).as_deref(),
        Some("1.2.840.10008.1.3.10")
    );
    let recs = records(&bytes, &dir);
    assert_eq!(recs.len(), 2 + 2 + 3 + 4);
    let patients = chain(&recs, u32_of(&dir.body, Tag(0x0004, 0x1200)));
    assert_eq!(patients.len(), 2);
    let last = *recs
        .iter()
        .find(|(_, r)| *r == patients.last().expect("last"))
        .expect("last")
        .0;
    assert_eq!(u32_of(&dir.body, Tag(0x0004, 0x1202)), last);
    let mut files = 0;
    for p in &patients {
        assert_eq!(kind(p), "PATIENT");
        let pid = p.text_ascii(Tag(0x0010, 0x0020)).expect("patient id");
        assert!(pid.starts_with("P-"), "{pid}");
        for st in chain(&recs, u32_of(p, Tag(0x0004, 0x1420))) {
            assert_eq!(kind(&st), "STUDY");
            for se in chain(&recs, u32_of(&st, Tag(0x0004, 0x1420))) {
                assert_eq!(kind(&se), "SERIES");
                for im in chain(&recs, u32_of(&se, Tag(0x0004, 0x1420))) {
                    assert_eq!(kind(&im), "IMAGE");
                    assert_eq!(u32_of(&im, Tag(0x0004, 0x1420)), 0);
                    let id = im.text_ascii(Tag(0x0004, 0x1500)).expect("file id");
                    let path: std::path::PathBuf = id.split('\\').collect();
                    let f = parse(
                        &std::fs::read(out.join(path)).expect("file"),
                        &Limits::default(),
                    )
                    .expect("file reads");
                    // The records hold the values of the file as written.
                    let v = |s: &DataSet, t: Tag| s.text_ascii(t);
                    assert_eq!(v(&im, Tag(0x0004, 0x1511)), v(&f.body, Tag(0x0008, 0x0018)));
                    assert_eq!(v(&se, Tag(0x0020, 0x000e)), v(&f.body, Tag(0x0020, 0x000e)));
                    assert_eq!(v(&st, Tag(0x0020, 0x000d)), v(&f.body, Tag(0x0020, 0x000d)));
                    assert_eq!(v(&st, Tag(0x0008, 0x0020)), v(&f.body, Tag(0x0008, 0x0020)));
                    assert_eq!(Some(pid.clone()), v(&f.body, Tag(0x0010, 0x0020)));
                    assert_eq!(
                        v(&im, Tag(0x0004, 0x1512)),
                        f.meta.text_ascii(Tag(0x0002, 0x0010))
                    );
                    files += 1;
                }
            }
        }
    }
    assert_eq!(files, 4);

    // dicom-object reads it, with the same records.
    let obj = dicom_object::open_file(out.join("DICOMDIR")).expect("dicom-object");
    assert_eq!(
        obj.meta().media_storage_sop_class_uid(),
        "1.2.840.10008.1.3.10"
    );
    let seq = obj
        .element(Tag(0x0004, 0x1220))
        .expect("records")
        .items()
        .expect("items");
    assert_eq!(seq.len(), recs.len());
    pydicom_reads(&out.join("DICOMDIR"), 4);
}

/// pydicom's FileSet loads it and finds the files, where pydicom is installed (`python3`, or the
/// interpreter `TOKUMEI_PYTHON` names).
fn pydicom_reads(path: &Path, files: usize) {
    let python = std::env::var("TOKUMEI_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = "import sys\nfrom pydicom import dcmread\nfrom pydicom.fileset import FileSet\n\
                  fs = FileSet(dcmread(sys.argv[1]))\n\
                  print(len(fs), all(i.load().SOPInstanceUID == i.SOPInstanceUID for i in fs))\n";
    let probe = std::process::Command::new(&python)
        .args(["-c", "import pydicom"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("pydicom is not installed: its reading of the DICOMDIR is not tested");
        return;
    }
    let out = std::process::Command::new(&python)
        .args(["-c", script])
        .arg(path)
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.trim(), format!("{files} True"));
}

#[test]
fn the_corpus_dicomdirs_are_rebuilt_in_their_folders() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/dicom-corpus/pydicom/data/test_files/dicomdirtests");
    if !dir.exists() {
        eprintln!(
            "{} is missing (scripts/test-deps.sh): skipped",
            dir.display()
        );
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("out");
    let report = run(&dir, &out, &batch(), &|| {}).expect("run");
    let paths: Vec<&str> = report.dicomdirs.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(paths, ["DICOMDIR", "TINY_ALPHA/DICOMDIR"]);
    for d in &report.dicomdirs {
        assert!(d.indexed > 0 && d.not_indexed.is_empty(), "{d:?}");
        let bytes = std::fs::read(out.join(&d.path)).expect("written");
        let file = parse(&bytes, &Limits::default()).expect("reads");
        assert!(records(&bytes, &file).len() > d.indexed);
        dicom_object::open_file(out.join(&d.path)).expect("dicom-object");
        pydicom_reads(&out.join(&d.path), d.indexed);
    }
}
