//! `elasticsearch(url, #{ index, ... })`: results as documents, through
//! the `_bulk` API that Elasticsearch 7 and 8 and OpenSearch 1 and 2 share.
//! One POST per batch: NDJSON, an action line then the document, each
//! ending in a newline.
//!
//! Each document is the `json_lines` object plus `@timestamp`. The action
//! is `create` with an `_id` made from the result (its time and a hash of
//! its record), so a batch sent again after a lost answer finds the
//! documents already there (409) instead of adding them twice, and data
//! streams (which take `create` only) work too.
//!
//! The answer is read item by item: a document refused for good (400 or
//! 413 for the document itself: a mapping conflict, say) is logged and let
//! go; any other failure (429, 5xx, an index closed, missing or blocked,
//! no permission) stops the batch there, and it and the rest are sent
//! again from the spool.

use super::result::PassiveResult;
use super::sink::{DeliveryError, Sink};
use crate::clock::utc_civil;
use crate::net::http;

/// The index of a document: `pattern` with `%Y`, `%m`, `%d`, `%H` and `%%`
/// replaced from `time` (Unix micros) in UTC, as Logstash and Beats name
/// their daily indices.
pub fn index_name(pattern: &str, time: i64) -> String {
    let c = utc_civil(time.div_euclid(1_000_000));
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars();
    while let Some(ch) = chars.next() {
        if ch != '%' {
            out.push(ch);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&format!("{:04}", c.year)),
            Some('m') => out.push_str(&format!("{:02}", c.month)),
            Some('d') => out.push_str(&format!("{:02}", c.day)),
            Some('H') => out.push_str(&format!("{:02}", c.hour)),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// Why `pattern` cannot name an index (Elasticsearch's rules: lowercase,
/// none of `\ / * ? " < > | , #`, space or `:`, not starting with `-`, `_`
/// or `+`, at most 255 bytes), or `None` when it can.
pub fn index_problem(pattern: &str) -> Option<String> {
    let mut rest = pattern;
    while let Some(at) = rest.find('%') {
        match rest[at + 1..].chars().next() {
            Some('Y' | 'm' | 'd' | 'H' | '%') => rest = &rest[at + 2..],
            _ => {
                return Some(format!(
                    "index `{pattern}`: only %Y, %m, %d, %H and %% may follow a `%`"
                ))
            }
        }
    }
    let sample = index_name(pattern, 1_700_000_000_000_000);
    if sample.is_empty() || sample == "." || sample == ".." {
        return Some(format!("index `{pattern}` is empty"));
    }
    if sample.len() > 255 {
        return Some(format!("index `{pattern}` is longer than 255 bytes"));
    }
    if sample.starts_with(['-', '_', '+']) {
        return Some(format!(
            "index `{pattern}` may not start with `-`, `_` or `+`"
        ));
    }
    if let Some(c) = sample
        .chars()
        .find(|c| c.is_uppercase() || "\\/*?\"<>|, #:".contains(*c) || c.is_control())
    {
        return Some(format!(
            "index `{pattern}` may not contain {c:?}: index names are lowercase, without \\ / * ? \" < > | , # : or spaces"
        ));
    }
    None
}

/// 64-bit FNV-1a, for documents' `_id`s (stable across versions of
/// picomon, unlike std's hasher).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The `@timestamp` of a result: RFC 3339 in UTC, milliseconds.
fn timestamp(time: i64) -> String {
    let c = utc_civil(time.div_euclid(1_000_000));
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        time.rem_euclid(1_000_000) / 1000
    )
}

pub struct Elasticsearch {
    endpoint: String,
    index: String,
    headers: Vec<(String, String)>,
    auth: Option<String>,
    batch: usize,
    agent: http::Client,
}

impl Elasticsearch {
    /// `auth` is the `Authorization` header, if any (see
    /// [`authorization`]).
    pub fn new(
        url: &str,
        index: &str,
        headers: Vec<(String, String)>,
        auth: Option<String>,
        batch: usize,
        agent: http::Client,
    ) -> Elasticsearch {
        Elasticsearch {
            endpoint: format!("{}/_bulk", url.trim_end_matches('/')),
            index: index.to_string(),
            headers,
            auth,
            batch: batch.max(1),
            agent,
        }
    }

    /// The document of one result and its `_id`.
    pub fn document(r: &PassiveResult) -> (serde_json::Value, String) {
        let mut doc = r.to_value();
        let json = doc.to_string();
        doc["@timestamp"] = timestamp(r.time).into();
        let id = format!("{:x}-{:016x}", r.time, fnv1a(json.as_bytes()));
        (doc, id)
    }

    /// The NDJSON body of one `_bulk` request.
    pub fn body(&self, batch: &[PassiveResult]) -> String {
        let mut body = String::new();
        for r in batch {
            let (doc, id) = Elasticsearch::document(r);
            let action = serde_json::json!({
                "create": { "_index": index_name(&self.index, r.time), "_id": id }
            });
            body.push_str(&action.to_string());
            body.push('\n');
            body.push_str(&doc.to_string());
            body.push('\n');
        }
        body
    }
}

/// The `Authorization` header from `secret_file`'s first line:
/// `USER PASSWORD` is HTTP Basic; `ApiKey ...`, `Bearer ...` or
/// `Basic ...` is used as it is; a single word is an Elasticsearch API key
/// (the base64 `id:key` Elasticsearch hands out as `encoded`).
pub fn authorization(line: &str) -> Option<String> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    for scheme in ["ApiKey ", "Bearer ", "Basic "] {
        if line.starts_with(scheme) {
            return Some(line.to_string());
        }
    }
    Some(match line.split_once(char::is_whitespace) {
        Some((user, pw)) => http::basic_auth(user, pw.trim_start()),
        None => format!("ApiKey {line}"),
    })
}

/// What the answer said about one document.
enum Item {
    Taken,
    /// Refused for good: the reason.
    Refused(String),
    /// Not taken now, to be sent again: the reason.
    Later(String),
}

fn reason(item: &serde_json::Value) -> String {
    let e = &item["error"];
    match (e["type"].as_str(), e["reason"].as_str()) {
        (Some(t), Some(r)) => format!("{t}: {}", r.chars().take(300).collect::<String>()),
        _ => e.to_string().chars().take(300).collect(),
    }
}

/// Reads each item of a `_bulk` answer, in the order sent; `None` when the
/// answer is not one (too few items, not JSON).
fn items(answer: &serde_json::Value, sent: usize) -> Option<Vec<Item>> {
    let items = answer["items"].as_array()?;
    if items.len() != sent {
        return None;
    }
    items
        .iter()
        .map(|entry| {
            // One key: the action (`create`), holding the item's result.
            let item = entry.as_object()?.values().next()?;
            let status = item["status"].as_u64()?;
            let why = || format!("HTTP {status}, {}", reason(item));
            // An index that is closed, missing (auto-creation off) or
            // blocked (disk full) takes documents again once fixed.
            let index_state = matches!(
                item["error"]["type"].as_str(),
                Some(
                    "index_closed_exception"
                        | "index_not_found_exception"
                        | "cluster_block_exception"
                )
            );
            Some(match status {
                200..=299 => Item::Taken,
                // Already there: an earlier attempt's answer was lost.
                409 => Item::Taken,
                // The document itself (a mapping conflict, too large).
                400 | 413 if !index_state => Item::Refused(why()),
                _ => Item::Later(why()),
            })
        })
        .collect()
}

impl Sink for Elasticsearch {
    fn batch_size(&self) -> usize {
        self.batch
    }

    fn deliver(&mut self, batch: &[PassiveResult]) -> Result<usize, DeliveryError> {
        let mut req = self
            .agent
            .post(&self.endpoint)
            .header("Content-Type", "application/x-ndjson")
            .header("Accept", "application/json");
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        if let Some(auth) = &self.auth {
            req = req.header("Authorization", auth);
        }
        let resp = req
            .send(self.body(batch))
            .map_err(|e| DeliveryError::none(http::describe(&self.endpoint, e)))?;
        let status = resp.status();
        if status == 413 {
            return Err(DeliveryError::none(format!(
                "{} (lower the output's `batch`, or raise http.max_content_length)",
                http::refusal(&self.endpoint, resp)
            )));
        }
        if status != 200 {
            return Err(DeliveryError::none(http::refusal(&self.endpoint, resp)));
        }
        let text = resp.into_text(64 << 20).map_err(|e| {
            DeliveryError::none(format!("{}: cannot read the answer: {e}", self.endpoint))
        })?;
        let answer: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let Some(items) = items(&answer, batch.len()) else {
            return Err(DeliveryError::none(format!(
                "{} answered 200 but not with one bulk item per document: {}",
                self.endpoint,
                text.trim().chars().take(300).collect::<String>()
            )));
        };
        let mut refused = 0;
        for (i, (item, r)) in items.into_iter().zip(batch).enumerate() {
            let what = || {
                format!(
                    "{}{} at {}",
                    r.host,
                    r.service
                        .as_deref()
                        .map(|s| format!("/{s}"))
                        .unwrap_or_default(),
                    timestamp(r.time)
                )
            };
            match item {
                Item::Taken => {}
                Item::Refused(why) => {
                    log::warn!(
                        "{} refused the document of {} for good ({why}): it is dropped; check the index's mapping",
                        self.endpoint,
                        what()
                    );
                    refused += 1;
                }
                Item::Later(why) => {
                    return Err(DeliveryError {
                        delivered: i,
                        refused,
                        message: format!(
                            "{} could not take the document of {} now ({why})",
                            self.endpoint,
                            what()
                        ),
                    })
                }
            }
        }
        Ok(refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_follow_the_result_time_in_utc() {
        // 2023-11-14T22:13:20Z
        let t = 1_700_000_000_000_000;
        assert_eq!(index_name("picomon-%Y.%m.%d", t), "picomon-2023.11.14");
        assert_eq!(index_name("p-%Y%m%d%H-%%", t), "p-2023111422-%");
        assert_eq!(timestamp(t + 123_456), "2023-11-14T22:13:20.123Z");
        assert_eq!(index_problem("picomon-%Y.%m.%d"), None);
        assert!(index_problem("Picomon").is_some());
        assert!(index_problem("_x").is_some());
        assert!(index_problem("a b").is_some());
        assert!(index_problem("x-%s").unwrap().contains("%Y"));
    }

    #[test]
    fn bulk_items_are_taken_refused_or_sent_again() {
        let answer = serde_json::json!({ "took": 3, "errors": true, "items": [
            { "create": { "_index": "p", "_id": "1", "status": 201, "result": "created" } },
            { "create": { "_index": "p", "_id": "2", "status": 409,
                          "error": { "type": "version_conflict_engine_exception", "reason": "exists" } } },
            { "create": { "_index": "p", "_id": "3", "status": 400,
                          "error": { "type": "mapper_parsing_exception", "reason": "failed to parse" } } },
            { "create": { "_index": "p", "_id": "4", "status": 400,
                          "error": { "type": "index_closed_exception", "reason": "closed" } } },
            { "create": { "_index": "p", "_id": "5", "status": 429,
                          "error": { "type": "es_rejected_execution_exception", "reason": "busy" } } },
            { "create": { "_index": "p", "_id": "6", "status": 404,
                          "error": { "type": "index_not_found_exception", "reason": "no such index" } } },
        ]});
        let kinds: Vec<&str> = items(&answer, 6)
            .expect("six items")
            .iter()
            .map(|i| match i {
                Item::Taken => "taken",
                Item::Refused(_) => "refused",
                Item::Later(_) => "later",
            })
            .collect();
        assert_eq!(
            kinds,
            ["taken", "taken", "refused", "later", "later", "later"]
        );
        match &items(&answer, 6).expect("items")[2] {
            Item::Refused(why) => {
                assert_eq!(why, "HTTP 400, mapper_parsing_exception: failed to parse")
            }
            _ => panic!("item 3 is refused"),
        }
        assert!(items(&answer, 5).is_none(), "a count that does not match");
        assert!(items(&serde_json::json!({ "error": "x" }), 1).is_none());
    }

    #[test]
    fn secret_lines_become_authorization_headers() {
        assert_eq!(
            authorization("Aladdin open sesame").as_deref(),
            Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
        );
        assert_eq!(authorization("abc==").as_deref(), Some("ApiKey abc=="));
        assert_eq!(authorization("Bearer t").as_deref(), Some("Bearer t"));
        assert_eq!(authorization(""), None);
    }
}
