//! The options of the probes of this machine (`load()`, `pressure()`,
//! `disk()`): each builder reads a constructor's checked option map into
//! the probe's plain spec, or says which option is wrong and how to write it.

use rhai::Map;

use crate::config::options::{as_number, err, Opts, RhaiResult};
use crate::run::probe::disk::DiskProbe;
use crate::run::probe::load::{self, LoadProbe};
use crate::run::probe::pressure::{self, PressureProbe, Scope, RESOURCES};
use crate::run::probe::range::{Range, Thresholds};

/// The options of `load([opts])`.
pub const LOAD: &[&str] = &["warning", "critical", "per_cpu"];

/// Limits given are taken as written (absolute unless `per_cpu`, as
/// `check_load -w` reads them); without any, the per-CPU defaults.
pub fn load(o: &Opts) -> RhaiResult<LoadProbe> {
    let given = o.has("warning") || o.has("critical");
    let (w, c) = if given {
        (load_limits(o, "warning")?, load_limits(o, "critical")?)
    } else {
        (Some(load::DEFAULT_WARNING), Some(load::DEFAULT_CRITICAL))
    };
    let limits = [0, 1, 2].map(|i| Thresholds {
        warning: w.map(|l| Range::upper(l[i])),
        critical: c.map(|l| Range::upper(l[i])),
    });
    Ok(LoadProbe {
        limits,
        per_cpu: o.bool("per_cpu")?.unwrap_or(!given),
        source: "/proc/loadavg".into(),
    })
}

/// `[5, 4, 3]`, or one number for all three.
fn load_limits(o: &Opts, key: &str) -> RhaiResult<Option<[f64; 3]>> {
    let Some(v) = o.raw(key) else {
        return Ok(None);
    };
    let bad = || {
        o.bad(key, "must be a number or a list of three numbers for the 1, 5 and 15 minute loads, e.g. `[5, 4, 3]`")
    };
    if let Some(n) = as_number(v) {
        return Ok(Some([n; 3]));
    }
    let arr = v.clone().into_array().map_err(|_| bad())?;
    let nums: Vec<f64> = arr
        .iter()
        .map(as_number)
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    match nums.as_slice() {
        [a, b, c] => Ok(Some([*a, *b, *c])),
        _ => Err(bad()),
    }
}

/// The options of `pressure([opts])`.
pub const PRESSURE: &[&str] = &["resources", "avg", "warning", "critical", "cgroup"];

pub fn pressure(o: &Opts) -> RhaiResult<PressureProbe> {
    let resources = match o.strings("resources", "[\"cpu\", \"memory\"]")? {
        None => vec![0, 1, 2],
        Some(names) => names
            .iter()
            .map(|n| {
                RESOURCES
                    .iter()
                    .position(|r| *r == n.as_str())
                    .ok_or_else(|| {
                        o.bad(
                            "resources",
                            format!("{n:?} is not one of \"cpu\", \"memory\", \"io\""),
                        )
                    })
            })
            .collect::<RhaiResult<Vec<_>>>()?,
    };
    if resources.is_empty() {
        return Err(o.bad("resources", "name at least one of cpu, memory, io"));
    }
    let avg = match o.int("avg", 10, 300, "60")? {
        None | Some(60) => 1,
        Some(10) => 0,
        Some(300) => 2,
        Some(n) => return Err(o.bad("avg", format!("{n} is not 10, 60 or 300 (seconds)"))),
    };
    let w = pressure_limits(o, "warning", pressure::DEFAULT_WARNING)?;
    let c = pressure_limits(o, "critical", pressure::DEFAULT_CRITICAL)?;
    let limits = [0, 1, 2].map(|i| Thresholds {
        warning: w[i].clone(),
        critical: c[i].clone(),
    });
    let scope = match o.string("cgroup", "\"self\"")? {
        None => Scope::Auto,
        Some(s) if s == "self" => Scope::Own,
        Some(s) if s.starts_with('/') && !s.split('/').any(|p| p == "..") => Scope::Cgroup(s),
        Some(s) => {
            return Err(o.bad(
                "cgroup",
                format!(
                "{s:?} is neither \"self\" nor a cgroup path like \"/system.slice/nginx.service\""
            ),
            ))
        }
    };
    Ok(PressureProbe {
        resources,
        avg,
        limits,
        scope,
    })
}

/// `warning`/`critical`: one Nagios range for every resource, or a map
/// `#{ cpu: ..., memory: ..., io: ... }`; resources a map leaves out get no
/// limit. Not given: the defaults.
fn pressure_limits(
    o: &Opts,
    key: &str,
    defaults: [Option<f64>; 3],
) -> RhaiResult<[Option<Range>; 3]> {
    let Some(v) = o.raw(key) else {
        return Ok(defaults.map(|d| d.map(Range::upper)));
    };
    if let Some(map) = v.read_lock::<Map>() {
        let mut out: [Option<Range>; 3] = [None, None, None];
        for (k, x) in map.iter() {
            let i = RESOURCES
                .iter()
                .position(|r| *r == k.as_str())
                .ok_or_else(|| o.bad(key, format!("`{k}` is not one of cpu, memory, io")))?;
            let mut one = Map::new();
            one.insert(key.into(), x.clone());
            out[i] = Opts::new(o.probe(), one, &[key])?.range(key)?;
        }
        return Ok(out);
    }
    let r = o.range(key)?;
    Ok([r.clone(), r.clone(), r])
}

/// The options of `disk(path [, opts])`.
pub const DISK: &[&str] = &["warning", "critical", "inode_warning", "inode_critical"];

pub fn disk(path: &str, o: &Opts) -> RhaiResult<DiskProbe> {
    if !path.starts_with('/') {
        return Err(err(format!(
            "disk: path {path:?} must be absolute, e.g. \"/\" or \"/var\""
        )));
    }
    let p = DiskProbe {
        path: path.to_string(),
        warning: percent(o, "warning")?.unwrap_or(10.0),
        critical: percent(o, "critical")?.unwrap_or(5.0),
        inode_warning: percent(o, "inode_warning")?.unwrap_or(10.0),
        inode_critical: percent(o, "inode_critical")?.unwrap_or(5.0),
    };
    if p.critical > p.warning {
        return Err(o.bad(
            "critical",
            format!(
                "{}% free is more than warning {}% (critical must be the smaller free space)",
                p.critical, p.warning
            ),
        ));
    }
    if p.inode_critical > p.inode_warning {
        return Err(o.bad(
            "inode_critical",
            format!(
                "{}% free is more than inode_warning {}%",
                p.inode_critical, p.inode_warning
            ),
        ));
    }
    Ok(p)
}

/// `10` or `"10%"`: a percentage 0..=100.
fn percent(o: &Opts, key: &str) -> RhaiResult<Option<f64>> {
    let Some(v) = o.raw(key) else {
        return Ok(None);
    };
    let n = if v.is_string() {
        v.to_string()
            .trim()
            .trim_end_matches('%')
            .trim()
            .parse::<f64>()
            .ok()
    } else {
        as_number(v)
    };
    match n {
        Some(n) if (0.0..=100.0).contains(&n) => Ok(Some(n)),
        _ => Err(o.bad(
            key,
            format!("must be a free-space percentage 0..100 like `10` or \"10%\", not `{v}`"),
        )),
    }
}
