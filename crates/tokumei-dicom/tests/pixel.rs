//! Pixel cleaning by device signature (CTP's script format): scripts parse with their operators
//! and refuse what they do not know with the line; a matching rule blanks its regions in every
//! frame and sample, nothing outside them; an image with burned-in annotation is cleaned by its
//! rule or withheld, and encapsulated pixel data without a codec is withheld (the codecs are tested
//! in `codec.rs`).

mod common;

use common::*;
use dicom_core::{Tag, VR};
use tokumei_dicom::deid::{deidentify, Settings};
use tokumei_dicom::pixel::{clean, matching, parse_script, PixelError, Region};
use tokumei_dicom::profile::{Profile, ProfileOption};
use tokumei_dicom::{DicomFile, Syntax, Value};

const SCRIPT: &str = r#"
# A synthetic CT: the top two rows carry the name.
{ [0008,0070].containsIgnoreCase("tokumei") * ([Rows].equals("8") + [0028,0011].equals("16")) }
  (0,0,8,2)
# Anything that is not a CT, and has no model name.
{ ![Modality].equals("CT") * [0008,1090].isBlank() }
  (6,6,10,10)
"#;

/// An image of `frames` frames, rows × 8, `samples` samples of 16 bits, every byte 0x11.
fn image(rows: u16, samples: u16, planar: bool, frames: usize, burned: bool) -> DicomFile {
    let mut f = sample("1.2.840.10008.1.2.1", Syntax::ExplicitLittle, native());
    let b = &mut f.body;
    b.put(Tag(0x0008, 0x0070), VR::LO, uid("Tokumei Synthetic"));
    b.put(Tag(0x0028, 0x0002), VR::US, samples.to_le_bytes().to_vec());
    b.put(
        Tag(0x0028, 0x0006),
        VR::US,
        u16::from(planar).to_le_bytes().to_vec(),
    );
    b.put(Tag(0x0028, 0x0008), VR::IS, frames.to_string().into_bytes());
    b.put(Tag(0x0028, 0x0010), VR::US, rows.to_le_bytes().to_vec());
    b.put(Tag(0x0028, 0x0011), VR::US, 8u16.to_le_bytes().to_vec());
    b.put(Tag(0x0028, 0x0100), VR::US, 16u16.to_le_bytes().to_vec());
    if burned {
        b.put(Tag(0x0028, 0x0301), VR::CS, uid("YES"));
    }
    let n = usize::from(rows) * 8 * usize::from(samples) * 2 * frames;
    b.put(Tag(0x7fe0, 0x0010), VR::OW, vec![0x11; n]);
    f
}

fn pixels(f: &DicomFile) -> &[u8] {
    match &f.body.get(Tag(0x7fe0, 0x0010)).expect("pixels").value {
        Value::Bytes(b) => b,
        _ => panic!("native"),
    }
}

#[test]
fn scripts_parse_and_refuse_with_the_line() {
    let rules = parse_script(SCRIPT).expect("script");
    assert_eq!(rules.len(), 2);
    assert_eq!(
        rules[0].regions,
        vec![Region {
            x: 0,
            y: 0,
            w: 8,
            h: 2
        }]
    );
    let ct = image(8, 1, false, 1, false);
    assert_eq!(matching(&rules, &ct), Some(&rules[0]));
    let mut us = ct.clone();
    us.body.put(Tag(0x0008, 0x0070), VR::LO, uid("Other"));
    us.body.put(Tag(0x0008, 0x0060), VR::CS, uid("US"));
    assert_eq!(matching(&rules, &us), Some(&rules[1]));
    us.body.put(Tag(0x0008, 0x1090), VR::LO, uid("Model 7"));
    assert_eq!(matching(&rules, &us), None);
    for (bad, line) in [
        ("{ [0008,0070].sounds(\"x\") } (0,0,1,1)", 1),
        ("\n\n{ [NoSuchKeyword].equals(\"x\") }", 3),
        ("{ [0008,0070].equals(\"x\") } (0,0,1)", 1),
        ("{ [0008,0070].equals(\"x\") ", 1),
    ] {
        let e = parse_script(bad).expect_err(bad);
        assert!(
            matches!(e, PixelError::Script { line: l, .. } if l == line),
            "{bad}: {e}"
        );
    }
}

#[test]
fn regions_are_blanked_in_every_frame_and_sample_and_nowhere_else() {
    for (samples, planar) in [(1, false), (3, false), (3, true)] {
        let mut f = image(8, samples, planar, 2, false);
        let r = Region {
            x: 2,
            y: 1,
            w: 3,
            h: 2,
        };
        clean(&mut f, &[r]).expect("clean");
        let p = pixels(&f);
        let s = usize::from(samples);
        let frame = 8 * 8 * s * 2;
        for (i, b) in p.iter().enumerate() {
            let in_frame = i % frame;
            // Planar: each sample's plane in turn; interleaved: the samples of a pixel together.
            let pixel = if planar {
                (in_frame % (64 * 2)) / 2
            } else {
                in_frame / (2 * s)
            };
            let (x, y) = (pixel % 8, pixel / 8);
            let inside = (2..5).contains(&x) && (1..3).contains(&y);
            assert_eq!(
                *b == 0,
                inside,
                "samples {samples} planar {planar} byte {i}"
            );
        }
    }
    // A region past the edge is clipped; compressed and bit-packed pixels are refused.
    let mut f = image(8, 1, false, 1, false);
    clean(
        &mut f,
        &[Region {
            x: 6,
            y: 6,
            w: 100,
            h: 100,
        }],
    )
    .expect("clipped");
    assert_eq!(pixels(&f).iter().filter(|b| **b == 0).count(), 4 * 2);
    let mut jpeg = image(8, 1, false, 1, false);
    jpeg.body.elements.last_mut().expect("pixels").value =
        Value::Fragments(vec![vec![], vec![1, 2]]);
    assert!(matches!(clean(&mut jpeg, &[]), Err(PixelError::Unclean(_))));
    let mut short = image(8, 1, false, 2, false);
    short.body.put(Tag(0x0028, 0x0008), VR::IS, uid("3 "));
    assert!(clean(&mut short, &[]).is_err());
}

fn settings(options: &[ProfileOption]) -> Settings {
    Settings {
        profile: Profile::new(options).expect("profile"),
        uid_key: [3; 32],
        pseudonym: None,
        date_offset_days: 0,
        date_granularity: tokumei_dicom::deid::Granularity::Day,
        safe_private: Vec::new(),
        pixel_rules: parse_script(SCRIPT).expect("script"),
        ocr: None,
    }
}

#[test]
fn burned_in_images_are_cleaned_by_their_rule_or_withheld() {
    let clean_pixels = [ProfileOption::CleanPixelData];
    let mut f = image(8, 1, false, 1, true);
    let outcome = deidentify(&mut f, &settings(&clean_pixels));
    assert_eq!(outcome.withheld, None);
    assert_eq!(outcome.cleaned_regions, 1);
    assert_eq!(
        f.body.text_ascii(Tag(0x0028, 0x0301)).as_deref(),
        Some("NO")
    );
    assert!(pixels(&f)[..32].iter().all(|b| *b == 0));
    assert!(pixels(&f)[32..].iter().all(|b| *b == 0x11));
    // Without the option, or without a matching rule: withheld.
    let mut g = image(8, 1, false, 1, true);
    assert!(deidentify(&mut g, &settings(&[])).withheld.is_some());
    let mut h = image(8, 1, false, 1, true);
    h.body.put(Tag(0x0008, 0x0070), VR::LO, uid("Other"));
    h.body.put(Tag(0x0008, 0x1090), VR::LO, uid("Model 7"));
    assert!(deidentify(&mut h, &settings(&clean_pixels))
        .withheld
        .is_some());
    // A matching rule on compressed pixel data: withheld, with the reason.
    let mut jpeg = image(8, 1, false, 1, true);
    jpeg.body.elements.last_mut().expect("pixels").value =
        Value::Fragments(vec![vec![], vec![1, 2]]);
    let outcome = deidentify(&mut jpeg, &settings(&clean_pixels));
    assert!(outcome.withheld.is_some_and(|w| w.contains("codec")));
}
