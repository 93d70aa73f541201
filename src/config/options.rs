//! Option maps of the config's constructors (`tcp(h, 443, #{ tls: true })`,
//! `webhook(url, #{ timeout: 5 })`, `redis(url, #{ stream: "x" })`): the one
//! reader of them, and the Rhai error type every config function returns.
//!
//! Every constructor checks its map up front, so a typo or a value of the
//! wrong type is a config error at the line that wrote it, naming the option
//! and the fix, instead of a probe, channel or output that silently does
//! something else.

use std::path::PathBuf;
use std::time::Duration;

use rhai::{Array, Dynamic, EvalAltResult, Map, Position};

use crate::duration::{option_seconds, Given};
use crate::net::http::ClientTls;

use crate::run::probe::range::Range;

/// What a config function returns to Rhai on a bad argument.
pub type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

/// A runtime error for the config script; Rhai fills in the position.
pub fn err(msg: impl Into<String>) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(msg.into()),
        Position::NONE,
    ))
}

/// A checked option map of one constructor.
#[derive(Debug)]
pub struct Opts {
    /// The constructor as messages name it (`tcp`, `webhook()`).
    probe: String,
    map: Map,
}

impl Opts {
    /// Checks that every key of `map` is one of `allowed`. `probe` is the
    /// constructor as messages name it: `tcp` for a probe, `webhook()` for
    /// a channel or an output.
    pub fn new(probe: &str, map: Map, allowed: &[&str]) -> RhaiResult<Opts> {
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                let known = if allowed.is_empty() {
                    "it takes no options".to_string()
                } else {
                    format!("known options: {}", allowed.join(", "))
                };
                return Err(err(format!("{probe}: unknown option `{key}` ({known})")));
            }
        }
        Ok(Opts {
            probe: probe.to_string(),
            map,
        })
    }

    /// No options given.
    pub fn empty(probe: &str) -> Opts {
        Opts {
            probe: probe.to_string(),
            map: Map::new(),
        }
    }

    fn get(&self, key: &str) -> Option<&Dynamic> {
        self.map.get(key).filter(|v| !v.is_unit())
    }

    fn wrong(&self, key: &str, want: &str, example: &str, got: &Dynamic) -> Box<EvalAltResult> {
        err(format!(
            "{}: option `{key}` must be {want} (e.g. `{key}: {example}`), not {} `{got}`",
            self.probe,
            got.type_name(),
        ))
    }

    /// The raw value of `key`, for options with their own shapes.
    pub fn raw(&self, key: &str) -> Option<&Dynamic> {
        self.get(key)
    }

    /// True when `key` was given (and is not `()`).
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The probe name, for messages.
    pub fn probe(&self) -> &str {
        &self.probe
    }

    /// An error about option `key`, for checks a getter cannot do.
    pub fn bad(&self, key: &str, why: impl std::fmt::Display) -> Box<EvalAltResult> {
        err(format!("{}: option `{key}`: {why}", self.probe))
    }

    pub fn string(&self, key: &str, example: &str) -> RhaiResult<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) if v.is_string() => Ok(Some(v.to_string())),
            Some(v) => Err(self.wrong(key, "a string", example, v)),
        }
    }

    pub fn bool(&self, key: &str) -> RhaiResult<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .map_err(|_| self.wrong(key, "true or false", "true", v)),
        }
    }

    /// An integer in `min..=max`.
    pub fn int(&self, key: &str, min: i64, max: i64, example: &str) -> RhaiResult<Option<i64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => {
                let n = v
                    .as_int()
                    .map_err(|_| self.wrong(key, "an integer", example, v))?;
                if n < min || n > max {
                    return Err(self.bad(key, format!("{n} is out of range {min}..={max}")));
                }
                Ok(Some(n))
            }
        }
    }

    /// A number (integer or float) in `min..=max`.
    pub fn float(&self, key: &str, min: f64, max: f64, example: &str) -> RhaiResult<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => {
                let n = as_number(v).ok_or_else(|| self.wrong(key, "a number", example, v))?;
                if !(min..=max).contains(&n) {
                    return Err(self.bad(key, format!("{n} is out of range {min}..={max}")));
                }
                Ok(Some(n))
            }
        }
    }

    /// A Nagios range, given as a string (`"10:20"`) or a plain number.
    pub fn range(&self, key: &str) -> RhaiResult<Option<Range>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) if v.is_string() => Range::parse(&v.to_string())
                .map(Some)
                .map_err(|e| self.bad(key, e)),
            Some(v) => match as_number(v) {
                Some(n) => Ok(Some(Range::upper(n))),
                None => Err(self.wrong(key, "a Nagios range", "\"10:20\"", v)),
            },
        }
    }

    /// A list of strings, or one string standing for a list of one.
    pub fn strings(&self, key: &str, example: &str) -> RhaiResult<Option<Vec<String>>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) if v.is_string() => Ok(Some(vec![v.to_string()])),
            Some(v) if v.is_array() => {
                let arr = v.clone().into_array().unwrap_or_default();
                arr.iter()
                    .map(|x| {
                        if x.is_string() || as_number(x).is_some() {
                            Ok(x.to_string())
                        } else {
                            Err(self.wrong(key, "a list of strings", example, v))
                        }
                    })
                    .collect::<RhaiResult<Vec<_>>>()
                    .map(Some)
            }
            Some(v) => Err(self.wrong(key, "a list of strings", example, v)),
        }
    }

    /// One of the words in `choices`, as the value it stands for.
    pub fn choice<T: Copy>(
        &self,
        key: &str,
        example: &str,
        choices: &[(&str, T)],
    ) -> RhaiResult<Option<T>> {
        let Some(word) = self.string(key, example)? else {
            return Ok(None);
        };
        match choices.iter().find(|(w, _)| *w == word) {
            Some((_, v)) => Ok(Some(*v)),
            None => {
                let words: Vec<String> = choices.iter().map(|(w, _)| format!("{w:?}")).collect();
                Err(self.bad(key, format!("{word:?} is not one of {}", words.join(", "))))
            }
        }
    }

    /// `ip_version: 4` or `6`.
    pub fn ip_version(&self, key: &str) -> RhaiResult<Option<u8>> {
        match self.int(key, 4, 6, "6")? {
            None => Ok(None),
            Some(4) => Ok(Some(4)),
            Some(6) => Ok(Some(6)),
            Some(n) => Err(self.bad(key, format!("{n} is neither 4 nor 6"))),
        }
    }

    /// A duration in whole seconds, at least 1: a number of seconds or
    /// `"90s"`, `"30m"`, `"2h"`, `"1d"` (at most [`crate::duration::MAX_SECS`]).
    pub fn duration(&self, key: &str) -> RhaiResult<Option<u64>> {
        let what = format!("{}: option `{key}`", self.probe);
        match self.get(key) {
            None => Ok(None),
            Some(v) if v.is_string() => crate::duration::parse(&what, &v.to_string())
                .map(Some)
                .map_err(err),
            Some(v) => match as_number(v) {
                Some(n) if n >= 1.0 => crate::duration::checked(&what, n)
                    .map(|d| Some(d.as_secs_f64().ceil() as u64))
                    .map_err(err),
                Some(n) => Err(self.bad(key, format!("{n} is less than one second"))),
                None => Err(self.wrong(key, "a duration", "\"1h\"", v)),
            },
        }
    }

    /// A TCP/UDP port number.
    pub fn port(&self, key: &str) -> RhaiResult<Option<u16>> {
        Ok(self.int(key, 1, 65535, "8080")?.map(|p| p as u16))
    }

    // The readers below word their errors as channels and outputs always
    // have (`webhook(): option `name` must be a string, not i64`).

    /// A string, without an example in the message.
    pub fn text(&self, key: &str) -> RhaiResult<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.clone().into_string().map(Some).map_err(|t| {
                err(format!(
                    "{}: option `{key}` must be a string, not {t}",
                    self.probe
                ))
            }),
        }
    }

    /// A path; `""` is the same as not giving it.
    pub fn path(&self, key: &str) -> RhaiResult<Option<PathBuf>> {
        Ok(self.text(key)?.filter(|s| !s.is_empty()).map(PathBuf::from))
    }

    /// A whole number in `min..=max`, `default` when not given.
    pub fn count(&self, key: &str, default: i64, min: i64, max: i64) -> RhaiResult<i64> {
        let Some(v) = self.get(key) else {
            return Ok(default);
        };
        let n = v.as_int().map_err(|t| {
            err(format!(
                "{}: option `{key}` must be a whole number, not {t}",
                self.probe
            ))
        })?;
        if n < min || n > max {
            return Err(err(format!(
                "{}: option `{key}` = {n} is out of range ({min}..={max})",
                self.probe
            )));
        }
        Ok(n)
    }

    /// Seconds (a number, or a duration as text: `"5m"`) in `min..=max`,
    /// `default` when not given.
    pub fn seconds(&self, key: &str, default: f64, min: f64, max: f64) -> RhaiResult<Duration> {
        let Some(v) = self.get(key) else {
            return Ok(Duration::from_secs_f64(default));
        };
        let text = v.is_string().then(|| v.to_string());
        let given = match (&text, as_number(v)) {
            (Some(t), _) => Given::Text(t),
            (None, Some(n)) => Given::Number(n),
            (None, None) => Given::Other(v.type_name()),
        };
        let what = format!("{}: option `{key}`", self.probe);
        option_seconds(&what, given, min, max).map_err(err)
    }

    /// A list of strings, or one string standing for a list of one; empty
    /// when not given.
    pub fn list(&self, key: &str) -> RhaiResult<Vec<String>> {
        let Some(v) = self.get(key) else {
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
                        "{}: option `{key}` must be a list of strings, not one holding {t}",
                        self.probe
                    ))
                })
            })
            .collect()
    }

    /// A map of one-line strings (`headers`, `labels`), in key order.
    pub fn pairs(&self, key: &str) -> RhaiResult<Vec<(String, String)>> {
        let Some(v) = self.get(key) else {
            return Ok(Vec::new());
        };
        let Some(m) = v.read_lock::<Map>() else {
            return Err(err(format!(
                "{}: option `{key}` must be a map like #{{ team: \"ops\" }}",
                self.probe
            )));
        };
        let mut out = Vec::new();
        for (k, x) in m.iter() {
            let val = x.clone().into_string().map_err(|t| {
                err(format!(
                    "{}: option `{key}.{k}` must be a string, not {t}",
                    self.probe
                ))
            })?;
            if k.contains(['\r', '\n', ':']) || val.contains(['\r', '\n']) {
                return Err(err(format!(
                    "{}: option `{key}.{k}` must be one line (and its name without `:`)",
                    self.probe
                )));
            }
            out.push((k.to_string(), val));
        }
        Ok(out)
    }

    /// `client_cert` and `client_key`, both or neither.
    pub fn client(&self) -> RhaiResult<Option<ClientTls>> {
        // `pair` adds the `()` itself.
        let func = self.probe.strip_suffix("()").unwrap_or(&self.probe);
        ClientTls::pair(func, self.text("client_cert")?, self.text("client_key")?).map_err(err)
    }
}

/// A Rhai integer or float as f64.
pub fn as_number(v: &Dynamic) -> Option<f64> {
    if let Ok(i) = v.as_int() {
        Some(i as f64)
    } else {
        v.as_float().ok()
    }
}

/// Checks a port given as a positional argument (`tcp(h, 443)`).
pub fn check_port(probe: &str, port: i64) -> RhaiResult<u16> {
    u16::try_from(port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| err(format!("{probe}: port {port} is out of range 1..=65535")))
}
