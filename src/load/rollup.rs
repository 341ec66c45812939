//! `[rollup]`: the sources' territories aggregated into coarser ones before scoring —
//! NUTS 3 into NUTS 2 by the start of their codes, communes into départements or EPCI
//! through a mapping table — per indicator a sum, a mean, or a mean weighted by a table
//! (population). Denominators are summed, so a denominated rate is the parent's total over
//! its total, not a mean of rates.
//!
//! A parent gets a value only when the share of its units with one (its coverage) reaches
//! `min_coverage` (default: all of them — a sum over the units present is silently too
//! small otherwise). Every parent × year × indicator's coverage is reported
//! (`rollup.csv`). Published flags travel: a parent carries every flag of its units.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use polars::prelude::*;
use serde::Serialize;

use super::sources::Covariate;
use crate::config::RollupMethod;
use crate::diagnostic::{Location, Problem, Problems, list};
use crate::plan::{GROUP, Parent, Plan, RollupPlan, TERRITORY_ID, TERRITORY_NAME, YEAR};

/// The parents of a mapping table: territory id → (parent id, parent name).
pub type Mapping = HashMap<String, (String, Option<String>)>;

/// What the rollup did, for `rollup.csv` and the manifest.
#[derive(Debug)]
pub struct RollupReport {
    /// parent, year, indicator, method, units, present, coverage, value kept.
    pub coverage: DataFrame,
    pub summary: RollupSummary,
}

#[derive(Debug, Clone, Serialize)]
pub struct RollupSummary {
    pub parent: String,
    pub min_coverage: f64,
    pub territories: usize,
    pub parents: usize,
    pub methods: BTreeMap<String, RollupMethod>,
    /// Per indicator: parent × year values left missing for lack of coverage.
    pub below_coverage: BTreeMap<String, usize>,
    pub file: &'static str,
}

/// Aggregates `frame` (a row per territory × year) into the parents of `rp`.
pub fn apply(
    plan: &Plan,
    rp: &RollupPlan,
    frame: &DataFrame,
    mapping: Option<&Mapping>,
    weights: Option<&Covariate>,
) -> Result<(DataFrame, RollupReport), Problems> {
    let at = &rp.declared_at;
    let ids = frame
        .column(TERRITORY_ID)
        .and_then(|c| c.str().cloned())
        .map_err(|e| Problems(vec![Problem::new(at.clone(), e.to_string())]))?;
    let years: Option<Int64Chunked> = frame.column(YEAR).ok().and_then(|c| c.i64().ok().cloned());
    let groups = frame.column(GROUP).ok().and_then(|c| c.str().ok().cloned());
    let height = frame.height();

    // Each row's parent.
    let mut parents: Vec<String> = Vec::with_capacity(height);
    let mut names: HashMap<String, Option<String>> = HashMap::new();
    let mut not_finer = BTreeSet::new();
    let mut unmapped = BTreeSet::new();
    for id in ids.iter() {
        let id = id.unwrap_or("");
        let parent = match (&rp.parent, mapping) {
            (Parent::Prefix(n), _) => {
                if id.chars().count() <= *n {
                    not_finer.insert(id.to_owned());
                    String::new()
                } else {
                    id.chars().take(*n).collect()
                }
            }
            (Parent::Mapping(_), Some(m)) => match m.get(id) {
                Some((p, name)) => {
                    names.entry(p.clone()).or_insert_with(|| name.clone());
                    p.clone()
                }
                None => {
                    unmapped.insert(id.to_owned());
                    String::new()
                }
            },
            (Parent::Mapping(_), None) => unreachable!("the mapping is read with the plan"),
        };
        parents.push(parent);
    }
    let mut problems = Vec::new();
    if !not_finer.is_empty() {
        let shown: Vec<&String> = not_finer.iter().collect();
        let Parent::Prefix(n) = rp.parent else {
            unreachable!()
        };
        problems.push(
            Problem::new(
                at.clone(),
                format!(
                    "[rollup]: {} territory id(s) are not longer than the prefix ({n} characters), so they are not finer than their parent: {}",
                    shown.len(),
                    list(&shown, 10)
                ),
            )
            .with_help("keep one level in the sources (e.g. Eurostat's geoLevel filter) before rolling up"),
        );
    }
    if !unmapped.is_empty() {
        let shown: Vec<&String> = unmapped.iter().collect();
        let file = match &rp.parent {
            Parent::Mapping(m) => m.file.path.display().to_string(),
            Parent::Prefix(_) => String::new(),
        };
        problems.push(Problem::new(
            at.clone(),
            format!(
                "[rollup]: {} territory id(s) of the sources are not in the mapping {file}: {}",
                shown.len(),
                list(&shown, 10)
            ),
        ));
    }
    if !problems.is_empty() {
        return Err(Problems(problems));
    }

    // Groups of rows: (parent, year), in sorted order.
    let mut by_key: BTreeMap<(String, Option<i64>), Vec<usize>> = BTreeMap::new();
    for (row, parent) in parents.iter().enumerate() {
        let year = years.as_ref().and_then(|y| y.get(row));
        by_key.entry((parent.clone(), year)).or_default().push(row);
    }

    // The weights of the rows that need them.
    let weighted: Vec<&str> = rp
        .methods
        .iter()
        .filter(|(_, m)| **m == RollupMethod::WeightedMean)
        .map(|(id, _)| id.as_str())
        .collect();
    let mut row_weight: Vec<Option<f64>> = vec![None; height];
    if let Some(w) = weights {
        let mut missing = BTreeSet::new();
        let needs: Vec<Float64Chunked> = weighted
            .iter()
            .filter_map(|id| {
                frame
                    .column(&Plan::raw_column(id))
                    .ok()
                    .and_then(|c| c.f64().ok().cloned())
            })
            .collect();
        for (row, weight) in row_weight.iter_mut().enumerate() {
            let id = ids.get(row).unwrap_or("");
            let year = years.as_ref().and_then(|y| y.get(row));
            let found = w
                .get(&(id.to_owned(), year))
                .or_else(|| w.get(&(id.to_owned(), None)));
            match found {
                Some(&x) if x.is_finite() && x >= 0.0 => *weight = Some(x),
                Some(&x) => {
                    problems.push(Problem::new(
                        at.clone(),
                        format!("[rollup]: the weight of {id} is {x}: weights must be ≥ 0"),
                    ));
                }
                None => {
                    if needs.iter().any(|c| c.get(row).is_some()) {
                        missing.insert(match year {
                            Some(y) => format!("{id} {y}"),
                            None => id.to_owned(),
                        });
                    }
                }
            }
        }
        if !missing.is_empty() {
            let shown: Vec<&String> = missing.iter().collect();
            let path = rp
                .weight
                .as_ref()
                .map_or(String::new(), |w| w.file.path.display().to_string());
            problems.push(Problem::new(
                at.clone(),
                format!(
                    "[rollup]: {} territory (× year) with values have no weight in {path}: {}",
                    shown.len(),
                    list(&shown, 10)
                ),
            ));
        }
        if !problems.is_empty() {
            return Err(Problems(problems));
        }
    }

    // The aggregated columns.
    let keys: Vec<&(String, Option<i64>)> = by_key.keys().collect();
    let n_out = keys.len();
    let mut out_cols: Vec<Column> = Vec::new();
    out_cols.push(
        StringChunked::from_iter_values(TERRITORY_ID.into(), keys.iter().map(|k| k.0.as_str()))
            .into_column(),
    );
    out_cols.push(
        StringChunked::from_iter_options(
            TERRITORY_NAME.into(),
            keys.iter()
                .map(|k| names.get(&k.0).and_then(|n| n.as_deref())),
        )
        .into_column(),
    );
    out_cols.push(
        StringChunked::from_iter_options(
            GROUP.into(),
            by_key.values().map(|rows| {
                let g = groups.as_ref()?;
                let first = g.get(rows[0])?;
                rows.iter()
                    .all(|&r| g.get(r) == Some(first))
                    .then_some(first)
            }),
        )
        .into_column(),
    );
    out_cols
        .push(Int64Chunked::from_iter_options(YEAR.into(), keys.iter().map(|k| k.1)).into_column());
    let mut report = Report::default();
    let mut below: BTreeMap<String, usize> = BTreeMap::new();
    let tol = 1e-12;
    let aggregate = |values: &Float64Chunked,
                     method: RollupMethod,
                     rows: &[usize]|
     -> (Option<f64>, usize) {
        let present: Vec<usize> = rows
            .iter()
            .copied()
            .filter(|&r| values.get(r).is_some())
            .collect();
        let coverage = present.len() as f64 / rows.len() as f64;
        if present.is_empty() || coverage + tol < rp.min_coverage {
            return (None, present.len());
        }
        let x = |r: usize| values.get(r).expect("present");
        let v = match method {
            RollupMethod::Sum => present.iter().map(|&r| x(r)).sum(),
            RollupMethod::Mean => present.iter().map(|&r| x(r)).sum::<f64>() / present.len() as f64,
            RollupMethod::WeightedMean => {
                let w: f64 = present.iter().map(|&r| row_weight[r].unwrap_or(0.0)).sum();
                if w <= 0.0 {
                    return (None, present.len());
                }
                present
                    .iter()
                    .map(|&r| row_weight[r].unwrap_or(0.0) * x(r))
                    .sum::<f64>()
                    / w
            }
        };
        (Some(v), present.len())
    };
    for (node, _) in plan.indicators() {
        let name = Plan::raw_column(&node.id);
        let Ok(column) = frame.column(&name) else {
            continue;
        };
        let values = column
            .f64()
            .map_err(|e| Problems(vec![Problem::new(at.clone(), e.to_string())]))?;
        let method = rp.methods[&node.id];
        let mut out: Vec<Option<f64>> = Vec::with_capacity(n_out);
        for (key, rows) in &by_key {
            let (v, present) = aggregate(values, method, rows);
            if v.is_none() && present > 0 {
                *below.entry(node.id.clone()).or_default() += 1;
            }
            report.push(key, &node.id, method, rows.len(), present, v.is_some());
            out.push(v);
        }
        // Flags: every flag of the units, once, on the parents that have a value.
        let flag_name = Plan::published_flag_column(&node.id);
        if let Ok(flags) = frame.column(&flag_name).and_then(|c| c.str().cloned()) {
            let merged = by_key.values().zip(&out).map(|(rows, value)| {
                value.as_ref()?;
                let letters: BTreeSet<char> = rows
                    .iter()
                    .filter(|&&r| values.get(r).is_some())
                    .filter_map(|&r| flags.get(r))
                    .flat_map(|f| f.chars())
                    .collect();
                (!letters.is_empty()).then(|| letters.into_iter().collect::<String>())
            });
            let merged: StringChunked = merged.collect();
            out_cols.push(merged.with_name(flag_name.as_str().into()).into_column());
        }
        out_cols.push(
            Float64Chunked::from_iter_options(name.as_str().into(), out.into_iter()).into_column(),
        );
    }
    for (d, _) in plan.denominators() {
        let name = Plan::denominator_column(d);
        let Ok(column) = frame.column(&name) else {
            continue;
        };
        let values = column
            .f64()
            .map_err(|e| Problems(vec![Problem::new(at.clone(), e.to_string())]))?;
        let out: Vec<Option<f64>> = by_key
            .values()
            .map(|rows| aggregate(values, RollupMethod::Sum, rows).0)
            .collect();
        out_cols.push(
            Float64Chunked::from_iter_options(name.as_str().into(), out.into_iter()).into_column(),
        );
    }
    let rolled = DataFrame::new(n_out, out_cols)
        .map_err(|e| Problems(vec![Problem::new(at.clone(), e.to_string())]))?;
    let territories: BTreeSet<&str> = ids.iter().flatten().collect();
    let parents_n: BTreeSet<&str> = keys.iter().map(|k| k.0.as_str()).collect();
    let summary = RollupSummary {
        parent: match &rp.parent {
            Parent::Prefix(n) => format!("the first {n} characters of the id"),
            Parent::Mapping(m) => m.file.path.display().to_string(),
        },
        min_coverage: rp.min_coverage,
        territories: territories.len(),
        parents: parents_n.len(),
        methods: rp.methods.clone(),
        below_coverage: below,
        file: "rollup.csv",
    };
    let coverage = report
        .finish()
        .map_err(|e| Problems(vec![Problem::new(Location::Nowhere, e.to_string())]))?;
    Ok((rolled, RollupReport { coverage, summary }))
}

/// The rows of `rollup.csv`.
#[derive(Default)]
struct Report {
    parent: Vec<String>,
    year: Vec<Option<i64>>,
    indicator: Vec<String>,
    method: Vec<&'static str>,
    units: Vec<u32>,
    present: Vec<u32>,
    kept: Vec<bool>,
}

impl Report {
    fn push(
        &mut self,
        key: &(String, Option<i64>),
        indicator: &str,
        method: RollupMethod,
        units: usize,
        present: usize,
        kept: bool,
    ) {
        self.parent.push(key.0.clone());
        self.year.push(key.1);
        self.indicator.push(indicator.to_owned());
        self.method.push(match method {
            RollupMethod::Sum => "sum",
            RollupMethod::Mean => "mean",
            RollupMethod::WeightedMean => "weighted_mean",
        });
        self.units.push(units as u32);
        self.present.push(present as u32);
        self.kept.push(kept);
    }

    fn finish(self) -> PolarsResult<DataFrame> {
        let coverage: Vec<f64> = self
            .present
            .iter()
            .zip(&self.units)
            .map(|(p, u)| f64::from(*p) / f64::from(*u))
            .collect();
        let n = self.parent.len();
        DataFrame::new(
            n,
            vec![
                Column::new("territory_id".into(), self.parent),
                Column::new("year".into(), self.year),
                Column::new("indicator".into(), self.indicator),
                Column::new("method".into(), self.method),
                Column::new("units".into(), self.units),
                Column::new("present".into(), self.present),
                Column::new("coverage".into(), coverage),
                Column::new("value_kept".into(), self.kept),
            ],
        )
    }
}
