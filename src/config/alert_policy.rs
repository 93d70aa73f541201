//! The settings that make alerts fewer and truer: `depends_on`, `flap`,
//! `renotify_every` and `escalate` (per check, and `depends_on` per host),
//! their `config.*` defaults, and the resolution of dependency names into
//! positions once the script has run (unknown names and cycles are errors
//! with the line of the `add()`).

use rhai::{Dynamic, Map};

use crate::alert::deps;
use crate::alert::flap::FlapSetting;
use crate::alert::remind::Escalation;
use crate::model::AlertPolicy;

use super::builder::Builder;
use super::value::{self as v, describe};

/// `flap: false` or `flap: #{ low: 20.0, high: 30.0 }` (either key may be
/// left out: picomon's default for it).
pub fn flap(what: &str, val: &Dynamic) -> Result<FlapSetting, String> {
    if let Ok(b) = val.as_bool() {
        return Ok(if b {
            FlapSetting::default()
        } else {
            FlapSetting::Off
        });
    }
    let Some(map) = val.read_lock::<Map>() else {
        return Err(format!(
            "{what} must be false or a map like #{{ low: 20.0, high: 30.0 }} (percent), not {}",
            describe(val)
        ));
    };
    let FlapSetting::On { mut low, mut high } = FlapSetting::default() else {
        unreachable!("the default is on")
    };
    for (key, x) in map.iter() {
        let pct = |x: &Dynamic| match v::as_number(x) {
            Some(p) if (0.0..=100.0).contains(&p) => Ok(p as f32),
            _ => Err(format!(
                "{what}.{key} must be a percentage from 0 to 100, not {}",
                describe(x)
            )),
        };
        match key.as_str() {
            "low" => low = pct(x)?,
            "high" => high = pct(x)?,
            other => {
                return Err(v::unknown(
                    "key",
                    &format!("{what}.{other}"),
                    other,
                    "",
                    &["low", "high"],
                ))
            }
        }
    }
    if low > high {
        return Err(format!(
            "{what}: low ({low}) must not be above high ({high}): flapping starts at high and ends at low"
        ));
    }
    Ok(FlapSetting::On { low, high })
}

/// `renotify_every: "1h"` (or seconds as a number); `false`, `0` or `""`
/// = no reminders. Whole seconds.
pub fn renotify(what: &str, val: &Dynamic) -> Result<u64, String> {
    if let Ok(b) = val.as_bool() {
        return if b {
            Err(format!(
                "{what} must be a duration like \"1h\" or \"30m\", or false for none"
            ))
        } else {
            Ok(0)
        };
    }
    if let Some(n) = v::as_number(val) {
        return Ok(crate::duration::checked(what, n)?.as_secs_f64().ceil() as u64);
    }
    let text = v::string(what, val)?;
    if text.trim().is_empty() {
        return Ok(0);
    }
    crate::duration::parse(what, &text)
}

/// `escalate: [#{ after: "30m", to: ["lead@example.org"] }, ...]`: steps
/// in order of `after`.
pub fn escalate(what: &str, val: &Dynamic) -> Result<Vec<Escalation>, String> {
    let items: Vec<Dynamic> = match val.read_lock::<rhai::Array>() {
        Some(a) => a.to_vec(),
        None if val.is_map() => vec![val.clone()],
        None => {
            return Err(format!(
                "{what} must be a list like [#{{ after: \"30m\", to: [\"lead@example.org\"] }}], not {}",
                describe(val)
            ))
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let what = format!("{what}[{i}]");
        let Some(map) = item.read_lock::<Map>() else {
            return Err(format!(
                "{what} must be a map like #{{ after: \"30m\", to: [\"lead@example.org\"] }}, not {}",
                describe(item)
            ));
        };
        let mut after = None;
        let mut to = Vec::new();
        for (key, x) in map.iter() {
            match key.as_str() {
                "after" => {
                    let secs = renotify(&format!("{what}.after"), x)?;
                    after = Some(secs);
                }
                "to" => {
                    let w = format!("{what}.to");
                    // A word without '@' names a contact (checked where the
                    // step is given, against the contacts declared above).
                    to = v::string_list(&w, x)?;
                    for a in &to {
                        if a.contains(['\r', '\n']) || a.trim().is_empty() {
                            return Err(format!(
                                "{w}: {a:?} is not a mail address (expected user@domain or \"Name <user@domain>\") nor a contact's name"
                            ));
                        }
                        if a.contains('@') {
                            super::keys::ascii_domain(&w, a)?;
                        }
                    }
                }
                other => {
                    return Err(v::unknown(
                        "key",
                        &format!("{what}.{other}"),
                        other,
                        "",
                        &["after", "to"],
                    ))
                }
            }
        }
        let Some(after) = after else {
            return Err(format!(
                "{what} needs after: how long an unacknowledged outage lasts before it escalates, e.g. \"30m\""
            ));
        };
        if to.is_empty() {
            return Err(format!(
                "{what} needs to: the addresses the thread then also goes to"
            ));
        }
        out.push(Escalation { after, to });
    }
    crate::sort::by_key(&mut out, |e| e.after);
    Ok(out)
}

/// `depends_on: ["router ping", ...]` (one name alone is fine too).
pub fn depends_on(what: &str, val: &Dynamic) -> Result<Vec<String>, String> {
    v::string_list(what, val)
}

/// `host(name, #{ ..., depends_on })`: takes `depends_on` out of the
/// options (the host itself knows only addresses); the rest is the host's.
pub fn split_host_deps(opts: &Dynamic) -> Result<(Dynamic, Option<Vec<String>>), String> {
    let Some(map) = opts.read_lock::<Map>() else {
        return Ok((opts.clone(), None));
    };
    let mut rest = map.clone();
    drop(map);
    match rest.remove("depends_on") {
        None => Ok((opts.clone(), None)),
        Some(d) => {
            let deps = depends_on("host option depends_on", &d)?;
            Ok((Dynamic::from_map(rest), Some(deps)))
        }
    }
}

/// The per-check part of the settings as written, kept boxed in the
/// options until the script has run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NoiseOpts {
    pub depends_on: Vec<String>,
    pub flap: Option<FlapSetting>,
    pub renotify_every: Option<u64>,
    pub escalate: Option<Vec<Escalation>>,
}

/// Resolves every check's dependencies (its own and its host's) into
/// positions and checks for cycles; returns each check's [`AlertPolicy`]
/// (`None` when it sets nothing). An error names the `add()` line.
pub fn resolve(b: &Builder) -> Result<Vec<Option<Box<AlertPolicy>>>, (usize, String)> {
    let named: Vec<deps::Named> = b
        .checks
        .iter()
        .map(|p| deps::Named {
            id: &p.id,
            name: p.opts.name.as_deref().unwrap_or(&p.def.label),
            dest: p.opts.target_name.as_deref().unwrap_or(&p.def.dest),
        })
        .collect();
    let suggest = |w: &str, known: &[&str]| v::did_you_mean(w, known).map(str::to_string);
    let mut out = Vec::with_capacity(b.checks.len());
    for (i, p) in b.checks.iter().enumerate() {
        let own = p.opts.noise.as_deref();
        let dest = p.opts.target_name.as_deref().unwrap_or(&p.def.dest);
        let own_deps = own.map(|n| n.depends_on.as_slice()).unwrap_or_default();
        let mut depends_on: Vec<u32> = deps::resolve(&named, i, own_deps, suggest)
            .map_err(|e| (e.check, e.message))?
            .into_vec();
        if let Some(host_deps) = b.host_deps.get(dest) {
            // A host's dependency on one of its own checks (its router
            // ping, say) does not apply to that check.
            let from_host = deps::resolve(&named, i, host_deps, suggest)
                .map_err(|e| (e.check, format!("host {dest:?}: {}", e.message)))?;
            for d in from_host.iter().copied() {
                if d as usize != i && !depends_on.contains(&d) {
                    depends_on.push(d);
                }
            }
        }
        let depends_on = depends_on.into_boxed_slice();
        let noise = AlertPolicy {
            depends_on,
            flap: own.and_then(|n| n.flap),
            renotify_every: own.and_then(|n| n.renotify_every),
            escalate: own.and_then(|n| n.escalate.clone().map(Vec::into_boxed_slice)),
        };
        out.push((noise != AlertPolicy::default()).then(|| Box::new(noise)));
    }
    let graph: Vec<&[u32]> = out
        .iter()
        .map(|n| n.as_ref().map_or(&[][..], |n| &n.depends_on[..]))
        .collect();
    if let Some(cycle) = deps::find_cycle(&graph) {
        let names: Vec<String> = cycle
            .iter()
            .map(|&i| format!("{:?}", b.checks[i].id))
            .collect();
        return Err((
            cycle[0],
            format!(
                "depends_on makes a cycle: {}; a check cannot depend on itself, even through others",
                names.join(" -> ")
            ),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::alert::flap::FlapSetting;
    use crate::config::load_str;

    fn err(script: &str) -> String {
        load_str(Path::new("c.rhai"), script)
            .expect_err("a config error")
            .to_string()
    }

    #[test]
    fn an_unknown_dependency_names_the_line_and_a_suggestion() {
        let e = err(r#"add(shell("true"), #{ name: "router ping" });

add(shell("true"), #{ name: "web", depends_on: ["ruter ping"] });
"#);
        assert!(
            e.starts_with("c.rhai:3:1: depends_on: no check is named \"ruter ping\""),
            "{e}"
        );
        assert!(e.contains("did you mean \"router ping\"?"), "{e}");
        // A host's dependency names the host.
        let e = err(
            r#"let h = host("web1", #{ ipv4: "192.0.2.1", depends_on: ["nope"] });
add(tcp(h, 80));
"#,
        );
        assert!(
            e.starts_with("c.rhai:2:1: host \"web1\": depends_on: no check is named \"nope\""),
            "{e}"
        );
    }

    #[test]
    fn a_cycle_is_an_error_naming_it() {
        let e = err(r#"add(shell("a"), #{ name: "a", depends_on: ["c"] });
add(shell("b"), #{ name: "b", depends_on: ["a"] });
add(shell("c"), #{ name: "c", depends_on: ["b"] });
"#);
        assert!(
            e.starts_with("c.rhai:1:1: depends_on makes a cycle: \"a\" -> \"c\" -> \"b\" -> \"a\""),
            "{e}"
        );
        let e = err(r#"add(shell("a"), #{ name: "a", depends_on: ["a"] });"#);
        assert!(e.contains("\"a\" -> \"a\""), "{e}");
    }

    #[test]
    fn dependencies_resolve_and_a_host_gives_its_own_to_every_check_but_the_parent() {
        let c = load_str(
            Path::new("c.rhai"),
            r#"
let gw = host("gw", #{ ipv4: "192.0.2.1", depends_on: ["uplink"] });
add(shell("up"), #{ name: "uplink" });
add(ping4(gw), #{ name: "router ping", target_name: "gw" });
let web = host("web1", #{ ipv4: "192.0.2.10", depends_on: ["router ping"] });
add(tcp(web, 80));
add(tcp(web, 22), #{ depends_on: ["uplink"], flap: false, renotify_every: "1h" });
add(shell("plain"));
"#,
        )
        .unwrap();
        let deps = |i: usize| {
            c.checks[i]
                .noise
                .as_ref()
                .map(|n| n.depends_on.to_vec())
                .unwrap_or_default()
        };
        assert_eq!(deps(0), Vec::<u32>::new());
        assert_eq!(deps(1), [0], "router ping on gw depends on the uplink");
        assert_eq!(deps(2), [1]);
        assert_eq!(deps(3), [0, 1]);
        let n = c.checks[3].noise.as_deref().unwrap();
        assert_eq!(n.flap, Some(FlapSetting::Off));
        assert_eq!(n.renotify_every, Some(3600));
        // A check that sets nothing costs no allocation.
        assert!(c.checks[4].noise.is_none());
        assert!(c.checks[0].noise.is_none());
    }

    #[test]
    fn defaults_and_their_mistakes() {
        let c = load_str(
            Path::new("c.rhai"),
            r#"
config.default_flap = #{ low: 10, high: 15.5 };
config.default_renotify_every = "2h";
config.emails.escalate = [#{ after: "1h", to: ["boss@example.org"] }, #{ after: 300, to: "lead@example.org" }];
"#,
        )
        .unwrap();
        assert_eq!(
            c.noise.flap,
            FlapSetting::On {
                low: 10.0,
                high: 15.5
            }
        );
        assert_eq!(c.noise.renotify_every, 7200);
        let steps: Vec<(u64, Vec<String>)> = c
            .noise
            .escalate
            .iter()
            .map(|e| (e.after, e.to.clone()))
            .collect();
        assert_eq!(
            steps,
            [
                (300, vec!["lead@example.org".to_string()]),
                (3600, vec!["boss@example.org".to_string()])
            ]
        );
        for (script, want) in [
            (
                "config.default_flap = #{ low: 40 };",
                "low (40) must not be above high (30)",
            ),
            (
                "config.default_flap = #{ lo: 1 };",
                "unknown key `config.default_flap.lo`",
            ),
            (
                "config.default_renotify_every = \"soon\";",
                "is not a duration",
            ),
            (
                "config.emails.escalate = [#{ to: [\"a@b\"] }];",
                "config.emails.escalate[0] needs after",
            ),
            (
                "config.emails.escalate = [#{ after: \"1h\", to: [\"nobody\"] }];",
                "\"nobody\" is not a mail address",
            ),
            (
                "add(shell(\"x\"), #{ renotify_every: true });",
                "option renotify_every must be a duration",
            ),
        ] {
            let e = err(script);
            assert!(e.contains(want), "{script}: {e}");
        }
    }
}
