//! How a channel's posts reach their receiver: an HTTP request (webhooks,
//! Matrix, Alertmanager) or a program run (`command()`).
//!
//! Answers, for the shared queue ([`crate::queue`]):
//!
//! ```text
//!  2xx / exit 0                  delivered, removed
//!  no answer, 408, 429, 5xx,     the receiver is down or busy: the pass
//!  exit != 0, timeout            stops, backs off, and keeps the order
//!  other 4xx (never succeeds)    counted; the 3rd goes to failed/ with the
//!                                reason (the channel waits meanwhile)
//! ```
//!
//! Secrets (configured headers, the token of `secret_file`) are added to
//! the request here, never stored in the queue, never in a message: every
//! message names the channel and the server, not the URL's path.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::model::Status;
use crate::net::http::{body_excerpt, client_agent, read_secret};
use crate::queue::{Deliverer, Settled, MAX_PERMANENT_TRIES};
use crate::run::plugin::{run_with_input, PluginCommand, RunningGroups};

use super::format::{env_of, postpone_ends};
use super::post::Post;
use super::spec::{redact_url, HttpOpts};

/// Where an HTTP channel sends, and how.
pub enum Endpoint {
    /// POST to the URL.
    Post,
    /// PUT to `URL/send/m.room.message/<post id>`: the id makes a retry
    /// idempotent on the Matrix server.
    MatrixRoom,
    /// POST alerts to an Alertmanager instance: a late one keeps its
    /// firing alerts' lifetime ([`postpone_ends`]).
    Alertmanager,
}

/// An HTTP channel's deliverer.
pub struct Http {
    name: String,
    url: String,
    shown: String,
    endpoint: Endpoint,
    /// Configured headers and the bearer token: secret.
    secret_headers: Vec<(String, String)>,
    timeout: Duration,
    agent: crate::net::http::Client,
}

impl Http {
    /// Reads the secret and CA files; an error names the channel, the
    /// setting and the file.
    pub fn new(
        name: &str,
        url: &str,
        endpoint: Endpoint,
        opts: &HttpOpts,
        timeout: Duration,
    ) -> Result<Http, String> {
        let mut secret_headers = opts.headers.clone();
        if let Some(file) = &opts.secret_file {
            let token =
                read_secret(file).map_err(|e| format!("config.notify {name}: secret_file: {e}"))?;
            crate::notify::mail::smtp::warn_if_others_can_read(
                &format!("config.notify {name}: secret_file"),
                &file.display().to_string(),
            );
            if token.is_empty() {
                return Err(format!(
                    "config.notify {name}: secret_file {} is empty: put the access token on its first line",
                    file.display()
                ));
            }
            secret_headers.push(("Authorization".into(), format!("Bearer {token}")));
        }
        let agent = client_agent(timeout, opts.ca_file.as_deref(), opts.client.as_ref())
            .map_err(|e| format!("config.notify {name}: {e}"))?;
        Ok(Http {
            name: name.to_string(),
            url: url.to_string(),
            shown: redact_url(url),
            endpoint,
            secret_headers,
            timeout,
            agent,
        })
    }
}

/// Percent-encodes what is not unreserved in a URL path segment.
fn path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// What a permanent refusal means for a post: counted, and given up at the
/// bound. Either way the channel waits (its order is kept).
fn refused(post: &Post, why: String) -> Settled<Post> {
    let n = post.tries + 1;
    if n >= MAX_PERMANENT_TRIES {
        return Settled {
            failed: vec![(post.clone(), format!("refused {n} times, last: {why}"))],
            ..Settled::default()
        };
    }
    Settled {
        owed: Some(Post {
            tries: n,
            ..post.clone()
        }),
        retry: vec![(
            "*".into(),
            format!("{why} (try {n} of {MAX_PERMANENT_TRIES})"),
        )],
        blocks: true,
        ..Settled::default()
    }
}

impl Deliverer for Http {
    type Item = Post;

    fn attempt(&self, post: &Post, timeout: Duration) -> Result<Settled<Post>, String> {
        let late = crate::clock::now_unix_micros() - post.composed;
        let postponed = match self.endpoint {
            Endpoint::Alertmanager => postpone_ends(&post.body, post.composed, late),
            _ => None,
        };
        let body = postponed.as_deref().unwrap_or(&post.body);
        let req = match self.endpoint {
            Endpoint::Post | Endpoint::Alertmanager => self.agent.post(&self.url),
            Endpoint::MatrixRoom => self.agent.put(&format!(
                "{}/send/m.room.message/{}",
                self.url,
                path_segment(&post.id)
            )),
        };
        let mut req = req.timeout(timeout.min(self.timeout));
        for (k, v) in post.headers.iter().chain(&self.secret_headers) {
            req = req.header(k.as_str(), v.as_str());
        }
        // An error may quote the URL (a bad address): never its path.
        let resp = req.send(body).map_err(|e| {
            let e = e.to_string().replace(&self.url, &self.shown);
            format!("cannot reach {}: {e}", self.shown)
        })?;
        let code = resp.status();
        if (200..300).contains(&code) {
            return Ok(Settled {
                delivered: vec![self.name.clone()],
                answer: format!("to {}: HTTP {code}", self.shown),
                ..Settled::default()
            });
        }
        let why = format!(
            "{} answered HTTP {code}: {}",
            self.shown,
            body_excerpt(resp)
        );
        if code == 408 || code == 429 || code >= 500 {
            return Err(why);
        }
        Ok(refused(post, why))
    }
}

/// A `command()` channel's deliverer: the plugin runner's process
/// handling (own group, timeout, TERM then KILL, always reaped).
pub struct Command {
    program: PathBuf,
    args: Vec<String>,
    timeout: Duration,
    /// The run in progress, so shutdown can kill it: no process picomon
    /// started outlives it.
    groups: Arc<RunningGroups>,
}

impl Command {
    pub fn new(
        program: PathBuf,
        args: Vec<String>,
        timeout: Duration,
        groups: Arc<RunningGroups>,
    ) -> Command {
        Command {
            program,
            args,
            timeout,
            groups,
        }
    }
}

impl Deliverer for Command {
    type Item = Post;

    fn attempt(&self, post: &Post, timeout: Duration) -> Result<Settled<Post>, String> {
        let env = serde_json::from_slice(&post.body)
            .map(|v| env_of(&v))
            .unwrap_or_default();
        let cmd = PluginCommand {
            program: &self.program,
            args: &self.args,
            env: &env,
            cwd: None,
            timeout: timeout.min(self.timeout),
            max_output: 8192,
        };
        let out = run_with_input(&cmd, &post.body, Some(&self.groups));
        if out.status != Status::Ok {
            return Err(format!(
                "{} failed ({}): {}",
                self.program.display(),
                out.status.as_str(),
                out.summary
            ));
        }
        Ok(Settled {
            delivered: vec![self.program.display().to_string()],
            answer: format!("by {}: {}", self.program.display(), out.summary),
            ..Settled::default()
        })
    }
}
