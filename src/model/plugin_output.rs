//! Plugin output: summary, long output and performance data.
//!
//! The Nagios plugin output format, as Nagios itself reads it:
//!
//! ```text
//! SUMMARY | PERFDATA              <- first line
//! LONG OUTPUT                     <- further lines ...
//! LONG OUTPUT | PERFDATA          <- ... until one with a `|`;
//! PERFDATA                        <- from there on, everything is perfdata
//! ```
//!
//! Perfdata is a whitespace-separated list of
//! `'label'=value[UOM];[warn];[crit];[min];[max]` items. Plugins get this
//! wrong often enough that an item which does not parse is kept verbatim as
//! [`Perf::Text`]: the user still sees it, and nothing is silently lost.

use std::fmt;

/// One performance-data item. An item that does not parse is kept as text.
///
/// `warn`, `crit`, `min` and `max` are kept as the plugin wrote them (they
/// are Nagios ranges such as `10:20` or `@~:5`, or empty), so that
/// [`Display`](fmt::Display) gives back plugin syntax that parses to the
/// same item.
#[derive(Clone, Debug, PartialEq)]
pub enum Perf {
    Item {
        label: String,
        value: f64,
        uom: String,
        warn: String,
        crit: String,
        min: String,
        max: String,
    },
    Text(String),
}

impl fmt::Display for Perf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Perf::Text(text) => f.write_str(text),
            Perf::Item {
                label,
                value,
                uom,
                warn,
                crit,
                min,
                max,
            } => {
                write_label(f, label)?;
                write!(f, "={value}{uom}")?;
                // Trailing empty fields are left out, as plugins do.
                let fields = [warn, crit, min, max];
                let used = fields
                    .iter()
                    .rposition(|s| !s.is_empty())
                    .map_or(0, |i| i + 1);
                for field in &fields[..used] {
                    write!(f, ";{field}")?;
                }
                Ok(())
            }
        }
    }
}

/// Writes a label, quoted (with `'` doubled) when plain syntax could not
/// carry it back.
fn write_label(f: &mut fmt::Formatter<'_>, label: &str) -> fmt::Result {
    let needs_quotes = label.is_empty()
        || label
            .chars()
            .any(|c| c.is_whitespace() || c == '=' || c == '\'');
    if needs_quotes {
        write!(f, "'{}'", label.replace('\'', "''"))
    } else {
        f.write_str(label)
    }
}

/// Splits plugin output into (summary, long output, perfdata).
///
/// The summary is the first line up to its first `|`, trimmed. Long output
/// is the following lines up to the first later `|` (trailing whitespace of
/// each line removed, lines joined with `\n`). Perfdata comes from after the
/// first line's `|` and from everything after the first `|` in a later line.
pub fn parse_plugin_output(text: &str) -> (String, String, Vec<Perf>) {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("");
    let (summary, first_perf) = split_bar(first);

    let mut perf_text = String::new();
    if let Some(p) = first_perf {
        perf_text.push_str(p);
    }

    let mut long = Vec::new();
    let mut in_perf = false;
    for line in lines {
        if in_perf {
            perf_text.push('\n');
            perf_text.push_str(line);
            continue;
        }
        let (text_part, perf_part) = split_bar(line);
        long.push(text_part.trim_end());
        if let Some(p) = perf_part {
            in_perf = true;
            perf_text.push('\n');
            perf_text.push_str(p);
        }
    }
    // A long-output line that only carried perfdata leaves an empty line.
    while long.last().is_some_and(|l| l.is_empty()) {
        long.pop();
    }

    (
        summary.trim().to_string(),
        long.join("\n"),
        parse_perfdata(&perf_text),
    )
}

/// `text` before and after its first `|`.
fn split_bar(line: &str) -> (&str, Option<&str>) {
    match line.split_once('|') {
        Some((before, after)) => (before, Some(after)),
        None => (line, None),
    }
}

/// Parses a perfdata string into items; never drops anything but whitespace.
pub fn parse_perfdata(text: &str) -> Vec<Perf> {
    split_items(text)
        .into_iter()
        .map(|raw| parse_item(raw).unwrap_or_else(|| Perf::Text(raw.to_string())))
        .collect()
}

/// Perfdata as `json_lines` writes it: an array of `{label, value, uom,
/// warn, crit, min, max}` objects, where `warn` and `crit` are the Nagios
/// ranges as written (`"10:20"`), `min` and `max` numbers, and an empty
/// field is `null`; an item that does not parse is `{"text": "..."}`.
pub fn perfdata_json(text: &str) -> serde_json::Value {
    use serde_json::{json, Value};
    let range = |s: &String| (!s.is_empty()).then(|| s.clone());
    let number = |s: &String| s.parse::<f64>().ok().filter(|v| v.is_finite());
    Value::Array(
        parse_perfdata(text)
            .into_iter()
            .map(|p| match p {
                Perf::Text(text) => json!({ "text": text }),
                Perf::Item {
                    label,
                    value,
                    uom,
                    warn,
                    crit,
                    min,
                    max,
                } => json!({
                    "label": label,
                    "value": value,
                    "uom": uom,
                    "warn": range(&warn),
                    "crit": range(&crit),
                    "min": number(&min),
                    "max": number(&max),
                }),
            })
            .collect(),
    )
}

/// Splits at whitespace, except inside a quoted label (`'a b'=1`), where
/// `''` is an escaped quote.
fn split_items(text: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let mut start = None;
    let mut quoted = false;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match start {
            None if c.is_whitespace() => {}
            None => {
                start = Some(i);
                quoted = c == '\'';
            }
            Some(s) => {
                if quoted {
                    if c == '\'' {
                        if chars.peek().is_some_and(|&(_, n)| n == '\'') {
                            chars.next();
                        } else {
                            quoted = false;
                        }
                    }
                } else if c.is_whitespace() {
                    items.push(&text[s..i]);
                    start = None;
                }
            }
        }
    }
    if let Some(s) = start {
        items.push(&text[s..]);
    }
    items
}

/// One `label=value[UOM];warn;crit;min;max` item, or `None` if it is not one.
fn parse_item(raw: &str) -> Option<Perf> {
    let (label, rest) = if let Some(quoted) = raw.strip_prefix('\'') {
        let (label, rest) = unquote(quoted)?;
        (label, rest.strip_prefix('=')?)
    } else {
        let (label, rest) = raw.split_once('=')?;
        (label.to_string(), rest)
    };
    if label.is_empty() {
        return None;
    }

    let mut fields = rest.split(';');
    let value_uom = fields.next()?;
    let ranges: Vec<&str> = fields.collect();
    if ranges.len() > 4 || !ranges.iter().all(|r| is_range(r)) {
        return None;
    }
    let num_len = value_uom
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
        .unwrap_or(value_uom.len());
    // A UOM never starts with `e`/`E` in practice, but "5e" must not pass as
    // a number: back off to the longest prefix that parses.
    let (value, uom) = (1..=num_len)
        .rev()
        .find_map(|n| {
            value_uom[..n]
                .parse::<f64>()
                .ok()
                .map(|v| (v, &value_uom[n..]))
        })
        .filter(|(v, _)| v.is_finite())?;
    if !is_uom(uom) {
        return None;
    }
    let field = |i: usize| ranges.get(i).map_or(String::new(), |s| s.to_string());
    Some(Perf::Item {
        label,
        value,
        uom: uom.to_string(),
        warn: field(0),
        crit: field(1),
        min: field(2),
        max: field(3),
    })
}

/// The label after an opening `'`, with `''` unescaped, and what follows the
/// closing quote.
fn unquote(s: &str) -> Option<(String, &str)> {
    let mut label = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            if chars.peek().is_some_and(|&(_, n)| n == '\'') {
                chars.next();
                label.push('\'');
            } else {
                return Some((label, &s[i + 1..]));
            }
        } else {
            label.push(c);
        }
    }
    None
}

/// A unit of measure: letters, `%` or `/` (`s`, `ms`, `%`, `KB`, `c`,
/// `B/s`...), or none.
fn is_uom(s: &str) -> bool {
    s.chars().all(|c| c.is_alphabetic() || c == '%' || c == '/')
}

/// A threshold or min/max field: empty, a number, or a Nagios range.
fn is_range(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E' | ':' | '~' | '@'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(label: &str, value: f64, uom: &str, w: &str, c: &str, mn: &str, mx: &str) -> Perf {
        Perf::Item {
            label: label.into(),
            value,
            uom: uom.into(),
            warn: w.into(),
            crit: c.into(),
            min: mn.into(),
            max: mx.into(),
        }
    }

    /// Parses `text` and checks each of its three parts.
    fn parses_to(text: &str, summary: &str, long: &str, perfdata: Vec<Perf>) {
        let (s, l, p) = parse_plugin_output(text);
        assert_eq!(s, summary, "summary of {text:?}");
        assert_eq!(l, long, "long output of {text:?}");
        assert_eq!(p, perfdata, "perfdata of {text:?}");
    }

    #[test]
    fn summary_only() {
        parses_to("OK - all good\n", "OK - all good", "", vec![]);
    }

    #[test]
    fn empty_output() {
        parses_to("", "", "", vec![]);
    }

    #[test]
    fn first_line_perfdata() {
        parses_to(
            "LOAD OK - load average: 0.10, 0.20, 0.30|load1=0.100;15.000;30.000;0; load5=0.2;;;0;\n",
            "LOAD OK - load average: 0.10, 0.20, 0.30",
            "",
            vec![
                item("load1", 0.1, "", "15.000", "30.000", "0", ""),
                item("load5", 0.2, "", "", "", "0", ""),
            ],
        );
    }

    #[test]
    fn long_output_and_later_perfdata_run_to_the_end() {
        parses_to(
            "DISK OK | a=1\nline two\nline three | b=2s;1;2\nc=3%\n'd e'=4B\n",
            "DISK OK",
            "line two\nline three",
            vec![
                item("a", 1.0, "", "", "", "", ""),
                item("b", 2.0, "s", "1", "2", "", ""),
                item("c", 3.0, "%", "", "", "", ""),
                item("d e", 4.0, "B", "", "", "", ""),
            ],
        );
    }

    #[test]
    fn bar_in_long_output_without_first_line_perfdata() {
        parses_to(
            "OK\nmore\n| x=1\n",
            "OK",
            "more",
            vec![item("x", 1.0, "", "", "", "", "")],
        );
    }

    #[test]
    fn quoted_labels_with_spaces_and_escaped_quotes() {
        let p = parse_perfdata("'/ used'=10MB;80;90;0;100 'it''s'=-1.5e3us");
        assert_eq!(
            p,
            vec![
                item("/ used", 10.0, "MB", "80", "90", "0", "100"),
                item("it's", -1500.0, "us", "", "", "", ""),
            ]
        );
    }

    #[test]
    fn bad_items_are_kept_as_text() {
        let p = parse_perfdata("novalue time=U junk=12abc3 a=1;2;3;4;5;6 =5 'open=1 ok=2");
        assert_eq!(
            p,
            vec![
                Perf::Text("novalue".into()),
                Perf::Text("time=U".into()),
                Perf::Text("junk=12abc3".into()),
                Perf::Text("a=1;2;3;4;5;6".into()),
                Perf::Text("=5".into()),
                Perf::Text("'open=1 ok=2".into()),
            ]
        );
    }

    #[test]
    fn ranges_are_kept_verbatim() {
        let p = parse_perfdata("t=5;@10:20;~:30;0;");
        assert_eq!(p, vec![item("t", 5.0, "", "@10:20", "~:30", "0", "")]);
    }

    #[test]
    fn display_round_trips() {
        let text = "'/ used'=10MB;80;90;0;100 'it''s'=2 plain=0.5s;;;0 x=1;;2 bad=oops a=b=c";
        let parsed = parse_perfdata(text);
        let shown: Vec<String> = parsed.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            shown,
            vec![
                "'/ used'=10MB;80;90;0;100",
                "'it''s'=2",
                "plain=0.5s;;;0",
                "x=1;;2",
                "bad=oops",
                "a=b=c",
            ]
        );
        assert_eq!(parse_perfdata(&shown.join(" ")), parsed);
    }

    #[test]
    fn crlf_and_trailing_spaces_are_trimmed() {
        parses_to("WARN - x  \r\nsecond  \r\n", "WARN - x", "second", vec![]);
    }

    #[test]
    fn perfdata_json_gives_each_field_or_null() {
        let v = perfdata_json("rta=0.5ms;100;500;0 'free space'=80% junk");
        assert_eq!(
            v,
            serde_json::json!([
                {"label": "rta", "value": 0.5, "uom": "ms", "warn": "100", "crit": "500", "min": 0.0, "max": null},
                {"label": "free space", "value": 80.0, "uom": "%", "warn": null, "crit": null, "min": null, "max": null},
                {"text": "junk"},
            ])
        );
        assert_eq!(perfdata_json(""), serde_json::json!([]));
    }
}
