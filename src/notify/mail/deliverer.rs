//! Mail delivery through the shared queue's thread ([`crate::queue`]):
//! what an SMTP answer means for a queued mail.
//!
//! Per mail, each recipient's answer counts ([`settle`]): the recipients
//! that got it are dropped from the entry (rewritten atomically), a 4xx is
//! retried with backoff until delivered, a 5xx counts a try and after
//! [`MAX_PERMANENT_TRIES`] that recipient's copy goes to `outbox/failed/`.
//! A permanent answer to MAIL, DATA or the message does the same for the
//! whole mail. A refused mail is held back for its own backoff while the
//! mails behind it go on at once. Every server down stops the pass.

use std::time::Duration;

use crate::queue::Deliverer;

pub use crate::queue::worker::{pass, Holds, Queues};
pub use crate::queue::{next_backoff, MAX_BACKOFF, SEND_TIMEOUT};

use super::outbox::{Entry, MAX_PERMANENT_TRIES};
use super::smtp::{Delivery, SendError, Smtp};

/// What one try of a mail leaves behind: the recipients that got it are
/// `delivered`; parts given up (the mail for the recipients refused too
/// often, or the whole mail) are `failed`, for `outbox/failed/`.
pub type Settled = crate::queue::Settled<Entry>;

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
                    out.given_up.push(addr.clone());
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
                    out.given_up.extend(entry.to.iter().cloned());
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

/// SMTP as the outbox's deliverer: every server down (or no answer about
/// this mail) stops the pass; any answer is settled per recipient.
impl Deliverer for Smtp {
    type Item = Entry;

    fn attempt(&self, entry: &Entry, timeout: Duration) -> Result<Settled, String> {
        let result = self.deliver(entry, timeout);
        let Some(mut s) = settle(entry, &result) else {
            return Err(result.err().map(|e| e.to_string()).unwrap_or_default());
        };
        if let Ok(d) = &result {
            s.answer = format!("to {} by {}: {}", d.accepted.join(", "), d.server, d.answer);
        }
        Ok(s)
    }

    /// QUIT only once the outbox says what the server took.
    fn after_settled(&self) {
        self.finish_delivery();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::mail::outbox::{Outbox, Queued, FAILED_DIR};
    use crate::notify::mail::smtp::{SmtpError, Stage};

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
}
