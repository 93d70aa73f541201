//! Built-in native probes (SPEC §10): a fresh machine monitors its
//! neighbours without a plugin package, and a probe costs a socket instead of
//! a fork.
//!
//! One file per probe; each is a struct implementing
//! [`crate::check::Probe`] and returns what a plugin would (status, summary
//! `LABEL STATUS - text`, perfdata). Shared pieces: [`opts`] checks option
//! maps at config time, [`range`] is the Nagios threshold syntax, [`net`]
//! bounds every socket step by the run's deadline, [`tls`] verifies
//! certificates and counts their days.

pub mod http;
pub mod net;
pub mod opts;
pub mod range;
pub mod tcp;
pub mod tls;

use std::sync::Arc;

use rhai::{Dynamic, Engine, Map};

use crate::check::{CheckDef, CheckKind, Host, Outcome, Perf, Probe, Status};
use net::{Deadline, Family};
use opts::{Opts, RhaiResult};

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

/// Registers the probe constructors (`ping4(h)`, `tcp(h, port)`, ...) with
/// the config engine. Each returns a [`crate::check::CheckDef`]; a bad
/// option is an error naming it and the fix.
pub fn register(engine: &mut Engine) {
    // tcp(h, port [, opts])
    fn tcp(h: Host, port: i64, map: Map) -> RhaiResult<CheckDef> {
        let o = Opts::new("tcp", map.clone(), tcp::TcpProbe::OPTIONS)?;
        let p = tcp::TcpProbe::new(&h, port, &o)?;
        Ok(def("tcp", &h.name, &port.to_string(), &map, p))
    }
    engine.register_fn("tcp", |h: Host, port: i64| tcp(h, port, Map::new()));
    engine.register_fn("tcp", tcp);

    // tls_cert(h, port [, opts])
    fn tls_cert(h: Host, port: i64, map: Map) -> RhaiResult<CheckDef> {
        let o = Opts::new("tls_cert", map.clone(), tls::TlsCertProbe::OPTIONS)?;
        let p = tls::TlsCertProbe::new(&h, port, &o)?;
        Ok(def("tls_cert", &h.name, &port.to_string(), &map, p))
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
            Ok(def(name, &h.name, &target, &rest, p))
        };
        engine.register_fn(name, move |h: Host| make(h, Map::new()));
        engine.register_fn(name, make);
    }

    let _ = Dynamic::UNIT;
}
