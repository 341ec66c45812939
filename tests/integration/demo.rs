//! The embedded demo: reproducible data, the README's commands, the output layout.

use polars::prelude::*;

use crate::helpers::*;

#[test]
fn demo_data_is_the_seeded_generator_output() {
    let dir = TempDir::new("gen");
    let out = bienvivre(dir.path(), &["generate", "--out", "demo.csv", "-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let generated = std::fs::read(dir.join("demo.csv")).unwrap();
    let committed = std::fs::read(root().join("data/demo.csv")).unwrap();
    assert!(
        generated == committed,
        "data/demo.csv differs from `bienvivre generate --out data/demo.csv`"
    );
}

#[test]
fn readme_starts_with_the_demo_run_and_the_test_command() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let commands: Vec<&str> = readme
        .lines()
        .skip_while(|l| !l.starts_with("```"))
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .collect();
    assert_eq!(commands.len(), 2, "{commands:?}");
    assert!(
        commands[0].starts_with("cargo run -- run pipelines/demo.toml"),
        "{}",
        commands[0]
    );
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    assert!(
        ci.contains(commands[1]),
        ".ci/run must run the README's test command: {}",
        commands[1]
    );
}

#[test]
fn demo_outputs_have_the_documented_layout() {
    let dir = TempDir::new("demo");
    let out_dir = dir.join("out");
    let out = bienvivre(
        &root(),
        &[
            "run",
            "pipelines/demo.toml",
            "-q",
            "-o",
            out_dir.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let mut names: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ".bienvivre-output",
            "charts",
            "manifest.json",
            "missing.csv",
            "pipeline.toml",
            "scores.csv",
            "scores.parquet",
            "scores_wide.csv"
        ]
    );
    for f in [
        "index.html",
        "ranking_wellbeing_1.png",
        "heatmap_1.svg",
        "trend_wellbeing.png",
        "profiles/T00042_radar.png",
        "profiles/T00042.html",
    ] {
        assert!(out_dir.join("charts").join(f).exists(), "charts/{f}");
    }

    let scores = read_csv(&out_dir.join("scores.csv"));
    let header: Vec<String> = scores
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(
        header,
        [
            "territory_id",
            "territory_name",
            "group",
            "year",
            "level",
            "node_id",
            "value",
            "rank"
        ]
    );
    // 100 territories × 3 years × (1 index + 3 dimensions + 6 components + 12 indicators).
    assert_eq!(scores.height(), 300 * 22);
    let levels: std::collections::BTreeSet<String> =
        strings(&scores, "level").into_iter().collect();
    assert_eq!(
        levels.into_iter().collect::<Vec<_>>(),
        ["component", "dimension", "index", "indicator"]
    );

    // The Parquet table holds the same rows.
    let parquet = ParquetReader::new(std::fs::File::open(out_dir.join("scores.parquet")).unwrap())
        .finish()
        .unwrap();
    assert_eq!(parquet.height(), scores.height());
    assert_eq!(floats(&parquet, "value"), floats(&scores, "value"));

    // Ranks are per year: each year of the index has ranks 1..=n over its scored territories.
    let index = scores
        .clone()
        .lazy()
        .filter(col("level").eq(lit("index")))
        .collect()
        .unwrap();
    for year in [2022, 2023, 2024] {
        let y = index
            .clone()
            .lazy()
            .filter(col("year").eq(lit(year)))
            .collect()
            .unwrap();
        let mut ranks: Vec<i64> = floats(&y, "rank")
            .into_iter()
            .flatten()
            .map(|r| r as i64)
            .collect();
        ranks.sort();
        assert_eq!(ranks.first(), Some(&1), "{year}");
        assert!(
            ranks.len() <= 100 && ranks.len() >= 90,
            "{year}: {} ranked",
            ranks.len()
        );
        assert!(
            ranks.windows(2).all(|w| w[0] < w[1]),
            "no ties expected in the demo index"
        );
    }

    let wide = read_csv(&out_dir.join("scores_wide.csv"));
    let wide_header: Vec<String> = wide
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(
        &wide_header[..5],
        [
            "territory_id",
            "territory_name",
            "group",
            "year",
            "wellbeing"
        ]
    );
    assert_eq!(wide.height(), 300);
    assert_eq!(wide.width(), 4 + 1 + 3 + 6);

    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["index"]["counts"]["territories"], 100);
    assert_eq!(
        manifest["index"]["counts"]["years"],
        serde_json::json!([2022, 2023, 2024])
    );
    assert_eq!(manifest["inputs"][0]["rows"], 300);
    assert_eq!(manifest["inputs"][0]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(manifest["pipeline"]["sha256"].as_str().unwrap().len(), 64);
    assert!(
        manifest["index"]["missing_data"]["missing_indicator_values"]
            .as_u64()
            .unwrap()
            > 0
    );
    for stage in ["plan", "load", "compute"] {
        assert!(manifest["run"]["timings_ms"][stage].is_u64(), "{stage}");
    }
}

#[test]
fn two_runs_write_identical_tables_on_one_thread_or_many() {
    let dir = TempDir::new("twice");
    for (o, one_thread) in [("a", false), ("b", true)] {
        let out = bienvivre_threads(
            &root(),
            &[
                "run",
                "pipelines/demo.toml",
                "-q",
                "-o",
                dir.join(o).to_str().unwrap(),
            ],
            one_thread,
        );
        assert!(out.status.success());
    }
    for f in [
        "scores.csv",
        "scores_wide.csv",
        "missing.csv",
        "scores.parquet",
    ] {
        assert!(
            std::fs::read(dir.join("a").join(f)).unwrap()
                == std::fs::read(dir.join("b").join(f)).unwrap(),
            "{f} differs"
        );
    }
}
