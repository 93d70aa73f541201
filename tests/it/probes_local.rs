//! ping (both socket kinds, both families, and no privilege at all), load,
//! pressure, disk and script probes on this machine.

use crate::support;

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use picomon::config::options::Opts;
use picomon::config::probes::local;
use picomon::model::{Probe, Status};
use picomon::run::probe::pressure::Scope;
use support::probes::*;

const RANGE: &str = "/proc/sys/net/ipv4/ping_group_range";

/// Puts `ping_group_range` back as it was, even when the test fails.
struct RestoreRange(String);

impl Drop for RestoreRange {
    fn drop(&mut self) {
        let _ = std::fs::write(RANGE, &self.0);
    }
}

fn set_range(v: &str) {
    std::fs::write(RANGE, v).unwrap_or_else(|e| panic!("cannot write {RANGE}: {e}"));
}

/// Run by `ping_through_both_socket_kinds` as `nobody`, where neither socket
/// kind is allowed.
#[test]
#[ignore = "run as nobody by ping_through_both_socket_kinds"]
fn ping_helper_without_privilege() {
    let o = expect_check(&localhost(), "ping4(h)", Status::Unknown, &[]);
    assert!(
        o.summary.contains("net.ipv4.ping_group_range") && o.summary.contains("CAP_NET_RAW"),
        "{}",
        o.summary
    );
}

#[test]
fn ping_through_both_socket_kinds() {
    let original = std::fs::read_to_string(RANGE).expect("read ping_group_range");
    let _restore = RestoreRange(original.clone());
    let h = localhost();

    // Nobody, with datagram ICMP sockets closed to every group: UNKNOWN
    // with the fix.
    set_range("1 0");
    run_test_as_nobody(module_path!(), "ping_helper_without_privilege");

    // Datagram sockets, allowed for every group.
    set_range("0 2147483647");
    for ctor in ["ping4", "ping6"] {
        let o = expect_check(
            &h,
            &format!(r#"{ctor}(h, #{{ socket: "dgram", count: 3, interval: 0.05 }})"#),
            Status::Ok,
            &["3 of 3 replies, datagram socket"],
        );
        assert_eq!(perf_value(&o, "pl"), Some(0.0));
        let rta = perf_value(&o, "rta").expect("rta");
        let (min, max) = (
            perf_value(&o, "rtmin").unwrap(),
            perf_value(&o, "rtmax").unwrap(),
        );
        assert!(
            min <= rta && rta <= max && max < 5000.0,
            "{min} {rta} {max}"
        );
        assert!(perf_value(&o, "stddev").is_some());
    }
    drop(_restore);
    assert_eq!(std::fs::read_to_string(RANGE).unwrap(), original);

    // Raw sockets (we are root here).
    for ctor in ["ping4", "ping6"] {
        expect_check(
            &h,
            &format!(r#"{ctor}(h, #{{ socket: "raw", count: 2, interval: 0.05 }})"#),
            Status::Ok,
            &["2 of 2 replies, raw socket"],
        );
    }
}

#[test]
fn ping_thresholds_like_check_ping() {
    let h = localhost();
    // every round trip is >= 0 ms, so an rta limit of 0 always hits
    expect_check(
        &h,
        r#"ping4(h, #{ warning: "0,50%", critical: "5000,100%", interval: 0.05 })"#,
        Status::Warning,
        &[],
    );
    expect_check(
        &h,
        r#"ping6(h, #{ critical: "0,100%", interval: 0.05 })"#,
        Status::Critical,
        &[],
    );
    let e = eval_def(&h, r#"ping4(h, #{ warning: "100" })"#).unwrap_err();
    assert!(e.contains("`warning`") && e.contains("RTA,LOSS%"), "{e}");
    let e = eval_def(&h, r#"ping4(h, #{ socket: "icmp" })"#).unwrap_err();
    assert!(e.contains("\"auto\", \"dgram\", \"raw\""), "{e}");
    let e = eval_def(&h, r#"ping4(h, #{ count: 0 })"#).unwrap_err();
    assert!(e.contains("`count`") && e.contains("out of range"), "{e}");
    let e = eval_def(&h, "ping4(h, #{ count: 1.5 })").unwrap_err();
    assert!(e.contains("`count` must be an integer"), "{e}");
}

#[test]
fn load_reads_the_averages_and_applies_limits() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("loadavg");
    std::fs::write(&file, "5.00 4.00 3.00 2/345 6789\n").unwrap();
    let probe = |map: &str| {
        let m = engine().eval::<rhai::Map>(map).unwrap();
        let mut p = local::load(&Opts::new("load", m, local::LOAD).unwrap()).unwrap();
        p.source = file.display().to_string();
        p.run(Duration::from_secs(5))
    };
    let o = probe("#{ warning: 10 }");
    assert_eq!(o.status, Status::Ok, "{o:?}");
    assert!(o.summary.contains("load average: 5, 4, 3"), "{}", o.summary);
    assert_eq!(perf_value(&o, "load15"), Some(3.0));
    assert_eq!(probe("#{ warning: [6, 3.5, 10] }").status, Status::Warning);
    // No limits: per CPU, warning 2, 1.5, 1.25 and critical 4, 3, 2.5.
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    let cpus = picomon::run::probe::load::count_cpus(&online).unwrap() as f64;
    let per_cpu = [5.0, 4.0, 3.0].map(|l| l / cpus);
    let over = |limits: [f64; 3]| per_cpu.iter().zip(limits).any(|(l, m)| *l > m);
    let want = if over([4.0, 3.0, 2.5]) {
        Status::Critical
    } else if over([2.0, 1.5, 1.25]) {
        Status::Warning
    } else {
        Status::Ok
    };
    let o = probe("#{}");
    assert_eq!(o.status, want, "{cpus} CPUs: {o:?}");
    assert!(
        o.summary.contains(&format!("per CPU ({cpus} CPUs)")),
        "{}",
        o.summary
    );
    assert!(
        perf_value(&o, "load1").is_some_and(|l| (l - per_cpu[0]).abs() < 1e-5),
        "{o:?}"
    );
    // Absolute limits still read as written; per_cpu divides first.
    assert_eq!(probe("#{ warning: [4.5, 9, 9] }").status, Status::Warning);
    assert_eq!(
        probe("#{ warning: 1, critical: [10, 10, 2] }").status,
        Status::Critical
    );
    assert_eq!(probe("#{ warning: [6, 5, 4] }").status, Status::Ok);

    // The real /proc/loadavg: whatever the host's load, it is read and
    // rated (the status depends on the host, so it is not asserted).
    let o = check(&localhost(), "load()");
    assert_ne!(o.status, Status::Unknown, "{o:?}");
    assert!(o.summary.contains("load average per CPU"), "{}", o.summary);
    assert!(perf_value(&o, "load1").is_some_and(|l| l >= 0.0));
    let o = expect_check(
        &localhost(),
        "load(#{ warning: 1e9, critical: 2e9 })",
        Status::Ok,
        &[],
    );
    assert!(perf_value(&o, "load15").is_some_and(|l| l >= 0.0));
    let e = eval_def(&localhost(), "load(#{ warning: [1, 2] })").unwrap_err();
    assert!(e.contains("list of three numbers"), "{e}");
}

#[test]
fn disk_free_space_matches_df() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().display().to_string();
    let h = localhost();
    let o = expect_check(
        &h,
        &format!(
            r#"disk("{path}", #{{ warning: 0, critical: 0, inode_warning: 0, inode_critical: 0 }})"#
        ),
        Status::Ok,
        &[],
    );
    let free = perf_value(&o, "free").expect("free perfdata");
    let df = Command::new("df")
        .args(["--output=pcent", &path])
        .output()
        .unwrap();
    let used: f64 = String::from_utf8_lossy(&df.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .trim_end_matches('%')
        .parse()
        .unwrap();
    assert!(
        (free - (100.0 - used)).abs() <= 2.0,
        "probe {free}% free, df {used}% used"
    );

    // a limit above the free space alerts
    expect_check(
        &h,
        &format!(
            r#"disk("{path}", #{{ warning: "100%", critical: 0, inode_warning: 0, inode_critical: 0 }})"#
        ),
        Status::Warning,
        &[],
    );
    expect_check(
        &h,
        &format!(r#"disk("{path}", #{{ warning: 100, critical: 100 }})"#),
        Status::Critical,
        &[],
    );

    expect_check(
        &h,
        r#"disk("/no/such/place")"#,
        Status::Unknown,
        &["cannot stat /no/such/place"],
    );
    let e = eval_def(&h, r#"disk("/", #{ warning: "lots" })"#).unwrap_err();
    assert!(e.contains("`warning`") && e.contains("percentage"), "{e}");
    let e = eval_def(&h, r#"disk("/", #{ warning: 5, critical: 10 })"#).unwrap_err();
    assert!(e.contains("critical must be the smaller"), "{e}");
    let e = eval_def(&h, r#"disk("var")"#).unwrap_err();
    assert!(e.contains("must be absolute"), "{e}");
}

#[test]
fn script_returns_status_output_and_data() {
    let h = localhost();
    let o = expect_check(
        &h,
        r#"script("queue", || #{ status: "WARNING", output: "5 waiting", data: #{ queue: 5, note: "slow" } })"#,
        Status::Warning,
        &[],
    );
    assert_eq!(o.summary, "SCRIPT WARNING - queue: 5 waiting");
    assert_eq!(perf_value(&o, "queue"), Some(5.0));
    assert_eq!(o.long_output, "note: slow");

    // captured variables and the config's own functions work on the pool
    let o = expect_check(
        &h,
        r#"fn double(x) { x * 2 }
           let limit = 10;
           script("captured", || #{ status: if double(limit) > 15 { 2 } else { 0 }, output: `got ${double(limit)}` })"#,
        Status::Critical,
        &[],
    );
    assert!(o.summary.ends_with("captured: got 20"), "{}", o.summary);

    expect_check(
        &h,
        r#"script("bad", || 42)"#,
        Status::Unknown,
        &["must return #{ status, output, data }"],
    );
    expect_check(
        &h,
        r#"script("oops", || { let x = 1 / 0; #{ status: 0 } })"#,
        Status::Unknown,
        &["script error"],
    );
}

#[test]
fn script_endless_loop_ends_as_unknown() {
    let h = localhost();
    let d = def(
        &h,
        r#"script("spin", || { loop { } }, #{ max_operations: 10000 })"#,
    );
    let o = run(&d, Duration::from_secs(20));
    assert_eq!(o.status, Status::Unknown, "{o:?}");
    assert!(
        o.summary.contains("script exceeded 10000 operations"),
        "{}",
        o.summary
    );

    let d = def(
        &h,
        r#"script("spin", || { loop { } }, #{ max_operations: 1000000000 })"#,
    );
    let o = run_for_1s(&d);
    assert_eq!(o.status, Status::Unknown, "{o:?}");
    assert!(
        o.summary.contains("script timed out after 1 s"),
        "{}",
        o.summary
    );
}

#[test]
fn script_helpers_reach_files_ports_and_http() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("status.txt");
    std::fs::write(&file, "all ok\n").unwrap();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = l.local_addr().unwrap().port();
    let closed = {
        let c = TcpListener::bind("127.0.0.1:0").unwrap();
        c.local_addr().unwrap().port()
    };
    let srv = Peer::start("http server", python("http_server.py", &["127.0.0.1"]));
    let h = localhost();
    let o = expect_check(
        &h,
        &format!(
            r#"script("helpers", || {{
                let t = read_file("{f}");
                let age = file_age("{f}");
                let r = http_get("http://127.0.0.1:{web}/");
                let up = tcp_connect("127.0.0.1", {open});
                let down = tcp_connect("127.0.0.1", {closed});
                let ok = t.contains("all ok") && age >= 0.0 && age < 3600.0
                         && r.status == 200 && r.body.contains("Welcome") && up && !down;
                #{{ status: if ok {{ "OK" }} else {{ "CRITICAL" }}, output: `${{r.status}} ${{up}} ${{down}}`, data: #{{ age: age }} }}
            }})"#,
            f = file.display(),
            web = srv.port
        ),
        Status::Ok,
        &["helpers: 200 true false"],
    );
    assert!(perf_value(&o, "age").is_some());

    expect_check(
        &h,
        r#"script("missing", || #{ status: 0, output: read_file("/no/such/file") })"#,
        Status::Unknown,
        &["read_file(/no/such/file)"],
    );
    drop(l);
}

/// `pressure()` over fixture PSI files: the default limits, limits per
/// resource, the chosen average, perfdata, and no PSI at all.
#[test]
fn pressure_rates_psi_files() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write(
        "cpu",
        "some avg10=1.00 avg60=99.61 avg300=91.61 total=751276217\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
    );
    write(
        "memory",
        "some avg10=0.50 avg60=12.25 avg300=0.18 total=7422658\nfull avg10=0.00 avg60=3.00 avg300=0.01 total=2112566\n",
    );
    write(
        "io",
        "some avg10=0.00 avg60=0.01 avg300=0.15 total=7479649\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=2112566\n",
    );
    let probe = |map: &str| {
        let m = engine().eval::<rhai::Map>(map).unwrap();
        let o = Opts::new("pressure", m, local::PRESSURE).unwrap();
        let mut p = local::pressure(&o).unwrap();
        p.scope = Scope::System(dir.path().to_path_buf());
        p.run(Duration::from_secs(5))
    };
    // Defaults: CPU is not rated, memory 12.25% > 10 warns.
    let o = probe("#{}");
    assert_eq!(o.status, Status::Warning, "{o:?}");
    assert!(
        o.summary.starts_with(
            "PRESSURE WARNING - some avg60: cpu 99.61%, memory 12.25% (WARNING), io 0.01% (system, "
        ),
        "{}",
        o.summary
    );
    assert_eq!(perf_value(&o, "cpu_some"), Some(99.61));
    assert_eq!(perf_value(&o, "memory_full"), Some(3.0));
    assert_eq!(perf_value(&o, "io_some"), Some(0.01));
    assert_eq!(perf_value(&o, "cpu_full"), None);
    let text = o.perfdata.iter().map(|p| p.to_string()).collect::<Vec<_>>();
    assert!(
        text.contains(&"memory_some=12.25%;10;30;0;100".to_string()),
        "{text:?}"
    );

    assert_eq!(probe("#{ avg: 10 }").status, Status::Ok);
    assert_eq!(
        probe("#{ resources: [\"cpu\"], critical: #{ cpu: \"~:90\" } }").status,
        Status::Critical
    );
    let o = probe("#{ resources: \"io\", warning: 0.005, critical: \"@0:0.001\" }");
    assert_eq!(o.status, Status::Warning, "{o:?}");
    assert_eq!(o.perfdata.len(), 2, "{o:?}");

    // Where the kernel has no PSI the files are missing.
    std::fs::remove_file(dir.path().join("memory")).unwrap();
    let o = probe("#{}");
    assert_eq!(o.status, Status::Unknown, "{o:?}");
    assert!(
        o.summary.contains("memory")
            && o.summary.contains("CONFIG_PSI=y")
            && o.summary.contains("psi=1"),
        "{}",
        o.summary
    );

    for (bad, why) in [
        (
            "pressure(#{ resources: [\"disk\"] })",
            "\"disk\" is not one of",
        ),
        ("pressure(#{ resources: [] })", "at least one"),
        ("pressure(#{ avg: 30 })", "not 10, 60 or 300"),
        ("pressure(#{ warning: #{ gpu: 1 } })", "`gpu` is not one of"),
        ("pressure(#{ critical: \"5:1\" })", "start above its end"),
        (
            "pressure(#{ cgroup: \"../x\" })",
            "neither \"self\" nor a cgroup path",
        ),
        ("pressure(#{ every: 1 })", "unknown option `every`"),
    ] {
        let e = eval_def(&localhost(), bad).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
    }
}

/// `pressure()` on this machine through `picomon -1`: the system's or the
/// container's PSI, and picomon's own cgroup's.
#[test]
fn pressure_runs_on_this_machine() {
    let sb = support::Sandbox::new();
    let cfg = sb.config(
        "add(pressure());\nadd(pressure(#{ cgroup: \"self\", avg: 10 }), #{ name: \"own cgroup\" });\n",
    );
    let out = sb.run(&["-c", cfg.to_str().unwrap(), "-1"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !std::path::Path::new("/proc/pressure/cpu").exists() {
        // A kernel without PSI: both say which option is missing.
        assert_eq!(stdout.matches("CONFIG_PSI=y").count(), 2, "{stdout}");
        eprintln!("skipped the PSI readings: this kernel has no /proc/pressure");
        return;
    }
    // The two probes, picomon's own state_dir check and the tally.
    assert_eq!(stdout.lines().count(), 4, "{stdout}");
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains(" pressure on ") || l.contains("own cgroup"))
        .collect();
    let mut seen = 0;
    for line in &lines {
        assert!(!line.starts_with("UNKNOWN"), "{stdout}");
        let (title, text) = line.split_once(": PRESSURE ").expect(line);
        let window = if title.contains("own cgroup") {
            "avg10"
        } else {
            "avg60"
        };
        let readings = text
            .split_once(&format!(" - some {window}: "))
            .map(|(_, r)| r)
            .unwrap_or_else(|| panic!("{line}"));
        for resource in ["cpu ", ", memory ", ", io "] {
            assert!(readings.contains(resource), "{line}");
        }
        seen += 1;
    }
    assert_eq!(seen, 2);
    let own = lines.iter().find(|l| l.contains("own cgroup")).unwrap();
    assert!(own.contains("(cgroup /"), "{own}");
}
