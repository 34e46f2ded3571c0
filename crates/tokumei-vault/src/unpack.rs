//! Reading a decrypted package (a tar stream) as hostile input.
//!
//! Anyone holding the operator's public receiving key can make a package, so nothing of its content
//! is trusted before the provider's signature is checked, and nothing is buffered before then but
//! the manifest and its signature (each bounded by [`Limits::meta`]). The stream must begin with
//! `manifest.json` and `manifest.sig`; the caller checks the signature between the two steps
//! ([`PackageReader::manifest`] then [`PackageReader::files`]). After it, each entry must be a plain
//! file the signed manifest lists, named once, of the size the manifest states, within the limits
//! per file and per package; its bytes are hashed as they are read and compared with the manifest
//! at once. Entries of any other type (GNU sparse files, links, devices, folders, PAX extension
//! headers) are refused before their bodies are read; a GNU long name (a path over 100 bytes) is
//! read within [`MAX_PATH`]. Tar entries are read raw: the tar library never expands a sparse map
//! or buffers an extension header.

use std::collections::HashMap;
use std::io::Read;

use sha2::{Digest, Sha256};

use crate::package::{Manifest, MANIFEST_FORMAT};

/// Limits on what a package may hold, enforced while it streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest manifest or signature (bytes).
    pub meta: u64,
    /// Most files in a package.
    pub files: usize,
    /// Largest file (bytes).
    pub file: u64,
    /// Largest sum of the files of one package (bytes).
    pub package: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            meta: 16 << 20,
            files: 100_000,
            file: 4 << 30,
            package: 8 << 30,
        }
    }
}

/// Longest path of a file in a package (bytes).
pub const MAX_PATH: usize = 1024;

/// Why a package stream was refused (the message names no identifying value: file paths are the
/// provider's file names, checked for control characters first).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

fn refused(msg: impl Into<String>) -> Refused {
    Refused(msg.into())
}

/// The manifest as read, before its signature is checked.
pub struct Meta {
    /// The manifest's bytes (what the signature covers).
    pub bytes: Vec<u8>,
    /// The signature (hex text).
    pub signature: String,
    /// The manifest, parsed and checked against the grammar and the limits.
    pub manifest: Manifest,
}

/// What the caller decided once it saw the manifest (and checked its signature).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Read the files.
    Files,
    /// Read nothing more into memory (the stream is still read to its end, for its hash).
    Skip,
}

/// A package as read: the manifest and, unless skipped, its files (path, bytes) in manifest order.
pub struct Unpacked {
    /// The manifest.
    pub meta: Meta,
    /// The files, unless the caller skipped them.
    pub files: Option<Vec<(String, Vec<u8>)>>,
}

/// Reads a decrypted package stream: the manifest first, handed to `decide` (which checks the
/// signature and may refuse), then every file the manifest lists, then the rest of the stream (so
/// that a cut or altered end of the encryption is detected).
pub fn read<R: Read, E: From<Refused>>(
    reader: R,
    limits: Limits,
    decide: &mut dyn FnMut(&Meta) -> Result<Next, E>,
) -> Result<Unpacked, E> {
    let mut archive = tar::Archive::new(reader);
    let unpacked = {
        let mut entries = archive.entries().map_err(|e| damaged(&e))?.raw(true);
        let meta = read_meta_pair(&mut entries, &limits)?;
        let files = match decide(&meta)? {
            Next::Files => Some(read_files(&mut entries, &meta.manifest)?),
            Next::Skip => None,
        };
        Unpacked { meta, files }
    };
    let mut inner = archive.into_inner();
    std::io::copy(&mut inner, &mut std::io::sink()).map_err(|e| damaged(&e))?;
    Ok(unpacked)
}

/// Reads the first two entries, `manifest.json` and `manifest.sig`, and checks the manifest.
fn read_meta_pair<R: Read>(
    entries: &mut tar::Entries<'_, R>,
    limits: &Limits,
) -> Result<Meta, Refused> {
    let bytes = read_meta(entries, "manifest.json", limits.meta)?;
    let signature = read_meta(entries, "manifest.sig", limits.meta)?;
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|_| refused("the manifest is not readable"))?;
    check_manifest(&manifest, limits)?;
    Ok(Meta {
        bytes,
        signature: String::from_utf8_lossy(&signature).into_owned(),
        manifest,
    })
}

/// Reads every file the (signed) manifest lists, in any order, each checked against its size and
/// SHA-256 as it is read; anything else in the stream is refused.
fn read_files<R: Read>(
    entries: &mut tar::Entries<'_, R>,
    manifest: &Manifest,
) -> Result<Vec<(String, Vec<u8>)>, Refused> {
    let index: HashMap<&str, usize> = manifest
        .files
        .iter()
        .enumerate()
        .map(|(i, f)| (f.path.as_str(), i))
        .collect();
    let mut out: Vec<Option<Vec<u8>>> = vec![None; manifest.files.len()];
    while let Some((mut entry, name)) = next_file(entries)? {
        let Some(&i) = name.strip_prefix("files/").and_then(|p| index.get(p)) else {
            return Err(refused(
                "the package holds an entry its manifest does not list",
            ));
        };
        let f = &manifest.files[i];
        if out[i].is_some() {
            return Err(refused(format!(
                "file {} appears twice in the package",
                f.path
            )));
        }
        if entry.size() != f.bytes {
            return Err(refused(format!(
                "file {} does not have the size its manifest states",
                f.path
            )));
        }
        let mut data = Vec::with_capacity(f.bytes as usize);
        (&mut entry)
            .take(f.bytes + 1)
            .read_to_end(&mut data)
            .map_err(|e| damaged(&e))?;
        if data.len() as u64 != f.bytes || hex::encode(Sha256::digest(&data)) != f.sha256 {
            return Err(refused(format!(
                "file {} does not match its SHA-256 in the manifest",
                f.path
            )));
        }
        out[i] = Some(data);
    }
    manifest
        .files
        .iter()
        .zip(out)
        .map(|(f, d)| match d {
            Some(d) => Ok((f.path.clone(), d)),
            None => Err(refused(format!(
                "file {} of the manifest is missing",
                f.path
            ))),
        })
        .collect()
}

fn damaged(e: &std::io::Error) -> Refused {
    // The tar library's messages name offsets and header fields only.
    refused(format!("the package is damaged: {e}"))
}

/// Refuses every entry that is not a plain file, before its body is read.
fn plain_file<R: Read>(entry: &tar::Entry<'_, R>) -> Result<(), Refused> {
    let kind = entry.header().entry_type();
    if kind.is_file() {
        return Ok(());
    }
    let what = if kind.is_gnu_sparse() {
        "a sparse file"
    } else if kind.is_symlink() || kind.is_hard_link() {
        "a link"
    } else if kind.is_dir() {
        "a folder"
    } else if kind.is_gnu_longname()
        || kind.is_gnu_longlink()
        || kind.is_pax_local_extensions()
        || kind.is_pax_global_extensions()
    {
        "an extension header"
    } else {
        "an entry that is not a plain file"
    };
    Err(refused(format!(
        "the package holds {what}; only plain files are accepted"
    )))
}

/// The next plain file of the stream with its name, or `None` at its end. A GNU long-name entry
/// (what a tar writer emits for a path over 100 bytes) is read, bounded by [`MAX_PATH`], and names
/// the entry after it; every other kind of entry is refused at its header.
fn next_file<'a, R: Read>(
    entries: &mut tar::Entries<'a, R>,
) -> Result<Option<(tar::Entry<'a, R>, String)>, Refused> {
    let mut long_name: Option<String> = None;
    for entry in entries {
        let mut entry = entry.map_err(|e| damaged(&e))?;
        if entry.header().entry_type().is_gnu_longname() {
            if long_name.is_some() || entry.size() > MAX_PATH as u64 + 1 {
                return Err(refused("the package holds a malformed long name"));
            }
            let mut buf = Vec::with_capacity(entry.size() as usize);
            (&mut entry)
                .take(MAX_PATH as u64 + 1)
                .read_to_end(&mut buf)
                .map_err(|e| damaged(&e))?;
            while buf.last() == Some(&0) {
                buf.pop();
            }
            let name = String::from_utf8(buf).map_err(|_| refused("an entry name is not UTF-8"))?;
            long_name = Some(name);
            continue;
        }
        plain_file(&entry)?;
        let name = match long_name.take() {
            Some(n) => n,
            None => entry_name(&entry)?,
        };
        return Ok(Some((entry, name)));
    }
    if long_name.is_some() {
        return Err(refused(
            "the package ends with a long name that names no file",
        ));
    }
    Ok(None)
}

fn entry_name<R: Read>(entry: &tar::Entry<'_, R>) -> Result<String, Refused> {
    let bytes = entry.path_bytes();
    let name = std::str::from_utf8(&bytes).map_err(|_| refused("an entry name is not UTF-8"))?;
    Ok(name.to_string())
}

fn read_meta<R: Read>(
    entries: &mut tar::Entries<'_, R>,
    name: &str,
    limit: u64,
) -> Result<Vec<u8>, Refused> {
    let order = || refused("the package must begin with manifest.json and manifest.sig");
    let (mut entry, found) = next_file(entries)?.ok_or_else(order)?;
    if found != name {
        return Err(order());
    }
    if entry.size() > limit {
        return Err(refused(format!("{name} is larger than {limit} bytes")));
    }
    let mut buf = Vec::with_capacity(entry.size() as usize);
    (&mut entry)
        .take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| damaged(&e))?;
    if buf.len() as u64 > limit {
        return Err(refused(format!("{name} is larger than {limit} bytes")));
    }
    Ok(buf)
}

/// Extracts a sealed archive that carries no manifest (a release as its recipient opens it) into
/// `out`, as hostile input: plain files only, each named once by a valid path, within the limits
/// per file, per archive and in number. Returns each file's path and size, in archive order.
pub fn extract_plain<R: Read>(
    stream: R,
    out: &std::path::Path,
    limits: &Limits,
) -> Result<Vec<(String, u64)>, Refused> {
    let mut archive = tar::Archive::new(stream);
    let mut entries = archive.entries().map_err(|e| damaged(&e))?;
    let mut seen = std::collections::HashSet::new();
    let (mut files, mut total) = (Vec::new(), 0u64);
    while let Some((mut entry, name)) = next_file(&mut entries)? {
        if !valid_file_path(&name) || !seen.insert(name.clone()) {
            return Err(refused(
                "the archive names a file twice or by an unsafe path",
            ));
        }
        let size = entry.size();
        total = total.saturating_add(size);
        if size > limits.file || total > limits.package || files.len() >= limits.files {
            return Err(refused("the archive is larger than the limits allow"));
        }
        let path = out.join(&name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| damaged(&e))?;
        }
        let mut f = std::fs::File::create(&path).map_err(|e| damaged(&e))?;
        let copied =
            std::io::copy(&mut (&mut entry).take(size), &mut f).map_err(|e| damaged(&e))?;
        if copied != size {
            return Err(refused("the archive ends inside a file"));
        }
        files.push((name, size));
    }
    Ok(files)
}

/// Whether a path of a package file is one the operator can name safely: relative, `/`-separated
/// components that are not empty, `.` or `..`, no control character or backslash, at most
/// [`MAX_PATH`] bytes.
pub fn valid_file_path(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= MAX_PATH
        && !p.chars().any(|c| c.is_control() || c == '\\')
        && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

fn check_manifest(m: &Manifest, limits: &Limits) -> Result<(), Refused> {
    if m.format != MANIFEST_FORMAT {
        return Err(refused("unknown manifest format"));
    }
    use tokumei_model::ids::{check, IdKind};
    check(IdKind::Package, &m.package_id).map_err(|e| refused(e.to_string()))?;
    check(IdKind::Provider, &m.provider_id).map_err(|e| refused(e.to_string()))?;
    if m.files.len() > limits.files {
        return Err(refused(format!(
            "the manifest lists more than {} files",
            limits.files
        )));
    }
    let mut seen = std::collections::HashSet::with_capacity(m.files.len());
    let mut total = 0u64;
    for f in &m.files {
        if !valid_file_path(&f.path) {
            return Err(refused("the manifest names a file by an unsafe path"));
        }
        if !seen.insert(f.path.as_str()) {
            return Err(refused(format!("the manifest lists {} twice", f.path)));
        }
        if f.bytes > limits.file {
            return Err(refused(format!(
                "file {} is larger than the limit of {} bytes",
                f.path, limits.file
            )));
        }
        total = total.saturating_add(f.bytes);
        if f.sha256.len() != 64 || !f.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(refused(format!("file {} has no valid SHA-256", f.path)));
        }
    }
    if total > limits.package {
        return Err(refused(format!(
            "the package's files add up to more than the limit of {} bytes",
            limits.package
        )));
    }
    Ok(())
}
