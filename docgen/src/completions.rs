//! Shell completions for bash, zsh and fish from the clap definitions
//! (clap_complete): subcommands, flags, and file or folder names where a
//! flag takes a path (the value hints in the definitions).

use clap::CommandFactory;
use clap_complete::{generate, Shell};

use crate::watchdog_cli;
use crate::Output;

const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// Per command, the files for [`SHELLS`], named as each shell looks them up
/// by command name once the package installs them (bash:
/// completions/NAME, zsh: _NAME, fish: NAME.fish).
const FILES: [(&str, [&str; 3]); 2] = [
    (
        "picomon",
        [
            "completions/picomon.bash",
            "completions/_picomon",
            "completions/picomon.fish",
        ],
    ),
    (
        "picomon-watchdog",
        [
            "completions/picomon-watchdog.bash",
            "completions/_picomon-watchdog",
            "completions/picomon-watchdog.fish",
        ],
    ),
];

fn command(name: &str) -> clap::Command {
    match name {
        "picomon" => picomon::cli::Cli::command(),
        _ => watchdog_cli::Cli::command(),
    }
}

pub fn scripts() -> Vec<Output> {
    let mut all = Vec::new();
    for (name, paths) in FILES {
        for (shell, path) in SHELLS.into_iter().zip(paths) {
            let mut out = Vec::new();
            generate(shell, &mut command(name), name, &mut out);
            all.push(Output {
                path,
                text: String::from_utf8(out).expect("completion scripts are UTF-8"),
            });
        }
    }
    all
}
