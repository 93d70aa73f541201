//! `trace4/trace6(h, opts)`: a UDP traceroute that needs no privilege. Each
//! hop is one UDP datagram with a growing TTL on a socket with IP_RECVERR
//! (Linux): the ICMP "time exceeded" or "port unreachable" it provokes comes
//! back on the socket's error queue with the address of the router that
//! sent it, so no raw socket is needed.
//!
//! Hops go to the long output, the hop count to perfdata. With
//! `on_route_change: "warning"` the probe remembers the last route (kept
//! across reloads and, in the state file, restarts) and a different one,
//! ignoring `*` hops, is a WARNING.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::range::fmt_num;
use super::socket::{self, Deadline, Family};
use super::{perf, Report};
use crate::model::{Outcome, Probe, Status};

/// The classic traceroute base port.
const BASE_PORT: u16 = 33434;
const SO_EE_ORIGIN_ICMP: u8 = 2;
const SO_EE_ORIGIN_ICMP6: u8 = 3;

/// One hop: who answered and how long it took, or `None` for `*`.
pub type Hop = Option<(IpAddr, Duration)>;

#[derive(Debug)]
pub struct TraceProbe {
    pub addr: String,
    pub family: Family,
    pub max_hops: u8,
    /// How long to wait for each hop.
    pub wait: Duration,
    /// Status of a changed route (`None`: routes may change).
    pub on_change: Option<Status>,
}

/// What an error-queue message told us.
#[derive(Debug, PartialEq)]
enum Answer {
    /// Time exceeded from a router on the way.
    Hop(IpAddr),
    /// Port unreachable from the target: we are there.
    Reached(IpAddr),
    /// Another unreachable (host, net, prohibited): the end of the road.
    Unreachable(IpAddr, u8, u8),
}

fn setsockopt(fd: i32, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: a plain int option on a socket we own.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const i32).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Waits up to `wait` for an error on `sock` and reads it.
fn wait_error(sock: &UdpSocket, family: Family, wait: Duration) -> io::Result<Option<Answer>> {
    let fd = sock.as_raw_fd();
    let end = Instant::now() + wait;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        let mut pfd = libc::pollfd {
            fd,
            events: 0, // POLLERR is always reported
            revents: 0,
        };
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if rc == 0 {
            return Ok(None);
        }
        match read_error_queue(fd, family)? {
            Some(a) => return Ok(Some(a)),
            None => continue, // a local error: keep waiting
        }
    }
}

/// One message from the error queue, if it is an ICMP error.
fn read_error_queue(fd: i32, family: Family) -> io::Result<Option<Answer>> {
    let mut data = [0u8; 512];
    let mut control = [0u64; 64];
    // SAFETY: zeroed C structs filled in below; buffers outlive the call.
    let mut name: libc::sockaddr_storage = unsafe { zeroed() };
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&mut name as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; 64]>();
    // SAFETY: msg points at live buffers of the sizes given.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::WouldBlock {
            return Ok(None);
        }
        return Err(e);
    }
    let (level, kind) = match family {
        Family::V4 => (libc::IPPROTO_IP, libc::IP_RECVERR),
        Family::V6 => (libc::IPPROTO_IPV6, libc::IPV6_RECVERR),
    };
    // SAFETY: walking the control messages the kernel wrote into `control`.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == level && (*cmsg).cmsg_type == kind {
                let p = libc::CMSG_DATA(cmsg);
                let ee: libc::sock_extended_err = std::ptr::read_unaligned(p.cast());
                let offender = p.add(size_of::<libc::sock_extended_err>());
                let from = sockaddr_ip(offender);
                return Ok(classify(&ee, from));
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok(None)
}

/// The address in a sockaddr_in / sockaddr_in6 at `p`.
///
/// # Safety
/// `p` must point at a sockaddr the kernel wrote (SO_EE_OFFENDER).
unsafe fn sockaddr_ip(p: *const u8) -> Option<IpAddr> {
    let fam: libc::sa_family_t = std::ptr::read_unaligned(p.cast());
    match i32::from(fam) {
        libc::AF_INET => {
            let sa: libc::sockaddr_in = std::ptr::read_unaligned(p.cast());
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr))))
        }
        libc::AF_INET6 => {
            let sa: libc::sockaddr_in6 = std::ptr::read_unaligned(p.cast());
            Some(IpAddr::V6(Ipv6Addr::from(sa.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

fn classify(ee: &libc::sock_extended_err, from: Option<IpAddr>) -> Option<Answer> {
    let from = from?;
    match (ee.ee_origin, ee.ee_type, ee.ee_code) {
        (SO_EE_ORIGIN_ICMP, 11, _) | (SO_EE_ORIGIN_ICMP6, 3, _) => Some(Answer::Hop(from)),
        (SO_EE_ORIGIN_ICMP, 3, 3) | (SO_EE_ORIGIN_ICMP6, 1, 4) => Some(Answer::Reached(from)),
        (SO_EE_ORIGIN_ICMP, 3, c) | (SO_EE_ORIGIN_ICMP6, 1, c) => {
            Some(Answer::Unreachable(from, ee.ee_type, c))
        }
        _ => None,
    }
}

/// Sends one datagram with `ttl` and waits for what comes back.
fn probe_hop(
    target: IpAddr,
    family: Family,
    ttl: u8,
    wait: Duration,
) -> io::Result<(Option<Answer>, Duration)> {
    let local = match family {
        Family::V4 => "0.0.0.0:0",
        Family::V6 => "[::]:0",
    };
    let sock = UdpSocket::bind(local)?;
    let fd = sock.as_raw_fd();
    match family {
        Family::V4 => {
            sock.set_ttl(u32::from(ttl))?;
            setsockopt(fd, libc::IPPROTO_IP, libc::IP_RECVERR, 1)?;
        }
        Family::V6 => {
            setsockopt(
                fd,
                libc::IPPROTO_IPV6,
                libc::IPV6_UNICAST_HOPS,
                i32::from(ttl),
            )?;
            setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVERR, 1)?;
        }
    }
    let to = SocketAddr::new(target, BASE_PORT + u16::from(ttl));
    let t0 = Instant::now();
    sock.send_to(b"picomon traceroute", to)?;
    let a = wait_error(&sock, family, wait)?;
    Ok((a, t0.elapsed()))
}

impl TraceProbe {
    /// The hops, whether the target was reached, and why not if it was not.
    fn trace(
        &self,
        target: IpAddr,
        deadline: &Deadline,
    ) -> Result<(Vec<Hop>, Option<String>), String> {
        let mut hops = Vec::new();
        for ttl in 1..=self.max_hops {
            let Ok(left) = deadline.left() else {
                return Ok((hops, Some(format!("{} at hop {ttl}", deadline.timed_out()))));
            };
            let (answer, rtt) = probe_hop(target, self.family, ttl, self.wait.min(left))
                .map_err(|e| format!("cannot send to {target}: {e}"))?;
            match answer {
                None => hops.push(None),
                Some(Answer::Hop(ip)) => hops.push(Some((ip, rtt))),
                Some(Answer::Reached(ip)) => {
                    hops.push(Some((ip, rtt)));
                    return Ok((hops, None));
                }
                Some(Answer::Unreachable(ip, t, c)) => {
                    hops.push(Some((ip, rtt)));
                    return Ok((
                        hops,
                        Some(format!("{ip} says unreachable (ICMP type {t} code {c})")),
                    ));
                }
            }
        }
        Ok((
            hops,
            Some(format!("not reached within {} hops", self.max_hops)),
        ))
    }
}

fn route_text(route: &[IpAddr]) -> String {
    route
        .iter()
        .map(|ip| ip.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Probe for TraceProbe {
    fn run(&self, timeout: Duration) -> Outcome {
        self.run_remembering(timeout, None)
    }

    /// `memory` is the last route (addresses separated by spaces, `-` for a
    /// route of no answered hop); the outcome carries the route of this run.
    fn run_remembering(&self, timeout: Duration, memory: Option<&str>) -> Outcome {
        let deadline = Deadline::after(timeout);
        let r = Report::new("TRACE");
        let target = match socket::resolve(&self.addr, 0, self.family, &deadline) {
            Ok(a) => a[0].ip(),
            Err(e) => return r.done(Status::Critical, e, vec![], &deadline),
        };
        let (hops, problem) = match self.trace(target, &deadline) {
            Ok(x) => x,
            Err(e) => return r.done(Status::Unknown, e, vec![], &deadline),
        };
        let long = hops
            .iter()
            .enumerate()
            .map(|(i, h)| match h {
                Some((ip, rtt)) => format!(
                    "{:2}  {ip}  {} ms",
                    i + 1,
                    fmt_num(rtt.as_secs_f64() * 1000.0)
                ),
                None => format!("{:2}  *", i + 1),
            })
            .collect::<Vec<_>>()
            .join("\n");
        let route: Vec<IpAddr> = hops.iter().flatten().map(|h| h.0).collect();
        let mut status = Status::Ok;
        let mut msg = match &problem {
            None => format!(
                "{target} reached in {} {}",
                hops.len(),
                if hops.len() == 1 { "hop" } else { "hops" }
            ),
            Some(p) => {
                status = Status::Critical;
                format!("{target} {p}")
            }
        };
        if let (Some(st), Some(prev)) = (self.on_change, memory.and_then(parse_route)) {
            if prev != route {
                status = Status::worst(status, st);
                msg.push_str(&format!(
                    " - route changed: was {}, now {}",
                    route_text(&prev),
                    route_text(&route)
                ));
            }
        }
        let remembered = if route.is_empty() {
            "-".to_string()
        } else {
            route_text(&route)
        };
        let mut out = r.done(
            status,
            msg,
            vec![perf("hops", hops.len() as f64, "", "", "")],
            &deadline,
        );
        out.long_output = long;
        out.memory = Some(remembered);
        out.data = Some(Box::new(hops_json(&hops, problem.is_none())));
        out
    }
}

/// The hops for `json_lines`: `{"hop", "address", "rtt"}` (ms) per hop,
/// `address` and `rtt` `null` for a hop that did not answer (`*`).
fn hops_json(hops: &[Hop], reached: bool) -> serde_json::Value {
    let list: Vec<serde_json::Value> = hops
        .iter()
        .enumerate()
        .map(|(i, h)| match h {
            Some((ip, rtt)) => serde_json::json!({
                "hop": i + 1,
                "address": ip.to_string(),
                "rtt": (rtt.as_secs_f64() * 1e6).round() / 1e3,
            }),
            None => serde_json::json!({ "hop": i + 1, "address": null, "rtt": null }),
        })
        .collect();
    serde_json::json!({ "reached": reached, "hops": list })
}

/// The route a run remembered; text it cannot read counts as no route.
fn parse_route(memory: &str) -> Option<Vec<IpAddr>> {
    match memory.trim() {
        "-" => Some(Vec::new()),
        text => text.split_whitespace().map(|a| a.parse().ok()).collect(),
    }
}
