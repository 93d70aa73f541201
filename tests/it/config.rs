//! The Rhai config: keys and defaults, the functions a config
//! calls, and errors that carry `FILE:LINE:COL`.
//!
//! Every test evaluates a real script through the library; plugins are the
//! real monitoring-plugins (`check_dummy`), and the `when.start` time is
//! checked against `date`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use picomon::config::{self, Config, ConfigError, SmtpTls};
use picomon::model::{CheckKind, CheckSpec, When};

const FILE: &str = "/etc/picomon/test.rhai";

fn load(src: &str) -> Result<Config, ConfigError> {
    config::load_str(Path::new(FILE), src)
}

fn ok(src: &str) -> Config {
    match load(src) {
        Ok(c) => c,
        Err(e) => panic!("config should load, got: {e}\n--- script:\n{src}"),
    }
}

fn err(src: &str) -> ConfigError {
    match load(src) {
        Ok(_) => panic!("config should fail:\n{src}"),
        Err(e) => e,
    }
}

/// Asserts the error's position and that its message contains each of
/// `parts`.
fn assert_err(e: &ConfigError, line: usize, col: usize, parts: &[&str]) {
    assert_eq!(
        (e.file.as_path(), e.line, e.col),
        (Path::new(FILE), line, col),
        "position of: {e}"
    );
    for p in parts {
        assert!(e.message.contains(p), "message {:?} lacks {p:?}", e.message);
    }
    assert!(
        e.to_string().starts_with(&format!("{FILE}:{line}:{col}: ")),
        "display: {e}"
    );
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("read /proc/sys/kernel/hostname")
        .trim()
        .to_string()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/configs")
        .join(name)
}

fn check<'a>(c: &'a Config, id: &str) -> &'a CheckSpec {
    c.checks
        .iter()
        .find(|ch| &*ch.id == id)
        .unwrap_or_else(|| panic!("no check {id:?} in {:?}", ids(c)))
}

fn ids(c: &Config) -> Vec<&str> {
    c.checks.iter().map(|ch| ch.id.as_ref()).collect()
}

// ---------------------------------------------------------------- keys

#[test]
fn empty_config_has_every_default() {
    let c = ok("");
    assert_eq!(c.path, Path::new(FILE));
    assert_eq!(c.base_tick, Duration::from_secs(60));
    assert_eq!(c.workers, 16);
    assert_eq!(c.max_output, 65536);
    assert_eq!(c.state_dir, Path::new("/var/lib/picomon/test"));
    assert_eq!(c.plugin_dirs, picomon::run::plugin::default_plugin_dirs());
    assert_eq!(c.verb_level, log::LevelFilter::Info);
    let e = &c.emails;
    assert!(e.to.is_empty());
    assert_eq!(e.addr_from, format!("picomon <picomon@{}>", hostname()));
    assert_eq!(e.smtp_host, vec!["localhost:25".to_string()]);
    assert_eq!(e.smtp_tls, SmtpTls::None);
    assert_eq!(e.smtp_user, "");
    assert_eq!(e.smtp_password_file, "");
    assert_eq!(e.smtp_ca_file, "");
    assert_eq!(e.smtp_retry_timeout, Duration::from_secs(60));
    assert_eq!(e.subject_tpl, "[picomon] {state}: {check} on {dest}");
    assert_eq!(e.subject_style, picomon::config::SubjectStyle::Thread);
    assert_eq!(e.report_every, Duration::ZERO);
    assert_eq!(e.report_subject, "[picomon] error report");
    assert_eq!(e.watchdog_subject, "[picomon] daemon stopped");
    assert_eq!(e.digest_over, 5);
    assert!(c.hosts.is_empty());
    assert!(c.checks.is_empty());
}

#[test]
fn every_key_reads_its_default_in_the_script() {
    let host = hostname();
    let src = format!(
        r#"
fn want(key, got, expected) {{
    if type_of(got) != type_of(expected) || got != expected {{
        throw `${{key}} reads ${{got}} (${{type_of(got)}}), expected ${{expected}}`;
    }}
}}
want("base_tick", config.base_tick, 60.0);
want("default_every", config.default_every, 1);
want("default_error_every", config.default_error_every, -1);
want("default_retry", config.default_retry, 1);
want("default_timeout", config.default_timeout, 10.0);
want("workers", config.workers, 16);
want("max_output", config.max_output, 65536);
want("state_dir", config.state_dir, "/var/lib/picomon/test");
want("plugin_dirs", config.plugin_dirs,
     ["/usr/lib/nagios/plugins", "/usr/lib/monitoring-plugins", "/usr/local/nagios/libexec"]);
want("verb_level", config.verb_level, "info");
want("to", config.emails.to, []);
want("addr_from", config.emails.addr_from, "picomon <picomon@{host}>");
want("smtp_host", config.emails.smtp_host, ["localhost:25"]);
want("smtp_tls", config.emails.smtp_tls, "none");
want("smtp_user", config.emails.smtp_user, "");
want("smtp_password_file", config.emails.smtp_password_file, "");
want("smtp_ca_file", config.emails.smtp_ca_file, "");
want("smtp_retry_timeout", config.emails.smtp_retry_timeout, 60.0);
want("subject_tpl", config.emails.subject_tpl, "[picomon] {{state}}: {{check}} on {{dest}}");
want("subject_style", config.emails.subject_style, "thread");
want("report.every", config.emails.report.every, 0.0);
want("report.subject", config.emails.report.subject, "[picomon] error report");
want("watchdog_subject", config.emails.watchdog_subject, "[picomon] daemon stopped");
want("digest_over", config.emails.digest_over, 5);
"#
    );
    ok(&src);
    // The helper itself can fail: a wrong expectation is reported.
    let e = err("fn want(k, g, x) { if g != x { throw `${k} reads ${g}`; } }\nwant(\"workers\", config.workers, 17);");
    assert!(e.message.contains("workers reads 16"), "{e}");
}

#[test]
fn every_key_can_be_set_and_read_back() {
    let c = ok(r#"
config.base_tick = 0.5;
config.default_every = 2;
config.default_error_every = 3;
config.default_retry = 0;
config.default_timeout = 2.5;
config.workers = 4;
config.max_output = 1024;
config.state_dir = "/tmp/picomon-x";
config.plugin_dirs = ["/opt/plugins", "/usr/lib/nagios/plugins"];
config.verb_level = "WARNING";
config.emails.to = "ops@example.org";
config.emails.addr_from = "mon <mon@example.org>";
config.emails.smtp_host = ["mx1.example.org:587", "[::1]:25"];
config.emails.smtp_tls = "starttls";
config.emails.smtp_user = "mon";
config.emails.smtp_password_file = "/etc/picomon/pw";
config.emails.smtp_ca_file = "/etc/picomon/ca.pem";
config.emails.smtp_retry_timeout = 30;
config.emails.subject_tpl = "{state} {check}";
config.emails.subject_style = "state";
config.emails.report.every = 3600;
config.emails.report.subject = "report";
config.emails.watchdog_subject = "gone";
config.emails.digest_over = 9;
config.base_tick += 0.25;
if config.emails.report.every != 3600.0 { throw "report.every reads back wrong"; }
if config.emails.to != ["ops@example.org"] { throw "to reads back wrong"; }
"#);
    assert_eq!(c.base_tick, Duration::from_millis(750));
    assert_eq!(c.workers, 4);
    assert_eq!(c.max_output, 1024);
    assert_eq!(c.state_dir, Path::new("/tmp/picomon-x"));
    assert_eq!(
        c.plugin_dirs,
        vec![
            PathBuf::from("/opt/plugins"),
            PathBuf::from("/usr/lib/nagios/plugins")
        ]
    );
    assert_eq!(c.verb_level, log::LevelFilter::Warn);
    let e = &c.emails;
    assert_eq!(e.to, vec!["ops@example.org".to_string()]);
    assert_eq!(e.addr_from, "mon <mon@example.org>");
    assert_eq!(e.smtp_host, vec!["mx1.example.org:587", "[::1]:25"]);
    assert_eq!(e.smtp_tls, SmtpTls::Starttls);
    assert_eq!(e.smtp_user, "mon");
    assert_eq!(e.smtp_password_file, "/etc/picomon/pw");
    assert_eq!(e.smtp_ca_file, "/etc/picomon/ca.pem");
    assert_eq!(e.smtp_retry_timeout, Duration::from_secs(30));
    assert_eq!(e.subject_tpl, "{state} {check}");
    assert_eq!(e.subject_style, picomon::config::SubjectStyle::State);
    assert_eq!(e.report_every, Duration::from_secs(3600));
    assert_eq!(e.report_subject, "report");
    assert_eq!(e.watchdog_subject, "gone");
    assert_eq!(e.digest_over, 9);
}

#[test]
fn state_dir_default_is_named_after_the_config_file() {
    let c = config::load_str(Path::new("/srv/mon/site-a.rhai"), "").expect("loads");
    assert_eq!(c.state_dir, Path::new("/var/lib/picomon/site-a"));
}

// ---------------------------------------------------------------- errors

#[test]
fn syntax_error_has_file_line_col() {
    let e = err("config.base_tick = 1;\nlet x = ;\n");
    assert_err(&e, 2, 9, &["syntax error", "';'"]);
}

#[test]
fn unknown_key_names_it_and_suggests_the_right_one() {
    let e = err("config.base_tick = 1;\n  config.emails.tto = [\"a@example.org\"];");
    // Column 16 is the `.` before `tto`.
    assert_err(
        &e,
        2,
        16,
        &[
            "unknown key `config.emails.tto`",
            "did you mean `config.emails.to`?",
            "addr_from",
            "smtp_host",
        ],
    );
    let e = err("config.wrkers = 2;");
    assert_err(
        &e,
        1,
        7,
        &["`config.wrkers`", "did you mean `config.workers`?"],
    );
    // Far from every key: the list of known keys, no guess.
    let e = err("let a = 1;\nlet b = config.completely_unrelated;");
    assert_err(
        &e,
        2,
        15,
        &[
            "unknown key `config.completely_unrelated`",
            "base_tick, default_every",
        ],
    );
    assert!(!e.message.contains("did you mean"), "{e}");
    let e = err("config.emails.report.evry = 60;");
    assert_err(&e, 1, 21, &["did you mean `config.emails.report.every`?"]);
}

#[test]
fn every_duration_key_takes_seconds_or_a_duration_string() {
    let cfg = ok(
        "config.base_tick = \"1m\";\nconfig.default_timeout = \"1m30s\";\n\
         config.emails.smtp_retry_timeout = \"2m\";\n\
         add(shell(\"true\"), #{ name: \"a\", timeout: \"45s\" });",
    );
    assert_eq!(cfg.base_tick, std::time::Duration::from_secs(60));
    assert_eq!(
        cfg.emails.smtp_retry_timeout,
        std::time::Duration::from_secs(120)
    );
    assert_eq!(cfg.checks[0].timeout(), std::time::Duration::from_secs(45));
}

#[test]
fn wrong_type_says_what_was_expected_and_what_came() {
    let e = err("config.base_tick = [1];");
    assert_err(&e, 1, 7, &[]);
    assert_eq!(
        e.message,
        "config.base_tick must be a number of seconds or a duration like \"5m\", not an array"
    );
    let e = err("config.base_tick = \"x\";");
    assert_err(&e, 1, 7, &[]);
    assert_eq!(
        e.message,
        "config.base_tick: \"x\" is not a duration; write e.g. 90s, 30m, 1h30m, 2h or 1d"
    );
    let e = err("\n\nconfig.emails.to = 5;");
    assert_err(
        &e,
        3,
        14,
        &[
            "config.emails.to must be an array of strings",
            "not an integer",
        ],
    );
    let e = err("config.emails.to = [\"a@example.org\", 5];");
    assert_err(
        &e,
        1,
        14,
        &["config.emails.to[1] must be a string, not an integer"],
    );
    let e = err("config.workers = 2.5;");
    assert_err(
        &e,
        1,
        7,
        &["config.workers must be a whole number of threads, not 2.5"],
    );
    let e = err("config.emails.smtp_tls = \"ssl\";");
    assert_err(&e, 1, 14, &["\"none\", \"starttls\", \"tls\"", "\"ssl\""]);
    let e = err("config.emails = 5;");
    assert_err(&e, 1, 7, &["config.emails is a group of keys"]);
    let e = err("config.emails.smtp_host = \"mail:smtp\";");
    assert_err(&e, 1, 14, &["\"mail:smtp\" is not host[:port]"]);
}

#[test]
fn out_of_range_values_are_rejected_where_set() {
    let e = err("config.base_tick = 0.01;");
    assert_err(
        &e,
        1,
        7,
        &["config.base_tick must be at least 0.05", "not 0.01"],
    );
    let e = err("config.workers = 0;");
    assert_err(&e, 1, 7, &["config.workers must be between 1 and 1024"]);
    let e = err("config.workers = 1025;");
    assert_err(&e, 1, 7, &["not 1025"]);
    let e = err("config.default_error_every = 0;");
    assert_err(&e, 1, 7, &["-1 (same as every) or at least 1"]);
    let e = err("config.default_timeout = 0;");
    assert_err(&e, 1, 7, &["config.default_timeout must be more than 0"]);
    let e = err("config.default_retry = -1;");
    assert_err(&e, 1, 7, &["config.default_retry must be between 0"]);
    let e = err("add(plugin(\"check_dummy\", [\"0\"]),\n    #{ every: 0 });");
    assert_err(&e, 1, 1, &["option every must be between 1", "not 0"]);
    let e = err("  add(shell(\"true\"), #{ timeout: -1 });");
    assert_err(&e, 1, 3, &["option timeout must be more than 0"]);
    let e = err("add(shell(\"true\"), #{ retry: \"2\" });");
    assert_err(
        &e,
        1,
        1,
        &["option retry must be a whole number of runs, not a string"],
    );
}

#[test]
fn unknown_check_option_lists_the_valid_ones() {
    let e = err("let h = 1;\nadd(shell(\"true\"), #{ evry: 5 });");
    assert_err(
        &e,
        2,
        1,
        &[
            "unknown option `evry`",
            "did you mean `every`?",
            "every, error_every, retry, timeout, name, target_name, env, cwd, when, passive",
        ],
    );
    let e = err("add(shell(\"true\"), #{ when: #{ hour: \"9-17\" } });");
    assert_err(
        &e,
        1,
        1,
        &["unknown option `when.hour`", "did you mean `when.hours`?"],
    );
}

#[test]
fn two_checks_with_one_identity_name_both_lines() {
    let e =
        err("add(plugin(\"check_dummy\", [\"0\"]));\n\n    add(plugin(\"check_dummy\", [\"0\"]));");
    assert_err(
        &e,
        3,
        5,
        &[
            "identity `plugin:check_dummy 0`",
            "already added at line 1",
            "name",
        ],
    );
    // The same plugin call for two targets is two checks.
    let c = ok(
        r#"add(plugin("check_dummy", ["0"]), #{ target_name: "web1" });
add(plugin("check_dummy", ["0"]), #{ target_name: "web2" });"#,
    );
    assert_eq!(&*check(&c, "plugin:check_dummy 0 on web1").dest, "web1");
    assert_eq!(&*check(&c, "plugin:check_dummy 0 on web2").dest, "web2");
    let e = err(
        r#"add(plugin("check_dummy", ["0"]), #{ target_name: "web1" });
add(plugin("check_dummy", ["0"]), #{ target_name: "web1" });"#,
    );
    assert_err(
        &e,
        2,
        1,
        &["identity `plugin:check_dummy 0 on web1`", "line 1"],
    );
    // One name for two different checks on one target collides too: both
    // run on this machine.
    let e =
        err("add(shell(\"true\"), #{ name: \"x\" });\nadd(shell(\"false\"), #{ name: \"x\" });");
    assert_err(
        &e,
        2,
        1,
        &[
            &format!("a check named `x` on `{}`", hostname()),
            "already added at line 1 (and again at line 2)",
            "unique per target",
        ],
    );
    // A name tells two identical checks apart.
    let c = ok("add(shell(\"true\"));\nadd(shell(\"true\"), #{ name: \"again\" });");
    assert_eq!(ids(&c), vec!["shell:true", "again"]);
}

#[test]
fn a_name_is_unique_per_target_so_a_loop_over_hosts_can_reuse_it() {
    let mut src = String::from("let hosts = [];\nfor i in 1..=20 { hosts.push(host(`web${i}`, #{ ipv4: \"127.0.0.1\" })); }\n");
    src.push_str("for h in hosts { add(tcp(h, 80), #{ name: \"web port\" }); }\n");
    src.push_str(
        "add(shell(\"true\"), #{ name: \"disk\", depends_on: [\"web port on web7\"] });\n",
    );
    src.push_str("add(tcp(hosts[2], 22), #{ name: \"ssh\", depends_on: [\"web port\"] });\n");
    let c = ok(&src);
    assert_eq!(c.checks.len(), 22);
    // Shared: each one is NAME on TARGET.
    for i in 1..=20 {
        let ch = check(&c, &format!("web port on web{i}"));
        assert_eq!((ch.name.as_ref(), ch.line), ("web port", 3));
    }
    // A name no other check has stays the identity, as before.
    let disk = check(&c, "disk");
    let deps = &disk.noise.as_ref().unwrap().depends_on;
    assert_eq!(&*c.checks[deps[0] as usize].id, "web port on web7");
    // A shared name in depends_on means the one on the same target.
    let ssh = check(&c, "ssh");
    let deps = &ssh.noise.as_ref().unwrap().depends_on;
    assert_eq!(&*c.checks[deps[0] as usize].id, "web port on web3");

    // The same host twice in the loop is a true duplicate: both lines and
    // the target are named.
    let e = err("let h = host(\"web1\", #{ ipv4: \"127.0.0.1\" });\nfor x in [h, h] {\n  add(tcp(x, 80), #{ name: \"web port\" });\n}");
    assert_err(
        &e,
        3,
        3,
        &["a check named `web port` on `web1` was already added at line 3"],
    );
    // A shared name in depends_on from elsewhere is ambiguous: the error
    // lists the candidates.
    let e = err(
        "add(tcp(host(\"a\", #{ ipv4: \"127.0.0.1\" }), 80), #{ name: \"web\" });\n\
         add(tcp(host(\"b\", #{ ipv4: \"127.0.0.1\" }), 80), #{ name: \"web\" });\n\
         add(shell(\"true\"), #{ depends_on: [\"web\"] });",
    );
    assert_err(
        &e,
        3,
        1,
        &["2 checks are named \"web\"", "\"web on a\", \"web on b\""],
    );
    // A name that reads like another check's identity on its target.
    let e = err(
        "add(tcp(host(\"a\", #{ ipv4: \"127.0.0.1\" }), 80), #{ name: \"web on a\" });\n\
         add(tcp(host(\"a\", #{ ipv4: \"127.0.0.1\" }), 81), #{ name: \"web\" });\n\
         add(tcp(host(\"b\", #{ ipv4: \"127.0.0.1\" }), 81), #{ name: \"web\" });",
    );
    assert_err(
        &e,
        2,
        1,
        &["two checks have the identity `web on a` (lines 1 and 2)"],
    );
}

#[test]
fn error_in_a_script_function_points_inside_it() {
    let e = err("fn checks(n) {\n    add(shell(\"true\"), #{ every: n });\n}\nchecks(0);");
    assert_err(&e, 2, 5, &["option every", "(in function checks)"]);
}

#[test]
fn thrown_error_keeps_its_message_and_position() {
    let e = err("let a = 1;\n   throw \"site list missing\";");
    assert_err(&e, 2, 4, &[]);
    assert_eq!(e.message, "site list missing");
}

#[test]
fn endless_loop_fails_with_a_position() {
    // How fast it is stopped is bench row 9.2, not a test: a loaded
    // machine says nothing about wall time.
    let e = err("let n = 0;\nloop {\n    n += 1;\n}");
    assert!(e.line >= 2 && e.line <= 4 && e.col >= 1, "position: {e}");
    assert!(e.message.contains("endless loop"), "{e}");
    // An empty loop body too.
    let e = err("loop {}");
    assert_eq!((e.line, e.col > 0), (1, true), "{e}");
}

#[test]
fn runaway_string_hits_the_size_limit_with_a_position() {
    let e = err("let s = \"x\";\nwhile true { s += s; }");
    assert_eq!(e.line, 2, "{e}");
    assert!(e.message.contains("too large"), "{e}");
    assert!(e.message.contains("1024 KiB"), "{e}");
}

#[test]
fn missing_file_says_which_and_how_to_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nope.rhai");
    let e = config::load(&path).expect_err("missing file");
    assert_eq!((e.line, e.col), (0, 0));
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("{}: cannot read the config file", path.display())),
        "{text}"
    );
    assert!(text.contains("-c FILE"), "{text}");
}

// ---------------------------------------------------------------- checks

#[test]
fn plugin_check_resolves_and_has_identity_label_dest() {
    let c = ok(r#"add(plugin("check_dummy", ["-w", 10, "a b"]));"#);
    let ch = check(&c, "plugin:check_dummy -w 10 'a b'");
    assert_eq!(&*ch.name, "check_dummy");
    assert_eq!(&*ch.dest, hostname());
    assert_eq!(ch.line, 1);
    match &ch.kind {
        CheckKind::Plugin(argv) => {
            let (program, args) = (&argv.program, &argv.args);
            assert_eq!(&**program, Path::new("/usr/lib/nagios/plugins/check_dummy"));
            assert!(program.is_file());
            assert_eq!(&**args, &["-w", "10", "a b"]);
        }
        other => panic!("not a plugin: {other:?}"),
    }
}

#[test]
fn plugin_dirs_set_after_plugin_still_apply() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prog = dir.path().join("check_mine");
    std::fs::write(&prog, "#!/bin/sh\necho OK\n").expect("write plugin");
    let src = format!(
        "add(plugin(\"check_mine\"));\nadd(plugin(\"/bin/true\"));\nadd(plugin(\"check_nowhere_at_all\"));\nconfig.plugin_dirs = [{:?}];",
        dir.path().display().to_string()
    );
    let c = ok(&src);
    let program = |id: &str| match &check(&c, id).kind {
        CheckKind::Plugin(argv) => argv.program.to_path_buf(),
        other => panic!("not a plugin: {other:?}"),
    };
    assert_eq!(program("plugin:check_mine"), prog);
    assert_eq!(program("plugin:/bin/true"), Path::new("/bin/true"));
    assert_eq!(&*check(&c, "plugin:/bin/true").name, "true");
    // Not found: kept as given, the run will say it cannot run it.
    assert_eq!(
        program("plugin:check_nowhere_at_all"),
        Path::new("check_nowhere_at_all")
    );
}

#[test]
fn shell_check_is_explicit() {
    let c = ok("add(shell(\"test -d / && echo fine\"), #{ target_name: \"box\" });");
    let ch = check(&c, "shell:test -d / && echo fine on box");
    assert_eq!((ch.name.as_ref(), ch.dest.as_ref()), ("shell", "box"));
    assert!(
        matches!(&ch.kind, CheckKind::Shell { command } if &**command == "test -d / && echo fine")
    );
}

#[test]
fn add_accepts_one_check_options_and_arrays() {
    let c = ok(r#"
add(shell("a"));
add(shell("b"), #{ every: 3, retry: 0 });
add([shell("c"), shell("d")], #{ every: 5, timeout: 0.5 });
add([shell("e")]);
"#);
    assert_eq!(
        ids(&c),
        vec!["shell:a", "shell:b", "shell:c", "shell:d", "shell:e"]
    );
    let a = check(&c, "shell:a");
    assert_eq!((a.every, a.error_every, a.retry), (1, 1, 1));
    assert_eq!(a.timeout(), Duration::from_secs(10));
    assert_eq!(a.line, 2);
    let b = check(&c, "shell:b");
    assert_eq!((b.every, b.error_every, b.retry, b.line), (3, 3, 0, 3));
    for id in ["shell:c", "shell:d"] {
        let x = check(&c, id);
        assert_eq!(
            (x.every, x.timeout(), x.line),
            (5, Duration::from_millis(500), 4)
        );
    }
    let e = err("add([shell(\"a\"), \"b\"]);");
    assert_err(&e, 1, 1, &["item 1 is a string, not a check"]);
    let e = err("add(\"check_disk\");");
    assert_err(&e, 1, 1, &["add() takes a check", "not a string"]);
    let e = err("add(shell(\"a\"), 5);");
    assert_err(&e, 1, 1, &["options must be a map"]);
}

#[test]
fn defaults_set_after_add_still_apply() {
    let c = ok(r#"
add(shell("early"));
add(shell("own"), #{ every: 7, error_every: -1, retry: 4, timeout: 3 });
config.default_every = 5;
config.default_error_every = 2;
config.default_retry = 0;
config.default_timeout = 1.5;
add(shell("late"));
"#);
    for id in ["shell:early", "shell:late"] {
        let x = check(&c, id);
        assert_eq!(
            (x.every, x.error_every, x.retry, x.timeout()),
            (5, 2, 0, Duration::from_millis(1500)),
            "{id}"
        );
    }
    let own = check(&c, "shell:own");
    assert_eq!(
        (own.every, own.error_every, own.retry, own.timeout()),
        (7, 7, 4, Duration::from_secs(3))
    );
    // error_every -1 follows `every` when only the default is given.
    let c = ok("config.default_every = 4;\nadd(shell(\"x\"));");
    assert_eq!(check(&c, "shell:x").error_every, 4);
}

#[test]
fn name_target_env_cwd_passive_options() {
    let c = ok(r#"
add(plugin("check_dummy", ["0"]), #{
    name: "root fs", target_name: "db1",
    env: #{ LANG: "C", DEPTH: 3 }, cwd: "/tmp", passive: "host"
});
add(shell("true"), #{ passive: "service" });
"#);
    let ch = check(&c, "root fs");
    assert_eq!((ch.name.as_ref(), ch.dest.as_ref()), ("root fs", "db1"));
    let mut env = ch.env().to_vec();
    env.sort();
    assert_eq!(
        env,
        vec![
            ("DEPTH".to_string(), "3".to_string()),
            ("LANG".to_string(), "C".to_string())
        ]
    );
    assert_eq!(ch.cwd(), Some(Path::new("/tmp")));
    assert!(ch.passive_host);
    assert!(!check(&c, "shell:true").passive_host);
    assert_eq!(ch.title(), "root fs on db1");

    let e = err("add(shell(\"x\"), #{ cwd: \"tmp\" });");
    assert_err(&e, 1, 1, &["option cwd must be an absolute path"]);
    let e = err("add(shell(\"x\"), #{ passive: \"hosts\" });");
    assert_err(
        &e,
        1,
        1,
        &["option passive must be one of \"host\", \"service\""],
    );
    let e = err("add(shell(\"x\"), #{ env: #{ A: [1] } });");
    assert_err(
        &e,
        1,
        1,
        &["option env.A must be a string or a number, not an array"],
    );
}

#[test]
fn when_windows_parse_ranges_lists_and_local_start() {
    let c = ok(r#"
add(shell("office"), #{ when: #{ hours: "9-17", weekdays: "mon-fri", days: "1-12,24-30", start: "2099-11-11 11:11:11" } });
add(shell("night"), #{ when: #{ hours: "22-2", weekdays: "sat,Sunday" } });
add(shell("noon"), #{ when: #{ hours: 12 } });
"#);
    let expected_start: i64 = {
        let out = Command::new("date")
            .args(["-d", "2099-11-11 11:11:11", "+%s"])
            .output()
            .expect("run date");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("date prints seconds")
    };
    let mut days: Vec<u8> = (1..=12).collect();
    days.extend(24..=30);
    assert_eq!(
        check(&c, "shell:office").when(),
        Some(&When {
            hours: (9..=17).collect(),
            weekdays: vec![0, 1, 2, 3, 4],
            days,
            start: Some(expected_start),
            ..When::default()
        })
    );
    assert_eq!(
        check(&c, "shell:night").when(),
        Some(&When {
            hours: vec![0, 1, 2, 22, 23],
            weekdays: vec![5, 6],
            days: vec![],
            start: None,
            ..When::default()
        })
    );
    assert_eq!(
        check(&c, "shell:noon").when().map(|w| w.hours.clone()),
        Some(vec![12])
    );

    for (when, msg) in [
        (
            "hours: \"9-25\"",
            "option when.hours: \"25\" is not a value or range",
        ),
        ("weekdays: \"mon-fry\"", "option when.weekdays: \"fry\""),
        ("days: \"12-1\"", "range \"12-1\" goes backwards"),
        (
            "start: \"2099-13-01 00:00:00\"",
            "not a local date and time",
        ),
        ("start: 5", "option when.start must be a string"),
    ] {
        let e = err(&format!("\nadd(shell(\"x\"), #{{ when: #{{ {when} }} }});"));
        assert_err(&e, 2, 1, &[msg]);
    }
}

#[test]
fn hosts_have_addresses_and_getters() {
    let c = ok(r#"
let web = host("web1", #{ ipv4: "192.0.2.10", ipv6: "2001:db8::10" });
let bare = host("db1");
if web.name != "web1" || web.ipv4 != "192.0.2.10" || web.ipv6 != "2001:db8::10" { throw "getters"; }
if bare.ipv4 != () { throw "no ipv4 should read as ()"; }
for h in [web, bare] { add(shell(`ping ${h.name}`), #{ target_name: h.name }); }
let again = host("web1", #{ ipv4: "192.0.2.10", ipv6: "2001:db8::10" });
// As Python picomon's Host(name=..., ipv4=...) is written.
let py = host(#{ name: "web", ipv4: "127.0.0.1" });
if py.name != "web" || py.ipv4 != "127.0.0.1" { throw "name in the map"; }
"#);
    let names: Vec<_> = c.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, vec!["web1", "db1", "web"]);
    assert_eq!(c.hosts[0].ipv4.as_deref(), Some("192.0.2.10"));
    assert_eq!(c.hosts[0].ipv6.as_deref(), Some("2001:db8::10"));
    assert_eq!(c.hosts[1].ipv4, None);
    assert_eq!(&*check(&c, "shell:ping db1 on db1").dest, "db1");

    let e = err("let h = host(\"web1\", #{ ipv4: \"2001:db8::1\" });");
    assert_err(&e, 1, 9, &["\"2001:db8::1\" is not an IPv4 address"]);
    let e = err("host(\"web1\", #{ ip: \"192.0.2.1\" });");
    assert_err(&e, 1, 1, &["unknown host option `ip`", "ipv4, ipv6"]);
    let e = err("host(\"web1\", #{ name: \"web2\", ipv4: \"192.0.2.1\" });");
    assert_err(&e, 1, 1, &["names the host twice", "give the name once"]);
    let e = err("host(\"a\", #{ ipv4: \"192.0.2.1\" });\nhost(\"a\", #{ ipv4: \"192.0.2.2\" });");
    assert_err(&e, 2, 1, &["declared twice"]);
}

// ---------------------------------------------------------------- whole configs

#[test]
fn spec_example_with_plugins_loads() {
    let path = fixture("full.rhai");
    let c = config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.base_tick, Duration::from_secs(60));
    assert_eq!(c.state_dir, Path::new("/var/lib/picomon/NAME"));
    assert_eq!(c.emails.to, vec!["ops@example.org"]);
    assert_eq!(c.emails.report_every, Duration::from_secs(3600));
    assert_eq!(c.hosts.len(), 1);
    assert_eq!(c.checks.len(), 5);
    let ping = check(
        &c,
        "plugin:check_ping -4 -H 192.0.2.10 -w 100,20% -c 500,60% on web1",
    );
    assert_eq!((ping.every, ping.retry, ping.dest.as_ref()), (1, 2, "web1"));
    let disk = check(&c, "root fs");
    assert_eq!((disk.every, disk.name.as_ref()), (10, "root fs"));
    assert_eq!(disk.line, 22);
    let ping6 = check(
        &c,
        "plugin:check_ping -6 -H 2001:db8::10 -w 100,20% -c 500,60% on web1",
    );
    assert_eq!(ping6.line, 23);
    assert!(check(&c, "root exists").when().is_some());

    let text = config::summary(&c);
    for part in [
        "full.rhai",
        "1 host (web1)",
        "5 checks (4 plugin, 1 shell, 0 built-in",
        "root fs on",
        "a tick every 60 s",
        "Mail to ops@example.org",
        "via localhost:25 (no TLS",
        "reports every 3600 s",
    ] {
        assert!(text.contains(part), "summary lacks {part:?}:\n{text}");
    }
    assert!(!text.contains('\n'), "one paragraph: {text}");
    assert_eq!(c.summary(), text);
}

#[test]
fn summary_of_an_empty_config_says_what_is_missing() {
    let text = ok("").summary();
    assert!(text.contains("no checks"), "{text}");
    assert!(
        text.contains("Mail: off (config.emails.to is empty)"),
        "{text}"
    );
}

#[test]
fn fixture_broken_syntax_fails_at_line_4() {
    let path = fixture("broken_syntax.rhai");
    let e = config::load(&path).expect_err("broken");
    assert_eq!(
        (e.file.as_path(), e.line, e.col),
        (path.as_path(), 4, 39),
        "{e}"
    );
    assert!(e.message.starts_with("syntax error"), "{e}");
}

#[test]
fn fixture_unknown_key_fails_at_line_3() {
    let path = fixture("unknown_key.rhai");
    let e = config::load(&path).expect_err("unknown key");
    assert_eq!((e.line, e.col), (3, 14), "{e}");
    assert!(
        e.message.contains("did you mean `config.emails.to`?"),
        "{e}"
    );
}

#[test]
fn fixture_loop_is_stopped_with_a_position() {
    let e = config::load(&fixture("loop.rhai")).expect_err("loop");
    assert!((4..=6).contains(&e.line), "{e}");
    assert!(e.message.contains("endless loop"), "{e}");
}

/// The fixture's four checks really end with the four statuses when their
/// resolved programs are run.
#[test]
fn fixture_dummy_declares_four_statuses() {
    let c = config::load(&fixture("dummy.rhai")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.base_tick, Duration::from_secs(1));
    let mut seen = Vec::new();
    for ch in &c.checks {
        let CheckKind::Plugin(argv) = &ch.kind else {
            panic!("not a plugin: {ch:?}");
        };
        let (program, args) = (&argv.program, &argv.args);
        let status = Command::new(&**program)
            .args(args)
            .status()
            .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
        seen.push((ch.title(), status.code()));
    }
    assert_eq!(
        seen,
        vec![
            ("dummy ok on alpha".to_string(), Some(0)),
            ("dummy warning on beta".to_string(), Some(1)),
            ("dummy critical on gamma".to_string(), Some(2)),
            ("dummy unknown on delta".to_string(), Some(3)),
        ]
    );
}

#[test]
fn script_functions_see_config_and_cannot_replace_it() {
    let c =
        ok("fn tune(t) { config.base_tick = t; config.emails.report.every = t * 60; }\ntune(5);");
    assert_eq!(c.base_tick, Duration::from_secs(5));
    assert_eq!(c.emails.report_every, Duration::from_secs(300));
    let e = err("let x = 1;\nconfig = 5;");
    assert_eq!(e.line, 2, "{e}");
    assert!(e.message.contains("config"), "{e}");
}

/// Collects log records so a test can see what `print` and `debug` logged.
struct Capture(std::sync::Mutex<Vec<(log::Level, String)>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, r: &log::Record) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((r.level(), r.args().to_string()));
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(std::sync::Mutex::new(Vec::new()));

#[test]
fn print_and_debug_go_to_the_log() {
    // The only test that sets a logger in this binary; records of other
    // tests running at the same time are told apart by their text.
    let _ = log::set_logger(&CAPTURE);
    log::set_max_level(log::LevelFilter::Debug);
    ok("let n = 41 + 1;\nprint(`answer ${n}`);\n  debug(\"state\");");
    let got = CAPTURE.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(
        got.contains(&(log::Level::Info, format!("{FILE}: answer 42"))),
        "{got:?}"
    );
    assert!(
        got.contains(&(log::Level::Debug, format!("{FILE}:3:3: \"state\""))),
        "{got:?}"
    );
}

#[test]
fn summary_describes_tls_login_failover_and_many_checks() {
    let c = ok(r#"
config.emails.to = ["a@example.org", "b@example.org"];
config.emails.smtp_host = ["mx1.example.org:587", "mx2.example.org:587"];
config.emails.smtp_tls = "starttls";
config.emails.smtp_user = "mon";
config.base_tick = 0.5;
for i in 0..12 { add(shell(`true ${i}`), #{ name: `c${i}` }); }
"#);
    let text = c.summary();
    for part in [
        "12 checks (0 plugin, 12 shell, 0 built-in: c0 on",
        "and 4 more",
        "a tick every 0.5 s",
        "Mail to a@example.org, b@example.org",
        "via mx1.example.org:587 then mx2.example.org:587 (STARTTLS, login as mon)",
        "no reports",
    ] {
        assert!(text.contains(part), "summary lacks {part:?}:\n{text}");
    }
    assert!(!text.contains("c8 on"), "only 8 names shown: {text}");
}

#[test]
fn outputs_and_result_dir() {
    let c = ok("");
    assert!(c.outputs.is_empty());
    assert_eq!(c.result_dir, None);

    let c = ok(r#"
config.outputs = [json_lines("-"), command_file("/var/lib/nagios3/rw/nagios.cmd", #{ name: "nagios" })];
config.result_dir = "/var/spool/picomon";
if config.outputs.len() != 2 { throw "outputs read back wrong"; }
if config.result_dir != "/var/spool/picomon" { throw "result_dir read back wrong"; }
"#);
    let labels: Vec<_> = c.outputs.iter().map(|o| o.kind.label()).collect();
    assert_eq!(labels, vec!["json_lines", "command_file"]);
    assert_eq!(c.outputs[1].spool_name(1), "nagios");
    assert_eq!(
        c.result_dir.as_deref(),
        Some(Path::new("/var/spool/picomon"))
    );
    let text = c.summary();
    assert!(
        text.contains(
            "Results also go to json_lines(-), command_file(/var/lib/nagios3/rw/nagios.cmd)."
        ),
        "{text}"
    );
    assert!(text.contains("picked up from /var/spool/picomon"), "{text}");

    // One output alone is a list of one.
    let c = ok("config.outputs = json_lines(\"/tmp/results.json\");");
    assert_eq!(c.outputs.len(), 1);

    let e = err("config.outputs = [json_lines(\"-\"), \"nsca\"];");
    assert_err(
        &e,
        1,
        7,
        &[
            "config.outputs[1] must be an output made with json_lines()",
            "not a string",
        ],
    );
    let e = err(
        "config.outputs = [json_lines(\"-\", #{ name: \"x\" }),\n  json_lines(\"/tmp/a\", #{ name: \"x\" })];",
    );
    assert_err(
        &e,
        1,
        7,
        &["config.outputs[1] and config.outputs[0] share the spool name \"x\""],
    );
    let e = err("config.result_dir = \"spool\";");
    assert_err(&e, 1, 7, &["config.result_dir must be an absolute path"]);
}

// ---------------------------------------------------------------- docs

/// The `(name, default)` cells of the doc table whose header line is
/// `header`; a Mail row's `emails.x` is `config.emails.x`.
fn readme_table(readme: &str, header: &str) -> Vec<(String, String)> {
    let mut lines = readme.lines().skip_while(|l| l.trim() != header);
    assert!(lines.next().is_some(), "the docs have no table {header:?}");
    lines
        .skip(1) // |---|---|---|
        .take_while(|l| l.starts_with('|'))
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let name = cells[1].trim_matches('`');
            let name = if name.starts_with("emails.") {
                format!("config.{name}")
            } else {
                name.to_string()
            };
            (name, cells[2].trim_matches('`').to_string())
        })
        .collect()
}

/// The README's first config, as a newcomer copies it, passes
/// `--check-config` and names the checks the README says it does.
#[test]
fn the_readme_first_config_passes_check_config() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("read README.md");
    let start = readme
        .find("```rhai\n")
        .expect("README has a ```rhai block")
        + "```rhai\n".len();
    let body = &readme[start..];
    let body = &body[..body.find("```").expect("the block ends")];
    assert!(body.lines().count() <= 12, "the first config grew: {body}");
    let sb = crate::support::Sandbox::new();
    let file = sb.path("main.rhai");
    std::fs::write(&file, body).unwrap();
    let out = sb.run(&["-c", file.to_str().unwrap(), "--check-config"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("site on web1"), "{stdout}");
}

/// A mail domain outside ASCII is refused where it is set, with its
/// xn-- form as the fix: picomon sends domains as they are written.
#[test]
fn check_config_names_a_mail_domain_outside_ascii_and_the_fix() {
    let sb = crate::support::Sandbox::new();
    let file = sb.path("main.rhai");
    for (line, key) in [
        (
            r#"config.emails.to = ["ops@bücher.example"];"#,
            "config.emails.to",
        ),
        (
            r#"contact("ops", #{ to: ["Ops <ops@bücher.example>"] });"#,
            "contact \"ops\": to",
        ),
    ] {
        std::fs::write(&file, format!("{line}\n")).unwrap();
        let out = sb.run(&["-c", file.to_str().unwrap(), "--check-config"]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{text}");
        for part in [
            "main.rhai:1:",
            key,
            "the domain \"bücher.example\" is not ASCII",
            "xn--",
            "idn2 bücher.example",
        ] {
            assert!(text.contains(part), "{part:?} missing: {text}");
        }
    }
}

#[test]
fn readme_key_tables_match_the_declared_keys() {
    // The key tables live in the guide, the mail settings with the mail.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = ["doc/guide.md", "doc/integrations.md"]
        .iter()
        .map(|f| std::fs::read_to_string(root.join(f)).unwrap_or_else(|e| panic!("read {f}: {e}")))
        .collect::<Vec<_>>()
        .join("\n");
    let mut rows = readme_table(&readme, "| key | default | meaning |");
    rows.extend(readme_table(&readme, "| setting | default | meaning |"));
    let declared = config::key_docs();
    assert!(declared.len() >= 28, "{declared:?}");
    let mut problems = Vec::new();
    for key in &declared {
        assert!(!key.doc.is_empty(), "{} has no doc", key.name);
        let row = rows.iter().find(|(name, _)| *name == key.name);
        match (&key.default, row) {
            (Some(want), Some((_, got))) if got != want => problems.push(format!(
                "{}: the docs say default {got}, the code {want}",
                key.name
            )),
            (Some(_), None) => problems.push(format!(
                "{} is not in doc/guide.md or doc/integrations.md",
                key.name
            )),
            _ => {}
        }
    }
    for (name, _) in &rows {
        // `config.emails.*` stands for a group of keys.
        let group = name.strip_suffix(".*");
        let known = declared.iter().any(|k| match group {
            Some(g) => k.name == g && k.default.is_none(),
            None => k.name == *name && k.default.is_some(),
        });
        if !known {
            problems.push(format!("the docs list {name}, which is no key"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------- log injection

/// A check name and target that try to start log lines of their own.
const FORGED: &str = r#"add(shell("exit 2"), #{
    name: "disk\n[2026-01-01T00:00:00Z ERROR] forged line",
    target_name: "web1\r\n[2026-01-01T00:00:00Z ERROR] forged target\x1b[2J",
    retry: 0,
});
"#;
const FORGED_TITLE: &str = r"disk\n[2026-01-01T00:00:00Z ERROR] forged line on web1\r\n[2026-01-01T00:00:00Z ERROR] forged target\u{1b}[2J";

fn assert_not_forged(what: &str, text: &str) {
    for line in text.lines() {
        assert!(
            !line.starts_with("[2026-01-01T00:00:00Z ERROR]")
                && !line.contains('\r')
                && !line.contains('\u{1b}'),
            "{what} has a forged line {line:?}:\n{text}"
        );
    }
}

#[test]
fn summary_escapes_control_characters_in_names() {
    let c = ok(FORGED);
    assert_eq!(c.checks[0].title(), FORGED_TITLE);
    let text = c.summary();
    assert!(text.contains(FORGED_TITLE), "{text}");
    assert!(!text.contains(['\n', '\r', '\u{1b}']), "{text:?}");
}

#[test]
fn names_with_line_breaks_cannot_forge_log_lines() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("forged.rhai");
    std::fs::write(
        &cfg,
        format!(
            "config.base_tick = 0.2;\nconfig.state_dir = \"{}/state\";\n{FORGED}",
            dir.path().display()
        ),
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_picomon");

    // --check-config: one paragraph on one line.
    let out = Command::new(bin)
        .args(["-c", cfg.to_str().unwrap(), "--check-config"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains(FORGED_TITLE), "{stdout}");

    // -1: one result line, picomon's own state_dir line and the tally.
    let out = Command::new(bin)
        .args(["-c", cfg.to_str().unwrap(), "-1"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with(&format!("CRITICAL  {FORGED_TITLE}: "))),
        "{stdout}"
    );

    // The daemon, at debug level: the run, the result, the transition and
    // the mailer's note all name the check.
    let err_path = dir.path().join("stderr");
    let mut child = Command::new(bin)
        .args(["-c", cfg.to_str().unwrap(), "-D"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut stderr = String::new();
    while Instant::now() < deadline {
        stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
        // The transition at info, and the mailer's own line after it.
        if stderr.matches(FORGED_TITLE).count() >= 3 && stderr.contains("problem CRITICAL: ") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or(stderr);
    assert!(
        stderr.contains(&format!("problem {FORGED_TITLE}: CRITICAL")),
        "{stderr}"
    );
    assert!(
        stderr.contains("problem CRITICAL: disk\\n[2026"),
        "{stderr}"
    );
    assert_not_forged("stderr", &stderr);
    for line in stderr.lines() {
        assert!(
            line.starts_with("[20"),
            "a line that is no log line: {line:?}\n{stderr}"
        );
    }
}

// ---------------------------------------------------------------- two picomons

#[test]
fn heartbeat_peer_and_standby_for_are_checked_with_the_fix() {
    let c = ok(r#"
config.heartbeat = ["https://hc-ping.com/uuid"];
config.heartbeat_every = 30;
add(peer("http://mon1:9464/", #{ timeout: "5s" }), #{ name: "mon1" });
config.standby_for = "mon1";
"#);
    assert_eq!(c.heartbeat, ["https://hc-ping.com/uuid"]);
    assert_eq!(c.heartbeat_every, std::time::Duration::from_secs(30));
    assert_eq!(c.standby_for.as_deref(), Some("mon1"));
    assert_eq!(&*c.checks[0].dest, "http://mon1:9464");

    let e = err("config.heartbeat = [\"hc-ping.com/uuid\"];");
    assert_err(
        &e,
        1,
        7,
        &[
            "config.heartbeat",
            "not an http(s) URL",
            "https://hc-ping.com/UUID",
        ],
    );
    let e = err("add(peer(\"mon1:9464\"));");
    assert_err(&e, 1, 5, &["peer", "not the URL of a picomon listener"]);
    let e = err("add(peer(\"http://mon1:9464\", #{ timout: 5 }));");
    assert_err(&e, 1, 5, &["unknown option `timout`", "timeout"]);
    let e = err(
        "config.standby_for = \"mon1\";\nadd(peer(\"http://mon1:9464\"), #{ name: \"mon 1\" });",
    );
    assert_err(
        &e,
        1,
        7,
        &["config.standby_for: no check named \"mon1\"", "add(peer("],
    );
    // A name two targets share: say which.
    let e = err("config.standby_for = \"mon\";\n\
         add(peer(\"http://mon1:9464\"), #{ name: \"mon\", target_name: \"a\" });\n\
         add(peer(\"http://mon2:9464\"), #{ name: \"mon\", target_name: \"b\" });");
    assert_err(
        &e,
        1,
        7,
        &["2 checks are named \"mon\"", "\"mon on a\", \"mon on b\""],
    );
    ok("config.standby_for = \"mon on b\";\n\
         add(peer(\"http://mon1:9464\"), #{ name: \"mon\", target_name: \"a\" });\n\
         add(peer(\"http://mon2:9464\"), #{ name: \"mon\", target_name: \"b\" });");
}

#[test]
fn every_duration_above_one_hundred_years_is_refused_with_one_message() {
    const TOO_LONG: &str = "longer than the longest duration picomon accepts, 100 years";
    // 100 years and one second, as a number and in the human form.
    let secs = 3_155_760_001_u64;
    for (line, what) in [
        (format!("config.base_tick = {secs};"), "config.base_tick"),
        (
            format!("config.default_timeout = {secs};"),
            "config.default_timeout",
        ),
        (
            format!("config.emails.smtp_retry_timeout = {secs};"),
            "config.emails.smtp_retry_timeout",
        ),
        (
            format!("config.emails.report.every = {secs};"),
            "config.emails.report.every",
        ),
        (
            format!("config.default_renotify_every = {secs};"),
            "config.default_renotify_every",
        ),
        (
            "config.default_renotify_every = \"36526d\";".to_string(),
            "config.default_renotify_every",
        ),
        (
            "config.default_renotify_every = \"18446744073709551615s\";".to_string(),
            "config.default_renotify_every",
        ),
        (
            "config.emails.escalate = [#{ after: \"36526d\", to: [\"a@b.c\"] }];".to_string(),
            "config.emails.escalate",
        ),
        (
            format!("add(shell(\"true\"), #{{ timeout: {secs}.0 }});"),
            "option timeout",
        ),
        (
            "add(shell(\"true\"), #{ renotify_every: \"99999999999999999999d\" });".to_string(),
            "renotify_every",
        ),
    ] {
        let e = err(&line);
        assert_eq!(e.line, 1, "{line}: {e}");
        assert!(e.message.contains(what), "{line}: {e}");
        assert!(e.message.contains(TOO_LONG), "{line}: {e}");
    }
    // 100 years itself is accepted.
    let c = ok("config.default_renotify_every = \"36525d\";\nconfig.default_timeout = 3155760000;");
    assert_eq!(c.noise.renotify_every, 3_155_760_000);
}

#[test]
fn a_map_grown_key_by_key_is_limited_like_an_array() {
    let e = err("let m = #{};\nfor i in 0..10500 { m[\"k\" + i] = i; }\n");
    assert_eq!(e.line, 2, "{e}");
    assert!(e.message.contains("maps to 10000 entries"), "{e}");
    let e = err("fn grow() { let m = #{}; for i in 0..10500 { m[`k${i}`] = i; } }\ngrow();\n");
    assert!(e.message.contains("maps to 10000 entries"), "{e}");
    // Up to the limit is fine.
    ok("let m = #{};\nfor i in 0..10000 { m[\"k\" + i] = i; }\n");
}

/// 400 `print()`s of 512 KiB (and `debug()`s, and a run of empty lines):
/// the real process writes at most 64 KiB of them per run of the config and
/// says how much it left out, on `--check-config`, at start and at a reload
/// alike.
#[test]
fn print_and_debug_floods_are_capped_per_run_of_the_config() {
    const MAX_OUTPUT: usize = 10 * 1000 * 1000;
    let dir = tempfile::tempdir().unwrap();
    // `prints` of 512 KiB, a tenth as many debug()s, and empty lines.
    let flood = |name: &str, prints: usize| {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            format!(
                r#"config.state_dir = "{}/state";
let s = "x";
while s.len() < 512 * 1024 {{ s += s; }}
s = s.sub_string(0, 512 * 1024);
for i in 0..{prints} {{ print(s); }}
for i in 0..{debugs} {{ debug(s); }}
for i in 0..2000 {{ print(""); }}
"#,
                dir.path().display(),
                debugs = prints / 10
            ),
        )
        .unwrap();
        path.to_str().unwrap().to_string()
    };
    let bin = env!("CARGO_BIN_EXE_picomon");
    // Whether the script ends or its one second runs out first on a busy
    // machine, what it printed is capped the same.
    let cfg = flood("check.rhai", 400);
    let out = Command::new(bin)
        .args(["-c", &cfg, "--check-config", "-D"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let written = out.stdout.len() + out.stderr.len();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(written <= MAX_OUTPUT, "{written} bytes of output");
    assert_eq!(
        stderr.matches("more bytes were not logged").count(),
        1,
        "{}",
        &stderr[stderr.len().saturating_sub(2000)..]
    );
    assert!(
        stderr.contains("check.rhai: xxxx"),
        "print() is logged up to the cap"
    );

    // The daemon: the run at start and the run of a reload (a flood that
    // ends well within the second, so the config loads).
    let cfg = flood("daemon.rhai", 20);
    let err_path = dir.path().join("stderr");
    /// Killed if the test fails before it stops the daemon.
    struct Running(std::process::Child);
    impl Drop for Running {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child = Command::new(bin)
        .args(["-c", &cfg, "-D"])
        .env_remove("RUST_LOG")
        .stdout(std::fs::File::create(dir.path().join("stdout")).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let mut child = Running(child);
    let wait = |needle: &str, n: usize| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if std::fs::read_to_string(&err_path)
                .unwrap_or_default()
                .matches(needle)
                .count()
                >= n
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(&err_path).unwrap_or_default();
        let tail = &log[log.len().saturating_sub(2000)..];
        panic!("{needle:?} {n} times in the daemon's log: {tail}");
    };
    wait("picomon started", 1);
    unsafe { libc::kill(child.0.id() as i32, libc::SIGHUP) };
    wait("config reloaded", 1);
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let _ = child.0.wait();
    let stderr = std::fs::read_to_string(&err_path).unwrap();
    let stdout = std::fs::metadata(dir.path().join("stdout")).unwrap().len() as usize;
    assert!(
        stderr.len() + stdout <= MAX_OUTPUT,
        "{} bytes of output",
        stderr.len() + stdout
    );
    assert_eq!(stderr.matches("more bytes were not logged").count(), 2);
}

#[test]
fn every_check_of_this_machine_names_it_the_same_way() {
    let c = ok(r#"
add(plugin("check_dummy", ["0"]), #{ name: "p" });
add(shell("true"), #{ name: "s" });
add(disk("/"), #{ name: "d" });
add(load(), #{ name: "l" });
add(script("sc", || #{ status: "OK", output: "fine" }), #{ name: "sc" });
add(disk("/var"));
"#);
    let here = picomon::host::this_host();
    for spec in &c.checks {
        assert_eq!(&*spec.dest, here, "{}", spec.name);
    }
    // The identity of a native local check is what it was, so a state
    // file written before still finds its check.
    let unnamed = c.checks.last().unwrap();
    assert_eq!(&*unnamed.id, "disk:localhost:/var");
}
