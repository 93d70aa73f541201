//! The loop's inbox: run results, signals and clients' requests in one
//! queue ([`Event`]).
//!
//! A mutex-protected queue and a condition variable rather than a channel:
//! the loop takes everything that arrived in one go (a tick's results come
//! in bursts) and sleeps on the futex without spinning first, so a worker
//! finishing a run never competes with a spinning loop for a CPU that the
//! next plugin's spawn needs.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

use crate::model::Outcome;

/// What wakes the loop.
#[derive(Debug)]
pub enum Event {
    Result {
        id: std::sync::Arc<str>,
        outcome: Outcome,
    },
    Signal(i32),
    /// A control socket request the loop answers.
    Control(crate::control::Call),
    /// A reader found no published status (nobody read for a while):
    /// publish one now.
    Publish,
    /// A ping that came over HTTP, with its key.
    Ping(crate::web::PingQuestion),
}

#[derive(Debug)]
pub struct Inbox<T> {
    queue: Mutex<VecDeque<T>>,
    arrived: Condvar,
}

impl<T> Default for Inbox<T> {
    fn default() -> Self {
        Inbox {
            queue: Mutex::new(VecDeque::new()),
            arrived: Condvar::new(),
        }
    }
}

impl<T> Inbox<T> {
    fn lock(&self) -> MutexGuard<'_, VecDeque<T>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds an item; wakes the loop only when the queue was empty (a
    /// non-empty queue means the loop has not taken the last batch yet).
    pub fn push(&self, item: T) {
        let mut q = self.lock();
        let was_empty = q.is_empty();
        q.push_back(item);
        drop(q);
        if was_empty {
            self.arrived.notify_one();
        }
    }

    /// Everything queued, waiting until `deadline` while there is nothing;
    /// empty when the deadline passed with nothing queued.
    pub fn wait_until(&self, deadline: Instant) -> Vec<T> {
        let mut q = self.lock();
        while q.is_empty() {
            let now = Instant::now();
            if now >= deadline {
                return Vec::new();
            }
            q = self
                .arrived
                .wait_timeout(q, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        take_all(&mut q)
    }

    /// Everything queued, without waiting.
    pub fn take(&self) -> Vec<T> {
        take_all(&mut self.lock())
    }
}

/// Queue entries kept allocated between batches; a burst beyond them
/// (a tick's results) is given back once taken.
const KEEP: usize = 256;

/// Empties `q` into a vector of exactly its length, and shrinks the queue
/// back to [`KEEP`] entries after a burst: a tick of 100,000 results would
/// otherwise keep room for as many until the daemon stops.
fn take_all<T>(q: &mut VecDeque<T>) -> Vec<T> {
    let mut all = Vec::with_capacity(q.len());
    all.extend(q.drain(..));
    if q.capacity() > KEEP {
        q.shrink_to(KEEP);
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn takes_everything_queued_in_order_and_times_out_empty() {
        let inbox = Inbox::default();
        inbox.push(1);
        inbox.push(2);
        inbox.push(3);
        assert_eq!(inbox.wait_until(Instant::now()), vec![1, 2, 3]);
        assert!(inbox.wait_until(Instant::now()).is_empty());
        assert!(inbox
            .wait_until(Instant::now() + Duration::from_millis(1))
            .is_empty());
    }

    #[test]
    fn the_queue_gives_a_burst_back_once_taken() {
        let inbox = Inbox::default();
        for i in 0..100_000 {
            inbox.push(i);
        }
        assert!(inbox.lock().capacity() >= 100_000);
        let all = inbox.take();
        assert_eq!(all.len(), 100_000);
        assert_eq!(all.capacity(), 100_000, "sized exactly");
        assert!(
            inbox.lock().capacity() <= 2 * KEEP,
            "{}",
            inbox.lock().capacity()
        );
    }

    #[test]
    fn a_push_from_another_thread_wakes_the_waiter() {
        let inbox = std::sync::Arc::new(Inbox::default());
        let other = std::sync::Arc::clone(&inbox);
        let t = std::thread::spawn(move || other.push("result"));
        // The deadline is only a bound: the push ends the wait.
        let got = inbox.wait_until(Instant::now() + Duration::from_secs(60));
        t.join().unwrap();
        assert_eq!(got, vec!["result"]);
    }
}
