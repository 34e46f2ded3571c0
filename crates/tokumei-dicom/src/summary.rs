//! What `tokumei dicom inspect` shows of a file: its syntax, classes, character set (and whether
//! every text value decodes in it), counts of elements, private elements and sequences, the
//! depth of nesting, the Table E.1-1 attributes present, its pixel data and the burned-in flag.
//! No value that could identify a person.

use dicom_core::{Tag, VR};

use crate::charset::Repertoire;
use crate::model::{text_kind, DataSet, DicomFile, Value};
use crate::profile::Profile;

/// A file's summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Transfer syntax UID.
    pub transfer_syntax: String,
    /// SOP Class UID.
    pub sop_class: Option<String>,
    /// Modality.
    pub modality: Option<String>,
    /// Specific Character Set, as declared.
    pub character_set: Option<String>,
    /// Why the character set or a text value does not decode, if one does not.
    pub character_error: Option<String>,
    /// Elements, at every depth.
    pub elements: usize,
    /// Private elements, at every depth.
    pub private: usize,
    /// Sequences, at every depth.
    pub sequences: usize,
    /// Deepest nesting.
    pub depth: usize,
    /// Table E.1-1 attributes present, at every depth.
    pub listed: usize,
    /// Pixel data: `native, N bytes` or `encapsulated, N fragments`.
    pub pixel_data: Option<String>,
    /// Burned In Annotation.
    pub burned_in: Option<String>,
}

/// The summary of a file.
pub fn summarize(file: &DicomFile, profile: &Profile) -> Summary {
    let mut s = Summary {
        transfer_syntax: file
            .meta
            .text_ascii(Tag(0x0002, 0x0010))
            .unwrap_or_default(),
        sop_class: file.body.text_ascii(Tag(0x0008, 0x0016)),
        modality: file.body.text_ascii(Tag(0x0008, 0x0060)),
        character_set: file.body.text_ascii(Tag(0x0008, 0x0005)),
        burned_in: file.body.text_ascii(Tag(0x0028, 0x0301)),
        listed: crate::check::listed(&file.body, profile),
        ..Summary::default()
    };
    count(&file.body, &Repertoire::default(), 0, &mut s);
    s
}

fn count(set: &DataSet, inherited: &Repertoire, depth: usize, s: &mut Summary) {
    s.depth = s.depth.max(depth);
    let rep = match set.repertoire(inherited) {
        Ok(r) => r,
        Err(e) => {
            s.character_error.get_or_insert(e.to_string());
            inherited.clone()
        }
    };
    for e in &set.elements {
        s.elements += 1;
        if e.tag.group() % 2 == 1 {
            s.private += 1;
        }
        match &e.value {
            Value::Items { items, .. } => {
                s.sequences += 1;
                for item in items {
                    count(item, &rep, depth + 1, s);
                }
            }
            Value::Fragments(f) if e.tag == Tag(0x7fe0, 0x0010) => {
                s.pixel_data = Some(format!("encapsulated, {} fragments", f.len()));
            }
            Value::Bytes(b) if e.tag == Tag(0x7fe0, 0x0010) => {
                s.pixel_data = Some(format!("native, {} bytes", b.len()));
            }
            Value::Bytes(b) if e.vr != VR::UN => {
                if let Some(kind) = text_kind(e.vr) {
                    if let Err(err) = rep.decode(b, kind) {
                        s.character_error.get_or_insert(format!(
                            "({:04X},{:04X}): {err}",
                            e.tag.group(),
                            e.tag.element()
                        ));
                    }
                }
            }
            _ => {}
        }
    }
}
