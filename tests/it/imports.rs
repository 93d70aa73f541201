//! Coming from pcrunner, massive-passive, accre-monitor and connvitals:
//! their files imported and run end to end, and the structured results
//! their users read (`json_lines` records checked field by field).

use crate::support;

use std::fs;
use std::process::{Command, Stdio};

use support::{picomon_bin, read};

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
