//! Inputs as publishers and converters write them: gzip, Windows-1252, CR line endings,
//! thousands separators, Parquet of every integer width with years stored as floats; and
//! the data problems that are not errors but must be said (warnings on stderr and in
//! the manifest).

use std::io::Write;
use std::path::Path;

use polars::prelude::*;

use crate::helpers::*;

/// The index scores of a run of the small project, by territory.
fn index_scores(dir: &Path) -> Vec<(String, Option<f64>)> {
    let df = read_csv(&dir.join("out/scores_wide.csv"));
    strings(&df, "territory_id")
        .into_iter()
        .zip(floats(&df, "idx"))
        .collect()
}

fn run_ok(dir: &Path) -> String {
    let out = bienvivre(dir, &["run", "small.toml", "-o", "out", "--no-progress"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    err
}

fn reference() -> Vec<(String, Option<f64>)> {
    let dir = small_project(SMALL_TOML, SMALL_CSV);
    run_ok(dir.path());
    index_scores(dir.path())
}

fn manifest_warnings(dir: &Path) -> Vec<String> {
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out/manifest.json")).unwrap())
            .unwrap();
    m["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn gzip_is_read_transparently() {
    let dir = small_project(
        &SMALL_TOML.replace("path = \"small.csv\"", "path = \"small.csv.gz\""),
        SMALL_CSV,
    );
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(SMALL_CSV.as_bytes()).unwrap();
    std::fs::write(dir.join("small.csv.gz"), e.finish().unwrap()).unwrap();
    run_ok(dir.path());
    assert_eq!(index_scores(dir.path()), reference());
}

#[test]
fn windows_1252_with_the_encoding_option() {
    let csv = SMALL_CSV.replace("Three", "Tr\u{e8}s");
    let latin: Vec<u8> = csv.chars().map(|c| c as u32 as u8).collect();
    let toml = SMALL_TOML.replace(
        "path = \"small.csv\"",
        "path = \"small.csv\"\nencoding = \"windows-1252\"",
    );
    let dir = small_project(&toml, "");
    std::fs::write(dir.join("small.csv"), latin).unwrap();
    run_ok(dir.path());
    assert_eq!(index_scores(dir.path()), reference());
    let names = strings(
        &read_csv(&dir.join("out/scores_wide.csv")),
        "territory_name",
    );
    assert!(names.contains(&"Très".to_owned()), "{names:?}");
}

#[test]
fn cr_and_crlf_line_endings_read_like_lf() {
    for ending in ["\r", "\r\n"] {
        let dir = small_project(SMALL_TOML, &SMALL_CSV.replace('\n', ending));
        run_ok(dir.path());
        assert_eq!(index_scores(dir.path()), reference(), "{ending:?}");
    }
}

#[test]
fn thousands_separators_when_configured() {
    // French style: ';' between fields, ',' for decimals, '.' between thousands.
    let csv = SMALL_CSV
        .replace(',', ";")
        .replace("1.0", "1,0")
        .replace("2.0", "2,0")
        .replace("3.0", "3,0")
        .replace("4.0", "4,0")
        .replace(";100\n", ";0.100,0\n")
        .replace(";400\n", ";400,000\n");
    let toml = SMALL_TOML.replace(
        "path = \"small.csv\"",
        "path = \"small.csv\"\nseparator = \";\"\ndecimal = \",\"\nthousands = \".\"",
    );
    let dir = small_project(&toml, &csv);
    let out = bienvivre(dir.path(), &["run", "small.toml", "-o", "out"]);
    // "0.100,0" is not a grouping of three after the first group (a leading 0 group is
    // fine, "0.100" is 100); check that the values read are the plain ones.
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(index_scores(dir.path()), reference());
}

#[test]
fn parquet_of_every_integer_width_with_float_years() {
    let n = 4;
    let df = DataFrame::new(
        n,
        vec![
            Column::new("code".into(), ["T1", "T2", "T3", "T4"]),
            Column::new("name".into(), ["One", "Two", "Three", "Four"]),
            Column::new("country".into(), ["X", "X", "Y", "Y"]),
            Column::new("year".into(), [2022.0f64, 2022.0, 2022.0, 2022.0]),
            Column::new("a".into(), [1i8, 2, 3, 4]),
            Column::new("b".into(), [10i16, 20, 30, 40]),
            Column::new("c".into(), [5u8, 6, 7, 8]),
            Column::new("d".into(), [100u16, 200, 300, 400]),
        ],
    )
    .unwrap();
    let toml = SMALL_TOML
        .replace("path = \"small.csv\"", "path = \"small.parquet\"")
        .replace(
            "group = \"country\"",
            "group = \"country\"\nyear = \"year\"",
        );
    let dir = small_project(&toml, "");
    let f = std::fs::File::create(dir.join("small.parquet")).unwrap();
    ParquetWriter::new(f).finish(&mut df.clone()).unwrap();
    run_ok(dir.path());
    let wide = read_csv(&dir.join("out/scores_wide.csv"));
    assert_eq!(floats(&wide, "year"), vec![Some(2022.0); 4]);
    let got: Vec<(String, Option<f64>)> = strings(&wide, "territory_id")
        .into_iter()
        .zip(floats(&wide, "idx"))
        .collect();
    assert_eq!(got, reference());
}

#[test]
fn an_indicator_without_any_value_is_a_warning() {
    let csv = SMALL_CSV
        .replace(",100\n", ",\n")
        .replace(",200\n", ",\n")
        .replace(",300\n", ",\n")
        .replace(",400\n", ",\n");
    let dir = small_project(SMALL_TOML, &csv);
    let err = run_ok(dir.path());
    let expected =
        "1 indicator(s) have no value in any row, so all their scores are missing: \"d\"";
    assert!(err.contains(&format!("warning: {expected}")), "{err}");
    assert!(manifest_warnings(dir.path()).iter().any(|w| w == expected));
}

#[test]
fn codes_of_a_long_source_that_no_node_uses_are_listed() {
    let mut long = String::from("code,name,country,indicator,value\n");
    for line in SMALL_CSV.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        for (k, code) in ["a", "b", "c", "d", "zz_unused", "typo_b"]
            .iter()
            .enumerate()
        {
            let v = f.get(3 + k).copied().unwrap_or("1");
            long.push_str(&format!("{},{},{},{code},{v}\n", f[0], f[1], f[2]));
        }
    }
    let toml = SMALL_TOML.replace(
        "path = \"small.csv\"",
        "path = \"small.csv\"\nlayout = \"long\"\nindicator_column = \"indicator\"\nvalue_column = \"value\"",
    );
    let dir = small_project(&toml, &long);
    let err = run_ok(dir.path());
    assert!(
        err.contains(
            "small.csv: 8 row(s) with 2 indicator code(s) that no framework node uses were ignored: \"typo_b\", \"zz_unused\""
        ),
        "{err}"
    );
    assert_eq!(index_scores(dir.path()), reference());
}

#[test]
fn territories_missing_from_one_of_several_sources_are_counted() {
    // c and d move to a second source that lacks T4.
    let first: String = SMALL_CSV
        .lines()
        .map(|l| l.split(',').take(5).collect::<Vec<_>>().join(",") + "\n")
        .collect();
    let second = "code,c,d\nT1,5,100\nT2,6,200\nT3,7,300\n";
    let toml = SMALL_TOML.replace(
        "[[source]]\npath = \"small.csv\"",
        "[[source]]\npath = \"small.csv\"\n\n[[source]]\npath = \"more.csv\"",
    );
    let dir = small_project(&toml, &first);
    std::fs::write(dir.join("more.csv"), second).unwrap();
    let err = run_ok(dir.path());
    let expected = "more.csv: 1 of the 4 territories in the sources are not in this one, so its indicators are missing for them: \"T4\"";
    assert!(err.contains(expected), "{err}");
    assert!(manifest_warnings(dir.path()).iter().any(|w| w == expected));
}
