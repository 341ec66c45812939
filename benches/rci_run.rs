//! RCI benchmark (issue 13): a generated survey (default 10,000,000 respondents × 20 items,
//! 500 territories, one subgroup variable) stored as Parquet (answers Int8, as statistics
//! packages export them), run end to end by the release binary in its own process:
//!
//! 1. with the bootstrap (default 100 replicates; target ≤ 6 s and ≤ 2 GB);
//! 2. without it, beside a straightforward polars program doing the same computation
//!    (`reference` below: achievements, person scores, survey-weighted aggregates per
//!    territory, territory × subgroup and whole sample, both tables written as Parquet),
//!    timed in its own process on the same file: target ours ≤ 0.5 × polars.
//!
//! Usage:
//!
//!     cargo bench --bench rci_run
//!     BENCH_RESPONDENTS=1000000 BENCH_BOOTSTRAP=200 cargo bench --bench rci_run
//!     BENCH_CSV=1 cargo bench --bench rci_run    # also the same survey as CSV
//!     BENCH_KEEP=1 cargo bench --bench rci_run   # keep the inputs and outputs
//!     BENCH_ONLY=1 cargo bench --bench rci_run   # only the run with the bootstrap
//!
//! No assertions: the machine is shared and noisy; run it twice and quote the medians.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use polars::prelude::*;

mod common;

use bienvivre::synth::{self, SurveySpec};
use common::{env_or, keep_or_remove, peak_rss_mib, run_named, size_mib};

fn main() {
    // The reference program, in a child process of this benchmark.
    if let Ok(args) = std::env::var("BENCH_REFERENCE") {
        let mut parts = args.split('\u{1f}');
        let (pipeline, out) = (parts.next().unwrap(), parts.next().unwrap());
        let t = Instant::now();
        reference(Path::new(pipeline), Path::new(out)).expect("reference program");
        println!(
            "{:.3} {:.0}",
            t.elapsed().as_secs_f64(),
            peak_rss_mib().unwrap_or(f64::NAN)
        );
        return;
    }

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

    let t = Instant::now();
    let parquet = dir.join("survey.parquet");
    let w = BufWriter::new(std::fs::File::create(&parquet).expect("create data"));
    synth::write_survey_parquet(&spec, w).expect("generate");
    println!(
        "generated {} respondents × {} items in {} territories: {:.0} MiB of Parquet, in {:.1} s",
        spec.respondents,
        spec.items,
        spec.territories,
        size_mib(&parquet),
        t.elapsed().as_secs_f64()
    );

    let pipeline = |name: &str, data: &str, replicates: usize| {
        let p = dir.join(name);
        std::fs::write(&p, synth::survey_pipeline_toml(&spec, data, replicates)).expect("pipeline");
        p
    };
    let with = pipeline("survey.toml", "survey.parquet", bootstrap);
    let without = pipeline("survey_nb.toml", "survey.parquet", 0);

    let run = run_named(&with, &dir.join("out"));
    println!(
        "run, {bootstrap} replicates: {:.2} s wall, peak {:.0} MiB (targets ≤ 6 s, ≤ 2 GB = 1,907 MiB); {}",
        run.wall,
        run.peak_mib,
        run.stages_text()
    );
    let _ = std::fs::remove_dir_all(dir.join("out"));
    if env_or("BENCH_ONLY", 0) == 1 {
        keep_or_remove(&dir);
        return;
    }

    let plain = run_named(&without, &dir.join("out_nb"));
    println!(
        "run, no bootstrap: {:.2} s wall, peak {:.0} MiB; {}",
        plain.wall,
        plain.peak_mib,
        plain.stages_text()
    );
    let (reference_s, reference_mib) = reference_in_child(&without, &dir.join("reference"));
    println!(
        "polars reference, no bootstrap: {reference_s:.2} s, peak {reference_mib:.0} MiB; \
         ours / polars = {:.2} (target ≤ 0.5)",
        plain.wall / reference_s
    );

    if env_or("BENCH_CSV", 0) == 1 {
        let csv = dir.join("survey.csv");
        let mut w = BufWriter::new(std::fs::File::create(&csv).expect("create data"));
        synth::write_survey_csv(&spec, &mut w).expect("generate");
        w.flush().expect("flush");
        drop(w);
        let from_csv = pipeline("survey_csv.toml", "survey.csv", bootstrap);
        let run = run_named(&from_csv, &dir.join("out_csv"));
        println!(
            "run from CSV ({:.0} MiB), {bootstrap} replicates: {:.2} s wall, peak {:.0} MiB; {}",
            size_mib(&csv),
            run.wall,
            run.peak_mib,
            run.stages_text()
        );
    }
    keep_or_remove(&dir);
}

/// Runs [`reference`] in a child process (this benchmark's binary); its seconds and peak.
fn reference_in_child(pipeline: &Path, out: &Path) -> (f64, f64) {
    std::fs::create_dir_all(out).expect("reference output dir");
    let o = Command::new(std::env::current_exe().expect("this benchmark"))
        .env(
            "BENCH_REFERENCE",
            format!("{}\u{1f}{}", pipeline.display(), out.display()),
        )
        .output()
        .expect("run the reference");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    let mut v = text
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(f64::NAN));
    (v.next().unwrap_or(f64::NAN), v.next().unwrap_or(f64::NAN))
}

/// What an analyst would write with polars for the same method (no bootstrap): item
/// achievements (missing codes null), person scores over the answered items, then
/// survey-weighted sums per territory, territory × subgroup and whole sample, their
/// ratios (mean, share capable, dimensions, H, A, M0, censored headcounts, contributions),
/// and both tables written as Parquet. Weights and thresholds from the same pipeline.
fn reference(pipeline: &Path, out: &Path) -> PolarsResult<()> {
    let plan = bienvivre::run::load_pipeline(pipeline)
        .expect("pipeline")
        .rci
        .expect("an RCI pipeline");
    let data = plan.source.path.clone();
    let lf = ParquetReader::new(std::fs::File::open(&data)?)
        .finish()?
        .lazy();
    let a = |j: usize| col(format!("a{j}"));
    let mut achievements = Vec::new();
    for (j, it) in plan.items.iter().enumerate() {
        let at_least = match &it.achieved {
            bienvivre::config::AchievedRule::AtLeast(x) => *x,
            other => panic!("the reference handles at_least only: {other:?}"),
        };
        achievements.push(
            when(
                it.missing
                    .iter()
                    .map(|m| col(it.column.as_str()).eq(lit(*m)))
                    .reduce(|x, y| x.or(y))
                    .unwrap_or(lit(false)),
            )
            .then(lit(NULL).cast(DataType::Float64))
            .otherwise(
                col(it.column.as_str())
                    .gt_eq(lit(at_least))
                    .cast(DataType::Float64),
            )
            .alias(format!("a{j}")),
        );
    }
    let sum = |v: Vec<Expr>| v.into_iter().reduce(|x, y| x + y).unwrap();
    let items = || plan.items.iter().enumerate();
    let answered = sum(items()
        .map(|(j, it)| a(j).is_not_null().cast(DataType::Float64) * lit(it.weight))
        .collect());
    let s = sum(items()
        .map(|(j, it)| (a(j) * lit(it.weight)).fill_null(lit(0.0)))
        .collect());
    let mut person = vec![
        (s.clone() / col("answered")).alias("rci"),
        (lit(1.0) - s / col("answered")).alias("deprivation"),
    ];
    for (d, _) in plan.dimensions.iter().enumerate() {
        let of = || items().filter(|(_, it)| it.dimension == d);
        person.push(
            (sum(of()
                .map(|(j, it)| (a(j) * lit(it.weight)).fill_null(lit(0.0)))
                .collect())
                / sum(of()
                    .map(|(j, it)| a(j).is_not_null().cast(DataType::Float64) * lit(it.weight))
                    .collect()))
            .alias(format!("dim{d}")),
        );
    }
    let w = col(plan.weight.as_deref().expect("weights"));
    let persons = lf
        .with_columns(achievements)
        .with_column(answered.alias("answered"))
        .filter(col("answered").gt_eq(lit(1.0 - plan.max_missing_share - 1e-12)))
        .with_columns(person)
        .with_columns([
            col("rci").gt_eq(lit(plan.k - 1e-12)).alias("capable"),
            col("deprivation")
                .gt_eq(lit(plan.k_deprivation - 1e-12))
                .alias("poor"),
        ])
        .collect()?;
    // Each summand as a column, then plain sums per group, then their ratios: the
    // group-by stays on polars' fast path (a sum of a column).
    let f = |name: &str| col(name).cast(DataType::Float64);
    let mut products = vec![
        w.clone().alias("S_w"),
        (w.clone() * col("rci")).alias("S_ws"),
        (w.clone() * f("capable")).alias("S_wcap"),
        (w.clone() * f("poor")).alias("S_wpoor"),
        (w.clone() * col("deprivation") * f("poor")).alias("S_wcp"),
    ];
    for (d, _) in plan.dimensions.iter().enumerate() {
        let dim = col(format!("dim{d}"));
        products.push((w.clone() * dim.clone()).alias(format!("S_wd{d}")));
        products.push(
            (w.clone() * dim.is_not_null().cast(DataType::Float64)).alias(format!("S_wdn{d}")),
        );
    }
    for (j, it) in plan.items.iter().enumerate() {
        let deprived = w.clone() * f("poor") * (lit(1.0) - a(j));
        products.push(deprived.clone().alias(format!("S_whc{j}")));
        products.push(
            (w.clone() * a(j).is_not_null().cast(DataType::Float64)).alias(format!("S_wans{j}")),
        );
        products.push((deprived * lit(it.weight) / col("answered")).alias(format!("S_wcg{j}")));
    }
    let names: Vec<String> = persons
        .clone()
        .lazy()
        .select(products.clone())
        .collect_schema()?
        .iter_names()
        .map(|n| n.to_string())
        .collect();
    let sums: Vec<Expr> = names
        .iter()
        .map(|n| col(n.as_str()).sum())
        .chain([len().alias("respondents")])
        .collect();
    let s = |name: &str| col(name);
    let mut ratios = vec![
        col("respondents"),
        s("S_w").alias("weighted"),
        (s("S_ws") / s("S_w")).alias("mean"),
        (s("S_wcap") / s("S_w")).alias("share_capable"),
        (s("S_wpoor") / s("S_w")).alias("H"),
        (s("S_wcp") / s("S_wpoor")).alias("A"),
        (s("S_wcp") / s("S_w")).alias("M0"),
    ];
    for (d, _) in plan.dimensions.iter().enumerate() {
        ratios.push((s(&format!("S_wd{d}")) / s(&format!("S_wdn{d}"))).alias(format!("dim{d}")));
    }
    for (j, _) in plan.items.iter().enumerate() {
        ratios.push((s(&format!("S_whc{j}")) / s(&format!("S_wans{j}"))).alias(format!("hc{j}")));
        ratios.push((s(&format!("S_wcg{j}")) / s("S_wcp")).alias(format!("cg{j}")));
    }
    let summed = persons.clone().lazy().with_columns(products).collect()?;
    let territory = col(plan.territory.as_str());
    let mut groups = vec![
        (
            "territories",
            vec![territory.clone()],
            summed.clone().lazy(),
        ),
        (
            "whole_sample",
            vec![col("__all")],
            summed.clone().lazy().with_column(lit(true).alias("__all")),
        ),
    ];
    for sg in &plan.subgroups {
        groups.push((
            "territory_subgroups",
            vec![territory.clone(), col(sg.as_str())],
            summed.clone().lazy(),
        ));
    }
    for (name, keys, lf) in groups {
        let mut select = keys.clone();
        select.extend(ratios.clone());
        let mut df = lf
            .group_by(keys)
            .agg(sums.clone())
            .select(select)
            .collect()?;
        let f = std::fs::File::create(out.join(format!("{name}.parquet")))?;
        ParquetWriter::new(BufWriter::new(f)).finish(&mut df)?;
    }
    drop(summed);
    let mut person_table = persons
        .lazy()
        .select([
            col("id"),
            territory,
            w,
            col("answered"),
            col("rci"),
            col("capable"),
            col("deprivation"),
            col("poor"),
        ])
        .collect()?;
    let f = std::fs::File::create(out.join("persons.parquet"))?;
    ParquetWriter::new(BufWriter::new(f)).finish(&mut person_table)?;
    Ok(())
}
