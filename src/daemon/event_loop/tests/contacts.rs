//! Contacts and their hours, driven by hand: the wall clock is the
//! manual clock's, and the hours are computed from its local time, so the
//! tests hold in any time zone.

use super::*;
use crate::notify::contacts::LocalMinute;

/// `HH:MM-HH:MM` from `from` to `to` minutes after the local minute of
/// the clock's start (wrapping past midnight as needed).
fn hours_from_start(from: u16, to: u16) -> String {
    let m0 = LocalMinute::at(T0).minute;
    let hm = |m: u16| {
        let m = (m0 + m) % 1440;
        format!("{:02}:{:02}", m / 60, m % 60)
    };
    format!("{}-{}", hm(from), hm(to))
}

/// db team's hours begin ten minutes after the start; web team is always
/// on; each check has its own contact.
fn two_teams() -> String {
    format!(
        r#"
config.base_tick = 60;
config.emails.to = ["ops@example.org"];
contact("db team", #{{ to: ["db@example.org"], hours: "{}" }});
contact("web team", #{{ to: ["web@example.org"] }});
add(shell("true"), #{{ name: "db", retry: 0, contacts: ["db team"] }});
add(shell("true"), #{{ name: "web", retry: 0, contacts: ["web team"] }});
"#,
        hours_from_start(10, 70)
    )
}

impl Rig {
    /// Runs the tick at `at` seconds with every check ending in `s`.
    fn all_at(&mut self, at: u64, s: Status) {
        self.at(at * SEC);
        for name in self.started() {
            self.end(&name, s);
        }
    }

    /// `kind name -> contacts (everyone?)` of each notice handed over
    /// since the last call.
    fn told(&self) -> Vec<String> {
        std::mem::take(&mut *self.notes.batches.lock().unwrap())
            .into_iter()
            .flatten()
            .map(|n| {
                format!(
                    "{}{} {} -> [{}]{}{}",
                    if n.delayed { "late " } else { "" },
                    n.transition.kind.as_str(),
                    n.name,
                    n.contacts.join(", "),
                    if n.to_everyone { " + everyone" } else { "" },
                    if n.missed.is_empty() {
                        String::new()
                    } else {
                        format!(" missed [{}]", n.missed.join(", "))
                    }
                )
            })
            .collect()
    }
}

#[test]
fn a_contact_outside_its_hours_gets_nothing_until_they_begin_then_one_mail() {
    let mut r = rig(&two_teams());
    r.all_at(0, Status::Ok);
    r.all_at(60, Status::Critical);
    assert_eq!(
        r.told(),
        [
            "problem db -> [] + everyone",
            "problem web -> [web team] + everyone"
        ]
    );
    // Still down, still outside db team's hours: nothing.
    for t in (120..600).step_by(60) {
        r.all_at(t, Status::Critical);
        assert!(r.told().is_empty(), "at {t} s");
    }
    let dump = r.d.dump();
    assert!(
        dump.contains("Problems waiting for contacts' hours (1):\n  db on "),
        "{dump}"
    );
    // The hours begin: one Problem, to db team alone.
    r.all_at(600, Status::Critical);
    assert_eq!(r.told(), ["late problem db -> [db team]"]);
    for t in (660..1200).step_by(60) {
        r.all_at(t, Status::Critical);
        assert!(r.told().is_empty(), "at {t} s");
    }
    // Told, db team hears of the end with everyone else.
    r.all_at(1200, Status::Ok);
    assert_eq!(
        r.told(),
        [
            "recovery db -> [db team] + everyone",
            "recovery web -> [web team] + everyone"
        ]
    );
}

#[test]
fn a_problem_that_recovers_before_the_hours_begin_is_never_mailed_to_the_contact() {
    let mut r = rig(&two_teams());
    r.all_at(0, Status::Ok);
    r.all_at(60, Status::Critical);
    r.told();
    r.all_at(300, Status::Ok);
    assert_eq!(
        r.told(),
        [
            "recovery db -> [] + everyone missed [db team]",
            "recovery web -> [web team] + everyone"
        ]
    );
    for t in (360..1200).step_by(60) {
        r.all_at(t, Status::Ok);
        assert!(r.told().is_empty(), "at {t} s");
    }
}

#[test]
fn a_waiting_problem_survives_a_restart_and_goes_out_once() {
    let mut r = rig(&two_teams());
    r.all_at(0, Status::Ok);
    r.all_at(60, Status::Critical);
    r.told();
    let saved = crate::state::load(r.dir.path()).unwrap();
    assert_eq!(saved.checks["db"].waiting, ["db team"]);
    // A restart: a new loop over the same config and state.
    let mut again = rig(&two_teams());
    again.d.restore(saved);
    again.all_at(0, Status::Critical);
    again.all_at(540, Status::Critical);
    assert!(again.told().is_empty());
    again.all_at(600, Status::Critical);
    assert_eq!(again.told(), ["late problem db -> [db team]"]);
    // What was sent is no longer waiting, on disk either.
    let saved = crate::state::load(again.dir.path()).unwrap();
    assert!(saved.checks["db"].waiting.is_empty());
    again.all_at(660, Status::Critical);
    assert!(again.told().is_empty());
}

#[test]
fn updates_and_reminders_skip_a_waiting_contact_and_escalation_reaches_on_call() {
    let script = format!(
        r#"
config.base_tick = 60;
contact("db team", #{{ to: ["db@example.org"], hours: "{}" }});
contact("on-call", #{{ to: ["oncall@example.org"] }});
add(shell("true"), #{{ name: "db", retry: 0, contacts: ["db team"], renotify_every: 120,
    escalate: [#{{ after: 180, to: ["on-call"] }}] }});
"#,
        hours_from_start(10, 70)
    );
    let mut r = rig(&script);
    r.all_at(0, Status::Ok);
    r.all_at(60, Status::Warning);
    assert_eq!(r.told(), ["problem db -> [] + everyone"]);
    r.all_at(120, Status::Critical);
    assert_eq!(r.told(), ["update db -> [] + everyone"]);
    let mut seen = Vec::new();
    for t in (180..=420).step_by(60) {
        r.all_at(t, Status::Critical);
        seen.extend(
            std::mem::take(&mut *r.notes.batches.lock().unwrap())
                .into_iter()
                .flatten(),
        );
    }
    let kinds: Vec<TransitionKind> = seen.iter().map(|n| n.transition.kind).collect();
    assert!(kinds.contains(&TransitionKind::Reminder), "{kinds:?}");
    let esc = seen
        .iter()
        .find(|n| n.transition.kind == TransitionKind::Escalation)
        .expect("an escalation");
    assert_eq!(esc.escalated_to, ["oncall@example.org"]);
    assert!(
        seen.iter().all(|n| n.contacts.is_empty() && n.to_everyone),
        "db team still waits: {seen:?}"
    );
}
