//! The images of a release: the DICOM files of the released persons that the application asks for
//! (modality, body part, period) and the committee approved (`images.file`), each de-identified
//! under PS3.15 Annex E (`tokumei-dicom`) with the release's pseudonym as Patient ID and Patient's
//! Name, its UIDs mapped under a key of the release (studies and series stay together within the
//! release and are unrelated across releases), and its dates under the release's rule with the same
//! per-person offset as its tables. Images with burned-in text that no pixel rule cleans are
//! withheld and counted by reason.
//!
//! Every output file is then checked: each text and number element, sequences and private tags
//! included, against every identifying value the vault holds for the person (each name group in
//! kanji, katakana and hiragana, the provider's patient ids, insurance numbers, birth date,
//! address) and those of the original header (each group of Patient's Name, ids, birth date,
//! address); and against the original for Table E.1-1 attributes left unchanged. Any hit refuses
//! the release (the build reports where, never the value).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use chrono::NaiveDate;
use dicom_core::Tag;
use hmac::{Hmac, Mac};
use rayon::prelude::*;
use sha2::Sha256;
use tokumei_dicom::check::{identifiers, unchanged, Identifier};
use tokumei_dicom::deid::{deidentify, Granularity, Settings};
use tokumei_dicom::profile::{Profile, ProfileOption};
use tokumei_dicom::DicomFile;
use tokumei_model::events::Image;
use tokumei_model::identity::IdentityRecord;
use tokumei_review::{ImageRequest, ReleaseKind};
use tokumei_vault::home::DataKey;
use tokumei_vault::Home;

use crate::checks::Table;
use crate::preset::Dates;
use crate::ReleaseError;

/// The modalities whose pixels are searched for burned-in text (where text is written into the
/// image itself: ultrasound, radiographs, secondary captures, angiography, endoscopy).
pub const OCR_MODALITIES: &[&str] = &["US", "CR", "DX", "SC", "XA", "ES", "OT", "MG", "RF"];

/// The day relative dates count from in released images (DICOM has no relative dates).
pub const RELATIVE_EPOCH: (i32, u32, u32) = (2000, 1, 1);

/// What the release did with images.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImageSummary {
    /// Images of released persons that the application asks for.
    pub requested: usize,
    /// Images released.
    pub released: usize,
    /// Images withheld, by reason.
    pub withheld: BTreeMap<String, usize>,
    /// Persons with at least one image released.
    pub persons: usize,
    /// Studies released.
    pub studies: usize,
    /// The profile's options (DCM codes).
    pub options: Vec<String>,
    /// Whether burned-in text was searched by OCR.
    pub ocr: bool,
    /// Released files with an identifying value or an unchanged listed attribute (each refuses
    /// the release): (file, where, what).
    pub findings: Vec<(String, String, String)>,
}

/// What the images of a release need from the build.
pub(crate) struct ImageJob<'a> {
    pub home: &'a Home,
    pub key: &'a DataKey,
    pub kind: ReleaseKind,
    pub images: &'a [Image],
    /// How the release's events are written: whose record, the period, the dates' rule, each
    /// person's shift and index date (an image's date goes out as an event's does).
    pub cx: crate::build::EventContext<'a>,
    pub identities: &'a [IdentityRecord],
    /// Person → pseudonym, of the persons released.
    pub pseudonym: &'a HashMap<String, String>,
    pub request: ImageRequest,
    /// The release's key for UIDs and study names.
    pub uid_key: [u8; 32],
    /// The approved columns of the `images` table (`file` carries the files).
    pub columns: Vec<String>,
    /// Folder for OCR's scratch images.
    pub scratch: PathBuf,
    /// The operator's pixel rules (RSNA CTP script), if any.
    pub pixel_rules: Vec<tokumei_dicom::pixel::Rule>,
    /// The options the preset chose (none: the release kind's).
    pub options: Option<Vec<ProfileOption>>,
}

/// The images released: the summary, the `images` table and the files (path in the release,
/// bytes).
pub(crate) type Released = (ImageSummary, Table, Vec<(String, Vec<u8>)>);

/// One image chosen for the release.
struct Chosen<'a> {
    row: &'a Image,
    person: &'a str,
    pseudonym: &'a str,
}

/// De-identifies and checks the images the application asks for.
pub(crate) fn release(job: &ImageJob<'_>) -> Result<Released, ReleaseError> {
    let chosen = choose(job);
    let profile = profile(job)?;
    let ids = person_identifiers(job);
    let settings = Settings {
        profile: profile.clone(),
        uid_key: job.uid_key,
        pseudonym: None,
        date_offset_days: 0,
        date_granularity: granularity(job.cx.dates),
        safe_private: Vec::new(),
        pixel_rules: job.pixel_rules.clone(),
        ocr: Some(tokumei_dicom::ocr::Ocr::new(OCR_MODALITIES, &job.scratch)),
    };
    let with_files = job.columns.iter().any(|c| c == "file");
    let done: Vec<Result<One, ReleaseError>> = chosen
        .par_iter()
        .map(|c| one(job, c, &settings, &ids, with_files))
        .collect();
    let mut summary = ImageSummary {
        requested: chosen.len(),
        options: profile
            .options()
            .iter()
            .map(|o| o.code().to_string())
            .collect(),
        ocr: true,
        ..ImageSummary::default()
    };
    let mut table = Table {
        name: "images".into(),
        columns: std::iter::once("pseudonym".to_string())
            .chain(job.columns.iter().cloned())
            .collect(),
        rows: Vec::new(),
    };
    let mut files = Vec::new();
    let (mut persons, mut studies) = (
        std::collections::BTreeSet::new(),
        std::collections::BTreeSet::new(),
    );
    for (c, r) in chosen.iter().zip(done) {
        match r? {
            One::Withheld(reason) => *summary.withheld.entry(reason).or_default() += 1,
            One::Released {
                path,
                bytes,
                study,
                findings,
            } => {
                summary
                    .findings
                    .extend(findings.into_iter().map(|(w, x)| (path.clone(), w, x)));
                summary.released += 1;
                persons.insert(c.pseudonym);
                studies.insert(study.clone());
                table.rows.push(row(job, c, &study, &path));
                if let Some(b) = bytes {
                    files.push((path, b));
                }
            }
        }
    }
    (summary.persons, summary.studies) = (persons.len(), studies.len());
    table.rows.sort();
    Ok((summary, table, files))
}

/// The images of released persons that the request wants, in the order of their rows.
fn choose<'a>(job: &'a ImageJob<'_>) -> Vec<Chosen<'a>> {
    let mut out: Vec<Chosen<'a>> = job
        .images
        .iter()
        .filter_map(|row| {
            let person = job.cx.mpi.person_of.get(&row.record_id)?;
            let pseudonym = job.pseudonym.get(person)?;
            job.request
                .wants(
                    row.modality.as_deref(),
                    row.body_part.as_deref(),
                    row.study_date,
                    (job.cx.from, job.cx.end),
                )
                .then_some(Chosen {
                    row,
                    person,
                    pseudonym,
                })
        })
        .collect();
    out.sort_by(|a, b| {
        (a.pseudonym, &a.row.study_id, &a.row.blob).cmp(&(
            b.pseudonym,
            &b.row.study_id,
            &b.row.blob,
        ))
    });
    out
}

/// The profile: the Basic Profile with the preset's options or, by default, Clean Pixel Data and
/// Clean Descriptors (a pseudonymized release also keeps the patient's characteristics and the
/// device's identity); dates under the release's rule.
fn profile(job: &ImageJob<'_>) -> Result<Profile, ReleaseError> {
    let mut options = match &job.options {
        Some(chosen) => chosen.clone(),
        None if job.kind == ReleaseKind::Pseudonymized => vec![
            ProfileOption::CleanPixelData,
            ProfileOption::CleanDescriptors,
            ProfileOption::RetainPatientCharacteristics,
            ProfileOption::RetainDeviceIdentity,
        ],
        None => vec![
            ProfileOption::CleanPixelData,
            ProfileOption::CleanDescriptors,
        ],
    };
    options.push(match job.cx.dates {
        Dates::Day => ProfileOption::RetainFullDates,
        _ => ProfileOption::RetainModifiedDates,
    });
    Profile::new(&options).map_err(|e| ReleaseError::Output(format!("DICOM profile: {e}")))
}

fn granularity(dates: Dates) -> Granularity {
    match dates {
        Dates::Month => Granularity::Month,
        Dates::Year => Granularity::Year,
        _ => Granularity::Day,
    }
}

/// A person's offset in days: the release's shift, or the distance from the index date to the
/// epoch of relative dates.
fn offset(job: &ImageJob<'_>, person: &str) -> i64 {
    match job.cx.dates {
        Dates::Shift => job.cx.shift.get(person).copied().unwrap_or(0),
        Dates::Relative => {
            let epoch =
                NaiveDate::from_ymd_opt(RELATIVE_EPOCH.0, RELATIVE_EPOCH.1, RELATIVE_EPOCH.2);
            match (epoch, job.cx.index_date.get(person)) {
                (Some(e), Some(i)) => (e - *i).num_days(),
                _ => 0,
            }
        }
        _ => 0,
    }
}

/// The outcome of one image.
enum One {
    Withheld(String),
    Released {
        path: String,
        bytes: Option<Vec<u8>>,
        study: String,
        findings: Vec<(String, String)>,
    },
}

fn one(
    job: &ImageJob<'_>,
    c: &Chosen<'_>,
    base: &Settings,
    ids: &HashMap<&str, Vec<Identifier>>,
    with_files: bool,
) -> Result<One, ReleaseError> {
    let package = tokumei_vault::images::package_of_study(&c.row.study_id)
        .ok_or_else(|| ReleaseError::Output("an image's study id names no package".into()))?;
    let bytes = tokumei_vault::images::read(job.home, job.key, package, &c.row.blob)?;
    let original = tokumei_dicom::parse(&bytes, &tokumei_dicom::Limits::default())
        .map_err(|e| ReleaseError::Output(format!("an image of the vault does not read: {e}")))?;
    drop(bytes);
    let mut file = original.clone();
    let settings = Settings {
        pseudonym: Some(c.pseudonym.to_string()),
        date_offset_days: offset(job, c.person),
        ..base.clone()
    };
    let outcome = deidentify(&mut file, &settings);
    if let Some(reason) = outcome.withheld {
        return Ok(One::Withheld(withheld_reason(&reason)));
    }
    let mut search = ids.get(c.person).cloned().unwrap_or_default();
    search.extend(header_identifiers(&original));
    let mut findings: Vec<(String, String)> = identifiers(&file, &search)
        .into_iter()
        .map(|f| (f.path, f.what))
        .collect();
    findings.extend(
        unchanged(&original, &file, &settings.profile)
            .into_iter()
            .map(|f| (f.path, f.what)),
    );
    let study = study_name(&job.uid_key, &c.row.study_id);
    let n = c.row.blob.trim_end_matches(".dcm.enc");
    let path = format!("images/{}/{study}/{n}.dcm", c.pseudonym);
    let bytes = if with_files {
        Some(
            tokumei_dicom::write::to_bytes(&file)
                .map_err(|e| ReleaseError::Output(format!("a de-identified image: {e}")))?,
        )
    } else {
        None
    };
    Ok(One::Released {
        path,
        bytes,
        study,
        findings,
    })
}

/// A withholding reason without its figures, so that reasons count together.
fn withheld_reason(reason: &str) -> String {
    if reason.contains("characters of text") {
        "text found in the pixels that no rule cleans (OCR)".into()
    } else if reason.contains("Burned In Annotation") {
        "flagged Burned In Annotation YES, and no pixel rule matches its device".into()
    } else {
        reason.chars().take(120).collect()
    }
}

/// A study's name in the release: unrelated to its id outside the release.
fn study_name(key: &[u8; 32], study_id: &str) -> String {
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return "S".into(),
    };
    mac.update(b"study");
    mac.update(study_id.as_bytes());
    format!("S{}", &hex::encode(mac.finalize().into_bytes())[..12])
}

/// A row of the `images` table: the pseudonym and the approved columns.
fn row(job: &ImageJob<'_>, c: &Chosen<'_>, study: &str, path: &str) -> Vec<Option<String>> {
    let date = c
        .row
        .study_date
        .map(|d| job.cx.date_out(&c.row.record_id, d));
    std::iter::once(Some(c.pseudonym.to_string()))
        .chain(job.columns.iter().map(|col| match col.as_str() {
            "modality" => c.row.modality.clone(),
            "body_part" => c.row.body_part.clone(),
            "study_date" => date.clone(),
            "file" => Some(path.to_string()),
            "study" => Some(study.to_string()),
            _ => None,
        }))
        .collect()
}

/// Every identifying value the vault holds for each released person.
fn person_identifiers<'a>(job: &'a ImageJob<'_>) -> HashMap<&'a str, Vec<Identifier>> {
    let mut out: HashMap<&str, Vec<Identifier>> = HashMap::new();
    for r in job.identities {
        let Some(person) = job.cx.mpi.person_of.get(&r.record_id) else {
            continue;
        };
        if !job.pseudonym.contains_key(person) {
            continue;
        }
        let list = out.entry(person.as_str()).or_default();
        let mut add = |kind: &str, v: Option<String>| {
            if let Some(v) = v.filter(|v| !v.trim().is_empty()) {
                list.push(Identifier {
                    kind: kind.into(),
                    value: v,
                });
            }
        };
        let join = |a: &Option<String>, b: &Option<String>| match (a, b) {
            (Some(a), Some(b)) => Some(format!("{a}{b}")),
            _ => None,
        };
        add("name", join(&r.surname_kanji, &r.given_kanji));
        add("name", r.surname_kanji.clone());
        add("name", r.given_kanji.clone());
        for kana in [&r.surname_kana, &r.given_kana] {
            add("name", kana.clone());
            add("name", kana.as_deref().map(tokumei_japan::fold::hiragana));
        }
        add("id", r.local_patient_id.clone());
        add("id", r.insured_number.clone());
        add(
            "birth date",
            r.birth_date.map(|d| d.format("%Y%m%d").to_string()),
        );
        add("address", join(&r.town, &r.banchi));
        add("address", r.postal_code.clone());
    }
    out
}

/// The identifying values of the original header: each group of Patient's Name, the ids, the
/// birth date and the address.
fn header_identifiers(original: &DicomFile) -> Vec<Identifier> {
    let rep = original
        .body
        .repertoire(&tokumei_dicom::charset::Repertoire::default())
        .unwrap_or_default();
    let mut out = Vec::new();
    let text = |tag: Tag| original.body.text(tag, &rep).and_then(Result::ok);
    if let Some(name) = text(Tag(0x0010, 0x0010)) {
        for group in name.split('=') {
            out.push(Identifier {
                kind: "name".into(),
                value: group.to_string(),
            });
            // Each component alone too, unless it is a short Latin word that text such as the
            // de-identification method's would hold by chance ("Ai" in "Retain").
            for part in group.split('^').filter(|p| !p.is_ascii() || p.len() >= 4) {
                out.push(Identifier {
                    kind: "name".into(),
                    value: part.to_string(),
                });
            }
        }
    }
    for (kind, tag) in [
        ("id", Tag(0x0010, 0x0020)),
        ("id", Tag(0x0010, 0x1000)),
        ("birth date", Tag(0x0010, 0x0030)),
        ("address", Tag(0x0010, 0x1040)),
    ] {
        for v in text(tag).unwrap_or_default().split('\\') {
            out.push(Identifier {
                kind: kind.into(),
                value: v.to_string(),
            });
        }
    }
    out.retain(|i| i.value.trim().chars().count() >= 2);
    out
}
