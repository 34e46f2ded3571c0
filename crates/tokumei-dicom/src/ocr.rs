//! Burned-in text: every frame of the pixel data (compressed pixel data decoded by
//! [`crate::codec`]) as 8-bit grey, searched for text by Tesseract (Debian's `tesseract-ocr`
//! with `tesseract-ocr-jpn`, run as a program with a time limit per frame), frame after frame
//! until one holds text. An image of more than [`MAX_OCR_FRAMES`] frames (or the bound set in
//! [`Ocr::max_frames`]) is not searched and is refused, so that the caller withholds it. Text drawn into pixels (for test images and the synthetic region's, with the
//! `font8x8` bitmap font). What Tesseract reads is never returned or logged (it may be a name):
//! only how many characters it found.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dicom_core::Tag;
use font8x8::UnicodeFonts;

use crate::codec::{decode, encapsulated};
use crate::model::{u16_in, DicomFile, Syntax, Value};
use crate::pixel::PixelError;
// The geometry of a frame to render: the pixel cleaner's shape.
use crate::pixel::Shape as Geometry;

/// The most frames of one image that OCR reads (a longer cine loop is withheld).
pub const MAX_OCR_FRAMES: usize = 32;

/// How text is looked for.
#[derive(Debug, Clone)]
pub struct Ocr {
    /// The Tesseract program.
    pub program: PathBuf,
    /// Languages (`jpn+eng`).
    pub languages: String,
    /// Modalities whose images are searched (US, SC, XA ... where text is burned in).
    pub modalities: Vec<String>,
    /// Time limit per frame.
    pub limit: Duration,
    /// The most frames of an image that are read; an image of more is refused.
    pub max_frames: usize,
    /// Folder for the image handed to Tesseract (removed after).
    pub scratch: PathBuf,
}

impl Ocr {
    /// Tesseract from the path, Japanese and English, for the modalities given.
    pub fn new(modalities: &[&str], scratch: &Path) -> Ocr {
        Ocr {
            program: PathBuf::from("tesseract"),
            languages: "jpn+eng".into(),
            modalities: modalities.iter().map(|m| m.to_string()).collect(),
            limit: Duration::from_secs(30),
            max_frames: MAX_OCR_FRAMES,
            scratch: scratch.to_path_buf(),
        }
    }

    /// Whether an image of this file is to be searched.
    pub fn applies(&self, file: &DicomFile) -> bool {
        let modality = file
            .body
            .text_ascii(Tag(0x0008, 0x0060))
            .unwrap_or_default();
        self.modalities.contains(&modality)
    }

    /// How many letters and digits Tesseract reads in words of three or more, frame after
    /// frame until a frame holds some (the image is withheld then, the other frames need not be
    /// read).
    pub fn characters(&self, file: &DicomFile, name: &str) -> Result<usize, PixelError> {
        let image = Image::of(file, self.max_frames, false)?;
        for f in 0..image.frames {
            let found = self.frame_characters(&image, f, name)?;
            if found > 0 {
                return Ok(found);
            }
        }
        Ok(0)
    }

    fn frame_characters(&self, image: &Image, f: usize, name: &str) -> Result<usize, PixelError> {
        let (w, h) = (image.geometry.cols, image.geometry.rows);
        let path = self.scratch.join(format!("{name}.pgm"));
        let mut pgm = format!("P5\n{w} {h}\n255\n").into_bytes();
        pgm.extend_from_slice(&image.grey(f));
        let run = |e: std::io::Error| PixelError::Unclean(format!("OCR: {e}"));
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(&pgm))
            .map_err(run)?;
        let out = self.tesseract(&path);
        let _ = std::fs::remove_file(&path);
        let text = out?;
        Ok(text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.chars().count() >= 3)
            .map(|w| w.chars().count())
            .sum())
    }

    fn tesseract(&self, image: &Path) -> Result<String, PixelError> {
        let fail = |why: String| PixelError::Unclean(format!("OCR: {why}"));
        let mut child = Command::new(&self.program)
            .arg(image)
            .arg("stdout")
            .args(["-l", &self.languages, "--psm", "11"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| fail(format!("{} cannot run: {e}", self.program.display())))?;
        let start = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if start.elapsed() > self.limit => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(fail("over its time limit".into()));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => return Err(fail(e.to_string())),
            }
        }
        let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
        if !out.status.success() {
            return Err(fail("it failed on the image".into()));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

fn geometry(file: &DicomFile) -> Result<Geometry, PixelError> {
    let g = crate::codec::geometry(file)?;
    Ok(Geometry {
        rows: g.rows,
        cols: g.cols,
        samples: g.samples,
        bytes: g.bytes,
        planar: crate::pixel::number(file, Tag(0x0028, 0x0006)).unwrap_or(0) == 1,
    })
}

/// An image's frames ready to render: native pixel data as the file holds it, or decoded.
struct Image<'a> {
    geometry: Geometry,
    data: std::borrow::Cow<'a, [u8]>,
    big_endian: bool,
    frames: usize,
}

impl<'a> Image<'a> {
    /// The image's frames (only its first when `first_only`); refused when there are more than
    /// `max_frames`.
    fn of(
        file: &'a DicomFile,
        max_frames: usize,
        first_only: bool,
    ) -> Result<Image<'a>, PixelError> {
        let mut g = geometry(file)?;
        let frames = crate::pixel::number(file, Tag(0x0028, 0x0008))
            .unwrap_or(1)
            .max(1);
        if frames > max_frames && !first_only {
            return Err(PixelError::Unclean(format!(
                "{frames} frames: OCR reads at most {max_frames} frames of an image"
            )));
        }
        let frames = if first_only { 1 } else { frames };
        if encapsulated(file) {
            let decoded = decode(file, Some(frames))?;
            g.planar = false;
            return Ok(Image {
                geometry: g,
                frames: decoded.frames,
                data: std::borrow::Cow::Owned(decoded.data),
                big_endian: false,
            });
        }
        let data = match file.body.get(Tag(0x7fe0, 0x0010)).map(|e| &e.value) {
            Some(Value::Bytes(b)) => b,
            _ => return Err(PixelError::Unclean("no pixel data".into())),
        };
        let frame = crate::codec::Geometry {
            rows: g.rows,
            cols: g.cols,
            samples: g.samples,
            bytes: g.bytes,
            frames,
        }
        .frame_len()
        .ok_or_else(|| PixelError::Unclean("absurd dimensions".into()))?;
        if frame.checked_mul(frames).is_none_or(|n| n > data.len()) {
            return Err(PixelError::Unclean(
                "pixel data shorter than its frames".into(),
            ));
        }
        Ok(Image {
            geometry: g,
            data: std::borrow::Cow::Borrowed(data),
            big_endian: file.syntax == Syntax::ExplicitBig,
            frames,
        })
    }

    /// Frame `f` as 8-bit grey (its first sample), stretched between its minimum and maximum.
    fn grey(&self, f: usize) -> Vec<u8> {
        let g = &self.geometry;
        let count = g.rows * g.cols;
        let data = &self.data[f * count * g.samples * g.bytes..];
        let syntax = if self.big_endian {
            Syntax::ExplicitBig
        } else {
            Syntax::ExplicitLittle
        };
        let value = |i: usize| -> u32 {
            let at = if g.planar {
                i * g.bytes
            } else {
                i * g.samples * g.bytes
            };
            if g.bytes == 1 {
                u32::from(data[at])
            } else {
                u32::from(u16_in(&data[at..], syntax))
            }
        };
        let (lo, hi) = (0..count)
            .map(value)
            .fold((u32::MAX, 0), |(l, h), v| (l.min(v), h.max(v)));
        let span = hi.saturating_sub(lo).max(1);
        (0..count)
            .map(|i| ((value(i) - lo) * 255 / span) as u8)
            .collect()
    }
}

/// The first frame as 8-bit grey (the first sample), stretched between its minimum and maximum;
/// compressed pixel data is decoded.
pub fn grey8(file: &DicomFile) -> Result<(usize, usize, Vec<u8>), PixelError> {
    let image = Image::of(file, 1, true)?;
    Ok((image.geometry.cols, image.geometry.rows, image.grey(0)))
}

/// Draws text (ASCII) into the first sample of every frame at (x, y), each glyph 8 × 8 pixels
/// scaled by `scale`, in the largest value the pixels hold.
pub fn draw_text(
    file: &mut DicomFile,
    x: usize,
    y: usize,
    scale: usize,
    text: &str,
) -> Result<(), PixelError> {
    let g = geometry(file)?;
    let frames = crate::pixel::number(file, Tag(0x0028, 0x0008))
        .unwrap_or(1)
        .max(1);
    let frame = g
        .rows
        .checked_mul(g.cols)
        .and_then(|n| n.checked_mul(g.samples * g.bytes))
        .ok_or_else(|| PixelError::Unclean("absurd dimensions".into()))?;
    let data = match file
        .body
        .elements
        .iter_mut()
        .find(|e| e.tag == Tag(0x7fe0, 0x0010))
    {
        Some(e) => match &mut e.value {
            Value::Bytes(b) if frame.checked_mul(frames).is_some_and(|n| b.len() >= n) => b,
            _ => {
                return Err(PixelError::Unclean(
                    "no native pixel data of its frames".into(),
                ))
            }
        },
        None => return Err(PixelError::Unclean("no pixel data".into())),
    };
    for (n, c) in text.chars().enumerate() {
        let glyph = font8x8::BASIC_FONTS.get(c).unwrap_or([0; 8]);
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                if bits >> col & 1 == 0 {
                    continue;
                }
                for dy in 0..scale {
                    for dx in 0..scale {
                        let px = x + (n * 8 + col) * scale + dx;
                        let py = y + row * scale + dy;
                        if px >= g.cols || py >= g.rows {
                            continue;
                        }
                        for f in 0..frames {
                            let i = py * g.cols + px;
                            let at = f * frame
                                + if g.planar {
                                    i * g.bytes
                                } else {
                                    i * g.samples * g.bytes
                                };
                            data[at..at + g.bytes].fill(0xff);
                        }
                    }
                }
            }
        }
    }
    Ok(())
}
