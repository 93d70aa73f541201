//! The probe constructors a config calls (`ping4(h)`, `tcp(h, port)`,
//! `heartbeat(#{ period })`, ...): each checks its option map
//! ([`crate::config::options`]), builds the probe's plain spec
//! ([`network`], [`local`]) and wraps it in a [`CheckDef`] whose identity
//! names the probe, its target and its options.

pub mod local;
pub mod network;

use std::sync::Arc;

use rhai::{Engine, FnPtr, Map, NativeCallContext};

use crate::config::options::{Opts, RhaiResult};
use crate::config::script::ScriptProbe;
use crate::model::{CheckDef, CheckKind, Host, Probe};
use crate::run::probe::http::HttpProbe;
use crate::run::probe::socket::Family;

/// Renders an option map for an identity: `k=v,k=v` in key order.
fn opts_text(map: &Map) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A check definition around a probe.
fn def(label: &str, dest: &str, target: &str, map: &Map, probe: impl Probe + 'static) -> CheckDef {
    // The rest once, not once per probe type.
    shared_def(label, dest, target, map, Arc::new(probe))
}

fn shared_def(label: &str, dest: &str, target: &str, map: &Map, probe: Arc<dyn Probe>) -> CheckDef {
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
        kind: CheckKind::Probe(probe),
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
        let o = Opts::new("tcp", map.clone(), network::TCP)?;
        let p = network::tcp(&h, port, &o)?;
        // The port in the name tells two TCP checks of one host apart.
        let mut d = def("tcp", &h.name, &port.to_string(), &map, p);
        d.label = format!("tcp {port}");
        Ok(d)
    }
    engine.register_fn("tcp", |h: Host, port: i64| tcp(h, port, Map::new()));
    engine.register_fn("tcp", tcp);

    // tls_cert(h, port [, opts])
    fn tls_cert(h: Host, port: i64, map: Map) -> RhaiResult<CheckDef> {
        let o = Opts::new("tls_cert", map.clone(), network::TLS_CERT)?;
        let p = network::tls_cert(&h, port, &o)?;
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
            let o = Opts::new(name, map.clone(), network::HTTP)?;
            let p = network::http(&h, family, secure, &o)?;
            let mut rest = map.clone();
            rest.remove("vhost");
            rest.remove("url");
            let target = format!("{}{}", p.vhost, p.path);
            let label = HttpProbe::label(name, &h, &p);
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
            let o = Opts::new(name, map.clone(), network::SMTP)?;
            let p = network::smtp(&h, family, &o)?;
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
        network::JABBER,
        network::jabber,
    );
    per_family(
        engine,
        ["openvpn4", "openvpn6"],
        network::OPENVPN,
        network::openvpn,
    );
    per_family(engine, ["dns4", "dns6"], network::DNS, network::dns);
    per_family(engine, ["mysql4", "mysql6"], network::MYSQL, network::mysql);
    per_family(engine, ["ping4", "ping6"], network::PING, network::ping);
    per_family(engine, ["trace4", "trace6"], network::TRACE, network::trace);

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
        let o = Opts::new("dns_zone", map.clone(), network::DNS_ZONE)?;
        let p = network::dns_zone(zone, &o)?;
        Ok(def("dns_zone", zone, "", &map, p))
    }
    engine.register_fn("dns_zone", |zone: &str| dns_zone(zone, Map::new()));
    engine.register_fn("dns_zone", dns_zone);

    // load([opts]), pressure([opts]), disk(path [, opts])
    this_machine(engine, "load", local::LOAD, local::load);
    this_machine(engine, "pressure", local::PRESSURE, local::pressure);
    fn disk(path: &str, map: Map) -> RhaiResult<CheckDef> {
        let o = Opts::new("disk", map.clone(), local::DISK)?;
        let p = local::disk(path, &o)?;
        Ok(here(def("disk", "localhost", path, &map, p)))
    }
    engine.register_fn("disk", |path: &str| disk(path, Map::new()));
    engine.register_fn("disk", disk);

    // script(name, fn [, opts])
    fn script_def(ctx: NativeCallContext, name: &str, f: FnPtr, map: Map) -> RhaiResult<CheckDef> {
        let o = Opts::new("script", map.clone(), ScriptProbe::OPTIONS)?;
        let p = ScriptProbe::new(&ctx, name, f, &o)?;
        // The user's name says more in mails than "script".
        let mut d = here(def("script", "localhost", name, &map, p));
        d.label = name.to_string();
        Ok(d)
    }
    engine.register_fn("script", |ctx: NativeCallContext, name: &str, f: FnPtr| {
        script_def(ctx, name, f, Map::new())
    });
    engine.register_fn("script", script_def);

    // peer(url [, opts])
    fn peer(url: &str, map: Map) -> RhaiResult<CheckDef> {
        let o = Opts::new("peer", map.clone(), network::PEER)?;
        let p = network::peer(url, &o)?;
        let url = p.url.clone();
        Ok(def("peer", &url, "", &map, p))
    }
    engine.register_fn("peer", |url: &str| peer(url, Map::new()));
    engine.register_fn("peer", peer);
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
