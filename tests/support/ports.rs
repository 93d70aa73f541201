//! Loopback ports for test servers and for probes that must find nothing
//! listening. Shared by the daemon and watchdog tests (the watchdog package
//! includes this file by path, so it uses nothing else of tests/support).
#![allow(dead_code)]

use std::net::TcpListener;

/// A port on 127.0.0.1 nothing listens on right now (bound, then
/// released).
pub fn free_port() -> u16 {
    free_port_on("127.0.0.1")
}

/// A port on loopback address `ip` (`127.0.0.1`, `::1`) nothing listens on
/// right now.
pub fn free_port_on(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port on {ip}: {e}"))
}
