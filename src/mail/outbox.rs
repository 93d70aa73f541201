//! The durable outbox (SPEC §7): `state_dir/outbox/`, one file per mail.
//!
//! A mail is written here (temporary file, fsync, rename, fsync of the
//! directory) before any attempt to send it, and removed only after the
//! server's 250. So a mail survives a dead SMTP server, a crash and a
//! restart; whoever starts next (daemon or watchdog) sends it.
//!
//! File names start with the composition time in microseconds (zero
//! padded) and a sequence number, so sorting by name is oldest first.
//! Each file holds the envelope and the raw RFC 5322 message, so the very
//! same bytes (same Date, same Message-ID) are sent however late:
//!
//! ```text
//! picomon-outbox 1
//! from: picomon@example.org
//! to: ops@example.org
//!
//! Date: ...            <- the message, byte for byte
//! ```

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::clock::UnixMicros;
use crate::state::{sync_dir, write_atomic};

const MAGIC: &str = "picomon-outbox 1";
const SUFFIX: &str = ".mail";

/// One queued mail: envelope plus the exact bytes to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Envelope sender (MAIL FROM).
    pub from: String,
    /// Envelope recipients (RCPT TO).
    pub to: Vec<String>,
    /// When the mail was composed (its Date header).
    pub composed: UnixMicros,
    /// The RFC 5322 message, CRLF line ends.
    pub message: Vec<u8>,
}

impl Entry {
    fn encode(&self) -> Vec<u8> {
        let mut out = format!(
            "{MAGIC}\ncomposed: {}\nfrom: {}\n",
            self.composed, self.from
        );
        for t in &self.to {
            out.push_str(&format!("to: {t}\n"));
        }
        out.push('\n');
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.message);
        bytes
    }

    fn decode(bytes: &[u8]) -> Result<Entry, String> {
        let split = bytes
            .windows(2)
            .position(|w| w == b"\n\n")
            .ok_or("no blank line after the envelope")?;
        let head = std::str::from_utf8(&bytes[..split]).map_err(|_| "envelope is not UTF-8")?;
        let mut lines = head.lines();
        if lines.next() != Some(MAGIC) {
            return Err(format!("does not start with {MAGIC:?}"));
        }
        let mut e = Entry {
            from: String::new(),
            to: Vec::new(),
            composed: 0,
            message: bytes[split + 2..].to_vec(),
        };
        for line in lines {
            match line.split_once(": ") {
                Some(("from", v)) => e.from = v.to_string(),
                Some(("to", v)) => e.to.push(v.to_string()),
                Some(("composed", v)) => {
                    e.composed = v.parse().map_err(|_| format!("bad composed time {v:?}"))?
                }
                _ => {} // a newer picomon may add fields
            }
        }
        if e.to.is_empty() {
            return Err("no recipient".into());
        }
        Ok(e)
    }
}

/// A mail waiting in the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queued {
    pub path: PathBuf,
    pub composed: UnixMicros,
}

/// The outbox directory.
#[derive(Clone, Debug)]
pub struct Outbox {
    dir: PathBuf,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

impl Outbox {
    /// The outbox of `state_dir`, created if missing.
    pub fn open(state_dir: &Path) -> io::Result<Outbox> {
        let dir = state_dir.join("outbox");
        fs::create_dir_all(&dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot create the mail outbox {}: {e} (check that the state directory \
                     exists and is writable by the user picomon runs as)",
                    dir.display()
                ),
            )
        })?;
        Ok(Outbox { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes a mail durably; returns its file.
    pub fn push(&self, e: &Entry) -> io::Result<PathBuf> {
        let seq = SEQ.fetch_add(1, Ordering::SeqCst);
        let name = format!(
            "{:020}-{:06}-{}{SUFFIX}",
            e.composed.max(0),
            seq % 1_000_000,
            std::process::id()
        );
        let path = self.dir.join(name);
        write_atomic(&path, &e.encode())?;
        Ok(path)
    }

    /// The waiting mails, oldest first.
    pub fn list(&self) -> io::Result<Vec<Queued>> {
        let mut out = Vec::new();
        for item in fs::read_dir(&self.dir)? {
            let item = item?;
            let name = item.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || !name.ends_with(SUFFIX) {
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
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Reads one queued mail; an unreadable file is an error naming it.
    pub fn read(&self, q: &Queued) -> Result<Entry, String> {
        let bytes =
            fs::read(&q.path).map_err(|e| format!("cannot read {}: {e}", q.path.display()))?;
        Entry::decode(&bytes)
            .map_err(|e| format!("{} is not an outbox mail: {e}", q.path.display()))
    }

    /// Removes a delivered mail (durably, so it is not sent again after a
    /// crash).
    pub fn remove(&self, q: &Queued) -> io::Result<()> {
        match fs::remove_file(&q.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        sync_dir(&self.dir)
    }

    /// Moves a file that is not a mail out of the way (to `outbox/bad/`),
    /// so it does not block the mails behind it.
    pub fn quarantine(&self, q: &Queued) -> io::Result<PathBuf> {
        let bad = self.dir.join("bad");
        fs::create_dir_all(&bad)?;
        let target = bad.join(q.path.file_name().unwrap_or_default());
        fs::rename(&q.path, &target)?;
        sync_dir(&self.dir)?;
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(composed: UnixMicros) -> Entry {
        Entry {
            from: "a@example.org".into(),
            to: vec!["b@example.org".into(), "c@example.org".into()],
            composed,
            message: b"Subject: x\r\n\r\nbody\r\n\r\nmore\r\n".to_vec(),
        }
    }

    #[test]
    fn push_list_read_remove() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(dir.path()).unwrap();
        ob.push(&entry(20)).unwrap();
        ob.push(&entry(3)).unwrap();
        ob.push(&entry(100)).unwrap();
        let l = ob.list().unwrap();
        assert_eq!(
            l.iter().map(|q| q.composed).collect::<Vec<_>>(),
            vec![3, 20, 100]
        );
        assert_eq!(ob.read(&l[0]).unwrap(), entry(3));
        ob.remove(&l[0]).unwrap();
        assert_eq!(ob.list().unwrap().len(), 2);
    }

    #[test]
    fn garbage_is_an_error_naming_the_file_and_can_be_moved_away() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(dir.path()).unwrap();
        let p = ob.dir().join("00000000000000000001-000000-1.mail");
        fs::write(&p, b"hello").unwrap();
        let l = ob.list().unwrap();
        let err = ob.read(&l[0]).unwrap_err();
        assert!(err.contains("00000000000000000001-000000-1.mail"), "{err}");
        let moved = ob.quarantine(&l[0]).unwrap();
        assert!(moved.exists());
        assert!(ob.list().unwrap().is_empty());
    }
}
