//! `config.heartbeat`: a dead man's switch outward. A thread of its own
//! GETs each URL every `heartbeat_every` while this picomon is healthy
//! (the rule of [`crate::health`]); when it is not, it sends URL + `/fail`
//! once, with the reason as a POST body, and then nothing until it is
//! healthy again.
//!
//! ```text
//!  heartbeat thread: wait heartbeat_every ─> board().health()
//!     ok          ─> GET URL            (each URL, in turn)
//!     not ok      ─> POST URL/fail why  (once per unhealthy spell)
//! ```
//! Never on the loop: a slow or dead receiver costs this thread its
//! timeout, nothing else. A stopped process (SIGSTOP), a dead host or a
//! cut network send nothing at all, which is what the receiver alerts on.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{RecvTimeoutError, Sender};

/// The longest a ping may take.
const PING_TIMEOUT: Duration = Duration::from_secs(10);
/// The first ping after start, once the loop has ticked.
const FIRST: Duration = Duration::from_secs(1);

/// The running heartbeat thread; dropping it stops the thread.
pub struct Beat {
    wanted: (Vec<String>, Duration),
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Beat {
    fn drop(&mut self) {
        // Dropping the sender wakes the thread; it ends between pings.
        self.stop = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Follows `config.heartbeat` across reloads: started, stopped or
/// started anew when the URLs or the interval change.
#[derive(Default)]
pub struct Heartbeat {
    running: Option<Beat>,
}

impl Heartbeat {
    pub fn follow(&mut self, urls: &[String], every: Duration) {
        let want = (urls.to_vec(), every);
        if self.running.as_ref().map(|b| &b.wanted) == Some(&want)
            || (urls.is_empty() && self.running.is_none())
        {
            return;
        }
        self.running = None;
        if urls.is_empty() {
            return;
        }
        let (tx, rx) = crossbeam_channel::bounded::<()>(0);
        let urls = want.0.clone();
        let spawned = std::thread::Builder::new()
            .name("heartbeat".into())
            .spawn(move || {
                let mut pinger = Pinger::new(urls, every);
                let mut next = Instant::now() + FIRST;
                loop {
                    match rx.recv_timeout(next.saturating_duration_since(Instant::now())) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                    next = pinger.beat(next);
                }
            });
        match spawned {
            Ok(t) => {
                log::info!(
                    "heartbeat: {} URLs every {} s while healthy",
                    want.0.len(),
                    every.as_secs_f64()
                );
                self.running = Some(Beat {
                    wanted: want,
                    stop: Some(tx),
                    thread: Some(t),
                });
            }
            Err(e) => log::error!("cannot start the heartbeat thread: {e}; no heartbeat is sent"),
        }
    }
}

/// What the thread keeps between pings.
struct Pinger {
    urls: Vec<String>,
    every: Duration,
    /// `/fail` was sent for the current unhealthy spell.
    failed: bool,
}

impl Pinger {
    fn new(urls: Vec<String>, every: Duration) -> Pinger {
        Pinger {
            urls,
            every,
            failed: false,
        }
    }

    /// One round, due at `planned`; returns when the next is due.
    fn beat(&mut self, planned: Instant) -> Instant {
        let board = crate::health::board();
        let woke = Instant::now();
        // Woken far later than planned: the process was stopped and is
        // running again; the loop must get to tick before it is judged.
        if !board.started() || woke.saturating_duration_since(planned) > self.every {
            return woke + FIRST;
        }
        let h = board.health();
        let timeout = self.every.min(PING_TIMEOUT);
        match (h.ok, h.reason) {
            (true, _) => {
                if self.failed {
                    log::info!("heartbeat: healthy again, pings resume");
                }
                self.failed = false;
                for url in &self.urls {
                    ping(url, None, timeout);
                }
            }
            (false, _) if self.failed => {}
            (false, reason) => {
                let why = reason.unwrap_or_default();
                log::warn!(
                    "heartbeat: not healthy ({why}): sending /fail, then nothing until healthy"
                );
                self.failed = true;
                for url in &self.urls {
                    ping(&fail_url(url), Some(&why), timeout);
                }
            }
        }
        Instant::now() + self.every
    }
}

/// GET `url`, or POST `body` to it.
fn ping(url: &str, body: Option<&str>, timeout: Duration) {
    let shown = redacted(url);
    let agent = match crate::net::http::client_agent(timeout, None, None) {
        Ok(a) => a,
        Err(e) => {
            log::warn!("heartbeat {shown}: {e}");
            return;
        }
    };
    let sent = match body {
        None => agent.get(url).call(),
        Some(b) => agent
            .post(url)
            .header("Content-Type", "text/plain; charset=utf-8")
            .send(b),
    };
    match sent {
        Ok(r) if (200..300).contains(&r.status()) => {
            log::debug!("heartbeat {shown}: {} {}", r.status(), r.reason())
        }
        Ok(r) => log::warn!("heartbeat {shown}: answered HTTP {}", r.status()),
        Err(e) => log::warn!("heartbeat {shown}: not sent: {e}"),
    }
}

/// `URL/fail`, before any query (`…/UUID/fail`, `…/fail?x=1`).
pub fn fail_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = format!("{}/fail", base.trim_end_matches('/'));
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// The scheme and host of a URL: the path of a ping URL is its secret.
fn redacted(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("http");
    format!("{scheme}://{host}/…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_goes_after_the_path_and_before_the_query() {
        assert_eq!(
            fail_url("https://hc-ping.com/abc"),
            "https://hc-ping.com/abc/fail"
        );
        assert_eq!(
            fail_url("https://hc-ping.com/abc/"),
            "https://hc-ping.com/abc/fail"
        );
        assert_eq!(
            fail_url("http://kuma:3001/api/push/tok?status=up"),
            "http://kuma:3001/api/push/tok/fail?status=up"
        );
    }

    #[test]
    fn the_secret_path_is_not_logged() {
        assert_eq!(
            redacted("https://hc-ping.com/0123-uuid"),
            "https://hc-ping.com/…"
        );
        assert_eq!(
            redacted("http://127.0.0.1:9/ping/key/x?y"),
            "http://127.0.0.1:9/…"
        );
    }
}
