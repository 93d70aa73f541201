//! picomon-docgen: writes picomon's man pages and shell completions from
//! the same clap definitions and config-key table the binaries use, so the
//! docs cannot drift from the code.
//!
//! It is a separate workspace member on purpose: clap_mangen and
//! clap_complete are never linked into the shipped `picomon`, whose size is
//! budgeted. The outputs are committed (`man/`, `completions/`), so a
//! checkout can read them with `man -l man/picomon.1` and the Debian package
//! ships them without running this; a test here fails when they are stale.
//!
//! ```text
//! cargo run -p picomon-docgen            # rewrite man/ and completions/
//! cargo run -p picomon-docgen -- --check # exit 1 if any of them is stale
//! ```

mod completions;
mod man;
mod unit;
#[allow(dead_code)] // its helper methods are for the watchdog itself
#[path = "../../watchdog/src/cli.rs"]
mod watchdog_cli;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// One generated file: its path below the repository root and its text.
pub struct Output {
    pub path: &'static str,
    pub text: String,
}

/// Everything this tool writes, in a fixed order.
pub fn outputs() -> Vec<Output> {
    let mut all = man::pages();
    all.extend(completions::scripts());
    all.push(unit::packaged());
    all
}

/// The repository root: the folder above this crate.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("docgen lives in a folder of the repository")
        .to_path_buf()
}

/// The generated files whose committed copy differs from what the code
/// generates now (or is missing).
fn stale(root: &Path) -> Vec<&'static str> {
    outputs()
        .into_iter()
        .filter(|o| std::fs::read_to_string(root.join(o.path)).ok().as_deref() != Some(&o.text))
        .map(|o| o.path)
        .collect()
}

fn main() -> ExitCode {
    let root = repo_root();
    if std::env::args().nth(1).as_deref() == Some("--check") {
        let stale = stale(&root);
        if stale.is_empty() {
            return ExitCode::SUCCESS;
        }
        eprintln!(
            "picomon-docgen: out of date: {}; run `cargo run -p picomon-docgen` and commit them",
            stale.join(", ")
        );
        return ExitCode::FAILURE;
    }
    for o in outputs() {
        let path = root.join(o.path);
        let written = std::fs::create_dir_all(path.parent().expect("a file in a folder"))
            .and_then(|()| std::fs::write(&path, &o.text));
        if let Err(err) = written {
            eprintln!("picomon-docgen: cannot write {}: {err}", path.display());
            return ExitCode::FAILURE;
        }
        println!("{}", o.path);
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_man_pages_and_completions_are_up_to_date() {
        let stale = stale(&repo_root());
        assert!(
            stale.is_empty(),
            "stale: {stale:?}; run `cargo run -p picomon-docgen` and commit the result"
        );
    }

    #[test]
    fn both_commands_pages_name_the_signals_they_take() {
        let pages = man::pages();
        for path in ["man/picomon.1", "man/picomon-watchdog.1"] {
            let page = &pages.iter().find(|o| o.path == path).unwrap().text;
            assert!(page.contains(".SH SIGNALS"), "{path}");
            for sig in ["SIGHUP", "SIGUSR1", "SIGTERM", "SIGINT"] {
                assert!(page.contains(sig), "{sig} missing in {path}");
            }
        }
    }

    #[test]
    fn every_declared_key_is_in_the_config_man_page() {
        let page = man::pages()
            .into_iter()
            .find(|o| o.path == "man/picomon.rhai.5")
            .expect("picomon.rhai(5) is generated");
        let keys = picomon::config::key_docs();
        assert!(keys.len() >= 28, "{}", keys.len());
        for key in keys {
            // roff escapes nothing in a key name but the dots stay as they are.
            assert!(page.text.contains(&key.name), "{} missing", key.name);
        }
    }
}
