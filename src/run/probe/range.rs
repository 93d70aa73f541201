//! Nagios range thresholds (`10`, `10:`, `~:10`, `10:20`, `@10:20`), as the
//! monitoring-plugins guidelines define them, so a threshold copied from a
//! plugin command line means the same thing here.
//!
//! A range says which values are fine; a value outside it alerts. `@` turns
//! that round: a value inside alerts.

use std::fmt;

use crate::model::{Perf, Status};

/// One parsed range. `text` keeps what the user wrote, for perfdata.
#[derive(Clone, Debug, PartialEq)]
pub struct Range {
    /// Lower bound; `-inf` for `~`.
    pub start: f64,
    /// Upper bound; `+inf` when omitted (`10:`).
    pub end: f64,
    /// `@`: alert when the value is inside `start..=end`.
    pub inside: bool,
    pub text: String,
}

impl Range {
    /// Parses a Nagios range. The error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Range, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err("empty range".into());
        }
        let (inside, body) = match t.strip_prefix('@') {
            Some(rest) => (true, rest),
            None => (false, t),
        };
        let (start, end) = match body.split_once(':') {
            None => (0.0, parse_num(body, text)?),
            Some((s, e)) => {
                let start = if s == "~" {
                    f64::NEG_INFINITY
                } else if s.is_empty() {
                    0.0
                } else {
                    parse_num(s, text)?
                };
                let end = if e.is_empty() {
                    f64::INFINITY
                } else {
                    parse_num(e, text)?
                };
                (start, end)
            }
        };
        if start > end {
            return Err(format!(
                "range `{text}` has its start above its end (write it as `start:end`, e.g. `10:20`)"
            ));
        }
        Ok(Range {
            start,
            end,
            inside,
            text: t.to_string(),
        })
    }

    /// A plain upper limit, as `Range::parse("N")` would give.
    pub fn upper(limit: f64) -> Range {
        Range {
            start: 0.0,
            end: limit,
            inside: false,
            text: fmt_num(limit),
        }
    }

    /// A plain lower limit (`N:`): values below it alert.
    pub fn lower(limit: f64) -> Range {
        Range {
            start: limit,
            end: f64::INFINITY,
            inside: false,
            text: format!("{}:", fmt_num(limit)),
        }
    }

    /// True when `value` should raise an alert.
    pub fn alerts(&self, value: f64) -> bool {
        let within = value >= self.start && value <= self.end;
        if self.inside {
            within
        } else {
            !within
        }
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn parse_num(s: &str, whole: &str) -> Result<f64, String> {
    s.trim().parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| {
        format!(
            "range `{whole}`: `{s}` is not a number (ranges look like `10`, `10:`, `~:10`, `10:20` or `@10:20`)"
        )
    })
}

/// Formats a number without a needless `.0`, as plugins print perfdata.
pub fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A warning and a critical range for one measured value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Thresholds {
    pub warning: Option<Range>,
    pub critical: Option<Range>,
}

impl Thresholds {
    /// CRITICAL if the critical range alerts, else WARNING if the warning
    /// range does, else OK.
    pub fn status(&self, value: f64) -> Status {
        if self.critical.as_ref().is_some_and(|r| r.alerts(value)) {
            Status::Critical
        } else if self.warning.as_ref().is_some_and(|r| r.alerts(value)) {
            Status::Warning
        } else {
            Status::Ok
        }
    }

    /// The warning range as perfdata text (empty when unset).
    pub fn warn_text(&self) -> String {
        self.warning
            .as_ref()
            .map(|r| r.text.clone())
            .unwrap_or_default()
    }

    /// The critical range as perfdata text (empty when unset).
    pub fn crit_text(&self) -> String {
        self.critical
            .as_ref()
            .map(|r| r.text.clone())
            .unwrap_or_default()
    }

    /// A perfdata item for `value` that carries these ranges.
    pub fn perf(&self, label: &str, value: f64, uom: &str) -> Perf {
        super::perf(label, value, uom, &self.warn_text(), &self.crit_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_number_is_zero_to_n() {
        let r = Range::parse("10").unwrap();
        assert!(!r.alerts(0.0));
        assert!(!r.alerts(10.0));
        assert!(r.alerts(10.5));
        assert!(r.alerts(-1.0));
    }

    #[test]
    fn open_end_and_open_start() {
        let r = Range::parse("10:").unwrap();
        assert!(r.alerts(9.9));
        assert!(!r.alerts(1e9));
        let r = Range::parse("~:10").unwrap();
        assert!(!r.alerts(-1e9));
        assert!(r.alerts(11.0));
    }

    #[test]
    fn between_and_inverted() {
        let r = Range::parse("10:20").unwrap();
        assert!(r.alerts(9.0));
        assert!(!r.alerts(15.0));
        assert!(r.alerts(21.0));
        let r = Range::parse("@10:20").unwrap();
        assert!(!r.alerts(9.0));
        assert!(r.alerts(10.0));
        assert!(r.alerts(20.0));
        assert!(!r.alerts(21.0));
    }

    #[test]
    fn bad_ranges_say_why() {
        assert!(Range::parse("20:10")
            .unwrap_err()
            .contains("start above its end"));
        assert!(Range::parse("abc").unwrap_err().contains("not a number"));
        assert!(Range::parse("").is_err());
        assert!(Range::parse("1:x").unwrap_err().contains("`x`"));
    }

    #[test]
    fn thresholds_pick_the_worst() {
        let t = Thresholds {
            warning: Some(Range::parse("5").unwrap()),
            critical: Some(Range::parse("10").unwrap()),
        };
        assert_eq!(t.status(1.0), Status::Ok);
        assert_eq!(t.status(6.0), Status::Warning);
        assert_eq!(t.status(11.0), Status::Critical);
        assert_eq!(Thresholds::default().status(1e9), Status::Ok);
    }

    #[test]
    fn numbers_print_like_plugins() {
        assert_eq!(fmt_num(3.0), "3");
        assert_eq!(fmt_num(0.1234), "0.123");
        assert_eq!(fmt_num(2.5), "2.5");
    }
}
