//! Pixel cleaning by rules keyed on the device's signature, in the script format of RSNA CTP's
//! DicomPixelAnonymizer: a signature in braces, conditions on elements joined by `*` (and), `+`
//! (or) and `!` (not), then the regions to blank as `(left,top,width,height)`:
//!
//! ```text
//! # Toshiba CT, 512 wide: the two bands with the patient's name and the date.
//! { [0008,0070].containsIgnoreCase("TOSHIBA") * [0028,0011].equals("512") }
//!   (0,0,512,40) (0,472,512,40)
//! ```
//!
//! Conditions name an element by tag (`[0008,0070]`) or keyword (`[Manufacturer]`) and test its
//! value with `equals`, `contains`, `startsWith`, `endsWith` (each also `…IgnoreCase`) or
//! `isBlank()`. Regions are blanked (set to zero) in every frame and sample. Compressed pixel
//! data is decoded by [`crate::codec`] and written back native (Explicit VR Little Endian); a
//! compressed syntax without a codec here, or an image over the decoding bound, is refused, so
//! that the caller withholds the image.

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;

use crate::model::{u16_in, u32_in, DataSet, DicomFile, Syntax, Value};

/// Why a script or a cleaning failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PixelError {
    /// The script does not parse.
    #[error("pixel script, line {line}: {why}")]
    Script {
        /// The line.
        line: usize,
        /// What is wrong.
        why: String,
    },
    /// The image cannot be cleaned here.
    #[error("pixel data cannot be cleaned: {0}")]
    Unclean(String),
}

/// A region to blank: left, top, width, height in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub w: u32,
    /// Height.
    pub h: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Cond {
    Test {
        tag: Tag,
        method: String,
        value: String,
    },
    Not(Box<Cond>),
    And(Vec<Cond>),
    Or(Vec<Cond>),
}

/// One rule: a device signature and its regions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    signature: Cond,
    /// The regions to blank.
    pub regions: Vec<Region>,
}

/// Parses a script.
pub fn parse_script(text: &str) -> Result<Vec<Rule>, PixelError> {
    let clean: String = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with('#') {
                ""
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut p = Parser {
        s: clean.as_bytes(),
        at: 0,
    };
    let mut rules = Vec::new();
    p.skip();
    while p.at < p.s.len() {
        p.expect(b'{')?;
        let signature = p.or()?;
        p.expect(b'}')?;
        let mut regions = Vec::new();
        p.skip();
        while p.peek() == Some(b'(') {
            regions.push(p.region()?);
            p.skip();
        }
        rules.push(Rule { signature, regions });
    }
    Ok(rules)
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn fail(&self, why: &str) -> PixelError {
        let line = 1 + self.s[..self.at.min(self.s.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        PixelError::Script {
            line,
            why: why.to_string(),
        }
    }

    fn skip(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn expect(&mut self, b: u8) -> Result<(), PixelError> {
        self.skip();
        if self.peek() != Some(b) {
            return Err(self.fail(&format!("`{}` expected", b as char)));
        }
        self.at += 1;
        Ok(())
    }

    fn until(&mut self, end: u8) -> Result<String, PixelError> {
        let start = self.at;
        while self.peek().is_some_and(|b| b != end) {
            self.at += 1;
        }
        if self.peek() != Some(end) {
            return Err(self.fail(&format!("`{}` expected", end as char)));
        }
        let s = String::from_utf8_lossy(&self.s[start..self.at]).into_owned();
        self.at += 1;
        Ok(s)
    }

    fn or(&mut self) -> Result<Cond, PixelError> {
        let mut parts = vec![self.and()?];
        loop {
            self.skip();
            if self.peek() != Some(b'+') {
                break;
            }
            self.at += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Cond::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Cond, PixelError> {
        let mut parts = vec![self.unary()?];
        loop {
            self.skip();
            if self.peek() != Some(b'*') {
                break;
            }
            self.at += 1;
            parts.push(self.unary()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Cond::And(parts)
        })
    }

    fn unary(&mut self) -> Result<Cond, PixelError> {
        self.skip();
        match self.peek() {
            Some(b'!') => {
                self.at += 1;
                Ok(Cond::Not(Box::new(self.unary()?)))
            }
            Some(b'(') => {
                self.at += 1;
                let c = self.or()?;
                self.expect(b')')?;
                Ok(c)
            }
            Some(b'[') => self.test(),
            _ => Err(self.fail("a condition expected")),
        }
    }

    fn test(&mut self) -> Result<Cond, PixelError> {
        self.at += 1;
        let name = self.until(b']')?;
        let tag = tag_of(name.trim()).ok_or_else(|| self.fail("an unknown element"))?;
        self.expect(b'.')?;
        let method = self.until(b'(')?.trim().to_string();
        self.skip();
        let value = if self.peek() == Some(b'"') {
            self.at += 1;
            self.until(b'"')?
        } else {
            String::new()
        };
        self.expect(b')')?;
        const METHODS: &[&str] = &[
            "equals",
            "equalsIgnoreCase",
            "contains",
            "containsIgnoreCase",
            "startsWith",
            "startsWithIgnoreCase",
            "endsWith",
            "endsWithIgnoreCase",
            "isBlank",
        ];
        if !METHODS.contains(&method.as_str()) {
            return Err(self.fail("an unknown method"));
        }
        Ok(Cond::Test { tag, method, value })
    }

    fn region(&mut self) -> Result<Region, PixelError> {
        self.at += 1;
        let inner = self.until(b')')?;
        let n: Vec<u32> = inner
            .split(',')
            .map(|v| v.trim().parse::<u32>())
            .collect::<Result<_, _>>()
            .map_err(|_| self.fail("a region is four whole numbers"))?;
        let [x, y, w, h] = n[..] else {
            return Err(self.fail("a region is four whole numbers"));
        };
        Ok(Region { x, y, w, h })
    }
}

/// A tag from `gggg,eeee` or a keyword.
fn tag_of(name: &str) -> Option<Tag> {
    if let Some((g, e)) = name.split_once(',') {
        let g = u16::from_str_radix(g.trim(), 16).ok()?;
        let e = u16::from_str_radix(e.trim(), 16).ok()?;
        return Some(Tag(g, e));
    }
    StandardDataDictionary
        .by_name(name)
        .map(|e| e.tag_range().inner())
}

impl Cond {
    fn holds(&self, set: &DataSet, syntax: Syntax) -> bool {
        match self {
            Cond::Not(c) => !c.holds(set, syntax),
            Cond::And(cs) => cs.iter().all(|c| c.holds(set, syntax)),
            Cond::Or(cs) => cs.iter().any(|c| c.holds(set, syntax)),
            Cond::Test { tag, method, value } => {
                let v = value_text(set, *tag, syntax).unwrap_or_default();
                let (a, b) = if method.ends_with("IgnoreCase") {
                    (v.to_lowercase(), value.to_lowercase())
                } else {
                    (v, value.clone())
                };
                match method.trim_end_matches("IgnoreCase") {
                    "equals" => a == b,
                    "contains" => a.contains(&b),
                    "startsWith" => a.starts_with(&b),
                    "endsWith" => a.ends_with(&b),
                    _ => a.is_empty(),
                }
            }
        }
    }
}

/// An element's value as text: numbers (US, UL, SS, SL) as decimal, text trimmed.
fn value_text(set: &DataSet, tag: Tag, syntax: Syntax) -> Option<String> {
    let e = set.get(tag)?;
    let Value::Bytes(b) = &e.value else {
        return None;
    };
    Some(match e.vr {
        VR::US if b.len() >= 2 => u16_in(b, syntax).to_string(),
        VR::UL if b.len() >= 4 => u32_in(b, syntax).to_string(),
        _ => String::from_utf8_lossy(b)
            .trim_matches(['\0', ' '])
            .to_string(),
    })
}

/// The first rule whose signature the file matches.
pub fn matching<'a>(rules: &'a [Rule], file: &DicomFile) -> Option<&'a Rule> {
    rules
        .iter()
        .find(|r| r.signature.holds(&file.body, file.syntax))
}

pub(crate) fn number(file: &DicomFile, tag: Tag) -> Option<usize> {
    value_text(&file.body, tag, file.syntax)?
        .trim()
        .parse()
        .ok()
}

/// Blanks the regions in every frame and sample of the pixel data. Encapsulated (compressed)
/// pixel data is decoded first (see [`crate::codec`] for the syntaxes and bounds) and the file
/// is written back as native Explicit VR Little Endian; a syntax without a codec here is refused,
/// so that the caller withholds the image.
pub fn clean(file: &mut DicomFile, regions: &[Region]) -> Result<(), PixelError> {
    if crate::codec::encapsulated(file) {
        let mut decoded = crate::codec::decode(file, None)?;
        let g = decoded.geometry;
        let shape = Shape {
            rows: g.rows,
            cols: g.cols,
            samples: g.samples,
            bytes: g.bytes,
            planar: false,
        };
        blank(&mut decoded.data, &shape, g.frames, regions);
        return crate::codec::to_native(file, decoded);
    }
    let bad = |why: &str| PixelError::Unclean(why.to_string());
    let rows = number(file, Tag(0x0028, 0x0010)).ok_or_else(|| bad("no Rows"))?;
    let cols = number(file, Tag(0x0028, 0x0011)).ok_or_else(|| bad("no Columns"))?;
    let bits = number(file, Tag(0x0028, 0x0100)).ok_or_else(|| bad("no Bits Allocated"))?;
    let samples = number(file, Tag(0x0028, 0x0002)).unwrap_or(1);
    let planar = number(file, Tag(0x0028, 0x0006)).unwrap_or(0) == 1;
    let frames = number(file, Tag(0x0028, 0x0008)).unwrap_or(1).max(1);
    if bits % 8 != 0 || bits == 0 {
        return Err(bad("bit-packed pixels"));
    }
    let bytes = bits / 8;
    let frame = rows
        .checked_mul(cols)
        .and_then(|n| n.checked_mul(samples))
        .and_then(|n| n.checked_mul(bytes))
        .ok_or_else(|| bad("absurd dimensions"))?;
    let pixels = file
        .body
        .elements
        .iter_mut()
        .find(|e| e.tag == Tag(0x7fe0, 0x0010))
        .ok_or_else(|| bad("no pixel data"))?;
    let Value::Bytes(data) = &mut pixels.value else {
        return Err(bad("pixel data neither native nor encapsulated"));
    };
    if frame.checked_mul(frames).is_none_or(|n| n > data.len()) {
        return Err(bad("pixel data shorter than its frames"));
    }
    let shape = Shape {
        rows,
        cols,
        samples,
        bytes,
        planar,
    };
    blank(data, &shape, frames, regions);
    Ok(())
}

/// How the samples of a frame lie (also what OCR renders from).
pub(crate) struct Shape {
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) samples: usize,
    pub(crate) bytes: usize,
    pub(crate) planar: bool,
}

/// Sets the regions to zero in `frames` frames of `data` (which holds at least that many).
fn blank(data: &mut [u8], s: &Shape, frames: usize, regions: &[Region]) {
    let (rows, cols, samples, bytes) = (s.rows, s.cols, s.samples, s.bytes);
    let frame = rows * cols * samples * bytes;
    for f in 0..frames {
        let base = f * frame;
        for r in regions {
            let (x1, y1) = ((r.x as usize).min(cols), (r.y as usize).min(rows));
            let x2 = (r.x as usize).saturating_add(r.w as usize).min(cols);
            let y2 = (r.y as usize).saturating_add(r.h as usize).min(rows);
            for y in y1..y2 {
                for sample in 0..samples {
                    // Planar: each sample's plane in turn; interleaved: a pixel's samples together.
                    let (start, step) = if s.planar {
                        (
                            base + sample * rows * cols * bytes + (y * cols + x1) * bytes,
                            bytes,
                        )
                    } else {
                        (
                            base + ((y * cols + x1) * samples + sample) * bytes,
                            samples * bytes,
                        )
                    };
                    for i in 0..(x2 - x1) {
                        let at = start + i * step;
                        data[at..at + bytes].fill(0);
                    }
                }
            }
        }
    }
}
