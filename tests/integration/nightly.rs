//! Nightly operations: the run history (runs/, latest, retention, --skip-unchanged), the
//! lock between concurrent runs, and a killed run leaving the history as it was.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;

/// The demo project copied into a temp dir (data and pipeline), so runs can change it.
fn demo_project() -> TempDir {
    let dir = TempDir::new("nightly");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    std::fs::copy(root().join("data/demo.csv"), dir.join("data/demo.csv")).unwrap();
    // Without the chart pack: the history is what these tests look at.
    let toml = std::fs::read_to_string(root().join("pipelines/demo.toml")).unwrap();
    let toml = &toml[..toml.find("[charts]").expect("the demo has a pack")];
    std::fs::write(dir.join("pipelines/demo.toml"), toml).unwrap();
    dir
}

fn runs_listed(dir: &Path) -> Vec<String> {
    let out = bienvivre(dir, &["runs", "pipelines/demo.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .collect()
}

fn latest(dir: &Path) -> String {
    std::fs::read_link(dir.join("outputs/demo/latest"))
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn three_nightly_runs_then_retention() {
    let dir = demo_project();
    let run = |args: &[&str]| {
        let mut a = vec!["run", "pipelines/demo.toml", "--no-progress"];
        a.extend_from_slice(args);
        bienvivre(dir.path(), &a)
    };
    let first = run(&[]);
    assert!(first.status.success(), "{}", stderr(&first));
    // Nothing new: --skip-unchanged computes nothing and says so.
    let again = run(&["--skip-unchanged"]);
    assert_eq!(again.status.code(), Some(0));
    assert!(
        stdout(&again).contains("unchanged since run"),
        "{}",
        stdout(&again)
    );
    assert_eq!(runs_listed(dir.path()).len(), 1);
    // Without the flag a rerun is a run of its own.
    assert!(run(&["-q"]).status.success());
    // The data changes before the third night.
    let csv = std::fs::read_to_string(dir.join("data/demo.csv")).unwrap();
    std::fs::write(
        dir.join("data/demo.csv"),
        csv.replacen(",77.1,", ",79.9,", 1),
    )
    .unwrap();
    let third = run(&["-q", "--skip-unchanged"]);
    assert!(third.status.success(), "{}", stderr(&third));
    let ids = runs_listed(dir.path());
    assert_eq!(ids.len(), 3);
    assert_eq!(latest(dir.path()), ids[2]);
    let listing = stdout(&bienvivre(dir.path(), &["runs", "pipelines/demo.toml"]));
    let third_line = listing.lines().last().unwrap();
    assert!(
        third_line.contains("latest") && third_line.contains("data/demo.csv"),
        "{listing}"
    );
    // The manifest says which run it is; its volatile fields sit under "run".
    let m: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("outputs/demo/latest/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(m["run"]["id"], ids[2].as_str());
    assert_eq!(m["fingerprint"].as_str().unwrap().len(), 64);
    // Retention: keep = 2 prunes the oldest, never latest.
    let toml = std::fs::read_to_string(dir.join("pipelines/demo.toml")).unwrap();
    std::fs::write(
        dir.join("pipelines/demo.toml"),
        format!("{toml}\n[output]\nkeep = 2\n"),
    )
    .unwrap();
    assert!(run(&["-q"]).status.success());
    let after = runs_listed(dir.path());
    assert_eq!(after.len(), 2);
    assert_eq!(after[0], ids[2]);
    assert_eq!(latest(dir.path()), after[1]);
}

#[test]
fn two_concurrent_runs_one_waits_or_is_refused() {
    let dir = demo_project();
    let spawn = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_bienvivre"))
            .args(["run", "pipelines/demo.toml", "-q"])
            .args(extra)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    assert!(
        bienvivre(dir.path(), &["run", "pipelines/demo.toml", "-q"])
            .status
            .success()
    );
    let before = runs_listed(dir.path()).len();
    // Start a run and wait until it holds its lock (the kernel's list of locks says so),
    // then start a second one, which must be refused.
    let first = spawn(&[]);
    let holds = |pid: u32| {
        std::fs::read_to_string("/proc/locks")
            .unwrap_or_default()
            .lines()
            .any(|l| l.contains("FLOCK") && l.split_whitespace().nth(4) == Some(&pid.to_string()))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !holds(first.id()) {
        assert!(
            Instant::now() < deadline,
            "the first run never took its lock"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let second = bienvivre(dir.path(), &["run", "pipelines/demo.toml", "-q"]);
    let first = first.wait_with_output().unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(second.status.code(), Some(4), "{}", stderr(&second));
    // Exactly one more complete run.
    assert_eq!(runs_listed(dir.path()).len(), before + 1);
    let message = stderr(&second);
    assert!(
        message.contains("outputs/demo is locked by another run (pid ")
            && message.contains(", started 20"),
        "{message}"
    );
    // With --wait, the second run waits for the first and then runs.
    let before = runs_listed(dir.path()).len();
    let a = spawn(&[]);
    let b = spawn(&["--wait", "60"]);
    assert!(a.wait_with_output().unwrap().status.success());
    assert!(b.wait_with_output().unwrap().status.success());
    assert_eq!(runs_listed(dir.path()).len(), before + 2);
}

#[test]
fn a_killed_run_leaves_latest_and_the_list_as_they_were() {
    let dir = demo_project();
    assert!(
        bienvivre(dir.path(), &["run", "pipelines/demo.toml", "-q"])
            .status
            .success()
    );
    let mut before = (runs_listed(dir.path()), latest(dir.path()));
    for delay in [50, 200, 500] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bienvivre"))
            .args(["run", "pipelines/demo.toml", "-q"])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill();
        let status = child.wait().unwrap();
        if status.success() {
            // It finished before the kill: a complete run, listed and latest.
            before = (runs_listed(dir.path()), latest(dir.path()));
            continue;
        }
        assert_eq!(
            (runs_listed(dir.path()), latest(dir.path())),
            before,
            "killed after {delay} ms"
        );
    }
}
