//! COINr's ASEM example (../shared/data/asem/): each configuration of its README has a
//! pipeline under pipelines/ that must reproduce COINr's output for every unit, every
//! normalised indicator and every aggregate, to 1e-6.

use std::collections::HashMap;

use crate::helpers::*;

/// Runs `pipeline` and compares its scores with the reference file `reference`; returns
/// the number of values compared and the largest difference.
fn compare(pipeline: &str, reference: &str) -> Option<(usize, f64)> {
    let reference = shared(&format!("asem/{reference}"))?;
    let dir = TempDir::new("asem");
    let out = dir.join("out");
    let o = bienvivre(
        &root(),
        &["run", pipeline, "-q", "-o", out.to_str().unwrap()],
    );
    assert!(o.status.success(), "{pipeline}: {}", stderr(&o));
    let scores = read_csv(&out.join("scores.csv"));
    let ours: HashMap<(String, String), Option<f64>> = strings(&scores, "territory_id")
        .into_iter()
        .zip(strings(&scores, "node_id"))
        .zip(floats(&scores, "value"))
        .collect();
    let want = read_csv(&reference);
    let units = strings(&want, "uCode");
    assert_eq!(units.len(), 51);
    let (mut compared, mut worst) = (0, 0.0f64);
    for name in want.get_column_names().iter().skip(1) {
        for (unit, v) in units.iter().zip(floats(&want, name)) {
            let got = ours
                .get(&(unit.clone(), name.to_string()))
                .unwrap_or_else(|| panic!("{pipeline}: no score for {unit} {name}"));
            match (got, v) {
                (Some(g), Some(w)) => {
                    let d = (g - w).abs();
                    assert!(d <= 1e-6, "{pipeline}: {unit} {name}: ours {g}, COINr {w}");
                    worst = worst.max(d);
                }
                (None, None) => {}
                (g, w) => panic!("{pipeline}: {unit} {name}: ours {g:?}, COINr {w:?}"),
            }
            compared += 1;
        }
    }
    // 49 indicators and 11 aggregates for each of the 51 units.
    assert_eq!(compared, 51 * 60, "{pipeline}");
    eprintln!("{pipeline}: {compared} values, max difference {worst:.1e}");
    Some((compared, worst))
}

#[test]
fn a_minmax_arithmetic() {
    compare("pipelines/asem_a.toml", "ref_a_minmax_amean.csv");
}

#[test]
fn b_zscore_arithmetic() {
    compare("pipelines/asem_b.toml", "ref_b_zscore_amean.csv");
}

#[test]
fn c_minmax_1_100_geometric() {
    compare("pipelines/asem_c.toml", "ref_c_minmax1_100_gmean.csv");
}
