//! What a config declares in `config.notify = [ ... ]`: one
//! [`ChannelSpec`] per channel, built by the config's constructors
//! (`webhook()`, `command()`, `alertmanager()`, in `crate::config`).
//!
//! Secrets (header values, the token of `secret_file`) are never printed:
//! the debug form of a spec shows header names only.

use std::path::PathBuf;
use std::time::Duration;

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
}
