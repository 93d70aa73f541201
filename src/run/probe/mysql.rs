//! `mysql4/mysql6(h [, opts])`: reads the greeting a MySQL or MariaDB
//! server sends first on a new connection and reports its version, as
//! connvitals' port scan did. No credentials, no client library: the probe
//! reads one packet and hangs up.
//!
//! The greeting (the "initial handshake packet", protocol 10):
//!
//! ```text
//! [len: 3 bytes LE][seq: 1] payload:
//!   0x0a  server version NUL  connection id (4 LE)  auth data (8)  0x00
//!   capabilities (2)  charset (1)  status (2)  ...
//! ```
//!
//! A server that will not talk to us (host not allowed, too many
//! connections) sends an error packet instead: `0xff`, error code (2 LE),
//! message. MariaDB puts `5.5.5-` before its version for old clients; it is
//! left out of what we report.

use std::time::Duration;

use super::range::{fmt_num, Thresholds};
use super::socket::{self, Deadline, Family, Link};
use super::Report;
use crate::model::{Outcome, Probe, Status};

#[derive(Debug)]
pub struct MysqlProbe {
    pub addr: String,
    pub family: Family,
    pub port: u16,
    /// Limits on the seconds until the greeting is read.
    pub time: Thresholds,
}

/// What a greeting says.
#[derive(Debug, PartialEq)]
pub struct Greeting {
    pub protocol: u8,
    pub version: String,
    pub connection_id: u32,
}

/// The longest greeting we read: real ones are about 100 bytes.
const MAX_PACKET: usize = 16 * 1024;

/// The payload length in a packet header (3 bytes, little-endian).
fn packet_len(p: &[u8]) -> usize {
    usize::from(p[0]) | usize::from(p[1]) << 8 | usize::from(p[2]) << 16
}

/// Parses one packet (header included) the server sent first: its
/// greeting, or the refusal it sent instead as the error.
pub fn parse_greeting(packet: &[u8]) -> Result<Greeting, String> {
    let garbled = |why: &str| {
        format!(
            "not a MySQL greeting ({why}): '{}'",
            socket::printable(packet, 80)
        )
    };
    if packet.len() < 5 {
        return Err(garbled("too short"));
    }
    let payload = packet
        .get(4..4 + packet_len(packet))
        .ok_or_else(|| garbled("shorter than its length field"))?;
    match payload.first() {
        Some(0xff) => {
            let code = payload
                .get(1..3)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .unwrap_or(0);
            let mut msg = payload.get(3..).unwrap_or_default();
            // `#` + SQL state, when the server sends one.
            if msg.first() == Some(&b'#') && msg.len() >= 6 {
                msg = &msg[6..];
            }
            Err(format!(
                "the server refused the connection: error {code}: {}",
                socket::printable(msg, 200)
            ))
        }
        Some(&protocol @ (9 | 10)) => {
            let rest = &payload[1..];
            let nul = rest
                .iter()
                .position(|&b| b == 0)
                .ok_or_else(|| garbled("no end to the version"))?;
            let raw = String::from_utf8_lossy(&rest[..nul]);
            let version = raw.strip_prefix("5.5.5-").unwrap_or(&raw).to_string();
            let id = rest
                .get(nul + 1..nul + 5)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(|| garbled("no connection id"))?;
            Ok(Greeting {
                protocol,
                version,
                connection_id: id,
            })
        }
        _ => Err(garbled("unknown protocol version")),
    }
}

impl MysqlProbe {
    fn greet(&self, deadline: &Deadline) -> Result<Greeting, String> {
        let addrs = socket::resolve(&self.addr, self.port, self.family, deadline)?;
        let mut sock = socket::connect(&addrs, deadline)?;
        let link: &mut dyn Link = &mut sock;
        // Enough read: the whole first packet, or what cannot begin one.
        let enough = |b: &[u8]| {
            b.len() >= 5
                && (!matches!(b[4], 9 | 10 | 0xff)
                    || 4 + packet_len(b) > MAX_PACKET
                    || b.len() >= 4 + packet_len(b))
        };
        let got = socket::read_until(link, deadline, MAX_PACKET, &enough)
            .map_err(|e| deadline.describe("waiting for the greeting", &e))?;
        if got.is_empty() {
            return Err("connection closed without a greeting".into());
        }
        parse_greeting(&got)
    }
}

impl Probe for MysqlProbe {
    fn run(&self, timeout: Duration) -> Outcome {
        let deadline = Deadline::after(timeout);
        let r = Report::new("MYSQL");
        match self.greet(&deadline) {
            Ok(g) => {
                let secs = deadline.elapsed().as_secs_f64();
                let mut out = r.done(
                    self.time.status(secs),
                    format!(
                        "{} on {} port {} (protocol {}, connection {}) in {} s",
                        g.version,
                        self.addr,
                        self.port,
                        g.protocol,
                        g.connection_id,
                        fmt_num(secs)
                    ),
                    vec![self.time.perf("time", secs, "s")],
                    &deadline,
                );
                out.data = Some(Box::new(serde_json::json!({
                    "version": g.version,
                    "protocol": g.protocol,
                    "connection_id": g.connection_id,
                    "time": secs,
                })));
                out
            }
            Err(e) => r.done(Status::Critical, e, vec![], &deadline),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut p = len.to_le_bytes()[..3].to_vec();
        p.push(0);
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn a_greeting_gives_version_and_connection() {
        let mut payload = vec![10];
        payload.extend_from_slice(b"5.5.5-10.11.6-MariaDB-0+deb12u1\0");
        payload.extend_from_slice(&7u32.to_le_bytes());
        payload.extend_from_slice(b"abcdefgh\0");
        assert_eq!(
            parse_greeting(&packet(&payload)),
            Ok(Greeting {
                protocol: 10,
                version: "10.11.6-MariaDB-0+deb12u1".into(),
                connection_id: 7,
            })
        );
    }

    #[test]
    fn an_error_packet_is_the_refusal_it_says() {
        let mut payload = vec![0xff];
        payload.extend_from_slice(&1130u16.to_le_bytes());
        payload.extend_from_slice(
            b"Host '192.0.2.1' is not allowed to connect to this MariaDB server",
        );
        let e = parse_greeting(&packet(&payload)).unwrap_err();
        assert_eq!(
            e,
            "the server refused the connection: error 1130: Host '192.0.2.1' is not allowed to connect to this MariaDB server"
        );
        let mut with_state = vec![0xff, 0x10, 0x04];
        with_state.extend_from_slice(b"#08004Too many connections");
        let e = parse_greeting(&packet(&with_state)).unwrap_err();
        assert!(e.ends_with("error 1040: Too many connections"), "{e}");
    }

    #[test]
    fn anything_else_is_not_a_greeting() {
        for bad in [&b"SSH-2.0-OpenSSH_9.2\r\n"[..], b"\x05\0\0\0\x0a5.7", b"ab"] {
            let e = parse_greeting(bad).unwrap_err();
            assert!(e.starts_with("not a MySQL greeting"), "{e}");
        }
    }
}
