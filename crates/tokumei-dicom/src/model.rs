//! A DICOM file as read: its meta group, its transfer syntax and its data set, every value kept
//! as the file's bytes.

use dicom_core::{Tag, VR};

use crate::charset::{CharsetError, Repertoire, Text};

/// How the data set is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// Implicit VR little endian (1.2.840.10008.1.2).
    ImplicitLittle,
    /// Explicit VR little endian (1.2.840.10008.1.2.1), and every compressed syntax (their
    /// data set is explicit VR little endian; only the pixel data is encapsulated).
    ExplicitLittle,
    /// Explicit VR big endian (1.2.840.10008.1.2.2, retired).
    ExplicitBig,
    /// Deflated explicit VR little endian (1.2.840.10008.1.2.1.99).
    Deflated,
}

impl Syntax {
    /// The syntax of a transfer syntax UID, if it is one the reader knows.
    pub fn of_uid(uid: &str) -> Option<Syntax> {
        Some(match uid {
            "1.2.840.10008.1.2" => Syntax::ImplicitLittle,
            "1.2.840.10008.1.2.1" => Syntax::ExplicitLittle,
            "1.2.840.10008.1.2.2" => Syntax::ExplicitBig,
            "1.2.840.10008.1.2.1.99" => Syntax::Deflated,
            u if u.starts_with("1.2.840.10008.1.2.4.")
                || u.starts_with("1.2.840.10008.1.2.5")
                || u.starts_with("1.2.840.10008.1.2.8.") =>
            {
                Syntax::ExplicitLittle
            }
            _ => return None,
        })
    }
}

/// A 16-bit number in the data set's byte order (`b` holds at least two bytes).
pub(crate) fn u16_in(b: &[u8], syntax: Syntax) -> u16 {
    let two = [b[0], b[1]];
    if syntax == Syntax::ExplicitBig {
        u16::from_be_bytes(two)
    } else {
        u16::from_le_bytes(two)
    }
}

/// A 32-bit number in the data set's byte order (`b` holds at least four bytes).
pub(crate) fn u32_in(b: &[u8], syntax: Syntax) -> u32 {
    let four = [b[0], b[1], b[2], b[3]];
    if syntax == Syntax::ExplicitBig {
        u32::from_be_bytes(four)
    } else {
        u32::from_le_bytes(four)
    }
}

/// One value: bytes, a sequence's items, or encapsulated pixel data's fragments (the offset
/// table first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// The value's bytes as in the file (for big endian, as the file orders them).
    Bytes(Vec<u8>),
    /// A sequence's items; `defined` when the file gave the sequence and its items lengths
    /// (written back the same way).
    Items {
        /// The items.
        items: Vec<DataSet>,
        /// Whether lengths were defined.
        defined: bool,
    },
    /// Encapsulated pixel data.
    Fragments(Vec<Vec<u8>>),
}

/// One data element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// Its tag.
    pub tag: Tag,
    /// Its value representation (from the file, or the dictionary for implicit VR).
    pub vr: VR,
    /// Its value.
    pub value: Value,
}

/// Elements in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataSet {
    /// The elements.
    pub elements: Vec<Element>,
}

/// A file as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DicomFile {
    /// The file meta information (group 0002).
    pub meta: DataSet,
    /// The transfer syntax of the data set.
    pub syntax: Syntax,
    /// The data set.
    pub body: DataSet,
}

/// Whether the Specific Character Set applies to a VR's text (PS3.5 6.1.2.3), and how.
pub fn text_kind(vr: VR) -> Option<Text> {
    match vr {
        VR::SH | VR::LO | VR::UC => Some(Text::Values),
        VR::PN => Some(Text::PersonNames),
        VR::ST | VR::LT | VR::UT => Some(Text::Free),
        _ => None,
    }
}

impl DataSet {
    /// The element of a tag at this level.
    pub fn get(&self, tag: Tag) -> Option<&Element> {
        self.elements.iter().find(|e| e.tag == tag)
    }

    /// The bytes of a tag's value at this level.
    pub fn bytes(&self, tag: Tag) -> Option<&[u8]> {
        match &self.get(tag)?.value {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// A value in the default repertoire (UIDs, code strings), without its padding.
    pub fn text_ascii(&self, tag: Tag) -> Option<String> {
        let b = self.bytes(tag)?;
        let s = std::str::from_utf8(b).ok()?;
        Some(s.trim_end_matches(['\0', ' ']).trim_start().to_string())
    }

    /// This data set's repertoire: its own Specific Character Set, or the one it inherits.
    pub fn repertoire(&self, inherited: &Repertoire) -> Result<Repertoire, CharsetError> {
        match self.text_ascii(Tag(0x0008, 0x0005)) {
            Some(v) => Repertoire::parse(&v),
            None => Ok(inherited.clone()),
        }
    }

    /// A text value decoded in a repertoire (the charset for text VRs, ASCII for the others),
    /// without its padding.
    pub fn text(&self, tag: Tag, rep: &Repertoire) -> Option<Result<String, CharsetError>> {
        let e = self.get(tag)?;
        let Value::Bytes(b) = &e.value else {
            return None;
        };
        let decoded = match text_kind(e.vr) {
            Some(kind) => rep.decode(b, kind),
            None => Repertoire::default().decode(b, crate::charset::Text::Values),
        };
        Some(decoded.map(|s| s.trim_end_matches(['\0', ' ']).to_string()))
    }

    /// Sets a tag's value (bytes padded to even length as its VR wants), keeping file order.
    pub fn put(&mut self, tag: Tag, vr: VR, mut bytes: Vec<u8>) {
        if bytes.len() % 2 == 1 {
            bytes.push(if matches!(vr, VR::UI | VR::OB | VR::UN) {
                0
            } else {
                b' '
            });
        }
        let e = Element {
            tag,
            vr,
            value: Value::Bytes(bytes),
        };
        match self.elements.binary_search_by_key(&tag, |e| e.tag) {
            Ok(i) => self.elements[i] = e,
            Err(i) => self.elements.insert(i, e),
        }
    }

    /// Removes a tag at this level; whether it was there.
    pub fn remove(&mut self, tag: Tag) -> bool {
        let before = self.elements.len();
        self.elements.retain(|e| e.tag != tag);
        before != self.elements.len()
    }
}
