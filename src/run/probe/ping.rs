//! `ping4/ping6(h, opts)`: ICMP echo with the statistics connvitals reports
//! (rtt min/avg/max/stddev in ms, loss in %), judged like `check_ping -w
//! 100,20% -c 500,60%`.
//!
//! Socket: a datagram ICMP socket first (no privilege needed where
//! `net.ipv4.ping_group_range` allows the group; the kernel then owns the
//! echo id), a raw socket second (CAP_NET_RAW; we filter replies by id and a
//! random token, as a raw socket sees every ICMP packet of the host).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use super::range::fmt_num;
use super::socket::{self, Deadline, Family};
use super::{perf, Report};
use crate::model::{Outcome, Perf, Probe, Status};

/// Which ICMP socket to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketKind {
    /// Datagram, else raw.
    Auto,
    Dgram,
    Raw,
}

/// `rta,pl%` as check_ping takes it: round-trip average in ms, loss in %.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PingLimit {
    pub rta: f64,
    pub pl: f64,
}

impl PingLimit {
    pub fn parse(s: &str) -> Result<PingLimit, String> {
        let (rta, pl) = s.split_once(',').ok_or_else(|| {
            format!("{s:?} must be \"RTA,LOSS%\", round-trip ms and loss percent, e.g. \"100,20%\"")
        })?;
        let num = |t: &str| t.trim().trim_end_matches('%').trim().parse::<f64>().ok();
        match (num(rta), num(pl)) {
            (Some(r), Some(p)) if r >= 0.0 && (0.0..=100.0).contains(&p) => {
                Ok(PingLimit { rta: r, pl: p })
            }
            _ => Err(format!(
                "{s:?} must be \"RTA,LOSS%\" with RTA >= 0 ms and LOSS 0..100 %, e.g. \"100,20%\""
            )),
        }
    }

    fn hit(&self, rta: Option<f64>, pl: f64) -> bool {
        pl >= self.pl || rta.is_some_and(|r| r >= self.rta)
    }
}

#[derive(Debug)]
pub struct PingProbe {
    pub addr: String,
    pub family: Family,
    pub count: u32,
    pub interval: Duration,
    pub warning: Option<PingLimit>,
    pub critical: Option<PingLimit>,
    pub socket: SocketKind,
}

/// Opens the ICMP socket of `kind`; the error says how to allow it.
fn open(family: Family, kind: SocketKind) -> Result<(UdpSocket, bool), String> {
    let (domain, proto) = match family {
        Family::V4 => (Domain::IPV4, Protocol::ICMPV4),
        Family::V6 => (Domain::IPV6, Protocol::ICMPV6),
    };
    let dgram = || Socket::new(domain, Type::DGRAM, Some(proto));
    let raw = || Socket::new(domain, Type::RAW, Some(proto));
    let fix = "allow unprivileged ping with `sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"` \
               (it covers IPv6 too), or give picomon CAP_NET_RAW \
               (`setcap cap_net_raw+ep` on the binary, or AmbientCapabilities=CAP_NET_RAW in systemd)";
    let res = match kind {
        SocketKind::Dgram => dgram()
            .map(|s| (s, false))
            .map_err(|e| format!("datagram ICMP socket: {e}")),
        SocketKind::Raw => raw()
            .map(|s| (s, true))
            .map_err(|e| format!("raw ICMP socket: {e}")),
        SocketKind::Auto => match dgram() {
            Ok(s) => Ok((s, false)),
            Err(de) => raw()
                .map(|s| (s, true))
                .map_err(|re| format!("datagram ICMP socket: {de}; raw ICMP socket: {re}")),
        },
    };
    res.map(|(s, raw)| (UdpSocket::from(s), raw))
        .map_err(|e| format!("cannot open an ICMP socket ({e}): {fix}"))
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish()
}

/// An echo request: type, code, checksum, id, seq, then the token.
fn echo_request(family: Family, id: u16, seq: u16, token: u64) -> Vec<u8> {
    let ty = if family == Family::V4 { 8 } else { 128 };
    let mut p = vec![ty, 0, 0, 0];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&token.to_be_bytes());
    p.extend_from_slice(b"picomon!");
    if family == Family::V4 {
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// The sequence number of a reply that is ours, else `None`.
fn our_reply(family: Family, raw: bool, pkt: &[u8], id: u16, token: u64) -> Option<u16> {
    let icmp = if family == Family::V4 && raw {
        let ihl = usize::from(pkt.first()? & 0x0f) * 4;
        pkt.get(ihl..)?
    } else {
        pkt
    };
    let reply_type = if family == Family::V4 { 0 } else { 129 };
    if *icmp.first()? != reply_type || icmp.len() < 16 {
        return None;
    }
    if raw && u16::from_be_bytes([icmp[4], icmp[5]]) != id {
        return None;
    }
    if icmp[8..16] != token.to_be_bytes() {
        return None;
    }
    Some(u16::from_be_bytes([icmp[6], icmp[7]]))
}

/// Round trips in ms of the replies that came back, in send order.
fn ping(
    sock: &UdpSocket,
    raw: bool,
    target: IpAddr,
    p: &PingProbe,
    deadline: &Deadline,
) -> io::Result<Vec<f64>> {
    let family = p.family;
    let to = SocketAddr::new(target, 0);
    let token = random_u64();
    let id = token as u16;
    // All requests go out within half the timeout, so late ones still have
    // time to come back.
    let budget = deadline.timeout / 2;
    let interval = if p.count > 1 {
        p.interval.min(budget / p.count)
    } else {
        p.interval
    };
    let mut sent_at: Vec<Instant> = Vec::new();
    let mut rtts: Vec<Option<f64>> = vec![None; p.count as usize];
    let mut next = Instant::now();
    let mut buf = [0u8; 2048];
    loop {
        let now = Instant::now();
        if sent_at.len() < p.count as usize && now >= next {
            let seq = sent_at.len() as u16;
            sock.send_to(&echo_request(family, id, seq, token), to)?;
            sent_at.push(Instant::now());
            next += interval;
            continue;
        }
        if rtts.iter().all(Option::is_some) {
            break;
        }
        let wake = if sent_at.len() < p.count as usize {
            next.min(deadline.end)
        } else {
            deadline.end
        };
        let wait = wake.saturating_duration_since(Instant::now());
        if wait < Duration::from_millis(1) {
            if Instant::now() >= deadline.end {
                break;
            }
            continue;
        }
        sock.set_read_timeout(Some(wait))?;
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                let when = Instant::now();
                if from.ip() != target {
                    continue;
                }
                if let Some(seq) = our_reply(family, raw, &buf[..n], id, token) {
                    let i = usize::from(seq);
                    if let (Some(t0), Some(slot)) = (sent_at.get(i), rtts.get_mut(i)) {
                        slot.get_or_insert((when - *t0).as_secs_f64() * 1000.0);
                    }
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(rtts.into_iter().flatten().collect())
}

/// min, avg, max, population stddev.
pub fn stats(rtts: &[f64]) -> Option<(f64, f64, f64, f64)> {
    if rtts.is_empty() {
        return None;
    }
    let n = rtts.len() as f64;
    let min = rtts.iter().copied().fold(f64::INFINITY, f64::min);
    let max = rtts.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let avg = rtts.iter().sum::<f64>() / n;
    let var = rtts.iter().map(|r| (r - avg).powi(2)).sum::<f64>() / n;
    Some((min, avg, max, var.sqrt()))
}

/// The run's statistics for `json_lines`, as connvitals reports them: rtt
/// in ms, loss in %, and every rtt -1 when nothing came back.
fn measurements(
    st: Option<(f64, f64, f64, f64)>,
    loss: f64,
    replies: usize,
    sent: u32,
) -> serde_json::Value {
    let (min, avg, max, std) = st.unwrap_or((-1.0, -1.0, -1.0, -1.0));
    let ms = |v: f64| (v * 1e3).round() / 1e3;
    serde_json::json!({
        "rtt_min": ms(min),
        "rtt_avg": ms(avg),
        "rtt_max": ms(max),
        "rtt_std": ms(std),
        "loss": ms(loss),
        "sent": sent,
        "received": replies,
    })
}

impl Probe for PingProbe {
    fn run(&self, timeout: Duration) -> Outcome {
        let deadline = Deadline::after(timeout);
        let r = Report::new("PING");
        let target = match socket::resolve(&self.addr, 0, self.family, &deadline) {
            Ok(a) => a[0].ip(),
            Err(e) => return r.done(Status::Critical, e, vec![], &deadline),
        };
        let (sock, raw) = match open(self.family, self.socket) {
            Ok(s) => s,
            Err(e) => return r.done(Status::Unknown, e, vec![], &deadline),
        };
        let rtts = match ping(&sock, raw, target, self, &deadline) {
            Ok(r) => r,
            Err(e) => {
                // Nothing came back either.
                let mut out = r.done(
                    Status::Critical,
                    format!("{target}: {e}"),
                    vec![],
                    &deadline,
                );
                out.data = Some(Box::new(measurements(None, 100.0, 0, self.count)));
                return out;
            }
        };
        let pl = 100.0 * (1.0 - rtts.len() as f64 / f64::from(self.count));
        let st = stats(&rtts);
        let rta = st.map(|s| s.1);
        let status = if rtts.is_empty() || self.critical.is_some_and(|c| c.hit(rta, pl)) {
            Status::Critical
        } else if self.warning.is_some_and(|w| w.hit(rta, pl)) {
            Status::Warning
        } else {
            Status::Ok
        };
        let wt = |f: fn(&PingLimit) -> f64, l: Option<PingLimit>| {
            l.map(|l| fmt_num(f(&l))).unwrap_or_default()
        };
        let mut perfdata: Vec<Perf> = Vec::new();
        let kind = if raw { "raw" } else { "datagram" };
        let msg = match st {
            Some((min, avg, max, dev)) => {
                perfdata.push(perf(
                    "rta",
                    avg,
                    "ms",
                    &wt(|l| l.rta, self.warning),
                    &wt(|l| l.rta, self.critical),
                ));
                perfdata.push(perf("rtmin", min, "ms", "", ""));
                perfdata.push(perf("rtmax", max, "ms", "", ""));
                perfdata.push(perf("stddev", dev, "ms", "", ""));
                format!(
                    "{target}: rta {} ms, lost {}% ({} of {} replies, {kind} socket)",
                    fmt_num(avg),
                    fmt_num(pl.round()),
                    rtts.len(),
                    self.count
                )
            }
            None => format!(
                "{target}: no reply, lost 100% ({} requests, {kind} socket)",
                self.count
            ),
        };
        let mut pl_perf = perf(
            "pl",
            pl.round(),
            "%",
            &wt(|l| l.pl, self.warning),
            &wt(|l| l.pl, self.critical),
        );
        if let Perf::Item { min, max, .. } = &mut pl_perf {
            *min = "0".into();
            *max = "100".into();
        }
        perfdata.push(pl_perf);
        let mut out = r.done(status, msg, perfdata, &deadline);
        out.data = Some(Box::new(measurements(st, pl, rtts.len(), self.count)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_like_check_ping() {
        assert_eq!(
            PingLimit::parse("100,20%").unwrap(),
            PingLimit {
                rta: 100.0,
                pl: 20.0
            }
        );
        assert_eq!(
            PingLimit::parse("2.5, 5").unwrap(),
            PingLimit { rta: 2.5, pl: 5.0 }
        );
        assert!(PingLimit::parse("100").unwrap_err().contains("RTA,LOSS%"));
        assert!(PingLimit::parse("100,200%").is_err());
        let l = PingLimit::parse("100,20%").unwrap();
        assert!(l.hit(Some(100.0), 0.0));
        assert!(l.hit(Some(1.0), 33.0));
        assert!(!l.hit(Some(1.0), 0.0));
    }

    #[test]
    fn statistics() {
        let (min, avg, max, dev) = stats(&[1.0, 2.0, 3.0]).unwrap();
        assert_eq!((min, avg, max), (1.0, 2.0, 3.0));
        assert!((dev - 0.816_496).abs() < 1e-5);
        assert_eq!(stats(&[]), None);
    }

    #[test]
    fn checksum_of_an_echo_request_verifies() {
        let p = echo_request(Family::V4, 0x1234, 7, 42);
        assert_eq!(checksum(&p), 0);
    }

    #[test]
    fn measurements_follow_connvitals_minus_one_when_nothing_came_back() {
        let none = measurements(None, 100.0, 0, 3);
        assert_eq!(none["rtt_min"], -1.0);
        assert_eq!(none["rtt_avg"], -1.0);
        assert_eq!(none["rtt_max"], -1.0);
        assert_eq!(none["rtt_std"], -1.0);
        assert_eq!(none["loss"], 100.0);
        let some = measurements(stats(&[1.0, 3.0]), 33.3333, 2, 3);
        assert_eq!(some["rtt_min"], 1.0);
        assert_eq!(some["rtt_avg"], 2.0);
        assert_eq!(some["rtt_max"], 3.0);
        assert_eq!(some["rtt_std"], 1.0);
        assert_eq!(some["loss"], 33.333);
        assert_eq!(some["received"], 2);
    }
}
