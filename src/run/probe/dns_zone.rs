//! `dns_zone(zone, opts)`: every name server of a zone answers its SOA with
//! one serial, as `check_dns_soa` did for picomon's DNSZone. The NS set and
//! the servers' addresses come from a resolver (`/etc/resolv.conf`'s first
//! `nameserver`, or `resolver`); each server is then asked directly, without
//! recursion, over IPv4 (and IPv6 as well with `ip_version: 6`). The servers
//! are asked in parallel, so one dead server does not eat the others' time.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::dns::query;
use super::range::fmt_num;
use super::socket::Deadline;
use super::{perf, Report};
use crate::model::{Outcome, Probe, Status};
use crate::net::dns::{Message, Name, RData, Rcode, RecordType};

#[derive(Debug)]
pub struct DnsZoneProbe {
    pub zone: Name,
    /// `None`: the first nameserver of /etc/resolv.conf at run time.
    pub resolver: Option<SocketAddr>,
    /// Port of the zone's servers (53; other ports for tests).
    pub port: u16,
    /// Also ask over IPv6.
    pub ipv6: bool,
}

impl DnsZoneProbe {
    fn resolver(&self) -> Result<SocketAddr, String> {
        if let Some(r) = self.resolver {
            return Ok(r);
        }
        let text = std::fs::read_to_string("/etc/resolv.conf").map_err(|e| {
            format!("cannot read /etc/resolv.conf: {e} (give the option `resolver`)")
        })?;
        text.lines()
            .filter_map(|l| l.trim().strip_prefix("nameserver"))
            .find_map(|s| parse_server(s.trim(), 53))
            .ok_or_else(|| "no nameserver in /etc/resolv.conf (give the option `resolver`)".into())
    }

    /// The NS names with the addresses the NS answer's glue gave.
    fn servers(
        &self,
        resolver: SocketAddr,
        deadline: &Deadline,
    ) -> Result<Vec<(Name, Vec<IpAddr>)>, String> {
        let msg = query(resolver, &self.zone, RecordType::NS, true, deadline)
            .map_err(|e| format!("NS of {}: {e}", self.zone))?;
        if msg.rcode != Rcode::NO_ERROR {
            return Err(format!("NS of {} at {resolver}: {}", self.zone, msg.rcode));
        }
        let mut servers: Vec<(Name, Vec<IpAddr>)> = msg
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::Ns(ns) => Some((ns.clone(), Vec::new())),
                _ => None,
            })
            .collect();
        if servers.is_empty() {
            return Err(format!(
                "{} has no NS records (asked {resolver})",
                self.zone
            ));
        }
        crate::sort::by(&mut servers, |a, b| a.0.cmp(&b.0));
        servers.dedup_by(|a, b| a.0 == b.0);
        for (name, addrs) in &mut servers {
            addrs.extend(glue(&msg, name));
        }
        Ok(servers)
    }
}

/// `1.2.3.4`, `::1`, `1.2.3.4:53`, `[::1]:53`.
pub fn parse_server(s: &str, port: u16) -> Option<SocketAddr> {
    s.parse::<SocketAddr>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, port)))
}

fn glue(msg: &Message, name: &Name) -> Vec<IpAddr> {
    msg.additionals
        .iter()
        .chain(&msg.answers)
        .filter(|r| &r.name == name)
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(*a)),
            RData::Aaaa(a) => Some(IpAddr::V6(*a)),
            _ => None,
        })
        .collect()
}

/// Addresses of `name` of one type, asked at the resolver.
fn lookup(
    resolver: SocketAddr,
    name: &Name,
    rtype: RecordType,
    deadline: &Deadline,
) -> Vec<IpAddr> {
    query(resolver, name, rtype, true, deadline)
        .map(|m| glue(&m, name))
        .unwrap_or_default()
}

/// One server's answer: its SOA serial, or why there is none.
fn ask_soa(zone: &Name, server: SocketAddr, deadline: &Deadline) -> Result<u32, String> {
    let msg = query(server, zone, RecordType::SOA, false, deadline)?;
    if msg.rcode != Rcode::NO_ERROR {
        return Err(format!("answered {}", msg.rcode));
    }
    if !msg.authoritative {
        return Err("answered, but not authoritatively (lame delegation)".into());
    }
    msg.answers
        .iter()
        .find_map(|r| match &r.data {
            RData::Soa(soa) => Some(soa.serial),
            _ => None,
        })
        .ok_or_else(|| "answered without an SOA record".into())
}

impl Probe for DnsZoneProbe {
    fn run(&self, timeout: Duration) -> Outcome {
        let deadline = Deadline::after(timeout);
        let r = Report::new("DNS ZONE");
        let fail = |msg: String| r.done(Status::Critical, msg, vec![], &deadline);
        let resolver = match self.resolver() {
            Ok(x) => x,
            Err(e) => return r.done(Status::Unknown, e, vec![], &deadline),
        };
        let mut servers = match self.servers(resolver, &deadline) {
            Ok(s) => s,
            Err(e) => return fail(e),
        };
        let mut families = vec![(RecordType::A, "IPv4")];
        if self.ipv6 {
            families.push((RecordType::AAAA, "IPv6"));
        }
        // Addresses the glue did not give, from the resolver.
        let mut problems = Vec::new();
        let mut targets: Vec<(String, SocketAddr)> = Vec::new();
        for (name, addrs) in &mut servers {
            let mut any = false;
            for (rtype, fam) in &families {
                let v6 = *rtype == RecordType::AAAA;
                let mut mine: Vec<IpAddr> = addrs
                    .iter()
                    .copied()
                    .filter(|a| a.is_ipv6() == v6)
                    .collect();
                if mine.is_empty() {
                    mine = lookup(resolver, name, *rtype, &deadline);
                }
                if mine.is_empty() && families.len() == 1 {
                    problems.push(format!("{name} has no {fam} address"));
                }
                any |= !mine.is_empty();
                for ip in mine {
                    targets.push((format!("{name} ({ip})"), SocketAddr::new(ip, self.port)));
                }
            }
            if !any && families.len() > 1 {
                problems.push(format!("{name} has no address"));
            }
        }
        let zone = &self.zone;
        let answers: Vec<(String, Result<u32, String>)> = std::thread::scope(|s| {
            let handles: Vec<_> = targets
                .iter()
                .map(|(label, addr)| {
                    let label = label.clone();
                    let addr = *addr;
                    s.spawn(move || (label, ask_soa(zone, addr, &deadline)))
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        let mut serials: Vec<(String, u32)> = Vec::new();
        for (label, a) in answers {
            match a {
                Ok(serial) => serials.push((label, serial)),
                Err(e) => problems.push(format!("{label} {e}")),
            }
        }
        let long = serials
            .iter()
            .map(|(l, s)| format!("{l}: serial {s}"))
            .collect::<Vec<_>>()
            .join("\n");
        let first = serials.first().map(|s| s.1);
        let differ = serials.iter().any(|s| Some(s.1) != first);
        if differ {
            let list = serials
                .iter()
                .map(|(l, s)| format!("{l} {s}"))
                .collect::<Vec<_>>()
                .join(", ");
            problems.insert(0, format!("serials differ: {list}"));
        }
        let secs = deadline.elapsed().as_secs_f64();
        let mut out = if problems.is_empty() {
            r.done(
                Status::Ok,
                format!(
                    "{zone} serial {} on {} servers in {} s",
                    first.unwrap_or(0),
                    serials.len(),
                    fmt_num(secs)
                ),
                vec![perf("servers", serials.len() as f64, "", "", "")],
                &deadline,
            )
        } else {
            r.done(
                Status::Critical,
                format!("{zone}: {}", problems.join("; ")),
                vec![perf("servers", serials.len() as f64, "", "", "")],
                &deadline,
            )
        };
        out.long_output = long;
        out
    }
}
