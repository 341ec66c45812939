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
