//! A probe given a host name keeps its timeout when the resolver does not
//! answer. The test builds a network namespace whose resolv.conf (bind
//! mounted by `ip netns exec`) points at 127.0.0.1:53, where a socket is
//! bound and never answers, with a resolver timeout of 30 s; the probes'
//! timeout is 2 s.

use crate::support;

use std::fs;
use std::process::Command;

use support::*;

/// The namespace and its /etc/netns folder, removed when dropped.
struct Namespace {
    name: String,
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        let _ = fs::remove_dir_all(format!("/etc/netns/{}", self.name));
    }
}

/// Binds the silent DNS sockets inside the namespace, then execs picomon
/// with them open, so they exist before the first query: no race.
const SILENT_DNS_THEN_EXEC: &str = r#"
import os, socket, subprocess, sys
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", 53))
t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
t.bind(("127.0.0.1", 53))
t.listen(16)
for s in (u, t):
    os.set_inheritable(s.fileno(), True)
os.execv(sys.argv[1], sys.argv[1:])
"#;

#[test]
#[ignore = "needs root (tests/install-and-test runs it as root)"]
fn an_unanswering_resolver_costs_a_probe_its_timeout_not_more() {
    let name = format!("pmdns{}", std::process::id() % 100_000);
    assert!(
        Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .is_ok_and(|s| s.success()),
        "ip netns add {name} failed: needs root where network namespaces are allowed"
    );
    let ns = Namespace { name };
    let etc = format!("/etc/netns/{}", ns.name);
    fs::create_dir_all(&etc).unwrap();
    fs::write(
        format!("{etc}/resolv.conf"),
        "nameserver 127.0.0.1\noptions timeout:30 attempts:1\n",
    )
    .unwrap();

    let sb = Sandbox::new();
    let cfg = sb.config(
        r#"
let h = host("web1.picomon-test.example");
add(tcp(h, 80), #{ timeout: 2 });
add(http4(h), #{ timeout: 2 });
add(script("lookup", || {
    let open = tcp_connect("web2.picomon-test.example", 80);
    #{ status: if open { 0 } else { 2 }, output: `connect: ${open}` }
}), #{ timeout: 2 });
"#,
    );
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.name, "python3", "-c"])
        .arg(SILENT_DNS_THEN_EXEC)
        .arg(picomon_bin())
        .args(["-c", cfg.to_str().unwrap(), "-1"])
        .output()
        .expect("run picomon in the namespace");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Without the bound the lookups would wait for the resolver's 30 s and
    // end with its error; each probe's own deadline says it gave up at the
    // check's 2 s instead (how long the run took on the wall clock depends
    // on the machine's load, so it is not asserted).
    for probe in ["tcp 80 on web1", "http4 on web1"] {
        let line = stdout
            .lines()
            .find(|l| l.contains(probe))
            .unwrap_or_else(|| panic!("no {probe} line in:\n{stdout}\n{stderr}"));
        assert!(line.starts_with("CRITICAL"), "{line}");
        assert!(
            line.contains(
                "cannot resolve web1.picomon-test.example: no answer from the resolver within 2 s"
            ),
            "{line}"
        );
    }
    // tcp_connect() in a script waits for the name no longer than the
    // script may run.
    let script = stdout
        .lines()
        .find(|l| l.starts_with("UNKNOWN   lookup on "))
        .unwrap_or_else(|| panic!("no script line in:\n{stdout}"));
    assert!(
        script.ends_with("SCRIPT UNKNOWN - lookup: script timed out after 2 s"),
        "{script}"
    );
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
}
