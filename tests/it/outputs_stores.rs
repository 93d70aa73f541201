//! The document-store outputs against peers on loopback: Debian's
//! `redis-server`, started by each test with its own temp dir and config
//! (with and without `requirepass`, stopped and started again), read back
//! with `redis-cli`; and Elasticsearch's `_bulk`, through
//! `tests/fixtures/outputs/bulk_receiver.py`, a receiver that checks every
//! request against the official API specification's shape (no
//! Elasticsearch server can be installed here) and answers with partial
//! failures too. Records are compared field by field with `json_lines`'
//! for the same results.

use crate::support;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use picomon::model::Status;
use picomon::passive::{
    OutputKind, OutputSpec, Outputs, PassiveResult, RedisDest, RedisUrl, DEFAULT_SPOOL_MAX_BYTES,
};
use serde_json::Value;
use support::ports::{hold_port, reserve_port_on, Reserved};
use support::{fixture, read, wait_until};

const LONG: Duration = Duration::from_secs(60);

fn result(i: usize, status: Status) -> PassiveResult {
    PassiveResult {
        time: 1_700_000_000_000_000 + i as i64 * 1_000_123,
        host: "web1".into(),
        service: Some(format!("check {i}")),
        status,
        output: format!("result {i}: \"quoted\" | piped\nsecond line of {i}"),
        perfdata: format!("n={i};5;10 'a b'=1.5s"),
        duration: Duration::from_millis(250),
        data: Some(Box::new(serde_json::json!({ "i": i, "name": "é\r\n" }))),
    }
}

fn spec(kind: OutputKind, name: &str) -> OutputSpec {
    OutputSpec {
        kind,
        name: Some(name.into()),
        spool_max_bytes: DEFAULT_SPOOL_MAX_BYTES,
    }
}

fn json_lines(dir: &Path) -> (OutputSpec, PathBuf) {
    let path = dir.join("results.jsonl");
    (
        spec(OutputKind::JsonLines { path: path.clone() }, "file"),
        path,
    )
}

fn lines_json(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Asserts that `got` holds the same records as `want` (json_lines'),
/// field by field, `extra` fields aside.
fn same_records(got: &[Value], want: &[Value], extra: &[&str]) {
    assert_eq!(got.len(), want.len(), "got {got:#?}\nwant {want:#?}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let w = w.as_object().expect("json_lines record is an object");
        let g = g.as_object().expect("record is an object");
        for (k, v) in w {
            assert_eq!(g.get(k), Some(v), "record {i}, field {k}");
        }
        for k in g.keys() {
            assert!(
                w.contains_key(k) || extra.contains(&k.as_str()),
                "record {i}: unexpected field {k}"
            );
        }
    }
}

/// The SIGUSR1 dump's line of the output named `name`.
fn status_of(outputs: &Outputs, name: &str) -> Option<String> {
    let prefix = format!("output {name} (");
    outputs
        .status_lines()
        .into_iter()
        .find(|l| l.starts_with(&prefix))
}

// ---------------------------------------------------------------- Redis

/// A loopback address of this test process's own.
fn own_loopback() -> String {
    let pid = std::process::id();
    format!("127.{}.{}.7", 100 + pid % 100, (pid / 100) % 250 + 1)
}

/// A `redis-server` of the test's own: temp dir, config, append-only file
/// (so what it took survives a restart), on a loopback address of its own.
struct RedisServer {
    dir: PathBuf,
    ip: String,
    port: u16,
    password: Option<String>,
    /// TLS only (`tls-port`): the PKI folder with ca.pem, server.pem and
    /// server.key.
    tls: Option<PathBuf>,
    child: Option<Child>,
}

impl RedisServer {
    fn start(dir: &Path, password: Option<&str>) -> RedisServer {
        RedisServer::start_with(dir, password, None)
    }

    fn start_with(dir: &Path, password: Option<&str>, tls: Option<&Path>) -> RedisServer {
        // An address of 127/8 that no other test uses (each test is a
        // process of its own), so the port found free on it stays free
        // between a stop and a start: redis-server cannot take over a
        // held port (tests/support/ports.rs), so none is held.
        let ip = own_loopback();
        let (held, port) = reserve_port_on(&ip);
        drop(held);
        fs::create_dir_all(dir).expect("redis dir");
        let mut r = RedisServer {
            dir: dir.to_path_buf(),
            ip,
            port,
            password: password.map(str::to_string),
            tls: tls.map(Path::to_path_buf),
            child: None,
        };
        r.up();
        r
    }

    fn up(&mut self) {
        let listen = match &self.tls {
            None => format!("port {}\n", self.port),
            Some(pki) => format!(
                "port 0\ntls-port {}\ntls-cert-file {p}/server.pem\ntls-key-file {p}/server.key\ntls-ca-cert-file {p}/ca.pem\ntls-auth-clients no\n",
                self.port,
                p = pki.display()
            ),
        };
        let mut conf = format!(
            "bind {ip}\n{listen}dir {dir}\ndaemonize no\nsave \"\"\nappendonly yes\nappendfsync always\nlogfile {dir}/redis.log\nprotected-mode no\n",
            ip = self.ip,
            dir = self.dir.display()
        );
        if let Some(pw) = &self.password {
            conf.push_str(&format!("requirepass \"{pw}\"\n"));
        }
        let path = self.dir.join("redis.conf");
        fs::write(&path, conf).expect("redis.conf");
        self.child = Some(
            Command::new("redis-server")
                .arg(&path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start redis-server (apt-get install redis-server)"),
        );
        wait_until(LONG, "redis-server answers PING", || {
            (self.cli(&["PING"]).trim() == "PONG").then_some(())
        });
    }

    fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            support::procs::signal(c.id() as i32, libc::SIGTERM);
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://{}:{}", self.ip, self.port)
    }

    fn cli_command(&self) -> Command {
        let mut c = Command::new("redis-cli");
        c.args(["-h", &self.ip, "-p", &self.port.to_string(), "--raw"]);
        if let Some(pki) = &self.tls {
            c.arg("--tls").arg("--cacert").arg(pki.join("ca.pem"));
        }
        if let Some(pw) = &self.password {
            c.env("REDISCLI_AUTH", pw);
        }
        c
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = self
            .cli_command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The records of a stream, oldest first (`XRANGE`; each entry is its
    /// id, then the field `record` and its JSON).
    fn stream(&self, key: &str) -> Vec<Value> {
        let text = self.cli(&["XRANGE", key, "-", "+"]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len() % 3, 0, "{text}");
        lines
            .chunks(3)
            .map(|e| {
                assert_eq!(e[1], "record", "{text}");
                serde_json::from_str(e[2]).expect("JSON record")
            })
            .collect()
    }

    /// The records of a list, oldest first (LPUSH puts the newest at the
    /// head).
    fn list(&self, key: &str) -> Vec<Value> {
        let mut v = lines_json(&self.cli(&["LRANGE", key, "0", "-1"]));
        v.reverse();
        v
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.down();
    }
}

/// A `redis-cli SUBSCRIBE` in the background, ready once it said so.
struct Subscriber {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Subscriber {
    fn start(server: &RedisServer, channel: &str) -> Subscriber {
        let mut child = server
            .cli_command()
            .args(["SUBSCRIBE", channel])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-cli SUBSCRIBE");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        // "subscribe", the channel, the count: then it listens.
        for want in ["subscribe", channel, "1"] {
            let mut line = String::new();
            out.read_line(&mut line).expect("read subscriber");
            assert_eq!(line.trim_end(), want);
        }
        Subscriber { child, out }
    }

    /// The next `n` messages ("message", channel, payload each).
    fn messages(&mut self, n: usize) -> Vec<Value> {
        let mut got = Vec::new();
        let mut line = String::new();
        while got.len() < n {
            let mut three = Vec::new();
            for _ in 0..3 {
                line.clear();
                let read = self.out.read_line(&mut line).expect("read subscriber");
                assert!(read > 0, "the subscriber stopped after {got:?}");
                three.push(line.trim_end().to_string());
            }
            assert_eq!(three[0], "message");
            got.push(serde_json::from_str(&three[2]).expect("JSON message"));
        }
        got
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn redis_spec(
    server: &RedisServer,
    dest: RedisDest,
    secret: Option<PathBuf>,
    name: &str,
) -> OutputSpec {
    spec(
        OutputKind::Redis {
            url: server.url(),
            parsed: RedisUrl::parse(&server.url()).expect("url"),
            dest,
            secret_file: secret,
            ca: server.tls.as_ref().map(|p| p.join("ca.pem")),
            timeout: Duration::from_secs(5),
            batch: 3,
        },
        name,
    )
}

#[test]
fn redis_stream_list_and_channel_get_exactly_the_json_lines_records() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = RedisServer::start(&tmp.path().join("redis"), None);
    let mut sub = Subscriber::start(&server, "picomon-results");
    let (file, file_path) = json_lines(tmp.path());
    let outputs = Outputs::start(
        &[
            file,
            redis_spec(
                &server,
                RedisDest::Stream {
                    key: "picomon".into(),
                    maxlen: 1000,
                },
                None,
                "stream",
            ),
            redis_spec(
                &server,
                RedisDest::List {
                    key: "picomon:list".into(),
                },
                None,
                "list",
            ),
            redis_spec(
                &server,
                RedisDest::Channel {
                    key: "picomon-results".into(),
                },
                None,
                "channel",
            ),
        ],
        &tmp.path().join("state"),
    )
    .expect("start");
    let mut host = result(4, Status::Critical);
    host.service = None;
    host.data = None;
    outputs.submit(&result(1, Status::Ok));
    outputs.submit_all(&[
        result(2, Status::Warning),
        result(3, Status::Unknown),
        host,
        result(5, Status::Ok),
    ]);
    assert!(outputs.flush(LONG), "{:?}", outputs.status_lines());
    let want = lines_json(&read(&file_path));
    assert_eq!(want.len(), 5);
    same_records(&server.stream("picomon"), &want, &[]);
    same_records(&server.list("picomon:list"), &want, &[]);
    same_records(&sub.messages(5), &want, &[]);
    let status = outputs.status_lines().join("\n");
    assert!(status.contains("output stream (redis redis://"), "{status}");
    assert_eq!(
        status.matches("0 waiting, 5 delivered, 0 dropped").count(),
        4,
        "{status}"
    );
}

#[test]
fn redis_with_a_password_stopped_and_started_again_gets_what_it_missed_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server = RedisServer::start(&tmp.path().join("redis"), Some("s3cret pass"));
    let secret = tmp.path().join("redis.secret");
    // A password with a space needs the user: `default`.
    fs::write(&secret, "default s3cret pass\n").expect("secret");
    let (file, file_path) = json_lines(tmp.path());
    let stream = RedisDest::Stream {
        key: "results".into(),
        maxlen: 0,
    };
    let outputs = Outputs::start(
        &[
            file,
            redis_spec(&server, stream.clone(), Some(secret), "stream"),
            // The same server without the password: refused, kept, said.
            redis_spec(
                &server,
                RedisDest::List { key: "nopw".into() },
                None,
                "nopw",
            ),
        ],
        &tmp.path().join("state"),
    )
    .expect("start");
    for i in 0..4 {
        outputs.submit(&result(i, Status::Ok));
    }
    wait_until(LONG, "the stream output delivers", || {
        status_of(&outputs, "stream").filter(|l| l.contains("0 waiting, 4 delivered"))
    });
    let nopw = wait_until(LONG, "the output without password fails", || {
        status_of(&outputs, "nopw").filter(|l| l.contains("FAILING"))
    });
    assert!(
        nopw.contains("NOAUTH") && nopw.contains("give secret_file"),
        "{nopw}"
    );
    assert_eq!(server.stream("results").len(), 4);

    // Redis goes away: results wait in the spool.
    server.down();
    for i in 4..11 {
        outputs.submit(&result(i, Status::Critical));
    }
    let failing = wait_until(LONG, "the stream output fails", || {
        status_of(&outputs, "stream").filter(|l| l.contains("FAILING"))
    });
    assert!(failing.contains("7 waiting"), "{failing}");
    assert!(
        failing.contains("cannot reach") || failing.contains("connection lost"),
        "{failing}"
    );

    // Back again (with what it had, from its append-only file): the missed
    // results arrive, each once, in order.
    server.up();
    wait_until(LONG, "the stream output delivers again", || {
        status_of(&outputs, "stream").filter(|l| l.contains("0 waiting, 11 delivered"))
    });
    let want = lines_json(&read(&file_path));
    assert_eq!(want.len(), 11);
    same_records(&server.stream("results"), &want, &[]);
    assert_eq!(server.cli(&["EXISTS", "nopw"]).trim(), "0");
}

#[test]
fn rediss_talks_tls_checked_against_ca_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = tmp.path().join("pki");
    let ip = own_loopback();
    let ca = support::certs::Ca {
        dir: &pki,
        name: "ca",
        ext: "pem",
        key: support::certs::Key::Ec,
        days: 2,
    };
    ca.make("picomon test CA");
    ca.sign("server", &ip, &format!("IP:{ip}"), "serverAuth");
    let server = RedisServer::start_with(&tmp.path().join("redis"), None, Some(&pki));
    let (file, file_path) = json_lines(tmp.path());
    let outputs = Outputs::start(
        &[
            file,
            redis_spec(&server, RedisDest::List { key: "tls".into() }, None, "tls"),
        ],
        &tmp.path().join("state"),
    )
    .expect("start");
    outputs.submit_all(&[result(1, Status::Ok), result(2, Status::Critical)]);
    assert!(outputs.flush(LONG), "{:?}", outputs.status_lines());
    same_records(&server.list("tls"), &lines_json(&read(&file_path)), &[]);

    // A CA that did not sign the server's certificate: nothing is sent.
    let other = tmp.path().join("other");
    let stranger = support::certs::Ca { dir: &other, ..ca };
    stranger.make("someone else's CA");
    let mut untrusted = redis_spec(&server, RedisDest::List { key: "no".into() }, None, "no");
    if let OutputKind::Redis { ca, .. } = &mut untrusted.kind {
        *ca = Some(other.join("ca.pem"));
    }
    let outputs = Outputs::start(&[untrusted], &tmp.path().join("state2")).expect("start");
    outputs.submit(&result(3, Status::Ok));
    let failing = wait_until(LONG, "the untrusted server is refused", || {
        status_of(&outputs, "no").filter(|l| l.contains("FAILING"))
    });
    assert!(
        failing.contains("certificate") || failing.contains("Certificate"),
        "{failing}"
    );
    assert_eq!(server.cli(&["EXISTS", "no"]).trim(), "0");
}

#[test]
fn redis_constructor_checks_its_options() {
    let mut engine = rhai::Engine::new();
    picomon::config::outputs::register(&mut engine);
    let s: OutputSpec = engine
        .eval(r#"redis("redis://127.0.0.1:6380/2", #{ stream: "picomon", maxlen: 5000, secret_file: "/etc/picomon/redis.secret" })"#)
        .expect("valid");
    assert!(matches!(
        &s.kind,
        OutputKind::Redis { dest: RedisDest::Stream { key, maxlen: 5000 }, parsed, .. }
            if key == "picomon" && parsed.port == 6380 && parsed.db == 2
    ));
    assert_eq!(s.spool_name(0), "redis-1");
    let s: OutputSpec = engine
        .eval(r#"redis("rediss://redis.example.org", #{ list: "q", ca_file: "/ca.pem" })"#)
        .expect("valid");
    assert!(matches!(
        &s.kind,
        OutputKind::Redis {
            dest: RedisDest::List { .. },
            ca: Some(_),
            ..
        }
    ));
    let err = |script: &str| {
        format!(
            "{}",
            engine.eval::<rhai::Dynamic>(script).expect_err(script)
        )
    };
    assert!(err(r#"redis("redis://h")"#).contains("say where records go"));
    assert!(
        err(r#"redis("redis://h", #{ list: "a", channel: "b" })"#).contains("not list and channel")
    );
    assert!(
        err(r#"redis("redis://h", #{ list: "a", maxlen: 5 })"#).contains("maxlen trims a stream")
    );
    assert!(err(r#"redis("redis://:pw@h", #{ list: "a" })"#).contains("secret_file"));
    assert!(err(r#"redis("http://h", #{ list: "a" })"#).contains("redis://"));
    assert!(err(r#"redis("redis://h", #{ list: "a", ca_file: "/ca" })"#).contains("rediss://"));
    assert!(err(r#"redis("redis://h", #{ stream: "a", max_len: 5 })"#)
        .contains("unknown option `max_len`"));
}

// -------------------------------------------------------- Elasticsearch

/// The `_bulk` receiver (see the module comment).
struct BulkReceiver {
    dir: PathBuf,
    port: u16,
    held: Option<Reserved>,
    child: Option<Child>,
    args: Vec<String>,
}

impl BulkReceiver {
    fn start(dir: &Path, args: &[&str]) -> BulkReceiver {
        fs::create_dir_all(dir).expect("receiver dir");
        let mut r = BulkReceiver {
            dir: dir.to_path_buf(),
            port: 0,
            held: None,
            child: None,
            args: args.iter().map(|s| s.to_string()).collect(),
        };
        r.up();
        r
    }

    fn up(&mut self) {
        let _ = fs::remove_file(self.dir.join("port"));
        self.child = Some(
            Command::new("python3")
                .arg(fixture("outputs/bulk_receiver.py"))
                .args(["--dir", &self.dir.display().to_string()])
                .args(["--port", &self.port.to_string()])
                .args(&self.args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start python3 bulk_receiver.py"),
        );
        self.port = wait_until(LONG, "the bulk receiver listens", || {
            read(&self.dir.join("port")).trim().parse::<u16>().ok()
        });
        if self.held.is_none() {
            self.held = Some(hold_port(self.port));
        }
    }

    fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The stored documents: (index, id, document), in the order stored.
    fn docs(&self) -> Vec<(String, String, Value)> {
        lines_json(&read(&self.dir.join("docs.jsonl")))
            .into_iter()
            .map(|v| {
                (
                    v["_index"].as_str().expect("index").to_string(),
                    v["_id"].as_str().expect("id").to_string(),
                    v["doc"].clone(),
                )
            })
            .collect()
    }

    /// The `check` of each stored document, by the result's time (a
    /// document taken later, after a 429, is stored after later ones).
    fn checks_by_time(&self) -> Vec<String> {
        let mut docs: Vec<Value> = self.docs().into_iter().map(|d| d.2).collect();
        docs.sort_by(|a, b| {
            a["time"]
                .as_f64()
                .partial_cmp(&b["time"].as_f64())
                .expect("times")
        });
        docs.iter()
            .map(|d| d["check"].as_str().expect("check").to_string())
            .collect()
    }

    fn file(&self, name: &str) -> String {
        read(&self.dir.join(name))
    }
}

impl Drop for BulkReceiver {
    fn drop(&mut self) {
        self.down();
    }
}

fn es_spec(url: &str, secret: Option<PathBuf>, batch: usize) -> OutputSpec {
    spec(
        OutputKind::Elasticsearch {
            url: url.into(),
            index: "picomon-%Y.%m.%d".into(),
            headers: vec![("X-Opaque-Id".into(), "picomon-test".into())],
            secret_file: secret,
            ca: None,
            client: None,
            timeout: Duration::from_secs(10),
            batch,
        },
        "es",
    )
}

#[test]
fn elasticsearch_bulk_documents_are_the_json_lines_records_with_a_timestamp() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let rx = BulkReceiver::start(
        &tmp.path().join("rx"),
        &["--auth", "Basic cGljb21vbjpzM2NyZXQgcGFzcw=="],
    );
    let secret = tmp.path().join("es.secret");
    fs::write(&secret, "picomon s3cret pass\n").expect("secret");
    let (file, file_path) = json_lines(tmp.path());
    let outputs = Outputs::start(
        &[file, es_spec(&rx.url(), Some(secret), 2)],
        &tmp.path().join("state"),
    )
    .expect("start");
    let mut late = result(5, Status::Ok);
    // The next day in UTC: another daily index.
    late.time += 86_400 * 1_000_000;
    outputs.submit_all(&[
        result(1, Status::Ok),
        result(2, Status::Warning),
        result(3, Status::Critical),
        late,
    ]);
    assert!(outputs.flush(LONG), "{:?}", outputs.status_lines());
    assert_eq!(rx.file("errors.log"), "");
    let want = lines_json(&read(&file_path));
    let docs = rx.docs();
    let got: Vec<Value> = docs.iter().map(|d| d.2.clone()).collect();
    same_records(&got, &want, &["@timestamp"]);
    assert_eq!(got[0]["@timestamp"], "2023-11-14T22:13:21.000Z");
    assert_eq!(got[1]["@timestamp"], "2023-11-14T22:13:22.000Z");
    let indices: Vec<&str> = docs.iter().map(|d| d.0.as_str()).collect();
    assert_eq!(
        indices,
        [
            "picomon-2023.11.14",
            "picomon-2023.11.14",
            "picomon-2023.11.14",
            "picomon-2023.11.15"
        ]
    );
    // Batches of at most 2 documents, content type and headers as asked.
    assert_eq!(rx.file("requests.log"), "2\n2\n");
    for h in lines_json(&rx.file("headers.log")) {
        assert_eq!(h["content-type"], "application/x-ndjson");
        assert_eq!(h["x-opaque-id"], "picomon-test");
    }
}

#[test]
fn elasticsearch_partial_failures_refused_documents_are_dropped_busy_ones_retried_none_doubled() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut rx = BulkReceiver::start(
        &tmp.path().join("rx"),
        &[
            "--reject",
            "check 2",
            "--busy",
            "check 3:2",
            "--fail-requests",
            "1",
        ],
    );
    let outputs =
        Outputs::start(&[es_spec(&rx.url(), None, 10)], &tmp.path().join("state")).expect("start");
    let batch: Vec<PassiveResult> = (1..=5).map(|i| result(i, Status::Ok)).collect();
    outputs.submit_all(&batch);
    // A whole request refused (503), then check 3 twice too busy (429): the
    // spool sends again; check 2 is refused for good (400) and let go.
    assert!(outputs.flush(LONG), "{:?}", outputs.status_lines());
    assert_eq!(rx.file("errors.log"), "");
    let checks = rx.checks_by_time();
    assert_eq!(checks, ["check 1", "check 3", "check 4", "check 5"]);
    let status = outputs.status_lines().join("\n");
    assert!(
        status.contains("0 waiting, 4 delivered, 0 dropped, 1 refused by the server"),
        "{status}"
    );
    assert!(status.contains("last error"), "{status}");
    // The documents after the busy one were stored at the first try and
    // found there (409) when sent again: none twice.
    let items = rx.file("items.log");
    assert!(
        items.contains("409 check 4") && items.contains("409 check 5"),
        "{items}"
    );

    // The server goes away and comes back: what was missed arrives once.
    rx.down();
    outputs.submit_all(&[result(6, Status::Critical), result(7, Status::Ok)]);
    wait_until(LONG, "the output fails while the server is down", || {
        let s = outputs.status_lines().join("\n");
        (s.contains("FAILING") && s.contains("2 waiting")).then_some(s)
    });
    rx.up();
    assert!(outputs.flush(LONG), "{:?}", outputs.status_lines());
    let checks = rx.checks_by_time();
    assert_eq!(
        checks,
        ["check 1", "check 3", "check 4", "check 5", "check 6", "check 7"]
    );
}

#[test]
fn elasticsearch_constructor_checks_its_options() {
    let mut engine = rhai::Engine::new();
    picomon::config::outputs::register(&mut engine);
    let s: OutputSpec = engine
        .eval(
            r#"elasticsearch("https://es.example.org:9200/", #{ index: "mon-%Y.%m", batch: 100,
                 headers: #{ "X-Opaque-Id": "picomon" }, secret_file: "/etc/picomon/es.secret",
                 ca_file: "/etc/picomon/es-ca.pem" })"#,
        )
        .expect("valid");
    assert!(matches!(
        &s.kind,
        OutputKind::Elasticsearch { url, index, batch: 100, headers, ca: Some(_), .. }
            if url == "https://es.example.org:9200" && index == "mon-%Y.%m" && headers.len() == 1
    ));
    let s: OutputSpec = engine
        .eval(r#"elasticsearch("http://127.0.0.1:9200")"#)
        .expect("valid");
    assert!(
        matches!(&s.kind, OutputKind::Elasticsearch { index, batch: 500, .. } if index == "picomon-%Y.%m.%d")
    );
    let err = |script: &str| {
        format!(
            "{}",
            engine.eval::<rhai::Dynamic>(script).expect_err(script)
        )
    };
    assert!(err(r#"elasticsearch("http://h:9200", #{ index: "Picomon" })"#).contains("lowercase"));
    assert!(err(r#"elasticsearch("http://h:9200", #{ index: "p-%s" })"#).contains("%Y"));
    assert!(
        err(r#"elasticsearch("http://h:9200", #{ headers: #{ Authorization: "x" } })"#)
            .contains("secret_file")
    );
    assert!(err(r#"elasticsearch("http://u:p@h:9200")"#).contains("secret_file"));
    assert!(err(r#"elasticsearch("h:9200")"#).contains("http://"));
    assert!(
        err(r#"elasticsearch("http://h:9200", #{ client_cert: "/c" })"#).contains("go together")
    );
}

// ------------------------------------------------ run CHECK --nagios-json

/// `picomon run CHECK --nagios-json`: parsed back, the record is the one
/// `json_lines` writes for the same check (`-1 --outputs`), and the exit
/// code is the check's status; no daemon runs.
#[test]
fn run_nagios_json_prints_summary_record_and_long_output_and_exits_with_the_status() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let plugin = tmp.path().join("check_fs");
    fs::write(
        &plugin,
        "#!/bin/sh\nprintf 'FS WARNING - 9%% free | /=900MB;1000;500;0;10000\\nline two\\nline three | a=1\\n'\nexit 1\n",
    )
    .expect("plugin");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&plugin, fs::Permissions::from_mode(0o755)).expect("chmod");
    let cfg = tmp.path().join("config.rhai");
    fs::write(
        &cfg,
        format!(
            r#"
config.state_dir = "{dir}/state";
config.outputs = [json_lines("{dir}/results.jsonl")];
add(plugin("{dir}/check_fs", []), #{{ name: "fs", target_name: "web1" }});
add(plugin("check_dummy", ["3", "what?"]), #{{ name: "other", target_name: "web1" }});
"#,
            dir = tmp.path().display()
        ),
    )
    .expect("config");
    let picomon = |args: &[&str]| {
        Command::new(support::picomon_bin())
            .arg("-c")
            .arg(&cfg)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run picomon")
    };
    let out = picomon(&["run", "fs", "--nagios-json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    let (summary, json) = lines[0].split_once(" | ").expect("summary | record");
    assert_eq!(summary, "FS WARNING - 9% free");
    assert_eq!(&lines[1..], ["line two", "line three"]);
    let record: Value = serde_json::from_str(json).expect("one line of JSON");
    assert!(
        !tmp.path().join("state").exists(),
        "run --nagios-json touched the state dir"
    );

    let b64 = picomon(&["run", "fs", "--nagios-json-base64"]);
    assert_eq!(b64.status.code(), Some(1), "{b64:?}");
    let b64 = String::from_utf8(b64.stdout).expect("UTF-8");
    let (_, encoded) = b64
        .lines()
        .next()
        .expect("line")
        .split_once(" | ")
        .expect("|");
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("base64");
    let record64: Value = serde_json::from_slice(&decoded).expect("JSON");

    let once = picomon(&["-1", "--outputs", "--only", "fs"]);
    assert_eq!(once.status.code(), Some(1), "{once:?}");
    let want = lines_json(&read(&tmp.path().join("results.jsonl")));
    assert_eq!(want.len(), 1);
    // The same record, the run's own time and duration aside.
    let strip = |v: &Value| {
        let mut v = v.clone();
        for k in ["time", "duration"] {
            assert!(v[k].as_f64().is_some(), "{k} in {v}");
            v[k] = Value::Null;
        }
        v
    };
    same_records(
        &[strip(&record), strip(&record64)],
        &[strip(&want[0]), strip(&want[0])],
        &[],
    );
    assert_eq!(record["status"], "WARNING");
    assert_eq!(
        record["output"],
        "FS WARNING - 9% free\nline two\nline three"
    );
    assert_eq!(record["perfdata_text"], "/=900MB;1000;500;0;10000 a=1");

    let unknown = picomon(&["run", "other", "--nagios-json"]);
    assert_eq!(unknown.status.code(), Some(3), "{unknown:?}");
    let none = picomon(&["run", "nosuch", "--nagios-json"]);
    assert_ne!(none.status.code(), Some(0));
    let err = String::from_utf8_lossy(&none.stderr);
    assert!(err.contains("no check named \"nosuch\""), "{err}");
    let both = picomon(&["run", "fs", "--nagios-json", "--nagios-json-base64"]);
    assert_eq!(both.status.code(), Some(2), "{both:?}");
}

/// From a config file to the stores: `picomon -1 --outputs` with
/// `redis()` and `elasticsearch()` as the user writes them, secrets in
/// files.
#[test]
fn one_shot_sends_a_config_files_results_to_redis_and_elasticsearch() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = RedisServer::start(&tmp.path().join("redis"), Some("s3cret"));
    let rx = BulkReceiver::start(&tmp.path().join("rx"), &["--auth", "ApiKey a2V5OmlkCg=="]);
    fs::write(tmp.path().join("redis.secret"), "s3cret\n").expect("secret");
    fs::write(tmp.path().join("es.secret"), "a2V5OmlkCg==\n").expect("secret");
    let cfg = tmp.path().join("cron.rhai");
    fs::write(
        &cfg,
        format!(
            r#"
config.state_dir = "{dir}/state";
config.outputs = [
    json_lines("{dir}/results.jsonl"),
    redis("{redis}", #{{ stream: "picomon", secret_file: "{dir}/redis.secret" }}),
    elasticsearch("{es}", #{{ index: "mon-%Y", secret_file: "{dir}/es.secret" }}),
];
add(plugin("check_dummy", ["1", "busy|jobs=120;100;200"]), #{{ name: "queue", target_name: "web1" }});
"#,
            dir = tmp.path().display(),
            redis = server.url(),
            es = rx.url(),
        ),
    )
    .expect("config");
    let out = Command::new(support::picomon_bin())
        .arg("-c")
        .arg(&cfg)
        .args(["-1", "--outputs", "--only", "queue"])
        .stdin(Stdio::null())
        .output()
        .expect("run picomon");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("kept in the spool"),
        "{out:?}"
    );
    let want = lines_json(&read(&tmp.path().join("results.jsonl")));
    assert_eq!(want.len(), 1);
    assert_eq!(want[0]["check"], "queue");
    same_records(&server.stream("picomon"), &want, &[]);
    let docs = rx.docs();
    let got: Vec<Value> = docs.iter().map(|d| d.2.clone()).collect();
    same_records(&got, &want, &["@timestamp"]);
    assert!(docs[0].0.starts_with("mon-20"), "{:?}", docs[0].0);
    assert_eq!(rx.file("errors.log"), "");
}
