//! `[output] formats`: which score tables a run writes, and what reads them.

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
