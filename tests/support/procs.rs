//! Processes a test started: whether one still runs, and signals to it.
//! Shared by the daemon and watchdog tests (the watchdog package includes
//! this file by path, so it uses nothing else of tests/support).
#![allow(dead_code)]

use std::fs;

/// Whether a process exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z')
        }
        Err(_) => false,
    }
}

/// Sends `sig` to `pid`.
pub fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) on a pid the test started; no memory is involved.
    unsafe { libc::kill(pid, sig) };
}
