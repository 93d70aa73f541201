//! `http4/http6/https4/https6(h, opts)`: GET `url` on the host's v4 or v6
//! address, with `vhost` as Host header and TLS server name, as
//! `check_http -I addr -H vhost --sni` does. The request is ureq's; for https
//! a handshake of our own first reads the certificate, so its days left and
//! any name or chain problem are reported with the reason, and the request
//! then goes over ureq with the very same rustls set-up ([`ProbeTls`]), so
//! `ca_file` (a CA, or the server's own certificate) and `verify: false`
//! mean the same for both connections.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use regex_lite::Regex;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, TcpConnector,
    Transport, TransportAdapter,
};

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

/// An agent for an https probe: TCP to `addrs`, then TLS with the probe's
/// own rustls set-up `tls`.
fn https_agent(left: Duration, tls: Arc<ClientConfig>, addrs: Vec<SocketAddr>) -> ureq::Agent {
    let config = crate::net::http::agent_config(left, ureq::tls::TlsConfig::default(), 0);
    let connector = ().chain(TcpConnector::default()).chain(ProbeTls(tls));
    ureq::Agent::with_parts(config, connector, crate::net::http::Fixed(addrs))
}

/// ureq's TLS step done with a rustls config of ours: ureq's own TLS can
/// only be given roots or no verification at all, not a verifier that
/// trusts the exact certificate of `ca_file`.
#[derive(Debug)]
struct ProbeTls(Arc<ClientConfig>);

impl<In: Transport> Connector<In> for ProbeTls {
    type Out = Either<In, ProbeTlsTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let host = details.uri.host().unwrap_or_default();
        let name = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']'))
            .map_err(|_| ureq::Error::Tls("not a valid TLS server name"))?
            .to_owned();
        let mut conn = ClientConnection::new(self.0.clone(), name)?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        sock.set_timeout(details.timeout);
        conn.complete_io(&mut sock)?;
        Ok(Some(Either::B(ProbeTlsTransport {
            buffers: LazyBuffers::new(
                details.config.input_buffer_size(),
                details.config.output_buffer_size(),
            ),
            stream: StreamOwned::new(conn, sock),
        })))
    }
}

/// The TLS transport [`ProbeTls`] makes.
struct ProbeTlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl std::fmt::Debug for ProbeTlsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProbeTlsTransport")
    }
}

impl Transport for ProbeTlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let n = self.stream.read(input)?;
        self.buffers.input_appended(n);
        Ok(n > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}

/// True when a request failed for lack of time.
pub(super) fn is_timeout(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Timeout(_) => true,
        ureq::Error::Io(io) => matches!(
            io.kind(),
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
        ),
        _ => false,
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
        let agent = match tls_cfg {
            Some(cfg) => https_agent(left, cfg, addrs),
            None => crate::net::http::agent(left, ureq::tls::TlsConfig::default(), 0, Some(addrs)),
        };
        let resp = match agent.get(&self.url()).call() {
            Ok(resp) => resp,
            Err(e) if is_timeout(&e) => {
                return fail(format!("{}: {}", self.url(), deadline.timed_out()))
            }
            Err(e) => return fail(format!("{}: {e}", self.url())),
        };
        let code = resp.status().as_u16();
        let line = format!(
            "{:?} {} {}",
            resp.version(),
            code,
            resp.status().canonical_reason().unwrap_or_default()
        );
        let server = server_header(&resp);
        let mut body = Vec::new();
        let mut reader = resp.into_body().into_reader().take(BODY_LIMIT);
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
fn server_header<B>(resp: &ureq::http::Response<B>) -> Option<String> {
    let value = resp.headers().get("server")?;
    Some(socket::printable(value.as_bytes(), 100)).filter(|s| !s.is_empty())
}
