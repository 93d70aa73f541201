//! Turning Rhai values into typed settings, with the messages a user sees
//! when a value has the wrong type or is out of range.
//!
//! Every function takes `what` (e.g. `config.base_tick` or `option every`)
//! so the message names the thing being set.

use rhai::{Dynamic, FLOAT, INT};

/// "a string", "an integer", ...: how a value's type reads in a message.
pub fn describe(v: &Dynamic) -> String {
    if v.is_string() {
        "a string".into()
    } else if v.is_int() {
        "an integer".into()
    } else if v.is_float() {
        "a float".into()
    } else if v.is_bool() {
        "a boolean".into()
    } else if v.is_array() {
        "an array".into()
    } else if v.is_map() {
        "a map".into()
    } else if v.is_unit() {
        "() (nothing)".into()
    } else if v.is::<crate::model::Host>() {
        "a host".into()
    } else if v.is::<crate::model::CheckDef>() {
        "a check".into()
    } else if v.is::<crate::passive::OutputSpec>() {
        "an output".into()
    } else {
        format!("a value of type {}", v.type_name())
    }
}

/// A number (integer or float) as f64, if it is one.
pub fn as_number(v: &Dynamic) -> Option<f64> {
    if let Ok(i) = v.as_int() {
        Some(i as f64)
    } else {
        v.as_float().ok()
    }
}

/// Seconds: an integer, a float or a duration string (`"5m"`) of at least `min` (`min` excluded when
/// `min_exclusive`) and at most the one maximum of every duration
/// ([`crate::duration::checked`]).
pub fn seconds(what: &str, v: &Dynamic, min: f64, min_exclusive: bool) -> Result<f64, String> {
    // One syntax everywhere: a number of seconds, or "90s", "5m", "1h30m".
    let x = if v.is_string() {
        crate::duration::parse(what, &v.to_string())? as f64
    } else if let Some(x) = as_number(v) {
        x
    } else {
        return Err(format!(
            "{what} must be a number of seconds or a duration like \"5m\", not {}",
            describe(v)
        ));
    };
    let too_small = if min_exclusive { x <= min } else { x < min };
    if too_small {
        let bound = if min_exclusive {
            format!("more than {min}")
        } else {
            format!("at least {min}")
        };
        return Err(format!("{what} must be {bound} seconds, not {x}"));
    }
    crate::duration::checked(what, x)?;
    Ok(x)
}

/// A whole number in `min..=max`. A float with no fraction (`2.0`) is
/// accepted, since Rhai users write either.
pub fn whole(what: &str, v: &Dynamic, min: INT, max: INT, unit: &str) -> Result<INT, String> {
    let n = if let Ok(i) = v.as_int() {
        i
    } else if let Ok(f) = v.as_float() {
        if f.fract() != 0.0 || !f.is_finite() || f.abs() > 1e15 {
            return Err(format!("{what} must be a whole number of {unit}, not {f}"));
        }
        f as INT
    } else {
        return Err(format!(
            "{what} must be a whole number of {unit}, not {}",
            describe(v)
        ));
    };
    if n < min || n > max {
        return Err(format!(
            "{what} must be between {min} and {max} {unit}, not {n}"
        ));
    }
    Ok(n)
}

/// An interval in ticks where `-1` means "the same as every".
pub fn ticks_or_minus_one(what: &str, v: &Dynamic) -> Result<INT, String> {
    let n = whole(what, v, -1, 1_000_000_000, "ticks")?;
    if n == 0 {
        return Err(format!(
            "{what} must be -1 (same as every) or at least 1 tick, not 0"
        ));
    }
    Ok(n)
}

/// A string.
pub fn string(what: &str, v: &Dynamic) -> Result<String, String> {
    if v.is_string() {
        Ok(v.to_string())
    } else {
        Err(format!("{what} must be a string, not {}", describe(v)))
    }
}

/// A string that is not empty.
pub fn non_empty(what: &str, v: &Dynamic) -> Result<String, String> {
    let s = string(what, v)?;
    if s.trim().is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    Ok(s)
}

/// One of a fixed set of words (compared without case); returns it in lower
/// case.
pub fn choice(what: &str, v: &Dynamic, allowed: &[&str]) -> Result<String, String> {
    let s = string(what, v)?;
    let lower = s.to_ascii_lowercase();
    if allowed.contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(format!(
            "{what} must be one of {}, not {s:?}",
            quoted_list(allowed)
        ))
    }
}

/// An array of strings; a single string counts as a list of one.
pub fn string_list(what: &str, v: &Dynamic) -> Result<Vec<String>, String> {
    if v.is_string() {
        return Ok(vec![v.to_string()]);
    }
    let Some(arr) = v.read_lock::<rhai::Array>() else {
        return Err(format!(
            "{what} must be an array of strings (or one string), not {}",
            describe(v)
        ));
    };
    arr.iter()
        .enumerate()
        .map(|(i, item)| {
            if item.is_string() {
                Ok(item.to_string())
            } else {
                Err(format!(
                    "{what}[{i}] must be a string, not {}",
                    describe(item)
                ))
            }
        })
        .collect()
}

/// An argument for a program: strings as they are, numbers written out
/// (`["-w", 10]` is what people type).
pub fn arg(what: &str, v: &Dynamic) -> Result<String, String> {
    if v.is_string() {
        Ok(v.to_string())
    } else if let Ok(i) = v.as_int() {
        Ok(i.to_string())
    } else if let Ok(f) = v.as_float() {
        Ok(f.to_string())
    } else {
        Err(format!(
            "{what} must be a string or a number, not {}",
            describe(v)
        ))
    }
}

/// `"a", "b", "c"` for messages.
pub fn quoted_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An array of strings as a Rhai value (for reading keys back).
pub fn to_array(items: &[String]) -> Dynamic {
    Dynamic::from_array(items.iter().map(|s| Dynamic::from(s.clone())).collect())
}

/// A float as a Rhai value.
pub fn to_float(x: f64) -> Dynamic {
    Dynamic::from_float(x as FLOAT)
}

/// The closest of `known` to `word`, if it is close enough to be a typo
/// (edit distance at most 2, or at most a third of the word).
pub fn did_you_mean<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(2);
    known
        .iter()
        .map(|k| (edit_distance(word, k), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Edit distance over chars, a swap of two neighbours counting as one
/// edit (optimal string alignment): `hots` is one step from `host`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // d[i][j]: distance between a[..i] and b[..j].
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The message for a key or option nobody knows.
pub fn unknown(kind: &str, full_name: &str, word: &str, prefix: &str, known: &[&str]) -> String {
    let hint = match did_you_mean(word, known) {
        Some(k) => format!("did you mean `{prefix}{k}`? "),
        None => String::new(),
    };
    format!(
        "unknown {kind} `{full_name}`: {hint}known: {}",
        known.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_key() {
        assert_eq!(did_you_mean("tto", &["to", "addr_from"]), Some("to"));
        assert_eq!(
            did_you_mean("base_tik", &["base_tick", "workers"]),
            Some("base_tick")
        );
        assert_eq!(did_you_mean("zzzzzzzz", &["to", "workers"]), None);
        assert_eq!(did_you_mean("hots", &["bits", "host"]), Some("host"));
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn seconds_bounds() {
        assert_eq!(seconds("x", &Dynamic::from_int(3), 0.05, false), Ok(3.0));
        assert_eq!(seconds("x", &Dynamic::from("1m30s"), 0.05, false), Ok(90.0));
        assert!(seconds("x", &Dynamic::from("soon"), 0.05, false).is_err());
        assert!(seconds("x", &Dynamic::from_float(0.01), 0.05, false).is_err());
        assert!(seconds("x", &Dynamic::from_float(0.0), 0.0, true).is_err());
        assert!(seconds("x", &Dynamic::from_float(f64::NAN), 0.0, true).is_err());
    }
}
