//! Giving memory back whenever the daemon goes idle (SPEC §11: an idle
//! daemon with 100 checks stays under 5 MiB).
//!
//! Between two ticks the daemon waits on a channel and needs almost none of
//! its code. Two things would keep the memory of the last burst of work
//! counted against it:
//!
//! - the heap it freed (after a config evaluation: the Rhai engine and its
//!   AST) stays with glibc's allocator until `malloc_trim` returns it;
//! - every page of the executable that the work touched stays mapped, with
//!   the kernel's fault-around whole 64 KiB windows of it: the config
//!   engine, the CLI parser, the plugin runner, the mail composer.
//!
//! [`release_unused_memory`] undoes both; the daemon calls it after start-up,
//! after a reload and when the runs of a tick are all done. For the code it
//! unmaps the executable's clean read-only pages with `MADV_DONTNEED`. They
//! stay in the page cache: what the next tick runs comes back with minor
//! faults, never a disk read. Only mappings that are not writable and hold
//! no anonymous (copy-on-write) page are advised, so nothing the dynamic
//! linker relocated can be lost: on such a mapping `MADV_DONTNEED` only
//! drops page-table entries. The mappings are looked up once (reading
//! `/proc/self/smaps` costs a millisecond or two); after that a release is
//! a few system calls, and the whole cost, faults of the next tick
//! included, is under a millisecond per tick. While a debugger is attached
//! nothing is dropped, as its breakpoints are private copies of code pages.

use std::fs;
use std::sync::OnceLock;

/// Returns freed heap to the system and drops the executable's clean pages
/// from the process. Best effort: a failure is logged at debug level.
pub fn release_unused_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only walks glibc's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
    match drop_clean_executable_pages() {
        Ok(bytes) => log::trace!("dropped {} KiB of code mappings", bytes / 1024),
        Err(err) => log::debug!("cannot drop the code mappings: {err}"),
    }
}

/// One mapping of `/proc/self/smaps`, as far as the decision needs it.
#[derive(Debug, PartialEq, Eq)]
struct Mapping {
    start: usize,
    end: usize,
    writable: bool,
    path: String,
    /// Anonymous (copy-on-write or never file-backed) kB in the mapping,
    /// resident (`anonymous_kb`) or swapped out (`swap_kb`).
    /// (`Private_Dirty` is no guide: a file page not yet written back to
    /// disk counts there, and it stays in the page cache all the same.)
    anonymous_kb: u64,
    swap_kb: u64,
}

impl Mapping {
    /// A mapping whose pages can all be dropped and read back unchanged.
    fn is_clean_code_of(&self, exe: &str) -> bool {
        self.path == exe && !self.writable && self.anonymous_kb == 0 && self.swap_kb == 0
    }
}

/// Parses the text of `/proc/PID/smaps`.
fn parse_smaps(text: &str) -> Vec<Mapping> {
    let mut maps: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some((start, end)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            ) {
                let perms = fields.next().unwrap_or("");
                // offset, device, inode, then the path (which may hold spaces).
                let path: Vec<&str> = fields.skip(3).collect();
                maps.push(Mapping {
                    start,
                    end,
                    writable: perms.as_bytes().get(1) == Some(&b'w'),
                    path: path.join(" "),
                    // Unknown until the fields say otherwise: not dropped.
                    anonymous_kb: u64::MAX,
                    // Absent (no swap configured) means none.
                    swap_kb: 0,
                });
                continue;
            }
        }
        if let (Some(m), "Anonymous:" | "Swap:") = (maps.last_mut(), first) {
            // A private page that is swapped out is no longer "Anonymous"
            // but is just as much the process's own: count both.
            let kb = fields.next().and_then(|v| v.parse::<u64>().ok());
            let slot = if first == "Swap:" {
                &mut m.swap_kb
            } else {
                &mut m.anonymous_kb
            };
            *slot = kb.unwrap_or(u64::MAX);
        }
    }
    maps
}

/// The executable's clean read-only mappings, found once: they do not
/// move, and nothing but a debugger writes to them (see [`is_traced`]).
static CODE_RANGES: OnceLock<Vec<(usize, usize)>> = OnceLock::new();

/// Reads `/proc/self/smaps` (a walk over every page table, about a
/// millisecond) for the mappings [`Mapping::is_clean_code_of`] accepts.
fn find_code_ranges() -> std::io::Result<Vec<(usize, usize)>> {
    let exe = fs::read_link("/proc/self/exe")?;
    let exe = exe.to_string_lossy();
    let smaps = fs::read_to_string("/proc/self/smaps")?;
    Ok(parse_smaps(&smaps)
        .into_iter()
        .filter(|m| m.is_clean_code_of(&exe))
        .map(|m| (m.start, m.end))
        .collect())
}

/// Whether a debugger (or strace) is attached: its breakpoints are private
/// copies of code pages, which `MADV_DONTNEED` would silently drop.
fn is_traced() -> bool {
    fs::read_to_string("/proc/self/status").map_or(true, |s| tracer_in(&s))
}

/// Whether a `/proc/PID/status` text names a tracer.
fn tracer_in(status: &str) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("TracerPid:"))
        .is_none_or(|pid| pid.trim() != "0")
}

/// `MADV_DONTNEED` on the executable's clean read-only mappings; returns
/// how many bytes of address space were advised.
fn drop_clean_executable_pages() -> std::io::Result<usize> {
    if is_traced() {
        return Ok(0);
    }
    let ranges = match CODE_RANGES.get() {
        Some(r) => r,
        None => {
            let found = find_code_ranges()?;
            CODE_RANGES.get_or_init(|| found)
        }
    };
    let mut advised = 0;
    for &(start, end) in ranges {
        let len = end - start;
        // SAFETY: the range is a whole mapping of the executable that is
        // not writable and held no private page when it was found; only a
        // debugger could have written to it since, and none is attached.
        // Dropping its page-table entries loses nothing: the next access
        // maps the same file page again. No Rust reference points into it
        // as data that could change: its content stays the file's.
        let rc = unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        advised += len;
    }
    Ok(advised)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0c0a00000-55d0c0b00000 r--p 00000000 fe:01 1234 /usr/bin/picomon
Rss:                 512 kB
Anonymous:             0 kB
Private_Dirty:         0 kB
55d0c0b00000-55d0c1000000 r-xp 00100000 fe:01 1234 /usr/bin/picomon
Anonymous:             0 kB
Private_Dirty:         0 kB
55d0c1000000-55d0c1080000 r--p 00600000 fe:01 1234 /usr/bin/picomon
Anonymous:           200 kB
Private_Dirty:       200 kB
55d0c1080000-55d0c1090000 rw-p 00680000 fe:01 1234 /usr/bin/picomon
Anonymous:            64 kB
Private_Dirty:        64 kB
55d0c1090000-55d0c10a0000 r-xp 00690000 fe:01 1234 /usr/bin/picomon
Anonymous:             0 kB
Swap:                  4 kB
7f0000000000-7f0000200000 r-xp 00000000 fe:01 99 /usr/lib/x86_64-linux-gnu/libc.so.6
Anonymous:             0 kB
Private_Dirty:         0 kB
7f0000400000-7f0000500000 rw-p 00000000 00:00 0
Anonymous:          1024 kB
Private_Dirty:      1024 kB
";

    #[test]
    fn only_the_executables_clean_read_only_mappings_are_dropped() {
        let maps = parse_smaps(SMAPS);
        assert_eq!(maps.len(), 7);
        let chosen: Vec<(usize, usize)> = maps
            .iter()
            .filter(|m| m.is_clean_code_of("/usr/bin/picomon"))
            .map(|m| (m.start, m.end))
            .collect();
        // Not the relocated read-only part (RELRO: private pages), not the
        // data, not code with a private page swapped out, not a library,
        // not the heap.
        assert_eq!(
            chosen,
            vec![
                (0x55d0c0a00000, 0x55d0c0b00000),
                (0x55d0c0b00000, 0x55d0c1000000)
            ]
        );
    }

    #[test]
    fn a_tracer_is_seen_in_the_status() {
        assert!(!tracer_in("Name:\tpicomon\nTracerPid:\t0\nUid:\t0\n"));
        assert!(tracer_in("Name:\tpicomon\nTracerPid:\t4242\nUid:\t0\n"));
        // A status without the line: assume the worst, leave the code alone.
        assert!(tracer_in("Name:\tpicomon\n"));
    }

    #[test]
    fn a_path_with_spaces_is_kept_whole() {
        let maps = parse_smaps(
            "1000-2000 r-xp 00000000 fe:01 7 /opt/my tools/picomon (deleted)\nAnonymous: 0 kB\n",
        );
        assert_eq!(maps[0].path, "/opt/my tools/picomon (deleted)");
    }

    #[test]
    fn the_running_test_binary_drops_its_code_pages_and_runs_on() {
        // The real thing on this process: the test binary's text is advised,
        // and the code and constant data read back the same afterwards.
        let advised = drop_clean_executable_pages().unwrap();
        assert!(
            advised > 0 || is_traced(),
            "no mapping of the executable was advised"
        );
        // The second time uses the ranges found the first time.
        assert_eq!(drop_clean_executable_pages().unwrap(), advised);
        let text = String::from("still here");
        release_unused_memory();
        assert_eq!(text, "still here");
    }
}
