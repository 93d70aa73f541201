//! The delivery thread: sends the outbox oldest first, with backoff.
//!
//! ```text
//!   idle --wake (new mail)--> pass: oldest first, remove after 250
//!    ^                          | a send failed on every server
//!    |                          v
//!    +---- outbox empty ---- wait backoff (retry_timeout, doubling to
//!                            15 min) or the next wake, then pass again
//! ```
//!
//! A pass holds an exclusive lock on `outbox/.lock`, so a daemon and a
//! watchdog (or two threads) never send the same file twice at once. At
//! shutdown the thread makes one last bounded pass and exits.

use std::fs::File;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver};

use crate::clock::{now_unix_micros, UnixMicros};

use super::outbox::Outbox;
use super::smtp::Smtp;

/// The longest a single SMTP conversation may take outside shutdown.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// The wait after the next failure: double, at most [`MAX_BACKOFF`].
pub fn next_backoff(current: Duration) -> Duration {
    (current * 2).min(MAX_BACKOFF)
}

/// What one delivery pass did.
#[derive(Debug, Default)]
pub struct PassResult {
    pub delivered: usize,
    /// The failure that ended the pass early, if any.
    pub error: Option<String>,
    /// True when another process held the outbox lock (nothing was tried).
    pub busy: bool,
}

/// One pass over the outbox, oldest first, stopping at the first mail no
/// server accepts (the servers are down; the rest would fail too), at
/// `deadline`, or when `stop()` says so.
pub fn pass(
    smtp: &Smtp,
    outbox: &Outbox,
    deadline: Option<Instant>,
    stop: &dyn Fn() -> bool,
) -> PassResult {
    let mut res = PassResult::default();
    let _lock = match lock(outbox) {
        Ok(Some(l)) => l,
        Ok(None) => {
            res.busy = true;
            return res;
        }
        Err(e) => {
            res.error = Some(e);
            return res;
        }
    };
    let queued = match outbox.list() {
        Ok(q) => q,
        Err(e) => {
            res.error = Some(format!(
                "cannot list the outbox {}: {e}",
                outbox.dir().display()
            ));
            return res;
        }
    };
    for q in queued {
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
        let entry = match outbox.read(&q) {
            Ok(e) => e,
            Err(e) => {
                match outbox.quarantine(&q) {
                    Ok(p) => log::error!("{e}; moved to {}", p.display()),
                    Err(qe) => log::error!("{e}; cannot move it away: {qe}"),
                }
                continue;
            }
        };
        match smtp.send(&entry, timeout) {
            Ok((server, answer)) => {
                log::info!("mail {} delivered to {server}: {answer}", q.path.display());
                if let Err(e) = outbox.remove(&q) {
                    // Not removing means sending it again later: say so.
                    log::error!(
                        "mail {} was delivered but cannot be removed from the outbox ({e}); \
                         it will be sent again",
                        q.path.display()
                    );
                }
                res.delivered += 1;
            }
            Err(e) if e.rejected => {
                // Kept (nothing is dropped) and retried with the backoff, but
                // it must not hold back the mails behind it.
                log::error!(
                    "mail {} was refused by the server, later mails go first: {e}",
                    q.path.display()
                );
                res.error = Some(e.message);
            }
            Err(e) => {
                log::warn!("mail delivery failed: {e}");
                res.error = Some(e.message);
                break;
            }
        }
    }
    res
}

/// The outbox lock; `None` when another holder has it.
fn lock(outbox: &Outbox) -> Result<Option<nix::fcntl::Flock<File>>, String> {
    let path = outbox.dir().join(".lock");
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    match nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(l) => Ok(Some(l)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(format!("cannot lock {}: {e}", path.display())),
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
    pub fn start(smtp: Smtp, outbox: Outbox, retry: Duration) -> std::io::Result<Sender> {
        let shared = Arc::new(Shared::default());
        shared.lock().wake = true;
        let (tx, done) = bounded(1);
        let s = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name("mail-sender".into())
            .spawn(move || {
                run(&s, &smtp, &outbox, retry);
                let _ = tx.send(());
            })?;
        Ok(Sender {
            shared,
            done,
            handle: Some(handle),
        })
    }

    /// A new mail is in the outbox: try at once.
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

fn run(shared: &Shared, smtp: &Smtp, outbox: &Outbox, retry: Duration) {
    let base = retry.max(Duration::from_millis(100));
    let mut backoff = base;
    let mut retry_at: Option<Instant> = None;
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
        let res = pass(smtp, outbox, final_deadline, &stop_now);
        {
            let mut st = shared.lock();
            if res.delivered > 0 {
                st.last_delivery = Some(now_unix_micros());
            }
            match res.error {
                Some(e) => {
                    st.last_error = Some((now_unix_micros(), e));
                    retry_at = Some(Instant::now() + backoff);
                    log::info!("next mail delivery attempt in {} s", backoff.as_secs_f64());
                    backoff = next_backoff(backoff);
                }
                None if res.busy => {
                    // Someone else is sending; look again after a while.
                    retry_at = Some(Instant::now() + base);
                }
                None => {
                    if res.delivered > 0 {
                        st.last_error = None;
                    }
                    backoff = base;
                    retry_at = None;
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
