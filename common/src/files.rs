//! Files picomon and picomon-watchdog write where others may plant a link:
//! never followed, never written through a second hard link.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Options that open a file without following a symbolic link at its last
/// component: opening a link fails (ELOOP, see [`explain_link`]).
pub fn no_follow() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.custom_flags(libc::O_NOFOLLOW);
    o
}

/// An open error of `path` for a message: a symbolic link that
/// [`no_follow`] refused says so and what to do.
pub fn explain_link(path: &Path, e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        return io::Error::new(
            e.kind(),
            format!(
                "{} is a symbolic link; picomon does not write through links \
                 (remove it, or name the real file)",
                path.display()
            ),
        );
    }
    e
}

/// Replaces the content of `path` (created 0600 when missing) without
/// following a symbolic link; a file with other hard links is refused too,
/// so a link planted in a directory others can write never redirects it.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let f = no_follow()
        .create(true)
        .mode(0o600)
        .write(true)
        .truncate(false)
        .open(path)
        .map_err(|e| explain_link(path, e))?;
    use std::os::unix::fs::MetadataExt;
    let meta = f.metadata()?;
    if !meta.is_file() || meta.nlink() > 1 {
        return Err(io::Error::other(format!(
            "{} is not a plain file of its own (it has other hard links or is not a \
             regular file); remove it",
            path.display()
        )));
    }
    f.set_len(0)?;
    (&f).write_all(bytes)
}
