//! The `when` option: `#{ minutes: "0-14", hours: "9-17",
//! weekdays: "mon-fri", days: "1-12,24-30", months: "jan-mar",
//! start: "2099-11-11 11:11:11", end: "2100-01-01" }`.
//!
//! Each list is comma-separated single values or `a-b` ranges. Minutes,
//! hours, weekdays and months may wrap (`"22-6"`, `"fri-mon"`, `"nov-feb"`),
//! since a night, a weekend or a winter is what people mean by them; days
//! of the month may not.

use rhai::{Dynamic, Map};

use crate::clock;
use crate::model::When;

use super::value::{describe, unknown};

/// The keys a `when` map may have.
pub const WHEN_KEYS: &[&str] = &[
    "minutes", "hours", "weekdays", "days", "months", "start", "end",
];

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// Parses a `when` value; messages start with `option when.<key>`.
pub fn parse(v: &Dynamic) -> Result<When, String> {
    let Some(map) = v.read_lock::<Map>() else {
        return Err(format!(
            "option when must be a map like #{{ hours: \"9-17\", weekdays: \"mon-fri\" }}, not {}",
            describe(v)
        ));
    };
    let mut when = When::default();
    for (key, val) in map.iter() {
        let what = format!("option when.{key}");
        match key.as_str() {
            "minutes" => when.minutes = list(&what, val, 0, 59, true, number)?,
            "hours" => when.hours = list(&what, val, 0, 23, true, number)?,
            "weekdays" => when.weekdays = list(&what, val, 0, 6, true, weekday)?,
            "days" => when.days = list(&what, val, 1, 31, false, number)?,
            "months" => when.months = list(&what, val, 1, 12, true, month)?,
            "start" => when.start = Some(moment(&what, val)?),
            "end" => when.end = Some(moment(&what, val)?),
            other => {
                return Err(unknown(
                    "option",
                    &format!("when.{other}"),
                    other,
                    "when.",
                    WHEN_KEYS,
                ))
            }
        }
    }
    if let (Some(s), Some(e)) = (when.start, when.end) {
        if e < s {
            return Err(
                "option when: end is before start; the check would never run (swap them?)".into(),
            );
        }
    }
    Ok(when)
}

/// A comma list of values and ranges, sorted and without duplicates.
fn list(
    what: &str,
    v: &Dynamic,
    min: u8,
    max: u8,
    wraps: bool,
    item: fn(&str) -> Option<u8>,
) -> Result<Vec<u8>, String> {
    let text = if v.is_string() {
        v.to_string()
    } else if let Ok(i) = v.as_int() {
        i.to_string()
    } else {
        return Err(format!("{what} must be a string, not {}", describe(v)));
    };
    let bad = |part: &str| {
        let example = match max {
            59 => "\"0-14\" or \"0,30\" (minutes 0-59)",
            23 => "\"9-17\" or \"8,12-14\" (hours 0-23)",
            12 => "\"jan-mar\" or \"6,12\" (months 1-12)",
            6 => "\"mon-fri\" or \"sat,sun\"",
            _ => "\"1-12,24-30\" (days 1-31)",
        };
        format!("{what}: {part:?} is not a value or range; write e.g. {example}")
    };
    let one = |s: &str| -> Result<u8, String> {
        item(s.trim())
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| bad(s.trim()))
    };
    let mut out = Vec::new();
    for part in text.split(',') {
        if part.trim().is_empty() {
            return Err(bad(&text));
        }
        match part.split_once('-') {
            None => out.push(one(part)?),
            Some((a, b)) => {
                let (a, b) = (one(a)?, one(b)?);
                if a <= b {
                    out.extend(a..=b);
                } else if wraps {
                    out.extend(a..=max);
                    out.extend(min..=b);
                } else {
                    return Err(format!(
                        "{what}: range {:?} goes backwards; write the smaller day first",
                        part.trim()
                    ));
                }
            }
        }
    }
    crate::sort::ascending(&mut out);
    out.dedup();
    Ok(out)
}

/// `weekdays: "mon-fri"` as `when` reads it (0 = Monday); for contacts.
pub fn weekdays(what: &str, v: &Dynamic) -> Result<Vec<u8>, String> {
    list(what, v, 0, 6, true, weekday)
}

/// `hours` of a contact's period, as minutes of the day (`0..1440`): the
/// `when` syntax (`"8-17"`: whole hours 8 to 17, up to 17:59) and ranges
/// of times of day, end excluded (`"08:00-20:00"`, `"22:30-06:00"` wraps
/// past midnight, `"00:00-24:00"` is the whole day), comma-separated and
/// mixed as needed (`"7-8,17:30-19:00"`).
pub fn day_minutes(what: &str, v: &Dynamic) -> Result<Vec<u16>, String> {
    let text = if v.is_string() {
        v.to_string()
    } else if let Ok(i) = v.as_int() {
        i.to_string()
    } else {
        return Err(format!(
            "{what} must be a string like \"08:00-20:00\" or \"9-17\", not {}",
            describe(v)
        ));
    };
    let bad = |part: &str| {
        format!(
            "{what}: {part:?} is not an hour or a range of times; write e.g. \"08:00-20:00\", \"22:00-06:00\" or \"9-17\" (whole hours), several separated by commas"
        )
    };
    // "HH:MM" (24:00 only as an end) as minutes of the day.
    let time = |s: &str, end: bool| -> Option<u16> {
        let (h, m) = s.trim().split_once(':')?;
        let (h, m): (u16, u16) = (h.trim().parse().ok()?, m.trim().parse().ok()?);
        let t = h.checked_mul(60)?.checked_add(m)?;
        (m < 60 && (t < 1440 || (end && t == 1440))).then_some(t)
    };
    let mut out = Vec::new();
    for part in text.split(',') {
        let p = part.trim();
        if !p.contains(':') {
            let hours = list(what, &Dynamic::from(p.to_string()), 0, 23, true, number)
                .map_err(|_| bad(p))?;
            out.extend(
                hours
                    .into_iter()
                    .flat_map(|h| u16::from(h) * 60..u16::from(h) * 60 + 60),
            );
            continue;
        }
        let (a, b) = p.split_once('-').ok_or_else(|| bad(p))?;
        let (a, b) = (
            time(a, false).ok_or_else(|| bad(p))?,
            time(b, true).ok_or_else(|| bad(p))?,
        );
        if a < b {
            out.extend(a..b);
        } else {
            // Past midnight ("22:00-06:00"); "08:00-08:00" is the whole day.
            out.extend(a..1440);
            out.extend(0..b);
        }
    }
    crate::sort::ascending(&mut out);
    out.dedup();
    Ok(out)
}

fn number(s: &str) -> Option<u8> {
    s.parse().ok()
}

/// `3`, `mar`, `March`; 1 = January.
fn month(s: &str) -> Option<u8> {
    let lower = s.to_ascii_lowercase();
    number(s).or_else(|| {
        (0..12u8)
            .find(|&i| {
                let short = MONTHS[i as usize];
                lower == short || (lower.len() > 3 && lower.starts_with(short))
            })
            .map(|i| i + 1)
    })
}

/// `mon`, `Monday`, `TUE`...; 0 = Monday.
fn weekday(s: &str) -> Option<u8> {
    let lower = s.to_ascii_lowercase();
    let full = crate::schedule::WEEKDAY_NAMES;
    (0..7u8).find(|&i| lower == WEEKDAYS[i as usize] || lower == full[i as usize])
}

/// `"YYYY-MM-DD[ HH:MM[:SS]]"` in local time, as Unix seconds.
fn moment(what: &str, v: &Dynamic) -> Result<i64, String> {
    let bad = || {
        format!(
            "{what}: {v} is not a local date and time like \"2099-11-11 11:11:11\" (or \"2099-11-11\")"
        )
    };
    if !v.is_string() {
        return Err(format!(
            "{what} must be a string like \"2099-11-11 11:11:11\", not {}",
            describe(v)
        ));
    }
    let text = v.to_string();
    let (date, time) = match text.trim().split_once([' ', 'T']) {
        Some((d, t)) => (d, t.trim()),
        None => (text.trim(), "00:00:00"),
    };
    let nums = |s: &str, sep: char| -> Option<Vec<i32>> {
        s.split(sep).map(|p| p.parse::<i32>().ok()).collect()
    };
    let d = nums(date, '-').filter(|d| d.len() == 3).ok_or_else(bad)?;
    let t = nums(time, ':')
        .filter(|t| t.len() == 2 || t.len() == 3)
        .ok_or_else(bad)?;
    let (year, month, mday) = (d[0], d[1], d[2]);
    let (hh, mm, ss) = (t[0], t[1], t.get(2).copied().unwrap_or(0));
    let valid = (1970..=9999).contains(&year)
        && (1..=12).contains(&month)
        && (1..=i32::from(clock::days_in_month(year.into(), month as u8))).contains(&mday)
        && (0..=23).contains(&hh)
        && (0..=59).contains(&mm)
        && (0..=59).contains(&ss);
    if !valid {
        return Err(bad());
    }
    // In range (checked above), so the narrowing casts are exact.
    clock::local_to_unix(
        year.into(),
        month as u8,
        mday as u8,
        hh as u8,
        mm as u8,
        ss as u8,
    )
    .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Dynamic {
        Dynamic::from(x.to_string())
    }

    #[test]
    fn ranges_and_lists() {
        let h = |x| list("h", &s(x), 0, 23, true, number);
        assert_eq!(h("9-12").unwrap(), vec![9, 10, 11, 12]);
        assert_eq!(h("8,12-13").unwrap(), vec![8, 12, 13]);
        assert_eq!(h("22-1").unwrap(), vec![0, 1, 22, 23]);
        assert!(h("24").is_err());
        assert!(h("9-").is_err());
        assert!(h("").is_err());
        let w = |x| list("w", &s(x), 0, 6, true, weekday);
        assert_eq!(w("mon-fri").unwrap(), vec![0, 1, 2, 3, 4]);
        assert_eq!(w("Sat,sunday").unwrap(), vec![5, 6]);
        assert_eq!(w("fri-mon").unwrap(), vec![0, 4, 5, 6]);
        assert!(w("funday").is_err());
        let d = |x| list("d", &s(x), 1, 31, false, number);
        assert_eq!(d("30-31,1").unwrap(), vec![1, 30, 31]);
        assert!(d("12-1").is_err());
        assert!(d("0").is_err());
    }

    #[test]
    fn contact_hours_take_times_of_day_and_whole_hours() {
        let d = |x| day_minutes("h", &s(x));
        assert_eq!(d("08:00-20:00").unwrap(), (480..1200).collect::<Vec<u16>>());
        assert_eq!(d("9-10").unwrap(), (540..660).collect::<Vec<u16>>());
        let night = d("22:30-06:00").unwrap();
        assert_eq!(night.len(), 90 + 360);
        assert!(night.contains(&1439) && night.contains(&0) && !night.contains(&360));
        assert_eq!(d("00:00-24:00").unwrap().len(), 1440);
        assert_eq!(d("7,17:30-17:45").unwrap().len(), 60 + 15);
        for bad in [
            "8:00",
            "25:00-26:00",
            "08:60-09:00",
            "24:00-01:00",
            "",
            "x-y",
            "8:00-",
        ] {
            let e = d(bad).unwrap_err();
            assert!(
                e.contains("is not an hour or a range of times"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn start_rejects_impossible_dates() {
        assert!(moment("s", &s("2099-02-30 00:00:00")).is_err());
        assert!(moment("s", &s("2099-11-11 25:00")).is_err());
        assert!(moment("s", &s("soon")).is_err());
        assert!(moment("s", &s("2024-02-29")).is_ok());
    }

    #[test]
    fn minutes_months_and_end() {
        let m = |x| list("m", &s(x), 0, 59, true, number);
        assert_eq!(m("58-1").unwrap(), vec![0, 1, 58, 59]);
        assert!(m("60").is_err());
        let mo = |x| list("mo", &s(x), 1, 12, true, month);
        assert_eq!(mo("nov-feb").unwrap(), vec![1, 2, 11, 12]);
        assert_eq!(mo("March,6").unwrap(), vec![3, 6]);
        assert!(mo("13").is_err());
        assert!(mo("ma").is_err());
        let mut map = Map::new();
        map.insert("start".into(), s("2099-01-02"));
        map.insert("end".into(), s("2099-01-01"));
        let e = parse(&Dynamic::from_map(map)).unwrap_err();
        assert!(e.contains("end is before start"), "{e}");
        let mut map = Map::new();
        map.insert("end".into(), s("2099-01-01 12:00"));
        map.insert("minutes".into(), s("0-14"));
        let w = parse(&Dynamic::from_map(map)).unwrap();
        assert_eq!(w.minutes, (0..=14).collect::<Vec<u8>>());
        assert!(w.end.is_some());
    }
}
