//! The command line as a user meets it: output on success, quiet and verbose modes, exit codes.

use crate::helpers::*;

#[test]
fn quiet_run_prints_nothing() {
    let dir = small_project(SMALL_TOML, SMALL_CSV);
    let out = bienvivre(dir.path(), &["--quiet", "run", "small.toml"]);
    assert!(out.status.success());
    assert_eq!(stdout(&out), "");
    assert_eq!(stderr(&out), "");
    // By default a run goes into the pipeline's history under the working directory:
    // outputs/<pipeline id>/runs/<run id>/, with outputs/<pipeline id>/latest pointing to it.
    assert!(dir.join("outputs/small/latest/scores.csv").exists());
    let runs: Vec<_> = std::fs::read_dir(dir.join("outputs/small/runs"))
        .unwrap()
        .collect();
    assert_eq!(runs.len(), 1);
}

#[test]
fn run_reports_a_one_line_summary_and_no_progress_when_not_a_terminal() {
    let dir = small_project(SMALL_TOML, SMALL_CSV);
    let out = bienvivre(dir.path(), &["run", "small.toml", "-o", "out"]);
    assert!(out.status.success());
    assert_eq!(stdout(&out), "small: 4 territories, 4 indicators → out\n");
    assert_eq!(stderr(&out), "");
}

#[test]
fn verbose_run_shows_stage_timings() {
    let dir = small_project(SMALL_TOML, SMALL_CSV);
    let out = bienvivre(dir.path(), &["run", "small.toml", "-v", "--no-progress"]);
    assert!(out.status.success());
    let err = stderr(&out);
    for stage in ["plan", "load", "compute", "write"] {
        assert!(err.contains(&format!("{stage:>10}: ")), "{err}");
    }
}

#[test]
fn validate_writes_nothing() {
    let dir = small_project(SMALL_TOML, SMALL_CSV);
    let out = bienvivre(dir.path(), &["validate", "small.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "small.toml: ok (4 indicators, 1 sources, 4 territory rows)\n"
    );
    assert!(!dir.join("outputs").exists());
}

#[test]
fn usage_errors_exit_with_2() {
    let dir = TempDir::new("usage");
    let out = bienvivre(dir.path(), &["run"]);
    assert_eq!(out.status.code(), Some(2));
    let out = bienvivre(dir.path(), &["-q", "-v", "run", "x.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let out = bienvivre(dir.path(), &["run", "missing.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("error: cannot read pipeline file missing.toml: "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn warnings_go_to_stderr_unless_quiet() {
    // A value beyond the utopia without clipping rescales above 100: warn, do not fail.
    let csv = SMALL_CSV.replace("T4,Four,Y,4.0", "T4,Four,Y,6.0");
    let dir = small_project(SMALL_TOML, &csv);
    let out = bienvivre(dir.path(), &["run", "small.toml"]);
    assert!(out.status.success());
    assert!(stderr(&out).contains("warning: indicator \"a\": 0 rescaled value(s) below 0 (worse than its dystopia) and 1 above 100"), "{}", stderr(&out));
    let out = bienvivre(dir.path(), &["run", "small.toml", "-q"]);
    assert_eq!(stderr(&out), "");
}

#[test]
fn json_log_lines_parse_and_end_with_a_summary() {
    let dir = small_project(SMALL_TOML, SMALL_CSV);
    let events = |o: &std::process::Output| -> Vec<serde_json::Value> {
        stderr(o)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    };
    let ok = bienvivre(dir.path(), &["run", "small.toml", "--log-format", "json"]);
    assert!(ok.status.success());
    let e = events(&ok);
    let kinds: Vec<&str> = e.iter().map(|v| v["event"].as_str().unwrap()).collect();
    assert!(
        kinds.contains(&"stage_start") && kinds.contains(&"stage_end"),
        "{kinds:?}"
    );
    let last = e.last().unwrap();
    assert_eq!(last["event"], "summary");
    assert_eq!(last["exit_code"], 0);
    let run_id = last["run_id"].as_str().unwrap();
    assert!(dir.join("outputs/small/runs").join(run_id).is_dir());
    for v in &e {
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
    }
    // An error is an event too, with the exit code in the summary.
    let bad = bienvivre(dir.path(), &["run", "nowhere.toml", "--log-format", "json"]);
    assert_eq!(bad.status.code(), Some(2));
    let e = events(&bad);
    assert!(
        e.iter()
            .any(|v| v["event"] == "error"
                && v["message"].as_str().unwrap().contains("nowhere.toml"))
    );
    assert_eq!(e.last().unwrap()["exit_code"], 2);
}
