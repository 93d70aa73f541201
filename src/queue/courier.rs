//! A queue as a notifier uses it: the directory, the memory fallback and
//! the sender thread together, with the lines `status` and the dump show.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{hms, local_datetime, now_unix_micros};

use super::fallback::MEMORY_QUEUE_MAX;
use super::{Deliverer, Item, Kind, MemoryQueue, Queue, Sender, FAILED_DIR};

/// One durable queue with its delivery thread.
#[derive(Debug)]
pub struct Courier<I: Item> {
    /// What its items are, for logs and status ("mail", "notification
    /// ops-chat").
    label: String,
    queue: Queue<I>,
    memory: Arc<MemoryQueue<I>>,
    sender: Sender,
}

impl<I: Item> Courier<I> {
    /// Creates the queue directory (when it cannot be, items wait in
    /// memory until it can) and starts the thread `thread`, which first
    /// sends what an earlier process left.
    pub fn start<D: Deliverer<Item = I>>(
        thread: &str,
        label: &str,
        deliverer: D,
        queue: Queue<I>,
        retry: Duration,
    ) -> std::io::Result<Courier<I>> {
        if let Err(err) = queue.create() {
            log::error!("{err}; {label} waits in memory until it can be written");
        }
        let memory = Arc::new(MemoryQueue::default());
        let sender = Sender::start(
            thread,
            label.to_string(),
            deliverer,
            queue.clone(),
            Arc::clone(&memory),
            retry,
        )?;
        Ok(Courier {
            label: label.to_string(),
            queue,
            memory,
            sender,
        })
    }

    pub fn queue(&self) -> &Queue<I> {
        &self.queue
    }

    /// How many items wait in memory because the queue cannot be written.
    pub fn memory_len(&self) -> usize {
        self.memory.len()
    }

    /// How many items wait for delivery (queue and memory).
    pub fn pending(&self) -> usize {
        let files = self.queue.list().map(|l| l.len()).unwrap_or(0);
        files.saturating_sub(self.memory.tombstones()) + self.memory.len()
    }

    /// When the oldest waiting item was composed (queue and memory).
    pub fn oldest(&self) -> Option<crate::clock::UnixMicros> {
        let file = self
            .queue
            .list()
            .ok()
            .and_then(|l| l.first().map(|q| q.composed));
        let memory = self.memory.waiting().iter().map(|(_, at)| *at).min();
        file.into_iter().chain(memory).min()
    }

    /// Queues an item durably, or in memory when the queue cannot be
    /// written (it is sent from there and written later). Does not wake
    /// the sender: call [`wake`](Self::wake) after a batch.
    pub fn push(&self, item: I, kind: Kind, what: &str) {
        match self.queue.push(&item) {
            Ok(p) => log::debug!("{what} {} queued as {}", self.label, p.display()),
            Err(e) => {
                log::error!(
                    "cannot write the {what} {} to the {} ({e}); it is kept in memory, \
                     sent from there, and written to the {} when the disk allows",
                    self.label,
                    self.queue.what(),
                    self.queue.what()
                );
                for dropped in self.memory.push(item, kind, &e.to_string(), None) {
                    log::error!(
                        "more than {MEMORY_QUEUE_MAX} {} items wait in memory: dropped the \
                         report {dropped:?}",
                        self.label
                    );
                }
            }
        }
    }

    /// New items are queued: try at once.
    pub fn wake(&self) {
        self.sender.wake();
    }

    /// Writes the items kept in memory to the queue, and removes the queue
    /// files they replace, when it can.
    pub fn flush_memory(&self) {
        if self.memory.is_idle() {
            return;
        }
        let (written, err) = self.memory.flush(&self.queue);
        if written > 0 {
            log::info!(
                "{written} {} items kept in memory are now in the {} {}",
                self.label,
                self.queue.what(),
                self.queue.dir().display()
            );
            self.sender.wake();
        }
        if let Some(e) = err {
            log::debug!(
                "{} {} items still wait in memory: {e}",
                self.memory.len(),
                self.label
            );
        }
    }

    /// Lines for `status` and the dump: what waits, what was refused or
    /// given up, the last error and delivery.
    pub fn status_lines(&self) -> Vec<String> {
        let l = &self.label;
        let what = self.queue.what();
        let mut out = Vec::new();
        match self.queue.list() {
            Ok(q) if q.is_empty() => out.push(format!("{what}: empty")),
            Ok(q) => {
                let oldest = q[0].composed;
                out.push(format!(
                    "{what}: {} waiting, oldest from {} ({} ago)",
                    q.len(),
                    local_datetime(oldest),
                    hms(now_unix_micros() - oldest)
                ));
            }
            Err(e) => out.push(format!(
                "{what} {}: cannot list: {e}",
                self.queue.dir().display()
            )),
        }
        let stale = self.memory.tombstones();
        if stale > 0 {
            out.push(format!(
                "{what}: {stale} of these are done (or replaced by {l} in memory) but \
                 cannot be removed yet; they are not sent again"
            ));
        }
        if let Some(why) = self.memory.why() {
            out.push(format!(
                "{l} in memory: {} waiting, sent from memory, not yet in the {what}: {why}",
                self.memory.len()
            ));
        }
        for (who, why) in self.sender.refused() {
            if who == "*" {
                out.push(format!("{l} refused as a whole, retried: {why}"));
            } else {
                out.push(format!("{l} refused for {who}, retried: {why}"));
            }
        }
        let failed = self.queue.failed_count();
        if failed > 0 || self.sender.last_failed().is_some() {
            let mut line = format!(
                "{l} failed: {failed} in {}",
                self.queue.dir().join(FAILED_DIR).display()
            );
            if let Some((at, why)) = self.sender.last_failed() {
                line.push_str(&format!(", last ({}): {why}", local_datetime(at)));
            }
            out.push(line);
        }
        if let Some((at, e)) = self.sender.last_error() {
            out.push(format!(
                "last {l} delivery error ({}): {e}",
                local_datetime(at)
            ));
        }
        if let Some(at) = self.sender.last_delivery() {
            out.push(format!("last {l} delivered at {}", local_datetime(at)));
        }
        out
    }

    /// One last bounded pass; what cannot be sent stays in the queue for
    /// the next start (and is said to be lost only when it could not even
    /// be written).
    pub fn shutdown(&mut self, deadline: Duration) {
        self.flush_memory();
        if !self.sender.shutdown(deadline) {
            log::warn!(
                "{} delivery still busy at exit; what is left in {} is sent on the next start",
                self.label,
                self.queue.dir().display()
            );
        }
        // What the last pass could not send must survive the exit.
        self.flush_memory();
        if !self.memory.is_empty() {
            log::error!(
                "{} {} items could neither be sent nor written to {} and are lost at exit: {}",
                self.memory.len(),
                self.label,
                self.queue.dir().display(),
                self.memory.why().unwrap_or_default()
            );
        }
    }
}
