//! `smtp4/smtp6(h, opts)`: the 220 banner, EHLO, optionally STARTTLS (with
//! the certificate verified), optionally `MAIL FROM:<from_addr>`, and one
//! `command` whose reply must match the regular expression `response`;
//! then QUIT. What `check_smtp -f FROM -C COMMAND -R RESPONSE` did for
//! picomon's SMTP4/6, so a relay test (`RCPT TO` a foreign address, expect
//! 554) reads the same.

use std::time::Duration;

use regex_lite::Regex;

use super::range::Thresholds;
use super::socket::{self, Deadline, Family, Link};
use super::tls::{self, TlsOptions};
use super::Report;
use crate::model::{Outcome, Probe};

/// A reply longer than this is not an SMTP server talking.
const REPLY_LIMIT: usize = 64 * 1024;

#[derive(Debug)]
pub struct SmtpProbe {
    pub addr: String,
    pub family: Family,
    pub port: u16,
    pub helo: String,
    /// STARTTLS, verified against this name.
    pub starttls: Option<(String, TlsOptions)>,
    /// `MAIL FROM:<this>` before `command`.
    pub from_addr: Option<String>,
    pub command: Option<String>,
    /// What the reply to `command` must match (code and text, as
    /// check_smtp's `-R`).
    pub response: Option<Regex>,
    pub time: Thresholds,
}

impl SmtpProbe {
    fn session(&self, deadline: &Deadline) -> Result<String, String> {
        let addrs = socket::resolve(&self.addr, self.port, self.family, deadline)?;
        let sock = socket::connect(&addrs, deadline)?;
        let mut link: Box<dyn Link> = Box::new(sock);
        let (code, banner) = reply(link.as_mut(), deadline, "banner")?;
        if code != 220 {
            return Err(format!("banner is not 220: {code} {banner}"));
        }
        self.ehlo(link.as_mut(), deadline)?;
        if let Some((sni, opts)) = &self.starttls {
            let (code, text) = say(link.as_mut(), deadline, "STARTTLS")?;
            if code != 220 {
                return Err(format!("STARTTLS refused: {code} {text}"));
            }
            // Nothing may be buffered past the 220: take the socket back.
            let sock = match downcast_tcp(link) {
                Some(s) => s,
                None => return Err("STARTTLS on an already secured link".into()),
            };
            let (tls_link, _) = tls::handshake(sock, sni, opts, deadline)
                .map_err(|f| format!("STARTTLS: {}", tls::failure_outcome(&f).1))?;
            link = Box::new(tls_link);
            self.ehlo(link.as_mut(), deadline)?;
        }
        if let Some(from) = &self.from_addr {
            let (code, text) = say(link.as_mut(), deadline, &format!("MAIL FROM:<{from}>"))?;
            if code != 250 {
                return Err(format!("MAIL FROM:<{from}> refused: {code} {text}"));
            }
        }
        if let Some(cmd) = &self.command {
            let (code, text) = say(link.as_mut(), deadline, cmd)?;
            let line = format!("{code} {text}");
            match &self.response {
                Some(want) if !want.is_match(&line) => {
                    let _ = say(link.as_mut(), deadline, "QUIT");
                    return Err(format!(
                        "{cmd}: expected a reply matching '{}', got '{line}'",
                        want.as_str()
                    ));
                }
                None if code >= 400 => return Err(format!("{cmd}: {line}")),
                _ => {}
            }
        }
        let _ = say(link.as_mut(), deadline, "QUIT");
        Ok(banner)
    }

    fn ehlo(&self, link: &mut dyn Link, deadline: &Deadline) -> Result<(), String> {
        let (code, text) = say(link, deadline, &format!("EHLO {}", self.helo))?;
        if code != 250 {
            return Err(format!("EHLO refused: {code} {text}"));
        }
        Ok(())
    }
}

/// The plain socket back from a boxed link, for STARTTLS.
fn downcast_tcp(link: Box<dyn Link>) -> Option<std::net::TcpStream> {
    let any: Box<dyn std::any::Any> = link.into_any();
    any.downcast::<std::net::TcpStream>().ok().map(|b| *b)
}

/// Sends one command line and reads its reply.
fn say(link: &mut dyn Link, deadline: &Deadline, cmd: &str) -> Result<(u16, String), String> {
    socket::send(link, format!("{cmd}\r\n").as_bytes(), deadline)
        .map_err(|e| deadline.describe(&format!("sending {}", verb(cmd)), &e))?;
    reply(link, deadline, verb(cmd))
}

fn verb(cmd: &str) -> &str {
    cmd.split_whitespace().next().unwrap_or(cmd)
}

/// True once `buf` holds a complete (possibly multi-line) reply.
fn complete(buf: &[u8]) -> bool {
    let text = String::from_utf8_lossy(buf);
    text.ends_with('\n')
        && text
            .lines()
            .last()
            .is_some_and(|l| (l.len() >= 4 && l.as_bytes()[3] == b' ') || l.len() == 3)
}

/// Reads one reply: its code and the text of its last line.
fn reply(link: &mut dyn Link, deadline: &Deadline, what: &str) -> Result<(u16, String), String> {
    let buf = socket::read_until(link, deadline, REPLY_LIMIT, &complete)
        .map_err(|e| deadline.describe(&format!("waiting for the {what} reply"), &e))?;
    if buf.is_empty() {
        return Err(format!("connection closed before the {what} reply"));
    }
    let text = String::from_utf8_lossy(&buf);
    let last = text.lines().last().unwrap_or("");
    let code = last
        .get(0..3)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| {
            format!(
                "not an SMTP reply to {what}: '{}'",
                socket::printable(&buf, 200)
            )
        })?;
    Ok((
        code,
        socket::printable(last.get(4..).unwrap_or("").as_bytes(), 200),
    ))
}

impl Probe for SmtpProbe {
    fn run(&self, timeout: Duration) -> Outcome {
        let tls = match &self.starttls {
            Some((_, o)) if o.no_verify => {
                ", STARTTLS (certificate chain not checked: verify: false)"
            }
            Some(_) => ", STARTTLS",
            None => "",
        };
        Report::new("SMTP").timed(
            timeout,
            &self.time,
            |d| self.session(d),
            |banner, secs| format!("{secs} s response time{tls}, 220 {banner}"),
        )
    }
}
