//! A real terminal for the tests of what picomon shows a person: a tmux
//! pane of a given size, on a tmux server of the test's own (its socket in
//! the test's folder), so tests never meet each other's sessions.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::wait_until;

/// A detached tmux session `cols` wide running a shell in `dir`.
pub struct Terminal {
    socket: PathBuf,
    /// Runs so far: each run's end marker is its own.
    runs: std::cell::Cell<u32>,
}

impl Terminal {
    /// Starts the session with bash; `env` is set in it (tmux's `-e`).
    pub fn start(dir: &Path, cols: u16, env: &[(&str, &str)]) -> Terminal {
        Terminal::start_shell(dir, cols, env, &["bash", "--norc", "--noprofile"])
    }

    /// [`Terminal::start`] with another shell (its argv).
    pub fn start_shell(dir: &Path, cols: u16, env: &[(&str, &str)], shell: &[&str]) -> Terminal {
        let socket = dir.join("tmux.sock");
        let mut cmd = Command::new("tmux");
        cmd.arg("-S").arg(&socket).args([
            "new-session",
            "-d",
            "-x",
            &cols.to_string(),
            "-y",
            "40",
            "-c",
        ]);
        cmd.arg(dir);
        for (k, v) in env {
            cmd.args(["-e", &format!("{k}={v}")]);
        }
        cmd.args(shell);
        cmd.env_remove("TMUX");
        let out = cmd.output().expect("run tmux");
        assert!(out.status.success(), "tmux new-session: {out:?}");
        Terminal {
            socket,
            runs: std::cell::Cell::new(0),
        }
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux");
        assert!(out.status.success(), "tmux {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types `keys` (tmux key names: "Enter", "Tab", or text with `-l`).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "0"];
        args.extend(keys);
        self.tmux(&args);
    }

    /// What the pane shows: wrapped lines joined (`-J`, so a line wider
    /// than the pane is one line here) and, with `escapes`, the colours.
    pub fn screen(&self, escapes: bool) -> String {
        let mut args = vec!["capture-pane", "-p", "-J", "-t", "0"];
        if escapes {
            args.push("-e");
        }
        self.tmux(&args)
    }

    /// Runs `command` in the pane's shell and waits for it to end; returns
    /// the screen (without colours) and its exit code.
    pub fn run(&self, command: &str) -> (String, i32) {
        let n = self.runs.get() + 1;
        self.runs.set(n);
        // The marker is printed, not typed: the typed line has `$?`.
        let marker = format!("[end {n} exit ");
        self.keys(&[
            "-l",
            &format!("clear; {command}; echo \"[end {n} exit $?]\""),
        ]);
        self.keys(&["Enter"]);
        let code = wait_until(
            Duration::from_secs(60),
            &format!("{command} to end"),
            || {
                let screen = self.screen(false);
                screen
                    .lines()
                    .find_map(|l| l.strip_prefix(&marker)?.strip_suffix(']')?.parse().ok())
            },
        );
        (self.screen(false), code)
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}

/// What the bash completion `script` offers for `line` (completing its last
/// word; a line ending in a space completes an empty word), driving the
/// function `complete -p NAME` names the way bash does on TAB. The
/// command is the line's first word, run from `PATH`, which `path_first`
/// (if any) is put in front of.
pub fn bash_complete(script: &Path, line: &str, path_first: Option<&Path>) -> Vec<String> {
    let prog = r#"
        source "$SCRIPT"
        read -r -a COMP_WORDS <<< "$LINE"
        [[ "$LINE" == *" " ]] && COMP_WORDS+=("")
        spec=$(complete -p "${COMP_WORDS[0]}") || exit 1
        fn=${spec#*-F }; fn=${fn%% *}
        COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
        COMP_LINE=$LINE; COMP_POINT=${#LINE}
        "$fn" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf '%s\n' "${COMPREPLY[@]}"
    "#;
    let mut cmd = Command::new("bash");
    cmd.args(["--norc", "--noprofile", "-c", prog])
        .env("SCRIPT", script)
        .env("LINE", line);
    path_in_front(&mut cmd, path_first);
    let out = cmd.output().expect("run bash");
    assert!(out.status.success(), "completing {line:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim_end().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// What fish offers for `line` with the completion `script` loaded
/// (`complete -C`, as on TAB): the candidates without their descriptions.
/// `path_first` as for [`bash_complete`].
pub fn fish_complete(script: &Path, line: &str, path_first: Option<&Path>) -> Vec<String> {
    let mut cmd = Command::new("fish");
    cmd.args(["--no-config", "-c", "source $SCRIPT; complete -C $LINE"])
        .env("SCRIPT", script)
        .env("LINE", line);
    path_in_front(&mut cmd, path_first);
    let out = cmd.output().expect("run fish");
    assert!(out.status.success(), "completing {line:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').next().unwrap_or("").to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Puts `dir` (if any) in front of `cmd`'s PATH.
fn path_in_front(cmd: &mut Command, dir: Option<&Path>) {
    if let Some(dir) = dir {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![dir.to_path_buf()];
        dirs.extend(std::env::split_paths(&path));
        cmd.env("PATH", std::env::join_paths(dirs).expect("a PATH"));
    }
}
