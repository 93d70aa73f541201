//! Returning freed heap to the system after the big one-off allocations
//! (an idle daemon's private memory stays small).
//!
//! Evaluating a config builds the Rhai engine, its AST and every check
//! spec; once the daemon has taken the checks, most of that is freed, but
//! glibc's allocator keeps the freed pages in its arenas. [`trim_heap`]
//! gives them back with `malloc_trim(0)`. The daemon calls it after
//! start-up and after a reload, and when the runs of a tick are done if
//! the tick was the first after either (every check at once) or started
//! [`BURST`] runs or more: their results, outputs and queue entries were
//! allocated at once and are freed once handled. Measured with 100,000
//! `tcp` checks, glibc kept 30 MiB of such freed heap from tick 2 on when
//! only the first tick was trimmed. A tick of fewer runs reuses what the
//! last one freed, so trimming it would only move pages back and forth.
//!
//! The executable's own code pages are left alone: they are shared page
//! cache that the kernel reclaims under memory pressure anyway, so dropping
//! them from the process would lower its RSS figure but no memory the
//! machine really has to keep for it.

/// Runs in one tick from which its end returns the freed heap.
pub const BURST: usize = 1000;

/// Sets glibc's trim threshold to its documented default, 128 KiB, which
/// also fixes it there: left alone, glibc raises the threshold (and the
/// mmap threshold with it) after the first large block is freed, and then
/// keeps the top of an arena resident, freed but never given back, up to
/// that size. The config's evaluation peaks at megabytes; with the fixed
/// threshold a free gives the top back at once.
/// Measured with 10,000 checks (`bench/run`, row 3.3): 10.5 MiB private
/// instead of 11.3 to 12.9, depending on how the arena happened to be laid
/// out. Called once, before the config is read.
pub fn tune_allocator() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets a parameter of glibc's allocator.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
    }
}

/// Returns the heap glibc holds free to the system. Best effort and cheap
/// (a walk over the allocator's own free lists); a no-op on other C
/// libraries.
pub fn trim_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim takes no pointer and only walks glibc's own free
    // lists under its arena locks; it is safe to call from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimming_keeps_live_allocations_intact() {
        let kept = vec![7u8; 1 << 20];
        let freed = vec![0u8; 8 << 20];
        drop(freed);
        trim_heap();
        assert!(kept.iter().all(|&b| b == 7));
    }
}
