//! The SIGUSR1 state dump: a header with the time, the checks in PROBLEM
//! first (since when, last output), then the others (OK or "retrying k/n"),
//! then what the notifier has to say (outbox).

use crate::alert::Phase;
use crate::clock::{hms, local_datetime, UnixMicros};
use crate::notify::mail::compose::noise_marks;
use crate::notify::CheckView;

pub fn render_dump(now: UnixMicros, checks: &[CheckView], extra: &[String]) -> String {
    let mut out = format!(
        "Signal SIGUSR1 caught, printing state of checks. ({})\n",
        local_datetime(now)
    );
    let (problems, others): (Vec<&CheckView>, Vec<&CheckView>) =
        checks.iter().partition(|c| c.phase == Phase::Problem);
    out.push_str(&format!("Checks in error ({}):\n", problems.len()));
    for c in &problems {
        let since = c.outage_start.unwrap_or(now);
        out.push_str(&format!(
            "  {} {} on {}: since {} ({}, {} failed runs){}: {}\n",
            c.status.map(|s| s.as_str()).unwrap_or("?"),
            c.name,
            c.dest,
            local_datetime(since),
            hms(now - since),
            c.failed_runs,
            noise_marks(c),
            one_line(&c.last_output)
        ));
    }
    out.push_str(&format!("Other checks ({}):\n", others.len()));
    for c in &others {
        let state = match (c.phase, c.status) {
            (Phase::Retrying, _) => format!("retrying {}/{}", c.failed_runs, c.retry + 1),
            (_, None) => "not run yet".to_string(),
            (_, Some(s)) => s.as_str().to_string(),
        };
        out.push_str(&format!(
            "  {} {} on {}{}: {}\n",
            state,
            c.name,
            c.dest,
            noise_marks(c),
            one_line(&c.last_output)
        ));
    }
    for line in extra {
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn one_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;

    fn view(name: &str, phase: Phase, status: Status, failed: u32) -> CheckView {
        CheckView {
            check_id: name.into(),
            name: name.into(),
            dest: "web1".into(),
            phase,
            status: Some(status),
            failed_runs: failed,
            retry: 2,
            outage_start: (failed > 0).then_some(1_000_000_000),
            last_run: Some(1_000_000_000),
            last_output: format!("{name} says hi\nlong"),
            ack: None,
            silenced_by: None,
            ..CheckView::default()
        }
    }

    #[test]
    fn problems_come_first_and_retrying_shows_k_of_n() {
        let checks = vec![
            view("a", Phase::Ok, Status::Ok, 0),
            view("b", Phase::Retrying, Status::Critical, 1),
            view("c", Phase::Problem, Status::Critical, 4),
        ];
        let d = render_dump(
            1_000_000_000 + 90_000_000,
            &checks,
            &["outbox: 0 waiting".into()],
        );
        let c_pos = d.find("c on web1").unwrap();
        let a_pos = d.find("a on web1").unwrap();
        assert!(c_pos < a_pos, "{d}");
        assert!(d.contains("Checks in error (1):"));
        assert!(d.contains("CRITICAL c on web1: since"));
        assert!(d.contains("(0:01:30, 4 failed runs): c says hi\n"), "{d}");
        assert!(d.contains("retrying 1/3 b on web1"));
        assert!(d.contains("OK a on web1: a says hi\n"));
        assert!(d.ends_with("outbox: 0 waiting\n"));
    }

    #[test]
    fn unreachable_and_flapping_checks_say_so() {
        let mut held = view("tcp web1", Phase::Problem, Status::Critical, 3);
        held.unreachable_by = Some("router ping on gw".into());
        held.flap_percent = Some(0.0);
        let mut flap = view("flappy", Phase::Ok, Status::Ok, 0);
        flap.flap_percent = Some(34.4);
        flap.flapping = true;
        let d = render_dump(1_000_000_000 + 90_000_000, &[held, flap], &[]);
        assert!(
            d.contains("failed runs) (UNREACHABLE: router ping on gw fails): tcp web1 says hi"),
            "{d}"
        );
        assert!(
            d.contains("OK flappy on web1 (FLAPPING, 34.4% state change): flappy says hi"),
            "{d}"
        );
    }
}
