//! The loop's side of the control socket: requests answered between
//! results (`status`, `run`, `ack`, `silence`, ...), and the status it
//! publishes. `reload` is the runner's, as it reads the config.

use std::sync::Arc;

use crate::alert::quiet::Ack;
use crate::alert::Phase;
use crate::clock::{Clock, Now};
use crate::control::protocol::{self as proto, Request, Response};
use crate::control::snapshot::{CheckLine, Line, LinePhase};
use crate::control::Call;
use crate::daemon::executor::Run;

use super::{Daemon, Tracked};

/// `OK`, `RETRYING k/n` or `PROBLEM`.
fn phase_text(t: &Tracked) -> String {
    match t.alert.phase {
        Phase::Ok => "OK".into(),
        Phase::Retrying => format!("RETRYING {}/{}", t.alert.failed_runs, t.spec.retry + 1),
        Phase::Problem => "PROBLEM".into(),
    }
}

impl<C: Clock> Daemon<C> {
    /// A control request the loop answers (`reload` is the runner's: it
    /// reads the config). The answer waits in [`Daemon::take_answers`].
    pub fn control(&mut self, call: Call) {
        let now = self.now();
        let answer = match &call.request {
            // The server answers from the published status; a caller
            // handing the loop the request itself gets the same answer.
            Request::Status { only, problems, .. } => {
                let mut report = self.status_report();
                let filter = proto::Filter {
                    only: only.as_deref(),
                    problems: *problems,
                };
                report.checks.retain(|c| filter.keeps(c));
                Response {
                    status: Some(report),
                    ..Response::default()
                }
            }
            Request::Check { check } => match self.find(check) {
                Err(e) => Response::error(e),
                Ok(i) => Response {
                    check: Some(self.check_detail(i)),
                    ..Response::default()
                },
            },
            Request::Silences => Response {
                silences: Some(self.quiet.as_wall(now.offset()).silences),
                ..Response::default()
            },
            Request::Reload => Response::error("reload is not handled here"),
            Request::Run { check } => match self.find(check) {
                Err(e) => Response::error(e),
                Ok(i) => {
                    self.run_now(i, call);
                    return;
                }
            },
            Request::Ack {
                check,
                comment,
                for_secs,
                sticky,
                mail_from,
            } => match for_secs
                .map_or(Ok(0), |s| crate::duration::checked_secs("for_secs", s))
                .and_then(|_| self.find(check))
            {
                Err(e) => Response::error(e),
                Ok(i) => {
                    let by = proto::actor(&call.user, mail_from.as_deref());
                    if mail_from.is_some() {
                        log::info!("ack by mail passed on by {}", call.user);
                    }
                    self.ack(i, &by, comment, *for_secs, *sticky, now)
                }
            },
            Request::Unack { check, mail_from } => match self.find(check) {
                Err(e) => Response::error(e),
                Ok(i) => {
                    let by = proto::actor(&call.user, mail_from.as_deref());
                    self.unack(i, &by)
                }
            },
            Request::Silence { for_secs, .. }
                if crate::duration::checked_secs("for_secs", *for_secs).is_err() =>
            {
                // A client other than the CLI (which refuses it already).
                Response::error(crate::duration::checked_secs("for_secs", *for_secs).unwrap_err())
            }
            Request::Silence {
                pattern,
                for_secs,
                comment,
                mail_from,
            } => {
                let by = proto::actor(&call.user, mail_from.as_deref());
                // Counted on the timeline: "for 2h" is two hours of
                // monotonic time, whatever the wall clock does.
                let until = now
                    .steady
                    .saturating_add((*for_secs as i64).saturating_mul(1_000_000));
                let id = self.quiet.silence(pattern, &by, comment, now.steady, until);
                self.quiet_dirty = true;
                self.save_quiet_if_dirty();
                let n = self
                    .checks
                    .iter()
                    .filter(|t| t.subject().matches(pattern))
                    .count();
                log::info!("silence {id} {pattern:?} by {by}: {comment}");
                self.history.record(
                    None,
                    crate::history::Record {
                        by: Some(by),
                        ..crate::history::Record::new(now.wall, crate::history::Kind::Silence, "")
                            .with_text(&format!("{id} {pattern} for {for_secs}s: {comment}"))
                    },
                );
                Response::message(format!(
                    "silence {id}: {pattern:?} ({n} checks match now) until {}",
                    crate::clock::local_datetime(now.to_wall(until))
                ))
            }
            Request::Ping {
                check,
                start,
                fail,
                exit,
                nagios,
                message,
            } => {
                let ping = proto::ping_of(*start, *fail, *exit, *nagios, message);
                match self.ping(check, ping) {
                    Ok(line) => Response::message(line),
                    Err(e) => Response::error(e),
                }
            }
            Request::Unsilence { id } => match self.quiet.unsilence(id) {
                None => Response::error(format!("no silence {id}; `picomon silences` lists them")),
                Some(x) => {
                    self.quiet_dirty = true;
                    log::info!("silence {id} {:?} ended by {}", x.pattern, call.user);
                    self.history.record(
                        None,
                        crate::history::Record {
                            by: Some(call.user.clone()),
                            ..crate::history::Record::new(
                                now.wall,
                                crate::history::Kind::Unsilence,
                                "",
                            )
                            .with_text(&format!("{id} {}", x.pattern))
                        },
                    );
                    // Held Problems go out now, not at the next tick.
                    self.quiet_housekeeping(now);
                    Response::message(format!("silence {id} ({:?}) ended", x.pattern))
                }
            },
        };
        self.answers.push((call, answer));
    }

    /// The answers to control requests since the last call: the driver
    /// sends them after publishing the status, so a client that asks for
    /// `status` right after its `ack` or `run` sees what it did.
    pub fn take_answers(&mut self) -> Vec<(Call, Response)> {
        std::mem::take(&mut self.answers)
    }

    /// The identity of check `i` (from [`Daemon::find`]).
    pub(crate) fn check_id(&self, i: usize) -> &str {
        &self.checks[i].spec.id
    }

    /// The check `what` names (see [`crate::model::identity`]).
    pub(crate) fn find(&self, what: &str) -> Result<usize, String> {
        if let Some(i) = self.position(what) {
            return Ok(i);
        }
        let known: Vec<crate::model::identity::Known> = self
            .checks
            .iter()
            .map(|t| crate::model::identity::Known::from(&*t.spec))
            .collect();
        crate::model::identity::find(&known, what)
            .map_err(|e| e.message(what, "`picomon status` lists names and identities"))
    }

    /// `picomon run`: starts the check now (or joins its run in progress);
    /// the caller is answered when it ends.
    fn run_now(&mut self, i: usize, call: Call) {
        if self.is_beat(i) {
            // Nothing to run: judged now, from its pings.
            let id = self.checks[i].spec.id.clone();
            self.waiting.entry(id.to_string()).or_default().push(call);
            self.judge_beat(i);
            return;
        }
        let t = &mut self.checks[i];
        let id = t.spec.id.clone();
        if !t.sched.running {
            t.sched.running = true;
            self.running += 1;
            self.exec.start(Run {
                spec: Arc::clone(&t.spec),
                memory: t.memory.as_deref().map(str::to_string),
                max_output: self.cfg.max_output,
            });
        }
        self.waiting.entry(id.to_string()).or_default().push(call);
    }

    fn ack(
        &mut self,
        i: usize,
        by: &str,
        comment: &str,
        for_secs: Option<u64>,
        sticky: bool,
        now: Now,
    ) -> Response {
        let t = &self.checks[i];
        if t.alert.phase != Phase::Problem {
            return Response::error(format!(
                "{} is {}, not in PROBLEM: there is nothing to acknowledge",
                t.spec.title(),
                phase_text(t)
            ));
        }
        let until = for_secs.map(|s| {
            now.steady
                .saturating_add((s as i64).saturating_mul(1_000_000))
        });
        self.quiet.ack(
            &t.spec.id,
            Ack {
                by: by.to_string(),
                comment: comment.to_string(),
                until,
                sticky,
                at: now.steady,
            },
        );
        log::info!("{}: acknowledged by {by}: {comment}", t.spec.title());
        let line = crate::history::Record {
            by: Some(by.to_string()),
            ..crate::history::Record::new(now.wall, crate::history::Kind::Ack, &t.spec.id)
                .with_text(comment)
        };
        self.history.record(Some(i), line);
        let t = &self.checks[i];
        let view = t.view();
        if !self.standby_quiet(i) {
            self.notifier.acknowledged(&view, by, comment, now.wall);
        }
        self.quiet_dirty = true;
        self.save_quiet_if_dirty();
        Response::message(format!("acknowledged: {}", self.checks[i].spec.title()))
    }

    /// Ends the acknowledgement of check `i`: its Updates and reminders
    /// are mailed again.
    fn unack(&mut self, i: usize, by: &str) -> Response {
        let t = &self.checks[i];
        if self.quiet.acks.remove(&*t.spec.id).is_none() {
            return Response::error(format!(
                "{} is not acknowledged: there is nothing to end",
                t.spec.title()
            ));
        }
        log::info!("{}: acknowledgement ended by {by}", t.spec.title());
        self.quiet_dirty = true;
        self.save_quiet_if_dirty();
        Response::message(format!(
            "acknowledgement ended: {}",
            self.checks[i].spec.title()
        ))
    }

    /// What the loop publishes for its readers (`status`, the HTTP
    /// listener): every check's line and the counters of `/metrics`.
    /// Reads the spools (once per publication).
    pub fn snapshot(&self) -> crate::control::Snapshot {
        let now = self.now();
        let listen = self.cfg.listen.is_some();
        // The local midnights once: each is a mktime.
        let starts = if listen {
            crate::history::availability::day_starts(now.wall, crate::web::DAYS + 1)
        } else {
            Vec::new()
        };
        let checks = (0..self.checks.len())
            .map(|i| {
                let mut line = self.line(i, now);
                // Only while the listener is on are the days worked out.
                if listen {
                    let days = self.history.days(i, &starts, now.wall);
                    line.days = crate::history::availability::DayMark::of_days(&days);
                }
                CheckLine::pack(line)
            })
            .collect();
        let mut s = crate::control::Snapshot::new(checks);
        s.outbox = proto::Outbox {
            lines: self.outbox_lines.clone(),
        };
        s.silences = self.quiet.as_wall(now.offset()).silences;
        s.at = proto::unix_secs(now.wall);
        // Only while the listener is on are durations kept; else none.
        if listen {
            s.recent = self.recent.clone();
        }
        s.transitions = self.transitions_total.clone();
        s.runs_skipped = self.overload.skipped_total;
        s.spool_bytes = self.outputs.spool_bytes();
        s.pending = self.notifier.pending();
        s.refresh = self.cfg.base_tick.clamp(
            std::time::Duration::from_secs(5),
            std::time::Duration::from_secs(60),
        );
        s
    }

    /// `picomon status CHECK`: check `i` in full.
    fn check_detail(&self, i: usize) -> proto::CheckDetail {
        let t = &self.checks[i];
        let parents = t
            .spec
            .noise
            .as_ref()
            .map(|n| &n.depends_on[..])
            .unwrap_or(&[]);
        proto::CheckDetail {
            status: self.check_status(i, self.now()),
            full_output: t.last_output.to_string(),
            depends_on: parents
                .iter()
                .map(|&p| {
                    let parent = &self.checks[p as usize];
                    proto::Dependency {
                        check: parent.spec.title(),
                        phase: phase_text(parent),
                    }
                })
                .collect(),
            thread: t
                .alert
                .outage_start
                .filter(|_| t.alert.phase == Phase::Problem)
                .map(|since| crate::notify::thread_id(&t.spec.id, since)),
            recent_durations: self.recent.get(i).map(|r| r.values()).unwrap_or_default(),
        }
    }

    /// What `picomon status` shows (the loop's own answer; readers get
    /// the published [`crate::control::Snapshot`]).
    pub fn status_report(&self) -> proto::StatusReport {
        let now = self.now();
        let checks = (0..self.checks.len())
            .map(|i| self.check_status(i, now))
            .collect();
        proto::StatusReport {
            checks,
            outbox: proto::Outbox {
                lines: self.outbox_lines.clone(),
            },
            silences: self.quiet.as_wall(now.offset()).silences,
            at: proto::unix_secs(now.wall),
        }
    }

    /// Check `i`'s line of the status.
    fn check_status(&self, i: usize, now: Now) -> proto::CheckStatus {
        CheckLine::pack(self.line(i, now)).to_status()
    }

    /// Check `i`'s line, wide (without the status page's days).
    fn line(&self, i: usize, now: Now) -> Line {
        let (t, v) = (&self.checks[i], self.noise_view(i));
        Line {
            announced: self.announced(i),
            phase: match (t.alert.phase, &v.unreachable_by) {
                (Phase::Ok, _) => LinePhase::Ok,
                (_, Some(_)) => LinePhase::Unreachable,
                (Phase::Retrying, None) => LinePhase::Retrying,
                (Phase::Problem, None) => LinePhase::Problem,
            },
            unreachable_by: v.unreachable_by,
            flap_percent: v.flap_percent,
            flapping: v.flapping,
            status: t.alert.last_status,
            failed_runs: t.alert.failed_runs,
            since: t.alert.outage_start.map(proto::unix_secs),
            last_run: t.last_run().map(proto::unix_secs),
            took_ms: t.took_ms,
            output: t.last_output.first_line_only(),
            ack: self.quiet.acks.get(&*t.spec.id).map(|a| proto::AckView {
                by: a.by.clone(),
                comment: a.comment.clone(),
                until: a.until.map(|u| proto::unix_secs(now.to_wall(u))),
            }),
            silenced_by: self
                .quiet
                .silenced_by(t.subject(), now, &self.cfg.maintenance),
            availability: self.history.availability(i, now.wall),
            ..Line::new(Arc::clone(&t.spec))
        }
    }
}
