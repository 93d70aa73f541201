//! Contacts: who a check's mail goes to besides `config.emails.to`, and
//! when they want it. Declared with `contact(NAME, #{ ... })`, picked by
//! checks and hosts with `contacts: [...]`. The decisions that use them are
//! in `notify::contacts`.

use std::collections::BTreeMap;

/// Minutes in a day.
pub const DAY_MINUTES: usize = 24 * 60;

/// A contact's notification period: the minutes of the day and the
/// weekdays (local time) in which it is told at once. Outside it, its
/// Problems wait until it opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Period {
    /// One bit per minute of the day (bit `m` = minute `m` after local
    /// midnight); all set when `hours` was not given.
    minutes: [u64; DAY_MINUTES.div_ceil(64)],
    /// 0 = Monday .. 6 = Sunday; empty = every day.
    pub weekdays: Vec<u8>,
    /// How the config wrote it, for `--check-config` and mails
    /// ("08:00-20:00, mon-fri").
    pub text: String,
}

impl Period {
    /// A period of the given minutes of the day (`0..1440`; others are
    /// ignored) on the given weekdays (empty: every day).
    pub fn new(minutes: impl IntoIterator<Item = u16>, weekdays: Vec<u8>, text: String) -> Period {
        let mut bits = [0u64; DAY_MINUTES.div_ceil(64)];
        for m in minutes {
            let m = usize::from(m);
            if m < DAY_MINUTES {
                bits[m / 64] |= 1 << (m % 64);
            }
        }
        Period {
            minutes: bits,
            weekdays,
            text,
        }
    }

    /// Whether the period includes minute `minute_of_day` (local) of
    /// weekday `weekday` (0 = Monday).
    pub fn contains(&self, minute_of_day: u16, weekday: u8) -> bool {
        let m = usize::from(minute_of_day);
        m < DAY_MINUTES
            && self.minutes[m / 64] & (1 << (m % 64)) != 0
            && (self.weekdays.is_empty() || self.weekdays.contains(&weekday))
    }

    /// Whether it includes no minute at all (it would never open).
    pub fn is_never(&self) -> bool {
        self.minutes.iter().all(|w| *w == 0)
    }
}

/// One `contact(NAME, #{ to, cc, hours, weekdays, notify, digest })`.
#[derive(Clone, Debug, PartialEq)]
pub struct Contact {
    pub name: String,
    /// Mail addresses, `To:`.
    pub to: Vec<String>,
    /// Mail addresses, `Cc:`.
    pub cc: Vec<String>,
    /// `None`: always told at once.
    pub period: Option<Period>,
    /// Channels of `config.notify` that are this contact's: they get the
    /// notices of its checks, at its hours.
    pub notify: Vec<String>,
    /// `digest: true`: several notices of one tick are one mail to it.
    pub digest: bool,
    /// The config line of the `contact()` call.
    pub line: usize,
}

impl Contact {
    /// Every address it is mailed at: `to`, then `cc`.
    pub fn addresses(&self) -> impl Iterator<Item = &String> {
        self.to.iter().chain(&self.cc)
    }
}

/// The contacts of a config and which checks pick them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContactBook {
    /// In the order they were declared.
    pub contacts: Vec<Contact>,
    /// Check identity -> positions in `contacts`, for the checks that have
    /// contacts (their own `contacts`, else their host's). A check not
    /// listed has none: its mail goes to `config.emails.to` only.
    pub picks: BTreeMap<String, Vec<u16>>,
}

impl ContactBook {
    /// The contact named `name`.
    pub fn get(&self, name: &str) -> Option<&Contact> {
        self.contacts.iter().find(|c| c.name == name)
    }

    /// The contacts of the check `check_id`, in the order it named them.
    pub fn of<'a>(&'a self, check_id: &str) -> impl Iterator<Item = &'a Contact> + 'a {
        self.picks
            .get(check_id)
            .into_iter()
            .flatten()
            .filter_map(|&i| self.contacts.get(usize::from(i)))
    }

    pub fn is_empty(&self) -> bool {
        self.contacts.is_empty()
    }
}
