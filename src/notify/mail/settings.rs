//! What mail needs of a config: `config.emails.*` and, for messages, the
//! config file's path. The config builds these; mail never reads the
//! config itself.

use std::path::Path;
use std::time::Duration;

/// TLS mode of the SMTP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    None,
    Starttls,
    Tls,
}

/// How the subjects of a check's Update and Recovery mails are made
/// (`emails.subject_style`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubjectStyle {
    /// "Re: " + the Problem mail's subject, as rendered then.
    Thread,
    /// `subject_tpl` rendered with the mail's own state, as picomon's
    /// Python original did; still threaded by its headers.
    State,
}

/// `config.emails.*`.
#[derive(Clone, Debug, PartialEq)]
pub struct EmailConfig {
    pub to: Vec<String>,
    pub addr_from: String,
    /// Failover list, in order; each `host[:port]`.
    pub smtp_host: Vec<String>,
    pub smtp_tls: SmtpTls,
    pub smtp_user: String,
    pub smtp_password_file: String,
    /// Extra CA certificates (PEM) to trust, for private CAs.
    pub smtp_ca_file: String,
    pub smtp_retry_timeout: Duration,
    pub subject_tpl: String,
    pub subject_style: SubjectStyle,
    pub report_every: Duration,
    pub report_subject: String,
    pub watchdog_subject: String,
    pub digest_over: usize,
    /// Where replies to alerts go (`picomon mail-in`); "" = nowhere.
    pub reply_to: String,
    /// Who besides a check's contacts may act by replying: addresses or
    /// `@domain`.
    pub ack_from: Vec<String>,
    /// The secret of the thread tokens; "" = no token.
    pub ack_secret_file: String,
    /// `config.emails.availability`; `None`: no availability mail.
    pub availability: Option<AvailabilityMail>,
}

/// `config.emails.availability = #{ every, at }`: the periodic mail of
/// each check's availability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvailabilityMail {
    /// Seconds: the period a mail covers, and between two mails.
    pub every: u64,
    /// The local time (and weekday) it goes out; `None`: `every` after
    /// the last one.
    pub at: Option<crate::schedule::DayTime>,
}

/// The mail settings of one config, and its file for messages.
#[derive(Clone, Copy, Debug)]
pub struct MailSettings<'a> {
    pub emails: &'a EmailConfig,
    /// Who else gets a check's mail, and when.
    pub contacts: &'a crate::model::ContactBook,
    pub config_path: &'a Path,
    /// `config.listen`: a Problem mail links to the status page there.
    pub listen: Option<std::net::SocketAddr>,
}
