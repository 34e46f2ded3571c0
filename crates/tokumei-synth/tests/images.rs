//! The imaging studies of a small region, checked on the written files: every DICOM file reads
//! back, carries the hospital's patient number and the person's name and dates as the truth says,
//! the truth and the files agree one to one, drawn text is found by OCR, and the files are the
//! same bytes whatever the number of threads.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chrono::NaiveDate;
use dicom_core::Tag;
use tokumei_dicom::charset::Repertoire;
use tokumei_dicom::{DicomFile, Limits};
use tokumei_model::identity::IdentityRecord;
use tokumei_model::truth::{RecordLink, TruthImage, TruthNameChange, TruthPerson};
use tokumei_synth::writer::{read_sources, read_table};
use tokumei_synth::{generate, Config, Summary};

struct Region {
    root: PathBuf,
    summary: Summary,
}

fn region() -> &'static Region {
    static R: OnceLock<Region> = OnceLock::new();
    R.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("synth-images-1500");
        if root.exists() {
            std::fs::remove_dir_all(&root).expect("remove the previous run's region");
        }
        let config = Config {
            people: 1500,
            seed: 11,
            out: root.clone(),
            ..Config::default()
        };
        let summary = generate(&config, &|_| {}).expect("generate");
        Region { root, summary }
    })
}

fn images(root: &Path) -> Vec<TruthImage> {
    read_table(&root.join("truth/images.parquet")).expect("images")
}

fn read(root: &Path, image: &TruthImage) -> DicomFile {
    let path = root
        .join("sources")
        .join(&image.provider_id)
        .join(&image.path);
    let bytes = std::fs::read(&path).expect("image file");
    tokumei_dicom::parse(&bytes, &Limits::default()).expect("valid DICOM")
}

/// Every file under `sources/*/dicom/`, as `(provider, path in the provider's folder)`.
fn dicom_files(root: &Path) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for provider in std::fs::read_dir(root.join("sources")).expect("sources") {
        let provider = provider.expect("entry").path();
        let id = provider
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        let mut stack = vec![provider.join("dicom")];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries {
                let path = e.expect("entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let rel = path.strip_prefix(&provider).expect("prefix");
                    out.insert((id.clone(), rel.to_string_lossy().replace('\\', "/")));
                }
            }
        }
    }
    out
}

/// The kanji surname of a person on a date, from the truth (name changes undone before their date).
fn surname_on(person: &TruthPerson, changes: &[&TruthNameChange], date: NaiveDate) -> String {
    changes
        .iter()
        .filter(|c| c.date > date)
        .min_by_key(|c| c.date)
        .map(|c| c.old_surname_kanji.clone())
        .unwrap_or_else(|| person.surname_kanji.clone())
}

fn text(file: &DicomFile, tag: Tag) -> String {
    let rep = file
        .body
        .repertoire(&Repertoire::default())
        .expect("declared character set");
    file.body
        .text(tag, &rep)
        .expect("present")
        .expect("decodes")
}

#[test]
fn the_region_has_imaging_studies_and_the_truth_lists_every_file() {
    let r = region();
    let truth = images(&r.root);
    assert!(
        truth.len() >= 20,
        "a 1,500-person region has imaging studies: {} images",
        truth.len()
    );
    assert_eq!(r.summary.images, truth.len() as u64);
    assert_eq!(r.summary.rows["truth.images"], truth.len() as u64);
    let listed: BTreeSet<(String, String)> = truth
        .iter()
        .map(|i| (i.provider_id.clone(), i.path.clone()))
        .collect();
    assert_eq!(listed.len(), truth.len(), "each file listed once");
    assert_eq!(listed, dicom_files(&r.root), "truth and files agree");
    let studies: BTreeSet<(&str, &str)> = truth
        .iter()
        .map(|i| {
            (
                i.provider_id.as_str(),
                i.path.rsplit_once('/').expect("folder").0,
            )
        })
        .collect();
    assert_eq!(r.summary.imaging_studies, studies.len() as u64);
    for i in &truth {
        // Only the SS-MIX2 hospitals (H01–H05); paths carry numbers only.
        assert!(
            ["H01", "H02", "H03", "H04", "H05"].contains(&i.provider_id.as_str()),
            "{}",
            i.provider_id
        );
        let parts: Vec<&str> = i.path.split('/').collect();
        assert_eq!(parts.len(), 3, "{}", i.path);
        assert_eq!(parts[0], "dicom");
        assert!(parts[1].len() == 6 && parts[1].bytes().all(|b| b.is_ascii_digit()));
        assert!(parts[2] == "1.dcm" || parts[2] == "2.dcm", "{}", i.path);
    }
    let modalities: BTreeMap<&str, usize> = truth.iter().fold(BTreeMap::new(), |mut m, i| {
        *m.entry(i.modality.as_str()).or_default() += 1;
        m
    });
    let most = modalities.iter().max_by_key(|(_, n)| **n).map(|(m, _)| *m);
    assert_eq!(most, Some("CR"), "{modalities:?}");
    assert!(truth
        .iter()
        .any(|i| i.burned_in && i.burned_in_flag.is_none()));
    assert!(truth
        .iter()
        .any(|i| i.burned_in && i.burned_in_flag.as_deref() == Some("YES")));
}

#[test]
fn every_image_carries_the_hospitals_patient_number_and_the_persons_name_and_dates() {
    let r = region();
    let root = &r.root;
    let truth = images(root);
    let persons: HashMap<String, TruthPerson> =
        read_table::<TruthPerson>(&root.join("truth/persons.parquet"))
            .expect("persons")
            .into_iter()
            .map(|p| (p.person_id.clone(), p))
            .collect();
    let changes: Vec<TruthNameChange> =
        read_table(&root.join("truth/name_changes.parquet")).expect("name changes");
    let person_of: HashMap<String, String> =
        read_table::<RecordLink>(&root.join("truth/record_links.parquet"))
            .expect("links")
            .into_iter()
            .map(|l| (l.record_id, l.person_id))
            .collect();
    // (provider, person) → the local patient ids that provider's identity records carry, and
    // their birth dates (the PACS takes the hospital's registration, typing errors included).
    let mut local: HashMap<(String, String), HashSet<String>> = HashMap::new();
    let mut births: HashMap<(String, String), HashSet<String>> = HashMap::new();
    for id in read_sources::<IdentityRecord>(root).expect("identities") {
        if let (Some(pid), Some(person)) = (id.local_patient_id, person_of.get(&id.record_id)) {
            let at = (id.provider_id, person.clone());
            if let Some(b) = id.birth_date {
                births
                    .entry(at.clone())
                    .or_default()
                    .insert(b.format("%Y%m%d").to_string());
            }
            local.entry(at).or_default().insert(pid);
        }
    }
    let mut charsets = BTreeSet::new();
    for image in &truth {
        let f = read(root, image);
        let what = format!("{}/{}", image.provider_id, image.path);
        assert_eq!(
            f.meta.text_ascii(Tag(0x0002, 0x0010)).as_deref(),
            Some("1.2.840.10008.1.2.1"),
            "{what}"
        );
        let sop_class = match image.modality.as_str() {
            "CT" => "1.2.840.10008.5.1.4.1.1.2",
            "MR" => "1.2.840.10008.5.1.4.1.1.4",
            "CR" => "1.2.840.10008.5.1.4.1.1.1",
            _ => "1.2.840.10008.5.1.4.1.1.6.1",
        };
        assert_eq!(
            f.meta.text_ascii(Tag(0x0002, 0x0002)).as_deref(),
            Some(sop_class)
        );
        assert_eq!(
            f.body.text_ascii(Tag(0x0008, 0x0016)).as_deref(),
            Some(sop_class)
        );
        let patient_id = f.body.text_ascii(Tag(0x0010, 0x0020)).expect("Patient ID");
        let ids = local
            .get(&(image.provider_id.clone(), image.person_id.clone()))
            .expect("the person has records at the hospital");
        assert!(ids.contains(&patient_id), "{what}: {patient_id}");
        let person = &persons[&image.person_id];
        let name = text(&f, Tag(0x0010, 0x0010));
        let groups: Vec<&str> = name.split('=').collect();
        assert_eq!(groups.len(), 3, "{what}: three component groups");
        assert!(groups[0].is_ascii() && groups[0].contains('^'), "{what}");
        let mine: Vec<&TruthNameChange> = changes
            .iter()
            .filter(|c| c.person_id == image.person_id)
            .collect();
        let expected = format!(
            "{}^{}",
            surname_on(person, &mine, image.study_date),
            person.given_kanji
        );
        assert_eq!(
            tokumei_japan::fold::name(groups[1]),
            tokumei_japan::fold::name(&expected),
            "{what}: ideographic group"
        );
        assert_eq!(text(&f, Tag(0x0029, 0x1001)), name, "{what}: private block");
        let date = image.study_date.format("%Y%m%d").to_string();
        for e in [0x0020, 0x0021, 0x0022, 0x0023] {
            assert_eq!(
                f.body.text_ascii(Tag(0x0008, e)),
                Some(date.clone()),
                "{what}"
            );
        }
        let birth = f.body.text_ascii(Tag(0x0010, 0x0030)).unwrap_or_default();
        let recorded = &births[&(image.provider_id.clone(), image.person_id.clone())];
        assert!(
            recorded.contains(&birth),
            "{what}: the birth date of the hospital's record"
        );
        assert_eq!(
            f.body.text_ascii(Tag(0x0010, 0x0040)).as_deref(),
            Some(person.sex.code())
        );
        assert_eq!(
            f.body.text_ascii(Tag(0x0008, 0x0060)).as_deref(),
            Some(image.modality.as_str())
        );
        assert_eq!(
            f.body.text_ascii(Tag(0x0018, 0x0015)).as_deref(),
            Some(image.body_part.as_str())
        );
        assert_eq!(
            f.body.text_ascii(Tag(0x0028, 0x0301)),
            image.burned_in_flag,
            "{what}"
        );
        for tag in [
            Tag(0x0020, 0x000d),
            Tag(0x0020, 0x000e),
            Tag(0x0008, 0x0018),
        ] {
            let uid = f.body.text_ascii(tag).expect("UID");
            assert!(uid.starts_with("2.25.") && uid.len() <= 64, "{uid}");
        }
        let nested = f
            .body
            .get(Tag(0x0010, 0x1002))
            .map(|e| match &e.value {
                tokumei_dicom::Value::Items { items, .. } => items.clone(),
                _ => Vec::new(),
            })
            .unwrap_or_default();
        assert_eq!(
            nested
                .first()
                .and_then(|i| i.text_ascii(Tag(0x0010, 0x0020))),
            Some(patient_id.clone()),
            "{what}: the patient number inside a sequence"
        );
        charsets.insert(f.body.text_ascii(Tag(0x0008, 0x0005)).expect("charset"));
    }
    assert!(charsets.contains("\\ISO 2022 IR 87"), "{charsets:?}");
}

/// Whether the `tesseract` program runs here.
fn tesseract() -> bool {
    std::process::Command::new("tesseract")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn drawn_text_is_found_by_ocr_even_where_the_header_does_not_say_so() {
    if !tesseract() {
        eprintln!("SKIPPED: the `tesseract` program is not installed (scripts/test-deps.sh)");
        return;
    }
    let r = region();
    let truth = images(&r.root);
    let scratch = tempfile::tempdir().expect("tempdir");
    let ocr = tokumei_dicom::ocr::Ocr::new(&["CR", "US"], scratch.path());
    let silent = truth
        .iter()
        .find(|i| i.burned_in && i.burned_in_flag.is_none())
        .expect("an image with text and no Burned In Annotation");
    let flagged = truth
        .iter()
        .find(|i| i.burned_in && i.burned_in_flag.as_deref() == Some("YES"))
        .expect("an image with text that says so");
    for (n, image) in [silent, flagged].into_iter().enumerate() {
        let f = read(&r.root, image);
        assert!(ocr.applies(&f));
        let found = ocr
            .characters(&f, &format!("image{n}"))
            .expect("tesseract runs");
        assert!(
            found >= 8,
            "{}/{}: only {found} characters read",
            image.provider_id,
            image.path
        );
    }
}

/// Every file of a region with its bytes.
fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(root).expect("prefix").to_path_buf();
                out.insert(rel, std::fs::read(&path).expect("read"));
            }
        }
    }
    out
}

#[test]
fn images_are_the_same_bytes_whatever_the_number_of_threads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |threads: usize| {
        let out = dir.path().join(format!("t{threads}"));
        let config = Config {
            people: 400,
            seed: 5,
            out: out.clone(),
            ..Config::default()
        };
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool")
            .install(|| generate(&config, &|_| {}))
            .expect("generate");
        tree(&out)
    };
    let (one, two) = (run(1), run(3));
    let dicom = |t: &BTreeMap<PathBuf, Vec<u8>>| {
        t.keys()
            .filter(|k| k.extension().is_some_and(|e| e == "dcm"))
            .count()
    };
    assert!(dicom(&one) > 0, "the region has images");
    assert_eq!(
        one.keys().collect::<Vec<_>>(),
        two.keys().collect::<Vec<_>>()
    );
    for (k, v) in &one {
        assert!(
            two[k] == *v,
            "{} differs with the number of threads",
            k.display()
        );
    }
}
