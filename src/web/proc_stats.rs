//! The usual `process_*` metrics, read from `/proc/self` at each scrape
//! (by the HTTP thread: nothing here touches the loop).

/// What `/proc` told; `None` where it could not be read.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<u64>,
    pub virtual_bytes: Option<u64>,
    pub start_time_seconds: Option<f64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
}

impl ProcessStats {
    pub fn read() -> ProcessStats {
        // SAFETY: sysconf takes no pointers.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        // SAFETY: as above.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let stat = std::fs::read_to_string("/proc/self/stat").ok();
        let fields = stat.as_deref().map(stat_fields).unwrap_or_default();
        let field = |n: usize| fields.get(n).and_then(|f| f.parse::<u64>().ok());
        let per_tick = |v: u64| (ticks > 0).then(|| v as f64 / ticks as f64);
        // Fields after the command name, counted from `state` (field 3) as 0.
        let cpu = match (field(11), field(12)) {
            (Some(u), Some(s)) => per_tick(u + s),
            _ => None,
        };
        let started = field(19)
            .and_then(per_tick)
            .zip(boot_time())
            .map(|(since_boot, boot)| boot as f64 + since_boot);
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
        let mut pages = statm
            .split_whitespace()
            .map(|f| f.parse::<u64>().ok().map(|p| p * page.max(0) as u64));
        let virtual_bytes = pages.next().flatten();
        let resident_bytes = pages.next().flatten();
        ProcessStats {
            cpu_seconds: cpu,
            resident_bytes,
            virtual_bytes,
            start_time_seconds: started,
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| d.count() as u64),
            max_fds: open_files_limit(),
        }
    }
}

/// The fields of `/proc/self/stat` after `(comm)` (which may hold spaces).
fn stat_fields(text: &str) -> Vec<&str> {
    text.rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default()
}

/// The soft limit on open files.
fn open_files_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we own.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    (rc == 0).then_some(lim.rlim_cur)
}

/// `btime` of `/proc/stat`: the boot time, Unix seconds.
fn boot_time() -> Option<u64> {
    std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_read_from_proc() {
        let p = ProcessStats::read();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let started = p.start_time_seconds.expect("start time");
        assert!(
            started <= now + 1.0 && started > now - 86_400.0,
            "{started} vs {now}"
        );
        assert!(p.resident_bytes.expect("rss") > 0);
        assert!(p.virtual_bytes.expect("vsz") >= p.resident_bytes.unwrap());
        assert!(p.open_fds.expect("fds") >= 3);
        assert!(p.max_fds.expect("limit") >= p.open_fds.unwrap());
        assert!(p.cpu_seconds.expect("cpu") >= 0.0);
    }

    #[test]
    fn a_command_name_with_spaces_and_parens_does_not_shift_the_fields() {
        let f = stat_fields("42 (a) b (c) S 1 2 3");
        assert_eq!(f, ["S", "1", "2", "3"]);
    }
}
