//! A [`DicomFile`] written as PS3.10 bytes: the preamble, `DICM`, the meta group with its group
//! length recomputed, and the data set in its transfer syntax (deflated again when it was).
//! Values are written as they are held, so that a file read and written unchanged is the same
//! bytes (but for its preamble, which is written as zeros).

use std::io::Write;

use dicom_core::{Tag, VR};

use crate::model::{DataSet, DicomFile, Element, Syntax, Value};
use crate::read::long_length;
use crate::DicomError;

const UNDEFINED: u32 = 0xffff_ffff;

/// The file's bytes.
pub fn to_bytes(file: &DicomFile) -> Result<Vec<u8>, DicomError> {
    let mut out = vec![0u8; 128];
    out.extend_from_slice(b"DICM");
    let mut meta = Vec::new();
    for e in file
        .meta
        .elements
        .iter()
        .filter(|e| e.tag != Tag(0x0002, 0))
    {
        element(&mut meta, e, Syntax::ExplicitLittle)?;
    }
    let length = u32::try_from(meta.len()).map_err(|_| unwritable(Tag(2, 0), "meta too long"))?;
    element(
        &mut out,
        &Element {
            tag: Tag(0x0002, 0x0000),
            vr: VR::UL,
            value: Value::Bytes(length.to_le_bytes().to_vec()),
        },
        Syntax::ExplicitLittle,
    )?;
    out.extend_from_slice(&meta);
    let mut body = Vec::new();
    data_set(&mut body, &file.body, file.syntax)?;
    if file.syntax == Syntax::Deflated {
        let mut enc = flate2::write::DeflateEncoder::new(out, flate2::Compression::default());
        enc.write_all(&body)
            .map_err(|e| DicomError::Deflate(e.to_string()))?;
        out = enc
            .finish()
            .map_err(|e| DicomError::Deflate(e.to_string()))?;
        if out.len() % 2 == 1 {
            out.push(0);
        }
    } else {
        out.extend_from_slice(&body);
    }
    Ok(out)
}

/// A data set's bytes alone, in a syntax (not deflated).
pub(crate) fn data_set_bytes(set: &DataSet, syntax: Syntax) -> Result<Vec<u8>, DicomError> {
    let mut out = Vec::new();
    data_set(&mut out, set, syntax)?;
    Ok(out)
}

fn unwritable(tag: Tag, why: &str) -> DicomError {
    DicomError::Unwritable {
        tag: format!("({:04X},{:04X})", tag.group(), tag.element()),
        why: why.to_string(),
    }
}

fn data_set(out: &mut Vec<u8>, set: &DataSet, syntax: Syntax) -> Result<(), DicomError> {
    for e in &set.elements {
        element(out, e, syntax)?;
    }
    Ok(())
}

fn u16s(out: &mut Vec<u8>, v: u16, syntax: Syntax) {
    if syntax == Syntax::ExplicitBig {
        out.extend_from_slice(&v.to_be_bytes());
    } else {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

fn u32s(out: &mut Vec<u8>, v: u32, syntax: Syntax) {
    if syntax == Syntax::ExplicitBig {
        out.extend_from_slice(&v.to_be_bytes());
    } else {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

fn tag(out: &mut Vec<u8>, t: Tag, syntax: Syntax) {
    u16s(out, t.group(), syntax);
    u16s(out, t.element(), syntax);
}

fn header(out: &mut Vec<u8>, e: &Element, len: u32, syntax: Syntax) -> Result<(), DicomError> {
    tag(out, e.tag, syntax);
    if syntax == Syntax::ImplicitLittle && e.tag.group() != 0x0002 {
        u32s(out, len, syntax);
        return Ok(());
    }
    out.extend_from_slice(&e.vr.to_bytes());
    if long_length(e.vr) {
        out.extend_from_slice(&[0, 0]);
        u32s(out, len, syntax);
    } else {
        let short = u16::try_from(len).map_err(|_| unwritable(e.tag, "too long for its VR"))?;
        u16s(out, short, syntax);
    }
    Ok(())
}

fn length(n: usize, t: Tag) -> Result<u32, DicomError> {
    u32::try_from(n)
        .ok()
        .filter(|&n| n != UNDEFINED)
        .ok_or_else(|| unwritable(t, "value over 4 GiB"))
}

fn element(out: &mut Vec<u8>, e: &Element, syntax: Syntax) -> Result<(), DicomError> {
    let item = Tag(0xfffe, 0xe000);
    match &e.value {
        Value::Bytes(b) => {
            header(out, e, length(b.len(), e.tag)?, syntax)?;
            out.extend_from_slice(b);
        }
        Value::Items { items, defined } => {
            let mut inner = Vec::new();
            for it in items {
                let mut body = Vec::new();
                data_set(&mut body, it, syntax)?;
                tag(&mut inner, item, syntax);
                if *defined {
                    u32s(&mut inner, length(body.len(), e.tag)?, syntax);
                    inner.extend_from_slice(&body);
                } else {
                    u32s(&mut inner, UNDEFINED, syntax);
                    inner.extend_from_slice(&body);
                    tag(&mut inner, Tag(0xfffe, 0xe00d), syntax);
                    u32s(&mut inner, 0, syntax);
                }
            }
            if *defined {
                header(out, e, length(inner.len(), e.tag)?, syntax)?;
                out.extend_from_slice(&inner);
            } else {
                header(out, e, UNDEFINED, syntax)?;
                out.extend_from_slice(&inner);
                tag(out, Tag(0xfffe, 0xe0dd), syntax);
                u32s(out, 0, syntax);
            }
        }
        Value::Fragments(fragments) => {
            header(out, e, UNDEFINED, syntax)?;
            for f in fragments {
                tag(out, item, syntax);
                u32s(out, length(f.len(), e.tag)?, syntax);
                out.extend_from_slice(f);
            }
            tag(out, Tag(0xfffe, 0xe0dd), syntax);
            u32s(out, 0, syntax);
        }
    }
    Ok(())
}
