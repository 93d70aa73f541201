//! Items kept in memory while their queue directory cannot be written
//! (full disk, read-only remount, lost permissions): no alert is dropped
//! for want of disk.
//!
//! ```text
//!  producer --push fails--> MemoryQueue --sender thread--> peer (same bytes)
//!                              |  ^
//!     notifier, every tick:    |  | a rewrite of a partly delivered queue
//!     flush() to the queue ----+  | file failed: the rest waits here
//! ```
//!
//! An item the sender is delivering is marked in flight: [`MemoryQueue::flush`]
//! leaves it alone, so an item delivered from memory is never written to the
//! queue afterwards (and sent twice).
//!
//! Queue files that must not be sent again but could not be removed (a
//! delivered item on a read-only disk, a file whose rewrite failed) are
//! remembered as tombstones: the sender skips them and every pass and
//! flush tries to remove them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::clock::UnixMicros;

use super::{Item, Queue, Queued};

/// Items kept in memory before reports are dropped to make room.
pub const MEMORY_QUEUE_MAX: usize = 1000;

/// How much a mail matters when memory runs short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Problem, Update, Recovery, digest, notices: never dropped.
    Alert,
    /// A periodic report: the next one says the same, so it goes first.
    Report,
}

/// One mail waiting in memory.
#[derive(Clone, Debug)]
struct MemItem<I> {
    id: u64,
    kind: Kind,
    entry: I,
    /// A queue file this mail replaces; it is written to the outbox only
    /// once that file is gone.
    supersedes: Option<PathBuf>,
    in_flight: bool,
}

#[derive(Debug)]
struct Inner<I> {
    mails: Vec<MemItem<I>>,
    tombstones: BTreeSet<PathBuf>,
    next_id: u64,
    /// Why the last mail could not be written to the outbox.
    why: Option<String>,
}

/// The in-memory queue shared by the notifier and the sender thread.
#[derive(Debug)]
pub struct MemoryQueue<I> {
    inner: Mutex<Inner<I>>,
}

impl<I> Default for MemoryQueue<I> {
    fn default() -> Self {
        MemoryQueue {
            inner: Mutex::new(Inner {
                mails: Vec::new(),
                tombstones: BTreeSet::new(),
                next_id: 0,
                why: None,
            }),
        }
    }
}

impl<I: Item> MemoryQueue<I> {
    fn lock(&self) -> MutexGuard<'_, Inner<I>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps a mail that could not be written (`why`). Over
    /// [`MEMORY_QUEUE_MAX`] the oldest reports are dropped (never an alert:
    /// those stay even beyond the bound); returns the subjects dropped.
    pub fn push(
        &self,
        entry: I,
        kind: Kind,
        why: &str,
        supersedes: Option<PathBuf>,
    ) -> Vec<String> {
        let mut g = self.lock();
        let id = g.next_id;
        g.next_id += 1;
        g.why = Some(why.to_string());
        g.mails.push(MemItem {
            id,
            kind,
            entry,
            supersedes,
            in_flight: false,
        });
        let mut dropped = Vec::new();
        while g.mails.len() > MEMORY_QUEUE_MAX {
            let Some(i) = g
                .mails
                .iter()
                .position(|m| m.kind == Kind::Report && !m.in_flight)
            else {
                break;
            };
            dropped.push(g.mails.remove(i).entry.describe());
        }
        dropped
    }

    /// How many mails wait in memory.
    pub fn len(&self) -> usize {
        self.lock().mails.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Nothing to write and no outbox file to remove.
    pub fn is_idle(&self) -> bool {
        let g = self.lock();
        g.mails.is_empty() && g.tombstones.is_empty()
    }

    /// Why mail is in memory (the last write error), while some is.
    pub fn why(&self) -> Option<String> {
        let g = self.lock();
        if g.mails.is_empty() {
            None
        } else {
            g.why.clone()
        }
    }

    /// The mails not in flight: (id, composition time), oldest first.
    pub fn waiting(&self) -> Vec<(u64, UnixMicros)> {
        let g = self.lock();
        let mut v: Vec<_> = g
            .mails
            .iter()
            .filter(|m| !m.in_flight)
            .map(|m| (m.id, m.entry.composed()))
            .collect();
        crate::sort::by_key(&mut v, |&(id, t)| (t, id));
        v
    }

    /// Takes mail `id` for delivery (marks it in flight); `None` when it is
    /// gone (written to the outbox meanwhile) or already in flight.
    pub fn take(&self, id: u64) -> Option<I> {
        let mut g = self.lock();
        let m = g.mails.iter_mut().find(|m| m.id == id && !m.in_flight)?;
        m.in_flight = true;
        Some(m.entry.clone())
    }

    /// Ends the delivery of mail `id`: `None` when nothing is owed any more
    /// (removed), else what is still owed (kept, no longer in flight).
    pub fn settle(&self, id: u64, owed: Option<I>) {
        let mut g = self.lock();
        match owed {
            None => g.mails.retain(|m| m.id != id),
            Some(e) => {
                if let Some(m) = g.mails.iter_mut().find(|m| m.id == id) {
                    m.entry = e;
                    m.in_flight = false;
                }
            }
        }
    }

    /// Remembers an outbox file that must not be sent again.
    pub fn tombstone(&self, path: &Path) {
        self.lock().tombstones.insert(path.to_path_buf());
    }

    /// How many outbox files wait to be removed.
    pub fn tombstones(&self) -> usize {
        self.lock().tombstones.len()
    }

    pub fn is_tombstone(&self, path: &Path) -> bool {
        self.lock().tombstones.contains(path)
    }

    /// Tries to remove the tombstoned files again.
    pub fn clear_tombstones(&self, outbox: &Queue<I>) {
        let paths: Vec<PathBuf> = self.lock().tombstones.iter().cloned().collect();
        for p in paths {
            let q = Queued {
                path: p.clone(),
                composed: 0,
            };
            if outbox.remove(&q).is_ok() {
                self.lock().tombstones.remove(&p);
            }
        }
    }

    /// Writes the mails not in flight to the outbox, oldest first, until a
    /// write fails. Returns how many were written and the error, if any.
    pub fn flush(&self, outbox: &Queue<I>) -> (usize, Option<String>) {
        self.clear_tombstones(outbox);
        let mut g = self.lock();
        let mut written = 0;
        let mut i = 0;
        let mut order: Vec<usize> = (0..g.mails.len()).collect();
        crate::sort::by_key(&mut order, |&k| {
            (g.mails[k].entry.composed(), g.mails[k].id)
        });
        let mut done = Vec::new();
        let mut error = None;
        while i < order.len() {
            let m = &g.mails[order[i]];
            i += 1;
            let blocked = m
                .supersedes
                .as_ref()
                .is_some_and(|p| g.tombstones.contains(p));
            if m.in_flight || blocked {
                continue;
            }
            match outbox.push(&m.entry) {
                Ok(_) => {
                    written += 1;
                    done.push(m.id);
                }
                Err(e) => {
                    error = Some(e.to_string());
                    break;
                }
            }
        }
        g.mails.retain(|m| !done.contains(&m.id));
        if let Some(e) = &error {
            g.why = Some(e.clone());
        }
        (written, error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::mail::outbox::{Entry, Outbox};

    fn mail(n: usize) -> Entry {
        Entry {
            from: "a@example.org".into(),
            to: vec!["b@example.org".into()],
            composed: n as i64,
            message: format!("Subject: m{n}\r\n\r\nbody\r\n").into_bytes(),
            ..Entry::default()
        }
    }

    #[test]
    fn over_the_bound_reports_go_first_and_alerts_never() {
        let q = MemoryQueue::<Entry>::default();
        // 10 reports among alerts, then fill to the bound with alerts.
        for n in 0..MEMORY_QUEUE_MAX {
            let kind = if n % 100 == 0 {
                Kind::Report
            } else {
                Kind::Alert
            };
            assert!(q.push(mail(n), kind, "disk full", None).is_empty());
        }
        // Each further mail drops the oldest report left.
        let dropped = q.push(mail(5000), Kind::Alert, "disk full", None);
        assert_eq!(dropped, vec!["m0"]);
        let dropped = q.push(mail(5001), Kind::Report, "disk full", None);
        assert_eq!(dropped, vec!["m100"]);
        assert_eq!(q.len(), MEMORY_QUEUE_MAX);
        for k in 0..8 {
            q.push(mail(6000 + k), Kind::Alert, "disk full", None);
        }
        // Reports 200..900 are gone, then the newest report itself; then
        // no report is left and alerts stay beyond the bound.
        let dropped = q.push(mail(7000), Kind::Alert, "disk full", None);
        assert_eq!(dropped, vec!["m5001"]);
        let dropped = q.push(mail(7001), Kind::Alert, "disk full", None);
        assert!(dropped.is_empty());
        assert_eq!(q.len(), MEMORY_QUEUE_MAX + 1);
        let g = q.lock();
        assert!(g.mails.iter().all(|m| m.kind == Kind::Alert));
        let alerts = (0..MEMORY_QUEUE_MAX).filter(|n| n % 100 != 0).count();
        assert_eq!(g.mails.len(), alerts + 8 + 2 + 1);
    }

    #[test]
    fn a_mail_in_flight_is_not_written_and_a_delivered_one_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let ob: Outbox = Outbox::at(dir.path());
        let q = MemoryQueue::<Entry>::default();
        q.push(mail(1), Kind::Alert, "disk full", None);
        q.push(mail(2), Kind::Alert, "disk full", None);
        let w = q.waiting();
        assert_eq!(w.len(), 2);
        let first = q.take(w[0].0).unwrap();
        assert_eq!(first.composed, 1);
        assert!(q.take(w[0].0).is_none(), "taken twice");
        // The disk is back while mail 1 is being sent: only mail 2 is
        // written; mail 1 is delivered from memory and then gone.
        assert_eq!(q.flush(&ob), (1, None));
        assert_eq!(ob.list().unwrap().len(), 1);
        q.settle(w[0].0, None);
        assert!(q.is_empty());
        assert_eq!(q.flush(&ob), (0, None));
        assert_eq!(ob.list().unwrap().len(), 1);
    }

    #[test]
    fn a_superseding_mail_waits_for_the_old_file_to_go() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(dir.path()).unwrap();
        let old = ob.push(&mail(1)).unwrap();
        let q = MemoryQueue::<Entry>::default();
        q.tombstone(&old);
        q.push(mail(1), Kind::Alert, "rewrite failed", Some(old.clone()));
        // The old file can be removed now, so the new one is written.
        assert_eq!(q.flush(&ob), (1, None));
        assert!(!old.exists());
        assert!(!q.is_tombstone(&old));
        assert_eq!(ob.list().unwrap().len(), 1);
    }
}
