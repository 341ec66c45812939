//! Input layouts and formats give the same scores; hand-checked values; ranks and ties.

use polars::prelude::*;

use crate::helpers::*;

fn run_ok(dir: &TempDir, pipeline: &str, out: &str) -> DataFrame {
    let o = bienvivre(dir.path(), &["run", pipeline, "-q", "-o", out]);
    assert!(o.status.success(), "{}", stderr(&o));
    read_csv(&dir.join(out).join("scores.csv"))
}

fn value(scores: &DataFrame, territory: &str, node: &str) -> Option<f64> {
    let f = scores
        .clone()
        .lazy()
        .filter(
            col("territory_id")
                .eq(lit(territory))
                .and(col("node_id").eq(lit(node))),
        )
        .collect()
        .unwrap();
    assert_eq!(f.height(), 1, "{territory} {node}");
    floats(&f, "value")[0]
}

#[test]
fn hand_checked_scores() {
    let dir = small_project(SMALL_TOML, SMALL_CSV);
    let s = run_ok(&dir, "small.toml", "out");
    let close = |a: Option<f64>, b: f64| assert!((a.unwrap() - b).abs() < 1e-12, "{a:?} vs {b}");
    // T1: a = 1 on [0, 5] → 20; b = 10, lower is better on [50, 0] → 80; c1 = 50.
    close(value(&s, "T1", "a"), 20.0);
    close(value(&s, "T1", "b"), 80.0);
    close(value(&s, "T1", "c1"), 50.0);
    // c observed on [5, 8]: 5 → 0; d = log 100 between log 10 and log 1000 → 50; c2 = 25.
    close(value(&s, "T1", "c"), 0.0);
    close(value(&s, "T1", "d"), 50.0);
    close(value(&s, "T1", "c2"), 25.0);
    close(value(&s, "T1", "dim"), 37.5);
    close(value(&s, "T1", "idx"), 37.5);
    // T4: a = 80, b = 20 → 50; c = 100, d = log 400 → 100·log(40)/log(100); c2 their mean.
    let d4 = 100.0 * 40f64.ln() / 100f64.ln();
    close(value(&s, "T4", "d"), d4);
    close(value(&s, "T4", "c2"), (100.0 + d4) / 2.0);
}

/// The small table as a long CSV, French style: `;` separator and decimal comma.
fn small_long_french() -> String {
    let mut out = String::from("code;name;country;indicator;value\n");
    let mut lines = SMALL_CSV.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        for j in 3..cells.len() {
            out.push_str(&format!(
                "{};{};{};{};{}\n",
                cells[0],
                cells[1],
                cells[2],
                header[j],
                cells[j].replace('.', ",")
            ));
        }
    }
    out
}

#[test]
fn long_french_csv_parquet_and_split_sources_match_wide() {
    let dir = small_project(SMALL_TOML, SMALL_CSV);
    let wide = run_ok(&dir, "small.toml", "wide");

    dir.write("long.csv", &small_long_french());
    dir.write(
        "long.toml",
        &SMALL_TOML.replace(
            "path = \"small.csv\"",
            "path = \"long.csv\"\nlayout = \"long\"\nseparator = \";\"\ndecimal = \",\"\nindicator_column = \"indicator\"\nvalue_column = \"value\"",
        ),
    );
    assert_eq!(run_ok(&dir, "long.toml", "long"), wide);

    let mut df = read_csv(&dir.join("small.csv"));
    ParquetWriter::new(std::fs::File::create(dir.join("small.parquet")).unwrap())
        .finish(&mut df)
        .unwrap();
    dir.write("pq.toml", &SMALL_TOML.replace("small.csv", "small.parquet"));
    assert_eq!(run_ok(&dir, "pq.toml", "pq"), wide);

    // Two sources: a, b in one (rows shuffled), c, d in the other; names only in the second.
    dir.write(
        "ab.csv",
        "code,a,b\nT3,3.0,30\nT1,1.0,10\nT4,4.0,40\nT2,2.0,20\n",
    );
    dir.write("cd.csv", "code,name,country,c,d\nT1,One,X,5,100\nT2,Two,X,6,200\nT3,Three,Y,7,300\nT4,Four,Y,8,400\n");
    dir.write(
        "two.toml",
        &SMALL_TOML.replace(
            "[[source]]\npath = \"small.csv\"",
            "[[source]]\npath = \"ab.csv\"\n\n[[source]]\npath = \"cd.csv\"",
        ),
    );
    assert_eq!(run_ok(&dir, "two.toml", "two"), wide);
}

#[test]
fn ties_share_the_best_rank_within_each_year() {
    let csv = "code,year,a,b,c,d\n\
               T1,2020,1,10,5,100\nT2,2020,1,10,5,100\nT3,2020,2,10,5,100\n\
               T1,2021,3,10,5,100\nT2,2021,2,10,5,100\nT3,2021,1,10,8,100\n";
    let toml = SMALL_TOML.replace("name = \"name\"\ngroup = \"country\"", "year = \"year\"");
    let dir = small_project(&toml, csv);
    let s = run_ok(&dir, "small.toml", "out");
    let a = s
        .clone()
        .lazy()
        .filter(col("node_id").eq(lit("a")))
        .collect()
        .unwrap();
    let ranks: Vec<Option<f64>> = floats(&a, "rank");
    // Rows are ordered by territory then year: T1 2020, T1 2021, T2 2020, …
    assert_eq!(
        ranks,
        [
            Some(2.0),
            Some(1.0),
            Some(2.0),
            Some(2.0),
            Some(1.0),
            Some(3.0)
        ]
    );
    // Observed goalposts span all years: c is 5 everywhere but T3 2021 (8).
    let c = s
        .clone()
        .lazy()
        .filter(col("node_id").eq(lit("c")))
        .collect()
        .unwrap();
    assert_eq!(
        floats(&c, "value"),
        [
            Some(0.0),
            Some(0.0),
            Some(0.0),
            Some(0.0),
            Some(0.0),
            Some(100.0)
        ]
    );
    let years: Vec<Option<f64>> = floats(&c, "year");
    assert_eq!(
        years,
        [
            Some(2020.0),
            Some(2021.0),
            Some(2020.0),
            Some(2021.0),
            Some(2020.0),
            Some(2021.0)
        ]
    );
}

#[test]
fn missing_data_rule_reports_why_a_score_is_missing() {
    // T2 lacks both c1 indicators; min_share 0.5 of 2 → c1 missing, and so is the index
    // when its rule needs every dimension child… here: dim keeps c2 (1 of 2 ≥ 0.5).
    let csv = SMALL_CSV.replace("T2,Two,X,2.0,20", "T2,Two,X,,NA");
    let dir = small_project(SMALL_TOML, &csv);
    let s = run_ok(&dir, "small.toml", "out");
    assert_eq!(value(&s, "T2", "c1"), None);
    assert!(value(&s, "T2", "dim").is_some());
    let missing = std::fs::read_to_string(dir.join("out/missing.csv")).unwrap();
    assert_eq!(
        missing,
        "territory_id,territory_name,group,year,level,node_id,present,total,required\nT2,Two,X,,component,c1,0,2,1\n"
    );
}

#[test]
fn screening_drops_sparse_territories_unless_included() {
    // T4 has one indicator of four.
    let csv = SMALL_CSV.replace("T4,Four,Y,4.0,40,8,400", "T4,Four,Y,4.0,,,");
    let screening = "[screening]\nmin_availability = 0.5\n";
    let toml = SMALL_TOML.replace("[index]", &format!("{screening}\n[index]"));
    let dir = small_project(&toml, &csv);
    let o = bienvivre(dir.path(), &["run", "small.toml", "-o", "out"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "screening dropped 1 row(s) below 50% of indicators present or excluded: \"T4 (25%)\""
        ),
        "{}",
        stderr(&o)
    );
    let wide = read_csv(&dir.join("out/scores_wide.csv"));
    assert_eq!(strings(&wide, "territory_id"), ["T1", "T2", "T3"]);
    // Forced in, it is scored with what it has.
    let toml = SMALL_TOML.replace(
        "[index]",
        &format!("{screening}include = [\"T4\"]\n\n[index]"),
    );
    dir.write("small.toml", &toml);
    let o = bienvivre(dir.path(), &["run", "small.toml", "-q", "-o", "out"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let wide = read_csv(&dir.join("out/scores_wide.csv"));
    assert_eq!(wide.height(), 4);
}

/// Three indicators whose correlation matrix is [[1, r, 0], [r, 1, r], [0, r, 1]] with
/// r = 1/√2 (a and c orthogonal, b = a + c): its first eigenvector is (1, √2, 1)/2, with
/// eigenvalue 1 + r√2 = 2, so PCA weighs b √2 times as much as a and c — not equally.
const PCA_CSV: &str =
    "code,name,a,b,c\nT1,One,1,2,1\nT2,Two,-1,0,1\nT3,Three,1,0,-1\nT4,Four,-1,-2,-1\n";

const PCA_TOML: &str = r#"[pipeline]
id = "pca"

[territories]
id = "code"
name = "name"

[[source]]
path = "pca.csv"

[weights]
indicator = "pca"

[index]
id = "idx"

[[dimension]]
id = "dim"

[[component]]
id = "c1"
dimension = "dim"
aggregation = { method = "weighted" }

[[indicator]]
id = "a"
component = "c1"
direction = "higher_is_better"
utopia = 10
dystopia = -10

[[indicator]]
id = "b"
component = "c1"
direction = "higher_is_better"
utopia = 10
dystopia = -10

[[indicator]]
id = "c"
component = "c1"
direction = "higher_is_better"
utopia = 10
dystopia = -10
"#;

#[test]
fn pca_weights_replace_the_weights_of_a_level() {
    let dir = TempDir::new("pca");
    dir.write("pca.toml", PCA_TOML);
    dir.write("pca.csv", PCA_CSV);
    let o = bienvivre(dir.path(), &["run", "pca.toml", "-q", "-o", "out"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out/manifest.json")).unwrap())
            .unwrap();
    let pca = &manifest["index"]["pca_weights"][0];
    let floats = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    // Worked by hand: loadings (1, √2, 1)/2, weights (1, √2, 1)/(2 + √2).
    let s2 = 2f64.sqrt();
    let expected = [1.0 / (2.0 + s2), s2 / (2.0 + s2), 1.0 / (2.0 + s2)];
    for (got, want) in floats(&pca["weights"]).iter().zip(expected) {
        assert!((got - want).abs() < 1e-12, "{pca}");
    }
    for (got, want) in floats(&pca["loadings"]).iter().zip([0.5, s2 / 2.0, 0.5]) {
        assert!((got - want).abs() < 1e-12, "{pca}");
    }
    // Variance share of the first component: λ1 / 3 = 2/3.
    assert!((pca["variance_share"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12);
    // Rescaled values are 5x + 50; the component is their PCA-weighted mean.
    let wide = read_csv(&dir.join("out/scores_wide.csv"));
    let by_hand = [
        (55.0 + 60.0 * s2 + 55.0) / (2.0 + s2),
        (45.0 + 50.0 * s2 + 55.0) / (2.0 + s2),
        (55.0 + 50.0 * s2 + 45.0) / (2.0 + s2),
        (45.0 + 40.0 * s2 + 45.0) / (2.0 + s2),
    ];
    for (got, want) in floats_of(&wide, "c1").iter().zip(by_hand) {
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }
    // And not the equal-weight mean (56.67 for T1).
    assert!((floats_of(&wide, "c1")[0] - 170.0 / 3.0).abs() > 0.3);

    // With an unweighted arithmetic mean, PCA weights would be ignored: an error.
    let toml = SMALL_TOML.replace("[index]", "[weights]\nindicator = \"pca\"\n\n[index]");
    let dir = small_project(&toml, SMALL_CSV);
    let o = bienvivre(dir.path(), &["run", "small.toml", "-o", "out"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(
            "[weights] indicator = \"pca\": component \"c1\" uses the unweighted arithmetic mean"
        ),
        "{}",
        stderr(&o)
    );
}

fn floats_of(df: &polars::prelude::DataFrame, name: &str) -> Vec<f64> {
    floats(df, name)
        .into_iter()
        .map(|v| v.expect("a value"))
        .collect()
}

#[test]
fn percentile_ranks_on_a_chosen_range_as_coinr() {
    // COINr's percentile ranks are on [0, 1]: (rank − 1)/(n − 1).
    let toml = SMALL_TOML.replace(
        "id = \"c\"\ncomponent = \"c2\"\ndirection = \"higher_is_better\"\ngoalposts = \"observed\"",
        "id = \"c\"\ncomponent = \"c2\"\ndirection = \"higher_is_better\"\nnormalisation = { method = \"percentile\", range = [0, 1] }",
    );
    let dir = small_project(&toml, SMALL_CSV);
    let o = bienvivre(dir.path(), &["run", "small.toml", "-q", "-o", "out"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let scores = read_csv(&dir.join("out/scores.csv"));
    let c: Vec<Option<f64>> = strings(&scores, "node_id")
        .iter()
        .zip(floats(&scores, "value"))
        .filter(|(n, _)| n.as_str() == "c")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(c, [Some(0.0), Some(1.0 / 3.0), Some(2.0 / 3.0), Some(1.0)]);
}

#[test]
fn negative_pca_loadings_kept_as_coinr_only_in_weighted_arithmetic_means() {
    // c against a and b: c = −(a + b), so it loads negatively.
    let csv = "code,name,a,b,c\nT1,One,1,2,-3\nT2,Two,2,1,-3\nT3,Three,3,4,-7\nT4,Four,4,3,-7\nT5,Five,5,6,-11\n";
    let toml = PCA_TOML.replace(
        "[weights]\nindicator = \"pca\"",
        "[weights]\nindicator = \"pca\"\nnegative_loadings = \"keep\"",
    );
    let dir = TempDir::new("pca-keep");
    dir.write("pca.csv", csv);
    dir.write("pca.toml", &toml);
    let o = bienvivre(
        dir.path(),
        &["run", "pca.toml", "-o", "out", "--no-progress"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("\"c\" loads negatively")
            && stderr(&o).contains("keeps a negative weight"),
        "{}",
        stderr(&o)
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out/manifest.json")).unwrap())
            .unwrap();
    let w: Vec<f64> = manifest["index"]["pca_weights"][0]["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert!(
        w[2] < 0.0 && (w.iter().sum::<f64>() - 1.0).abs() < 1e-12,
        "{w:?}"
    );
    // A geometric mean cannot take a negative weight: refused before computing.
    let geometric = toml.replace(
        "aggregation = { method = \"weighted\" }",
        "aggregation = { method = \"geometric\" }",
    );
    dir.write("pca.toml", &geometric);
    let o = bienvivre(dir.path(), &["run", "pca.toml", "-o", "out2"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("negative_loadings = \"keep\": component \"c1\" uses a geometric mean"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn unranked_territories_are_scored_but_take_no_place() {
    // T4 stands for an aggregate ("World"): scored, not ranked, and nobody below it moves
    // down a place because of it.
    let toml = SMALL_TOML.replace(
        "group = \"country\"",
        "group = \"country\"\nunranked = [\"T4\", \"NOWHERE\"]",
    );
    let dir = small_project(&toml, SMALL_CSV);
    let o = bienvivre(
        dir.path(),
        &["run", "small.toml", "-o", "out", "--no-progress"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "[territories] unranked names territories that are not in the data: \"NOWHERE\""
        ),
        "{}",
        stderr(&o)
    );
    let plain = small_project(SMALL_TOML, SMALL_CSV);
    assert!(
        bienvivre(plain.path(), &["run", "small.toml", "-q", "-o", "out"])
            .status
            .success()
    );
    let rows = |d: &TempDir| {
        let s = read_csv(&d.join("out/scores.csv"));
        let ids = strings(&s, "territory_id");
        let nodes = strings(&s, "node_id");
        let values = floats(&s, "value");
        let ranks = floats(&s, "rank");
        ids.into_iter()
            .zip(nodes)
            .zip(values.into_iter().zip(ranks))
            .filter(|((_, n), _)| n == "idx")
            .map(|((t, _), vr)| (t, vr))
            .collect::<Vec<_>>()
    };
    let (with, without) = (rows(&dir), rows(&plain));
    for ((t, (v, r)), (_, (pv, pr))) in with.iter().zip(&without) {
        assert_eq!(v, pv, "{t}: the score is the same");
        if t == "T4" {
            assert_eq!(*r, None, "T4 is not ranked");
        } else {
            // Ranks among the others: one place up for those T4 was ahead of.
            let t4_rank = without
                .iter()
                .find(|(id, _)| id == "T4")
                .unwrap()
                .1
                .1
                .unwrap();
            let want = if pr.unwrap() > t4_rank {
                pr.unwrap() - 1.0
            } else {
                pr.unwrap()
            };
            assert_eq!(r.unwrap(), want, "{t}");
        }
    }
}
