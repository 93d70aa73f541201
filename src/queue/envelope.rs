//! The file format of every queued item: a head of `key: value` lines
//! that starts with the item kind's magic line, a blank line, then the
//! body byte for byte (a mail's RFC 5322 message, a channel's post).
//!
//! ```text
//! picomon-outbox 1          <- the kind and its version
//! composed: 1800000000000000
//! ...                       <- the kind's own fields, one per line
//! reason: 550 no such user  <- only in failed/: why it was given up
//!
//! <body>
//! ```
//!
//! Values are written on one line (control characters become spaces), so
//! a field can never start a line of its own. Unknown keys are kept by the
//! reader for the kind to ignore: a newer picomon may add fields.

/// A head being written.
#[derive(Debug)]
pub struct Head {
    text: String,
}

impl Head {
    pub fn new(magic: &str) -> Head {
        Head {
            text: format!("{magic}\n"),
        }
    }

    /// Adds `key: value`, the value on one line.
    pub fn field(&mut self, key: &str, value: impl std::fmt::Display) -> &mut Head {
        self.text.push_str(key);
        self.text.push_str(": ");
        self.text.push_str(&one_line(&value.to_string()));
        self.text.push('\n');
        self
    }

    /// The file's bytes: the head, `reason` (for `failed/`), a blank line
    /// and `body`.
    pub fn finish(&mut self, reason: Option<&str>, body: &[u8]) -> Vec<u8> {
        if let Some(r) = reason {
            self.field("reason", r);
        }
        let mut bytes = std::mem::take(&mut self.text).into_bytes();
        bytes.push(b'\n');
        bytes.extend_from_slice(body);
        bytes
    }
}

/// A head's `(key, value)` fields, in file order.
pub type Fields<'a> = Vec<(&'a str, &'a str)>;

/// Splits a file into its head's fields and its body, checking the magic
/// line.
pub fn read<'a>(magic: &str, bytes: &'a [u8]) -> Result<(Fields<'a>, &'a [u8]), String> {
    let split = bytes
        .windows(2)
        .position(|w| w == b"\n\n")
        .ok_or("no blank line after the head")?;
    let head = std::str::from_utf8(&bytes[..split]).map_err(|_| "head is not UTF-8")?;
    let mut lines = head.lines();
    if lines.next() != Some(magic) {
        return Err(format!("does not start with {magic:?}"));
    }
    let fields = lines.filter_map(|l| l.split_once(": ")).collect();
    Ok((fields, &bytes[split + 2..]))
}

/// `s` without line breaks or other control characters (a file line, a
/// header value).
pub fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_and_body_read_back_as_written() {
        let bytes = Head::new("kind 1")
            .field("composed", 17)
            .field("to", "a@example.org")
            .finish(None, b"body\n\nwith a blank line");
        let (fields, body) = read("kind 1", &bytes).unwrap();
        assert_eq!(fields, vec![("composed", "17"), ("to", "a@example.org")]);
        assert_eq!(body, b"body\n\nwith a blank line");
    }

    #[test]
    fn a_value_with_a_line_break_cannot_add_a_field() {
        let bytes = Head::new("kind 1")
            .field("about", "x\nto: mallory@example.org")
            .finish(Some("refused\r\nto: eve"), b"");
        let (fields, _) = read("kind 1", &bytes).unwrap();
        assert_eq!(
            fields,
            vec![
                ("about", "x to: mallory@example.org"),
                ("reason", "refused  to: eve")
            ]
        );
    }

    #[test]
    fn another_kind_or_no_blank_line_is_an_error() {
        let bytes = Head::new("kind 1").finish(None, b"x");
        assert!(read("kind 2", &bytes).unwrap_err().contains("kind 2"));
        assert!(read("kind 1", b"kind 1\nno end").is_err());
    }
}
