//! Waiting by polling with a deadline, never by a fixed sleep: the machine
//! running the tests may be loaded, so a test states how long it is willing
//! to wait and what for. Shared by the daemon and watchdog tests (the
//! watchdog package includes this file by path, so it uses nothing else of
//! tests/support).
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// Polls `f` every 20 ms until it returns `Some` or `within` passes.
pub fn wait_for<T>(within: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Like [`wait_for`], but a timeout fails the test, naming `what` it waited
/// for.
pub fn wait_until<T>(within: Duration, what: &str, f: impl FnMut() -> Option<T>) -> T {
    wait_for(within, f).unwrap_or_else(|| panic!("timed out after {within:?} waiting for {what}"))
}
