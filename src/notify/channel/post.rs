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

/// `s` without line breaks or other control characters (a file line, a
/// header value).
pub fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

impl Item for Post {
    fn encode(&self, reason: Option<&str>) -> Vec<u8> {
        let mut out = format!(
            "{MAGIC}\ncomposed: {}\nid: {}\nabout: {}\n",
            self.composed,
            one_line(&self.id),
            one_line(&self.about)
        );
        if self.tries > 0 {
            out.push_str(&format!("tries: {}\n", self.tries));
        }
        for (k, v) in &self.headers {
            out.push_str(&format!("header: {}: {}\n", one_line(k), one_line(v)));
        }
        if let Some(r) = reason {
            out.push_str(&format!("reason: {}\n", one_line(r)));
        }
        out.push('\n');
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }

    fn decode(bytes: &[u8]) -> Result<Post, String> {
        let split = bytes
            .windows(2)
            .position(|w| w == b"\n\n")
            .ok_or("no blank line after the head")?;
        let head = std::str::from_utf8(&bytes[..split]).map_err(|_| "head is not UTF-8")?;
        let mut lines = head.lines();
        if lines.next() != Some(MAGIC) {
            return Err(format!("does not start with {MAGIC:?}"));
        }
        let mut p = Post {
            body: bytes[split + 2..].to_vec(),
            ..Post::default()
        };
        for line in lines {
            match line.split_once(": ") {
                Some(("composed", v)) => {
                    p.composed = v.parse().map_err(|_| format!("bad composed time {v:?}"))?
                }
                Some(("id", v)) => p.id = v.to_string(),
                Some(("about", v)) => p.about = v.to_string(),
                Some(("tries", v)) => {
                    p.tries = v.parse().map_err(|_| format!("bad count {v:?}"))?
                }
                Some(("header", v)) => {
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
