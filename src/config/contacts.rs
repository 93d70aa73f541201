//! `contact("db team", #{ to, cc, hours, weekdays, notify, digest })` and
//! the `contacts: [...]` option of checks and hosts.
//!
//! A contact is declared before the checks, hosts and `escalate` steps that
//! name it, so a misspelt name is an error at the very call that names it
//! (with "did you mean"). A check's `contacts` replaces its host's.
//! `hours` and `weekdays` read like `when`'s (see [`super::when`]).

use rhai::{Dynamic, Engine, Map, NativeCallContext};

use crate::model::{CheckSpec, Contact, ContactBook, Escalation, Period};

use super::builder::{Builder, Shared};
use super::options::{err, RhaiResult};
use super::value::{self as v, describe};

/// The keys of a contact's map.
pub const CONTACT_KEYS: &[&str] = &["to", "cc", "hours", "weekdays", "notify", "digest"];

/// Most contacts a config may declare (they are numbered in 16 bits).
pub const MAX_CONTACTS: usize = 10_000;

const USAGE: &str = "contact(\"db team\", #{ to: [\"db@example.org\"], hours: \"08:00-20:00\", weekdays: \"mon-fri\" })";

pub fn register(engine: &mut Engine, shared: &Shared) {
    let s = shared.clone();
    engine.register_fn(
        "contact",
        move |ctx: NativeCallContext,
              name: Dynamic,
              opts: Dynamic|
              -> RhaiResult<String> {
            let line = ctx.call_position().line().unwrap_or(0);
            let c = parse(&name, &opts, line).map_err(err)?;
            s.with(|b| {
                if let Some(old) = b.contacts.iter().find(|o| o.name == c.name) {
                    return Err(format!(
                        "contact {:?} is already declared at line {}; give each contact one contact() call",
                        c.name, old.line
                    ));
                }
                if b.contacts.len() >= MAX_CONTACTS {
                    return Err(format!(
                        "more than {MAX_CONTACTS} contacts; put people in a contact's to and cc instead"
                    ));
                }
                let name = c.name.clone();
                b.contacts.push(c);
                Ok(name)
            })
            .map_err(err)
        },
    );
}

/// A mail address as contacts and `escalate` take it: one line with an
/// `@` (the composer parses it fully and names it if it is still wrong).
fn address(what: &str, a: &str) -> Result<(), String> {
    if a.contains(['\r', '\n']) || !a.contains('@') {
        return Err(format!(
            "{what}: {a:?} is not a mail address (expected user@domain or \"Name <user@domain>\")"
        ));
    }
    super::keys::ascii_domain(what, a)
}

/// Reads one `contact(name, #{ ... })`.
fn parse(name: &Dynamic, opts: &Dynamic, line: usize) -> Result<Contact, String> {
    let name = v::non_empty("contact(name)", name)?;
    if name.contains(char::is_control) || name.contains('@') {
        return Err(format!(
            "contact name {name:?} must be one line without '@' (an '@' makes it read as a mail address); e.g. \"db team\""
        ));
    }
    let Some(map) = opts.read_lock::<Map>() else {
        return Err(format!(
            "contact({name:?}, ...) takes a map, not {}: {USAGE}",
            describe(opts)
        ));
    };
    let mut c = Contact {
        name: name.clone(),
        to: Vec::new(),
        cc: Vec::new(),
        period: None,
        notify: Vec::new(),
        digest: false,
        line,
    };
    let (mut hours, mut weekdays) = (None, None);
    for (key, val) in map.iter() {
        let what = format!("contact {name:?}: {key}");
        match key.as_str() {
            "to" | "cc" => {
                let list = v::string_list(&what, val)?;
                for a in &list {
                    address(&what, a)?;
                }
                if key == "to" {
                    c.to = list;
                } else {
                    c.cc = list;
                }
            }
            "hours" => {
                hours = Some((
                    super::when::day_minutes(&what, val)?,
                    val.to_string().trim().to_string(),
                ))
            }
            "weekdays" => {
                weekdays = Some((
                    super::when::weekdays(&what, val)?,
                    val.to_string().trim().to_string(),
                ))
            }
            "notify" => c.notify = v::string_list(&what, val)?,
            "digest" => {
                c.digest = val
                    .as_bool()
                    .map_err(|_| format!("{what} must be true or false, not {}", describe(val)))?
            }
            other => {
                return Err(v::unknown(
                    "key",
                    &format!("contact {name:?}: {other}"),
                    other,
                    "",
                    CONTACT_KEYS,
                ))
            }
        }
    }
    if c.to.is_empty() && c.cc.is_empty() && c.notify.is_empty() {
        return Err(format!(
            "contact {name:?} has nobody to tell: give it to (mail addresses) or notify (channels): {USAGE}"
        ));
    }
    if hours.is_some() || weekdays.is_some() {
        let text = [
            hours.as_ref().map(|h| &h.1),
            weekdays.as_ref().map(|w| &w.1),
        ]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
        let minutes = hours.map_or_else(|| (0..1440).collect(), |(m, _)| m);
        let p = Period::new(minutes, weekdays.map(|(w, _)| w).unwrap_or_default(), text);
        if p.is_never() {
            return Err(format!(
                "contact {name:?}: hours include no minute; it would never be told"
            ));
        }
        c.period = Some(p);
    }
    Ok(c)
}

/// The "no contact named ..." error, with a suggestion.
fn unknown_contact(b: &Builder, what: &str, name: &str) -> String {
    let known: Vec<&str> = b.contacts.iter().map(|c| c.name.as_str()).collect();
    let hint = match v::did_you_mean(name, &known) {
        Some(k) => format!("did you mean {k:?}? "),
        None => String::new(),
    };
    let declared = if known.is_empty() {
        "none is declared".to_string()
    } else {
        format!("declared: {}", v::quoted_list(&known))
    };
    format!(
        "{what}: no contact is named {name:?}; {hint}({declared}; declare a contact with contact(NAME, #{{ to: [...] }}) above the line that names it)"
    )
}

/// Every name of `names` is a contact declared so far.
pub fn check_names(b: &Builder, what: &str, names: &[String]) -> Result<(), String> {
    for n in names {
        if b.contacts.iter().all(|c| &c.name != n) {
            return Err(unknown_contact(b, what, n));
        }
    }
    Ok(())
}

/// Every `to` of the escalation steps is a mail address or a contact
/// declared so far.
pub fn check_escalate(b: &Builder, what: &str, steps: &[Escalation]) -> Result<(), String> {
    for (i, step) in steps.iter().enumerate() {
        for a in step.to.iter().filter(|a| !a.contains('@')) {
            if b.contacts.iter().all(|c| &c.name != a) {
                let what = format!("{what}[{i}].to");
                if b.contacts.is_empty() {
                    return Err(format!(
                        "{what}: {a:?} is not a mail address (expected user@domain) nor a contact declared above"
                    ));
                }
                return Err(unknown_contact(b, &what, a));
            }
        }
    }
    Ok(())
}

/// Escalation steps with the contacts they name replaced by their
/// addresses (`to`, then `cc`).
pub fn expand_escalate(contacts: &[Contact], steps: &[Escalation]) -> Vec<Escalation> {
    steps
        .iter()
        .map(|s| {
            let mut to: Vec<String> = Vec::new();
            for a in &s.to {
                let found = contacts.iter().find(|c| &c.name == a);
                let addrs: Vec<&String> = match found {
                    Some(c) => c.addresses().collect(),
                    None => vec![a],
                };
                for x in addrs {
                    if !to.contains(x) {
                        to.push(x.clone());
                    }
                }
            }
            Escalation { after: s.after, to }
        })
        .collect()
}

/// `host(name, #{ ..., contacts })`: takes `contacts` out of the options
/// (the host itself knows only addresses).
pub fn split_host(opts: &Dynamic) -> Result<(Dynamic, Option<Vec<String>>), String> {
    let Some(map) = opts.read_lock::<Map>() else {
        return Ok((opts.clone(), None));
    };
    let mut rest = map.clone();
    drop(map);
    match rest.remove("contacts") {
        None => Ok((opts.clone(), None)),
        Some(d) => {
            let names = v::string_list("host option contacts", &d)?;
            Ok((Dynamic::from_map(rest), Some(names)))
        }
    }
}

/// Remembers the contacts of host `host` (checked against those declared).
pub fn remember_host(
    b: &mut Builder,
    host: &str,
    names: Option<Vec<String>>,
) -> Result<(), String> {
    if let Some(names) = names {
        check_names(b, &format!("host {host:?}: contacts"), &names)?;
        b.host_contacts.insert(host.to_string(), names);
    }
    Ok(())
}

/// Every channel a contact's `notify` names is in `config.notify` (known
/// only once the script has run): an error at the `contact()` line.
pub fn check_channels(cfg: &super::Config) -> Result<(), super::ConfigError> {
    let names = super::channel_names(cfg);
    for c in &cfg.contacts.contacts {
        let Some(bad) = c.notify.iter().find(|n| !names.contains(n)) else {
            continue;
        };
        let known: Vec<&str> = names.iter().map(String::as_str).collect();
        let hint = v::did_you_mean(bad, &known)
            .map(|k| format!("did you mean {k:?}? "))
            .unwrap_or_default();
        return Err(super::ConfigError {
            file: cfg.path.clone(),
            line: c.line,
            col: 1,
            message: format!(
                "contact {:?}: notify names the channel {bad:?}, which config.notify does not have; {hint}(its channels: {}; name one with #{{ name: {bad:?} }})",
                c.name,
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            ),
        });
    }
    Ok(())
}

/// The contacts of the config and which checks pick them: a check's own
/// `contacts` when it names any (even none: `[]`), else its host's.
pub fn book(b: &Builder, checks: &[CheckSpec]) -> ContactBook {
    let position = |name: &String| {
        b.contacts
            .iter()
            .position(|c| &c.name == name)
            .map(|i| i as u16)
    };
    let mut picks = std::collections::BTreeMap::new();
    for (p, spec) in b.checks.iter().zip(checks) {
        let dest = p.opts.target_name.as_deref().unwrap_or(&p.def.dest);
        let names = p
            .opts
            .more()
            .contacts
            .as_ref()
            .or_else(|| b.host_contacts.get(dest));
        let Some(names) = names else { continue };
        let mut list: Vec<u16> = names.iter().filter_map(position).collect();
        list.dedup();
        if !list.is_empty() {
            picks.insert(spec.id.to_string(), list);
        }
    }
    ContactBook {
        contacts: b.contacts.clone(),
        picks,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::load_str;

    fn err(script: &str) -> String {
        load_str(Path::new("c.rhai"), script)
            .expect_err("a config error")
            .to_string()
    }

    #[test]
    fn checks_and_hosts_pick_contacts_and_a_check_s_own_replace_its_host_s() {
        let c = load_str(
            Path::new("c.rhai"),
            r#"
config.emails.to = ["ops@example.org"];
contact("db team", #{ to: ["db@example.org"], cc: "dba@example.org", hours: "08:00-20:00", weekdays: "mon-fri", digest: true });
let web = contact("web team", #{ to: "web@example.org" });
let h = host("db1", #{ ipv4: "192.0.2.1", contacts: ["db team"] });
add(tcp(h, 5432), #{ name: "db port" });
add(tcp(h, 22), #{ name: "db ssh", contacts: [web] });
add(tcp(h, 25), #{ name: "db smtp", contacts: [] });
add(shell("true"), #{ name: "plain" });
config.emails.escalate = [#{ after: "30m", to: ["web team", "boss@example.org"] }];
"#,
        )
        .unwrap();
        let names =
            |id: &str| -> Vec<String> { c.contacts.of(id).map(|x| x.name.clone()).collect() };
        assert_eq!(names("db port"), ["db team"]);
        assert_eq!(names("db ssh"), ["web team"]);
        assert!(names("db smtp").is_empty());
        assert!(names("plain").is_empty());
        let db = c.contacts.get("db team").unwrap();
        assert!(db.digest);
        assert_eq!(db.cc, ["dba@example.org"]);
        let p = db.period.as_ref().unwrap();
        assert_eq!(p.text, "08:00-20:00, mon-fri");
        assert!(p.contains(8 * 60, 0) && !p.contains(20 * 60, 0) && !p.contains(12 * 60, 6));
        assert!(c.contacts.get("web team").unwrap().period.is_none());
        // escalate names a contact: its addresses.
        assert_eq!(
            c.noise.escalate[0].to,
            ["web@example.org", "boss@example.org"]
        );
    }

    #[test]
    fn a_misspelt_contact_names_the_place_and_a_suggestion() {
        let e = err(r#"contact("db team", #{ to: "db@example.org" });
add(shell("true"),
    #{ contacts: ["db taem"] });
"#);
        assert!(
            e.starts_with(
                "c.rhai:2:1: contacts: no contact is named \"db taem\"; did you mean \"db team\"?"
            ),
            "{e}"
        );
        let e = err(r#"contact("on-call", #{ to: "oc@example.org" });
host("h", #{ ipv4: "192.0.2.1", contacts: "on-cal" });"#);
        assert!(e.starts_with("c.rhai:2:1: host \"h\": contacts: no contact is named \"on-cal\"; did you mean \"on-call\"?"), "{e}");
        let e = err(r#"contact("on-call", #{ to: "oc@example.org" });
config.emails.escalate = [#{ after: 60, to: ["oncall"] }];"#);
        assert!(e.starts_with("c.rhai:2:"), "{e}");
        assert!(
            e.contains("escalate[0].to: no contact is named \"oncall\"; did you mean \"on-call\"?"),
            "{e}"
        );
        let e = err(r#"contact("on-call", #{ to: "oc@example.org" });
add(shell("x"), #{ escalate: [#{ after: 60, to: "on-cal" }] });"#);
        assert!(e.starts_with("c.rhai:2:1: "), "{e}");
        assert!(e.contains("did you mean \"on-call\"?"), "{e}");
        // Declared below the check: named where it is used.
        let e = err(r#"add(shell("x"), #{ contacts: ["late"] });
contact("late", #{ to: "l@example.org" });"#);
        assert!(e.contains("none is declared"), "{e}");
    }

    #[test]
    fn a_contact_s_channel_must_exist_and_the_table_says_who_gets_what() {
        let e = err(
            r#"config.notify = [webhook("http://127.0.0.1:9/", #{ name: "chat-db" })];
contact("db team", #{ to: "db@example.org", notify: ["chat-bd"] });"#,
        );
        assert!(
            e.starts_with("c.rhai:2:1: contact \"db team\": notify names the channel \"chat-bd\""),
            "{e}"
        );
        assert!(e.contains("did you mean \"chat-db\"?"), "{e}");
        let c = load_str(
            Path::new("c.rhai"),
            r#"config.emails.to = ["ops@example.org"];
config.notify = [webhook("http://127.0.0.1:9/", #{ name: "chat-db" })];
contact("db team", #{ to: "db@example.org", notify: ["chat-db"], hours: "8-19", weekdays: "mon-fri" });
contact("on-call", #{ to: "oncall@example.org" });
add(shell("true"), #{ name: "db", contacts: ["db team"], escalate: [#{ after: 60, to: "on-call" }] });
add(shell("true"), #{ name: "web" });
"#,
        )
        .unwrap();
        let t = crate::config::contacts_table(&c);
        let lines: Vec<&str> = t.lines().map(str::trim_end).collect();
        assert_eq!(lines[0], "Who gets what:");
        assert!(
            lines[2].starts_with("  config.emails.to  always")
                && lines[2].ends_with("all 2 checks"),
            "{t}"
        );
        assert!(
            lines[3].contains("8-19, mon-fri")
                && lines[3].contains("db@example.org, channel chat-db")
                && lines[3].contains("  db on "),
            "{t}"
        );
        assert!(lines[4].ends_with("none; escalations"), "{t}");
    }

    #[test]
    fn contact_mistakes() {
        for (script, want) in [
            (
                r#"contact("a", #{ to: "nobody" });"#,
                "\"nobody\" is not a mail address",
            ),
            (r#"contact("a", #{ });"#, "has nobody to tell"),
            (
                r#"contact("a", #{ to: "a@x", hour: "8-9" });"#,
                "did you mean `hours`?",
            ),
            (
                r#"contact("a", #{ to: "a@x", hours: "8:00-9" });"#,
                "is not an hour or a range",
            ),
            (
                r#"contact("a", #{ to: "a@x", weekdays: "mon-fry" });"#,
                "is not a value or range",
            ),
            (
                r#"contact("a", #{ to: "a@x", digest: "yes" });"#,
                "digest must be true or false",
            ),
            (
                r#"contact("a", #{ to: "a@x" }); contact("a", #{ to: "b@x" });"#,
                "already declared at line 1",
            ),
            (r#"contact("a@x", #{ to: "a@x" });"#, "without '@'"),
        ] {
            let e = err(script);
            assert!(e.contains(want), "{script}: {e}");
        }
    }
}
