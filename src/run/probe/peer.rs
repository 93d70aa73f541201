//! `peer(url [, #{ ca_file, timeout }])`: another picomon's
//! `/api/v1/health`. OK while it answers ok; CRITICAL when it cannot be
//! reached, answers something else, or says it is not ok, with its reason
//! in the output. Two picomons that each run a `peer()` of the other are
//! told when the other's host dies, loses its network or cannot mail.

use std::path::PathBuf;
use std::time::Duration;

use super::socket::Deadline;
use super::Report;
use crate::health::Health;
use crate::model::{Outcome, Probe, Status};

/// The most of a health answer read.
const BODY_LIMIT: u64 = 64 * 1024;
/// The most of a checks list read (10,000 checks fit).
const CHECKS_LIMIT: u64 = 32 * 1024 * 1024;

#[derive(Debug)]
pub struct PeerProbe {
    /// The peer's base URL, without a trailing `/`.
    pub url: String,
    pub ca_file: Option<PathBuf>,
    /// Bounds the request instead of the check's timeout.
    pub timeout: Option<Duration>,
}

impl PeerProbe {
    fn health_url(&self) -> String {
        format!("{}{}", self.url, "/api/v1/health")
    }

    /// The identities of the checks whose outage the peer announced.
    fn announced(&self, agent: &crate::net::http::Client) -> Result<Vec<String>, String> {
        let url = format!("{}/api/v1/checks", self.url);
        let resp = agent
            .get(&url)
            .call()
            .map_err(|e| crate::net::http::describe(&url, e))?;
        if resp.status() != 200 {
            return Err(crate::net::http::refusal(&url, resp));
        }
        let body = resp
            .into_text(CHECKS_LIMIT)
            .map_err(|e| format!("{url}: cannot read the answer: {e}"))?;
        let v: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| format!("{url}: not JSON: {e}"))?;
        Ok(v["checks"]
            .as_array()
            .map(|a| a.as_slice())
            .unwrap_or_default()
            .iter()
            .filter(|c| c["announced"] == true)
            .filter_map(|c| c["id"].as_str().map(str::to_string))
            .collect())
    }

    /// The peer's health, or why it could not be had.
    fn fetch(&self, agent: &crate::net::http::Client) -> Result<Health, String> {
        let url = self.health_url();
        let resp = agent
            .get(&url)
            .call()
            .map_err(|e| crate::net::http::describe(&url, e))?;
        let code = resp.status();
        if code != 200 && code != 503 {
            return Err(crate::net::http::refusal(&url, resp));
        }
        let body = resp
            .into_text(BODY_LIMIT)
            .map_err(|e| format!("{url}: cannot read the answer: {e}"))?;
        serde_json::from_str(&body).map_err(|e| {
            format!(
                "{url} answered HTTP {code} but not with picomon's health ({e}): is it a picomon?"
            )
        })
    }
}

impl Probe for PeerProbe {
    fn run(&self, timeout: Duration) -> Outcome {
        let deadline = Deadline::after(self.timeout.unwrap_or(timeout));
        let report = Report::new("PEER");
        let agent = match crate::net::http::client_agent(
            self.timeout.unwrap_or(timeout),
            self.ca_file.as_deref(),
            None,
        ) {
            Ok(a) => a,
            Err(e) => return report.done(Status::Unknown, e, vec![], &deadline),
        };
        let h = match self.fetch(&agent) {
            Ok(h) => h,
            Err(e) => return report.done(Status::Critical, e, vec![], &deadline),
        };
        // What it announced: left to it here. Not known: announced here
        // too (a duplicate, never a silence).
        let (announced, note) = match self.announced(&agent) {
            Ok(ids) => (ids, String::new()),
            Err(e) => (Vec::new(), format!("cannot tell what it announced: {e}")),
        };
        let age = h
            .last_tick_age
            .map(|a| format!("last tick {a} s ago"))
            .unwrap_or_else(|| "no tick yet".into());
        let mail = match h.mail.oldest_age {
            Some(a) => format!("{} mails queued, the oldest for {a} s", h.mail.queued),
            None => "no mail queued".into(),
        };
        let facts = format!(
            "picomon {} at {}: {age}, {mail}, {} in PROBLEM",
            h.version, self.url, h.problems
        );
        let mut out = match (h.ok, h.reason) {
            (true, _) => report.done(Status::Ok, facts, vec![], &deadline),
            (false, reason) => report.done(
                Status::Critical,
                format!(
                    "not ok: {} ({facts})",
                    reason.unwrap_or_else(|| "no reason given".into())
                ),
                vec![],
                &deadline,
            ),
        };
        if !announced.is_empty() {
            out.long_output = format!("announced by it: {}", announced.join(", "));
        }
        if !note.is_empty() {
            out.long_output = note;
        }
        out.data = Some(Box::new(
            serde_json::json!({ crate::health::PEER_ANNOUNCED: announced }),
        ));
        out
    }
}
