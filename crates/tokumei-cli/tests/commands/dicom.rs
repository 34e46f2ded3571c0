//! `tokumei dicom` end to end: a folder of CT headers with Japanese names (ISO 2022 IR 87 and
//! IR 159), one with burned-in annotation and one that is not DICOM, de-identified under a
//! preset; the person's files stay together under one pseudonym and study UID, nothing of the
//! person is left, the same key gives the same bytes, and `inspect` reads the output.

use std::path::Path;

use assert_cmd::Command;
use dicom_core::{Tag, VR};
use tokumei_dicom::charset::{Repertoire, Text};
use tokumei_dicom::write::to_bytes;
use tokumei_dicom::{DataSet, DicomFile, Syntax};

fn tokumei() -> Command {
    Command::cargo_bin("tokumei").expect("binary")
}

const NAME: &str = "Mori^Ogai=森^鷗外=もり^おうがい";
const CHARSET: &str = "\\ISO 2022 IR 87\\ISO 2022 IR 159";

fn ct(instance: &str, burned_in: bool) -> Vec<u8> {
    let mut meta = DataSet::default();
    meta.put(Tag(0x0002, 0x0001), VR::OB, vec![0, 1]);
    meta.put(
        Tag(0x0002, 0x0002),
        VR::UI,
        b"1.2.840.10008.5.1.4.1.1.2".to_vec(),
    );
    meta.put(Tag(0x0002, 0x0003), VR::UI, instance.as_bytes().to_vec());
    meta.put(Tag(0x0002, 0x0010), VR::UI, b"1.2.840.10008.1.2.1".to_vec());
    let name = Repertoire::parse(CHARSET)
        .and_then(|r| r.encode(NAME, Text::PersonNames))
        .expect("name");
    let mut b = DataSet::default();
    b.put(Tag(0x0008, 0x0005), VR::CS, CHARSET.as_bytes().to_vec());
    b.put(
        Tag(0x0008, 0x0016),
        VR::UI,
        b"1.2.840.10008.5.1.4.1.1.2".to_vec(),
    );
    b.put(Tag(0x0008, 0x0018), VR::UI, instance.as_bytes().to_vec());
    b.put(Tag(0x0008, 0x0020), VR::DA, b"20250314".to_vec());
    b.put(Tag(0x0008, 0x0060), VR::CS, b"CT".to_vec());
    b.put(
        Tag(0x0008, 0x0080),
        VR::LO,
        b"Aomori Central Hospital".to_vec(),
    );
    b.put(Tag(0x0010, 0x0010), VR::PN, name);
    b.put(Tag(0x0010, 0x0020), VR::LO, b"P-000123".to_vec());
    b.put(Tag(0x0010, 0x0030), VR::DA, b"19620117".to_vec());
    b.put(
        Tag(0x0020, 0x000d),
        VR::UI,
        b"1.2.392.200036.9116.2.6.1.48.1".to_vec(),
    );
    if burned_in {
        b.put(Tag(0x0028, 0x0301), VR::CS, b"YES".to_vec());
    }
    b.put(Tag(0x7fe0, 0x0010), VR::OW, vec![0; 64]);
    to_bytes(&DicomFile {
        meta,
        syntax: Syntax::ExplicitLittle,
        body: b,
    })
    .expect("write")
}

fn deid(input: &Path, out: &Path, key: &Path) -> assert_cmd::assert::Assert {
    tokumei()
        .args(["dicom", "deid", "--profile", "research", "--in"])
        .arg(input)
        .arg("--out")
        .arg(out)
        .arg("--key")
        .arg(key)
        .assert()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_folder_is_de_identified_consistently_and_the_same_key_gives_the_same_bytes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = tmp.path().join("in");
    std::fs::create_dir_all(input.join("study/series")).expect("dirs");
    std::fs::write(input.join("study/series/1.dcm"), ct("1.2.392.1.1", false)).expect("1");
    std::fs::write(input.join("study/series/2.dcm"), ct("1.2.392.1.2", false)).expect("2");
    std::fs::write(input.join("study/burned.dcm"), ct("1.2.392.1.3", true)).expect("3");
    std::fs::write(input.join("notes.txt"), "not dicom").expect("4");
    let key = tmp.path().join("release.key");
    std::fs::write(&key, "ab".repeat(32)).expect("key");

    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let out = deid(&input, &a, &key).code(1);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        stdout.contains("written 2 · withheld 1 · refused 0 · not read 1"),
        "{stdout}"
    );
    assert!(!stdout.contains("P-000123") && !stdout.contains("Mori"));
    deid(&input, &b, &key).code(1);

    let one = std::fs::read(a.join("study/series/1.dcm")).expect("written");
    let two = std::fs::read(a.join("study/series/2.dcm")).expect("written");
    assert!(!a.join("study/burned.dcm").exists() && !a.join("notes.txt").exists());
    assert_eq!(
        one,
        std::fs::read(b.join("study/series/1.dcm")).expect("again")
    );
    for leak in [
        &b"P-000123"[..],
        b"Mori",
        b"19620117",
        b"Aomori",
        b"1.2.392.1.1",
    ] {
        assert!(!contains(&one, leak), "{}", String::from_utf8_lossy(leak));
    }
    let parsed = |bytes: &[u8]| tokumei_dicom::parse(bytes, &Default::default()).expect("read");
    let (p1, p2) = (parsed(&one), parsed(&two));
    let id = |f: &DicomFile| f.body.text_ascii(Tag(0x0010, 0x0020));
    let study = |f: &DicomFile| f.body.text_ascii(Tag(0x0020, 0x000d));
    assert_eq!(id(&p1), id(&p2));
    assert_eq!(study(&p1), study(&p2));
    assert!(id(&p1).is_some_and(|p| p.starts_with("P-")));
    // Modified dates: the study date moved by the person's offset, the same in both files.
    let date = |f: &DicomFile| f.body.text_ascii(Tag(0x0008, 0x0020));
    assert_eq!(date(&p1), date(&p2));
    assert_ne!(date(&p1).as_deref(), Some("20250314"));

    let report = std::fs::read_to_string(a.join("deid-report.json")).expect("report");
    assert!(
        report.contains("\"withheld\"") && report.contains("not a DICOM file"),
        "{report}"
    );
    let out = tokumei()
        .args(["dicom", "inspect", "--json"])
        .arg(a.join("study"))
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("\"modality\":\"CT\""), "{text}");
    assert!(!text.contains("Mori"));
    // Another key relates nothing.
    let other = tmp.path().join("other.key");
    std::fs::write(&other, "cd".repeat(32)).expect("key");
    let c = tmp.path().join("c");
    deid(&input, &c, &other).code(1);
    let p3 = parsed(&std::fs::read(c.join("study/series/1.dcm")).expect("c"));
    assert_ne!(study(&p3), study(&p1));
    assert_ne!(id(&p3), id(&p1));
    // The output folder must be new.
    deid(&input, &a, &key).code(1);
    tokumei()
        .args(["dicom", "inspect"])
        .arg(input.join("notes.txt"))
        .assert()
        .code(1);
}

#[test]
fn pixel_rules_and_ocr_are_taken_from_their_options() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = tmp.path().join("in");
    std::fs::create_dir_all(&input).expect("dir");
    std::fs::write(input.join("burned.dcm"), ct("1.2.392.1.3", true)).expect("burned");
    std::fs::write(input.join("plain.dcm"), ct("1.2.392.1.4", false)).expect("plain");
    let profile = tmp.path().join("profile.toml");
    std::fs::write(&profile, "options = [\"113101\"]\n").expect("profile");
    let rules = tmp.path().join("rules.script");
    std::fs::write(&rules, "{ [Modality].equals(\"CT\") }\n  (0,0,64,8)\n").expect("rules");
    let out = tmp.path().join("out");
    let run = tokumei()
        .args(["dicom", "deid", "--in"])
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .arg("--profile")
        .arg(&profile)
        .arg("--pixel-rules")
        .arg(&rules)
        .args(["--ocr", "CT,US"])
        .assert()
        .code(1);
    // These test images have no Rows: the rule matches but cannot blank them, so both are
    // withheld, each with the reason.
    let stdout = String::from_utf8_lossy(&run.get_output().stdout).into_owned();
    assert!(stdout.contains("written 0 · withheld 2"), "{stdout}");
    assert!(stdout.contains("no Rows"), "{stdout}");
    let bad = tmp.path().join("bad.script");
    std::fs::write(&bad, "{ [0008,0060].sounds(\"CT\") }").expect("bad");
    let refused = tokumei()
        .args(["dicom", "deid", "--in"])
        .arg(&input)
        .arg("--out")
        .arg(tmp.path().join("out2"))
        .arg("--pixel-rules")
        .arg(&bad)
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&refused.get_output().stderr).into_owned();
    assert!(stderr.contains("line 1"), "{stderr}");
}
