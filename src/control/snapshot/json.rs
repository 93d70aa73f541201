//! The status JSON written straight from a snapshot's lines: `{"cmd":
//! "status"}` compact, `picomon status --json` and `/api/v1/checks`
//! pretty-printed. The bytes are those serde_json writes for the same
//! [`StatusReport`](crate::control::protocol::StatusReport) (compact, or
//! pretty with two spaces), tests hold them alike; only they are made
//! here with the keys and their indentation as constants and each line
//! into one buffer, which is several times cheaper with 100,000 checks
//! than serialising a structure field by field into the socket.

use std::io::Write;

use serde::Serialize;

use super::{CheckLine, Snapshot};
use crate::control::protocol::Filter;
use crate::model::Status;

/// Which of the status JSONs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    /// `"daemon": true` first, as `status --json` prints it.
    pub daemon: bool,
    /// Indented as serde_json's pretty printer does (two spaces a level).
    pub pretty: bool,
}

/// The buffer is written out once it holds this much.
const FLUSH_AT: usize = 64 * 1024;

/// Writes the status of the checks `filter` keeps as `shape` says (no
/// line feed after it).
pub fn write(
    out: &mut impl Write,
    snapshot: &Snapshot,
    filter: Filter,
    shape: Shape,
) -> std::io::Result<()> {
    let mut o = Json {
        buf: Vec::with_capacity(FLUSH_AT + 4096),
        pretty: shape.pretty,
    };
    o.buf.push(b'{');
    if shape.daemon {
        o.key(true, 1, "daemon");
        o.buf.extend_from_slice(b"true");
    }
    o.key(!shape.daemon, 1, "checks");
    o.buf.push(b'[');
    let mut any = false;
    for line in snapshot.checks.iter().filter(|l| filter.keeps_line(l)) {
        if std::mem::replace(&mut any, true) {
            o.buf.push(b',');
        }
        o.line_break(2);
        o.line(line, 2);
        if o.buf.len() >= FLUSH_AT {
            out.write_all(&o.buf)?;
            o.buf.clear();
        }
    }
    if any {
        o.line_break(1);
    }
    o.buf.push(b']');
    o.key(false, 1, "outbox");
    o.value(&snapshot.outbox);
    o.key(false, 1, "silences");
    o.value(&snapshot.silences);
    o.key(false, 1, "at");
    o.int(snapshot.at);
    o.line_break(0);
    o.buf.push(b'}');
    out.write_all(&o.buf)
}

struct Json {
    buf: Vec<u8>,
    pretty: bool,
}

/// Enough indentation for the deepest level written.
const SPACES: &[u8; 16] = b"                ";

impl Json {
    /// Pretty: a line feed and the indentation of `depth`.
    fn line_break(&mut self, depth: usize) {
        if self.pretty {
            self.buf.push(b'\n');
            self.buf.extend_from_slice(&SPACES[..2 * depth]);
        }
    }

    /// `"key":` of a member at `depth`, after a comma unless `first`.
    /// Keys are plain ASCII: nothing to escape.
    fn key(&mut self, first: bool, depth: usize, key: &str) {
        if !first {
            self.buf.push(b',');
        }
        self.line_break(depth);
        self.buf.push(b'"');
        self.buf.extend_from_slice(key.as_bytes());
        self.buf
            .extend_from_slice(if self.pretty { b"\": " } else { b"\":" });
    }

    /// One check's object at `depth`: the fields of
    /// [`CheckStatus`](crate::control::protocol::CheckStatus), in its order.
    fn line(&mut self, l: &CheckLine, depth: usize) {
        let d = depth + 1;
        self.buf.push(b'{');
        self.key(true, d, "id");
        self.str(l.id());
        self.key(false, d, "name");
        self.str(l.name());
        self.key(false, d, "target");
        self.str(l.target());
        self.key(false, d, "phase");
        self.str(l.phase().as_str());
        self.key(false, d, "status");
        self.opt_str(l.status().map(Status::as_str));
        self.key(false, d, "failed_runs");
        self.int(i64::from(l.failed_runs()));
        self.key(false, d, "max_runs");
        self.int(i64::from(l.max_runs()));
        self.key(false, d, "since");
        self.opt_int(l.since());
        self.key(false, d, "last_run");
        self.opt_int(l.last_run());
        self.key(false, d, "duration");
        self.opt_float(l.duration());
        self.key(false, d, "output");
        self.str(l.output());
        self.key(false, d, "ack");
        match l.ack() {
            None => self.null(),
            Some(a) => {
                self.buf.push(b'{');
                self.key(true, d + 1, "by");
                self.str(&a.by);
                self.key(false, d + 1, "comment");
                self.str(&a.comment);
                self.key(false, d + 1, "until");
                self.opt_int(a.until);
                self.line_break(d);
                self.buf.push(b'}');
            }
        }
        self.key(false, d, "silenced_by");
        self.opt_str(l.silenced_by());
        if let Some(by) = l.unreachable_by() {
            self.key(false, d, "unreachable_by");
            self.str(by);
        }
        self.key(false, d, "flap_percent");
        self.opt_float(l.flap_percent());
        self.key(false, d, "flapping");
        self.bool(l.flapping());
        self.key(false, d, "announced");
        self.bool(l.announced());
        self.key(false, d, "availability");
        let a = l.availability();
        self.buf.push(b'{');
        for (i, (window, value)) in a.windows().into_iter().enumerate() {
            self.key(i == 0, d + 1, window);
            self.opt_float(value);
        }
        self.line_break(d);
        self.buf.push(b'}');
        self.line_break(depth);
        self.buf.push(b'}');
    }

    /// A string, escaped as serde_json does: `"`, `\` and the control
    /// characters; `\b \t \n \f \r` short, the others `\u00xx`.
    fn str(&mut self, s: &str) {
        self.buf.push(b'"');
        let bytes = s.as_bytes();
        let needs = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
        match bytes.iter().position(|&b| needs(b)) {
            None => self.buf.extend_from_slice(bytes),
            Some(first) => {
                self.buf.extend_from_slice(&bytes[..first]);
                for &b in &bytes[first..] {
                    if !needs(b) {
                        self.buf.push(b);
                        continue;
                    }
                    let short = match b {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        0x08 => b'b',
                        b'\t' => b't',
                        b'\n' => b'n',
                        0x0c => b'f',
                        b'\r' => b'r',
                        _ => 0,
                    };
                    if short != 0 {
                        self.buf.extend_from_slice(&[b'\\', short]);
                    } else {
                        const HEX: &[u8; 16] = b"0123456789abcdef";
                        self.buf.extend_from_slice(b"\\u00");
                        self.buf.push(HEX[usize::from(b >> 4)]);
                        self.buf.push(HEX[usize::from(b & 0xf)]);
                    }
                }
            }
        }
        self.buf.push(b'"');
    }

    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.str(s),
            None => self.null(),
        }
    }

    fn int(&mut self, v: i64) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut n = v.unsigned_abs();
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        if v < 0 {
            self.buf.push(b'-');
        }
        self.buf.extend_from_slice(&digits[at..]);
    }

    fn opt_int(&mut self, v: Option<i64>) {
        match v {
            Some(v) => self.int(v),
            None => self.null(),
        }
    }

    /// A float exactly as serde_json writes it (`f64` or `f32`).
    fn opt_float<F: Serialize>(&mut self, v: Option<F>) {
        match v {
            // Writing into a Vec cannot fail, nor can a float.
            Some(v) => {
                let _ = serde_json::to_writer(&mut self.buf, &v);
            }
            None => self.null(),
        }
    }

    fn bool(&mut self, v: bool) {
        self.buf
            .extend_from_slice(if v { b"true" } else { b"false" });
    }

    fn null(&mut self) {
        self.buf.extend_from_slice(b"null");
    }

    /// A member's value at level 1 (the outbox, the silences: small), by
    /// serde_json; pretty, its lines indented one level.
    fn value(&mut self, v: &impl Serialize) {
        if !self.pretty {
            let _ = serde_json::to_writer(&mut self.buf, v);
            return;
        }
        let text = serde_json::to_vec_pretty(v).unwrap_or_default();
        for &b in &text {
            self.buf.push(b);
            if b == b'\n' {
                self.buf.extend_from_slice(&SPACES[..2]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::protocol::StatusReport;

    /// What `status --json` printed before this writer: the report with
    /// `"daemon": true` first.
    #[derive(Serialize)]
    struct FromDaemon<'a> {
        daemon: bool,
        #[serde(flatten)]
        report: &'a StatusReport,
    }

    fn written(s: &Snapshot, filter: Filter, shape: Shape) -> String {
        let mut out = Vec::new();
        write(&mut out, s, filter, shape).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_shape_is_what_serde_json_writes_for_the_report() {
        let mut s = super::super::tests::assorted_snapshot();
        for checks in [s.checks.len(), 1, 0] {
            s.checks.truncate(checks);
            let report = s.report();
            let all = Filter::default();
            let from_daemon = FromDaemon {
                daemon: true,
                report: &report,
            };
            for (shape, want) in [
                (Shape::default(), serde_json::to_string(&report)),
                (
                    Shape {
                        daemon: false,
                        pretty: true,
                    },
                    serde_json::to_string_pretty(&report),
                ),
                (
                    Shape {
                        daemon: true,
                        pretty: false,
                    },
                    serde_json::to_string(&from_daemon),
                ),
                (
                    Shape {
                        daemon: true,
                        pretty: true,
                    },
                    serde_json::to_string_pretty(&from_daemon),
                ),
            ] {
                assert_eq!(
                    written(&s, all, shape),
                    want.unwrap(),
                    "{shape:?}, {checks} checks"
                );
            }
        }
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let all: String = (0u8..0x80).map(char::from).collect();
        for s in [
            all.as_str(),
            "",
            "plain",
            "ü €𝄞 \u{7f}",
            "\"quoted\" \\back\\",
            "a\u{1}b\u{1f}",
        ] {
            let mut o = Json {
                buf: Vec::new(),
                pretty: false,
            };
            o.str(s);
            assert_eq!(
                String::from_utf8(o.buf).unwrap(),
                serde_json::to_string(s).unwrap()
            );
        }
        for v in [0, 7, -5, i64::MAX, i64::MIN, 1_700_000_000] {
            let mut o = Json {
                buf: Vec::new(),
                pretty: false,
            };
            o.int(v);
            assert_eq!(o.buf, serde_json::to_vec(&v).unwrap(), "{v}");
        }
    }
}
