//! `status --json`'s output: the daemon's compact JSON, indented as it
//! passes, byte by byte, exactly as serde_json's pretty printer writes the
//! same value (two spaces a level, `": "`, an empty `[]` or `{}` on its
//! line). So the CLI prints the status of any number of checks without
//! reading it into structures, and its output stays what it was.
//!
//! It takes valid JSON, as the daemon writes it; it checks nothing but
//! where strings start and end (quotes, backslash escapes) and where the
//! document ends (a line feed outside any bracket).

/// The indenter's state between pieces of input.
#[derive(Debug, Default)]
pub struct Pretty {
    depth: usize,
    in_string: bool,
    /// In a string, after a backslash.
    escaped: bool,
    /// A bracket was opened: a line break goes before its first member,
    /// none before its close when it is empty.
    opened: bool,
}

impl Pretty {
    /// Indents `input`, appending to `out`. `Some(n)` once the document
    /// ended: its line feed was the `n`th byte of `input` (taken, not
    /// written); `None` while it goes on.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        let mut i = 0;
        while i < input.len() {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                    out.push(input[i]);
                    i += 1;
                    continue;
                }
                let rest = &input[i..];
                let run = rest
                    .iter()
                    .position(|&b| b == b'"' || b == b'\\')
                    .unwrap_or(rest.len());
                out.extend_from_slice(&rest[..run]);
                i += run;
                if let Some(&b) = input.get(i) {
                    out.push(b);
                    self.in_string = b == b'\\';
                    self.escaped = b == b'\\';
                    i += 1;
                }
                continue;
            }
            let b = input[i];
            i += 1;
            match b {
                b'\n' if self.depth == 0 => return Some(i),
                b' ' | b'\t' | b'\r' | b'\n' => continue,
                _ => {}
            }
            if std::mem::take(&mut self.opened) {
                if matches!(b, b'}' | b']') {
                    self.depth -= 1;
                    out.push(b);
                    continue;
                }
                self.line(out);
            }
            match b {
                b'{' | b'[' => {
                    out.push(b);
                    self.depth += 1;
                    self.opened = true;
                }
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    self.line(out);
                    out.push(b);
                }
                b',' => {
                    out.push(b',');
                    self.line(out);
                }
                b':' => out.extend_from_slice(b": "),
                b'"' => {
                    out.push(b);
                    self.in_string = true;
                }
                _ => out.push(b),
            }
        }
        None
    }

    /// A line break and the indent of the current depth.
    fn line(&self, out: &mut Vec<u8>) {
        out.push(b'\n');
        out.resize(out.len() + 2 * self.depth, b' ');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `value` compact, fed in pieces of `piece` bytes, then a line feed
    /// and what follows it.
    fn indented(value: &serde_json::Value, piece: usize) -> (String, Option<usize>) {
        let mut input = serde_json::to_vec(value).unwrap();
        let end = input.len() + 1;
        input.extend_from_slice(b"\nafter");
        let (mut p, mut out) = (Pretty::default(), Vec::new());
        let mut taken = 0;
        for chunk in input.chunks(piece) {
            if let Some(n) = p.feed(chunk, &mut out) {
                return (String::from_utf8(out).unwrap(), Some(taken + n - end));
            }
            taken += chunk.len();
        }
        (String::from_utf8(out).unwrap(), None)
    }

    #[test]
    fn compact_json_comes_out_as_serde_json_pretty_prints_it_however_it_is_cut() {
        let values = [
            json!({
                "daemon": true,
                "checks": [
                    {"id": "disk \"/\" on db\\1", "output": "a, b: {c} [d]\n\tü \u{1}",
                     "ack": null, "flap_percent": 34.4, "since": -5, "at": 1e21,
                     "availability": {"24h": 99.93, "7d": null}},
                    {"id": "x", "empty": {}, "none": [], "nested": [[], [{}], [1, [2, []]]]},
                ],
                "outbox": {"lines": []},
                "silences": [],
                "at": 7,
            }),
            json!({}),
            json!([]),
            json!("\\"),
            json!({"a\\": "\\\"", "b": "\\\\"}),
        ];
        for v in &values {
            let want = serde_json::to_string_pretty(v).unwrap();
            for piece in [1, 2, 3, 5, 7, 64, 1 << 20] {
                let (got, end) = indented(v, piece);
                assert_eq!(got, want, "in pieces of {piece}");
                assert_eq!(end, Some(0), "the line feed ends it, in pieces of {piece}");
            }
        }
    }

    #[test]
    fn a_document_cut_short_has_not_ended() {
        let mut p = Pretty::default();
        let mut out = Vec::new();
        assert_eq!(p.feed(br#"{"checks":[{"id":"a\n"#, &mut out), None);
        assert_eq!(p.feed(b"", &mut out), None);
    }
}
