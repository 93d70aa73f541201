//! Results that come from other programs: `picomon --send` (lines on
//! stdin, a send_nsca replacement with no size limit) and files dropped in
//! `config.result_dir`. Both carry external-command lines
//! (`[epoch] PROCESS_SERVICE_CHECK_RESULT;host;service;code;output|perf`)
//! and go through the configured outputs and their spools like the
//! daemon's own results. A result for a heartbeat check's name is also
//! that check's ping (the daemon records it).

use std::fs;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};

use super::{OutputSpec, Outputs, PassiveResult};
use crate::clock::now_unix_micros;

/// How long `--send` waits for delivery before leaving the rest in the
/// spools (for the daemon or the next `--send`).
pub const SEND_FLUSH: Duration = Duration::from_secs(10);

/// What `--send` says when a result has nowhere to go.
const NO_OUTPUTS: &str = "no outputs configured: set config.outputs = [ ... ] in the config (see \"Feeding Nagios or Icinga\" in doc/integrations.md)";

/// `picomon --send`: reads result lines from `input` and forwards them.
/// Blank lines and `#` comments are skipped. `ping` (given when the
/// config has heartbeat checks) sees every result first and says whether
/// it took it as a heartbeat check's ping (those need no output). Ok(number of results) once every result is delivered,
/// safely spooled or taken as a ping; an error names each line that could
/// not be understood (the others are still forwarded).
pub fn send_stdin(
    specs: &[OutputSpec],
    state_dir: &Path,
    input: impl BufRead,
    mut ping: Option<&mut dyn FnMut(&PassiveResult) -> bool>,
) -> anyhow::Result<usize> {
    if specs.is_empty() && ping.is_none() {
        bail!("--send: {NO_OUTPUTS}");
    }
    let outputs = match specs.is_empty() {
        true => None,
        false => Some(Outputs::start(specs, state_dir)?),
    };
    let mut sent = 0;
    let mut unrouted = 0;
    let mut bad = Vec::new();
    let mut spool_errors = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line.with_context(|| format!("--send: cannot read stdin at line {}", i + 1))?;
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        match PassiveResult::parse_command_line(text, now_unix_micros()) {
            Ok(r) => {
                let pinged = ping.as_mut().is_some_and(|p| p(&r));
                match &outputs {
                    Some(outputs) => {
                        let errors = outputs.try_submit(&r);
                        if errors.is_empty() {
                            sent += 1;
                        } else {
                            spool_errors.extend(errors);
                        }
                    }
                    None if pinged => sent += 1,
                    None => unrouted += 1,
                }
            }
            Err(e) => bad.push(format!("line {}: {e}", i + 1)),
        }
    }
    if let Some(outputs) = &outputs {
        outputs.sync()?;
        if !outputs.flush(SEND_FLUSH) {
            for line in outputs.status_lines() {
                log::warn!("not delivered yet, kept in the spool: {line}");
            }
        }
    }
    if unrouted > 0 {
        bail!("--send: {unrouted} results are not for a heartbeat check, and {NO_OUTPUTS}");
    }
    if let Some(first) = spool_errors.first() {
        bail!(
            "--send: {} results could not be spooled: {first}",
            spool_errors.len()
        );
    }
    if !bad.is_empty() {
        let shown: Vec<&str> = bad.iter().take(10).map(String::as_str).collect();
        bail!(
            "--send: {} of {} lines not understood (the others were forwarded):\n  {}\nexpected `[EPOCH] PROCESS_SERVICE_CHECK_RESULT;host;service;code;output|perfdata` or `[EPOCH] PROCESS_HOST_CHECK_RESULT;host;code;output|perfdata`",
            bad.len(),
            bad.len() + sent,
            shown.join("\n  ")
        );
    }
    Ok(sent)
}

/// True for names other programs use while a file is still being written:
/// dotfiles, `*.tmp`, `*.part`, `*~`, `*.swp`.
fn is_in_progress(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with('~')
        || [".tmp", ".part", ".swp"]
            .iter()
            .any(|suffix| name.ends_with(suffix))
}

/// `config.result_dir`: forwards every result file dropped in `dir` (in
/// name order, so pcrunner's epoch-prefixed names go oldest first) and
/// removes it. Writers must write elsewhere (or under a dotfile or `.tmp`
/// name) and rename the file in, so no half-written file is read. A file
/// with lines that do not parse is renamed to `.NAME.rejected` (kept for
/// a look, never read again); its good lines are still forwarded.
/// Returns the results forwarded (heartbeat checks take theirs as pings).
pub fn pick_up_result_dir(dir: &Path, outputs: &Outputs) -> anyhow::Result<Vec<PassiveResult>> {
    let entries = fs::read_dir(dir).with_context(|| {
        format!(
            "cannot read result_dir {} (create it, writable by the programs that drop results and by picomon)",
            dir.display()
        )
    })?;
    let mut files: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            (!is_in_progress(&name)).then(|| (name, e.path()))
        })
        .collect();
    crate::sort::ascending(&mut files);
    let mut forwarded = Vec::new();
    for (name, path) in files {
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                log::warn!("result_dir: cannot read {}: {e}", path.display());
                continue;
            }
        };
        let text = String::from_utf8_lossy(&bytes);
        let now = now_unix_micros();
        let mut bad = 0;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match PassiveResult::parse_command_line(line, now) {
                Ok(r) => {
                    outputs.submit(&r);
                    forwarded.push(r);
                }
                Err(e) => {
                    bad += 1;
                    log::warn!("result_dir: {}:{}: {e}", path.display(), i + 1);
                }
            }
        }
        let done = if bad > 0 {
            let kept = dir.join(format!(".{name}.rejected"));
            log::warn!(
                "result_dir: {} had {bad} lines not understood; kept as {}",
                path.display(),
                kept.display()
            );
            fs::rename(&path, &kept)
        } else {
            fs::remove_file(&path)
        };
        if let Err(e) = done {
            // Leaving it would forward it again at every pick-up.
            log::error!(
                "result_dir: cannot remove {}: {e} (picomon needs write permission on {})",
                path.display(),
                dir.display()
            );
        }
    }
    Ok(forwarded)
}

#[cfg(test)]
mod tests {
    #[test]
    fn files_being_written_are_left_alone() {
        for name in [".x", "a.tmp", "a.part", "a~", ".a.swp"] {
            assert!(super::is_in_progress(name), "{name}");
        }
        for name in ["1700000000.results", "results", "a.txt"] {
            assert!(!super::is_in_progress(name), "{name}");
        }
    }
}
