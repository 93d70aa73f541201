//! `script(name, fn)`: a check written as a Rhai closure in the config, as
//! accre-monitor's checks were Python functions. It returns
//! `#{ status, output, data }`; `status` is 0..3 or "OK"/"WARNING"/...,
//! numbers in `data` become perfdata, other entries long output.
//!
//! Each run gets a fresh engine with limits (operations, call depth, string,
//! array and map sizes) and the run's deadline checked on progress, so an
//! endless loop ends as UNKNOWN "script exceeded N operations" (or "timed
//! out") instead of occupying a worker. The only ways out of the sandbox are
//! the helpers `http_get`, `tcp_connect`, `read_file` and `file_age`, each
//! bounded by the deadline or a size limit.
//!
//! The one probe written in Rhai, so it lives in `config/`, where Rhai is
//! spoken; the native probes in `crate::run::probe` know nothing of it.

use std::io::Read;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rhai::{Dynamic, Engine, EvalAltResult, FnPtr, Map, Module, NativeCallContext, AST};

use crate::config::options::{as_number, err, Opts, RhaiResult};
use crate::model::{Outcome, Perf, Probe, Status};
use crate::run::probe::socket::{self, Deadline};
use crate::run::probe::Report;

/// What `read_file` and `http_get` return at most.
const READ_LIMIT: u64 = 1024 * 1024;

#[derive(Debug)]
pub struct ScriptProbe {
    pub name: String,
    /// The closure, and the config's functions it may call.
    pub f: FnPtr,
    pub lib: Arc<AST>,
    pub max_operations: u64,
}

impl ScriptProbe {
    pub const OPTIONS: &'static [&'static str] = &["max_operations"];

    pub fn new(ctx: &NativeCallContext, name: &str, f: FnPtr, o: &Opts) -> RhaiResult<ScriptProbe> {
        if name.trim().is_empty() {
            return Err(err(
                "script: the name must not be empty (it names the check in mails)",
            ));
        }
        let mut lib = Module::new();
        for ns in ctx.iter_namespaces() {
            lib.fill_with(ns);
        }
        Ok(ScriptProbe {
            name: name.to_string(),
            f,
            lib: Arc::new(AST::new_from_module(lib)),
            max_operations: o
                .int("max_operations", 1000, 1_000_000_000, "1000000")?
                .unwrap_or(1_000_000) as u64,
        })
    }

    fn engine(&self, deadline: Deadline) -> Engine {
        let mut e = super::engine::bare();
        // Where `Engine::new` prints: the daemon's standard output.
        e.on_print(|s| println!("{s}"));
        e.on_debug(|s, _, pos| match pos.is_none() {
            true => println!("{s}"),
            false => println!("{pos:?} | {s}"),
        });
        e.set_max_operations(self.max_operations)
            .set_max_call_levels(32)
            .set_max_expr_depths(64, 32)
            .set_max_string_size(READ_LIMIT as usize)
            .set_max_array_size(100_000)
            .set_max_map_size(100_000);
        // No `import` of script files from disk: rhai is built without
        // modules (`no_module`).
        let end = deadline.end;
        e.on_progress(move |_| (Instant::now() >= end).then(|| Dynamic::from("deadline")));
        e.register_fn("http_get", move |url: &str| http_get(url, &deadline));
        e.register_fn("tcp_connect", move |host: &str, port: i64| {
            tcp_connect(host, port, &deadline)
        });
        e.register_fn("read_file", read_file);
        e.register_fn("file_age", file_age);
        e
    }
}

/// `http_get(url)` → `#{ status, body }`; a transport failure is an error.
fn http_get(url: &str, deadline: &Deadline) -> Result<Map, Box<EvalAltResult>> {
    let left = deadline
        .left()
        .map_err(|_| err(format!("http_get({url}): {}", deadline.timed_out())))?;
    let tls = crate::run::probe::tls::http_tls(&Default::default()).map_err(err)?;
    let resp = crate::net::http::Client::new(left, Some(tls))
        .redirects(5)
        .get(url)
        .call()
        .map_err(|e| err(format!("http_get({url}): {e}")))?;
    let status = i64::from(resp.status());
    let body = resp
        .into_prefix(READ_LIMIT)
        .map_err(|e| err(format!("http_get({url}): reading the body: {e}")))?;
    let mut m = Map::new();
    m.insert("status".into(), Dynamic::from(status));
    m.insert(
        "body".into(),
        Dynamic::from(String::from_utf8_lossy(&body).into_owned()),
    );
    Ok(m)
}

/// `tcp_connect(host, port)` → true when a connection opens in time.
fn tcp_connect(host: &str, port: i64, deadline: &Deadline) -> bool {
    let Ok(port) = u16::try_from(port) else {
        return false;
    };
    let Ok(addrs) = socket::lookup(host, port, deadline) else {
        return false;
    };
    addrs.into_iter().any(|a| match deadline.left() {
        Ok(left) => TcpStream::connect_timeout(&a, left).is_ok(),
        Err(_) => false,
    })
}

/// `read_file(path)` → its text (at most 1 MiB, lossy UTF-8).
fn read_file(path: &str) -> Result<String, Box<EvalAltResult>> {
    let f = std::fs::File::open(path).map_err(|e| err(format!("read_file({path}): {e}")))?;
    let mut buf = Vec::new();
    f.take(READ_LIMIT)
        .read_to_end(&mut buf)
        .map_err(|e| err(format!("read_file({path}): {e}")))?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// `file_age(path)` → seconds since its last modification.
fn file_age(path: &str) -> Result<f64, Box<EvalAltResult>> {
    let m = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(|e| err(format!("file_age({path}): {e}")))?;
    Ok(SystemTime::now()
        .duration_since(m)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0))
}

fn status_of(v: &Dynamic) -> Option<Status> {
    if let Ok(i) = v.as_int() {
        return Status::from_code(i32::try_from(i).ok()?);
    }
    match v.to_string().to_ascii_uppercase().as_str() {
        "WARN" => Some(Status::Warning),
        "CRIT" => Some(Status::Critical),
        name => Status::from_name(name),
    }
}

/// A script's `data` as JSON for `json_lines`: maps, arrays, strings,
/// numbers, booleans and `()` (null) as they are; anything else (a
/// timestamp, a function pointer) as its text.
fn to_json(v: &Dynamic) -> serde_json::Value {
    use serde_json::Value;
    if v.is_unit() {
        return Value::Null;
    }
    if let Ok(b) = v.as_bool() {
        return Value::Bool(b);
    }
    if let Ok(i) = v.as_int() {
        return Value::from(i);
    }
    if let Ok(f) = v.as_float() {
        return serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number);
    }
    if let Some(a) = v.read_lock::<rhai::Array>() {
        return Value::Array(a.iter().map(to_json).collect());
    }
    if let Some(m) = v.read_lock::<Map>() {
        // Inserted one by one: collecting into a map builds a sort of its
        // own for the entries (several KiB).
        let mut object = serde_json::Map::new();
        for (k, x) in m.iter() {
            object.insert(k.to_string(), to_json(x));
        }
        return Value::Object(object);
    }
    Value::String(v.to_string())
}

impl ScriptProbe {
    /// Turns the returned map into an outcome.
    fn outcome(&self, v: Dynamic, deadline: &Deadline) -> Outcome {
        let r = Report::new("SCRIPT");
        let type_name = v.type_name();
        let Some(m) = v.try_cast::<Map>() else {
            return r.done(
                Status::Unknown,
                format!(
                    "{}: the function must return #{{ status, output, data }}, not {type_name}",
                    self.name
                ),
                vec![],
                deadline,
            );
        };
        let Some(status) = m.get("status").and_then(status_of) else {
            return r.done(
                Status::Unknown,
                format!(
                    "{}: `status` must be 0..3 or \"OK\", \"WARNING\", \"CRITICAL\", \"UNKNOWN\"",
                    self.name
                ),
                vec![],
                deadline,
            );
        };
        let output = m.get("output").map(|o| o.to_string()).unwrap_or_default();
        let mut perfdata = Vec::new();
        let mut long = Vec::new();
        let data = m.get("data").map(to_json);
        if let Some(data) = m.get("data").and_then(|d| d.clone().try_cast::<Map>()) {
            for (k, v) in data {
                match as_number(&v) {
                    Some(n) => perfdata.push(Perf::Item {
                        label: k.to_string(),
                        value: n,
                        uom: String::new(),
                        warn: String::new(),
                        crit: String::new(),
                        min: String::new(),
                        max: String::new(),
                    }),
                    None => long.push(format!("{k}: {v}")),
                }
            }
        }
        let mut out = r.done(
            status,
            format!("{}: {output}", self.name),
            perfdata,
            deadline,
        );
        out.summary = out.summary.replace('\n', " ");
        out.long_output = long.join("\n");
        out.data = data.map(Box::new);
        out
    }
}

impl Probe for ScriptProbe {
    fn run(&self, timeout: Duration) -> Outcome {
        let deadline = Deadline::after(timeout);
        let engine = self.engine(deadline);
        match self.f.call::<Dynamic>(&engine, &self.lib, ()) {
            Ok(v) => self.outcome(v, &deadline),
            Err(e) => {
                let msg = match *e {
                    EvalAltResult::ErrorTooManyOperations(_) => {
                        format!("script exceeded {} operations", self.max_operations)
                    }
                    EvalAltResult::ErrorTerminated(..) => {
                        format!("script {}", deadline.timed_out())
                    }
                    other => format!("script error: {other}"),
                };
                Report::new("SCRIPT").done(
                    Status::Unknown,
                    format!("{}: {msg}", self.name),
                    vec![],
                    &deadline,
                )
            }
        }
    }
}
