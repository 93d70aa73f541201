//! The Rhai config: engine set-up, the functions a config may
//! call, validation into a [`Config`].
//!
//! The script runs once in a sandboxed engine ([`engine`]). It sees a
//! `config` object whose keys ([`keys`]) are checked as they are set, and
//! the functions `host()`, `plugin()`, `shell()`, `add()` ([`checks`]) plus
//! the probe constructors of [`probes`] (their options read by [`options`]). Everything goes into one
//! shared [`builder::Builder`]; when the script has finished, defaults are
//! filled in and the result becomes a [`Config`]. Every error carries
//! `FILE:LINE:COL` ([`error`]).

mod alert_policy;
mod builder;
pub mod channels;
mod checks;
mod contacts;
mod engine;
mod error;
mod imports;
mod keys;
mod maintenance;
pub mod options;
pub mod outputs;
mod pieces;
pub mod preflight;
pub mod probes;
pub mod script;
mod summary;
mod value;
mod when;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::model::{CheckSpec, Host};

pub use checks::{CHECK_OPTIONS, HOST_OPTIONS};
pub use contacts::CONTACT_KEYS;
pub use engine::DEADLINE;
pub use keys::{key_docs, KeyDoc, CONFIG_KEYS, EMAIL_KEYS, REPORT_KEYS};
pub use summary::{contacts_table, summary};
pub use when::WHEN_KEYS;

pub use crate::notify::mail::settings::{EmailConfig, MailSettings, SmtpTls, SubjectStyle};

/// A validated config.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    pub base_tick: Duration,
    pub workers: usize,
    pub state_dir: PathBuf,
    /// Line and column of `config.state_dir = ...`; `(0, 0)` when the
    /// config leaves it at its default.
    pub state_dir_at: (usize, usize),
    /// Line and column of each key the config sets, by full name
    /// (`config.emails.smtp_password_file`); see [`preflight`].
    pub key_at: std::collections::BTreeMap<String, (usize, usize)>,
    /// `config.history_days` and `config.history_max_mb`.
    pub history: crate::history::Limits,
    pub max_output: usize,
    pub plugin_dirs: Vec<PathBuf>,
    /// `config.verb_level`: the log level when neither `-D` nor RUST_LOG
    /// says otherwise.
    pub verb_level: log::LevelFilter,
    /// `config.outputs`: every result also goes to each of these.
    pub outputs: Vec<crate::passive::OutputSpec>,
    /// `config.notify`: channels that get the transitions besides mail.
    pub notify: Vec<crate::notify::channel::spec::ChannelSpec>,
    /// The check option `notify: [names]`, by check identity (only the
    /// checks that set it: nothing per check otherwise).
    pub notify_picks: std::collections::BTreeMap<String, Vec<String>>,
    /// `config.result_dir`: result files dropped here are forwarded to the
    /// outputs; `None` when not set.
    pub result_dir: Option<PathBuf>,
    /// `config.control_group`: members may use the control socket.
    pub control_group: Option<String>,
    /// `config.listen`: where the read-only HTTP listener binds; `None`
    /// when off.
    pub listen: Option<std::net::SocketAddr>,
    /// `config.heartbeat`: URLs GET while healthy (see [`crate::health`]).
    pub heartbeat: Vec<String>,
    /// `config.heartbeat_every`.
    pub heartbeat_every: Duration,
    /// `config.standby_for`: the check whose OK keeps this picomon quiet.
    pub standby_for: Option<String>,
    /// `config.ping_key_file`: the file whose first line is the key of
    /// `/ping/KEY/CHECK` on the listener; `None`: no pings over HTTP.
    pub ping_key_file: Option<PathBuf>,
    /// `maintenance(#{ match, ... })` windows: silences from the config.
    pub maintenance: Vec<crate::alert::quiet::Maintenance>,
    /// `config.default_flap`, `config.default_renotify_every` and
    /// `config.emails.escalate`.
    pub noise: crate::model::PolicyDefaults,
    pub emails: EmailConfig,
    /// `contact(...)` and which checks pick which (`contacts: [...]`).
    pub contacts: crate::model::ContactBook,
    pub hosts: Vec<Host>,
    pub checks: Vec<CheckSpec>,
}

impl<'a> From<&'a Config> for crate::notify::channel::ChannelSettings<'a> {
    fn from(cfg: &'a Config) -> Self {
        crate::notify::channel::ChannelSettings {
            notify: &cfg.notify,
            notify_picks: &cfg.notify_picks,
            contacts: &cfg.contacts,
            digest_over: cfg.emails.digest_over,
            state_dir: &cfg.state_dir,
            config_path: &cfg.path,
        }
    }
}

impl<'a> From<&'a Config> for MailSettings<'a> {
    fn from(cfg: &'a Config) -> Self {
        MailSettings {
            emails: &cfg.emails,
            contacts: &cfg.contacts,
            config_path: &cfg.path,
            listen: cfg.listen,
        }
    }
}

impl Config {
    /// Every secret file this config names: what [`crate::secret::keep`]
    /// reads before a privilege drop.
    pub fn secret_files(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = self
            .secret_files_by_key()
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        crate::sort::ascending(&mut out);
        out.dedup();
        out
    }

    /// [`Config::secret_files`], each with the key that names it
    /// (`config.notify` for a channel's, `config.outputs` for an output's).
    pub fn secret_files_by_key(&self) -> Vec<(&'static str, PathBuf)> {
        let cfg = self;
        use crate::notify::channel::spec::ChannelKind;
        use crate::passive::OutputKind;
        let mut out = Vec::new();
        if !cfg.emails.smtp_password_file.is_empty() {
            out.push((
                "config.emails.smtp_password_file",
                PathBuf::from(&cfg.emails.smtp_password_file),
            ));
        }
        if let Some(p) = &cfg.ping_key_file {
            out.push(("config.ping_key_file", p.clone()));
        }
        if !cfg.emails.ack_secret_file.is_empty() {
            out.push((
                "config.emails.ack_secret_file",
                PathBuf::from(&cfg.emails.ack_secret_file),
            ));
        }
        let mut http = |key: &'static str,
                        secret: Option<&PathBuf>,
                        client: Option<&crate::net::http::ClientTls>| {
            out.extend(secret.map(|p| (key, p.clone())));
            out.extend(client.map(|c| (key, c.key.clone())));
        };
        for ch in &cfg.notify {
            match &ch.kind {
                ChannelKind::Webhook { http: h, .. }
                | ChannelKind::Alertmanager { http: h, .. } => {
                    http("config.notify", h.secret_file.as_ref(), h.client.as_ref())
                }
                ChannelKind::Command { .. } => {}
            }
        }
        for o in &cfg.outputs {
            let key = "config.outputs";
            match &o.kind {
                OutputKind::NscaWeb {
                    password_file,
                    client,
                    ..
                }
                | OutputKind::Icinga2Api {
                    password_file,
                    client,
                    ..
                } => http(
                    key,
                    (!password_file.as_os_str().is_empty()).then_some(password_file),
                    client.as_ref(),
                ),
                OutputKind::Redis { secret_file, .. } => http(key, secret_file.as_ref(), None),
                OutputKind::Elasticsearch {
                    secret_file,
                    client,
                    ..
                } => http(key, secret_file.as_ref(), client.as_ref()),
                OutputKind::JsonLines { .. } | OutputKind::CommandFile { .. } => {}
            }
        }
        out
    }

    /// The longest timeout of any check (for the watchdog's hang window).
    pub fn max_timeout(&self) -> Duration {
        self.checks
            .iter()
            .map(|c| c.timeout())
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// The `--check-config` paragraph; see [`summary`].
    pub fn summary(&self) -> String {
        summary::summary(self)
    }
}

/// A config error, printed as `FILE:LINE:COL: message` (or `FILE: message`
/// when it has no position, e.g. the file cannot be read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based; 0 when the error has no position.
    pub line: usize,
    /// 1-based.
    pub col: usize,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.col,
                self.message
            )
        }
    }
}

/// Reads and evaluates the config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let source = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        line: 0,
        col: 0,
        message: format!("cannot read the config file: {e} (give the right file with -c FILE)"),
    })?;
    let (shared, ran) = evaluate(path, &source);
    // The text is not needed once run (4 MiB of a 100,000-check config's
    // peak while its checks are built).
    drop(source);
    built(path, shared, ran)
}

/// Evaluates `source` as if it were the file `path` (which names the
/// config in messages and gives the default state directory its name).
pub fn load_str(path: &Path, source: &str) -> Result<Config, ConfigError> {
    let (shared, ran) = evaluate(path, source);
    built(path, shared, ran)
}

/// The config a script's run built.
fn built(
    path: &Path,
    shared: builder::Shared,
    ran: Result<(), ConfigError>,
) -> Result<Config, ConfigError> {
    ran?;
    let cfg = shared.with(|b| build_config(path, b))?;
    check_notify_picks(&cfg)?;
    contacts::check_channels(&cfg)?;
    Ok(cfg)
}

/// The names `notify: [...]` may pick: each channel of `config.notify`.
fn channel_names(cfg: &Config) -> Vec<String> {
    cfg.notify
        .iter()
        .enumerate()
        .map(|(i, c)| c.channel_name(i))
        .collect()
}

/// Every channel a check picks with `notify: [...]` must be in
/// `config.notify`: a typo would silently send its alerts nowhere.
fn check_notify_picks(cfg: &Config) -> Result<(), ConfigError> {
    let names = channel_names(cfg);
    for (id, picks) in &cfg.notify_picks {
        let Some(bad) = picks.iter().find(|p| !names.contains(p)) else {
            continue;
        };
        let line = cfg
            .checks
            .iter()
            .find(|c| *c.id == **id)
            .map_or(0, |c| c.line as usize);
        return Err(ConfigError {
            file: cfg.path.clone(),
            line,
            col: 0,
            message: format!(
                "check {id:?}: notify names the channel {bad:?}, which config.notify does not                  have (its channels: {}); give the channel #{{ name: {bad:?} }} or fix the name",
                if names.is_empty() { "none".to_string() } else { names.join(", ") }
            ),
        });
    }
    Ok(())
}

/// Runs the script; the builder holds what it set, even when it failed.
/// The file's stem names the default state directory, so two configs
/// never share one.
fn evaluate(path: &Path, source: &str) -> (builder::Shared, Result<(), ConfigError>) {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "picomon".into());
    let hostname = crate::host::this_host();
    let shared = builder::Shared::new(builder::Builder::new(
        keys::Keys::defaults(&stem, &hostname),
        hostname,
    ));
    let printed = engine::Printed::default();
    let mut engine = engine::build(path, &shared, &printed);
    let ran = match pieces::cut(source, PIECE) {
        None => run_piece(
            path,
            &mut engine,
            &mut rhai::Scope::new(),
            source,
            Duration::ZERO,
        )
        .map(|_| ()),
        Some(pieces) => run_pieces(path, &mut engine, &pieces),
    };
    drop(engine);
    printed.finish(path);
    (shared, ran)
}

/// The size of the pieces a large config is compiled and run in (see
/// [`pieces`]): their compiled form, about 26 times their text, is what
/// the evaluation keeps besides what the script built. Measured with
/// 100,000 `add()` lines (`--check-config`, peak RSS): 117 MiB with
/// pieces of 256 KiB, 109 MiB with 64 KiB, 244 MiB whole; a config under
/// two pieces (1,500 such lines) is compiled whole, as before.
const PIECE: usize = 64 * 1024;

/// Compiles and runs the pieces of a config one after the other, in one
/// scope; the CPU-time deadline counts their runs together.
fn run_pieces(path: &Path, engine: &mut rhai::Engine, pieces: &[&str]) -> Result<(), ConfigError> {
    let mut scope = rhai::Scope::new();
    let mut used = Duration::ZERO;
    let mut lines = 0;
    let mut text = String::new();
    for piece in pieces {
        // Positions are the file's: the piece comes after as many lines.
        text.clear();
        text.extend(std::iter::repeat_n('\n', lines));
        text.push_str(piece);
        used += run_piece(path, engine, &mut scope, &text, used)?;
        lines += piece.bytes().filter(|&b| b == b'\n').count();
    }
    Ok(())
}

/// Compiles and runs `source` in `scope`, with `used` of the CPU-time
/// deadline gone already; the time its run took.
fn run_piece(
    path: &Path,
    engine: &mut rhai::Engine,
    scope: &mut rhai::Scope,
    source: &str,
    used: Duration,
) -> Result<Duration, ConfigError> {
    let ast = engine
        .compile(source)
        .map_err(|e| error::from_parse(path, e))?;
    let started = engine::arm_deadline(engine, used);
    engine
        .run_ast_with_scope(scope, &ast)
        .map_err(|e| error::from_eval(path, *e, &engine::function_names(engine)))?;
    Ok(crate::clock::thread_cpu_time().saturating_sub(started))
}

/// The state directory a config names, even when the config has an error
/// further down (the subcommands need the daemon's socket most when the
/// config was just broken): `config.state_dir` as far as the script ran,
/// and whether the script got far enough to name it (it set the key, or ran
/// to its end). A syntax error stops it before its first line (in a large
/// config run in [`pieces`], before the first line of its piece): then the
/// directory is only the default.
pub fn state_dir_of(path: &Path) -> Result<(PathBuf, bool), ConfigError> {
    let source = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        line: 0,
        col: 0,
        message: format!("cannot read the config file: {e} (give the right file with -c FILE, or --state-dir DIR)"),
    })?;
    let (shared, ran) = evaluate(path, &source);
    Ok(shared.with(|b| {
        let named = ran.is_ok() || b.state_dir_at.is_some();
        (PathBuf::from(&b.keys.state_dir), named)
    }))
}

/// A reload must keep the state directory: the running daemon holds its
/// lock, its control socket and its heartbeat there, and the outbox and
/// queues it delivers from. A config that moves it is refused at the line
/// that sets it; the running config stays in force.
pub fn same_state_dir(running: &Config, new: &Config) -> Result<(), ConfigError> {
    if running.state_dir == new.state_dir {
        return Ok(());
    }
    let (line, col) = new.state_dir_at;
    Err(ConfigError {
        file: new.path.clone(),
        line,
        col,
        message: format!(
            "state_dir cannot change while picomon runs; restart it (it runs on {}, the config now says {}; the running config stays in force)",
            running.state_dir.display(),
            new.state_dir.display()
        ),
    })
}

/// The validated config from what the script built; what can only be
/// checked once every check is known (dependencies) fails here, at the
/// line of the `add()`.
fn build_config(path: &Path, b: &mut builder::Builder) -> Result<Config, ConfigError> {
    checks::identities(b).map_err(|(i, message)| ConfigError {
        file: path.to_path_buf(),
        line: b.checks[i].line,
        col: 1,
        message,
    })?;
    let b = &*b;
    let k = &b.keys;
    let e = &k.emails;
    let noise = alert_policy::resolve(b).map_err(|(i, message)| ConfigError {
        file: path.to_path_buf(),
        line: b.checks[i].line,
        col: 1,
        message,
    })?;
    let mut checks = checks::finish(b, noise);
    // `escalate` may name contacts: the daemon sees their addresses.
    for c in &mut checks {
        if let Some(steps) = c.noise.as_mut().and_then(|n| n.escalate.as_mut()) {
            *steps = contacts::expand_escalate(&b.contacts, steps).into_boxed_slice();
        }
    }
    let contacts = contacts::book(b, &checks);
    if !k.standby_for.is_empty() {
        let known: Vec<crate::model::identity::Known> = checks
            .iter()
            .map(crate::model::identity::Known::from)
            .collect();
        if let Err(e) = crate::model::identity::find(&known, &k.standby_for) {
            let (line, col) = b
                .key_at
                .get("config.standby_for")
                .copied()
                .unwrap_or((0, 0));
            return Err(ConfigError {
                file: path.to_path_buf(),
                line,
                col,
                message: format!(
                    "config.standby_for: {}",
                    e.message(
                        &k.standby_for,
                        &format!(
                            "give the name of a check, usually add(peer(\"http://mon1:9464\"), \
                             #{{ name: {:?} }})",
                            k.standby_for
                        )
                    )
                ),
            });
        }
    }
    Ok(Config {
        path: path.to_path_buf(),
        base_tick: Duration::from_secs_f64(k.base_tick),
        workers: k.workers as usize,
        state_dir: PathBuf::from(&k.state_dir),
        state_dir_at: b.state_dir_at.unwrap_or((0, 0)),
        key_at: b.key_at.clone(),
        history: crate::history::Limits {
            days: k.history_days as u32,
            max_bytes: (k.history_max_mb as u64) << 20,
        },
        max_output: k.max_output as usize,
        plugin_dirs: k.plugin_dirs.iter().map(PathBuf::from).collect(),
        verb_level: match k.verb_level.as_str() {
            "debug" => log::LevelFilter::Debug,
            "warning" => log::LevelFilter::Warn,
            "error" => log::LevelFilter::Error,
            _ => log::LevelFilter::Info,
        },
        outputs: k.outputs.clone(),
        notify: k.notify.clone(),
        // Inserted one by one: collecting into a map builds a sort of its own.
        notify_picks: {
            let mut picks = std::collections::BTreeMap::new();
            for p in &b.checks {
                if let Some(notify) = &p.opts.more().notify {
                    picks.insert(p.id.clone(), notify.clone());
                }
            }
            picks
        },
        result_dir: (!k.result_dir.is_empty()).then(|| PathBuf::from(&k.result_dir)),
        control_group: (!k.control_group.is_empty()).then(|| k.control_group.clone()),
        // Validated when set.
        listen: k.listen.parse().ok(),
        heartbeat: k.heartbeat.clone(),
        heartbeat_every: Duration::from_secs_f64(k.heartbeat_every),
        standby_for: (!k.standby_for.is_empty()).then(|| k.standby_for.clone()),
        ping_key_file: (!k.ping_key_file.is_empty()).then(|| PathBuf::from(&k.ping_key_file)),
        maintenance: b.maintenance.clone(),
        emails: EmailConfig {
            to: e.to.clone(),
            addr_from: e.addr_from.clone(),
            smtp_host: e.smtp_host.clone(),
            smtp_tls: match e.smtp_tls.as_str() {
                "starttls" => SmtpTls::Starttls,
                "tls" => SmtpTls::Tls,
                _ => SmtpTls::None,
            },
            smtp_user: e.smtp_user.clone(),
            smtp_password_file: e.smtp_password_file.clone(),
            smtp_ca_file: e.smtp_ca_file.clone(),
            smtp_retry_timeout: Duration::from_secs_f64(e.smtp_retry_timeout),
            subject_tpl: e.subject_tpl.clone(),
            subject_style: match e.subject_style.as_str() {
                "state" => SubjectStyle::State,
                _ => SubjectStyle::Thread,
            },
            report_every: Duration::from_secs_f64(e.report.every),
            report_subject: e.report.subject.clone(),
            watchdog_subject: e.watchdog_subject.clone(),
            digest_over: e.digest_over as usize,
            reply_to: e.reply_to.clone(),
            ack_from: e.ack_from.clone(),
            ack_secret_file: e.ack_secret_file.clone(),
            availability: e.availability.0,
        },
        noise: crate::model::PolicyDefaults {
            flap: k.default_flap.0,
            renotify_every: alert_policy::renotify(
                "config.default_renotify_every",
                &k.default_renotify_every.clone().into(),
            )
            .unwrap_or(0),
            escalate: contacts::expand_escalate(&b.contacts, &e.escalate.0),
        },
        contacts,
        hosts: b.hosts.clone(),
        checks,
    })
}
