//! EU Regional SPI 2020 (../shared/data/euspi2020/): our pipeline against official scores.

use std::collections::{BTreeMap, HashMap};

use bienvivre::aggregate;
use bienvivre::plan::Level;
use bienvivre::run;

use crate::helpers::*;

const SINGLE_REGION: [&str; 5] = ["CY", "EE", "LU", "LV", "MT"];

/// (a) Official components are anchored to national scores by a per-country shift, which
/// this pipeline does not apply: ours minus official must be constant within each country,
/// and zero for countries that are one region.
#[test]
#[ignore = "needs ../shared/data"]
fn components_equal_official_up_to_a_constant_per_country() {
    let official = shared("euspi2020/official_scores.csv");
    shared("euspi2020/regional_raw.csv");
    let dir = TempDir::new("euspi");
    let out_dir = dir.join("out");
    let out = bienvivre(
        &root(),
        &[
            "run",
            "pipelines/euspi2020.toml",
            "-q",
            "--output-dir",
            out_dir.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let ours = read_csv(&out_dir.join("scores_wide.csv"));
    let official = read_csv(&official);
    assert_eq!(ours.height(), 240);
    let ours_row: HashMap<String, usize> = strings(&ours, "territory_id")
        .into_iter()
        .enumerate()
        .map(|(i, id)| (id, i))
        .collect();
    let ids = strings(&official, "nuts_id");
    let countries = strings(&official, "country");
    let components: Vec<String> = official
        .get_column_names()
        .iter()
        .skip(3)
        .map(|c| c.to_string())
        .collect();
    assert_eq!(components.len(), 12);

    let mut compared = 0;
    let mut worst_spread = 0.0f64;
    let mut worst_single = 0.0f64;
    for c in &components {
        let theirs = floats(&official, c);
        let mine = floats(&ours, c);
        let mut by_country: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for (i, id) in ids.iter().enumerate() {
            let m = mine[ours_row[id]];
            match (theirs[i], m) {
                (Some(t), Some(m)) => by_country.entry(&countries[i]).or_default().push(m - t),
                (None, None) => {}
                (t, m) => panic!("{id} {c}: official {t:?}, ours {m:?}"),
            }
        }
        for (country, diffs) in by_country {
            compared += diffs.len();
            let lo = diffs.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = diffs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            assert!(
                hi - lo <= 1e-4,
                "{c} in {country}: spread of ours − official is {}",
                hi - lo
            );
            worst_spread = worst_spread.max(hi - lo);
            if SINGLE_REGION.contains(&country) {
                assert_eq!(diffs.len(), 1);
                assert!(
                    diffs[0].abs() <= 1e-4,
                    "{c} in {country}: ours − official = {}",
                    diffs[0]
                );
                worst_single = worst_single.max(diffs[0].abs());
            }
        }
    }
    assert_eq!(compared, 231 * 12);
    eprintln!(
        "euspi2020: {compared} component scores, max within-country spread {worst_spread:.2e}, max single-region error {worst_single:.2e}"
    );
}

/// (b) Dimensions and the index recomputed from the official component scores with the
/// pipeline's aggregation equal the published replication (231 regions with official scores).
#[test]
#[ignore = "needs ../shared/data"]
fn dimensions_and_index_from_official_components() {
    let official = shared("euspi2020/official_scores.csv");
    let replication = shared("euspi2020/replication_dimensions_index.csv");
    let plan = run::load_plan(&root().join("pipelines/euspi2020.toml")).expect("pipeline loads");
    let official = read_csv(&official);
    let computed = aggregate::aggregate(official.clone(), &plan, Level::Component).unwrap();
    let replication = read_csv(&replication);
    let rep_row: HashMap<String, usize> = strings(&replication, "nuts_id")
        .into_iter()
        .enumerate()
        .map(|(i, id)| (id, i))
        .collect();
    let in_official = strings(&replication, "components_in_official_scores");
    let ids = strings(&computed, "nuts_id");
    let mut worst = 0.0f64;
    let mut n = 0;
    for node in [
        "basic_human_needs",
        "foundations_of_wellbeing",
        "opportunity",
        "eu_spi",
    ] {
        let ours = floats(&computed, node);
        let theirs = floats(&replication, node);
        for (i, id) in ids.iter().enumerate() {
            let j = rep_row[id];
            assert_eq!(in_official[j], "yes");
            let (o, t) = (ours[i].unwrap(), theirs[j].unwrap());
            assert!(
                (o - t).abs() <= 1e-6,
                "{node} {id}: ours {o}, replication {t}"
            );
            worst = worst.max((o - t).abs());
            n += 1;
        }
    }
    assert_eq!(n, 231 * 4);
    eprintln!(
        "euspi2020: {n} dimension/index scores from official components, max error {worst:.2e}"
    );
}
