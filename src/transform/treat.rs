//! Outlier treatment, the JRC rule as COINr applies it (`Treat` with its defaults).
//!
//! An indicator is treated when its sample skewness and excess kurtosis (both "type 2",
//! as Excel and e1071 compute them) are both too high: |skewness| ≥ 2 and kurtosis ≥ 3.5
//! by default. Then, while it still fails and fewer than `max_winsorised` points have been
//! moved, the extreme on the side of the skew — all the points tied at it — takes the next
//! value inward. If it still fails, the original values are log-transformed instead:
//! `ln(x − min + 0.01·(max − min))`. Values are treated over all rows (every territory and
//! year); missing values stay missing.

use polars::prelude::*;
use serde::Serialize;

use crate::plan::{Plan, Treatment};

/// What happened to one indicator.
#[derive(Debug, Clone, Serialize)]
pub struct TreatmentRow {
    pub indicator: String,
    /// Values present.
    pub n: usize,
    pub skewness_before: Option<f64>,
    pub kurtosis_before: Option<f64>,
    pub passed_before: bool,
    /// Points moved at the high end and at the low end.
    pub winsorised_high: usize,
    pub winsorised_low: usize,
    pub log_transformed: bool,
    pub skewness_after: Option<f64>,
    pub kurtosis_after: Option<f64>,
    pub passed_after: bool,
    /// Why an indicator was left alone without a check (too few values).
    pub note: Option<String>,
}

/// Sample skewness, type 2: √n·Σd³/(Σd²)^1.5 · √(n(n−1))/(n−2), with d = x − mean.
pub fn skewness(x: &[f64]) -> f64 {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let (s2, s3) = x.iter().fold((0.0, 0.0), |(s2, s3), v| {
        let d = v - mean;
        (s2 + d * d, s3 + d * d * d)
    });
    n.sqrt() * s3 / s2.powf(1.5) * (n * (n - 1.0)).sqrt() / (n - 2.0)
}

/// Sample excess kurtosis, type 2: ((n+1)(r−3)+6)(n−1)/((n−2)(n−3)), r = n·Σd⁴/(Σd²)².
pub fn kurtosis(x: &[f64]) -> f64 {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let (s2, s4) = x.iter().fold((0.0, 0.0), |(s2, s4), v| {
        let d = v - mean;
        (s2 + d * d, s4 + d * d * d * d)
    });
    let r = n * s4 / (s2 * s2);
    ((n + 1.0) * (r - 3.0) + 6.0) * (n - 1.0) / ((n - 2.0) * (n - 3.0))
}

/// Passes unless both |skewness| and kurtosis reach their thresholds.
pub fn passes(x: &[f64], t: &Treatment) -> bool {
    skewness(x).abs() < t.skewness || kurtosis(x) < t.kurtosis
}

/// Winsorises `x` in place as COINr's `winsorise` does; returns the points moved at the
/// high and the low end. COINr counts, for each end, the tie group moved there last —
/// which includes the points moved before, since they joined the extreme they were moved
/// to — and stops once the two counts reach `max_winsorised`.
pub fn winsorise(x: &mut [f64], t: &Treatment) -> (usize, usize) {
    let (mut high, mut low) = (0usize, 0usize);
    while !passes(x, t) && high + low < t.max_winsorised {
        let positive = skewness(x) >= 0.0;
        let pick = |a: f64, b: f64| if positive { a.max(b) } else { a.min(b) };
        let start = if positive {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
        let extreme = x.iter().copied().fold(start, pick);
        let inward = x
            .iter()
            .copied()
            .filter(|&v| v != extreme)
            .fold(start, pick);
        // Every value equal: nothing left to move inward.
        if !inward.is_finite() {
            break;
        }
        let mut moved = 0;
        for v in x.iter_mut().filter(|v| **v == extreme) {
            *v = inward;
            moved += 1;
        }
        if positive {
            high = moved;
        } else {
            low = moved;
        }
    }
    (high, low)
}

/// COINr's log_CT: ln(x − min + 0.01·(max − min)).
pub fn log_ct(x: &mut [f64]) {
    let min = x.iter().copied().fold(f64::INFINITY, f64::min);
    let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    for v in x.iter_mut() {
        *v = (*v - min + 0.01 * (max - min)).ln();
    }
}

/// Treats every indicator that takes part; returns the frame and one row per indicator.
pub fn treat(
    plan: &Plan,
    t: &Treatment,
    frame: DataFrame,
) -> PolarsResult<(DataFrame, Vec<TreatmentRow>)> {
    let mut frame = frame;
    let mut rows = Vec::new();
    for (node, spec) in plan.indicators() {
        if !spec.treat {
            continue;
        }
        let name = Plan::raw_column(&node.id);
        let column: Vec<Option<f64>> = frame.column(&name)?.f64()?.iter().collect();
        let original: Vec<f64> = column.iter().flatten().copied().collect();
        let n = original.len();
        let mut row = TreatmentRow {
            indicator: node.id.clone(),
            n,
            skewness_before: None,
            kurtosis_before: None,
            passed_before: true,
            winsorised_high: 0,
            winsorised_low: 0,
            log_transformed: false,
            skewness_after: None,
            kurtosis_after: None,
            passed_after: true,
            note: None,
        };
        if n < 4 {
            row.note = Some(format!("{n} values: skewness and kurtosis need at least 4"));
            rows.push(row);
            continue;
        }
        // A constant indicator has no outliers, and neither skewness nor kurtosis: left as
        // it is (its log fallback would be ln(0) = −∞ for every value).
        let (lo, hi) = original
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
                (l.min(v), h.max(v))
            });
        if lo == hi {
            row.note = Some(format!("constant ({lo}): nothing to treat"));
            rows.push(row);
            continue;
        }
        row.skewness_before = Some(skewness(&original));
        row.kurtosis_before = Some(kurtosis(&original));
        row.passed_before = passes(&original, t);
        let mut treated = original.clone();
        if !row.passed_before {
            (row.winsorised_high, row.winsorised_low) = winsorise(&mut treated, t);
            if !passes(&treated, t) && t.log_fallback {
                treated = original.clone();
                log_ct(&mut treated);
                (row.winsorised_high, row.winsorised_low) = (0, 0);
                row.log_transformed = true;
            }
            row.skewness_after = Some(skewness(&treated));
            row.kurtosis_after = Some(kurtosis(&treated));
            row.passed_after = passes(&treated, t);
            let mut values = treated.into_iter();
            let new: Float64Chunked = column
                .iter()
                .map(|v| v.and_then(|_| values.next()))
                .collect();
            frame.with_column(new.with_name(name.as_str().into()).into_column())?;
        }
        rows.push(row);
    }
    Ok((frame, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    const JRC: Treatment = Treatment {
        skewness: 2.0,
        kurtosis: 3.5,
        max_winsorised: 5,
        log_fallback: true,
    };

    #[test]
    fn a_constant_indicator_is_left_alone() {
        let plan = crate::plan::test_plan(
            "[pipeline]\nid = \"t\"\n[territories]\nid = \"code\"\n[[source]]\npath = \"x.csv\"\n\
             [treatment]\n[index]\nid = \"i\"\n[[dimension]]\nid = \"d\"\n[[component]]\nid = \"c\"\n\
             dimension = \"d\"\n[[indicator]]\nid = \"x\"\ncomponent = \"c\"\ndirection = \"higher_is_better\"\n\
             goalposts = \"observed\"\n",
        );
        let frame = DataFrame::new(
            5,
            vec![Column::new(Plan::raw_column("x").into(), [7.0f64; 5])],
        )
        .unwrap();
        let (out, rows) =
            treat(&plan, plan.prep.treatment.as_ref().unwrap(), frame.clone()).unwrap();
        assert_eq!(out, frame);
        assert_eq!(
            rows[0].note.as_deref(),
            Some("constant (7): nothing to treat")
        );
        assert!(!rows[0].log_transformed);
    }

    #[test]
    fn skewness_and_kurtosis_match_excel() {
        // The examples of Excel's SKEW and KURT documentation (same "type 2" estimators).
        let x = [3.0, 4.0, 5.0, 2.0, 3.0, 4.0, 5.0, 6.0, 4.0, 7.0];
        assert!(
            (skewness(&x) - 0.359543071).abs() < 1e-9,
            "{}",
            skewness(&x)
        );
        assert!(
            (kurtosis(&x) - -0.151799637).abs() < 1e-9,
            "{}",
            kurtosis(&x)
        );
    }

    #[test]
    fn one_outlier_is_winsorised_to_the_next_value() {
        let mut x: Vec<f64> = (1..=10).map(f64::from).chain([100.0]).collect();
        assert!(
            !passes(&x, &JRC),
            "skew {} kurt {}",
            skewness(&x),
            kurtosis(&x)
        );
        let (high, low) = winsorise(&mut x, &JRC);
        assert_eq!((high, low), (1, 0));
        assert_eq!(x[10], 10.0);
        assert!(passes(&x, &JRC));
    }

    #[test]
    fn tied_extremes_move_together_and_count_as_the_group_moved_last() {
        // Two far outliers: the first step moves 100 to 50, the second moves both 50s.
        let mut x: Vec<f64> = (1..=20).map(f64::from).chain([50.0, 100.0]).collect();
        let t = Treatment {
            max_winsorised: 5,
            ..JRC
        };
        let (high, _) = winsorise(&mut x, &t);
        assert!(passes(&x, &t));
        assert_eq!(high, 2, "{x:?}");
        assert_eq!(&x[20..], &[20.0, 20.0]);
    }

    #[test]
    fn log_when_winsorising_is_not_enough() {
        // Three far outliers; one point may be moved, which cannot fix it.
        let x: Vec<f64> = (1..=20)
            .map(f64::from)
            .chain([200.0, 300.0, 400.0])
            .collect();
        let t = Treatment {
            max_winsorised: 1,
            ..JRC
        };
        assert!(!passes(&x, &t));
        let mut w = x.clone();
        assert_eq!(winsorise(&mut w, &t), (1, 0));
        assert!(!passes(&w, &t), "winsorising one point is not enough here");
        let mut logged = x.clone();
        log_ct(&mut logged);
        let (min, max) = (1.0, 400.0);
        assert!((logged[5] - (x[5] - min + 0.01 * (max - min)).ln()).abs() < 1e-12);
        assert!(passes(&logged, &t));
    }
}
