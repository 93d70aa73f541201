//! SMTP delivery through lettre with rustls (SPEC §7): plain, STARTTLS or
//! implicit TLS, optional AUTH, extra CA certificates, and a failover list
//! of servers tried in order.
//!
//! The user must learn why a mail did not go out, so every failure names
//! the server and, for TLS, digs the rustls reason (unknown issuer, name
//! mismatch, expired) out of the error chain and says what to change.

use std::fmt::Write as _;
use std::fs;
use std::time::Duration;

use lettre::address::{Address, Envelope};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::SmtpTransport;
use lettre::Transport;

use crate::config::{EmailConfig, SmtpTls};

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

/// A ready SMTP client: servers, TLS set-up and credentials.
#[derive(Clone)]
pub struct Smtp {
    servers: Vec<Server>,
    tls: SmtpTls,
    credentials: Option<Credentials>,
    roots: Vec<Certificate>,
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
        let credentials = if e.smtp_user.is_empty() {
            None
        } else {
            if e.smtp_password_file.is_empty() {
                return Err(format!(
                    "config.emails.smtp_user is {:?} but config.emails.smtp_password_file is \
                     not set: put the password in a file readable only by picomon and name it there",
                    e.smtp_user
                ));
            }
            let raw = fs::read_to_string(&e.smtp_password_file).map_err(|err| {
                format!(
                    "cannot read config.emails.smtp_password_file {}: {err} (it must exist and \
                     be readable by the user picomon runs as)",
                    e.smtp_password_file
                )
            })?;
            warn_if_others_can_read(&e.smtp_password_file);
            let password = raw.lines().next().unwrap_or("").to_string();
            Some(Credentials::new(e.smtp_user.clone(), password))
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
        })
    }

    pub fn servers(&self) -> &[Server] {
        &self.servers
    }

    /// Sends one mail over the failover list, each server in order until one
    /// accepts it. Ok: the server and its answer (`"250 ..."`); Err: every
    /// server's failure.
    pub fn send(&self, entry: &Entry, timeout: Duration) -> Result<(String, String), SendError> {
        let envelope = envelope(entry).map_err(|message| SendError {
            message,
            rejected: true,
        })?;
        let mut errors = Vec::new();
        let mut rejected = true;
        for server in &self.servers {
            match self.send_to(server, &envelope, &entry.message, timeout) {
                Ok(answer) => return Ok((server.to_string(), answer)),
                Err(e) => {
                    rejected &= e.rejected;
                    errors.push(e.message);
                }
            }
        }
        Err(SendError {
            message: errors.join("; "),
            rejected,
        })
    }

    fn send_to(
        &self,
        server: &Server,
        envelope: &Envelope,
        message: &[u8],
        timeout: Duration,
    ) -> Result<String, SendError> {
        let transport = self.transport(server, timeout).map_err(|e| SendError {
            message: format!("{server}: {e}"),
            rejected: false,
        })?;
        match transport.send_raw(envelope, message) {
            Ok(resp) => {
                let text: Vec<&str> = resp.message().collect();
                Ok(format!("{} {}", resp.code(), text.join(" ")))
            }
            Err(e) => Err(SendError {
                message: format!("{server}: {}", describe(&e, server, self.tls)),
                rejected: rejects_this_mail(&e),
            }),
        }
    }

    fn transport(&self, server: &Server, timeout: Duration) -> Result<SmtpTransport, String> {
        let params = || {
            let mut b = TlsParameters::builder(server.host.clone());
            for r in &self.roots {
                b = b.add_root_certificate(r.clone());
            }
            b.build_rustls()
                .map_err(|e| format!("cannot set up TLS: {e}"))
        };
        let tls = match self.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Starttls => Tls::Required(params()?),
            SmtpTls::Tls => Tls::Wrapper(params()?),
        };
        let mut b = SmtpTransport::builder_dangerous(server.host.clone())
            .port(server.port)
            .tls(tls)
            .timeout(Some(timeout));
        if let Some(c) = &self.credentials {
            b = b.credentials(c.clone());
        }
        Ok(b.build())
    }
}

/// Why a mail was not sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendError {
    pub message: String,
    /// Every server refused this very mail (550-554: a bad recipient, a
    /// message too big, ...), as opposed to being down or refusing us. Other
    /// mails may still go through, so the queue moves on past it.
    pub rejected: bool,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A 550-554 answer: the server refuses this mail, not the connection or
/// the login (those are 421, 454, 530, 535, ...).
fn rejects_this_mail(e: &lettre::transport::smtp::Error) -> bool {
    e.is_permanent()
        && e.status()
            .and_then(|c| c.to_string().parse::<u16>().ok())
            .is_some_and(|c| (550..=554).contains(&c))
}

/// The password file should be for picomon's eyes only; say so once.
fn warn_if_others_can_read(path: &str) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = fs::metadata(path) {
        if m.permissions().mode() & 0o044 != 0 {
            log::warn!(
                "config.emails.smtp_password_file {path} is readable by other users; \
                 chmod 600 it (owned by the user picomon runs as)"
            );
        }
    }
}

fn envelope(entry: &Entry) -> Result<Envelope, String> {
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
        .map(|t| parse(t))
        .collect::<Result<Vec<_>, _>>()?;
    Envelope::new(from, to).map_err(|e| format!("bad envelope: {e}"))
}

/// A delivery error as a user needs to read it: the TLS reason when there
/// is one, else lettre's message with its causes.
pub fn describe(err: &lettre::transport::smtp::Error, server: &Server, mode: SmtpTls) -> String {
    if let Some(tls) = find_rustls_error(err) {
        return tls_reason(&tls, server);
    }
    let mut s = err.to_string();
    if mode == SmtpTls::Starttls && s.contains("STARTTLS") {
        let _ = write!(
            s,
            " (the server does not offer STARTTLS: set config.emails.smtp_tls = \"tls\" \
             if it speaks implicit TLS, or use a server that offers STARTTLS)"
        );
    } else if err.is_tls() {
        let _ = write!(s, " (TLS set-up with {server} failed)");
    }
    if s.to_lowercase().contains("connection refused") {
        let _ = write!(
            s,
            " (is an SMTP server listening there? check config.emails.smtp_host)"
        );
    }
    if err.is_permanent() && s.contains("(535") {
        let _ = write!(
            s,
            " (check config.emails.smtp_user and the password in smtp_password_file)"
        );
    }
    s
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
        let mut e = crate::mail::compose::tests::email_config();
        e.smtp_user = "bob".into();
        let err = Smtp::new(&e).unwrap_err();
        assert!(err.contains("smtp_password_file"), "{err}");
        e.smtp_password_file = "/nonexistent/pw".into();
        let err = Smtp::new(&e).unwrap_err();
        assert!(err.contains("/nonexistent/pw"), "{err}");
    }
}
