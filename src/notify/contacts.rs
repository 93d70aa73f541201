//! Who is told about a check, and when: the one place that decides it.
//! Pure: the contacts of the config, what the check's contacts are still
//! waiting for, and the local time in, a decision out.
//!
//! The rules, as the guide states them:
//!
//! - `config.emails.to` gets every mail of every check, at any hour (it is
//!   the list that sees everything, as before contacts existed; a check
//!   that names no contact is mailed to it alone).
//! - A check's contacts are its own `contacts: [...]` when it names any
//!   (even `[]`), else those of its host: a check's list replaces its
//!   host's, it does not add to it.
//! - Inside a contact's period (no `hours`/`weekdays`: always) it gets the
//!   check's mails at once. Outside, its Problem waits and is delivered,
//!   once, when the period opens, saying how long the outage has lasted;
//!   Updates, reminders and flapping notices are not sent to it meanwhile.
//!   A check that recovers while its Problem waits sends that contact
//!   nothing: the outage is a line in the contact's next report.
//! - A contact that was told about an outage is told of its end, whatever
//!   the hour.
//! - Escalation goes at once to the addresses (and contacts' addresses)
//!   `escalate` names, whatever their hours: that is how on-call works.

use crate::alert::TransitionKind;
use crate::model::{Contact, ContactBook};

/// A local moment as periods see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalMinute {
    /// Minutes since local midnight, `0..1440`.
    pub minute: u16,
    /// 0 = Monday .. 6 = Sunday.
    pub weekday: u8,
}

impl LocalMinute {
    /// The local minute of a wall-clock time (UTC's when the C library
    /// cannot convert it).
    pub fn at(wall: crate::clock::UnixMicros) -> LocalMinute {
        let unix = wall.div_euclid(1_000_000);
        let c = crate::clock::local_civil(unix).unwrap_or_else(|| crate::clock::utc_civil(unix));
        LocalMinute {
            minute: u16::from(c.hour) * 60 + u16::from(c.minute),
            weekday: c.weekday,
        }
    }
}

/// Every address a check's mail goes to: the `to` and `cc` of its
/// contacts and `config.emails.to` (`everyone`), each once, in that order.
/// Who may answer for the check.
pub fn addresses_of(book: &ContactBook, everyone: &[String], check_id: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in book
        .of(check_id)
        .flat_map(Contact::addresses)
        .chain(everyone)
    {
        if !out.contains(a) {
            out.push(a.clone());
        }
    }
    out
}

/// Whether `c` is told at once at `now`.
pub fn is_open(c: &Contact, now: LocalMinute) -> bool {
    c.period
        .as_ref()
        .is_none_or(|p| p.contains(now.minute, now.weekday))
}

/// What becomes of one notice for the check's contacts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Told {
    /// Contacts that get it now.
    pub now: Vec<String>,
    /// Contacts whose Problem waits from now on for their period to open.
    pub wait: Vec<String>,
    /// Contacts whose waiting Problem this end of the outage cancels: a
    /// line in their next report, no mail.
    pub missed: Vec<String>,
}

/// Who is told about a notice of `kind` for the check `check_id` at `now`;
/// `waiting` are the check's contacts whose Problem of the current outage
/// is still waiting. (`config.emails.to` is always told: see the module
/// rules.)
pub fn who(
    book: &ContactBook,
    check_id: &str,
    kind: TransitionKind,
    waiting: &[String],
    now: LocalMinute,
) -> Told {
    let mut told = Told::default();
    for c in book.of(check_id) {
        let open = is_open(c, now);
        let waits = waiting.contains(&c.name);
        let name = c.name.clone();
        match kind {
            TransitionKind::Problem if waits => {}
            TransitionKind::Problem if open => told.now.push(name),
            TransitionKind::Problem => told.wait.push(name),
            TransitionKind::Recovery | TransitionKind::FlappingStop if waits => {
                told.missed.push(name)
            }
            TransitionKind::Recovery | TransitionKind::FlappingStop => told.now.push(name),
            _ if open && !waits => told.now.push(name),
            _ => {}
        }
    }
    told
}

/// The waiting Problems of a check that may go out now: the contacts of
/// `waiting` whose period is open at `now`, and those that are no longer
/// the check's contacts (after a reload: dropped).
pub fn due(
    book: &ContactBook,
    check_id: &str,
    waiting: &[String],
    now: LocalMinute,
) -> (Vec<String>, Vec<String>) {
    let mut send = Vec::new();
    let mut gone = Vec::new();
    for name in waiting {
        match book.of(check_id).find(|c| &c.name == name) {
            Some(c) if is_open(c, now) => send.push(name.clone()),
            Some(_) => {}
            None => gone.push(name.clone()),
        }
    }
    (send, gone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Period;

    fn contact(name: &str, to: &str, period: Option<Period>) -> Contact {
        Contact {
            name: name.into(),
            to: vec![to.into()],
            cc: vec![format!("cc-{to}")],
            period,
            notify: Vec::new(),
            digest: false,
            line: 1,
        }
    }

    /// db (08:00-20:00, mon-fri), web (always), lead (always); "db check"
    /// picks db and lead, "web check" picks web.
    fn book() -> ContactBook {
        let office = Period::new(8 * 60..20 * 60, vec![0, 1, 2, 3, 4], "08:00-20:00".into());
        ContactBook {
            contacts: vec![
                contact("db", "db@example.org", Some(office)),
                contact("web", "web@example.org", None),
                contact("lead", "lead@example.org", None),
            ],
            picks: [
                ("db check".to_string(), vec![0, 2]),
                ("web check".to_string(), vec![1]),
            ]
            .into_iter()
            .collect(),
        }
    }

    const MON_NOON: LocalMinute = LocalMinute {
        minute: 12 * 60,
        weekday: 0,
    };
    const MON_NIGHT: LocalMinute = LocalMinute {
        minute: 3 * 60,
        weekday: 0,
    };
    const SAT_NOON: LocalMinute = LocalMinute {
        minute: 12 * 60,
        weekday: 5,
    };

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn addresses_are_the_contacts_and_everyone_each_once() {
        let b = book();
        let all = names(&["ops@example.org", "lead@example.org"]);
        assert_eq!(
            addresses_of(&b, &all, "db check"),
            names(&[
                "db@example.org",
                "cc-db@example.org",
                "lead@example.org",
                "cc-lead@example.org",
                "ops@example.org"
            ])
        );
        assert_eq!(
            addresses_of(&b, &all, "other"),
            all,
            "a check naming no contact goes to config.emails.to"
        );
    }

    #[test]
    fn inside_the_period_a_problem_goes_out_outside_it_waits() {
        let b = book();
        let t = who(&b, "db check", TransitionKind::Problem, &[], MON_NOON);
        assert_eq!(t.now, names(&["db", "lead"]));
        assert!(t.wait.is_empty());
        for at in [MON_NIGHT, SAT_NOON] {
            let t = who(&b, "db check", TransitionKind::Problem, &[], at);
            assert_eq!(t.now, names(&["lead"]), "the always-on contact is told");
            assert_eq!(t.wait, names(&["db"]));
        }
        let t = who(&b, "web check", TransitionKind::Problem, &[], MON_NIGHT);
        assert_eq!(t.now, names(&["web"]));
    }

    #[test]
    fn a_waiting_contact_gets_no_updates_and_a_recovery_cancels_its_problem() {
        let b = book();
        let waiting = names(&["db"]);
        for kind in [TransitionKind::Update, TransitionKind::Reminder] {
            let t = who(&b, "db check", kind, &waiting, MON_NOON);
            assert_eq!(t.now, names(&["lead"]), "{kind:?}");
        }
        let t = who(
            &b,
            "db check",
            TransitionKind::Recovery,
            &waiting,
            MON_NIGHT,
        );
        assert_eq!(t.now, names(&["lead"]));
        assert_eq!(t.missed, names(&["db"]));
    }

    #[test]
    fn a_told_contact_hears_of_the_end_at_night_but_no_updates() {
        let b = book();
        let t = who(&b, "db check", TransitionKind::Recovery, &[], MON_NIGHT);
        assert_eq!(t.now, names(&["db", "lead"]));
        let t = who(&b, "db check", TransitionKind::Update, &[], MON_NIGHT);
        assert_eq!(t.now, names(&["lead"]));
    }

    #[test]
    fn waiting_problems_are_due_when_the_period_opens() {
        let b = book();
        let waiting = names(&["db", "removed"]);
        let (send, gone) = due(&b, "db check", &waiting, MON_NIGHT);
        assert!(send.is_empty());
        assert_eq!(gone, names(&["removed"]));
        let (send, _) = due(&b, "db check", &waiting, MON_NOON);
        assert_eq!(send, names(&["db"]));
    }

    #[test]
    fn the_local_minute_of_a_moment() {
        // Whatever the zone: minutes and weekday are in range and match
        // the C library's view.
        let m = LocalMinute::at(1_700_000_000_000_000);
        let c = crate::clock::local_civil(1_700_000_000).unwrap();
        assert_eq!(m.minute, u16::from(c.hour) * 60 + u16::from(c.minute));
        assert_eq!(m.weekday, c.weekday);
    }
}
