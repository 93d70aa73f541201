//! One queue directory, one file per item.
//!
//! An item is written here (temporary file, fsync, rename, fsync of the
//! directory) before any attempt to deliver it, and removed only once it
//! is delivered or given up. So it survives a dead peer, a crash and a
//! restart; whoever starts next (daemon or watchdog) sends it.
//!
//! File names start with the composition time in microseconds (zero
//! padded) and a sequence number, so sorting by name is oldest first. An
//! item refused too often goes to `failed/` with a `reason:` line; moving
//! it back sends it again. A file that is not an item goes to `bad/`.
//! Directories are created 0700 and files 0600: they hold check output.

use std::fs;
use std::io;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::clock::UnixMicros;
use crate::fs::{create_private_dir, sync_dir, write_atomic};

use super::Item;

/// Where items that cannot be delivered end up, inside the queue.
pub const FAILED_DIR: &str = "failed";

/// An item waiting in the queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queued {
    pub path: PathBuf,
    pub composed: UnixMicros,
}

/// A queue directory of items of type `I`.
#[derive(Debug)]
pub struct Queue<I> {
    dir: PathBuf,
    /// The file suffix of items (`.mail`, `.post`).
    suffix: &'static str,
    /// What the queue is, for messages ("mail outbox").
    what: String,
    item: PhantomData<fn() -> I>,
}

impl<I> Clone for Queue<I> {
    fn clone(&self) -> Self {
        Queue {
            dir: self.dir.clone(),
            suffix: self.suffix,
            what: self.what.clone(),
            item: PhantomData,
        }
    }
}

static SEQ: AtomicU64 = AtomicU64::new(0);

impl<I: Item> Queue<I> {
    /// The queue in `dir`, without touching the disk (it is created by the
    /// first [`push`](Self::push) that can).
    pub fn new(dir: PathBuf, suffix: &'static str, what: impl Into<String>) -> Queue<I> {
        Queue {
            dir,
            suffix,
            what: what.into(),
            item: PhantomData,
        }
    }

    /// Creates the directory; the error says what to check.
    pub fn create(&self) -> io::Result<()> {
        create_private_dir(&self.dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot create the {} {}: {e} (check that the state directory \
                     exists and is writable by the user picomon runs as)",
                    self.what,
                    self.dir.display()
                ),
            )
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What the queue is, for messages.
    pub fn what(&self) -> &str {
        &self.what
    }

    /// A new file name in `dir`: composition time, sequence, pid.
    fn new_path(&self, dir: &Path, composed: UnixMicros) -> PathBuf {
        let seq = SEQ.fetch_add(1, Ordering::SeqCst);
        dir.join(format!(
            "{:020}-{:06}-{}{}",
            composed.max(0),
            seq % 1_000_000,
            std::process::id(),
            self.suffix
        ))
    }

    /// Writes an item durably; returns its file.
    pub fn push(&self, e: &I) -> io::Result<PathBuf> {
        if !self.dir.is_dir() {
            self.create()?;
        }
        let path = self.new_path(&self.dir, e.composed());
        write_atomic(&path, &e.encode(None))?;
        Ok(path)
    }

    /// Replaces a queued item atomically (fewer recipients, new counts).
    pub fn rewrite(&self, q: &Queued, e: &I) -> io::Result<()> {
        write_atomic(&q.path, &e.encode(None))
    }

    /// Writes an item that cannot be delivered to `failed/`, with the
    /// reason and its counts cleared (moving it back sends it afresh).
    pub fn fail(&self, e: &I, reason: &str) -> io::Result<PathBuf> {
        let dir = self.dir.join(FAILED_DIR);
        create_private_dir(&dir)?;
        let path = self.new_path(&dir, e.composed());
        write_atomic(&path, &e.fresh().encode(Some(reason)))?;
        Ok(path)
    }

    /// How many items wait in `failed/`.
    pub fn failed_count(&self) -> usize {
        self.list_in(&self.dir.join(FAILED_DIR))
            .map(|l| l.len())
            .unwrap_or(0)
    }

    /// The waiting items, oldest first.
    pub fn list(&self) -> io::Result<Vec<Queued>> {
        self.list_in(&self.dir)
    }

    /// Reads one queued item; an unreadable file is an error naming it.
    pub fn read(&self, q: &Queued) -> Result<I, String> {
        let bytes =
            fs::read(&q.path).map_err(|e| format!("cannot read {}: {e}", q.path.display()))?;
        I::decode(&bytes).map_err(|e| {
            format!(
                "{} is not an item of the {}: {e}",
                q.path.display(),
                self.what
            )
        })
    }

    /// Removes a delivered item (durably, so it is not sent again after a
    /// crash).
    pub fn remove(&self, q: &Queued) -> io::Result<()> {
        match fs::remove_file(&q.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        sync_dir(&self.dir)
    }

    /// Moves a file that is not an item out of the way (to `bad/`), so it
    /// does not block the items behind it.
    pub fn quarantine(&self, q: &Queued) -> io::Result<PathBuf> {
        let bad = self.dir.join("bad");
        create_private_dir(&bad)?;
        let target = bad.join(q.path.file_name().unwrap_or_default());
        fs::rename(&q.path, &target)?;
        sync_dir(&self.dir)?;
        Ok(target)
    }

    /// The item files in `dir`, oldest first.
    fn list_in(&self, dir: &Path) -> io::Result<Vec<Queued>> {
        let mut out = Vec::new();
        for item in fs::read_dir(dir)? {
            let item = item?;
            let name = item.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || !name.ends_with(self.suffix) {
                continue;
            }
            let composed = name
                .split('-')
                .next()
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            out.push(Queued {
                path: item.path(),
                composed,
            });
        }
        crate::sort::by(&mut out, |a, b| a.path.cmp(&b.path));
        Ok(out)
    }
}
