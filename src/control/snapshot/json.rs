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
    let checks = &snapshot.checks;
    for (i, line) in checks.iter().enumerate() {
        // The lines are together; what they point at (the spec, its
        // strings, the output) is spread over the heap: asked for ahead,
        // it is there when its line is written.
        if let Some(ahead) = checks.get(i + 8) {
            prefetch(ahead.spec_ptr());
            prefetch(ahead.output().parts().0.as_ptr());
        }
        if let Some(ahead) = checks.get(i + 4) {
            prefetch(ahead.id().as_ptr());
            prefetch(ahead.name().as_ptr());
        }
        if !filter.keeps_line(line) {
            continue;
        }
        if std::mem::replace(&mut any, true) {
            o.buf.push(b',');
        }
        o.line_break(2);
        o.line(line);
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

/// Asks the CPU to bring `p`'s cache line in; a hint, nothing is read.
#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing and cannot fault, whatever `p` is.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

struct Json {
    buf: Vec<u8>,
    pretty: bool,
}

/// Enough indentation for the top levels.
const SPACES: &[u8; 4] = b"    ";

/// A member of a check's object (level 3) or of its `ack` or
/// `availability` (level 4): the comma before it (but the first), the
/// indentation, the key and, for a string value, its opening quote;
/// compact and pretty.
macro_rules! member {
    ($name:ident, $comma:literal, $indent:literal, $key:literal, $open:literal) => {
        const $name: [&[u8]; 2] = [
            concat!($comma, "\"", $key, "\":", $open).as_bytes(),
            concat!($comma, "\n", $indent, "\"", $key, "\": ", $open).as_bytes(),
        ];
    };
}

member!(ID, "{", "      ", "id", "\"");
member!(NAME, ",", "      ", "name", "\"");
member!(TARGET, ",", "      ", "target", "\"");
member!(PHASE, ",", "      ", "phase", "\"");
member!(STATUS, ",", "      ", "status", "");
member!(FAILED_RUNS, ",", "      ", "failed_runs", "");
member!(MAX_RUNS, ",", "      ", "max_runs", "");
member!(SINCE, ",", "      ", "since", "");
member!(LAST_RUN, ",", "      ", "last_run", "");
member!(DURATION, ",", "      ", "duration", "");
member!(OUTPUT, ",", "      ", "output", "\"");
member!(ACK, ",", "      ", "ack", "");
member!(ACK_BY, "{", "        ", "by", "\"");
member!(ACK_COMMENT, ",", "        ", "comment", "\"");
member!(ACK_UNTIL, ",", "        ", "until", "");
member!(SILENCED_BY, ",", "      ", "silenced_by", "");
member!(UNREACHABLE_BY, ",", "      ", "unreachable_by", "\"");
member!(FLAP_PERCENT, ",", "      ", "flap_percent", "");
member!(FLAPPING, ",", "      ", "flapping", "");
member!(ANNOUNCED, ",", "      ", "announced", "");
member!(AVAILABILITY, ",", "      ", "availability", "");
member!(DAY, "{", "        ", "24h", "");
member!(WEEK, ",", "        ", "7d", "");
member!(MONTH, ",", "        ", "30d", "");
/// The end of `ack` or `availability`, and of the check.
const INNER_END: [&[u8]; 2] = [b"}", b"\n      }"];
const LINE_END: [&[u8]; 2] = [b"}", b"\n    }"];

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

    /// One check's object, an element of `checks` (the fields of
    /// [`CheckStatus`](crate::control::protocol::CheckStatus), in its
    /// order). Its keys, commas and indentation are constants ([`member`]),
    /// and the common values (`null`, `100.0`, a duration in milliseconds)
    /// are written without a formatter: this runs 100,000 times an answer.
    fn line(&mut self, l: &CheckLine) {
        let p = usize::from(self.pretty);
        self.put(ID[p]);
        self.str_body(l.id());
        self.put(NAME[p]);
        self.str_body(l.name());
        self.put(TARGET[p]);
        self.str_body(l.target());
        self.put(PHASE[p]);
        self.str_body(l.phase().as_str());
        self.put(STATUS[p]);
        self.opt_str(l.status().map(Status::as_str));
        self.put(FAILED_RUNS[p]);
        self.int(i64::from(l.failed_runs()));
        self.put(MAX_RUNS[p]);
        self.int(i64::from(l.max_runs()));
        self.put(SINCE[p]);
        self.opt_int(l.since());
        self.put(LAST_RUN[p]);
        self.opt_int(l.last_run());
        self.put(DURATION[p]);
        match l.took_ms {
            Some(ms) => self.millis(ms.get()),
            None => self.put(b"null"),
        }
        self.put(OUTPUT[p]);
        let (head, tail) = l.output().parts();
        self.escaped(head);
        if let Some(tail) = tail {
            self.escaped(crate::model::output_text::BAR);
            self.escaped(tail);
        }
        self.put(b"\"");
        self.put(ACK[p]);
        match l.ack() {
            None => self.put(b"null"),
            Some(a) => {
                self.put(ACK_BY[p]);
                self.str_body(&a.by);
                self.put(ACK_COMMENT[p]);
                self.str_body(&a.comment);
                self.put(ACK_UNTIL[p]);
                self.opt_int(a.until);
                self.put(INNER_END[p]);
            }
        }
        self.put(SILENCED_BY[p]);
        self.opt_str(l.silenced_by());
        if let Some(by) = l.unreachable_by() {
            self.put(UNREACHABLE_BY[p]);
            self.str_body(by);
        }
        self.put(FLAP_PERCENT[p]);
        match l.flap_percent() {
            None => self.put(b"null"),
            // Most checks: nothing changed in their last runs.
            Some(f) if f == 0.0 => self.put(if f.is_sign_negative() {
                b"-0.0"
            } else {
                b"0.0"
            }),
            Some(f) => self.float(f),
        }
        self.put(FLAPPING[p]);
        self.put(if l.flapping() { b"true" } else { b"false" });
        self.put(ANNOUNCED[p]);
        self.put(if l.announced() { b"true" } else { b"false" });
        self.put(AVAILABILITY[p]);
        let a = l.availability();
        for (key, window) in [DAY[p], WEEK[p], MONTH[p]]
            .into_iter()
            .zip([a.day, a.week, a.month])
        {
            self.put(key);
            match window {
                None => self.put(b"null"),
                Some(100.0) => self.put(b"100.0"),
                Some(v) => self.float(v),
            }
        }
        self.put(INNER_END[p]);
        self.put(LINE_END[p]);
    }

    /// Seconds of `ms` milliseconds as serde_json writes the `f64`
    /// `ms / 1000`: the shortest decimal that reads back as it, which for
    /// a whole number of milliseconds is the exact one (`0.25`, `1.0`).
    fn millis(&mut self, ms: u32) {
        self.int(i64::from(ms / 1000));
        let frac = ms % 1000;
        let digits = [
            b'0' + (frac / 100) as u8,
            b'0' + (frac / 10 % 10) as u8,
            b'0' + (frac % 10) as u8,
        ];
        let len = match frac {
            0 => 1,
            f if f % 100 == 0 => 1,
            f if f % 10 == 0 => 2,
            _ => 3,
        };
        self.put(b".");
        self.put(&digits[..len]);
    }

    /// Bytes as they are.
    #[inline(always)]
    fn put(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// A string: its quotes and its escaped text.
    fn str(&mut self, s: &str) {
        self.put(b"\"");
        self.str_body(s);
    }

    /// A string's text and its closing quote.
    fn str_body(&mut self, s: &str) {
        self.escaped(s);
        self.buf.push(b'"');
    }

    /// Text inside a string, escaped as serde_json does (`"`, `\` and the
    /// control characters; `\b \t \n \f \r` short, the others `\u00xx`).
    fn escaped(&mut self, s: &str) {
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
    fn float<F: Serialize>(&mut self, v: F) {
        // Writing into a Vec cannot fail, nor can a float.
        let _ = serde_json::to_writer(&mut self.buf, &v);
    }

    fn null(&mut self) {
        self.put(b"null");
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
    fn numbers_written_without_a_formatter_are_serde_json_s() {
        let mut o = Json {
            buf: Vec::new(),
            pretty: false,
        };
        let mut check = |ms: u32| {
            o.buf.clear();
            o.millis(ms);
            let want = serde_json::to_vec(&(f64::from(ms) / 1000.0)).unwrap();
            assert_eq!(o.buf, want, "{ms} ms");
        };
        (1..=200_000).for_each(&mut check);
        (0..=u32::MAX).step_by(9_973).for_each(&mut check);
        check(u32::MAX);
        assert_eq!(serde_json::to_string(&100.0f64).unwrap(), "100.0");
        assert_eq!(serde_json::to_string(&-0.0f32).unwrap(), "-0.0");
        assert_eq!(serde_json::to_string(&0.0f32).unwrap(), "0.0");
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
