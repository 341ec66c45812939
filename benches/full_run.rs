//! The national panel against its floor (issue 13): a seeded panel (default 35,000
//! territories × 60 indicators × 10 years) stored as Parquet, run end to end by the release
//! binary with `[output] formats = ["parquet"]`, beside the floor measured in this process
//! on the same file: polars reading it, reshaping it into as many tidy rows as the run
//! writes (key columns, level, node, a value and a rank column per node, no computation),
//! and writing them as Parquet with the same (default) compression and row groups.
//!
//!     cargo bench --bench full_run
//!     BENCH_TERRITORIES=105000 cargo bench --bench full_run   # the panel × 3
//!     BENCH_CSV=1 cargo bench --bench full_run               # also the tidy CSV alone
//!     BENCH_KEEP=1 cargo bench --bench full_run              # keep the input and outputs
//!     BENCH_FULL_PRECISION=1 cargo bench --bench full_run    # values with all their digits
//!
//! Prints the floor's steps, the run's wall time, stages and peak RSS (from its manifest),
//! then the ratios: run / floor (target ≤ 1.5), compute stage / bare read (target ≤ 2),
//! and with BENCH_CSV the tidy CSV's write speed (target ≥ 300 MB/s). No assertions: the
//! machine is shared and noisy; run it twice and quote the medians.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use polars::prelude::*;

mod common;

use bienvivre::synth::{self, SynthSpec};
use common::{env_or, keep_or_remove, peak_rss_mib, run_named, size_mib};

/// Rows per Parquet row group, as the run writes them.
const ROW_GROUP: usize = 512 * 512;

fn main() {
    let spec = SynthSpec {
        territories: env_or("BENCH_TERRITORIES", 35_000),
        groups: 100,
        years: env_or("BENCH_YEARS", 10),
        first_year: 2015,
        indicators: env_or("BENCH_INDICATORS", 60),
        missing: 0.02,
        seed: 7,
        // Values with the decimals statistics offices publish (38 MiB of Parquet);
        // BENCH_FULL_PRECISION=1 keeps all their digits, as analysts' derived indicators
        // have them and as the 138 MB panel had them.
        full_precision: env_or("BENCH_FULL_PRECISION", 0) == 1,
    };
    let dir = std::env::temp_dir().join(format!("bienvivre-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create bench dir");
    let input = dir.join("bench.parquet");
    let t = Instant::now();
    generate_parquet(&spec, &dir, &input);
    println!(
        "generated {} territories × {} indicators × {} years: {:.0} MiB of Parquet, in {:.1} s",
        spec.territories,
        spec.indicators,
        spec.years,
        size_mib(&input),
        t.elapsed().as_secs_f64()
    );

    let toml = synth::pipeline_toml(&spec, "bench.parquet", "bench");
    let pipeline = dir.join("bench.toml");
    std::fs::write(
        &pipeline,
        format!("{toml}\n[output]\nformats = [\"parquet\"]\n"),
    )
    .expect("pipeline");
    let nodes = bienvivre::run::load_plan(&pipeline)
        .expect("the generated pipeline plans")
        .nodes
        .len();

    // The floor, in this process.
    let floor = floor(&input, &dir.join("floor.parquet"), nodes);
    println!(
        "floor: read {:.2} s, reshape + write {} tidy rows {:.2} s ({:.0} MiB): {:.2} s",
        floor.read,
        floor.rows,
        floor.write,
        size_mib(&dir.join("floor.parquet")),
        floor.read + floor.write
    );
    let _ = std::fs::remove_file(dir.join("floor.parquet"));

    // The run, in its own process.
    let run = run_named(&pipeline, &dir.join("out"));
    println!(
        "run (Parquet only): {:.2} s wall, peak {:.0} MiB; {}; scores.parquet {:.0} MiB",
        run.wall,
        run.peak_mib,
        run.stages_text(),
        size_mib(&dir.join("out/scores.parquet"))
    );
    let total = floor.read + floor.write;
    println!(
        "ratios: run / floor = {:.2} (target ≤ 1.5); compute / bare read = {:.2} (target ≤ 2)",
        run.wall / total,
        run.stage("compute") / floor.read
    );

    if env_or("BENCH_CSV", 0) == 1 {
        std::fs::write(
            &pipeline,
            format!("{toml}\n[output]\nformats = [\"csv\"]\n"),
        )
        .expect("pipeline");
        let _ = std::fs::remove_dir_all(dir.join("out"));
        let csv = run_named(&pipeline, &dir.join("out"));
        let bytes = std::fs::metadata(dir.join("out/scores.csv"))
            .map(|m| m.len())
            .unwrap_or(0);
        println!(
            "run (tidy CSV only): {:.2} s wall, peak {:.0} MiB; {}; scores.csv {:.0} MB written at {:.0} MB/s (target ≥ 300)",
            csv.wall,
            csv.peak_mib,
            csv.stages_text(),
            bytes as f64 / 1e6,
            bytes as f64 / 1e6 / csv.stage("write")
        );
    }
    println!(
        "this process's peak (generation and floor): {:.0} MiB",
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    keep_or_remove(&dir);
}

/// The seeded panel, through the generator's CSV, as Parquet.
fn generate_parquet(spec: &SynthSpec, dir: &Path, out: &Path) {
    let csv = dir.join("bench.csv");
    let mut w = BufWriter::new(std::fs::File::create(&csv).expect("create data"));
    synth::write_csv(spec, &mut w).expect("generate");
    w.flush().expect("flush");
    drop(w);
    let mut schema = Schema::default();
    for key in ["code", "name", "region"] {
        schema.with_column(key.into(), DataType::String);
    }
    schema.with_column("year".into(), DataType::Int64);
    let mut df = CsvReadOptions::default()
        .with_has_header(true)
        .with_schema_overwrite(Some(Arc::new(schema)))
        .with_infer_schema_length(Some(100))
        .try_into_reader_with_file_path(Some(csv.clone()))
        .expect("open csv")
        .finish()
        .expect("read csv");
    let f = std::fs::File::create(out).expect("create parquet");
    ParquetWriter::new(BufWriter::new(f))
        .finish(&mut df)
        .expect("write parquet");
    let _ = std::fs::remove_file(csv);
}

struct Floor {
    read: f64,
    write: f64,
    rows: usize,
}

/// Polars alone: read the input, then write `nodes` blocks of tidy rows (each an input
/// value column beside the keys, with a level, a node id and a rank column) to Parquet.
fn floor(input: &Path, out: &Path, nodes: usize) -> Floor {
    let t = Instant::now();
    let f = std::fs::File::open(input).expect("open input");
    let df = ParquetReader::new(f).finish().expect("read input");
    let read = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let height = df.height();
    let keys: Vec<Column> = [
        ("code", "territory_id"),
        ("name", "territory_name"),
        ("region", "group"),
        ("year", "year"),
    ]
    .iter()
    .map(|(from, to)| {
        df.column(from)
            .expect("key")
            .clone()
            .with_name((*to).into())
    })
    .collect();
    let values: Vec<&Column> = df
        .columns()
        .iter()
        .filter(|c| c.dtype().is_float())
        .collect();
    // A rank-like column (precomputed: the floor computes nothing).
    let rank = Column::new(
        "rank".into(),
        (0..height as u32)
            .map(|r| r % 35_000 + 1)
            .collect::<Vec<u32>>(),
    );
    let block = |k: usize| -> DataFrame {
        let mut columns = keys.clone();
        columns.push(Column::new_scalar(
            "level".into(),
            Scalar::from(PlSmallStr::from("indicator")),
            height,
        ));
        columns.push(Column::new_scalar(
            "node_id".into(),
            Scalar::from(PlSmallStr::from(format!("node_{k:03}").as_str())),
            height,
        ));
        columns.push(values[k % values.len()].clone().with_name("value".into()));
        columns.push(rank.clone());
        DataFrame::new(height, columns).expect("block")
    };
    let file = BufWriter::new(std::fs::File::create(out).expect("create floor output"));
    let mut writer = None;
    let mut pending: Option<DataFrame> = None;
    let mut rows = 0;
    let mut flush = |pending: &mut Option<DataFrame>| {
        let Some(mut df) = pending.take() else { return };
        df.rechunk_mut();
        let w = writer.get_or_insert_with(|| {
            ParquetWriter::new(file.get_ref().try_clone().expect("clone file"))
                .batched(df.schema())
                .expect("batched writer")
        });
        w.write_batch(&df).expect("write batch");
    };
    for k in 0..nodes {
        let b = block(k);
        rows += b.height();
        match &mut pending {
            None => pending = Some(b),
            Some(acc) => {
                acc.vstack_mut_owned(b).expect("stack");
            }
        }
        if pending.as_ref().is_some_and(|p| p.height() >= ROW_GROUP) {
            flush(&mut pending);
        }
    }
    flush(&mut pending);
    if let Some(w) = writer.as_mut() {
        w.finish().expect("finish");
    }
    Floor {
        read,
        write: t.elapsed().as_secs_f64(),
        rows,
    }
}
