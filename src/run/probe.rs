//! Built-in native probes: a fresh machine monitors its
//! neighbours without a plugin package, and a probe costs a socket instead of
//! a fork.
//!
//! One file per probe; each is a struct implementing
//! [`crate::model::Probe`] and returns what a plugin would (status, summary
//! `LABEL STATUS - text`, perfdata). Shared pieces: [`range`] is the Nagios
//! threshold syntax, [`socket`] bounds every socket step by the run's
//! deadline, [`tls`] verifies certificates and counts their days.
//!
//! A probe here is a plain spec and its run; the constructors a config
//! calls (`tcp(h, 443)`) and the reading of their options live in
//! `crate::config::probes`, the one place that speaks Rhai.

pub mod disk;
pub mod dns;
pub mod dns_zone;
pub mod http;
pub mod jabber;
pub mod load;
pub mod mysql;
pub mod openvpn;
pub mod peer;
pub mod ping;
pub mod pressure;
pub mod range;
pub mod smtp;
pub mod socket;
pub mod tcp;
pub mod tls;
pub mod trace;

use std::time::Duration;

use crate::model::{Outcome, Perf, Status};
use range::{fmt_num, Thresholds};
use socket::Deadline;

/// Builds a probe's outcome in the plugin style: `LABEL STATUS - message`.
#[derive(Clone, Copy, Debug)]
pub struct Report {
    label: &'static str,
}

impl Report {
    pub fn new(label: &'static str) -> Report {
        Report { label }
    }

    pub fn done(
        &self,
        status: Status,
        msg: impl Into<String>,
        perfdata: Vec<Perf>,
        deadline: &Deadline,
    ) -> Outcome {
        Outcome {
            status,
            summary: format!("{} {} - {}", self.label, status, msg.into()),
            long_output: String::new(),
            perfdata,
            duration: deadline.elapsed(),
            memory: None,
            data: None,
        }
    }

    /// A run that measures one response time. `attempt` gets the run's
    /// deadline; on success `message` words its result with the seconds it
    /// took, `time` rates those seconds (the default never alerts) and they
    /// become the `time` perfdata item. A failed attempt is CRITICAL with its
    /// error.
    pub fn timed<T>(
        &self,
        timeout: Duration,
        time: &Thresholds,
        attempt: impl FnOnce(&Deadline) -> Result<T, String>,
        message: impl FnOnce(T, &str) -> String,
    ) -> Outcome {
        let deadline = Deadline::after(timeout);
        match attempt(&deadline) {
            Ok(v) => {
                let secs = deadline.elapsed().as_secs_f64();
                self.done(
                    time.status(secs),
                    message(v, &fmt_num(secs)),
                    vec![time.perf("time", secs, "s")],
                    &deadline,
                )
            }
            Err(e) => self.done(Status::Critical, e, vec![], &deadline),
        }
    }
}

/// A perfdata item without min and max.
pub fn perf(label: &str, value: f64, uom: &str, warn: &str, crit: &str) -> Perf {
    Perf::Item {
        label: label.to_string(),
        value: (value * 1e6).round() / 1e6,
        uom: uom.to_string(),
        warn: warn.to_string(),
        crit: crit.to_string(),
        min: String::new(),
        max: String::new(),
    }
}
