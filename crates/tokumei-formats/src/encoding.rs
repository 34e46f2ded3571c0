//! Encoding detection: tell Shift_JIS, UTF-8 and ISO-2022-JP apart before decoding, so that a file in
//! an unexpected encoding is reported rather than turned into mojibake.

use encoding_rs::SHIFT_JIS;

/// The encoding a file appears to be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detected {
    /// Only ASCII bytes: readable as any of the others.
    Ascii,
    /// Valid UTF-8 with non-ASCII characters.
    Utf8,
    /// Shift_JIS (decoded as Windows-31J / CP932).
    ShiftJis,
    /// ISO-2022-JP (escape sequences, 7-bit).
    Iso2022Jp,
    /// None of the above decodes cleanly.
    Unknown,
}

impl Detected {
    /// Name for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Detected::Ascii => "ASCII",
            Detected::Utf8 => "UTF-8",
            Detected::ShiftJis => "Shift_JIS",
            Detected::Iso2022Jp => "ISO-2022-JP",
            Detected::Unknown => "unknown",
        }
    }
}

fn has_iso2022_escape(bytes: &[u8]) -> bool {
    memchr::memchr_iter(0x1b, bytes).any(|i| {
        matches!(
            bytes.get(i + 1..i + 3),
            Some(b"$B") | Some(b"$@") | Some(b"(J")
        )
    })
}

/// Detects the encoding of a whole file.
pub fn detect(bytes: &[u8]) -> Detected {
    if has_iso2022_escape(bytes) {
        return Detected::Iso2022Jp;
    }
    if bytes.is_ascii() {
        return Detected::Ascii;
    }
    if std::str::from_utf8(bytes).is_ok() {
        return Detected::Utf8;
    }
    if SHIFT_JIS
        .decode_without_bom_handling_and_without_replacement(bytes)
        .is_some()
    {
        return Detected::ShiftJis;
    }
    // A Shift_JIS file with some undecodable lines is still Shift_JIS; a UTF-8 file with one broken
    // byte is not. Decide by which decoder fails on fewer lines.
    let mut sjis_bad = 0usize;
    let mut utf8_bad = 0usize;
    for line in bytes.split(|&b| b == b'\n') {
        if std::str::from_utf8(line).is_err() {
            utf8_bad += 1;
        }
        if SHIFT_JIS
            .decode_without_bom_handling_and_without_replacement(line)
            .is_none()
        {
            sjis_bad += 1;
        }
    }
    if sjis_bad < utf8_bad {
        Detected::ShiftJis
    } else {
        Detected::Unknown
    }
}

/// A cheap first look for line-oriented readers: ISO-2022-JP escapes, ASCII, valid UTF-8, or else
/// presumed Shift_JIS (each line is then decoded and checked on its own).
pub fn quick(bytes: &[u8]) -> Detected {
    if has_iso2022_escape(bytes) {
        Detected::Iso2022Jp
    } else if bytes.is_ascii() {
        Detected::Ascii
    } else if std::str::from_utf8(bytes).is_ok() {
        Detected::Utf8
    } else {
        Detected::ShiftJis
    }
}

/// Decodes one line of Shift_JIS without replacement; `None` if any byte sequence is invalid.
pub fn decode_sjis_line(line: &[u8]) -> Option<std::borrow::Cow<'_, str>> {
    SHIFT_JIS.decode_without_bom_handling_and_without_replacement(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_encodings_apart() {
        let (sjis, _, _) = SHIFT_JIS.encode("試験　花子");
        assert_eq!(detect(&sjis), Detected::ShiftJis);
        assert_eq!(detect("試験　花子".as_bytes()), Detected::Utf8);
        assert_eq!(detect(b"IR,1,13"), Detected::Ascii);
        assert_eq!(detect(b"\x1b$B;n83\x1b(B"), Detected::Iso2022Jp);
        assert_eq!(detect(&[0xff, 0xff, 0xfe]), Detected::Unknown);
    }
}
