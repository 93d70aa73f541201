//! A check's last output as the loop keeps it between runs.
//!
//! Outputs of many checks often differ only in their performance data:
//! 100,000 `tcp` checks against 100 ports say 100 different things before
//! the `|`, and each its own time after it. So the text before ` | ` is a
//! shared string (checks saying the same share one) and a short
//! performance part is kept inline: a check then costs no allocation of
//! its own for its output. Anything else (no `|`, several lines, a long
//! performance part) is kept whole in the shared string.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// The longest performance part kept inline.
const TAIL: usize = 15;

/// What separates the text from its performance data.
pub const BAR: &str = " | ";

#[derive(Clone, PartialEq, Eq)]
pub struct OutputText {
    /// The whole text, or the part before ` | ` when `tail_len` > 0.
    head: Arc<str>,
    /// The performance part after ` | `: its first `tail_len` bytes.
    tail: [u8; TAIL],
    tail_len: u8,
}

impl Default for OutputText {
    fn default() -> OutputText {
        OutputText::whole(Arc::from(""))
    }
}

impl OutputText {
    /// `text` kept whole in one shared string.
    pub fn whole(text: Arc<str>) -> OutputText {
        OutputText {
            head: text,
            tail: [0; TAIL],
            tail_len: 0,
        }
    }

    /// `text`, its head shared by `share` unless this output's head is
    /// already the same text.
    pub fn replaced(&self, text: &str, share: impl FnOnce(&str) -> Arc<str>) -> OutputText {
        let (head, tail) = split(text);
        let head = if *self.head == *head {
            Arc::clone(&self.head)
        } else {
            share(head)
        };
        let mut out = OutputText::whole(head);
        out.tail[..tail.len()].copy_from_slice(tail.as_bytes());
        out.tail_len = tail.len() as u8;
        out
    }

    /// Whether this is `text`.
    pub fn is(&self, text: &str) -> bool {
        match self.tail() {
            None => *self.head == *text,
            Some(tail) => text
                .strip_prefix(&*self.head)
                .and_then(|rest| rest.strip_prefix(BAR))
                .is_some_and(|rest| rest == tail),
        }
    }

    /// The text, borrowed when it is kept whole.
    pub fn text(&self) -> Cow<'_, str> {
        match self.tail() {
            None => Cow::Borrowed(&self.head),
            Some(tail) => Cow::Owned(format!("{}{BAR}{tail}", self.head)),
        }
    }

    /// The first line (an output with an inline part has one line).
    pub fn first_line(&self) -> Cow<'_, str> {
        match self.tail() {
            None => Cow::Borrowed(self.head.lines().next().unwrap_or("")),
            Some(_) => self.text(),
        }
    }

    /// The first line as a shared string: this output's own when it is
    /// kept whole in one line.
    pub fn first_line_shared(&self) -> Arc<str> {
        match (self.tail(), self.head.contains('\n')) {
            (None, false) => Arc::clone(&self.head),
            _ => Arc::from(self.first_line()),
        }
    }

    /// The text as its parts: the head and, when kept inline, the
    /// performance part (the text is `head` + `" | "` + `tail`).
    pub fn parts(&self) -> (&str, Option<&str>) {
        (&self.head, self.tail())
    }

    /// The first line, as an output of its own: this one when it has one
    /// line.
    pub fn first_line_only(&self) -> OutputText {
        match (self.tail(), self.head.split_once('\n')) {
            (None, Some((first, _))) => OutputText::whole(Arc::from(first)),
            _ => self.clone(),
        }
    }

    fn tail(&self) -> Option<&str> {
        match self.tail_len {
            0 => None,
            // Cut at a char boundary from a str (see `split`).
            n => std::str::from_utf8(&self.tail[..n as usize]).ok(),
        }
    }
}

impl fmt::Display for OutputText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.head)?;
        if let Some(tail) = self.tail() {
            f.write_str(BAR)?;
            f.write_str(tail)?;
        }
        Ok(())
    }
}

impl fmt::Debug for OutputText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.text(), f)
    }
}

/// `text` as (head, inline part): the inline part empty when the text is
/// kept whole.
fn split(text: &str) -> (&str, &str) {
    if !text.contains('\n') {
        if let Some(at) = text.rfind(BAR) {
            let tail = &text[at + BAR.len()..];
            if (1..=TAIL).contains(&tail.len()) {
                return (&text[..at], tail);
            }
        }
    }
    (text, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh(text: &str) -> OutputText {
        OutputText::default().replaced(text, |h| Arc::from(h))
    }

    #[test]
    fn an_output_reads_back_as_it_was_said() {
        for text in [
            "",
            "TCP OK - 0 s response time on 127.0.0.1 port 22 | time=0.000101s",
            "DISK OK | /=1%",
            "no data",
            "OK | a very long performance part=123456789",
            "two | bars | x=1",
            "OK |",
            "OK | ",
            "OK |  x=1",
            "first | x=1\nsecond line",
            "ü | é=1",
            " | x",
        ] {
            let o = fresh(text);
            assert_eq!(o.text(), text, "{text:?}");
            assert_eq!(o.to_string(), text, "{text:?}");
            assert!(o.is(text), "{text:?}");
            assert!(!o.is(&format!("{text}x")), "{text:?}");
            assert_eq!(o.first_line(), text.lines().next().unwrap_or(""));
            assert_eq!(&*o.first_line_shared(), text.lines().next().unwrap_or(""));
        }
    }

    #[test]
    fn a_short_performance_part_is_kept_inline_and_the_head_shared() {
        let a = fresh("TCP OK - 0 s response time on 127.0.0.1 port 22 | time=0.000101s");
        assert_eq!(a.tail(), Some("time=0.000101s"));
        let b = a.replaced(
            "TCP OK - 0 s response time on 127.0.0.1 port 22 | time=0.000202s",
            |_| panic!("the head is the same: not shared anew"),
        );
        assert!(Arc::ptr_eq(&a.head, &b.head));
        assert_eq!(b.tail(), Some("time=0.000202s"));
        let long = fresh("OK | a very long performance part=123456789");
        assert_eq!(long.tail(), None, "kept whole");
        assert_eq!(std::mem::size_of::<OutputText>(), 32);
    }
}
