//! Cutting a large config into pieces that are compiled and run one
//! after the other, so the compiled form of only one piece is kept at a
//! time. Rhai keeps a compiled script whole while it runs, about 26 times
//! the size of its text: 110 MB for a config of 100,000 `add()` lines,
//! held beside every check the script had added.
//!
//! A piece ends at a `;` that closes a line at the top level (outside
//! brackets, braces, strings and comments), so top-level variables carry
//! over in the run's scope and positions stay true (a piece is compiled
//! after as many empty lines as precede it). A script that defines
//! functions (callable before their definition), returns, has a `|`
//! (a closure lives in the compiled piece that made it: one kept in a
//! variable would be lost with its piece; `||` and `|` are refused alike),
//! or uses a backtick or raw string is not cut: the whole is compiled at
//! once.

/// The pieces of `source`, each at least `size` bytes but the last;
/// `None` when it is to be compiled whole (it is smaller than two
/// pieces, or cannot be cut safely).
pub fn cut(source: &str, size: usize) -> Option<Vec<&str>> {
    if source.len() < 2 * size {
        return None;
    }
    let bytes = source.as_bytes();
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut depth: i64 = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = line_end(bytes, i);
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = comment_end(bytes, i)?;
                continue;
            }
            b'"' | b'\'' => {
                i = quote_end(bytes, i)?;
                continue;
            }
            b'`' | b'|' => return None,
            b'#' if matches!(bytes.get(i + 1), Some(b'"' | b'#')) => return None,
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth < 0 {
                    return None;
                }
            }
            b';' if depth == 0 => {
                let next = i + 1;
                let end = match bytes.get(next) {
                    Some(b'\n') => Some(next + 1),
                    Some(b'\r') if bytes.get(next + 1) == Some(&b'\n') => Some(next + 2),
                    _ => None,
                };
                if let Some(end) = end {
                    if end - start >= size && bytes.len() - end >= size {
                        pieces.push(&source[start..end]);
                        start = end;
                    }
                    i = end;
                    continue;
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let from = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                if matches!(&source[from..i], "fn" | "return") {
                    return None;
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    if depth != 0 || pieces.is_empty() {
        return None;
    }
    pieces.push(&source[start..]);
    Some(pieces)
}

/// Where the line comment at `i` ends (its newline, or the end).
fn line_end(b: &[u8], i: usize) -> usize {
    b[i..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |n| i + n)
}

/// Past the block comment at `i` (Rhai's nest); `None` when unclosed.
fn comment_end(b: &[u8], mut i: usize) -> Option<usize> {
    let mut depth = 0;
    while i + 1 < b.len() {
        match (b[i], b[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// Past the string or character literal at `i`; `None` when unclosed.
fn quote_end(b: &[u8], i: usize) -> Option<usize> {
    let quote = b[i];
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            c if c == quote => return Some(j + 1),
            _ => j += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_end_at_a_top_level_semicolon_that_ends_a_line() {
        let src = "let a = 1;\nlet b = #{ x: 1,\n y: 2 };\nadd(a); add(b);\nlet c = \"; {\";\n";
        let pieces = cut(src, 5).unwrap();
        assert_eq!(pieces.concat(), src);
        assert_eq!(
            pieces,
            [
                "let a = 1;\n",
                "let b = #{ x: 1,\n y: 2 };\n",
                "add(a); add(b);\n",
                "let c = \"; {\";\n"
            ]
        );
        // Small: whole.
        assert_eq!(cut(src, 1000), None);
    }

    #[test]
    fn what_cannot_be_cut_safely_is_compiled_whole() {
        let lines = |extra: &str| format!("let a = 1;\n{extra}\nlet b = 2;\nlet c = 3;\n");
        assert!(cut(&lines("// it's ; {"), 5).is_some());
        assert!(cut(&lines("/* a /* nested */ ; { */"), 5).is_some());
        assert!(cut(&lines("let q = '\\'';"), 5).is_some());
        for bad in [
            "fn f() { 1 }",
            "return;",
            "let f = |x| x + 1;",
            "let t = a || b;",
            "let s = `x ${a}`;",
            "let r = #\"raw\"#;",
            "let open = [1,",
            "let s = \"unclosed",
            "/* unclosed",
            "}",
        ] {
            assert_eq!(cut(&lines(bad), 5), None, "{bad}");
        }
        // A word that only contains one is no function.
        assert!(cut(&lines("let fnord = 1; let returns = 2;"), 5).is_some());
    }
}

#[cfg(test)]
mod run_tests {
    use std::path::Path;

    /// A config large enough to be run in pieces: what the first piece
    /// defines is there in the last, and positions are the file's.
    #[test]
    fn a_large_config_runs_in_pieces_as_it_would_whole() {
        let mut src = String::from(
            "let lo = host(\"lo\", #{ ipv4: \"127.0.0.1\" });\nlet n = 0;\nlet next = 1;\n",
        );
        let count = 12_000;
        for i in 0..count {
            src.push_str(&format!(
                "add(tcp(lo, {}), #{{ name: \"check number {i}\" }}); n += 1;\n",
                9000 + i % 100
            ));
        }
        assert!(super::cut(&src, super::super::PIECE).is_some_and(|p| p.len() >= 2));
        let path = Path::new("big.rhai");
        let tail = "if n != 12000 { throw \"lost count\" }\nconfig.workers = next + 2;\n";
        let cfg = crate::config::load_str(path, &format!("{src}{tail}")).unwrap();
        assert_eq!(cfg.checks.len(), count);
        assert_eq!(cfg.workers, 3);
        let last = cfg.checks.last().unwrap();
        assert_eq!(&*last.id, "check number 11999");
        assert_eq!(last.line as usize, count + 3);
        let e = crate::config::load_str(path, &format!("{src}let x = nohost;\n")).unwrap_err();
        assert_eq!((e.line, e.col), (count + 4, 9), "{e}");
        let e = crate::config::load_str(path, &format!("{src}let x = (;\n")).unwrap_err();
        assert_eq!(e.line, count + 4, "{e}");
    }
}

#[cfg(test)]
mod closure_tests {
    use std::path::Path;

    /// A closure kept in a variable is called far below where it was
    /// made: such a config is compiled whole, and loads.
    #[test]
    fn a_closure_kept_in_a_variable_survives_a_large_config() {
        let mut src = String::from(
            "let lo = host(\"lo\", #{ ipv4: \"127.0.0.1\" });\nlet next = |x| x + 1;\n",
        );
        for i in 0..12_000 {
            src.push_str(&format!(
                "add(tcp(lo, {}), #{{ name: \"check number {i}\" }});\n",
                9000 + i % 100
            ));
        }
        src.push_str("config.workers = next.call(2);\n");
        assert!(src.len() >= 2 * super::super::PIECE);
        let cfg = crate::config::load_str(Path::new("big.rhai"), &src).unwrap();
        assert_eq!(cfg.workers, 3);
        assert_eq!(cfg.checks.len(), 12_000);
    }
}
