//! The Rhai config (SPEC §3): engine set-up, the functions a config may
//! call, validation into a [`Config`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::check::{CheckSpec, Host};

/// TLS mode of the SMTP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    None,
    Starttls,
    Tls,
}

/// `config.emails.*`.
#[derive(Clone, Debug, PartialEq)]
pub struct EmailConfig {
    pub to: Vec<String>,
    pub addr_from: String,
    /// Failover list, in order; each `host[:port]`.
    pub smtp_host: Vec<String>,
    pub smtp_tls: SmtpTls,
    pub smtp_user: String,
    pub smtp_password_file: String,
    /// Extra CA certificates (PEM) to trust, for private CAs.
    pub smtp_ca_file: String,
    pub smtp_retry_timeout: Duration,
    pub smtp_keepalive_timeout: Duration,
    pub subject_tpl: String,
    pub report_every: Duration,
    pub report_subject: String,
    pub watchdog_subject: String,
    pub digest_over: usize,
}

/// A validated config.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    pub base_tick: Duration,
    pub workers: usize,
    pub state_dir: PathBuf,
    pub max_output: usize,
    pub plugin_dirs: Vec<PathBuf>,
    pub emails: EmailConfig,
    pub hosts: Vec<Host>,
    pub checks: Vec<CheckSpec>,
}

impl Config {
    /// The longest timeout of any check (for the watchdog's hang window).
    pub fn max_timeout(&self) -> Duration {
        self.checks
            .iter()
            .map(|c| c.timeout)
            .max()
            .unwrap_or(Duration::ZERO)
    }
}

/// A config error, printed as `FILE:LINE:COL: message`.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}:{col}: {message}", file.display())]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// Reads and evaluates the config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    todo!("{path:?}")
}

/// The one-paragraph summary `--check-config` prints.
pub fn summary(cfg: &Config) -> String {
    format!("{} hosts, {} checks", cfg.hosts.len(), cfg.checks.len())
}
