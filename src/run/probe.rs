//! Built-in native probes: a fresh machine monitors its
//! neighbours without a plugin package, and a probe costs a socket instead of
//! a fork.
//!
//! One file per probe; each is a struct implementing
//! [`crate::model::Probe`] and returns what a plugin would (status, summary
//! `LABEL STATUS - text`, perfdata). Shared pieces: [`opts`] checks option
//! maps at config time, [`range`] is the Nagios threshold syntax, [`net`]
//! bounds every socket step by the run's deadline, [`tls`] verifies
//! certificates and counts their days.

pub mod disk;
pub mod dns;
pub mod dns_zone;
pub mod http;
pub mod jabber;
pub mod load;
pub mod mysql;
pub mod openvpn;
pub mod opts;
pub mod peer;
pub mod ping;
pub mod pressure;
pub mod range;
pub mod script;
pub mod smtp;
pub mod socket;
pub mod tcp;
pub mod tls;
pub mod trace;

use std::sync::Arc;
use std::time::Duration;

use rhai::{Engine, FnPtr, Map, NativeCallContext};

use crate::model::{CheckDef, CheckKind, Host, Outcome, Perf, Probe, Status};
use opts::{Opts, RhaiResult};
use range::{fmt_num, Thresholds};
use socket::{Deadline, Family};

/// Builds a probe's outcome in the plugin style: `LABEL STATUS - message`.
#[derive(Clone, Copy, Debug)]
pub struct Report {
    label: &'static str,
}

impl Report {
    pub fn new(label: &'static str) -> Report {
        Report { label }
    }

    pub fn done(
        &self,
        status: Status,
        msg: impl Into<String>,
        perfdata: Vec<Perf>,
        deadline: &Deadline,
    ) -> Outcome {
        Outcome {
            status,
            summary: format!("{} {} - {}", self.label, status, msg.into()),
            long_output: String::new(),
            perfdata,
            duration: deadline.elapsed(),
            memory: None,
            data: None,
        }
    }

    /// A run that measures one response time. `attempt` gets the run's
    /// deadline; on success `message` words its result with the seconds it
    /// took, `time` rates those seconds (the default never alerts) and they
    /// become the `time` perfdata item. A failed attempt is CRITICAL with its
    /// error.
    pub fn timed<T>(
        &self,
        timeout: Duration,
        time: &Thresholds,
        attempt: impl FnOnce(&Deadline) -> Result<T, String>,
        message: impl FnOnce(T, &str) -> String,
    ) -> Outcome {
        let deadline = Deadline::after(timeout);
        match attempt(&deadline) {
            Ok(v) => {
                let secs = deadline.elapsed().as_secs_f64();
                self.done(
                    time.status(secs),
                    message(v, &fmt_num(secs)),
                    vec![time.perf("time", secs, "s")],
                    &deadline,
                )
            }
            Err(e) => self.done(Status::Critical, e, vec![], &deadline),
        }
    }
}

/// A perfdata item without min and max.
pub fn perf(label: &str, value: f64, uom: &str, warn: &str, crit: &str) -> Perf {
    Perf::Item {
        label: label.to_string(),
        value: (value * 1e6).round() / 1e6,
        uom: uom.to_string(),
        warn: warn.to_string(),
        crit: crit.to_string(),
        min: String::new(),
        max: String::new(),
    }
}

/// Renders an option map for an identity: `k=v,k=v` in key order.
fn opts_text(map: &Map) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A check definition around a probe.
fn def(label: &str, dest: &str, target: &str, map: &Map, probe: impl Probe + 'static) -> CheckDef {
    let mut identity = format!("{label}:{dest}");
    if !target.is_empty() {
        identity.push(':');
        identity.push_str(target);
    }
    if !map.is_empty() {
        identity.push(':');
        identity.push_str(&opts_text(map));
    }
    CheckDef {
        kind: CheckKind::Probe(Arc::new(probe)),
        identity,
        label: label.to_string(),
        dest: dest.to_string(),
    }
}

/// A check of this machine: its target is the machine's name, as for
/// plugins, so mails and `status` name every local check the same way.
/// Its identity keeps `localhost`, as before, so a state file from an
/// earlier version still finds it.
fn here(mut d: CheckDef) -> CheckDef {
    d.dest = crate::host::this_host();
    d
}

/// Registers the probe constructors (`ping4(h)`, `tcp(h, port)`, ...) with
/// the config engine. Each returns a [`crate::model::CheckDef`]; a bad
/// option is an error naming it and the fix.
pub fn register(engine: &mut Engine) {
    // tcp(h, port [, opts])
    fn tcp(h: Host, port: i64, map: Map) -> RhaiResult<CheckDef> {
        let o = Opts::new("tcp", map.clone(), tcp::TcpProbe::OPTIONS)?;
        let p = tcp::TcpProbe::new(&h, port, &o)?;
        // The port in the name tells two TCP checks of one host apart.
        let mut d = def("tcp", &h.name, &port.to_string(), &map, p);
        d.label = format!("tcp {port}");
        Ok(d)
    }
    engine.register_fn("tcp", |h: Host, port: i64| tcp(h, port, Map::new()));
    engine.register_fn("tcp", tcp);

    // tls_cert(h, port [, opts])
    fn tls_cert(h: Host, port: i64, map: Map) -> RhaiResult<CheckDef> {
        let o = Opts::new("tls_cert", map.clone(), tls::TlsCertProbe::OPTIONS)?;
        let p = tls::TlsCertProbe::new(&h, port, &o)?;
        let mut d = def("tls_cert", &h.name, &port.to_string(), &map, p);
        d.label = format!("tls_cert {port}");
        Ok(d)
    }
    engine.register_fn("tls_cert", |h: Host, port: i64| {
        tls_cert(h, port, Map::new())
    });
    engine.register_fn("tls_cert", tls_cert);

    // http4/http6/https4/https6(h [, opts])
    for (name, family, secure) in [
        ("http4", Family::V4, false),
        ("http6", Family::V6, false),
        ("https4", Family::V4, true),
        ("https6", Family::V6, true),
    ] {
        let make = move |h: Host, map: Map| -> RhaiResult<CheckDef> {
            let o = Opts::new(name, map.clone(), http::HttpProbe::OPTIONS)?;
            let p = http::HttpProbe::new(name, &h, family, secure, &o)?;
            let mut rest = map.clone();
            rest.remove("vhost");
            rest.remove("url");
            let target = format!("{}{}", p.vhost, p.path);
            let label = http::HttpProbe::label(name, &h, &p);
            let mut d = def(name, &h.name, &target, &rest, p);
            d.label = label;
            Ok(d)
        };
        engine.register_fn(name, move |h: Host| make(h, Map::new()));
        engine.register_fn(name, make);
    }

    // smtp4/6(h [, opts]): the command in the default name, so a relay
    // test and a plain check of one host read apart.
    for (name, family) in [("smtp4", Family::V4), ("smtp6", Family::V6)] {
        let make = move |h: Host, map: Map| -> RhaiResult<CheckDef> {
            let o = Opts::new(name, map.clone(), smtp::SmtpProbe::OPTIONS)?;
            let p = smtp::SmtpProbe::new(&h, family, &o)?;
            let label = match &p.command {
                Some(cmd) => format!("{name} {cmd}"),
                None => name.to_string(),
            };
            let mut d = def(name, &h.name, "", &map, p);
            d.label = label;
            Ok(d)
        };
        engine.register_fn(name, move |h: Host| make(h, Map::new()));
        engine.register_fn(name, make);
    }

    // jabber4/6, openvpn4/6, dns4/6, ping4/6, trace4/6 (h [, opts])
    per_family(
        engine,
        ["jabber4", "jabber6"],
        jabber::JabberProbe::OPTIONS,
        jabber::JabberProbe::new,
    );
    per_family(
        engine,
        ["openvpn4", "openvpn6"],
        openvpn::OpenVpnProbe::OPTIONS,
        openvpn::OpenVpnProbe::new,
    );
    per_family(
        engine,
        ["dns4", "dns6"],
        dns::DnsProbe::OPTIONS,
        dns::DnsProbe::new,
    );
    per_family(
        engine,
        ["mysql4", "mysql6"],
        mysql::MysqlProbe::OPTIONS,
        mysql::MysqlProbe::new,
    );
    per_family(
        engine,
        ["ping4", "ping6"],
        ping::PingProbe::OPTIONS,
        ping::PingProbe::new,
    );
    per_family(
        engine,
        ["trace4", "trace6"],
        trace::TraceProbe::OPTIONS,
        trace::TraceProbe::new,
    );

    // heartbeat(#{ period, grace }): a push check, judged by the loop.
    fn heartbeat(map: Map) -> RhaiResult<CheckDef> {
        let o = Opts::new("heartbeat", map.clone(), &["period", "grace"])?;
        let period = o.duration("period")?.ok_or_else(|| {
            o.bad(
                "period",
                "is required, e.g. heartbeat(#{ period: \"1d\", grace: \"1h\" })",
            )
        })?;
        // An hour late is late for a daily job, but not for one every minute.
        let grace = o.duration("grace")?.unwrap_or(period.min(3600));
        Ok(CheckDef {
            kind: CheckKind::Heartbeat(crate::model::heartbeat::Heartbeat { period, grace }),
            identity: format!("heartbeat:localhost:{}", opts_text(&map)),
            label: "heartbeat".into(),
            dest: "localhost".into(),
        })
    }
    engine.register_fn("heartbeat", heartbeat);

    // dns_zone(zone [, opts])
    fn dns_zone(zone: &str, map: Map) -> RhaiResult<CheckDef> {
        let o = Opts::new("dns_zone", map.clone(), dns_zone::DnsZoneProbe::OPTIONS)?;
        let p = dns_zone::DnsZoneProbe::new(zone, &o)?;
        Ok(def("dns_zone", zone, "", &map, p))
    }
    engine.register_fn("dns_zone", |zone: &str| dns_zone(zone, Map::new()));
    engine.register_fn("dns_zone", dns_zone);

    // load([opts]), pressure([opts]), disk(path [, opts])
    this_machine(
        engine,
        "load",
        load::LoadProbe::OPTIONS,
        load::LoadProbe::new,
    );
    this_machine(
        engine,
        "pressure",
        pressure::PressureProbe::OPTIONS,
        pressure::PressureProbe::new,
    );
    fn disk(path: &str, map: Map) -> RhaiResult<CheckDef> {
        let o = Opts::new("disk", map.clone(), disk::DiskProbe::OPTIONS)?;
        let p = disk::DiskProbe::new(path, &o)?;
        Ok(here(def("disk", "localhost", path, &map, p)))
    }
    engine.register_fn("disk", |path: &str| disk(path, Map::new()));
    engine.register_fn("disk", disk);

    // script(name, fn [, opts])
    fn script_def(ctx: NativeCallContext, name: &str, f: FnPtr, map: Map) -> RhaiResult<CheckDef> {
        let o = Opts::new("script", map.clone(), script::ScriptProbe::OPTIONS)?;
        let p = script::ScriptProbe::new(&ctx, name, f, &o)?;
        // The user's name says more in mails than "script".
        let mut d = here(def("script", "localhost", name, &map, p));
        d.label = name.to_string();
        Ok(d)
    }
    engine.register_fn("script", |ctx: NativeCallContext, name: &str, f: FnPtr| {
        script_def(ctx, name, f, Map::new())
    });
    engine.register_fn("script", script_def);

    peer::register(engine);
}

/// Registers `name([opts])` for a probe of this machine made from its
/// options alone (`allowed` names them).
fn this_machine<P: Probe + 'static>(
    engine: &mut Engine,
    name: &'static str,
    allowed: &'static [&'static str],
    new: fn(&Opts) -> RhaiResult<P>,
) {
    let make = move |map: Map| -> RhaiResult<CheckDef> {
        let o = Opts::new(name, map.clone(), allowed)?;
        let p = new(&o)?;
        Ok(here(def(name, "localhost", "", &map, p)))
    };
    engine.register_fn(name, move || make(Map::new()));
    engine.register_fn(name, make);
}

/// Registers `NAME4(h [, opts])` and `NAME6(h [, opts])` (`names`) for a
/// probe made from a host, an address family and its options (`allowed`
/// names them).
fn per_family<P: Probe + 'static>(
    engine: &mut Engine,
    names: [&'static str; 2],
    allowed: &'static [&'static str],
    new: fn(&Host, Family, &Opts) -> RhaiResult<P>,
) {
    for (name, family) in names.into_iter().zip([Family::V4, Family::V6]) {
        let make = move |h: Host, map: Map| -> RhaiResult<CheckDef> {
            let o = Opts::new(name, map.clone(), allowed)?;
            let p = new(&h, family, &o)?;
            Ok(def(name, &h.name, "", &map, p))
        };
        engine.register_fn(name, move |h: Host| make(h, Map::new()));
        engine.register_fn(name, make);
    }
}
