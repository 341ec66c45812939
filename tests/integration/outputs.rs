//! `[output] formats` and `partition_by`: which score tables a run writes, and what reads
//! them.

use polars::prelude::*;

use crate::helpers::*;

fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    v.sort();
    v
}

#[test]
fn formats_choose_the_score_tables() {
    let dir = small_project(
        &format!("{SMALL_TOML}\n[output]\nformats = [\"parquet\"]\n"),
        SMALL_CSV,
    );
    let o = bienvivre(dir.path(), &["run", "small.toml", "-q", "-o", "out"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        listing(&dir.join("out")),
        [
            "manifest.json",
            "missing.csv",
            "pipeline.toml",
            "scores.parquet"
        ]
    );
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("out/manifest.json")).unwrap()).unwrap();
    assert_eq!(
        m["outputs"],
        serde_json::json!([
            "scores.parquet",
            "missing.csv",
            "pipeline.toml",
            "manifest.json"
        ])
    );

    // CSV only, in the history: diff cannot read it, and says why.
    let dir = small_project(
        &format!("{SMALL_TOML}\n[output]\nformats = [\"csv\", \"wide\"]\n"),
        SMALL_CSV,
    );
    for _ in 0..2 {
        let o = bienvivre(dir.path(), &["run", "small.toml", "-q"]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let latest = dir.join("outputs/small/latest");
    assert_eq!(
        listing(&latest),
        [
            "manifest.json",
            "missing.csv",
            "pipeline.toml",
            "scores.csv",
            "scores_wide.csv"
        ]
    );
    let o = bienvivre(dir.path(), &["diff", "small.toml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("[output] formats left it out"),
        "{}",
        stderr(&o)
    );

    // An empty list, or an unknown format, is a config error at its line.
    let dir = small_project(
        &format!("{SMALL_TOML}\n[output]\nformats = []\n"),
        SMALL_CSV,
    );
    let o = bienvivre(dir.path(), &["run", "small.toml", "-q", "-o", "out"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("[output] formats is empty"),
        "{}",
        stderr(&o)
    );
    let dir = small_project(
        &format!("{SMALL_TOML}\n[output]\nformats = [\"xlsx\"]\n"),
        SMALL_CSV,
    );
    let o = bienvivre(dir.path(), &["run", "small.toml", "-q", "-o", "out"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown variant `xlsx`"),
        "{}",
        stderr(&o)
    );
}

fn read_parquet(path: &std::path::Path) -> DataFrame {
    ParquetReader::new(std::fs::File::open(path).unwrap())
        .finish()
        .unwrap()
}

/// Rows of the tidy table as comparable text (value bits included).
fn rows(df: &DataFrame) -> Vec<String> {
    let t = strings(df, "territory_id");
    let n = strings(df, "node_id");
    let v = floats(df, "value");
    let r = strings(df, "rank");
    let mut out: Vec<String> = (0..df.height())
        .map(|i| format!("{}|{}|{:?}|{}", t[i], n[i], v[i].map(f64::to_bits), r[i]))
        .collect();
    out.sort();
    out
}

#[test]
fn partition_by_writes_a_hive_dataset_of_the_same_rows() {
    let toml = SMALL_TOML.replace(
        "group = \"country\"\n",
        "group = \"country\"\nyear = \"year\"\n",
    );
    let csv = "code,name,country,year,a,b,c,d\n\
               T1,One,X/1,2020,1.0,10,5,100\n\
               T2,Two,X/1,2020,2.0,20,6,200\n\
               T3,Three,Y 2,2020,3.0,30,7,300\n\
               T1,One,X/1,2021,1.5,11,5,110\n\
               T2,Two,X/1,2021,2.5,21,6,210\n\
               T3,Three,Y 2,2021,3.5,31,7,310\n";
    let dir = small_project(
        &format!("{toml}\n[output]\npartition_by = [\"group\", \"year\"]\n"),
        csv,
    );
    let o = bienvivre(dir.path(), &["run", "small.toml", "-q", "-o", "out"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let all = read_parquet(&dir.join("out/scores.parquet"));
    let groups = strings(&all, "group");
    let years = strings(&all, "year");
    let mut seen = 0;
    for (group, segment) in [("X/1", "X%2F1"), ("Y 2", "Y 2")] {
        for year in ["2020", "2021"] {
            let part = dir.join(&format!(
                "out/scores/group={segment}/year={year}/part-0.parquet"
            ));
            let df = read_parquet(&part);
            // The keys live in the path, as hive readers expect.
            assert!(df.column("group").is_err() && df.column("year").is_err());
            let mask: BooleanChunked = (0..all.height())
                .map(|i| groups[i] == group && years[i] == year)
                .collect();
            let expected = all.filter(&mask).unwrap();
            assert!(expected.height() > 0);
            assert_eq!(rows(&df), rows(&expected), "{group} {year}");
            seen += df.height();
        }
    }
    assert_eq!(seen, all.height());
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("out/manifest.json")).unwrap()).unwrap();
    assert!(
        m["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "scores/ (Parquet, hive-partitioned by group, year)"),
        "{}",
        m["outputs"]
    );

    // Keys the rows do not have, twice, or unknown: config errors at their line.
    for (setting, message) in [
        (
            "[\"year\"]",
            "partition_by = \"year\": the pipeline has no years",
        ),
        (
            "[\"group\", \"group\"]",
            "partition_by names \"group\" twice",
        ),
        ("[]", "[output] partition_by is empty"),
        ("[\"region\"]", "unknown variant `region`"),
    ] {
        let dir = small_project(
            &format!("{SMALL_TOML}\n[output]\npartition_by = {setting}\n"),
            SMALL_CSV,
        );
        let o = bienvivre(dir.path(), &["run", "small.toml", "-q", "-o", "out"]);
        assert_eq!(o.status.code(), Some(2), "{setting}");
        assert!(stderr(&o).contains(message), "{setting}: {}", stderr(&o));
        assert!(stderr(&o).contains("small.toml:"), "{}", stderr(&o));
        assert!(!dir.join("out").exists());
    }
}
