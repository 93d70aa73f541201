//! The one paragraph `--check-config` prints: what the config declares
//! (hosts, checks) and how mail would go out, so a user sees at a glance
//! that picomon read what they meant.

use std::time::Duration;

use crate::model::{escape_control, CheckKind};

use super::{Config, SmtpTls};

/// How many names a list shows before "and N more".
const SHOWN: usize = 8;

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s} s")
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `a, b, c and 4 more`.
fn some_names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let all: Vec<&str> = names.collect();
    let mut s = all
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if all.len() > SHOWN {
        s.push_str(&format!(" and {} more", all.len() - SHOWN));
    }
    s
}

/// The `--check-config` text: one paragraph naming the config, its hosts,
/// its checks (by kind, with a few titles), the tick, and the mail set-up.
/// Control characters in any name show as escapes: the paragraph stays one
/// line, whatever the config holds.
pub fn summary(c: &Config) -> String {
    escape_control(&paragraph(c)).into_owned()
}

fn paragraph(c: &Config) -> String {
    let mut out = format!("{}: config OK. ", c.path.display());

    if c.hosts.is_empty() {
        out.push_str("No hosts declared; ");
    } else {
        out.push_str(&format!(
            "{} ({}); ",
            plural(c.hosts.len(), "host", "hosts"),
            some_names(c.hosts.iter().map(|h| h.name.as_str()))
        ));
    }

    let (mut plugins, mut shells, mut probes) = (0, 0, 0);
    for ch in &c.checks {
        match ch.kind {
            CheckKind::Plugin { .. } => plugins += 1,
            CheckKind::Shell { .. } => shells += 1,
            CheckKind::Probe(_) | CheckKind::Heartbeat(_) => probes += 1,
        }
    }
    if c.checks.is_empty() {
        out.push_str("no checks (add some with add(...)); ");
    } else {
        let titles: Vec<String> = c.checks.iter().map(|ch| ch.title()).collect();
        out.push_str(&format!(
            "{} ({} plugin, {} shell, {} built-in: {}); ",
            plural(c.checks.len(), "check", "checks"),
            plugins,
            shells,
            probes,
            some_names(titles.iter().map(String::as_str))
        ));
    }
    out.push_str(&format!(
        "a tick every {}, {}, state in {}. ",
        secs(c.base_tick),
        plural(c.workers, "worker", "workers"),
        c.state_dir.display()
    ));

    if !c.outputs.is_empty() {
        let list: Vec<String> = c
            .outputs
            .iter()
            .map(|o| format!("{}({})", o.kind.label(), o.kind.target()))
            .collect();
        out.push_str(&format!("Results also go to {}. ", list.join(", ")));
    }
    if let Some(dir) = &c.result_dir {
        out.push_str(&format!(
            "Result files are picked up from {}. ",
            dir.display()
        ));
    }

    if let Some(addr) = c.listen {
        out.push_str(&format!("HTTP (/metrics, status page) on {addr}. "));
    }

    let e = &c.emails;
    let contacts_mailed = c
        .contacts
        .contacts
        .iter()
        .any(|k| k.addresses().next().is_some());
    if e.to.is_empty() && !contacts_mailed {
        out.push_str("Mail: off (config.emails.to is empty).");
    } else {
        let tls = match e.smtp_tls {
            SmtpTls::None => "no TLS",
            SmtpTls::Starttls => "STARTTLS",
            SmtpTls::Tls => "TLS",
        };
        let auth = if e.smtp_user.is_empty() {
            "no login".to_string()
        } else {
            format!("login as {}", e.smtp_user)
        };
        let reports = if e.report_every.is_zero() {
            "no reports".to_string()
        } else {
            format!("reports every {}", secs(e.report_every))
        };
        let reports = match e.availability {
            None => reports,
            Some(a) => format!(
                "{reports}, an availability mail every {}{}",
                crate::duration::format(a.every),
                a.at.map_or(String::new(), |at| format!(" ({at})"))
            ),
        };
        let to = if e.to.is_empty() {
            "the checks' contacts only".to_string()
        } else {
            e.to.join(", ")
        };
        out.push_str(&format!(
            "Mail to {to} from {} via {} ({tls}, {auth}), {reports}, a digest above {}.",
            e.addr_from,
            e.smtp_host.join(" then "),
            plural(e.digest_over, "transition", "transitions")
        ));
    }
    if !c.notify.is_empty() {
        let list: Vec<String> = c
            .notify
            .iter()
            .enumerate()
            .map(|(i, n)| {
                format!(
                    "{} = {}({})",
                    n.channel_name(i),
                    n.kind.label(),
                    n.kind.target()
                )
            })
            .collect();
        out.push_str(&format!(" Transitions also go to {}.", list.join(", ")));
    }
    out
}

/// `--check-config`'s table of who gets what, when the config declares
/// contacts (empty otherwise): `config.emails.to` and each contact, with
/// its hours, addresses, channels and checks.
pub fn contacts_table(c: &Config) -> String {
    if c.contacts.is_empty() {
        return String::new();
    }
    let mut rows: Vec<[String; 4]> = vec![[
        "who".into(),
        "hours".into(),
        "mail and channels".into(),
        "checks".into(),
    ]];
    rows.push([
        "config.emails.to".into(),
        "always".into(),
        if c.emails.to.is_empty() {
            "nobody".into()
        } else {
            c.emails.to.join(", ")
        },
        format!("all {}", plural(c.checks.len(), "check", "checks")),
    ]);
    for (i, k) in c.contacts.contacts.iter().enumerate() {
        let mut reach: Vec<String> = k.to.clone();
        reach.extend(k.cc.iter().map(|a| format!("cc {a}")));
        reach.extend(k.notify.iter().map(|n| format!("channel {n}")));
        if k.digest {
            reach.push("as digests".into());
        }
        let titles: Vec<String> = c
            .checks
            .iter()
            .filter(|ch| {
                c.contacts
                    .picks
                    .get(&*ch.id)
                    .is_some_and(|p| p.contains(&(i as u16)))
            })
            .map(|ch| ch.title())
            .collect();
        let escalated = c.checks.iter().any(|ch| {
            c.noise
                .escalate(ch.noise.as_deref())
                .iter()
                .any(|s| k.addresses().any(|a| s.to.contains(a)))
        });
        let mut checks = if titles.is_empty() {
            "none".to_string()
        } else {
            some_names(titles.iter().map(String::as_str))
        };
        if escalated {
            checks.push_str("; escalations");
        }
        rows.push([
            k.name.clone(),
            k.period
                .as_ref()
                .map_or_else(|| "always".into(), |p| p.text.clone()),
            reach.join(", "),
            checks,
        ]);
    }
    let width = |col: usize| {
        rows.iter()
            .map(|r| r[col].chars().count())
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2) = (width(0), width(1), width(2));
    let mut out = String::from("Who gets what:\n");
    for r in &rows {
        let line = format!("  {:w0$}  {:w1$}  {:w2$}  {}", r[0], r[1], r[2], r[3]);
        out.push_str(&escape_control(line.trim_end()));
        out.push('\n');
    }
    out.push_str(
        "  (outside its hours a contact's Problems wait and go out once when they begin)\n",
    );
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_summary_names_the_availability_mail() {
        let cfg = crate::config::load_str(
            std::path::Path::new("t.rhai"),
            r#"
config.emails.to = ["ops@example.org"];
config.emails.availability = #{ every: "7d", at: "Mon 08:00" };
"#,
        )
        .unwrap();
        let text = super::summary(&cfg);
        assert!(
            text.contains("no reports, an availability mail every 7d (monday 08:00)"),
            "{text}"
        );
    }
}
