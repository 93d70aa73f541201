//! `http4/http6/https4/https6(h, opts)`: GET `url` on the host's v4 or v6
//! address, with `vhost` as Host header and TLS server name, as
//! `check_http -I addr -H vhost --sni` does. For https a handshake of our
//! own first reads the certificate, so its days left and any name or chain
//! problem are reported with the reason, and the request then goes through
//! picomon's HTTP client ([`crate::net::http`]) with the very same rustls
//! set-up, so `ca_file` (a CA, or the server's own certificate) and
//! `verify: false` mean the same for both connections.

use std::io::Read;
use std::net::SocketAddr;
use std::time::Duration;

use regex_lite::Regex;

use super::range::{fmt_num, Range, Thresholds};
use super::socket::{self, Deadline, Family};
use super::tls::{self, TlsOptions};
use super::{perf, Report};
use crate::model::{Host, Outcome, Probe, Status};

/// How much of a body `expect` looks at.
const BODY_LIMIT: u64 = 1024 * 1024;

/// What the body must contain.
#[derive(Clone, Debug)]
pub enum Expect {
    Text(String),
    Regex(Regex),
}

impl Expect {
    fn found(&self, body: &str) -> bool {
        match self {
            Expect::Text(t) => body.contains(t.as_str()),
            Expect::Regex(r) => r.is_match(body),
        }
    }

    fn pattern(&self) -> String {
        match self {
            Expect::Text(t) => t.clone(),
            Expect::Regex(r) => format!("/{}/", r.as_str()),
        }
    }
}

#[derive(Debug)]
pub struct HttpProbe {
    pub addr: String,
    pub family: Family,
    pub secure: bool,
    pub port: u16,
    /// Host header and SNI.
    pub vhost: String,
    /// Path and query, starting with `/`.
    pub path: String,
    /// Required status; `None`: below 400 OK, 4xx WARNING, 5xx CRITICAL.
    pub status: Option<u16>,
    pub expect: Option<Expect>,
    /// Response time above this is CRITICAL.
    pub max_time: Option<f64>,
    pub time: Thresholds,
    pub tls: TlsOptions,
    pub cert_warning: i64,
    pub cert_critical: i64,
}

impl HttpProbe {
    /// The default name of a check: the constructor, then the vhost and
    /// url where they say more than the host (`https4 www.example.org/`,
    /// `http4 /status`), so two checks of one host read apart.
    pub fn label(ctor: &str, h: &Host, p: &HttpProbe) -> String {
        if p.vhost != h.name && p.vhost != p.addr {
            format!("{ctor} {}{}", p.vhost, p.path)
        } else if p.path != "/" {
            format!("{ctor} {}", p.path)
        } else {
            ctor.to_string()
        }
    }

    fn url(&self) -> String {
        let host = if self.vhost.contains(':') && !self.vhost.starts_with('[') {
            format!("[{}]", self.vhost)
        } else {
            self.vhost.clone()
        };
        let scheme = if self.secure { "https" } else { "http" };
        format!("{scheme}://{host}:{}{}", self.port, self.path)
    }

    /// The https certificate verdict, from a handshake of our own.
    fn cert(
        &self,
        addrs: &[SocketAddr],
        deadline: &Deadline,
    ) -> Result<(Status, String, crate::model::Perf), String> {
        let sock = socket::connect(addrs, deadline)?;
        match tls::handshake(sock, &self.vhost, &self.tls, deadline) {
            Ok((_, cert)) => {
                let (st, mut msg) = tls::cert_verdict(&cert, self.cert_warning, self.cert_critical);
                if let Some(note) = cert.trust.note() {
                    msg.push_str(&format!(" - {note}"));
                }
                Ok((
                    st,
                    msg,
                    tls::cert_perf(&cert, self.cert_warning, self.cert_critical),
                ))
            }
            Err(f) => Err(tls::failure_outcome(&f).1),
        }
    }
}

impl Probe for HttpProbe {
    fn run(&self, timeout: Duration) -> Outcome {
        let deadline = Deadline::after(timeout);
        let r = Report::new(if self.secure { "HTTPS" } else { "HTTP" });
        let fail = |msg: String| r.done(Status::Critical, msg, vec![], &deadline);
        let addrs = match socket::resolve(&self.addr, self.port, self.family, &deadline) {
            Ok(a) => a,
            Err(e) => return fail(e),
        };
        let mut status = Status::Ok;
        let mut notes = Vec::new();
        let mut perfdata = Vec::new();
        let mut tls_cfg = None;
        if self.secure {
            match self.cert(&addrs, &deadline) {
                Ok((st, msg, p)) => {
                    status = st;
                    notes.push(msg);
                    perfdata.push(p);
                }
                Err(e) => return fail(e),
            }
            match tls::client_config(&self.tls) {
                Ok(c) => tls_cfg = Some(c),
                Err(e) => return r.done(Status::Unknown, e, vec![], &deadline),
            }
        }
        let left = match deadline.left() {
            Ok(l) => l,
            Err(_) => return fail(deadline.timed_out()),
        };
        let started = deadline.elapsed();
        let client = crate::net::http::Client::new(left, tls_cfg).connect_to(addrs);
        let resp = match client.get(&self.url()).call() {
            Ok(resp) => resp,
            Err(e) if e.is_timeout() => {
                return fail(format!("{}: {}", self.url(), deadline.timed_out()))
            }
            Err(e) => return fail(format!("{}: {e}", self.url())),
        };
        let code = resp.status();
        let line = format!("{} {} {}", resp.version(), code, resp.reason());
        let server = server_header(&resp);
        let mut body = Vec::new();
        let mut reader = resp.into_reader().take(BODY_LIMIT);
        if let Err(e) = reader.read_to_end(&mut body) {
            return fail(deadline.describe("reading the body", &e));
        }
        let secs = (deadline.elapsed() - started).as_secs_f64();
        let code_status = match self.status {
            Some(want) if want == code => Status::Ok,
            Some(want) => {
                notes.insert(0, format!("expected status {want}"));
                Status::Critical
            }
            None if code >= 500 => Status::Critical,
            None if code >= 400 => Status::Warning,
            None => Status::Ok,
        };
        status = Status::worst(status, code_status);
        if let Some(e) = &self.expect {
            if !e.found(&String::from_utf8_lossy(&body)) {
                status = Status::Critical;
                notes.insert(0, format!("Pattern '{}' not found in reply.", e.pattern()));
            }
        }
        if let Some(max) = self.max_time {
            if secs > max {
                status = Status::Critical;
                notes.insert(0, format!("took longer than max_time {} s", fmt_num(max)));
            }
        }
        status = Status::worst(status, self.time.status(secs));
        let max_text = self
            .max_time
            .map(|m| Range::upper(m).text)
            .unwrap_or_default();
        let crit = if self.time.critical.is_some() {
            self.time.crit_text()
        } else {
            max_text
        };
        perfdata.insert(0, perf("time", secs, "s", &self.time.warn_text(), &crit));
        perfdata.insert(1, perf("size", body.len() as f64, "B", "", ""));
        let mut msg = format!("{line} - {} bytes in {} s", body.len(), fmt_num(secs));
        if let Some(s) = &server {
            msg.push_str(&format!(" - Server: {s}"));
        }
        for n in notes {
            msg.push_str(" - ");
            msg.push_str(&n);
        }
        let mut out = r.done(status, msg, perfdata, &deadline);
        out.data = Some(Box::new(serde_json::json!({
            "status": code,
            "server": server,
            "bytes": body.len(),
            "time": secs,
        })));
        out
    }
}

/// The `Server` header (what connvitals' port scan showed), printable and
/// cut at 100 characters; `None` when the server does not say.
fn server_header(resp: &crate::net::http::Response) -> Option<String> {
    let value = resp.header("server")?;
    Some(socket::printable(value.as_bytes(), 100)).filter(|s| !s.is_empty())
}
