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
            text = without_hidden(shell, text, &command(name));
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
                   status|ack|unack|run|silence|ping) what=checks ;;
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
# The words typed so far come from the line itself: inside a subcommand,
# clap's functions have cut `words` down to the subcommand's own.
_picomon_ask() {
    local -a typed pass
    local i
    typed=(${(z)LBUFFER})
    for ((i = 2; i < $#typed; i++)); do
        case "${typed[i]}" in
            -c|--config|--state-dir) pass+=("${typed[i]}" "${(Q)typed[i+1]}") ;;
            --config=*|--state-dir=*) pass+=("${(Q)typed[i]}") ;;
        esac
    done
    "${(Q)typed[1]}" __complete "$1" "${pass[@]}" 2>/dev/null
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
complete -c picomon -n "__fish_seen_subcommand_from status ack unack run silence ping" -f -a "(__fish_picomon_ask checks)"
complete -c picomon -n "__fish_seen_subcommand_from unsilence" -f -a "(__fish_picomon_ask silences)"
complete -c picomon -l only -x -a "(__fish_picomon_ask checks)"
"#;

/// `text`, clap's script for `shell`, without what `cmd` hides
/// (`--watchdog-mail`, `__complete`: for picomon's own use, never to be
/// offered to a person). clap's generators list hidden flags and
/// subcommands along with the rest; they are taken out of what each script
/// offers (bash: the `opts` lists; zsh: the `_arguments` and `_describe`
/// lines; fish: the `complete` lines and the option list). Where they only
/// appear in a condition or a case for the subcommand itself, nothing is
/// offered and the line stays.
fn without_hidden(shell: Shell, text: String, cmd: &clap::Command) -> String {
    let flags: Vec<String> = cmd
        .get_arguments()
        .filter(|a| a.is_hide_set())
        .filter_map(|a| a.get_long().map(str::to_string))
        .collect();
    let subs: Vec<String> = cmd
        .get_subcommands()
        .filter(|c| c.is_hide_set())
        .map(|c| c.get_name().to_string())
        .collect();
    if flags.is_empty() && subs.is_empty() {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let trimmed = line.trim_start();
        let line = match shell {
            Shell::Bash if trimmed.starts_with("opts=\"") => {
                let words: Vec<&str> = trimmed["opts=\"".len()..]
                    .trim_end_matches('"')
                    .split(' ')
                    .filter(|w| {
                        !flags.iter().any(|f| *w == format!("--{f}"))
                            && !subs.iter().any(|s| w == s)
                    })
                    .collect();
                let indent = &line[..line.len() - trimmed.len()];
                format!("{indent}opts=\"{}\"", words.join(" "))
            }
            Shell::Zsh
                if flags
                    .iter()
                    .any(|f| trimmed.starts_with(&format!("'--{f}[")))
                    || subs.iter().any(|s| trimmed.starts_with(&format!("'{s}:"))) =>
            {
                continue
            }
            Shell::Fish
                if trimmed.starts_with("complete ")
                    && (flags.iter().any(|f| trimmed.contains(&format!(" -l {f} ")))
                        || subs
                            .iter()
                            .any(|s| trimmed.contains(&format!("-a \"{s}\"")))) =>
            {
                continue
            }
            Shell::Fish if trimmed.starts_with("string join ") => {
                let mut l = line.to_string();
                for f in &flags {
                    l = l.replace(&format!(" {f} "), " ");
                }
                l
            }
            _ => line.to_string(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

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
