//! The `config.*` keys: their defaults, their validation, and the objects
//! the script sees as `config`, `config.emails` and `config.emails.report`.
//!
//! The script objects hold no values themselves: they are handles to the
//! shared [`Builder`](super::builder::Builder), so `config.emails.to = ...`
//! changes the one place the result is read from. Property access falls back
//! to Rhai indexers, which is where an unknown key is caught with a message
//! that names it and lists the known ones (picomon's typo protection).

use rhai::{Dynamic, Engine, EvalAltResult, FuncRegistration, ImmutableString, Position, INT};

use crate::output::OutputSpec;

use super::builder::Shared;
use super::value::{self as v, to_array, to_float};

/// The keys of `config`, in the order the docs list them.
pub const CONFIG_KEYS: &[&str] = &[
    "base_tick",
    "default_every",
    "default_error_every",
    "default_retry",
    "default_timeout",
    "workers",
    "max_output",
    "state_dir",
    "plugin_dirs",
    "verb_level",
    "outputs",
    "result_dir",
    "control_group",
    "emails",
];

/// The keys of `config.emails`.
pub const EMAIL_KEYS: &[&str] = &[
    "to",
    "addr_from",
    "smtp_host",
    "smtp_tls",
    "smtp_user",
    "smtp_password_file",
    "smtp_ca_file",
    "smtp_retry_timeout",
    "smtp_keepalive_timeout",
    "subject_tpl",
    "report",
    "watchdog_subject",
    "digest_over",
];

/// The keys of `config.emails.report`.
pub const REPORT_KEYS: &[&str] = &["every", "subject"];

/// Accepted `verb_level` values (as in picomon's Python config, any case).
pub const VERB_LEVELS: &[&str] = &["debug", "info", "warning", "error"];

/// Accepted `smtp_tls` values.
pub const SMTP_TLS: &[&str] = &["none", "starttls", "tls"];

/// The values of every key, with picomon's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct Keys {
    pub base_tick: f64,
    pub default_every: INT,
    pub default_error_every: INT,
    pub default_retry: INT,
    pub default_timeout: f64,
    pub workers: INT,
    pub max_output: INT,
    pub state_dir: String,
    pub plugin_dirs: Vec<String>,
    pub verb_level: String,
    /// `config.outputs`: where every result goes (SPEC §9).
    pub outputs: Vec<OutputSpec>,
    /// `config.result_dir`: a folder of result files to forward; "" = off.
    pub result_dir: String,
    /// `config.control_group`: a group whose members may use the control
    /// socket; "" = only root and the daemon's user.
    pub control_group: String,
    pub emails: EmailKeys,
}

/// `config.emails.*`.
#[derive(Clone, Debug, PartialEq)]
pub struct EmailKeys {
    pub to: Vec<String>,
    pub addr_from: String,
    pub smtp_host: Vec<String>,
    pub smtp_tls: String,
    pub smtp_user: String,
    pub smtp_password_file: String,
    pub smtp_ca_file: String,
    pub smtp_retry_timeout: f64,
    pub smtp_keepalive_timeout: f64,
    pub subject_tpl: String,
    pub report_every: f64,
    pub report_subject: String,
    pub watchdog_subject: String,
    pub digest_over: INT,
}

impl Keys {
    /// The defaults for a config file whose stem is `stem` (the default
    /// state directory is named after it, so two configs never share one).
    pub fn defaults(stem: &str, hostname: &str) -> Keys {
        Keys {
            base_tick: 60.0,
            default_every: 1,
            default_error_every: -1,
            default_retry: 1,
            default_timeout: 10.0,
            workers: 16,
            max_output: 65536,
            state_dir: format!("/var/lib/picomon/{stem}"),
            plugin_dirs: crate::check::plugin::default_plugin_dirs()
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
            verb_level: "info".into(),
            outputs: Vec::new(),
            result_dir: String::new(),
            control_group: String::new(),
            emails: EmailKeys {
                to: Vec::new(),
                addr_from: format!("picomon <picomon@{hostname}>"),
                smtp_host: vec!["localhost:25".into()],
                smtp_tls: "none".into(),
                smtp_user: String::new(),
                smtp_password_file: String::new(),
                smtp_ca_file: String::new(),
                smtp_retry_timeout: 60.0,
                smtp_keepalive_timeout: 60.0,
                subject_tpl: "[picomon] {state}: {check} on {dest}".into(),
                report_every: 0.0,
                report_subject: "[picomon] error report".into(),
                watchdog_subject: "[picomon] daemon stopped".into(),
                digest_over: 5,
            },
        }
    }

    /// Sets `config.<key>`.
    fn set(&mut self, key: &str, val: &Dynamic) -> Result<(), String> {
        let what = format!("config.{key}");
        let what = what.as_str();
        match key {
            "base_tick" => self.base_tick = v::seconds(what, val, 0.05, false)?,
            "default_every" => self.default_every = v::whole(what, val, 1, 1_000_000_000, "ticks")?,
            "default_error_every" => self.default_error_every = v::ticks_or_minus_one(what, val)?,
            "default_retry" => self.default_retry = v::whole(what, val, 0, 1_000_000, "runs")?,
            "default_timeout" => self.default_timeout = v::seconds(what, val, 0.0, true)?,
            "workers" => self.workers = v::whole(what, val, 1, 1024, "threads")?,
            "max_output" => self.max_output = v::whole(what, val, 1, 1 << 30, "bytes")?,
            "state_dir" => self.state_dir = v::non_empty(what, val)?,
            "plugin_dirs" => self.plugin_dirs = v::string_list(what, val)?,
            "verb_level" => self.verb_level = v::choice(what, val, VERB_LEVELS)?,
            "outputs" => self.outputs = outputs(what, val)?,
            "result_dir" => {
                let dir = v::string(what, val)?;
                if !dir.is_empty() && !dir.starts_with('/') {
                    return Err(format!(
                        "{what} must be an absolute path (or \"\" for none), not {dir:?}"
                    ));
                }
                self.result_dir = dir;
            }
            "control_group" => self.control_group = v::string(what, val)?,
            "emails" => return group_assignment(what, val, is_emails_handle),
            _ => return Err(v::unknown("key", what, key, "config.", CONFIG_KEYS)),
        }
        Ok(())
    }

    /// Reads `config.<key>` (not the groups: those are handles).
    fn get(&self, key: &str) -> Result<Dynamic, String> {
        Ok(match key {
            "base_tick" => to_float(self.base_tick),
            "default_every" => self.default_every.into(),
            "default_error_every" => self.default_error_every.into(),
            "default_retry" => self.default_retry.into(),
            "default_timeout" => to_float(self.default_timeout),
            "workers" => self.workers.into(),
            "max_output" => self.max_output.into(),
            "state_dir" => self.state_dir.clone().into(),
            "plugin_dirs" => to_array(&self.plugin_dirs),
            "verb_level" => self.verb_level.clone().into(),
            "outputs" => {
                Dynamic::from_array(self.outputs.iter().cloned().map(Dynamic::from).collect())
            }
            "result_dir" => self.result_dir.clone().into(),
            "control_group" => self.control_group.clone().into(),
            _ => {
                return Err(v::unknown(
                    "key",
                    &format!("config.{key}"),
                    key,
                    "config.",
                    CONFIG_KEYS,
                ))
            }
        })
    }
}

impl EmailKeys {
    /// Sets `config.emails.<key>`.
    fn set(&mut self, key: &str, val: &Dynamic) -> Result<(), String> {
        let what = format!("config.emails.{key}");
        let what = what.as_str();
        match key {
            "to" => {
                let to = v::string_list(what, val)?;
                for addr in &to {
                    check_address(what, addr)?;
                }
                self.to = to;
            }
            "addr_from" => {
                let from = v::non_empty(what, val)?;
                check_address(what, &from)?;
                self.addr_from = from;
            }
            "smtp_host" => {
                let hosts = v::string_list(what, val)?;
                if hosts.is_empty() {
                    return Err(format!(
                        "{what} must name at least one server, e.g. \"localhost:25\""
                    ));
                }
                for h in &hosts {
                    check_host_port(what, h)?;
                }
                self.smtp_host = hosts;
            }
            "smtp_tls" => self.smtp_tls = v::choice(what, val, SMTP_TLS)?,
            "smtp_user" => self.smtp_user = v::string(what, val)?,
            "smtp_password_file" => self.smtp_password_file = v::string(what, val)?,
            "smtp_ca_file" => self.smtp_ca_file = v::string(what, val)?,
            "smtp_retry_timeout" => self.smtp_retry_timeout = v::seconds(what, val, 1.0, false)?,
            "smtp_keepalive_timeout" => {
                self.smtp_keepalive_timeout = v::seconds(what, val, 0.0, false)?
            }
            "subject_tpl" => self.subject_tpl = v::non_empty(what, val)?,
            "watchdog_subject" => self.watchdog_subject = v::non_empty(what, val)?,
            "digest_over" => self.digest_over = v::whole(what, val, 1, 1_000_000, "transitions")?,
            "report" => return group_assignment(what, val, is_report_handle),
            _ => return Err(v::unknown("key", what, key, "config.emails.", EMAIL_KEYS)),
        }
        Ok(())
    }

    /// Reads `config.emails.<key>` (not `report`: it is a handle).
    fn get(&self, key: &str) -> Result<Dynamic, String> {
        Ok(match key {
            "to" => to_array(&self.to),
            "addr_from" => self.addr_from.clone().into(),
            "smtp_host" => to_array(&self.smtp_host),
            "smtp_tls" => self.smtp_tls.clone().into(),
            "smtp_user" => self.smtp_user.clone().into(),
            "smtp_password_file" => self.smtp_password_file.clone().into(),
            "smtp_ca_file" => self.smtp_ca_file.clone().into(),
            "smtp_retry_timeout" => to_float(self.smtp_retry_timeout),
            "smtp_keepalive_timeout" => to_float(self.smtp_keepalive_timeout),
            "subject_tpl" => self.subject_tpl.clone().into(),
            "watchdog_subject" => self.watchdog_subject.clone().into(),
            "digest_over" => self.digest_over.into(),
            _ => {
                return Err(v::unknown(
                    "key",
                    &format!("config.emails.{key}"),
                    key,
                    "config.emails.",
                    EMAIL_KEYS,
                ))
            }
        })
    }

    /// Sets `config.emails.report.<key>`.
    fn set_report(&mut self, key: &str, val: &Dynamic) -> Result<(), String> {
        let what = format!("config.emails.report.{key}");
        let what = what.as_str();
        match key {
            "every" => self.report_every = v::seconds(what, val, 0.0, false)?,
            "subject" => self.report_subject = v::non_empty(what, val)?,
            _ => {
                return Err(v::unknown(
                    "key",
                    what,
                    key,
                    "config.emails.report.",
                    REPORT_KEYS,
                ))
            }
        }
        Ok(())
    }

    /// Reads `config.emails.report.<key>`.
    fn get_report(&self, key: &str) -> Result<Dynamic, String> {
        Ok(match key {
            "every" => to_float(self.report_every),
            "subject" => self.report_subject.clone().into(),
            _ => {
                return Err(v::unknown(
                    "key",
                    &format!("config.emails.report.{key}"),
                    key,
                    "config.emails.report.",
                    REPORT_KEYS,
                ))
            }
        })
    }
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
                "{what}[{i}] must be an output made with json_lines(), nsca_web(), command_file() or icinga2_api(), not {}",
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
    Ok(())
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

fn rt(msg: String) -> Box<EvalAltResult> {
    // Position::NONE: Rhai fills in the position of the access.
    EvalAltResult::ErrorRuntime(msg.into(), Position::NONE).into()
}

/// Registers the three objects and their key access.
pub fn register(engine: &mut Engine) {
    engine
        .register_type_with_name::<ConfigObj>("Config")
        .register_type_with_name::<EmailsObj>("Emails")
        .register_type_with_name::<ReportObj>("Report");

    engine.register_indexer_get(
        |c: &mut ConfigObj, key: ImmutableString| -> Result<Dynamic, Box<EvalAltResult>> {
            if key == "emails" {
                return Ok(Dynamic::from(EmailsObj(c.0.clone())));
            }
            c.0.with(|b| b.keys.get(&key)).map_err(rt)
        },
    );
    // The setters change the shared builder, never the handle itself: marked
    // pure, so they work on `config` although the resolver hands it out as
    // a constant (which keeps `config = 5` an error).
    FuncRegistration::new_index_setter()
        .with_purity(true)
        .register_into_engine(
            engine,
            |c: &mut ConfigObj,
             key: ImmutableString,
             val: Dynamic|
             -> Result<(), Box<EvalAltResult>> {
                c.0.with(|b| b.keys.set(&key, &val)).map_err(rt)
            },
        );
    engine.register_indexer_get(
        |e: &mut EmailsObj, key: ImmutableString| -> Result<Dynamic, Box<EvalAltResult>> {
            if key == "report" {
                return Ok(Dynamic::from(ReportObj(e.0.clone())));
            }
            e.0.with(|b| b.keys.emails.get(&key)).map_err(rt)
        },
    );
    FuncRegistration::new_index_setter()
        .with_purity(true)
        .register_into_engine(
            engine,
            |e: &mut EmailsObj,
             key: ImmutableString,
             val: Dynamic|
             -> Result<(), Box<EvalAltResult>> {
                e.0.with(|b| b.keys.emails.set(&key, &val)).map_err(rt)
            },
        );
    engine.register_indexer_get(
        |r: &mut ReportObj, key: ImmutableString| -> Result<Dynamic, Box<EvalAltResult>> {
            r.0.with(|b| b.keys.emails.get_report(&key)).map_err(rt)
        },
    );
    FuncRegistration::new_index_setter()
        .with_purity(true)
        .register_into_engine(
            engine,
            |r: &mut ReportObj,
             key: ImmutableString,
             val: Dynamic|
             -> Result<(), Box<EvalAltResult>> {
                r.0.with(|b| b.keys.emails.set_report(&key, &val))
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
