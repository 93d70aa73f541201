//! Several notifiers as one: mail and the channels of `config.notify` get
//! the same transitions, each through its own queue.

use std::time::Duration;

use crate::clock::UnixMicros;

use super::{CheckList, CheckView, Notice, Notifier};

/// Hands everything to each notifier in turn.
pub struct FanOut(pub Vec<Box<dyn Notifier>>);

impl Notifier for FanOut {
    fn transitions(&mut self, batch: Vec<Notice>, now: UnixMicros) {
        for n in &mut self.0 {
            n.transitions(batch.clone(), now);
        }
    }

    fn tick(&mut self, now: crate::clock::Now, checks: &dyn CheckList) {
        for n in &mut self.0 {
            n.tick(now, checks);
        }
    }

    fn acknowledged(&mut self, check: &CheckView, by: &str, comment: &str, now: UnixMicros) {
        for n in &mut self.0 {
            n.acknowledged(check, by, comment, now);
        }
    }

    fn note(&mut self, subject: &str, body: &str, now: UnixMicros) {
        for n in &mut self.0 {
            n.note(subject, body, now);
        }
    }

    fn status_lines(&self) -> Vec<String> {
        self.0.iter().flat_map(|n| n.status_lines()).collect()
    }

    fn pending(&self) -> Vec<(String, usize)> {
        self.0.iter().flat_map(|n| n.pending()).collect()
    }

    fn mail_backlog(&self) -> (usize, Option<UnixMicros>) {
        self.0
            .iter()
            .map(|n| n.mail_backlog())
            .fold((0, None), |(n, a), (m, b)| {
                (n + m, a.into_iter().chain(b).min())
            })
    }

    fn shutdown(&mut self, deadline: Duration) {
        std::thread::scope(|s| {
            for n in &mut self.0 {
                s.spawn(move || n.shutdown(deadline));
            }
        });
    }
}
