//! smtp, jabber, openvpn, dns and dns_zone probes against real peers on
//! loopback: aiosmtpd (with and without STARTTLS), an XMPP-speaking peer, an
//! OpenVPN UDP responder, and two authoritative DNS servers from Debian (nsd
//! on 127.0.0.1, knot on ::1) serving one zone.

use crate::support;

use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use picomon::model::Status;
use support::probes::*;

fn smtp_server(dir: Option<&Path>, bind: &str) -> Peer {
    let cert: Vec<String> = dir
        .map(|d| {
            ["good.pem", "good.key"]
                .map(|f| d.join(f).display().to_string())
                .to_vec()
        })
        .unwrap_or_default();
    let cert: Vec<&str> = cert.iter().map(String::as_str).collect();
    peer("smtp", bind, &cert)
}

#[test]
fn smtp_plain_banner_ehlo_and_command() {
    let srv = smtp_server(None, "127.0.0.1");
    let h = localhost();
    let p = srv.port;
    let o = expect_check(
        &h,
        &format!("smtp4(h, #{{ port: {p} }})"),
        Status::Ok,
        &["220 picomon-test-smtp"],
    );
    assert!(perf_value(&o, "time").is_some());

    expect_check(
        &h,
        &format!(r#"smtp4(h, #{{ port: {p}, command: "NOOP", response: "250" }})"#),
        Status::Ok,
        &[],
    );
    expect_check(
        &h,
        &format!(r#"smtp4(h, #{{ port: {p}, command: "NOOP", response: "550" }})"#),
        Status::Critical,
        &["NOOP: expected a reply matching '550', got '250"],
    );

    // no TLS on offer: STARTTLS is refused
    expect_check(
        &h,
        &format!("smtp4(h, #{{ port: {p}, starttls: true }})"),
        Status::Critical,
        &["STARTTLS refused"],
    );
}

#[test]
fn smtp_starttls_verifies_the_certificate() {
    let (dir, ca) = test_ca();
    let srv = smtp_server(Some(dir.path()), "::1");
    let h = localhost();
    let p = srv.port;
    expect_check(
        &h,
        &format!(r#"smtp6(h, #{{ port: {p}, starttls: true, ca_file: "{ca}" }})"#),
        Status::Ok,
        &["STARTTLS"],
    );
    expect_check(
        &h,
        &format!("smtp6(h, #{{ port: {p}, starttls: true }})"),
        Status::Critical,
        &["STARTTLS: certificate chain problem"],
    );
    expect_check(
        &h,
        &format!(
            r#"smtp6(h, #{{ port: {p}, starttls: true, sni: "mail.example.org", ca_file: "{ca}" }})"#
        ),
        Status::Critical,
        &["name problem"],
    );
}

#[test]
fn smtp_closed_port_and_bad_options() {
    let (_held, port) = closed_port();
    let h = localhost();
    expect_check(
        &h,
        &format!("smtp4(h, #{{ port: {port} }})"),
        Status::Critical,
        &["refused"],
    );
    let e = eval_def(&h, r#"smtp4(h, #{ response: "250" })"#).unwrap_err();
    assert!(e.contains("give a command too"), "{e}");
    let e = eval_def(&h, r#"smtp4(h, #{ port: 0 })"#).unwrap_err();
    assert!(e.contains("`port`") && e.contains("out of range"), "{e}");
}

#[test]
fn jabber_stream_opening() {
    let good = peer("xmpp", "127.0.0.1", &[]);
    let h = localhost();
    expect_check(
        &h,
        &format!("jabber4(h, #{{ port: {} }})", good.port),
        Status::Ok,
        &["stream opened"],
    );

    let bad = peer("not-xmpp", "::1", &[]);
    expect_check(
        &h,
        &format!("jabber6(h, #{{ port: {} }})", bad.port),
        Status::Critical,
        &["no XMPP stream in the answer: 'HTTP/1.1 400"],
    );
}

#[test]
fn openvpn_answer_silence_and_closed_port() {
    let h = localhost();
    let vpn = peer("openvpn", "127.0.0.1", &[]);
    expect_check(
        &h,
        &format!("openvpn4(h, #{{ port: {} }})", vpn.port),
        Status::Ok,
        &["14 bytes answered"],
    );

    let vpn6 = peer("openvpn", "::1", &[]);
    expect_check(
        &h,
        &format!("openvpn6(h, #{{ port: {} }})", vpn6.port),
        Status::Ok,
        &[],
    );

    let silent = peer("udp-silent", "127.0.0.1", &[]);
    let d = def(&h, &format!("openvpn4(h, #{{ port: {} }})", silent.port));
    let o = run_for_1s(&d);
    assert_eq!(o.status, Status::Critical, "{o:?}");
    assert!(
        o.summary.contains("no answer") && o.summary.contains("timed out after 1 s"),
        "{}",
        o.summary
    );

    let port = closed_udp_port();
    expect_check(
        &h,
        &format!("openvpn4(h, #{{ port: {port} }})"),
        Status::Critical,
        &["port unreachable"],
    );
}

// ---- DNS: nsd on 127.0.0.1 and knot on ::1, one port for both ----

const ZONE: &str = "$ORIGIN example.test.
$TTL 300
@ SOA ns1 hostmaster SERIAL 3600 600 86400 300
@ NS ns1
@ NS ns2
ns1 A 127.0.0.1
ns2 AAAA ::1
www A 127.0.0.1
BIG";

/// A port free for UDP and TCP on both 127.0.0.1 and ::1.
fn dns_port() -> u16 {
    for _ in 0..100 {
        let u4 = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = u4.local_addr().unwrap().port();
        let ok = UdpSocket::bind(("::1", port)).is_ok()
            && TcpListener::bind(("127.0.0.1", port)).is_ok()
            && TcpListener::bind(("::1", port)).is_ok();
        if ok {
            return port;
        }
    }
    panic!("no port free on both 127.0.0.1 and ::1");
}

fn write_zone(path: &Path, serial: u32) {
    // ten long TXT records: more than a 512-byte UDP answer holds
    let big: String = (0..10)
        .map(|i| format!("big TXT \"record {i} {}\"\n", "x".repeat(90)))
        .collect();
    let text = ZONE
        .replace("SERIAL", &serial.to_string())
        .replace("BIG", &big);
    std::fs::write(path, text).unwrap();
}

fn nsd(dir: &Path, port: u16) -> Peer {
    let d = dir.display();
    std::fs::write(
        dir.join("nsd.conf"),
        format!(
            "server:\n  ip-address: 127.0.0.1@{port}\n  username: \"\"\n  chroot: \"\"\n  zonesdir: \"{d}\"\n  pidfile: \"{d}/nsd.pid\"\n  database: \"\"\n  xfrdfile: \"{d}/xfrd.state\"\n  zonelistfile: \"{d}/zone.list\"\n  logfile: \"{d}/nsd.log\"\nremote-control:\n  control-enable: no\nzone:\n  name: example.test\n  zonefile: \"{d}/nsd.zone\"\n"
        ),
    )
    .unwrap();
    let mut c = Command::new("/usr/sbin/nsd");
    c.arg("-d").arg("-c").arg(dir.join("nsd.conf"));
    Peer::spawn("nsd", c, port)
}

fn knot(dir: &Path, port: u16) -> Peer {
    std::fs::create_dir_all(dir.join("knotdb")).unwrap();
    let d = dir.display();
    std::fs::write(
        dir.join("knot.conf"),
        format!(
            "server:\n    listen: ::1@{port}\n    rundir: \"{d}\"\ndatabase:\n    storage: \"{d}/knotdb\"\nlog:\n  - target: stderr\n    any: error\nzone:\n  - domain: example.test\n    storage: \"{d}\"\n    file: knot.zone\n"
        ),
    )
    .unwrap();
    let mut c = Command::new("/usr/sbin/knotd");
    c.arg("-c").arg(dir.join("knot.conf"));
    Peer::spawn("knotd", c, port)
}

/// Waits until the server at `addr` answers the zone's SOA with `serial`.
fn wait_serial(addr: &str, port: u16, serial: u32) {
    let h = host("ns", Some("127.0.0.1"), Some("::1"));
    let ctor = if addr.contains(':') { "dns6" } else { "dns4" };
    let d = def(
        &h,
        &format!(
            r#"{ctor}(h, #{{ port: {port}, name: "example.test", type: "SOA", recurse: false }})"#
        ),
    );
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let o = run(&d, Duration::from_secs(2));
        if o.status == Status::Ok && o.summary.contains(&format!(" {serial} ")) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{addr}:{port} never served serial {serial}: {o:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct DnsPair {
    dir: tempfile::TempDir,
    port: u16,
    nsd: Peer,
    knot: Peer,
}

fn dns_pair(serial_nsd: u32, serial_knot: u32) -> DnsPair {
    let dir = tempfile::tempdir().unwrap();
    write_zone(&dir.path().join("nsd.zone"), serial_nsd);
    write_zone(&dir.path().join("knot.zone"), serial_knot);
    let port = dns_port();
    let nsd = nsd(dir.path(), port);
    let knot = knot(dir.path(), port);
    wait_serial("127.0.0.1", port, serial_nsd);
    wait_serial("::1", port, serial_knot);
    DnsPair {
        dir,
        port,
        nsd,
        knot,
    }
}

#[test]
fn dns_query_rcode_and_expect() {
    let pair = dns_pair(7, 7);
    let h = host("ns", Some("127.0.0.1"), Some("::1"));
    let p = pair.port;
    expect_check(
        &h,
        &format!(r#"dns4(h, #{{ port: {p}, name: "www.example.test", expect: "127.0.0.1" }})"#),
        Status::Ok,
        &["www.example.test. A at 127.0.0.1"],
    );
    expect_check(
        &h,
        &format!(
            r#"dns6(h, #{{ port: {p}, name: "ns2.example.test", type: "aaaa", expect: "::1" }})"#
        ),
        Status::Ok,
        &[],
    );
    // truncated over UDP, asked again over TCP
    expect_check(
        &h,
        &format!(r#"dns4(h, #{{ port: {p}, name: "big.example.test", type: "TXT" }})"#),
        Status::Ok,
        &["and 5 more"],
    );
    expect_check(
        &h,
        &format!(r#"dns4(h, #{{ port: {p}, name: "www.example.test", expect: "192.0.2.1" }})"#),
        Status::Critical,
        &["expected 192.0.2.1, got [127.0.0.1]"],
    );
    let o = expect_check(
        &h,
        &format!(r#"dns4(h, #{{ port: {p}, name: "nothere.example.test" }})"#),
        Status::Critical,
        &[],
    );
    assert!(
        o.summary.contains("Non-Existent Domain") || o.summary.contains("NXDomain"),
        "{}",
        o.summary
    );
    let e = eval_def(&h, "dns4(h)").unwrap_err();
    assert!(e.contains("option `name` is required"), "{e}");
    let e = eval_def(&h, r#"dns4(h, #{ name: "x.org", type: "BOGUS" })"#).unwrap_err();
    assert!(e.contains("not a DNS record type"), "{e}");
    drop(pair);
}

#[test]
fn dns_zone_serials_equal_then_different_then_server_gone() {
    let mut pair = dns_pair(2024010101, 2024010101);
    let p = pair.port;
    let zone = |extra: &str, status: Status, parts: &[&str]| {
        expect_check(
            &localhost(),
            &format!(
                r#"dns_zone("example.test", #{{ resolver: "127.0.0.1:{p}", port: {p}{extra} }})"#
            ),
            status,
            parts,
        )
    };
    let o = zone(
        ", ip_version: 6",
        Status::Ok,
        &["serial 2024010101 on 2 servers"],
    );
    assert!(
        o.long_output
            .contains("ns2.example.test. (::1): serial 2024010101"),
        "{}",
        o.long_output
    );

    // over IPv4 only, ns2 has no address to ask
    zone(
        "",
        Status::Critical,
        &["ns2.example.test. has no IPv4 address"],
    );

    // knot gets a newer serial
    pair.knot.stop();
    write_zone(&pair.dir.path().join("knot.zone"), 2024010102);
    pair.knot = knot(pair.dir.path(), p);
    wait_serial("::1", p, 2024010102);
    zone(", ip_version: 6", Status::Critical, &["serials differ: ns1.example.test. (127.0.0.1) 2024010101, ns2.example.test. (::1) 2024010102"]);

    // knot gone: the dead server is named
    pair.knot.stop();
    let o = zone(
        ", ip_version: 6",
        Status::Critical,
        &["ns2.example.test. (::1)"],
    );
    assert!(
        o.summary.contains("port unreachable") || o.summary.contains("no answer"),
        "{}",
        o.summary
    );
    drop(pair.nsd);
}

#[test]
fn dns_zone_bad_options() {
    let h = localhost();
    let e = eval_def(
        &h,
        r#"dns_zone("example.test", #{ resolver: "not an ip" })"#,
    )
    .unwrap_err();
    assert!(
        e.contains("`resolver`") && e.contains("not an IP address"),
        "{e}"
    );
    let e = eval_def(&h, r#"dns_zone("example.test", #{ ip_version: 5 })"#).unwrap_err();
    assert!(e.contains("neither 4 nor 6"), "{e}");
    let e = eval_def(&h, r#"dns_zone("exa mple.test")"#).unwrap_err();
    assert!(
        e.contains("is not a domain name") && e.contains("\"exa mple\""),
        "{e}"
    );
    let d = def(&h, r#"dns_zone("example.test")"#);
    assert_eq!(d.identity, "dns_zone:example.test");
}

/// Debian's MariaDB server, in a data directory of the test's own, on a
/// private socket and port; stopped when dropped.
struct Mariadb {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Mariadb {
    fn start() -> Mariadb {
        let dir = tempfile::tempdir().expect("tempdir");
        let install = Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.path().join("data").display()))
            .args(["--user=root", "--skip-test-db"])
            .output()
            .expect("mariadb-install-db (Debian package mariadb-server)");
        assert!(install.status.success(), "{install:?}");
        // mariadbd cannot share a reserved port (no SO_REUSEPORT): the port
        // is released just before the server binds it, and on the rare
        // collision the start is tried again with another one.
        for _ in 0..5 {
            let port = support::ports::reserve_port().1;
            if let Some(child) = Self::serve(dir.path(), port) {
                return Mariadb {
                    child,
                    port,
                    _dir: dir,
                };
            }
        }
        panic!("mariadbd found no free port in 5 tries");
    }

    /// The running server, or `None` when its port was taken meanwhile.
    fn serve(d: &Path, port: u16) -> Option<std::process::Child> {
        let log = d.join(format!("error-{port}.log"));
        let mut child = Command::new("/usr/sbin/mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", d.join("data").display()))
            .arg(format!("--socket={}", d.join("sock").display()))
            .arg(format!("--pid-file={}", d.join("pid").display()))
            .arg(format!("--log-error={}", log.display()))
            .arg(format!("--port={port}"))
            .args(["--bind-address=127.0.0.1,::1", "--user=root"])
            .args(["--skip-log-bin", "--innodb-buffer-pool-size=8M"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start mariadbd");
        let ready = support::wait_for(Duration::from_secs(60), || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("ready for connections") {
                return Some(true);
            }
            child.try_wait().ok().flatten().map(|_| false)
        });
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        match ready {
            Some(true) => Some(child),
            Some(false) if text.contains("in use") => None,
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("mariadbd did not start: {text}");
            }
        }
    }
}

#[test]
fn mysql_reads_the_mariadb_greeting_on_both_families() {
    let db = Mariadb::start();
    let h = localhost();
    let version = Command::new("/usr/sbin/mariadbd")
        .arg("--version")
        .output()
        .expect("mariadbd --version");
    // `mariadbd  Ver 10.11.6-MariaDB-0+deb12u1 for debian-linux-gnu ...`
    let version = String::from_utf8_lossy(&version.stdout)
        .split_whitespace()
        .skip_while(|w| *w != "Ver")
        .nth(1)
        .expect("a version")
        .to_string();
    let p = db.port;
    for (ctor, addr) in [("mysql4", "127.0.0.1"), ("mysql6", "::1")] {
        let o = expect_check(
            &h,
            &format!("{ctor}(h, #{{ port: {p} }})"),
            Status::Ok,
            &[&format!(
                "MYSQL OK - {version} on {addr} port {p} (protocol 10, connection "
            )],
        );
        assert!(perf_value(&o, "time").is_some(), "{o:?}");
        let data = o.data.as_deref().expect("data");
        assert_eq!(data["version"], version.as_str());
        assert_eq!(data["protocol"], 10);
        assert!(data["connection_id"].as_u64().unwrap() > 0, "{data}");
    }
    // Every greeting takes more than 0 s: a limit of 0 always hits.
    expect_check(
        &h,
        &format!("mysql4(h, #{{ port: {p}, warning: 0 }})"),
        Status::Warning,
        &["MYSQL WARNING - "],
    );
    let e = eval_def(&h, "mysql4(h, #{ user: \"root\" })").unwrap_err();
    assert!(e.contains("user") && e.contains("port"), "{e}");
}

#[test]
fn mysql_on_a_port_that_is_not_mysql_says_what_it_got() {
    let srv = smtp_server(None, "127.0.0.1");
    expect_check(
        &localhost(),
        &format!("mysql4(h, #{{ port: {} }})", srv.port),
        Status::Critical,
        &["not a MySQL greeting", "220 picomon-test-smtp"],
    );
    let (_held, closed) = closed_port();
    expect_check(
        &localhost(),
        &format!("mysql4(h, #{{ port: {closed} }})"),
        Status::Critical,
        &["refused"],
    );
}
