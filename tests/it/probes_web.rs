//! tcp, http(s) and tls_cert probes against a real python3 HTTP(S) server on
//! loopback, with a test CA made by openssl for each test.

use crate::support;

use std::net::TcpListener;

use picomon::model::Status;
use support::probes::*;

fn http_server(bind: &str) -> Peer {
    Peer::start("http server", python("http_server.py", &[bind]))
}

fn https_server(dir: &std::path::Path, bind: &str, cert: &str) -> Peer {
    let c = dir.join(format!("{cert}.pem"));
    let k = dir.join(format!("{cert}.key"));
    Peer::start(
        "https server",
        python(
            "http_server.py",
            &[bind, c.to_str().unwrap(), k.to_str().unwrap()],
        ),
    )
}

#[test]
fn tcp_connects_sends_and_expects() {
    let srv = http_server("127.0.0.1");
    let h = localhost();
    let o = expect_check(&h, &format!("tcp(h, {})", srv.port), Status::Ok, &[]);
    assert!(o.summary.starts_with("TCP OK - "), "{}", o.summary);
    assert!(perf_value(&o, "time").is_some_and(|t| (0.0..20.0).contains(&t)));

    expect_check(
        &h,
        &format!(
            r#"tcp(h, {}, #{{ send: "GET / HTTP/1.0\r\n\r\n", expect: "Welcome" }})"#,
            srv.port
        ),
        Status::Ok,
        &[],
    );

    let o = expect_check(
        &h,
        &format!(
            r#"tcp(h, {}, #{{ send: "GET / HTTP/1.0\r\n\r\n", expect: "Goodbye" }})"#,
            srv.port
        ),
        Status::Critical,
        &["Pattern 'Goodbye' not found in reply"],
    );
    assert!(
        o.summary.contains("HTTP/1.0 200"),
        "reply shown: {}",
        o.summary
    );
}

#[test]
fn tcp_refused_port_is_critical() {
    let (_held, port) = closed_port();
    expect_check(
        &localhost(),
        &format!("tcp(h, {port})"),
        Status::Critical,
        &["refused"],
    );
}

#[test]
fn tcp_over_ipv6_to_loopback() {
    let srv = http_server("::1");
    expect_check(
        &localhost(),
        &format!("tcp(h, {}, #{{ ip_version: 6 }})", srv.port),
        Status::Ok,
        &["::1"],
    );
}

#[test]
fn tcp_silent_peer_times_out_within_the_timeout() {
    // A listener that never answers: the kernel completes the handshake, the
    // expected reply never comes.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let d = def(
        &localhost(),
        &format!(r#"tcp(h, {port}, #{{ expect: "hello" }})"#),
    );
    let o = run_for_1s(&d);
    assert_eq!(o.status, Status::Critical, "{o:?}");
    assert!(o.summary.contains("timed out after 1 s"), "{}", o.summary);
    drop(l);
}

#[test]
fn tcp_with_tls_verifies_the_certificate() {
    let (dir, ca) = test_ca();
    let srv = https_server(dir.path(), "127.0.0.1", "good");
    let h = localhost();
    expect_check(
        &h,
        &format!(r#"tcp(h, {}, #{{ tls: true, ca_file: "{ca}" }})"#, srv.port),
        Status::Ok,
        &[],
    );
    expect_check(
        &h,
        &format!(
            r#"tcp(h, {}, #{{ tls: true, sni: "other.example", ca_file: "{ca}" }})"#,
            srv.port
        ),
        Status::Critical,
        &["name problem"],
    );
}

#[test]
fn tcp_bad_options_are_config_errors_naming_the_option() {
    let h = localhost();
    let e = eval_def(&h, "tcp(h, 80, #{ bogus: 1 })").unwrap_err();
    assert!(
        e.contains("unknown option `bogus`") && e.contains("expect"),
        "{e}"
    );
    let e = eval_def(&h, "tcp(h, 70000)").unwrap_err();
    assert!(e.contains("port 70000 is out of range"), "{e}");
    let e = eval_def(&h, r#"tcp(h, 80, #{ warning: "20:10" })"#).unwrap_err();
    assert!(
        e.contains("`warning`") && e.contains("start above its end"),
        "{e}"
    );
    let e = eval_def(&h, r#"tcp(h, 80, #{ tls: "yes" })"#).unwrap_err();
    assert!(e.contains("`tls` must be true or false"), "{e}");
    let e = eval_def(&h, r#"tcp(h, 80, #{ sni: "x" })"#).unwrap_err();
    assert!(e.contains("tls: true"), "{e}");
    let d = def(&h, r#"tcp(h, 80, #{ expect: "x" })"#);
    assert_eq!(d.identity, "tcp:localhost:80:expect=x");
    assert_eq!(d.label, "tcp 80");
    assert_eq!(d.dest, "localhost");
}

#[test]
fn http_status_expect_and_vhost() {
    let srv = http_server("127.0.0.1");
    let h = localhost();
    let p = srv.port;
    let o = expect_check(
        &h,
        &format!(
            r#"http4(h, #{{ port: {p}, vhost: "www.example.org", status: 200, expect: "Welcome" }})"#
        ),
        Status::Ok,
        &[],
    );
    assert!(
        o.summary.starts_with("HTTP OK - HTTP/1.0 200 OK"),
        "{}",
        o.summary
    );
    assert!(perf_value(&o, "size").is_some_and(|s| s > 10.0));

    // the Host header is the vhost, not the address
    expect_check(
        &h,
        &format!(
            r#"http4(h, #{{ port: {p}, vhost: "www.example.org", expect: "/Host=www\\.example\\.org/" }})"#
        ),
        Status::Ok,
        &[],
    );
    expect_check(
        &h,
        &format!(
            r#"http4(h, #{{ port: {p}, vhost: "www.example.org", expect_regex: "Host=127" }})"#
        ),
        Status::Critical,
        &["Pattern '/Host=127/' not found in reply."],
    );

    expect_check(
        &h,
        &format!(r#"http4(h, #{{ port: {p}, expect: "Goodbye" }})"#),
        Status::Critical,
        &["Pattern 'Goodbye' not found in reply."],
    );

    expect_check(
        &h,
        &format!(r#"http4(h, #{{ port: {p}, url: "/missing", status: 200 }})"#),
        Status::Critical,
        &["404", "expected status 200"],
    );
    expect_check(
        &h,
        &format!(r#"http4(h, #{{ port: {p}, url: "/missing" }})"#),
        Status::Warning,
        &[],
    );
    expect_check(
        &h,
        &format!(r#"http4(h, #{{ port: {p}, url: "/broken" }})"#),
        Status::Critical,
        &["500"],
    );
}

#[test]
fn http6_uses_the_ipv6_address() {
    let srv = http_server("::1");
    expect_check(
        &localhost(),
        &format!(r#"http6(h, #{{ port: {}, expect: "Welcome" }})"#, srv.port),
        Status::Ok,
        &[],
    );
    // the v4 address has no server on that port
    expect_check(
        &localhost(),
        &format!(r#"http4(h, #{{ port: {} }})"#, srv.port),
        Status::Critical,
        &[],
    );
}

#[test]
fn http_slow_answer_hits_max_time_and_timeout() {
    let srv = http_server("127.0.0.1");
    let h = localhost();
    let p = srv.port;
    expect_check(
        &h,
        &format!(r#"http4(h, #{{ port: {p}, url: "/slow", max_time: 1 }})"#),
        Status::Critical,
        &["took longer than max_time 1 s"],
    );

    let d = def(&h, &format!(r#"http4(h, #{{ port: {p}, url: "/slow" }})"#));
    let o = run_for_1s(&d);
    assert_eq!(o.status, Status::Critical, "{o:?}");
    assert!(o.summary.contains("timed out"), "{}", o.summary);
}

#[test]
fn https_certificate_days_name_and_chain() {
    let (dir, ca) = test_ca();
    let h = localhost();
    let good = https_server(dir.path(), "127.0.0.1", "good");
    let o = expect_check(
        &h,
        &format!(
            r#"https4(h, #{{ port: {}, vhost: "localhost", ca_file: "{ca}", expect: "Welcome" }})"#,
            good.port
        ),
        Status::Ok,
        &[],
    );
    // 90 days from make-certs.sh, 89 once a second has passed
    assert!(
        o.summary.contains("certificate valid for 89 days")
            || o.summary.contains("certificate valid for 90 days"),
        "{}",
        o.summary
    );
    assert!(perf_value(&o, "cert_days").is_some_and(|d| (88.0..=90.0).contains(&d)));

    // a CA nobody trusts: chain problem
    expect_check(
        &h,
        &format!(
            r#"https4(h, #{{ port: {}, vhost: "localhost" }})"#,
            good.port
        ),
        Status::Critical,
        &["chain problem: unknown issuer"],
    );

    // the wrong name
    expect_check(
        &h,
        &format!(
            r#"https4(h, #{{ port: {}, vhost: "www.example.org", ca_file: "{ca}" }})"#,
            good.port
        ),
        Status::Critical,
        &["name problem: not valid for www.example.org"],
    );

    // the test CA trusted, the certificate of another make-certs.sh server
    let verify = |cert: &str, status: Status, parts: &[&str]| {
        let srv = https_server(dir.path(), "127.0.0.1", cert);
        expect_check(
            &h,
            &format!(
                r#"https4(h, #{{ port: {}, vhost: "localhost", ca_file: "{ca}" }})"#,
                srv.port
            ),
            status,
            parts,
        );
    };
    verify("wrong", Status::Critical, &["name problem"]);
    verify(
        "expired",
        Status::Critical,
        &["certificate expired", "(2021-01-01)"],
    );

    let soon = https_server(dir.path(), "::1", "soon");
    let o = check(
        &h,
        &format!(
            r#"https6(h, #{{ port: {}, vhost: "localhost", ca_file: "{ca}" }})"#,
            soon.port
        ),
    );
    assert_eq!(
        o.status,
        Status::Critical,
        "3 days < cert_critical 7: {o:?}"
    );
    assert!(
        (o.summary.contains("certificate expires in 2 days")
            || o.summary.contains("certificate expires in 3 days")),
        "{}",
        o.summary
    );
    expect_check(
        &h,
        &format!(
            r#"https6(h, #{{ port: {}, vhost: "localhost", ca_file: "{ca}", cert_critical: 1 }})"#,
            soon.port
        ),
        Status::Warning,
        &[],
    );
}

#[test]
fn tls_cert_reports_days_left() {
    let (dir, ca) = test_ca();
    let srv = https_server(dir.path(), "127.0.0.1", "good");
    let o = expect_check(
        &localhost(),
        &format!(r#"tls_cert(h, {}, #{{ ca_file: "{ca}" }})"#, srv.port),
        Status::Ok,
        &[],
    );
    assert!(
        o.summary.contains("valid for 89 days") || o.summary.contains("valid for 90 days"),
        "{}",
        o.summary
    );
    expect_check(
        &localhost(),
        &format!(
            r#"tls_cert(h, {}, #{{ ca_file: "{ca}", cert_warning: 100 }})"#,
            srv.port
        ),
        Status::Warning,
        &[],
    );
}

#[test]
fn http_bad_options_are_config_errors() {
    let h = localhost();
    let e = eval_def(&h, r#"http4(h, #{ status: "200" })"#).unwrap_err();
    assert!(e.contains("`status` must be an integer"), "{e}");
    let e = eval_def(&h, r#"http4(h, #{ cert_warning: 20 })"#).unwrap_err();
    assert!(e.contains("only https checks have certificates"), "{e}");
    let e = eval_def(&h, r#"https4(h, #{ expect: "/[unclosed/" })"#).unwrap_err();
    assert!(e.contains("bad regular expression"), "{e}");
    let e = eval_def(&h, r#"https4(h, #{ url: "index.html" })"#).unwrap_err();
    assert!(e.contains("must be a path starting with `/`"), "{e}");
    let e = eval_def(&h, r#"https4(h, #{ cert_warning: 3, cert_critical: 10 })"#).unwrap_err();
    assert!(e.contains("critical must be the shorter time"), "{e}");
    let d = def(
        &h,
        r#"https4(h, #{ vhost: "www.example.org", status: 200 })"#,
    );
    assert_eq!(d.identity, "https4:localhost:www.example.org/:status=200");
}

#[test]
fn http_reports_the_server_header_in_output_and_data() {
    let srv = http_server("127.0.0.1");
    let o = expect_check(
        &localhost(),
        &format!("http4(h, #{{ port: {} }})", srv.port),
        Status::Ok,
        &[" - Server: picomon-test-http/1.0"],
    );
    let data = o.data.as_deref().expect("data");
    assert_eq!(data["server"], "picomon-test-http/1.0", "{data}");
    assert_eq!(data["status"], 200, "{data}");
    assert!(data["bytes"].as_u64().unwrap() > 0, "{data}");
}
