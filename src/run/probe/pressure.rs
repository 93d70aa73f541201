//! `pressure([o])`: pressure stall information (PSI), the share of time
//! tasks waited for CPU, memory or IO over the last 10, 60 or 300 seconds.
//!
//! Unlike the load average, which counts every runnable task of the whole
//! host, PSI exists per cgroup: inside a container it can be read for the
//! container alone, so a neighbour's load does not raise its alarms. The
//! kernel writes it to `/proc/pressure/{cpu,memory,io}` for the system and
//! to `{cpu,memory,io}.pressure` in every cgroup v2 directory.

use std::path::PathBuf;
use std::time::Duration;

use super::range::{fmt_num, Thresholds};
use super::socket::Deadline;
use super::{perf, Report};
use crate::model::{Outcome, Perf, Probe, Status};

/// The resources PSI reports on, in the order they are shown.
pub const RESOURCES: [&str; 3] = ["cpu", "memory", "io"];

/// Default limits on `some` percent, per resource: memory stalls are rare
/// on a healthy machine and hurt at once; IO stalls are common while disks
/// are busy. CPU has none: a machine that keeps every CPU busy is working,
/// not broken (set `cpu` where waiting for CPU matters, e.g. under a quota).
pub const DEFAULT_WARNING: [Option<f64>; 3] = [None, Some(10.0), Some(40.0)];
pub const DEFAULT_CRITICAL: [Option<f64>; 3] = [None, Some(30.0), Some(80.0)];

/// The kernel options a message names when there is no PSI to read.
const NO_PSI: &str = "PSI needs a kernel built with CONFIG_PSI=y, and booted with psi=1 where CONFIG_PSI_DEFAULT_DISABLED=y";

/// Where the pressure files are read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The container picomon runs in: the root of its cgroup namespace when
    /// that has pressure files, else the whole system.
    Auto,
    /// picomon's own cgroup, as `/proc/self/cgroup` names it.
    Own,
    /// A cgroup given by its path below the cgroup v2 mount.
    Cgroup(String),
    /// A folder of files named `cpu`, `memory`, `io` (`/proc/pressure`).
    System(PathBuf),
}

/// One resource's `some` and `full` lines: avg10, avg60, avg300 in
/// percent. The system-wide CPU file has no meaningful `full` line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Psi {
    pub some: [f64; 3],
    pub full: Option<[f64; 3]>,
}

#[derive(Debug)]
pub struct PressureProbe {
    /// Indexes into [`RESOURCES`].
    pub resources: Vec<usize>,
    /// Which average is rated: 0 = avg10, 1 = avg60, 2 = avg300.
    pub avg: usize,
    /// Limits on `some` percent, per resource (indexed like [`RESOURCES`]).
    pub limits: [Thresholds; 3],
    pub scope: Scope,
}

impl PressureProbe {
    /// Reads and rates every chosen resource.
    fn measure(&self, dir: &Source) -> Result<(Status, String, Vec<Perf>), String> {
        let mut status = Status::Ok;
        let mut shown = Vec::new();
        let mut perfdata = Vec::new();
        for &i in &self.resources {
            let name = RESOURCES[i];
            let file = dir.file(name);
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read {}: {e} ({NO_PSI})", file.display()))?;
            let psi = parse_psi(&text)
                .ok_or_else(|| format!("cannot parse {}: {text:?}", file.display()))?;
            let some = psi.some[self.avg];
            let t = &self.limits[i];
            let rated = t.status(some);
            status = Status::worst(status, rated);
            let mark = if rated == Status::Ok {
                String::new()
            } else {
                format!(" ({rated})")
            };
            shown.push(format!("{name} {}%{mark}", fmt_num(some)));
            perfdata.push(percent(t.perf(&format!("{name}_some"), some, "%")));
            if let (Some(full), true) = (psi.full, name != "cpu") {
                perfdata.push(percent(perf(
                    &format!("{name}_full"),
                    full[self.avg],
                    "%",
                    "",
                    "",
                )));
            }
        }
        let window = ["avg10", "avg60", "avg300"][self.avg];
        let msg = format!("some {window}: {} ({})", shown.join(", "), dir.describe());
        Ok((status, msg, perfdata))
    }
}

/// A percentage perfdata item: min 0, max 100.
fn percent(mut p: Perf) -> Perf {
    if let Perf::Item { min, max, .. } = &mut p {
        *min = "0".into();
        *max = "100".into();
    }
    p
}

/// Parses a PSI file: `some avg10=.. avg60=.. avg300=.. total=..` and,
/// for memory and IO (and CPU in a cgroup), a `full` line alike.
pub fn parse_psi(text: &str) -> Option<Psi> {
    let mut some = None;
    let mut full = None;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let kind = words.next()?;
        let mut avgs = [None; 3];
        for w in words {
            let (k, v) = w.split_once('=')?;
            let slot = match k {
                "avg10" => 0,
                "avg60" => 1,
                "avg300" => 2,
                _ => continue,
            };
            avgs[slot] = v.parse::<f64>().ok().filter(|x| x.is_finite());
        }
        let avgs = [avgs[0]?, avgs[1]?, avgs[2]?];
        match kind {
            "some" => some = Some(avgs),
            "full" => full = Some(avgs),
            _ => return None,
        }
    }
    Some(Psi { some: some?, full })
}

/// The cgroup v2 path of `/proc/self/cgroup` text: the `0::PATH` line.
pub fn own_cgroup(proc_self_cgroup: &str) -> Option<&str> {
    proc_self_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::trim_end)
        .filter(|p| p.starts_with('/'))
}

/// The cgroup v2 mount in `/proc/self/mountinfo` text: its mount point and
/// the cgroup it shows at that point (`/` unless mounted from inside).
pub fn cgroup2_mount(mountinfo: &str) -> Option<(PathBuf, String)> {
    mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        if right.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        let f: Vec<&str> = left.split_whitespace().collect();
        Some((PathBuf::from(unescape(f.get(4)?)), unescape(f.get(3)?)))
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest
            .get(i + 1..i + 4)
            .and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(c) => {
                out.push(char::from(c));
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The folder of cgroup `path` under the mount `(point, root)`; `None`
/// when the cgroup lies outside what the mount shows.
pub fn cgroup_dir(mount: &(PathBuf, String), path: &str) -> Option<PathBuf> {
    let (point, root) = mount;
    let below = if root == "/" {
        path
    } else {
        path.strip_prefix(root.as_str())
            .filter(|r| r.is_empty() || r.starts_with('/'))?
    };
    let below = below.trim_start_matches('/');
    Some(if below.is_empty() {
        point.clone()
    } else {
        point.join(below)
    })
}

/// The pressure files one run reads.
enum Source {
    /// `DIR/cpu`, ... (`/proc/pressure`).
    System(PathBuf),
    /// `DIR/cpu.pressure`, ... of a cgroup folder.
    Cgroup(PathBuf),
}

impl Source {
    fn file(&self, resource: &str) -> PathBuf {
        match self {
            Source::System(d) => d.join(resource),
            Source::Cgroup(d) => d.join(format!("{resource}.pressure")),
        }
    }

    fn describe(&self) -> String {
        match self {
            Source::System(d) => format!("system, {}", d.display()),
            Source::Cgroup(d) => format!("cgroup {}", d.display()),
        }
    }
}

const PROC_PRESSURE: &str = "/proc/pressure";

/// Finds the files for `scope` on this machine.
fn locate(scope: &Scope) -> Result<Source, String> {
    let mount = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .ok()
            .and_then(|t| cgroup2_mount(&t))
    };
    match scope {
        Scope::System(d) => Ok(Source::System(d.clone())),
        Scope::Auto => Ok(match mount() {
            Some((point, _)) if point.join("cpu.pressure").exists() => Source::Cgroup(point),
            _ => Source::System(PROC_PRESSURE.into()),
        }),
        Scope::Own | Scope::Cgroup(_) => {
            let m =
                mount().ok_or("no cgroup v2 file system is mounted (cgroup needs cgroup v2)")?;
            let path = match scope {
                Scope::Cgroup(p) => p.clone(),
                _ => {
                    let text = std::fs::read_to_string("/proc/self/cgroup")
                        .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
                    own_cgroup(&text)
                        .ok_or("/proc/self/cgroup has no cgroup v2 line (0::PATH)")?
                        .to_string()
                }
            };
            cgroup_dir(&m, &path).map(Source::Cgroup).ok_or_else(|| {
                format!(
                    "cgroup {path} is not below the cgroup v2 mount at {} (which shows {})",
                    m.0.display(),
                    m.1
                )
            })
        }
    }
}

impl Probe for PressureProbe {
    fn run(&self, timeout: Duration) -> Outcome {
        let deadline = Deadline::after(timeout);
        let r = Report::new("PRESSURE");
        match locate(&self.scope).and_then(|s| self.measure(&s)) {
            Ok((status, msg, perfdata)) => r.done(status, msg, perfdata, &deadline),
            Err(e) => r.done(Status::Unknown, e, vec![], &deadline),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPU: &str = "some avg10=1.50 avg60=99.61 avg300=91.61 total=751276217\n\
                       full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
    const MEMORY: &str = "some avg10=0.00 avg60=12.25 avg300=0.18 total=7422658\n\
                          full avg10=0.00 avg60=3.00 avg300=0.01 total=2112566\n";
    /// A kernel before 5.13 writes no `full` line for CPU.
    const OLD_CPU: &str = "some avg10=0.12 avg60=0.34 avg300=0.56 total=123\n";

    #[test]
    fn psi_text_parses() {
        let p = parse_psi(CPU).unwrap();
        assert_eq!(p.some, [1.5, 99.61, 91.61]);
        assert_eq!(p.full, Some([0.0; 3]));
        let p = parse_psi(OLD_CPU).unwrap();
        assert_eq!(p.some, [0.12, 0.34, 0.56]);
        assert_eq!(p.full, None);
        assert_eq!(parse_psi(MEMORY).unwrap().full, Some([0.0, 3.0, 0.01]));
        for bad in [
            "",
            "full avg10=0 avg60=0 avg300=0 total=0",
            "some avg10=x avg60=0 avg300=0",
            "some avg10=1 avg300=0",
            "other avg10=1 avg60=1 avg300=1",
        ] {
            assert_eq!(parse_psi(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn own_cgroup_comes_from_the_v2_line() {
        let hybrid = "9:name=systemd:/\n4:memory:/process_api/7ff0\n1:cpu:/\n0::/\n";
        assert_eq!(own_cgroup(hybrid), Some("/"));
        let service = "0::/system.slice/system-picomon.slice/picomon@main.service\n";
        assert_eq!(
            own_cgroup(service),
            Some("/system.slice/system-picomon.slice/picomon@main.service")
        );
        assert_eq!(own_cgroup("4:memory:/x\n1:cpu:/\n"), None);
    }

    #[test]
    fn cgroup_folder_from_mountinfo() {
        let info = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
                    32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
                    41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        let m = cgroup2_mount(info).unwrap();
        assert_eq!(
            m,
            (PathBuf::from("/sys/fs/cgroup/unified"), "/".to_string())
        );
        assert_eq!(
            cgroup_dir(&m, "/system.slice/a b.service"),
            Some(PathBuf::from(
                "/sys/fs/cgroup/unified/system.slice/a b.service"
            ))
        );
        assert_eq!(
            cgroup_dir(&m, "/"),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );

        // A container whose mount shows its own cgroup, and a name with a space.
        let info = "1 0 0:26 /docker/ab\\040c /sys/fs/cgroup ro - cgroup2 cgroup rw\n";
        let m = cgroup2_mount(info).unwrap();
        assert_eq!(m.1, "/docker/ab c");
        assert_eq!(
            cgroup_dir(&m, "/docker/ab c/app"),
            Some(PathBuf::from("/sys/fs/cgroup/app"))
        );
        assert_eq!(
            cgroup_dir(&m, "/docker/ab c"),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        assert_eq!(cgroup_dir(&m, "/docker/ab cd"), None);
        assert_eq!(cgroup_dir(&m, "/other"), None);
        assert_eq!(
            cgroup2_mount("31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"),
            None
        );
    }
}
