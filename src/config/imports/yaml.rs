//! The YAML that pcrunner's command file uses, and only that: a list of
//! maps whose values are plain or quoted scalars.
//!
//! ```yaml
//! ---
//! - name: 'CHECK_01'
//!   command: "check_dummy.py 0 OK -s 0"
//!   result_type: PROCESS_SERVICE_CHECK_RESULT
//! ```
//!
//! Comments, blank lines and `---`/`...` are skipped. Anything else (nested
//! maps, flow style `[...]`/`{...}`, block scalars `|`) is an error naming
//! the line, rather than a guess: a general YAML parser would be most of
//! picomon's size for these three keys.

/// One `key: value` with the line it is on (1-based).
#[derive(Debug, PartialEq)]
pub struct Field {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// One list item: the line of its `-` and its fields in order.
#[derive(Debug, PartialEq)]
pub struct Item {
    pub line: usize,
    pub fields: Vec<Field>,
}

/// Parses `text`; an error is `(line, message)`.
pub fn parse_list(text: &str) -> Result<Vec<Item>, (usize, String)> {
    let mut items: Vec<Item> = Vec::new();
    // The column where an item's keys start.
    let mut key_col = 0;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim_end();
        let body = line.trim_start();
        if body.is_empty() || body.starts_with('#') || body == "---" || body == "..." {
            continue;
        }
        let col = line.len() - body.len();
        if let Some(rest) = body
            .strip_prefix('-')
            .filter(|r| r.is_empty() || r.starts_with(' '))
        {
            if col != 0 && items.is_empty() {
                return Err((n, "the list must start at the left margin".into()));
            }
            let rest_trim = rest.trim_start();
            let mut fields = Vec::new();
            if rest_trim.is_empty() {
                key_col = 0;
            } else {
                key_col = col + 1 + (rest.len() - rest_trim.len());
                fields.push(field(rest_trim, n)?);
            }
            items.push(Item { line: n, fields });
            continue;
        }
        let Some(item) = items.last_mut() else {
            return Err((
                n,
                "expected a list of maps (`- name: ...`); a pcrunner YAML command file is a list"
                    .into(),
            ));
        };
        if key_col == 0 {
            key_col = col;
        }
        if col != key_col || col == 0 {
            return Err((
                n,
                format!(
                    "unexpected indentation (column {}): keys of one item line up under the first",
                    col + 1
                ),
            ));
        }
        item.fields.push(field(body, n)?);
    }
    Ok(items)
}

/// `key: value`.
fn field(text: &str, line: usize) -> Result<Field, (usize, String)> {
    let Some((key, value)) = text
        .split_once(':')
        .filter(|(_, v)| v.is_empty() || v.starts_with(' '))
    else {
        return Err((line, format!("expected `key: value`, not {text:?}")));
    };
    let key = key.trim();
    if key.is_empty() || key.starts_with(['\'', '"', '[', '{']) {
        return Err((
            line,
            format!("expected a plain key before `:`, not {key:?}"),
        ));
    }
    Ok(Field {
        key: key.to_string(),
        value: scalar(value.trim(), line)?,
        line,
    })
}

/// A plain, `'single'` or `"double"` quoted scalar.
fn scalar(text: &str, line: usize) -> Result<String, (usize, String)> {
    let unsupported = |what: &str| {
        Err((
            line,
            format!("{what} is not supported here: write the value on one line, quoted if need be"),
        ))
    };
    if let Some(rest) = text.strip_prefix('\'') {
        let mut out = String::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\'' {
                if chars.peek() == Some(&'\'') {
                    chars.next();
                    out.push('\'');
                    continue;
                }
                return after_quote(chars.collect::<String>().trim(), line).map(|_| out);
            }
            out.push(c);
        }
        return Err((line, "a ' quote is not closed on this line".into()));
    }
    if let Some(rest) = text.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return after_quote(chars.as_str().trim(), line).map(|_| out),
                '\\' => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(c @ ('"' | '\\' | '/' | ' ')) => out.push(c),
                    _ => return Err((line, "unknown escape after \\ in a \" string".into())),
                },
                c => out.push(c),
            }
        }
        return Err((line, "a \" quote is not closed on this line".into()));
    }
    match text.chars().next() {
        Some('[' | '{') => return unsupported("a flow collection ([...] or {...})"),
        Some('|' | '>') => return unsupported("a block scalar (| or >)"),
        Some('&' | '*' | '!') => return unsupported("an anchor, alias or tag"),
        _ => {}
    }
    // A plain scalar ends at ` #` (a comment).
    let plain = match text.find(" #") {
        Some(i) => &text[..i],
        None => text,
    };
    Ok(plain.trim().to_string())
}

/// Only a comment may follow a closing quote.
fn after_quote(rest: &str, line: usize) -> Result<(), (usize, String)> {
    if rest.is_empty() || rest.starts_with('#') {
        Ok(())
    } else {
        Err((line, format!("unexpected {rest:?} after the closing quote")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(key: &str, value: &str, line: usize) -> Field {
        Field {
            key: key.into(),
            value: value.into(),
            line,
        }
    }

    #[test]
    fn reads_pcrunners_list_of_maps() {
        let text = "# vim: ai\n---\n- name: 'CHECK_01'\n  command: \"a \\\"b\\\"\"  # c\n  result_type: PROCESS_SERVICE_CHECK_RESULT # plain\n-\n  name: it''s\n  command: 'it''s'\n";
        let items = parse_list(text).unwrap();
        assert_eq!(
            items,
            vec![
                Item {
                    line: 3,
                    fields: vec![
                        f("name", "CHECK_01", 3),
                        f("command", "a \"b\"", 4),
                        f("result_type", "PROCESS_SERVICE_CHECK_RESULT", 5)
                    ]
                },
                Item {
                    line: 6,
                    fields: vec![f("name", "it''s", 7), f("command", "it's", 8)]
                },
            ]
        );
    }

    #[test]
    fn what_it_does_not_read_is_an_error_with_its_line() {
        let e = |t: &str| parse_list(t).unwrap_err();
        assert_eq!(e("name: x\n").0, 1);
        assert!(e("- name: [a, b]\n").1.contains("flow collection"));
        assert!(e("- name: x\n    command: y\n").1.contains("indentation"));
        assert_eq!(e("- name: x\n  command: 'y\n").0, 2);
        assert!(e("- name: |\n").1.contains("block scalar"));
        assert!(e("- just text\n").1.contains("key: value"));
    }
}
