//! Transforms of indicator values before normalisation: denomination (per capita, per
//! km²…), outlier treatment ([`treat`]), and the per-indicator cap and natural log.
//!
//! The cap and log apply to fixed goalposts too (see [`IndicatorSpec::transform_value`]),
//! so analysts state goalposts in the indicator's own units. Their domain errors (log of a
//! value that is not positive) are caught cell by cell at ingest, where the row is still
//! known — or here, after the division, for denominated indicators.

pub mod treat;

use polars::prelude::*;

use crate::diagnostic::{Location, Problem, Problems};
use crate::plan::{IndicatorSpec, Plan, TERRITORY_ID, YEAR};

/// Reported cases per problem kind before counting the rest.
const MAX_REPORTED: usize = 10;

/// Divides each denominated indicator by its denominator and multiplies by its scale. A
/// zero denominator for a present value is an error (a ratio to nothing), as is a ratio the
/// indicator's log cannot take; a missing denominator leaves the value missing.
pub fn denominate(plan: &Plan, frame: DataFrame) -> Result<DataFrame, Problems> {
    let denominated: Vec<_> = plan
        .indicators()
        .filter_map(|(n, s)| s.denominator.as_ref().map(|d| (n, s, d)))
        .collect();
    if denominated.is_empty() {
        return Ok(frame);
    }
    let territory = frame.column(TERRITORY_ID).and_then(|c| c.str().cloned());
    let years = frame.column(YEAR).and_then(|c| c.i64().cloned()).ok();
    let where_ = |row: usize| -> String {
        let t = territory
            .as_ref()
            .ok()
            .and_then(|t| t.get(row))
            .unwrap_or("?");
        match years.as_ref().and_then(|y| y.get(row)) {
            Some(y) => format!("{t}, {y}"),
            None => t.to_owned(),
        }
    };
    let mut problems = Vec::new();
    let mut exprs = Vec::new();
    for (node, spec, (den, scale)) in &denominated {
        let raw = Plan::raw_column(&node.id);
        let dcol = Plan::denominator_column(den);
        // Ingest binds every denominator (or reports it missing), so both columns exist.
        let (x, d) = match (
            frame.column(&raw).and_then(|c| c.f64()),
            frame.column(&dcol).and_then(|c| c.f64()),
        ) {
            (Ok(x), Ok(d)) => (x, d),
            (Err(e), _) | (_, Err(e)) => {
                return Err(Problems(vec![Problem::new(
                    Location::Nowhere,
                    format!("denominating \"{}\": {e}", node.id),
                )]));
            }
        };
        let mut zero = Vec::new();
        let mut domain = Vec::new();
        for (row, (xv, dv)) in x.iter().zip(d.iter()).enumerate() {
            let (Some(xv), Some(dv)) = (xv, dv) else {
                continue;
            };
            if dv == 0.0 {
                zero.push(row);
            } else if let Some(why) = spec.domain_error(xv / dv * scale) {
                domain.push((row, why));
            }
        }
        if !zero.is_empty() {
            let shown: Vec<String> = zero.iter().take(MAX_REPORTED).map(|&r| where_(r)).collect();
            let more = zero.len().saturating_sub(MAX_REPORTED);
            problems.push(Problem::new(
                spec.declared_at.clone(),
                format!(
                    "indicator \"{}\": denominator \"{den}\" is 0 for {}{}",
                    node.id,
                    shown.join("; "),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                ),
            ));
        }
        for (row, why) in domain.iter().take(MAX_REPORTED) {
            problems.push(Problem::new(
                spec.declared_at.clone(),
                format!(
                    "indicator \"{}\" divided by \"{den}\" for {}: {why}",
                    node.id,
                    where_(*row)
                ),
            ));
        }
        exprs.push((col(raw.as_str()) / col(dcol.as_str()) * lit(*scale)).alias(raw.as_str()));
    }
    if !problems.is_empty() {
        return Err(Problems(problems));
    }
    frame.lazy().with_columns(exprs).collect().map_err(|e| {
        Problems(vec![Problem::new(
            Location::Nowhere,
            format!("denominating: {e}"),
        )])
    })
}

/// The expression turning a raw value column into its transformed value
/// ([`IndicatorSpec::transform_value`] of each value).
pub fn expr(spec: &IndicatorSpec, column: &str) -> Expr {
    let mut e = col(column);
    if let Some(m) = spec.cap_max {
        e = clip_max(e, m);
    }
    if let Some(m) = spec.cap_min {
        e = clip_min(e, m);
    }
    if spec.log {
        e = e.log(lit(std::f64::consts::E));
    }
    e
}

/// `num / den` with a true division. Polars divides a column by a constant by multiplying
/// with the constant's reciprocal, which is not exact: 49·(1/49) = 0.9999999999999999, so a
/// value at its utopia scored just under 100 and ranked below values clipped to 100, and
/// equal ratios of two indicators (3/5, 9/15) scored differently. Adding `0·like` (a column
/// of the frame, finite where it is not null) makes the denominator a column, divided
/// element by element.
pub fn exact_div(num: Expr, den: Expr, like: &Expr) -> Expr {
    num / (like.clone() * lit(0.0) + den)
}

/// `min(e, m)`, nulls kept (polars' own clip needs a feature we otherwise do not use).
pub fn clip_max(e: Expr, m: f64) -> Expr {
    when(e.clone().gt(lit(m))).then(lit(m)).otherwise(e)
}

/// `max(e, m)`, nulls kept.
pub fn clip_min(e: Expr, m: f64) -> Expr {
    when(e.clone().lt(lit(m))).then(lit(m)).otherwise(e)
}
