//! Network helpers shared by the probes: one deadline per run, address
//! resolution by family, bounded connects and reads.
//!
//! Every socket operation gets the time left until the run's deadline, so a
//! probe as a whole never outlives its `timeout`, however many steps it has.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// Which address family a probe uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn from_version(v: u8) -> Family {
        if v == 6 {
            Family::V6
        } else {
            Family::V4
        }
    }

    pub fn matches(self, ip: &IpAddr) -> bool {
        matches!(
            (self, ip),
            (Family::V4, IpAddr::V4(_)) | (Family::V6, IpAddr::V6(_))
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }

    /// The suffix of constructor names: `4` or `6`.
    pub fn digit(self) -> &'static str {
        match self {
            Family::V4 => "4",
            Family::V6 => "6",
        }
    }

    /// The address of `h` for this family.
    pub fn addr_of(self, h: &crate::model::Host) -> String {
        match self {
            Family::V4 => h.addr4().to_string(),
            Family::V6 => h.addr6().to_string(),
        }
    }
}

/// The name a probe gives a server of host `h` (HTTP Host header, TLS
/// server name): the host's name where it is a DNS name, else its address
/// for `family` (a display name like "Strange IPs" cannot go into a
/// protocol).
pub fn server_name(h: &crate::model::Host, family: Family) -> String {
    if is_dns_name(&h.name) {
        h.name.clone()
    } else {
        family.addr_of(h)
    }
}

/// A DNS host name: dot-separated labels of letters, digits, `-` and `_`,
/// each 1 to 63 long, 253 at most in all.
pub fn is_dns_name(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.parse::<IpAddr>().is_err()
        && s.split('.').all(|l| {
            (1..=63).contains(&l.len())
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// The end of one run.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    pub start: Instant,
    pub end: Instant,
    pub timeout: Duration,
}

impl Deadline {
    pub fn after(timeout: Duration) -> Deadline {
        let start = Instant::now();
        Deadline {
            start,
            end: start + timeout,
            timeout,
        }
    }

    /// Time left, or a `TimedOut` error once it has passed. Never zero, as a
    /// zero socket timeout would mean "wait forever".
    pub fn left(&self) -> io::Result<Duration> {
        let left = self.end.saturating_duration_since(Instant::now());
        if left < Duration::from_millis(1) {
            Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"))
        } else {
            Ok(left)
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// "timed out after 10 s", the words the plugin runner uses too.
    pub fn timed_out(&self) -> String {
        format!("timed out after {} s", secs(self.timeout))
    }

    /// Describes an I/O error; a timeout says which limit it hit.
    pub fn describe(&self, what: &str, e: &io::Error) -> String {
        match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
                format!("{what}: {}", self.timed_out())
            }
            _ => format!("{what}: {e}"),
        }
    }
}

/// Seconds for messages: `10` or `0.5`.
pub fn secs(d: Duration) -> String {
    super::range::fmt_num(d.as_secs_f64())
}

/// A UDP socket connected to `target` that has sent `request`; connected,
/// so an ICMP port unreachable comes back as an error on the next receive.
pub fn udp_send(target: SocketAddr, request: &[u8]) -> Result<UdpSocket, String> {
    let local = if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let sock = UdpSocket::bind(local).map_err(|e| format!("cannot open a UDP socket: {e}"))?;
    sock.connect(target)
        .map_err(|e| format!("cannot reach {target}: {e}"))?;
    sock.send(request)
        .map_err(|e| format!("cannot send to {target}: {e}"))?;
    Ok(sock)
}

/// Waits until the deadline for the next datagram from `target` on `sock`
/// (from [`udp_send`]) and returns its length. A port unreachable answer
/// becomes `TARGET: port unreachable (UNREACHABLE)`, where `unreachable`
/// says what that means for the probe; silence becomes "no answer".
pub fn udp_recv(
    sock: &UdpSocket,
    buf: &mut [u8],
    target: SocketAddr,
    unreachable: &str,
    deadline: &Deadline,
) -> Result<usize, String> {
    let no_answer = || format!("no answer from {target} ({})", deadline.timed_out());
    loop {
        let left = deadline.left().map_err(|_| no_answer())?;
        sock.set_read_timeout(Some(left))
            .map_err(|e| format!("socket: {e}"))?;
        match sock.recv(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                return Err(format!("{target}: port unreachable ({unreachable})"))
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(no_answer())
            }
            Err(e) => return Err(format!("{target}: {e}")),
        }
    }
}

/// Resolves `host` (an address or a name) to addresses of `family`, by
/// the deadline.
pub fn resolve(
    host: &str,
    port: u16,
    family: Family,
    deadline: &Deadline,
) -> Result<Vec<SocketAddr>, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        if !family.matches(&ip) {
            return Err(format!("{host} is not an {} address", family.name()));
        }
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    if !is_dns_name(bare) {
        // A display name (a host without this family's address).
        return Err(format!(
            "host {host:?} has no {} address and its name is not a DNS name (give the host an ipv{} address)",
            family.name(),
            family.digit()
        ));
    }
    let addrs: Vec<SocketAddr> = lookup(bare, port, deadline)?
        .into_iter()
        .filter(|a| family.matches(&a.ip()))
        .collect();
    if addrs.is_empty() {
        return Err(format!(
            "{host} has no {} address (give the host an ipv{} address)",
            family.name(),
            family.digit()
        ));
    }
    Ok(addrs)
}

/// Looks a name up with the system resolver (`/etc/hosts`, DNS, as
/// nsswitch.conf says), giving up at the deadline.
///
/// `getaddrinfo` cannot be cancelled and follows only resolv.conf's own
/// timeouts (by default 5 s per server and try), so it runs on a thread of
/// its own and the probe waits for it no longer than its deadline. A lookup
/// given up on ends by itself when the resolver gives up. An address
/// written as such is returned as it is.
pub fn lookup(name: &str, port: u16, deadline: &Deadline) -> Result<Vec<SocketAddr>, String> {
    crate::net::resolve::lookup(name, port, deadline.end, deadline.timeout)
}

/// Connects to the first address that answers, within the deadline, and
/// sets read and write timeouts to the time then left.
pub fn connect(addrs: &[SocketAddr], deadline: &Deadline) -> Result<TcpStream, String> {
    let mut last = String::from("no address to connect to");
    for addr in addrs {
        let left = deadline
            .left()
            .map_err(|e| deadline.describe("connect", &e))?;
        match TcpStream::connect_timeout(addr, left) {
            Ok(s) => {
                set_timeouts(&s, deadline).map_err(|e| deadline.describe("connect", &e))?;
                return Ok(s);
            }
            Err(e) => last = deadline.describe(&format!("connect to {addr}"), &e),
        }
    }
    Err(last)
}

/// Sets read and write timeouts of `s` to the time left.
pub fn set_timeouts(s: &TcpStream, deadline: &Deadline) -> io::Result<()> {
    let left = deadline.left()?;
    s.set_read_timeout(Some(left))?;
    s.set_write_timeout(Some(left))
}

/// A byte stream with timeouts: plain TCP or TLS over TCP.
pub trait Link: Read + Write + Send {
    /// Sets the read and write timeouts of the underlying socket.
    fn set_timeout(&mut self, d: Duration) -> io::Result<()>;

    /// For taking the plain socket back (SMTP's STARTTLS).
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any>;
}

impl Link for TcpStream {
    fn set_timeout(&mut self, d: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(d))?;
        self.set_write_timeout(Some(d))
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

impl Link for super::tls::TlsStream {
    fn set_timeout(&mut self, d: Duration) -> io::Result<()> {
        self.sock.set_timeout(d)
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

/// Writes all of `data` within the deadline.
pub fn send(link: &mut dyn Link, data: &[u8], deadline: &Deadline) -> io::Result<()> {
    link.set_timeout(deadline.left()?)?;
    link.write_all(data)?;
    link.flush()
}

/// Reads until `done(buffer)` says so, EOF, `limit` bytes or the deadline.
/// Returns what was read; an error only when nothing useful came.
pub fn read_until(
    link: &mut dyn Link,
    deadline: &Deadline,
    limit: usize,
    done: &dyn Fn(&[u8]) -> bool,
) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !done(&buf) && buf.len() < limit {
        link.set_timeout(deadline.left()?)?;
        match link.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(buf)
}

/// Makes bytes printable for a one-line message: lossy UTF-8, control
/// characters as spaces, cut at `max` characters.
pub fn printable(bytes: &[u8], max: usize) -> String {
    let s = String::from_utf8_lossy(bytes);
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if s.chars().count() > max {
        out.push_str("...");
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_are_not_dns_names() {
        for ok in ["web1", "www.example.org", "www.example.org.", "a-b_c.d"] {
            assert!(is_dns_name(ok), "{ok}");
        }
        for bad in [
            "Strange IPs",
            "",
            "127.0.0.1",
            "::1",
            "a..b",
            "127.0.0.1/::1",
        ] {
            assert!(!is_dns_name(bad), "{bad}");
        }
        let h = crate::model::Host {
            name: "Strange IPs".into(),
            ipv4: Some("127.0.0.2".into()),
            ipv6: None,
        };
        assert_eq!(server_name(&h, Family::V4), "127.0.0.2");
        let d = Deadline::after(Duration::from_secs(1));
        let e = resolve(&h.name, 80, Family::V6, &d).unwrap_err();
        assert!(e.contains("no IPv6 address") && e.contains("ipv6"), "{e}");
    }
}
