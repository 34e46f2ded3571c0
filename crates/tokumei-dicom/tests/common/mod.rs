//! Test files built from the model: a CT image header with a Japanese name in ISO 2022 IR 87
//! and IR 159 at the top and three sequences deep, private elements and pixel data.
#![allow(dead_code)]

use dicom_core::{Tag, VR};
use tokumei_dicom::charset::{Repertoire, Text};
use tokumei_dicom::{DataSet, DicomFile, Element, Syntax, Value};

pub const NAME: &str = "Mori^Ogai=森^鷗外=もり^おうがい";
pub const CHARSET: &str = "\\ISO 2022 IR 87\\ISO 2022 IR 159";

pub fn uid(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

pub fn meta(ts: &str) -> DataSet {
    let mut m = DataSet::default();
    m.put(Tag(0x0002, 0x0001), VR::OB, vec![0, 1]);
    m.put(
        Tag(0x0002, 0x0002),
        VR::UI,
        uid("1.2.840.10008.5.1.4.1.1.2"),
    );
    m.put(
        Tag(0x0002, 0x0003),
        VR::UI,
        uid("1.2.392.200036.9116.2.6.1.48"),
    );
    m.put(Tag(0x0002, 0x0010), VR::UI, uid(ts));
    m
}

pub fn name_bytes() -> Vec<u8> {
    Repertoire::parse(CHARSET)
        .and_then(|r| r.encode(NAME, Text::PersonNames))
        .expect("encode")
}

/// A referenced-study item holding a person's name three sequences deep.
pub fn nested(depth: usize, defined: bool) -> Element {
    let mut item = DataSet::default();
    item.put(Tag(0x0008, 0x1150), VR::UI, uid("1.2.840.10008.3.1.2.3.1"));
    item.put(Tag(0x0010, 0x0010), VR::PN, name_bytes());
    if depth > 1 {
        item.elements.push(nested(depth - 1, !defined));
    }
    Element {
        tag: Tag(0x0008, 0x1110),
        vr: VR::SQ,
        value: Value::Items {
            items: vec![item.clone(), item],
            defined,
        },
    }
}

pub fn sample(ts: &str, syntax: Syntax, pixels: Value) -> DicomFile {
    let mut body = DataSet::default();
    body.put(Tag(0x0008, 0x0005), VR::CS, uid(CHARSET));
    body.put(
        Tag(0x0008, 0x0016),
        VR::UI,
        uid("1.2.840.10008.5.1.4.1.1.2"),
    );
    body.put(
        Tag(0x0008, 0x0018),
        VR::UI,
        uid("1.2.392.200036.9116.2.6.1.48"),
    );
    body.put(Tag(0x0008, 0x0060), VR::CS, uid("CT"));
    body.elements.push(nested(3, true));
    body.put(Tag(0x0009, 0x0010), VR::LO, uid("TOKUMEI TEST"));
    body.put(Tag(0x0009, 0x1001), VR::UN, uid("0123456789"));
    body.put(Tag(0x0010, 0x0010), VR::PN, name_bytes());
    body.put(Tag(0x0010, 0x0020), VR::LO, uid("P-000123"));
    body.put(Tag(0x0010, 0x0030), VR::DA, uid("19620117"));
    body.elements.push(Element {
        tag: Tag(0x7fe0, 0x0010),
        vr: VR::OW,
        value: pixels,
    });
    DicomFile {
        meta: meta(ts),
        syntax,
        body,
    }
}

pub fn native() -> Value {
    Value::Bytes((0..64u8).collect())
}

pub fn syntaxes() -> Vec<(&'static str, Syntax, Value)> {
    vec![
        ("1.2.840.10008.1.2", Syntax::ImplicitLittle, native()),
        ("1.2.840.10008.1.2.1", Syntax::ExplicitLittle, native()),
        ("1.2.840.10008.1.2.2", Syntax::ExplicitBig, native()),
        ("1.2.840.10008.1.2.1.99", Syntax::Deflated, native()),
        (
            "1.2.840.10008.1.2.4.50",
            Syntax::ExplicitLittle,
            Value::Fragments(vec![vec![], vec![0xff, 0xd8, 0xff, 0xd9]]),
        ),
    ]
}
