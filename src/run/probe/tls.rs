//! TLS for the probes: a rustls handshake that keeps the peer certificate
//! even when verification fails, so an expired certificate is reported as
//! "expired 3 days ago" rather than a bare handshake error; the days left on
//! a certificate; and the `tls_cert(h, port)` probe built on both.
//!
//! Trust: the system bundle (`/etc/ssl/certs/ca-certificates.crt`, which
//! includes local CAs added with update-ca-certificates), else the built-in
//! Mozilla roots, plus an optional `ca_file` per probe. A certificate given
//! in `ca_file` is also trusted as the very certificate the server shows,
//! whatever its CA flag: webpki refuses a CA certificate as a server's own
//! (`CaUsedAsEndEntity`), which is how `openssl req -x509` makes
//! self-signed ones. `verify: false` checks no chain (as `check_http
//! --ssl` did), but the handshake signatures are still checked against the
//! certificate shown, and the result says the chain was not checked.
//!
//! Every failure is a sentence ([`describe_tls`]): rustls' and webpki's
//! error names never reach a result.

use std::io;
use std::net::TcpStream;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::range::Range;
use super::socket::{self, Deadline, Family};
use super::{perf, Report};
use crate::clock;
use crate::model::{Outcome, Perf, Probe, Status};

/// The system CA bundle Debian keeps up to date.
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// A TLS client set-up: trust anchors and the name to ask for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TlsOptions {
    /// Extra CA certificates (PEM) to trust, or the server's own
    /// certificate.
    pub ca_file: Option<String>,
    /// `verify: false`: no chain or name check.
    pub no_verify: bool,
}

/// How the server's certificate came to be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// A chain to a trusted CA, valid for the name.
    Chain,
    /// The very certificate given in `ca_file`.
    Pinned,
    /// `verify: false`: not checked.
    Unchecked,
}

impl Trust {
    /// What a result adds about it: nothing for a checked chain.
    pub fn note(self) -> Option<&'static str> {
        match self {
            Trust::Chain => None,
            Trust::Pinned => Some("certificate is the one given in ca_file"),
            Trust::Unchecked => Some("certificate chain not checked (verify: false)"),
        }
    }
}

fn system_roots() -> &'static Vec<CertificateDer<'static>> {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        CertificateDer::pem_file_iter(SYSTEM_BUNDLE)
            .map(|certs| certs.filter_map(Result::ok).collect())
            .unwrap_or_default()
    })
}

fn ca_file_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    crate::net::tls::pem_certs("ca_file", Path::new(path))
}

/// The trust anchors for one probe: the system's and `extra` (the
/// certificates of its `ca_file`). A certificate webpki cannot use as an
/// anchor is still trusted as the server's own, so it is skipped here.
fn roots(extra: &[CertificateDer<'static>]) -> RootCertStore {
    let mut store = RootCertStore::empty();
    let system = system_roots();
    if system.is_empty() {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    } else {
        store.add_parsable_certificates(system.iter().cloned());
    }
    store.add_parsable_certificates(extra.iter().cloned());
    store
}

/// The system trust for a plain HTTP request (scripts' `http_get`): the
/// anchors of [`roots`] (the system bundle, else the built-in roots) plus
/// `ca_file`. The `https*` probes do not use it: their requests go through
/// [`client_config`], the same trust as their own handshake.
pub fn http_tls(opts: &TlsOptions) -> Result<Arc<ClientConfig>, String> {
    let extra = match &opts.ca_file {
        Some(path) => ca_file_certs(path)?,
        None => Vec::new(),
    };
    crate::net::tls::config(roots(&extra), None)
}

/// Verifies like webpki, or trusts the certificate given in `ca_file`
/// itself, or (`verify: false`) checks no chain; and keeps the end-entity
/// certificate it was shown and how it was trusted. Handshake signatures
/// are always checked against the certificate shown, so a server still has
/// to hold its key.
#[derive(Debug)]
struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    /// The certificates of `ca_file`: one of them may be the server's own.
    pinned: Vec<CertificateDer<'static>>,
    no_verify: bool,
    seen: Mutex<Option<(Vec<u8>, Trust)>>,
}

impl Recording {
    fn record(&self, end_entity: &CertificateDer<'_>, trust: Trust) {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some((end_entity.to_vec(), trust));
        }
    }
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.no_verify {
            self.record(end_entity, Trust::Unchecked);
            return Ok(ServerCertVerified::assertion());
        }
        self.record(end_entity, Trust::Chain);
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(v) => Ok(v),
            Err(_)
                if self
                    .pinned
                    .iter()
                    .any(|c| c.as_ref() == end_entity.as_ref()) =>
            {
                self.record(end_entity, Trust::Pinned);
                Ok(ServerCertVerified::assertion())
            }
            // webpki looks at the CA flag before the issuer: a self-signed
            // CA certificate nobody trusts is, to a user, of unknown issuer.
            Err(e) if is_ca_as_end_entity(&e) && self_issued(end_entity) => Err(
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
            ),
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// webpki's `CaUsedAsEndEntity`, which rustls passes on as an opaque
/// "other" error: recognised by its name.
fn is_ca_as_end_entity(e: &rustls::Error) -> bool {
    matches!(e, rustls::Error::InvalidCertificate(CertificateError::Other(o))
        if o.to_string().contains("CaUsedAsEndEntity"))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(crate::net::tls::provider())
}

/// A client config whose verifier follows `opts` and records what it saw.
fn recording_config(opts: &TlsOptions) -> Result<(Arc<ClientConfig>, Arc<Recording>), String> {
    let pinned = match &opts.ca_file {
        Some(path) => ca_file_certs(path)?,
        None => Vec::new(),
    };
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots(&pinned)), provider())
        .build()
        .map_err(|e| format!("cannot set up certificate verification: {e}"))?;
    let rec = Arc::new(Recording {
        inner,
        pinned,
        no_verify: opts.no_verify,
        seen: Mutex::new(None),
    });
    let cfg = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(rec.clone())
        .with_no_client_auth();
    Ok((Arc::new(cfg), rec))
}

/// The client config of a probe's TLS, for a second connection with the
/// same trust (the `https*` request after the probe's own handshake).
pub fn client_config(opts: &TlsOptions) -> Result<Arc<ClientConfig>, String> {
    recording_config(opts).map(|(cfg, _)| cfg)
}

/// What a handshake learned about the peer's certificate.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerCert {
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// How it was trusted.
    pub trust: Trust,
}

impl PeerCert {
    /// Whole days until notAfter (negative once expired).
    pub fn days_left(&self) -> i64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        (self.not_after - now).div_euclid(86_400)
    }
}

/// A failed handshake: why, and the certificate if one was shown.
#[derive(Debug)]
pub struct TlsFailure {
    pub message: String,
    pub cert: Option<PeerCert>,
}

/// A TLS stream over TCP, as the probes use it.
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// Runs a TLS handshake on `sock` for `name`, within the deadline.
pub fn handshake(
    mut sock: TcpStream,
    name: &str,
    opts: &TlsOptions,
    deadline: &Deadline,
) -> Result<(TlsStream, PeerCert), TlsFailure> {
    let fail = |message: String| TlsFailure {
        message,
        cert: None,
    };
    let (cfg, rec) = recording_config(opts).map_err(fail)?;
    let server = ServerName::try_from(name.trim_start_matches('[').trim_end_matches(']'))
        .map_err(|e| fail(format!("bad TLS server name {name:?}: {e}")))?
        .to_owned();
    let mut conn =
        ClientConnection::new(cfg, server).map_err(|e| fail(format!("TLS set-up: {e}")))?;
    let seen = |rec: &Recording| {
        rec.seen
            .lock()
            .ok()
            .and_then(|s| s.clone())
            .and_then(|(der, trust)| Some((parse_not_after(&der)?, trust)))
            .map(|(not_after, trust)| PeerCert { not_after, trust })
    };
    while conn.is_handshaking() {
        if let Err(e) = socket::set_timeouts(&sock, deadline) {
            return Err(fail(deadline.describe("TLS handshake", &e)));
        }
        if let Err(e) = conn.complete_io(&mut sock) {
            return Err(TlsFailure {
                message: describe_io(&e, name, deadline),
                cert: seen(&rec),
            });
        }
    }
    let cert = seen(&rec).ok_or_else(|| fail("the server sent no readable certificate".into()))?;
    Ok((StreamOwned::new(conn, sock), cert))
}

/// Turns a handshake error into words: a certificate problem says which.
pub fn describe_io(e: &io::Error, name: &str, deadline: &Deadline) -> String {
    if let Some(tls) = e.get_ref().and_then(|r| r.downcast_ref::<rustls::Error>()) {
        return describe_tls(tls, name);
    }
    deadline.describe("TLS handshake", e)
}

/// A sentence for a rustls error, saying whether the name or the chain is
/// wrong and what to do. Error names (rustls' and webpki's) are turned
/// into words, never shown as they are.
pub fn describe_tls(e: &rustls::Error, name: &str) -> String {
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(c) => describe_cert(c, name),
        E::AlertReceived(a) => format!(
            "the server ended the TLS handshake with the alert \"{}\" (does it accept this name, {name}, and a modern TLS version?)",
            words(&format!("{a:?}"))
        ),
        E::PeerIncompatible(p) => format!(
            "the server and picomon have no TLS version or cipher in common ({})",
            words(&format!("{p:?}"))
        ),
        E::PeerMisbehaved(p) => format!(
            "the server broke the TLS protocol ({})",
            words(&format!("{p:?}"))
        ),
        E::InvalidMessage(_) | E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => {
            "the server did not answer in TLS (a plain-text port? then drop the TLS option)".into()
        }
        E::NoCertificatesPresented => "the server sent no certificate".into(),
        E::DecryptError => "the TLS handshake failed: the server's messages could not be decrypted".into(),
        E::General(text) => format!("the TLS handshake failed: {text}"),
        other => format!("the TLS handshake failed: {}", words(&other.to_string())),
    }
}

/// A sentence for a certificate that was not accepted.
fn describe_cert(c: &CertificateError, name: &str) -> String {
    match c {
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "certificate expired".into()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "certificate is not valid yet".into()
        }
        CertificateError::UnknownIssuer => "certificate chain problem: unknown issuer (not signed by a trusted CA; trust a private CA, or the server's own certificate, with ca_file, or skip the check with verify: false)".into(),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!("certificate name problem: not valid for {name}")
        }
        CertificateError::BadSignature => {
            "certificate chain problem: a signature in the chain does not verify".into()
        }
        CertificateError::Revoked => "certificate has been revoked".into(),
        CertificateError::Other(o) if o.to_string().contains("CaUsedAsEndEntity") => {
            "certificate problem: the server's certificate is a CA certificate (CA:TRUE); to trust it, give that very certificate as ca_file".into()
        }
        CertificateError::Other(o) => format!("certificate problem: {}", words(&o.to_string())),
        other => format!("certificate problem: {}", words(&format!("{other:?}"))),
    }
}

/// An error name as words: `CaUsedAsEndEntity` → "ca used as end
/// entity", `Other(OtherError(X))` → "x"; text already in words is kept.
pub fn words(name: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if c.is_uppercase() {
            if prev_lower {
                out.push(' ');
            }
            out.extend(c.to_lowercase());
            prev_lower = false;
        } else if matches!(c, '(' | ')' | '{' | '}' | '_') {
            out.push(' ');
            prev_lower = false;
        } else {
            out.push(c);
            prev_lower = c.is_lowercase() || c.is_ascii_digit();
        }
    }
    let out = out.replace("other error", " ");
    let mut words: Vec<&str> = out.split_whitespace().collect();
    if words.first() == Some(&"other") {
        words.remove(0);
    }
    words.join(" ")
}

/// Status and words for the days left on a certificate.
pub fn cert_verdict(cert: &PeerCert, warn_days: i64, crit_days: i64) -> (Status, String) {
    let days = cert.days_left();
    let when = clock::utc_date(cert.not_after);
    if days < 0 {
        (
            Status::Critical,
            format!("certificate expired {} days ago ({when})", -days),
        )
    } else if days < crit_days {
        (
            Status::Critical,
            format!("certificate expires in {days} days ({when})"),
        )
    } else if days < warn_days {
        (
            Status::Warning,
            format!("certificate expires in {days} days ({when})"),
        )
    } else {
        (
            Status::Ok,
            format!("certificate valid for {days} days ({when})"),
        )
    }
}

/// Perfdata of the days left.
pub fn cert_perf(cert: &PeerCert, warn_days: i64, crit_days: i64) -> Perf {
    perf(
        "cert_days",
        cert.days_left() as f64,
        "",
        &Range::lower(warn_days as f64).text,
        &Range::lower(crit_days as f64).text,
    )
}

/// A certificate problem after a failed handshake: days when we saw the
/// certificate, else only the reason. Always CRITICAL.
pub fn failure_outcome(f: &TlsFailure) -> (Status, String) {
    match &f.cert {
        Some(c) if c.days_left() < 0 => (
            Status::Critical,
            format!(
                "certificate expired {} days ago ({})",
                -c.days_left(),
                clock::utc_date(c.not_after)
            ),
        ),
        _ => (Status::Critical, f.message.clone()),
    }
}

// ---- minimal DER walk: just far enough to reach tbsCertificate.validity ----

fn der_item(buf: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *buf.first()?;
    let first = *buf.get(1)? as usize;
    let (len, head) = if first < 0x80 {
        (first, 2)
    } else {
        let n = first & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *buf.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let body = buf.get(head..head.checked_add(len)?)?;
    Some((tag, body, &buf[head + len..]))
}

/// The fields of a DER certificate's TBSCertificate that picomon reads
/// (raw DER each), found in one walk: version (optional), serialNumber,
/// signature, issuer, validity, subject.
struct Tbs<'a> {
    issuer: &'a [u8],
    validity: &'a [u8],
    subject: &'a [u8],
}

impl<'a> Tbs<'a> {
    fn parse(der: &'a [u8]) -> Option<Tbs<'a>> {
        let (_, cert, _) = der_item(der)?;
        let (_, tbs, _) = der_item(cert)?;
        let mut rest = tbs;
        let (tag, _, r) = der_item(rest)?;
        if tag == 0xa0 {
            rest = r; // explicit version
        }
        // serialNumber, signature
        for _ in 0..2 {
            rest = der_item(rest)?.2;
        }
        // Each field with its tag and length: the issuer and subject are
        // compared as they are encoded.
        let mut next = || {
            let after = der_item(rest)?.2;
            let whole = &rest[..rest.len() - after.len()];
            rest = after;
            Some(whole)
        };
        let issuer = next()?;
        let validity = next()?;
        let subject = next()?;
        Some(Tbs {
            issuer,
            validity,
            subject,
        })
    }
}

/// True when a certificate names itself as its issuer (self-signed).
fn self_issued(der: &[u8]) -> bool {
    Tbs::parse(der).is_some_and(|t| t.issuer == t.subject)
}

/// notAfter of a DER certificate, as Unix seconds.
pub fn parse_not_after(der: &[u8]) -> Option<i64> {
    let (_, validity, _) = der_item(Tbs::parse(der)?.validity)?;
    let (_, _, after_nb) = der_item(validity)?;
    let (tag, time, _) = der_item(after_nb)?;
    parse_time(tag, std::str::from_utf8(time).ok()?)
}

fn parse_time(tag: u8, s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 => {
            let yy: i64 = s.get(0..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, s.get(2..)?)
        }
        0x18 => (s.get(0..4)?.parse().ok()?, s.get(4..)?),
        _ => return None,
    };
    let field = |i: usize| -> Option<i64> { rest.get(i..i + 2)?.parse().ok() };
    let (mo, d, h, mi) = (field(0)?, field(2)?, field(4)?, field(6)?);
    let sec = field(8).unwrap_or(0);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    Some(clock::days_from_civil(year, mo as u8, d as u8) * 86_400 + h * 3600 + mi * 60 + sec)
}

/// `tls_cert(h, port)`: days left on the certificate served at a port.
#[derive(Debug)]
pub struct TlsCertProbe {
    pub addr: String,
    pub port: u16,
    pub family: Family,
    /// Name for SNI and verification.
    pub sni: String,
    pub tls: TlsOptions,
    pub warn_days: i64,
    pub crit_days: i64,
}

impl Probe for TlsCertProbe {
    fn run(&self, timeout: Duration) -> Outcome {
        let deadline = Deadline::after(timeout);
        let r = Report::new("TLS");
        let addrs = match socket::resolve(&self.addr, self.port, self.family, &deadline) {
            Ok(a) => a,
            Err(e) => return r.done(Status::Critical, e, vec![], &deadline),
        };
        let sock = match socket::connect(&addrs, &deadline) {
            Ok(s) => s,
            Err(e) => return r.done(Status::Critical, e, vec![], &deadline),
        };
        match handshake(sock, &self.sni, &self.tls, &deadline) {
            Ok((_, cert)) => {
                let (st, mut msg) = cert_verdict(&cert, self.warn_days, self.crit_days);
                if let Some(note) = cert.trust.note() {
                    msg.push_str(&format!(" - {note}"));
                }
                let p = cert_perf(&cert, self.warn_days, self.crit_days);
                r.done(
                    st,
                    format!("{}:{} {msg}", self.sni, self.port),
                    vec![p],
                    &deadline,
                )
            }
            Err(f) => {
                let (st, msg) = failure_outcome(&f);
                r.done(
                    st,
                    format!("{}:{} {msg}", self.sni, self.port),
                    vec![],
                    &deadline,
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_times_parse() {
        assert_eq!(parse_time(0x17, "491231235959Z"), Some(2_524_607_999));
        assert_eq!(parse_time(0x18, "20000229000000Z"), Some(951_782_400));
        assert_eq!(parse_time(0x17, "garbage"), None);
    }

    #[test]
    fn error_names_become_words() {
        assert_eq!(words("CaUsedAsEndEntity"), "ca used as end entity");
        assert_eq!(
            words("Other(OtherError(CaUsedAsEndEntity))"),
            "ca used as end entity"
        );
        assert_eq!(words("HandshakeFailure"), "handshake failure");
        assert_eq!(words("received fatal alert"), "received fatal alert");
    }

    #[test]
    fn every_certificate_error_is_a_sentence() {
        let e = rustls::Error::InvalidCertificate(CertificateError::UnhandledCriticalExtension);
        let s = describe_tls(&e, "x");
        assert_eq!(s, "certificate problem: unhandled critical extension");
        let e = rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure);
        assert!(describe_tls(&e, "x").contains("alert \"handshake failure\""));
    }

    #[test]
    fn der_walk_rejects_truncation() {
        assert_eq!(parse_not_after(&[]), None);
        assert_eq!(parse_not_after(&[0x30, 0x82, 0x10]), None);
    }
}
