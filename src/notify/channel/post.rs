//! What a channel's queue holds: one rendered notification, the exact
//! bytes to send however late (so a Matrix transaction id or an
//! Alertmanager `startsAt` is the same on every try).
//!
//! ```text
//! picomon-post 1
//! composed: 1800000000000000
//! id: 1800000000000000-000003     <- unique: Matrix's transaction id
//! about: problem: disk on web1    <- for logs
//! tries: 1                        <- permanent refusals so far
//! header: Title: ...              <- non-secret headers of the format
//!
//! {"text": ...}                   <- the body, byte for byte
//! ```
//!
//! Secrets (tokens, `Authorization` headers of the config) are never
//! written here: the deliverer adds them at send time.

use crate::clock::UnixMicros;
use crate::queue::envelope::{self, one_line, Head};
use crate::queue::Item;

const MAGIC: &str = "picomon-post 1";

/// One queued notification.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Post {
    pub composed: UnixMicros,
    /// Unique per post and stable across tries.
    pub id: String,
    /// What it is about, one line, for logs.
    pub about: String,
    /// Permanent refusals so far.
    pub tries: u32,
    /// Headers the format asks for (ntfy's Title, Content-Type), never a
    /// secret.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Item for Post {
    fn encode(&self, reason: Option<&str>) -> Vec<u8> {
        let mut head = Head::new(MAGIC);
        head.field("composed", self.composed)
            .field("id", &self.id)
            .field("about", &self.about);
        if self.tries > 0 {
            head.field("tries", self.tries);
        }
        for (k, v) in &self.headers {
            head.field("header", format!("{}: {v}", one_line(k)));
        }
        head.finish(reason, &self.body)
    }

    fn decode(bytes: &[u8]) -> Result<Post, String> {
        let (fields, body) = envelope::read(MAGIC, bytes)?;
        let mut p = Post {
            body: body.to_vec(),
            ..Post::default()
        };
        for (key, v) in fields {
            match key {
                "composed" => {
                    p.composed = v.parse().map_err(|_| format!("bad composed time {v:?}"))?
                }
                "id" => p.id = v.to_string(),
                "about" => p.about = v.to_string(),
                "tries" => p.tries = v.parse().map_err(|_| format!("bad count {v:?}"))?,
                "header" => {
                    let (k, val) = v.split_once(": ").ok_or(format!("bad header {v:?}"))?;
                    p.headers.push((k.to_string(), val.to_string()));
                }
                _ => {} // `reason`, and what a newer picomon may add
            }
        }
        if p.id.is_empty() {
            return Err("no id".into());
        }
        Ok(p)
    }

    fn composed(&self) -> UnixMicros {
        self.composed
    }

    fn fresh(&self) -> Post {
        Post {
            tries: 0,
            ..self.clone()
        }
    }

    fn describe(&self) -> String {
        self.about.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_post_reads_back_byte_for_byte() {
        let p = Post {
            composed: 42,
            id: "42-000001".into(),
            about: "problem: disk\non web1".into(),
            tries: 2,
            headers: vec![("Title".into(), "disk CRITICAL".into())],
            body: b"{\"a\":\n\n1}".to_vec(),
        };
        let back = Post::decode(&p.encode(Some("HTTP 400\nbad"))).unwrap();
        assert_eq!(back.body, p.body);
        assert_eq!(back.about, "problem: disk on web1");
        assert_eq!(back.tries, 2);
        assert_eq!(back.headers, p.headers);
        assert_eq!(back.fresh().tries, 0);
        assert!(Post::decode(b"hello").is_err());
    }
}
