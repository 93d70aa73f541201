//! The channel constructors a config calls in `config.notify = [ ... ]`,
//! each building a plain [`ChannelSpec`]:
//!
//! - `webhook(url, #{ format, name, states, match, headers, secret_file,
//!   timeout, ca_file, client_cert, client_key, retry })`
//! - `command(path, [args], #{ name, states, match, timeout, retry })`
//! - `alertmanager(url or [url, ...], #{ labels, name, states, match,
//!   headers, secret_file, timeout, ca_file, client_cert, client_key,
//!   retry, repeat })`
//!
//! A wrong option is an error at the line that gives it.

use rhai::{Array, Dynamic, Engine, Map};

use crate::config::options::{err, Opts, RhaiResult};
use crate::notify::channel::format::{ACK_KIND, DIGEST_KIND, FORMATS};
use crate::notify::channel::spec::{redact_url, ChannelKind, ChannelSpec, HttpOpts};

/// Adds the channel constructors and the `ChannelSpec` type to `engine`.
pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<ChannelSpec>("ChannelSpec");
    let show = |s: &mut ChannelSpec| format!("{}({})", s.kind.label(), s.kind.target());
    engine.register_fn("to_string", show);
    engine.register_fn("to_debug", show);
    engine.register_fn("webhook", |url: &str| webhook(url, Map::new()));
    engine.register_fn("webhook", webhook);
    engine.register_fn("command", |path: &str| {
        command(path, Array::new(), Map::new())
    });
    engine.register_fn("command", |path: &str, args: Array| {
        command(path, args, Map::new())
    });
    engine.register_fn("command", command);
    engine.register_fn("alertmanager", |url: &str| {
        alertmanager(vec![Dynamic::from(url.to_string())], Map::new())
    });
    engine.register_fn("alertmanager", |url: &str, opts: Map| {
        alertmanager(vec![Dynamic::from(url.to_string())], opts)
    });
    engine.register_fn("alertmanager", |urls: Array| alertmanager(urls, Map::new()));
    engine.register_fn("alertmanager", alertmanager);
}

/// The options every channel takes.
const COMMON: &[&str] = &["name", "states", "match", "timeout", "retry"];
/// The options every HTTP channel takes.
const HTTP: &[&str] = &[
    "headers",
    "secret_file",
    "ca_file",
    "client_cert",
    "client_key",
];

/// Checks the options of channel constructor `func`: those of the groups
/// in `allowed`.
fn options(func: &str, map: Map, allowed: &[&[&str]]) -> RhaiResult<Opts> {
    let known: Vec<&str> = allowed.iter().flat_map(|a| a.iter().copied()).collect();
    Opts::new(&format!("{func}()"), map, &known)
}

/// What every HTTP channel takes.
fn http(o: &Opts) -> RhaiResult<HttpOpts> {
    Ok(HttpOpts {
        headers: o.pairs("headers")?,
        secret_file: o.path("secret_file")?,
        ca_file: o.path("ca_file")?,
        client: o.client()?,
    })
}

/// The options every channel takes, around its `kind`.
fn finish(o: &Opts, kind: ChannelKind) -> RhaiResult<ChannelSpec> {
    let func = o.probe();
    let name = o.text("name")?;
    if let Some(n) = &name {
        let ok = !n.is_empty()
            && !n.starts_with('.')
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !ok || n == "mail" {
            return Err(err(format!(
                "{func}: name `{n}` names a queue folder: use letters, digits, `-`, `_` \
                 and `.` only (and not `mail`, which is the mail's)"
            )));
        }
    }
    let states = o.list("states")?;
    let known: Vec<&str> = crate::alert::TransitionKind::ALL
        .iter()
        .map(|k| k.as_str())
        .chain([ACK_KIND, DIGEST_KIND])
        .collect();
    for s in &states {
        if !known.contains(&s.as_str()) {
            return Err(err(format!(
                "{func}: states: {s:?} is not a transition kind; use some of {}",
                known.join(", ")
            )));
        }
    }
    let pattern = o.text("match")?;
    if pattern.as_deref() == Some("") {
        return Err(err(format!(
            "{func}: match is empty: give a glob such as \"web*\", or leave it out for every check"
        )));
    }
    Ok(ChannelSpec {
        name,
        kind,
        states,
        pattern,
        timeout: o.seconds("timeout", 10.0, 0.1, 3600.0)?,
        retry: o.seconds("retry", 60.0, 0.1, 3600.0)?,
    })
}

fn check_url(func: &str, url: &str) -> RhaiResult<()> {
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
        return Err(err(format!(
            "{func}(): url `{}` must start with http:// or https:// and name a server",
            redact_url(url)
        )));
    }
    Ok(())
}

fn webhook(url: &str, opts: Map) -> RhaiResult<ChannelSpec> {
    let o = options("webhook", opts, &[COMMON, HTTP, &["format"]])?;
    check_url("webhook", url)?;
    let format = o.text("format")?.unwrap_or_else(|| "json".into());
    if !FORMATS.contains(&format.as_str()) {
        return Err(err(format!(
            "webhook(): format {format:?} is unknown; use one of {}",
            FORMATS.join(", ")
        )));
    }
    let http = http(&o)?;
    if format == "matrix" && http.secret_file.is_none() {
        return Err(err(
            "webhook(): format \"matrix\" needs secret_file: a file holding the bot's access token",
        ));
    }
    finish(
        &o,
        ChannelKind::Webhook {
            url: url.trim_end_matches('/').into(),
            format,
            http,
        },
    )
}

fn command(path: &str, args: Array, opts: Map) -> RhaiResult<ChannelSpec> {
    let o = options("command", opts, &[COMMON])?;
    if !path.starts_with('/') {
        return Err(err(format!(
            "command(): {path:?} must be an absolute path (it runs without a shell or PATH)"
        )));
    }
    let args = args
        .into_iter()
        .map(|a| {
            if a.is_string() || a.is_int() || a.is_float() {
                Ok(a.to_string())
            } else {
                Err(err(format!(
                    "command(): arguments must be strings or numbers, not {}",
                    a.type_name()
                )))
            }
        })
        .collect::<RhaiResult<Vec<String>>>()?;
    finish(
        &o,
        ChannelKind::Command {
            program: path.into(),
            args,
        },
    )
}

/// `alertmanager(url, opts)` or `alertmanager([url, ...], opts)`: every
/// instance of a cluster by its own URL.
fn alertmanager(urls: Array, opts: Map) -> RhaiResult<ChannelSpec> {
    let o = options("alertmanager", opts, &[COMMON, HTTP, &["labels", "repeat"]])?;
    if urls.is_empty() {
        return Err(err(
            "alertmanager(): the list of URLs is empty: give each instance of the cluster, \
             e.g. [\"http://am1:9093\", \"http://am2:9093\"]",
        ));
    }
    let mut list: Vec<String> = Vec::new();
    for u in urls {
        let u = u.into_string().map_err(|t| {
            err(format!(
                "alertmanager(): URLs must be strings like \"http://am1:9093\", not {t}"
            ))
        })?;
        check_url("alertmanager", &u)?;
        let u = u.trim_end_matches('/').to_string();
        if list.contains(&u) {
            return Err(err(format!(
                "alertmanager(): {} is listed twice: list each instance once",
                redact_url(&u)
            )));
        }
        list.push(u);
    }
    let labels = o.pairs("labels")?;
    for (k, v) in &labels {
        let ok = k
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok || v.is_empty() {
            return Err(err(format!(
                "alertmanager(): label {k:?} must be a name of letters, digits and `_` \
                 with a non-empty value"
            )));
        }
        if ["alertname", "instance", "severity"].contains(&k.as_str()) {
            return Err(err(format!(
                "alertmanager(): label {k:?} is set by picomon; choose another name"
            )));
        }
    }
    let http = http(&o)?;
    finish(
        &o,
        ChannelKind::Alertmanager {
            urls: list,
            labels,
            repeat: o.seconds("repeat", 60.0, 0.1, 3600.0)?,
            http,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rhai::Dynamic;

    #[test]
    fn states_must_name_transition_kinds() {
        let with_states = |v: &[&str]| {
            let states: rhai::Array = v.iter().map(|s| Dynamic::from(s.to_string())).collect();
            webhook(
                "http://127.0.0.1:9/hook",
                Map::from_iter([("states".into(), Dynamic::from_array(states))]),
            )
        };
        let ok = with_states(&["problem", "recovery", "reminder", "flapping_start"]).unwrap();
        assert_eq!(ok.states.len(), 4);
        let err = with_states(&["problem", "recovry"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"recovry\" is not a transition kind"),
            "{err}"
        );
        assert!(err.contains("recovery"), "{err}");
    }

    #[test]
    fn header_values_are_not_in_the_debug_form() {
        let s = webhook(
            "https://ntfy.example.org/alerts",
            Map::from_iter([(
                "headers".into(),
                Dynamic::from_map(Map::from_iter([(
                    "Authorization".into(),
                    Dynamic::from("Bearer hunter2"),
                )])),
            )]),
        )
        .unwrap();
        let text = format!("{s:?}");
        assert!(text.contains("json(https://ntfy.example.org/…)"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}
