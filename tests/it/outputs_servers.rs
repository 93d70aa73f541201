//! Passive outputs against the real monitoring servers from Debian, each
//! run by the test as a process of its own in the test's temp dir, on
//! loopback: Nagios 4 reading its command file, Icinga 2 with its API on
//! TLS with a CA made for the test.

use crate::support;

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use picomon::clock::now_unix_micros;
use picomon::model::Status;
use picomon::passive::{
    ClientTls, OutputKind, OutputSpec, Outputs, PassiveResult, DEFAULT_SPOOL_MAX_BYTES,
};
use support::certs::{Ca, Key};
use support::ports::reserve_port;
use support::{fixture, read, wait_for};

/// Servers start slowly on a loaded 2-core machine.
const SLOW: Duration = Duration::from_secs(120);

fn spec(kind: OutputKind, name: &str) -> OutputSpec {
    OutputSpec {
        kind,
        name: Some(name.into()),
        spool_max_bytes: DEFAULT_SPOOL_MAX_BYTES,
    }
}

fn now_result(
    host: &str,
    service: Option<&str>,
    status: Status,
    output: &str,
    perf: &str,
) -> PassiveResult {
    PassiveResult {
        time: now_unix_micros(),
        host: host.into(),
        service: service.map(str::to_string),
        status,
        output: output.into(),
        perfdata: perf.into(),
        duration: Duration::from_millis(120),
        data: None,
    }
}

fn user_and_group() -> (String, String) {
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .expect("current user name");
    let group = nix::unistd::Group::from_gid(nix::unistd::getgid())
        .ok()
        .flatten()
        .map(|g| g.name)
        .expect("current group name");
    (user, group)
}

/// A server process in its own process group, stopped (group and all)
/// when dropped.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    fn spawn(mut cmd: Command, log: PathBuf) -> Server {
        let out = fs::File::create(&log).expect("server log");
        let err = out.try_clone().expect("server log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {cmd:?}: {e} (see tests/install-and-test for the packages)")
            });
        Server { child, log }
    }

    fn log(&self) -> String {
        read(&self.log)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let pgid = -(self.child.id() as i32);
        // SAFETY: kill(2) on the process group we created.
        unsafe { libc::kill(pgid, libc::SIGTERM) };
        let exited = wait_for(Duration::from_secs(15), || {
            self.child.try_wait().ok().flatten()
        });
        if exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // SAFETY: as above; whatever is left of the group goes too.
        unsafe { libc::kill(pgid, libc::SIGKILL) };
    }
}

/// What both servers get after their disk result: a service WARNING
/// (web1/load) and a host result (web1 down).
fn submit_load_warning_and_host_down(outputs: &Outputs) {
    outputs.submit(&now_result(
        "web1",
        Some("load"),
        Status::Warning,
        "LOAD WARNING",
        "load1=5.2",
    ));
    outputs.submit(&now_result(
        "web1",
        None,
        Status::Critical,
        "PING CRITICAL - 100% loss",
        "",
    ));
}

/// `status.dat` blocks (`hoststatus { ... }`) as (type, key=value pairs).
fn status_blocks(text: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut blocks = Vec::new();
    let mut cur: Option<(String, Vec<(String, String)>)> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(kind) = line.strip_suffix(" {") {
            cur = Some((kind.to_string(), Vec::new()));
        } else if line == "}" {
            blocks.extend(cur.take());
        } else if let (Some(c), Some((k, v))) = (cur.as_mut(), line.split_once('=')) {
            c.1.push((k.to_string(), v.to_string()));
        }
    }
    blocks
}

fn field<'a>(block: &'a [(String, String)], key: &str) -> &'a str {
    block
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

#[test]
fn nagios_command_file_results_show_up_in_status_dat() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (user, group) = user_and_group();
    let cfg = read(&fixture("outputs/nagios.cfg"))
        .replace("@DIR@", &dir.display().to_string())
        .replace("@USER@", &user)
        .replace("@GROUP@", &group);
    fs::write(dir.join("nagios.cfg"), cfg).expect("nagios.cfg");
    fs::copy(
        fixture("outputs/nagios-objects.cfg"),
        dir.join("objects.cfg"),
    )
    .expect("objects");
    fs::create_dir(dir.join("checkresults")).expect("checkresults");
    let cmd_file = dir.join("nagios.cmd");

    // Nagios is not running yet: the result waits in the spool.
    let outputs = Outputs::start(
        &[spec(
            OutputKind::CommandFile {
                path: cmd_file.clone(),
                max_line_size: 4095,
            },
            "nagios",
        )],
        &dir.join("state"),
    )
    .expect("start outputs");
    outputs.submit(&now_result(
        "web1",
        Some("disk"),
        Status::Critical,
        "DISK CRITICAL - / 95% used\n/var: 97%; /home: 12%",
        "/=95%;80;90 /var=97%;80;90",
    ));
    let down = wait_for(SLOW, || {
        let s = outputs.status_lines().join("\n");
        s.contains("FAILING").then_some(s)
    })
    .expect("output failing while Nagios is down");
    assert!(down.contains("does not exist"), "{down}");
    assert!(down.contains("1 waiting"), "{down}");
    assert!(
        !cmd_file.exists(),
        "picomon must not create the command file"
    );

    let mut cmd = Command::new("nagios4");
    cmd.arg(dir.join("nagios.cfg")).current_dir(dir);
    let nagios = Server::spawn(cmd, dir.join("nagios.out"));
    wait_for(SLOW, || {
        fs::metadata(&cmd_file)
            .ok()
            .filter(|m| m.file_type().is_fifo())
    })
    .unwrap_or_else(|| panic!("Nagios did not create its command pipe:\n{}", nagios.log()));

    submit_load_warning_and_host_down(&outputs);
    assert!(outputs.flush(SLOW), "{:?}", outputs.status_lines());

    let found = wait_for(SLOW, || {
        let blocks = status_blocks(&read(&dir.join("status.dat")));
        let svc = |name: &str| {
            blocks
                .iter()
                .find(|(k, b)| k == "servicestatus" && field(b, "service_description") == name)
                .map(|(_, b)| b.clone())
        };
        let host = blocks
            .iter()
            .find(|(k, b)| k == "hoststatus" && field(b, "host_name") == "web1")
            .map(|(_, b)| b.clone())?;
        let (disk, load) = (svc("disk")?, svc("load")?);
        let ready = field(&disk, "current_state") == "2"
            && field(&load, "current_state") == "1"
            && field(&host, "current_state") == "1";
        ready.then_some((disk, load, host))
    });
    let (disk, load, host) = found.unwrap_or_else(|| {
        panic!(
            "results not in status.dat:\n{}\nnagios.log:\n{}",
            read(&dir.join("status.dat")),
            read(&dir.join("nagios.log"))
        )
    });
    assert_eq!(field(&disk, "plugin_output"), "DISK CRITICAL - / 95% used");
    assert_eq!(field(&disk, "long_plugin_output"), "/var: 97%; /home: 12%");
    assert_eq!(
        field(&disk, "performance_data"),
        "/=95%;80;90 /var=97%;80;90"
    );
    assert_eq!(field(&disk, "check_type"), "1", "a passive check");
    assert_eq!(field(&load, "plugin_output"), "LOAD WARNING");
    assert_eq!(field(&load, "performance_data"), "load1=5.2");
    assert_eq!(field(&host, "plugin_output"), "PING CRITICAL - 100% loss");
    let status = outputs.status_lines().join("\n");
    assert!(
        status.contains("0 waiting, 3 delivered, 0 dropped"),
        "{status}"
    );
}

/// Makes a CA (`ca.crt`) and a server certificate for 127.0.0.1 and `cn`
/// (`CN.crt`) signed by it.
fn make_certs(dir: &Path, cn: &str) {
    let ca = Ca {
        dir,
        name: "ca",
        ext: "crt",
        key: Key::Rsa,
        days: 2,
    };
    ca.make(&format!("picomon test CA for {cn}"));
    ca.sign(
        cn,
        cn,
        &format!("IP:127.0.0.1,DNS:{cn}"),
        "serverAuth,clientAuth",
    );
}

/// An agent for the test's own queries of the Icinga 2 API.
fn query_agent(ca: &Path) -> ureq::Agent {
    let pem = fs::read(ca).expect("ca");
    let roots: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item.expect("pem") {
            ureq::tls::PemItem::Certificate(c) => Some(c),
            _ => None,
        })
        .collect();
    ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(Arc::new(roots)))
                .build(),
        )
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .new_agent()
}

#[test]
fn icinga2_api_results_show_up_in_objects_services() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (user, group) = user_and_group();
    // Reserved until Icinga's API listener (SO_REUSEPORT) takes it over.
    let (_held, port) = reserve_port();
    for sub in ["etc", "data", "log", "cache", "spool", "run"] {
        fs::create_dir_all(dir.join(sub)).expect("mkdir");
    }
    let certs = dir.join("data/certs");
    make_certs(&certs, "picomon-test");
    make_certs(&dir.join("other-ca"), "someone-else");
    let conf = read(&fixture("outputs/icinga2.conf")).replace("@PORT@", &port.to_string());
    fs::write(dir.join("etc/icinga2.conf"), conf).expect("icinga2.conf");
    let pw = dir.join("icinga.password");
    fs::write(&pw, "icinga s3cret\n").expect("password file");

    let mut cmd = Command::new("icinga2");
    cmd.arg("daemon")
        .arg("-c")
        .arg(dir.join("etc/icinga2.conf"))
        .current_dir(dir);
    for (k, sub) in [
        ("ConfigDir", "etc"),
        ("DataDir", "data"),
        ("LogDir", "log"),
        ("CacheDir", "cache"),
        ("SpoolDir", "spool"),
        ("InitRunDir", "run"),
    ] {
        cmd.arg(format!("-D{k}={}", dir.join(sub).display()));
    }
    cmd.arg(format!("-DRunAsUser={user}"))
        .arg(format!("-DRunAsGroup={group}"));
    let icinga = Server::spawn(cmd, dir.join("icinga2.out"));

    // Submitted before Icinga listens: the sender retries until it does.
    let url = format!("https://127.0.0.1:{port}");
    let icinga_spec = |ca: &Path, name: &str| {
        spec(
            OutputKind::Icinga2Api {
                url: url.clone(),
                user: "picomon".into(),
                password_file: pw.clone(),
                ca: Some(ca.to_path_buf()),
                timeout: Duration::from_secs(20),
                client: None,
            },
            name,
        )
    };
    let outputs = Outputs::start(
        &[icinga_spec(&certs.join("ca.crt"), "icinga")],
        &dir.join("state"),
    )
    .expect("start outputs");
    outputs.submit(&now_result(
        "web1",
        Some("disk"),
        Status::Critical,
        "DISK CRITICAL - / 95% used\n/var: 97%",
        "'/ used'=95%;80;90 /var=97%;80;90",
    ));
    // Refused for good (no such service); must not hold up what follows.
    outputs.submit(&now_result("web1", Some("nosuch"), Status::Ok, "x", ""));
    submit_load_warning_and_host_down(&outputs);
    assert!(
        outputs.flush(SLOW),
        "{:?}\n{}",
        outputs.status_lines(),
        icinga.log()
    );
    let status = outputs.status_lines().join("\n");
    assert!(status.contains("0 waiting, 3 delivered"), "{status}");
    assert!(status.contains("1 refused by the server"), "{status}");

    let agent = query_agent(&certs.join("ca.crt"));
    let auth = format!(
        "Basic {}",
        // "picomon:icinga s3cret"
        "cGljb21vbjppY2luZ2EgczNjcmV0"
    );
    let get = |path: &str| -> serde_json::Value {
        let body = agent
            .get(&format!("{url}{path}"))
            .header("Accept", "application/json")
            .header("Authorization", &auth)
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
            .into_body()
            .read_to_string()
            .expect("body");
        serde_json::from_str(&body).expect("json")
    };
    let services = get("/v1/objects/services");
    let svc = |name: &str| {
        service(&services, name)
            .map(|s| s["attrs"].clone())
            .unwrap_or_else(|| panic!("no {name} in {services}"))
    };
    let disk = svc("web1!disk");
    assert_eq!(disk["state"], 2.0, "{disk}");
    assert_eq!(
        disk["last_check_result"]["output"],
        "DISK CRITICAL - / 95% used\n/var: 97%"
    );
    assert_eq!(
        disk["last_check_result"]["performance_data"],
        serde_json::json!(["'/ used'=95%;80;90", "/var=97%;80;90"])
    );
    assert_eq!(disk["last_check_result"]["active"], false);
    let load = svc("web1!load");
    assert_eq!(load["state"], 1.0, "{load}");
    assert_eq!(load["last_check_result"]["output"], "LOAD WARNING");
    let hosts = get("/v1/objects/hosts");
    let host = &hosts["results"][0]["attrs"];
    assert_eq!(host["name"], "web1");
    assert_eq!(
        host["last_check_result"]["output"],
        "PING CRITICAL - 100% loss"
    );
    assert_eq!(host["state"], 1.0, "web1 DOWN: {host}");

    // A CA that did not sign Icinga's certificate: nothing is sent, the
    // result waits, and the dump says why.
    let wrong = Outputs::start(
        &[icinga_spec(&dir.join("other-ca/ca.crt"), "icinga-wrong-ca")],
        &dir.join("state"),
    )
    .expect("start outputs");
    wrong.submit(&now_result("web1", Some("load"), Status::Ok, "LOAD OK", ""));
    assert!(!wrong.flush(Duration::from_secs(3)));
    let status = wrong.status_lines().join("\n");
    assert!(status.contains("1 waiting"), "{status}");
    assert!(status.contains("UnknownIssuer"), "{status}");
    // Still WARNING: the result over the untrusted connection did not land.
    assert_eq!(svc_state(&get("/v1/objects/services"), "web1!load"), 1.0);

    // The ApiUser with `client_cn`: a client certificate signed by Icinga's
    // CA, and no password at all.
    let client_ca = |dir: &Path| {
        let ca = Ca {
            dir,
            name: "ca",
            ext: "crt",
            key: Key::Rsa,
            days: 2,
        };
        ca.sign(
            "picomon-client",
            "picomon-client",
            "DNS:picomon-client",
            "clientAuth",
        );
        ClientTls {
            cert: dir.join("picomon-client.crt"),
            key: dir.join("picomon-client.key"),
        }
    };
    let cert_spec = |client: ClientTls, name: &str| {
        spec(
            OutputKind::Icinga2Api {
                url: url.clone(),
                user: String::new(),
                password_file: PathBuf::new(),
                ca: Some(certs.join("ca.crt")),
                timeout: Duration::from_secs(20),
                client: Some(client),
            },
            name,
        )
    };
    let by_cert = Outputs::start(
        &[cert_spec(client_ca(&certs), "icinga-cert")],
        &dir.join("state"),
    )
    .expect("start outputs");
    by_cert.submit(&now_result(
        "web1",
        Some("disk"),
        Status::Ok,
        "DISK OK - sent with a client certificate",
        "",
    ));
    assert!(
        by_cert.flush(SLOW),
        "{:?}\n{}",
        by_cert.status_lines(),
        icinga.log()
    );
    let disk = service(&get("/v1/objects/services"), "web1!disk")
        .map(|s| s["attrs"].clone())
        .expect("web1!disk");
    assert_eq!(disk["state"], 0.0, "{disk}");
    assert_eq!(
        disk["last_check_result"]["output"],
        "DISK OK - sent with a client certificate"
    );

    // The same CN from a CA Icinga does not know: not authenticated.
    let stranger = Outputs::start(
        &[cert_spec(
            client_ca(&dir.join("other-ca")),
            "icinga-stranger",
        )],
        &dir.join("state"),
    )
    .expect("start outputs");
    stranger.submit(&now_result(
        "web1",
        Some("disk"),
        Status::Critical,
        "forged",
        "",
    ));
    assert!(!stranger.flush(Duration::from_secs(3)));
    let status = stranger.status_lines().join("\n");
    assert!(
        status.contains("1 waiting") && status.contains("401"),
        "{status}"
    );
    assert_eq!(svc_state(&get("/v1/objects/services"), "web1!disk"), 0.0);
}

fn svc_state(services: &serde_json::Value, name: &str) -> f64 {
    service(services, name)
        .and_then(|s| s["attrs"]["state"].as_f64())
        .unwrap_or(-1.0)
}

/// Service `name` (`host!service`) in an `/v1/objects/services` answer.
fn service<'a>(services: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    services["results"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == name))
}
