//! DICOM for the platform: files read from hostile bytes without trusting a length
//! ([`read::parse`]), their Japanese text decoded and encoded under ISO 2022 code extensions
//! ([`charset`]), and written back byte for byte where nothing changed ([`write::to_bytes`]).
//! De-identification under PS3.15 Annex E ([`deid`], with the table and options of [`profile`])
//! and the check of its output ([`check`]). Compressed pixel data decoded by dicom-rs's codecs
//! ([`codec`]) for pixel cleaning ([`pixel`]) and the search for burned-in text ([`ocr`]); a
//! folder de-identified with its DICOMDIR rebuilt ([`batch`], [`dicomdir`]). Files built from
//! scratch ([`build`]). The dictionary of tags and value representations is
//! dicom-rs's (`dicom-dictionary-std`).

pub mod batch;
pub mod build;
pub mod charset;
pub mod check;
pub mod codec;
pub mod deid;
pub mod dicomdir;
pub mod model;
pub mod ocr;
pub mod pixel;
pub mod profile;
pub mod read;
pub mod summary;
pub mod write;

pub use model::{DataSet, DicomFile, Element, Syntax, Value};
pub use read::{parse, Limits};

/// Why a file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum DicomError {
    /// No `DICM` prefix where PS3.10 puts it.
    #[error("not a DICOM file (no DICM prefix)")]
    NotDicom,
    /// Larger than the reader's bound.
    #[error("{0} bytes: over the reader's bound")]
    TooLarge(u64),
    /// A transfer syntax the reader does not know.
    #[error("transfer syntax {0} is not supported")]
    Syntax(String),
    /// A deflated data set that does not inflate.
    #[error("deflated data set: {0}")]
    Deflate(String),
    /// The structure is broken: a length past its container, a missing delimiter, too deep.
    #[error("malformed at byte {at}, element {tag}: {why}")]
    Malformed {
        /// Byte offset in the file (in the inflated data set for a deflated file).
        at: u64,
        /// The element being read.
        tag: String,
        /// What is wrong.
        why: String,
    },
    /// A value too long for its VR's length field, or another value that cannot be written.
    #[error("cannot write element {tag}: {why}")]
    Unwritable {
        /// The element.
        tag: String,
        /// Why.
        why: String,
    },
}
