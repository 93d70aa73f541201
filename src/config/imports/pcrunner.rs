//! pcrunner's command file, in either of its two formats (told apart by
//! content, not by name):
//!
//! ```text
//! SERVICE|CHECK_01|check_dummy.py|0 OK -s 0
//! HOST|gateway|check_ping -H 192.0.2.1 -w 100,20% -c 500,60%
//! ```
//!
//! ```yaml
//! - name: 'CHECK_01'
//!   command: 'check_dummy.py 0 OK -s 0'
//!   result_type: 'PROCESS_SERVICE_CHECK_RESULT'
//! ```
//!
//! As pcrunner does, the text format joins every field after the name with
//! spaces into the command, and a command is split into words like a shell
//! would (quotes, backslashes) but never run by one. The checks run on and
//! report for this machine (pcrunner's `hostname`); a `HOST` entry sends a
//! host result.

use std::path::Path;

use rhai::Dynamic;

use super::yaml;
use super::{split_words, Imported};
use crate::config::builder::{Builder, CheckOpts};

const RESULT_TYPES: [&str; 2] = ["PROCESS_SERVICE_CHECK_RESULT", "PROCESS_HOST_CHECK_RESULT"];
const YAML_KEYS: [&str; 3] = ["name", "command", "result_type"];

pub(super) fn read(path: &Path, b: &Builder) -> Result<Vec<Imported>, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!("pcrunner_commands: cannot read {shown}: {e} (give the command file's path, relative to the config file)")
    })?;
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or("");
    let entries = if first.starts_with("---") || first.starts_with('-') {
        from_yaml(&text).map_err(|(n, e)| format!("{shown}:{n}: {e}"))?
    } else {
        from_text(&text).map_err(|(n, e)| format!("{shown}:{n}: {e}"))?
    };
    entries
        .into_iter()
        .map(|(line, host, name, command)| {
            let place = format!("{shown}:{line}");
            let words = split_words(&command).map_err(|e| format!("{place}: command: {e}"))?;
            let Some((program, args)) = words.split_first() else {
                return Err(format!("{place}: the command of {name:?} is empty"));
            };
            let args: rhai::Array = args.iter().cloned().map(Dynamic::from).collect();
            let def = crate::config::checks::make_plugin(
                &Dynamic::from(program.clone()),
                Some(&Dynamic::from_array(args)),
                b.hostname.clone(),
            )
            .map_err(|e| format!("{place}: {e}"))?;
            Ok(Imported {
                def,
                opts: CheckOpts {
                    name: Some(name),
                    passive_host: host,
                    ..CheckOpts::default()
                },
                place,
            })
        })
        .collect()
}

/// (line, host result, name, command) of each entry.
type Entry = (usize, bool, String, String);

fn from_text(text: &str) -> Result<Vec<Entry>, (usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        let host = match fields[0] {
            "SERVICE" => false,
            "HOST" => true,
            other => {
                return Err((
                    n,
                    format!(
                        "expected SERVICE|name|command or HOST|name|command, not {other:?} first"
                    ),
                ))
            }
        };
        if fields.len() < 3 || fields[1].trim().is_empty() {
            return Err((
                n,
                "expected SERVICE|name|command or HOST|name|command: a name and a command".into(),
            ));
        }
        out.push((n, host, fields[1].to_string(), fields[2..].join(" ")));
    }
    Ok(out)
}

fn from_yaml(text: &str) -> Result<Vec<Entry>, (usize, String)> {
    let mut out = Vec::new();
    for item in yaml::parse_list(text)? {
        let (mut name, mut command, mut host) = (None, None, false);
        for f in item.fields {
            match f.key.as_str() {
                "name" => name = Some(f.value),
                "command" => command = Some(f.value),
                "result_type" => {
                    host = match f.value.as_str() {
                        "PROCESS_SERVICE_CHECK_RESULT" => false,
                        "PROCESS_HOST_CHECK_RESULT" => true,
                        other => {
                            return Err((
                                f.line,
                                format!(
                                    "result_type {other:?} is not one of {}",
                                    RESULT_TYPES.join(", ")
                                ),
                            ))
                        }
                    }
                }
                other => {
                    return Err((
                        f.line,
                        format!("unknown key `{other}`; known: {}", YAML_KEYS.join(", ")),
                    ))
                }
            }
        }
        let missing = |k: &str| (item.line, format!("this entry has no `{k}`"));
        let name = name
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| missing("name"))?;
        let command = command.ok_or_else(|| missing("command"))?;
        out.push((item.line, host, name, command));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_lines_join_the_command_fields_like_pcrunner() {
        let e = from_text(
            "SERVICE|CHECK_01|check_dummy.py|0 OK -s 0\n\n# note\nHOST|gw|check_ping -H x\n",
        )
        .unwrap();
        assert_eq!(
            e,
            vec![
                (
                    1,
                    false,
                    "CHECK_01".into(),
                    "check_dummy.py 0 OK -s 0".into()
                ),
                (4, true, "gw".into(), "check_ping -H x".into()),
            ]
        );
        assert_eq!(from_text("SERVICE|x\n").unwrap_err().0, 1);
        assert!(from_text("\nSERVCE|x|y\n")
            .unwrap_err()
            .1
            .contains("\"SERVCE\""));
    }

    #[test]
    fn yaml_entries_need_name_and_command() {
        let e = from_yaml("- name: a\n  command: b c\n  result_type: PROCESS_HOST_CHECK_RESULT\n")
            .unwrap();
        assert_eq!(e, vec![(1, true, "a".into(), "b c".into())]);
        assert_eq!(
            from_yaml("- name: a\n").unwrap_err(),
            (1, "this entry has no `command`".into())
        );
        let bad = from_yaml("- name: a\n  comand: b\n").unwrap_err();
        assert_eq!(bad.0, 2);
        assert!(bad.1.contains("unknown key `comand`"), "{bad:?}");
        assert!(from_yaml("- name: a\n  command: b\n  result_type: X\n")
            .unwrap_err()
            .1
            .contains("PROCESS_HOST_CHECK_RESULT"));
    }
}
