//! The options of the probes that reach another machine: each builder
//! reads a constructor's checked option map into the probe's plain spec
//! (`crate::run::probe::*`), or says which option is wrong and how to
//! write it.

use std::path::PathBuf;
use std::time::Duration;

use regex_lite::Regex;

use crate::config::options::{check_port, err, Opts, RhaiResult};
use crate::model::{Host, Status};
use crate::net::dns::{Name, RecordType};
use crate::run::probe::dns::DnsProbe;
use crate::run::probe::dns_zone::{parse_server, DnsZoneProbe};
use crate::run::probe::http::{Expect, HttpProbe};
use crate::run::probe::jabber::JabberProbe;
use crate::run::probe::mysql::MysqlProbe;
use crate::run::probe::openvpn::OpenVpnProbe;
use crate::run::probe::peer::PeerProbe;
use crate::run::probe::ping::{PingLimit, PingProbe, SocketKind};
use crate::run::probe::range::Thresholds;
use crate::run::probe::smtp::SmtpProbe;
use crate::run::probe::socket::{self, Family};
use crate::run::probe::tcp::TcpProbe;
use crate::run::probe::tls::{TlsCertProbe, TlsOptions};
use crate::run::probe::trace::TraceProbe;

/// The options of `tcp(h, port [, opts])`.
pub const TCP: &[&str] = &[
    "send",
    "expect",
    "tls",
    "sni",
    "ca_file",
    "verify",
    "warning",
    "critical",
    "ip_version",
];

pub fn tcp(h: &Host, port: i64, o: &Opts) -> RhaiResult<TcpProbe> {
    let port = check_port(o.probe(), port)?;
    let family = Family::from_version(o.ip_version("ip_version")?.unwrap_or(4));
    let tls_on = o.bool("tls")?.unwrap_or(false);
    let sni = o.string("sni", "\"www.example.org\"")?;
    let tls_opts = tls_options(o)?;
    if !tls_on {
        if let Some(k) = sni.as_ref().map(|_| "sni").or(tls_given(o)) {
            return Err(o.bad(
                k,
                "only means something with `tls: true`; add it or drop this option",
            ));
        }
    }
    Ok(TcpProbe {
        addr: family.addr_of(h),
        port,
        family,
        send: o.string("send", "\"PING\\r\\n\"")?,
        expect: o.string("expect", "\"+PONG\"")?,
        tls: tls_on.then(|| {
            (
                sni.unwrap_or_else(|| socket::server_name(h, family)),
                tls_opts,
            )
        }),
        time: Thresholds {
            warning: o.range("warning")?,
            critical: o.range("critical")?,
        },
    })
}

/// The TLS options of `tcp()`, `smtp4/6()`, `https4/6()` and `tls_cert()`.
const TLS_KEYS: &[&str] = &["ca_file", "verify"];

/// `ca_file` and `verify` of a probe's options.
fn tls_options(o: &Opts) -> RhaiResult<TlsOptions> {
    let ca_file = o.string("ca_file", "\"/etc/picomon/ca.pem\"")?;
    let no_verify = !o.bool("verify")?.unwrap_or(true);
    if no_verify && ca_file.is_some() {
        return Err(o.bad(
            "verify",
            "`verify: false` checks no certificate, so `ca_file` would mean nothing; drop one of them",
        ));
    }
    Ok(TlsOptions { ca_file, no_verify })
}

/// True when any of [`TLS_KEYS`] was given.
fn tls_given(o: &Opts) -> Option<&'static str> {
    TLS_KEYS.iter().copied().find(|k| o.has(k))
}

pub const TLS_CERT: &[&str] = &[
    "sni",
    "ca_file",
    "verify",
    "cert_warning",
    "cert_critical",
    "ip_version",
];

pub fn tls_cert(h: &Host, port: i64, o: &Opts) -> RhaiResult<TlsCertProbe> {
    let port = check_port(o.probe(), port)?;
    let family = Family::from_version(o.ip_version("ip_version")?.unwrap_or(4));
    let (warn_days, crit_days) = cert_days(o)?;
    Ok(TlsCertProbe {
        addr: family.addr_of(h),
        port,
        family,
        sni: o
            .string("sni", "\"www.example.org\"")?
            .unwrap_or_else(|| socket::server_name(h, family)),
        tls: tls_options(o)?,
        warn_days,
        crit_days,
    })
}

/// `cert_warning` (default 14) and `cert_critical` (default 7) days.
fn cert_days(o: &Opts) -> RhaiResult<(i64, i64)> {
    let w = o.int("cert_warning", 0, 36_500, "14")?.unwrap_or(14);
    let c = o.int("cert_critical", 0, 36_500, "7")?.unwrap_or(7);
    if c > w {
        return Err(o.bad(
            "cert_critical",
            format!(
                "{c} days is more than cert_warning {w} days (critical must be the shorter time)"
            ),
        ));
    }
    Ok((w, c))
}

/// The options of `http4/6(h [, opts])` and `https4/6(h [, opts])`.
pub const HTTP: &[&str] = &[
    "url",
    "vhost",
    "port",
    "status",
    "expect",
    "expect_regex",
    "max_time",
    "warning",
    "critical",
    "cert_warning",
    "cert_critical",
    "ca_file",
    "verify",
];

pub fn http(h: &Host, family: Family, secure: bool, o: &Opts) -> RhaiResult<HttpProbe> {
    if !secure {
        for k in ["cert_warning", "cert_critical", "ca_file", "verify"] {
            if o.has(k) {
                return Err(o.bad(
                    k,
                    format!(
                        "only https checks have certificates; use https{} or drop {k}",
                        family.digit()
                    ),
                ));
            }
        }
    }
    let path = o
        .string("url", "\"/status\"")?
        .unwrap_or_else(|| "/".into());
    if !path.starts_with('/') {
        return Err(o.bad(
            "url",
            format!("{path:?} must be a path starting with `/` (the host is the check's host, the name is `vhost`)"),
        ));
    }
    let mut expect = match o.string("expect", "\"Welcome\"")? {
        Some(e) if e.len() >= 2 && e.starts_with('/') && e.ends_with('/') => {
            Some(Expect::Regex(compile(o, "expect", &e[1..e.len() - 1])?))
        }
        Some(e) => Some(Expect::Text(e)),
        None => None,
    };
    if let Some(re) = o.string("expect_regex", "\"Welcome|Hello\"")? {
        if expect.is_some() {
            return Err(o.bad(
                "expect_regex",
                "give either `expect` or `expect_regex`, not both",
            ));
        }
        expect = Some(Expect::Regex(compile(o, "expect_regex", &re)?));
    }
    let (cert_warning, cert_critical) = cert_days(o)?;
    Ok(HttpProbe {
        addr: family.addr_of(h),
        family,
        secure,
        port: o.port("port")?.unwrap_or(if secure { 443 } else { 80 }),
        vhost: o
            .string("vhost", "\"www.example.org\"")?
            .unwrap_or_else(|| socket::server_name(h, family)),
        path,
        status: o.int("status", 100, 599, "200")?.map(|s| s as u16),
        expect,
        max_time: o.float("max_time", 0.0, 86_400.0, "2.5")?,
        time: Thresholds {
            warning: o.range("warning")?,
            critical: o.range("critical")?,
        },
        tls: tls_options(o)?,
        cert_warning,
        cert_critical,
    })
}

fn compile(o: &Opts, key: &str, re: &str) -> RhaiResult<Regex> {
    Regex::new(re).map_err(|e| o.bad(key, format!("bad regular expression: {e}")))
}

/// The options of `smtp4/6(h [, opts])`.
pub const SMTP: &[&str] = &[
    "port",
    "helo",
    "starttls",
    "sni",
    "ca_file",
    "verify",
    "from_addr",
    "command",
    "response",
    "warning",
    "critical",
];

pub fn smtp(h: &Host, family: Family, o: &Opts) -> RhaiResult<SmtpProbe> {
    let starttls = o.bool("starttls")?.unwrap_or(false);
    let sni = o.string("sni", "\"mail.example.org\"")?;
    let tls_opts = tls_options(o)?;
    if !starttls {
        if let Some(k) = sni.as_ref().map(|_| "sni").or(tls_given(o)) {
            return Err(o.bad(
                k,
                "only means something with `starttls: true`; add it or drop this option",
            ));
        }
    }
    let from_addr = o.string("from_addr", "\"picomon@example.org\"")?;
    if let Some(f) = &from_addr {
        if f.contains(['\r', '\n', '<', '>']) || f.contains(char::is_whitespace) {
            return Err(o.bad(
                "from_addr",
                format!("{f:?} is not a bare mail address (e.g. picomon@example.org)"),
            ));
        }
    }
    let command = o.string("command", "\"VRFY postmaster\"")?;
    if command.as_ref().is_some_and(|c| c.contains(['\r', '\n'])) {
        return Err(o.bad("command", "must be one line (picomon adds the line end)"));
    }
    let response = match o.string("response", "\"^250\"")? {
        Some(r) => Some(
            Regex::new(&r)
                .map_err(|e| o.bad("response", format!("bad regular expression: {e}")))?,
        ),
        None => None,
    };
    if response.is_some() && command.is_none() {
        return Err(o.bad(
            "response",
            "is the expected reply to `command`; give a command too",
        ));
    }
    let helo = match o.string("helo", "\"monitor.example.org\"")? {
        Some(h) => h,
        None => crate::host::this_host(),
    };
    Ok(SmtpProbe {
        addr: family.addr_of(h),
        family,
        port: o.port("port")?.unwrap_or(25),
        helo,
        starttls: starttls.then(|| {
            (
                sni.unwrap_or_else(|| socket::server_name(h, family)),
                tls_opts,
            )
        }),
        from_addr,
        command,
        response,
        time: Thresholds {
            warning: o.range("warning")?,
            critical: o.range("critical")?,
        },
    })
}

/// The options of `jabber4/6(h [, opts])`.
pub const JABBER: &[&str] = &["port", "domain"];

pub fn jabber(h: &Host, family: Family, o: &Opts) -> RhaiResult<JabberProbe> {
    Ok(JabberProbe {
        addr: family.addr_of(h),
        family,
        port: o.port("port")?.unwrap_or(5222),
        domain: o
            .string("domain", "\"example.org\"")?
            .unwrap_or_else(|| socket::server_name(h, family)),
    })
}

/// The options of `openvpn4/6(h [, opts])`.
pub const OPENVPN: &[&str] = &["port"];

pub fn openvpn(h: &Host, family: Family, o: &Opts) -> RhaiResult<OpenVpnProbe> {
    Ok(OpenVpnProbe {
        addr: family.addr_of(h),
        family,
        port: o.port("port")?.unwrap_or(1194),
    })
}

/// Parses a domain name as the user wrote it.
fn parse_name(probe: &str, key: &str, s: &str) -> RhaiResult<Name> {
    Name::parse(s).map_err(|e| err(format!("{probe}: {key} {s:?} is not a domain name: {e}")))
}

/// The options of `dns4/6(h, #{ name, ... })`.
pub const DNS: &[&str] = &[
    "name", "type", "expect", "port", "recurse", "warning", "critical",
];

pub fn dns(h: &Host, family: Family, o: &Opts) -> RhaiResult<DnsProbe> {
    let name = o.string("name", "\"www.example.org\"")?.ok_or_else(|| {
        err(format!(
            "{}: option `name` is required: the name to look up, e.g. `#{{ name: \"www.example.org\" }}`",
            o.probe()
        ))
    })?;
    let rtype = match o.string("type", "\"AAAA\"")? {
        None => RecordType::A,
        Some(t) => RecordType::parse(&t).ok_or_else(|| {
            o.bad(
                "type",
                format!("{t:?} is not a DNS record type (A, AAAA, MX, NS, SOA, TXT, ...)"),
            )
        })?,
    };
    Ok(DnsProbe {
        addr: family.addr_of(h),
        family,
        port: o.port("port")?.unwrap_or(53),
        name: parse_name(o.probe(), "name", &name)?,
        rtype,
        expect: o.string("expect", "\"192.0.2.10\"")?,
        recurse: o.bool("recurse")?.unwrap_or(true),
        time: Thresholds {
            warning: o.range("warning")?,
            critical: o.range("critical")?,
        },
    })
}

/// The options of `dns_zone(zone [, opts])`.
pub const DNS_ZONE: &[&str] = &["resolver", "port", "ip_version"];

pub fn dns_zone(zone: &str, o: &Opts) -> RhaiResult<DnsZoneProbe> {
    let port = o.port("port")?.unwrap_or(53);
    let resolver = match o.string("resolver", "\"127.0.0.1\"")? {
        None => None,
        Some(r) => Some(parse_server(&r, port).ok_or_else(|| {
            o.bad("resolver", format!("{r:?} is not an IP address or address:port (e.g. \"9.9.9.9\" or \"[::1]:5353\")"))
        })?),
    };
    Ok(DnsZoneProbe {
        zone: parse_name("dns_zone", "zone", zone)?,
        resolver,
        port,
        ipv6: o.ip_version("ip_version")? == Some(6),
    })
}

/// The options of `mysql4/6(h [, opts])`.
pub const MYSQL: &[&str] = &["port", "warning", "critical"];

pub fn mysql(h: &Host, family: Family, o: &Opts) -> RhaiResult<MysqlProbe> {
    Ok(MysqlProbe {
        addr: family.addr_of(h),
        family,
        port: o.port("port")?.unwrap_or(3306),
        time: Thresholds {
            warning: o.range("warning")?,
            critical: o.range("critical")?,
        },
    })
}

/// The options of `ping4/6(h [, opts])`.
pub const PING: &[&str] = &["count", "interval", "warning", "critical", "socket"];

pub fn ping(h: &Host, family: Family, o: &Opts) -> RhaiResult<PingProbe> {
    let limit = |key: &str| -> RhaiResult<Option<PingLimit>> {
        match o.string(key, "\"100,20%\"")? {
            None => Ok(None),
            Some(s) => PingLimit::parse(&s).map(Some).map_err(|e| o.bad(key, e)),
        }
    };
    let socket = o
        .choice(
            "socket",
            "\"dgram\"",
            &[
                ("auto", SocketKind::Auto),
                ("dgram", SocketKind::Dgram),
                ("raw", SocketKind::Raw),
            ],
        )?
        .unwrap_or(SocketKind::Auto);
    Ok(PingProbe {
        addr: family.addr_of(h),
        family,
        count: o.int("count", 1, 100, "3")?.unwrap_or(3) as u32,
        interval: Duration::from_secs_f64(o.float("interval", 0.01, 60.0, "0.5")?.unwrap_or(0.5)),
        warning: limit("warning")?,
        critical: limit("critical")?,
        socket,
    })
}

/// The options of `trace4/6(h [, opts])`.
pub const TRACE: &[&str] = &["max_hops", "wait", "on_route_change"];

pub fn trace(h: &Host, family: Family, o: &Opts) -> RhaiResult<TraceProbe> {
    let on_change = o
        .choice(
            "on_route_change",
            "\"warning\"",
            &[
                ("ignore", None),
                ("warning", Some(Status::Warning)),
                ("critical", Some(Status::Critical)),
            ],
        )?
        .flatten();
    Ok(TraceProbe {
        addr: family.addr_of(h),
        family,
        max_hops: o.int("max_hops", 1, 64, "30")?.unwrap_or(30) as u8,
        wait: Duration::from_secs_f64(o.float("wait", 0.05, 30.0, "1")?.unwrap_or(1.0)),
        on_change,
    })
}

/// The options of `peer(url [, opts])`.
pub const PEER: &[&str] = &["ca_file", "timeout"];

pub fn peer(url: &str, o: &Opts) -> RhaiResult<PeerProbe> {
    let url = url.trim_end_matches('/');
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
        return Err(err(format!(
            "peer: {url:?} is not the URL of a picomon listener; write e.g. \
             peer(\"http://mon1:9464\") (its config.listen)"
        )));
    }
    let ca_file = o.string("ca_file", "\"/etc/picomon/ca.pem\"")?;
    if let Some(ca) = &ca_file {
        // Read now, so a wrong file is an error at the line of peer().
        crate::net::http::tls_config(Some(ca.as_ref()), None).map_err(err)?;
    }
    // Seconds, or a duration as text ("5s").
    let timeout = match o.raw("timeout").and_then(|v| v.clone().into_string().ok()) {
        Some(text) => Some(Duration::from_secs(
            crate::duration::parse("peer(): option `timeout`", &text).map_err(err)?,
        )),
        None => o
            .float("timeout", 0.001, 3600.0, "5")?
            .map(Duration::from_secs_f64),
    };
    Ok(PeerProbe {
        url: url.to_string(),
        ca_file: ca_file.map(PathBuf::from),
        timeout,
    })
}
