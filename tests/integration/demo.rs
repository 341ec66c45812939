//! The README's demo (pipelines/demo.toml: French départements from official open data in
//! data/france/) and the synthetic pipeline the other tests use (pipelines/synthetic.toml
//! on data/synthetic.csv): reproducible data, the README's commands, the output layout, and
//! the demo's scores recomputed by hand from the shipped files.

use polars::prelude::*;

use crate::helpers::*;

#[test]
fn synthetic_data_is_the_seeded_generator_output() {
    let dir = TempDir::new("gen");
    let out = bienvivre(dir.path(), &["generate", "--out", "synthetic.csv", "-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let generated = std::fs::read(dir.join("synthetic.csv")).unwrap();
    let committed = std::fs::read(root().join("data/synthetic.csv")).unwrap();
    assert!(
        generated == committed,
        "data/synthetic.csv differs from `bienvivre generate --out data/synthetic.csv`"
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
    assert_eq!(commands[0], "cargo run -- run pipelines/demo.toml");
    // The paragraph after the commands says where the demo's chart pack lands.
    assert!(readme.contains("`outputs/demo/latest/charts/index.html`"));
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    assert!(
        ci.contains(commands[1]),
        ".ci/run must run the README's test command: {}",
        commands[1]
    );
}

#[test]
fn synthetic_outputs_have_the_documented_layout() {
    let dir = TempDir::new("synthetic");
    let out_dir = dir.join("out");
    let out = bienvivre(
        &root(),
        &[
            "run",
            "pipelines/synthetic.toml",
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
            "no ties expected in the synthetic index"
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
    // The synthetic pipeline, and the demo (two sources joined, values carried forward).
    for pipeline in ["synthetic", "demo"] {
        let out_dir = |o: &str| dir.join(&format!("{pipeline}-{o}"));
        for (o, one_thread) in [("a", false), ("b", true)] {
            let out = bienvivre_threads(
                &root(),
                &[
                    "run",
                    &format!("pipelines/{pipeline}.toml"),
                    "-q",
                    "-o",
                    out_dir(o).to_str().unwrap(),
                ],
                one_thread,
            );
            assert!(out.status.success(), "{pipeline}: {}", stderr(&out));
        }
        for f in [
            "scores.csv",
            "scores_wide.csv",
            "missing.csv",
            "scores.parquet",
        ] {
            assert!(
                std::fs::read(out_dir("a").join(f)).unwrap()
                    == std::fs::read(out_dir("b").join(f)).unwrap(),
                "{pipeline}: {f} differs"
            );
        }
    }
}

// ---- The README's demo: French départements from official open data --------------------

const CRIME: &str = "data/france/donnee-dep-data.gouv-2024-geographie2024-produit-le2025-01-26.csv";
const ITDD: &str = "data/france/itdd_departements.csv";

/// Runs the demo offline, with an empty cache, into `out`; returns its stderr.
fn run_demo(dir: &TempDir, out: &str) -> String {
    let cache = dir.join("empty-cache");
    std::fs::create_dir_all(&cache).unwrap();
    let o = bienvivre(
        &root(),
        &[
            "run",
            "pipelines/demo.toml",
            "--offline",
            "--cache-dir",
            cache.to_str().unwrap(),
            "--no-progress",
            "-o",
            dir.join(out).to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // Nothing was downloaded or cached: every input is in the checkout.
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0);
    stderr(&o)
}

/// A CSV with every column read as text (codes such as `01` and `2A` stay as written).
fn read_text_csv(path: &std::path::Path) -> DataFrame {
    CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .unwrap()
        .finish()
        .unwrap()
}

/// The rows of the SSMSI file, each field unquoted, after checking the file is still in
/// the publisher's format: a byte-order mark, `;`, every field quoted, LF line ends.
fn crime_rows() -> Vec<Vec<String>> {
    let bytes = std::fs::read(root().join(CRIME)).unwrap();
    let text = std::str::from_utf8(&bytes).unwrap();
    let text = text
        .strip_prefix('\u{feff}')
        .expect("the SSMSI file keeps its byte-order mark");
    assert!(!text.contains('\r'), "LF line ends, as published");
    let mut rows: Vec<Vec<String>> = text
        .lines()
        .map(|l| {
            l.split(';')
                .map(|f| {
                    f.strip_prefix('"')
                        .and_then(|f| f.strip_suffix('"'))
                        .unwrap_or_else(|| panic!("an unquoted field in {l}"))
                        .to_owned()
                })
                .collect()
        })
        .collect();
    let header = rows.remove(0);
    assert_eq!(
        header,
        [
            "Code_departement",
            "Code_region",
            "annee",
            "indicateur",
            "unite_de_compte",
            "nombre",
            "taux_pour_mille",
            "insee_pop",
            "insee_pop_millesime",
            "insee_log",
            "insee_log_millesime"
        ]
    );
    rows
}

/// A rate as published: decimal comma.
fn french_number(cell: &str) -> f64 {
    assert!(
        cell.contains(',') && !cell.contains('.'),
        "{cell}: decimal comma expected"
    );
    cell.replace(',', ".").parse().unwrap()
}

/// The value, rank and imputed flag of one node of one territory and year in scores.csv.
fn score(scores: &DataFrame, territory: &str, year: i64, node: &str) -> (f64, i64, String) {
    let col = |c: &str| strings(scores, c);
    let (ids, years, nodes) = (col("territory_id"), col("year"), col("node_id"));
    let i = (0..scores.height())
        .find(|&i| ids[i] == territory && years[i] == year.to_string() && nodes[i] == node)
        .unwrap_or_else(|| panic!("no {territory} {year} {node} in scores.csv"));
    (
        col("value")[i].parse().unwrap(),
        col("rank")[i].parse().unwrap(),
        col("imputed")[i].clone(),
    )
}

#[test]
fn demo_runs_offline_on_the_shipped_data_with_only_the_expected_warning() {
    let dir = TempDir::new("demo-offline");
    let err = run_demo(&dir, "out");
    // No warning: the overseas départements have no boundary in the map file, which the
    // pipeline says (`not_drawn`); the map lists them (checked below).
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("warning")).collect();
    assert!(warnings.is_empty(), "{err}");
    // The pipeline names only files of the checkout: no shared data, no download.
    let toml = std::fs::read_to_string(root().join("pipelines/demo.toml")).unwrap();
    assert!(!toml.contains("shared/") && !toml.contains("kind ="));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out/manifest.json")).unwrap())
            .unwrap();
    let files: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["data/france/departements.geojson", CRIME, ITDD]);
    assert_eq!(manifest["index"]["counts"]["territories"], 101);
    assert_eq!(
        manifest["index"]["counts"]["years"],
        serde_json::json!((2016..=2024).collect::<Vec<_>>())
    );
    // Five offences × 101 départements × 9 years, and the ITDD rows of ten indicators.
    assert_eq!(manifest["inputs"][0]["rows"], 4545);
    assert_eq!(manifest["inputs"][1]["rows"], 1818);
}

/// One crime indicator and two carried-forward INSEE indicators, recomputed here from the
/// shipped files without bienvivre; the codes stay text.
#[test]
fn demo_scores_match_the_shipped_data_by_hand() {
    let dir = TempDir::new("demo-by-hand");
    run_demo(&dir, "out");
    let scores = read_text_csv(&dir.join("out/scores.csv"));

    // Codes are text: leading zeros kept, Corsica's letters, the overseas three digits.
    let ids: std::collections::BTreeSet<String> =
        strings(&scores, "territory_id").into_iter().collect();
    assert_eq!(ids.len(), 101);
    for code in ["01", "09", "2A", "2B", "75", "971", "976"] {
        assert!(ids.contains(code), "{code}");
    }
    assert!(!ids.contains("1") && !ids.contains("20"));
    let years: std::collections::BTreeSet<String> = strings(&scores, "year").into_iter().collect();
    assert_eq!(
        years.into_iter().collect::<Vec<_>>(),
        (2016..=2024).map(|y| y.to_string()).collect::<Vec<_>>(),
        "only the scored years; the INSEE rows of 2007–2014 only fed the imputation"
    );
    let parquet = ParquetReader::new(std::fs::File::open(dir.join("out/scores.parquet")).unwrap())
        .finish()
        .unwrap();
    assert_eq!(
        parquet.column("territory_id").unwrap().dtype(),
        &DataType::String
    );

    // Burglary in Corse-du-Sud (2A), 2019: the rate per 1,000 dwellings as published
    // ("1,8359911"), in logs, between the lowest (utopia) and highest (dystopia) rate of
    // all départements in 2016–2024; rank among the départements that year.
    let burglary: Vec<(String, String, f64)> = crime_rows()
        .into_iter()
        .filter(|r| r[3] == "Cambriolages de logement")
        .map(|r| (r[0].clone(), r[2].clone(), french_number(&r[6])))
        .collect();
    assert_eq!(burglary.len(), 101 * 9);
    let rate = |d: &str, y: &str| burglary.iter().find(|r| r.0 == d && r.1 == y).unwrap().2;
    let x = rate("2A", "2019");
    assert_eq!(x, 1.8359911);
    let lowest = burglary.iter().map(|r| r.2).fold(f64::INFINITY, f64::min);
    let highest = burglary.iter().map(|r| r.2).fold(0.0, f64::max);
    let expected = 100.0 * (x.ln() - highest.ln()) / (lowest.ln() - highest.ln());
    let rank = 1 + burglary.iter().filter(|r| r.1 == "2019" && r.2 < x).count() as i64;
    let (value, got_rank, imputed) = score(&scores, "2A", 2019, "burglary");
    assert!((value - expected).abs() < 1e-9, "{value} vs {expected}");
    assert_eq!(got_rank, rank);
    assert_eq!(imputed, "false", "crime is published every year");

    // INSEE's indicators: the latest vintage carried to every scored year, flagged.
    let itdd = read_text_csv(&root().join(ITDD));
    let (codes, indicators, vintages, values) = (
        strings(&itdd, "code"),
        strings(&itdd, "indicator_id"),
        strings(&itdd, "year"),
        strings(&itdd, "value"),
    );
    let itdd_value = |d: &str, indicator: &str, year: &str| -> Option<f64> {
        (0..itdd.height())
            .find(|&i| codes[i] == d && indicators[i] == indicator && vintages[i] == year)
            .and_then(|i| values[i].parse().ok())
    };
    // Life expectancy of women in Haute-Corse, 2014 (the 2008 value differs): fixed
    // goalposts 71.7–86.02 years, clipped to [0, 100].
    let v = itdd_value("2B", "life_expectancy_women", "2014").unwrap();
    assert_ne!(Some(v), itdd_value("2B", "life_expectancy_women", "2008"));
    let expected = (100.0 * (v - 71.7) / (86.02 - 71.7)).clamp(0.0, 100.0);
    // The employment rate of Guadeloupe, 2013, between the lowest and highest 2013 rate
    // of all départements (observed goalposts: the carried values are the 2013 ones).
    let rates: Vec<f64> = (0..itdd.height())
        .filter(|&i| indicators[i] == "employment_rate" && vintages[i] == "2013")
        .filter_map(|i| values[i].parse().ok())
        .collect();
    assert_eq!(rates.len(), 100, "none for Mayotte");
    let (lo, hi) = (
        rates.iter().copied().fold(f64::INFINITY, f64::min),
        rates.iter().copied().fold(0.0, f64::max),
    );
    let e = itdd_value("971", "employment_rate", "2013").unwrap();
    let expected_employment = 100.0 * (e - lo) / (hi - lo);
    for year in 2016..=2024 {
        let (value, _, imputed) = score(&scores, "2B", year, "life_expectancy_women");
        assert!(
            (value - expected).abs() < 1e-9,
            "{year}: {value} vs {expected}"
        );
        assert_eq!(imputed, "true", "{year}: carried forward from 2014");
        let (value, _, imputed) = score(&scores, "971", year, "employment_rate");
        assert!(
            (value - expected_employment).abs() < 1e-9,
            "{year}: {value} vs {expected_employment}"
        );
        assert_eq!(imputed, "true");
    }

    // Names come from the INSEE file (2007–2014) and hold for every scored year.
    let (ids, names) = (
        strings(&scores, "territory_id"),
        strings(&scores, "territory_name"),
    );
    for (id, name) in [("2A", "Corse-du-Sud"), ("971", "Guadeloupe"), ("01", "Ain")] {
        let rows: Vec<&String> = (0..ids.len())
            .filter(|&i| ids[i] == id)
            .map(|i| &names[i])
            .collect();
        assert!(
            !rows.is_empty() && rows.iter().all(|n| *n == name),
            "{id}: {rows:?}"
        );
    }

    // Mayotte: too few INSEE indicators for an index, a health-and-safety score all the same.
    let missing = read_text_csv(&dir.join("out/missing.csv"));
    let (who, node) = (
        strings(&missing, "territory_id"),
        strings(&missing, "node_id"),
    );
    assert_eq!(
        (0..missing.height())
            .filter(|&i| who[i] == "976" && node[i] == "bien_vivre")
            .count(),
        9
    );
    assert!(score(&scores, "976", 2024, "health_safety").0 > 0.0);
}

#[test]
fn demo_draws_the_map_and_the_pack() {
    let dir = TempDir::new("demo-pack");
    run_demo(&dir, "out");
    let charts = dir.join("out/charts");
    // The map of the index and of each dimension, SVG and PNG.
    for node in [
        "bien_vivre",
        "health_safety",
        "living_conditions",
        "environment_civic",
    ] {
        let png = std::fs::read(charts.join(format!("map_{node}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "map_{node}.png");
        let svg = std::fs::read_to_string(charts.join(format!("map_{node}.svg"))).unwrap();
        // 96 metropolitan départements, some in several pieces (islands).
        assert!(svg.matches("<polygon").count() >= 96, "map_{node}.svg");
    }
    let svg = std::fs::read_to_string(charts.join("map_bien_vivre.svg")).unwrap();
    assert!(
        svg.contains(
            "Not on the map (no boundary in the map file): Guadeloupe, Martinique, Guyane, La Réunion, Mayotte"
        ),
        "the map says which départements it cannot draw"
    );
    // Rankings, trends, the scatter against population, profiles and the comparison.
    for f in [
        "index.html",
        "ranking_bien_vivre_1.png",
        "trend_bien_vivre.png",
        "scatter_bien_vivre.png",
        "heatmap_1.png",
        "profiles/75.html",
        "profiles/48_radar.png",
        "profiles/93_trend.png",
        "compare/75_48_93.html",
        "compare/75_48_93.png",
    ] {
        assert!(charts.join(f).is_file(), "charts/{f}");
    }
    let index = std::fs::read_to_string(charts.join("index.html")).unwrap();
    assert!(index.contains("map_bien_vivre.png") && index.contains("compare/75_48_93.html"));
    // The manifest counts every figure drawn, the maps among them.
    fn pngs(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| {
                if p.is_dir() {
                    pngs(&p)
                } else {
                    usize::from(p.extension().is_some_and(|e| e == "png"))
                }
            })
            .sum()
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(
        manifest["charts"]["figures"].as_u64().unwrap() as usize,
        pngs(&charts)
    );
    // Rankings of the index and 3 dimensions (2 pages each), 4 maps, 2 heatmap pages, the
    // scatter, the trend, a radar and a trend per profile, the comparison.
    assert_eq!(pngs(&charts), 8 + 4 + 2 + 1 + 1 + 3 * 2 + 1);
}
