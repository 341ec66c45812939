//! Wide-framework benchmark: a framework of many indicators (default 10,000 indicators
//! in 2,000 components, 1,000 territories, one year), timed end to end in release mode.
//! Memory and time once grew with the square of the number of indicators (planning one
//! query per node, rescanning the pipeline file for every location); this keeps them
//! in view.
//!
//!     cargo bench --bench wide_framework
//!     BENCH_INDICATORS=20000 cargo bench --bench wide_framework
//!
//! Prints the run's wall time, stage timings and the process's peak resident memory.
//! No assertions: the machine is shared and noisy; the closing note quotes the figures.

use std::io::{BufWriter, Write};

mod common;

use bienvivre::synth::{self, SynthSpec};
use common::{env_or, peak_rss_mib, run_timed};

fn main() {
    let spec = SynthSpec {
        territories: env_or("BENCH_TERRITORIES", 1_000),
        groups: 20,
        years: env_or("BENCH_YEARS", 1),
        first_year: 2024,
        indicators: env_or("BENCH_INDICATORS", 10_000),
        missing: 0.02,
        seed: 11,
        full_precision: false,
    };
    let dir = std::env::temp_dir().join(format!("bienvivre-wide-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create bench dir");
    let data = dir.join("wide.csv");
    let pipeline = dir.join("wide.toml");
    let mut w = BufWriter::new(std::fs::File::create(&data).expect("create data"));
    synth::write_csv(&spec, &mut w).expect("generate");
    w.flush().expect("flush");
    drop(w);
    std::fs::write(&pipeline, synth::pipeline_toml(&spec, "wide.csv", "wide")).expect("pipeline");
    let size = std::fs::metadata(&data).map(|m| m.len()).unwrap_or(0);
    let toml_size = std::fs::metadata(&pipeline).map(|m| m.len()).unwrap_or(0);
    println!(
        "{} indicators × {} territories × {} year(s): {:.1} MiB CSV, {:.1} MiB pipeline file",
        spec.indicators,
        spec.territories,
        spec.years,
        size as f64 / 1048576.0,
        toml_size as f64 / 1048576.0,
    );
    let before = peak_rss_mib();
    let (summary, wall) = run_timed(pipeline, dir.join("out"));
    println!("run: {wall:.2} s wall");
    for (stage, ms) in &summary.manifest.as_ref().expect("a run").run.timings_ms {
        println!("  {stage:>8}: {ms} ms");
    }
    println!(
        "peak RSS: {:.0} MiB (before the run: {:.0} MiB)",
        peak_rss_mib().unwrap_or(f64::NAN),
        before.unwrap_or(f64::NAN)
    );
    for f in ["scores.parquet", "scores.csv", "scores_wide.csv"] {
        if let Ok(m) = std::fs::metadata(dir.join("out").join(f)) {
            println!("  {f}: {:.0} MiB", m.len() as f64 / 1048576.0);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
