//! What a config declares in `config.outputs = [ ... ]`: one
//! [`OutputSpec`] per output, built by the config's constructors
//! (`json_lines()`, `nsca_web()`, ..., in `crate::config`).

use std::path::PathBuf;
use std::time::Duration;

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
    /// An output with the defaults: named by kind and position, spooling
    /// at most [`DEFAULT_SPOOL_MAX_BYTES`].
    pub fn new(kind: OutputKind) -> OutputSpec {
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
