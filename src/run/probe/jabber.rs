//! `jabber4/jabber6(h, opts)`: the XMPP server opens a stream on 5222. Any
//! `<stream:stream` answer is fine, as it was for `check_jabber`.

use std::time::Duration;

use super::range::Thresholds;
use super::socket::{self, Deadline, Family, Link};
use super::tcp::contains;
use super::Report;
use crate::model::{Outcome, Probe};

#[derive(Debug)]
pub struct JabberProbe {
    pub addr: String,
    pub family: Family,
    pub port: u16,
    /// The `to` of the stream: the XMPP domain.
    pub domain: String,
}

impl JabberProbe {
    fn open(&self, deadline: &Deadline) -> Result<(), String> {
        let addrs = socket::resolve(&self.addr, self.port, self.family, deadline)?;
        let mut sock = socket::connect(&addrs, deadline)?;
        let link: &mut dyn Link = &mut sock;
        let hello = format!(
            "<?xml version='1.0'?><stream:stream to='{}' xmlns='jabber:client' \
             xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>",
            xml_escape(&self.domain)
        );
        socket::send(link, hello.as_bytes(), deadline)
            .map_err(|e| deadline.describe("send", &e))?;
        let got = socket::read_until(link, deadline, 16 * 1024, &|b| {
            contains(b, b"<stream:stream")
        })
        .map_err(|e| deadline.describe("waiting for the stream", &e))?;
        if contains(&got, b"<stream:stream") {
            Ok(())
        } else if got.is_empty() {
            Err("connection closed without opening a stream".into())
        } else {
            Err(format!(
                "no XMPP stream in the answer: '{}'",
                socket::printable(&got, 200)
            ))
        }
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('\'', "&apos;")
        .replace('<', "&lt;")
}

impl Probe for JabberProbe {
    fn run(&self, timeout: Duration) -> Outcome {
        Report::new("JABBER").timed(
            timeout,
            &Thresholds::default(),
            |d| self.open(d),
            |(), secs| {
                format!(
                    "stream opened by {} port {} in {secs} s",
                    self.addr, self.port
                )
            },
        )
    }
}
