//! The probe constructors as a real config file uses them, through
//! `picomon::config::load`: identities, and bad options reported with the
//! file, line and column.

use std::time::Duration;

use picomon::model::{CheckKind, Status};

fn load(text: &str) -> Result<picomon::config::Config, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("probes.rhai");
    std::fs::write(&path, text).unwrap();
    picomon::config::load(&path).map_err(|e| e.to_string())
}

#[test]
fn config_with_probes_loads_and_runs() {
    let cfg = load(
        r#"let me = host("localhost", #{ ipv4: "127.0.0.1", ipv6: "::1" });
add(ping4(me, #{ interval: 0.05 }));
add(tcp(me, 9, #{ ip_version: 6 }), #{ name: "discard v6" });
add(load(#{ warning: 1e9 }));
add(pressure(#{ warning: 100, critical: 100 }));
add(disk("/", #{ warning: 0, critical: 0, inode_warning: 0, inode_critical: 0 }));
add(trace6(me));
add(script("always fine", || #{ status: "OK", output: "fine" }));
"#,
    )
    .unwrap();
    let ids: Vec<&str> = cfg.checks.iter().map(|c| c.id.as_ref()).collect();
    assert_eq!(
        ids,
        [
            "ping4:localhost:interval=0.05",
            "discard v6",
            "load:localhost:warning=1000000000.0",
            "pressure:localhost:critical=100,warning=100",
            "disk:localhost:/:critical=0,inode_critical=0,inode_warning=0,warning=0",
            "trace6:localhost",
            "script:localhost:always fine",
        ]
    );
    for c in &cfg.checks {
        let CheckKind::Probe(p) = &c.kind else {
            panic!("{} is not a probe", c.id);
        };
        let o = p.run(Duration::from_secs(20));
        // nothing listens on port 9 of ::1
        let want = if &*c.id == "discard v6" {
            Status::Critical
        } else {
            Status::Ok
        };
        assert_eq!(o.status, want, "{}: {o:?}", c.id);
    }
    assert_eq!(&*cfg.checks[6].name, "always fine");
}

#[test]
fn bad_probe_options_name_file_line_and_column() {
    let e = load("let me = host(\"web1\");\n\nadd(https4(me, #{ vhost: \"www.example.org\", statuss: 200 }));\n")
        .unwrap_err();
    assert!(e.contains("probes.rhai:3:"), "{e}");
    assert!(
        e.contains("https4: unknown option `statuss`") && e.contains("status"),
        "{e}"
    );
    let e =
        load("let me = host(\"web1\");\nadd(ping4(me, #{ warning: \"fast\" }));\n").unwrap_err();
    assert!(
        e.contains("probes.rhai:2:") && e.contains("`warning`"),
        "{e}"
    );
}
