//! The interface between the daemon loop and whoever tells people: the loop
//! hands over transitions (batched per tick) and asks for periodic work; the
//! mail module implements it, and so do the channels of `config.notify`.
//!
//! - [`spec`]: `webhook()`, `command()`, `alertmanager()` in the config.
//! - [`format`]: what each receiver is sent (Slack, ntfy, Alertmanager...).
//! - [`post`]: a rendered notification as its queue keeps it.
//! - [`deliver`]: HTTP and program runs as the queue's deliverers.
//! - [`channels`]: the channels as one notifier; [`fanout`]: mail + them.

pub mod channel;
pub mod contacts;
pub mod fanout;
pub mod mail;

use crate::alert::{Phase, Transition};
use crate::clock::UnixMicros;
use crate::model::Status;

/// The thread of an outage of `check_id` that began at `since`: the
/// channels' `thread` field, and what `picomon status CHECK` shows.
pub fn thread_id(check_id: &str, since: UnixMicros) -> String {
    format!(
        "picomon.{:016x}.{}@{}",
        mail::compose::stable_hash(check_id),
        since,
        crate::host::this_host()
    )
}

/// A transition with what a message about it needs to say.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    pub check_id: String,
    pub name: String,
    pub dest: String,
    pub transition: Transition,
    /// The check's full output of the run that caused the transition.
    pub output: String,
    /// Dependents this check's failure makes UNREACHABLE (their names, "name
    /// on dest"): they send nothing of their own. Empty for most notices.
    pub unreachable: Vec<String>,
    /// Addresses the thread has been escalated to (mail sends every later
    /// mail of the thread to them too). Empty until an escalation step.
    pub escalated_to: Vec<String>,
    /// What the new kinds count: the reminder's number, the state changes
    /// in the last 21 runs of a flapping start, the escalation step (1 =
    /// first); 0 otherwise.
    pub count: u32,
    /// The percent state change, for the flapping kinds.
    pub percent: Option<f32>,
    /// Whether `config.emails.to` (and the channels no contact owns) get
    /// it: false only for a Problem delivered late to a contact.
    pub to_everyone: bool,
    /// The check's contacts that get it (see [`contacts::who`]).
    pub contacts: Vec<String>,
    /// A Problem that waited for `contacts`' hours and goes out now.
    pub delayed: bool,
    /// Contacts whose waiting Problem ended with this notice: they get
    /// no mail, only a line in their next report.
    pub missed: Vec<String>,
}

impl Notice {
    /// A notice with nothing beyond the transition and its output.
    pub fn new(
        check_id: String,
        name: String,
        dest: String,
        transition: Transition,
        output: String,
    ) -> Notice {
        Notice {
            check_id,
            name,
            dest,
            transition,
            output,
            unreachable: Vec::new(),
            escalated_to: Vec::new(),
            count: 0,
            percent: None,
            to_everyone: true,
            contacts: Vec::new(),
            delayed: false,
            missed: Vec::new(),
        }
    }
}

/// A read-only view of one check, for reports and the state dump.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckView {
    pub check_id: String,
    pub name: String,
    pub dest: String,
    pub phase: Phase,
    pub status: Option<Status>,
    pub failed_runs: u32,
    pub retry: u32,
    pub outage_start: Option<UnixMicros>,
    pub last_run: Option<UnixMicros>,
    pub last_output: String,
    /// `by: comment` when the check is acknowledged (`picomon ack`).
    pub ack: Option<String>,
    /// The silence or maintenance window that keeps its mail back.
    pub silenced_by: Option<String>,
    /// UNREACHABLE: the failing check it depends on ("name on dest").
    pub unreachable_by: Option<String>,
    /// The percent state change over the last 21 runs; `None` when flap
    /// detection is off for it.
    pub flap_percent: Option<f32>,
    pub flapping: bool,
}

/// The checks as a notifier sees them at each tick: whether any is in
/// PROBLEM (asked every tick, so cheap) and their full views (built only
/// when a report is due: a view copies each check's last output).
pub trait CheckList {
    fn any_problem(&self) -> bool;
    fn views(&self) -> Vec<CheckView>;
    /// Lines about picomon itself for reports (overload, ...).
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}

impl CheckList for [CheckView] {
    fn any_problem(&self) -> bool {
        self.iter().any(|c| c.phase == Phase::Problem)
    }
    fn views(&self) -> Vec<CheckView> {
        self.to_vec()
    }
}

impl CheckList for Vec<CheckView> {
    fn any_problem(&self) -> bool {
        self.as_slice().any_problem()
    }
    fn views(&self) -> Vec<CheckView> {
        self.clone()
    }
}

impl<const N: usize> CheckList for [CheckView; N] {
    fn any_problem(&self) -> bool {
        self.as_slice().any_problem()
    }
    fn views(&self) -> Vec<CheckView> {
        self.to_vec()
    }
}

pub trait Notifier: Send {
    /// The transitions of one tick (or of one `-1` run), in order.
    fn transitions(&mut self, batch: Vec<Notice>, now: UnixMicros);

    /// Called after every tick: periodic work such as reports and outbox
    /// retries. Periods are measured on `now.steady` (a step of the wall
    /// clock neither stops nor bunches them); `now.wall` is for display.
    fn tick(&mut self, _now: crate::clock::Now, _checks: &dyn CheckList) {}

    /// Someone acknowledged a check in PROBLEM (`picomon ack`): tell its
    /// thread "Acknowledged by USER: COMMENT".
    fn acknowledged(&mut self, _check: &CheckView, _by: &str, _comment: &str, _now: UnixMicros) {}

    /// A mail about picomon itself, not about a check (a standby taking
    /// over or standing by again): to `emails.to`, outside any thread.
    fn note(&mut self, _subject: &str, _body: &str, _now: UnixMicros) {}

    /// Lines for the SIGUSR1 dump (outbox size, last error, ...).
    fn status_lines(&self) -> Vec<String> {
        Vec::new()
    }

    /// Notifications pending per channel name ("mail" for mail).
    fn pending(&self) -> Vec<(String, usize)> {
        Vec::new()
    }

    /// Mails waiting for delivery and when the oldest was composed: what
    /// `/api/v1/health` judges mail flow by (channels do not count).
    fn mail_backlog(&self) -> (usize, Option<UnixMicros>) {
        (0, None)
    }

    /// Last chance before exit: bounded by `deadline` seconds.
    fn shutdown(&mut self, _deadline: std::time::Duration) {}
}

/// A notifier that only logs (used when no mail is configured, and by `-1`
/// without `--notify`).
#[derive(Debug, Default)]
pub struct LogOnly;

impl Notifier for LogOnly {
    fn transitions(&mut self, _batch: Vec<Notice>, _now: UnixMicros) {}
}
