//! Checks: what a config declares ([`CheckSpec`]), what a run yields
//! ([`Outcome`]), and how a run is carried out ([`plugin`] for Nagios
//! plugins, [`crate::run::probe`] for built-in probes).
//!
//! A failing check is data, not an error: every way a run can go wrong ends
//! as an [`Outcome`] with a status and a message.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::plugin_output::Perf;

/// A Nagios status. The numeric value is the plugin exit code.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Status {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

impl Status {
    /// The status a plugin exit code stands for; `None` outside 0..=3.
    pub fn from_code(code: i32) -> Option<Status> {
        match code {
            0 => Some(Status::Ok),
            1 => Some(Status::Warning),
            2 => Some(Status::Critical),
            3 => Some(Status::Unknown),
            _ => None,
        }
    }

    pub fn code(self) -> i32 {
        self as i32
    }

    /// The status [`Status::as_str`] spells `name` (`"CRITICAL"`); `None`
    /// for anything else. The one reader of status names: the outage log,
    /// channel payloads, timelines and scripts all come through here.
    pub fn from_name(name: &str) -> Option<Status> {
        [
            Status::Ok,
            Status::Warning,
            Status::Critical,
            Status::Unknown,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
            Status::Unknown => "UNKNOWN",
        }
    }

    /// The worse of two statuses, as `-1` computes its exit code: the
    /// numerically higher code (UNKNOWN counts as worst).
    pub fn worst(a: Status, b: Status) -> Status {
        if b.code() > a.code() {
            b
        } else {
            a
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of one run of a check.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub status: Status,
    /// First line of output up to the first `|`.
    pub summary: String,
    /// Further lines of output (without their perfdata parts).
    pub long_output: String,
    /// Performance data from the first line and from long output.
    pub perfdata: Vec<Perf>,
    /// How long the run took.
    pub duration: Duration,
    /// What the probe remembers after this run (trace: the route), handed
    /// back with the next run; `None` keeps what was remembered before.
    pub memory: Option<String>,
    /// Structured measurements for `json_lines` (ping's rtt and loss, a
    /// trace's hops, a script's `data`); boxed, and gone with the result.
    pub data: Option<Box<serde_json::Value>>,
}

impl Outcome {
    /// An outcome with just a status and a one-line message.
    pub fn new(status: Status, summary: impl Into<String>) -> Outcome {
        Outcome {
            status,
            summary: summary.into(),
            long_output: String::new(),
            perfdata: Vec::new(),
            duration: Duration::ZERO,
            memory: None,
            data: None,
        }
    }

    pub fn unknown(summary: impl Into<String>) -> Outcome {
        Outcome::new(Status::Unknown, summary)
    }

    pub fn with_duration(mut self, d: Duration) -> Outcome {
        self.duration = d;
        self
    }

    /// The full output as a plugin would have printed it: summary, perfdata,
    /// long output. Used in mail bodies and the state dump.
    pub fn full_text(&self) -> String {
        let mut s = self.summary.clone();
        if !self.perfdata.is_empty() {
            s.push_str(" |");
            for p in &self.perfdata {
                s.push(' ');
                s.push_str(&p.to_string());
            }
        }
        if !self.long_output.is_empty() {
            s.push('\n');
            s.push_str(&self.long_output);
        }
        s
    }
}

/// A host as declared by `host("web1", #{ ipv4: ..., ipv6: ... })`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
}

impl Host {
    /// The address to use for IPv4 probes: `ipv4`, else the name.
    pub fn addr4(&self) -> &str {
        self.ipv4.as_deref().unwrap_or(&self.name)
    }

    /// The address to use for IPv6 probes: `ipv6`, else the name.
    pub fn addr6(&self) -> &str {
        self.ipv6.as_deref().unwrap_or(&self.name)
    }
}

/// A built-in probe. Implementations live in [`crate::run::probe`].
pub trait Probe: Send + Sync + fmt::Debug {
    /// Run once, honouring `timeout` for every connect and read. Never panics
    /// on a network error: it becomes the outcome.
    fn run(&self, timeout: Duration) -> Outcome;

    /// Runs with what this check remembered after its last run (trace: the
    /// last route) and sets [`Outcome::memory`] to what to remember now. The
    /// loop owns that memory (and the state file keeps it): a probe holds no
    /// state between runs. Probes that remember nothing keep the default.
    fn run_remembering(&self, timeout: Duration, _memory: Option<&str>) -> Outcome {
        self.run(timeout)
    }
}

/// How a check is carried out.
#[derive(Clone, Debug)]
pub enum CheckKind {
    /// A program run as argv (boxed: every check carries the size of the
    /// largest kind).
    Plugin(Box<Argv>),
    /// `shell("...")`: the explicit way to ask for `/bin/sh -c`.
    Shell { command: Box<str> },
    /// A native probe.
    Probe(Arc<dyn Probe>),
    /// `heartbeat(...)`: runs nothing; the loop judges the pings it got
    /// ([`super::heartbeat::judge`]).
    Heartbeat(super::heartbeat::Heartbeat),
}

/// A plugin's program and arguments.
#[derive(Clone, Debug)]
pub struct Argv {
    /// The resolved path when the plugin was found at config time, else
    /// the name as given (the run then reports "cannot run ...").
    pub program: Box<Path>,
    pub args: Box<[String]>,
}

/// What a constructor (`plugin()`, `ping4()`, ...) returns to the config
/// script, before `add()` gives it options.
#[derive(Clone, Debug)]
pub struct CheckDef {
    pub kind: CheckKind,
    /// Identity without options: kind, target and arguments.
    pub identity: String,
    /// Short display name of the check, e.g. `check_disk` or `ping4`.
    pub label: String,
    /// What is checked, e.g. the host name; `{dest}` in subjects.
    pub dest: String,
}

/// A `when` window. Parsed by the config; evaluated by
/// [`crate::schedule`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct When {
    /// Allowed hours 0..=23; empty = all.
    pub hours: Vec<u8>,
    /// Allowed weekdays 0 = Monday .. 6 = Sunday; empty = all.
    pub weekdays: Vec<u8>,
    /// Allowed days of the month 1..=31; empty = all.
    pub days: Vec<u8>,
    /// Not before this Unix time (seconds, local time as given).
    pub start: Option<i64>,
    /// Allowed minutes 0..=59; empty = all.
    pub minutes: Vec<u8>,
    /// Allowed months 1..=12; empty = all.
    pub months: Vec<u8>,
    /// Not after this Unix time (seconds, local time as given).
    pub end: Option<i64>,
}

/// A check as the daemon runs it: a definition plus its options.
#[derive(Clone, Debug)]
pub struct CheckSpec {
    /// Unique identity: `name` when given, else the definition's identity.
    /// Shared, as `name` and `dest`: the status the loop publishes and
    /// the runs point at these strings rather than copy them.
    pub id: Arc<str>,
    /// Display name: `name` when given, else the definition's label;
    /// checks with the same name share one string.
    pub name: Arc<str>,
    /// `{dest}`: `target_name` when given, else the definition's dest;
    /// checks with the same target share one string.
    pub dest: Arc<str>,
    pub kind: CheckKind,
    /// Ticks between runs while OK (1 to 10^9).
    pub every: u32,
    /// Ticks between runs while failing (1 to 10^9).
    pub error_every: u32,
    /// Extra failed runs before a failure is announced.
    pub retry: u32,
    /// How long a run may take, in milliseconds (see [`CheckSpec::timeout`]).
    pub timeout_ms: u32,
    /// `env`, `cwd`, `host_name`, `service_name`, `when`; `None` when
    /// the check sets none of them: few checks do, and every check would
    /// carry their size.
    pub extras: Option<Box<Extras>>,
    /// `passive: "host"`: passive outputs report this check as a host
    /// result rather than a service result.
    pub passive_host: bool,
    /// How many runs of this check may go at once (`max_instances`, >= 1).
    pub max_instances: u16,
    /// The config file line that added the check (for messages).
    pub line: u32,
    /// Dependencies, flap thresholds, reminders, escalation; `None` when
    /// the check sets none of them.
    pub noise: Option<Box<crate::model::AlertPolicy>>,
}

/// The options of a check that few checks set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Extras {
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    /// The host name passive outputs report (default: `dest`).
    pub host_name: Option<String>,
    /// The service name passive outputs report (default: `name`).
    pub service_name: Option<String>,
    /// When the check may run.
    pub when: Option<When>,
}

impl Extras {
    /// `self` boxed, or `None` when it sets nothing.
    pub fn boxed(self) -> Option<Box<Extras>> {
        (self != Extras::default()).then(|| Box::new(self))
    }
}

impl CheckSpec {
    /// The spec with fresh copies of its strings, shared through
    /// `strings` as they were (a check whose identity is its name keeps
    /// one string). The daemon copies them when it takes the checks, once
    /// the config's evaluation is freed: made while the script ran, they
    /// sit among what the script freed, and a few strings keep each page
    /// of that heap resident; made now, they lie together with the specs.
    pub fn with_own_strings(mut self, strings: &mut Interner) -> CheckSpec {
        let same = Arc::ptr_eq(&self.id, &self.name);
        self.name = strings.get(&self.name);
        self.id = if same {
            Arc::clone(&self.name)
        } else {
            Arc::from(&*self.id)
        };
        self.dest = strings.get(&self.dest);
        self
    }

    /// How long a run may take.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.timeout_ms))
    }

    /// `timeout` as kept in a spec: whole milliseconds, rounded up (a run
    /// gets at least what was asked), at most 49 days.
    pub fn timeout_ms(timeout: Duration) -> u32 {
        u32::try_from(timeout.as_micros().div_ceil(1000)).unwrap_or(u32::MAX)
    }

    /// Environment variables the plugin runs with, besides picomon's.
    pub fn env(&self) -> &[(String, String)] {
        self.extras.as_deref().map_or(&[], |e| &e.env)
    }

    /// When the check may run (`None`: always).
    pub fn when(&self) -> Option<&When> {
        self.extras.as_deref().and_then(|e| e.when.as_ref())
    }

    /// The directory the plugin runs in (default `/`).
    pub fn cwd(&self) -> Option<&Path> {
        self.extras.as_deref().and_then(|e| e.cwd.as_deref())
    }

    /// The host name passive outputs report (default: `dest`).
    pub fn host_name(&self) -> Option<&str> {
        self.extras.as_deref().and_then(|e| e.host_name.as_deref())
    }

    /// The service name passive outputs report (default: `name`).
    pub fn service_name(&self) -> Option<&str> {
        self.extras
            .as_deref()
            .and_then(|e| e.service_name.as_deref())
    }

    /// `check on dest`, as printed by `-1`, the logs and `--check-config`;
    /// control characters are escaped (see [`escape_control`]).
    pub fn title(&self) -> String {
        escape_control(&format!("{} on {}", self.name, self.dest)).into_owned()
    }

    /// A fingerprint of everything that changes how the check runs; a reload
    /// keeps the state of checks whose id is unchanged.
    pub fn same_identity(&self, other: &CheckSpec) -> bool {
        self.id == other.id
    }
}

pub use picomon_common::escape_control;

/// Hands out one shared string per distinct text: 100,000 checks against
/// 100 hosts keep 100 target strings, not 100,000. Used while a config's
/// checks are built, then dropped (the strings live on in the checks).
#[derive(Debug, Default)]
pub struct Interner(std::collections::HashSet<Arc<str>>);

impl Interner {
    /// The shared copy of `text`, made on first sight.
    pub fn get(&mut self, text: &str) -> Arc<str> {
        if let Some(s) = self.0.get(text) {
            return Arc::clone(s);
        }
        let s: Arc<str> = Arc::from(text);
        self.0.insert(Arc::clone(&s));
        s
    }
}
