//! The delivery thread: sends the outbox and the mails kept in memory,
//! oldest first, recipient by recipient, with backoff.
//!
//! ```text
//!   idle --wake (new mail)--> pass: oldest first
//!    ^                          | every server down: stop the pass
//!    |                          v
//!    +---- nothing owed ---- wait backoff (retry_timeout, doubling to
//!                            15 min), a held mail's time or the next
//!                            wake, then pass again
//! ```
//!
//! Per mail, each recipient's answer counts ([`settle`]): the recipients
//! that got it are dropped from the entry (rewritten atomically), a 4xx is
//! retried with backoff until delivered, a 5xx counts a try and after
//! [`MAX_PERMANENT_TRIES`] that recipient's copy goes to `outbox/failed/`.
//! A permanent answer to MAIL, DATA or the message does the same for the
//! whole mail. A refused mail is held back for its own backoff while the
//! mails behind it go on at once.
//!
//! A pass holds an exclusive lock on `outbox/.lock`, so a daemon and a
//! watchdog (or two threads) never send the same file twice at once. At
//! shutdown the thread makes one last bounded pass and exits.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver};

use crate::clock::{now_unix_micros, UnixMicros};

use super::memory::{MailKind, MemoryQueue};
use super::outbox::{Entry, Outbox, Queued, MAX_PERMANENT_TRIES};
use super::smtp::{Delivery, SendError, Smtp};

/// The longest a single SMTP conversation may take outside shutdown.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// The wait after the next failure: double, at most [`MAX_BACKOFF`].
pub fn next_backoff(current: Duration) -> Duration {
    (current * 2).min(MAX_BACKOFF)
}

/// What one try of a mail leaves behind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settled {
    /// What is still owed (fewer recipients, new counts); `None`: done.
    pub owed: Option<Entry>,
    /// Parts given up (the mail for the recipients refused too often, or
    /// the whole mail), each with the reason: for `outbox/failed/`.
    pub failed: Vec<(Entry, String)>,
    /// The recipients that got the mail now.
    pub delivered: Vec<String>,
    /// Refusals that are retried later: who (a recipient, or `*` for the
    /// whole mail) and the server's answer with the try count.
    pub retry: Vec<(String, String)>,
}

/// Applies the outcome of one try to a queued mail. `None` when nothing
/// changes: no server took part (down, refused us, timed out).
pub fn settle(entry: &Entry, result: &Result<Delivery, SendError>) -> Option<Settled> {
    let mut out = Settled::default();
    let mut owed = entry.clone();
    match result {
        Ok(d) => {
            out.delivered = d.accepted.clone();
            owed.to.retain(|t| !d.accepted.contains(t));
            for (addr, e) in &d.refused {
                if !e.is_permanent() {
                    out.retry.push((addr.clone(), e.to_string()));
                    continue;
                }
                let n = owed.tries.get(addr).copied().unwrap_or(0) + 1;
                if n >= MAX_PERMANENT_TRIES {
                    owed.to.retain(|t| t != addr);
                    owed.tries.remove(addr);
                    let part = Entry {
                        to: vec![addr.clone()],
                        ..entry.clone()
                    };
                    out.failed
                        .push((part, format!("{addr} refused {n} times, last: {e}")));
                } else {
                    owed.tries.insert(addr.clone(), n);
                    out.retry.push((
                        addr.clone(),
                        format!("{e} (try {n} of {MAX_PERMANENT_TRIES})"),
                    ));
                }
            }
            owed.tries.retain(|t, _| owed.to.contains(t));
        }
        Err(se) => {
            let r = se.refusal()?;
            if r.is_permanent() {
                let n = owed.mail_tries + 1;
                if n >= MAX_PERMANENT_TRIES {
                    out.failed.push((
                        entry.clone(),
                        format!("the mail was refused {n} times, last: {r}"),
                    ));
                    owed.to.clear();
                } else {
                    owed.mail_tries = n;
                    out.retry.push((
                        "*".into(),
                        format!("{r} (try {n} of {MAX_PERMANENT_TRIES})"),
                    ));
                }
            } else {
                out.retry.push(("*".into(), r.to_string()));
            }
        }
    }
    out.owed = (!owed.to.is_empty()).then_some(owed);
    Some(out)
}

/// Where a mail in a pass comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    File(PathBuf),
    Memory(u64),
}

/// When a refused mail may be tried again, and its current backoff.
#[derive(Clone, Copy, Debug)]
pub struct Hold {
    at: Instant,
    backoff: Duration,
}

/// The held mails of a sender (kept across passes).
pub type Holds = HashMap<Source, Hold>;

/// What one delivery pass did.
#[derive(Debug, Default)]
pub struct PassResult {
    /// Mails that reached at least one recipient.
    pub delivered: usize,
    /// The failure that ended the pass early (every server down), or why
    /// the outbox could not be read.
    pub error: Option<String>,
    /// True when another process held the outbox lock (its files were not
    /// tried).
    pub busy: bool,
    /// Recipients (or `*`) refused now, to retry, with the reason.
    pub refused: Vec<(String, String)>,
    /// Recipients (or `*`) no longer owed a mail they were refused: it
    /// reached them now, or it was given up.
    pub cleared: Vec<String>,
    /// Reasons of the mails moved to `outbox/failed/` now.
    pub failed: Vec<String>,
    /// Mails held back for their own backoff.
    pub held: usize,
}

/// Everything one pass needs.
pub struct Queues<'a> {
    pub smtp: &'a Smtp,
    pub outbox: &'a Outbox,
    pub memory: &'a MemoryQueue,
    /// The first backoff of a refused mail.
    pub base: Duration,
}

/// One pass over the outbox and the memory queue, oldest first, stopping
/// when every server is down (the rest would fail too), at `deadline`, or
/// when `stop()` says so. Refused mails are held in `holds` (ignored when
/// there is a deadline: a last pass tries everything).
pub fn pass(
    q: &Queues,
    holds: &mut Holds,
    deadline: Option<Instant>,
    stop: &dyn Fn() -> bool,
) -> PassResult {
    let mut res = PassResult::default();
    q.memory.clear_tombstones(q.outbox);
    let lock = match lock(q.outbox) {
        Ok(l) => l,
        Err(e) => {
            res.error = Some(e);
            Lock::NoOutbox
        }
    };
    res.busy = matches!(lock, Lock::Busy);
    let mut items: Vec<(UnixMicros, Source)> = Vec::new();
    if matches!(lock, Lock::Held(_)) {
        match q.outbox.list() {
            Ok(files) => items.extend(
                files
                    .into_iter()
                    .filter(|f| !q.memory.is_tombstone(&f.path))
                    .map(|f| (f.composed, Source::File(f.path))),
            ),
            Err(e) => {
                res.error = Some(format!(
                    "cannot list the outbox {}: {e}",
                    q.outbox.dir().display()
                ))
            }
        }
    }
    items.extend(
        q.memory
            .waiting()
            .into_iter()
            .map(|(id, t)| (t, Source::Memory(id))),
    );
    // Stable: files by name, memory by id, within the same time.
    items.sort_by_key(|(t, _)| *t);
    holds.retain(|k, _| items.iter().any(|(_, s)| s == k));
    for (composed, src) in items {
        if stop() {
            break;
        }
        let timeout = match deadline {
            None => SEND_TIMEOUT,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left < Duration::from_millis(100) {
                    break;
                }
                left.min(SEND_TIMEOUT)
            }
        };
        if deadline.is_none() && holds.get(&src).is_some_and(|h| h.at > Instant::now()) {
            res.held += 1;
            continue;
        }
        let Some(entry) = load(q, &src, composed) else {
            continue;
        };
        let result = q.smtp.send(&entry, timeout);
        let Some(s) = settle(&entry, &result) else {
            if let Source::Memory(id) = src {
                q.memory.settle(id, Some(entry));
            }
            let e = result.err().map(|e| e.to_string()).unwrap_or_default();
            log::warn!("mail delivery failed: {e}");
            res.error = Some(e);
            break;
        };
        let what = describe_source(&src);
        if let Ok(d) = &result {
            if !d.accepted.is_empty() {
                log::info!(
                    "mail {what} delivered to {} by {}: {}",
                    d.accepted.join(", "),
                    d.server,
                    d.answer
                );
                res.delivered += 1;
            }
        }
        for (who, why) in &s.retry {
            if who == "*" {
                log::error!("mail {what} refused, tried again later: {why}");
            } else {
                log::error!("mail {what} refused for {who}, tried again later: {why}");
            }
        }
        for (part, reason) in &s.failed {
            match q.outbox.fail(part, reason) {
                Ok(p) => log::error!(
                    "mail {what} ({:?}) given up for {}: {reason}; kept in {}",
                    part.subject(),
                    part.to.join(", "),
                    p.display()
                ),
                Err(e) => log::error!(
                    "mail {what} ({:?}) given up for {}: {reason}; cannot keep it in \
                     outbox/failed/: {e}",
                    part.subject(),
                    part.to.join(", ")
                ),
            }
            res.failed.push(reason.clone());
            // Not owed any more: no longer shown as refused.
            res.cleared.extend(part.to.iter().cloned());
            res.cleared.push("*".into());
        }
        if s.retry.is_empty() || s.owed.is_none() {
            holds.remove(&src);
        } else {
            let backoff = holds
                .get(&src)
                .map(|h| next_backoff(h.backoff))
                .unwrap_or(q.base);
            holds.insert(
                src.clone(),
                Hold {
                    at: Instant::now() + backoff,
                    backoff,
                },
            );
        }
        res.cleared.extend(s.delivered.iter().cloned());
        res.refused.extend(s.retry.iter().cloned());
        commit(q, &src, &entry, s.owed);
    }
    drop(lock);
    res
}

fn describe_source(src: &Source) -> String {
    match src {
        Source::File(p) => p.display().to_string(),
        Source::Memory(id) => format!("#{id} (in memory)"),
    }
}

/// Reads a mail of a pass; a file that is not a mail is moved away.
fn load(q: &Queues, src: &Source, composed: UnixMicros) -> Option<Entry> {
    match src {
        Source::Memory(id) => q.memory.take(*id),
        Source::File(path) => {
            let f = Queued {
                path: path.clone(),
                composed,
            };
            match q.outbox.read(&f) {
                Ok(e) => Some(e),
                Err(e) => {
                    match q.outbox.quarantine(&f) {
                        Ok(p) => log::error!("{e}; moved to {}", p.display()),
                        Err(qe) => log::error!("{e}; cannot move it away: {qe}"),
                    }
                    None
                }
            }
        }
    }
}

/// Stores what is still owed of a mail after a try: removed when done,
/// rewritten (atomically) with fewer recipients. When the outbox cannot be
/// changed, the old file is not sent again while picomon runs (a
/// tombstone) and what is owed waits in memory.
fn commit(q: &Queues, src: &Source, original: &Entry, owed: Option<Entry>) {
    let path = match src {
        Source::Memory(id) => return q.memory.settle(*id, owed),
        Source::File(p) => p,
    };
    let f = Queued {
        path: path.clone(),
        composed: original.composed,
    };
    match owed {
        None => {
            if let Err(e) = q.outbox.remove(&f) {
                log::error!(
                    "mail {} is done but cannot be removed from the outbox ({e}); it is \
                     not sent again while picomon runs",
                    path.display()
                );
                q.memory.tombstone(path);
            }
        }
        Some(o) if &o == original => {}
        Some(o) => {
            if let Err(e) = q.outbox.rewrite(&f, &o) {
                log::error!(
                    "cannot rewrite {} with the recipients still owed ({e}); they wait in memory",
                    path.display()
                );
                q.memory.tombstone(path);
                q.memory
                    .push(o, MailKind::Alert, &e.to_string(), Some(path.clone()));
                // On a full disk removing works and frees the way.
                q.memory.clear_tombstones(q.outbox);
            }
        }
    }
}

/// The state of the outbox lock for one pass.
enum Lock {
    Held(#[allow(dead_code)] crate::fs::Flocked<File>),
    /// Another process sends the outbox now.
    Busy,
    /// No outbox directory: nothing was ever written, nothing to send.
    NoOutbox,
}

/// Takes the outbox lock. On a read-only disk the lock file is opened
/// read-only (a lock still works); when it does not exist and cannot be
/// created there, the outbox directory itself is locked (every process
/// falls back alike, as none can create the file).
fn lock(outbox: &Outbox) -> Result<Lock, String> {
    if !outbox.dir().is_dir() {
        return Ok(Lock::NoOutbox);
    }
    let path = outbox.dir().join(".lock");
    let f = crate::fs::lock_file(&path)
        .or_else(|_| File::open(outbox.dir()))
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    match crate::fs::try_lock(f) {
        Ok(Some(l)) => Ok(Lock::Held(l)),
        Ok(None) => Ok(Lock::Busy),
        Err(e) => Err(format!("cannot lock {}: {e}", path.display())),
    }
}

/// What the thread tells the rest of the daemon.
#[derive(Debug, Default)]
struct Status {
    wake: bool,
    /// Set at shutdown: the deadline of the last pass.
    stop: Option<Instant>,
    last_error: Option<(UnixMicros, String)>,
    last_delivery: Option<UnixMicros>,
    /// Recipients (or `*`: a whole mail) refused and still owed a mail,
    /// with the server's last answer.
    refused: BTreeMap<String, String>,
    /// The last mail given up (moved to `outbox/failed/`) and why.
    last_failed: Option<(UnixMicros, String)>,
}

#[derive(Debug, Default)]
struct Shared {
    status: Mutex<Status>,
    cond: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Handle of the delivery thread.
#[derive(Debug)]
pub struct Sender {
    shared: Arc<Shared>,
    done: Receiver<()>,
    handle: Option<JoinHandle<()>>,
}

impl Sender {
    /// Starts the thread; it makes a first pass at once (mail an earlier
    /// process left behind).
    pub fn start(
        smtp: Smtp,
        outbox: Outbox,
        memory: Arc<MemoryQueue>,
        retry: Duration,
    ) -> std::io::Result<Sender> {
        let shared = Arc::new(Shared::default());
        shared.lock().wake = true;
        let (tx, done) = bounded(1);
        let s = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name("mail-sender".into())
            .spawn(move || {
                let base = retry.max(Duration::from_millis(100));
                let q = Queues {
                    smtp: &smtp,
                    outbox: &outbox,
                    memory: &memory,
                    base,
                };
                run(&s, &q);
                let _ = tx.send(());
            })?;
        Ok(Sender {
            shared,
            done,
            handle: Some(handle),
        })
    }

    /// A new mail is queued: try at once.
    pub fn wake(&self) {
        self.shared.lock().wake = true;
        self.shared.cond.notify_all();
    }

    /// The last delivery failure (time, message), cleared by a success.
    pub fn last_error(&self) -> Option<(UnixMicros, String)> {
        self.shared.lock().last_error.clone()
    }

    pub fn last_delivery(&self) -> Option<UnixMicros> {
        self.shared.lock().last_delivery
    }

    /// Recipients refused and still owed a mail (`*`: a whole mail), with
    /// the server's last answer.
    pub fn refused(&self) -> Vec<(String, String)> {
        let st = self.shared.lock();
        st.refused
            .iter()
            .map(|(a, b)| (a.clone(), b.clone()))
            .collect()
    }

    /// The last mail given up, and why.
    pub fn last_failed(&self) -> Option<(UnixMicros, String)> {
        self.shared.lock().last_failed.clone()
    }

    /// One last pass bounded by `deadline`, then the thread ends. Returns
    /// whether it ended in time.
    pub fn shutdown(&mut self, deadline: Duration) -> bool {
        let Some(handle) = self.handle.take() else {
            return true;
        };
        let end = Instant::now() + deadline;
        self.shared.lock().stop = Some(end);
        self.shared.cond.notify_all();
        // A send that started before the stop may run up to SEND_TIMEOUT;
        // do not wait for it beyond the deadline (plus a little slack).
        match self
            .done
            .recv_timeout(deadline + Duration::from_millis(500))
        {
            Ok(()) => {
                let _ = handle.join();
                true
            }
            Err(_) => false,
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        if self.handle.is_some() {
            self.shared.lock().stop = Some(Instant::now());
            self.shared.cond.notify_all();
        }
    }
}

fn run(shared: &Shared, q: &Queues) {
    let mut backoff = q.base;
    let mut retry_at: Option<Instant> = None;
    let mut holds = Holds::new();
    loop {
        // Wait until woken, until the retry time, or until stopped.
        let final_deadline = {
            let mut st = shared.lock();
            loop {
                if st.stop.is_some() {
                    break st.stop;
                }
                if st.wake {
                    st.wake = false;
                    break None;
                }
                match retry_at {
                    Some(t) => {
                        let now = Instant::now();
                        if now >= t {
                            break None;
                        }
                        st = shared
                            .cond
                            .wait_timeout(st, t - now)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                    None => st = shared.cond.wait(st).unwrap_or_else(|e| e.into_inner()),
                }
            }
        };
        let stopping = final_deadline.is_some();
        let stop_now = || !stopping && shared.lock().stop.is_some();
        let res = pass(q, &mut holds, final_deadline, &stop_now);
        {
            let mut st = shared.lock();
            let now = now_unix_micros();
            if res.delivered > 0 {
                st.last_delivery = Some(now);
            }
            for who in &res.cleared {
                st.refused.remove(who);
            }
            if res.delivered > 0 {
                st.refused.remove("*");
            }
            for (who, why) in &res.refused {
                st.refused.insert(who.clone(), why.clone());
            }
            if let Some(why) = res.failed.last() {
                st.last_failed = Some((now, why.clone()));
            }
            if holds.is_empty() {
                st.refused.clear();
            }
            // The next held mail's time (not in the past: a pass that
            // stopped early may have left one unvisited).
            let soonest = Instant::now() + Duration::from_millis(50);
            let held = holds.values().map(|h| h.at.max(soonest)).min();
            match res.error {
                Some(e) => {
                    // Servers down: held mails wait for them too.
                    st.last_error = Some((now, e));
                    retry_at = Some(Instant::now() + backoff);
                    log::info!("next mail delivery attempt in {} s", backoff.as_secs_f64());
                    backoff = next_backoff(backoff);
                }
                None if res.busy => {
                    // Someone else is sending; look again after a while.
                    let at = Instant::now() + q.base;
                    retry_at = Some(held.map_or(at, |h| h.min(at)));
                }
                None => {
                    if res.delivered > 0 {
                        st.last_error = None;
                    }
                    backoff = q.base;
                    retry_at = held;
                }
            }
        }
        if stopping {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::outbox::FAILED_DIR;
    use crate::mail::smtp::{SmtpError, Stage};

    fn answer(stage: Stage, code: u16) -> SmtpError {
        SmtpError {
            server: "127.0.0.1:25".into(),
            stage,
            code: Some(code),
            message: format!("{code} no"),
        }
    }

    fn entry() -> Entry {
        Entry {
            from: "p@example.org".into(),
            to: vec!["a@x".into(), "bad@x".into(), "later@x".into()],
            composed: 7,
            message: b"Subject: s\r\n\r\nb\r\n".to_vec(),
            ..Entry::default()
        }
    }

    fn delivery(accepted: &[&str], refused: &[(&str, u16)]) -> Result<Delivery, SendError> {
        Ok(Delivery {
            server: "127.0.0.1:25".into(),
            answer: "250 ok".into(),
            accepted: accepted.iter().map(|s| s.to_string()).collect(),
            refused: refused
                .iter()
                .map(|(a, c)| (a.to_string(), answer(Stage::RcptTo, *c)))
                .collect(),
        })
    }

    #[test]
    fn refused_recipients_stay_owed_and_a_permanent_one_is_given_up_after_the_bound() {
        let e = entry();
        // 550 for bad@, 451 for later@: only they are still owed.
        let s = settle(&e, &delivery(&["a@x"], &[("bad@x", 550), ("later@x", 451)])).unwrap();
        let owed = s.owed.clone().unwrap();
        assert_eq!(owed.to, vec!["bad@x", "later@x"]);
        assert_eq!(owed.tries.get("bad@x"), Some(&1));
        assert_eq!(owed.tries.get("later@x"), None, "4xx is not counted");
        assert_eq!(s.delivered, vec!["a@x"]);
        assert!(s.failed.is_empty());
        assert_eq!(s.retry.len(), 2);
        // The rewritten file reads back the same.
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(dir.path()).unwrap();
        let path = ob.push(&e).unwrap();
        let q = Queued {
            path: path.clone(),
            composed: 7,
        };
        ob.rewrite(&q, &owed).unwrap();
        assert_eq!(ob.read(&q).unwrap(), owed);
        assert_eq!(ob.list().unwrap().len(), 1);
        // later@ gets it; bad@ is refused up to the bound, then given up.
        let s = settle(&owed, &delivery(&["later@x"], &[("bad@x", 550)])).unwrap();
        let owed = s.owed.unwrap();
        assert_eq!(owed.to, vec!["bad@x"]);
        assert_eq!(owed.tries.get("bad@x"), Some(&2));
        let s = settle(&owed, &delivery(&[], &[("bad@x", 550)])).unwrap();
        assert_eq!(s.owed, None);
        assert_eq!(s.failed.len(), 1);
        let (part, why) = &s.failed[0];
        assert_eq!(part.to, vec!["bad@x"]);
        assert_eq!(part.message, e.message, "the same bytes");
        assert!(
            why.contains("refused 3 times") && why.contains("550"),
            "{why}"
        );
        let failed = ob.fail(part, why).unwrap();
        assert!(failed.starts_with(ob.dir().join(FAILED_DIR)));
        let text = std::fs::read_to_string(&failed).unwrap();
        assert!(text.contains("\nreason: bad@x refused 3 times"), "{text}");
        assert!(!text.contains("tries:"), "{text}");
        assert_eq!(ob.failed_count(), 1);
    }

    #[test]
    fn a_whole_mail_refused_permanently_is_given_up_after_the_bound() {
        let e = entry();
        let refused = Err(SendError {
            errors: vec![answer(Stage::Message, 500)],
        });
        let mut cur = e.clone();
        for n in 1..MAX_PERMANENT_TRIES {
            let s = settle(&cur, &refused).unwrap();
            cur = s.owed.unwrap();
            assert_eq!(cur.mail_tries, n);
            assert_eq!(cur.to, e.to);
        }
        let s = settle(&cur, &refused).unwrap();
        assert_eq!(s.owed, None);
        assert_eq!(s.failed[0].0.to, e.to);
        // A 4xx keeps it as it is; a server that is down changes nothing.
        let busy = Err(SendError {
            errors: vec![answer(Stage::Data, 451)],
        });
        assert_eq!(settle(&e, &busy).unwrap().owed, Some(e.clone()));
        let down = Err(SendError {
            errors: vec![SmtpError {
                server: "x".into(),
                stage: Stage::Connect,
                code: None,
                message: "Connection refused".into(),
            }],
        });
        assert_eq!(settle(&e, &down), None);
        let closing = Err(SendError {
            errors: vec![answer(Stage::MailFrom, 421)],
        });
        assert_eq!(settle(&e, &closing), None);
    }

    #[test]
    fn backoff_doubles_up_to_fifteen_minutes() {
        let mut b = Duration::from_secs(60);
        let mut seen = vec![];
        for _ in 0..6 {
            seen.push(b.as_secs());
            b = next_backoff(b);
        }
        assert_eq!(seen, vec![60, 120, 240, 480, 900, 900]);
    }
}
