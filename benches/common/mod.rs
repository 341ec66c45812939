//! Helpers shared by the benchmarks: sizes from the environment, peak memory.

// Each benchmark uses a part of these helpers.
#![allow(dead_code)]

/// `name` from the environment as a number, or `default`.
pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Peak resident memory of this process so far (VmHWM), in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Runs a pipeline into `out` in this process; returns the summary and the wall time.
pub fn run_timed(
    pipeline: std::path::PathBuf,
    out: std::path::PathBuf,
) -> (bienvivre::run::RunSummary, f64) {
    let options = bienvivre::run::RunOptions {
        pipeline,
        output_dir: Some(out),
        ..Default::default()
    };
    let t = std::time::Instant::now();
    let summary = bienvivre::run::run(&options, &mut bienvivre::progress::Progress::hidden())
        .unwrap_or_else(|e| panic!("run failed: {e}"));
    (summary, t.elapsed().as_secs_f64())
}

/// A run of the release binary: wall time, and stages and peak memory from its manifest.
pub struct Run {
    pub wall: f64,
    pub peak_mib: f64,
    pub stages: Vec<(String, f64)>,
}

impl Run {
    pub fn stage(&self, name: &str) -> f64 {
        self.stages
            .iter()
            .find(|(n, _)| n == name)
            .map_or(f64::NAN, |(_, s)| *s)
    }

    pub fn stages_text(&self) -> String {
        self.stages
            .iter()
            .map(|(n, s)| format!("{n} {s:.2} s"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Runs the release binary on `pipeline` into `out`, in its own process (so its peak
/// memory is its own); stages and peak memory from its manifest.
pub fn run_named(pipeline: &std::path::Path, out: &std::path::Path) -> Run {
    let t = std::time::Instant::now();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_bienvivre"))
        .args(["run", "-q", "--no-progress", "-o"])
        .arg(out)
        .arg(pipeline)
        .output()
        .expect("run bienvivre");
    let wall = t.elapsed().as_secs_f64();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).expect("manifest"))
            .expect("manifest JSON");
    let stages = m["run"]["timings_ms"]
        .as_object()
        .expect("timings")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_f64().unwrap_or(f64::NAN) / 1000.0))
        .collect();
    Run {
        wall,
        peak_mib: m["run"]["peak_rss_mib"].as_f64().unwrap_or(f64::NAN),
        stages,
    }
}

/// Size of a file in MiB (0 when it is missing).
pub fn size_mib(p: &std::path::Path) -> f64 {
    std::fs::metadata(p).map_or(0.0, |m| m.len() as f64 / 1048576.0)
}

/// Removes the benchmark's directory, unless BENCH_KEEP=1 asks to keep it.
pub fn keep_or_remove(dir: &std::path::Path) {
    if env_or("BENCH_KEEP", 0) == 1 {
        println!("kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(dir);
    }
}
