//! What a config declares in `config.outputs = [ ... ]`, and the Rhai
//! constructors that build it: `json_lines(path)`, `nsca_web(url, user,
//! password_file)`, `command_file(path)`, `icinga2_api(url, user,
//! password_file[, ca])`, `redis(url, #{ stream | list | channel })`,
//! `elasticsearch(url)`, each also with a trailing options map (`ca_file`
//! there as for `nsca_web`: the one name of a CA file in every config).
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

use crate::duration::{option_seconds, Given};
use std::path::PathBuf;
use std::time::Duration;

use rhai::{Dynamic, Engine, EvalAltResult, Map, Position};

use super::command_file::ATOMIC_LINE;
use super::redis::{RedisDest, RedisUrl};
use crate::net::http::ClientTls;

pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 64 << 20;

/// One configured output.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputSpec {
    pub kind: OutputKind,
    /// Spool folder name; `None` = kind and position in `config.outputs`.
    pub name: Option<String>,
    pub spool_max_bytes: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum OutputKind {
    /// `"-"` is stdout.
    JsonLines {
        path: PathBuf,
    },
    NscaWeb {
        url: String,
        user: String,
        password_file: PathBuf,
        lines_per_post: usize,
        max_line_size: usize,
        timeout: Duration,
        ca: Option<PathBuf>,
        client: Option<ClientTls>,
    },
    CommandFile {
        path: PathBuf,
        max_line_size: usize,
    },
    Icinga2Api {
        url: String,
        user: String,
        password_file: PathBuf,
        ca: Option<PathBuf>,
        timeout: Duration,
        client: Option<ClientTls>,
    },
    Redis {
        /// As written (for messages), and parsed.
        url: String,
        parsed: RedisUrl,
        dest: RedisDest,
        secret_file: Option<PathBuf>,
        ca: Option<PathBuf>,
        timeout: Duration,
        batch: usize,
    },
    Elasticsearch {
        url: String,
        /// The index, with `%Y`, `%m`, `%d`, `%H` from the result's time.
        index: String,
        headers: Vec<(String, String)>,
        secret_file: Option<PathBuf>,
        ca: Option<PathBuf>,
        client: Option<ClientTls>,
        timeout: Duration,
        batch: usize,
    },
}

impl OutputKind {
    /// The constructor's name, used in default spool names and messages.
    pub fn label(&self) -> &'static str {
        match self {
            OutputKind::JsonLines { .. } => "json_lines",
            OutputKind::NscaWeb { .. } => "nsca_web",
            OutputKind::CommandFile { .. } => "command_file",
            OutputKind::Icinga2Api { .. } => "icinga2_api",
            OutputKind::Redis { .. } => "redis",
            OutputKind::Elasticsearch { .. } => "elasticsearch",
        }
    }

    /// Where results go, for the dump and logs (never a password).
    pub fn target(&self) -> String {
        match self {
            OutputKind::JsonLines { path } | OutputKind::CommandFile { path, .. } => {
                path.display().to_string()
            }
            OutputKind::NscaWeb { url, .. } | OutputKind::Icinga2Api { url, .. } => url.clone(),
            OutputKind::Redis { url, dest, .. } => format!("{url} {}", dest.describe()),
            OutputKind::Elasticsearch { url, index, .. } => format!("{url} index {index}"),
        }
    }
}

impl OutputSpec {
    fn new(kind: OutputKind) -> OutputSpec {
        OutputSpec {
            kind,
            name: None,
            spool_max_bytes: DEFAULT_SPOOL_MAX_BYTES,
        }
    }

    /// The spool folder name of the output at `index` in `config.outputs`.
    pub fn spool_name(&self, index: usize) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{}-{}", self.kind.label(), index + 1))
    }
}

type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

fn err(msg: String) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(msg.into(), Position::NONE))
}

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

/// Reads the options map of constructor `func`, refusing keys outside
/// `allowed` (plus `name` and `spool_max_bytes`).
struct Opts {
    func: &'static str,
    map: Map,
}

impl Opts {
    fn new(func: &'static str, map: Map, allowed: &[&str]) -> RhaiResult<Opts> {
        for key in map.keys() {
            let key = key.as_str();
            if key != "name" && key != "spool_max_bytes" && !allowed.contains(&key) {
                let mut known: Vec<&str> = allowed.to_vec();
                known.extend(["name", "spool_max_bytes"]);
                return Err(err(format!(
                    "{func}(): unknown option `{key}` (known options: {})",
                    known.join(", ")
                )));
            }
        }
        Ok(Opts { func, map })
    }

    fn get(&self, key: &str) -> Option<&Dynamic> {
        self.map.get(key)
    }

    fn int(&self, key: &str, default: i64, min: i64, max: i64) -> RhaiResult<i64> {
        let Some(v) = self.get(key) else {
            return Ok(default);
        };
        let n = v.as_int().map_err(|t| {
            err(format!(
                "{}(): option `{key}` must be a whole number, not {t}",
                self.func
            ))
        })?;
        if n < min || n > max {
            return Err(err(format!(
                "{}(): option `{key}` = {n} is out of range ({min}..={max})",
                self.func
            )));
        }
        Ok(n)
    }

    fn seconds(&self, key: &str, default: f64) -> RhaiResult<Duration> {
        let Some(v) = self.get(key) else {
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
        option_seconds(&what, given, 0.1, 3600.0).map_err(err)
    }

    fn string(&self, key: &str) -> RhaiResult<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.clone().into_string().map(Some).map_err(|t| {
                err(format!(
                    "{}(): option `{key}` must be a string, not {t}",
                    self.func
                ))
            }),
        }
    }

    /// `ca_file`, the name every other TLS option uses; `ca` is its older
    /// alias, kept so configs written for it still load.
    fn ca_file(&self) -> RhaiResult<Option<PathBuf>> {
        let (new, old) = (self.string("ca_file")?, self.string("ca")?);
        if new.is_some() && old.is_some() {
            return Err(err(format!(
                "{}(): options `ca_file` and `ca` name the same file; keep `ca_file`",
                self.func
            )));
        }
        Ok(new.or(old).filter(|s| !s.is_empty()).map(PathBuf::from))
    }

    /// A path option; `""` is the same as not giving it.
    fn path(&self, key: &str) -> RhaiResult<Option<PathBuf>> {
        Ok(self
            .string(key)?
            .filter(|s| !s.is_empty())
            .map(PathBuf::from))
    }

    /// `client_cert` and `client_key`, both or neither.
    fn client(&self) -> RhaiResult<Option<ClientTls>> {
        ClientTls::pair(
            self.func,
            self.string("client_cert")?,
            self.string("client_key")?,
        )
        .map_err(err)
    }

    fn finish(&self, kind: OutputKind) -> RhaiResult<OutputSpec> {
        let mut spec = OutputSpec::new(kind);
        if let Some(name) = self.string("name")? {
            let ok = !name.is_empty()
                && !name.starts_with('.')
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !ok {
                return Err(err(format!(
                    "{}(): name `{name}` names a spool folder: use letters, digits, `-`, `_` and `.` only",
                    self.func
                )));
            }
            spec.name = Some(name);
        }
        spec.spool_max_bytes = self.int(
            "spool_max_bytes",
            DEFAULT_SPOOL_MAX_BYTES as i64,
            4096,
            i64::MAX,
        )? as u64;
        Ok(spec)
    }
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
    let o = Opts::new("json_lines", opts, &[])?;
    non_empty("json_lines", "path", path)?;
    o.finish(OutputKind::JsonLines { path: path.into() })
}

fn nsca_web(url: &str, user: &str, password_file: &str, opts: Map) -> RhaiResult<OutputSpec> {
    let o = Opts::new(
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
        lines_per_post: o.int("lines_per_post", 400, 1, 100_000)? as usize,
        max_line_size: o.int("max_line_size", 8192, 128, 1 << 24)? as usize,
        timeout: o.seconds("timeout", 3.0)?,
        ca: o.ca_file()?,
        client: o.client()?,
    };
    o.finish(kind)
}

fn command_file(path: &str, opts: Map) -> RhaiResult<OutputSpec> {
    let o = Opts::new("command_file", opts, &["max_line_size"])?;
    non_empty("command_file", "path", path)?;
    let kind = OutputKind::CommandFile {
        path: path.into(),
        max_line_size: o.int(
            "max_line_size",
            ATOMIC_LINE as i64 - 1,
            128,
            ATOMIC_LINE as i64 - 1,
        )? as usize,
    };
    o.finish(kind)
}

fn icinga2_api(
    url: &str,
    user: &str,
    password_file: &str,
    ca: &str,
    opts: Map,
) -> RhaiResult<OutputSpec> {
    let o = Opts::new(
        "icinga2_api",
        opts,
        &["timeout", "ca_file", "ca", "client_cert", "client_key"],
    )?;
    check_url("icinga2_api", url)?;
    // The CA as its fourth argument or, as everywhere else, `ca_file`.
    let ca = match (ca.is_empty(), o.ca_file()?) {
        (true, from_opts) => from_opts,
        (false, None) => Some(PathBuf::from(ca)),
        (false, Some(_)) => {
            return Err(err(
                "icinga2_api(): the CA is named twice, as the fourth argument and as `ca_file`; keep one"
                    .to_string(),
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
        timeout: o.seconds("timeout", 5.0)?,
        client,
    };
    o.finish(kind)
}

fn redis(url: &str, opts: Map) -> RhaiResult<OutputSpec> {
    let o = Opts::new(
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
        if let Some(name) = o.string(key)? {
            non_empty("redis", key, &name)?;
            dests.push((key, name));
        }
    }
    let (which, key) = match dests.len() {
        1 => dests.remove(0),
        0 => {
            return Err(err(
                "redis(): say where records go: #{ stream: \"picomon\" } (XADD), #{ list: \"picomon\" } (LPUSH) or #{ channel: \"picomon\" } (PUBLISH)".into(),
            ))
        }
        _ => {
            return Err(err(format!(
                "redis(): give one of stream, list or channel, not {}",
                dests.iter().map(|d| d.0).collect::<Vec<_>>().join(" and ")
            )))
        }
    };
    if which != "stream" && o.get("maxlen").is_some() {
        return Err(err(format!(
            "redis(): maxlen trims a stream; a {which} has none (drop maxlen, or use stream)"
        )));
    }
    let dest = match which {
        "stream" => RedisDest::Stream {
            key,
            maxlen: o.int("maxlen", 100_000, 0, i64::MAX)? as u64,
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
        timeout: o.seconds("timeout", 5.0)?,
        batch: o.int("batch", 100, 1, 10_000)? as usize,
    };
    o.finish(kind)
}

fn elasticsearch(url: &str, opts: Map) -> RhaiResult<OutputSpec> {
    let o = Opts::new(
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
        .string("index")?
        .unwrap_or_else(|| "picomon-%Y.%m.%d".into());
    if let Some(problem) = super::elasticsearch::index_problem(&index) {
        return Err(err(format!("elasticsearch(): {problem}")));
    }
    let mut headers = Vec::new();
    if let Some(v) = o.get("headers") {
        let map = v.clone().try_cast::<Map>().ok_or_else(|| {
            err(
                "elasticsearch(): option `headers` must be a map: #{ \"X-Name\": \"value\" }"
                    .into(),
            )
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
                    "elasticsearch(): put the Authorization in secret_file (USER PASSWORD, or an API key), not in headers, so it stays out of the config".into(),
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
        timeout: o.seconds("timeout", 10.0)?,
        batch: o.int("batch", 500, 1, 10_000)? as usize,
    };
    o.finish(kind)
}
