//! SMTP delivery through lettre's connection with rustls: plain,
//! STARTTLS or implicit TLS, optional AUTH, extra CA certificates, and a
//! failover list of servers tried in order.
//!
//! The commands are sent one by one (MAIL, RCPT per recipient, DATA), so
//! each recipient's answer is seen: a refused address does not stop the
//! others. Every failure is an [`SmtpError`] naming the server, the stage,
//! the reply code and whether retrying can help; for TLS the rustls reason
//! (unknown issuer, name mismatch, expired) is taken from the error chain
//! and the message says what to change.

use std::fmt::Write as _;
use std::fs;
use std::sync::Mutex;
use std::time::Duration;

use lettre::address::Address;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{Certificate, SmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};

use super::settings::{EmailConfig, SmtpTls};

use super::outbox::Entry;

/// One entry of `emails.smtp_host`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Parses `host`, `host:port`, `[v6]` or `[v6]:port`; the default port is
/// 465 for implicit TLS, else 25.
pub fn parse_server(s: &str, tls: SmtpTls) -> Result<Server, String> {
    let default_port = if tls == SmtpTls::Tls { 465 } else { 25 };
    let bad = || {
        format!(
            "config.emails.smtp_host: {s:?} is not a server; write \"host\", \"host:port\" \
             or \"[ipv6]:port\""
        )
    };
    let s = s.trim();
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(bad)?;
        match after.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if after.is_empty() => (h, None),
            None => return Err(bad()),
        }
    } else if s.matches(':').count() > 1 {
        (s, None) // a bare IPv6 address
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err(bad());
    }
    let port = match port {
        Some(p) => p.parse().map_err(|_| bad())?,
        None => default_port,
    };
    Ok(Server {
        host: host.to_string(),
        port,
    })
}

/// The longest picomon waits for the answer to QUIT. The mail was
/// settled at the answer to its data; QUIT's answer changes nothing.
const QUIT_TIMEOUT: Duration = Duration::from_secs(2);

/// A ready SMTP client: servers, TLS set-up and credentials.
#[derive(Clone)]
pub struct Smtp {
    servers: Vec<Server>,
    tls: SmtpTls,
    credentials: Option<Credentials>,
    roots: Vec<Certificate>,
    /// The connection of the last delivery from the queue, left open until
    /// its outcome is stored ([`crate::queue::Deliverer::after_settled`]).
    parting: Parting,
}

/// An open connection waiting for its QUIT; a clone starts empty (it is
/// one delivery's, not the client's).
#[derive(Default)]
struct Parting(Mutex<Option<SmtpConnection>>);

impl Clone for Parting {
    fn clone(&self) -> Self {
        Parting::default()
    }
}

impl Parting {
    fn put(&self, conn: Option<SmtpConnection>) {
        let old = std::mem::replace(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()), conn);
        if let Some(c) = old {
            quit(c);
        }
    }

    fn take(&self) -> Option<SmtpConnection> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Says goodbye on a connection whose mail is settled: a slow or failing
/// answer is only logged.
fn quit(mut conn: SmtpConnection) {
    let _ = conn.set_timeout(Some(QUIT_TIMEOUT));
    if let Err(e) = conn.quit() {
        log::debug!("the SMTP server did not answer QUIT ({e}); the mail was already accepted");
    }
}

impl std::fmt::Debug for Smtp {
    /// Never prints the credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp")
            .field("servers", &self.servers)
            .field("tls", &self.tls)
            .field("auth", &self.credentials.is_some())
            .finish()
    }
}

impl Smtp {
    /// Reads the password file and the CA file; errors say which setting
    /// and which file, and how to fix it.
    pub fn new(e: &EmailConfig) -> Result<Smtp, String> {
        Smtp::with_password(e, read_password(e)?)
    }

    /// With the password already read (by the daemon that handed it to its
    /// watchdog); reads the CA file.
    pub fn with_password(e: &EmailConfig, password: Option<String>) -> Result<Smtp, String> {
        if e.smtp_host.is_empty() {
            return Err(
                "config.emails.smtp_host is empty: set it to \"host:port\" or a list".into(),
            );
        }
        let servers = e
            .smtp_host
            .iter()
            .map(|s| parse_server(s, e.smtp_tls))
            .collect::<Result<Vec<_>, _>>()?;
        let credentials = match (e.smtp_user.is_empty(), password) {
            (true, _) => None,
            (false, Some(p)) => Some(Credentials::new(e.smtp_user.clone(), p)),
            (false, None) => return Err(missing_password(e)),
        };
        let mut roots = Vec::new();
        if !e.smtp_ca_file.is_empty() {
            let pem = fs::read(&e.smtp_ca_file).map_err(|err| {
                format!(
                    "cannot read config.emails.smtp_ca_file {}: {err}",
                    e.smtp_ca_file
                )
            })?;
            let bad = || {
                format!(
                    "config.emails.smtp_ca_file {} holds no PEM certificate \
                     (expected -----BEGIN CERTIFICATE----- blocks)",
                    e.smtp_ca_file
                )
            };
            if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                return Err(bad());
            }
            roots.push(Certificate::from_pem(&pem).map_err(|_| bad())?);
        }
        Ok(Smtp {
            servers,
            tls: e.smtp_tls,
            credentials,
            roots,
            parting: Parting::default(),
        })
    }

    pub fn servers(&self) -> &[Server] {
        &self.servers
    }

    /// Sends one mail over the failover list: each server in order until
    /// one takes part in the transaction. Ok: which recipients it accepted
    /// and refused (a refused recipient does not stop the others); Err: the
    /// mail as a whole was not sent (every server unreachable, or the
    /// server's answer to MAIL, DATA or the message).
    pub fn send(&self, entry: &Entry, timeout: Duration) -> Result<Delivery, SendError> {
        let (result, open) = self.send_keeping_open(entry, timeout);
        if let Some(conn) = open {
            quit(conn);
        }
        result
    }

    /// [`send`](Self::send) without the QUIT: on success the connection is
    /// returned open, so the caller can store the outcome first. A crash
    /// or a server slow to answer QUIT then cannot send the mail twice.
    fn send_keeping_open(
        &self,
        entry: &Entry,
        timeout: Duration,
    ) -> (Result<Delivery, SendError>, Option<SmtpConnection>) {
        let mut errors = Vec::new();
        let (from, to) = match envelope(entry) {
            Ok(x) => x,
            Err(message) => {
                errors.push(SmtpError {
                    server: "envelope".into(),
                    stage: Stage::Envelope,
                    code: None,
                    message,
                });
                return (Err(SendError { errors }), None);
            }
        };
        for server in &self.servers {
            let mut conn = match self.connect(server, timeout) {
                Ok(c) => c,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let result = self.transaction(&mut conn, server, from.as_ref(), &to, &entry.message);
            match result {
                Ok(d) => return (Ok(d), Some(conn)),
                Err(e) => {
                    conn.abort();
                    let about_mail = e.about_this_mail();
                    errors.push(e);
                    if about_mail {
                        // The server answered about this very mail: that is
                        // the answer; the next server is for outages.
                        break;
                    }
                }
            }
        }
        (Err(SendError { errors }), None)
    }

    /// Sends one mail of the queue; the connection stays open until
    /// [`finish_delivery`](Self::finish_delivery).
    pub(super) fn deliver(&self, entry: &Entry, timeout: Duration) -> Result<Delivery, SendError> {
        let (result, open) = self.send_keeping_open(entry, timeout);
        self.parting.put(open);
        result
    }

    /// Ends the connection of the last [`deliver`](Self::deliver) with QUIT.
    pub(super) fn finish_delivery(&self) {
        if let Some(conn) = self.parting.take() {
            quit(conn);
        }
    }

    /// Connects, greets, STARTTLS and AUTH as configured.
    fn connect(&self, server: &Server, timeout: Duration) -> Result<SmtpConnection, SmtpError> {
        let fail = |stage, e: &lettre::transport::smtp::Error| {
            SmtpError::from_lettre(server, stage, e, self.tls)
        };
        let params = || {
            crate::net::tls::install_default();
            let mut b = TlsParameters::builder(server.host.clone());
            for r in &self.roots {
                b = b.add_root_certificate(r.clone());
            }
            b.build_rustls().map_err(|e| SmtpError {
                server: server.to_string(),
                stage: Stage::Connect,
                code: None,
                message: format!("cannot set up TLS: {e}"),
            })
        };
        let wrapper = match self.tls {
            SmtpTls::Tls => Some(params()?),
            _ => None,
        };
        let hello = ClientId::default();
        let mut conn = SmtpConnection::connect(
            (server.host.as_str(), server.port),
            Some(timeout),
            &hello,
            wrapper.as_ref(),
            None,
        )
        .map_err(|e| fail(Stage::Connect, &e))?;
        if self.tls == SmtpTls::Starttls {
            if !conn.can_starttls() {
                conn.abort();
                return Err(SmtpError {
                    server: server.to_string(),
                    stage: Stage::Connect,
                    code: None,
                    message: "the server does not offer STARTTLS (set \
                              config.emails.smtp_tls = \"tls\" if it speaks implicit TLS, or \
                              use a server that offers STARTTLS)"
                        .into(),
                });
            }
            conn.starttls(&params()?, &hello)
                .map_err(|e| fail(Stage::Connect, &e))?;
        }
        if let Some(c) = &self.credentials {
            if let Err(e) = conn.auth(DEFAULT_MECHANISMS, c) {
                conn.abort();
                return Err(fail(Stage::Auth, &e));
            }
        }
        Ok(conn)
    }

    /// MAIL, one RCPT per recipient (each answer kept), DATA, the message.
    fn transaction(
        &self,
        conn: &mut SmtpConnection,
        server: &Server,
        from: Option<&Address>,
        to: &[(String, Address)],
        message: &[u8],
    ) -> Result<Delivery, SmtpError> {
        let fail = |stage, e: &lettre::transport::smtp::Error| {
            SmtpError::from_lettre(server, stage, e, self.tls)
        };
        let info = conn.server_info();
        let mut params = Vec::new();
        if to.iter().any(|(_, a)| !a.to_string().is_ascii())
            || from.is_some_and(|a| !a.to_string().is_ascii())
        {
            if !info.supports_feature(Extension::SmtpUtfEight) {
                return Err(SmtpError {
                    server: server.to_string(),
                    stage: Stage::Envelope,
                    code: None,
                    message: "an address is not ASCII and the server does not offer SMTPUTF8"
                        .into(),
                });
            }
            params.push(MailParameter::SmtpUtfEight);
        }
        if !message.is_ascii() && info.supports_feature(Extension::EightBitMime) {
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        conn.command(Mail::new(from.cloned(), params))
            .map_err(|e| fail(Stage::MailFrom, &e))?;
        let mut delivery = Delivery {
            server: server.to_string(),
            answer: String::new(),
            accepted: Vec::new(),
            refused: Vec::new(),
        };
        for (raw, addr) in to {
            match conn.command(Rcpt::new(addr.clone(), vec![])) {
                Ok(_) => delivery.accepted.push(raw.clone()),
                Err(e) => {
                    let e = fail(Stage::RcptTo, &e);
                    if !e.about_this_mail() {
                        return Err(e);
                    }
                    delivery.refused.push((raw.clone(), e));
                }
            }
        }
        if delivery.accepted.is_empty() {
            // Nobody to send to: no DATA (RFC 5321 4.1.1.4).
            return Ok(delivery);
        }
        conn.command(Data).map_err(|e| fail(Stage::Data, &e))?;
        let resp = conn
            .message(message)
            .map_err(|e| fail(Stage::Message, &e))?;
        let text: Vec<&str> = resp.message().collect();
        delivery.answer = format!("{} {}", resp.code(), text.join(" "));
        Ok(delivery)
    }
}

/// What a server did with one mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The server that took the transaction.
    pub server: String,
    /// Its answer to the message (`"250 ..."`); empty when every recipient
    /// was refused (then no message was sent).
    pub answer: String,
    /// The recipients that got the mail.
    pub accepted: Vec<String>,
    /// The recipients refused at RCPT, with the server's answer.
    pub refused: Vec<(String, SmtpError)>,
}

impl Delivery {
    /// The refused recipients with the server's answers, for a message.
    pub fn refusals(&self) -> String {
        let all: Vec<String> = self.refused.iter().map(|(_, e)| e.to_string()).collect();
        all.join("; ")
    }
}

/// Where in the SMTP conversation a failure happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The queued mail itself (a bad address): no server can take it.
    Envelope,
    /// Connection, greeting, EHLO, STARTTLS.
    Connect,
    Auth,
    MailFrom,
    RcptTo,
    Data,
    /// The answer after the message was sent.
    Message,
}

/// One failure: which server, at which stage, with which answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{server}: {message}")]
pub struct SmtpError {
    pub server: String,
    pub stage: Stage,
    /// The server's reply code, when it answered.
    pub code: Option<u16>,
    /// What happened, with a hint what to change where there is one.
    pub message: String,
}

impl SmtpError {
    fn from_lettre(
        server: &Server,
        stage: Stage,
        e: &lettre::transport::smtp::Error,
        mode: SmtpTls,
    ) -> SmtpError {
        let code = e.status().and_then(|c| c.to_string().parse::<u16>().ok());
        let mut message = describe(e, server, mode);
        if stage == Stage::Auth && code == Some(535) {
            message.push_str(
                " (check config.emails.smtp_user and the password in smtp_password_file)",
            );
        }
        SmtpError {
            server: server.to_string(),
            stage,
            code,
            message,
        }
    }

    /// A 5xx answer, or a mail no server can take: retrying will not help.
    pub fn is_permanent(&self) -> bool {
        self.stage == Stage::Envelope || self.code.is_some_and(|c| (500..600).contains(&c))
    }

    /// An answer about this mail (to MAIL, RCPT, DATA or the message), as
    /// opposed to the server being unreachable, refusing us (AUTH, or 530
    /// "authentication required" at MAIL: a setting to fix, which must not
    /// give up every mail) or closing (421): other mails may still go
    /// through.
    pub fn about_this_mail(&self) -> bool {
        match self.stage {
            Stage::Envelope => true,
            Stage::Connect | Stage::Auth => false,
            Stage::MailFrom | Stage::RcptTo | Stage::Data | Stage::Message => {
                self.code.is_some_and(|c| c != 421 && c != 530)
            }
        }
    }
}

/// Why a mail was not sent: the failure on each server tried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendError {
    pub errors: Vec<SmtpError>,
}

impl SendError {
    /// The server's refusal of this very mail, when that ended the try.
    pub fn refusal(&self) -> Option<&SmtpError> {
        self.errors.last().filter(|e| e.about_this_mail())
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let all: Vec<String> = self.errors.iter().map(|e| e.to_string()).collect();
        f.write_str(&all.join("; "))
    }
}

impl std::error::Error for SendError {}

/// The first line of `smtp_password_file`; `None` without `smtp_user`.
pub fn read_password(e: &EmailConfig) -> Result<Option<String>, String> {
    if e.smtp_user.is_empty() {
        return Ok(None);
    }
    if e.smtp_password_file.is_empty() {
        return Err(missing_password(e));
    }
    let path = std::path::Path::new(&e.smtp_password_file);
    let raw = crate::secret::read_to_string(path).map_err(|err| {
        format!(
            "cannot read config.emails.smtp_password_file {}: {err} (it must exist and \
             be readable by root when picomon starts as root with --user, else by \
             the user picomon runs as)",
            e.smtp_password_file
        )
    })?;
    warn_if_others_can_read("config.emails.smtp_password_file", &e.smtp_password_file);
    Ok(Some(raw.lines().next().unwrap_or("").to_string()))
}

fn missing_password(e: &EmailConfig) -> String {
    format!(
        "config.emails.smtp_user is {:?} but config.emails.smtp_password_file is \
         not set: put the password in a file readable only by picomon and name it there",
        e.smtp_user
    )
}

/// The password file should be for picomon's eyes only; say so once.
/// Warns when the secret file `path` of `setting` is readable by others
/// (SMTP password, a channel's token).
pub(crate) fn warn_if_others_can_read(setting: &str, path: &str) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = fs::metadata(path) {
        if m.permissions().mode() & 0o044 != 0 {
            log::warn!(
                "{setting} {path} is readable by other users; \
                 chmod 600 it (owned by the user picomon runs as)"
            );
        }
    }
}

/// Each recipient as written in the entry, and parsed.
type Recipients = Vec<(String, Address)>;

/// The envelope of a queued mail: sender and recipients.
fn envelope(entry: &Entry) -> Result<(Option<Address>, Recipients), String> {
    let parse = |s: &str| {
        s.parse::<Address>()
            .map_err(|e| format!("bad envelope address {s:?}: {e}"))
    };
    let from = if entry.from.is_empty() {
        None
    } else {
        Some(parse(&entry.from)?)
    };
    let to = entry
        .to
        .iter()
        .map(|t| Ok((t.clone(), parse(t)?)))
        .collect::<Result<Vec<_>, String>>()?;
    if to.is_empty() {
        return Err("no recipient".into());
    }
    Ok((from, to))
}

/// A delivery error as a user needs to read it: the TLS reason when there
/// is one, else lettre's message with its causes and a hint.
pub fn describe(err: &lettre::transport::smtp::Error, server: &Server, _mode: SmtpTls) -> String {
    if let Some(tls) = find_rustls_error(err) {
        return tls_reason(&tls, server);
    }
    let mut s = err.to_string();
    if err.is_tls() {
        let _ = write!(s, " (TLS set-up with {server} failed)");
    }
    if io_error_kind(err) == Some(std::io::ErrorKind::ConnectionRefused) {
        let _ = write!(
            s,
            " (is an SMTP server listening there? check config.emails.smtp_host)"
        );
    }
    s
}

/// The kind of the first `io::Error` in the chain.
fn io_error_kind(err: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        cur = e.source();
    }
    None
}

/// The rustls error anywhere in the chain, also inside an `io::Error`
/// (whose `source()` skips the error it wraps).
fn find_rustls_error(err: &(dyn std::error::Error + 'static)) -> Option<rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r.clone());
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                if let Some(r) = find_rustls_error(inner) {
                    return Some(r);
                }
            }
        }
        cur = e.source();
    }
    None
}

fn tls_reason(e: &rustls::Error, server: &Server) -> String {
    use rustls::CertificateError as C;
    let fix_ca = "trust its CA with config.emails.smtp_ca_file";
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => {
                format!("TLS: the server certificate is signed by an unknown issuer ({fix_ca})")
            }
            C::NotValidForName => format!(
                "TLS: the server certificate is not valid for the name {:?} (name mismatch: \
                 use a name the certificate holds in config.emails.smtp_host)",
                server.host
            ),
            C::NotValidForNameContext { presented, .. } => format!(
                "TLS: the server certificate is not valid for the name {:?} (name mismatch: \
                 it is for {}; use one of those in config.emails.smtp_host)",
                server.host,
                presented
                    .iter()
                    // rustls shows them as `DnsName("x")`: keep the name.
                    .map(|p| p.split('"').nth(1).unwrap_or(p))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            C::Expired | C::ExpiredContext { .. } => {
                "TLS: the server certificate has expired".to_string()
            }
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "TLS: the server certificate is not valid yet (check the clock)".to_string()
            }
            other => format!("TLS: the server certificate was refused: {other:?}"),
        },
        other => format!("TLS failed: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_forms() {
        let s = |x| parse_server(x, SmtpTls::None).unwrap();
        assert_eq!(
            s("mail.example.org"),
            Server {
                host: "mail.example.org".into(),
                port: 25
            }
        );
        assert_eq!(s("localhost:2525").port, 2525);
        assert_eq!(s("[::1]:587").host, "::1");
        assert_eq!(s("[::1]:587").port, 587);
        assert_eq!(s("::1").host, "::1");
        assert_eq!(parse_server("h", SmtpTls::Tls).unwrap().port, 465);
        let err = parse_server("h:x", SmtpTls::None).unwrap_err();
        assert!(
            err.contains("smtp_host") && err.contains("\"h:x\""),
            "{err}"
        );
        assert_eq!(s("[::1]:25").to_string(), "[::1]:25");
    }

    #[test]
    fn auth_without_password_file_says_what_to_set() {
        let mut e = crate::notify::mail::compose::tests::email_config();
        e.smtp_user = "bob".into();
        let err = Smtp::new(&e).unwrap_err();
        assert!(err.contains("smtp_password_file"), "{err}");
        e.smtp_password_file = "/nonexistent/pw".into();
        let err = Smtp::new(&e).unwrap_err();
        assert!(err.contains("/nonexistent/pw"), "{err}");
    }
}
