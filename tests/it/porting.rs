//! Coming from picomon's Python original: a ported config behaves as the
//! user expects. `contrib/config-sample-ported.rhai` is checked with
//! `--check-config`; the Python habits it relies on (bulk `add`, hosts
//! without a name or with spaces, `append`, Python format in
//! `subject_tpl`) are checked through the real config loader; smtp relay
//! tests run against an aiosmtpd that refuses to relay; https against a
//! local server with a self-signed CA:TRUE certificate made by openssl; and
//! the same failing-then-recovering plugin is mailed with `subject_style`
//! each way to a real aiosmtpd.

use crate::support;

use std::fs;
use std::path::Path;

use picomon::config::{self, Config};
use picomon::model::Status;
use support::certs::openssl;
use support::ports::reserve_port;
use support::probes::*;
use support::smtp::Smtp;
use support::{Daemon, Sandbox};

fn load(src: &str) -> Result<Config, String> {
    config::load_str(Path::new("port.rhai"), src).map_err(|e| e.to_string())
}

fn names(c: &Config) -> Vec<(String, String)> {
    c.checks
        .iter()
        .map(|c| (c.name.to_string(), c.dest.to_string()))
        .collect()
}

// ---------------------------------------------------------------- the sample

#[test]
fn the_ported_sample_passes_check_config() {
    let sb = Sandbox::new();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/config-sample-ported.rhai");
    let out = sb.run(&["-c", sample.to_str().unwrap(), "--check-config"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("config OK. 5 hosts"), "{stdout}");
    assert!(stdout.contains("19 checks"), "{stdout}");
    assert!(
        stdout.contains("Strange IPs") && stdout.contains("127.0.0.1/::1"),
        "{stdout}"
    );
}

// ---------------------------------------------------------------- config habits

#[test]
fn bulk_add_pairs_every_constructor_with_every_host() {
    let c = load(
        r#"
let a = host("a", #{ ipv4: "192.0.2.1", ipv6: "2001:db8::1" });
let b = host("b b", #{ ipv4: "192.0.2.2", ipv6: "2001:db8::2" });
add([ping4, http4], [a, b], #{ every: 2, probe: #{ http4: #{ url: "/status" }, ping4: #{ count: 2 } } });
add(dns_zone, ["example.net", "example.org"], #{ probe: #{ ip_version: 4 } });
add([smtp4, smtp6], a, #{ probe: #{ port: 2525, smtp6: #{ port: 26 } } });
"#,
    )
    .unwrap();
    assert_eq!(
        names(&c),
        [
            ("ping4", "a"),
            ("ping4", "b b"),
            ("http4 /status", "a"),
            ("http4 /status", "b b"),
            ("dns_zone", "example.net"),
            ("dns_zone", "example.org"),
            ("smtp4", "a"),
            ("smtp6", "a"),
        ]
        .map(|(n, d)| (n.to_string(), d.to_string()))
    );
    assert!(c.checks[..4].iter().all(|c| c.every == 2));
    // A constructor's own map goes to it alone; other keys to every one,
    // the constructor's own winning.
    assert_eq!(&*c.checks[0].id, "ping4:a:count=2");
    assert_eq!(&*c.checks[2].id, "http4:a:a/status");
    assert_eq!(&*c.checks[4].id, "dns_zone:example.net:ip_version=4");
    assert_eq!(&*c.checks[6].id, "smtp4:a:port=2525");
    assert_eq!(&*c.checks[7].id, "smtp6:a:port=26");
}

#[test]
fn bulk_add_keeps_names_unique_and_says_what_is_wrong() {
    let c = load(
        r#"
let a = host("a", #{ ipv4: "192.0.2.1" });
let b = host("b", #{ ipv4: "192.0.2.2" });
add([ping4], [a, b], #{ name: "reach" });
"#,
    )
    .unwrap();
    assert_eq!(&*c.checks[0].name, "reach (ping4 on a)");
    assert_eq!(&*c.checks[1].name, "reach (ping4 on b)");

    let e = load(r#"let a = host("a"); add([ping4, 5], [a], #{});"#).unwrap_err();
    assert!(e.contains("item 1 is an integer, not a constructor"), "{e}");
    let e =
        load(r#"let a = host("a"); add([http4], [a], #{ probe: #{ bogus: 1 } });"#).unwrap_err();
    assert!(e.contains(": http4: unknown option `bogus`"), "{e}");
    assert!(!e.contains("http4: http4:"), "{e}");
    assert!(e.starts_with("port.rhai:1:"), "{e}");
    let e = load(r#"add(ping4);"#).unwrap_err();
    assert!(e.contains("needs the hosts too"), "{e}");
    // A variable of that name wins over the constructor.
    let e = load(r#"let a = host("a"); let ping4 = 3; add([ping4], [a], #{});"#).unwrap_err();
    assert!(e.contains("item 0 is an integer, not a constructor"), "{e}");
}

#[test]
fn hosts_may_have_spaces_or_no_name() {
    let c = load(
        r#"
let h1 = host("Strange IPs", #{ ipv4: "127.0.0.2", ipv6: "::42" });
let unnamed = host(#{ ipv4: "127.0.0.1", ipv6: "::1" });
let v6only = host(#{ ipv6: "2001:db8::beef" });
add(http4(h1));
add(ping6(unnamed));
add(ping6(v6only));
"#,
    )
    .unwrap();
    let hosts: Vec<&str> = c.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(hosts, ["Strange IPs", "127.0.0.1/::1", "2001:db8::beef"]);
    assert_eq!(&*c.checks[0].dest, "Strange IPs");
    // The display name cannot be a Host header: the address is used.
    assert_eq!(&*c.checks[0].id, "http4:Strange IPs:127.0.0.2/");
    let e = load(r#"host(#{});"#).unwrap_err();
    assert!(e.contains("without a name needs an address"), "{e}");
    let e = load("host(\"a\\nb\");").unwrap_err();
    assert!(e.contains("one line"), "{e}");
}

#[test]
fn a_display_name_without_an_address_is_critical_naming_the_fix() {
    let h = host("Strange IPs", Some("127.0.0.1"), None);
    expect_check(
        &h,
        "ping6(h)",
        Status::Critical,
        &["has no IPv6 address and its name is not a DNS name (give the host an ipv6 address)"],
    );
}

#[test]
fn python_list_habits_work_and_unknown_functions_suggest_one() {
    let c = load(
        r#"
config.emails.to.append("me@localhost");
config.emails.to.push("them@localhost");
config.emails.to.append(["ops@localhost"]);
"#,
    )
    .unwrap();
    assert_eq!(
        c.emails.to,
        ["me@localhost", "them@localhost", "ops@localhost"]
    );
    let e = load("let l = [];\nl.apend(1);").unwrap_err();
    assert_eq!(
        e,
        "port.rhai:2:3: unknown function `apend` with (array, integer): did you mean `append`?"
    );
    let e = load("let h = hots(\"a\");").unwrap_err();
    assert!(e.contains("did you mean `host`?"), "{e}");
    let e = load("host(\"a\", 1, 2);").unwrap_err();
    assert!(e.contains("`host` exists but takes other arguments"), "{e}");
}

#[test]
fn smtp_keepalive_timeout_is_refused_saying_what_picomon_does() {
    let e = load("config.emails.smtp_keepalive_timeout = 60;").unwrap_err();
    assert!(
        e.starts_with("port.rhai:1:14: config.emails.smtp_keepalive_timeout is not supported"),
        "{e}"
    );
    assert!(
        e.contains("no idle SMTP connection") && e.contains("Remove this line"),
        "{e}"
    );
    let e = load("let x = config.emails.smtp_keepalive_timeout;").unwrap_err();
    assert!(e.contains("is not supported"), "{e}");
}

#[test]
fn default_names_tell_ports_and_urls_apart() {
    let c = load(
        r#"
let w = host("web1", #{ ipv4: "192.0.2.1" });
add(tcp(w, 443));
add(tcp(w, 22));
add(http4(w));
add(http4(w, #{ url: "/health" }));
add(https4(w, #{ vhost: "www.example.org" }));
add(tls_cert(w, 8443));
add(smtp4(w));
add(smtp4(w, #{ from_addr: "a@example.org", command: "RCPT TO:<b@example.com>", response: "554" }));
"#,
    )
    .unwrap();
    let n: Vec<&str> = c.checks.iter().map(|c| c.name.as_ref()).collect();
    assert_eq!(
        n,
        [
            "tcp 443",
            "tcp 22",
            "http4",
            "http4 /health",
            "https4 www.example.org/",
            "tls_cert 8443",
            "smtp4",
            "smtp4 RCPT TO:<b@example.com>",
        ]
    );
}

// ---------------------------------------------------------------- smtp relay tests

fn relay_server() -> Peer {
    Peer::start("smtp relay", python("smtp_relay.py", &["127.0.0.1"]))
}

#[test]
fn smtp_relay_tests_with_from_addr_and_a_response_regex() {
    let srv = relay_server();
    let h = localhost();
    let p = srv.port;
    // The sample's two relay checks: the domain's own address is taken,
    // a foreign one refused.
    expect_check(
        &h,
        &format!(
            r#"smtp4(h, #{{ port: {p}, from_addr: "picomon@example.com", command: "RCPT TO: postmaster@example.net", response: "(250)" }})"#
        ),
        Status::Ok,
        &["220 relay-test.example.net"],
    );
    expect_check(
        &h,
        &format!(
            r#"smtp4(h, #{{ port: {p}, from_addr: "picomon@example.com", command: "RCPT TO:<a@example.com>", response: "^554 .*Relay access denied" }})"#
        ),
        Status::Ok,
        &[],
    );
    // An open relay fails, showing what the server said.
    expect_check(
        &h,
        &format!(
            r#"smtp4(h, #{{ port: {p}, from_addr: "picomon@example.com", command: "RCPT TO: postmaster@example.net", response: "554" }})"#
        ),
        Status::Critical,
        &["RCPT TO: postmaster@example.net: expected a reply matching '554', got '250 2.1.5 Ok'"],
    );
    // Without from_addr the server wants MAIL first: its words are shown.
    expect_check(
        &h,
        &format!(
            r#"smtp4(h, #{{ port: {p}, command: "RCPT TO: a@example.com", response: "554" }})"#
        ),
        Status::Critical,
        &["got '503 Error: need MAIL command'"],
    );
    let e = eval_def(
        &h,
        r#"smtp4(h, #{ command: "RCPT TO: a@b", response: "(250" })"#,
    )
    .unwrap_err();
    assert!(e.contains("`response`: bad regular expression"), "{e}");
    let e = eval_def(&h, r#"smtp4(h, #{ from_addr: "a b@c" })"#).unwrap_err();
    assert!(e.contains("not a bare mail address"), "{e}");
}

// ---------------------------------------------------------------- self-signed https

/// A self-signed certificate as `openssl req -x509` makes it: CA:TRUE.
fn self_signed(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-nodes",
            "-days",
            "30",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-subj",
            "/CN=localhost",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "subjectAltName=DNS:localhost",
        ],
    );
}

fn https_server(dir: &Path, cert: &str) -> Peer {
    let c = dir.join(format!("{cert}.pem"));
    let k = dir.join(format!("{cert}.key"));
    Peer::start(
        "https server",
        python(
            "http_server.py",
            &["127.0.0.1", c.to_str().unwrap(), k.to_str().unwrap()],
        ),
    )
}

#[test]
fn a_self_signed_ca_certificate_is_trusted_as_itself_or_not_checked() {
    let dir = tempfile::tempdir().unwrap();
    self_signed(dir.path(), "self");
    self_signed(dir.path(), "other");
    let srv = https_server(dir.path(), "self");
    let h = localhost();
    let p = srv.port;
    let pem = dir.path().join("self.pem").display().to_string();
    let other = dir.path().join("other.pem").display().to_string();
    let no_debug = |o: &picomon::model::Outcome| {
        assert!(
            !o.summary.contains("Other(") && !o.summary.contains("Error"),
            "{}",
            o.summary
        );
    };
    let o = expect_check(
        &h,
        &format!(
            r#"https4(h, #{{ port: {p}, vhost: "localhost", ca_file: "{pem}", expect: "Welcome" }})"#
        ),
        Status::Ok,
        &[
            "200 OK",
            "certificate valid for",
            "certificate is the one given in ca_file",
        ],
    );
    no_debug(&o);
    let o = expect_check(
        &h,
        &format!(
            r#"https4(h, #{{ port: {p}, vhost: "localhost", verify: false, expect: "Welcome" }})"#
        ),
        Status::Ok,
        &["200 OK", "certificate chain not checked (verify: false)"],
    );
    no_debug(&o);
    for opts in ["".to_string(), format!(r#", ca_file: "{other}""#)] {
        let o = expect_check(
            &h,
            &format!(r#"https4(h, #{{ port: {p}, vhost: "localhost"{opts} }})"#),
            Status::Critical,
            &["certificate chain problem: unknown issuer"],
        );
        no_debug(&o);
    }
    expect_check(
        &h,
        &format!(r#"tls_cert(h, {p}, #{{ sni: "localhost", ca_file: "{pem}" }})"#),
        Status::Ok,
        &["certificate is the one given in ca_file"],
    );
    expect_check(
        &h,
        &format!(r#"tcp(h, {p}, #{{ tls: true, verify: false }})"#),
        Status::Ok,
        &["certificate chain not checked (verify: false)"],
    );
    // A plain-text server answering a TLS client: a sentence, not an enum.
    let plain = Peer::start("http server", python("http_server.py", &["127.0.0.1"]));
    let o = expect_check(
        &h,
        &format!(r#"https4(h, #{{ port: {}, verify: false }})"#, plain.port),
        Status::Critical,
        &["did not answer in TLS"],
    );
    no_debug(&o);
    let e = eval_def(
        &h,
        &format!(r#"https4(h, #{{ verify: false, ca_file: "{pem}" }})"#),
    )
    .unwrap_err();
    assert!(e.contains("drop one of them"), "{e}");
    let e = eval_def(&h, r#"tcp(h, 1, #{ verify: false })"#).unwrap_err();
    assert!(e.contains("tls: true"), "{e}");
}

// ---------------------------------------------------------------- subject_style

/// The daemon with one plugin check whose status the test sets, mailing
/// through an aiosmtpd; `style` is `emails.subject_style`.
fn outage_mails(style: &str) -> Vec<support::smtp::Mail> {
    let sb = Sandbox::new();
    let (_held, port) = reserve_port();
    let plugin = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/status-plugin.sh");
    let d = sb.dir.path().display().to_string();
    let cfg = sb.config(&format!(
        r#"
config.base_tick = 0.3;
config.state_dir = "{d}/state";
config.emails.to.append("ops@example.org");
config.emails.addr_from = "picomon <picomon@example.org>";
config.emails.smtp_host = "127.0.0.1:{port}";
config.emails.smtp_retry_timeout = 1;
config.emails.subject_tpl = "[DOMAIN] {{state:>8}}: {{check}} on {{dest}} {{{{x}}}}";
config.emails.subject_style = "{style}";
add(plugin("{plugin}", ["{d}/runs", "{d}/status"]), #{{ name: "flappy", target_name: "Strange IPs", retry: 0 }});
"#,
        plugin = plugin.display()
    ));
    let server = Smtp::start(sb.dir.path(), port);
    support::set_plugin_status(sb.dir.path(), 2, "CRITICAL - down");
    let mut daemon = Daemon::start_anew(sb.dir.path(), &["-c", cfg.to_str().unwrap()]);
    server.wait_messages(1);
    support::set_plugin_status(sb.dir.path(), 0, "OK - fine again");
    let msgs = server.wait_messages(2);
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    fs::remove_dir_all(sb.dir.path().join("state")).ok();
    msgs
}

#[test]
fn state_style_gives_the_recovery_its_own_subject_in_the_same_thread() {
    let m = outage_mails("state");
    assert_eq!(
        m[0].one("Subject"),
        "[DOMAIN] CRITICAL: flappy on Strange IPs {x}"
    );
    assert_eq!(
        m[1].one("Subject"),
        "[DOMAIN]       OK: flappy on Strange IPs {x}"
    );
    let root = m[0].one("Message-ID");
    assert!(m[0].header("In-Reply-To").is_empty());
    assert_eq!(m[1].one("In-Reply-To"), root);
    assert_eq!(m[1].one("References"), root);
    assert_ne!(m[1].one("Message-ID"), root);
    assert!(
        m[1].body.starts_with("OK: recovered after "),
        "{}",
        m[1].body
    );
}

#[test]
fn thread_style_answers_the_problem_subject() {
    let m = outage_mails("thread");
    assert_eq!(
        m[0].one("Subject"),
        "[DOMAIN] CRITICAL: flappy on Strange IPs {x}"
    );
    assert_eq!(
        m[1].one("Subject"),
        "Re: [DOMAIN] CRITICAL: flappy on Strange IPs {x}"
    );
    let root = m[0].one("Message-ID");
    assert_eq!(m[1].one("In-Reply-To"), root);
    assert_eq!(m[1].one("References"), root);
}
