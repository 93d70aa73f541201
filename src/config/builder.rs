//! What a config script builds while it runs: key values, hosts, and the
//! checks added so far with their options as written.
//!
//! Options are kept unresolved (`None` = not given) and only filled in from
//! the `default_*` keys once the script has finished, so a default set after
//! an `add()` still applies to it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::model::{CheckDef, Host, When};

use super::keys::Keys;

/// The per-check options as written in `add(def, #{ ... })`. Every
/// check added is kept until the script ends: what few checks set is in
/// [`MoreOpts`], boxed (100,000 checks once kept 568 bytes each here).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckOpts {
    pub every: Option<u64>,
    /// `Some(-1)` = the same as `every`.
    pub error_every: Option<i64>,
    pub retry: Option<u32>,
    pub timeout: Option<f64>,
    pub name: Option<String>,
    pub target_name: Option<String>,
    pub passive_host: bool,
    /// Runs of the check that may overlap (default 1).
    pub max_instances: Option<u16>,
    /// `env`, `cwd`, `when`, `host_name`, `service_name`, `notify`,
    /// `contacts`: `None` when none of them is given.
    pub more: Option<Box<MoreOpts>>,
    /// `depends_on`, `flap`, `renotify_every`, `escalate`.
    pub noise: Option<Box<super::alert_policy::NoiseOpts>>,
}

/// The options of `add()` that few checks set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MoreOpts {
    pub env: Vec<(String, String)>,
    pub cwd: Option<String>,
    pub when: Option<When>,
    pub host_name: Option<String>,
    pub service_name: Option<String>,
    /// `notify: ["ops-chat"]`: the channels of `config.notify` this check
    /// goes to (`None`: every channel whose filters take it).
    pub notify: Option<Vec<String>>,
    /// `contacts: ["db team"]`: replaces the host's contacts (`None`:
    /// the host's).
    pub contacts: Option<Vec<String>>,
}

/// What a check without [`MoreOpts`] reads.
static NO_MORE: MoreOpts = MoreOpts {
    env: Vec::new(),
    cwd: None,
    when: None,
    host_name: None,
    service_name: None,
    notify: None,
    contacts: None,
};

impl CheckOpts {
    /// The rarely set options (all unset when none was given).
    pub fn more(&self) -> &MoreOpts {
        self.more.as_deref().unwrap_or(&NO_MORE)
    }

    /// The rarely set options, to set one.
    pub fn more_mut(&mut self) -> &mut MoreOpts {
        self.more.get_or_insert_with(Box::default)
    }
}

/// A check as `add()` recorded it.
#[derive(Clone, Debug)]
pub struct PendingCheck {
    pub def: CheckDef,
    pub opts: CheckOpts,
    /// The unique id: see [`super::checks::identities`]. While the script
    /// runs, a named check's is `NAME on TARGET`; once every check is
    /// known, a name no other check has becomes the identity alone.
    pub id: String,
    /// Line of the `add()` call.
    pub line: usize,
}

/// The state a script run accumulates.
#[derive(Debug)]
pub struct Builder {
    pub keys: Keys,
    pub hosts: Vec<Host>,
    pub checks: Vec<PendingCheck>,
    /// id -> index into `checks`, to reject a second check with one id
    /// (for named checks: a second one with its name on its target)
    /// while the script runs; emptied once the final identities are set.
    pub ids: HashMap<String, usize>,
    /// This machine's name: the default `dest` of local checks.
    pub hostname: String,
    /// `maintenance(...)` windows, in config order.
    pub maintenance: Vec<crate::alert::quiet::Maintenance>,
    /// `host(name, #{ depends_on })`: by host name.
    pub host_deps: HashMap<String, Vec<String>>,
    /// Line and column of the last `config.state_dir = ...` that ran.
    pub state_dir_at: Option<(usize, usize)>,
    /// `contact(...)`, in config order.
    pub contacts: Vec<crate::model::Contact>,
    /// `host(name, #{ contacts })`: by host name.
    pub host_contacts: HashMap<String, Vec<String>>,
    /// Line and column of the last assignment of each key that ran, by
    /// full name (`config.emails.smtp_host`): what `--check-config` points
    /// at when it finds a fault only the machine can tell (a file that is
    /// missing, a port in use).
    pub key_at: std::collections::BTreeMap<String, (usize, usize)>,
    /// One of each probe the checks use (see [`super::checks::ProbeSet`]).
    pub probes: super::checks::ProbeSet,
}

impl Builder {
    pub fn new(keys: Keys, hostname: String) -> Builder {
        Builder {
            keys,
            hosts: Vec::new(),
            checks: Vec::new(),
            ids: HashMap::new(),
            hostname,
            maintenance: Vec::new(),
            host_deps: HashMap::new(),
            state_dir_at: None,
            contacts: Vec::new(),
            host_contacts: HashMap::new(),
            key_at: Default::default(),
            probes: Default::default(),
        }
    }
}

/// The builder shared by every function registered for one script run.
#[derive(Clone, Debug)]
pub struct Shared(Arc<Mutex<Builder>>);

impl Shared {
    pub fn new(b: Builder) -> Shared {
        Shared(Arc::new(Mutex::new(b)))
    }

    /// Runs `f` with the builder locked. A poisoned lock (a panic in an
    /// earlier call) still yields the data: it is only ever replaced whole.
    pub fn with<R>(&self, f: impl FnOnce(&mut Builder) -> R) -> R {
        let mut guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }
}
