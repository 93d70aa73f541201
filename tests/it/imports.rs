//! Coming from pcrunner, massive-passive, accre-monitor and connvitals:
//! their files imported and run end to end, and the structured results
//! their users read (`json_lines` records checked field by field).

use crate::support;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use picomon::config::{self, Config};
use picomon::model::CheckKind;
use support::ports::reserve_port;
use support::{fixture, picomon_bin, read};

use crate::outputs::Receiver;

fn load(dir: &Path, src: &str) -> Result<Config, String> {
    config::load_str(&dir.join("config.rhai"), src).map_err(|e| e.to_string())
}

fn check<'a>(cfg: &'a Config, name: &str) -> &'a picomon::model::CheckSpec {
    cfg.checks
        .iter()
        .find(|c| &*c.name == name)
        .unwrap_or_else(|| panic!("no check {name}"))
}

fn json_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    read(path)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect()
}

fn record<'a>(lines: &'a [serde_json::Value], check: &str) -> &'a serde_json::Value {
    lines
        .iter()
        .find(|v| v["check"] == check)
        .unwrap_or_else(|| panic!("no record of {check}: {lines:?}"))
}

/// accre-monitor's checks return data, connvitals reports ping statistics:
/// `picomon -1 --outputs` with `json_lines` gives both, with perfdata
/// parsed. Run in a network namespace of its own, where 198.51.100.2 would
/// be on the far side of a veth pair with nobody there: nothing comes back.
#[test]
fn json_lines_records_carry_parsed_perfdata_and_data() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out_path = tmp.path().join("results.jsonl");
    let cfg = tmp.path().join("vitals.rhai");
    fs::write(
        &cfg,
        format!(
            r#"
config.state_dir = "{dir}/state";
config.outputs = [json_lines("{out}")];
let lo = host("lo", #{{ ipv4: "127.0.0.1" }});
let gone = host("gone", #{{ ipv4: "198.51.100.2" }});
add(plugin("check_dummy", ["1", "half full|'/var'=80%;70;90;0;100 used=3GB;;;0"]), #{{ name: "disk", target_name: "web1" }});
add(script("queue", || #{{ status: "OK", output: "3 jobs", data: #{{ jobs: 3, names: ["a", "b"], ok: true }} }}), #{{ name: "queue" }});
add(ping4(lo, #{{ count: 2, interval: 0.05 }}), #{{ name: "ping lo" }});
add(ping4(gone, #{{ count: 2, interval: 0.05 }}), #{{ name: "ping gone", timeout: 2 }});
add(trace4(lo), #{{ name: "trace lo" }});
"#,
            dir = tmp.path().display(),
            out = out_path.display()
        ),
    )
    .unwrap();
    let script = format!(
        "ip link set lo up && ip link add v0 type veth peer name v1 && ip link set v0 up && \
         ip link set v1 up && ip addr add 198.51.100.1/24 dev v0 && exec {} -c {} -1 --outputs",
        picomon_bin().display(),
        cfg.display()
    );
    let run = Command::new("unshare")
        .args(["-n", "sh", "-c", &script])
        .stdin(Stdio::null())
        .output()
        .expect("unshare -n");
    assert_eq!(run.status.code(), Some(2), "{run:?}");
    let lines = json_lines(&out_path);
    assert_eq!(lines.len(), 5, "{lines:?}");

    let disk = record(&lines, "disk");
    assert_eq!(disk["host"], "web1");
    assert_eq!(disk["status"], "WARNING");
    assert_eq!(disk["output"], "WARNING: half full");
    // As picomon writes perfdata back: quotes only where needed.
    assert_eq!(disk["perfdata_text"], "/var=80%;70;90;0;100 used=3GB;;;0");
    assert_eq!(
        disk["perfdata"],
        serde_json::json!([
            {"label": "/var", "value": 80.0, "uom": "%", "warn": "70", "crit": "90", "min": 0.0, "max": 100.0},
            {"label": "used", "value": 3.0, "uom": "GB", "warn": null, "crit": null, "min": 0.0, "max": null},
        ])
    );
    assert_eq!(disk["data"], serde_json::Value::Null);
    assert!(disk["time"].as_f64().unwrap() > 1.7e9, "{disk}");
    assert!(disk["duration"].as_f64().unwrap() >= 0.0, "{disk}");

    let queue = record(&lines, "queue");
    assert_eq!(queue["status"], "OK");
    assert_eq!(
        queue["data"],
        serde_json::json!({ "jobs": 3, "names": ["a", "b"], "ok": true })
    );
    assert_eq!(queue["perfdata"][0]["label"], "jobs");

    let lo = &record(&lines, "ping lo")["data"];
    assert_eq!(lo["loss"], 0.0, "{lo}");
    assert_eq!(lo["received"], 2, "{lo}");
    let (min, avg, max) = (
        lo["rtt_min"].as_f64().unwrap(),
        lo["rtt_avg"].as_f64().unwrap(),
        lo["rtt_max"].as_f64().unwrap(),
    );
    assert!(0.0 <= min && min <= avg && avg <= max, "{lo}");
    assert!(lo["rtt_std"].as_f64().unwrap() >= 0.0, "{lo}");

    let gone = record(&lines, "ping gone");
    assert_eq!(gone["status"], "CRITICAL", "{gone}");
    assert_eq!(
        gone["data"],
        serde_json::json!({ "rtt_min": -1.0, "rtt_avg": -1.0, "rtt_max": -1.0, "rtt_std": -1.0,
            "loss": 100.0, "sent": 2, "received": 0 })
    );

    let trace = &record(&lines, "trace lo")["data"];
    assert_eq!(trace["reached"], true, "{trace}");
    assert_eq!(trace["hops"][0]["hop"], 1, "{trace}");
    assert_eq!(trace["hops"][0]["address"], "127.0.0.1", "{trace}");
    assert!(trace["hops"][0]["rtt"].as_f64().unwrap() >= 0.0, "{trace}");
}

/// pcrunner's own example command file, run as pcrunner's cron job would:
/// `picomon -1 --outputs` posts each result to the NSCA-web receiver under
/// the file's names, for this machine, and exits with the worst status.
#[test]
fn pcrunner_command_file_runs_once_and_posts_like_pcrunner() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_held, port) = reserve_port();
    let rx = Receiver::start(tmp.path(), port, 400);
    fs::write(tmp.path().join("nsca.password"), "pass word&=1\n").unwrap();
    let cfg = tmp.path().join("pcrunner.rhai");
    fs::write(
        &cfg,
        format!(
            r#"
config.state_dir = "{dir}/state";
config.plugin_dirs = ["{fix}"];
config.outputs = [nsca_web("{url}", "picomon", "{dir}/nsca.password", #{{ max_line_size: 300 }})];
// Some of its checks sleep 10 s.
pcrunner_commands("{fix}/commands.txt", #{{ timeout: 30 }});
"#,
            dir = tmp.path().display(),
            fix = fixture("imports/pcrunner").display(),
            url = rx.url(),
        ),
    )
    .unwrap();
    let out = Command::new(picomon_bin())
        .args(["-c", cfg.to_str().unwrap(), "-1", "--outputs"])
        .stdin(Stdio::null())
        .output()
        .expect("picomon -1 --outputs");
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(rx.errors(), "");
    let mut lines = rx.lines();
    lines.sort_by(|a, b| a.split(';').nth(2).cmp(&b.split(';').nth(2)));
    assert_eq!(lines.len(), 16, "{lines:?}");
    let host = picomon::host::this_host();
    for (i, line) in lines.iter().enumerate() {
        let code = i % 4;
        let word = ["OK", "WARNING", "CRITICAL", "UNKNOWN"][code];
        let want = format!(
            "PROCESS_SERVICE_CHECK_RESULT;{host};CHECK_{:02};{code};{word}",
            i + 1
        );
        assert!(line.ends_with(&want), "{line} should end with {want}");
    }
}

/// Both of pcrunner's formats give the same checks; a mistake names its
/// file and line.
#[test]
fn pcrunner_yaml_and_text_give_the_same_checks_and_errors_name_file_and_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let fix = fixture("imports/pcrunner");
    let import = |file: &str| {
        load(
            tmp.path(),
            &format!("pcrunner_commands(\"{}/{file}\");", fix.display()),
        )
        .expect("imports")
    };
    let (text, yaml) = (import("commands.txt"), import("commands.yml"));
    let shape = |c: &Config| -> Vec<(String, String, bool)> {
        c.checks
            .iter()
            .map(|c| match &c.kind {
                CheckKind::Plugin(argv) => (
                    c.name.to_string(),
                    format!("{} {}", argv.program.display(), argv.args.join(" ")),
                    c.passive_host,
                ),
                other => panic!("{other:?}"),
            })
            .collect()
    };
    assert_eq!(shape(&text).len(), 16);
    assert_eq!(shape(&text), shape(&yaml));
    assert_eq!(shape(&text)[1].0, "CHECK_02");
    assert!(shape(&text)[1]
        .1
        .ends_with("check_dummy.py 1 WARNING -s 10"));

    // Relative to the config file; a HOST line is a host result.
    fs::write(
        tmp.path().join("mine.txt"),
        "HOST|gateway|check_ping -H '192.0.2.1' -w 100,20% -c 500,60%\n",
    )
    .unwrap();
    let c = load(tmp.path(), "pcrunner_commands(\"mine.txt\");").expect("loads");
    let gw = check(&c, "gateway");
    assert!(gw.passive_host);
    fs::write(
        tmp.path().join("bad.yml"),
        "---\n- name: a\n  command: x\n- name: b\n  comand: y\n",
    )
    .unwrap();
    let e = load(tmp.path(), "pcrunner_commands(\"bad.yml\");").unwrap_err();
    assert!(e.contains("bad.yml:5: unknown key `comand`"), "{e}");
    fs::write(tmp.path().join("bad.txt"), "SERVICE|a|x\nSERVICE|b\n").unwrap();
    let e = load(tmp.path(), "pcrunner_commands(\"bad.txt\");").unwrap_err();
    assert!(
        e.contains("bad.txt:2: expected SERVICE|name|command"),
        "{e}"
    );
    let e = load(tmp.path(), "pcrunner_commands(\"none.txt\");").unwrap_err();
    assert!(e.contains("cannot read") && e.contains("none.txt"), "{e}");
}

/// massive-passive's documented check files: seconds become ticks, the
/// cron-like map a `when` window, env, type, host name and max_instances
/// carry over; run once, the results reach the outputs under those names.
#[test]
fn massive_passive_checks_directory_imports_and_runs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = fixture("imports/massive-passive/checks.d");
    let src = format!(
        "config.base_tick = 5;\nconfig.state_dir = \"{t}/state\";\n\
         config.outputs = [json_lines(\"{t}/results.jsonl\")];\n\
         massive_passive_checks(\"{d}\");\n",
        t = tmp.path().display(),
        d = dir.display()
    );
    let c = load(tmp.path(), &src).expect("imports");
    assert_eq!(c.checks.len(), 3);
    let first = check(&c, "First passive check");
    assert_eq!(first.every, 5);
    assert_eq!(first.max_instances, 3);
    assert_eq!(
        first.env(),
        [("TESTERTEST".to_string(), "moep!".to_string())]
    );
    assert_eq!(first.host_name(), Some("this.is.a.hostname"));
    assert_eq!(&*first.dest, "this.is.a.hostname");
    assert!(!first.passive_host);
    let office = check(&c, "Office hours check");
    let when = office.when().expect("a when window");
    assert_eq!(when.hours, (9..=17).collect::<Vec<u8>>());
    assert_eq!(when.minutes, [0]);
    assert_eq!(when.days.len(), 19);
    assert!(when.start.is_some());
    assert_eq!(office.every, 12, "once in its minute at a 5 s tick");
    let gw = check(&c, "gateway");
    assert!(gw.passive_host);
    assert_eq!(gw.every, 1);

    let cfg = tmp.path().join("mp.rhai");
    fs::write(&cfg, &src).unwrap();
    let out = Command::new(picomon_bin())
        .args(["-c", cfg.to_str().unwrap(), "-1", "--outputs"])
        .stdin(Stdio::null())
        .output()
        .expect("picomon -1 --outputs");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let lines = json_lines(&tmp.path().join("results.jsonl"));
    let first = record(&lines, "First passive check");
    assert_eq!(first["host"], "this.is.a.hostname");
    assert_eq!(first["status"], "OK");
    // Single quotes: the shell leaves `$TESTERTEST` alone, as it did under
    // massive-passive.
    assert_eq!(
        first["output"],
        "hello this is an environment test: $TESTERTEST"
    );
    let gw = lines
        .iter()
        .find(|v| v["host"] == "gw.example.org")
        .expect("the host result");
    assert_eq!(gw["check"], serde_json::Value::Null);
    assert_eq!(gw["status"], "CRITICAL");
    assert_eq!(gw["output"], "PING CRITICAL - no answer from 192.0.2.1");
}

#[test]
fn massive_passive_mistakes_name_the_file_and_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path().join("checks.d");
    fs::create_dir(&d).unwrap();
    let err = |base_tick: u32, body: &str| {
        fs::write(d.join("c.json"), body).unwrap();
        load(
            tmp.path(),
            &format!("config.base_tick = {base_tick};\nmassive_passive_checks(\"checks.d\");"),
        )
        .unwrap_err()
    };
    let ok = "{\n  \"check_description\": \"x\",\n  \"command\": \"true\",\n  \"interval\": 25\n}";
    let e = err(60, ok);
    assert!(
        e.contains("c.json:4: interval 25 s is not a multiple of config.base_tick (60 s)"),
        "{e}"
    );
    let e = err(
        5,
        "{\n  \"check_description\": \"x\",\n  \"interval\": 5\n  \"command\": \"true\"\n}",
    );
    assert!(
        e.contains("c.json:4:") && e.contains("not valid JSON"),
        "{e}"
    );
    let e = err(
        5,
        &ok.replace("\"interval\": 25", "\"interval\": {\"hour\": \"9-25\"}"),
    );
    assert!(e.contains("c.json:4: interval.hour"), "{e}");
    let e = err(5, &ok.replace("\"command\"", "\"comand\""));
    assert!(e.contains("c.json:3: unknown key \"comand\""), "{e}");
    let e = err(5, &ok.replace("25", "25,\n  \"check_type\": \"passive\""));
    assert!(e.contains("c.json:5: check_type \"passive\""), "{e}");
}
