//! `dns4/dns6(h, opts)`: ask the host's DNS server for `name` (`type` A by
//! default); NOERROR is required, `expect` an answer. Messages are built and
//! read by `net::dns` and sent on a plain std UDP socket (TCP when the
//! answer is truncated). [`query`] is shared with `dns_zone`.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::time::Duration;

use crate::net::dns::{self, Message, Name, Rcode, RecordType};

use super::range::Thresholds;
use super::socket::{self, Deadline, Family};
use super::Report;
use crate::model::{Outcome, Probe, Status};

/// A fresh query id; randomness from std's hasher keys is plenty here.
fn query_id() -> u16 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(std::process::id() as u64);
    h.finish() as u16
}

/// Asks `server` one question over UDP within the deadline; the answer
/// must carry our id. Errors are ready for a message.
pub fn query(
    server: SocketAddr,
    name: &Name,
    rtype: RecordType,
    recursion: bool,
    deadline: &Deadline,
) -> Result<Message, String> {
    let id = query_id();
    let bytes = dns::query(id, name, rtype, recursion);
    let sock = socket::udp_send(server, &bytes)?;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = socket::udp_recv(&sock, &mut buf, server, "no DNS server there", deadline)?;
        let Ok(answer) = Message::parse(&buf[..n]) else {
            continue; // garbage or a stray datagram: keep waiting
        };
        if answer.id == id && answer.response {
            if answer.truncated {
                return query_tcp(server, &bytes, id, deadline);
            }
            return Ok(answer);
        }
    }
}

/// The same question over TCP, for an answer too big for UDP.
fn query_tcp(
    server: SocketAddr,
    bytes: &[u8],
    id: u16,
    deadline: &Deadline,
) -> Result<Message, String> {
    let what = format!("{server} over TCP");
    let mut sock = socket::connect(&[server], deadline).map_err(|e| format!("{what}: {e}"))?;
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    let link: &mut dyn socket::Link = &mut sock;
    socket::send(link, &framed, deadline).map_err(|e| deadline.describe(&what, &e))?;
    let complete =
        |b: &[u8]| b.len() >= 2 && b.len() >= 2 + usize::from(u16::from_be_bytes([b[0], b[1]]));
    let got = socket::read_until(link, deadline, 70_000, &complete)
        .map_err(|e| deadline.describe(&what, &e))?;
    if !complete(&got) {
        return Err(format!("{what}: connection closed before a whole answer"));
    }
    let len = usize::from(u16::from_be_bytes([got[0], got[1]]));
    let answer =
        Message::parse(&got[2..2 + len]).map_err(|e| format!("{what}: bad answer: {e}"))?;
    if answer.id != id {
        return Err(format!("{what}: answer to another question"));
    }
    Ok(answer)
}

/// The data of the answer records of `msg`, as in a zone file.
pub fn answer_texts(msg: &Message) -> Vec<String> {
    msg.answers.iter().map(|r| r.data.to_string()).collect()
}

#[derive(Debug)]
pub struct DnsProbe {
    pub addr: String,
    pub family: Family,
    pub port: u16,
    pub name: Name,
    pub rtype: RecordType,
    pub expect: Option<String>,
    pub recurse: bool,
    pub time: Thresholds,
}

impl DnsProbe {
    fn ask(&self, deadline: &Deadline) -> Result<(Status, String), String> {
        let server = socket::resolve(&self.addr, self.port, self.family, deadline)?[0];
        let msg = query(server, &self.name, self.rtype, self.recurse, deadline)?;
        if msg.rcode != Rcode::NO_ERROR {
            return Err(format!(
                "{} {} at {server}: {}",
                self.name, self.rtype, msg.rcode
            ));
        }
        let answers = answer_texts(&msg);
        if let Some(want) = &self.expect {
            let norm = |s: &str| s.trim_end_matches('.').to_ascii_lowercase();
            if !answers.iter().any(|a| norm(a) == norm(want)) {
                return Err(format!(
                    "{} {} at {server}: expected {want}, got [{}]",
                    self.name,
                    self.rtype,
                    answers.join(", ")
                ));
            }
        }
        let list = match answers.len() {
            0 => "no records".to_string(),
            1..=5 => answers.join(", "),
            n => format!("{} and {} more", answers[..5].join(", "), n - 5),
        };
        Ok((
            Status::Ok,
            format!("{} {} at {server}: {list}", self.name, self.rtype),
        ))
    }
}

impl Probe for DnsProbe {
    fn run(&self, timeout: Duration) -> Outcome {
        Report::new("DNS").timed(
            timeout,
            &self.time,
            |d| self.ask(d),
            |(_, msg), secs| format!("{msg} in {secs} s"),
        )
    }
}
