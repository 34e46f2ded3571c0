//! Files read and written: each transfer syntax round-trips byte for byte, Japanese names in
//! ISO 2022 IR 87 and IR 159 decode from any depth of sequences, dicom-rs reads what is written,
//! and hostile bytes (truncated, absurd lengths, too deep, not DICOM) are refused with a reason,
//! never a panic or an allocation the file did not pay for.

mod common;

use common::*;
use dicom_core::{Tag, VR};
use proptest::prelude::*;
use tokumei_dicom::charset::Repertoire;
use tokumei_dicom::write::to_bytes;
use tokumei_dicom::{parse, DataSet, DicomError, DicomFile, Element, Limits, Syntax, Value};

/// The meta group as the writer leaves it (with its group length).
fn with_group_length(file: &DicomFile) -> DicomFile {
    parse(&to_bytes(file).expect("write"), &Limits::default()).expect("read")
}

#[test]
fn every_syntax_round_trips_byte_for_byte() {
    for (ts, syntax, pixels) in syntaxes() {
        let file = sample(ts, syntax, pixels);
        let bytes = to_bytes(&file).expect("write");
        let read = parse(&bytes, &Limits::default()).expect(ts);
        assert_eq!(read.syntax, syntax);
        assert_eq!(read.body, file.body, "{ts}");
        assert_eq!(to_bytes(&read).expect("again"), bytes, "{ts}");
    }
}

#[test]
fn bare_data_sets_and_mislabelled_syntaxes_are_read_as_written() {
    let implicit = sample("1.2.840.10008.1.2", Syntax::ImplicitLittle, native());
    let bytes = to_bytes(&implicit).expect("write");
    // Without preamble and meta group: the data set alone.
    let meta_end =
        132 + 12 + u32::from_le_bytes([bytes[140], bytes[141], bytes[142], bytes[143]]) as usize;
    let bare = parse(&bytes[meta_end..], &Limits::default()).expect("bare");
    assert_eq!(bare.syntax, Syntax::ImplicitLittle);
    assert_eq!(bare.body, implicit.body);
    assert_eq!(
        bare.meta.text_ascii(Tag(0x0002, 0x0003)),
        implicit.body.text_ascii(Tag(0x0008, 0x0018))
    );
    // The same, big endian.
    let big = sample("1.2.840.10008.1.2.2", Syntax::ExplicitBig, native());
    let bytes = to_bytes(&big).expect("write");
    let meta_end =
        132 + 12 + u32::from_le_bytes([bytes[140], bytes[141], bytes[142], bytes[143]]) as usize;
    let bare = parse(&bytes[meta_end..], &Limits::default()).expect("bare big endian");
    assert_eq!(bare.syntax, Syntax::ExplicitBig);
    assert_eq!(bare.body, big.body);
    // A meta group that says explicit VR over a data set written in implicit VR.
    let mut mislabelled = implicit.clone();
    mislabelled
        .meta
        .put(Tag(0x0002, 0x0010), VR::UI, uid("1.2.840.10008.1.2.1"));
    let read = parse(&to_bytes(&mislabelled).expect("write"), &Limits::default()).expect("read");
    assert_eq!(read.syntax, Syntax::ImplicitLittle);
    assert_eq!(read.body, implicit.body);
}

#[test]
fn japanese_names_decode_at_every_depth() {
    let file = with_group_length(&sample(
        "1.2.840.10008.1.2.1",
        Syntax::ExplicitLittle,
        native(),
    ));
    let rep = file
        .body
        .repertoire(&Repertoire::default())
        .expect("charset");
    let top = file.body.text(Tag(0x0010, 0x0010), &rep).expect("name");
    assert_eq!(top.expect("decoded"), NAME);
    let mut set = &file.body;
    for _ in 0..3 {
        let Some(Element {
            value: Value::Items { items, .. },
            ..
        }) = set.get(Tag(0x0008, 0x1110))
        else {
            panic!("a sequence");
        };
        let name = items[1].text(Tag(0x0010, 0x0010), &rep).expect("name");
        assert_eq!(name.expect("decoded"), NAME);
        set = &items[0];
    }
}

#[test]
fn dicom_rs_reads_what_is_written() {
    for (ts, syntax, pixels) in syntaxes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f.dcm");
        std::fs::write(&path, to_bytes(&sample(ts, syntax, pixels)).expect("write")).expect("file");
        let obj = dicom_object::open_file(&path).expect(ts);
        let id = obj.element(Tag(0x0010, 0x0020)).expect("id");
        assert_eq!(id.to_str().expect("str").trim(), "P-000123", "{ts}");
        let seq = obj.element(Tag(0x0008, 0x1110)).expect("sequence");
        assert_eq!(seq.items().map(|i| i.len()), Some(2), "{ts}");
    }
}

fn refusal(bytes: &[u8]) -> DicomError {
    parse(bytes, &Limits::default()).expect_err("refused")
}

#[test]
fn hostile_files_are_refused_with_a_reason() {
    let good = to_bytes(&sample(
        "1.2.840.10008.1.2.1",
        Syntax::ExplicitLittle,
        native(),
    ))
    .expect("write");
    assert!(matches!(refusal(b"not dicom at all"), DicomError::NotDicom));
    // A length of nearly 4 GiB in a small file: refused before anything is allocated for it.
    let mut absurd = good.clone();
    let at = absurd
        .windows(4)
        .position(|w| w == [0x10, 0x00, 0x20, 0x00])
        .expect("patient id");
    absurd[at + 6..at + 8].copy_from_slice(&[0xff, 0xff]);
    assert!(
        matches!(refusal(&absurd), DicomError::Malformed { ref tag, .. } if tag == "(0010,0020)")
    );
    let mut sq = good.clone();
    let at = sq
        .windows(6)
        .position(|w| w == [0x08, 0x00, 0x10, 0x11, b'S', b'Q'])
        .expect("sequence");
    sq[at + 8..at + 12].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    let e = refusal(&sq);
    assert!(e.to_string().contains("exceeds"), "{e}");
    // Truncated anywhere past the meta group: an error, never a panic.
    for cut in (140..good.len()).step_by(7) {
        let _ = parse(&good[..cut], &Limits::default());
    }
    let unknown = to_bytes(&DicomFile {
        meta: meta("1.2.3.4"),
        syntax: Syntax::ExplicitLittle,
        body: DataSet::default(),
    })
    .expect("write");
    assert!(matches!(refusal(&unknown), DicomError::Syntax(_)));
}

#[test]
fn nesting_and_counts_are_bounded() {
    // A chain of 30 sequences, one item each.
    let mut inner = DataSet::default();
    for _ in 0..30 {
        let mut item = DataSet::default();
        item.elements.push(Element {
            tag: Tag(0x0008, 0x1110),
            vr: VR::SQ,
            value: Value::Items {
                items: vec![inner],
                defined: false,
            },
        });
        inner = item;
    }
    let body = inner;
    let file = DicomFile {
        meta: meta("1.2.840.10008.1.2.1"),
        syntax: Syntax::ExplicitLittle,
        body,
    };
    let bytes = to_bytes(&file).expect("write");
    let e = refusal(&bytes);
    assert!(e.to_string().contains("too deep"), "{e}");
    let few = Limits {
        max_elements: 20,
        ..Limits::default()
    };
    let small = to_bytes(&sample(
        "1.2.840.10008.1.2.1",
        Syntax::ExplicitLittle,
        native(),
    ))
    .expect("write");
    let e = parse(&small, &few).expect_err("too many");
    assert!(e.to_string().contains("too many"), "{e}");
    let tiny = Limits {
        max_file: 100,
        ..Limits::default()
    };
    assert!(matches!(parse(&small, &tiny), Err(DicomError::TooLarge(_))));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// Any bytes changed in a valid file: refused or read, and what is read writes back to
    /// bytes that read to the same file.
    #[test]
    fn mutated_files_never_panic(flips in proptest::collection::vec((0usize..2000, any::<u8>()), 1..8)) {
        let mut bytes = to_bytes(&sample("1.2.840.10008.1.2.1", Syntax::ExplicitLittle, native()))
            .expect("write");
        for (at, b) in flips {
            let n = bytes.len();
            bytes[132 + at % (n - 132)] = b;
        }
        if let Ok(file) = parse(&bytes, &Limits::default()) {
            if let Ok(again) = to_bytes(&file) {
                let reread = parse(&again, &Limits::default()).expect("re-read");
                // The meta group's length is recomputed; all else is as read.
                prop_assert!(reread.body == file.body && reread.syntax == file.syntax);
                let without_length = |m: &DataSet| -> Vec<Element> {
                    m.elements.iter().filter(|e| e.tag != Tag(0x0002, 0)).cloned().collect()
                };
                prop_assert!(without_length(&reread.meta) == without_length(&file.meta));
            }
        }
    }
}
