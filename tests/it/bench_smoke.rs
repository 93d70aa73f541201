//! The benchmark suite's own figures (BENCHMARKS.md): `bench/run --smoke
//! --only 3.4,3.5,9` against the binaries this test run built must give a
//! figure for each of its rows: the sizes of both executables, the config
//! evaluation and how long an endless loop runs. A few seconds, where the
//! whole smoke run took half a minute to check a table's shape. Timings
//! are not judged here (a loaded machine says nothing about them); the
//! full run is a separate command.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The rows run, and the text that follows each one's figure.
const FIGURES: &[(&str, &str)] = &[
    ("3.4", " MB ("),
    ("3.5", " MB ("),
    ("9.1", " s wall, "),
    ("9.2", " s wall ("),
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
        .args(["--only", "3.4,3.5,9", "--no-install"])
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
fn smoke_run_gives_a_figure_for_each_size_and_config_row() {
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
    for (id, unit) in FIGURES {
        let rows = row(&table, id);
        assert_eq!(rows.len(), 1, "row {id} must appear once:\n{table}");
        let result = rows[0][2];
        let figure: f64 = result
            .split_once(unit)
            .and_then(|(n, _)| n.parse().ok())
            .unwrap_or_else(|| {
                panic!("row {id} should start with a figure and {unit:?}: {result:?}")
            });
        assert!(figure > 0.0, "row {id}: {result:?}");
    }
}
