//! A DICOMDIR (PS3.10 8.6, PS3.3 F) built for de-identified files: a DICOMDIR cannot be copied
//! from the input (its offsets and its records' identifiers would no longer hold), so the batch
//! writes a new one where the input had one, indexing the files written under that folder.
//!
//! The records take their values from the files as written (de-identified): PATIENT (Patient's
//! Name and ID), STUDY (Study Instance UID, date, time, ID, accession number, description),
//! SERIES (Series Instance UID, modality, number) and one record per file (IMAGE, or the record
//! type its SOP class calls for) with its Referenced File ID, SOP class, instance and transfer
//! syntax. The records lie in the Directory Record Sequence depth first, each linked to its next
//! sibling and its first child by byte offsets from the file's first byte; the root's first and
//! last records are given in the data set. A Referenced File ID is the file's path under the
//! DICOMDIR's folder, each component 1 to 8 of `A`–`Z`, `0`–`9` and `_`, at most 8 components
//! (PS3.10 8.2, 8.5): a file whose path is not is left out, and counted.

use std::collections::BTreeMap;

use dicom_core::{Tag, VR};

use crate::model::{DataSet, DicomFile, Element, Syntax, Value};
use crate::DicomError;

/// The Media Storage Directory Storage SOP class.
pub const DICOMDIR_CLASS: &str = "1.2.840.10008.1.3.10";
/// The implementation class UID written in a DICOMDIR's meta group.
pub const IMPLEMENTATION_UID: &str = "2.25.207128813339431474455185416290474409730";
/// The implementation version name written in a DICOMDIR's meta group.
pub const IMPLEMENTATION_VERSION: &str = "TOKUMEI_DICOM";

const NEXT: Tag = Tag(0x0004, 0x1400);
const IN_USE: Tag = Tag(0x0004, 0x1410);
const LOWER: Tag = Tag(0x0004, 0x1420);
const RECORD_TYPE: Tag = Tag(0x0004, 0x1430);
const FIRST_ROOT: Tag = Tag(0x0004, 0x1200);
const LAST_ROOT: Tag = Tag(0x0004, 0x1202);
const RECORDS: Tag = Tag(0x0004, 0x1220);

const PATIENT_KEYS: &[(Tag, VR)] = &[
    (Tag(0x0008, 0x0005), VR::CS),
    (Tag(0x0010, 0x0010), VR::PN),
    (Tag(0x0010, 0x0020), VR::LO),
];
const STUDY_KEYS: &[(Tag, VR)] = &[
    (Tag(0x0008, 0x0005), VR::CS),
    (Tag(0x0008, 0x0020), VR::DA),
    (Tag(0x0008, 0x0030), VR::TM),
    (Tag(0x0008, 0x0050), VR::SH),
    (Tag(0x0008, 0x1030), VR::LO),
    (Tag(0x0020, 0x000d), VR::UI),
    (Tag(0x0020, 0x0010), VR::SH),
];
const SERIES_KEYS: &[(Tag, VR)] = &[
    (Tag(0x0008, 0x0060), VR::CS),
    (Tag(0x0020, 0x000e), VR::UI),
    (Tag(0x0020, 0x0011), VR::IS),
];
const INSTANCE_KEYS: &[(Tag, VR)] = &[(Tag(0x0020, 0x0013), VR::IS)];

/// One file written, as a DICOMDIR indexes it.
#[derive(Debug, Clone)]
pub struct Instance {
    /// Its Referenced File ID: the path's components under the DICOMDIR's folder.
    pub file_id: Vec<String>,
    /// Its patient's record.
    pub patient: DataSet,
    /// Its study's record.
    pub study: DataSet,
    /// Its series' record.
    pub series: DataSet,
    /// Its own record.
    pub record: DataSet,
}

/// Why a file is not indexed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unindexed {
    /// A path component is not a valid File ID component.
    #[error("its path is not a File ID (components of 1 to 8 of A-Z 0-9 _, at most 8)")]
    Path,
    /// A key the records need is missing.
    #[error("no {0}")]
    Missing(&'static str),
}

/// Whether a path's components make a File ID (PS3.10 8.2, 8.5).
pub fn file_id(components: &[String]) -> bool {
    !components.is_empty()
        && components.len() <= 8
        && components.iter().all(|c| {
            (1..=8).contains(&c.len())
                && c.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        })
}

fn copy_keys(from: &DataSet, keys: &[(Tag, VR)], into: &mut DataSet, required: &[Tag]) {
    for &(tag, vr) in keys {
        match from.get(tag) {
            Some(Element {
                value: Value::Bytes(b),
                vr: given,
                ..
            }) => into.put(tag, if *given == VR::UN { vr } else { *given }, b.clone()),
            _ if required.contains(&tag) => into.put(tag, vr, Vec::new()),
            _ => {}
        }
    }
}

fn record(kind: &str) -> DataSet {
    let mut r = DataSet::default();
    r.put(NEXT, VR::UL, vec![0; 4]);
    r.put(IN_USE, VR::US, vec![0xff, 0xff]);
    r.put(LOWER, VR::UL, vec![0; 4]);
    r.put(RECORD_TYPE, VR::CS, kind.as_bytes().to_vec());
    r
}

/// The record type for a SOP class (PS3.3 F.5): IMAGE for images, otherwise the class's own.
fn record_type(class: &str, has_pixels: bool) -> &'static str {
    let under = |root: &str| class.starts_with(root);
    if under("1.2.840.10008.5.1.4.1.1.88.") {
        "SR DOCUMENT"
    } else if under("1.2.840.10008.5.1.4.1.1.11.") {
        "PRESENTATION"
    } else if under("1.2.840.10008.5.1.4.1.1.9.") {
        "WAVEFORM"
    } else if class == "1.2.840.10008.5.1.4.1.1.481.2" {
        "RT DOSE"
    } else if class == "1.2.840.10008.5.1.4.1.1.481.3" {
        "RT STRUCTURE SET"
    } else if class == "1.2.840.10008.5.1.4.1.1.481.5" {
        "RT PLAN"
    } else if under("1.2.840.10008.5.1.4.1.1.104.") {
        "ENCAP DOC"
    } else if class == "1.2.840.10008.5.1.4.1.1.66" {
        "RAW DATA"
    } else if class == "1.2.840.10008.5.1.4.1.1.4.2" {
        "SPECTROSCOPY"
    } else if has_pixels {
        "IMAGE"
    } else {
        "RAW DATA"
    }
}

/// The records of one file written (`file_id` its path's components under the DICOMDIR).
pub fn instance(file: &DicomFile, path: Vec<String>) -> Result<Instance, Unindexed> {
    if !file_id(&path) {
        return Err(Unindexed::Path);
    }
    let body = &file.body;
    let need = |tag: Tag, what: &'static str| {
        body.text_ascii(tag)
            .filter(|v| !v.is_empty())
            .ok_or(Unindexed::Missing(what))
    };
    need(Tag(0x0020, 0x000d), "Study Instance UID")?;
    need(Tag(0x0020, 0x000e), "Series Instance UID")?;
    let class = need(Tag(0x0008, 0x0016), "SOP Class UID")?;
    let sop = need(Tag(0x0008, 0x0018), "SOP Instance UID")?;
    let syntax = file
        .meta
        .text_ascii(Tag(0x0002, 0x0010))
        .ok_or(Unindexed::Missing("Transfer Syntax UID"))?;
    let mut patient = record("PATIENT");
    copy_keys(
        body,
        PATIENT_KEYS,
        &mut patient,
        &[Tag(0x0010, 0x0010), Tag(0x0010, 0x0020)],
    );
    let mut study = record("STUDY");
    let study_required: Vec<Tag> = STUDY_KEYS.iter().skip(1).map(|k| k.0).collect();
    copy_keys(body, STUDY_KEYS, &mut study, &study_required);
    let mut series = record("SERIES");
    let series_required: Vec<Tag> = SERIES_KEYS.iter().map(|k| k.0).collect();
    copy_keys(body, SERIES_KEYS, &mut series, &series_required);
    let has_pixels = body.get(Tag(0x7fe0, 0x0010)).is_some();
    let mut leaf = record(record_type(&class, has_pixels));
    leaf.put(Tag(0x0004, 0x1500), VR::CS, path.join("\\").into_bytes());
    leaf.put(Tag(0x0004, 0x1510), VR::UI, class.into_bytes());
    leaf.put(Tag(0x0004, 0x1511), VR::UI, sop.into_bytes());
    leaf.put(Tag(0x0004, 0x1512), VR::UI, syntax.into_bytes());
    copy_keys(body, INSTANCE_KEYS, &mut leaf, &[Tag(0x0020, 0x0013)]);
    Ok(Instance {
        file_id: path,
        patient,
        study,
        series,
        record: leaf,
    })
}

/// A node of the record tree: its record and its children, in order.
struct Node {
    record: DataSet,
    children: Vec<Node>,
}

/// Patients by ID, their studies by UID, series by UID, files by File ID.
fn tree(instances: Vec<Instance>) -> Vec<Node> {
    type Series = BTreeMap<String, (DataSet, BTreeMap<Vec<String>, DataSet>)>;
    type Studies = BTreeMap<String, (DataSet, Series)>;
    let mut patients: BTreeMap<Vec<u8>, (DataSet, Studies)> = BTreeMap::new();
    for i in instances {
        let pid = i.patient.bytes(Tag(0x0010, 0x0020)).unwrap_or(&[]).to_vec();
        let study = i.study.text_ascii(Tag(0x0020, 0x000d)).unwrap_or_default();
        let series = i.series.text_ascii(Tag(0x0020, 0x000e)).unwrap_or_default();
        let p = patients
            .entry(pid)
            .or_insert_with(|| (i.patient, BTreeMap::new()));
        let s =
            p.1.entry(study)
                .or_insert_with(|| (i.study, BTreeMap::new()));
        let e =
            s.1.entry(series)
                .or_insert_with(|| (i.series, BTreeMap::new()));
        e.1.insert(i.file_id, i.record);
    }
    let node = |record: DataSet, children: Vec<Node>| Node { record, children };
    patients
        .into_values()
        .map(|(p, studies)| {
            let studies = studies.into_values().map(|(s, series)| {
                let series = series.into_values().map(|(e, files)| {
                    let files = files.into_values().map(|f| node(f, Vec::new()));
                    node(e, files.collect())
                });
                node(s, series.collect())
            });
            node(p, studies.collect())
        })
        .collect()
}

/// Lays the tree out depth first; each record's index, its next sibling's and first child's.
fn flatten(nodes: Vec<Node>, out: &mut Vec<(DataSet, Option<usize>, Option<usize>)>) -> Vec<usize> {
    let mut mine = Vec::with_capacity(nodes.len());
    for n in nodes {
        let at = out.len();
        mine.push(at);
        out.push((n.record, None, None));
        let children = flatten(n.children, out);
        out[at].2 = children.first().copied();
        for w in children.windows(2) {
            out[w[0]].1 = Some(w[1]);
        }
    }
    for w in mine.windows(2) {
        out[w[0]].1 = Some(w[1]);
    }
    mine
}

fn offset(n: usize) -> Result<Vec<u8>, DicomError> {
    u32::try_from(n)
        .map(|v| v.to_le_bytes().to_vec())
        .map_err(|_| DicomError::Unwritable {
            tag: "(0004,1220)".into(),
            why: "a DICOMDIR over 4 GiB".into(),
        })
}

/// The DICOMDIR's bytes for these files; `instance_uid` is its Media Storage SOP Instance UID.
pub fn build(instances: Vec<Instance>, instance_uid: &str) -> Result<Vec<u8>, DicomError> {
    let mut flat = Vec::new();
    let roots = flatten(tree(instances), &mut flat);
    let mut meta = DataSet::default();
    meta.put(Tag(0x0002, 0x0001), VR::OB, vec![0, 1]);
    meta.put(
        Tag(0x0002, 0x0002),
        VR::UI,
        DICOMDIR_CLASS.as_bytes().to_vec(),
    );
    meta.put(
        Tag(0x0002, 0x0003),
        VR::UI,
        instance_uid.as_bytes().to_vec(),
    );
    meta.put_str(Tag(0x0002, 0x0010), VR::UI, crate::build::EXPLICIT_LITTLE);
    meta.put_str(Tag(0x0002, 0x0012), VR::UI, IMPLEMENTATION_UID);
    meta.put_str(Tag(0x0002, 0x0013), VR::SH, IMPLEMENTATION_VERSION);
    let mut body = DataSet::default();
    body.put(Tag(0x0004, 0x1130), VR::CS, Vec::new());
    body.put(FIRST_ROOT, VR::UL, vec![0; 4]);
    body.put(LAST_ROOT, VR::UL, vec![0; 4]);
    body.put(Tag(0x0004, 0x1212), VR::US, vec![0, 0]);
    body.put_items(RECORDS, Vec::new());
    let mut file = DicomFile {
        meta,
        syntax: Syntax::ExplicitLittle,
        body,
    };
    // Every value written below is four bytes whatever it holds, so the layout of the file with
    // zero offsets is the layout of the file: the sequence is last, its items start where the
    // file with an empty sequence ends, and each item takes 8 bytes and its data set's.
    let start = crate::write::to_bytes(&file)?.len();
    let mut at = Vec::with_capacity(flat.len());
    let mut next = start;
    for (r, _, _) in &flat {
        at.push(next);
        next += 8 + crate::write::data_set_bytes(r, Syntax::ExplicitLittle)?.len();
    }
    let pos = |i: Option<usize>| i.map_or(0, |i| at[i]);
    let mut items = Vec::with_capacity(flat.len());
    for (mut r, sibling, child) in flat {
        r.put(NEXT, VR::UL, offset(pos(sibling))?);
        r.put(LOWER, VR::UL, offset(pos(child))?);
        items.push(r);
    }
    file.body
        .put(FIRST_ROOT, VR::UL, offset(pos(roots.first().copied()))?);
    file.body
        .put(LAST_ROOT, VR::UL, offset(pos(roots.last().copied()))?);
    file.body.put_items(RECORDS, items);
    let bytes = crate::write::to_bytes(&file)?;
    if bytes.len() != next {
        return Err(DicomError::Unwritable {
            tag: "(0004,1220)".into(),
            why: "the records' offsets do not match the file".into(),
        });
    }
    Ok(bytes)
}
