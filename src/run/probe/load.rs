//! `load(opts)`: the 1, 5 and 15 minute load averages against lists of
//! limits, as accre-monitor's loadavg check and `check_load -w 5,4,3` do.
//!
//! Without limits, `load()` rates the load per CPU against
//! [`DEFAULT_WARNING`] and [`DEFAULT_CRITICAL`]. The load average counts the
//! runnable tasks of the whole host, containers included, so it is divided
//! by the host's online CPUs; inside a container `pressure()` says more.

use std::time::Duration;

use super::range::{fmt_num, Thresholds};
use super::socket::Deadline;
use super::Report;
use crate::model::{Outcome, Probe, Status};

#[derive(Debug)]
pub struct LoadProbe {
    /// Limits for load1, load5, load15.
    pub limits: [Thresholds; 3],
    /// Divide by the number of CPUs before comparing.
    pub per_cpu: bool,
    /// Where to read; `/proc/loadavg` except in tests.
    pub source: String,
}

/// Per-CPU limits for load1, load5 and load15 when none are given, as
/// Monit's sample rules use them: a short burst may queue two tasks per
/// CPU, a sustained one less.
pub const DEFAULT_WARNING: [f64; 3] = [2.0, 1.5, 1.25];
/// Twice the warning limits.
pub const DEFAULT_CRITICAL: [f64; 3] = [4.0, 3.0, 2.5];

/// The three averages from `/proc/loadavg` text.
pub fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut it = text.split_whitespace().map(|s| s.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// The host's online CPUs, from `/sys/devices/system/cpu/online`
/// (`0-3,8-11`); the CPUs this process may use where that cannot be read.
fn online_cpus() -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|t| count_cpus(&t))
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Counts the CPUs of a kernel CPU list such as `0-3,8-11` or `0`.
pub fn count_cpus(list: &str) -> Option<usize> {
    list.trim()
        .split(',')
        .map(|part| match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (a.parse::<usize>().ok()?, b.parse::<usize>().ok()?);
                b.checked_sub(a).map(|d| d + 1)
            }
            None => part.parse::<usize>().ok().map(|_| 1),
        })
        .sum()
}

impl Probe for LoadProbe {
    fn run(&self, timeout: Duration) -> Outcome {
        let deadline = Deadline::after(timeout);
        let r = Report::new("LOAD");
        let text = match std::fs::read_to_string(&self.source) {
            Ok(t) => t,
            Err(e) => {
                return r.done(
                    Status::Unknown,
                    format!("cannot read {}: {e}", self.source),
                    vec![],
                    &deadline,
                )
            }
        };
        let Some(mut load) = parse_loadavg(&text) else {
            return r.done(
                Status::Unknown,
                format!("cannot parse {}: {text:?}", self.source),
                vec![],
                &deadline,
            );
        };
        let mut note = String::new();
        if self.per_cpu {
            let cpus = online_cpus() as f64;
            load = load.map(|l| l / cpus);
            note = format!(" per CPU ({} CPUs)", fmt_num(cpus));
        }
        let mut status = Status::Ok;
        let mut perfdata = Vec::new();
        for (i, name) in ["load1", "load5", "load15"].iter().enumerate() {
            let t = &self.limits[i];
            status = Status::worst(status, t.status(load[i]));
            perfdata.push(t.perf(name, load[i], ""));
        }
        let msg = format!(
            "load average{note}: {}, {}, {}",
            fmt_num(load[0]),
            fmt_num(load[1]),
            fmt_num(load[2])
        );
        r.done(status, msg, perfdata, &deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_count() {
        assert_eq!(count_cpus("0\n"), Some(1));
        assert_eq!(count_cpus("0-1\n"), Some(2));
        assert_eq!(count_cpus("0-3,8-11"), Some(8));
        assert_eq!(count_cpus("0,2,4"), Some(3));
        assert_eq!(count_cpus("3-1"), None);
        assert_eq!(count_cpus("x"), None);
    }
}
