//! De-identification of a folder of anyone's files (`tokumei dicom deid`): every file under the
//! input read with bounds, de-identified, checked against its original (a Table E.1-1 attribute
//! the profile changes must not be left as it was) and written under the same relative path, in
//! parallel. Each person gets a pseudonym and a date offset derived from the key and their
//! Patient ID, so that their files stay together within one run and unrelated across keys. A file
//! that does not read is quarantined with its reason; an image with burned-in annotation or a
//! file the check refuses is not written. A DICOMDIR is not copied (its offsets and identifiers
//! would no longer hold): a new one is written in its folder, indexing the files written under
//! that folder (and not under a deeper DICOMDIR's), their records taking the values of the files
//! as written ([`crate::dicomdir`]). The report (`deid-report.json`) names files and reasons,
//! never a value.

use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use rayon::prelude::*;
use sha2::Sha256;

use crate::check::{listed, unchanged};
use crate::deid::{deidentify, Outcome, Settings};
use crate::profile::Profile;
use crate::read::{parse, Limits};
use crate::write::to_bytes;

/// What a run needs.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The profile.
    pub profile: Profile,
    /// The run's key (UIDs, pseudonyms, date offsets).
    pub key: [u8; 32],
    /// Private elements kept under Retain Safe Private: (creator, element byte).
    pub safe_private: Vec<(String, u8)>,
    /// Bounds on each file.
    pub limits: Limits,
    /// Pixel cleaning rules (under 113101).
    pub pixel_rules: Vec<crate::pixel::Rule>,
    /// The search for burned-in text.
    pub ocr: Option<crate::ocr::Ocr>,
}

/// What became of one file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileReport {
    /// Its path under the input.
    pub path: String,
    /// `written`, `withheld`, `refused`, `quarantined`, or `rebuilt` for a DICOMDIR (a new one
    /// is written in its folder).
    pub status: &'static str,
    /// Why, when it was not written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Table E.1-1 attributes present in the original.
    pub listed: usize,
    /// What was done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

/// A run's report.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    /// Files written.
    pub written: usize,
    /// Files withheld (burned-in annotation, text found, pixel data that cannot be cleaned).
    pub withheld: usize,
    /// DICOMDIRs of the input, each replaced by one built from the output.
    pub rebuilt: usize,
    /// Files the check refused.
    pub refused: usize,
    /// Files that did not read.
    pub quarantined: usize,
    /// Table E.1-1 attributes present in the originals of the files written.
    pub listed: usize,
    /// Each file.
    pub files: Vec<FileReport>,
    /// The DICOMDIRs written.
    pub dicomdirs: Vec<DicomdirReport>,
}

/// A DICOMDIR written in the output.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DicomdirReport {
    /// Its path under the output.
    pub path: String,
    /// Files indexed.
    pub indexed: usize,
    /// Files written under its folder and not indexed, with why.
    pub not_indexed: Vec<(String, String)>,
}

/// Why a run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The output folder is not empty, or lies inside the input.
    #[error("{0}")]
    Output(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BatchError + '_ {
    move |source| BatchError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Every regular file under a folder (symbolic links not followed), sorted.
pub fn files_under(dir: &Path) -> Result<Vec<PathBuf>, BatchError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(io(&d))? {
            let entry = entry.map_err(io(&d))?;
            let kind = entry.file_type().map_err(io(&d))?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

fn check_output(input: &Path, output: &Path) -> Result<(), BatchError> {
    if output.exists() {
        let mut entries = std::fs::read_dir(output).map_err(io(output))?;
        if entries.next().is_some() {
            return Err(BatchError::Output(format!(
                "{} is not empty; de-identified files go to a new folder",
                output.display()
            )));
        }
    }
    std::fs::create_dir_all(output).map_err(io(output))?;
    let (i, o) = (
        input.canonicalize().map_err(io(input))?,
        output.canonicalize().map_err(io(output))?,
    );
    if o.starts_with(&i) {
        return Err(BatchError::Output(
            "the output folder lies inside the input".into(),
        ));
    }
    Ok(())
}

/// De-identifies every file under `input` into `output` (a new or empty folder); `progress`
/// is called with each file done. The report is also written as `output/deid-report.json`.
pub fn run(
    input: &Path,
    output: &Path,
    batch: &Batch,
    progress: &(dyn Fn() + Sync),
) -> Result<Report, BatchError> {
    check_output(input, output)?;
    let files = files_under(input)?;
    let reports: Vec<Result<FileReport, BatchError>> = files
        .par_iter()
        .map(|path| {
            let r = one(input, output, path, batch);
            progress();
            r
        })
        .collect();
    let mut report = Report::default();
    for r in reports {
        let r = r?;
        match r.status {
            "written" => {
                report.written += 1;
                report.listed += r.listed;
            }
            "withheld" => report.withheld += 1,
            "refused" => report.refused += 1,
            "rebuilt" => report.rebuilt += 1,
            _ => report.quarantined += 1,
        }
        report.files.push(r);
    }
    report.dicomdirs = dicomdirs(output, &report.files, &batch.key)?;
    let json = serde_json::to_vec_pretty(&report).map_err(|e| BatchError::Output(e.to_string()))?;
    let path = output.join("deid-report.json");
    std::fs::write(&path, json).map_err(io(&path))?;
    Ok(report)
}

const PIXEL_DATA: dicom_core::Tag = dicom_core::Tag(0x7fe0, 0x0010);

/// The pixel data's value, left empty in the file.
fn take_pixels(file: &mut crate::DicomFile) -> Option<crate::Value> {
    let e = file
        .body
        .elements
        .iter_mut()
        .find(|e| e.tag == PIXEL_DATA)?;
    Some(std::mem::replace(
        &mut e.value,
        crate::Value::Bytes(Vec::new()),
    ))
}

/// Puts a value taken by [`take_pixels`] back.
fn put_pixels(file: &mut crate::DicomFile, pixels: Option<crate::Value>) {
    if let (Some(v), Some(e)) = (
        pixels,
        file.body.elements.iter_mut().find(|e| e.tag == PIXEL_DATA),
    ) {
        e.value = v;
    }
}

/// A random key (a run whose outputs must not relate to any other).
pub fn random_key() -> Result<[u8; 32], BatchError> {
    let mut k = [0u8; 32];
    getrandom::fill(&mut k).map_err(|e| BatchError::Output(format!("no random key: {e}")))?;
    Ok(k)
}

/// A key from its file: 64 hexadecimal digits.
pub fn key_from_file(path: &Path) -> Result<[u8; 32], BatchError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let t = text.trim();
    let mut k = [0u8; 32];
    if t.len() != 64 || !t.is_ascii() {
        return Err(BatchError::Output(format!(
            "{}: a key is 64 hexadecimal digits",
            path.display()
        )));
    }
    for (i, b) in k.iter_mut().enumerate() {
        *b = u8::from_str_radix(&t[2 * i..2 * i + 2], 16).map_err(|_| {
            BatchError::Output(format!(
                "{}: a key is 64 hexadecimal digits",
                path.display()
            ))
        })?;
    }
    Ok(k)
}

/// A keyed digest of a person's Patient ID, for their pseudonym and date offset.
fn keyed(key: &[u8; 32], what: &str, id: &str) -> [u8; 32] {
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return [0; 32],
    };
    mac.update(what.as_bytes());
    mac.update(&[0]);
    mac.update(id.as_bytes());
    mac.finalize().into_bytes().into()
}

/// The person's settings: pseudonym `P-` and 12 hex digits, offset of 1 to 365 days back.
fn settings(batch: &Batch, patient_id: &str) -> Settings {
    let p = keyed(&batch.key, "pseudonym", patient_id);
    let d = keyed(&batch.key, "date offset", patient_id);
    let days = i64::from(u16::from_be_bytes([d[0], d[1]]) % 365) + 1;
    Settings {
        profile: batch.profile.clone(),
        uid_key: keyed(&batch.key, "uid", ""),
        pseudonym: Some(format!("P-{}", hex(&p[..6]))),
        date_offset_days: -days,
        date_granularity: crate::deid::Granularity::Day,
        safe_private: batch.safe_private.clone(),
        pixel_rules: batch.pixel_rules.clone(),
        ocr: batch.ocr.clone(),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn one(input: &Path, output: &Path, path: &Path, batch: &Batch) -> Result<FileReport, BatchError> {
    let rel = path.strip_prefix(input).unwrap_or(path);
    let mut report = FileReport {
        path: rel.to_string_lossy().into_owned(),
        status: "quarantined",
        reason: None,
        listed: 0,
        outcome: None,
    };
    let size = std::fs::metadata(path).map_err(io(path))?.len();
    if size > batch.limits.max_file {
        report.reason = Some(format!("{size} bytes: over the reader's bound"));
        return Ok(report);
    }
    let bytes = std::fs::read(path).map_err(io(path))?;
    let parsed = parse(&bytes, &batch.limits);
    drop(bytes);
    let mut file = match parsed {
        Ok(f) => f,
        Err(e) => {
            report.reason = Some(e.to_string());
            return Ok(report);
        }
    };
    // The original kept for the check, without its pixel data (the bulk of a file; the check
    // reads no pixels).
    let pixels = take_pixels(&mut file);
    let original = file.clone();
    put_pixels(&mut file, pixels);
    report.listed = listed(&original.body, &batch.profile);
    let media_class = original.meta.text_ascii(dicom_core::Tag(0x0002, 0x0002));
    if media_class.as_deref() == Some(crate::dicomdir::DICOMDIR_CLASS) {
        report.status = "rebuilt";
        report.reason = Some("a DICOMDIR is not copied: a new one indexes the output".into());
        return Ok(report);
    }
    let id = original
        .body
        .text_ascii(dicom_core::Tag(0x0010, 0x0020))
        .unwrap_or_default();
    let outcome = deidentify(&mut file, &settings(batch, &id));
    if let Some(why) = &outcome.withheld {
        report.status = "withheld";
        report.reason = Some(why.clone());
        report.outcome = Some(outcome);
        return Ok(report);
    }
    let left = unchanged(&original, &file, &batch.profile);
    if !left.is_empty() {
        let paths: Vec<String> = left.into_iter().map(|f| f.path).collect();
        report.status = "refused";
        report.reason = Some(format!("left unchanged: {}", paths.join(" ")));
        return Ok(report);
    }
    let out_bytes = match to_bytes(&file) {
        Ok(b) => b,
        Err(e) => {
            report.status = "refused";
            report.reason = Some(e.to_string());
            return Ok(report);
        }
    };
    let target = output.join(rel);
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = target.with_file_name(format!("{name}.part"));
    std::fs::write(&tmp, out_bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, &target).map_err(io(&target))?;
    report.status = "written";
    report.outcome = Some(outcome);
    Ok(report)
}

/// The folders (relative, as components) that held a DICOMDIR.
fn dicomdir_folders(files: &[FileReport]) -> Vec<Vec<String>> {
    let mut folders: Vec<Vec<String>> = files
        .iter()
        .filter(|f| f.status == "rebuilt")
        .map(|f| {
            let mut c = components(&f.path);
            c.pop();
            c
        })
        .collect();
    folders.sort();
    folders.dedup();
    folders
}

fn components(rel: &str) -> Vec<String> {
    Path::new(rel)
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect()
}

/// Writes a DICOMDIR in each folder where the input had one, indexing the files written under
/// it (each file in the deepest such folder above it), read back from the output.
fn dicomdirs(
    output: &Path,
    files: &[FileReport],
    key: &[u8; 32],
) -> Result<Vec<DicomdirReport>, BatchError> {
    let folders = dicomdir_folders(files);
    let mut reports = Vec::new();
    for folder in &folders {
        let mine: Vec<Vec<String>> = files
            .iter()
            .filter(|f| f.status == "written")
            .map(|f| components(&f.path))
            .filter(|c| {
                let deepest = folders
                    .iter()
                    .filter(|d| c.len() > d.len() && c.starts_with(d))
                    .max_by_key(|d| d.len());
                deepest == Some(folder)
            })
            .collect();
        reports.push(one_dicomdir(output, folder, &mine, key)?);
    }
    Ok(reports)
}

fn one_dicomdir(
    output: &Path,
    folder: &[String],
    files: &[Vec<String>],
    key: &[u8; 32],
) -> Result<DicomdirReport, BatchError> {
    let dir: PathBuf = folder.iter().collect();
    let rel = dir.join("DICOMDIR");
    let mut report = DicomdirReport {
        path: rel.to_string_lossy().into_owned(),
        ..DicomdirReport::default()
    };
    let read: Vec<Result<crate::dicomdir::Instance, (String, String)>> = files
        .par_iter()
        .map(|c| {
            let path: PathBuf = c.iter().collect();
            let name = path.to_string_lossy().into_owned();
            let fail = |why: String| (name.clone(), why);
            let bytes = std::fs::read(output.join(&path)).map_err(|e| fail(e.to_string()))?;
            let file = parse(&bytes, &Limits::default()).map_err(|e| fail(e.to_string()))?;
            crate::dicomdir::instance(&file, c[folder.len()..].to_vec())
                .map_err(|e| fail(e.to_string()))
        })
        .collect();
    let mut instances = Vec::new();
    for r in read {
        match r {
            Ok(i) => instances.push(i),
            Err(why) => report.not_indexed.push(why),
        }
    }
    report.indexed = instances.len();
    let target = output.join(&rel);
    if target.exists() {
        report.indexed = 0;
        report.not_indexed = vec![(report.path.clone(), "a file written has its path".into())];
        return Ok(report);
    }
    let uid = crate::deid::map_uid(key, &format!("DICOMDIR {}", report.path));
    let bytes = crate::dicomdir::build(instances, &uid)
        .map_err(|e| BatchError::Output(format!("{}: {e}", report.path)))?;
    std::fs::create_dir_all(output.join(&dir)).map_err(io(&dir))?;
    let tmp = target.with_file_name("DICOMDIR.part");
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, &target).map_err(io(&target))?;
    Ok(report)
}

/// How much of Table E.1-1 another tool's output left as it was: files matched by their path
/// under each folder.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Comparison {
    /// Pairs of files both read.
    pub files: usize,
    /// Table E.1-1 attributes (whose action changes them) present in the originals.
    pub present: usize,
    /// Of those, left unchanged (same non-empty value) in the outputs.
    pub unchanged: usize,
    /// Originals without a readable output.
    pub missing: usize,
}

/// Compares each original under `originals` with the file of the same path under `outputs`.
pub fn compare(
    originals: &Path,
    outputs: &Path,
    profile: &Profile,
) -> Result<Comparison, BatchError> {
    let mut c = Comparison::default();
    let limits = Limits::default();
    for path in files_under(originals)? {
        let rel = path.strip_prefix(originals).unwrap_or(&path);
        let Ok(original) = std::fs::read(&path).map(|b| parse(&b, &limits)) else {
            continue;
        };
        let Ok(original) = original else { continue };
        let output = std::fs::read(outputs.join(rel))
            .ok()
            .and_then(|b| parse(&b, &limits).ok());
        let Some(output) = output else {
            c.missing += 1;
            continue;
        };
        c.files += 1;
        c.present += crate::check::changed_listed(&original.body, profile);
        c.unchanged += unchanged(&original, &output, profile).len();
    }
    Ok(c)
}
