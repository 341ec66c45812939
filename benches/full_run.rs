//! Full-run benchmark: generates a large seeded input (default 35,000 territories ×
//! 60 indicators × 10 years, wide CSV) and times `run` on it end to end, in release mode.
//!
//!     cargo bench --bench full_run
//!     BENCH_TERRITORIES=5000 BENCH_YEARS=3 cargo bench --bench full_run
//!
//! Prints generation time, run wall time, stage timings and the process's peak resident
//! memory (VmHWM). No assertions: the machine is shared and noisy.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

mod common;

use bienvivre::synth::{self, SynthSpec};
use common::{env_or, peak_rss_mib, run_timed};

fn main() {
    // `cargo bench` passes `--bench`; anything else (e.g. a filter) is ignored.
    let spec = SynthSpec {
        territories: env_or("BENCH_TERRITORIES", 35_000),
        groups: 100,
        years: env_or("BENCH_YEARS", 10),
        first_year: 2015,
        indicators: env_or("BENCH_INDICATORS", 60),
        missing: 0.02,
        seed: 7,
    };
    let dir = std::env::temp_dir().join(format!("bienvivre-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create bench dir");
    let data = dir.join("bench.csv");
    let pipeline = dir.join("bench.toml");

    let t = Instant::now();
    let mut w = BufWriter::new(std::fs::File::create(&data).expect("create data"));
    synth::write_csv(&spec, &mut w).expect("generate");
    w.flush().expect("flush");
    std::fs::write(&pipeline, synth::pipeline_toml(&spec, "bench.csv", "bench")).expect("pipeline");
    let size = std::fs::metadata(&data).map(|m| m.len()).unwrap_or(0);
    println!(
        "generated {} territories × {} indicators × {} years ({:.0} MiB CSV) in {:.1} s",
        spec.territories,
        spec.indicators,
        spec.years,
        size as f64 / 1048576.0,
        t.elapsed().as_secs_f64()
    );
    let before = peak_rss_mib();

    let (summary, wall) = run_timed(pipeline.clone(), dir.join("out"));
    println!(
        "run: {wall:.2} s wall, {} territory rows",
        summary
            .manifest
            .as_ref()
            .expect("a run")
            .index
            .as_ref()
            .map_or(0, |i| i.counts.rows)
    );
    for (stage, ms) in &summary.manifest.as_ref().expect("a run").run.timings_ms {
        println!("  {stage:>8}: {ms} ms");
    }
    println!(
        "peak RSS: {:.0} MiB (after generation: {:.0} MiB)",
        peak_rss_mib().unwrap_or(f64::NAN),
        before.unwrap_or(f64::NAN)
    );
    let out: PathBuf = dir.join("out");
    for f in ["scores.parquet", "scores.csv", "scores_wide.csv"] {
        if let Ok(m) = std::fs::metadata(out.join(f)) {
            println!("  {f}: {:.0} MiB", m.len() as f64 / 1048576.0);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
