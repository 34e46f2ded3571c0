//! A DICOM file (PS3.10) read from bytes without trusting any length: every defined length is
//! checked against the bytes its container has left before anything is allocated for it,
//! nesting and element counts are bounded, and a deflated data set is inflated only up to a
//! bound. Values are kept as the file's bytes (text is decoded on demand by [`crate::charset`]),
//! so that what is not changed is written back byte for byte.

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;

use crate::model::{u16_in, u32_in, DataSet, DicomFile, Element, Syntax, Value};
use crate::DicomError;

/// Bounds on what one file may make the reader do.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest file (bytes).
    pub max_file: u64,
    /// Largest deflated data set once inflated (bytes).
    pub max_inflated: u64,
    /// Deepest nesting of sequences.
    pub max_depth: usize,
    /// Most elements, items and fragments in one file.
    pub max_elements: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file: 2 << 30,
            max_inflated: 2 << 30,
            max_depth: 24,
            max_elements: 2_000_000,
        }
    }
}

const ITEM: Tag = Tag(0xfffe, 0xe000);
const ITEM_END: Tag = Tag(0xfffe, 0xe00d);
const SEQUENCE_END: Tag = Tag(0xfffe, 0xe0dd);
const PIXEL_DATA: Tag = Tag(0x7fe0, 0x0010);
const UNDEFINED: u32 = 0xffff_ffff;

/// Reads a file's bytes: PS3.10 (the 128-byte preamble and `DICM`, or `DICM` first), or a bare
/// data set without file meta information (as older systems wrote them), whose syntax is told
/// from its first element and whose meta group is made from it.
pub fn parse(bytes: &[u8], limits: &Limits) -> Result<DicomFile, DicomError> {
    if bytes.len() as u64 > limits.max_file {
        return Err(DicomError::TooLarge(bytes.len() as u64));
    }
    let start = if bytes.get(128..132) == Some(b"DICM") {
        132
    } else if bytes.get(..4) == Some(b"DICM") {
        4
    } else if matches!(bytes.get(..2), Some([0x08, 0x00] | [0x00, 0x08])) {
        return bare(bytes, limits);
    } else {
        return Err(DicomError::NotDicom);
    };
    let mut meta_reader = Reader::new(bytes, Syntax::ExplicitLittle, limits);
    meta_reader.pos = start;
    let meta = meta_reader.meta()?;
    let uid = meta
        .text_ascii(Tag(0x0002, 0x0010))
        .ok_or_else(|| meta_reader.error(Tag(0x0002, 0x0010), "no transfer syntax"))?;
    let mut syntax = Syntax::of_uid(&uid).ok_or(DicomError::Syntax(uid))?;
    let body_at = meta_reader.pos;
    // A data set in implicit VR under a meta group that says explicit: read as it is written.
    if syntax == Syntax::ExplicitLittle && !explicit_at(bytes, body_at) {
        syntax = Syntax::ImplicitLittle;
    }
    let inflated;
    let body_bytes = if syntax == Syntax::Deflated {
        inflated = inflate(&bytes[body_at..], limits.max_inflated)?;
        &inflated[..]
    } else {
        &bytes[body_at..]
    };
    let mut r = Reader::new(body_bytes, syntax, limits);
    r.count = meta_reader.count;
    r.offset = if syntax == Syntax::Deflated {
        0
    } else {
        body_at
    };
    let body = r.data_set(body_bytes.len(), 0, false)?;
    Ok(DicomFile { meta, syntax, body })
}

/// Whether the element at `at` has an explicit VR (two upper-case letters of a known VR); true
/// at the end of the bytes.
fn explicit_at(bytes: &[u8], at: usize) -> bool {
    match bytes.get(at + 4..at + 6) {
        Some(vr) => {
            VR::from_binary([vr[0], vr[1]]).is_some() && vr.iter().all(u8::is_ascii_uppercase)
        }
        None => true,
    }
}

/// A data set without file meta information: group 0008 first, little endian (implicit or
/// explicit VR) or explicit VR big endian.
fn bare(bytes: &[u8], limits: &Limits) -> Result<DicomFile, DicomError> {
    let (syntax, uid) = if bytes.get(..2) == Some(&[0x00, 0x08]) {
        (Syntax::ExplicitBig, "1.2.840.10008.1.2.2")
    } else if explicit_at(bytes, 0) {
        (Syntax::ExplicitLittle, "1.2.840.10008.1.2.1")
    } else {
        (Syntax::ImplicitLittle, "1.2.840.10008.1.2")
    };
    let mut r = Reader::new(bytes, syntax, limits);
    let body = r.data_set(bytes.len(), 0, false)?;
    let mut meta = DataSet::default();
    meta.put(Tag(0x0002, 0x0001), VR::OB, vec![0, 1]);
    for (from, to) in [(0x0016, 0x0002), (0x0018, 0x0003)] {
        if let Some(v) = body.bytes(Tag(0x0008, from)) {
            meta.put(Tag(0x0002, to), VR::UI, v.to_vec());
        }
    }
    meta.put(Tag(0x0002, 0x0010), VR::UI, uid.as_bytes().to_vec());
    Ok(DicomFile { meta, syntax, body })
}

fn inflate(deflated: &[u8], max: u64) -> Result<Vec<u8>, DicomError> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(deflated)
        .take(max + 1)
        .read_to_end(&mut out)
        .map_err(|e| DicomError::Deflate(e.to_string()))?;
    if out.len() as u64 > max {
        return Err(DicomError::TooLarge(out.len() as u64));
    }
    Ok(out)
}

/// The value representation the dictionary gives a tag (implicit VR), `UN` when it has none.
pub fn dictionary_vr(tag: Tag) -> VR {
    if tag.element() == 0 {
        return VR::UL;
    }
    if tag.group() % 2 == 1 {
        return if tag.element() < 0x0100 {
            VR::LO
        } else {
            VR::UN
        };
    }
    StandardDataDictionary
        .by_tag(tag)
        .map(|e| e.vr().relaxed())
        .unwrap_or(VR::UN)
}

/// Whether an explicit VR has a 4-byte length (after two reserved bytes).
pub fn long_length(vr: VR) -> bool {
    matches!(
        vr,
        VR::OB
            | VR::OD
            | VR::OF
            | VR::OL
            | VR::OV
            | VR::OW
            | VR::SQ
            | VR::SV
            | VR::UC
            | VR::UN
            | VR::UR
            | VR::UT
            | VR::UV
    )
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Where `bytes` starts in the file (for positions in errors).
    offset: usize,
    syntax: Syntax,
    limits: &'a Limits,
    count: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], syntax: Syntax, limits: &'a Limits) -> Reader<'a> {
        Reader {
            bytes,
            pos: 0,
            offset: 0,
            syntax,
            limits,
            count: 0,
        }
    }

    fn error(&self, tag: Tag, why: &str) -> DicomError {
        DicomError::Malformed {
            at: (self.offset + self.pos) as u64,
            tag: format!("({:04X},{:04X})", tag.group(), tag.element()),
            why: why.to_string(),
        }
    }

    fn take(&mut self, n: usize, end: usize, tag: Tag) -> Result<&'a [u8], DicomError> {
        if n > end.saturating_sub(self.pos) {
            return Err(self.error(
                tag,
                &format!("{n} bytes wanted, {} left", end.saturating_sub(self.pos)),
            ));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u16(&mut self, end: usize, tag: Tag) -> Result<u16, DicomError> {
        let b = self.take(2, end, tag)?;
        Ok(u16_in(b, self.syntax))
    }

    fn u32(&mut self, end: usize, tag: Tag) -> Result<u32, DicomError> {
        let b = self.take(4, end, tag)?;
        Ok(u32_in(b, self.syntax))
    }

    fn counted(&mut self, tag: Tag) -> Result<(), DicomError> {
        self.count += 1;
        if self.count > self.limits.max_elements {
            return Err(self.error(tag, "too many elements"));
        }
        Ok(())
    }

    /// The file meta group (explicit VR little endian), up to the first other group.
    fn meta(&mut self) -> Result<DataSet, DicomError> {
        let mut set = DataSet::default();
        let end = self.bytes.len();
        while self.bytes.get(self.pos..self.pos + 2) == Some(&[0x02, 0x00]) {
            set.elements.push(self.element(end, 0)?);
        }
        if set.elements.is_empty() {
            return Err(self.error(Tag(0x0002, 0x0000), "no file meta information"));
        }
        Ok(set)
    }

    /// Elements up to `end`, or to an item delimiter when `delimited`.
    fn data_set(
        &mut self,
        end: usize,
        depth: usize,
        delimited: bool,
    ) -> Result<DataSet, DicomError> {
        if depth > self.limits.max_depth {
            return Err(self.error(Tag(0, 0), "sequences nested too deep"));
        }
        let mut set = DataSet::default();
        loop {
            if self.pos == end {
                if delimited {
                    return Err(self.error(ITEM_END, "an item without its delimiter"));
                }
                return Ok(set);
            }
            if delimited && self.peek_tag(end)? == ITEM_END {
                self.pos += 4;
                self.u32(end, ITEM_END)?;
                return Ok(set);
            }
            set.elements.push(self.element(end, depth)?);
        }
    }

    fn peek_tag(&mut self, end: usize) -> Result<Tag, DicomError> {
        let at = self.pos;
        let tag = Tag(self.u16(end, Tag(0, 0))?, self.u16(end, Tag(0, 0))?);
        self.pos = at;
        Ok(tag)
    }

    fn element(&mut self, end: usize, depth: usize) -> Result<Element, DicomError> {
        let tag = Tag(self.u16(end, Tag(0, 0))?, self.u16(end, Tag(0, 0))?);
        self.counted(tag)?;
        if tag.group() == 0xfffe {
            return Err(self.error(tag, "a delimiter where an element belongs"));
        }
        let (vr, len) = self.header(tag, end)?;
        let implicit = self.syntax == Syntax::ImplicitLittle;
        let (vr, value) = if len == UNDEFINED {
            match vr {
                VR::SQ => (vr, self.items_undefined(end, depth, tag)?),
                // In implicit VR an undefined length is a sequence's (PS3.5 7.5.1).
                _ if implicit && tag != PIXEL_DATA => {
                    (VR::SQ, self.items_undefined(end, depth, tag)?)
                }
                // An unknown sequence of undefined length is implicit VR inside (PS3.5 6.2.2).
                VR::UN => {
                    let outer = std::mem::replace(&mut self.syntax, Syntax::ImplicitLittle);
                    let items = self.items_undefined(end, depth, tag);
                    self.syntax = outer;
                    (VR::SQ, items?)
                }
                VR::OB | VR::OW if tag == PIXEL_DATA => {
                    (vr, Value::Fragments(self.fragments(end)?))
                }
                _ => {
                    return Err(self.error(tag, "undefined length on a value that cannot have one"))
                }
            }
        } else if vr == VR::SQ {
            let stop = self.bound(len as usize, end, tag)?;
            (vr, self.items_defined(stop, depth, tag)?)
        } else {
            (
                vr,
                Value::Bytes(self.take(len as usize, end, tag)?.to_vec()),
            )
        };
        Ok(Element { tag, vr, value })
    }

    fn header(&mut self, tag: Tag, end: usize) -> Result<(VR, u32), DicomError> {
        if self.syntax == Syntax::ImplicitLittle && tag.group() != 0x0002 {
            let vr = dictionary_vr(tag);
            return Ok((vr, self.u32(end, tag)?));
        }
        let code = self.take(2, end, tag)?;
        let vr = VR::from_binary([code[0], code[1]])
            .ok_or_else(|| self.error(tag, "an unknown value representation"))?;
        if long_length(vr) {
            self.take(2, end, tag)?;
            Ok((vr, self.u32(end, tag)?))
        } else {
            Ok((vr, u32::from(self.u16(end, tag)?)))
        }
    }

    /// The end of a value of `len` bytes, checked against its container's end.
    fn bound(&self, len: usize, end: usize, tag: Tag) -> Result<usize, DicomError> {
        if len > end.saturating_sub(self.pos) {
            return Err(self.error(
                tag,
                &format!("length {len} exceeds the {} bytes left", end - self.pos),
            ));
        }
        Ok(self.pos + len)
    }

    fn item(&mut self, end: usize, depth: usize) -> Result<DataSet, DicomError> {
        self.counted(ITEM)?;
        let len = self.u32(end, ITEM)?;
        if len == UNDEFINED {
            self.data_set(end, depth + 1, true)
        } else {
            let stop = self.bound(len as usize, end, ITEM)?;
            let set = self.data_set(stop, depth + 1, false)?;
            Ok(set)
        }
    }

    fn items_defined(&mut self, stop: usize, depth: usize, tag: Tag) -> Result<Value, DicomError> {
        let mut items = Vec::new();
        while self.pos < stop {
            match self.peek_tag(stop)? {
                ITEM => {
                    self.pos += 4;
                    items.push(self.item(stop, depth)?);
                }
                _ => return Err(self.error(tag, "a sequence holds something other than items")),
            }
        }
        Ok(Value::Items {
            items,
            defined: true,
        })
    }

    fn items_undefined(&mut self, end: usize, depth: usize, tag: Tag) -> Result<Value, DicomError> {
        let mut items = Vec::new();
        loop {
            let t = self.peek_tag(end)?;
            self.pos += 4;
            match t {
                ITEM => items.push(self.item(end, depth)?),
                SEQUENCE_END => {
                    self.u32(end, t)?;
                    return Ok(Value::Items {
                        items,
                        defined: false,
                    });
                }
                _ => return Err(self.error(tag, "a sequence holds something other than items")),
            }
        }
    }

    /// Encapsulated pixel data: the offset table and each fragment, up to the delimiter.
    fn fragments(&mut self, end: usize) -> Result<Vec<Vec<u8>>, DicomError> {
        let mut fragments = Vec::new();
        loop {
            let t = self.peek_tag(end)?;
            self.pos += 4;
            let len = self.u32(end, t)?;
            match t {
                ITEM if len != UNDEFINED => {
                    self.counted(t)?;
                    fragments.push(self.take(len as usize, end, t)?.to_vec());
                }
                SEQUENCE_END => return Ok(fragments),
                _ => return Err(self.error(PIXEL_DATA, "a malformed pixel data fragment")),
            }
        }
    }
}
