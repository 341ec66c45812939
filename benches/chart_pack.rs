//! Chart pack benchmark: profiles for 1,000 territories (radar and trend each, plus the
//! rankings, heatmap and trend pages), rendered from a run's outputs in release mode.
//!
//!     cargo bench --bench chart_pack
//!     BENCH_TERRITORIES=200 cargo bench --bench chart_pack
//!
//! Prints the time of `plot` (rendering only, from the written outputs), the number and
//! size of the files, and peak resident memory. No assertions: the machine is shared.

use std::io::{BufWriter, Write};
use std::time::Instant;

mod common;

use bienvivre::progress::Progress;
use bienvivre::run::{self, RunOptions};
use bienvivre::synth::{self, SynthSpec};
use common::{env_or, peak_rss_mib, run_timed};

fn main() {
    let spec = SynthSpec {
        territories: env_or("BENCH_TERRITORIES", 1000),
        groups: 20,
        years: 3,
        first_year: 2022,
        indicators: 24,
        missing: 0.02,
        seed: 7,
        full_precision: false,
    };
    let dir = std::env::temp_dir().join(format!("bienvivre-chart-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create bench dir");
    let data = dir.join("data.csv");
    let mut w = BufWriter::new(std::fs::File::create(&data).expect("create data"));
    synth::write_csv(&spec, &mut w).expect("generate");
    w.flush().expect("flush");
    let pipeline = dir.join("bench.toml");
    let toml =
        synth::pipeline_toml(&spec, "data.csv", "chart_bench") + "\n[charts]\nprofiles = \"all\"\n";
    std::fs::write(&pipeline, toml).expect("pipeline");

    let options = RunOptions {
        pipeline: pipeline.clone(),
        output_dir: Some(dir.join("out")),
        ..Default::default()
    };
    let (summary, wall) = run_timed(pipeline, dir.join("out"));
    println!(
        "run with the pack: {wall:.2} s wall ({} territories × {} years, {} figures)",
        spec.territories,
        spec.years,
        summary
            .manifest
            .as_ref()
            .expect("a run")
            .charts
            .as_ref()
            .map_or(0, |c| c.figures)
    );
    let t = Instant::now();
    let plot =
        run::plot(&options, &mut Progress::hidden()).unwrap_or_else(|e| panic!("plot failed: {e}"));
    let elapsed = t.elapsed().as_secs_f64();
    let bytes: u64 = walk(&plot.directory);
    println!(
        "plot: {elapsed:.2} s wall for {} figures, {} files, {:.0} MiB ({} profiles: radar + trend + page each)",
        plot.figures,
        plot.files,
        bytes as f64 / 1048576.0,
        spec.territories
    );
    println!("peak RSS: {:.0} MiB", peak_rss_mib().unwrap_or(f64::NAN));
    let _ = std::fs::remove_dir_all(&dir);
}

fn walk(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() {
                        walk(&p)
                    } else {
                        e.metadata().map_or(0, |m| m.len())
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}
