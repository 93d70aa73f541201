//! What a config declares in `config.notify = [ ... ]`, and the Rhai
//! constructors that build it:
//!
//! - `webhook(url, #{ format, name, states, match, headers, secret_file,
//!   timeout, ca_file, client_cert, client_key, retry })`
//! - `command(path, [args], #{ name, states, match, timeout, retry })`
//! - `alertmanager(url or [url, ...], #{ labels, name, states, match,
//!   headers, secret_file, timeout, ca_file, client_cert, client_key,
//!   retry, repeat })`
//!
//! A wrong option is an error at the line that gives it. Secrets (header
//! values, the token of `secret_file`) are never printed: the debug form
//! of a spec shows header names only.

use crate::duration::{option_seconds, Given};
use std::path::PathBuf;
use std::time::Duration;

use rhai::{Array, Dynamic, Engine, EvalAltResult, Map, Position};

use super::format::FORMATS;

/// One configured channel.
#[derive(Clone, PartialEq)]
pub struct ChannelSpec {
    /// Its queue folder `state_dir/notify/NAME` and the name checks pick
    /// it by; default: kind or format and position, e.g. `slack-1`.
    pub name: Option<String>,
    pub kind: ChannelKind,
    /// Transition kinds it takes (`problem`, `recovery`, ...); empty: all.
    pub states: Vec<String>,
    /// A glob on check name, identity or target; `None`: every check.
    pub pattern: Option<String>,
    /// How long one delivery may take.
    pub timeout: Duration,
    /// The first wait after a failed delivery (doubling to 15 minutes).
    pub retry: Duration,
}

/// How a channel delivers.
#[derive(Clone, PartialEq)]
pub enum ChannelKind {
    Webhook {
        url: String,
        format: String,
        http: HttpOpts,
    },
    Command {
        program: PathBuf,
        args: Vec<String>,
    },
    Alertmanager {
        /// Every instance of the cluster, each posted to directly (never
        /// through a load balancer: the cluster dedups what they all got).
        urls: Vec<String>,
        labels: Vec<(String, String)>,
        /// How often the alerts of checks still in PROBLEM are posted
        /// again (less than Alertmanager's resolve timeout, 5 minutes).
        repeat: Duration,
        http: HttpOpts,
    },
}

/// What every HTTP channel takes.
#[derive(Clone, PartialEq, Default)]
pub struct HttpOpts {
    /// Extra headers (e.g. `Authorization`): secret, never printed.
    pub headers: Vec<(String, String)>,
    /// A file whose first line is a token sent as `Authorization: Bearer`.
    pub secret_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    /// `client_cert` and `client_key`: shown when the receiver asks.
    pub client: Option<crate::net::http::ClientTls>,
}

impl std::fmt::Debug for HttpOpts {
    /// Header names only: their values may be secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpOpts")
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("secret_file", &self.secret_file)
            .field("ca_file", &self.ca_file)
            .field("client", &self.client)
            .finish()
    }
}

impl std::fmt::Debug for ChannelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({})", self.label(), self.target())
    }
}

impl std::fmt::Debug for ChannelSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelSpec")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("states", &self.states)
            .field("pattern", &self.pattern)
            .finish()
    }
}

/// A URL as logs may show it: scheme and server only, as Slack, Discord
/// and Mattermost put the secret in the path.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or(authority);
    if rest.len() > authority.len() {
        format!("{scheme}://{host}/…")
    } else {
        format!("{scheme}://{host}")
    }
}

impl ChannelKind {
    /// The constructor (or webhook format), for default names and messages.
    pub fn label(&self) -> &str {
        match self {
            ChannelKind::Webhook { format, .. } => format,
            ChannelKind::Command { .. } => "command",
            ChannelKind::Alertmanager { .. } => "alertmanager",
        }
    }

    /// Where it delivers, for logs and the dump (never a secret).
    pub fn target(&self) -> String {
        match self {
            ChannelKind::Webhook { url, .. } => redact_url(url),
            ChannelKind::Alertmanager { urls, .. } => urls
                .iter()
                .map(|u| redact_url(u))
                .collect::<Vec<_>>()
                .join(", "),
            ChannelKind::Command { program, .. } => program.display().to_string(),
        }
    }
}

impl ChannelSpec {
    /// The name of the channel at `index` in `config.notify`.
    pub fn channel_name(&self, index: usize) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{}-{}", self.kind.label(), index + 1))
    }
}

type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

fn err(msg: String) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(msg.into(), Position::NONE))
}

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

/// Reads the options map of constructor `func`.
struct Opts {
    func: &'static str,
    map: Map,
}

impl Opts {
    fn new(func: &'static str, map: Map, allowed: &[&[&str]]) -> RhaiResult<Opts> {
        let known: Vec<&str> = allowed.iter().flat_map(|a| a.iter().copied()).collect();
        for key in map.keys() {
            if !known.contains(&key.as_str()) {
                return Err(err(format!(
                    "{func}(): unknown option `{key}` (known options: {})",
                    known.join(", ")
                )));
            }
        }
        Ok(Opts { func, map })
    }

    fn string(&self, key: &str) -> RhaiResult<Option<String>> {
        match self.map.get(key) {
            None => Ok(None),
            Some(v) => v.clone().into_string().map(Some).map_err(|t| {
                err(format!(
                    "{}(): option `{key}` must be a string, not {t}",
                    self.func
                ))
            }),
        }
    }

    fn seconds(&self, key: &str, default: f64, min: f64, max: f64) -> RhaiResult<Duration> {
        let Some(v) = self.map.get(key) else {
            return Ok(Duration::from_secs_f64(default));
        };
        let text = v.is_string().then(|| v.to_string());
        let given = match (
            &text,
            v.as_float().or_else(|_| v.as_int().map(|i| i as f64)),
        ) {
            (Some(t), _) => Given::Text(t),
            (None, Ok(n)) => Given::Number(n),
            (None, Err(t)) => Given::Other(t),
        };
        let what = format!("{}(): option `{key}`", self.func);
        option_seconds(&what, given, min, max).map_err(err)
    }

    fn strings(&self, key: &str) -> RhaiResult<Vec<String>> {
        let Some(v) = self.map.get(key) else {
            return Ok(Vec::new());
        };
        let items: Vec<Dynamic> = match v.read_lock::<Array>() {
            Some(a) => a.to_vec(),
            None => vec![v.clone()],
        };
        items
            .into_iter()
            .map(|x| {
                x.into_string().map_err(|t| {
                    err(format!(
                        "{}(): option `{key}` must be a list of strings, not one holding {t}",
                        self.func
                    ))
                })
            })
            .collect()
    }

    /// A map of strings (`headers`, `labels`), in key order.
    fn pairs(&self, key: &str) -> RhaiResult<Vec<(String, String)>> {
        let Some(v) = self.map.get(key) else {
            return Ok(Vec::new());
        };
        let Some(m) = v.read_lock::<Map>() else {
            return Err(err(format!(
                "{}(): option `{key}` must be a map like #{{ team: \"ops\" }}",
                self.func
            )));
        };
        let mut out = Vec::new();
        for (k, x) in m.iter() {
            let val = x.clone().into_string().map_err(|t| {
                err(format!(
                    "{}(): option `{key}.{k}` must be a string, not {t}",
                    self.func
                ))
            })?;
            if k.contains(['\r', '\n', ':']) || val.contains(['\r', '\n']) {
                return Err(err(format!(
                    "{}(): option `{key}.{k}` must be one line (and its name without `:`)",
                    self.func
                )));
            }
            out.push((k.to_string(), val));
        }
        Ok(out)
    }

    fn path(&self, key: &str) -> RhaiResult<Option<PathBuf>> {
        Ok(self
            .string(key)?
            .filter(|s| !s.is_empty())
            .map(PathBuf::from))
    }

    fn http(&self) -> RhaiResult<HttpOpts> {
        Ok(HttpOpts {
            headers: self.pairs("headers")?,
            secret_file: self.path("secret_file")?,
            ca_file: self.path("ca_file")?,
            client: crate::net::http::ClientTls::pair(
                self.func,
                self.string("client_cert")?,
                self.string("client_key")?,
            )
            .map_err(err)?,
        })
    }

    fn finish(&self, kind: ChannelKind) -> RhaiResult<ChannelSpec> {
        let name = self.string("name")?;
        if let Some(n) = &name {
            let ok = !n.is_empty()
                && !n.starts_with('.')
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !ok || n == "mail" {
                return Err(err(format!(
                    "{}(): name `{n}` names a queue folder: use letters, digits, `-`, `_` \
                     and `.` only (and not `mail`, which is the mail's)",
                    self.func
                )));
            }
        }
        let states = self.strings("states")?;
        let known: Vec<&str> = crate::alert::TransitionKind::ALL
            .iter()
            .map(|k| k.as_str())
            .chain([super::format::ACK_KIND, super::format::DIGEST_KIND])
            .collect();
        for s in &states {
            if !known.contains(&s.as_str()) {
                return Err(err(format!(
                    "{}(): states: {s:?} is not a transition kind; use some of {}",
                    self.func,
                    known.join(", ")
                )));
            }
        }
        let pattern = self.string("match")?;
        if pattern.as_deref() == Some("") {
            return Err(err(format!(
                "{}(): match is empty: give a glob such as \"web*\", or leave it out for every check",
                self.func
            )));
        }
        Ok(ChannelSpec {
            name,
            kind,
            states,
            pattern,
            timeout: self.seconds("timeout", 10.0, 0.1, 3600.0)?,
            retry: self.seconds("retry", 60.0, 0.1, 3600.0)?,
        })
    }
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
    let o = Opts::new("webhook", opts, &[COMMON, HTTP, &["format"]])?;
    check_url("webhook", url)?;
    let format = o.string("format")?.unwrap_or_else(|| "json".into());
    if !FORMATS.contains(&format.as_str()) {
        return Err(err(format!(
            "webhook(): format {format:?} is unknown; use one of {}",
            FORMATS.join(", ")
        )));
    }
    let http = o.http()?;
    if format == "matrix" && http.secret_file.is_none() {
        return Err(err(
            "webhook(): format \"matrix\" needs secret_file: a file holding the bot's access token"
                .into(),
        ));
    }
    o.finish(ChannelKind::Webhook {
        url: url.trim_end_matches('/').into(),
        format,
        http,
    })
}

fn command(path: &str, args: Array, opts: Map) -> RhaiResult<ChannelSpec> {
    let o = Opts::new("command", opts, &[COMMON])?;
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
    o.finish(ChannelKind::Command {
        program: path.into(),
        args,
    })
}

/// `alertmanager(url, opts)` or `alertmanager([url, ...], opts)`: every
/// instance of a cluster by its own URL.
fn alertmanager(urls: Array, opts: Map) -> RhaiResult<ChannelSpec> {
    let o = Opts::new("alertmanager", opts, &[COMMON, HTTP, &["labels", "repeat"]])?;
    if urls.is_empty() {
        return Err(err(
            "alertmanager(): the list of URLs is empty: give each instance of the cluster, \
             e.g. [\"http://am1:9093\", \"http://am2:9093\"]"
                .into(),
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
    let http = o.http()?;
    o.finish(ChannelKind::Alertmanager {
        urls: list,
        labels,
        repeat: o.seconds("repeat", 60.0, 0.1, 3600.0)?,
        http,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_in_messages_keep_only_the_server() {
        assert_eq!(
            redact_url("https://hooks.example.org/services/T0/B0/secret"),
            "https://hooks.example.org/…"
        );
        assert_eq!(
            redact_url("http://u:pw@127.0.0.1:9093"),
            "http://127.0.0.1:9093"
        );
    }

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
