//! Anchoring, as the EU Regional SPI does: the regional scores of a level (components by
//! default) are shifted, group by group (country by country), so that their
//! population-weighted mean equals the group's national score. The levels above are then
//! recomputed from the anchored scores by the caller.
//!
//! National scores come from a table (read by `load`), or are computed by `compute` from
//! national indicator data with this pipeline's own framework, goalposts and aggregation
//! — the EC's method; data-driven normalisations (observed goalposts, min-max…) then take
//! their statistics from the national data. Here the shifting only: no file is read.

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::Serialize;

use crate::diagnostic::{Problem, Problems};
use crate::load::{Covariate, NationalScores};
use crate::plan::{AnchoringPlan, GROUP, Plan, TERRITORY_ID, YEAR};

/// Why scores cannot be anchored.
#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    #[error("{0}")]
    Problems(Problems),
    #[error("anchoring: {0}")]
    Polars(#[from] PolarsError),
}

/// One group's shift of one node.
#[derive(Debug, Clone, Serialize)]
pub struct Shift {
    pub group: String,
    pub year: Option<i64>,
    pub node_id: String,
    pub national: f64,
    /// Population-weighted mean of the group's regional scores before anchoring.
    pub regional_mean: f64,
    pub shift: f64,
    pub territories: usize,
}

/// Shifts the scores of the anchoring level; returns the frame, the shifts and warnings.
pub fn anchor(
    plan: &Plan,
    a: &AnchoringPlan,
    frame: DataFrame,
    national: &NationalScores,
    population: &Covariate,
) -> Result<(DataFrame, Vec<Shift>, Vec<String>), AnchorError> {
    let ids = frame.column(TERRITORY_ID)?.str()?.clone();
    let groups = frame.column(GROUP)?.str()?.clone();
    let years = frame.column(YEAR)?.i64()?.clone();
    let pop_year = |row_year: Option<i64>| {
        if plan.has_years() {
            row_year
        } else {
            a.population_year
        }
    };
    // Rows of each group (× year).
    let mut members: BTreeMap<(String, Option<i64>), Vec<usize>> = BTreeMap::new();
    for i in 0..frame.height() {
        if let Some(g) = groups.get(i) {
            members
                .entry((g.to_owned(), years.get(i)))
                .or_default()
                .push(i);
        }
    }
    // With include_partial, the means take every territory's score from the children it
    // has, whatever the availability rule.
    let partial = if a.include_partial {
        let mut any = plan.clone();
        for node in any.nodes.iter_mut().filter(|n| n.level == a.level) {
            if let Some(rule) = node.rule.as_mut() {
                rule.min_share = 0.0;
            }
        }
        Some(crate::aggregate::aggregate_level(
            frame.clone(),
            &any,
            a.level,
        )?)
    } else {
        None
    };
    let mut frame = frame;
    let mut shifts = Vec::new();
    let mut warnings = Vec::new();
    let mut problems = Vec::new();
    let mut no_national: Vec<String> = Vec::new();
    for node in plan.nodes_at(a.level) {
        let mut values: Vec<Option<f64>> = frame.column(&node.id)?.f64()?.iter().collect();
        let in_mean: Vec<Option<f64>> = match &partial {
            Some(p) => p.column(&node.id)?.f64()?.iter().collect(),
            None => values.clone(),
        };
        for ((g, y), rows) in &members {
            let scored: Vec<usize> = rows
                .iter()
                .copied()
                .filter(|&r| in_mean[r].is_some())
                .collect();
            if scored.is_empty() {
                continue;
            }
            let Some(nat) = national.get(&(g.clone(), *y)).and_then(|n| n.get(&node.id)) else {
                if !no_national.contains(g) {
                    no_national.push(g.clone());
                }
                continue;
            };
            let weights: Vec<Option<f64>> = scored
                .iter()
                .map(|&r| {
                    population
                        .get(&(ids.get(r).unwrap_or("").to_owned(), pop_year(years.get(r))))
                        .copied()
                })
                .collect();
            // A lone territory is its group's mean whatever its population.
            let weights: Vec<f64> = if scored.len() == 1 {
                vec![1.0]
            } else if let Some(k) = weights.iter().position(Option::is_none) {
                problems.push(Problem::new(
                    a.population.declared_at.clone(),
                    format!(
                        "anchoring needs the population of \"{}\" (group {g}): it has none",
                        ids.get(scored[k]).unwrap_or("")
                    ),
                ));
                continue;
            } else {
                weights.into_iter().map(|w| w.expect("checked")).collect()
            };
            let total: f64 = weights.iter().sum();
            if total <= 0.0 {
                problems.push(Problem::new(
                    a.population.declared_at.clone(),
                    format!("the populations of group {g} sum to {total}"),
                ));
                continue;
            }
            let mean = scored
                .iter()
                .zip(&weights)
                .map(|(&r, w)| in_mean[r].expect("scored") * w)
                .sum::<f64>()
                / total;
            let shift = nat - mean;
            // Only scores the availability rule kept are shifted (and published).
            for &r in rows {
                values[r] = values[r].map(|v| v + shift);
            }
            shifts.push(Shift {
                group: g.clone(),
                year: *y,
                node_id: node.id.clone(),
                national: *nat,
                regional_mean: mean,
                shift,
                territories: scored.len(),
            });
        }
        frame.with_column(Column::new(node.id.as_str().into(), values))?;
    }
    if !problems.is_empty() {
        return Err(AnchorError::Problems(Problems(problems)));
    }
    if !no_national.is_empty() {
        warnings.push(format!(
            "anchoring: no national score for group(s) {}: their scores are not anchored",
            crate::diagnostic::list(&no_national, 20)
        ));
    }
    Ok((frame, shifts, warnings))
}
