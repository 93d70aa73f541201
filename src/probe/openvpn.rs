//! `openvpn4/openvpn6(h, opts)`: an OpenVPN hard-reset packet to UDP 1194
//! must get an answer, any answer; picomon's OpenVPN4/6 did this with
//! `check_udp`. A connected UDP socket also hears the ICMP "port
//! unreachable", so a closed port fails at once rather than at the timeout.

use std::io;
use std::net::UdpSocket;
use std::time::Duration;

use super::net::{self, Deadline, Family};
use super::opts::{Opts, RhaiResult};
use super::range::fmt_num;
use super::{perf, Report};
use crate::check::{Host, Outcome, Probe, Status};

/// P_CONTROL_HARD_RESET_CLIENT_V2 as picomon sent it.
pub const HARD_RESET: &[u8] = b"\x38\x01\x01\x01\x01\x01\x01\x01\x42";

#[derive(Debug)]
pub struct OpenVpnProbe {
    pub addr: String,
    pub family: Family,
    pub port: u16,
}

impl OpenVpnProbe {
    pub const OPTIONS: &'static [&'static str] = &["port"];

    pub fn new(h: &Host, family: Family, o: &Opts) -> RhaiResult<OpenVpnProbe> {
        Ok(OpenVpnProbe {
            addr: family.addr_of(h),
            family,
            port: o.port("port")?.unwrap_or(1194),
        })
    }

    fn exchange(&self, deadline: &Deadline) -> Result<usize, String> {
        let addrs = net::resolve(&self.addr, self.port, self.family)?;
        let target = addrs[0];
        let local = match self.family {
            Family::V4 => "0.0.0.0:0",
            Family::V6 => "[::]:0",
        };
        let sock = UdpSocket::bind(local).map_err(|e| format!("cannot open a UDP socket: {e}"))?;
        sock.connect(target)
            .map_err(|e| format!("cannot reach {target}: {e}"))?;
        sock.send(HARD_RESET)
            .map_err(|e| format!("cannot send to {target}: {e}"))?;
        let mut buf = [0u8; 2048];
        loop {
            let left = deadline
                .left()
                .map_err(|_| format!("no answer from {target} ({})", deadline.timed_out()))?;
            sock.set_read_timeout(Some(left))
                .map_err(|e| format!("socket: {e}"))?;
            match sock.recv(&mut buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    return Err(format!(
                        "{target}: port unreachable (nothing listens on UDP {})",
                        self.port
                    ))
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(format!(
                        "no answer from {target} ({})",
                        deadline.timed_out()
                    ))
                }
                Err(e) => return Err(format!("{target}: {e}")),
            }
        }
    }
}

impl Probe for OpenVpnProbe {
    fn run(&self, timeout: Duration) -> Outcome {
        let deadline = Deadline::after(timeout);
        let r = Report::new("OPENVPN");
        match self.exchange(&deadline) {
            Ok(n) => {
                let secs = deadline.elapsed().as_secs_f64();
                r.done(
                    Status::Ok,
                    format!(
                        "{n} bytes answered from {} port {} in {} s",
                        self.addr,
                        self.port,
                        fmt_num(secs)
                    ),
                    vec![perf("time", secs, "s", "", "")],
                    &deadline,
                )
            }
            Err(e) => r.done(Status::Critical, e, vec![], &deadline),
        }
    }
}
