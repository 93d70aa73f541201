//! The one range every duration has, wherever it comes from: a config key
//! (`base_tick`, timeouts, `renotify_every`, `escalate`, report periods),
//! a check option, or the command line (`ack --for`, `silence --for`).
//!
//! Durations end up added to clock readings in microseconds; a value near
//! `u64::MAX` seconds wrapped to a negative one and a silence "for ever"
//! ended at once. One maximum, checked by one function, refuses such a value
//! with a message instead, the same way everywhere.

use std::time::Duration;

/// The longest duration picomon accepts: 100 years (of 365.25 days), in
/// seconds. Far from every overflow (in microseconds it is about 3e15, an
/// i64 holds 9e18), and longer than anyone means.
pub const MAX_SECS: u64 = 3_155_760_000;

/// [`MAX_SECS`] as the messages write it.
pub const MAX_TEXT: &str = "100 years (3155760000 s)";

/// `30d`, `2h`, `90s`: a duration as a user would have written it, in
/// its largest whole unit.
pub fn format(secs: u64) -> String {
    match secs {
        s if s > 0 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s > 0 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s > 0 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// `secs` seconds of `what` (e.g. `config.base_tick`, `--for`), or the
/// message that refuses it: not a number, negative, or above [`MAX_SECS`].
/// Every duration picomon reads goes through here.
pub fn checked(what: &str, secs: f64) -> Result<Duration, String> {
    if secs.is_nan() || secs < 0.0 {
        return Err(format!(
            "{what} must be a duration of 0 or more seconds, not {secs}"
        ));
    }
    if secs > MAX_SECS as f64 {
        return Err(too_long(what, &format!("{secs} s")));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The one message for a duration above the maximum.
fn too_long(what: &str, shown: &str) -> String {
    format!(
        "{what} = {shown} is longer than the longest duration picomon accepts, {MAX_TEXT}; \
         give a shorter one"
    )
}

/// [`checked`] for whole seconds.
pub fn checked_secs(what: &str, secs: u64) -> Result<u64, String> {
    if secs > MAX_SECS {
        return Err(too_long(what, &format!("{secs} s")));
    }
    Ok(secs)
}

/// A human duration: `90s`, `30m`, `2h`, `1d` (a bare number is seconds),
/// at least one second and at most [`MAX_SECS`]. `what` names the setting
/// in the message.
pub fn parse(what: &str, text: &str) -> Result<u64, String> {
    let t = text.trim();
    let not_one =
        || format!("{what}: {text:?} is not a duration; write e.g. 90s, 30m, 1h30m, 2h or 1d");
    // One or more NUMBER UNIT parts (`1h30m`); a bare number is seconds.
    let mut rest = t;
    let mut total: u64 = 0;
    let mut parts = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(digits);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let mult: u64 = match unit {
            "" if parts == 0 && next.is_empty() => 1,
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(not_one()),
        };
        if num.is_empty() {
            return Err(not_one());
        }
        // Digits only: a number too long for u64 is still a number, and far
        // too long a duration.
        let secs = num
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(mult))
            .and_then(|s| total.checked_add(s));
        match secs {
            Some(s) if s <= MAX_SECS => total = s,
            _ => return Err(too_long(what, t)),
        }
        parts += 1;
        rest = next;
    }
    if total == 0 {
        return Err(not_one());
    }
    Ok(total)
}

/// A duration option as a config gives it.
#[derive(Clone, Copy, Debug)]
pub enum Given<'a> {
    /// `"90s"`, `"1h30m"`.
    Text(&'a str),
    /// Seconds.
    Number(f64),
    /// Neither: the value's type, for the message.
    Other(&'a str),
}

/// The seconds of an option `what` given as a number or a duration string,
/// within `min..=max` seconds: the one reader of channel and output
/// options.
pub fn option_seconds(
    what: &str,
    given: Given<'_>,
    min: f64,
    max: f64,
) -> Result<Duration, String> {
    let secs = match given {
        Given::Text(text) => parse(what, text)? as f64,
        Given::Number(n) => n,
        Given::Other(t) => {
            return Err(format!(
                "{what} must be a number of seconds or a duration like \"5m\", not {t}"
            ))
        }
    };
    if !(min..=max).contains(&secs) {
        return Err(format!(
            "{what} = {secs} is out of range ({min} to {max} seconds)"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_option_takes_a_number_or_a_string_within_its_range() {
        let secs = |g| option_seconds("t", g, 0.1, 3600.0);
        assert_eq!(secs(Given::Text("2m")), Ok(Duration::from_secs(120)));
        assert_eq!(secs(Given::Number(0.5)), Ok(Duration::from_millis(500)));
        assert!(secs(Given::Text("2h"))
            .unwrap_err()
            .contains("out of range"));
        assert!(secs(Given::Number(0.0)).is_err());
        assert!(secs(Given::Other("array"))
            .unwrap_err()
            .contains("not array"));
    }

    #[test]
    fn compound_durations_add_up_and_junk_is_refused() {
        assert_eq!(parse("x", "1h30m"), Ok(5400));
        assert_eq!(parse("x", "1d2h3m4s"), Ok(93_784));
        assert_eq!(parse("x", "90"), Ok(90));
        for bad in ["", "m", "1x", "1h30", "h1", "0s", "1.5h", "-1h"] {
            assert!(parse("x", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn human_durations() {
        assert_eq!(parse("x", "90s"), Ok(90));
        assert_eq!(parse("x", "30m"), Ok(1800));
        assert_eq!(parse("x", "2h"), Ok(7200));
        assert_eq!(parse("x", "1d"), Ok(86_400));
        assert_eq!(parse("x", "15"), Ok(15));
        assert_eq!(parse("x", "36525d"), Ok(MAX_SECS));
        for bad in ["", "h", "2w", "-1h", "0m", "1.5h", "00"] {
            assert!(
                parse("x", bad).unwrap_err().contains("not a duration"),
                "{bad}"
            );
        }
    }

    #[test]
    fn above_one_hundred_years_is_refused_not_wrapped() {
        for long in [
            "36526d",
            "18446744073709551615s",
            "9223372036854775807s",
            "99999999999999999999999",
            "307445734561825861m",
        ] {
            let err = parse("--for", long).unwrap_err();
            assert!(
                err.contains("longer than the longest duration"),
                "{long}: {err}"
            );
            assert!(err.contains("100 years"), "{err}");
        }
        assert!(checked("x", MAX_SECS as f64 + 1.0).is_err());
        assert!(checked("x", f64::INFINITY).is_err());
        assert!(checked("x", f64::NAN).is_err());
        assert!(checked("x", -1.0).is_err());
        assert_eq!(checked("x", 1.5), Ok(Duration::from_millis(1500)));
        assert_eq!(checked_secs("x", MAX_SECS), Ok(MAX_SECS));
        assert!(checked_secs("x", u64::MAX).is_err());
    }
}
