//! `openvpn4/openvpn6(h, opts)`: an OpenVPN hard-reset packet to UDP 1194
//! must get an answer, any answer; picomon's OpenVPN4/6 did this with
//! `check_udp`. A connected UDP socket also hears the ICMP "port
//! unreachable", so a closed port fails at once rather than at the timeout.

use std::time::Duration;

use super::range::Thresholds;
use super::socket::{self, Deadline, Family};
use super::Report;
use crate::model::{Outcome, Probe};

/// P_CONTROL_HARD_RESET_CLIENT_V2 as picomon sent it.
pub const HARD_RESET: &[u8] = b"\x38\x01\x01\x01\x01\x01\x01\x01\x42";

#[derive(Debug)]
pub struct OpenVpnProbe {
    pub addr: String,
    pub family: Family,
    pub port: u16,
}

impl OpenVpnProbe {
    fn exchange(&self, deadline: &Deadline) -> Result<usize, String> {
        let addrs = socket::resolve(&self.addr, self.port, self.family, deadline)?;
        let target = addrs[0];
        let sock = socket::udp_send(target, HARD_RESET)?;
        let mut buf = [0u8; 2048];
        let unreachable = format!("nothing listens on UDP {}", self.port);
        socket::udp_recv(&sock, &mut buf, target, &unreachable, deadline)
    }
}

impl Probe for OpenVpnProbe {
    fn run(&self, timeout: Duration) -> Outcome {
        Report::new("OPENVPN").timed(
            timeout,
            &Thresholds::default(),
            |d| self.exchange(d),
            |n, secs| {
                format!(
                    "{n} bytes answered from {} port {} in {secs} s",
                    self.addr, self.port
                )
            },
        )
    }
}
