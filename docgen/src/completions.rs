//! Shell completions for bash, zsh and fish from the clap definitions
//! (clap_complete): subcommands, flags, and file or folder names where a
//! flag takes a path (the value hints in the definitions). For picomon each
//! script is then taught what clap cannot know: the config's check names
//! after `status`, `ack`, `run`, `silence`, `ping` and `--only`, and the silence ids
//! after `unsilence`, asked from `picomon __complete checks|silences` with
//! the `-c`/`--state-dir` already typed.

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
            let mut text = String::from_utf8(out).expect("completion scripts are UTF-8");
            if name == "picomon" {
                text = dynamic(shell, text);
            }
            all.push(Output { path, text });
        }
    }
    all
}

/// Bash: a function that answers where check names or silence ids are
/// wanted and leaves the rest to clap's `_picomon`, registered in its place.
const BASH: &str = r#"
# Check names and silence ids, from picomon itself (see picomon(1)).
_picomon_dynamic() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"
    local i word sub="" positionals=0 what=""
    local -a pass=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${COMP_WORDS[i]}"
        case "$word" in
            -c|--config|--state-dir)
                pass+=("$word" "${COMP_WORDS[i+1]}"); ((i++)) ;;
            --config=*|--state-dir=*) pass+=("$word") ;;
            -m|--message|--for|--status|--only|--pid-file|--user) ((i++)) ;;
            -*) ;;
            *) if [[ -z "$sub" ]]; then sub="$word"; else ((positionals++)); fi ;;
        esac
    done
    if [[ "$prev" == --only ]]; then
        what=checks
    elif [[ "$cur" != -* && $positionals -eq 0 ]]; then
        case "$prev" in
            -c|--config|--state-dir|-m|--message|--for|--status|--pid-file|--user) ;;
            *) case "$sub" in
                   status|ack|run|silence|ping) what=checks ;;
                   unsilence) what=silences ;;
               esac ;;
        esac
    fi
    if [[ -z "$what" ]]; then
        _picomon "$@"
        return
    fi
    local candidate
    COMPREPLY=()
    while IFS= read -r candidate; do
        [[ "$candidate" == "$cur"* ]] && COMPREPLY+=("$(printf '%q' "$candidate")")
    done < <("${COMP_WORDS[0]}" __complete "$what" "${pass[@]}" 2>/dev/null)
}
"#;

/// Zsh: the functions clap's `_default` actions are replaced with.
const ZSH: &str = r#"
# Check names and silence ids, from picomon itself (see picomon(1)).
_picomon_ask() {
    local -a pass
    local i
    for ((i = 2; i < CURRENT; i++)); do
        case "${words[i]}" in
            -c|--config|--state-dir) pass+=("${words[i]}" "${words[i+1]}") ;;
            --config=*|--state-dir=*) pass+=("${words[i]}") ;;
        esac
    done
    "${words[1]}" __complete "$1" "${pass[@]}" 2>/dev/null
}
_picomon_checks() {
    local -a checks
    checks=("${(@f)$(_picomon_ask checks)}")
    compadd -a checks
}
_picomon_silences() {
    local -a ids
    ids=("${(@f)$(_picomon_ask silences)}")
    compadd -a ids
}
"#;

/// Fish: more candidates for the same places (fish merges them with
/// clap's).
const FISH: &str = r#"
# Check names and silence ids, from picomon itself (see picomon(1)).
function __fish_picomon_ask
    set -l tokens (commandline -opc)
    set -l pass
    for i in (seq 2 (count $tokens))
        switch $tokens[$i]
            case -c --config --state-dir
                set -a pass $tokens[$i] $tokens[(math $i + 1)]
            case '--config=*' '--state-dir=*'
                set -a pass $tokens[$i]
        end
    end
    $tokens[1] __complete $argv[1] $pass 2>/dev/null
end
complete -c picomon -n "__fish_seen_subcommand_from status ack run silence ping" -f -a "(__fish_picomon_ask checks)"
complete -c picomon -n "__fish_seen_subcommand_from unsilence" -f -a "(__fish_picomon_ask silences)"
complete -c picomon -l only -x -a "(__fish_picomon_ask checks)"
"#;

/// `text`, clap's script for `shell`, with the check names and silence ids
/// wired in.
fn dynamic(shell: Shell, text: String) -> String {
    match shell {
        Shell::Bash => {
            let registered = text.matches("complete -F _picomon ").count();
            assert!(registered > 0, "clap's bash script registers _picomon");
            let text = text.replace("complete -F _picomon ", "complete -F _picomon_dynamic ");
            // Defined before the lines that register it.
            let at = text.rfind("\nif [[ ").unwrap_or(text.len());
            format!("{}\n{}{}", &text[..at], BASH.trim_start(), &text[at..])
        }
        Shell::Zsh => {
            let mut out = String::new();
            for line in text.lines() {
                let wants = |what: &str| {
                    line.starts_with(&format!("':{what} -- "))
                        || line.starts_with(&format!("'::{what} -- "))
                        || line.starts_with(&format!("'--{what}=["))
                };
                let line = if wants("check") || wants("only") {
                    line.replace(":_default'", ":_picomon_checks'")
                } else if wants("id") {
                    line.replace(":_default'", ":_picomon_silences'")
                } else {
                    line.to_string()
                };
                out.push_str(&line);
                out.push('\n');
            }
            assert!(
                out.contains("_picomon_checks'"),
                "zsh: no check argument found"
            );
            assert!(
                out.contains("_picomon_silences'"),
                "zsh: no silence id found"
            );
            // Before the `if [ "$funcstack[1]" = "_picomon" ]` at the end.
            let at = out.rfind("\nif [ ").unwrap_or(out.len());
            format!("{}\n{}{}", &out[..at], ZSH.trim_start(), &out[at..])
        }
        _ => text + FISH,
    }
}
