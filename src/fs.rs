//! The file-system habits every module shares: crash-safe replacement of a
//! file, durable renames, private files and directories, and one way to
//! take an flock.
//!
//! Everything picomon writes is private to its user (0700 directories, 0600
//! files), whatever the umask: state, outbox and spools hold what checks
//! printed, addresses and sometimes more.
//!
//! Nothing picomon opens by path follows a symbolic link at the last
//! component (`O_NOFOLLOW`), and temporary files are created new
//! (`O_EXCL`): as root, a link planted where picomon writes (the pid file,
//! `state_dir/lock`) is refused instead of overwriting what it points to.
//!
//! Locks are flock(2) locks (std's [`File::lock`]), so they exclude other
//! processes (`picomon --send` beside the daemon) and other descriptors in
//! this process alike, and vanish with the process.

use std::borrow::Borrow;
use std::fs::{self, DirBuilder, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Mode of every directory picomon creates.
pub const PRIVATE_DIR: u32 = 0o700;
/// Mode of every file picomon creates.
pub const PRIVATE_FILE: u32 = 0o600;

/// Creates `dir` and any missing parents, each 0700. An existing directory
/// is left as it is (its owner chose its mode).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR)
        .create(dir)
}

/// Options that create a file 0600 when it does not exist yet and never
/// follow a symbolic link; add `.write(true)`/`.append(true)` and friends
/// as needed.
pub fn private_file() -> OpenOptions {
    let mut o = no_follow();
    o.create(true).mode(PRIVATE_FILE);
    o
}

pub use picomon_common::files::{explain_link, no_follow, write_private};

/// Writes `bytes` to `target` so that a crash leaves either the old or the
/// new content: a private temporary file in the same directory, fsync,
/// rename over the target, fsync of the directory.
pub fn write_atomic(target: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(target, |w| w.write_all(bytes))
}

/// [`write_atomic`] for content produced by `fill` into a buffered writer,
/// so a large file (the state of 10,000 checks) is never held in memory
/// whole.
pub fn write_atomic_with(
    target: &Path,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    // Unique per process and call, so two writers never share a temp file.
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp.{}.{seq}", std::process::id()));
    let result = (|| {
        let f = private_file().write(true).create_new(true).open(&tmp)?;
        let mut w = io::BufWriter::new(f);
        fill(&mut w)?;
        let f = w.into_inner().map_err(io::IntoInnerError::into_error)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, target)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(|e| io::Error::new(e.kind(), format!("cannot write {}: {e}", target.display())))
}

/// fsync of a directory, so a rename or unlink in it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// An exclusive flock, released when dropped. `F` is a `File` (the lock
/// owns it) or a `&File` (the lock borrows a file kept open for reuse).
#[derive(Debug)]
pub struct Flocked<F: Borrow<File>>(F);

impl<F: Borrow<File>> Flocked<F> {
    /// The locked file.
    pub fn file(&self) -> &File {
        self.0.borrow()
    }
}

impl<F: Borrow<File>> Drop for Flocked<F> {
    fn drop(&mut self) {
        // Closing the last descriptor would release it too, but a borrowed
        // file stays open.
        let _ = self.0.borrow().unlock();
    }
}

/// Opens `path` to hold a lock on: created (0600) when missing, then held
/// read-only, as a flock needs no write access and a descriptor open for
/// writing would keep the filesystem from being remounted read-only. A
/// file that exists is opened even on a read-only filesystem.
pub fn lock_file(path: &Path) -> io::Result<File> {
    match private_file().write(true).truncate(false).open(path) {
        Ok(_) => {}
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(explain_link(path, e)),
        Err(e) if path.exists() => log::debug!("{}: {e}; locking it read-only", path.display()),
        Err(e) => return Err(e),
    }
    no_follow()
        .read(true)
        .open(path)
        .map_err(|e| explain_link(path, e))
}

/// Takes an exclusive flock on `file`, waiting while another holds it.
pub fn lock<F: Borrow<File>>(file: F) -> io::Result<Flocked<F>> {
    loop {
        match file.borrow().lock() {
            Ok(()) => return Ok(Flocked(file)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Takes an exclusive flock on `file` if it is free: `Ok(None)` when
/// another process (or another descriptor here) holds it.
pub fn try_lock<F: Borrow<File>>(file: F) -> io::Result<Option<Flocked<F>>> {
    loop {
        match file.borrow().try_lock() {
            Ok(()) => return Ok(Some(Flocked(file))),
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(TryLockError::Error(e)) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn atomic_write_replaces_the_file_privately_and_leaves_no_temp() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let target = tmp.path().join("state");
        fs::write(&target, "old").expect("seed");
        write_atomic(&target, b"new").expect("write");
        assert_eq!(fs::read_to_string(&target).expect("read"), "new");
        assert_eq!(mode(&target), PRIVATE_FILE);
        let names: Vec<_> = fs::read_dir(tmp.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["state"]);
    }

    #[test]
    fn atomic_write_into_a_missing_directory_names_the_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let target = tmp.path().join("gone/state");
        let e = write_atomic(&target, b"x").expect_err("no directory");
        assert!(e.to_string().contains("gone/state"), "{e}");
    }

    #[test]
    fn private_dirs_and_files_are_private_whatever_the_umask() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("a/b");
        create_private_dir(&dir).expect("mkdir");
        create_private_dir(&dir).expect("mkdir again is fine");
        assert_eq!(mode(&dir), PRIVATE_DIR);
        assert_eq!(mode(&tmp.path().join("a")), PRIVATE_DIR);
        let f = dir.join("f");
        private_file().append(true).open(&f).expect("create");
        assert_eq!(mode(&f), PRIVATE_FILE);
    }

    #[test]
    fn links_are_refused_and_their_targets_untouched() {
        use std::os::unix::fs::symlink;
        let tmp = tempfile::tempdir().expect("tempdir");
        let target = tmp.path().join("precious");
        fs::write(&target, "keep").expect("seed");
        let link = tmp.path().join("link");
        symlink(&target, &link).expect("symlink");
        let e = write_private(&link, b"1").expect_err("a link");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        let e = lock_file(&link).expect_err("a link");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        let hard = tmp.path().join("hard");
        fs::hard_link(&target, &hard).expect("hard link");
        let e = write_private(&hard, b"1").expect_err("a hard link");
        assert!(e.to_string().contains("hard links"), "{e}");
        assert_eq!(fs::read_to_string(&target).expect("read"), "keep");
        let plain = tmp.path().join("plain");
        write_private(&plain, b"long content").expect("write");
        write_private(&plain, b"1").expect("rewrite");
        assert_eq!(fs::read_to_string(&plain).expect("read"), "1");
        assert_eq!(mode(&plain), PRIVATE_FILE);
    }

    #[test]
    fn a_held_lock_is_busy_until_released() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("lock");
        let open = || private_file().write(true).open(&path).expect("open");
        let kept = open();
        let held = lock(&kept).expect("lock");
        // A second descriptor (as another process would have) is refused.
        assert!(try_lock(open()).expect("try").is_none());
        drop(held);
        let owned = try_lock(open()).expect("try").expect("free again");
        assert!(try_lock(&kept).expect("try").is_none());
        drop(owned);
        assert!(try_lock(&kept).expect("try").is_some());
    }
}
