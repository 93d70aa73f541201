//! trace4/trace6 to loopback, and through a router in network namespaces
//! the test builds itself (src -- rtr -- dst, private addresses that exist
//! only inside those namespaces), including a route change.

use crate::support;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;

use picomon::model::{CheckDef, Outcome, Status};
use support::netns::{ip, Namespaces};
use support::probes::*;

#[test]
fn trace_to_loopback_reaches_in_one_hop() {
    let h = localhost();
    for (ctor, addr) in [("trace4", "127.0.0.1"), ("trace6", "::1")] {
        let o = expect_check(&h, &format!("{ctor}(h)"), Status::Ok, &[]);
        assert_eq!(o.summary, format!("TRACE OK - {addr} reached in 1 hop"));
        assert_eq!(perf_value(&o, "hops"), Some(1.0));
        assert!(
            o.long_output.starts_with(&format!(" 1  {addr}  ")),
            "{}",
            o.long_output
        );
    }
    let e = eval_def(&h, r#"trace4(h, #{ on_route_change: "yes" })"#).unwrap_err();
    assert!(e.contains("\"ignore\", \"warning\", \"critical\""), "{e}");
}

#[test]
fn trace_hands_its_route_back_and_compares_with_what_it_is_given() {
    let h = localhost();
    let first = def(&h, "trace4(h)");
    let o = run(&first, Duration::from_secs(20));
    assert_eq!(o.status, Status::Ok, "{o:?}");
    assert_eq!(o.memory.as_deref(), Some("127.0.0.1"));

    // The next run (also after a reload or restart, when the loop hands over
    // what the state file kept) compares with the route it is given.
    let again = def(&h, r#"trace4(h, #{ on_route_change: "warning" })"#);
    let o = run_remembering(&again, Duration::from_secs(20), Some("192.0.2.1 127.0.0.1"));
    assert_eq!(o.status, Status::Warning, "{o:?}");
    assert!(
        o.summary
            .ends_with("route changed: was 192.0.2.1 127.0.0.1, now 127.0.0.1"),
        "{}",
        o.summary
    );
    assert_eq!(o.memory.as_deref(), Some("127.0.0.1"));
    // The same route is no change; text that is not a route is ignored.
    for given in ["127.0.0.1", "not a route"] {
        let o = run_remembering(&again, Duration::from_secs(20), Some(given));
        assert_eq!(o.status, Status::Ok, "given {given:?}: {o:?}");
        assert_eq!(o.memory.as_deref(), Some("127.0.0.1"));
    }
}

/// Run by `trace_needs_no_privilege` as `nobody`.
#[test]
#[ignore = "run as nobody by trace_needs_no_privilege"]
fn trace_helper_as_nobody() {
    let o = expect_check(&localhost(), "trace4(h)", Status::Ok, &[]);
    assert_eq!(perf_value(&o, "hops"), Some(1.0));
}

#[test]
fn trace_needs_no_privilege() {
    run_test_as_nobody(module_path!(), "trace_helper_as_nobody");
}

/// Runs `d` in namespace `ns`, handing it `memory` (what the loop would
/// keep) and storing what the run remembers there.
fn run_in(ns: &str, d: &CheckDef, memory: &mut Option<String>) -> Outcome {
    let o = run_in_for(ns, d, Duration::from_secs(20), memory.as_deref());
    if o.memory.is_some() {
        memory.clone_from(&o.memory);
    }
    o
}

fn run_in_for(ns: &str, d: &CheckDef, timeout: Duration, memory: Option<&str>) -> Outcome {
    let path = format!("/var/run/netns/{ns}");
    let d = d.clone();
    let memory = memory.map(str::to_string);
    std::thread::spawn(move || {
        let f = File::open(&path).expect("open netns");
        // SAFETY: setns on this thread only, with a namespace fd we hold.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        run_remembering(&d, timeout, memory.as_deref())
    })
    .join()
    .expect("probe thread")
}

#[test]
#[ignore = "needs root (tests/install-and-test runs it as root)"]
fn trace_through_a_router_in_namespaces_and_route_change() {
    let tag = std::process::id() % 100_000;
    let (src, rtr, dst) = (
        format!("pmsrc{tag}"),
        format!("pmrtr{tag}"),
        format!("pmdst{tag}"),
    );
    assert!(
        Command::new("ip")
            .args(["netns", "add", &src])
            .status()
            .is_ok_and(|s| s.success()),
        "ip netns add {src} failed: needs root where network namespaces are allowed"
    );
    let _ns = Namespaces {
        names: vec![src.clone(), rtr.clone(), dst.clone()],
    };
    ip(&format!("netns add {rtr}"));
    ip(&format!("netns add {dst}"));
    let (s0, r0, r1, d0) = (
        format!("s{tag}"),
        format!("r{tag}a"),
        format!("r{tag}b"),
        format!("d{tag}"),
    );
    ip(&format!(
        "link add {s0} netns {src} type veth peer name {r0} netns {rtr}"
    ));
    ip(&format!(
        "link add {r1} netns {rtr} type veth peer name {d0} netns {dst}"
    ));
    for (ns, cmds) in [
        (
            &src,
            vec![
                format!("addr add 10.201.1.2/24 dev {s0}"),
                format!("link set {s0} up"),
                "link set lo up".into(),
                "route add default via 10.201.1.1".into(),
            ],
        ),
        (
            &rtr,
            vec![
                format!("addr add 10.201.1.1/24 dev {r0}"),
                format!("addr add 10.201.2.1/24 dev {r1}"),
                format!("link set {r0} up"),
                format!("link set {r1} up"),
                "link set lo up".into(),
            ],
        ),
        (
            &dst,
            vec![
                format!("addr add 10.201.2.2/24 dev {d0}"),
                format!("link set {d0} up"),
                "link set lo up".into(),
                "route add default via 10.201.2.1".into(),
            ],
        ),
    ] {
        for c in cmds {
            ip(&format!("-n {ns} {c}"));
        }
    }
    for (ns, key) in [
        (&rtr, "net.ipv4.ip_forward=1"),
        (&rtr, "net.ipv4.icmp_ratelimit=0"),
        (&dst, "net.ipv4.icmp_ratelimit=0"),
    ] {
        let st = Command::new("ip")
            .args(["netns", "exec", ns, "sysctl", "-qw", key])
            .status()
            .unwrap();
        assert!(st.success(), "sysctl {key} in {ns}");
    }

    let target = host("dst", Some("10.201.2.2"), None);
    let d = def(
        &target,
        r#"trace4(h, #{ on_route_change: "warning", wait: 2 })"#,
    );
    let mut route = None;
    let o = run_in(&src, &d, &mut route);
    assert_eq!(o.status, Status::Ok, "{o:?}");
    assert_eq!(o.summary, "TRACE OK - 10.201.2.2 reached in 2 hops");
    assert!(
        o.long_output.contains(" 1  10.201.1.1  ") && o.long_output.contains(" 2  10.201.2.2  "),
        "{}",
        o.long_output
    );

    // same route again: still OK
    let o = run_in(&src, &d, &mut route);
    assert_eq!(o.status, Status::Ok, "{o:?}");

    // the router's near address changes: a changed route is a WARNING
    ip(&format!("-n {rtr} addr del 10.201.1.1/24 dev {r0}"));
    ip(&format!("-n {rtr} addr add 10.201.1.3/24 dev {r0}"));
    ip(&format!("-n {src} route replace default via 10.201.1.3"));
    let mut before_change = route.clone();
    let o = run_in(&src, &d, &mut route);
    assert_eq!(o.status, Status::Warning, "{o:?}");
    assert!(
        o.summary
            .contains("route changed: was 10.201.1.1 10.201.2.2, now 10.201.1.3 10.201.2.2"),
        "{}",
        o.summary
    );

    // without on_route_change the same change is fine
    let quiet = def(&target, "trace4(h, #{ wait: 2 })");
    assert_eq!(run_in(&src, &quiet, &mut before_change).status, Status::Ok);

    // the target is gone: not reached is CRITICAL
    ip(&format!("-n {dst} link set {d0} down"));
    // ... and a ping to it loses everything: CRITICAL, pl 100
    let ping = def(&target, "ping4(h, #{ count: 2, interval: 0.05 })");
    let o = run_in_for(&src, &ping, Duration::from_secs(1), None);
    assert_eq!(o.status, Status::Critical, "{o:?}");
    assert!(o.summary.contains("no reply, lost 100%"), "{}", o.summary);
    assert_eq!(perf_value(&o, "pl"), Some(100.0));
    assert_eq!(perf_value(&o, "rta"), None);

    let short = def(&target, "trace4(h, #{ wait: 0.3, max_hops: 3 })");
    let o = run_in(&src, &short, &mut None);
    assert_eq!(o.status, Status::Critical, "{o:?}");
    assert!(
        o.summary.contains("10.201.2.2")
            && (o.summary.contains("not reached within 3 hops")
                || o.summary.contains("unreachable")),
        "{}",
        o.summary
    );
}
