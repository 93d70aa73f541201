//! The delivery thread of one queue: sends its directory and its items
//! kept in memory, oldest first, with backoff.
//!
//! ```text
//!   idle --wake (new item)--> pass: oldest first
//!    ^                          | peer down: stop the pass
//!    |                          v
//!    +---- nothing owed ---- wait backoff (retry base, doubling to
//!                            15 min), a held item's time or the next
//!                            wake, then pass again
//! ```
//!
//! Per item, the [`Deliverer`] says what the answer means ([`Settled`]):
//! done (removed), partly done (rewritten atomically), refused (counted,
//! and after [`MAX_PERMANENT_TRIES`](super::MAX_PERMANENT_TRIES) moved to
//! `failed/`). A refused item that does not block is held back for its own
//! backoff while the items behind it go on at once (mail); one that blocks
//! stops the pass, so a channel's transitions arrive in order.
//!
//! A pass holds an exclusive lock on `<dir>/.lock`, so a daemon and a
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

use super::{next_backoff, Deliverer, Item, Kind, MemoryQueue, Queue, Queued, SEND_TIMEOUT};

/// Where an item in a pass comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    File(PathBuf),
    Memory(u64),
}

/// When a refused item may be tried again, and its current backoff.
#[derive(Clone, Copy, Debug)]
pub struct Hold {
    at: Instant,
    backoff: Duration,
}

/// The held items of a sender (kept across passes).
pub type Holds = HashMap<Source, Hold>;

/// What one delivery pass did.
#[derive(Debug, Default)]
pub struct PassResult {
    /// Items that reached at least one recipient.
    pub delivered: usize,
    /// The failure that ended the pass early (peer down), or why the
    /// queue could not be read.
    pub error: Option<String>,
    /// True when another process held the queue lock (its files were not
    /// tried).
    pub busy: bool,
    /// Recipients (or `*`) refused now, to retry, with the reason.
    pub refused: Vec<(String, String)>,
    /// Recipients (or `*`) no longer owed an item they were refused: it
    /// reached them now, or it was given up.
    pub cleared: Vec<String>,
    /// Reasons of the items moved to `failed/` now.
    pub failed: Vec<String>,
    /// Items held back for their own backoff.
    pub held: usize,
}

/// Everything one pass needs.
pub struct Queues<'a, D: Deliverer> {
    /// What the items are, for logs ("mail", "notification ops-chat").
    pub label: &'a str,
    pub deliverer: &'a D,
    pub queue: &'a Queue<D::Item>,
    pub memory: &'a MemoryQueue<D::Item>,
    /// The first backoff of a refused item.
    pub base: Duration,
}

/// One pass over the queue and the memory queue, oldest first, stopping
/// when the peer is down (the rest would fail too), at `deadline`, or when
/// `stop()` says so. Refused items are held in `holds` (ignored when there
/// is a deadline: a last pass tries everything). Not generic: every kind of
/// queue shares this one pass, through [`PassQueue`].
pub fn pass(
    q: &dyn PassQueue,
    holds: &mut Holds,
    deadline: Option<Instant>,
    stop: &dyn Fn() -> bool,
) -> PassResult {
    let mut res = PassResult::default();
    let label = q.label();
    q.clear_tombstones();
    let lock = match q.lock() {
        Ok(l) => l,
        Err(e) => {
            res.error = Some(e);
            Lock::NoQueue
        }
    };
    res.busy = matches!(lock, Lock::Busy);
    let mut items: Vec<(UnixMicros, Source)> = Vec::new();
    if matches!(lock, Lock::Held(_)) {
        match q.files() {
            Ok(files) => items.extend(files.into_iter().map(|(t, p)| (t, Source::File(p)))),
            Err(e) => res.error = Some(e),
        }
    }
    items.extend(
        q.in_memory()
            .into_iter()
            .map(|(id, t)| (t, Source::Memory(id))),
    );
    // Stable: files by name, memory by id, within the same time.
    crate::sort::by_key(&mut items, |(t, _)| *t);
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
        let s = match q.try_item(&src, composed, timeout) {
            Tried::Unreadable => continue,
            Tried::PeerDown(e) => {
                // ERROR: what was to be told waits (it is retried).
                log::error!("{label} delivery failed: {e}");
                res.error = Some(e);
                break;
            }
            Tried::Answered(s) => s,
        };
        let blocked = s.blocks && !s.retry.is_empty() && s.owed;
        let keep_hold = !(s.retry.is_empty() || !s.owed || blocked);
        let what = describe_source(&src);
        if !s.delivered.is_empty() {
            log::info!("{label} {what} delivered {}", s.answer);
            res.delivered += 1;
        }
        for (who, why) in &s.retry {
            if who == "*" {
                log::error!("{label} {what} refused, tried again later: {why}");
            } else {
                log::error!("{label} {what} refused for {who}, tried again later: {why}");
            }
        }
        for (part, reason, kept) in &s.failed {
            match kept {
                Ok(p) => log::error!(
                    "{label} {what} ({part}) given up: {reason}; kept in {}",
                    p.display()
                ),
                Err(e) => log::error!(
                    "{label} {what} ({part}) given up: {reason}; cannot keep it in {}/: {e}",
                    super::FAILED_DIR
                ),
            }
            res.failed.push(reason.clone());
            // Not owed any more: no longer shown as refused.
            res.cleared.push("*".into());
        }
        res.cleared.extend(s.given_up.iter().cloned());
        if !keep_hold {
            holds.remove(&src);
        } else {
            let backoff = holds
                .get(&src)
                .map(|h| next_backoff(h.backoff))
                .unwrap_or(q.base());
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
        let first_retry = s.retry.first().map(|(_, why)| why.clone());
        if blocked {
            // The items behind wait for this one: the order is kept.
            res.error = first_retry;
            break;
        }
    }
    drop(lock);
    res
}

/// One queue as a pass sees it, whatever its items are: the few steps that
/// need the item's type are here, the pass itself is not generic.
pub trait PassQueue {
    /// What the items are, for logs ("mail", "notification ops-chat").
    fn label(&self) -> &str;
    /// The first backoff of a refused item.
    fn base(&self) -> Duration;
    /// Forgets tombstones of files that are gone.
    fn clear_tombstones(&self);
    fn lock(&self) -> Result<Lock, String>;
    /// The queue's files (not tombstoned), with their composition time.
    fn files(&self) -> Result<Vec<(UnixMicros, PathBuf)>, String>;
    /// The items waiting in memory: id and composition time.
    fn in_memory(&self) -> Vec<(u64, UnixMicros)>;
    /// Reads the item, tries it, and stores what is still owed before
    /// anything else happens (SMTP's QUIT, `failed/`, the logs): a crash
    /// from then on cannot send it again.
    fn try_item(&self, src: &Source, composed: UnixMicros, timeout: Duration) -> Tried;
}

/// What one try came to, with the item's type left behind.
pub enum Tried {
    /// Not an item (moved away), or gone from memory.
    Unreadable,
    /// The peer took no part: the pass stops and backs off.
    PeerDown(String),
    Answered(Answered),
}

/// A [`super::Settled`] once stored.
pub struct Answered {
    pub delivered: Vec<String>,
    pub answer: String,
    pub retry: Vec<(String, String)>,
    pub given_up: Vec<String>,
    pub blocks: bool,
    /// Something is still owed.
    pub owed: bool,
    /// Parts given up: what, why, and where they are kept in `failed/`.
    pub failed: Vec<(String, String, Result<PathBuf, String>)>,
}

impl<D: Deliverer> PassQueue for Queues<'_, D> {
    fn label(&self) -> &str {
        self.label
    }

    fn base(&self) -> Duration {
        self.base
    }

    fn clear_tombstones(&self) {
        self.memory.clear_tombstones(self.queue);
    }

    fn lock(&self) -> Result<Lock, String> {
        lock(self.queue)
    }

    fn files(&self) -> Result<Vec<(UnixMicros, PathBuf)>, String> {
        let files = self.queue.list().map_err(|e| {
            format!(
                "cannot list the {} {}: {e}",
                self.queue.what(),
                self.queue.dir().display()
            )
        })?;
        Ok(files
            .into_iter()
            .filter(|f| !self.memory.is_tombstone(&f.path))
            .map(|f| (f.composed, f.path))
            .collect())
    }

    fn in_memory(&self) -> Vec<(u64, UnixMicros)> {
        self.memory.waiting()
    }

    fn try_item(&self, src: &Source, composed: UnixMicros, timeout: Duration) -> Tried {
        let Some(entry) = load(self, src, composed) else {
            return Tried::Unreadable;
        };
        let s = match self.deliverer.attempt(&entry, timeout) {
            Ok(s) => s,
            Err(e) => {
                if let Source::Memory(id) = src {
                    self.memory.settle(*id, Some(entry));
                }
                return Tried::PeerDown(e);
            }
        };
        let owed = s.owed.is_some();
        commit(self, src, &entry, s.owed);
        self.deliverer.after_settled();
        let failed = s
            .failed
            .iter()
            .map(|(part, reason)| {
                let kept = self.queue.fail(part, reason).map_err(|e| e.to_string());
                (part.describe(), reason.clone(), kept)
            })
            .collect();
        Tried::Answered(Answered {
            delivered: s.delivered,
            answer: s.answer,
            retry: s.retry,
            given_up: s.given_up,
            blocks: s.blocks,
            owed,
            failed,
        })
    }
}

fn describe_source(src: &Source) -> String {
    match src {
        Source::File(p) => p.display().to_string(),
        Source::Memory(id) => format!("#{id} (in memory)"),
    }
}

/// Reads an item of a pass; a file that is not an item is moved away.
fn load<D: Deliverer>(q: &Queues<D>, src: &Source, composed: UnixMicros) -> Option<D::Item> {
    match src {
        Source::Memory(id) => q.memory.take(*id),
        Source::File(path) => {
            let f = Queued {
                path: path.clone(),
                composed,
            };
            match q.queue.read(&f) {
                Ok(e) => Some(e),
                Err(e) => {
                    match q.queue.quarantine(&f) {
                        Ok(p) => log::error!("{e}; moved to {}", p.display()),
                        Err(qe) => log::error!("{e}; cannot move it away: {qe}"),
                    }
                    None
                }
            }
        }
    }
}

/// Stores what is still owed of an item after a try: removed when done,
/// rewritten (atomically) when it changed. When the queue cannot be
/// changed, the old file is not sent again while picomon runs (a
/// tombstone) and what is owed waits in memory.
fn commit<D: Deliverer>(q: &Queues<D>, src: &Source, original: &D::Item, owed: Option<D::Item>) {
    let path = match src {
        Source::Memory(id) => return q.memory.settle(*id, owed),
        Source::File(p) => p,
    };
    let f = Queued {
        path: path.clone(),
        composed: original.composed(),
    };
    match owed {
        None => {
            if let Err(e) = q.queue.remove(&f) {
                log::error!(
                    "{} {} is done but cannot be removed from the {} ({e}); it is \
                     not sent again while picomon runs",
                    q.label,
                    path.display(),
                    q.queue.what()
                );
                q.memory.tombstone(path);
            }
        }
        Some(o) if &o == original => {}
        Some(o) => {
            if let Err(e) = q.queue.rewrite(&f, &o) {
                log::error!(
                    "cannot rewrite {} with what is still owed ({e}); it waits in memory",
                    path.display()
                );
                q.memory.tombstone(path);
                q.memory
                    .push(o, Kind::Alert, &e.to_string(), Some(path.clone()));
                // On a full disk removing works and frees the way.
                q.memory.clear_tombstones(q.queue);
            }
        }
    }
}

/// The state of the queue lock for one pass.
pub enum Lock {
    Held(#[allow(dead_code)] crate::fs::Flocked<File>),
    /// Another process sends the queue now.
    Busy,
    /// No queue directory: nothing was ever written, nothing to send.
    NoQueue,
}

/// Takes the queue lock. On a read-only disk the lock file is opened
/// read-only (a lock still works); when it does not exist and cannot be
/// created there, the directory itself is locked (every process falls
/// back alike, as none can create the file).
fn lock<I: Item>(queue: &Queue<I>) -> Result<Lock, String> {
    if !queue.dir().is_dir() {
        return Ok(Lock::NoQueue);
    }
    let path = queue.dir().join(".lock");
    let f = crate::fs::lock_file(&path)
        .or_else(|_| File::open(queue.dir()))
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
    /// Recipients (or `*`: a whole item) refused and still owed an item,
    /// with the peer's last answer.
    refused: BTreeMap<String, String>,
    /// The last item given up (moved to `failed/`) and why.
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

/// Handle of a delivery thread.
#[derive(Debug)]
pub struct Sender {
    shared: Arc<Shared>,
    done: Receiver<()>,
    handle: Option<JoinHandle<()>>,
}

impl Sender {
    /// Starts the thread `name`; it makes a first pass at once (items an
    /// earlier process left behind).
    pub fn start<D: Deliverer>(
        name: &str,
        label: String,
        deliverer: D,
        queue: Queue<D::Item>,
        memory: Arc<MemoryQueue<D::Item>>,
        retry: Duration,
    ) -> std::io::Result<Sender> {
        let shared = Arc::new(Shared::default());
        shared.lock().wake = true;
        let (tx, done) = bounded(1);
        let s = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let base = retry.max(Duration::from_millis(100));
                let q = Queues {
                    label: &label,
                    deliverer: &deliverer,
                    queue: &queue,
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

    /// A new item is queued: try at once.
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

    /// Recipients refused and still owed an item (`*`: a whole item), with
    /// the peer's last answer.
    pub fn refused(&self) -> Vec<(String, String)> {
        let st = self.shared.lock();
        st.refused
            .iter()
            .map(|(a, b)| (a.clone(), b.clone()))
            .collect()
    }

    /// The last item given up, and why.
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

fn run(shared: &Shared, q: &dyn PassQueue) {
    let mut backoff = q.base();
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
            if holds.is_empty() && res.refused.is_empty() {
                st.refused.clear();
            }
            // The next held item's time (not in the past: a pass that
            // stopped early may have left one unvisited).
            let soonest = Instant::now() + Duration::from_millis(50);
            let held = holds.values().map(|h| h.at.max(soonest)).min();
            match res.error {
                Some(e) => {
                    // Peer down: held items wait for it too.
                    st.last_error = Some((now, e));
                    retry_at = Some(Instant::now() + backoff);
                    log::info!(
                        "next {} delivery attempt in {} s",
                        q.label(),
                        backoff.as_secs_f64()
                    );
                    backoff = next_backoff(backoff);
                }
                None if res.busy => {
                    // Someone else is sending; look again after a while.
                    let at = Instant::now() + q.base();
                    retry_at = Some(held.map_or(at, |h| h.min(at)));
                }
                None => {
                    if res.delivered > 0 {
                        st.last_error = None;
                    }
                    backoff = q.base();
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
    use crate::notify::channel::post::Post;
    use crate::queue::Settled;

    /// What the scripted peer answers to one try.
    #[derive(Clone, Copy)]
    enum Answer {
        Down,
        Refuse,
        Take,
    }

    /// A peer that answers from a script (a unit test of the pass: real
    /// peers are in tests/it/channels.rs) and remembers what it was sent.
    struct Scripted {
        script: Mutex<Vec<Answer>>,
        seen: Mutex<Vec<String>>,
    }

    impl Deliverer for Scripted {
        type Item = Post;
        fn attempt(&self, p: &Post, _t: Duration) -> Result<Settled<Post>, String> {
            self.seen.lock().unwrap().push(p.id.clone());
            let mut script = self.script.lock().unwrap();
            let answer = if script.is_empty() {
                Answer::Take
            } else {
                script.remove(0)
            };
            match answer {
                Answer::Down => Err("down".into()),
                Answer::Take => Ok(Settled {
                    delivered: vec!["peer".into()],
                    ..Settled::default()
                }),
                Answer::Refuse if p.tries + 1 >= crate::queue::MAX_PERMANENT_TRIES => Ok(Settled {
                    failed: vec![(p.clone(), "refused".into())],
                    ..Settled::default()
                }),
                Answer::Refuse => Ok(Settled {
                    owed: Some(Post {
                        tries: p.tries + 1,
                        ..p.clone()
                    }),
                    retry: vec![("*".into(), "400".into())],
                    blocks: true,
                    ..Settled::default()
                }),
            }
        }
    }

    #[test]
    fn a_blocking_queue_keeps_its_order_through_outages_and_refusals() {
        use Answer::*;
        let dir = tempfile::tempdir().unwrap();
        let queue: Queue<Post> = Queue::new(dir.path().join("q"), ".post", "test queue");
        for (t, id) in [(1, "a"), (2, "b"), (3, "c")] {
            let p = Post {
                composed: t,
                id: id.into(),
                ..Post::default()
            };
            queue.push(&p).unwrap();
        }
        let peer = Scripted {
            script: Mutex::new(vec![Down, Refuse, Take, Refuse, Refuse, Refuse]),
            seen: Mutex::new(Vec::new()),
        };
        let memory = MemoryQueue::default();
        let q = Queues {
            label: "test",
            deliverer: &peer,
            queue: &queue,
            memory: &memory,
            base: Duration::from_millis(100),
        };
        let mut holds = Holds::new();
        let mut pass_once = || pass(&q, &mut holds, None, &|| false);
        // Down: nothing behind the first post is tried.
        let r = pass_once();
        assert_eq!((r.delivered, r.error.as_deref()), (0, Some("down")));
        // Refused: counted in its file, and the pass stops there.
        let r = pass_once();
        assert_eq!(r.delivered, 0);
        assert_eq!(r.error.as_deref(), Some("400"));
        let head = queue.list().unwrap().remove(0);
        assert_eq!(queue.read(&head).unwrap().tries, 1);
        // a goes through; b is refused to the bound and goes to failed/
        // while c waits behind it.
        let r = pass_once();
        assert_eq!(r.delivered, 1);
        assert_eq!(queue.list().unwrap().len(), 2);
        pass_once();
        let r = pass_once();
        assert_eq!(r.failed, vec!["refused".to_string()]);
        assert_eq!(r.delivered, 1, "c right after b was given up");
        assert_eq!(queue.failed_count(), 1);
        assert!(queue.list().unwrap().is_empty());
        let seen = peer.seen.lock().unwrap().join("");
        assert_eq!(seen, "aaabbbc");
    }

    /// A peer that takes everything and, when told the outcome is stored,
    /// notes how many files its queue still holds.
    struct Acknowledging {
        dir: PathBuf,
        left_when_settled: Mutex<Vec<usize>>,
    }

    impl Deliverer for Acknowledging {
        type Item = Post;
        fn attempt(&self, _p: &Post, _t: Duration) -> Result<Settled<Post>, String> {
            Ok(Settled {
                delivered: vec!["peer".into()],
                ..Settled::default()
            })
        }
        fn after_settled(&self) {
            let queue: Queue<Post> = Queue::new(self.dir.clone(), ".post", "test queue");
            let left = queue.list().unwrap().len();
            self.left_when_settled.lock().unwrap().push(left);
        }
    }

    #[test]
    fn an_acknowledged_item_leaves_the_queue_before_anything_else_happens() {
        let dir = tempfile::tempdir().unwrap();
        let qdir = dir.path().join("q");
        let queue: Queue<Post> = Queue::new(qdir.clone(), ".post", "test queue");
        for (t, id) in [(1, "a"), (2, "b")] {
            let p = Post {
                composed: t,
                id: id.into(),
                ..Post::default()
            };
            queue.push(&p).unwrap();
        }
        let peer = Acknowledging {
            dir: qdir,
            left_when_settled: Mutex::new(Vec::new()),
        };
        let memory = MemoryQueue::default();
        let q = Queues {
            label: "test",
            deliverer: &peer,
            queue: &queue,
            memory: &memory,
            base: Duration::from_millis(100),
        };
        let r = pass(&q, &mut Holds::new(), None, &|| false);
        assert_eq!(r.delivered, 2);
        // Each file was gone by the time the peer's connection was closed.
        assert_eq!(*peer.left_when_settled.lock().unwrap(), vec![1, 0]);
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
