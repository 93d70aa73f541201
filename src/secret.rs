//! Secret files (`emails.smtp_password_file`, a channel's `secret_file`,
//! the outputs' `password_file`, every `client_key`, `ping_key_file`)
//! kept in memory, so they can stay readable by root only.
//!
//! Started as root with `--user`, picomon (and picomon-watchdog) reads them
//! with [`keep`] before dropping privileges. After the drop [`read`] still
//! tries the file first, so a readable file that changed is used; when the
//! user may not read it, the copy read as root is used instead. At start
//! that is the plan and is not logged; on a reload it is said once per
//! file at WARN, as a changed file is then not seen until a restart.
//!
//! The watchdog hands its copies to each picomon it starts (which runs as
//! the user from the start) through an inherited memory file, named by
//! [`HANDOVER_ENV`]: read once at start, then closed, so no plugin
//! inherits it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// The copies read before the drop, by path.
static KEPT: Mutex<BTreeMap<PathBuf, Vec<u8>>> = Mutex::new(BTreeMap::new());
/// Files whose copy a reload used, already said at WARN.
static WARNED: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());
/// Set once the daemon runs: a copy used from then on is a reload's.
static STARTED: AtomicBool = AtomicBool::new(false);

fn kept() -> std::sync::MutexGuard<'static, BTreeMap<PathBuf, Vec<u8>>> {
    KEPT.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads and keeps every file of `paths` (as root, before the drop). A
/// file that cannot be read now is not kept: reading it later says why.
pub fn keep(paths: &[PathBuf]) {
    for path in paths {
        match std::fs::read(path) {
            Ok(bytes) => {
                kept().insert(path.clone(), bytes);
            }
            Err(e) => log::debug!("secret file {} not kept: {e}", path.display()),
        }
    }
}

/// The environment variable that names the descriptor of the handed-over
/// copies in a picomon started by picomon-watchdog.
pub use picomon_common::handoff::SECRETS_ENV as HANDOVER_ENV;

/// The kept copies in one memory file (see
/// [`picomon_common::handoff::secrets_file`]), or `None` when nothing is
/// kept.
pub fn handover() -> io::Result<Option<File>> {
    let kept = kept();
    picomon_common::handoff::secrets_file(kept.iter().map(|(p, b)| (p.as_path(), b.as_slice())))
}

/// The content of each of `paths` that can be read now (the file, else
/// the copy kept before the privilege drop): what the daemon hands its
/// watchdog.
pub fn snapshot(paths: &[PathBuf]) -> Vec<picomon_common::handoff::SecretFile> {
    paths
        .iter()
        .filter_map(|p| {
            read(p)
                .ok()
                .map(|content| picomon_common::handoff::SecretFile {
                    path: p.clone(),
                    content,
                })
        })
        .collect()
}

/// In a picomon started by the watchdog: keeps the copies of the memory
/// file named by [`HANDOVER_ENV`] and closes it. Without it, nothing.
pub fn take_handover() {
    let Some(fd) = std::env::var(HANDOVER_ENV)
        .ok()
        .and_then(|v| v.parse::<RawFd>().ok())
        .filter(|fd| *fd > 2)
    else {
        return;
    };
    // SAFETY: the watchdog passed this descriptor to us for this use; it
    // is owned (and closed) by the File from here on.
    let f = unsafe { File::from_raw_fd(fd) };
    let mut at = 0u64;
    let mut next = || -> io::Result<Vec<u8>> {
        let mut len = [0u8; 4];
        f.read_exact_at(&mut len, at)?;
        let mut buf = vec![0u8; u32::from_le_bytes(len) as usize];
        f.read_exact_at(&mut buf, at + 4)?;
        at += 4 + buf.len() as u64;
        Ok(buf)
    };
    let mut n = 0;
    while let (Ok(path), Ok(bytes)) = (next(), next()) {
        let path = PathBuf::from(std::ffi::OsString::from_vec(path));
        kept().insert(path, bytes);
        n += 1;
    }
    log::debug!("{n} secret file(s) handed over by picomon-watchdog");
}

/// Marks the start-up done: a kept copy used from now on (a reload that
/// cannot read the file) is said once at WARN.
pub fn started() {
    STARTED.store(true, Ordering::Relaxed);
}

/// The content of the secret file `path`: read now when the user may, else
/// the copy kept before the privilege drop.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) => {
            if let Some(copy) = kept().get_mut(path) {
                copy.clone_from(&bytes);
            }
            Ok(bytes)
        }
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            let Some(copy) = kept().get(path).cloned() else {
                return Err(e);
            };
            let reload = STARTED.load(Ordering::Relaxed);
            if reload
                && WARNED
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(path.to_path_buf())
            {
                log::warn!(
                    "cannot read {} as picomon's user ({e}); keeping the value read as root \
                     at start (restart picomon to read a changed file)",
                    path.display()
                );
            }
            Ok(copy)
        }
        Err(e) => Err(e),
    }
}

/// [`read`] as text (a password file, a token file).
pub fn read_to_string(path: &Path) -> io::Result<String> {
    String::from_utf8(read(path)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_copy_stands_in_only_for_a_file_that_cannot_be_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "first\n").unwrap();
        keep(std::slice::from_ref(&path));
        // Readable: the file as it is now, and the copy follows it.
        std::fs::write(&path, "second\n").unwrap();
        assert_eq!(read_to_string(&path).unwrap(), "second\n");
        // Gone: not a permission problem, so no copy hides it.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(read(&path).unwrap_err().kind(), io::ErrorKind::NotFound);
        assert!(read(&dir.path().join("never-kept")).is_err());
    }
}
