//! The backup engine: Debian's `restic` (or the binary named by `TOKUMEI_RESTIC`), run as a child
//! process with the repository password in its environment only (never on a command line, never
//! in a file). Every call states what it reads back: restic's JSON for snapshots and summaries, its
//! exit status and the lines it printed for checks.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde::Deserialize;

use crate::BackupError;

/// Tag on every generation Tokumei writes.
pub const TAG: &str = "tokumei";
/// Host name written into every snapshot (the machine's own name stays out of the repository).
pub const HOST: &str = "tokumei";
/// What restic says when another process holds the repository's lock.
const LOCKED: &str = "repository is already locked";
/// The most of restic's output kept for an error message.
const KEEP_OUTPUT: usize = 4096;

/// A repository and how to reach it.
#[derive(Clone)]
pub struct Restic {
    /// `sftp:user@host:/path` or a folder.
    pub repo: String,
    /// The command restic runs for SFTP (`ssh … -s sftp`), when the repository is remote.
    pub sftp_command: Option<String>,
    /// Cache folder for the repository's metadata (encrypted files of the repository).
    pub cache: Option<PathBuf>,
    password: String,
}

impl std::fmt::Debug for Restic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Restic").field("repo", &self.repo).finish()
    }
}

impl Drop for Restic {
    fn drop(&mut self) {
        // Best effort: the password's bytes do not outlive the value.
        let mut bytes = std::mem::take(&mut self.password).into_bytes();
        bytes.fill(0);
    }
}

/// One snapshot as `restic snapshots --json` lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct Snapshot {
    /// Full id (hex).
    pub id: String,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Host written by the client.
    #[serde(default)]
    pub hostname: String,
}

/// What `restic backup --json` says at the end.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
pub struct Summary {
    /// Files new since the parent snapshot.
    #[serde(default)]
    pub files_new: u64,
    /// Files changed.
    #[serde(default)]
    pub files_changed: u64,
    /// Files unchanged.
    #[serde(default)]
    pub files_unmodified: u64,
    /// Bytes added to the repository (after deduplication, before compression).
    #[serde(default)]
    pub data_added: u64,
    /// Files in the generation.
    #[serde(default)]
    pub total_files_processed: u64,
    /// Bytes in the generation.
    #[serde(default)]
    pub total_bytes_processed: u64,
    /// Short id of the snapshot written.
    #[serde(default)]
    pub snapshot_id: String,
}

impl Restic {
    /// A repository opened with `password`.
    pub fn new(repo: &str, password: String) -> Restic {
        Restic {
            repo: repo.to_string(),
            sftp_command: None,
            cache: None,
            password,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let binary = std::env::var_os("TOKUMEI_RESTIC").unwrap_or_else(|| "restic".into());
        let mut c = Command::new(binary);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env(
                "HOME",
                std::env::var_os("HOME").unwrap_or_else(|| "/".into()),
            )
            .env("RESTIC_REPOSITORY", &self.repo)
            .env("RESTIC_PASSWORD", &self.password)
            .arg("--quiet");
        match &self.cache {
            Some(dir) => c.arg("--cache-dir").arg(dir),
            None => c.arg("--no-cache"),
        };
        if let Some(sftp) = &self.sftp_command {
            c.arg("-o").arg(format!("sftp.command={sftp}"));
        }
        c.args(args).stdin(Stdio::null());
        c
    }

    /// Runs restic until it is not refused for a lock, for at most `TOKUMEI_LOCK_WAIT` seconds
    /// (60): a run killed a moment ago may leave a lock whose process the system has not yet
    /// reaped; `unlock` removes it once it is stale.
    fn output(&self, args: &[&str], cwd: Option<&Path>) -> Result<Output, BackupError> {
        let wait = std::env::var("TOKUMEI_LOCK_WAIT")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(60);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(wait);
        loop {
            let mut c = self.command(args);
            if let Some(dir) = cwd {
                c.current_dir(dir);
            }
            let out = c
                .output()
                .map_err(|e| BackupError::Engine(format!("cannot run restic: {e}")))?;
            let locked = String::from_utf8_lossy(&out.stderr).contains(LOCKED);
            if out.status.success() || !locked || std::time::Instant::now() > deadline {
                return Ok(out);
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
            let _ = self.command(&["unlock"]).output();
        }
    }

    /// Runs restic; its standard output on success, or what it said on failure.
    fn run(&self, args: &[&str], cwd: Option<&Path>) -> Result<Vec<u8>, BackupError> {
        let out = self.output(args, cwd)?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        Err(BackupError::Engine(format!(
            "restic {} failed ({}): {}",
            args.first().copied().unwrap_or_default(),
            out.status,
            tail(&out.stderr)
        )))
    }

    /// Whether a repository is there and opens with the password.
    pub fn exists(&self) -> bool {
        self.run(&["cat", "config"], None).is_ok()
    }

    /// Creates the repository.
    pub fn init(&self) -> Result<(), BackupError> {
        self.run(&["init"], None).map(|_| ())
    }

    /// Removes locks left by processes that no longer run (a backup killed midway).
    pub fn unlock(&self) -> Result<(), BackupError> {
        self.run(&["unlock"], None).map(|_| ())
    }

    /// Backs up the folder `dir` (its content at the snapshot's root) under `tags`.
    pub fn backup(&self, dir: &Path, tags: &[String]) -> Result<Summary, BackupError> {
        let mut args = vec!["backup", "--json", "--host", HOST, "--ignore-ctime"];
        for t in tags {
            args.push("--tag");
            args.push(t);
        }
        args.push(".");
        let out = self.run(&args, Some(dir))?;
        out.split(|b| *b == b'\n')
            .filter_map(|line| serde_json::from_slice::<serde_json::Value>(line).ok())
            .filter(|v| v["message_type"] == "summary")
            .filter_map(|v| serde_json::from_value::<Summary>(v).ok())
            .next_back()
            .ok_or_else(|| BackupError::Engine("restic backup gave no summary".into()))
    }

    /// Every snapshot tagged [`TAG`].
    pub fn snapshots(&self) -> Result<Vec<Snapshot>, BackupError> {
        let out = self.run(&["snapshots", "--json", "--tag", TAG], None)?;
        serde_json::from_slice(&out)
            .map_err(|e| BackupError::Engine(format!("restic snapshots: unreadable list: {e}")))
    }

    /// Checks the repository's structure and, with `read_data`, reads and authenticates every
    /// chunk. A damaged repository gives [`BackupError::Damaged`] naming what restic found.
    pub fn check(&self, read_data: bool) -> Result<(), BackupError> {
        let mut args = vec!["check"];
        if read_data {
            args.push("--read-data");
        }
        let out = self.output(&args, None)?;
        if out.status.success() {
            return Ok(());
        }
        let mut said = out.stdout;
        said.extend_from_slice(&out.stderr);
        if String::from_utf8_lossy(&said).contains(LOCKED) {
            return Err(BackupError::Engine(format!(
                "the repository is locked by another run: {}",
                tail(&out.stderr)
            )));
        }
        Err(BackupError::Damaged(problems(&said)))
    }

    /// Restores snapshot `id` into the empty folder `target`.
    pub fn restore(&self, id: &str, target: &Path) -> Result<(), BackupError> {
        let t = target.to_string_lossy();
        self.run(&["restore", id, "--target", &t], None).map(|_| ())
    }

    /// One file of snapshot `id` (bounded: a manifest, not data).
    pub fn dump(&self, id: &str, path: &str, limit: u64) -> Result<Vec<u8>, BackupError> {
        let mut child = self
            .command(&["dump", id, path])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| BackupError::Engine(format!("cannot run restic: {e}")))?;
        let mut bytes = Vec::new();
        if let Some(out) = child.stdout.take() {
            out.take(limit + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| BackupError::Engine(format!("restic dump: {e}")))?;
        }
        let _ = child.kill();
        let status = child
            .wait()
            .map_err(|e| BackupError::Engine(format!("restic dump: {e}")))?;
        if bytes.len() as u64 > limit {
            return Err(BackupError::Engine(format!(
                "{path} is larger than {limit} bytes"
            )));
        }
        if !status.success() && bytes.is_empty() {
            return Err(BackupError::Engine(format!(
                "restic dump {path} failed ({status})"
            )));
        }
        Ok(bytes)
    }

    /// Forgets the snapshots `ids` (their data goes at the next [`Restic::prune`]).
    pub fn forget(&self, ids: &[String]) -> Result<(), BackupError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut args = vec!["forget"];
        args.extend(ids.iter().map(String::as_str));
        self.run(&args, None).map(|_| ())
    }

    /// Removes the data no snapshot refers to any more.
    pub fn prune(&self) -> Result<(), BackupError> {
        self.run(&["prune"], None).map(|_| ())
    }
}

/// The end of what restic printed, for an error message.
fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let start = text.len().saturating_sub(KEEP_OUTPUT);
    let start = (start..=text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    text[start..].replace('\n', " | ")
}

/// The lines of a failed check that name what is wrong (packs, blobs, trees, errors).
pub fn problems(said: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(said);
    let mut found: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            (l.contains("pack") || l.contains("blob") || l.contains("tree") || l.contains("error"))
                && !l.starts_with("check snapshots")
                && !l.starts_with("load indexes")
                && !l.starts_with("read all data")
        })
        .map(str::to_string)
        .collect();
    found.dedup();
    found.truncate(50);
    if found.is_empty() {
        found.push(tail(said));
    }
    found
}
