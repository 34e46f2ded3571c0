//! The home's writer lock: one command at a time changes the vault (receipt, linkage, purges,
//! release builds), so that no command's recovery removes what another is writing and no two
//! commands interleave their changes. Reads take no lock, so a server keeps serving them while a
//! build runs.
//!
//! The lock is an advisory lock (`flock`) on `locks/writer.lock`: the operating system releases it
//! when its holder exits, however it exits, so a killed command never leaves the home locked. The
//! holder writes what it is (process id, command, since when) into the file, so that a command
//! that has to wait can say for whom.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::home::{io, Home, VaultError};

/// How long a command waits for the writer lock when nothing else is said.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(60);

/// A held writer lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct WriterLock {
    _file: File,
}

fn lock_path(home: &Home) -> PathBuf {
    home.root.join("locks/writer.lock")
}

/// How long to wait, from `TOKUMEI_LOCK_WAIT` (seconds) or [`DEFAULT_WAIT`].
pub fn wait_from_env() -> Duration {
    std::env::var("TOKUMEI_LOCK_WAIT")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map_or(DEFAULT_WAIT, Duration::from_secs)
}

/// Takes the home's writer lock for `command`, waiting up to `wait`; `on_wait` is told once who
/// holds it when the command has to wait.
pub fn writer(
    home: &Home,
    command: &str,
    wait: Duration,
    on_wait: &dyn Fn(&str),
) -> Result<WriterLock, VaultError> {
    let path = lock_path(home);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| io(&path, e))?;
    let start = Instant::now();
    let mut told = false;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = holder(&mut file);
                if start.elapsed() >= wait {
                    return Err(VaultError::Busy(format!(
                        "another command is changing the home ({holder}); waited {} s — try again \
                         when it has finished",
                        wait.as_secs()
                    )));
                }
                if !told {
                    on_wait(&holder);
                    told = true;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(&path, e)),
        }
    }
    let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let me = format!("process {}, {command}, since {since}", std::process::id());
    file.set_len(0).map_err(|e| io(&path, e))?;
    file.rewind().map_err(|e| io(&path, e))?;
    file.write_all(me.as_bytes()).map_err(|e| io(&path, e))?;
    Ok(WriterLock { _file: file })
}

/// What the holder wrote (bounded, printable characters only).
fn holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.rewind();
    let _ = file.take(200).read_to_string(&mut text);
    let text: String = text.chars().filter(|c| !c.is_control()).collect();
    if text.is_empty() {
        "holder unknown".into()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_waits_then_gives_up_naming_the_holder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("h");
        let home = crate::home::init(&root, "correct horse battery", Some(4)).expect("init");
        let held = writer(&home.home, "receive", Duration::ZERO, &|_| {}).expect("first");
        let told = std::cell::RefCell::new(String::new());
        let e = writer(&home.home, "link", Duration::from_millis(300), &|h| {
            *told.borrow_mut() = h.to_string()
        })
        .expect_err("busy");
        assert!(matches!(e, VaultError::Busy(_)), "{e}");
        assert!(e.to_string().contains("receive"), "{e}");
        assert!(told.borrow().contains("receive"), "{}", told.borrow());
        drop(held);
        writer(&home.home, "link", Duration::ZERO, &|_| {}).expect("free again");
    }
}
