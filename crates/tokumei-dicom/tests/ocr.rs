//! Burned-in text found by Tesseract (installed by `scripts/test-deps.sh`): an ultrasound image
//! with a name and a date drawn into its pixels is withheld; the same image without the text,
//! or with the text blanked by its device's rule, is not. What Tesseract read is not reported.

mod common;

use common::*;
use dicom_core::{Tag, VR};
use tokumei_dicom::deid::{deidentify, Settings};
use tokumei_dicom::ocr::{draw_text, Ocr};
use tokumei_dicom::pixel::parse_script;
use tokumei_dicom::profile::{Profile, ProfileOption};
use tokumei_dicom::{DicomFile, Syntax};

fn ultrasound(text: Option<&str>) -> DicomFile {
    let mut f = sample("1.2.840.10008.1.2.1", Syntax::ExplicitLittle, native());
    let b = &mut f.body;
    b.put(Tag(0x0008, 0x0060), VR::CS, uid("US"));
    b.put(Tag(0x0008, 0x0070), VR::LO, uid("Tokumei Synthetic"));
    b.put(Tag(0x0028, 0x0002), VR::US, 1u16.to_le_bytes().to_vec());
    b.put(Tag(0x0028, 0x0010), VR::US, 120u16.to_le_bytes().to_vec());
    b.put(Tag(0x0028, 0x0011), VR::US, 512u16.to_le_bytes().to_vec());
    b.put(Tag(0x0028, 0x0100), VR::US, 8u16.to_le_bytes().to_vec());
    // A dark image with a faint gradient, as an ultrasound's background.
    let pixels: Vec<u8> = (0..120 * 512).map(|i| ((i % 512) / 64) as u8).collect();
    b.put(Tag(0x7fe0, 0x0010), VR::OB, pixels);
    if let Some(t) = text {
        draw_text(&mut f, 16, 16, 3, t).expect("draw");
    }
    f
}

fn settings(scratch: &std::path::Path, rules: &str) -> Settings {
    Settings {
        profile: Profile::new(&[ProfileOption::CleanPixelData]).expect("profile"),
        uid_key: [5; 32],
        pseudonym: None,
        date_offset_days: 0,
        date_granularity: tokumei_dicom::deid::Granularity::Day,
        safe_private: Vec::new(),
        pixel_rules: parse_script(rules).expect("rules"),
        ocr: Some(Ocr::new(&["US"], scratch)),
    }
}

#[test]
fn text_in_the_pixels_withholds_the_image_unless_a_rule_blanks_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut named = ultrasound(Some("YAMADA TARO 19620117"));
    let outcome = deidentify(&mut named, &settings(dir.path(), ""));
    let found = outcome.ocr_characters.expect("OCR ran");
    assert!(found >= 6, "{found} characters found");
    let why = outcome.withheld.expect("withheld");
    assert!(!why.contains("YAMADA") && !why.contains("1962"), "{why}");

    let mut plain = ultrasound(None);
    let outcome = deidentify(&mut plain, &settings(dir.path(), ""));
    assert_eq!((outcome.ocr_characters, outcome.withheld), (Some(0), None));

    let rule = r#"{ [Manufacturer].equals("Tokumei Synthetic") } (0,0,512,60)"#;
    let mut cleaned = ultrasound(Some("YAMADA TARO 19620117"));
    let outcome = deidentify(&mut cleaned, &settings(dir.path(), rule));
    assert_eq!(outcome.cleaned_regions, 1);
    assert_eq!((outcome.ocr_characters, outcome.withheld), (Some(0), None));
    // Nothing is left in the scratch folder.
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
}
