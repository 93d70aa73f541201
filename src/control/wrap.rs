//! `picomon ping CHECK -- COMMAND ARGS...`: what `runitor` and
//! healthchecks' `hc` do for a cron job. Pings `--start`, runs COMMAND
//! (argv, no shell) with its output passed through to ours, then pings
//! with its exit status and the tail of its output.
//!
//! Exit status: COMMAND's when it failed (so cron still sees it), else 1
//! when a ping was not recorded, else 0.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::client;
use super::protocol::Request;
use crate::model::heartbeat::MAX_MESSAGE;

/// Exit status when COMMAND cannot be started (as a shell says).
const CANNOT_RUN: u8 = 127;

pub fn run(
    state_dir: &Path,
    check: &str,
    message: &str,
    command: &[String],
    timeout: Duration,
) -> anyhow::Result<i32> {
    let ping = |start: bool, exit: Option<u8>, text: String| {
        let request = Request::Ping {
            check: check.to_string(),
            start,
            fail: false,
            exit,
            nagios: None,
            message: text,
        };
        let what = if start { "--start" } else { "the end" };
        match client::call(state_dir, &request, timeout) {
            Ok(a) => match a.error {
                None => true,
                Some(e) => {
                    eprintln!("picomon: ping {what} not recorded: {e}");
                    false
                }
            },
            Err(e) => {
                eprintln!("picomon: ping {what} not recorded: {e}");
                false
            }
        }
    };
    let mut recorded = ping(true, None, message.to_string());
    let (code, tail) = match run_teed(command) {
        Ok(x) => x,
        Err(e) => {
            let why = format!("cannot run {:?}: {e}", command[0]);
            eprintln!("picomon: {why}");
            (CANNOT_RUN, why)
        }
    };
    let text = match (message.is_empty(), tail.trim().is_empty()) {
        (_, true) => message.to_string(),
        (true, false) => tail,
        (false, false) => format!("{message}\n{tail}"),
    };
    recorded &= ping(false, Some(code), text);
    Ok(if code != 0 {
        i32::from(code)
    } else {
        i32::from(!recorded)
    })
}

/// Runs `argv` with stdout and stderr on one pipe (their order kept),
/// copies what it prints to our stdout, and returns its exit status (128
/// + the signal for a killed one) and the last [`MAX_MESSAGE`] bytes.
fn run_teed(argv: &[String]) -> std::io::Result<(u8, String)> {
    let (reader, writer) = std::io::pipe()?;
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::inherit())
        .stdout(writer.try_clone()?)
        .stderr(writer)
        .spawn()?;
    let mut reader = reader;
    let mut tail: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
    let mut out = std::io::stdout();
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let _ = out.write_all(&buf[..n]);
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > 2 * MAX_MESSAGE {
            tail.drain(..tail.len() - MAX_MESSAGE);
        }
    }
    let _ = out.flush();
    let status = child.wait()?;
    let code = match (
        status.code(),
        std::os::unix::process::ExitStatusExt::signal(&status),
    ) {
        (Some(c), _) => c as u8,
        (None, Some(sig)) => 128u8.saturating_add(sig as u8),
        (None, None) => 1,
    };
    let text = String::from_utf8_lossy(&tail).into_owned();
    Ok((code, crate::model::heartbeat::tail(&text).to_string()))
}
