//! Checks from the files of the tools picomon replaces, so their users
//! bring their files rather than rewrite them:
//!
//! - `pcrunner_commands(path [, opts])`: a pcrunner command file, text
//!   (`SERVICE|name|command`) or YAML (`- name: ...`), see [`pcrunner`];
//! - `massive_passive_checks(dir [, opts])`: a massive-passive `checks.d`
//!   directory, one JSON file per check, see [`massive_passive`].
//!
//! Each entry becomes a check as `add()` would make it, with the names the
//! monitoring server already knows for its passive results. `opts` are
//! `add()`'s options for every imported check (`every`, `timeout`, ...); what
//! an entry says itself (its name, host, type) wins. A relative path is
//! read from the config file's folder. Errors name the file and line.

mod massive_passive;
mod pcrunner;
mod yaml;

use std::path::{Path, PathBuf};

use rhai::{Dynamic, Engine, NativeCallContext};

use super::builder::{Builder, CheckOpts, Shared};
use super::checks;

/// One check read from a file, with where it was read.
#[derive(Debug)]
struct Imported {
    def: crate::model::CheckDef,
    opts: CheckOpts,
    /// `FILE:LINE`, for errors about this entry.
    place: String,
}

/// Registers `pcrunner_commands` and `massive_passive_checks`; `config` is
/// the config file (relative paths are read from its folder).
pub fn register(engine: &mut Engine, shared: &Shared, config: &Path) {
    let base = config.parent().map(Path::to_path_buf).unwrap_or_default();
    type Reader = fn(&Path, &Builder) -> Result<Vec<Imported>, String>;
    let readers: [(&str, Reader); 2] = [
        ("pcrunner_commands", pcrunner::read),
        ("massive_passive_checks", massive_passive::read),
    ];
    for (name, read) in readers {
        for with_opts in [false, true] {
            let s = shared.clone();
            let base = base.clone();
            let run = move |ctx: &NativeCallContext, path: &Dynamic, opts: Option<&Dynamic>| {
                import(&s, ctx, &base, name, path, opts, read).map_err(super::options::err)
            };
            if with_opts {
                engine.register_fn(
                    name,
                    move |ctx: NativeCallContext, path: Dynamic, opts: Dynamic| {
                        run(&ctx, &path, Some(&opts))
                    },
                );
            } else {
                engine.register_fn(name, move |ctx: NativeCallContext, path: Dynamic| {
                    run(&ctx, &path, None)
                });
            }
        }
    }
}

/// Reads `path` with `read` and adds what it found; the number of checks.
fn import(
    shared: &Shared,
    ctx: &NativeCallContext,
    base: &Path,
    func: &str,
    path: &Dynamic,
    opts: Option<&Dynamic>,
    read: fn(&Path, &Builder) -> Result<Vec<Imported>, String>,
) -> Result<i64, String> {
    let path = super::value::non_empty(&format!("{func}(path)"), path)?;
    let path = resolve(base, &path);
    let common = match opts {
        Some(o) => checks::parse_opts(o)?,
        None => CheckOpts::default(),
    };
    let line = ctx.call_position().line().unwrap_or(0);
    shared.with(|b| {
        let found = read(&path, b)?;
        let n = found.len();
        for imp in found {
            let opts = merge(&common, imp.opts);
            checks::push(b, imp.def, opts, line).map_err(|e| format!("{}: {e}", imp.place))?;
        }
        Ok(n as i64)
    })
}

fn resolve(base: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// The options given to the call, overridden by what the entry says.
fn merge(common: &CheckOpts, own: CheckOpts) -> CheckOpts {
    let mut o = common.clone();
    o.every = own.every.or(o.every);
    o.name = own.name.or(o.name);
    o.target_name = own.target_name.or(o.target_name);
    o.max_instances = own.max_instances.or(o.max_instances);
    o.passive_host = own.passive_host || o.passive_host;
    if let Some(own) = own.more {
        let more = o.more_mut();
        more.host_name = own.host_name.or(more.host_name.take());
        more.when = own.when.or(more.when.take());
        more.env.extend(own.env);
    }
    o
}

/// Splits a command line the way a POSIX shell splits words (what
/// pcrunner's `shlex.split` does): spaces separate, `'...'` is literal,
/// `"..."` keeps spaces and honours `\"`, `\\`, `\$` and `` \` ``, a
/// backslash outside quotes escapes the next character. No expansion.
pub(super) fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err("a ' quote is not closed".into()),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => w.push(c),
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => return Err("a \" quote is not closed".into()),
                        },
                        Some(c) => w.push(c),
                        None => return Err("a \" quote is not closed".into()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err("the line ends in a lone backslash".into()),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_like_a_shell() {
        let w = |s| split_words(s).unwrap();
        assert_eq!(
            w("check_dummy.py 0 OK -s 0"),
            ["check_dummy.py", "0", "OK", "-s", "0"]
        );
        assert_eq!(
            w(r#"a 'b c' "d \"e\" $f" g\ h ''"#),
            ["a", "b c", "d \"e\" $f", "g h", ""]
        );
        assert_eq!(w("  "), Vec::<String>::new());
        assert!(split_words("a 'b").is_err());
        assert!(split_words("a \"b").is_err());
    }
}
