//! Mail: composition, the durable outbox, SMTP delivery.
//! The outbox is the shared queue of [`crate::queue`], as every
//! notification channel's is.
//!
//! ```text
//!  daemon loop --transitions/tick--> MailNotifier --compose--> Entry
//!                                         | write (tmp, fsync, rename)
//!                                         v           \ cannot write:
//!                                   state_dir/outbox/   memory queue
//!                                         |     ^-------' (every tick)
//!                                         v
//!                 sender thread --> SMTP, recipient by recipient
//!                 (done: removed; 4xx: backoff; 5xx x3: outbox/failed/)
//! ```
//!
//! - [`compose`]: Problem/Update/Recovery threads, digest, report, test mail.
//! - [`audience`]: which mails one tick's notices become, for
//!   `config.emails.to` and the checks' contacts.
//! - [`outbox`]: a mail as an item of the shared queue, one file per mail
//!   in `state_dir/outbox/`.
//! - [`smtp`]: lettre + rustls; plain, STARTTLS, implicit TLS, AUTH.
//! - [`sender`]: what an SMTP answer means for a queued mail (the shared
//!   queue's thread delivers it, with backoff).
//!
//! The subject of each open outage's Problem mail and the time of the last
//! report are kept in `state_dir/mail-state`, so an Update or Recovery sent
//! by a restarted daemon still says `Re: ` + the exact subject of the
//! original mail, and a restart does not reset the report period.

pub mod audience;
pub mod compose;
pub mod deliverer;
pub mod outbox;
pub mod settings;
pub mod smtp;
pub mod token;
pub mod watchdog;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use serde::{Deserialize, Serialize};

use crate::alert::TransitionKind;
use crate::clock::{local_datetime, now_unix_micros, UnixMicros};
use crate::notify::{CheckList, CheckView, Notice, Notifier};
use crate::queue::Courier;

use crate::queue::Kind as MailKind;
use audience::Group;
use compose::Composer;
use deliverer::Queues;

/// Mails kept in memory while the outbox cannot be written (the shared
/// queue's fallback).
type MemoryQueue = crate::queue::MemoryQueue<outbox::Entry>;
use outbox::{Entry, Outbox};
pub use settings::MailSettings;
use smtp::Smtp;

/// Most outages kept per contact for its next report.
const MISSED_MAX: usize = 100;

/// The file (in `state_dir`) that remembers the Problem subject per open
/// outage and the last report time.
pub const MAIL_STATE_FILE: &str = "mail-state";

/// The mails a capturing notifier composed, oldest first.
pub type Captured = std::sync::Arc<std::sync::Mutex<Vec<Entry>>>;

/// The open thread of one check's outage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Thread {
    outage_start: UnixMicros,
    subject: String,
    /// The Message-ID of the mail that announced the outage when it is
    /// not the Problem mail's own (a digest): later mails reply to it, so
    /// their `In-Reply-To` names a mail the reader has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    root_id: Option<String>,
    /// The addresses the thread was escalated to: the ack mail goes to
    /// them as well.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    escalated_to: Vec<String>,
    /// The contacts (names) that got a mail of the thread: the ack mail
    /// goes to them as well.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    contacts: Vec<String>,
}

impl Thread {
    fn new(outage_start: UnixMicros, subject: String) -> Thread {
        Thread {
            outage_start,
            subject,
            root_id: None,
            escalated_to: Vec::new(),
            contacts: Vec::new(),
        }
    }
}

/// What the mail side keeps across restarts (unknown fields ignored).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct MailState {
    #[serde(default)]
    threads: BTreeMap<String, Thread>,
    #[serde(default)]
    last_report: Option<UnixMicros>,
    /// By contact: outages that ended while their Problem waited for the
    /// contact's hours, for its next report.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    missed: BTreeMap<String, Vec<String>>,
    /// When the next availability mail is due (wall time): kept so a
    /// restart neither skips it nor sends it twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    next_availability: Option<UnixMicros>,
}

fn load_mail_state(state_dir: &Path) -> MailState {
    let path = state_dir.join(MAIL_STATE_FILE);
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
            log::warn!(
                "ignoring {} ({e}): updates of open outages will render their subject again",
                path.display()
            );
            MailState::default()
        }),
        Err(_) => MailState::default(),
    }
}

/// Where one mail goes in its check's thread (see [`compose::InThread`]).
struct Placed {
    start: UnixMicros,
    subject: Option<String>,
    root: bool,
    root_id: Option<String>,
}

impl Placed {
    fn as_thread(&self) -> compose::InThread<'_> {
        compose::InThread {
            start: self.start,
            subject: self.subject.as_deref(),
            root: self.root,
            root_id: self.root_id.as_deref(),
        }
    }
}

/// The [`Notifier`] that mails: composes, queues durably, and lets the
/// sender thread deliver.
pub struct MailNotifier {
    composer: Composer,
    /// Who else gets a check's mail (see [`crate::notify::contacts`]).
    contacts: crate::model::ContactBook,
    /// Each contact's parsed `to` and `cc`, by position.
    boxes: Vec<(Vec<lettre::message::Mailbox>, Vec<lettre::message::Mailbox>)>,
    /// The outbox, its memory fallback and the delivery thread.
    courier: Courier<Entry>,
    state_dir: PathBuf,
    saved: MailState,
    digest_over: usize,
    report_every: Duration,
    availability: Option<settings::AvailabilityMail>,
    /// `picomon simulate`: composed mails go here instead of the outbox.
    capture: Option<Captured>,
    /// The wall clock's offset from the daemon's timeline at the last tick
    /// ([`crate::clock::Now::offset`]); `None` before the first, while
    /// `saved.last_report` is still the wall time read from the file.
    offset: Option<i64>,
}

impl std::fmt::Debug for MailNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailNotifier")
            .field("outbox", &self.courier.queue().dir())
            .finish()
    }
}

impl MailNotifier {
    /// Checks the mail settings, creates `state_dir/outbox/` and starts the
    /// delivery thread (which first sends whatever an earlier process left).
    /// An outbox that cannot be created is not fatal: mail then waits in
    /// memory until it can be.
    pub fn new<'a>(
        cfg: impl Into<MailSettings<'a>>,
        state_dir: &Path,
    ) -> anyhow::Result<MailNotifier> {
        let cfg = cfg.into();
        let e = cfg.emails;
        let composer = Composer::new(e)
            .map_err(|m| anyhow!("{}: {m}", cfg.config_path.display()))?
            .with_status_page(cfg.listen);
        let boxes = cfg
            .contacts
            .contacts
            .iter()
            .map(|c| Composer::contact_mailboxes(&c.name, &c.to, &c.cc))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|m| anyhow!("{}: {m}", cfg.config_path.display()))?;
        if e.to.is_empty()
            && boxes
                .iter()
                .any(|(to, cc)| !to.is_empty() || !cc.is_empty())
        {
            // Contacts are mailed even when config.emails.to is empty: the
            // sender must then be right too.
            if let Err(err) = e.addr_from.parse::<lettre::message::Mailbox>() {
                return Err(anyhow!(
                    "{}: config.emails.addr_from: {:?} is not a mail address ({err}); \
                     write it as \"picomon <picomon@example.org>\"",
                    cfg.config_path.display(),
                    e.addr_from
                ));
            }
        }
        let smtp = Smtp::new(e).map_err(|m| anyhow!("{}: {m}", cfg.config_path.display()))?;
        let courier = Courier::start(
            "mail-sender",
            "mail",
            smtp,
            Outbox::at(state_dir),
            e.smtp_retry_timeout,
        )
        .context("cannot start the mail delivery thread")?;
        let mut saved = load_mail_state(state_dir);
        // A contact gone from the config gets no more reports.
        saved
            .missed
            .retain(|name, _| cfg.contacts.get(name).is_some());
        Ok(MailNotifier {
            composer,
            contacts: cfg.contacts.clone(),
            boxes,
            courier,
            state_dir: state_dir.to_path_buf(),
            saved,
            digest_over: e.digest_over,
            report_every: e.report_every,
            availability: e.availability,
            capture: None,
            offset: None,
        })
    }

    /// A notifier that composes every mail as the daemon's would and keeps
    /// it in the list it returns, never in an outbox: what `picomon
    /// simulate` shows. `state_dir` holds its thread state (a scratch
    /// folder); its delivery thread finds nothing to send there.
    pub fn capturing<'a>(
        cfg: impl Into<MailSettings<'a>>,
        state_dir: &Path,
    ) -> anyhow::Result<(MailNotifier, Captured)> {
        let mut n = MailNotifier::new(cfg, state_dir)?;
        let captured = Captured::default();
        n.capture = Some(captured.clone());
        Ok((n, captured))
    }

    /// When the last report was queued, or when the current report period
    /// began: a steady time once the notifier has ticked (wall time before).
    /// Kept in `state_dir/mail-state` as wall time.
    pub fn last_report(&self) -> Option<UnixMicros> {
        self.saved.last_report
    }

    /// Sets [`last_report`](Self::last_report), e.g. from a saved state.
    pub fn set_last_report(&mut self, at: Option<UnixMicros>) {
        if self.saved.last_report != at {
            self.saved.last_report = at;
            self.save_mail_state();
        }
    }

    /// The outbox directory.
    pub fn outbox_dir(&self) -> &Path {
        self.courier.queue().dir()
    }

    /// How many mails wait in memory because the outbox cannot be written.
    pub fn memory_queue_len(&self) -> usize {
        self.courier.memory_len()
    }

    /// How many mails wait for delivery (outbox and memory).
    pub fn pending_mails(&self) -> usize {
        self.courier.pending()
    }

    /// Queues a mail: in the outbox, or in memory when the outbox cannot
    /// be written (it is sent from there and written later).
    fn queue(&self, entry: Result<Entry, String>, what: &str, kind: MailKind) -> bool {
        match entry {
            Ok(e) if self.capture.is_some() => {
                if let Some(c) = &self.capture {
                    c.lock().unwrap_or_else(|p| p.into_inner()).push(e);
                }
                false
            }
            Ok(e) => {
                self.courier.push(e, kind, what);
                true
            }
            Err(e) => {
                log::error!("cannot compose the {what} mail: {e}");
                false
            }
        }
    }

    fn flush_memory(&self) {
        self.courier.flush_memory();
    }

    /// Keeps the Problem subject of each open outage, for `Re: ` subjects,
    /// and says where the mail of `n` goes: the root of a new thread or a
    /// reply in the check's thread.
    fn track_thread(&mut self, n: &Notice) -> Placed {
        let t = &n.transition;
        let root = |start, subject: String| Placed {
            start,
            subject: Some(subject),
            root: true,
            root_id: None,
        };
        let reply = |start, th: Option<Thread>| Placed {
            start,
            subject: th.as_ref().map(|th| th.subject.clone()),
            root: false,
            root_id: th.and_then(|th| th.root_id),
        };
        if let Some(th) = self.saved.threads.get_mut(&n.check_id) {
            for a in &n.escalated_to {
                if !th.escalated_to.contains(a) {
                    th.escalated_to.push(a.clone());
                }
            }
        }
        if t.opens_outage() {
            let subject = self.composer.problem_subject(n);
            self.saved.threads.insert(
                n.check_id.clone(),
                Thread::new(t.outage_start, subject.clone()),
            );
            return root(t.outage_start, subject);
        }
        let same_outage = |th: &Thread| th.outage_start == t.outage_start;
        match t.kind {
            // In the thread of the open outage, else a thread of its own.
            TransitionKind::FlappingStart => match self.saved.threads.get(&n.check_id) {
                Some(th) => reply(th.outage_start, Some(th.clone())),
                None => {
                    let subject = self.composer.flapping_subject(n);
                    self.saved
                        .threads
                        .insert(n.check_id.clone(), Thread::new(t.at, subject.clone()));
                    root(t.at, subject)
                }
            },
            // Ends whichever thread is open.
            TransitionKind::FlappingStop => match self.saved.threads.remove(&n.check_id) {
                Some(th) => reply(th.outage_start, Some(th)),
                None => reply(t.outage_start, None),
            },
            TransitionKind::Recovery => reply(
                t.outage_start,
                self.saved.threads.remove(&n.check_id).filter(same_outage),
            ),
            _ => reply(
                t.outage_start,
                self.saved
                    .threads
                    .get(&n.check_id)
                    .filter(|th| same_outage(th))
                    .cloned(),
            ),
        }
    }

    /// Whether anyone at all is mailed: `config.emails.to` or a contact.
    fn has_anyone(&self) -> bool {
        self.composer.has_recipients()
            || self
                .boxes
                .iter()
                .any(|(to, cc)| !to.is_empty() || !cc.is_empty())
    }

    /// The groups a notice is mailed to: `config.emails.to` (unless it is
    /// a contact's late Problem) and its contacts that have addresses.
    fn groups_of(&self, n: &Notice) -> Vec<Group> {
        let mut out = Vec::new();
        if n.to_everyone && self.composer.has_recipients() {
            out.push(Group::Everyone);
        }
        for name in &n.contacts {
            let Some(i) = self.contacts.contacts.iter().position(|c| &c.name == name) else {
                continue;
            };
            let (to, cc) = &self.boxes[i];
            let g = Group::Contact(i as u16);
            if (!to.is_empty() || !cc.is_empty()) && !out.contains(&g) {
                out.push(g);
            }
        }
        out
    }

    /// A composer writing to these groups at once (each address once).
    fn composer_for(&self, groups: &[Group]) -> std::borrow::Cow<'_, Composer> {
        if groups == [Group::Everyone] {
            return std::borrow::Cow::Borrowed(&self.composer);
        }
        let (mut to, mut cc) = (Vec::new(), Vec::new());
        let mut tag = String::new();
        let add = |list: &mut Vec<_>, from: &[lettre::message::Mailbox]| {
            for m in from {
                if !list.contains(m) {
                    list.push(m.clone());
                }
            }
        };
        for g in groups {
            match *g {
                Group::Everyone => add(&mut to, self.composer.recipients()),
                Group::Contact(i) => {
                    let (t, c) = &self.boxes[usize::from(i)];
                    add(&mut to, t);
                    add(&mut cc, c);
                    tag.push_str(&self.contacts.contacts[usize::from(i)].name);
                    tag.push('\n');
                }
            }
        }
        std::borrow::Cow::Owned(self.composer.addressed(to, cc, &tag))
    }

    /// Where a contact's late Problem goes: into the thread the others
    /// got, which it does not change.
    fn place_late(&self, n: &Notice) -> Placed {
        let th = self
            .saved
            .threads
            .get(&n.check_id)
            .filter(|th| th.outage_start == n.transition.outage_start);
        Placed {
            start: n.transition.outage_start,
            subject: th.map(|th| th.subject.clone()),
            root: false,
            root_id: th.and_then(|th| th.root_id.clone()),
        }
    }

    /// The contacts a thread's mails went to, and the outages that ended
    /// while a contact's Problem waited (for its next report).
    fn note_contacts(&mut self, n: &Notice) {
        if let Some(th) = self.saved.threads.get_mut(&n.check_id) {
            for c in &n.contacts {
                if !th.contacts.contains(c) {
                    th.contacts.push(c.clone());
                }
            }
        }
        let t = &n.transition;
        for m in &n.missed {
            let line = format!(
                "{} on {}: failing from {} to {} ({}), before your hours began; recovered",
                n.name,
                n.dest,
                local_datetime(t.outage_start),
                local_datetime(t.at),
                crate::clock::hms(t.outage_micros())
            );
            let lines = self.saved.missed.entry(m.clone()).or_default();
            // A bounded list: a flapping check must not grow it forever.
            if lines.len() < MISSED_MAX {
                lines.push(line);
            }
        }
    }

    /// Each contact's report, inside its hours: the checks that are its,
    /// when one is in PROBLEM or an outage ended before its hours began.
    fn contact_reports(&mut self, views: &[CheckView], notes: &[String], wall: UnixMicros) -> bool {
        let at = crate::notify::contacts::LocalMinute::at(wall);
        let mut reported = Vec::new();
        for (i, c) in self.contacts.contacts.iter().enumerate() {
            let (to, cc) = &self.boxes[i];
            if (to.is_empty() && cc.is_empty()) || !crate::notify::contacts::is_open(c, at) {
                continue;
            }
            let pos = i as u16;
            let mine: Vec<CheckView> = views
                .iter()
                .filter(|v| {
                    self.contacts
                        .picks
                        .get(&v.check_id)
                        .is_some_and(|p| p.contains(&pos))
                })
                .cloned()
                .collect();
            let missed = self.saved.missed.get(&c.name).cloned().unwrap_or_default();
            if missed.is_empty() && !mine.any_problem() {
                continue;
            }
            let mut lines = notes.to_vec();
            lines.extend(missed);
            let entry = self
                .composer_for(&[Group::Contact(pos)])
                .report(&mine, &lines, wall);
            if self.queue(entry, "report", MailKind::Report) {
                reported.push(c.name.clone());
            }
        }
        if !reported.is_empty() {
            for name in &reported {
                self.saved.missed.remove(name);
            }
            self.save_mail_state();
        }
        !reported.is_empty()
    }

    /// Queues the availability mail when it is due at `wall` (local
    /// times of day are the wall clock's), over the period before it, for
    /// the config's checks; then saves when the next one is due. Queued
    /// before that is saved: a crash in between sends it twice (with the
    /// same Message-ID), never not at all.
    fn availability_mail(&mut self, wall: UnixMicros, checks: &dyn CheckList) {
        let Some(a) = self.availability else {
            return;
        };
        if !self.composer.has_recipients() {
            return;
        }
        let every = i64::try_from(a.every)
            .unwrap_or(i64::MAX / 4)
            .saturating_mul(1_000_000);
        let due = crate::schedule::kept_due(self.saved.next_availability, every, a.at, wall);
        if self.saved.next_availability != Some(due) {
            self.saved.next_availability = Some(due);
            self.save_mail_state();
        }
        if wall < due {
            return;
        }
        let from = wall - every;
        let ids: std::collections::HashSet<String> =
            checks.views().into_iter().map(|v| v.check_id).collect();
        let rows = match crate::history::report::read(
            &self.state_dir,
            |id| ids.contains(id),
            from,
            wall,
        ) {
            Ok(rows) => rows,
            Err(e) => {
                // Tried again next tick: a fault delays it.
                log::error!("availability mail: cannot read the outage log: {e}");
                return;
            }
        };
        let period = crate::duration::format(a.every);
        let entry = self.composer.availability(
            &period,
            &crate::history::report::text(&rows, from, wall),
            &crate::history::report::csv(&rows, from, wall),
            &crate::clock::local_datetime(wall)[..10],
            due,
            wall,
        );
        if self.queue(entry, "availability", MailKind::Report) {
            self.courier.wake();
        }
        self.saved.next_availability = Some(crate::schedule::following_due(every, a.at, due, wall));
        self.save_mail_state();
    }

    /// Saves `state_dir/mail-state`, the report time as wall time.
    fn save_mail_state(&self) {
        let path = self.state_dir.join(MAIL_STATE_FILE);
        let offset = self.offset.unwrap_or(0);
        let on_disk = MailState {
            last_report: self.saved.last_report.map(|t| t.saturating_add(offset)),
            ..self.saved.clone()
        };
        let result = serde_json::to_vec_pretty(&on_disk)
            .map_err(std::io::Error::other)
            .and_then(|b| crate::fs::write_atomic(&path, &b));
        if let Err(e) = result {
            log::error!("cannot save the mail state: {e}");
        }
    }
}

impl Notifier for MailNotifier {
    fn transitions(&mut self, batch: Vec<Notice>, now: UnixMicros) {
        if batch.is_empty() {
            return;
        }
        for n in &batch {
            // The loop logs transitions at info already.
            log::debug!(
                "{} {}: {} on {}: {}",
                n.transition.kind.as_str(),
                n.transition.status,
                n.name,
                n.dest,
                n.output.lines().next().unwrap_or("")
            );
        }
        if !self.has_anyone() {
            log::debug!("config.emails.to is empty and no contact has an address: no mail sent");
            return;
        }
        let places: Vec<Placed> = batch
            .iter()
            .map(|n| {
                if n.delayed {
                    self.place_late(n)
                } else {
                    self.track_thread(n)
                }
            })
            .collect();
        for n in &batch {
            self.note_contacts(n);
        }
        let groups: Vec<Vec<Group>> = batch.iter().map(|n| self.groups_of(n)).collect();
        let plan = audience::plan(&groups, |g| match g {
            Group::Contact(i) if self.contacts.contacts[usize::from(i)].digest => 1,
            _ => self.digest_over,
        });
        let mut queued = false;
        for (g, list) in &plan.digests {
            if *g == Group::Everyone {
                // The threads the digest opens are its: their later mails
                // reply to it (the Problem mails named in it were never sent).
                let digest_id = self.composer.digest_id(now);
                for &i in list {
                    let n = &batch[i];
                    if let (true, Some(th)) =
                        (places[i].root, self.saved.threads.get_mut(&n.check_id))
                    {
                        th.root_id = Some(digest_id.clone());
                    }
                }
            }
            let notices: Vec<Notice> = list.iter().map(|&i| batch[i].clone()).collect();
            let entry = self.composer_for(&[*g]).digest(&notices, now);
            queued |= self.queue(entry, "digest", MailKind::Alert);
        }
        for (i, gs) in &plan.mails {
            let n = &batch[*i];
            let entry = self
                .composer_for(gs)
                .transition_in(n, places[*i].as_thread(), now);
            queued |= self.queue(entry, n.transition.kind.as_str(), MailKind::Alert);
        }
        self.save_mail_state();
        if queued {
            self.courier.wake();
        }
    }

    fn acknowledged(&mut self, check: &CheckView, by: &str, comment: &str, now: UnixMicros) {
        let thread = self
            .saved
            .threads
            .get(&check.check_id)
            .filter(|th| Some(th.outage_start) == check.outage_start);
        // Everyone the thread went to: config.emails.to and the contacts
        // that got its mails.
        let mut n = Notice::new(
            check.check_id.clone(),
            check.name.clone(),
            check.dest.clone(),
            crate::alert::Transition {
                kind: TransitionKind::Update,
                status: check.status.unwrap_or(crate::model::Status::Unknown),
                previous: None,
                outage_start: check.outage_start.unwrap_or(now),
                failed_runs: check.failed_runs,
                at: now,
            },
            String::new(),
        );
        n.contacts = thread.map(|th| th.contacts.clone()).unwrap_or_default();
        let groups = self.groups_of(&n);
        if groups.is_empty() {
            return;
        }
        let entry = self.composer_for(&groups).acknowledgement(
            check,
            compose::AckThread {
                subject: thread.map(|th| th.subject.as_str()),
                root_id: thread.and_then(|th| th.root_id.as_deref()),
                escalated_to: thread.map(|th| th.escalated_to.as_slice()).unwrap_or(&[]),
            },
            by,
            comment,
            now,
        );
        if self.queue(entry, "acknowledgement", MailKind::Alert) {
            self.courier.wake();
        }
    }

    fn tick(&mut self, at: crate::clock::Now, checks: &dyn CheckList) {
        self.flush_memory();
        // The report period is counted on the daemon's timeline (a wall
        // clock set back neither stops reports nor sends a burst after a
        // step forward); the file keeps wall time, saved again after a step.
        let offset = at.offset();
        match self.offset.replace(offset) {
            None => self.saved.last_report = self.saved.last_report.map(|t| at.to_steady(t)),
            Some(seen) if (offset - seen).abs() > crate::clock::STEP => self.save_mail_state(),
            Some(_) => {}
        }
        self.availability_mail(at.wall, checks);
        let now = at.steady;
        if self.report_every.is_zero() || !self.has_anyone() {
            return;
        }
        if !checks.any_problem() {
            // No PROBLEM, no report; the next outage starts a new period.
            self.set_last_report(None);
            return;
        }
        match self.saved.last_report {
            None => self.set_last_report(Some(now)),
            Some(t) if now - t >= self.report_every.as_micros() as i64 => {
                // config.emails.to gets every check; each contact its own.
                let (views, notes) = (checks.views(), checks.notes());
                let mut queued = self.composer.has_recipients()
                    && self.queue(
                        self.composer.report(&views, &notes, at.wall),
                        "report",
                        MailKind::Report,
                    );
                queued |= self.contact_reports(&views, &notes, at.wall);
                if queued {
                    self.courier.wake();
                }
                self.set_last_report(Some(now));
            }
            Some(_) => {}
        }
    }

    fn note(&mut self, subject: &str, body: &str, now: UnixMicros) {
        if !self.composer.has_recipients() {
            return;
        }
        let subject = self.composer.note_subject(subject);
        if self.queue(
            self.composer.plain(&subject, body, now),
            "note",
            MailKind::Alert,
        ) {
            self.courier.wake();
        }
    }

    fn status_lines(&self) -> Vec<String> {
        self.courier.status_lines()
    }

    fn pending(&self) -> Vec<(String, usize)> {
        vec![("mail".into(), self.courier.pending())]
    }

    fn mail_backlog(&self) -> (usize, Option<UnixMicros>) {
        (self.courier.pending(), self.courier.oldest())
    }

    fn shutdown(&mut self, deadline: Duration) {
        self.save_mail_state();
        self.courier.shutdown(deadline);
    }
}

/// `picomon --test-mail`: one mail straight through the configured path.
/// Ok: the server's answer (`"250 ..."`); Err: the exact failure.
pub fn test_mail<'a>(cfg: impl Into<MailSettings<'a>>) -> Result<String, String> {
    let cfg = cfg.into();
    let composer = Composer::new(cfg.emails)?;
    if !composer.has_recipients() {
        return Err(
            "config.emails.to is empty: set config.emails.to = [\"you@example.org\"] \
             to receive the test mail"
                .into(),
        );
    }
    let smtp = Smtp::new(cfg.emails)?;
    let now = now_unix_micros();
    let body = format!(
        "This is a test mail from picomon on {} (config {}), sent at {}.\n\
         If you read this, alert mail reaches you.\n",
        compose::hostname(),
        cfg.config_path.display(),
        local_datetime(now)
    );
    let entry = composer.plain(&composer.test_subject(), &body, now)?;
    let d = smtp
        .send(&entry, deliverer::SEND_TIMEOUT)
        .map_err(|e| e.to_string())?;
    if d.refused.is_empty() {
        return Ok(format!("{}: {}", d.server, d.answer));
    }
    Err(format!(
        "{}: delivered to [{}], refused: {}",
        d.server,
        d.accepted.join(", "),
        d.refusals()
    ))
}

/// One bounded delivery pass over `state_dir/outbox/` (used by the watchdog
/// for mail a dead daemon left). Returns how many mails went out; an error
/// says why the rest still waits.
pub fn deliver_outbox<'a>(
    cfg: impl Into<MailSettings<'a>>,
    state_dir: &Path,
    deadline: Duration,
) -> anyhow::Result<usize> {
    let cfg = cfg.into();
    let smtp = Smtp::new(cfg.emails).map_err(|m| anyhow!("{}: {m}", cfg.config_path.display()))?;
    deliver_outbox_with(&smtp, cfg.emails.smtp_retry_timeout, state_dir, deadline)
}

/// [`deliver_outbox`] through a given SMTP client.
pub(crate) fn deliver_outbox_with(
    smtp: &Smtp,
    retry: Duration,
    state_dir: &Path,
    deadline: Duration,
) -> anyhow::Result<usize> {
    let outbox = Outbox::open(state_dir)?;
    let memory = MemoryQueue::default();
    let q = Queues {
        label: "mail",
        deliverer: smtp,
        queue: &outbox,
        memory: &memory,
        base: retry,
    };
    let mut holds = deliverer::Holds::new();
    let res = deliverer::pass(&q, &mut holds, Some(Instant::now() + deadline), &|| false);
    if res.busy {
        return Err(anyhow!(
            "the outbox {} is being sent by another process",
            outbox.dir().display()
        ));
    }
    let left = outbox.list().map(|l| l.len()).unwrap_or(0);
    let error = res.error.or_else(|| {
        res.refused
            .last()
            .map(|(who, why)| format!("refused for {who}: {why}"))
    });
    match error {
        Some(e) => Err(anyhow!(
            "{} mails delivered, {left} still wait in {}: {e}",
            res.delivered,
            outbox.dir().display()
        )),
        None if left > 0 => Err(anyhow!(
            "{} mails delivered, {left} still wait in {} (out of time)",
            res.delivered,
            outbox.dir().display()
        )),
        None => Ok(res.delivered),
    }
}

/// Sends one composed mail at once (`picomon mail-in`'s answer); when
/// that fails it goes to the outbox, which the daemon's next delivery pass
/// sends. An error says why it is neither sent nor queued.
pub fn send_or_queue<'a>(
    cfg: impl Into<MailSettings<'a>>,
    state_dir: &Path,
    entry: &Entry,
) -> anyhow::Result<QueuedMail> {
    let cfg = cfg.into();
    let sent = Smtp::new(cfg.emails).and_then(|smtp| {
        smtp.send(entry, deliverer::SEND_TIMEOUT)
            .map_err(|e| e.to_string())
    });
    let why = match sent {
        Ok(d) if d.refused.is_empty() => {
            return Ok(QueuedMail::SentDirectly(format!(
                "{}: {}",
                d.server, d.answer
            )))
        }
        Ok(d) => format!("refused: {}", d.refusals()),
        Err(e) => e,
    };
    log::warn!("cannot send the mail at once ({why}); it waits in the outbox");
    Outbox::at(state_dir)
        .push(entry)
        .map(QueuedMail::InOutbox)
        .map_err(|e| anyhow!("{why}; and it cannot be queued: {e}"))
}

/// Where [`queue_mail`] put a mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueuedMail {
    /// In this outbox file; the next delivery pass sends it.
    InOutbox(PathBuf),
    /// The outbox could not be written, so it was sent at once: the
    /// server's answer.
    SentDirectly(String),
}

impl QueuedMail {
    /// The outbox file, when it went there.
    pub fn path(&self) -> Option<&Path> {
        match self {
            QueuedMail::InOutbox(p) => Some(p),
            QueuedMail::SentDirectly(_) => None,
        }
    }
}

/// Queues a mail with a given subject and body to `emails.to` through the
/// outbox (the watchdog's notice). It is sent by the next delivery pass;
/// when the outbox cannot be written (full or read-only disk) it is sent
/// at once instead, so the notice is not lost. An error says why it is
/// neither queued nor sent.
pub fn queue_mail<'a>(
    cfg: impl Into<MailSettings<'a>>,
    state_dir: &Path,
    subject: &str,
    body: &str,
) -> anyhow::Result<QueuedMail> {
    let cfg = cfg.into();
    let smtp = || Smtp::new(cfg.emails);
    queue_mail_with(cfg, &smtp, state_dir, subject, body)
}

/// [`queue_mail`] with a given way to make the SMTP client, used when the
/// mail must go at once.
pub(crate) fn queue_mail_with(
    cfg: MailSettings<'_>,
    smtp: &dyn Fn() -> Result<Smtp, String>,
    state_dir: &Path,
    subject: &str,
    body: &str,
) -> anyhow::Result<QueuedMail> {
    let composer =
        Composer::new(cfg.emails).map_err(|m| anyhow!("{}: {m}", cfg.config_path.display()))?;
    if !composer.has_recipients() {
        return Err(anyhow!(
            "{}: config.emails.to is empty, nobody to mail {subject:?} to",
            cfg.config_path.display()
        ));
    }
    let entry = composer
        .plain(subject, body, now_unix_micros())
        .map_err(|m| anyhow!(m))?;
    let outbox = Outbox::at(state_dir);
    let written = outbox.push(&entry);
    let err = match written {
        Ok(p) => return Ok(QueuedMail::InOutbox(p)),
        Err(e) => e,
    };
    log::error!("{err}; sending the mail {subject:?} at once instead");
    let smtp = smtp().map_err(|m| anyhow!("{}: {m}", cfg.config_path.display()))?;
    match smtp.send(&entry, deliverer::SEND_TIMEOUT) {
        Ok(d) if d.refused.is_empty() => Ok(QueuedMail::SentDirectly(format!(
            "{}: {}",
            d.server, d.answer
        ))),
        Ok(d) => Err(anyhow!(
            "{err}; sent at once to [{}], refused: {}",
            d.accepted.join(", "),
            d.refusals()
        )),
        Err(e) => Err(anyhow!("{err}; and sending it at once failed: {e}")),
    }
}
