//! Compressed (encapsulated) pixel data decoded with dicom-rs's codecs, all in Rust: JPEG
//! Baseline (1.2.840.10008.1.2.4.50), Extended (.51, 8-bit), Lossless (.57) and Lossless SV1
//! (.70) by `jpeg-decoder`; RLE Lossless (1.2.840.10008.1.2.5); JPEG 2000 Lossless (.90) and
//! JPEG 2000 (.91) by `openjp2`. Other compressed syntaxes (JPEG-LS, JPEG XL, HTJ2K, video,
//! deflated image frames) have no codec here and are refused with a reason.
//!
//! Nothing of the file is trusted before decoding: the frames' total size (rows × columns ×
//! samples × bytes × frames, with checked arithmetic) must be at most [`MAX_DECODED`]; each
//! frame's own header (a JPEG's SOF, a JPEG 2000 codestream's SIZ, an RLE header) must give
//! the image's rows, columns and samples, so that a codec never allocates from a length the file
//! gives; and a codec that panics all the same is caught and its frame refused. A file is read
//! through [`View`], dicom-rs's `PixelDataObject` over one frame of our own [`DicomFile`].
//!
//! Decoded frames are native little endian, their samples interleaved (Planar Configuration 0);
//! [`to_native`] writes them back into the file as Explicit VR Little Endian.

use std::borrow::Cow;

use dicom_core::{Tag, VR};
use dicom_encoding::adapters::{PixelDataObject, RawPixelData};
use dicom_encoding::TransferSyntaxIndex;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use crate::model::{DicomFile, Syntax, Value};
use crate::pixel::{number, PixelError};

/// The most bytes that decoding one image may produce (1 GiB).
pub const MAX_DECODED: usize = 1 << 30;

const PIXEL_DATA: Tag = Tag(0x7fe0, 0x0010);
const TRANSFER_SYNTAX: Tag = Tag(0x0002, 0x0010);
const PHOTOMETRIC: Tag = Tag(0x0028, 0x0004);
const EXPLICIT_LITTLE: &str = "1.2.840.10008.1.2.1";

/// Transfer syntaxes whose compression loses information.
const LOSSY: &[&str] = &[
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.51",
    "1.2.840.10008.1.2.4.81",
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.93",
    "1.2.840.10008.1.2.4.111",
    "1.2.840.10008.1.2.4.203",
];

/// The image's geometry as its attributes give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Samples per pixel.
    pub samples: usize,
    /// Bytes per sample (Bits Allocated / 8).
    pub bytes: usize,
    /// Number of Frames (1 when absent).
    pub frames: usize,
}

impl Geometry {
    /// Bytes of one frame; `None` when the product overflows.
    pub fn frame_len(&self) -> Option<usize> {
        self.rows
            .checked_mul(self.cols)?
            .checked_mul(self.samples)?
            .checked_mul(self.bytes)
    }
}

/// Frames decoded from encapsulated pixel data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The image's geometry (its `frames` is the image's, not how many were decoded).
    pub geometry: Geometry,
    /// The frames decoded, one after another: little endian, samples interleaved.
    pub data: Vec<u8>,
    /// How many frames `data` holds.
    pub frames: usize,
    /// The Photometric Interpretation of the decoded samples (a JPEG's YCbCr comes out RGB).
    pub photometric: Option<String>,
    /// Whether the source syntax was lossy.
    pub lossy: bool,
}

fn bad(why: impl Into<String>) -> PixelError {
    PixelError::Unclean(why.into())
}

/// Whether the file's pixel data is encapsulated.
pub fn encapsulated(file: &DicomFile) -> bool {
    matches!(
        file.body.get(PIXEL_DATA).map(|e| &e.value),
        Some(Value::Fragments(_))
    )
}

/// The image's geometry; only 8 and 16 bits are decoded or rendered.
pub fn geometry(file: &DicomFile) -> Result<Geometry, PixelError> {
    let n = |t: u16| number(file, Tag(0x0028, t));
    let bits = n(0x0100).ok_or_else(|| bad("no Bits Allocated"))?;
    if bits != 8 && bits != 16 {
        return Err(bad(format!(
            "Bits Allocated {bits}: only 8 and 16 are decoded"
        )));
    }
    let g = Geometry {
        rows: n(0x0010).ok_or_else(|| bad("no Rows"))?,
        cols: n(0x0011).ok_or_else(|| bad("no Columns"))?,
        samples: n(0x0002).unwrap_or(1),
        bytes: bits / 8,
        frames: n(0x0008).unwrap_or(1).max(1),
    };
    if g.rows == 0 || g.cols == 0 || !(g.samples == 1 || g.samples == 3) {
        return Err(bad("rows, columns or samples per pixel out of range"));
    }
    Ok(g)
}

/// Decodes the first `wanted` frames (all of them when `None`) of encapsulated pixel data.
pub fn decode(file: &DicomFile, wanted: Option<usize>) -> Result<Decoded, PixelError> {
    let uid = file.meta.text_ascii(TRANSFER_SYNTAX).unwrap_or_default();
    let g = geometry(file)?;
    let Some(Value::Fragments(items)) = file.body.get(PIXEL_DATA).map(|e| &e.value) else {
        return Err(bad("no encapsulated pixel data"));
    };
    let ts = TransferSyntaxRegistry.get(&uid);
    let name = ts.map_or("unknown", |t| t.name());
    let reader = ts
        .and_then(|t| t.pixel_data_reader())
        .ok_or_else(|| bad(format!("transfer syntax {uid} ({name}) has no codec here")))?;
    let n = wanted.unwrap_or(g.frames).min(g.frames);
    let frame_len = g.frame_len().ok_or_else(|| bad("absurd dimensions"))?;
    let total = frame_len
        .checked_mul(n)
        .filter(|&t| t <= MAX_DECODED)
        .ok_or_else(|| {
            bad(format!(
                "{n} frames of {frame_len} bytes: over the {} MiB that decoding may use",
                MAX_DECODED >> 20
            ))
        })?;
    let frames = split_frames(items, g.frames, &uid)?;
    let mut data = Vec::new();
    data.try_reserve_exact(total)
        .map_err(|_| bad(format!("{total} bytes cannot be allocated")))?;
    let photometric = file.body.text_ascii(PHOTOMETRIC);
    let stored = number(file, Tag(0x0028, 0x0101)).unwrap_or(g.bytes * 8);
    for (f, frame) in frames.iter().take(n).enumerate() {
        check_header(&uid, frame, &g).map_err(|why| bad(format!("frame {f}: {why}")))?;
        let view = View {
            uid: &uid,
            geometry: g,
            stored: u16::try_from(stored).unwrap_or(16),
            photometric: photometric.as_deref().unwrap_or(""),
            data: &frame[..],
        };
        let before = data.len();
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            reader.decode_frame(&view, 0, &mut data)
        }));
        match run {
            Ok(Ok(())) if data.len() == before + frame_len => {}
            Ok(Ok(())) => return Err(bad(format!("frame {f}: the codec gave the wrong size"))),
            Ok(Err(e)) => return Err(bad(format!("frame {f} does not decode ({name}): {e}"))),
            Err(_) => return Err(bad(format!("frame {f}: the {name} codec failed on it"))),
        }
    }
    Ok(Decoded {
        geometry: g,
        data,
        frames: n,
        photometric: decoded_photometric(&uid, &g, photometric),
        lossy: LOSSY.contains(&uid.as_str()),
    })
}

/// What the codec's output is: JPEG's lossy processes turn YCbCr into RGB, and JPEG 2000's
/// component transforms (YBR_ICT, YBR_RCT) are undone into RGB; lossless JPEG and RLE leave the
/// samples as they were coded.
fn decoded_photometric(uid: &str, g: &Geometry, given: Option<String>) -> Option<String> {
    if g.samples != 3 {
        return given;
    }
    let jpeg_lossy = uid == "1.2.840.10008.1.2.4.50" || uid == "1.2.840.10008.1.2.4.51";
    let j2k_transform = uid.starts_with("1.2.840.10008.1.2.4.9")
        && matches!(given.as_deref(), Some("YBR_ICT" | "YBR_RCT"));
    if jpeg_lossy || j2k_transform {
        Some("RGB".into())
    } else {
        given
    }
}

/// Each frame's bytes: its fragments, joined when a frame spans several.
fn split_frames<'a>(
    items: &'a [Vec<u8>],
    frames: usize,
    uid: &str,
) -> Result<Vec<Cow<'a, [u8]>>, PixelError> {
    let (table, fragments) = match items.split_first() {
        Some((t, f)) if !f.is_empty() => (t, f),
        _ => return Err(bad("encapsulated pixel data without fragments")),
    };
    let join = |part: &[Vec<u8>]| -> Cow<'a, [u8]> { Cow::Owned(part.concat()) };
    if fragments.len() == frames {
        return Ok(fragments
            .iter()
            .map(|f| Cow::Borrowed(f.as_slice()))
            .collect());
    }
    if frames == 1 {
        return Ok(vec![join(fragments)]);
    }
    // The Basic Offset Table: each frame's first byte, counted from the first fragment's item
    // tag (each fragment takes 8 bytes of header and its length).
    let offsets: Vec<usize> = table
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    let starts: Vec<usize> = fragments
        .iter()
        .scan(0usize, |at, f| {
            let here = *at;
            *at = at.saturating_add(8).saturating_add(f.len());
            Some(here)
        })
        .collect();
    let firsts: Vec<usize> = if offsets.len() == frames {
        offsets
            .iter()
            .map(|o| starts.iter().position(|s| s == o))
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| bad("the offset table does not point at fragments"))?
    } else {
        // No table: a frame begins at each fragment that opens a JPEG (SOI) or JPEG 2000
        // (SOC, or a JP2 signature box) stream.
        let jpeg = uid.starts_with("1.2.840.10008.1.2.4.");
        fragments
            .iter()
            .enumerate()
            .filter(|(_, f)| {
                jpeg && (f.starts_with(&[0xff, 0xd8])
                    || f.starts_with(&[0xff, 0x4f])
                    || f.starts_with(&[0, 0, 0, 0x0c, 0x6a, 0x50]))
            })
            .map(|(i, _)| i)
            .collect()
    };
    let ordered = firsts.windows(2).all(|w| w[0] < w[1]);
    if firsts.len() != frames || firsts.first() != Some(&0) || !ordered {
        return Err(bad(format!(
            "{frames} frames cannot be told apart in {} fragments",
            fragments.len()
        )));
    }
    Ok((0..frames)
        .map(|f| {
            let end = firsts.get(f + 1).copied().unwrap_or(fragments.len());
            join(&fragments[firsts[f]..end])
        })
        .collect())
}

/// The frame's own header must describe the image its attributes describe.
fn check_header(uid: &str, frame: &[u8], g: &Geometry) -> Result<(), String> {
    let (rows, cols, comps, bits) = if uid == "1.2.840.10008.1.2.5" {
        return check_rle(frame, g);
    } else if uid.starts_with("1.2.840.10008.1.2.4.9") {
        j2k_size(frame).ok_or("no JPEG 2000 size (SIZ) marker")?
    } else if uid.starts_with("1.2.840.10008.1.2.4.") {
        jpeg_size(frame).ok_or("no JPEG frame header (SOF)")?
    } else {
        return Ok(());
    };
    if (rows, cols, comps) != (g.rows, g.cols, g.samples) {
        return Err(format!(
            "its stream is {cols} × {rows} with {comps} components, the image {} × {} with {}",
            g.cols, g.rows, g.samples
        ));
    }
    if bits == 0 || bits.div_ceil(8) > g.bytes || (g.bytes == 2 && bits <= 8) {
        return Err(format!(
            "{bits}-bit samples in the stream, {} bits allocated",
            g.bytes * 8
        ));
    }
    Ok(())
}

/// An RLE frame's header: as many segments as samples × bytes, each offset inside the frame.
fn check_rle(frame: &[u8], g: &Geometry) -> Result<(), String> {
    let word = |i: usize| -> Option<usize> {
        let b = frame.get(i * 4..i * 4 + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let segments = word(0).ok_or("no RLE header")?;
    if segments != g.samples * g.bytes {
        return Err(format!(
            "{segments} RLE segments for {} samples of {} bytes",
            g.samples, g.bytes
        ));
    }
    for s in 1..=segments {
        let at = word(s).ok_or("no RLE header")?;
        if at < 64 || at > frame.len() {
            return Err("an RLE segment offset outside its frame".into());
        }
    }
    Ok(())
}

/// (rows, columns, components, precision) of a JPEG stream's first frame header.
fn jpeg_size(s: &[u8]) -> Option<(usize, usize, usize, usize)> {
    if !s.starts_with(&[0xff, 0xd8]) {
        return None;
    }
    let mut at = 2;
    loop {
        while *s.get(at)? != 0xff {
            at += 1;
        }
        while *s.get(at)? == 0xff {
            at += 1;
        }
        let marker = *s.get(at)?;
        at += 1;
        if matches!(marker, 0x01 | 0xd0..=0xd7) {
            continue;
        }
        let len = usize::from(u16::from_be_bytes([*s.get(at)?, *s.get(at + 1)?]));
        let sof = matches!(marker, 0xc0..=0xcf) && !matches!(marker, 0xc4 | 0xc8 | 0xcc);
        if sof {
            let h = s.get(at + 2..at + 8)?;
            let rows = usize::from(u16::from_be_bytes([h[1], h[2]]));
            let cols = usize::from(u16::from_be_bytes([h[3], h[4]]));
            return Some((rows, cols, usize::from(h[5]), usize::from(h[0])));
        }
        if marker == 0xda || marker == 0xd9 {
            return None;
        }
        at += len;
    }
}

/// (rows, columns, components, precision) of a JPEG 2000 codestream, bare or in a JP2 file;
/// `None` when a component is subsampled or components differ in precision.
fn j2k_size(s: &[u8]) -> Option<(usize, usize, usize, usize)> {
    let mut s = s;
    if s.starts_with(&[0, 0, 0, 0x0c, 0x6a, 0x50]) {
        // JP2 boxes: find the contiguous codestream box (jp2c).
        let mut at = 0usize;
        loop {
            let b = s.get(at..at + 8)?;
            let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
            if &b[4..8] == b"jp2c" {
                s = s.get(at + 8..)?;
                break;
            }
            if len < 8 {
                return None;
            }
            at = at.checked_add(len)?;
        }
    }
    if !s.starts_with(&[0xff, 0x4f, 0xff, 0x51]) {
        return None;
    }
    let u32_at = |i: usize| -> Option<usize> {
        let b = s.get(i..i + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let (x, y, x0, y0) = (u32_at(8)?, u32_at(12)?, u32_at(16)?, u32_at(20)?);
    let comps = usize::from(u16::from_be_bytes([*s.get(40)?, *s.get(41)?]));
    let mut bits = None;
    for c in 0..comps {
        let d = s.get(42 + 3 * c..45 + 3 * c)?;
        let precision = usize::from(d[0] & 0x7f) + 1;
        if d[1] != 1 || d[2] != 1 || bits.is_some_and(|b| b != precision) {
            return None;
        }
        bits = Some(precision);
    }
    Some((y.checked_sub(y0)?, x.checked_sub(x0)?, comps, bits?))
}

/// Puts decoded frames (all of the image's) back as native Explicit VR Little Endian pixel data:
/// the file meta's Transfer Syntax UID, the encapsulation and its extended offset table gone,
/// Planar Configuration 0, the decoded Photometric Interpretation, and Lossy Image Compression
/// `01` when the source was lossy.
pub fn to_native(file: &mut DicomFile, decoded: Decoded) -> Result<(), PixelError> {
    if decoded.frames != decoded.geometry.frames {
        return Err(bad("not every frame was decoded"));
    }
    let Decoded {
        geometry: g,
        mut data,
        photometric,
        lossy,
        ..
    } = decoded;
    if data.len() % 2 == 1 {
        data.push(0);
    }
    let e = file
        .body
        .elements
        .iter_mut()
        .find(|e| e.tag == PIXEL_DATA)
        .ok_or_else(|| bad("no pixel data"))?;
    e.vr = if g.bytes == 2 { VR::OW } else { VR::OB };
    e.value = Value::Bytes(data);
    file.body.remove(Tag(0x7fe0, 0x0001));
    file.body.remove(Tag(0x7fe0, 0x0002));
    if g.samples > 1 {
        file.body.put(Tag(0x0028, 0x0006), VR::US, vec![0, 0]);
    }
    if let Some(p) = photometric {
        file.body.put(PHOTOMETRIC, VR::CS, p.into_bytes());
    }
    if lossy {
        file.body.put(Tag(0x0028, 0x2110), VR::CS, b"01".to_vec());
    }
    file.meta
        .put(TRANSFER_SYNTAX, VR::UI, EXPLICIT_LITTLE.as_bytes().to_vec());
    file.syntax = Syntax::ExplicitLittle;
    Ok(())
}

/// dicom-rs's view of one frame of our file: a single-frame image of one fragment.
pub struct View<'a> {
    uid: &'a str,
    geometry: Geometry,
    stored: u16,
    photometric: &'a str,
    data: &'a [u8],
}

impl PixelDataObject for View<'_> {
    fn transfer_syntax_uid(&self) -> &str {
        self.uid
    }
    fn rows(&self) -> Option<u16> {
        u16::try_from(self.geometry.rows).ok()
    }
    fn cols(&self) -> Option<u16> {
        u16::try_from(self.geometry.cols).ok()
    }
    fn samples_per_pixel(&self) -> Option<u16> {
        u16::try_from(self.geometry.samples).ok()
    }
    fn bits_allocated(&self) -> Option<u16> {
        u16::try_from(self.geometry.bytes * 8).ok()
    }
    fn bits_stored(&self) -> Option<u16> {
        Some(self.stored)
    }
    fn photometric_interpretation(&self) -> Option<&str> {
        Some(self.photometric)
    }
    fn number_of_frames(&self) -> Option<u32> {
        Some(1)
    }
    fn number_of_fragments(&self) -> Option<u32> {
        Some(1)
    }
    fn fragment(&self, fragment: usize) -> Option<Cow<'_, [u8]>> {
        (fragment == 0).then_some(Cow::Borrowed(self.data))
    }
    fn offset_table(&self) -> Option<Cow<'_, [u32]>> {
        Some(Cow::Owned(vec![0]))
    }
    fn raw_pixel_data(&self) -> Option<RawPixelData> {
        Some(RawPixelData {
            fragments: std::iter::once(self.data.to_vec()).collect(),
            offset_table: std::iter::once(0).collect(),
        })
    }
}
