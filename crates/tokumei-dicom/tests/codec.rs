//! Compressed pixel data: RLE Lossless frames encoded here by hand and JPEG Baseline frames by
//! `jpeg-encoder` are decoded; a pixel rule blanks its regions in them and the file is written
//! back as native Explicit VR Little Endian (regions zero, every other pixel as it was for the
//! lossless syntax, Photometric Interpretation RGB for a YCbCr JPEG, Lossy Image Compression 01
//! kept), read back by our reader and by dicom-object; a syntax without a codec, a frame whose
//! stream contradicts the image's attributes and an image over the decoding bound are refused
//! with a reason, never a panic. With Tesseract (installed by `scripts/test-deps.sh`), text
//! drawn into a compressed image, or into the second frame of three, is found.

use dicom_core::{Tag, VR};
use tokumei_dicom::codec::{decode, MAX_DECODED};
use tokumei_dicom::deid::{deidentify, Granularity, Settings};
use tokumei_dicom::ocr::{draw_text, Ocr};
use tokumei_dicom::pixel::{clean, parse_script, PixelError, Region};
use tokumei_dicom::profile::{Profile, ProfileOption};
use tokumei_dicom::write::to_bytes;
use tokumei_dicom::{parse, DataSet, DicomFile, Element, Limits, Value};

const RLE: &str = "1.2.840.10008.1.2.5";
const JPEG_BASELINE: &str = "1.2.840.10008.1.2.4.50";

/// A native image (Explicit VR Little Endian) of `frames` frames.
fn native(
    rows: u16,
    cols: u16,
    samples: u16,
    bits: u16,
    frames: usize,
    data: Vec<u8>,
) -> DicomFile {
    let mut b = DataSet::default();
    b.put_str(Tag(0x0008, 0x0016), VR::UI, "1.2.840.10008.5.1.4.1.1.7");
    b.put_str(Tag(0x0008, 0x0018), VR::UI, "2.25.4242");
    b.put_str(Tag(0x0008, 0x0060), VR::CS, "US");
    b.put_str(Tag(0x0008, 0x0070), VR::LO, "Tokumei Synthetic");
    b.put_u16(Tag(0x0028, 0x0002), &[samples]);
    let photometric = if samples == 3 { "RGB" } else { "MONOCHROME2" };
    b.put_str(Tag(0x0028, 0x0004), VR::CS, photometric);
    if samples == 3 {
        b.put_u16(Tag(0x0028, 0x0006), &[0]);
    }
    b.put_str(Tag(0x0028, 0x0008), VR::IS, &frames.to_string());
    b.put_u16(Tag(0x0028, 0x0010), &[rows]);
    b.put_u16(Tag(0x0028, 0x0011), &[cols]);
    b.put_u16(Tag(0x0028, 0x0100), &[bits]);
    b.put_u16(Tag(0x0028, 0x0101), &[bits]);
    b.put_u16(Tag(0x0028, 0x0102), &[bits - 1]);
    b.put_u16(Tag(0x0028, 0x0103), &[0]);
    b.insert(Element {
        tag: Tag(0x7fe0, 0x0010),
        vr: if bits == 16 { VR::OW } else { VR::OB },
        value: Value::Bytes(data),
    });
    DicomFile::explicit_little(b, "2.25.99", "TEST")
}

fn pixels(f: &DicomFile) -> &[u8] {
    match &f.body.get(Tag(0x7fe0, 0x0010)).expect("pixels").value {
        Value::Bytes(b) => b,
        _ => panic!("not native"),
    }
}

/// PackBits as literal runs of at most 128 bytes.
fn packbits(plane: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in plane.chunks(128) {
        out.push((chunk.len() - 1) as u8);
        out.extend_from_slice(chunk);
    }
    out
}

/// One RLE Lossless frame of interleaved little-endian samples (PS3.5 G): a segment per byte of
/// each sample, most significant first.
fn rle_frame(frame: &[u8], samples: usize, bytes: usize) -> Vec<u8> {
    let mut segments = Vec::new();
    for s in 0..samples {
        for b in (0..bytes).rev() {
            let plane: Vec<u8> = frame
                .iter()
                .skip(s * bytes + b)
                .step_by(samples * bytes)
                .copied()
                .collect();
            let mut seg = packbits(&plane);
            if seg.len() % 2 == 1 {
                seg.push(0x80); // a no-op run
            }
            segments.push(seg);
        }
    }
    let mut header = [0u32; 16];
    header[0] = segments.len() as u32;
    let mut at = 64u32;
    for (i, s) in segments.iter().enumerate() {
        header[i + 1] = at;
        at += s.len() as u32;
    }
    let mut out: Vec<u8> = header.iter().flat_map(|v| v.to_le_bytes()).collect();
    for s in segments {
        out.extend_from_slice(&s);
    }
    out
}

/// The file with its frames compressed as RLE Lossless (one fragment a frame, an empty table).
fn to_rle(f: &DicomFile) -> DicomFile {
    let n = |t: u16| {
        let b = f.body.bytes(Tag(0x0028, t)).expect("attr");
        usize::from(u16::from_le_bytes([b[0], b[1]]))
    };
    let (rows, cols, samples, bytes) = (n(0x0010), n(0x0011), n(0x0002), n(0x0100) / 8);
    let frame = rows * cols * samples * bytes;
    let mut fragments = vec![Vec::new()];
    for chunk in pixels(f).chunks(frame) {
        fragments.push(rle_frame(chunk, samples, bytes));
    }
    encapsulated(f, RLE, fragments)
}

fn encapsulated(f: &DicomFile, ts: &str, fragments: Vec<Vec<u8>>) -> DicomFile {
    let mut g = f.clone();
    g.meta.put_str(Tag(0x0002, 0x0010), VR::UI, ts);
    let e = g
        .body
        .elements
        .iter_mut()
        .find(|e| e.tag == Tag(0x7fe0, 0x0010))
        .expect("pixels");
    e.vr = VR::OB;
    e.value = Value::Fragments(fragments);
    g
}

fn jpeg(data: &[u8], cols: u16, rows: u16, rgb: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let color = if rgb {
        jpeg_encoder::ColorType::Rgb
    } else {
        jpeg_encoder::ColorType::Luma
    };
    jpeg_encoder::Encoder::new(&mut out, 100)
        .encode(data, cols, rows, color)
        .expect("jpeg");
    if out.len() % 2 == 1 {
        out.push(0);
    }
    out
}

/// Written, read back by our reader and by dicom-object.
fn reread(f: &DicomFile) -> DicomFile {
    let bytes = to_bytes(f).expect("write");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("x.dcm");
    std::fs::write(&path, &bytes).expect("write file");
    let obj = dicom_object::open_file(&path).expect("dicom-object reads it");
    assert_eq!(
        obj.meta().transfer_syntax.trim_end_matches('\0'),
        "1.2.840.10008.1.2.1"
    );
    parse(&bytes, &Limits::default()).expect("read back")
}

fn region() -> Region {
    Region {
        x: 2,
        y: 1,
        w: 3,
        h: 2,
    }
}

#[test]
fn rle_images_are_cleaned_and_written_back_native_with_every_other_pixel_kept() {
    // 16-bit grey, two frames; 8-bit RGB, two frames.
    for (samples, bits) in [(1u16, 16u16), (3, 8)] {
        let (rows, cols, frames) = (8u16, 8u16, 2usize);
        let bytes = usize::from(bits / 8);
        let len = 64 * usize::from(samples) * bytes * frames;
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251 + 1) as u8).collect();
        let original = native(rows, cols, samples, bits, frames, data.clone());
        let mut f = to_rle(&original);
        let decoded = decode(&f, None).expect("decode");
        assert_eq!(decoded.data, data, "RLE decodes to the original");
        clean(&mut f, &[region()]).expect("clean");
        let f = reread(&f);
        assert_eq!(
            f.meta.text_ascii(Tag(0x0002, 0x0010)).as_deref(),
            Some("1.2.840.10008.1.2.1")
        );
        let p = pixels(&f);
        let s = usize::from(samples);
        for (i, b) in p.iter().enumerate().take(len) {
            let pixel = (i % (64 * s * bytes)) / (s * bytes);
            let (x, y) = (pixel % 8, pixel / 8);
            let inside = (2..5).contains(&x) && (1..3).contains(&y);
            if inside {
                assert_eq!(*b, 0, "samples {samples} byte {i}");
            } else {
                assert_eq!(*b, data[i], "samples {samples} byte {i}");
            }
        }
        assert_eq!(
            f.body.text_ascii(Tag(0x0028, 0x0004)).as_deref(),
            Some(if samples == 3 { "RGB" } else { "MONOCHROME2" })
        );
        assert_eq!(f.body.text_ascii(Tag(0x0028, 0x2110)), None);
    }
}

#[test]
fn jpeg_images_are_cleaned_into_rgb_and_stay_marked_lossy() {
    let (rows, cols) = (16u16, 16u16);
    let grey: Vec<u8> = (0..256).map(|i| 100 + (i % 16) as u8 * 4).collect();
    let original = native(rows, cols, 1, 8, 1, grey.clone());
    let mut f = encapsulated(
        &original,
        JPEG_BASELINE,
        vec![vec![], jpeg(&grey, cols, rows, false)],
    );
    f.body.put_str(Tag(0x0028, 0x2110), VR::CS, "01");
    let decoded = decode(&f, None).expect("decode");
    let off = decoded
        .data
        .iter()
        .zip(&grey)
        .map(|(a, b)| a.abs_diff(*b))
        .max();
    assert!(off.is_some_and(|d| d <= 4), "JPEG at quality 100: {off:?}");
    clean(&mut f, &[region()]).expect("clean");
    let f = reread(&f);
    let p = pixels(&f);
    assert_eq!(p.len(), 256);
    for y in 1..3 {
        assert!(p[y * 16 + 2..y * 16 + 5].iter().all(|b| *b == 0));
    }
    assert!(p[0] > 90 && p[16 * 8 + 8] > 90);
    assert_eq!(
        f.body.text_ascii(Tag(0x0028, 0x2110)).as_deref(),
        Some("01")
    );

    // Colour: the JPEG holds YCbCr, the file says YBR_FULL_422, the output is RGB.
    let rgb: Vec<u8> = (0..256 * 3).map(|i| [200, 40, 90][i % 3]).collect();
    let original = native(rows, cols, 3, 8, 1, rgb.clone());
    let mut c = encapsulated(
        &original,
        JPEG_BASELINE,
        vec![vec![], jpeg(&rgb, cols, rows, true)],
    );
    c.body.put_str(Tag(0x0028, 0x0004), VR::CS, "YBR_FULL_422");
    clean(&mut c, &[region()]).expect("clean");
    let c = reread(&c);
    assert_eq!(
        c.body.text_ascii(Tag(0x0028, 0x0004)).as_deref(),
        Some("RGB")
    );
    assert_eq!(
        c.body.text_ascii(Tag(0x0028, 0x2110)).as_deref(),
        Some("01")
    );
    let p = pixels(&c);
    let px = &p[(10 * 16 + 10) * 3..(10 * 16 + 10) * 3 + 3];
    assert!(
        px[0].abs_diff(200) <= 6 && px[1].abs_diff(40) <= 6 && px[2].abs_diff(90) <= 6,
        "{px:?}"
    );
    assert!(p[(16 + 2) * 3..(16 + 5) * 3].iter().all(|b| *b == 0));
}

#[test]
fn what_cannot_be_decoded_is_refused_with_a_reason() {
    let grey = vec![7u8; 64];
    let original = native(8, 8, 1, 8, 1, grey.clone());
    let unclean = |f: &mut DicomFile| match clean(f, &[region()]) {
        Err(PixelError::Unclean(why)) => why,
        other => panic!("{other:?}"),
    };
    // JPEG-LS has no codec here.
    let mut ls = encapsulated(
        &original,
        "1.2.840.10008.1.2.4.80",
        vec![vec![], vec![0xff, 0xd8, 0xff, 0xd9]],
    );
    assert!(unclean(&mut ls).contains("no codec"));
    // A JPEG whose frame header says 16 × 16 in an 8 × 8 image.
    let big = jpeg(&[9u8; 256], 16, 16, false);
    let mut lying = encapsulated(&original, JPEG_BASELINE, vec![vec![], big]);
    assert!(unclean(&mut lying).contains("16 × 16"));
    // Garbage in a JPEG fragment, a truncated RLE frame, an RLE header with too many segments.
    let mut garbage = encapsulated(&original, JPEG_BASELINE, vec![vec![], vec![1, 2, 3, 4]]);
    assert!(!unclean(&mut garbage).is_empty());
    let mut rle = to_rle(&original);
    if let Some(Element {
        value: Value::Fragments(f),
        ..
    }) = rle.body.elements.last_mut()
    {
        f[1].truncate(70);
    }
    assert!(!unclean(&mut rle.clone()).is_empty());
    if let Some(Element {
        value: Value::Fragments(f),
        ..
    }) = rle.body.elements.last_mut()
    {
        f[1][0] = 9;
    }
    assert!(unclean(&mut rle).contains("segments"));
    // Over the bound: 65535 × 65535 × 3 × 2 bytes, before anything is allocated.
    let mut huge = to_rle(&original);
    huge.body.put_u16(Tag(0x0028, 0x0010), &[65535]);
    huge.body.put_u16(Tag(0x0028, 0x0011), &[65535]);
    huge.body.put_u16(Tag(0x0028, 0x0002), &[3]);
    huge.body.put_u16(Tag(0x0028, 0x0100), &[16]);
    let why = unclean(&mut huge);
    assert!(why.contains(&format!("{} MiB", MAX_DECODED >> 20)), "{why}");
    // Frames that the fragments cannot tell apart.
    let mut two = to_rle(&native(8, 8, 1, 8, 2, vec![1; 128]));
    if let Some(Element {
        value: Value::Fragments(f),
        ..
    }) = two.body.elements.last_mut()
    {
        f.push(vec![0; 4]);
    }
    assert!(unclean(&mut two).contains("told apart"));
}

fn ocr_settings(scratch: &std::path::Path, max_frames: usize) -> Settings {
    let mut ocr = Ocr::new(&["US"], scratch);
    ocr.max_frames = max_frames;
    Settings {
        profile: Profile::new(&[ProfileOption::CleanPixelData]).expect("profile"),
        uid_key: [5; 32],
        pseudonym: None,
        date_offset_days: 0,
        date_granularity: Granularity::Day,
        safe_private: Vec::new(),
        pixel_rules: parse_script("").expect("rules"),
        ocr: Some(ocr),
    }
}

/// An ultrasound-like image, 512 × 120, `frames` frames, the text drawn in frame `with_text`.
fn ultrasound(frames: usize, with_text: Option<usize>) -> DicomFile {
    let frame: Vec<u8> = (0..120 * 512).map(|i| ((i % 512) / 64) as u8).collect();
    let mut data = Vec::new();
    for f in 0..frames {
        let mut one = native(120, 512, 1, 8, 1, frame.clone());
        if with_text == Some(f) {
            draw_text(&mut one, 16, 16, 3, "YAMADA TARO 19620117").expect("draw");
        }
        data.extend_from_slice(pixels(&one));
    }
    native(120, 512, 1, 8, frames, data)
}

#[test]
fn text_in_a_compressed_image_or_in_any_frame_is_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    // RLE, the text in the second frame of three.
    let mut rle = to_rle(&ultrasound(3, Some(1)));
    let outcome = deidentify(&mut rle, &ocr_settings(dir.path(), 32));
    assert!(
        outcome.ocr_characters.is_some_and(|n| n >= 6),
        "{outcome:?}"
    );
    assert!(outcome.withheld.is_some());
    // No text in any frame: read, nothing found, written.
    let mut plain = to_rle(&ultrasound(3, None));
    let outcome = deidentify(&mut plain, &ocr_settings(dir.path(), 32));
    assert_eq!((outcome.ocr_characters, outcome.withheld), (Some(0), None));
    // JPEG Baseline, one frame.
    let named = ultrasound(1, Some(0));
    let mut j = encapsulated(
        &named,
        JPEG_BASELINE,
        vec![vec![], jpeg(pixels(&named), 512, 120, false)],
    );
    let outcome = deidentify(&mut j, &ocr_settings(dir.path(), 32));
    assert!(
        outcome.ocr_characters.is_some_and(|n| n >= 6),
        "{outcome:?}"
    );
    // More frames than OCR reads: withheld, with the bound.
    let mut long = to_rle(&ultrasound(3, None));
    let outcome = deidentify(&mut long, &ocr_settings(dir.path(), 2));
    let why = outcome.withheld.expect("withheld");
    assert!(why.contains("at most 2 frames"), "{why}");
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
}

#[test]
fn the_corpus_lossless_images_decode_as_their_native_twin() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/dicom-corpus/pydicom/data/test_files");
    if !dir.exists() {
        eprintln!(
            "{} is missing (scripts/test-deps.sh): skipped",
            dir.display()
        );
        return;
    }
    let read = |n: &str| parse(&std::fs::read(dir.join(n)).expect(n), &Limits::default()).expect(n);
    let mr = read("MR_small.dcm");
    for twin in ["MR_small_RLE.dcm", "MR_small_jp2klossless.dcm"] {
        let d = decode(&read(twin), None).expect(twin);
        assert_eq!(d.data, pixels(&mr), "{twin}");
    }
    // Every compressed file of the corpus decodes or is refused with a reason.
    let mut decoded = 0;
    for path in tokumei_dicom::batch::files_under(&dir).expect("files") {
        let Ok(f) = std::fs::read(&path).map(|b| parse(&b, &Limits::default())) else {
            continue;
        };
        let Ok(f) = f else { continue };
        if !tokumei_dicom::codec::encapsulated(&f) {
            continue;
        }
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        match decode(&f, None) {
            Ok(d) => {
                decoded += 1;
                eprintln!("decoded  {name:?}: {} frames", d.frames);
            }
            Err(e) => eprintln!("refused  {name:?}: {e}"),
        }
    }
    assert!(decoded >= 10, "{decoded} decoded");
}
