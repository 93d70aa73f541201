//! `tcp(h, port)`: connect time, optionally TLS, optionally a string sent and
//! a reply expected. The cheapest probe, and the one 10,000 of which must fit
//! in a tick: one socket, no thread, every step bounded by the deadline.

use std::time::Duration;

use super::range::{fmt_num, Thresholds};
use super::socket::{self, Deadline, Family, Link};
use super::tls::{self, TlsOptions};
use super::Report;
use crate::model::{Outcome, Probe, Status};

/// How much of a reply `expect` looks at.
const REPLY_LIMIT: usize = 64 * 1024;

#[derive(Debug)]
pub struct TcpProbe {
    pub addr: String,
    pub port: u16,
    pub family: Family,
    pub send: Option<String>,
    pub expect: Option<String>,
    /// TLS after connect, verified against `sni`.
    pub tls: Option<(String, TlsOptions)>,
    /// On the connect (and handshake) time in seconds.
    pub time: Thresholds,
}

impl TcpProbe {
    fn converse(&self, link: &mut dyn Link, deadline: &Deadline) -> Result<(), String> {
        if let Some(s) = &self.send {
            socket::send(link, s.as_bytes(), deadline)
                .map_err(|e| deadline.describe("send", &e))?;
        }
        if let Some(want) = &self.expect {
            let w = want.as_bytes();
            let got = socket::read_until(link, deadline, REPLY_LIMIT, &|b| contains(b, w))
                .map_err(|e| deadline.describe("read", &e))?;
            if !contains(&got, w) {
                return Err(format!(
                    "Pattern '{want}' not found in reply: '{}'",
                    socket::printable(&got, 200)
                ));
            }
        }
        Ok(())
    }
}

/// Substring search on bytes.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

impl Probe for TcpProbe {
    fn run(&self, timeout: Duration) -> Outcome {
        let deadline = Deadline::after(timeout);
        let r = Report::new("TCP");
        let fail = |msg: String| r.done(Status::Critical, msg, vec![], &deadline);
        let addrs = match socket::resolve(&self.addr, self.port, self.family, &deadline) {
            Ok(a) => a,
            Err(e) => return fail(e),
        };
        let sock = match socket::connect(&addrs, &deadline) {
            Ok(s) => s,
            Err(e) => return fail(e),
        };
        let mut note = None;
        let mut link: Box<dyn Link> = match &self.tls {
            None => Box::new(sock),
            Some((sni, opts)) => match tls::handshake(sock, sni, opts, &deadline) {
                Ok((s, cert)) => {
                    note = cert.trust.note();
                    Box::new(s)
                }
                Err(f) => return fail(tls::failure_outcome(&f).1),
            },
        };
        let connect_time = deadline.elapsed().as_secs_f64();
        if let Err(e) = self.converse(link.as_mut(), &deadline) {
            return fail(e);
        }
        let status = self.time.status(connect_time);
        let p = self.time.perf("time", connect_time, "s");
        r.done(
            status,
            format!(
                "{} s response time on {} port {}{}",
                fmt_num(connect_time),
                self.addr,
                self.port,
                note.map(|n| format!(" - {n}")).unwrap_or_default()
            ),
            vec![p],
            &deadline,
        )
    }
}
