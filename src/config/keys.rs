//! The `config.*` keys: their defaults, their validation, and the objects
//! the script sees as `config`, `config.emails` and `config.emails.report`.
//!
//! Each key is declared once, in a [`keys!`] table: its type, default,
//! validation and one-line doc. The struct, the defaults, the known-key list
//! for "did you mean", the script's setter and getter and the list the
//! README is checked against ([`key_docs`]) all come from that table.
//!
//! The script objects hold no values themselves: they are handles to the
//! shared [`Builder`](super::builder::Builder), so `config.emails.to = ...`
//! changes the one place the result is read from. Property access falls back
//! to Rhai indexers, which is where an unknown key is caught with a message
//! that names it and lists the known ones (picomon's typo protection).

use rhai::{Dynamic, Engine, EvalAltResult, FuncRegistration, ImmutableString, INT};

use crate::notify::channel::spec::ChannelSpec;
use crate::notify::mail::settings::AvailabilityMail;
use crate::passive::OutputSpec;
use crate::run::probe::range::fmt_num;
use crate::schedule::{DayTime, WEEKDAY_NAMES};

use super::builder::Shared;
use super::value::{self as v, to_array, to_float};

/// Accepted `verb_level` values (as in picomon's Python config, any case).
pub const VERB_LEVELS: &[&str] = &["debug", "info", "warning", "error"];

/// Accepted `smtp_tls` values.
pub const SMTP_TLS: &[&str] = &["none", "starttls", "tls"];

/// Accepted `emails.subject_style` values.
pub const SUBJECT_STYLES: &[&str] = &["thread", "state"];

/// Keys of picomon's Python configs that picomon refuses on purpose, with
/// what it does instead: accepting them silently would promise a
/// behaviour that does not exist.
const RETIRED: &[(&str, &str)] = &[(
    "config.emails.smtp_keepalive_timeout",
    "is not supported: picomon keeps no idle SMTP connection. Its delivery thread \
     connects for each mail in the outbox and closes the connection after it; a busy \
     tick is already one digest mail (config.emails.digest_over). Remove this line",
)];

/// The message for a key that is unknown, or retired (see [`RETIRED`]).
fn unknown_key(what: &str, key: &str, prefix: &str, known: &[&str]) -> String {
    match RETIRED.iter().find(|(name, _)| *name == what) {
        Some((name, why)) => format!("{name} {why}"),
        None => v::unknown("key", what, key, prefix, known),
    }
}

/// One declared key, as the README documents it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyDoc {
    /// The full name, e.g. `config.emails.report.every`.
    pub name: String,
    /// The default as the README writes it (`60`, `"none"`, `[]`); `None`
    /// for a group of keys such as `config.emails`.
    pub default: Option<String>,
    /// The key's one-line doc.
    pub doc: String,
}

/// What a key's value can be: how the script reads it back and how the
/// README writes its default.
trait KeyValue {
    /// The value as the script reads it; `None` for a group, whose handle
    /// the indexer hands out instead.
    fn to_dynamic(&self) -> Option<Dynamic>;
    /// The default as the README writes it; `None` for a group.
    fn readme(&self) -> Option<String>;
    /// The keys below a group (nothing for a plain value).
    fn below(&self, _out: &mut Vec<KeyDoc>) {}
}

impl KeyValue for f64 {
    fn to_dynamic(&self) -> Option<Dynamic> {
        Some(to_float(*self))
    }
    fn readme(&self) -> Option<String> {
        Some(fmt_num(*self))
    }
}

impl KeyValue for INT {
    fn to_dynamic(&self) -> Option<Dynamic> {
        Some((*self).into())
    }
    fn readme(&self) -> Option<String> {
        Some(self.to_string())
    }
}

impl KeyValue for String {
    fn to_dynamic(&self) -> Option<Dynamic> {
        Some(self.clone().into())
    }
    fn readme(&self) -> Option<String> {
        Some(format!("{self:?}"))
    }
}

impl KeyValue for Vec<String> {
    fn to_dynamic(&self) -> Option<Dynamic> {
        Some(to_array(self))
    }
    /// A list of one reads as that string, as a config may write it.
    fn readme(&self) -> Option<String> {
        Some(match self.as_slice() {
            [one] => format!("{one:?}"),
            all => format!(
                "[{}]",
                all.iter()
                    .map(|s| format!("{s:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
    }
}

impl KeyValue for Vec<OutputSpec> {
    fn to_dynamic(&self) -> Option<Dynamic> {
        Some(Dynamic::from_array(
            self.iter().cloned().map(Dynamic::from).collect(),
        ))
    }
    fn readme(&self) -> Option<String> {
        // Outputs have no literal form; the default is none.
        Some(if self.is_empty() { "[]" } else { "[...]" }.into())
    }
}

impl KeyValue for Vec<ChannelSpec> {
    fn to_dynamic(&self) -> Option<Dynamic> {
        Some(Dynamic::from_array(
            self.iter().cloned().map(Dynamic::from).collect(),
        ))
    }
    fn readme(&self) -> Option<String> {
        // Channels have no literal form; the default is none.
        Some(if self.is_empty() { "[]" } else { "[...]" }.into())
    }
}

/// `config.default_flap`: `#{ low, high }` in percent, or `false`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FlapKey(pub crate::alert::flap::FlapSetting);

impl KeyValue for FlapKey {
    fn to_dynamic(&self) -> Option<Dynamic> {
        Some(match self.0 {
            crate::alert::flap::FlapSetting::Off => false.into(),
            crate::alert::flap::FlapSetting::On { low, high } => {
                let mut m = rhai::Map::new();
                m.insert("low".into(), to_float(f64::from(low)));
                m.insert("high".into(), to_float(f64::from(high)));
                Dynamic::from_map(m)
            }
        })
    }
    fn readme(&self) -> Option<String> {
        Some(match self.0 {
            crate::alert::flap::FlapSetting::Off => "false".into(),
            crate::alert::flap::FlapSetting::On { low, high } => format!(
                "#{{ low: {}, high: {} }}",
                fmt_num(f64::from(low)),
                fmt_num(f64::from(high))
            ),
        })
    }
}

/// `config.emails.escalate`: steps of `#{ after, to }`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EscalateKey(pub Vec<crate::alert::remind::Escalation>);

impl KeyValue for EscalateKey {
    fn to_dynamic(&self) -> Option<Dynamic> {
        Some(Dynamic::from_array(
            self.0
                .iter()
                .map(|e| {
                    let mut m = rhai::Map::new();
                    m.insert("after".into(), (e.after as INT).into());
                    m.insert("to".into(), to_array(&e.to));
                    Dynamic::from_map(m)
                })
                .collect(),
        ))
    }
    fn readme(&self) -> Option<String> {
        Some(if self.0.is_empty() { "[]" } else { "[...]" }.into())
    }
}

/// `config.emails.availability`: `#{ every, at }`, or `#{}` for none.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AvailabilityKey(pub Option<AvailabilityMail>);

impl KeyValue for AvailabilityKey {
    fn to_dynamic(&self) -> Option<Dynamic> {
        let mut m = rhai::Map::new();
        if let Some(a) = self.0 {
            m.insert("every".into(), (a.every as INT).into());
            if let Some(at) = a.at {
                m.insert("at".into(), at.to_string().into());
            }
        }
        Some(Dynamic::from_map(m))
    }
    fn readme(&self) -> Option<String> {
        Some(match self.0 {
            None => "#{}".into(),
            Some(_) => "#{ ... }".into(),
        })
    }
}

/// `config.emails.availability`: `every` a duration (any, so a test can
/// use seconds), `at` an optional local `"[WEEKDAY ]HH:MM"`.
fn availability(what: &str, val: &Dynamic) -> Result<Option<AvailabilityMail>, String> {
    const USAGE: &str =
        "#{ every: \"7d\", at: \"monday 08:00\" } (at is optional), or #{} for none";
    let Some(map) = val.read_lock::<rhai::Map>() else {
        return Err(format!(
            "{what} must be a map like {USAGE}, not {}",
            v::describe(val)
        ));
    };
    if map.is_empty() {
        return Ok(None);
    }
    let mut every = None;
    let mut at = None;
    for (key, x) in map.iter() {
        let name = format!("{what}.{key}");
        match key.as_str() {
            "every" => every = Some(v::seconds(&name, x, 0.0, true)?.ceil() as u64),
            "at" => at = Some(day_time(&name, x)?),
            other => {
                return Err(v::unknown(
                    "key",
                    &name,
                    other,
                    &format!("{what}."),
                    &["every", "at"],
                ))
            }
        }
    }
    let every = every.ok_or_else(|| format!("{what} needs every: write {USAGE}"))?;
    Ok(Some(AvailabilityMail { every, at }))
}

/// `"monday 08:00"`, `"mon 8:00"`, `"08:00"` (every day).
fn day_time(what: &str, val: &Dynamic) -> Result<DayTime, String> {
    let bad = || {
        format!(
            "{what} must be a local time like \"08:00\" or a weekday and a time like \"monday 08:00\", not {val}"
        )
    };
    if !val.is_string() {
        return Err(bad());
    }
    let text = val.to_string().to_ascii_lowercase();
    let mut words = text.split_whitespace().rev();
    let time = words.next().ok_or_else(bad)?;
    let weekday = match words.next() {
        None => None,
        Some(w) => Some(
            (0..7u8)
                .find(|&i| {
                    let full = WEEKDAY_NAMES[i as usize];
                    w == full || w == &full[..3]
                })
                .ok_or_else(bad)?,
        ),
    };
    if words.next().is_some() {
        return Err(bad());
    }
    let (h, m) = time.split_once(':').ok_or_else(bad)?;
    let (hour, minute): (u8, u8) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if hour > 23 || minute > 59 || m.len() != 2 {
        return Err(bad());
    }
    Ok(DayTime {
        weekday,
        hour,
        minute,
    })
}

/// Declares a struct of keys: each key once, as
/// `/// doc` `name: Type = default, validate;` where `validate` turns the
/// script's value into the key's (given the setting's full name, the value
/// and the current one, which only a group uses).
macro_rules! keys {
    (
        $(#[doc = $sdoc:literal])*
        struct $Struct:ident, $prefix:literal, known $KNOWN:ident,
        defaults($($arg:ident: $argty:ty),*) {
            $(
                $(#[doc = $doc:literal])+
                $key:ident: $ty:ty = $default:expr, $check:expr;
            )+
        }
    ) => {
        $(#[doc = $sdoc])*
        #[derive(Clone, Debug, PartialEq)]
        pub struct $Struct {
            $( $(#[doc = $doc])+ pub $key: $ty, )+
        }

        #[doc = concat!("The keys of `", $prefix, "`, in the order the docs list them.")]
        pub const $KNOWN: &[&str] = &[$(stringify!($key)),+];

        impl $Struct {
            /// Every key at its default.
            #[allow(unused_variables)]
            pub fn defaults($($arg: $argty),*) -> $Struct {
                $Struct { $($key: $default,)+ }
            }

            #[doc = concat!("Sets `", $prefix, "<key>`.")]
            fn set(&mut self, key: &str, val: &Dynamic) -> Result<(), String> {
                let what = format!("{}{key}", $prefix);
                match key {
                    $(stringify!($key) => {
                        let check: fn(&str, &Dynamic, &$ty) -> Result<$ty, String> = $check;
                        self.$key = check(&what, val, &self.$key)?;
                    })+
                    _ => return Err(unknown_key(&what, key, $prefix, $KNOWN)),
                }
                Ok(())
            }

            #[doc = concat!("Reads `", $prefix, "<key>`; `None` for a group.")]
            fn get(&self, key: &str) -> Result<Option<Dynamic>, String> {
                match key {
                    $(stringify!($key) => Ok(KeyValue::to_dynamic(&self.$key)),)+
                    _ => Err(unknown_key(&format!("{}{key}", $prefix), key, $prefix, $KNOWN)),
                }
            }
        }

        impl KeyValue for $Struct {
            fn to_dynamic(&self) -> Option<Dynamic> {
                None
            }
            fn readme(&self) -> Option<String> {
                None
            }
            fn below(&self, out: &mut Vec<KeyDoc>) {
                $(
                    out.push(KeyDoc {
                        name: format!("{}{}", $prefix, stringify!($key)),
                        default: self.$key.readme(),
                        doc: concat!($($doc),+).trim().to_string(),
                    });
                    self.$key.below(out);
                )+
            }
        }
    };
}

keys! {
    /// The values of every `config.*` key, with picomon's defaults.
    struct Keys, "config.", known CONFIG_KEYS, defaults(stem: &str, hostname: &str) {
        /// Seconds between ticks (a float, at least 0.05).
        base_tick: f64 = 60.0, |what, val, _| v::seconds(what, val, 0.05, false);
        /// Ticks between runs of a check while OK.
        default_every: INT = 1, |what, val, _| v::whole(what, val, 1, 1_000_000_000, "ticks");
        /// Ticks between runs while failing; -1 = the same as `every`.
        default_error_every: INT = -1, |what, val, _| v::ticks_or_minus_one(what, val);
        /// Extra failed runs before a failure is announced.
        default_retry: INT = 1, |what, val, _| v::whole(what, val, 0, 1_000_000, "runs");
        /// Seconds a run may take.
        default_timeout: f64 = 10.0, |what, val, _| v::seconds(what, val, 0.0, true);
        /// Threads that run checks.
        workers: INT = 16, |what, val, _| v::whole(what, val, 1, 1024, "threads");
        /// Bytes of each of stdout and stderr kept per run.
        max_output: INT = 65536, |what, val, _| v::whole(what, val, 1, 1 << 30, "bytes");
        /// State, outbox, spool and heartbeat: one per config file.
        state_dir: String = format!("/var/lib/picomon/{stem}"), |what, val, _| v::non_empty(what, val);
        /// Days the outage log in `state_dir/history` keeps (at least 31: availability looks back 30 days).
        history_days: INT = 400, |what, val, _| v::whole(what, val, 31, 100_000, "days");
        /// Mebibytes the outage log may take; past it the oldest months are dropped first.
        history_max_mb: INT = 64, |what, val, _| v::whole(what, val, 1, 1 << 20, "MiB");
        /// Where a bare plugin name is looked up, before PATH.
        plugin_dirs: Vec<String> = crate::run::plugin::default_plugin_dirs()
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
            |what, val, _| v::string_list(what, val);
        /// The log level when neither `-D` nor RUST_LOG says otherwise.
        verb_level: String = "info".into(), |what, val, _| v::choice(what, val, VERB_LEVELS);
        /// Where every result goes besides the alerts: json_lines, nsca_web, command_file, icinga2_api, redis, elasticsearch.
        outputs: Vec<OutputSpec> = Vec::new(), |what, val, _| outputs(what, val);
        /// Channels that get the transitions besides mail (webhook, command, alertmanager).
        notify: Vec<ChannelSpec> = Vec::new(), |what, val, _| channels(what, val);
        /// A folder of result files to forward; "" = off.
        result_dir: String = String::new(), |what, val, _| absolute_or_empty(what, val);
        /// A group whose members may use the control socket; "" = root and picomon's user only.
        control_group: String = String::new(), |what, val, _| v::string(what, val);
        /// Address of the read-only HTTP listener (metrics, checks JSON, status page); "" = off.
        listen: String = String::new(), |what, val, _| listen_address(what, val);
        /// URLs picomon GETs every `heartbeat_every` seconds while healthy (a dead man's switch); [] = none.
        heartbeat: Vec<String> = Vec::new(), |what, val, _| heartbeat_urls(what, val);
        /// Seconds between heartbeat GETs.
        heartbeat_every: f64 = 60.0, |what, val, _| v::seconds(what, val, 1.0, false);
        /// A check (usually a `peer()`) whose OK keeps this picomon quiet; "" = not a standby.
        standby_for: String = String::new(), |what, val, _| v::string(what, val);
        /// A file whose first line is the secret of `/ping/KEY/CHECK` on the listener; "" = no pings over HTTP.
        ping_key_file: String = String::new(), |what, val, _| absolute_or_empty(what, val);
        /// Flap detection thresholds (percent state change) of every check; false = off.
        default_flap: FlapKey = FlapKey::default(),
            |what, val, _| super::alert_policy::flap(what, val).map(FlapKey);
        /// Reminder interval of a check that stays in PROBLEM ("1h"); "" = none.
        default_renotify_every: String = String::new(),
            |what, val, _| super::alert_policy::renotify(what, val).map(|s| if s == 0 { String::new() } else { format!("{s}s") });
        /// The mail settings.
        emails: EmailKeys = EmailKeys::defaults(hostname),
            |what, val, cur| group_assignment(what, val, is_emails_handle).map(|()| cur.clone());
    }
}

keys! {
    /// `config.emails.*`.
    struct EmailKeys, "config.emails.", known EMAIL_KEYS, defaults(hostname: &str) {
        /// Recipients; empty = transitions are only logged.
        to: Vec<String> = Vec::new(), |what, val, _| addresses(what, val);
        /// `From:` and envelope sender.
        addr_from: String = format!("picomon <picomon@{hostname}>"), |what, val, _| address(what, val);
        /// SMTP servers tried in order, each `host[:port]`.
        smtp_host: Vec<String> = vec!["localhost:25".into()], |what, val, _| servers(what, val);
        /// `none`, `starttls` or `tls`.
        smtp_tls: String = "none".into(), |what, val, _| v::choice(what, val, SMTP_TLS);
        /// AUTH user; "" = no login.
        smtp_user: String = String::new(), |what, val, _| v::string(what, val);
        /// The file whose first line is the SMTP password.
        smtp_password_file: String = String::new(), |what, val, _| v::string(what, val);
        /// Extra CA certificates (PEM) to trust.
        smtp_ca_file: String = String::new(), |what, val, _| v::string(what, val);
        /// First retry delay after a failed send, in seconds.
        smtp_retry_timeout: f64 = 60.0, |what, val, _| v::seconds(what, val, 1.0, false);
        /// The subject template, in Python's format syntax.
        subject_tpl: String = "[picomon] {state}: {check} on {dest}".into(),
            |what, val, _| subject_template(what, val);
        /// `thread`: "Re: " + the Problem subject; `state`: each mail renders `subject_tpl` with its own state.
        subject_style: String = "thread".into(), |what, val, _| v::choice(what, val, SUBJECT_STYLES);
        /// The periodic error report.
        report: ReportKeys = ReportKeys::defaults(),
            |what, val, cur| group_assignment(what, val, is_report_handle).map(|()| cur.clone());
        /// Subject of the mail `picomon-watchdog` sends when the daemon stops.
        watchdog_subject: String = "[picomon] daemon stopped".into(), |what, val, _| v::non_empty(what, val);
        /// More transitions than this in one tick are sent as one digest.
        digest_over: INT = 5, |what, val, _| v::whole(what, val, 1, 1_000_000, "transitions");
        /// Steps `#{ after, to }`: an unacknowledged outage's thread also goes to `to` after `after`.
        escalate: EscalateKey = EscalateKey::default(),
            |what, val, _| super::alert_policy::escalate(what, val).map(EscalateKey);
        /// The address replies to alerts go to (an alias that pipes to `picomon mail-in`): thread mails get `Reply-To` and say how to answer; "" = none.
        reply_to: String = String::new(), |what, val, _| address_or_empty(what, val);
        /// Who besides a check's contacts may act on it by replying: addresses, or `@domain` for a whole domain.
        ack_from: Vec<String> = Vec::new(), |what, val, _| senders(what, val);
        /// A file whose first line is the secret of the thread tokens: replies must carry their thread's token to act; "" = no token.
        ack_secret_file: String = String::new(), |what, val, _| absolute_or_empty(what, val);
        /// `#{ every: "7d", at: "monday 08:00" }`: a mail of each check's availability over the period, with a CSV; `#{}` = none.
        availability: AvailabilityKey = AvailabilityKey::default(),
            |what, val, _| availability(what, val).map(AvailabilityKey);
    }
}

keys! {
    /// `config.emails.report.*`.
    struct ReportKeys, "config.emails.report.", known REPORT_KEYS, defaults() {
        /// Seconds between reports while a check is in PROBLEM; 0 = none.
        every: f64 = 0.0, |what, val, _| v::seconds(what, val, 0.0, false);
        /// Subject of reports.
        subject: String = "[picomon] error report".into(), |what, val, _| v::non_empty(what, val);
    }
}

/// Every declared key with its default as the README writes it (the config
/// file is `NAME.rhai` on the machine `HOSTNAME`).
pub fn key_docs() -> Vec<KeyDoc> {
    let mut out = Vec::new();
    Keys::defaults("NAME", "HOSTNAME").below(&mut out);
    out
}

/// `config.heartbeat`: http(s) URLs.
fn heartbeat_urls(what: &str, val: &Dynamic) -> Result<Vec<String>, String> {
    let urls = v::string_list(what, val)?;
    for u in &urls {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            return Err(format!(
                "{what}: {u:?} is not an http(s) URL; write e.g. [\"https://hc-ping.com/UUID\"]"
            ));
        }
    }
    Ok(urls)
}

/// `config.result_dir`, `config.ping_key_file`: an absolute path, or ""
/// for none.
fn absolute_or_empty(what: &str, val: &Dynamic) -> Result<String, String> {
    let dir = v::string(what, val)?;
    if !dir.is_empty() && !dir.starts_with('/') {
        return Err(format!(
            "{what} must be an absolute path (or \"\" for none), not {dir:?}"
        ));
    }
    Ok(dir)
}

/// `config.listen`: `IP:PORT` (port 0 takes a free port and logs it), or
/// "" for no listener.
fn listen_address(what: &str, val: &Dynamic) -> Result<String, String> {
    let addr = v::string(what, val)?;
    if !addr.is_empty() && addr.parse::<std::net::SocketAddr>().is_err() {
        return Err(format!(
            "{what} must be IP:PORT, e.g. \"127.0.0.1:9464\" (\"[::1]:9464\", or \"0.0.0.0:9464\" for every interface), or \"\" for no listener, not {addr:?}"
        ));
    }
    Ok(addr)
}

/// `config.emails.to`: a list of mail addresses.
fn addresses(what: &str, val: &Dynamic) -> Result<Vec<String>, String> {
    let to = v::string_list(what, val)?;
    for addr in &to {
        check_address(what, addr)?;
    }
    Ok(to)
}

/// `config.emails.addr_from`: one mail address.
fn address(what: &str, val: &Dynamic) -> Result<String, String> {
    let from = v::non_empty(what, val)?;
    check_address(what, &from)?;
    Ok(from)
}

/// `config.emails.reply_to`: one mail address, or "" for none.
fn address_or_empty(what: &str, val: &Dynamic) -> Result<String, String> {
    let addr = v::string(what, val)?;
    if !addr.is_empty() {
        check_address(what, &addr)?;
    }
    Ok(addr)
}

/// `config.emails.ack_from`: addresses, or `@domain`.
fn senders(what: &str, val: &Dynamic) -> Result<Vec<String>, String> {
    let list = v::string_list(what, val)?;
    for s in &list {
        check_address(what, s)?;
        if s.contains(char::is_whitespace) || s.contains(['<', '>']) || s.ends_with('@') {
            return Err(format!(
                "{what}: {s:?} must be a bare address (\"ann@example.org\") or a domain (\"@example.org\")"
            ));
        }
    }
    Ok(list)
}

/// `config.emails.smtp_host`: at least one `host[:port]`.
fn servers(what: &str, val: &Dynamic) -> Result<Vec<String>, String> {
    let hosts = v::string_list(what, val)?;
    if hosts.is_empty() {
        return Err(format!(
            "{what} must name at least one server, e.g. \"localhost:25\""
        ));
    }
    for h in &hosts {
        if let Some((scheme, rest)) = h.split_once("://") {
            return Err(format!(
                "{what}: {h:?} has a scheme ({scheme}://); write host[:port] only, e.g. {rest:?}, \
                 and say how to connect in config.emails.smtp_tls (\"none\", \"starttls\" or \"tls\")"
            ));
        }
        check_host_port(what, h)?;
    }
    Ok(hosts)
}

/// `config.emails.subject_tpl`: every `{placeholder}` must be one picomon
/// fills in; a typo would otherwise reach every subject as
/// `<no substitution>`.
fn subject_template(what: &str, val: &Dynamic) -> Result<String, String> {
    let tpl = v::non_empty(what, val)?;
    use crate::notify::mail::compose::{unknown_fields, SUBJECT_FIELDS};
    if let Some(bad) = unknown_fields(&tpl).first() {
        let hint = v::did_you_mean(bad, SUBJECT_FIELDS)
            .map(|s| format!("did you mean {{{s}}}? "))
            .unwrap_or_default();
        return Err(format!(
            "{what}: {{{bad}}} is not a placeholder picomon fills in; {hint}the known ones are {} \
             (write {{{{ and }}}} for a literal brace)",
            SUBJECT_FIELDS
                .iter()
                .map(|f| format!("{{{f}}}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(tpl)
}
/// `config.outputs = [json_lines("-"), ...]` (one output alone is fine
/// too). Two outputs may not share a spool folder: their results would mix.
fn outputs(what: &str, val: &Dynamic) -> Result<Vec<OutputSpec>, String> {
    let items: Vec<Dynamic> = if let Some(arr) = val.read_lock::<rhai::Array>() {
        arr.to_vec()
    } else {
        vec![val.clone()]
    };
    let mut out: Vec<OutputSpec> = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let Some(spec) = item.clone().try_cast::<OutputSpec>() else {
            return Err(format!(
                "{what}[{i}] must be an output made with json_lines(), nsca_web(), command_file(), icinga2_api(), redis() or elasticsearch(), not {}",
                v::describe(&item)
            ));
        };
        let name = spec.spool_name(i);
        if let Some(j) = (0..out.len()).find(|&j| out[j].spool_name(j) == name) {
            return Err(format!(
                "{what}[{i}] and {what}[{j}] share the spool name {name:?}; give one of them another #{{ name: \"...\" }}"
            ));
        }
        out.push(spec);
    }
    Ok(out)
}

/// `config.notify = [webhook(...), command(...), alertmanager(...)]` (one
/// alone is fine too). Names must differ: each is a queue folder and what
/// checks pick the channel by.
fn channels(what: &str, val: &Dynamic) -> Result<Vec<ChannelSpec>, String> {
    let items: Vec<Dynamic> = if let Some(arr) = val.read_lock::<rhai::Array>() {
        arr.to_vec()
    } else {
        vec![val.clone()]
    };
    let mut out: Vec<ChannelSpec> = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let Some(spec) = item.clone().try_cast::<ChannelSpec>() else {
            return Err(format!(
                "{what}[{i}] must be a channel made with webhook(), command() or alertmanager(), not {}",
                v::describe(&item)
            ));
        };
        let name = spec.channel_name(i);
        if let Some(j) = (0..out.len()).find(|&j| out[j].channel_name(j) == name) {
            return Err(format!(
                "{what}[{i}] and {what}[{j}] share the name {name:?}; give one of them another #{{ name: \"...\" }}"
            ));
        }
        out.push(spec);
    }
    Ok(out)
}

/// A mail address, bare or as `Name <addr>`: must have an `@` and no line
/// breaks (it ends up in a header).
fn check_address(what: &str, s: &str) -> Result<(), String> {
    if s.contains(['\r', '\n']) {
        return Err(format!("{what}: {s:?} must not contain a line break"));
    }
    if !s.contains('@') {
        return Err(format!(
            "{what}: {s:?} is not a mail address (expected user@domain or \"Name <user@domain>\")"
        ));
    }
    ascii_domain(what, s)
}

/// The domain of a mail address (or of `@domain`) must be ASCII: picomon
/// does not convert a domain to its IDNA form, and its SMTP client does
/// not offer a server UTF-8 addresses (SMTPUTF8).
pub(super) fn ascii_domain(what: &str, s: &str) -> Result<(), String> {
    let addr = match s.rsplit_once('<') {
        Some((_, inner)) => inner.trim_end().trim_end_matches('>'),
        None => s,
    };
    let domain = addr.rsplit_once('@').map_or("", |(_, d)| d.trim());
    if domain.is_ascii() {
        return Ok(());
    }
    Err(format!(
        "{what}: {s:?}: the domain {domain:?} is not ASCII; write it in its IDNA \
         (xn--) form, as `idn2 {domain}` prints it"
    ))
}

/// `host[:port]`, `[v6]:port` or a bare IPv6 address; the port must be a
/// number.
fn check_host_port(what: &str, s: &str) -> Result<(), String> {
    let bad =
        || format!("{what}: {s:?} is not host[:port] (e.g. \"localhost:25\" or \"[::1]:587\")");
    let s = s.trim();
    if s.is_empty() || s.contains(char::is_whitespace) {
        return Err(bad());
    }
    let port = if let Some(rest) = s.strip_prefix('[') {
        match rest.split_once(']') {
            Some((_, "")) => None,
            Some((_, p)) => Some(p.strip_prefix(':').ok_or_else(bad)?),
            None => return Err(bad()),
        }
    } else if s.matches(':').count() == 1 {
        s.split_once(':').map(|(_, p)| p)
    } else {
        None
    };
    match port {
        Some(p) if p.parse::<u16>().map_or(true, |n| n == 0) => Err(bad()),
        _ => Ok(()),
    }
}

/// `config.emails = x`: Rhai writes a group handle back after
/// `config.emails.to = ...`, which is fine; anything else is a mistake.
fn group_assignment(
    what: &str,
    val: &Dynamic,
    is_handle: fn(&Dynamic) -> bool,
) -> Result<(), String> {
    if is_handle(val) {
        Ok(())
    } else {
        Err(format!(
            "{what} is a group of keys, not a value: set its keys one by one, e.g. {what}.{} = ...",
            if what.ends_with("report") {
                "every"
            } else {
                "to"
            }
        ))
    }
}

fn is_emails_handle(v: &Dynamic) -> bool {
    v.is::<EmailsObj>()
}

fn is_report_handle(v: &Dynamic) -> bool {
    v.is::<ReportObj>()
}

/// The script's `config`.
#[derive(Clone)]
pub struct ConfigObj(pub Shared);

/// The script's `config.emails`.
#[derive(Clone)]
pub struct EmailsObj(Shared);

/// The script's `config.emails.report`.
#[derive(Clone)]
pub struct ReportObj(Shared);

use super::options::err as rt;

/// Line and column of the assignment being run.
fn set_at(ctx: &rhai::NativeCallContext) -> (usize, usize) {
    let pos = ctx.call_position();
    (pos.line().unwrap_or(0), pos.position().unwrap_or(1))
}

/// Registers the three objects and their key access.
pub fn register(engine: &mut Engine) {
    engine
        .register_type_with_name::<ConfigObj>("Config")
        .register_type_with_name::<EmailsObj>("Emails")
        .register_type_with_name::<ReportObj>("Report");

    engine.register_indexer_get(
        |c: &mut ConfigObj, key: ImmutableString| -> Result<Dynamic, Box<EvalAltResult>> {
            let got = c.0.with(|b| b.keys.get(&key)).map_err(rt)?;
            // `config`'s one group is `emails`.
            Ok(got.unwrap_or_else(|| Dynamic::from(EmailsObj(c.0.clone()))))
        },
    );
    // The setters change the shared builder, never the handle itself: marked
    // pure, so they work on `config` although the resolver hands it out as
    // a constant (which keeps `config = 5` an error).
    FuncRegistration::new_index_setter()
        .with_purity(true)
        .register_into_engine(
            engine,
            |ctx: rhai::NativeCallContext,
             c: &mut ConfigObj,
             key: ImmutableString,
             val: Dynamic|
             -> Result<(), Box<EvalAltResult>> {
                c.0.with(|b| {
                    b.keys.set(&key, &val)?;
                    let at = set_at(&ctx);
                    if key == "state_dir" {
                        b.state_dir_at = Some(at);
                    }
                    b.key_at.insert(format!("config.{key}"), at);
                    Ok::<(), String>(())
                })
                .map_err(rt)
            },
        );
    engine.register_indexer_get(
        |e: &mut EmailsObj, key: ImmutableString| -> Result<Dynamic, Box<EvalAltResult>> {
            let got = e.0.with(|b| b.keys.emails.get(&key)).map_err(rt)?;
            // `config.emails`' one group is `report`.
            Ok(got.unwrap_or_else(|| Dynamic::from(ReportObj(e.0.clone()))))
        },
    );
    FuncRegistration::new_index_setter()
        .with_purity(true)
        .register_into_engine(
            engine,
            |ctx: rhai::NativeCallContext,
             e: &mut EmailsObj,
             key: ImmutableString,
             val: Dynamic|
             -> Result<(), Box<EvalAltResult>> {
                e.0.with(|b| {
                    b.keys.emails.set(&key, &val)?;
                    b.key_at
                        .insert(format!("config.emails.{key}"), set_at(&ctx));
                    if key == "escalate" {
                        let steps = b.keys.emails.escalate.0.clone();
                        super::contacts::check_escalate(b, "config.emails.escalate", &steps)?;
                    }
                    Ok::<(), String>(())
                })
                .map_err(rt)
            },
        );
    engine.register_indexer_get(
        |r: &mut ReportObj, key: ImmutableString| -> Result<Dynamic, Box<EvalAltResult>> {
            let got = r.0.with(|b| b.keys.emails.report.get(&key)).map_err(rt)?;
            // `config.emails.report` has no groups.
            Ok(got.unwrap_or(Dynamic::UNIT))
        },
    );
    FuncRegistration::new_index_setter()
        .with_purity(true)
        .register_into_engine(
            engine,
            |ctx: rhai::NativeCallContext,
             r: &mut ReportObj,
             key: ImmutableString,
             val: Dynamic|
             -> Result<(), Box<EvalAltResult>> {
                r.0.with(|b| {
                    b.keys.emails.report.set(&key, &val)?;
                    b.key_at
                        .insert(format!("config.emails.report.{key}"), set_at(&ctx));
                    Ok::<(), String>(())
                })
                .map_err(rt)
            },
        );
    engine.register_fn("to_string", |_: &mut ConfigObj| "config".to_string());
    engine.register_fn("to_string", |_: &mut EmailsObj| "config.emails".to_string());
    engine.register_fn("to_string", |_: &mut ReportObj| {
        "config.emails.report".to_string()
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mail_domain_must_be_ascii() {
        for ok in [
            "ann@example.org",
            "Änne <ann@example.org>",
            "@example.org",
            "ann@xn--bcher-kva.de",
        ] {
            assert_eq!(ascii_domain("k", ok), Ok(()), "{ok}");
        }
        let e = ascii_domain("config.emails.to", "ann@bücher.de").unwrap_err();
        assert_eq!(
            e,
            "config.emails.to: \"ann@bücher.de\": the domain \"bücher.de\" is not ASCII; \
             write it in its IDNA (xn--) form, as `idn2 bücher.de` prints it"
        );
        assert!(ascii_domain("k", "Ann <ann@bücher.de>").is_err());
        assert!(ascii_domain("k", "@bücher.de").is_err());
    }

    #[test]
    fn availability_takes_a_period_and_a_local_weekday_and_time() {
        let map = |every: &str, at: Option<&str>| {
            let mut m = rhai::Map::new();
            m.insert("every".into(), every.into());
            if let Some(a) = at {
                m.insert("at".into(), a.into());
            }
            Dynamic::from_map(m)
        };
        let got = availability("a", &map("7d", Some("Monday 08:00"))).unwrap();
        let at = DayTime {
            weekday: Some(0),
            hour: 8,
            minute: 0,
        };
        assert_eq!(
            got,
            Some(AvailabilityMail {
                every: 7 * 86_400,
                at: Some(at)
            })
        );
        assert_eq!(at.to_string(), "monday 08:00");
        let got = availability("a", &map("30", Some("sun 23:59")))
            .unwrap()
            .unwrap();
        assert_eq!((got.every, got.at.unwrap().weekday), (30, Some(6)));
        assert_eq!(
            availability("a", &map("1h", None)).unwrap().unwrap().at,
            None
        );
        assert_eq!(
            availability("a", &Dynamic::from_map(rhai::Map::new())).unwrap(),
            None
        );
        for bad in [
            "8",
            "monday",
            "25:00",
            "8:5",
            "someday 08:00",
            "mon tue 08:00",
        ] {
            let e = availability("a", &map("7d", Some(bad))).unwrap_err();
            assert!(e.contains("\"monday 08:00\""), "{bad}: {e}");
        }
        let e = availability("a", &map("soon", None)).unwrap_err();
        assert!(e.starts_with("a.every"), "{e}");
    }

    #[test]
    fn host_port_forms() {
        for ok in [
            "localhost",
            "localhost:25",
            "[::1]:587",
            "::1",
            "[::1]",
            "10.0.0.1:2525",
        ] {
            assert!(check_host_port("x", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a b",
            "host:",
            "host:x",
            "host:0",
            "host:70000",
            "[::1]x",
        ] {
            assert!(check_host_port("x", bad).is_err(), "{bad}");
        }
    }
}
