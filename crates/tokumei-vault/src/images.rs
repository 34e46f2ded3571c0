//! Medical images received with a provider's extract: DICOM files read as hostile bytes
//! (`tokumei-dicom`), tied to the record of their patient in the same package by the provider's
//! patient id (Patient ID, (0010,0020)), kept encrypted under the data key in the identified zone
//! (`vault/images/<package>/<n>.dcm.enc`: their headers name the patient) and indexed in the
//! clinical zone ([`Image`]: study, date, modality, body part; no identifying value).
//!
//! An image whose patient has no record in the package, or whose birth date contradicts its
//! patient's record (a wrong-patient image), is quarantined with the reason; an image whose patient
//! was refused (a request to stop, the notice period) is refused with it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use dicom_core::Tag;
use tokumei_model::events::{Image, SourceRecord};

use crate::home::{DataKey, Home, VaultError};
use crate::store::{open_sealed, PackagePaths, Quarantined};

const PATIENT_ID: Tag = Tag(0x0010, 0x0020);
const BIRTH_DATE: Tag = Tag(0x0010, 0x0030);
const STUDY_UID: Tag = Tag(0x0020, 0x000D);
const STUDY_DATE: Tag = Tag(0x0008, 0x0020);
const MODALITY: Tag = Tag(0x0008, 0x0060);
const BODY_PART: Tag = Tag(0x0018, 0x0015);
const SOP_CLASS: Tag = Tag(0x0008, 0x0016);

/// Largest DICOM file a package may carry.
pub const MAX_IMAGE: u64 = 1 << 30;

/// Whether a file of an extract is a DICOM file: the PS3.10 prefix (`DICM` after the preamble), or
/// the `.dcm` extension (a file so named that does not read is quarantined as an image).
pub fn is_dicom(name: &str, bytes: &[u8]) -> bool {
    bytes.get(128..132) == Some(b"DICM")
        || name
            .rsplit('.')
            .next()
            .is_some_and(|e| e.eq_ignore_ascii_case("dcm"))
}

/// A DICOM file read from a package, before it is tied to a record.
#[derive(Debug, Clone)]
pub struct ImageIn {
    /// Path in the package.
    pub file: String,
    /// The provider's patient id.
    pub patient_id: String,
    /// Birth date stated in the header, if any.
    pub birth_date: Option<chrono::NaiveDate>,
    /// Study Instance UID (groups the package's images into studies; never stored in the clear).
    pub study_uid: String,
    /// Study date.
    pub study_date: Option<chrono::NaiveDate>,
    /// Modality.
    pub modality: Option<String>,
    /// Body Part Examined.
    pub body_part: Option<String>,
    /// SOP Class UID.
    pub sop_class: Option<String>,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

fn da(s: Option<String>) -> Option<chrono::NaiveDate> {
    chrono::NaiveDate::parse_from_str(s?.get(..8)?, "%Y%m%d").ok()
}

/// Reads a DICOM file's index fields; the reason (naming no value) with the bytes when it cannot
/// be used.
pub fn read_image(file: &str, bytes: Vec<u8>) -> Result<ImageIn, (String, Vec<u8>)> {
    match index_fields(&bytes) {
        Ok(f) => Ok(ImageIn {
            file: file.to_string(),
            bytes,
            ..f
        }),
        Err(reason) => Err((reason, bytes)),
    }
}

fn index_fields(bytes: &[u8]) -> Result<ImageIn, String> {
    let limits = tokumei_dicom::Limits {
        max_file: MAX_IMAGE,
        max_inflated: MAX_IMAGE,
        ..tokumei_dicom::Limits::default()
    };
    let parsed = tokumei_dicom::parse(bytes, &limits).map_err(|e| format!("DICOM: {e}"))?;
    let body = &parsed.body;
    let patient_id = body
        .text_ascii(PATIENT_ID)
        .filter(|p| !p.is_empty())
        .ok_or("DICOM: no Patient ID (0010,0020), so the image cannot be tied to a record")?;
    let text = |tag| body.text_ascii(tag).filter(|v: &String| !v.is_empty());
    Ok(ImageIn {
        file: String::new(),
        patient_id,
        birth_date: da(text(BIRTH_DATE)),
        study_uid: text(STUDY_UID).unwrap_or_default(),
        study_date: da(text(STUDY_DATE)),
        modality: text(MODALITY).map(|m| m.to_ascii_uppercase()),
        body_part: text(BODY_PART).map(|m| m.to_ascii_uppercase()),
        sop_class: text(SOP_CLASS),
        bytes: Vec::new(),
    })
}

/// Images tied to the records that land: (index of the record in the landing order, image).
#[derive(Debug, Default)]
pub struct Tied {
    /// Images with their record.
    pub images: Vec<(usize, ImageIn)>,
    /// Images whose patient was refused (requests to stop, notice period).
    pub refused: usize,
    /// Images that could not be tied, with their originals.
    pub quarantine: Vec<(Quarantined, Vec<u8>)>,
}

/// Ties each image to the first landing record of the same provider patient id; images of refused
/// patients are refused, the others quarantined with the reason.
pub fn tie(images: Vec<ImageIn>, kept: &[SourceRecord], refused: &BTreeSet<String>) -> Tied {
    let mut by_patient: HashMap<&str, usize> = HashMap::new();
    for (i, r) in kept.iter().enumerate() {
        if let Some(p) = r.identity.local_patient_id.as_deref() {
            by_patient.entry(p).or_insert(i);
        }
    }
    let mut out = Tied::default();
    for image in images {
        let quarantine = |reason: &str| {
            let q = Quarantined {
                file: image.file.clone(),
                first_line: 0,
                last_line: 0,
                reason: reason.into(),
            };
            (q, image.bytes.clone())
        };
        match by_patient.get(image.patient_id.as_str()) {
            Some(&i) => {
                let record_birth = kept[i].identity.birth_date;
                if let (Some(a), Some(b)) = (image.birth_date, record_birth) {
                    if a != b {
                        out.quarantine.push(quarantine(
                            "DICOM: the image's birth date differs from its patient's record \
                             (a wrong-patient image?)",
                        ));
                        continue;
                    }
                }
                out.images.push((i, image));
            }
            None if refused.contains(&image.patient_id) => out.refused += 1,
            None => out.quarantine.push(quarantine(
                "DICOM: no record of the package carries the image's patient id",
            )),
        }
    }
    out
}

/// The folder of a package's sealed images.
pub fn folder(home: &Home, package_id: &str) -> std::path::PathBuf {
    PackagePaths::of(home, package_id).images
}

/// Index rows and sealed files of a package's images (`record_ids` in landing order): studies are
/// numbered in order of first appearance, blobs in package order.
pub fn index(
    package_id: &str,
    images: &[(usize, ImageIn)],
    record_ids: &[String],
    counter: &mut dyn FnMut() -> String,
) -> Vec<Image> {
    let mut studies: BTreeMap<&str, usize> = BTreeMap::new();
    let mut rows = Vec::with_capacity(images.len());
    for (n, (i, image)) in images.iter().enumerate() {
        let next = studies.len() + 1;
        let study = *studies.entry(image.study_uid.as_str()).or_insert(next);
        rows.push(Image {
            event_id: counter(),
            record_id: record_ids.get(*i).cloned().unwrap_or_default(),
            study_id: format!("{package_id}-s{study}"),
            study_date: image.study_date,
            modality: image.modality.clone(),
            body_part: image.body_part.clone(),
            sop_class: image.sop_class.clone(),
            blob: blob_name(n),
            bytes: image.bytes.len() as i64,
        });
    }
    rows
}

/// The name of a package's `n`-th sealed image.
pub fn blob_name(n: usize) -> String {
    format!("{n}.dcm.enc")
}

/// Whether `name` is a blob name [`blob_name`] makes (never a path from outside).
fn valid_blob(name: &str) -> bool {
    name.strip_suffix(".dcm.enc")
        .is_some_and(|n| !n.is_empty() && n.len() <= 12 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The decrypted bytes of one image of a package (its index row's `blob`).
pub fn read(
    home: &Home,
    key: &DataKey,
    package_id: &str,
    blob: &str,
) -> Result<Vec<u8>, VaultError> {
    tokumei_model::ids::check(tokumei_model::ids::IdKind::Package, package_id)
        .map_err(|e| VaultError::Refused(e.to_string()))?;
    if !valid_blob(blob) {
        return Err(VaultError::Refused("not an image of the vault".into()));
    }
    let path = folder(home, package_id).join(blob);
    let sealed = std::fs::read(&path).map_err(|e| crate::home::io(&path, e))?;
    open_sealed(key, &sealed)
}

/// The package an image's study id names (`<package>-s<n>`).
pub fn package_of_study(study_id: &str) -> Option<&str> {
    let (package, n) = study_id.rsplit_once("-s")?;
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some(package)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_names_are_only_those_the_vault_makes() {
        assert!(valid_blob(&blob_name(0)));
        assert!(valid_blob(&blob_name(123_456)));
        for bad in [
            "../0.dcm.enc",
            ".dcm.enc",
            "0.dcm",
            "a.dcm.enc",
            "0/1.dcm.enc",
        ] {
            assert!(!valid_blob(bad), "{bad}");
        }
        assert_eq!(package_of_study("P-1-s3"), Some("P-1"));
        assert_eq!(package_of_study("P1-sx"), None);
    }

    #[test]
    fn dicom_files_are_told_by_prefix_or_extension() {
        let mut b = vec![0u8; 132];
        b[128..132].copy_from_slice(b"DICM");
        assert!(is_dicom("x", &b));
        assert!(is_dicom("dicom/1/2.DCM", b"junk"));
        assert!(!is_dicom("ssmix2.zip", b"PK\x03\x04"));
    }
}
