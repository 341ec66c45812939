//! A run killed at any moment leaves the previous outputs intact, and the next good run
//! leaves no temporary directory behind; SIGTERM and SIGINT clean up before exiting.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;

/// A project whose run takes seconds: enough rows that reading, computing and writing
/// each take a visible share.
fn big_project() -> TempDir {
    let dir = TempDir::new("kill");
    let out = bienvivre(
        dir.path(),
        &[
            "generate",
            "--out",
            "big.csv",
            "--pipeline",
            "big.toml",
            "--territories",
            "20000",
            "--years",
            "3",
            "--indicators",
            "24",
            "-q",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    dir
}

fn spawn_run(dir: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_bienvivre"))
        .args(["run", "big.toml", "-o", "out", "-q"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bienvivre")
}

/// Names in `dir` other than the project's own files and `out`.
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !["big.csv", "big.toml", "out"].contains(&n.as_str()))
        .collect()
}

fn outputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.join("out"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Whether the run has started writing (its temporary directory exists).
fn writing(dir: &Path) -> bool {
    leftovers(dir).iter().any(|n| n.starts_with(".out.tmp-"))
}

fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok);
}

#[test]
fn killed_runs_never_damage_outputs_and_leave_nothing_behind() {
    let dir = big_project();
    // A first good run, timed.
    let start = Instant::now();
    let out = spawn_run(dir.path()).wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let full = start.elapsed();
    let good = outputs(dir.path());
    assert!(!good.is_empty());

    // SIGKILL early (reading), midway (computing) and while writing.
    for (moment, at) in [("load", 0.1), ("compute", 0.45)] {
        let mut child = spawn_run(dir.path());
        std::thread::sleep(full.mul_f64(at));
        let finished = child.try_wait().unwrap().is_some();
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!finished, "the run ended before the kill ({moment})");
        assert_eq!(
            outputs(dir.path()),
            good,
            "outputs changed by a kill ({moment})"
        );
    }
    let mut child = spawn_run(dir.path());
    let deadline = Instant::now() + full * 3;
    while !writing(dir.path()) {
        assert!(Instant::now() < deadline, "the run never started writing");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before writing"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        outputs(dir.path()),
        good,
        "outputs changed by a kill while writing"
    );
    // SIGKILL cannot be caught: the temporary directory stays until the next run.
    assert!(writing(dir.path()), "{:?}", leftovers(dir.path()));

    // SIGTERM and SIGINT while writing: cleaned up before exiting, outputs intact.
    for (name, code) in [("TERM", 143), ("INT", 130)] {
        let mut child = spawn_run(dir.path());
        let deadline = Instant::now() + full * 3;
        // Wait for this run's own temporary directory.
        let own = format!(".out.tmp-{}", child.id());
        while !leftovers(dir.path()).contains(&own) {
            assert!(Instant::now() < deadline, "the run never started writing");
            assert!(
                child.try_wait().unwrap().is_none(),
                "the run ended before writing"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        signal(&child, name);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(code), "SIG{name}");
        assert!(
            !leftovers(dir.path()).contains(&own),
            "SIG{name} left {own}: {:?}",
            leftovers(dir.path())
        );
        assert_eq!(outputs(dir.path()), good, "outputs changed by SIG{name}");
    }

    // The next good run removes what the killed ones left.
    let out = spawn_run(dir.path()).wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(leftovers(dir.path()), Vec::<String>::new());
    // The same data outputs (the manifest has the run's timings).
    let data = |v: Vec<(String, Vec<u8>)>| -> Vec<(String, Vec<u8>)> {
        v.into_iter()
            .filter(|(n, _)| n != "manifest.json")
            .collect()
    };
    assert_eq!(data(outputs(dir.path())), data(good));
}
