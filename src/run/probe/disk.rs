//! `disk(path, opts)`: free space and free inodes of the file system holding
//! `path`, in percent, like `check_disk -w 10% -c 5% -W 10% -K 5%`.
//! Thresholds here are minimum free percentages.

use std::time::Duration;

use super::range::{fmt_num, Range};
use super::socket::Deadline;
use super::{perf, Report};
use crate::model::{Outcome, Perf, Probe, Status};

#[derive(Debug)]
pub struct DiskProbe {
    pub path: String,
    /// Minimum free space, percent.
    pub warning: f64,
    pub critical: f64,
    /// Minimum free inodes, percent.
    pub inode_warning: f64,
    pub inode_critical: f64,
}

fn verdict(free: f64, warn: f64, crit: f64) -> Status {
    if free < crit {
        Status::Critical
    } else if free < warn {
        Status::Warning
    } else {
        Status::Ok
    }
}

fn pct_perf(label: &str, v: f64, w: f64, c: f64) -> Perf {
    let mut p = perf(
        label,
        (v * 100.0).round() / 100.0,
        "%",
        &Range::lower(w).text,
        &Range::lower(c).text,
    );
    if let Perf::Item { min, max, .. } = &mut p {
        *min = "0".into();
        *max = "100".into();
    }
    p
}

impl Probe for DiskProbe {
    fn run(&self, timeout: Duration) -> Outcome {
        let deadline = Deadline::after(timeout);
        let r = Report::new("DISK");
        let st = match nix::sys::statvfs::statvfs(self.path.as_str()) {
            Ok(s) => s,
            Err(e) => {
                return r.done(
                    Status::Unknown,
                    format!("cannot stat {}: {}", self.path, e.desc()),
                    vec![],
                    &deadline,
                )
            }
        };
        let frag = st.fragment_size() as f64;
        let used = st.blocks().saturating_sub(st.blocks_free()) as f64;
        let avail = st.blocks_available() as f64;
        let free_pct = if used + avail > 0.0 {
            100.0 * avail / (used + avail)
        } else {
            100.0
        };
        let mut status = verdict(free_pct, self.warning, self.critical);
        let mut msg = format!(
            "{} {}% free ({} MiB of {} MiB)",
            self.path,
            fmt_num((free_pct * 10.0).round() / 10.0),
            fmt_num((avail * frag / 1048576.0).round()),
            fmt_num(((used + avail) * frag / 1048576.0).round()),
        );
        let mut perfdata = vec![
            pct_perf("free", free_pct, self.warning, self.critical),
            perf("free_bytes", avail * frag, "B", "", ""),
        ];
        if st.files() > 0 {
            let inode_pct = 100.0 * st.files_available() as f64 / st.files() as f64;
            status = Status::worst(
                status,
                verdict(inode_pct, self.inode_warning, self.inode_critical),
            );
            msg.push_str(&format!(
                ", inodes {}% free",
                fmt_num((inode_pct * 10.0).round() / 10.0)
            ));
            perfdata.push(pct_perf(
                "inodes_free",
                inode_pct,
                self.inode_warning,
                self.inode_critical,
            ));
        }
        r.done(status, msg, perfdata, &deadline)
    }
}
