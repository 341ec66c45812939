//! Monte Carlo benchmark (issue 13): the national panel's latest year (default 35,000
//! territories × 60 indicators) with 1,000 runs varying the weights (±25 %), the
//! normalisation (min-max besides the goalposts) and the aggregation rule of dimensions
//! and index (arithmetic, geometric besides the power mean). Target: ≤ 60 s.
//!
//! Usage:
//!
//!     cargo bench --bench uncertainty
//!     BENCH_RUNS=200 BENCH_TERRITORIES=3500 cargo bench --bench uncertainty
//!
//! Prints the wall time of the analysis (load included), the time per run, the runs that
//! succeeded and peak resident memory (VmHWM of this process, generation included).
//! No assertions: the machine is shared and noisy; run it twice and quote the medians.

use std::io::{BufWriter, Write};
use std::time::Instant;

mod common;

use bienvivre::progress::Progress;
use bienvivre::run::{self, RunOptions};
use bienvivre::synth::{self, SynthSpec};
use common::{env_or, peak_rss_mib};

fn main() {
    let spec = SynthSpec {
        territories: env_or("BENCH_TERRITORIES", 35_000),
        groups: 100,
        years: 1,
        first_year: 2024,
        indicators: env_or("BENCH_INDICATORS", 60),
        missing: 0.02,
        seed: 7,
        full_precision: false,
    };
    let runs = env_or("BENCH_RUNS", 1000);
    let dir = std::env::temp_dir().join(format!("bienvivre-mc-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create bench dir");
    let data = dir.join("data.csv");
    let mut w = BufWriter::new(std::fs::File::create(&data).expect("create data"));
    synth::write_csv(&spec, &mut w).expect("generate");
    w.flush().expect("flush");
    drop(w);
    let pipeline = dir.join("bench.toml");
    let toml = synth::pipeline_toml(&spec, "data.csv", "mc_bench")
        + "\n[uncertainty]\nseed = 3\nweights = 0.25\nnormalisation = [\"minmax\"]\n\
           aggregation = [{ method = \"arithmetic\" }, { method = \"geometric\" }]\n";
    std::fs::write(&pipeline, toml).expect("pipeline");

    let options = RunOptions {
        pipeline,
        output_dir: Some(dir.join("out")),
        ..Default::default()
    };
    let t = Instant::now();
    let done = run::uncertainty(&options, Some(runs), &mut Progress::hidden())
        .unwrap_or_else(|e| panic!("uncertainty failed: {e}"));
    let wall = t.elapsed().as_secs_f64();
    println!(
        "{runs} Monte Carlo runs on {} territories × {} indicators: {wall:.1} s wall \
         (target ≤ 60 s), {:.1} ms per run, {} succeeded; peak RSS {:.0} MiB",
        spec.territories,
        spec.indicators,
        1000.0 * done.seconds / runs as f64,
        done.summary.succeeded,
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
