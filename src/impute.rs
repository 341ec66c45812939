//! Missing data before normalisation: screening (dropping territories, or territory-years,
//! with too few values) and imputation (filling the gaps that remain).
//!
//! Imputation methods: the indicator's mean or median over all territories, or over the
//! territories of the same group — within the same year when there are years; a
//! territory's latest earlier value, or a linear interpolation between its values before
//! and after, across at most `max_gap` missing years. Every filled cell is flagged
//! (`imp:<id>`), and the flags reach the outputs. Cross-sectional methods are polars
//! window expressions; panel methods walk each territory's years in Rust, since the frame
//! is sorted by territory then year.

use polars::prelude::*;
use serde::Serialize;

use crate::config::{ImputeMethod, ScreenOn};
use crate::plan::{GROUP, Plan, Screening, TERRITORY_ID, YEAR};
use crate::transform::exact_div;

/// Column flagging the imputed cells of an indicator.
pub fn flag_column(id: &str) -> String {
    format!("imp:{id}")
}

/// How many cells an indicator had filled, and how many stayed missing.
#[derive(Debug, Clone, Serialize)]
pub struct ImputedCount {
    pub indicator: String,
    pub method: &'static str,
    pub imputed: usize,
    pub still_missing: usize,
}

/// Fills missing indicator values by each indicator's method and adds the flag columns.
pub fn impute(plan: &Plan, frame: DataFrame) -> PolarsResult<(DataFrame, Vec<ImputedCount>)> {
    let mut exprs = Vec::new();
    let mut panel = Vec::new();
    for (node, spec) in plan.indicators() {
        let raw = Plan::raw_column(&node.id);
        let x = col(raw.as_str());
        let mut keys = Vec::new();
        if plan.has_years() {
            keys.push(col(YEAR));
        }
        let stat = match spec.impute {
            ImputeMethod::None => None,
            ImputeMethod::Mean => Some(x.clone().mean()),
            ImputeMethod::Median => Some(x.clone().median()),
            ImputeMethod::GroupMean | ImputeMethod::GroupMedian => {
                keys.push(col(GROUP));
                Some(if spec.impute == ImputeMethod::GroupMean {
                    x.clone().mean()
                } else {
                    x.clone().median()
                })
            }
            ImputeMethod::Latest | ImputeMethod::Linear => {
                panel.push((node.id.clone(), spec.impute));
                None
            }
        };
        let Some(stat) = stat else { continue };
        let stat = if keys.is_empty() {
            stat
        } else {
            stat.over(keys).expect("a column window is valid")
        };
        let filled = x.clone().fill_null(stat);
        exprs.push(
            x.clone()
                .is_null()
                .and(filled.clone().is_not_null())
                .alias(flag_column(&node.id)),
        );
        exprs.push(filled.alias(raw.as_str()));
    }
    let mut frame = if exprs.is_empty() {
        frame
    } else {
        frame.lazy().with_columns(exprs).collect()?
    };
    for (id, method) in panel {
        impute_panel(&mut frame, &id, method, plan.prep.max_gap as i64)?;
    }
    // Every indicator gets a flag column, all false when it is not imputed.
    let n = frame.height();
    let mut counts = Vec::new();
    for (node, spec) in plan.indicators() {
        let flag = flag_column(&node.id);
        if frame.column(&flag).is_err() {
            frame.with_column(Column::new(flag.as_str().into(), vec![false; n]))?;
        }
        let imputed = frame.column(&flag)?.bool()?.sum().unwrap_or(0) as usize;
        let still_missing = frame.column(&Plan::raw_column(&node.id))?.null_count();
        counts.push(ImputedCount {
            indicator: node.id.clone(),
            method: spec.impute.into(),
            imputed,
            still_missing,
        });
    }
    Ok((frame, counts))
}

/// Latest earlier value, or linear interpolation, within each territory's years.
fn impute_panel(
    frame: &mut DataFrame,
    id: &str,
    method: ImputeMethod,
    max_gap: i64,
) -> PolarsResult<()> {
    let raw = Plan::raw_column(id);
    let territory = frame.column(TERRITORY_ID)?.str()?.clone();
    let years = frame.column(YEAR)?.i64()?.clone();
    let mut values: Vec<Option<f64>> = frame.column(&raw)?.f64()?.iter().collect();
    let mut flags = vec![false; values.len()];
    let n = values.len();
    let mut start = 0;
    while start < n {
        let t = territory.get(start);
        let mut end = start;
        while end < n && territory.get(end) == t {
            end += 1;
        }
        // Observed (year, value) of this territory, in year order.
        let observed: Vec<(i64, f64)> = (start..end)
            .filter_map(|r| Some((years.get(r)?, values[r]?)))
            .collect();
        for r in start..end {
            let (Some(y), None) = (years.get(r), values[r]) else {
                continue;
            };
            let before = observed.iter().rev().find(|(oy, _)| *oy < y);
            let after = observed.iter().find(|(oy, _)| *oy > y);
            let v = match (method, before, after) {
                (ImputeMethod::Latest, Some(&(by, bv)), _) if y - by <= max_gap => Some(bv),
                // Between two values whose gap has at most max_gap missing years.
                (ImputeMethod::Linear, Some(&(by, bv)), Some(&(ay, av)))
                    if ay - by - 1 <= max_gap =>
                {
                    Some(bv + (av - bv) * (y - by) as f64 / (ay - by) as f64)
                }
                _ => None,
            };
            if v.is_some() {
                values[r] = v;
                flags[r] = true;
            }
        }
        start = end;
    }
    frame.with_column(Column::new(raw.as_str().into(), values))?;
    frame.with_column(Column::new(flag_column(id).as_str().into(), flags))?;
    Ok(())
}

/// A territory (× year) dropped by screening, with its share of indicators present.
#[derive(Debug, Clone, Serialize)]
pub struct Dropped {
    pub territory_id: String,
    pub year: Option<i64>,
    pub availability: f64,
    pub reason: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScreeningReport {
    pub min_availability: f64,
    pub on: &'static str,
    pub dropped: Vec<Dropped>,
    /// Kept by `include` although below the threshold.
    pub kept_by_include: Vec<String>,
    /// Ids in `include`/`exclude` that are not in the data.
    pub unknown_ids: Vec<String>,
}

/// Drops the rows whose share of present indicators is below the threshold (unless
/// included), and the excluded territories.
pub fn screen(
    plan: &Plan,
    s: &Screening,
    frame: DataFrame,
) -> PolarsResult<(DataFrame, ScreeningReport)> {
    let indicators: Vec<String> = plan
        .indicators()
        .map(|(n, _)| Plan::raw_column(&n.id))
        .collect();
    let total = indicators.len().max(1) as f64;
    let present = indicators
        .iter()
        .map(|c| col(c.as_str()).is_not_null().cast(DataType::Float64))
        .reduce(|a, b| a + b)
        .unwrap_or_else(|| lit(0.0));
    let with_share = frame
        .lazy()
        .with_column(exact_div(present.clone(), lit(total), &present).alias("__availability"))
        .collect()?;
    let ids = with_share.column(TERRITORY_ID)?.str()?.clone();
    let years = with_share
        .column(YEAR)
        .ok()
        .and_then(|c| c.i64().ok().cloned());
    let share = with_share.column("__availability")?.f64()?.clone();
    let mut keep = Vec::with_capacity(with_share.height());
    let mut dropped = Vec::new();
    let mut kept_by_include = Vec::new();
    for i in 0..with_share.height() {
        let id = ids.get(i).unwrap_or("");
        let a = share.get(i).unwrap_or(0.0);
        let below = a < s.min_availability - 1e-12;
        let included = s.include.iter().any(|x| x == id);
        let excluded = s.exclude.iter().any(|x| x == id);
        let reason = if excluded {
            Some("excluded")
        } else if below && !included {
            Some("below min_availability")
        } else {
            None
        };
        if below && included && !kept_by_include.iter().any(|k| k == id) {
            kept_by_include.push(id.to_owned());
        }
        keep.push(reason.is_none());
        if let Some(reason) = reason {
            dropped.push(Dropped {
                territory_id: id.to_owned(),
                year: years.as_ref().and_then(|y| y.get(i)),
                availability: a,
                reason,
            });
        }
    }
    let known: std::collections::HashSet<&str> = ids.iter().flatten().collect();
    let unknown_ids = s
        .include
        .iter()
        .chain(&s.exclude)
        .filter(|x| !known.contains(x.as_str()))
        .cloned()
        .collect();
    let mask = BooleanChunked::from_slice("keep".into(), &keep);
    let kept = with_share.filter(&mask)?.drop("__availability")?;
    Ok((
        kept,
        ScreeningReport {
            min_availability: s.min_availability,
            on: match s.on {
                ScreenOn::Raw => "raw",
                ScreenOn::Imputed => "imputed",
            },
            dropped,
            kept_by_include,
            unknown_ids,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan;

    /// A one-indicator plan imputed by `method`, and its imputed values and flags over
    /// `rows` of (territory, group, year, value).
    fn run(method: &str, rows: &[(&str, &str, i64, Option<f64>)]) -> (Vec<Option<f64>>, Vec<bool>) {
        let text = format!(
            "[pipeline]\nid = \"t\"\n[territories]\nid = \"code\"\ngroup = \"g\"\nyear = \"year\"\n[[source]]\npath = \"x.csv\"\n[imputation]\nmethod = \"{method}\"\nmax_gap = 2\n[index]\nid = \"idx\"\n[[dimension]]\nid = \"d\"\n[[component]]\nid = \"c\"\ndimension = \"d\"\n[[indicator]]\nid = \"x\"\ncomponent = \"c\"\ndirection = \"higher_is_better\"\ngoalposts = \"observed\"\n"
        );
        let plan = plan::test_plan(&text);
        let frame = df!(
            TERRITORY_ID => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            GROUP => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            YEAR => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            "raw:x" => rows.iter().map(|r| r.3).collect::<Vec<_>>(),
        )
        .unwrap();
        let (out, counts) = impute(&plan, frame).unwrap();
        let flags: Vec<bool> = out
            .column("imp:x")
            .unwrap()
            .bool()
            .unwrap()
            .iter()
            .map(|v| v.unwrap())
            .collect();
        assert_eq!(counts[0].imputed, flags.iter().filter(|f| **f).count());
        (
            out.column("raw:x").unwrap().f64().unwrap().iter().collect(),
            flags,
        )
    }

    #[test]
    fn cross_sectional_means_and_medians_within_the_year_and_group() {
        let rows = [
            ("A", "g1", 2020, Some(1.0)),
            ("B", "g1", 2020, Some(3.0)),
            ("C", "g2", 2020, Some(10.0)),
            ("D", "g1", 2020, None),
            ("E", "g2", 2020, None),
            ("A", "g1", 2021, Some(100.0)),
            ("D", "g1", 2021, None),
        ];
        let (v, f) = run("mean", &rows);
        assert_eq!(v[3], Some(14.0 / 3.0));
        assert_eq!(v[6], Some(100.0), "the mean of 2021, not of all years");
        assert_eq!(f, [false, false, false, true, true, false, true]);
        let (v, _) = run("group_mean", &rows);
        assert_eq!((v[3], v[4]), (Some(2.0), Some(10.0)));
        let (v, _) = run("median", &rows);
        assert_eq!(v[3], Some(3.0));
        let (v, _) = run("group_median", &rows);
        assert_eq!(v[3], Some(2.0));
    }

    #[test]
    fn panel_methods_fill_within_a_territory_up_to_the_gap() {
        // A: 2018 = 10, 2019–2020 missing, 2021 = 40, 2022–2024 missing.
        let years = [2018, 2019, 2020, 2021, 2022, 2023, 2024];
        let values = [Some(10.0), None, None, Some(40.0), None, None, None];
        let mut rows: Vec<(&str, &str, i64, Option<f64>)> = years
            .iter()
            .zip(values)
            .map(|(&y, v)| ("A", "g", y, v))
            .collect();
        // B has no earlier value: nothing to carry forward.
        rows.push(("B", "g", 2018, None));
        rows.push(("B", "g", 2019, Some(5.0)));
        let (v, f) = run("latest", &rows);
        assert_eq!(
            &v[..7],
            &[
                Some(10.0),
                Some(10.0),
                Some(10.0),
                Some(40.0),
                Some(40.0),
                Some(40.0),
                None
            ]
        );
        assert_eq!(&f[..7], &[false, true, true, false, true, true, false]);
        assert_eq!(v[7], None);
        let (v, _) = run("linear", &rows);
        assert_eq!(&v[..4], &[Some(10.0), Some(20.0), Some(30.0), Some(40.0)]);
        assert_eq!(&v[4..7], &[None, None, None], "no extrapolation");
    }
}
