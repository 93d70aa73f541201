//! Network namespaces for the topology tests (a router in front of
//! servers, a host nobody answers): `ip` commands and a guard that deletes
//! the namespaces when dropped, whatever the test did.

use std::process::Command;

/// Runs `ip ARGS` (split on spaces) and asserts that it worked.
pub fn ip(args: &str) {
    let st = Command::new("ip")
        .args(args.split_whitespace())
        .status()
        .expect("run ip");
    assert!(st.success(), "ip {args} failed");
}

/// Network namespaces, deleted when dropped.
#[derive(Debug, Default)]
pub struct Namespaces {
    pub names: Vec<String>,
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}
