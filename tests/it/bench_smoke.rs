//! The benchmark suite in smoke mode (SPEC §11, BENCHMARKS.md): `bench/run
//! --smoke` runs every measurement with tiny N against the real binary and
//! must write a well-formed table holding every row, so the suite cannot
//! rot while picomon changes. Timings are not asserted here: a loaded CI
//! machine says nothing about them; the full run is a separate command.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Every row the suite reports, in order (bench/picobench/table.py).
const ROWS: &[&str] = &[
    "1.1", "1.2", "1.3", "1.4", "1.5", "1.6", "1.7", "1.8", "1.9", "2.1", "2.2", "2.3", "2.4",
    "2.5", "2.6", "2.7", "3.1", "3.2", "3.3", "3.4", "4.1", "5.1", "5.2", "6.1", "7.1", "7.2",
    "7.3", "8.1",
];

/// What a row may conclude; "error" (a broken measurement) is not among
/// them.
const VERDICTS: &[&str] = &["pass", "MISS", "info", "skipped", "not available yet"];

/// Rows that measure picomon itself: they must carry a figure, never be
/// skipped.
const MEASURED: &[(&str, &str)] = &[
    ("1.1", "x ("),
    ("1.2", "x ("),
    ("1.3", " s wall"),
    ("1.4", "x ("),
    // One daemon tick against -1 and against the floor.
    ("1.8", "x ("),
    ("1.9", "x ("),
    ("2.1", " s / "),
    ("2.2", " s / "),
    // Memory: private first, PSS and RSS beside it.
    ("2.5", " MiB private (PSS "),
    ("3.1", " MiB private (PSS "),
    ("3.2", " MiB private (PSS "),
    ("3.3", " MiB private (PSS "),
    // The stripped executable.
    ("3.4", " MB ("),
    ("4.1", " s CPU"),
    ("5.1", "process gone when reported: yes"),
    ("5.2", " s after start"),
    // The control socket under load: the ratio of the p99 tick lateness,
    // the runs' time, the status answers served.
    ("7.1", "x (p99 "),
    ("7.2", " ms p50, "),
    ("7.3", " answers/s ("),
    // The HTTP listener's /metrics.
    ("8.1", " ms median (min "),
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the smoke suite with a deadline (polling, not a fixed sleep);
/// returns its exit status and stderr.
fn run_smoke(out: &Path, work: &Path) -> (std::process::ExitStatus, String) {
    let err_path = work.with_extension("stderr");
    let err_file = fs::File::create(&err_path).expect("create stderr file");
    let mut child = Command::new(repo().join("bench/run"))
        .arg("--smoke")
        .arg("--picomon")
        .arg(env!("CARGO_BIN_EXE_picomon"))
        .arg("--out")
        .arg(out)
        .arg("--work")
        .arg(work)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err_file)
        .spawn()
        .expect("start bench/run (needs python3)");
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for bench/run") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "bench/run --smoke still running after 300 s; stderr:\n{}",
                fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    (status, fs::read_to_string(&err_path).unwrap_or_default())
}

/// The cells of the table row whose first cell is `id`.
fn row<'a>(table: &'a str, id: &str) -> Vec<Vec<&'a str>> {
    table
        .lines()
        .filter(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect::<Vec<_>>()
        })
        .filter(|cells| cells.first() == Some(&id))
        .collect()
}

#[test]
fn smoke_run_writes_a_table_with_every_row() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("table.md");
    let work = dir.path().join("work");
    let (status, stderr) = run_smoke(&out, &work);
    let table = fs::read_to_string(&out)
        .unwrap_or_else(|e| panic!("no table at {}: {e}; stderr:\n{stderr}", out.display()));
    assert!(
        status.success(),
        "bench/run --smoke failed ({status}); table:\n{table}\nstderr:\n{stderr}"
    );
    assert!(
        table.contains("| # | measurement | result | target | verdict |"),
        "{table}"
    );
    assert!(table.contains("- machine: "), "{table}");
    for id in ROWS {
        let rows = row(&table, id);
        assert_eq!(rows.len(), 1, "row {id} must appear once:\n{table}");
        let cells = &rows[0];
        assert_eq!(cells.len(), 5, "row {id} must have 5 cells: {cells:?}");
        assert!(!cells[2].is_empty(), "row {id} has no result: {cells:?}");
        assert!(
            VERDICTS.contains(&cells[4]),
            "row {id} has verdict {:?}:\n{table}\nstderr:\n{stderr}",
            cells[4]
        );
    }
    // The peers' memory is read the same way as picomon's, when they ran.
    for id in ["2.6", "2.7"] {
        let cells = &row(&table, id)[0];
        assert!(
            cells[4] == "skipped" || cells[2].contains(" MiB private (PSS "),
            "row {id} should show private memory and PSS: {cells:?}"
        );
    }
    for (id, shape) in MEASURED {
        let cells = &row(&table, id)[0];
        assert!(
            cells[2].contains(shape),
            "row {id} should show {shape:?}: {cells:?}"
        );
        assert!(
            cells[2].starts_with(|c: char| c.is_ascii_digit() || c == '+'),
            "row {id} should start with a figure: {cells:?}"
        );
    }
}
