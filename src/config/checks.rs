//! The functions a config calls to declare what to check: `host()`,
//! `plugin()`, `shell()` and `add()` with its per-check options, and the
//! final step that turns what was added into [`CheckSpec`]s.
//!
//! The functions take `Dynamic` arguments and check the types themselves, so
//! a wrong argument gets a message about picomon rather than Rhai's "function
//! not found".

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rhai::{Array, Dynamic, Engine, EvalAltResult, Map, NativeCallContext};

use crate::model::{Argv, CheckDef, CheckKind, CheckSpec, Extras, Host};

use super::builder::{Builder, CheckOpts, PendingCheck, Shared};
use super::value::{self as v, describe, unknown};
use super::when;

/// The options `add(def, #{ ... })` accepts.
pub const CHECK_OPTIONS: &[&str] = &[
    "every",
    "error_every",
    "retry",
    "timeout",
    "name",
    "target_name",
    "env",
    "cwd",
    "when",
    "passive",
    "host_name",
    "service_name",
    "max_instances",
    "notify",
    "contacts",
    "depends_on",
    "flap",
    "renotify_every",
    "escalate",
];

/// The options `host(name, #{ ... })` accepts.
pub const HOST_OPTIONS: &[&str] = &["name", "ipv4", "ipv6", "depends_on", "contacts"];

use super::options::{err as rt, RhaiResult};

fn opt_str(s: &Option<String>) -> Dynamic {
    s.clone().map_or(Dynamic::UNIT, Dynamic::from)
}

/// Registers `Host`, `CheckDef` and the functions of this module.
pub fn register(engine: &mut Engine, shared: &Shared) {
    engine
        .register_type_with_name::<Host>("Host")
        .register_get("name", |h: &mut Host| h.name.clone())
        .register_get("ipv4", |h: &mut Host| opt_str(&h.ipv4))
        .register_get("ipv6", |h: &mut Host| opt_str(&h.ipv6))
        .register_fn("to_string", |h: &mut Host| host_text(h))
        .register_fn("to_debug", |h: &mut Host| host_text(h));

    engine
        .register_type_with_name::<CheckDef>("Check")
        .register_get("identity", |d: &mut CheckDef| d.identity.clone())
        .register_get("label", |d: &mut CheckDef| d.label.clone())
        .register_get("dest", |d: &mut CheckDef| d.dest.clone())
        .register_fn("to_string", |d: &mut CheckDef| d.identity.clone())
        .register_fn("to_debug", |d: &mut CheckDef| d.identity.clone());

    // host(name), host(#{ ipv4, ipv6 }) (the address is the name),
    // host(name, #{ ipv4, ipv6 }).
    let s = shared.clone();
    engine.register_fn("host", move |arg: Dynamic| -> RhaiResult<Host> {
        let (h, deps, contacts) = if arg.is_map() {
            let (opts, deps) = super::alert_policy::split_host_deps(&arg).map_err(rt)?;
            let (opts, contacts) = super::contacts::split_host(&opts).map_err(rt)?;
            (make_host(None, Some(&opts)).map_err(rt)?, deps, contacts)
        } else {
            (make_host(Some(&arg), None).map_err(rt)?, None, None)
        };
        s.with(|b| {
            super::contacts::remember_host(b, &h.name, contacts)?;
            remember_host_with_deps(b, h, deps)
        })
        .map_err(rt)
    });
    let s = shared.clone();
    engine.register_fn(
        "host",
        move |name: Dynamic, opts: Dynamic| -> RhaiResult<Host> {
            let (opts, deps) = super::alert_policy::split_host_deps(&opts).map_err(rt)?;
            let (opts, contacts) = super::contacts::split_host(&opts).map_err(rt)?;
            let h = make_host(Some(&name), Some(&opts)).map_err(rt)?;
            s.with(|b| {
                super::contacts::remember_host(b, &h.name, contacts)?;
                remember_host_with_deps(b, h, deps)
            })
            .map_err(rt)
        },
    );

    let s = shared.clone();
    engine.register_fn("plugin", move |name: Dynamic| -> RhaiResult<CheckDef> {
        let host = s.with(|b| b.hostname.clone());
        make_plugin(&name, None, host).map_err(rt)
    });
    let s = shared.clone();
    engine.register_fn(
        "plugin",
        move |name: Dynamic, args: Dynamic| -> RhaiResult<CheckDef> {
            let host = s.with(|b| b.hostname.clone());
            make_plugin(&name, Some(&args), host).map_err(rt)
        },
    );
    let s = shared.clone();
    engine.register_fn("shell", move |cmd: Dynamic| -> RhaiResult<CheckDef> {
        let command = v::non_empty("shell(command)", &cmd).map_err(rt)?;
        Ok(CheckDef {
            identity: format!("shell:{command}"),
            kind: CheckKind::Shell {
                command: command.into(),
            },
            label: "shell".into(),
            dest: s.with(|b| b.hostname.clone()),
        })
    });

    let s = shared.clone();
    engine.register_fn(
        "add",
        move |ctx: NativeCallContext, defs: Dynamic| -> RhaiResult<()> {
            add(&s, &ctx, &defs, None).map_err(rt)
        },
    );
    let s = shared.clone();
    engine.register_fn(
        "add",
        move |ctx: NativeCallContext, defs: Dynamic, opts: Dynamic| -> RhaiResult<()> {
            if is_bulk(&defs) {
                add_bulk(&s, &ctx, &defs, &opts, None)
            } else {
                add(&s, &ctx, &defs, Some(&opts)).map_err(rt)
            }
        },
    );
    let s = shared.clone();
    engine.register_fn(
        "add",
        move |ctx: NativeCallContext,
              ctors: Dynamic,
              dests: Dynamic,
              opts: Dynamic|
              -> RhaiResult<()> { add_bulk(&s, &ctx, &ctors, &dests, Some(&opts)) },
    );
}

/// The constructors a config may name bare, as function pointers, for
/// `add([ping4, http4], [h1, h2], opts)`: those made from one host (or,
/// for `dns_zone`, one zone). The engine resolves these names to function
/// pointers where no variable of that name exists.
pub const BULK_CONSTRUCTORS: &[&str] = &[
    "ping4", "ping6", "http4", "http6", "https4", "https6", "smtp4", "smtp6", "jabber4", "jabber6",
    "openvpn4", "openvpn6", "dns4", "dns6", "trace4", "trace6", "dns_zone",
];

/// True when `add()`'s first argument is constructors (function pointers)
/// rather than checks.
fn is_bulk(defs: &Dynamic) -> bool {
    if defs.is_fnptr() {
        return true;
    }
    defs.read_lock::<Array>()
        .is_some_and(|a| !a.is_empty() && a.iter().all(Dynamic::is_fnptr))
}

/// One item or a list of items, as a list.
fn listed(d: &Dynamic) -> Vec<Dynamic> {
    match d.read_lock::<Array>() {
        Some(a) => a.to_vec(),
        None => vec![d.clone()],
    }
}

/// The words of an error a constructor raised, without Rhai's "in call to
/// function" wrapping (the position is the `add()` line).
fn inner_message(e: &EvalAltResult) -> String {
    match e {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _) => inner_message(inner),
        EvalAltResult::ErrorRuntime(d, _) if d.is_string() => d.to_string(),
        other => {
            // Without its position: the message is placed at the add() line.
            let text = other.to_string();
            match text.rfind(" (line ") {
                Some(at) => text[..at].to_string(),
                None => text,
            }
        }
    }
}

/// `add([ctors], [dests], #{ options, probe: #{ ... } })`: every
/// constructor applied to every destination, as picomon's Python
/// `config.checks.add([classes], [hosts], **opts)` did. `probe` holds the
/// constructors' options: keys naming a constructor of the list take a map
/// for that constructor alone, the others go to every constructor (its
/// own map wins). A `name` is made unique per pair: `NAME (LABEL on DEST)`.
fn add_bulk(
    shared: &Shared,
    ctx: &NativeCallContext,
    ctors: &Dynamic,
    dests: &Dynamic,
    opts: Option<&Dynamic>,
) -> RhaiResult<()> {
    let ctors: Vec<rhai::FnPtr> = listed(ctors)
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            c.clone().try_cast::<rhai::FnPtr>().ok_or_else(|| {
                rt(format!(
                    "add([constructors], hosts, options): item {i} is {}, not a constructor; write the bare name, e.g. add([ping4, http4], [h1, h2], #{{ every: 5 }})",
                    describe(&c)
                ))
            })
        })
        .collect::<RhaiResult<_>>()?;
    let dests = listed(dests);
    if dests.is_empty() {
        return Err(rt("add(constructors, [], ...): the list of hosts is empty"));
    }
    let mut map = match opts {
        None => Map::new(),
        Some(o) => o.read_lock::<Map>().map(|m| m.clone()).ok_or_else(|| {
            rt(format!(
                "add(constructors, hosts, options): options must be a map like #{{ every: 5, probe: #{{ count: 5 }} }}, not {}",
                describe(o)
            ))
        })?,
    };
    let probe = match map.remove("probe") {
        None => Map::new(),
        Some(p) => p.try_cast::<Map>().ok_or_else(|| {
            rt("option probe must be a map of the constructors' options, e.g. probe: #{ vhost: \"www.example.org\" } or probe: #{ http4: #{ url: \"/\" } }")
        })?,
    };
    let names: Vec<&str> = ctors.iter().map(|c| c.fn_name()).collect();
    // Inserted one by one: collecting into a map builds a sort of its own.
    let mut common = Map::new();
    for (k, v) in probe.iter().filter(|(k, _)| !names.contains(&k.as_str())) {
        common.insert(k.clone(), v.clone());
    }
    let mut defs = Vec::new();
    for ctor in &ctors {
        let mut own = common.clone();
        if let Some(m) = probe.get(ctor.fn_name()) {
            let m = m.read_lock::<Map>().ok_or_else(|| {
                rt(format!(
                    "option probe.{0} must be a map of {0}'s options, not {1}",
                    ctor.fn_name(),
                    describe(m)
                ))
            })?;
            own.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        for dest in &dests {
            let made: Dynamic = if own.is_empty() {
                ctor.call_within_context(ctx, (dest.clone(),))
            } else {
                ctor.call_within_context(ctx, (dest.clone(), own.clone()))
            }
            .map_err(|e| {
                let msg = inner_message(&e);
                if msg.starts_with(ctor.fn_name()) {
                    rt(msg)
                } else {
                    rt(format!("{}: {msg}", ctor.fn_name()))
                }
            })?;
            let def = made.try_cast::<CheckDef>().ok_or_else(|| {
                rt(format!(
                    "{}(...) did not make a check; add() pairs check constructors with hosts",
                    ctor.fn_name()
                ))
            })?;
            defs.push(def);
        }
    }
    let opts = parse_opts(&Dynamic::from_map(map)).map_err(rt)?;
    let line = ctx.call_position().line().unwrap_or(0);
    let unique = opts.name.is_some() && defs.len() > 1;
    for def in defs {
        let mut o = opts.clone();
        if unique {
            o.name = o
                .name
                .map(|n| format!("{n} ({} on {})", def.label, def.dest));
        }
        insert(shared, line, vec![def], &o).map_err(rt)?;
    }
    Ok(())
}

fn host_text(h: &Host) -> String {
    let mut s = format!("host({:?}", h.name);
    if let Some(a) = &h.ipv4 {
        s.push_str(&format!(", ipv4 {a}"));
    }
    if let Some(a) = &h.ipv6 {
        s.push_str(&format!(", ipv6 {a}"));
    }
    s.push(')');
    s
}

/// `host(name[, #{ ipv4, ipv6 }])` or `host(#{ name, ipv4, ipv6 })` (as
/// picomon's Python `Host(name=..., ipv4=...)` is written). A name is for
/// people (spaces are fine: probes that need a DNS name fall back to the
/// address); without one the addresses are the name, `ipv4/ipv6` as
/// picomon's Python `Host` wrote it. Addresses must be literal IP
/// addresses: a host name there would silently be resolved at every run.
fn make_host(name: Option<&Dynamic>, opts: Option<&Dynamic>) -> Result<Host, String> {
    let name = match name {
        Some(n) => {
            let n = v::non_empty("host(name)", n)?;
            if n.contains(char::is_control) {
                return Err(format!("host name {n:?} must be one line of text"));
            }
            n
        }
        None => String::new(),
    };
    let mut host = Host {
        name,
        ipv4: None,
        ipv6: None,
    };
    let Some(opts) = opts else {
        return Ok(host);
    };
    let Some(map) = opts.read_lock::<Map>() else {
        return Err(format!(
            "host({:?}, ...) takes a map like #{{ ipv4: \"192.0.2.10\", ipv6: \"2001:db8::10\" }}, not {}",
            host.name,
            describe(opts)
        ));
    };
    for (key, val) in map.iter() {
        let what = format!("host option {key}");
        match key.as_str() {
            "name" if !host.name.is_empty() => {
                return Err(format!(
                    "host({:?}, #{{ name: ... }}) names the host twice; give the name once, \
                     host(\"web\", #{{ ipv4: ... }}) or host(#{{ name: \"web\", ipv4: ... }})",
                    host.name
                ))
            }
            "name" => {
                let n = v::non_empty("host option name", val)?;
                if n.contains(char::is_control) {
                    return Err(format!("host name {n:?} must be one line of text"));
                }
                host.name = n;
            }
            "ipv4" => {
                let a = v::string(&what, val)?;
                if a.parse::<std::net::Ipv4Addr>().is_err() {
                    return Err(format!(
                        "{what}: {a:?} is not an IPv4 address (e.g. \"192.0.2.10\"); leave ipv4 out to use the host name"
                    ));
                }
                host.ipv4 = Some(a);
            }
            "ipv6" => {
                let a = v::string(&what, val)?;
                if a.parse::<std::net::Ipv6Addr>().is_err() {
                    return Err(format!(
                        "{what}: {a:?} is not an IPv6 address (e.g. \"2001:db8::10\"); leave ipv6 out to use the host name"
                    ));
                }
                host.ipv6 = Some(a);
            }
            other => return Err(unknown("host option", other, other, "", HOST_OPTIONS)),
        }
    }
    if host.name.is_empty() {
        host.name = match (&host.ipv4, &host.ipv6) {
            (Some(a), Some(b)) => format!("{a}/{b}"),
            (Some(a), None) | (None, Some(a)) => a.clone(),
            (None, None) => {
                return Err(
                    "host(#{ ... }) without a name needs an address: #{ ipv4: \"192.0.2.10\" }, #{ ipv6: \"2001:db8::10\" } or both"
                        .into(),
                )
            }
        };
    }
    Ok(host)
}

/// Records a host for the summary; the same name twice must mean the same
/// host (a loop may well call `host()` again).
/// Remembers a host and, when it was given `depends_on`, its dependencies
/// (applied to every check on it).
fn remember_host_with_deps(
    b: &mut Builder,
    h: Host,
    deps: Option<Vec<String>>,
) -> Result<Host, String> {
    if let Some(d) = deps {
        b.host_deps.insert(h.name.clone(), d);
    }
    remember_host(b, h)
}

fn remember_host(b: &mut Builder, h: Host) -> Result<Host, String> {
    match b.hosts.iter().find(|x| x.name == h.name) {
        Some(old) if *old != h => Err(format!(
            "host {:?} is declared twice with different addresses ({} and {}); use one host() per machine",
            h.name,
            host_text(old),
            host_text(&h)
        )),
        Some(_) => Ok(h),
        None => {
            b.hosts.push(h.clone());
            Ok(h)
        }
    }
}

/// `plugin(name_or_path[, args])`. The program is resolved once the script
/// has finished, so `config.plugin_dirs` may be set after it.
pub(super) fn make_plugin(
    name: &Dynamic,
    args: Option<&Dynamic>,
    hostname: String,
) -> Result<CheckDef, String> {
    let name = v::non_empty("plugin(name)", name)?;
    let args = match args {
        None => Vec::new(),
        Some(a) => {
            let Some(arr) = a.read_lock::<Array>() else {
                return Err(format!(
                    "plugin({name:?}, args): args must be an array like [\"-w\", \"10%\"], not {}",
                    describe(a)
                ));
            };
            arr.iter()
                .enumerate()
                .map(|(i, x)| v::arg(&format!("plugin({name:?}) argument {i}"), x))
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    let label = std::path::Path::new(&name)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| name.clone());
    let mut identity = format!("plugin:{name}");
    for a in &args {
        identity.push(' ');
        identity.push_str(&quote_arg(a));
    }
    Ok(CheckDef {
        kind: CheckKind::Plugin(Box::new(Argv {
            program: PathBuf::from(&name).into_boxed_path(),
            args: args.into_boxed_slice(),
        })),
        identity,
        label,
        dest: hostname,
    })
}

/// An argument as it reads in an identity: quoted when it would otherwise
/// be ambiguous.
fn quote_arg(a: &str) -> String {
    if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
        format!("'{}'", a.replace('\'', "'\\''"))
    } else {
        a.to_string()
    }
}

/// `add(def)`, `add(def, opts)`, `add([defs], opts)`.
fn add(
    shared: &Shared,
    ctx: &NativeCallContext,
    defs: &Dynamic,
    opts: Option<&Dynamic>,
) -> Result<(), String> {
    let opts = match opts {
        Some(o) => parse_opts(o)?,
        None => CheckOpts::default(),
    };
    let defs: Vec<CheckDef> = if let Some(d) = defs.clone().try_cast::<CheckDef>() {
        vec![d]
    } else if let Some(arr) = defs.read_lock::<Array>() {
        arr.iter()
            .enumerate()
            .map(|(i, x)| {
                x.clone().try_cast::<CheckDef>().ok_or_else(|| {
                    format!(
                        "add([...]): item {i} is {}, not a check (make one with plugin(), shell(), ping4(), ...)",
                        describe(x)
                    )
                })
            })
            .collect::<Result<_, _>>()?
    } else if is_bulk(defs) {
        return Err(
            "add(constructors) needs the hosts too: add([ping4, http4], [h1, h2]), or call one: add(ping4(h1))"
                .into(),
        );
    } else {
        return Err(format!(
            "add() takes a check (made with plugin(), shell(), ping4(), ...) or an array of checks, not {}",
            describe(defs)
        ));
    };
    let line = ctx.call_position().line().unwrap_or(0);
    insert(shared, line, defs, &opts)
}

/// Records checks added at `line` with `opts`; an identity given twice
/// is an error naming the first line.
fn insert(
    shared: &Shared,
    line: usize,
    defs: Vec<CheckDef>,
    opts: &CheckOpts,
) -> Result<(), String> {
    shared.with(|b| {
        if let Some(names) = &opts.more().contacts {
            super::contacts::check_names(b, "contacts", names)?;
        }
        if let Some(steps) = opts.noise.as_ref().and_then(|n| n.escalate.as_ref()) {
            super::contacts::check_escalate(b, "escalate", steps)?;
        }
        for def in defs {
            push(b, def, opts.clone(), line)?;
        }
        Ok(())
    })
}

/// Records one check added at config line `line` (also what the importers
/// of other tools' files add).
pub(super) fn push(
    b: &mut Builder,
    mut def: CheckDef,
    opts: CheckOpts,
    line: usize,
) -> Result<(), String> {
    // Kept once from the start: 100,000 `tcp(lo, 80)` are one probe.
    if let CheckKind::Probe(probe) = &mut def.kind {
        *probe = b.probes.get(probe);
    }
    // The identity: kind, target and arguments, or the name on its target.
    // A `target_name` is the check's target where the definition has none
    // of its own (a plugin's host is in its arguments).
    let target = opts.target_name.as_deref().unwrap_or(&def.dest);
    let id = match (&opts.name, &opts.target_name) {
        (Some(name), _) => format!("{name} on {target}"),
        (None, Some(target)) => format!("{} on {target}", def.identity),
        (None, None) => std::mem::take(&mut def.identity),
    };
    if let Some(&i) = b.ids.get(&id) {
        let first = b.checks[i].line;
        return Err(match &opts.name {
            Some(name) => format!(
                "a check named `{name}` on `{target}` was already added at line {first} (and again at \
                 line {line}): a name must be unique per target; give one of them a distinct name: \
                 add(..., #{{ name: \"...\" }})"
            ),
            None => format!(
                "a check with identity `{id}` was already added at line {first}; give one of them \
                 a distinct name: add(..., #{{ name: \"...\" }})"
            ),
        });
    }
    b.ids.insert(id.clone(), b.checks.len());
    // Nothing reads a pending check's definition identity again (the id
    // says it), nor its label when it has a name, nor its target when it
    // has a `target_name`: not kept (with 100,000 checks, a string each of
    // the config's peak).
    def.identity = String::new();
    if opts.name.is_some() {
        def.label = String::new();
    }
    if opts.target_name.is_some() {
        def.dest = String::new();
    }
    b.checks.push(PendingCheck {
        def,
        opts,
        id,
        line,
    });
    Ok(())
}

/// The checks' final identities, once every check is known. A check's
/// identity is its name on its target: a named check whose name no other
/// check has keeps the name alone as its identity (what it was before
/// names were per target, so the state, threads and history of existing
/// configs carry over unchanged); checks that share a name are each
/// `NAME on TARGET`. An unnamed check's identity is its kind, target and
/// arguments. Two checks left with one identity (a check named `web on
/// db1` next to `web` on `db1`) are an error at the later one's line.
pub(super) fn identities(b: &mut Builder) -> Result<(), (usize, String)> {
    // What `add()` looked identities up in while the script ran: not
    // needed any more, and with 100,000 checks megabytes of the peak.
    b.ids = HashMap::new();
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for p in &b.checks {
        if let Some(name) = &p.opts.name {
            *uses.entry(name).or_default() += 1;
        }
    }
    let lone: Vec<Option<String>> = b
        .checks
        .iter()
        .map(|p| p.opts.name.clone().filter(|n| uses[n.as_str()] == 1))
        .collect();
    for (p, lone) in b.checks.iter_mut().zip(lone) {
        if let Some(name) = lone {
            p.id = name;
        }
    }
    let mut ids: HashMap<&str, usize> = HashMap::with_capacity(b.checks.len());
    for (i, p) in b.checks.iter().enumerate() {
        if let Some(&first) = ids.get(p.id.as_str()) {
            let first: &PendingCheck = &b.checks[first];
            return Err((
                i,
                format!(
                    "two checks have the identity `{}` (lines {} and {}); give one of them a distinct name: \
                     add(..., #{{ name: \"...\" }})",
                    p.id, first.line, p.line
                ),
            ));
        }
        ids.insert(&p.id, i);
    }
    Ok(())
}

/// Parses the options map of `add()`.
pub(super) fn parse_opts(o: &Dynamic) -> Result<CheckOpts, String> {
    let Some(map) = o.read_lock::<Map>() else {
        return Err(format!(
            "add(check, options): options must be a map like #{{ every: 5, retry: 2 }}, not {}",
            describe(o)
        ));
    };
    let mut opts = CheckOpts::default();
    for (key, val) in map.iter() {
        let what = format!("option {key}");
        let what = what.as_str();
        match key.as_str() {
            "every" => opts.every = Some(v::whole(what, val, 1, 1_000_000_000, "ticks")? as u64),
            "error_every" => opts.error_every = Some(v::ticks_or_minus_one(what, val)?),
            "retry" => opts.retry = Some(v::whole(what, val, 0, 1_000_000, "runs")? as u32),
            "timeout" => opts.timeout = Some(v::seconds(what, val, 0.0, true)?),
            "name" => opts.name = Some(v::non_empty(what, val)?),
            "target_name" => opts.target_name = Some(v::non_empty(what, val)?),
            "env" => opts.more_mut().env = parse_env(what, val)?,
            "cwd" => {
                let cwd = v::non_empty(what, val)?;
                if !cwd.starts_with('/') {
                    return Err(format!(
                        "{what} must be an absolute path (checks run in \"/\"), not {cwd:?}"
                    ));
                }
                opts.more_mut().cwd = Some(cwd);
            }
            "when" => opts.more_mut().when = Some(when::parse(val)?),
            "passive" => {
                opts.passive_host = v::choice(what, val, &["host", "service"])? == "host";
            }
            "host_name" => opts.more_mut().host_name = Some(v::non_empty(what, val)?),
            "service_name" => opts.more_mut().service_name = Some(v::non_empty(what, val)?),
            "max_instances" => {
                opts.max_instances = Some(v::whole(what, val, 1, 1000, "runs")? as u16)
            }
            "notify" => opts.more_mut().notify = Some(v::string_list(what, val)?),
            "contacts" => opts.more_mut().contacts = Some(v::string_list(what, val)?),
            "depends_on" => {
                noise(&mut opts).depends_on = super::alert_policy::depends_on(what, val)?
            }
            "flap" => noise(&mut opts).flap = Some(super::alert_policy::flap(what, val)?),
            "renotify_every" => {
                noise(&mut opts).renotify_every = Some(super::alert_policy::renotify(what, val)?)
            }
            "escalate" => {
                noise(&mut opts).escalate = Some(super::alert_policy::escalate(what, val)?)
            }
            other => return Err(unknown("option", other, other, "", CHECK_OPTIONS)),
        }
    }
    Ok(opts)
}

/// The options' noise settings, created when the first one is given.
fn noise(opts: &mut CheckOpts) -> &mut super::alert_policy::NoiseOpts {
    opts.noise.get_or_insert_with(Default::default)
}

/// `env: #{ NAME: "value" }`; numbers are written out.
fn parse_env(what: &str, val: &Dynamic) -> Result<Vec<(String, String)>, String> {
    let Some(map) = val.read_lock::<Map>() else {
        return Err(format!(
            "{what} must be a map like #{{ LANG: \"C\" }}, not {}",
            describe(val)
        ));
    };
    map.iter()
        .map(|(k, x)| {
            if k.is_empty() || k.contains(['=', '\0']) {
                return Err(format!(
                    "{what}: {k:?} is not a valid environment variable name"
                ));
            }
            let value = v::arg(&format!("{what}.{k}"), x)?;
            if value.contains('\0') {
                return Err(format!("{what}.{k} must not contain a NUL byte"));
            }
            Ok((k.to_string(), value))
        })
        .collect()
}

/// One probe object per distinct probe: 100,000 `tcp(lo, 80)` checks run
/// the same spec, so they share it (a probe is immutable data and keeps
/// nothing between runs). Two probes are the same when their `Debug`
/// texts are: every probe derives it over all its fields (a test keeps
/// hand-written `Debug` out of the probe modules).
#[derive(Debug, Default)]
pub(super) struct ProbeSet(std::collections::HashMap<String, Arc<dyn crate::model::Probe>>);

impl ProbeSet {
    pub(super) fn get(
        &mut self,
        probe: &Arc<dyn crate::model::Probe>,
    ) -> Arc<dyn crate::model::Probe> {
        Arc::clone(
            self.0
                .entry(format!("{probe:?}"))
                .or_insert_with(|| Arc::clone(probe)),
        )
    }
}

/// Fills in defaults and resolves plugin names: the checks as the daemon
/// runs them. `noise` is each check's resolved [`super::alert_policy::resolve`].
pub fn finish(b: &Builder, noise: Vec<Option<Box<crate::model::AlertPolicy>>>) -> Vec<CheckSpec> {
    let k = &b.keys;
    let plugin_dirs: Vec<PathBuf> = k.plugin_dirs.iter().map(PathBuf::from).collect();
    let mut strings = crate::model::Interner::default();
    b.checks
        .iter()
        .zip(noise)
        .map(|(p, noise)| {
            let o = &p.opts;
            let every = o.every.unwrap_or(k.default_every as u64);
            let error_every = match o.error_every.unwrap_or(k.default_error_every) {
                -1 => every,
                n => n as u64,
            };
            let kind = match &p.def.kind {
                CheckKind::Plugin(argv) => CheckKind::Plugin(Box::new(Argv {
                    program: crate::run::plugin::resolve(
                        &argv.program.to_string_lossy(),
                        &plugin_dirs,
                    )
                    .into_boxed_path(),
                    args: argv.args.clone(),
                })),
                // Shared already (see `push`).
                other => other.clone(),
            };
            let name = strings.get(o.name.as_deref().unwrap_or(&p.def.label));
            // A named check's identity is mostly its name: one string.
            let id = if *name == *p.id {
                Arc::clone(&name)
            } else {
                Arc::from(p.id.as_str())
            };
            CheckSpec {
                id,
                name,
                dest: strings.get(o.target_name.as_deref().unwrap_or(&p.def.dest)),
                kind,
                // Both at most 10^9 (keys and options say so).
                every: every as u32,
                error_every: error_every as u32,
                retry: o.retry.unwrap_or(k.default_retry as u32),
                timeout_ms: CheckSpec::timeout_ms(Duration::from_secs_f64(
                    o.timeout.unwrap_or(k.default_timeout),
                )),
                extras: Extras {
                    env: o.more().env.clone(),
                    cwd: o.more().cwd.as_ref().map(PathBuf::from),
                    host_name: o.more().host_name.clone(),
                    service_name: o.more().service_name.clone(),
                    when: o.more().when.clone(),
                }
                .boxed(),
                passive_host: o.passive_host,
                max_instances: o.max_instances.unwrap_or(1),
                line: u32::try_from(p.line).unwrap_or(u32::MAX),
                noise,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`ProbeSet`] tells probes apart by their `Debug` text: a probe
    /// type (or a type it holds) with a hand-written `Debug` that leaves a
    /// field out would make two different probes one. Every type under
    /// `run/probe/` and `net/` that a probe holds derives it.
    #[test]
    fn no_probe_type_writes_its_own_debug() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = vec![root.join("run/probe.rs"), root.join("net/tls.rs")];
        for entry in std::fs::read_dir(root.join("run/probe")).unwrap() {
            files.push(entry.unwrap().path());
        }
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            assert!(
                !text.contains("Debug for"),
                "{}: a hand-written Debug; ProbeSet would share probes that differ",
                f.display()
            );
        }
    }

    #[test]
    fn the_same_probe_is_kept_once_and_shared() {
        let cfg = crate::config::load_str(
            std::path::Path::new("t.rhai"),
            r#"let lo = host("lo", #{ ipv4: "127.0.0.1" });
add(tcp(lo, 80), #{ name: "a" });
add(tcp(lo, 80), #{ name: "b" });
add(tcp(lo, 81), #{ name: "c" });"#,
        )
        .unwrap();
        let probe = |i: usize| match &cfg.checks[i].kind {
            CheckKind::Probe(p) => Arc::clone(p),
            other => panic!("{other:?}"),
        };
        assert!(Arc::ptr_eq(&probe(0), &probe(1)));
        assert!(!Arc::ptr_eq(&probe(0), &probe(2)));
        // Same target: one string.
        assert!(Arc::ptr_eq(&cfg.checks[0].dest, &cfg.checks[2].dest));
    }

    #[test]
    fn identity_quotes_ambiguous_args() {
        assert_eq!(quote_arg("-w"), "-w");
        assert_eq!(quote_arg("a b"), "'a b'");
        assert_eq!(quote_arg(""), "''");
        assert_eq!(quote_arg("it's"), "'it'\\''s'");
    }
}
