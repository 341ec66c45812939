//! RCI benchmark: a generated survey (default 10,000,000 respondents × 20 items, 500
//! territories, one subgroup variable) scored end to end in release mode.
//!
//!     cargo bench --bench rci_run
//!     BENCH_RESPONDENTS=1000000 BENCH_BOOTSTRAP=200 cargo bench --bench rci_run
//!
//! Prints generation time, run wall time, stage timings and peak resident memory (VmHWM).
//! The bootstrap dominates on large samples: its replicate count is BENCH_BOOTSTRAP
//! (default 100). No assertions: the machine is shared and noisy.

use std::io::{BufWriter, Write};
use std::time::Instant;

mod common;

use bienvivre::synth::{self, SurveySpec};
use common::{env_or, peak_rss_mib, run_timed};

fn main() {
    let spec = SurveySpec {
        respondents: env_or("BENCH_RESPONDENTS", 10_000_000),
        territories: env_or("BENCH_TERRITORIES", 500),
        items: env_or("BENCH_ITEMS", 20),
        missing: 0.02,
        seed: 11,
    };
    let bootstrap = env_or("BENCH_BOOTSTRAP", 100);
    let dir = std::env::temp_dir().join(format!("bienvivre-rci-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create bench dir");
    let data = dir.join("survey.csv");
    let pipeline = dir.join("survey.toml");

    let t = Instant::now();
    let mut w = BufWriter::new(std::fs::File::create(&data).expect("create data"));
    synth::write_survey_csv(&spec, &mut w).expect("generate");
    w.flush().expect("flush");
    std::fs::write(
        &pipeline,
        synth::survey_pipeline_toml(&spec, "survey.csv", bootstrap),
    )
    .expect("pipeline");
    let size = std::fs::metadata(&data).map(|m| m.len()).unwrap_or(0);
    println!(
        "generated {} respondents × {} items in {} territories ({:.0} MiB CSV) in {:.1} s",
        spec.respondents,
        spec.items,
        spec.territories,
        size as f64 / 1048576.0,
        t.elapsed().as_secs_f64()
    );

    let (summary, wall) = run_timed(pipeline, dir.join("out"));
    println!(
        "run: {wall:.2} s wall ({} bootstrap replicates), {} respondents scored",
        bootstrap,
        summary
            .manifest
            .as_ref()
            .expect("a run")
            .rci
            .as_ref()
            .map_or(0, |r| r.scored)
    );
    for (stage, ms) in &summary.manifest.as_ref().expect("a run").run.timings_ms {
        println!("  {stage:>10}: {ms} ms");
    }
    println!("peak RSS: {:.0} MiB", peak_rss_mib().unwrap_or(f64::NAN));
    let _ = std::fs::remove_dir_all(&dir);
}
