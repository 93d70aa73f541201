//! The durable outbox: `state_dir/outbox/`, one file per mail.
//!
//! A mail is written here (temporary file, fsync, rename, fsync of the
//! directory) before any attempt to send it, and removed only once every
//! recipient got it or was given up. So a mail survives a dead SMTP server,
//! a crash and a restart; whoever starts next (daemon or watchdog) sends it.
//! When the outbox cannot be written (full or read-only disk), the mail is
//! kept in memory instead ([`crate::queue::fallback`]).
//!
//! File names start with the composition time in microseconds (zero
//! padded) and a sequence number, so sorting by name is oldest first.
//! Each file holds the envelope ([`crate::queue::envelope`]) and the raw
//! RFC 5322 message, so the very
//! same bytes (same Date, same Message-ID) are sent however late:
//!
//! ```text
//! picomon-outbox 1
//! composed: 1800000000000000
//! from: picomon@example.org
//! to: ops@example.org          <- the recipients still owed the mail
//! tries: 1 gone@example.org    <- permanent refusals so far, per recipient
//! mail-tries: 0                <- permanent refusals of the whole mail
//!
//! Date: ...            <- the message, byte for byte
//! ```
//!
//! The directory, order, locks and `failed/` are the shared queue's
//! ([`crate::queue`]); this module is what a mail item is.
//!
//! A mail (or the part of it for one recipient) that servers refused
//! permanently [`MAX_PERMANENT_TRIES`] times is moved to `outbox/failed/`,
//! with a `reason:` line in its envelope. Moving it back into `outbox/`
//! sends it again (the counts start afresh).
//!
//! The directories are created 0700 and the files 0600: they hold check
//! output and addresses.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use crate::clock::UnixMicros;
use crate::queue::envelope::{self, Head};
use crate::queue::{Item, Queue};

pub use crate::queue::{Queued, FAILED_DIR, MAX_PERMANENT_TRIES};

const MAGIC: &str = "picomon-outbox 1";
const SUFFIX: &str = ".mail";

/// The outbox: the shared queue, holding mails.
pub type Outbox = Queue<Entry>;

impl Queue<Entry> {
    /// The outbox of `state_dir`, created if missing.
    pub fn open(state_dir: &Path) -> io::Result<Outbox> {
        let ob = Outbox::at(state_dir);
        ob.create()?;
        Ok(ob)
    }

    /// The outbox of `state_dir`, without touching the disk (it is created
    /// by the first [`push`](Self::push) that can).
    pub fn at(state_dir: &Path) -> Outbox {
        Queue::new(state_dir.join("outbox"), SUFFIX, "mail outbox")
    }
}

/// One queued mail: envelope plus the exact bytes to send.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// Envelope sender (MAIL FROM).
    pub from: String,
    /// Envelope recipients (RCPT TO) still owed this mail.
    pub to: Vec<String>,
    /// When the mail was composed (its Date header).
    pub composed: UnixMicros,
    /// The RFC 5322 message, CRLF line ends.
    pub message: Vec<u8>,
    /// Permanent refusals so far, per recipient (absent: none).
    pub tries: BTreeMap<String, u32>,
    /// Permanent refusals of the whole mail (MAIL, DATA, the message).
    pub mail_tries: u32,
}

impl Entry {
    fn to_bytes(&self, reason: Option<&str>) -> Vec<u8> {
        let mut head = Head::new(MAGIC);
        head.field("composed", self.composed)
            .field("from", &self.from);
        for t in &self.to {
            head.field("to", t);
        }
        for (t, n) in &self.tries {
            if self.to.contains(t) && *n > 0 {
                head.field("tries", format!("{n} {t}"));
            }
        }
        if self.mail_tries > 0 {
            head.field("mail-tries", self.mail_tries);
        }
        head.finish(reason, &self.message)
    }

    fn parse(bytes: &[u8]) -> Result<Entry, String> {
        let (fields, message) = envelope::read(MAGIC, bytes)?;
        let mut e = Entry {
            message: message.to_vec(),
            ..Entry::default()
        };
        let count = |v: &str| v.parse::<u32>().map_err(|_| format!("bad count {v:?}"));
        for (key, v) in fields {
            match key {
                "from" => e.from = v.to_string(),
                "to" => e.to.push(v.to_string()),
                "composed" => {
                    e.composed = v.parse().map_err(|_| format!("bad composed time {v:?}"))?
                }
                "tries" => {
                    let (n, addr) = v.split_once(' ').ok_or(format!("bad tries {v:?}"))?;
                    e.tries.insert(addr.to_string(), count(n)?);
                }
                "mail-tries" => e.mail_tries = count(v)?,
                _ => {} // a newer picomon may add fields (and `reason`)
            }
        }
        if e.to.is_empty() {
            return Err("no recipient".into());
        }
        Ok(e)
    }

    /// The `Subject:` of the message (for logs), or "".
    pub fn subject(&self) -> String {
        self.header("Subject")
    }

    /// The first header `name` (unfolded), or "".
    pub fn header(&self, name: &str) -> String {
        let text = String::from_utf8_lossy(&self.message);
        let head = text.split("\r\n\r\n").next().unwrap_or("");
        let mut out = String::new();
        let mut lines = head.split("\r\n");
        while let Some(l) = lines.next() {
            let value = l
                .split_once(':')
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim_start());
            if let Some(v) = value {
                out.push_str(v);
                for cont in lines.by_ref() {
                    match cont.strip_prefix(' ').or_else(|| cont.strip_prefix('\t')) {
                        Some(c) => {
                            out.push(' ');
                            out.push_str(c.trim_start());
                        }
                        None => break,
                    }
                }
                break;
            }
        }
        out
    }
}

impl Item for Entry {
    fn encode(&self, reason: Option<&str>) -> Vec<u8> {
        self.to_bytes(reason)
    }
    fn decode(bytes: &[u8]) -> Result<Entry, String> {
        Entry::parse(bytes)
    }
    fn composed(&self) -> UnixMicros {
        self.composed
    }
    fn fresh(&self) -> Entry {
        Entry {
            tries: BTreeMap::new(),
            mail_tries: 0,
            ..self.clone()
        }
    }
    fn describe(&self) -> String {
        self.subject()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn entry(composed: UnixMicros) -> Entry {
        Entry {
            from: "a@example.org".into(),
            to: vec!["b@example.org".into(), "c@example.org".into()],
            composed,
            message: b"Subject: x\r\n\r\nbody\r\n\r\nmore\r\n".to_vec(),
            ..Entry::default()
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
    fn directories_and_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let ob = Outbox::open(&state).unwrap();
        let p = ob.push(&entry(1)).unwrap();
        let failed = ob.fail(&entry(2), "refused").unwrap();
        assert_eq!(mode(&state), 0o700);
        assert_eq!(mode(ob.dir()), 0o700);
        assert_eq!(mode(&p), 0o600);
        assert_eq!(mode(failed.parent().unwrap()), 0o700);
        assert_eq!(mode(&failed), 0o600);
        let q = ob.list().unwrap().remove(0);
        ob.rewrite(&q, &entry(1)).unwrap();
        assert_eq!(mode(&p), 0o600);
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
