//! The daemon's side of picomon-watchdog: the mail settings it hands its
//! watchdog at each (re)load ([`settings`]; the rest of the handoff is
//! the daemon's), and `picomon --watchdog-mail`,
//! which queues and delivers the watchdog's notice with them ([`serve`]).
//! The format itself is `picomon_common::handoff`'s.

use std::path::Path;
use std::time::Duration;

use picomon_common::handoff::{MailRequest, MailSettings};

use super::settings::{EmailConfig, MailSettings as Emails, SmtpTls, SubjectStyle};

use super::smtp::{read_password, Smtp};

/// How long the watchdog's notice and what a dead daemon left in the
/// outbox may take to go out.
pub const DELIVER_WITHIN: Duration = Duration::from_secs(30);

/// The mail settings the watchdog is handed, with the SMTP password read
/// now (by the daemon, before it drops privileges).
pub fn settings(e: &EmailConfig) -> MailSettings {
    // An unreadable password file is the daemon's own start-up error; the
    // watchdog then gets no password and says so when it mails.
    let smtp_password = read_password(e).ok().flatten();
    MailSettings {
        to: e.to.clone(),
        addr_from: e.addr_from.clone(),
        smtp_host: e.smtp_host.clone(),
        smtp_tls: match e.smtp_tls {
            SmtpTls::None => "none",
            SmtpTls::Starttls => "starttls",
            SmtpTls::Tls => "tls",
        }
        .into(),
        smtp_user: e.smtp_user.clone(),
        smtp_password,
        smtp_password_file: e.smtp_password_file.clone(),
        smtp_ca_file: e.smtp_ca_file.clone(),
        smtp_retry_timeout_ms: e.smtp_retry_timeout.as_millis() as u64,
        subject_tpl: e.subject_tpl.clone(),
        subject_style: match e.subject_style {
            SubjectStyle::Thread => "thread",
            SubjectStyle::State => "state",
        }
        .into(),
        watchdog_subject: e.watchdog_subject.clone(),
    }
}

/// The mail settings back from a handoff (what a notice needs; the
/// report and digest settings are the daemon's only).
fn email_config(m: &MailSettings) -> EmailConfig {
    EmailConfig {
        to: m.to.clone(),
        addr_from: m.addr_from.clone(),
        smtp_host: m.smtp_host.clone(),
        smtp_tls: match m.smtp_tls.as_str() {
            "starttls" => SmtpTls::Starttls,
            "tls" => SmtpTls::Tls,
            _ => SmtpTls::None,
        },
        smtp_user: m.smtp_user.clone(),
        smtp_password_file: m.smtp_password_file.clone(),
        smtp_ca_file: m.smtp_ca_file.clone(),
        smtp_retry_timeout: Duration::from_millis(m.smtp_retry_timeout_ms),
        subject_tpl: m.subject_tpl.clone(),
        subject_style: match m.subject_style.as_str() {
            "state" => SubjectStyle::State,
            _ => SubjectStyle::Thread,
        },
        report_every: Duration::ZERO,
        report_subject: String::new(),
        watchdog_subject: m.watchdog_subject.clone(),
        digest_over: usize::MAX,
        // The watchdog's notices are about picomon, not a check's thread.
        reply_to: String::new(),
        ack_from: Vec::new(),
        ack_secret_file: String::new(),
        availability: None,
    }
}

/// `picomon --watchdog-mail`: queues the request's mail in its outbox and
/// delivers the outbox (the notice and whatever the dead daemon left).
/// Returns how many mails went out.
pub fn serve(req: &MailRequest) -> anyhow::Result<usize> {
    let e = email_config(&req.mail);
    let origin: &Path = &req.config;
    let nobody = crate::model::ContactBook::default();
    let cfg = Emails {
        emails: &e,
        // The watchdog's notice goes to config.emails.to only.
        contacts: &nobody,
        config_path: origin,
        // The watchdog's notice links to no status page.
        listen: None,
    };
    let smtp = || Smtp::with_password(&e, req.mail.smtp_password.clone());
    match super::queue_mail_with(cfg, &smtp, &req.state_dir, &req.subject, &req.body) {
        Ok(super::QueuedMail::SentDirectly(answer)) => {
            log::info!("the outbox cannot be written; sent at once: {answer}")
        }
        Ok(super::QueuedMail::InOutbox(_)) => {}
        Err(err) => log::error!("cannot queue the watchdog mail: {err:#}"),
    }
    let smtp = smtp().map_err(|m| anyhow::anyhow!("{}: {m}", origin.display()))?;
    super::deliver_outbox_with(&smtp, e.smtp_retry_timeout, &req.state_dir, DELIVER_WITHIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_settings_come_back_as_they_were_handed_over() {
        let e = EmailConfig {
            to: vec!["ops@example.org".into()],
            addr_from: "picomon <p@example.org>".into(),
            smtp_host: vec!["mx:25".into(), "mx2:465".into()],
            smtp_tls: SmtpTls::Tls,
            smtp_user: String::new(),
            smtp_password_file: String::new(),
            smtp_ca_file: "/etc/ca.pem".into(),
            smtp_retry_timeout: Duration::from_secs(7),
            subject_tpl: "{state} {check}".into(),
            subject_style: SubjectStyle::State,
            report_every: Duration::ZERO,
            report_subject: String::new(),
            watchdog_subject: "[picomon] gone".into(),
            digest_over: usize::MAX,
            reply_to: String::new(),
            ack_from: Vec::new(),
            ack_secret_file: String::new(),
            availability: None,
        };
        assert_eq!(email_config(&settings(&e)), e);
    }
}
