//! `icinga2_api(url, user, password_file, ca)`: one
//! `POST /v1/actions/process-check-result` per result, over TLS checked
//! against Icinga's own CA.
//!
//! The object is named, not filtered (`"service": "host!service"`), so a
//! name cannot turn into a filter expression. A 404 (no such host or
//! service) or 400 is final: retrying cannot help, so the result is logged
//! and let go instead of blocking every later result. 401/403, 5xx and
//! network errors are retried.

use super::result::PassiveResult;
use super::sink::{DeliveryError, Sink};
use crate::net::http;

pub struct Icinga2Api {
    pub endpoint: String,
    pub auth: Option<String>,
    pub agent: http::Client,
    pub check_source: String,
}

impl Icinga2Api {
    /// `auth` is the `Authorization` header (`None`: the client
    /// certificate of `agent` authenticates).
    pub fn new(url: &str, auth: Option<String>, agent: http::Client) -> Icinga2Api {
        let check_source = crate::host::this_host();
        Icinga2Api {
            endpoint: format!(
                "{}/v1/actions/process-check-result",
                url.trim_end_matches('/')
            ),
            auth,
            agent,
            check_source,
        }
    }

    /// The request body for one result.
    pub fn body(&self, r: &PassiveResult) -> serde_json::Value {
        let start = r.time as f64 / 1e6;
        let mut body = serde_json::json!({
            "exit_status": r.code(),
            "plugin_output": r.output,
            "performance_data": split_perfdata(&r.perfdata),
            "check_source": self.check_source,
            "execution_start": start,
            "execution_end": start + r.duration.as_secs_f64(),
        });
        match &r.service {
            Some(s) => {
                body["type"] = "Service".into();
                body["service"] = format!("{}!{}", r.host, s).into();
            }
            None => {
                body["type"] = "Host".into();
                body["host"] = r.host.clone().into();
            }
        }
        body
    }
}

/// Perfdata items separated by spaces; a quoted label may hold spaces.
pub fn split_perfdata(perf: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in perf.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                cur.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    items.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        items.push(cur);
    }
    items
}

impl Sink for Icinga2Api {
    fn batch_size(&self) -> usize {
        50
    }

    fn deliver(&mut self, batch: &[PassiveResult]) -> Result<usize, DeliveryError> {
        let mut refused = 0;
        for (i, r) in batch.iter().enumerate() {
            let mut req = self
                .agent
                .post(&self.endpoint)
                .header("Accept", "application/json")
                .header("Content-Type", "application/json");
            if let Some(auth) = &self.auth {
                req = req.header("Authorization", auth);
            }
            let sent = req.send(self.body(r).to_string());
            let failed = |message| DeliveryError {
                delivered: i,
                refused,
                message,
            };
            let resp = sent.map_err(|e| failed(http::describe(&self.endpoint, e)))?;
            match resp.status() {
                200..=299 => {}
                code @ (400 | 404) => {
                    log::error!(
                        "Icinga 2 refused the result for {}{} (HTTP {code}: {}): is the object defined there, with passive checks enabled? Set host_name/service_name on the check to match.",
                        r.host,
                        r.service.as_deref().map(|s| format!("!{s}")).unwrap_or_default(),
                        http::body_excerpt(resp)
                    );
                    refused += 1;
                }
                _ => return Err(failed(http::refusal(&self.endpoint, resp))),
            }
        }
        Ok(refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfdata_split_keeps_quoted_labels_whole() {
        assert_eq!(
            split_perfdata("'my disk'=5GB;8;9 load1=0.5  x=1"),
            ["'my disk'=5GB;8;9", "load1=0.5", "x=1"]
        );
        assert!(split_perfdata("  ").is_empty());
    }
}
