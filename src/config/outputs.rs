//! The output constructors a config calls in `config.outputs = [ ... ]`,
//! each building a plain [`OutputSpec`]: `json_lines(path)`,
//! `nsca_web(url, user, password_file)`, `command_file(path)`,
//! `icinga2_api(url, user, password_file[, ca])`, `redis(url, #{ stream |
//! list | channel })`, `elasticsearch(url)`, each also with a trailing
//! options map (`ca_file` there as for `nsca_web`: the one name of a CA
//! file in every config).
//!
//! `nsca_web` and `icinga2_api` also take `client_cert` and `client_key`
//! (PEM files): a TLS client certificate for servers that authenticate
//! their clients so (Icinga 2's `client_cn`); with one, `icinga2_api`'s
//! user and password file may be `""`.
//!
//! Options every output takes: `name` (the spool folder
//! `state_dir/spool/NAME`; default kind and position, e.g. `nsca_web-1`)
//! and `spool_max_bytes` (default 64 MiB). A wrong option is an error at
//! the line that gives it, like every other config typo.

use std::path::PathBuf;

use rhai::{Engine, Map};

use crate::config::options::{err, Opts, RhaiResult};
use crate::passive::{
    elasticsearch_index_problem, OutputKind, OutputSpec, RedisDest, RedisUrl, ATOMIC_LINE,
    DEFAULT_SPOOL_MAX_BYTES,
};

/// Adds the output constructors and the `OutputSpec` type to `engine`.
pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<OutputSpec>("OutputSpec");
    engine.register_fn("to_string", |s: &mut OutputSpec| {
        format!("{}({})", s.kind.label(), s.kind.target())
    });
    engine.register_fn("to_debug", |s: &mut OutputSpec| {
        format!("{}({})", s.kind.label(), s.kind.target())
    });

    engine.register_fn("json_lines", |path: &str| json_lines(path, Map::new()));
    engine.register_fn("json_lines", json_lines);

    engine.register_fn("nsca_web", |url: &str, user: &str, pw: &str| {
        nsca_web(url, user, pw, Map::new())
    });
    engine.register_fn("nsca_web", nsca_web);

    engine.register_fn("command_file", |path: &str| command_file(path, Map::new()));
    engine.register_fn("command_file", command_file);

    engine.register_fn("icinga2_api", |url: &str, user: &str, pw: &str| {
        icinga2_api(url, user, pw, "", Map::new())
    });
    engine.register_fn(
        "icinga2_api",
        |url: &str, user: &str, pw: &str, ca: &str| icinga2_api(url, user, pw, ca, Map::new()),
    );
    engine.register_fn("icinga2_api", icinga2_api);
    engine.register_fn(
        "icinga2_api",
        |url: &str, user: &str, pw: &str, opts: Map| icinga2_api(url, user, pw, "", opts),
    );

    // Without options only to say which are needed.
    engine.register_fn("redis", |url: &str| redis(url, Map::new()));
    engine.register_fn("redis", redis);

    engine.register_fn("elasticsearch", |url: &str| elasticsearch(url, Map::new()));
    engine.register_fn("elasticsearch", elasticsearch);
}

/// Checks the options of output constructor `func`: `allowed`, and
/// `name` and `spool_max_bytes`, which every output takes.
fn options(func: &str, map: Map, allowed: &[&str]) -> RhaiResult<Opts> {
    let mut known = allowed.to_vec();
    known.extend(["name", "spool_max_bytes"]);
    Opts::new(&format!("{func}()"), map, &known)
}

/// `ca_file`, the name every other TLS option uses; `ca` is its older
/// alias, kept so configs written for it still load.
fn ca_file(o: &Opts) -> RhaiResult<Option<PathBuf>> {
    let (new, old) = (o.text("ca_file")?, o.text("ca")?);
    if new.is_some() && old.is_some() {
        return Err(err(format!(
            "{}: options `ca_file` and `ca` name the same file; keep `ca_file`",
            o.probe()
        )));
    }
    Ok(new.or(old).filter(|s| !s.is_empty()).map(PathBuf::from))
}

/// Seconds in 0.1..=3600, `default` when not given.
fn seconds(o: &Opts, key: &str, default: f64) -> RhaiResult<std::time::Duration> {
    o.seconds(key, default, 0.1, 3600.0)
}

/// The options every output takes, around its `kind`.
fn finish(o: &Opts, kind: OutputKind) -> RhaiResult<OutputSpec> {
    let mut spec = OutputSpec::new(kind);
    if let Some(name) = o.text("name")? {
        let ok = !name.is_empty()
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !ok {
            return Err(err(format!(
                "{}: name `{name}` names a spool folder: use letters, digits, `-`, `_` and `.` only",
                o.probe()
            )));
        }
        spec.name = Some(name);
    }
    spec.spool_max_bytes = o.count(
        "spool_max_bytes",
        DEFAULT_SPOOL_MAX_BYTES as i64,
        4096,
        i64::MAX,
    )? as u64;
    Ok(spec)
}

fn non_empty(func: &str, what: &str, v: &str) -> RhaiResult<()> {
    if v.trim().is_empty() {
        return Err(err(format!("{func}(): {what} is empty")));
    }
    Ok(())
}

fn check_url(func: &str, url: &str) -> RhaiResult<()> {
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
        return Err(err(format!(
            "{func}(): url `{url}` must start with http:// or https:// and name a server"
        )));
    }
    Ok(())
}

fn json_lines(path: &str, opts: Map) -> RhaiResult<OutputSpec> {
    let o = options("json_lines", opts, &[])?;
    non_empty("json_lines", "path", path)?;
    finish(&o, OutputKind::JsonLines { path: path.into() })
}

fn nsca_web(url: &str, user: &str, password_file: &str, opts: Map) -> RhaiResult<OutputSpec> {
    let o = options(
        "nsca_web",
        opts,
        &[
            "lines_per_post",
            "max_line_size",
            "timeout",
            "ca_file",
            "ca",
            "client_cert",
            "client_key",
        ],
    )?;
    check_url("nsca_web", url)?;
    non_empty("nsca_web", "user", user)?;
    non_empty("nsca_web", "password_file", password_file)?;
    let kind = OutputKind::NscaWeb {
        url: url.into(),
        user: user.into(),
        password_file: password_file.into(),
        lines_per_post: o.count("lines_per_post", 400, 1, 100_000)? as usize,
        max_line_size: o.count("max_line_size", 8192, 128, 1 << 24)? as usize,
        timeout: seconds(&o, "timeout", 3.0)?,
        ca: ca_file(&o)?,
        client: o.client()?,
    };
    finish(&o, kind)
}

fn command_file(path: &str, opts: Map) -> RhaiResult<OutputSpec> {
    let o = options("command_file", opts, &["max_line_size"])?;
    non_empty("command_file", "path", path)?;
    let kind = OutputKind::CommandFile {
        path: path.into(),
        max_line_size: o.count(
            "max_line_size",
            ATOMIC_LINE as i64 - 1,
            128,
            ATOMIC_LINE as i64 - 1,
        )? as usize,
    };
    finish(&o, kind)
}

fn icinga2_api(
    url: &str,
    user: &str,
    password_file: &str,
    ca: &str,
    opts: Map,
) -> RhaiResult<OutputSpec> {
    let o = options(
        "icinga2_api",
        opts,
        &["timeout", "ca_file", "ca", "client_cert", "client_key"],
    )?;
    check_url("icinga2_api", url)?;
    // The CA as its fourth argument or, as everywhere else, `ca_file`.
    let ca = match (ca.is_empty(), ca_file(&o)?) {
        (true, from_opts) => from_opts,
        (false, None) => Some(PathBuf::from(ca)),
        (false, Some(_)) => {
            return Err(err(
                "icinga2_api(): the CA is named twice, as the fourth argument and as `ca_file`; keep one",
            ))
        }
    };
    let client = o.client()?;
    if client.is_none() || !user.is_empty() {
        non_empty("icinga2_api", "user", user)?;
        non_empty("icinga2_api", "password_file", password_file)?;
    }
    let kind = OutputKind::Icinga2Api {
        url: url.into(),
        user: user.into(),
        password_file: password_file.into(),
        ca,
        timeout: seconds(&o, "timeout", 5.0)?,
        client,
    };
    finish(&o, kind)
}

fn redis(url: &str, opts: Map) -> RhaiResult<OutputSpec> {
    let o = options(
        "redis",
        opts,
        &[
            "stream",
            "list",
            "channel",
            "maxlen",
            "secret_file",
            "ca_file",
            "timeout",
            "batch",
        ],
    )?;
    let parsed = RedisUrl::parse(url).map_err(|e| err(format!("redis(): {e}")))?;
    let mut dests = Vec::new();
    for key in ["stream", "list", "channel"] {
        if let Some(name) = o.text(key)? {
            non_empty("redis", key, &name)?;
            dests.push((key, name));
        }
    }
    let (which, key) = match dests.len() {
        1 => dests.remove(0),
        0 => {
            return Err(err(
                "redis(): say where records go: #{ stream: \"picomon\" } (XADD), #{ list: \"picomon\" } (LPUSH) or #{ channel: \"picomon\" } (PUBLISH)",
            ))
        }
        _ => {
            return Err(err(format!(
                "redis(): give one of stream, list or channel, not {}",
                dests.iter().map(|d| d.0).collect::<Vec<_>>().join(" and ")
            )))
        }
    };
    if which != "stream" && o.has("maxlen") {
        return Err(err(format!(
            "redis(): maxlen trims a stream; a {which} has none (drop maxlen, or use stream)"
        )));
    }
    let dest = match which {
        "stream" => RedisDest::Stream {
            key,
            maxlen: o.count("maxlen", 100_000, 0, i64::MAX)? as u64,
        },
        "list" => RedisDest::List { key },
        _ => RedisDest::Channel { key },
    };
    let ca = o.path("ca_file")?;
    if ca.is_some() && !parsed.tls {
        return Err(err(format!(
            "redis(): ca_file is for TLS: write the url as rediss://{}",
            url.trim_start_matches("redis://")
        )));
    }
    let kind = OutputKind::Redis {
        url: url.into(),
        parsed,
        dest,
        secret_file: o.path("secret_file")?,
        ca,
        timeout: seconds(&o, "timeout", 5.0)?,
        batch: o.count("batch", 100, 1, 10_000)? as usize,
    };
    finish(&o, kind)
}

fn elasticsearch(url: &str, opts: Map) -> RhaiResult<OutputSpec> {
    let o = options(
        "elasticsearch",
        opts,
        &[
            "index",
            "headers",
            "secret_file",
            "ca_file",
            "client_cert",
            "client_key",
            "timeout",
            "batch",
        ],
    )?;
    check_url("elasticsearch", url)?;
    if url.contains('@') {
        return Err(err(format!(
            "elasticsearch(): url `{url}` holds credentials: put `USER PASSWORD` (or an API key) in a file given as secret_file"
        )));
    }
    let index = o
        .text("index")?
        .unwrap_or_else(|| "picomon-%Y.%m.%d".into());
    if let Some(problem) = elasticsearch_index_problem(&index) {
        return Err(err(format!("elasticsearch(): {problem}")));
    }
    let mut headers = Vec::new();
    if let Some(v) = o.raw("headers") {
        let map = v.clone().try_cast::<Map>().ok_or_else(|| {
            err("elasticsearch(): option `headers` must be a map: #{ \"X-Name\": \"value\" }")
        })?;
        for (name, value) in map {
            let value = value.into_string().map_err(|t| {
                err(format!(
                    "elasticsearch(): header `{name}` must be a string, not {t}"
                ))
            })?;
            let token = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c));
            if !token || value.contains(['\r', '\n']) {
                return Err(err(format!(
                    "elasticsearch(): header `{name}` is not a valid HTTP header (name: letters, digits, `-`; value: one line)"
                )));
            }
            let lower = name.to_ascii_lowercase();
            if lower == "authorization" {
                return Err(err(
                    "elasticsearch(): put the Authorization in secret_file (USER PASSWORD, or an API key), not in headers, so it stays out of the config",
                ));
            }
            if lower == "content-type" || lower == "content-length" {
                return Err(err(format!(
                    "elasticsearch(): picomon sets `{name}` itself (application/x-ndjson)"
                )));
            }
            headers.push((name.to_string(), value));
        }
    }
    let kind = OutputKind::Elasticsearch {
        url: url.trim_end_matches('/').into(),
        index,
        headers,
        secret_file: o.path("secret_file")?,
        ca: o.path("ca_file")?,
        client: o.client()?,
        timeout: seconds(&o, "timeout", 10.0)?,
        batch: o.count("batch", 500, 1, 10_000)? as usize,
    };
    finish(&o, kind)
}
