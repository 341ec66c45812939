//! Relational capability: the Alkire–Foster reference example, the Afrobarometer
//! pipelines, joining with an index, and the bad-input cases.

use std::collections::HashMap;
use std::path::Path;

use bienvivre::load;
use bienvivre::progress::Progress;
use bienvivre::relational;

/// The whole sample's rows have no territory id (null, read as "" here): no id in the
/// data can be mistaken for them.
const ALL: &str = "";
use bienvivre::run;
use polars::prelude::*;

use crate::helpers::*;

/// Deprivation indicators of ../shared/data/mpi_example (1 = deprived) as RCI items
/// (achieved = not deprived). `weighting` is "equal_count" or "nested".
fn mpi_pipeline(dir: &TempDir, data: &Path, weighting: &str, k: f64) -> std::path::PathBuf {
    let weights = read_csv(&data.parent().unwrap().join("weights.csv"));
    let rows: Vec<(String, String, String)> = strings(&weights, "weighting")
        .into_iter()
        .zip(strings(&weights, "indicator"))
        .zip(strings(&weights, "dimension"))
        .map(|((w, i), d)| (w, i, d))
        .filter(|(w, _, _)| w == weighting)
        .collect();
    let mut toml = format!(
        "[pipeline]\nid = \"mpi_{weighting}\"\n\n[rci]\nk = 0.5\nk_deprivation = {}\nmissing = \"drop\"\nbootstrap = 0\nweighting = \"{}\"\n\n[rci.source]\npath = \"{}\"\nterritory = \"region\"\nrespondent_id = \"person_id\"\n\n",
        // equal_count: k counts deprivations out of 11; our scores are shares.
        if weighting == "equal_count" {
            k / 11.0
        } else {
            k
        },
        if weighting == "equal_count" {
            "flat"
        } else {
            "nested"
        },
        data.display()
    );
    let mut dims: Vec<String> = rows
        .iter()
        .map(|r| {
            if r.2.is_empty() {
                "all".to_string()
            } else {
                r.2.clone()
            }
        })
        .collect();
    dims.dedup();
    for d in &dims {
        toml.push_str(&format!("[[rci.dimension]]\nid = \"{d}\"\n\n[[rci.component]]\nid = \"{d}_items\"\ndimension = \"{d}\"\n\n"));
    }
    for (_, item, d) in &rows {
        let d = if d.is_empty() { "all" } else { d };
        toml.push_str(&format!(
            "[[rci.item]]\nid = \"{item}\"\ncomponent = \"{d}_items\"\nachieved = {{ codes = [0] }}\nvalid = [0, 1]\n\n"
        ));
    }
    dir.write(&format!("{weighting}_{k}.toml"), &toml)
}

fn af_values(scores: &DataFrame) -> HashMap<(String, String), Option<f64>> {
    let f = scores
        .clone()
        .lazy()
        .filter(
            col("subgroup").is_null().and(
                col("level")
                    .eq(lit("af"))
                    .or(col("node_id").eq(lit("respondents"))),
            ),
        )
        .collect()
        .unwrap();
    strings(&f, "territory_id")
        .into_iter()
        .zip(strings(&f, "node_id"))
        .zip(floats(&f, "value"))
        .collect()
}

#[test]
#[ignore = "needs ../shared/data"]
fn alkire_foster_reference_example() {
    let data = shared("mpi_example/poverty_data.csv");
    let expected = shared("mpi_example/expected_results.csv");
    let expected = read_csv(&expected);
    let dir = TempDir::new("mpi");
    let configs = strings(&expected, "config_id");
    let weightings = strings(&expected, "weighting");
    let ks = floats(&expected, "k");
    // The reference calls the whole sample "ALL"; our whole-sample rows have no id.
    let groups: Vec<String> = strings(&expected, "group")
        .into_iter()
        .map(|g| if g == "ALL" { ALL.to_owned() } else { g })
        .collect();
    let (n, h, a, m0) = (
        floats(&expected, "n"),
        floats(&expected, "h"),
        floats(&expected, "a"),
        floats(&expected, "m0"),
    );

    let mut cache: HashMap<String, HashMap<(String, String), Option<f64>>> = HashMap::new();
    let mut checked = 0;
    let mut worst = 0.0f64;
    for i in 0..expected.height() {
        let values = cache.entry(configs[i].clone()).or_insert_with(|| {
            let pipeline = mpi_pipeline(&dir, &data, &weightings[i], ks[i].unwrap());
            let p = run::load_pipeline(&pipeline).unwrap_or_else(|e| panic!("{e}"));
            let rci = p.rci.as_ref().unwrap();
            let raw = load::read_survey(rci).unwrap_or_else(|e| panic!("{e}"));
            let out = relational::compute(rci, raw, &mut Progress::hidden())
                .unwrap_or_else(|e| panic!("{e}"));
            // Decomposability: the whole-sample M0 is the population-weighted sum of the
            // regions' M0.
            let v = af_values(&out.scores);
            let total = v[&(ALL.to_string(), "respondents".to_string())].unwrap();
            let mut sum = 0.0;
            for ((t, node), m) in &v {
                if node == "M0" && t != ALL {
                    sum += v[&(t.clone(), "respondents".to_string())].unwrap() / total * m.unwrap();
                }
            }
            let overall = v[&(ALL.to_string(), "M0".to_string())].unwrap();
            assert!(
                (sum - overall).abs() < 1e-12,
                "{}: Σ share·M0 = {sum}, M0 = {overall}",
                configs[i]
            );
            v
        });
        let g = &groups[i];
        let get = |node: &str| values[&(g.clone(), node.to_string())];
        assert_eq!(get("respondents"), n[i], "{} {g} n", configs[i]);
        for (node, want) in [("H", h[i]), ("A", a[i]), ("M0", m0[i])] {
            match (get(node), want) {
                (Some(x), Some(y)) => {
                    assert!(
                        (x - y).abs() <= 1e-9,
                        "{} {g} {node}: ours {x}, expected {y}",
                        configs[i]
                    );
                    worst = worst.max((x - y).abs());
                }
                (None, None) => {}
                (x, y) => panic!("{} {g} {node}: ours {x:?}, expected {y:?}", configs[i]),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, expected.height() * 3);
    eprintln!("mpi_example: {checked} H/A/M0 values, max error {worst:.1e}");
}

#[test]
#[ignore = "needs ../shared/data"]
fn alkire_foster_person_scores() {
    let data = shared("mpi_example/poverty_data.csv");
    let expected = shared("mpi_example/expected_scores.csv");
    let expected = read_csv(&expected);
    let dir = TempDir::new("mpi-persons");
    for (config, weighting, k) in [
        ("nested_k1_3", "nested", 1.0 / 3.0),
        ("nested_k1_2", "nested", 0.5),
        ("equal_count_k4", "equal_count", 4.0),
    ] {
        let pipeline = mpi_pipeline(&dir, &data, weighting, k);
        let p = run::load_pipeline(&pipeline).unwrap();
        let rci = p.rci.as_ref().unwrap();
        let raw = load::read_survey(rci).unwrap();
        let out = relational::compute(rci, raw, &mut Progress::hidden()).unwrap();
        let ours: HashMap<String, (f64, bool)> = strings(&out.persons, "respondent_id")
            .into_iter()
            .zip(floats(&out.persons, "deprivation"))
            .zip(out.persons.column("poor").unwrap().bool().unwrap().iter())
            .map(|((id, c), p)| (id, (c.unwrap(), p.unwrap())))
            .collect();
        let e = expected
            .clone()
            .lazy()
            .filter(col("config_id").eq(lit(config)))
            .collect()
            .unwrap();
        let ids = strings(&e, "person_id");
        let shares = floats(&e, "deprivation_share");
        let poor = floats(&e, "is_poor");
        assert_eq!(ids.len(), 30);
        for i in 0..ids.len() {
            let (c, p) = ours[&ids[i]];
            assert!(
                (c - shares[i].unwrap()).abs() < 1e-12,
                "{config} person {}: {c}",
                ids[i]
            );
            assert_eq!(p, poor[i] == Some(1.0), "{config} person {} poor", ids[i]);
        }
    }
}

#[test]
#[ignore = "needs ../shared/data"]
fn afrobarometer_pipelines_score_every_region() {
    let dir = TempDir::new("afro");
    for (country, regions) in [
        ("ghana", 10),
        ("mali", 9),
        ("tanzania", 25),
        ("nigeria", 22),
    ] {
        shared(&format!("afrobarometer_r1/{country}.csv"));
        let out_dir = dir.join(country);
        let pipeline = format!("pipelines/afrobarometer_r1_{country}_rci.toml");
        let o = bienvivre(
            &root(),
            &["run", &pipeline, "-q", "-o", out_dir.to_str().unwrap()],
        );
        assert!(o.status.success(), "{country}: {}", stderr(&o));
        let wide = read_csv(&out_dir.join("scores_wide.csv"));
        assert_eq!(wide.height(), regions, "{country}");
        let mut ranks: Vec<i64> = floats(&wide, "rci_rank")
            .into_iter()
            .map(|r| r.unwrap() as i64)
            .collect();
        ranks.sort();
        assert_eq!(ranks[0], 1);
        let (mean, lo, hi) = (
            floats(&wide, "rci_mean"),
            floats(&wide, "rci_mean_ci_low"),
            floats(&wide, "rci_mean_ci_high"),
        );
        let (h, a, m0) = (
            floats(&wide, "af_h"),
            floats(&wide, "af_a"),
            floats(&wide, "af_m0"),
        );
        for i in 0..regions {
            let (m, l, u) = (mean[i].unwrap(), lo[i].unwrap(), hi[i].unwrap());
            assert!(
                l <= m && m <= u && (0.0..=1.0).contains(&m),
                "{country}: {l} {m} {u}"
            );
            assert!((h[i].unwrap() * a[i].unwrap() - m0[i].unwrap()).abs() < 1e-12);
        }
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out_dir.join("manifest.json")).unwrap())
                .unwrap();
        let uncovered = manifest["rci"]["uncovered_components"].as_array().unwrap();
        assert!(
            uncovered.iter().any(|c| c == "transport"),
            "{country}: {uncovered:?}"
        );
        let persons =
            ParquetReader::new(std::fs::File::open(out_dir.join("rci_persons.parquet")).unwrap())
                .finish()
                .unwrap();
        assert_eq!(
            persons.height(),
            manifest["rci"]["respondents"].as_u64().unwrap() as usize
        );
        // No answer column is copied into the persons table.
        assert!(persons.column("trust_relatives").is_err());
    }
}

#[test]
#[ignore = "needs ../shared/data"]
fn bootstrap_intervals_are_deterministic() {
    shared("afrobarometer_r1/ghana.csv");
    let dir = TempDir::new("afro-twice");
    for (o, one_thread) in [("a", false), ("b", true)] {
        let out = bienvivre_threads(
            &root(),
            &[
                "run",
                "pipelines/afrobarometer_r1_ghana_rci.toml",
                "-q",
                "-o",
                dir.join(o).to_str().unwrap(),
            ],
            one_thread,
        );
        assert!(out.status.success());
    }
    for f in ["rci_scores.csv", "scores_wide.csv", "rci_persons.parquet"] {
        assert!(
            std::fs::read(dir.join("a").join(f)).unwrap()
                == std::fs::read(dir.join("b").join(f)).unwrap(),
            "{f} differs"
        );
    }
}

/// A small survey: 6 respondents in 2 territories, 4 items over the 3 default dimensions.
const SURVEY_CSV: &str = "\
id,region,w,sex,job,trust,member,voted
1,T1,1.0,f,1,4,1,1
2,T1,2.0,m,0,2,0,1
3,T1,1.0,f,1,9,1,0
4,T2,1.0,m,0,1,0,0
5,T2,1.5,f,1,3,1,1
6,T2,0.5,m,1,4,0,1
";

const SURVEY_TOML: &str = r#"[pipeline]
id = "survey"

[rci]
k = 0.5
k_deprivation = 0.5
bootstrap = 50
max_missing_share = 0.4

[rci.source]
path = "survey.csv"
territory = "region"
weight = "w"
subgroups = ["sex"]
respondent_id = "id"

[[rci.item]]
id = "employed"
component = "employment"
column = "job"
achieved = { codes = [1] }
valid = [0, 1]

[[rci.item]]
id = "trusts_family"
component = "trust_family"
column = "trust"
achieved = { at_least = 3 }
valid = { min = 1, max = 4 }
missing = [9]

[[rci.item]]
id = "member"
component = "groups"
achieved = { codes = [1] }
valid = [0, 1]

[[rci.item]]
id = "voted"
component = "vote"
achieved = { codes = [1] }
valid = [0, 1]
"#;

fn survey(toml: &str, csv: &str) -> TempDir {
    let dir = TempDir::new("survey");
    dir.write("survey.toml", toml);
    dir.write("survey.csv", csv);
    dir
}

#[test]
fn survey_scores_by_hand() {
    let dir = survey(SURVEY_TOML, SURVEY_CSV);
    let o = bienvivre(dir.path(), &["run", "survey.toml", "-q", "-o", "out"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let persons =
        ParquetReader::new(std::fs::File::open(dir.join("out/rci_persons.parquet")).unwrap())
            .finish()
            .unwrap();
    // Weights: integration 1/3 (employed), private relations 1/3 (trust), civic 1/6 + 1/6.
    // Person 3 did not answer trust (9): scored over 2/3 of the weight: (1/3 + 1/6) / (2/3).
    let s: Vec<Option<f64>> = floats(&persons, "rci");
    let expect = [1.0, 1.0 / 6.0, 0.75, 0.0, 1.0, 5.0 / 6.0];
    for (got, want) in s.iter().zip(expect) {
        assert!((got.unwrap() - want).abs() < 1e-12, "{s:?}");
    }
    let scores = read_csv(&dir.join("out/rci_scores.csv"));
    let get = |t: &str, sub: Option<&str>, node: &str| -> f64 {
        let f = scores
            .clone()
            .lazy()
            .filter(
                if t.is_empty() {
                    col("territory_id").is_null()
                } else {
                    col("territory_id").eq(lit(t))
                }
                .and(col("node_id").eq(lit(node)))
                .and(match sub {
                    Some(s) => col("subgroup").eq(lit(s)),
                    None => col("subgroup").is_null(),
                }),
            )
            .collect()
            .unwrap();
        assert_eq!(f.height(), 1, "{t} {sub:?} {node}");
        floats(&f, "value")[0].unwrap()
    };
    // T1 weighted mean: (1·1 + 2·1/6 + 1·0.75) / 4.
    assert!((get("T1", None, "mean") - (1.0 + 2.0 / 6.0 + 0.75) / 4.0).abs() < 1e-12);
    // T1 women: persons 1 and 3.
    assert!((get("T1", Some("sex=f"), "mean") - (1.0 + 0.75) / 2.0).abs() < 1e-12);
    // Poor: c ≥ 0.5, i.e. persons 2 (c = 5/6) and 4 (c = 1): H over the whole sample.
    assert!((get(ALL, None, "H") - (2.0 + 1.0) / 7.0).abs() < 1e-12);
    // Item contributions to M0 sum to 1.
    let contrib: f64 = ["employed", "trusts_family", "member", "voted"]
        .iter()
        .map(|i| {
            let f = scores
                .clone()
                .lazy()
                .filter(
                    col("territory_id")
                        .is_null()
                        .and(col("subgroup").is_null())
                        .and(col("level").eq(lit("af_contribution")))
                        .and(col("node_id").eq(lit(*i))),
                )
                .collect()
                .unwrap();
            floats(&f, "value")[0].unwrap()
        })
        .sum();
    assert!((contrib - 1.0).abs() < 1e-12, "{contrib}");
}

fn survey_fails(toml: &str, csv: &str, code: i32) -> String {
    let dir = survey(toml, csv);
    let o = bienvivre(dir.path(), &["run", "survey.toml", "-o", "out"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(code), "{err}");
    assert!(!dir.join("out").exists());
    err
}

#[test]
fn answer_code_neither_valid_nor_missing() {
    let err = survey_fails(
        SURVEY_TOML,
        &SURVEY_CSV.replace("5,T2,1.5,f,1,3", "5,T2,1.5,f,1,7"),
        1,
    );
    assert!(
        err.contains("survey.csv: row 5 (line 6), column \"trust\": answer code 7 of item \"trusts_family\" is neither valid (1 to 4) nor missing (9)"),
        "{err}"
    );
}

#[test]
fn negative_or_missing_survey_weights() {
    let err = survey_fails(
        SURVEY_TOML,
        &SURVEY_CSV
            .replace("2,T1,2.0", "2,T1,-2.0")
            .replace("6,T2,0.5", "6,T2,"),
        1,
    );
    assert!(
        err.contains("survey.csv: row 2 (line 3), column \"w\": negative survey weight -2"),
        "{err}"
    );
    assert!(
        err.contains("survey.csv: row 6 (line 7), column \"w\": missing survey weight"),
        "{err}"
    );
}

#[test]
fn empty_territory_cell() {
    let err = survey_fails(SURVEY_TOML, &SURVEY_CSV.replace("4,T2,", "4,,"), 1);
    assert!(
        err.contains("survey.csv: row 4 (line 5), column \"region\": empty territory"),
        "{err}"
    );
}

#[test]
fn item_mapped_twice() {
    let toml = format!(
        "{SURVEY_TOML}\n[[rci.item]]\nid = \"voted_again\"\ncomponent = \"vote\"\ncolumn = \"voted\"\nachieved = {{ codes = [1] }}\nvalid = [0, 1]\n"
    );
    let err = survey_fails(&toml, SURVEY_CSV, 2);
    assert!(err.contains("survey.toml:47:10: column \"voted\" is mapped twice: by items \"voted\" and \"voted_again\""), "{err}");
    let toml = format!(
        "{SURVEY_TOML}\n[[rci.item]]\nid = \"voted\"\ncomponent = \"vote\"\ncolumn = \"sex\"\nachieved = {{ codes = [1] }}\nvalid = [0, 1]\n"
    );
    let err = survey_fails(&toml, SURVEY_CSV, 2);
    assert!(err.contains("id \"voted\" is used twice in [rci]"), "{err}");
}

#[test]
fn every_dimension_needs_a_positive_weight() {
    // Without the employment item, integration into networks has no item at all.
    let toml = SURVEY_TOML.replace(
        "[[rci.item]]\nid = \"employed\"\ncomponent = \"employment\"",
        "[[rci.item]]\nid = \"employed\"\ncomponent = \"trust_family\"",
    );
    let toml = toml.replace("column = \"trust\"", "column = \"trust\"\nweight = 1");
    let err = survey_fails(&toml, SURVEY_CSV, 2);
    assert!(
        err.contains("dimension \"integration\" gets no positive weight: no item is mapped to it"),
        "{err}"
    );
    // A zero item weight empties a dimension too.
    let toml = SURVEY_TOML.replace("column = \"job\"", "column = \"job\"\nweight = 0");
    let err = survey_fails(&toml, SURVEY_CSV, 2);
    assert!(
        err.contains(
            "dimension \"integration\" gets no positive weight: its items' weights are all zero"
        ),
        "{err}"
    );
}

#[test]
fn index_and_rci_side_by_side() {
    let dir = small_project(SMALL_TOML, SMALL_CSV);
    dir.write("survey.csv", SURVEY_CSV);
    let rci = SURVEY_TOML.split_once("[rci]").unwrap().1;
    dir.write("both.toml", &format!("{SMALL_TOML}\n[rci]{rci}"));
    let o = bienvivre(dir.path(), &["run", "both.toml", "-o", "out"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "warning: territories with index scores but no survey respondents: \"T3\", \"T4\""
        ),
        "{}",
        stderr(&o)
    );
    let wide = read_csv(&dir.join("out/scores_wide.csv"));
    assert_eq!(wide.height(), 4);
    assert_eq!(strings(&wide, "territory_id"), ["T1", "T2", "T3", "T4"]);
    assert!(floats(&wide, "idx").iter().all(Option::is_some));
    assert_eq!(
        floats(&wide, "rci_mean")
            .iter()
            .filter(|v| v.is_some())
            .count(),
        2
    );
    for f in [
        "scores.csv",
        "rci_scores.csv",
        "rci_persons.parquet",
        "manifest.json",
    ] {
        assert!(dir.join("out").join(f).exists(), "{f}");
    }
}
