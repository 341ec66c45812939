//! Nightly operations: the run history (runs/, latest, retention, --skip-unchanged), the
//! lock between concurrent runs, and a killed run leaving the history as it was.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;

/// The synthetic project copied into a temp dir (data and pipeline), so runs can change it.
fn synthetic_project() -> TempDir {
    let dir = TempDir::new("nightly");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    std::fs::copy(
        root().join("data/synthetic.csv"),
        dir.join("data/synthetic.csv"),
    )
    .unwrap();
    // Without the chart pack: the history is what these tests look at.
    let toml = std::fs::read_to_string(root().join("pipelines/synthetic.toml")).unwrap();
    let toml = &toml[..toml
        .find("[charts]")
        .expect("the synthetic pipeline has a pack")];
    std::fs::write(dir.join("pipelines/synthetic.toml"), toml).unwrap();
    dir
}

fn runs_listed(dir: &Path) -> Vec<String> {
    let out = bienvivre(dir, &["runs", "pipelines/synthetic.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .collect()
}

fn latest(dir: &Path) -> String {
    std::fs::read_link(dir.join("outputs/synthetic/latest"))
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn three_nightly_runs_then_retention() {
    let dir = synthetic_project();
    let run = |args: &[&str]| {
        let mut a = vec!["run", "pipelines/synthetic.toml", "--no-progress"];
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
    let csv = std::fs::read_to_string(dir.join("data/synthetic.csv")).unwrap();
    std::fs::write(
        dir.join("data/synthetic.csv"),
        csv.replacen(",77.1,", ",79.9,", 1),
    )
    .unwrap();
    let third = run(&["-q", "--skip-unchanged"]);
    assert!(third.status.success(), "{}", stderr(&third));
    let ids = runs_listed(dir.path());
    assert_eq!(ids.len(), 3);
    assert_eq!(latest(dir.path()), ids[2]);
    let listing = stdout(&bienvivre(
        dir.path(),
        &["runs", "pipelines/synthetic.toml"],
    ));
    let third_line = listing.lines().last().unwrap();
    assert!(
        third_line.contains("latest") && third_line.contains("data/synthetic.csv"),
        "{listing}"
    );
    // The manifest says which run it is; its volatile fields sit under "run".
    let m: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("outputs/synthetic/latest/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(m["run"]["id"], ids[2].as_str());
    assert_eq!(m["fingerprint"].as_str().unwrap().len(), 64);
    // Retention: keep = 2 prunes the oldest, never latest.
    let toml = std::fs::read_to_string(dir.join("pipelines/synthetic.toml")).unwrap();
    std::fs::write(
        dir.join("pipelines/synthetic.toml"),
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
    let dir = synthetic_project();
    let spawn = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_bienvivre"))
            .args(["run", "pipelines/synthetic.toml", "-q"])
            .args(extra)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    assert!(
        bienvivre(dir.path(), &["run", "pipelines/synthetic.toml", "-q"])
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
    let second = bienvivre(dir.path(), &["run", "pipelines/synthetic.toml", "-q"]);
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
        message.contains("outputs/synthetic is locked by another run (pid ")
            && message.contains(", started 20"),
        "{message}"
    );
    // With --wait, the second run waits for the first and then runs.
    let before = runs_listed(dir.path()).len();
    let a = spawn(&["--wait", "60"]);
    let b = spawn(&["--wait", "60"]);
    assert!(a.wait_with_output().unwrap().status.success());
    assert!(b.wait_with_output().unwrap().status.success());
    assert_eq!(runs_listed(dir.path()).len(), before + 2);
}

#[test]
fn a_killed_run_leaves_latest_and_the_list_as_they_were() {
    let dir = synthetic_project();
    assert!(
        bienvivre(dir.path(), &["run", "pipelines/synthetic.toml", "-q"])
            .status
            .success()
    );
    let mut before = (runs_listed(dir.path()), latest(dir.path()));
    for delay in [50, 200, 500] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bienvivre"))
            .args(["run", "pipelines/synthetic.toml", "-q"])
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

#[test]
fn diff_names_the_movers_the_changed_input_and_fails_on_thresholds() {
    let dir = synthetic_project();
    assert!(
        bienvivre(dir.path(), &["run", "pipelines/synthetic.toml", "-q"])
            .status
            .success()
    );
    // Two territories fall in 2024: life expectancy down, infant mortality up.
    let csv = std::fs::read_to_string(dir.join("data/synthetic.csv")).unwrap();
    let changed: Vec<String> = csv
        .lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split(',').collect();
            if (f[0] == "T00002" || f[0] == "T00010") && f[3] == "2024" {
                f[4] = "71.0";
                f[5] = "11.5";
            }
            f.join(",")
        })
        .collect();
    std::fs::write(dir.join("data/synthetic.csv"), changed.join("\n") + "\n").unwrap();
    assert!(
        bienvivre(dir.path(), &["run", "pipelines/synthetic.toml", "-q"])
            .status
            .success()
    );
    let d = bienvivre(dir.path(), &["diff", "pipelines/synthetic.toml"]);
    assert!(d.status.success(), "{}", stderr(&d));
    let text = stdout(&d);
    assert!(
        text.contains("2 territories moved 5 or more places in the index")
            && text.contains("inputs changed: data/synthetic.csv (")
            && text.contains("config unchanged"),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&stdout(&bienvivre(
        dir.path(),
        &["diff", "pipelines/synthetic.toml", "--json"],
    )))
    .unwrap();
    let movers: Vec<&str> = json["moves"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["level"] == "index")
        .map(|m| m["territory_id"].as_str().unwrap())
        .collect();
    assert_eq!(movers, ["T00010", "T00002"]);
    // The health component made all of each index move (nothing else changed), its
    // indicators split it.
    for a in json["attributions"].as_array().unwrap() {
        let c = a["contributions"].as_array().unwrap();
        let health = c.iter().find(|x| x["node_id"] == "health").unwrap();
        assert!(
            (health["share"].as_f64().unwrap() - 1.0).abs() < 1e-9,
            "{a}"
        );
        let indicators: f64 = c
            .iter()
            .filter(|x| x["level"] == "indicator")
            .map(|x| x["share"].as_f64().unwrap())
            .sum();
        assert!((indicators - 1.0).abs() < 1e-9, "{a}");
    }
    // --fail-on: exit 3 past the threshold, 0 below it.
    let fail = bienvivre(
        dir.path(),
        &[
            "diff",
            "pipelines/synthetic.toml",
            "-q",
            "--fail-on",
            "rank_move>10",
        ],
    );
    assert_eq!(fail.status.code(), Some(3), "{}", stderr(&fail));
    assert!(stderr(&fail).contains("threshold exceeded: an index rank moved 35 places (> 10)"));
    let pass = bienvivre(
        dir.path(),
        &[
            "diff",
            "pipelines/synthetic.toml",
            "-q",
            "--fail-on",
            "rank_move>40",
            "--fail-on",
            "missing>0",
        ],
    );
    assert_eq!(pass.status.code(), Some(0), "{}", stderr(&pass));
}

/// Arithmetic means throughout (the small project): the split of an index move is exact.
/// T1's a goes from 1 to 3 (rescaled 20 → 60, +40) and b from 10 to 20 (lower is better:
/// 80 → 60, −20): c1 = (a + b)/2 moves +10, the index (the mean of c1 and c2) +5. Shares of
/// the move: c1 100%; a +40/(40 − 20) = 200%, b −100%; in points a +10, b −5.
#[test]
fn attribution_of_an_arithmetic_move_worked_by_hand() {
    let dir = small_project(SMALL_TOML, SMALL_CSV);
    assert!(
        bienvivre(dir.path(), &["run", "small.toml", "-q"])
            .status
            .success()
    );
    dir.write(
        "small.csv",
        &SMALL_CSV.replace("T1,One,X,1.0,10,", "T1,One,X,3.0,20,"),
    );
    assert!(
        bienvivre(dir.path(), &["run", "small.toml", "-q"])
            .status
            .success()
    );
    let out = bienvivre(
        dir.path(),
        &[
            "diff",
            "small.toml",
            "--json",
            "--min-rank-move",
            "0",
            "--min-delta",
            "0.5",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let a = json["attributions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["territory_id"] == "T1")
        .expect("T1 moved");
    assert!(
        (a["index_delta"].as_f64().unwrap() - 5.0).abs() < 1e-9,
        "{a}"
    );
    let get = |id: &str| -> (f64, f64) {
        let c = a["contributions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["node_id"] == id)
            .unwrap_or_else(|| panic!("no {id}: {a}"));
        (c["share"].as_f64().unwrap(), c["points"].as_f64().unwrap())
    };
    for (id, share, points) in [("c1", 1.0, 5.0), ("a", 2.0, 10.0), ("b", -1.0, -5.0)] {
        let (s, p) = get(id);
        assert!(
            (s - share).abs() < 1e-9 && (p - points).abs() < 1e-9,
            "{id}: {s} {p}"
        );
    }
}
